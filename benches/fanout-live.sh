#!/bin/bash
# Drops and throughput of `mirrorwatch live` by capture-thread count (issue 14 goal 5), on a
# veth pair between two network namespaces, `tcpreplay --topspeed` sending into one end.
#
# Usage (root): [RING_MB=4] benches/fanout-live.sh BIN OUT_DIR [RUNS] [THREADS...]
#   BIN      the `mirrorwatch` binary (e.g. target/release/mirrorwatch)
#   OUT_DIR  where rows.csv and summary.md go (e.g. benches/runs/2026-12-04-vm-fanout)
#   RUNS     runs per input and thread count (default 3); thread counts alternate run by run
#   THREADS  capture-thread counts to compare (default: 1 2)
#   RING_MB  kernel ring memory of the whole group, split evenly over its sockets (default 4:
#            small, so that a capture thread that falls behind shows as kernel drops)
#
# Inputs, generated into a temp folder: `bench-mirror:2000` (the enterprise mix, every frame
# mirrored to external collectors in VXLAN, ERSPAN II, Geneve and GRE: many outer pairs) and
# `bench-flood64:20000` (64-byte frames, the packet-rate worst case). Each run: a fresh link, the
# sensor (`--capture-threads T`, default workers, RING_MB/T MiB of ring per socket, events to
# a file), tcpreplay at top speed from memory (`--topspeed -K`), 2 s for the sensor to drain, SIGTERM, then the last `stats` event:
# frames the kernel handed the sockets, frames it dropped (ring full), frames the pipeline
# dropped (worker queues full), frames processed, alerts. tcpreplay's own rate is the offered
# load; "processed per s" divides the frames processed by tcpreplay's send time.
set -eu

if [ $# -lt 2 ]; then
    sed -n '5,10p' "$0" >&2
    exit 2
fi
bin=$(readlink -f "$1")
out=$2
runs=${3:-3}
shift 2
[ $# -gt 0 ] && shift
threads=${*:-1 2}
ring_mb=${RING_MB:-4}
mkdir -p "$out"
work=$(mktemp -d)
tag="mwf$$"
cleanup() {
    ip netns del "$tag-tx" 2>/dev/null || true
    ip netns del "$tag-rx" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$bin" generate bench-mirror:2000 -o "$work/mirror.pcap" >/dev/null 2>&1
"$bin" generate bench-flood64:20000 -o "$work/flood64.pcap" >/dev/null 2>&1

link_up() {
    ip netns add "$tag-tx"
    ip netns add "$tag-rx"
    ip link add "${tag}a" type veth peer name "${tag}b"
    ip link set "${tag}a" netns "$tag-tx"
    ip link set "${tag}b" netns "$tag-rx"
    for side in "tx ${tag}a" "rx ${tag}b"; do
        set -- $side
        ip netns exec "$tag-$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" || true
        ip -n "$tag-$1" link set "$2" arp off mtu 9216 up
    done
}

link_down() {
    ip netns del "$tag-tx" 2>/dev/null || true
    ip netns del "$tag-rx" 2>/dev/null || true
}

csv="$out/rows.csv"
echo "input,capture_threads,ring_mb_per_socket,run,sent,offered_pps,send_s,received,kernel_dropped,queue_drops,processed,processed_pps,alerts,frames_per_thread,load1" > "$csv"
for input in mirror flood64; do
    pcap="$work/$input.pcap"
    for run in $(seq 1 "$runs"); do
        for t in $threads; do
            link_up
            events="$work/events-$input-$t-$run.json"
            ip netns exec "$tag-rx" "$bin" live --interface "${tag}b" --output "$events" \
                --capture-threads "$t" --buffer-mb "$(( ring_mb / t > 0 ? ring_mb / t : 1 ))" \
                --stats-interval 1s 2> "$work/stderr" &
            sensor=$!
            for _ in $(seq 1 100); do
                grep -q "capturing on" "$work/stderr" 2>/dev/null && break
                sleep 0.1
            done
            sent_out=$(ip netns exec "$tag-tx" tcpreplay --topspeed -K -i "${tag}a" "$pcap" 2>&1)
            sleep 2
            kill -TERM "$sensor"
            wait "$sensor" || true
            link_down
            sent=$(echo "$sent_out" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' | head -1)
            send_s=$(echo "$sent_out" | sed -n 's/.*Actual: .* in \([0-9.]*\) seconds.*/\1/p' | head -1)
            offered=$(echo "$sent_out" | sed -n 's/.*Rated: .*, \([0-9.]*\) pps.*/\1/p' | head -1)
            stats=$(grep '"event_type":"stats"' "$events" | tail -1)
            received=$(echo "$stats" | jq '.stats.capture.received')
            kdrop=$(echo "$stats" | jq '.stats.capture.kernel_dropped')
            qdrop=$(echo "$stats" | jq '.stats.queue_drops')
            processed=$(echo "$stats" | jq '.stats.packets')
            alerts=$(echo "$stats" | jq '[.stats.alerts[]] | add')
            per=$(sed -n 's/.*frames read per thread: //p' "$work/stderr" | tr -d ' ' | tr ',' '/')
            pps=$(awk -v p="$processed" -v s="$send_s" 'BEGIN { printf "%.0f", (s > 0 ? p / s : 0) }')
            load=$(cut -d' ' -f1 /proc/loadavg)
            echo "$input,$t,$(( ring_mb / t > 0 ? ring_mb / t : 1 )),$run,$sent,$offered,$send_s,$received,$kdrop,$qdrop,$processed,$pps,$alerts,${per:-$processed},$load" | tee -a "$csv"
        done
    done
done
