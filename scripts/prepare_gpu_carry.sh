#!/usr/bin/env bash
# Fills the git-ignored .carry/ folder with what a GPU machine without apt or
# network lacks to build and run petal's GPU check (scripts/gpu_check.sh):
#
#   .carry/include/xsimd/, .carry/include/doctest/   headers (from /usr/include)
#   .carry/include/turbojpeg.h, .carry/lib/libturbojpeg.so{,.0}
#                                                    libturbojpeg 2.1.5, unpacked from the Debian
#                                                    packages libturbojpeg0 + libturbojpeg0-dev
#                                                    (apt-get download + dpkg -x; the installed
#                                                    files when the download fails)
#   .carry/lib/pkgconfig/{libturbojpeg,xsimd}.pc     relocatable (prefix = ${pcfiledir}/../..)
#   .carry/assets/                                   MobileNetV2 weights + labels and the first
#                                                    4 flowers shards (3 validation + 1 training)
#   .carry/fallback/                                 pkg-config (pkgconf) and libpng 1.6 from this
#                                                    machine, which gpu_check.sh uses only when the
#                                                    GPU machine has none
#
# The working tree and .carry together must stay under 64 MiB (the device
# tool's limit): the script prints both sizes and fails above it.
#
# Options:
#   --dest DIR     fill DIR instead of <project>/.carry
#   --shards N     flowers shards to carry (default 4)
#   --no-download  do not try apt-get download; copy the installed libturbojpeg
#   -h, --help     this text
set -euo pipefail

project_root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$project_root/.carry"
shards=4
download=1
limit_mib=64

usage() { sed -n '2,26s/^# \{0,1\}//p' "$0"; }
die() { echo "prepare_gpu_carry.sh: $*" >&2; exit 1; }
say() { echo "prepare_gpu_carry.sh: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) [[ $# -ge 2 ]] || die "--dest needs a folder"; dest="$2"; shift 2 ;;
    --shards) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--shards needs a number"; shards="$2"; shift 2 ;;
    --no-download) download=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
libdir="/usr/lib/$multiarch"

mkdir -p "$dest"/include "$dest"/lib/pkgconfig "$dest"/assets

# ---- headers ----
for h in xsimd doctest; do
  [[ -d /usr/include/$h ]] || die "/usr/include/$h is missing: run scripts/install_deps.sh first"
  rm -rf "${dest:?}/include/$h"
  cp -r "/usr/include/$h" "$dest/include/$h"
done
say "headers: xsimd $(sed -n 's/^Version: //p' "$libdir/pkgconfig/xsimd.pc" 2>/dev/null || echo '?'), doctest"

# ---- libturbojpeg ----
unpack="$(mktemp -d)"
trap 'rm -rf "$unpack"' EXIT
turbo_root=""
if [[ $download -eq 1 ]]; then
  if (cd "$unpack" && apt-get download libturbojpeg0 libturbojpeg0-dev >/dev/null 2>&1); then
    for deb in "$unpack"/*.deb; do dpkg -x "$deb" "$unpack/root"; done
    turbo_root="$unpack/root"
    say "libturbojpeg: unpacked $(cd "$unpack" && ls ./*.deb | xargs -n1 basename | tr '\n' ' ')"
  else
    say "libturbojpeg: apt-get download failed; copying the installed files instead"
  fi
fi
if [[ -z "$turbo_root" ]]; then
  [[ -f /usr/include/turbojpeg.h && -e $libdir/libturbojpeg.so.0 ]] ||
    die "libturbojpeg0-dev is not installed and could not be downloaded"
  mkdir -p "$unpack/root/usr/include" "$unpack/root$libdir"
  cp /usr/include/turbojpeg.h "$unpack/root/usr/include/"
  cp -P "$libdir"/libturbojpeg.so* "$unpack/root$libdir/"
  turbo_root="$unpack/root"
fi
cp "$turbo_root/usr/include/turbojpeg.h" "$dest/include/"
# Plain files, no symbolic links: the carried folder may travel without them.
rm -f "$dest"/lib/libturbojpeg.so*
real_so="$(ls "$turbo_root$libdir"/libturbojpeg.so.0.* | head -1)"
for name in libturbojpeg.so libturbojpeg.so.0; do cp -L "$real_so" "$dest/lib/$name"; done
turbo_version="$(dpkg-query -W -f='${Version}' libturbojpeg0 2>/dev/null | sed 's/^[0-9]*://; s/-.*//')"
cat > "$dest/lib/pkgconfig/libturbojpeg.pc" <<PC
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libturbojpeg
Description: TurboJPEG API (carried for the GPU machine by scripts/prepare_gpu_carry.sh)
Version: ${turbo_version:-2.1.5}
Libs: -L\${libdir} -lturbojpeg
Cflags: -I\${includedir}
PC
cat > "$dest/lib/pkgconfig/xsimd.pc" <<PC
prefix=\${pcfiledir}/../..
includedir=\${prefix}/include

