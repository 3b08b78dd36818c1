#!/usr/bin/env bash
# The main job, from a fresh checkout: installs the dependencies, fetches the
# assets, builds, and runs the most complete program that exists so far:
# flowers_transfer (MobileNetV2 transfer learning on the flowers), else
# flowers_dense, else the GEMM benchmark in its quick mode. Arguments go to
# that program (try --help). Only that program and the library are built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -d ../shared/data/flowers-192 || -d assets/flowers-192 ]]; then
  scripts/install_deps.sh
else
  scripts/install_deps.sh --fetch  # curl, to download the flowers shards
fi
scripts/fetch_assets.sh --quiet

build_dir="${PETAL_BUILD_DIR:-build}"
for candidate in examples/flowers_transfer examples/flowers_dense bench/gemm; do
  if [[ -f "$candidate.cpp" ]]; then
    program=$candidate
    break
  fi
done
if [[ -z "${program:-}" ]]; then
  echo "run_main.sh: nothing to run yet (no flowers example, no gemm benchmark)" >&2
  exit 1
fi

scripts/build.sh "$program"
args=("$@")
[[ "$program" == bench/gemm ]] && args=(--quick "${args[@]}")
# Results go to the git-ignored out/ unless the caller chose a folder.
help_text="$("$build_dir/$program" --help 2>&1 || true)"
out_given=false
for arg in "${args[@]}"; do [[ "$arg" == --out || "$arg" == --out=* ]] && out_given=true; done
if [[ "$out_given" == false && "$help_text" == *"--out"* ]]; then
  args+=(--out "out/$(basename "$program")")
fi
echo "run_main.sh: $build_dir/$program ${args[*]}"
exec "$build_dir/$program" "${args[@]}"
