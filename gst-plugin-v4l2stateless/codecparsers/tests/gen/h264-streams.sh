#!/bin/bash
# Generates one H.264 test stream (Annex-B) with Debian's x264 from an ffmpeg test
# pattern. Usage: h264-streams.sh NAME OUT.264   (names: see the case below)
# The tests call this on demand and cache the result under target/.
set -euo pipefail
name=$1
out=$2
for tool in ffmpeg x264; do
    command -v "$tool" >/dev/null || {
        echo "missing tool '$tool': run ./x setup (apt-get install ffmpeg x264)" >&2
        exit 127
    }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# source SIZE FRAMES [EXTRA_FILTER]
source_clip() {
    ffmpeg -nostdin -v error -f lavfi -i "testsrc2=size=$1:rate=30${3:+,$3}" \
        -frames:v "$2" -pix_fmt yuv420p -y "$tmp/src.y4m"
}
encode() {
    if ! x264 --quiet --threads 1 --no-progress "$@" -o "$tmp/out.264" "$tmp/src.y4m" \
        </dev/null >"$tmp/log" 2>&1; then
        cat "$tmp/log" >&2
        exit 1
    fi
}

case "$name" in
h264-baseline)
    source_clip 176x144 20
    encode --profile baseline --keyint 10 ;;
h264-main-bpyramid)
    source_clip 176x144 30
    encode --profile main --bframes 3 --b-pyramid normal --ref 3 --keyint 30 ;;
h264-high-cqm)
    source_clip 176x144 20
    encode --profile high --8x8dct --cqm jvt --bframes 2 ;;
h264-slices)
    source_clip 176x144 20
    encode --profile main --slices 4 --bframes 2 ;;
h264-weightp)
    # A fade makes weighted prediction worth it.
    source_clip 176x144 24 "fade=in:0:20"
    encode --profile high --weightp 2 --bframes 2 --weightb ;;
h264-long-gop)
    source_clip 128x96 60
    encode --profile high --ref 4 --bframes 2 --b-pyramid strict --keyint 60 --scenecut 0 ;;
h264-cropped)
    # 180x100 is coded as 192x112 with frame cropping.
    source_clip 180x100 10
    encode --profile main --bframes 1 ;;
h264-mbaff)
    # x264 --interlaced codes MBAFF frames (field/frame macroblock pairs, no field
    # pictures).
    source_clip 176x144 20
    encode --profile high --interlaced --tff --bframes 2 ;;
*)
    echo "unknown stream '$name'" >&2
    exit 2 ;;
esac
mv "$tmp/out.264" "$out"