Name: xsimd
Description: xsimd headers (carried for the GPU machine by scripts/prepare_gpu_carry.sh)
Version: $(sed -n 's/^Version: //p' "$libdir/pkgconfig/xsimd.pc" 2>/dev/null || echo 8.1.0)
Cflags: -I\${includedir}
PC

# ---- fallbacks: pkg-config and libpng (installed files of this machine) ----
fallback="$dest/fallback"
rm -rf "$fallback"
mkdir -p "$fallback/bin" "$fallback/lib/pkgconfig" "$fallback/include"
pkgconf_bin="$(readlink -f "$(command -v pkg-config)")"
cp "$pkgconf_bin" "$fallback/bin/pkg-config"
for lib in $(ldd "$pkgconf_bin" | awk '/libpkgconf/ {print $3}') $libdir/libpng16.so.16; do
  cp -L "$lib" "$fallback/lib/"
done
cp -L "$libdir/libpng16.so.16" "$fallback/lib/libpng16.so"
cp -r /usr/include/libpng16 "$fallback/include/"
cat > "$fallback/lib/pkgconfig/libpng.pc" <<PC
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include/libpng16

Name: libpng
Description: libpng (carried as a fallback by scripts/prepare_gpu_carry.sh)
Version: $(pkg-config --modversion libpng 2>/dev/null || echo 1.6)
Libs: -L\${libdir} -lpng16
Cflags: -I\${includedir}
PC

# ---- assets ----
"$project_root/scripts/fetch_assets.sh" --quiet --shards "$shards" >/dev/null 2>&1 ||
  say "warning: fetch_assets.sh failed; carrying what assets/ already holds"
src="$project_root/assets"
for f in mobilenet_v2_1.0_imagenet.safetensors imagenet_labels.txt; do
  [[ -f "$src/$f" ]] || die "assets/$f is missing (scripts/fetch_assets.sh)"
  cp -u "$src/$f" "$dest/assets/"
done
mkdir -p "$dest/assets/flowers-192"
rm -f "$dest"/assets/flowers-192/*.tfrec
mapfile -t shard_files < <(ls "$src"/flowers-192/*.tfrec 2>/dev/null | sort | head -n "$shards")
[[ ${#shard_files[@]} -eq $shards ]] || die "assets/flowers-192 holds ${#shard_files[@]} shards, $shards wanted"
cp "${shard_files[@]}" "$dest/assets/flowers-192/"
[[ -f "$src/flowers-192/README.md" ]] && cp "$src/flowers-192/README.md" "$dest/assets/flowers-192/"

# ---- sizes ----
carry_kib=$(du -sk "$dest" | cut -f1)
tree_kib=$(cd "$project_root" && { git ls-files -z; git ls-files -z --others --exclude-standard; } |
           du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total_mib=$(( (carry_kib + tree_kib + 1023) / 1024 ))
say "carry $(( (carry_kib + 1023) / 1024 )) MiB in $dest, working tree $(( (tree_kib + 1023) / 1024 )) MiB: $total_mib MiB of $limit_mib"
[[ $total_mib -lt $limit_mib ]] || die "working tree + carry is $total_mib MiB, the limit is $limit_mib MiB"
