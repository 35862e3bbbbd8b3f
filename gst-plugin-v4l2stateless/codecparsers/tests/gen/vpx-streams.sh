#!/bin/bash
# Generates one VP8/VP9 test stream (IVF) with Debian's vpxenc from an ffmpeg test
# pattern. Usage: vpx-streams.sh NAME OUT.ivf   (names: see the case below)
# The tests call this on demand and cache the result under target/.
set -euo pipefail
name=$1
out=$2
for tool in ffmpeg vpxenc; do
    command -v "$tool" >/dev/null || {
        echo "missing tool '$tool': run ./x setup (apt-get install ffmpeg vpx-tools)" >&2
        exit 127
    }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# source SIZE FRAMES PIXFMT [EXTRA_FILTER]
source_clip() {
    ffmpeg -nostdin -v error -f lavfi -i "testsrc2=size=$1:rate=30${4:+,$4}" \
        -frames:v "$2" -pix_fmt "$3" -strict -1 -y "$tmp/src.y4m"
}
encode() {
    if ! vpxenc --ivf "$@" -o "$tmp/out.ivf" "$tmp/src.y4m" </dev/null >"$tmp/log" 2>&1; then
        cat "$tmp/log" >&2
        exit 1
    fi
}
rt=(--rt --lag-in-frames=0 --end-usage=cbr)

case "$name" in
vp9-altref)
    source_clip 176x144 30 yuv420p
    encode --codec=vp9 --good --passes=2 --cpu-used=4 --auto-alt-ref=1 --lag-in-frames=16 ;;
vp9-error-resilient)
    source_clip 176x144 20 yuv420p
    encode --codec=vp9 --good --cpu-used=4 --error-resilient=1 --auto-alt-ref=1 --lag-in-frames=8 ;;
vp9-tiles)
    # 1024 wide: up to 4 tile columns.
    source_clip 1024x256 6 yuv420p
    encode --codec=vp9 --good --cpu-used=8 --tile-columns=2 --tile-rows=1 --threads=1 --frame-parallel=0 ;;
vp9-resize)
    # Noisy content at a starved CBR rate makes libvpx downscale inter frames
    # (frame_size_with_refs with found_ref = 0).
    source_clip 640x360 200 yuv420p noise=alls=80:allf=t
    encode --codec=vp9 "${rt[@]}" --cpu-used=8 --target-bitrate=40 --resize-allowed=1 ;;
vp9-segmentation)
    source_clip 352x288 30 yuv420p noise=alls=20:allf=t
    encode --codec=vp9 "${rt[@]}" --cpu-used=7 --target-bitrate=200 --aq-mode=3 ;;
vp9-lossless)
    source_clip 64x64 4 yuv420p
    encode --codec=vp9 --good --cpu-used=8 --lossless=1 ;;
vp9-profile1-444)
    source_clip 176x144 10 yuv444p
    encode --codec=vp9 --good --cpu-used=8 --profile=1 ;;
vp9-profile2-10bit)
    source_clip 176x144 10 yuv420p10le
    encode --codec=vp9 --good --cpu-used=8 --profile=2 --bit-depth=10 --input-bit-depth=10 ;;
vp9-profile3-444-12bit)
    source_clip 96x64 6 yuv444p12le
    encode --codec=vp9 --good --cpu-used=8 --profile=3 --bit-depth=12 --input-bit-depth=12 ;;
vp8-altref)
    # VP8 places alt-ref frames only with two-pass encoding.
    source_clip 176x144 60 yuv420p
    encode --codec=vp8 --good --passes=2 --cpu-used=4 --auto-alt-ref=1 --lag-in-frames=16 ;;
vp8-error-resilient)
    source_clip 176x144 20 yuv420p
    encode --codec=vp8 --good --cpu-used=4 --error-resilient=1 ;;
vp8-partitions)
    source_clip 352x288 8 yuv420p
    encode --codec=vp8 --good --cpu-used=8 --token-parts=3 ;;
vp8-rt)
    # Realtime CBR with error resilience enables cyclic-refresh segmentation.
    source_clip 352x288 30 yuv420p noise=alls=20:allf=t
    encode --codec=vp8 "${rt[@]}" --cpu-used=8 --target-bitrate=200 --error-resilient=1 \
        --noise-sensitivity=1 ;;
*)
    echo "unknown stream name '$name'" >&2
    exit 2 ;;
esac
mv "$tmp/out.ivf" "$out"
