#!/usr/bin/env bash
# Installs everything petal needs to build and test on Debian 12, with apt-get.
#
#   scripts/install_deps.sh           build + test dependencies (what CI needs)
#   scripts/install_deps.sh --bench   also the benchmark references
#                                     (OpenBLAS, oneDNN, PyTorch, torchvision, python3-venv;
#                                     the PyPI references: install_bench_deps.sh)
#   scripts/install_deps.sh --fetch   also curl + CA certificates + hdf5-tools, which
#                                     fetch_assets.sh needs to download data
#   scripts/install_deps.sh --docs    also doxygen, for the API reference
#                                     (`ninja -C build docs`; CI does not build it)
#
# Idempotent and silent when everything is installed: it asks dpkg first and
# only runs apt-get (as root, or through sudo) for what is missing. The CUDA
# toolkit is not a Debian package here and is never installed: the meson
# option -Dcuda=auto uses nvcc where a machine has one.
set -euo pipefail

# cmake is not needed: the build falls back to doctest's header when meson
# cannot find doctest's CMake package.
build_packages=(meson ninja-build pkg-config g++ libxsimd-dev libturbojpeg0-dev libpng-dev doctest-dev libhdf5-dev libopenmpi-dev openmpi-bin)
bench_packages=(libopenblas-dev libdnnl2 python3-torch python3-torchvision python3-venv)
fetch_packages=(curl ca-certificates hdf5-tools)
docs_packages=(doxygen)

usage() {
  sed -n '2,16s/^# \{0,1\}//p' "$0"
}

wanted=("${build_packages[@]}")
for arg in "$@"; do
  case "$arg" in
    --bench) wanted+=("${bench_packages[@]}") ;;
    --fetch) wanted+=("${fetch_packages[@]}") ;;
    --docs) wanted+=("${docs_packages[@]}") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install_deps.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps.sh: this script is for Debian (no dpkg-query); install by hand: ${wanted[*]}" >&2
  exit 1
fi

missing=()
for package in "${wanted[@]}"; do
  is_installed "$package" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install_deps.sh: missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi

echo "install_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
