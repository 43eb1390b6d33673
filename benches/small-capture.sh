#!/bin/sh
# Peak RSS and wall time of whole `mirrorwatch replay` processes, two builds side by side
# (issue 14 goal 2: cost grows with the input, not with the capacity).
#
# Usage: benches/small-capture.sh BEFORE AFTER [RUNS] [BIG.pcap]
#   BEFORE, AFTER  two `mirrorwatch` binaries (e.g. built from main and from a branch)
#   RUNS           runs per binary and row (default 15); the two binaries alternate, run by run
#   BIG.pcap       optional large capture: adds a throughput row (wall and user+system time)
#
# Rows: the 100-packet generated capture `precision-mirror-sampled` (seed 1), replayed with 1
# and 2 workers, events to /dev/null; then BIG.pcap with the default worker count.
# Each figure is the median of RUNS whole-process runs (start-up included): wall from
# `date +%s%N` around the process, peak RSS and CPU from GNU time (`/usr/bin/time`).
# GNU time counts CPU in 10 ms steps: on the small rows it says little (a ratio is n/a when a
# BEFORE run counted 0).
# "after/before" is the median of the per-pair ratios (run i of AFTER over run i of BEFORE),
# which keeps the ratio meaningful while the machine's speed drifts.
set -eu
. "$(dirname "$0")/stats.sh"

if [ $# -lt 2 ]; then
    sed -n '5,10p' "$0" >&2
    exit 2
fi
before=$1
after=$2
runs=${3:-15}
big=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

small="$work/small.pcap"
"$after" generate precision-mirror-sampled --seed 1 -o "$small" 2>/dev/null

# One run: prints "wall_ms peak_kib cpu_s".
run_once() {
    bin=$1
    shift
    start=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$work/time" "$bin" replay "$@" -o /dev/null >/dev/null 2>&1
    end=$(date +%s%N)
    read -r peak user sys <"$work/time"
    awk -v w=$(((end - start) / 1000)) -v p="$peak" -v u="$user" -v s="$sys" \
        'BEGIN { printf "%.2f %d %.3f\n", w / 1000, p, u + s }'
}

# row LABEL ARGS...: RUNS alternating runs of each binary, one table line.
row() {
    label=$1
    shift
    : >"$work/before"
    : >"$work/after"
    # One unmeasured run of each (page cache, binary pages).
    run_once "$before" "$@" >/dev/null
    run_once "$after" "$@" >/dev/null
    i=0
    while [ "$i" -lt "$runs" ]; do
        run_once "$before" "$@" >>"$work/before"
        run_once "$after" "$@" >>"$work/after"
        i=$((i + 1))
    done
    col() { awk -v c="$2" '{ print $c }' "$work/$1" | median; }
    ratio() { paste "$work/after" "$work/before" | awk -v a="$1" -v b="$(($1 + 3))" '{ if ($b > 0) print $a / $b }' | median; }
    printf '| %s | %s ms | %s ms | %s | %s MiB | %s MiB | %s s | %s s | %s |\n' "$label" \
        "$(col before 1)" "$(col after 1)" "$(ratio 1)" \
        "$(col before 2 | awk '{ printf "%.1f", $1 / 1024 }')" \
        "$(col after 2 | awk '{ printf "%.1f", $1 / 1024 }')" \
        "$(col before 3)" "$(col after 3)" "$(ratio 3)"
}

echo "runs per binary and row: $runs (alternating), medians"
echo
echo '| input | wall before | wall after | wall after/before | peak RSS before | peak RSS after | cpu before | cpu after | cpu after/before |'
echo '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
row "100 packets, 1 worker" -w 1 "$small"
row "100 packets, 2 workers" -w 2 "$small"
if [ -n "$big" ]; then
    row "$(basename "$big") ($(du -m "$big" | cut -f1) MB), default workers" "$big"
fi
