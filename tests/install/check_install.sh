#!/usr/bin/env bash
# Installs petal from a build folder into a temporary DESTDIR, checks the
# installed layout, then builds and runs an out-of-tree program against it
# with pkg-config, as a user would.
#
#   check_install.sh BUILD_DIR PROGRAM.cpp CXX [extra compiler flags...]
#
# Exits 77 (meson's "skipped") when a tool it needs is missing.
set -euo pipefail

build_dir=$1
program=$2
cxx=$3
shift 3

for tool in "$cxx" meson pkg-config; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check_install.sh: '$tool' not found; skipping"
    exit 77
  fi
done

destdir="$(mktemp -d "${TMPDIR:-/tmp}/petal_install_XXXXXX")"
trap 'rm -rf "$destdir"' EXIT

meson install -C "$build_dir" --no-rebuild --quiet --destdir "$destdir"

pc_file="$(find "$destdir" -path '*/pkgconfig/petal.pc' | head -n 1)"
[[ -n "$pc_file" ]] || { echo "check_install.sh: no petal.pc installed" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc_file")"
# The .pc file names the real prefix; relocate it into the DESTDIR.
prefix="$(pkg-config --variable=prefix petal)"
relocate=(--define-variable=prefix="$destdir$prefix")
includedir="$(pkg-config "${relocate[@]}" --variable=includedir petal)"
libdir="$(pkg-config "${relocate[@]}" --variable=libdir petal)"

missing=0
for path in "$includedir/petal/petal.hpp" "$includedir/petal/core/tensor.hpp" \
            "$includedir/petal/core/error.hpp" "$includedir/petal/kernels/ops.hpp" \
            "$libdir/libpetal.so"; do
  if [[ ! -e "$path" ]]; then
    echo "check_install.sh: not installed: ${path#"$destdir"}" >&2
    missing=1
  fi
done
[[ $missing -eq 0 ]]
echo "installed: $(cd "$destdir" && find . -name 'libpetal.so*' -o -name petal.pc -o -name petal.hpp | sort | tr '\n' ' ')"

read -r -a cflags <<<"$(pkg-config "${relocate[@]}" --cflags petal)"
read -r -a flags <<<"$(pkg-config "${relocate[@]}" --cflags --libs petal)"

# Every installed header must compile with only the installed tree on the
# include path (no includes of files that were not installed). One translation
# unit with all of them keeps this quick; the compiler names the culprit.
all_headers="$destdir/all_headers.cpp"
find "$includedir/petal" -name '*.hpp' | sort |
  sed -e "s|^$includedir/petal/|#include \"|" -e 's|$|"|' >"$all_headers"
"$cxx" -std=c++20 "$@" "${cflags[@]}" -fsyntax-only "$all_headers"
echo "$(wc -l <"$all_headers") installed headers compile together"
# The umbrella header need not include everything; list what it leaves out.
umbrella_deps="$("$cxx" -std=c++20 "$@" "${cflags[@]}" -MM -x c++ "$includedir/petal/petal.hpp")"
left_out=()
while IFS= read -r header; do
  [[ "$umbrella_deps" == *"$header"* ]] || left_out+=("${header#"$includedir/petal/"}")
done < <(find "$includedir/petal" -name '*.hpp' | sort)
[[ ${#left_out[@]} -eq 0 ]] || echo "not reached from petal.hpp: ${left_out[*]}"

echo "$cxx -std=c++20 $* consumer.cpp ${flags[*]}"
"$cxx" -std=c++20 "$@" "$program" -o "$destdir/consumer" "${flags[@]}"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$destdir/consumer"
