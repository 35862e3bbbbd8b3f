#!/usr/bin/env bash
# Build the VM-lab kernel, or reuse the cached one. Prints the bzImage path on stdout.
#
# The kernel is Debian's linux-source-6.12 + `make tinyconfig` + kernel.config, all built in.
# Cache: ${VMLAB_CACHE:-~/.cache/mediapass/vmlab}/<key>/{bzImage,config,inputs}, where
#   key = sha256(kernel.config, RECIPE, linux-source version, gcc version)[:16].
# A hit costs a fraction of a second; a miss ~7-16 min on 2 cores. Concurrent calls
# serialize on a lock, so two setups never build the same kernel twice.
#
#   VMLAB_JOBS=N     make -j (default: nproc, at most 2 on a shared machine is up to you)
#   VMLAB_KSRC=DIR   use this unpacked kernel tree instead of Debian's tarball
#   --print-key      print the cache key and exit (no build)
#   --print-path     print where the bzImage for the current inputs is (or would be) cached; no build
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${VMLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mediapass/vmlab}
SRCPKG=linux-source-6.12
FRAGMENT=$HERE/kernel.config
# Bump when the way the kernel is built changes (not for comment edits elsewhere).
RECIPE=1
t0=$(date +%s)
log() { echo "vmlab build-kernel: [$(($(date +%s) - t0))s] $*" >&2; }
die() { echo "vmlab build-kernel: error: $*" >&2; exit 1; }

missing=()
for tool in gcc make flex bison bc xz perl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -f /usr/include/libelf.h ] || missing+=(libelf-dev)
srcver=$(dpkg-query -W -f='${Version}' "$SRCPKG" 2>/dev/null || true)
[ -n "$srcver" ] || [ -n "${VMLAB_KSRC:-}" ] || missing+=("$SRCPKG")
[ ${#missing[@]} -eq 0 ] || die "missing build dependencies: ${missing[*]} (run ./x setup)"
[ -n "$srcver" ] || srcver="tree:$(cd "$VMLAB_KSRC" && make -s kernelversion)"

key=$({
  cat "$FRAGMENT"
  echo "recipe $RECIPE"
  echo "$SRCPKG $srcver"
  gcc --version | head -1
} | sha256sum | cut -c1-16)
dest=$CACHE/$key
case "${1:-}" in
  --print-key) echo "$key"; exit 0 ;;
  --print-path) echo "$dest/bzImage"; exit 0 ;;
  "") ;;
  *) die "unknown argument $1" ;;
esac

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.lock; waiting (up to 60 min)"
  flock -w 3600 9 || die "timed out waiting for $CACHE/.lock"
fi
if [ -s "$dest/bzImage" ]; then
  ln -sfn "$key" "$CACHE/current"
  log "cache hit: $dest/bzImage"
  echo "$dest/bzImage"
  exit 0
fi

# Under the lock no other build runs: any build tree left is from a killed build (~2 GB).
rm -rf "$CACHE"/build.*
log "cache miss (key $key: $SRCPKG $srcver, $(gcc --version | head -1)); building, ~7-16 min on 2 cores"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -n "${VMLAB_KSRC:-}" ]; then
  src=$VMLAB_KSRC
else
  tarball=/usr/src/$SRCPKG.tar.xz
  [ -f "$tarball" ] || die "$tarball not found (reinstall $SRCPKG)"
  log "unpacking $tarball"
  tar -C "$work" -xf "$tarball"
  src=$work/$SRCPKG
fi
obj=$work/obj
mkdir -p "$obj"
log "configuring: tinyconfig + $(basename "$FRAGMENT")"
make -s -C "$src" O="$obj" tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$FRAGMENT" >/dev/null
make -s -C "$src" O="$obj" olddefconfig >/dev/null
# Kconfig silently drops options whose dependencies are unmet: insist on every one.
lost=0
while IFS= read -r line; do
  grep -qxF "$line" "$obj/.config" || { echo "vmlab build-kernel: option lost after olddefconfig: $line" >&2; lost=1; }
done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$FRAGMENT")
while IFS= read -r line; do
  opt=${line#\# }; opt=${opt%% *}
  ! grep -q "^$opt=" "$obj/.config" || { echo "vmlab build-kernel: option should be unset: $opt" >&2; lost=1; }
done < <(grep -E '^# CONFIG_[A-Z0-9_]+ is not set' "$FRAGMENT")
[ $lost = 0 ] || die "kernel.config does not apply cleanly to $SRCPKG $srcver"

jobs=${VMLAB_JOBS:-$(nproc)}
log "make -j$jobs bzImage"
make -s -C "$src" O="$obj" -j"$jobs" bzImage \
  KBUILD_BUILD_TIMESTAMP="2000-01-01 00:00:00 UTC" KBUILD_BUILD_USER=mediapass KBUILD_BUILD_HOST=vmlab >&2

# Publish atomically: a half-copied bzImage must never look like a cache hit.
stage=$work/publish
mkdir -p "$stage"
cp "$obj/arch/x86/boot/bzImage" "$stage/bzImage"
cp "$obj/.config" "$stage/config"
printf 'source %s %s\nrecipe %s\ngcc %s\nbuilt %s in %ss\n' "$SRCPKG" "$srcver" "$RECIPE" \
  "$(gcc --version | head -1)" "$(date -u +%FT%TZ)" "$(($(date +%s) - t0))" >"$stage/inputs"
rm -rf "$dest"
mv "$stage" "$dest"
ln -sfn "$key" "$CACHE/current"
log "built $dest/bzImage ($(stat -c %s "$dest/bzImage") bytes)"
echo "$dest/bzImage"
