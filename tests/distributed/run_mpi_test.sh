#!/usr/bin/env bash
# Runs a test binary under `mpirun -np RANKS` (meson test's wrapper for the
# distributed suites). Exit 77 (skipped) where this petal was built without
# MPI or mpirun is missing. Usage: run_mpi_test.sh HAVE_MPI RANKS BINARY [ARGS...]
set -uo pipefail
have_mpi=$1 ranks=$2
shift 2
if [[ "$have_mpi" != "true" ]]; then
  echo "skipped: petal was built without MPI (install libopenmpi-dev: scripts/install_deps.sh, then reconfigure)"
  exit 77
fi
if ! command -v mpirun >/dev/null 2>&1; then
  echo "skipped: mpirun not found (openmpi-bin)"
  exit 77
fi
args=(-np "$ranks" --oversubscribe)
[[ $(id -u) -eq 0 ]] && args+=(--allow-run-as-root)
exec timeout --kill-after=10 600 mpirun "${args[@]}" "$@"
