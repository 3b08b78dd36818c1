#!/usr/bin/env bash
# Configures (first time only) and builds petal in a build folder.
#
#   scripts/build.sh [-Dmeson_option=value...] [ninja targets...]
#
# With no targets it builds everything (library, examples, benchmarks, tests).
# PETAL_BUILD_DIR picks the folder (default: build); PETAL_JOBS the number of
# parallel compile jobs (default: the number of cores). New folders are set
# up with -Dcuda=auto (nvcc where a machine has one); -Dcuda=disabled skips it.
# PETAL_MESON_OPTIONS adds options to a new folder's setup (space-separated,
# e.g. "-Dcuda=disabled -Dbenchmarks=false"), for scripts that call this one.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${PETAL_BUILD_DIR:-build}"
jobs="${PETAL_JOBS:-$(nproc)}"
read -r -a setup_options <<< "${PETAL_MESON_OPTIONS:-}"
meson_options=()
targets=()
for arg in "$@"; do
  case "$arg" in
    -D*) meson_options+=("$arg") ;;
    *) targets+=("$arg") ;;
  esac
done

if [[ ! -f "$build_dir/build.ninja" ]]; then
  meson setup "$build_dir" -Dcuda=auto "${setup_options[@]}" "${meson_options[@]}"
elif [[ ${#meson_options[@]} -gt 0 ]]; then
  meson configure "$build_dir" "${meson_options[@]}"
fi
ninja -C "$build_dir" -j "$jobs" "${targets[@]}"
