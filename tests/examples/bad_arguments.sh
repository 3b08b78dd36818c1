#!/usr/bin/env bash
# Runs every example program on a table of bad arguments and bad files and
# checks the contract of docs/exit_codes.md:
#   - the exit code (0 success, 1 bad data or failed I/O, 2 usage error;
#     tfrecord_inspect: 1 corrupt file, 2 usage or unreadable file), never a
#     signal or a hang (every run is under `timeout`);
#   - an error is exactly one line on stderr, naming the option or the file,
#     with the program name at most once;
#   - no output folder is left behind: every run happens in an empty working
#     folder that must still be empty afterwards (the default --out folders
#     land there), and failed runs with an explicit --out are checked too.
# Every input is generated (make_example_inputs and the shell), so nothing of
# ../shared is needed and the test never skips for lack of data.
#
#   bad_arguments.sh MAKE_EXAMPLE_INPUTS PROGRAM...   (meson passes the built executables)
set -u

if [[ $# -lt 2 ]]; then
  echo "usage: $0 MAKE_EXAMPLE_INPUTS PROGRAM..." >&2
  exit 2
fi
# meson gives paths relative to the build folder; every run happens elsewhere.
make_inputs=$(readlink -f "$1")
shift
declare -A program
for path in "$@"; do program[$(basename "$path")]=$(readlink -f "$path"); done
for name in tfrecord_inspect flowers_dense flowers_transfer flowers_evaluate flowers_predict imagenet_classify \
  flowers_from_scratch; do
  if [[ -z ${program[$name]:-} ]]; then
    echo "FAIL: $name was not passed to $0" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/petal_bad_arguments.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
in=$tmp/in      # inputs
work=$tmp/work  # the working folder of every run: must stay empty
mkdir -p "$in" "$work"

if ! "$make_inputs" "$in" >"$tmp/make_inputs.log" 2>&1; then
  echo "FAIL: $make_inputs could not write the inputs:" >&2
  cat "$tmp/make_inputs.log" >&2
  exit 1
fi

# ---- bad files ----
printf 'not a model\n' >"$in/file.txt"
: >"$in/empty.tfrec"
: >"$in/empty.bin"
LC_ALL=C awk 'BEGIN { srand(17); for (i = 0; i < 4096; ++i) printf "%c", int(rand() * 255) + 1 }' >"$in/random.bin"
cp "$in/random.bin" "$in/random.tfrec"
head -c 40 "$in/good.tfrec" >"$in/truncated.tfrec"  # ends inside the first record
head -c 5 "$in/good.tfrec" >"$in/short.tfrec"       # not even a record header
mkfifo "$in/fifo.tfrec"
mkdir "$in/dir.tfrec"
head -c $(($(wc -c <"$in/photo.png") / 2)) "$in/photo.png" >"$in/truncated.png"
head -c $(($(wc -c <"$in/photo.jpg") / 2)) "$in/photo.jpg" >"$in/truncated.jpg"
# Weights without imagenet_labels.txt beside them.
mkdir "$in/nolabels"
cp "$in/mobilenet.safetensors" "$in/nolabels/"

# Flowers folders (the first 3 shards validate): good ones, and ones whose
# first training shard is bad.
make_flowers() {  # NAME SHARD_OF_THE_4TH_PLACE (a path, or "-" for none)
  local dir=$in/flowers_$1
  mkdir "$dir"
  for i in 0 1 2; do cp "$in/good.tfrec" "$dir/flowers0$i.tfrec"; done
  case $2 in
    -) ;;
    fifo) mkfifo "$dir/flowers03.tfrec" ;;
    dir) mkdir "$dir/flowers03.tfrec" ;;
    *) cp "$in/$2" "$dir/flowers03.tfrec" ;;
  esac
}
make_flowers good good.tfrec
make_flowers few -
for bad in empty truncated short random not_example no_image bad_class bad_jpeg; do
  make_flowers "$bad" "$bad.tfrec"
done
make_flowers fifo fifo
make_flowers dir dir
mkdir "$in/flowers_none"

