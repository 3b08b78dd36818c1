#!/usr/bin/env bash
# The main job, from a fresh checkout: installs the dependencies, fetches the
# assets, builds, and runs the most complete example that exists so far:
# flowers_transfer (MobileNetV2 transfer learning on the flowers), else
# flowers_dense, else the GEMM benchmark in its quick mode. Arguments go to
# that program (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
scripts/fetch_assets.sh --quiet
scripts/build.sh

build_dir="${PETAL_BUILD_DIR:-build}"
for program in examples/flowers_transfer examples/flowers_dense; do
  if [[ -x "$build_dir/$program" ]]; then
    echo "run_main.sh: running $build_dir/$program $*"
    exec "$build_dir/$program" "$@"
  fi
done
if [[ -x "$build_dir/bench/gemm" ]]; then
  echo "run_main.sh: no flowers example built yet; running $build_dir/bench/gemm --quick $*"
  exec "$build_dir/bench/gemm" --quick "$@"
fi
echo "run_main.sh: nothing to run yet (no flowers example, no gemm benchmark in $build_dir)" >&2
exit 1
