#!/usr/bin/env bash
# Installs the build dependencies plus the benchmark references: Debian's
# OpenBLAS, oneDNN, PyTorch and torchvision (the fallback references), python3-venv,
# then the git-ignored virtual environment .venv-bench with pinned PyPI
# versions of PyTorch, ONNX Runtime and TensorFlow (scripts/install_bench_venv.sh),
# which the benchmarks use when it exists. Benchmarks only: CI does not need
# these, and must never install PyPI's torch (about 3 GB of CUDA wheels).
#
#   scripts/install_bench_deps.sh            Debian packages + .venv-bench
#   scripts/install_bench_deps.sh --no-venv  Debian packages only
set -euo pipefail
here="$(dirname "$0")"
venv=1
deps_args=()
for arg in "$@"; do
  case "$arg" in
    --no-venv) venv=0 ;;
    *) deps_args+=("$arg") ;;
  esac
done
"$here/install_deps.sh" --bench "${deps_args[@]}"
if [[ $venv -eq 1 ]]; then
  exec "$here/install_bench_venv.sh"
fi
