#!/usr/bin/env bash
# Installs the build dependencies plus the benchmark references (OpenBLAS,
# PyTorch, torchvision). Benchmarks only: CI does not need these.
set -euo pipefail
exec "$(dirname "$0")/install_deps.sh" --bench "$@"
