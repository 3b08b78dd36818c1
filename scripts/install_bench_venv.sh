#!/usr/bin/env bash
# Creates the git-ignored virtual environment .venv-bench with the benchmark
# references at pinned PyPI versions: PyTorch + torchvision, ONNX Runtime,
# TensorFlow (CPU) with Keras 3, numpy and h5py. bench/mobilenet and
# bench/conv run their Python references with .venv-bench/bin/python when it
# exists (else Debian's python3; --python PATH overrides both).
#
#   scripts/install_bench_venv.sh                 create or complete .venv-bench
#   PETAL_VENV=DIR scripts/install_bench_venv.sh  another folder
#   scripts/install_bench_venv.sh --no-torch      only onnxruntime + numpy
#                                                 (what CI may install)
#
# Never run this in CI without --no-torch: PyPI's torch wheel depends on about
# 3 GB of CUDA wheels (nvidia-*). This script first installs torch without its
# dependencies plus the pure-Python ones it needs, and keeps that when
# `import torch` works for the CPU; only when it does not does it let pip pull
# the CUDA wheels too.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned versions (the ones the README's figures were measured with).
torch_version=2.15.0
torchvision_version=0.29.2
onnxruntime_version=1.32.0
tensorflow_version=2.21.0
numpy_version=2.4.6
h5py_version=3.14.0

with_torch=1
for arg in "$@"; do
  case "$arg" in
    --no-torch) with_torch=0 ;;
    -h|--help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "install_bench_venv.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

venv="${PETAL_VENV:-.venv-bench}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip install --quiet --disable-pip-version-check)
"$py" -m pip install --quiet --disable-pip-version-check --upgrade pip
"${pip[@]}" "numpy==$numpy_version" "onnxruntime==$onnxruntime_version"
if [[ $with_torch -eq 0 ]]; then
  "$py" -c 'import onnxruntime; print("bench venv: onnxruntime", onnxruntime.__version__)'
  exit 0
fi
"${pip[@]}" "tensorflow-cpu==$tensorflow_version" "h5py==$h5py_version"

# torch without the nvidia-* wheels: its pure-Python dependencies by hand.
if ! "$py" -c 'import torch' >/dev/null 2>&1; then
  "${pip[@]}" --no-deps "torch==$torch_version" "torchvision==$torchvision_version"
  "${pip[@]}" filelock typing-extensions sympy networkx jinja2 fsspec pillow setuptools
  if ! "$py" -c 'import torch, torchvision; torch.zeros(1) + 1' >/dev/null 2>&1; then
    echo "install_bench_venv.sh: torch without its CUDA wheels does not import; installing them (~3 GB)" >&2
    "${pip[@]}" "torch==$torch_version" "torchvision==$torchvision_version"
  fi
fi

# One process per framework: TensorFlow and torch each bring an LLVM, and
# importing both into one process aborts ("registered more than once").
"$py" -c 'import torch, torchvision; print("bench venv: torch", torch.__version__, "torchvision", torchvision.__version__)'
TF_CPP_MIN_LOG_LEVEL=2 "$py" -c 'import tensorflow as tf, keras, h5py; print("bench venv: tensorflow", tf.__version__, "keras", keras.__version__, "h5py", h5py.__version__)'
"$py" -c 'import onnxruntime, numpy; print("bench venv: onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)'
