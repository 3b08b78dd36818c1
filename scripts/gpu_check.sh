#!/usr/bin/env bash
# The GPU check of issue 7 in one command, for a machine with nvcc, meson and
# ninja but without apt or network: run scripts/prepare_gpu_carry.sh on a
# machine that has them, send the working tree with .carry/, then here
#
#   scripts/gpu_check.sh
#
# builds petal with -Dcuda=enabled (one architecture, -Dgpu_archs=90 unless
# PETAL_GPU_ARCHS says otherwise) against the carried xsimd, doctest and
# libturbojpeg, and runs, each with a time limit, all within 8 minutes:
#   1. the GPU tests (meson test --suite cuda) and nn's device tests
#   2. bench/gemm --device cuda            petal matmul vs cublasSgemm
#   3. bench/mobilenet --device cuda --batch 64,256
#                                          inference and fine-tuning images/s vs the
#                                          PyTorch with CUDA found on this machine
#   4. flowers_transfer --device cuda      on the carried shards (3 validation + 1 training),
#                                          frozen epochs from the cache, then fine-tuning
# Logs (one per step), summary.txt and results.json go to ./gpu-logs
# (PETAL_GPU_LOGS). When $OUT is set (the device tool, which brings back at
# most 8 files) only summary.txt, environment.log, bench.jsonl,
# flowers_transfer_results.json and logs.tgz (every log, without the
# weights files) are copied there, on every exit. NCCL comes from the CUDA
# toolkit or, where it has none, from PyPI's nvidia-nccl-cu13 wheel of a
# python3 here (-Dnccl_root); with a GPU, NCCL not built is a failure.
# Without a GPU the build and the tests still run (the GPU
# tests report "skipped") and the GPU steps are listed as skipped: the script
# does not fail because no GPU exists. It exits 1 when a step failed.
#
# Options:
#   --dry-run      print the steps and the environment, run nothing
#   --skip-build   use the existing build folder as it is
#   --quick        fewer epochs and repeats (a smoke run)
#   -h, --help     this text
# Environment: PETAL_CARRY_DIR (default <project>/.carry), PETAL_BUILD_DIR
# (default <project>/build-gpu), PETAL_GPU_ARCHS (default 90), PETAL_JOBS,
# PETAL_GPU_CHECK_SECONDS (overall budget, default 480).
set -uo pipefail

project_root="$(cd "$(dirname "$0")/.." && pwd)"
carry="${PETAL_CARRY_DIR:-$project_root/.carry}"
build="${PETAL_BUILD_DIR:-$project_root/build-gpu}"
archs="${PETAL_GPU_ARCHS:-90}"
jobs="${PETAL_JOBS:-$(nproc 2>/dev/null || echo 4)}"
budget="${PETAL_GPU_CHECK_SECONDS:-480}"
logs="${PETAL_GPU_LOGS:-$project_root/gpu-logs}"
dry_run=0
skip_build=0
quick=0

usage() { sed -n '2,33s/^# \{0,1\}//p' "$0"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --skip-build) skip_build=1 ;;
    --quick) quick=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start_time=$(date +%s)
mkdir -p "$logs"
summary="$logs/summary.txt"
: > "$summary"
# What the device tool brings back: a few files, whatever ends the script.
export_results() {
  [[ -n "${OUT:-}" && $dry_run -eq 0 ]] || return 0
  mkdir -p "$OUT"
  local f
  for f in summary.txt environment.log bench.jsonl flowers_transfer_results.json; do
    [[ -f "$logs/$f" ]] && cp "$logs/$f" "$OUT/"
  done
  tar czf "$OUT/logs.tgz" -C "$logs" --exclude='*.h5' --exclude='*.safetensors' --exclude='*.onnx' . 2>/dev/null || true
}
trap export_results EXIT
failures=0

say() { echo "gpu_check: $*" | tee -a "$summary"; }
elapsed() { echo $(( $(date +%s) - start_time )); }

# ---- environment: the carried dependencies first ----
if [[ -d "$carry" ]]; then
  export PKG_CONFIG_PATH="$carry/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CPATH="$carry/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$carry/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  [[ -d "$carry/assets" ]] && export PETAL_ASSETS="$carry/assets"
