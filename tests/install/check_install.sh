#!/usr/bin/env bash
# Installs petal from a build folder into a temporary DESTDIR, checks the
# installed layout, then builds and runs out-of-tree programs against it
# with pkg-config only, as a user would.
#
#   check_install.sh BUILD_DIR CXX PROGRAM.cpp... [-- extra compiler flags...]
#
# CXX is the compiler command, split at spaces (meson's may be "ccache c++").
# Exits 77 (meson's "skipped") when a tool it needs is missing.
set -euo pipefail

build_dir=$1
read -r -a cxx <<<"$2"
shift 2
programs=()
while [[ $# -gt 0 && $1 != -- ]]; do
  programs+=("$1")
  shift
done
[[ $# -gt 0 ]] && shift  # the --
extra_flags=("$@")

for tool in "${cxx[0]}" meson pkg-config; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check_install.sh: '$tool' not found; skipping"
    exit 77
  fi
done

destdir="$(mktemp -d "${TMPDIR:-/tmp}/petal_install_XXXXXX")"
trap 'rm -rf "$destdir"' EXIT
fail() {
  echo "check_install.sh: $*" >&2
  exit 1
}

meson install -C "$build_dir" --no-rebuild --quiet --destdir "$destdir"

pc_file="$(find "$destdir" -path '*/pkgconfig/petal.pc' | head -n 1)"
[[ -n "$pc_file" ]] || fail "no petal.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc_file")"
# The .pc file names the real prefix; relocate it into the DESTDIR.
prefix="$(pkg-config --variable=prefix petal)"
relocate=(--define-variable=prefix="$destdir$prefix")
includedir="$(pkg-config "${relocate[@]}" --variable=includedir petal)"
libdir="$(pkg-config "${relocate[@]}" --variable=libdir petal)"

# The layout: the umbrella beside the petal/ folder, never inside it.
missing=0
for path in "$includedir/petal.hpp" "$includedir/petal/core/tensor.hpp" "$includedir/petal/core/error.hpp" \
            "$includedir/petal/kernels/ops.hpp" "$includedir/petal/nn/safetensors.hpp" "$libdir/libpetal.so"; do
  if [[ ! -e "$path" ]]; then
    echo "check_install.sh: not installed: ${path#"$destdir"}" >&2
    missing=1
  fi
done
[[ $missing -eq 0 ]] || exit 1
[[ ! -e "$includedir/petal/petal.hpp" ]] || fail "the umbrella is installed as include/petal/petal.hpp too"
# Internal headers stay in the source tree (a sample of them).
for internal in kernels/cpu/simd.hpp kernels/cuda/host_device.hpp data/dataset_pipeline.hpp data/protobuf_wire.hpp; do
  [[ ! -e "$includedir/petal/$internal" ]] || fail "internal header installed: include/petal/$internal"
done
echo "installed: $(cd "$destdir" && find . -name 'libpetal.so*' -o -name petal.pc -o -name petal.hpp | sort | tr '\n' ' ')"

# Installed headers include each other as <petal/...>, never "core/...".
if quoted="$(grep -rn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$includedir/petal.hpp" "$includedir/petal")"; then
  fail "installed headers with quoted includes (they must be <petal/...>):"$'\n'"${quoted//"$includedir/"/}"
fi

read -r -a cflags <<<"$(pkg-config "${relocate[@]}" --cflags petal)"
read -r -a flags <<<"$(pkg-config "${relocate[@]}" --cflags --libs petal)"
# The include path must not reach generic folder names (core/, data/, nn/):
# no -I ending in include/petal, and no -I folder holding such a folder.
for flag in "${cflags[@]}"; do
  [[ $flag == -I* ]] || continue
  dir="${flag#-I}"
  [[ ${dir%/} != */include/petal ]] || fail "pkg-config --cflags petal puts ${dir#"$destdir"} on the include path"
  for generic in core data nn kernels autograd; do
    [[ ! -d "$dir/$generic" ]] || fail "pkg-config --cflags petal puts a folder named $generic/ on the include path (${dir#"$destdir"})"
  done
done
echo "pkg-config --cflags petal: ${cflags[*]//"$destdir"/}"

# Every installed header must compile with only the installed tree on the
# include path (no includes of files that were not installed). One translation
# unit with all of them keeps this quick; the compiler names the culprit.
all_headers="$destdir/all_headers.cpp"
find "$includedir/petal" -name '*.hpp' | sort | sed -e "s|^$includedir/|#include <|" -e 's|$|>|' >"$all_headers"
"${cxx[@]}" -std=c++20 "${extra_flags[@]}" "${cflags[@]}" -fsyntax-only "$all_headers"
echo "$(wc -l <"$all_headers") installed headers compile together"
# The umbrella need not include everything; list what it leaves out.
umbrella_deps="$("${cxx[@]}" -std=c++20 "${extra_flags[@]}" "${cflags[@]}" -MM -x c++ "$includedir/petal.hpp")"
left_out=()
while IFS= read -r header; do
  [[ "$umbrella_deps" == *"$header"* ]] || left_out+=("${header#"$includedir/"}")
done < <(find "$includedir/petal" -name '*.hpp' | sort)
[[ ${#left_out[@]} -eq 0 ]] || echo "not reached from petal.hpp: ${left_out[*]}"

for program in "${programs[@]}"; do
  name="$(basename "$program" .cpp)"
  echo "${cxx[*]} -std=c++20 ${extra_flags[*]} $name.cpp \$(pkg-config --cflags --libs petal)"
  "${cxx[@]}" -std=c++20 "${extra_flags[@]}" "$program" -o "$destdir/$name" "${flags[@]}"
  (cd "$destdir" && LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "./$name")
done
