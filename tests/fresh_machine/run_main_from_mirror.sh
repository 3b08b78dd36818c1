#!/usr/bin/env bash
# The README's first command on a fresh machine: a clone of this repository
# with no ../shared beside it runs scripts/run_main.sh, which must install,
# download everything from the (mirrored) public URLs, build and train the
# flowers model end to end. The "public" files are generated (make_mirror)
# and served by python3 -m http.server on 127.0.0.1.
#
#   run_main_from_mirror.sh MAKE_MIRROR
#
# Exit 77 (skip) without python3 or git. The clone is of the committed HEAD.
# It builds with -Dcuda=disabled and trains 1 epoch on 4 small shards.
set -euo pipefail
make_mirror=$1
source_dir="${PETAL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3 for the mirror's HTTP server"; exit 77; }
command -v git >/dev/null 2>&1 || { echo "SKIP: no git to clone the project"; exit 77; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$make_mirror" "$work/mirror"
# The log exists before the server's shell opens it: polling it must not race that.
: > "$work/server.log"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/mirror" > "$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 100); do
  port="$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/server.log" | head -1)"
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "FAIL: the mirror's HTTP server did not start"; cat "$work/server.log"; exit 1; }
url="http://127.0.0.1:$port"

# A fresh clone: nothing of ../shared, assets/ or build/ comes along.
git clone --quiet --no-hardlinks "$source_dir" "$work/project/petal"
cd "$work/project/petal"
[[ ! -e ../shared ]] || { echo "FAIL: the clone has a ../shared beside it"; exit 1; }

export PETAL_FLOWERS_URL="$url/flowers"
export PETAL_KERAS_WEIGHTS_URL="$url/keras"
export PETAL_IMAGENET_INDEX_URL="$url/imagenet_class_index.json"
export PETAL_FETCH_SHARDS=4
# Kernels only for the instruction sets this CPU runs: the test is of the
# fresh-machine path (install, download, build, train), and the AVX-512
# kernels it cannot run would add a minute of compiling on an AVX2 machine.
export PETAL_MESON_OPTIONS="-Dcuda=disabled -Dbenchmarks=false -Dkernel_isas=$(scripts/host_kernel_isas.sh)"
# Nothing of this checkout may leak in: meson test points LD_LIBRARY_PATH at
# this build's libpetal (whose compiled-in assets/ folder is this checkout's).
unset PETAL_ASSETS PETAL_BUILD_DIR LD_LIBRARY_PATH PETAL_SHARED_DIR
status=0
scripts/run_main.sh --epochs 1 --batch 8 --out "$work/out" > "$work/run.log" 2>&1 || status=$?
tail -25 "$work/run.log"
[[ $status -eq 0 ]] || { echo "FAIL: scripts/run_main.sh exited $status"; exit 1; }

for f in assets/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5 \
         assets/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 \
         assets/imagenet_labels.txt "$work/out/results.json" "$work/out/model.safetensors"; do
  [[ -s "$f" ]] || { echo "FAIL: $f is missing or empty"; exit 1; }
done
[[ "$(sed -n '6p' assets/imagenet_labels.txt)" == "class 5" ]] || { echo "FAIL: imagenet_labels.txt line 6 is not 'class 5'"; exit 1; }
grep -q "^weights: .*mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5 (Keras 2 HDF5 weights)" "$work/run.log" ||
  { echo "FAIL: flowers_transfer did not say it loaded the official 192 no-top .h5"; exit 1; }
echo "ok: run_main.sh trained from the mirror (port $port) in a fresh clone"