fi
# pkg-config and libpng from the carry only when this machine has none.
if [[ -d "$carry/fallback" ]]; then
  if ! command -v pkg-config >/dev/null 2>&1; then
    export PATH="$PATH:$carry/fallback/bin"
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$carry/fallback/lib"
  fi
  if ! pkg-config --exists libpng 2>/dev/null; then
    export PKG_CONFIG_PATH="${PKG_CONFIG_PATH:-}:$carry/fallback/lib/pkgconfig"
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$carry/fallback/lib"
    export LIBRARY_PATH="${LIBRARY_PATH:-}:$carry/fallback/lib"
  fi
fi
[[ -d /usr/local/cuda/bin ]] && export PATH="/usr/local/cuda/bin:$PATH"
export PATH="$HOME/.local/bin:$PATH"

# A python3 whose torch sees a GPU (the PyTorch side of bench/mobilenet).
find_torch_python() {
  local p
  for p in python3 /usr/bin/python3 /usr/local/bin/python3 /opt/conda/bin/python3 python; do
    command -v "$p" >/dev/null 2>&1 || continue
    if "$p" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}

gpu_present() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '
}

# run_step NAME SECONDS COMMAND...: logs to $logs/NAME.log, records the outcome.
run_step() {
  local name="$1" limit="$2"
  shift 2
  local left=$(( budget - $(elapsed) ))
  if [[ $dry_run -eq 1 ]]; then
    say "[dry run] $name (limit ${limit}s): $*"
    return 0
  fi
  if (( left < 20 )); then
    say "SKIPPED $name: the ${budget}s budget is spent"
    return 0
  fi
  (( limit > left )) && limit=$left
  local t0=$(date +%s)
  echo "\$ $*" > "$logs/$name.log"
  timeout --kill-after=10 "$limit" "$@" >> "$logs/$name.log" 2>&1
  local rc=$?
  local seconds=$(( $(date +%s) - t0 ))
  if [[ $rc -eq 0 ]]; then
    say "ok      $name (${seconds}s)"
  elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
    say "TIMEOUT $name after ${seconds}s (limit ${limit}s); see $name.log"
    failures=$((failures + 1))
  else
    say "FAILED  $name (exit $rc, ${seconds}s); last lines of $name.log:"
    tail -n 15 "$logs/$name.log" | sed 's/^/    /' | tee -a "$summary"
    failures=$((failures + 1))
  fi
  return $rc
}

# ---- what this machine has ----
{
  echo "date: $(date -u)"
  echo "project: $project_root ($(cd "$project_root" && git log --oneline -1 2>/dev/null || echo 'no git'))"
  echo "carry: $carry $( [[ -d $carry ]] && echo present || echo MISSING)"
  echo "nvcc: $(command -v nvcc || echo none) $(nvcc --version 2>/dev/null | tail -1)"
  echo "meson: $(meson --version 2>/dev/null || echo none); ninja: $(ninja --version 2>/dev/null || echo none)"
  echo "pkg-config: $(command -v pkg-config || echo none)"
  for lib in libturbojpeg xsimd libpng; do
    echo "pkg-config $lib: $(pkg-config --modversion "$lib" 2>/dev/null || echo MISSING)"
  done
  echo "nvidia-smi: $(nvidia-smi -L 2>/dev/null || echo 'none')"
} > "$logs/environment.log" 2>&1
cat "$logs/environment.log"

have_gpu=0
gpu_present && have_gpu=1
python_torch="$(find_torch_python || true)"
say "GPU: $([[ $have_gpu -eq 1 ]] && nvidia-smi -L 2>/dev/null | head -1 || echo 'none: the GPU steps are skipped')"
say "PyTorch with CUDA: ${python_torch:-none (the benchmarks report reference null)}"
if [[ -n "$python_torch" ]]; then
  "$python_torch" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' >> "$logs/environment.log" 2>&1
  "$python_torch" -c 'import torchvision; print("torchvision", torchvision.__version__)' >> "$logs/environment.log" 2>&1 ||
    echo "torchvision: none (bench/mobilenet_torch.py uses its own MobileNetV2 definition)" >> "$logs/environment.log"
fi

# ---- NCCL: the toolkit's, else the nvidia-nccl-cu13 wheel's ----
nccl_root=""
nvcc_root="$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /nonexistent/bin/nvcc)")")"
if [[ ! -f "$nvcc_root/include/nccl.h" ]]; then
  for p in "$python_torch" python3 /usr/bin/python3; do
    [[ -n "$p" ]] && command -v "$p" >/dev/null 2>&1 || continue
    dir="$("$p" -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null || true)"
    if [[ -n "$dir" && -f "$dir/include/nccl.h" ]]; then
      nccl_root="$dir"
      break
    fi
  done
