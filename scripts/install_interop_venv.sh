#!/usr/bin/env bash
# Creates the git-ignored virtual environment .venv-interop with the Python
# packages used only by interoperability checks and benchmark references:
# tensorflow-cpu (Keras loads petal's .h5), h5py, onnxruntime (runs petal's
# ONNX export). Tests and scripts that need them skip (exit 77) without it.
#
#   scripts/install_interop_venv.sh          create or complete .venv-interop
#   PETAL_VENV=DIR scripts/install_interop_venv.sh   another folder
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PETAL_VENV:-.venv-interop}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet tensorflow-cpu h5py onnxruntime numpy
"$venv/bin/python" - <<'PY'
import h5py, onnxruntime, tensorflow as tf
print("interop venv:", "tensorflow", tf.__version__, "keras", tf.keras.__version__ if hasattr(tf.keras, "__version__") else "?",
      "h5py", h5py.__version__, "onnxruntime", onnxruntime.__version__)
PY
