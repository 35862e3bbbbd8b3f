#!/usr/bin/env bash
# Proves `meson setup/compile/install` puts three loadable plugins into a fresh prefix.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
meson setup "$tmp/build" "$ROOT" --prefix="$tmp/prefix" >/dev/null
meson compile -C "$tmp/build" >/dev/null
meson install -C "$tmp/build" >/dev/null
mapfile -t sos < <(find "$tmp/prefix" -path '*/gstreamer-1.0/libgst*.so' | sort)
[ "${#sos[@]}" -eq 3 ] || { echo "expected 3 plugins under $tmp/prefix, found: ${sos[*]:-none}" >&2; exit 1; }
plugdir=$(dirname "${sos[0]}")
for p in spicepass shmzero v4l2stateless; do
  out=$(GST_PLUGIN_SYSTEM_PATH= GST_PLUGIN_PATH="$plugdir" GST_REGISTRY="$tmp/registry.bin" \
        gst-inspect-1.0 "$p" 2>&1) || { echo "$p does not load from $plugdir: $out" >&2; exit 1; }
  grep -q "Filename *$plugdir/libgst$p.so" <<<"$out" || { echo "$p loaded from the wrong place: $out" >&2; exit 1; }
  echo "meson install: $p loads from ${plugdir#$tmp/prefix/}"
done