fi
nccl_options=()
[[ -n "$nccl_root" ]] && nccl_options=("-Dnccl_root=$nccl_root")
say "NCCL: $([[ -f "$nvcc_root/include/nccl.h" ]] && echo "the CUDA toolkit's ($nvcc_root)" || echo "${nccl_root:-none found (no nccl.h in $nvcc_root, no nvidia-nccl-cu13 wheel)}")"

# ---- build ----
if [[ $skip_build -eq 0 ]]; then
  if [[ -f "$build/build.ninja" ]]; then
    run_step configure 120 meson configure "$build" -Dcuda=enabled "-Dgpu_archs=$archs" -Dbuildtype=release \
      "${nccl_options[@]}"
  else
    run_step configure 120 meson setup "$build" -Dcuda=enabled "-Dgpu_archs=$archs" -Dbuildtype=release -Dhdf5=auto \
      "${nccl_options[@]}"
  fi || { say "configure failed: nothing else can run"; exit 1; }
  # Only what the check runs (the whole suite would double the build time).
  mapfile -t targets < <(ninja -C "$build" -t targets all 2>/dev/null | sed -n \
    -e 's/^\(tests\/cuda[a-z_]*\/test_[A-Za-z0-9_]*\): .*/\1/p' \
    -e 's/^\(tests\/test_nn_\(device\|optimizers\)\): .*/\1/p' \
    -e 's/^\(tests\/distributed\/test_distributed_data_parallel\): .*/\1/p' \
    -e 's/^\(bench\/\(gemm\|mobilenet\)\): .*/\1/p' \
    -e 's/^\(examples\/flowers_transfer\): .*/\1/p')
  [[ $dry_run -eq 1 ]] && targets=("<the GPU tests, nn_device, nn_optimizers, distributed, bench/gemm, bench/mobilenet, examples/flowers_transfer>")
  run_step build 300 ninja -C "$build" -j "$jobs" "${targets[@]}" || { say "build failed: nothing else can run"; exit 1; }
fi

# ---- tests ----
run_step test_gpu 150 meson test -C "$build" --no-rebuild --suite cuda --print-errorlogs --num-processes 1
run_step test_nn_device 60 meson test -C "$build" --no-rebuild nn_device nn_optimizers --print-errorlogs
# NCCL on one GPU: the process group's collectives of CUDA tensors (a group of one without a launcher).
# Without NCCL in the build that test case skips and the step would say ok.
if [[ $dry_run -eq 0 && $have_gpu -eq 1 ]] && ! find "$build" -name '*nccl_process_group.cu.o' -print -quit | grep -q .; then
  say "FAILED  nccl: not built (no nccl.h and libnccl found), so test_nccl below checks nothing"
  failures=$((failures + 1))
fi
run_step test_nccl 60 meson test -C "$build" --no-rebuild distributed_single_process --print-errorlogs

# ---- GPU runs ----
if [[ $have_gpu -eq 0 && $dry_run -eq 0 ]]; then
  say "SKIPPED gemm, mobilenet and flowers_transfer: no GPU on this machine"
else
  repeats=5
  [[ $quick -eq 1 ]] && repeats=2
  run_step bench_gemm 90 "$build/bench/gemm" --device cuda --json
  mobilenet_args=(--device cuda --batch 64,256 --repeats "$repeats" --json)
  [[ -n "$python_torch" ]] && mobilenet_args+=(--python "$python_torch") || mobilenet_args+=(--no-reference)
  run_step bench_mobilenet 180 "$build/bench/mobilenet" "${mobilenet_args[@]}"
  epochs=5
  [[ $quick -eq 1 ]] && epochs=2
  run_step flowers_transfer 150 "$build/examples/flowers_transfer" --device cuda --epochs "$epochs" \
    --fine-tune --fine-tune-epochs 2 --out "$logs/flowers_transfer"
  run_step flowers_transfer_no_cache 90 "$build/examples/flowers_transfer" --device cuda --epochs 1 --no-cache \
    --out "$logs/flowers_transfer_no_cache"
fi

# ---- results ----
if [[ $dry_run -eq 0 ]]; then
  {
    cat "$logs"/bench_gemm.log "$logs"/bench_mobilenet.log 2>/dev/null | grep '^{"bench"'
  } > "$logs/bench.jsonl" || true
  [[ -f "$logs/flowers_transfer/results.json" ]] && cp "$logs/flowers_transfer/results.json" "$logs/flowers_transfer_results.json"
fi
say "done in $(elapsed)s: $failures step(s) failed; logs in $logs"
[[ $failures -eq 0 ]]
