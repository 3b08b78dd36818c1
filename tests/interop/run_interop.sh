#!/usr/bin/env bash
# Runs one interop check (keras_interop.py, onnx_interop.py) with the interop
# virtual environment's Python (scripts/install_interop_venv.sh), or the
# system's; the script itself exits 77 (skip) when it cannot import Keras or
# onnxruntime.
#
#   run_interop.sh SCRIPT.py TOOL
set -uo pipefail
script=$1 tool=$2
source_dir="${PETAL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="$source_dir/.venv-interop/bin/python"
[[ -x "$python" ]] || python=python3
command -v "$python" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" "$source_dir/tests/interop/$script" "$tool" "$work"
