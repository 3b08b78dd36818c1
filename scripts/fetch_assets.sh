#!/usr/bin/env bash
# Fills the git-ignored assets/ folder with petal's runtime data:
#
#   assets/flowers-192/     the lab's flowers dataset, 16 TFRecord shards of
#                           192x192 JPEGs (+ README.md, MANIFEST.tsv)
#   assets/mobilenet_v2_1.0_imagenet.safetensors, imagenet_labels.txt,
#   assets/reference/       ImageNet MobileNetV2 weights and reference outputs
#   assets/samples/         a few photos with their expected ImageNet class
#
# It copies from ../shared (beside the project) when that exists. Otherwise it
# downloads the flowers shards from the lab's public bucket, the official
# Keras MobileNetV2 weights (keras-applications: the 224 file with top, the
# 192 file without) and ImageNet's class index, from which it writes
# imagenet_labels.txt. Files already in place are kept, so running it again
# is cheap. Mirrors: PETAL_FLOWERS_URL (a folder of the shards),
# PETAL_KERAS_WEIGHTS_URL (a folder of the two .h5 files, named as Keras
# names them), PETAL_IMAGENET_INDEX_URL (the imagenet_class_index.json file
# itself). PETAL_FETCH_SHARDS sets the default of --shards.
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
shard_limit="${PETAL_FETCH_SHARDS:-16}"
[[ "$shard_limit" =~ ^[0-9]+$ && "$shard_limit" -ge 1 && "$shard_limit" -le 16 ]] ||
  { echo "fetch_assets.sh: PETAL_FETCH_SHARDS must be a number from 1 to 16" >&2; exit 2; }
force_download=0
quiet=0

# PETAL_FLOWERS_URL points at a mirror (any URL curl or wget understands).
bucket_url="${PETAL_FLOWERS_URL:-https://storage.googleapis.com/flowers-public/tfrecords-jpeg-192x192-2}"
# Where Keras itself downloads them (BASE_WEIGHT_PATH in
# keras/src/applications/mobilenet_v2.py, CLASS_INDEX_PATH in
# keras/src/applications/imagenet_utils.py).
keras_weights_url="${PETAL_KERAS_WEIGHTS_URL:-https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2}"
keras_weights_url="${keras_weights_url%/}"
imagenet_index_url="${PETAL_IMAGENET_INDEX_URL:-https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json}"
keras_224=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5
keras_192_no_top=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5
shard_names=(flowers00-230.tfrec flowers01-230.tfrec flowers02-230.tfrec flowers03-230.tfrec
             flowers04-230.tfrec flowers05-230.tfrec flowers06-230.tfrec flowers07-230.tfrec
             flowers08-230.tfrec flowers09-230.tfrec flowers10-230.tfrec flowers11-230.tfrec
             flowers12-230.tfrec flowers13-230.tfrec flowers14-230.tfrec flowers15-220.tfrec)

usage() { sed -n '2,28s/^# \{0,1\}//p' "$0"; }
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

download() {  # url dst [the variable that names a mirror]
  local url=$1 dst=$2 mirror=${3:-PETAL_FLOWERS_URL}
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
    die "cannot download $url (no network? set $mirror to a mirror, or put the shared data in ../shared)"
  fi
  [[ -s "$dst.partial" ]] || die "empty download from $url"
  mv -f "$dst.partial" "$dst"
}

# An .h5 download must be an HDF5 file holding the expected layer groups (no
# fixed size or checksum: a mirror may hold re-saved files). h5ls (Debian's
# hdf5-tools) lists the groups; without it only the signature is checked.
check_keras_h5() {  # file layer...
  local file=$1; shift
  local signature
  signature="$(head -c 8 "$file" | od -An -tx1 | tr -d ' \n')"
  [[ "$signature" == "894844460d0a1a0a" ]] || die "$file is not an HDF5 file (an incomplete or wrong download?)"
  if ! command -v h5ls >/dev/null 2>&1; then
    echo "fetch_assets.sh: warning: h5ls not found (apt-get install hdf5-tools); checked only that $file is HDF5" >&2
    return
  fi
  local listing layer
  listing="$(h5ls "$file" 2>/dev/null)" || die "$file: h5ls cannot read it (an incomplete download?)"
  for layer in "$@"; do  # "A|B": either name (Keras 2.1 called the classifier Logits, later Keras predictions)
    grep -qE "^($layer) " <<<"$listing" || die "$file has no layer group '$layer' (not the Keras MobileNetV2 weights?)"
  done
}

# imagenet_class_index.json ({"0": ["n01440764", "tench"], ...}) -> one class
# name a line in index order, underscores as spaces (Keras's decode_predictions
# names, as imagenet_labels.txt holds them).
write_labels() {  # json txt
  local json=$1 txt=$2
  grep -o '"[0-9]*": *\["[^"]*", *"[^"]*"\]' "$json" |
    sed 's/^"\([0-9]*\)": *\["[^"]*", *"\([^"]*\)"\]$/\1\t\2/' |
    sort -n | cut -f2 | tr '_' ' ' > "$txt.partial"
  local count
  count="$(wc -l < "$txt.partial")"
  if [[ "$count" -ne 1000 ]]; then
    rm -f "$txt.partial"
    die "$json holds $count classes, not 1000 (an incomplete download?)"
  fi
  mv -f "$txt.partial" "$txt"
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
    for name in "$keras_224" "$keras_192_no_top"; do
      if [[ -s "$dest/$name" ]]; then
        skipped=$((skipped + 1))
      else
        say "  $name"
        download "$keras_weights_url/$name" "$dest/$name" "PETAL_KERAS_WEIGHTS_URL"
      fi
    done
    check_keras_h5 "$dest/$keras_224" Conv1 bn_Conv1 block_16_project_BN Conv_1_bn 'Logits|predictions'
    check_keras_h5 "$dest/$keras_192_no_top" Conv1 bn_Conv1 block_16_project_BN Conv_1_bn
  fi
  if [[ ! -s "$dest/imagenet_labels.txt" ]]; then
    download "$imagenet_index_url" "$dest/imagenet_class_index.json" "PETAL_IMAGENET_INDEX_URL"
    write_labels "$dest/imagenet_class_index.json" "$dest/imagenet_labels.txt"
  fi
fi