# ---- the checks ----
failures=0
cases=0
skipped=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect CODE PATTERN PROGRAM ARG...: runs PROGRAM ARG... in $work; checks
# the exit code, and for an error one stderr line containing PATTERN.
expect() {
  local want=$1 pattern=$2 name=$3
  shift 3
  cases=$((cases + 1))
  local what="$name $*"
  (cd "$work" && exec timeout -k 5 120 "${program[$name]}" "$@") >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
  local code=$?
  if [[ $code -eq 124 || $code -eq 137 ]]; then
    fail "$what: hung (killed by timeout)"
  elif [[ $code -ge 128 ]]; then
    fail "$what: killed by signal $((code - 128)): $(tail -n 3 "$tmp/stderr")"
  elif [[ $code -ne $want ]]; then
    fail "$what: exit $code, expected $want; stderr: $(head -c 400 "$tmp/stderr")"
  elif [[ $want -ne 0 ]]; then
    local lines
    lines=$(wc -l <"$tmp/stderr")
    if [[ $lines -ne 1 ]]; then
      fail "$what: $lines stderr lines, expected 1: $(head -c 600 "$tmp/stderr")"
    elif ! grep -qF -- "$pattern" "$tmp/stderr"; then
      fail "$what: stderr does not name '$pattern': $(cat "$tmp/stderr")"
    elif [[ $(grep -o -- "$name:" "$tmp/stderr" | wc -l) -gt 1 ]]; then
      fail "$what: the program name repeats: $(cat "$tmp/stderr")"
    fi
  fi
  if [[ -n $(ls -A "$work") ]]; then
    fail "$what: left behind in the working folder: $(ls -A "$work")"
    chmod -R u+w "$work" 2>/dev/null
    rm -rf "${work:?}"/* "${work:?}"/.[!.]*
  fi
}

absent() {  # PATH CASE: a failed run must not leave PATH
  if [[ -e $1 ]]; then
    fail "$2: left $1 behind"
    rm -rf "$1"
  fi
}

# -- usage errors (2) and --help (0), every program --
for name in tfrecord_inspect flowers_dense flowers_transfer flowers_evaluate flowers_predict imagenet_classify \
  flowers_from_scratch; do
  expect 0 "" "$name" --help
  [[ -s $tmp/stdout ]] || fail "$name --help: no usage on stdout"
  expect 2 "--bogus" "$name" --bogus
done
expect 2 "no input" tfrecord_inspect

train_flags=(--data "$in/flowers_good" --weights "$in/mobilenet.safetensors")
for name in flowers_dense flowers_transfer flowers_from_scratch; do
  flags=(--data "$in/flowers_good")
  [[ $name == flowers_transfer ]] && flags=("${train_flags[@]}")
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs
  expect 2 "--out" "$name" "${flags[@]}" --out --epochs 1
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs abc
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs 4294967297
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs 99999999999999999999
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs -1
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs 0
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs 1.5
  # The --flag=value form goes through the same checks.
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs=
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs=abc
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs=0
  expect 2 "--bogus" "$name" "${flags[@]}" --bogus=1
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs " 3"
  expect 2 "--epochs" "$name" "${flags[@]}" --epochs ""
  expect 2 "--batch" "$name" "${flags[@]}" --batch 0
  expect 2 "--batch" "$name" "${flags[@]}" --batch 4294967297
  expect 2 "--lr" "$name" "${flags[@]}" --lr 1e999
  expect 2 "--lr" "$name" "${flags[@]}" --lr nan
  expect 2 "--lr" "$name" "${flags[@]}" --lr inf
  expect 2 "--lr" "$name" "${flags[@]}" --lr 0
  expect 2 "--lr" "$name" "${flags[@]}" --lr -0.1
  expect 2 "--lr" "$name" "${flags[@]}" --lr 0.1x
  expect 2 "--seed" "$name" "${flags[@]}" --seed -1
  expect 2 "--seed" "$name" "${flags[@]}" --seed 18446744073709551616
  expect 2 "--device" "$name" "${flags[@]}" --device bogus
  expect 2 "extra" "$name" "${flags[@]}" extra
  expect 2 "--out" "$name" "${flags[@]}" --out ""
  expect 2 "--tensorboard" "$name" "${flags[@]}" --tensorboard
  expect 2 "--tensorboard" "$name" "${flags[@]}" --tensorboard ""
  expect 2 "--tensorboard" "$name" "${flags[@]}" --tensorboard=
done
expect 2 "--fine-tune-epochs" flowers_transfer "${train_flags[@]}" --fine-tune --fine-tune-epochs 4294967297
expect 2 "--fine-tune-lr" flowers_transfer "${train_flags[@]}" --fine-tune --fine-tune-lr 1e999
expect 2 "--head" flowers_transfer "${train_flags[@]}" --head dense
expect 2 "--preprocess" flowers_transfer "${train_flags[@]}" --preprocess imagenet
for size in 31 193 4294967297 abc ""; do
  expect 2 "--size" flowers_from_scratch --data "$in/flowers_good" --size "$size"
done
for steps in 0 -1 abc; do
  expect 2 "--steps-per-epoch" flowers_from_scratch --data "$in/flowers_good" --steps-per-epoch "$steps"
done
expect 2 "--sync-batch-norm needs --distributed" flowers_from_scratch --data "$in/flowers_good" --sync-batch-norm

expect 2 "--model" flowers_evaluate
expect 2 "--files" flowers_evaluate --model "$in/model.safetensors"
expect 2 "--model" flowers_evaluate --files "$in/good.tfrec" --model
expect 2 "extra" flowers_evaluate --model "$in/model.safetensors" --files "$in/good.tfrec" extra
expect 2 "--device" flowers_evaluate --model "$in/model.safetensors" --files "$in/good.tfrec" --device cuda:x
for batch in 0 -1 abc 1.5 4294967297 ""; do
  expect 2 "--batch" flowers_evaluate --model "$in/model.safetensors" --files "$in/good.tfrec" --batch "$batch"
done
expect 2 "--batch" flowers_evaluate --model "$in/model.safetensors" --files "$in/good.tfrec" --batch=0
expect 2 "--batch" flowers_evaluate --model "$in/model.safetensors" --files "$in/good.tfrec" --batch
expect 2 "--model" flowers_predict "$in/photo.png"
expect 2 "no image" flowers_predict --model "$in/model.safetensors"
# --top K: K in [1, the model's classes] (5 here).
for top in 0 -1 6 abc 2.5 4294967297 ""; do
  expect 2 "--top" flowers_predict --model "$in/model.safetensors" --top "$top" "$in/photo.png"
done
expect 2 "--top" flowers_predict --model "$in/model.safetensors" --top=6 "$in/photo.png"
expect 2 "--device" flowers_predict --model "$in/model.safetensors" --device npu "$in/photo.png"
expect 2 "--device" flowers_predict --model "$in/model.safetensors" --device "" "$in/photo.png"
expect 2 "no image" imagenet_classify --weights "$in/mobilenet.safetensors"
for size in 31 4097 4294967297 -224 abc 1e999 ""; do
  expect 2 "--size" imagenet_classify --weights "$in/mobilenet.safetensors" --size "$size" "$in/photo.png"
done
expect 2 "--device" imagenet_classify --weights "$in/mobilenet.safetensors" --device npu "$in/photo.png"

# -- tfrecord_inspect: 0 sound, 1 corrupt, 2 unreadable --
expect 0 "" tfrecord_inspect "$in/good.tfrec" "$in/empty.tfrec"
expect 2 "fifo.tfrec" tfrecord_inspect "$in/fifo.tfrec"
expect 2 "dir.tfrec" tfrecord_inspect "$in/dir.tfrec"
expect 2 "missing.tfrec" tfrecord_inspect "$in/missing.tfrec"
for bad in truncated short random; do expect 1 "$bad.tfrec" tfrecord_inspect "$in/$bad.tfrec"; done
expect 1 "not_example.tfrec: record 1" tfrecord_inspect "$in/not_example.tfrec"

# -- flowers_evaluate --
model=(--model "$in/model.safetensors")
expect 0 "" flowers_evaluate "${model[@]}" --files "$in/good.tfrec"
expect 1 "fifo.tfrec" flowers_evaluate "${model[@]}" --files "$in/fifo.tfrec"
expect 1 "dir.tfrec" flowers_evaluate "${model[@]}" --files "$in/dir.tfrec"
expect 1 "missing" flowers_evaluate "${model[@]}" --files "$in/missing*.tfrec"
expect 1 "empty.tfrec" flowers_evaluate "${model[@]}" --files "$in/empty.tfrec"
for bad in truncated short random; do expect 1 "$bad.tfrec" flowers_evaluate "${model[@]}" --files "$in/$bad.tfrec"; done
for bad in not_example no_image bad_class; do
  expect 1 "$bad.tfrec: record 1" flowers_evaluate "${model[@]}" --files "$in/$bad.tfrec"
done
expect 1 "bad_jpeg.tfrec: record 0" flowers_evaluate "${model[@]}" --files "$in/bad_jpeg.tfrec"
for bad in random.bin empty.bin fifo.tfrec dir.tfrec missing.safetensors mobilenet.safetensors; do
  expect 1 "$bad" flowers_evaluate --model "$in/$bad" --files "$in/good.tfrec"
done

# -- flowers_predict --
expect 0 "" flowers_predict "${model[@]}" "$in/photo.png" "$in/photo.jpg"
for bad in random.bin empty.bin fifo.tfrec dir.tfrec missing.safetensors mobilenet.safetensors; do
  expect 1 "$bad" flowers_predict --model "$in/$bad" "$in/photo.png"
done
for bad in random.bin empty.bin fifo.tfrec dir.tfrec missing.png truncated.png truncated.jpg; do
  expect 1 "$bad" flowers_predict "${model[@]}" "$in/$bad"
done

# -- imagenet_classify --
weights=(--weights "$in/mobilenet.safetensors" --size 32)
expect 0 "" imagenet_classify "${weights[@]}" "$in/photo.png" "$in/photo.jpg"
for bad in random.bin empty.bin fifo.tfrec dir.tfrec missing.safetensors model.safetensors; do
  expect 1 "$bad" imagenet_classify --weights "$in/$bad" --size 32 "$in/photo.png"
done
expect 1 "imagenet_labels.txt" imagenet_classify --weights "$in/nolabels/mobilenet.safetensors" --size 32 "$in/photo.png"
for bad in random.bin empty.bin fifo.tfrec dir.tfrec missing.png truncated.png truncated.jpg; do
  expect 1 "$bad" imagenet_classify "${weights[@]}" "$in/$bad"
done

# -- flowers_transfer and flowers_dense: bad data, bad weights --
for bad in none few fifo dir empty truncated short random; do
  expect 1 "flowers_$bad" flowers_dense --data "$in/flowers_$bad" --epochs 1
  expect 1 "flowers_$bad" flowers_transfer --data "$in/flowers_$bad" --weights "$in/mobilenet.safetensors" --epochs 1
  expect 1 "flowers_$bad" flowers_from_scratch --data "$in/flowers_$bad" --epochs 1
done
expect 1 "missing" flowers_dense --data "$in/missing" --epochs 1
expect 1 "missing" flowers_from_scratch --data "$in/missing" --epochs 1
expect 1 "missing" flowers_transfer --data "$in/missing" --weights "$in/mobilenet.safetensors" --epochs 1
for bad in not_example no_image bad_class; do
  expect 1 "flowers03.tfrec: record 1" flowers_from_scratch --data "$in/flowers_$bad" --epochs 1
  expect 1 "flowers03.tfrec: record 1" flowers_transfer --data "$in/flowers_$bad" \
    --weights "$in/mobilenet.safetensors" --epochs 1
done
expect 1 "flowers03.tfrec: record 0" flowers_from_scratch --data "$in/flowers_bad_jpeg" --epochs 1
expect 1 "flowers03.tfrec: record 0" flowers_transfer --data "$in/flowers_bad_jpeg" \
  --weights "$in/mobilenet.safetensors" --epochs 1
# (model.safetensors holds a MobileNetV2 base under the same names: valid weights.)
for bad in random.bin empty.bin fifo.tfrec dir.tfrec missing.safetensors; do
  expect 1 "$bad" flowers_transfer --data "$in/flowers_good" --weights "$in/$bad" --epochs 1
done

# -- --out: checked before any work, nothing left behind --
mkdir "$tmp/ro"
for name in flowers_dense flowers_transfer flowers_from_scratch; do
  flags=(--data "$in/flowers_good" --epochs 1)
  [[ $name == flowers_transfer ]] && flags+=(--weights "$in/mobilenet.safetensors")
  expect 1 "--out" "$name" "${flags[@]}" --out "$in/file.txt"
  [[ $(cat "$in/file.txt") == "not a model" ]] || fail "$name: --out FILE changed the file"
  expect 1 "--out" "$name" "${flags[@]}" --out "$in/file.txt/out"
  expect 1 "--out" "$name" "${flags[@]}" --out "$in/file.txt/a/b"
  expect 1 "--out" "$name" "${flags[@]}" --out /proc/petal_bad_arguments_out
  # --tensorboard DIR is checked like --out, before any work.
  expect 1 "--tensorboard" "$name" "${flags[@]}" --tensorboard "$in/file.txt"
  expect 1 "--tensorboard" "$name" "${flags[@]}" --tensorboard "$in/file.txt/logs"
  expect 1 "--tensorboard" "$name" "${flags[@]}" --tensorboard /proc/petal_bad_arguments_logs
  # Failures after --out was created: the folders this run made go away...
  weights_flag=()
  [[ $name == flowers_transfer ]] && weights_flag=(--weights "$in/mobilenet.safetensors")
  expect 1 "flowers_random" "$name" --data "$in/flowers_random" --epochs 1 "${weights_flag[@]}" \
    --out "$tmp/new/deeper/out"
  absent "$tmp/new" "$name with a bad shard"
  # ...but an existing folder and what it holds stay.
  mkdir -p "$tmp/existing"
  echo keep >"$tmp/existing/mine.txt"
  expect 1 "flowers_random" "$name" --data "$in/flowers_random" --epochs 1 "${weights_flag[@]}" --out "$tmp/existing"
  [[ $(cat "$tmp/existing/mine.txt" 2>/dev/null) == keep ]] || fail "$name: a failed run removed a file it did not write"
  if [[ $(id -u) -ne 0 ]]; then
    chmod 555 "$tmp/ro"
    expect 1 "--out" "$name" "${flags[@]}" --out "$tmp/ro/out"
    expect 1 "--out" "$name" "${flags[@]}" --out "$tmp/ro"
    chmod 755 "$tmp/ro"
  else
    skipped=$((skipped + 2))  # root writes into read-only folders; /proc stands in above
  fi
done
# A failure after the model is loaded (a class out of range in the data).
expect 1 "record 1" flowers_transfer --data "$in/flowers_bad_class" --weights "$in/mobilenet.safetensors" --epochs 1 \
  --out "$tmp/sub/out"
absent "$tmp/sub" "flowers_transfer with a bad class"

# -- fewer training images than a batch: named, not "no batch in epoch 1" --
expect 1 "flowers_good" flowers_dense --data "$in/flowers_good" --epochs 1
expect 1 "flowers_good" flowers_transfer --data "$in/flowers_good" --weights "$in/mobilenet.safetensors" --epochs 1
expect 1 "flowers_good" flowers_from_scratch --data "$in/flowers_good" --epochs 1

# -- the good path still works: outputs kept, no probe or temporary file left in --out --
# (flowers_dense is left out: its 55M-parameter model takes about 1 GB.)
expect 0 "" flowers_transfer --data "$in/flowers_good" --weights "$in/mobilenet.safetensors" --epochs 1 --batch 2 \
  --out "$tmp/trained" --tensorboard "$tmp/trained/logs"
for f in results.json model.safetensors curves.svg predictions.png; do
  [[ -s $tmp/trained/$f ]] || fail "flowers_transfer: no $f in --out"
done
# TensorBoard's layout, and the configuration in results.json.
for sub in train validation; do
  compgen -G "$tmp/trained/logs/$sub/events.out.tfevents.*" >/dev/null ||
    fail "flowers_transfer --tensorboard: no events.out.tfevents.* in logs/$sub"
done
for key in epochs batch learning_rate optimizer head seed petal_version git_commit machine; do
  grep -q "\"$key\": " "$tmp/trained/results.json" || fail "flowers_transfer: no \"$key\" in results.json"
done
leftovers=$(ls -A "$tmp/trained" | grep -E '^\.write-probe|\.tmp') &&
  fail "flowers_transfer left a probe or temporary file in --out: $leftovers"
expect 0 "" flowers_evaluate --model "$tmp/trained/model.safetensors" --files "$in/good.tfrec"
expect 0 "" flowers_evaluate --model "$tmp/trained/model.safetensors" --files "$in/good.tfrec" --batch 3
expect 0 "" flowers_predict --model "$tmp/trained/model.safetensors" --top 3 "$in/photo.png" "$in/photo.jpg"
[[ $(grep -c '^  [1-3]\. ' "$tmp/stdout") -eq 6 ]] ||
  fail "flowers_predict --top 3: expected 3 ranked lines per image: $(head -c 400 "$tmp/stdout")"
expect 0 "" flowers_predict --model "$tmp/trained/model.safetensors" --top 5 --json "$in/photo.png"
[[ $(grep -o '"prob"' "$tmp/stdout" | wc -l) -eq 6 ]] ||
  fail "flowers_predict --top 5 --json: expected the best class and 5 ranked ones: $(head -c 400 "$tmp/stdout")"
expect 0 "" flowers_from_scratch --data "$in/flowers_good" --epochs 1 --batch 2 --size 32 --out "$tmp/scratch" \
  --tensorboard "$tmp/scratch_logs"
for f in results.json model.safetensors curves.svg predictions.png; do
  [[ -s $tmp/scratch/$f ]] || fail "flowers_from_scratch: no $f in --out"
done
compgen -G "$tmp/scratch_logs/train/events.out.tfevents.*" >/dev/null ||
  fail "flowers_from_scratch --tensorboard: no events.out.tfevents.* in train/"
for key in epochs batch learning_rate optimizer seed petal_version git_commit machine; do
  grep -q "\"$key\": " "$tmp/scratch/results.json" || fail "flowers_from_scratch: no \"$key\" in results.json"
done

# -- out of memory: a clean exit 1, not an abort --
# AddressSanitizer reserves terabytes of address space: no ulimit -v under it.
# At 4096x4096 inference peaks near 1.5 GB (the stem's and first block's
# outputs; the inverted-residual blocks never hold their expanded tensors),
# so 1 GB of address space runs out.
if ldd "${program[imagenet_classify]}" 2>/dev/null | grep -q libasan; then
  skipped=$((skipped + 1))
else
  cases=$((cases + 1))
  (cd "$work" && ulimit -v 1000000 && exec timeout -k 5 120 "${program[imagenet_classify]}" \
    --weights "$in/mobilenet.safetensors" --size 4096 "$in/photo.png") >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
  code=$?
  if [[ $code -ne 1 || $(wc -l <"$tmp/stderr") -ne 1 ]]; then
    fail "imagenet_classify --size 4096 under ulimit -v 1000000: exit $code, stderr: $(head -c 400 "$tmp/stderr")"
  fi
fi

echo "$cases cases, $failures failed, $skipped skipped (uid $(id -u))"
[[ $failures -eq 0 ]]
