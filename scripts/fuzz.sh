#!/usr/bin/env bash
# Builds and runs petal's libFuzzer targets (tests/fuzz/README.md).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]    run each target SECONDS (default 30)
#   scripts/fuzz.sh --list                     the targets `all` runs
#   scripts/fuzz.sh --build                    configure and build only
#   scripts/fuzz.sh --make-corpus              regenerate tests/fuzz/corpus
#   scripts/fuzz.sh --help
#
# The first run configures build-fuzz (clang, -Dfuzz=true, ASan + UBSan, -O1,
# CPU only, kernels for AVX2 and scalar); every run rebuilds it with ninja.
# Each target fuzzes a copy of its seed corpus (tests/fuzz/corpus/TARGET, new
# inputs land in build-fuzz/corpus/TARGET) with its dictionary, -timeout=10
# and -rss_limit_mb=2048; crash, leak, timeout and out-of-memory inputs go to
# build-fuzz/artifacts/TARGET/. The script stops at the first failing target
# and exits 1 naming it and its artifact.
#
# Environment: PETAL_FUZZ_BUILD_DIR (default build-fuzz), PETAL_JOBS (ninja -j,
# default nproc), PETAL_FUZZ_JOBS (parallel libFuzzer workers per target,
# default 1), PETAL_FUZZ_ARGS (extra libFuzzer flags), PETAL_FUZZ_KNOWN_BUGS
# (open bugs to step around, tests/fuzz/README.md), CC/CXX (default clang).
# Exit status: 0 all passed, 1 a target failed, 2 usage error, 3 no clang
# (nothing run), 4 the build failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# `all` is an explicit list: targets that fuzz third-party code known to hang
# (an HDF5 target, once it exists) run only when named.
all_targets=(tfrecord example protobuf_wire jpeg png image_ops safetensors json checkpoint)
named_only_targets=(keras_h5)

build_dir="${PETAL_FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${PETAL_JOBS:-$(nproc)}"
workers="${PETAL_FUZZ_JOBS:-1}"

usage() { sed -n '2,25p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

declare -A dicts=([json]=json [safetensors]=safetensors [checkpoint]=safetensors [png]=png [jpeg]=jpeg)

case "${1:-all}" in
  -h|--help) usage; exit 0 ;;
  --list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
esac

cc="${CC:-clang}"
cxx="${CXX:-clang++}"
if ! command -v "$cxx" >/dev/null || ! "$cxx" --version 2>/dev/null | grep -q clang; then
  echo "fuzz.sh: clang++ not found (libFuzzer needs clang): skipping" >&2
  exit 3
fi

build() {
  if [[ ! -f "$build_dir/build.ninja" ]]; then
    # Kernels for AVX2 and scalar only: the targets fuzz readers, not kernels
    # (the sanitizer test suite covers those), and clang takes minutes over
    # the AVX-512 ones.
    CC="$cc" CXX="$cxx" meson setup "$build_dir" -Dfuzz=true -Dsanitize_address_undefined=true \
      -Dcuda=disabled -Dmpi=disabled -Dbenchmarks=false -Db_lundef=false -Doptimization=1 \
      -Dkernel_isas=avx2 >/dev/null || return 1
  fi
  ninja -C "$build_dir" -j "$jobs" fuzz "$@" >/dev/null || {
    ninja -C "$build_dir" -j 1 fuzz 2>&1 | tail -40 >&2  # show the error
    return 1
  }
}

if [[ "${1:-}" == "--build" ]]; then
  build || { echo "fuzz.sh: build of $build_dir failed" >&2; exit 4; }
  exit 0
fi
if [[ "${1:-}" == "--make-corpus" ]]; then
  build tests/fuzz/fuzz_make_corpus || { echo "fuzz.sh: build failed" >&2; exit 4; }
  shard="$(ls ../shared/data/flowers-192/*.tfrec 2>/dev/null | head -1 || true)"
  "$build_dir/tests/fuzz/fuzz_make_corpus" tests/fuzz/corpus $shard
  exit 0
fi

what="${1:-all}"
seconds="${2:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
if [[ "$what" == all ]]; then
  targets=("${all_targets[@]}")
else
  known=" ${all_targets[*]} ${named_only_targets[*]} "
  if [[ "$known" != *" $what "* ]]; then
    echo "fuzz.sh: unknown target '$what' (targets: ${all_targets[*]} ${named_only_targets[*]})" >&2
    exit 2
  fi
  targets=("$what")
fi

build || { echo "fuzz.sh: build of $build_dir failed" >&2; exit 4; }

# halt_on_error: the first report is the artifact. allocator_may_return_null=0
# (the default) makes a huge allocation a report, not a caught bad_alloc.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:symbolize=1}"
# Leaks inside libhdf5 itself (corrupt files) are its own; petal's frames are never suppressed.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan_libhdf5.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export PETAL_NUM_THREADS=1

for t in "${targets[@]}"; do
  exe="$build_dir/tests/fuzz/fuzz_$t"
  corpus="$build_dir/corpus/$t"
  artifacts="$build_dir/artifacts/$t"
  log="$build_dir/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # A copy of the seeds: what the fuzzer adds stays in the build folder.
  if [[ -d "tests/fuzz/corpus/$t" ]]; then cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true; fi
  args=(-timeout=10 -rss_limit_mb=2048 -max_total_time="$seconds" -print_final_stats=1
        -artifact_prefix="$artifacts/")
  if [[ -n "${dicts[$t]:-}" ]]; then args+=(-dict="tests/fuzz/dict/${dicts[$t]}.dict"); fi
  if (( workers > 1 )); then args+=(-fork="$workers"); fi
  # shellcheck disable=SC2206
  extra=(${PETAL_FUZZ_ARGS:-})
  status=0
  started=$SECONDS
  # libhdf5 mallocs what corrupt metadata claims and reports an error when
  # malloc returns null (tests/fuzz/crashers/keras_h5): let it, for that target.
  target_asan="$ASAN_OPTIONS"
  [[ "$t" == keras_h5 && "$target_asan" != *allocator_may_return_null* ]] && target_asan+=":allocator_may_return_null=1"
  ASAN_OPTIONS="$target_asan" "$exe" "${args[@]}" "${extra[@]}" "$corpus" >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  if (( status != 0 )); then
    artifact=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //' || true)
    [[ -n "$artifact" ]] || artifact=$(ls -t "$artifacts" 2>/dev/null | head -1 | sed "s|^|$artifacts/|")
    echo "FAIL $t: exit $status; artifact: ${artifact:-none}; log: $log" >&2
    grep -E "^==[0-9]+==ERROR|^SUMMARY|==petal-fuzz==|runtime error|^==[0-9]+== ERROR" "$log" | head -5 >&2 || true
    echo "reproduce: $exe ${artifact:-ARTIFACT}" >&2
    exit 1
  fi
  # Elapsed, not SECONDS: PETAL_FUZZ_ARGS=-runs=N can end a run sooner.
  echo "ok   $t: ${runs:-?} runs in $((SECONDS - started)) s (${rate:-?}/s), corpus $(ls "$corpus" | wc -l) files"
done
