#!/bin/bash
# Runs INSIDE the lab guest for tests/tests/vmlab_smoke.rs, in one boot. It only
# records (devices, decoder output, visl trace, vicodec frames, exit statuses) into
# RESULTS; the Rust test on the host parses and judges all of it.
#   usage: smoke-guest.sh RESULTS VP9_IVF_STREAM
set -u
R=${1:?results dir} VP9=${2:?vp9 stream}
HERE=$(dirname "$(readlink -f "$0")")
log() { echo "smoke-guest: [$(cut -d' ' -f1 /proc/uptime)s] $*" >&2; }

log "devices"
for v in /sys/class/video4linux/video*; do
  dev=/dev/${v##*/}
  driver=$(v4l2-ctl -d "$dev" --info 2>/dev/null | sed -n 's/^\s*Driver name\s*:\s*//p' | head -1)
  printf '%s\t%s\t%s\n' "$dev" "$(cat "$v/name")" "$driver"
done >"$R/video-devices.tsv"
for m in /dev/media*; do
  printf '%s\t%s\n' "$m" "$(cat "/sys/bus/media/devices/${m##*/}/model" 2>/dev/null)"
done >"$R/media-devices.tsv"
dev_named() { awk -F'\t' -v n="$1" '$2 == n { print $1; exit }' "$R/video-devices.tsv"; }

log "Debian's v4l2slvp9dec on visl, with visl's trace recorded"
timeout 240 "$HERE/visl-trace.sh" "$R/vp9.trace" \
  gst-launch-1.0 -q --no-fault filesrc location="$VP9" ! ivfparse ! vp9parse ! v4l2slvp9dec \
  ! video/x-raw ! checksumsink >"$R/vp9.checksums" 2>"$R/vp9.stderr"
echo $? >"$R/vp9.status"
# The same decode again: two captures of one input must match field by field.
timeout 240 "$HERE/visl-trace.sh" "$R/vp9-again.trace" \
  gst-launch-1.0 -q --no-fault filesrc location="$VP9" ! ivfparse ! vp9parse ! v4l2slvp9dec \
  ! video/x-raw ! fakesink >/dev/null 2>"$R/vp9-again.stderr"
echo $? >"$R/vp9-again.status"

log "vicodec: stateful FWHT encode, then stateless and stateful decode"
enc=$(dev_named stateful-encoder) dec=$(dev_named stateful-decoder) sldec=$(dev_named stateless-decoder)
frames=10
timeout 240 v4l2-ctl -d "$enc" -v pixelformat=FWHT --stream-mmap --stream-out-mmap \
  --stream-count $frames --stream-to-hdr "$R/fwht.hdr" >"$R/fwht-encode.log" 2>&1
echo $? >"$R/fwht-encode.status"
# The stateless decoder's OUTPUT (bitstream) format is SFWH: FWHT plus per-frame controls.
timeout 240 v4l2-ctl -d "$sldec" -x pixelformat=SFWH -v pixelformat=YU12 --stream-mmap --stream-out-mmap \
  --stream-from-hdr "$R/fwht.hdr" --stream-to "$R/fwht-stateless.yuv" >"$R/fwht-stateless.log" 2>&1
echo $? >"$R/fwht-stateless.status"
timeout 240 v4l2-ctl -d "$dec" -x pixelformat=FWHT -v pixelformat=YU12 --stream-mmap --stream-out-mmap \
  --stream-from-hdr "$R/fwht.hdr" --stream-to "$R/fwht-stateful.yuv" >"$R/fwht-stateful.log" 2>&1
echo $? >"$R/fwht-stateful.status"
v4l2-ctl -d "$sldec" -V >"$R/fwht-stateless-format.txt" 2>&1
log "done"
