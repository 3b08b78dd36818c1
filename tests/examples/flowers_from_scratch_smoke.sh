#!/usr/bin/env bash
# A few seconds of flowers_from_scratch on real shards: the first 4 of the
# shared flowers folder (3 validate, 1 trains), 64x64 inputs, 3 batches of 8.
# Checks that it runs, prints the functional model's summary with its Add and
# Concatenate layers and the "Connected to" column, and writes results.json
# in flowers_dense's schema, curves.svg, predictions.png and
# model.safetensors. Exit 77 (skipped) without the shared flowers shards.
#
#   flowers_from_scratch_smoke.sh PROGRAM   (meson passes the built executable)
set -u

if [[ $# -ne 1 ]]; then
  echo "usage: $0 FLOWERS_FROM_SCRATCH" >&2
  exit 2
fi
program=$(readlink -f "$1")
# As tests/shared_data.hpp: PETAL_SHARED_DIR, else ../shared beside the source tree.
shared=${PETAL_SHARED_DIR:-${PETAL_SOURCE_DIR:-.}/../shared}
flowers=$shared/data/flowers-192
mapfile -t shards < <(ls "$flowers"/*.tfrec 2>/dev/null | LC_ALL=C sort | head -n 4)
if [[ ${#shards[@]} -lt 4 ]]; then
  echo "SKIP: fewer than 4 flowers shards in $flowers (scripts/fetch_assets.sh, or set PETAL_SHARED_DIR)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/petal_scratch_smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/data"
for s in "${shards[@]}"; do ln -s "$(readlink -f "$s")" "$tmp/data/$(basename "$s")"; done

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

(cd "$tmp" && exec timeout -k 5 300 "$program" --data "$tmp/data" --epochs 1 --batch 8 --size 64 \
  --steps-per-epoch 3 --seed 5 --out "$tmp/out") >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
code=$?
if [[ $code -ne 0 ]]; then
  echo "FAIL: flowers_from_scratch exited $code" >&2
  tail -n 20 "$tmp/stdout" "$tmp/stderr" >&2
  exit 1
fi
tail -n 3 "$tmp/stdout"

# The summary: a functional model with skip connections and a merge of two stages.
grep -q "Connected to" "$tmp/stdout" || fail "the summary has no 'Connected to' column"
grep -qE "^ [a-z0-9_]+ \(Add\)" "$tmp/stdout" || fail "no Add layer in the summary"
grep -qE "^ [a-z0-9_]+ \(Concatenate\)" "$tmp/stdout" || fail "no Concatenate layer in the summary"
grep -qE "\(DepthwiseConv2D\)" "$tmp/stdout" || fail "no DepthwiseConv2D layer in the summary"
grep -q "Epoch 1/1" "$tmp/stdout" || fail "no progress line for epoch 1"

for f in results.json curves.svg predictions.png model.safetensors; do
  [[ -s $tmp/out/$f ]] || fail "no $f in --out"
done

# results.json: flowers_dense's schema (690 validation images, 5 classes).
if command -v python3 >/dev/null 2>&1; then
  python3 - "$tmp/out/results.json" <<'EOF' || fail "results.json does not follow the schema"
import json, sys
r = json.load(open(sys.argv[1]))
errors = []
for key in ("val_accuracy", "history", "images_per_second", "classes", "confusion_matrix"):
    if key not in r:
        errors.append("no " + key)
if not errors:
    if list(r)[:5] != ["val_accuracy", "history", "images_per_second", "classes", "confusion_matrix"]:
        errors.append("keys out of order: %s" % list(r)[:5])
    if not 0 <= r["val_accuracy"] <= 1:
        errors.append("val_accuracy %r" % r["val_accuracy"])
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if len(r["history"].get(k, [])) != 1:
            errors.append("history.%s is not one epoch long" % k)
    if r["history"].get("val_accuracy", [None])[-1] != r["val_accuracy"]:
        errors.append("val_accuracy is not the last epoch's")
    if r["classes"] != ["daisy", "dandelion", "roses", "sunflowers", "tulips"]:
        errors.append("classes %r" % r["classes"])
    m = r["confusion_matrix"]
    if len(m) != 5 or any(len(row) != 5 for row in m) or sum(map(sum, m)) != 690:
        errors.append("confusion_matrix is not 5x5 over the 690 validation images")
    if not r["images_per_second"] > 0:
        errors.append("images_per_second %r" % r["images_per_second"])
    if r.get("input_size") != 64:
        errors.append("input_size %r, expected 64" % r.get("input_size"))
for e in errors:
    print("results.json:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
else
  for key in val_accuracy history images_per_second classes confusion_matrix; do
    grep -q "\"$key\"" "$tmp/out/results.json" || fail "results.json has no $key"
  done
fi

[[ $failures -eq 0 ]] && echo "flowers_from_scratch smoke test: ok"
[[ $failures -eq 0 ]]
