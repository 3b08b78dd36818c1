#!/usr/bin/env bash
# Fills the git-ignored assets/ folder with petal's runtime data:
#
#   assets/flowers-192/     the lab's flowers dataset, 16 TFRecord shards of
#                           192x192 JPEGs (+ README.md, MANIFEST.tsv)
#   assets/mobilenet_v2_1.0_imagenet.safetensors, imagenet_labels.txt,
#   assets/reference/       ImageNet MobileNetV2 weights and reference outputs
#   assets/samples/         a few photos with their expected ImageNet class
#
# It copies from ../shared (beside the project) when that exists, otherwise it
# downloads the flowers shards from the lab's public bucket and says how to
# supply the weights. Files already in place with the right size are skipped,
# so running it again is cheap.
#
# Options:
#   --shards N      only the first N flowers shards (the first 3 are the
#                   validation split), e.g. for a machine with little disk
#   --from DIR      copy from DIR instead of ../shared (same layout)
#   --dest DIR      fill DIR instead of <project>/assets
#   --download      download the shards even when a shared copy exists
#   -q, --quiet     print only warnings and errors
set -euo pipefail

project_root="$(cd "$(dirname "$0")/.." && pwd)"
shared_dir="$project_root/../shared"
dest="$project_root/assets"
shard_limit=16
force_download=0
quiet=0

# PETAL_FLOWERS_URL points at a mirror (any URL curl or wget understands).
bucket_url="${PETAL_FLOWERS_URL:-https://storage.googleapis.com/flowers-public/tfrecords-jpeg-192x192-2}"
shard_names=(flowers00-230.tfrec flowers01-230.tfrec flowers02-230.tfrec flowers03-230.tfrec
             flowers04-230.tfrec flowers05-230.tfrec flowers06-230.tfrec flowers07-230.tfrec
             flowers08-230.tfrec flowers09-230.tfrec flowers10-230.tfrec flowers11-230.tfrec
             flowers12-230.tfrec flowers13-230.tfrec flowers14-230.tfrec flowers15-220.tfrec)

usage() { sed -n '2,22s/^# \{0,1\}//p' "$0"; }
die() { echo "fetch_assets.sh: $*" >&2; exit 1; }
say() { [[ $quiet -eq 1 ]] || echo "fetch_assets.sh: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --shards) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 1 && "$2" -le 16 ]] ||
                die "--shards needs a number from 1 to 16"
              shard_limit=$2; shift ;;
    --from) [[ $# -ge 2 ]] || die "--from needs a folder"; shared_dir=$2; shift ;;
    --dest) [[ $# -ge 2 ]] || die "--dest needs a folder"; dest=$2; shift ;;
    --download) force_download=1 ;;
    -q|--quiet) quiet=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
  shift
done

file_size() { stat -c %s "$1" 2>/dev/null || echo -1; }

# Copies src to dst unless dst already has src's size; the copy goes through
# a temporary name so an interrupted run never leaves a short file behind.
copied=0
skipped=0
copy_file() {
  local src=$1 dst=$2
  [[ -f "$src" ]] || die "missing $src in the shared copy"
  if [[ "$(file_size "$src")" == "$(file_size "$dst")" ]]; then
    skipped=$((skipped + 1))
    return
  fi
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst.partial"
  chmod u+w "$dst.partial"  # the shared copy is read-only
  mv -f "$dst.partial" "$dst"
  copied=$((copied + 1))
}

copy_folder_files() {  # every plain file of a folder, not recursive
  local src_dir=$1 dst_dir=$2 f
  for f in "$src_dir"/*; do
    [[ -f "$f" ]] && copy_file "$f" "$dst_dir/$(basename "$f")"
  done
}

download() {  # url dst
  local url=$1 dst=$2
  mkdir -p "$(dirname "$dst")"
  local ok=1
  if command -v curl >/dev/null 2>&1; then
    curl --fail --location --silent --show-error --retry 3 -o "$dst.partial" "$url" || ok=0
  elif command -v wget >/dev/null 2>&1; then
    wget --quiet --tries=3 -O "$dst.partial" "$url" || ok=0
  else
    die "neither curl nor wget is installed (apt-get install curl)"
  fi
  if [[ $ok -eq 0 ]]; then
    rm -f "$dst.partial"
    die "cannot download $url (no network? set PETAL_FLOWERS_URL to a mirror, or put the shared data in ../shared)"
  fi
  [[ -s "$dst.partial" ]] || die "empty download from $url"
  mv -f "$dst.partial" "$dst"
}

mkdir -p "$dest"
flowers_src="$shared_dir/data/flowers-192"
models_src="$shared_dir/models"
samples_src="$shared_dir/data/samples"

if [[ $force_download -eq 0 && -d "$flowers_src" ]]; then
  say "copying from $(cd "$shared_dir" && pwd) to $dest"
  for ((i = 0; i < shard_limit; ++i)); do
    copy_file "$flowers_src/${shard_names[$i]}" "$dest/flowers-192/${shard_names[$i]}"
  done
  # The attribution record travels with the photos, whatever the subset.
  copy_file "$flowers_src/README.md" "$dest/flowers-192/README.md"
  copy_file "$flowers_src/MANIFEST.tsv" "$dest/flowers-192/MANIFEST.tsv"
  if [[ -d "$models_src" ]]; then
    copy_file "$models_src/mobilenet_v2_1.0_imagenet.safetensors" "$dest/mobilenet_v2_1.0_imagenet.safetensors"
    copy_file "$models_src/imagenet_labels.txt" "$dest/imagenet_labels.txt"
    copy_file "$models_src/README.md" "$dest/mobilenet_v2_1.0_imagenet.README.md"
    [[ -d "$models_src/reference" ]] && copy_folder_files "$models_src/reference" "$dest/reference"
  else
    echo "fetch_assets.sh: warning: no $models_src; the MobileNetV2 weights are missing" >&2
  fi
  [[ -d "$samples_src" ]] && copy_folder_files "$samples_src" "$dest/samples"
  say "$copied file(s) copied, $skipped already in place"
else
  [[ $force_download -eq 1 ]] || say "no shared copy at $flowers_src"
  say "downloading $shard_limit shard(s) from $bucket_url"
  fetched=0
  for ((i = 0; i < shard_limit; ++i)); do
    target="$dest/flowers-192/${shard_names[$i]}"
    if [[ -s "$target" ]]; then
      skipped=$((skipped + 1))
      continue
    fi
    say "  ${shard_names[$i]}"
    download "$bucket_url/${shard_names[$i]}" "$target"
    fetched=$((fetched + 1))
  done
  say "$fetched shard(s) downloaded, $skipped already in place"
  if [[ ! -f "$dest/mobilenet_v2_1.0_imagenet.safetensors" ]]; then
    cat >&2 <<MSG
fetch_assets.sh: the MobileNetV2 weights are not downloadable from a public URL in
petal's format. Copy these files into $dest/ to run the transfer-learning and
ImageNet examples:
  mobilenet_v2_1.0_imagenet.safetensors   Keras-named float32 safetensors
  imagenet_labels.txt                     1000 class names, one per line
(or put a checkout of the shared data beside the project as ../shared and run
this script again). Programs that read only the flowers shards work without them.
MSG
  fi
fi
