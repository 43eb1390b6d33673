#!/bin/sh
# `mirrorwatch replay` against `tcpdump -r F -w /dev/null` (reading and copying only) on the
# issue 14 mix, in the two states a capture file's page cache is found in (issue 14 goal 1).
#
# Usage: benches/replay-vs-read.sh MIRRORWATCH [RUNS] [INPUT]
#   MIRRORWATCH  a `mirrorwatch` binary (a release build)
#   RUNS         pairs per state (default 15); the two commands alternate, run by run
#   INPUT        the mix to use (default: built in a temporary folder from the captures of
#                ../shared/pcaps/mixed, 70 copies each shifted by a day: 1.53 M packets, 881 MB;
#                needs mergecap and editcap)
#
# The same bytes cost a reader more or less depending on how the kernel holds them. A file
# still cached since it was written by small writes (mergecap, tcpdump -w and most capture
# writers write 4 KiB at a time) sits in 4 KiB pages: reading it costs a copy per page, and
# mapping it a page-table entry per page. A file read back from storage is cached in large
# folios by read-ahead (ext4, XFS, tmpfs and others since Linux 6.x): a 2 MiB folio is mapped by
# one entry, and copied in one step. Each state gets its rows:
#   written        the file rewritten with 4 KiB writes, as a capture writer leaves it
#   from storage   the same file dropped from the cache (dd iflag=nocache) and read back
# Each figure is the median of RUNS whole-process runs, wall time from `date +%s%N`, events to
# /dev/null; "ratio" is the median of the per-pair ratios (mirrorwatch run i over tcpdump run
# i). The goal is a ratio of at most 0.5.
set -eu
. "$(dirname "$0")/stats.sh"

if [ $# -lt 1 ]; then
    sed -n '5,10p' "$0" >&2
    exit 2
fi
mw=$1
runs=${2:-15}
input=${3:-}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/replay-vs-read.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -z "$input" ]; then
    mixed=$(dirname "$0")/../../shared/pcaps/mixed
    set --
    for f in ndpi__1kxun.pcap nfstream__anydesk.pcap nfstream__instagram.pcap \
        nfstream__tor.pcap pcapparser__wireshark_samples-test.pcapng; do
        [ -f "$mixed/$f" ] || { echo "missing $mixed/$f: give INPUT" >&2; exit 2; }
        set -- "$@" "$mixed/$f"
    done
    mergecap -a -F pcap -s 262144 -w "$work/base.pcap" "$@"
    i=0
    while [ "$i" -lt 70 ]; do
        editcap -F pcap -t $((i * 86400)) "$work/base.pcap" "$work/c$(printf %02d "$i").pcap"
        i=$((i + 1))
    done
    mergecap -a -F pcap -s 262144 -w "$work/mix.pcap" "$work"/c*.pcap
    rm -f "$work"/c*.pcap "$work/base.pcap"
    input=$work/mix.pcap
fi
file=$work/input.pcap

wall_ms() {
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    echo $(((end - start) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }'
}

row() {
    : >"$work/mw"
    : >"$work/td"
    # One unmeasured run of each (binary pages, page tables of the shell).
    wall_ms "$mw" replay "$file" -o /dev/null >/dev/null
    wall_ms tcpdump -r "$file" -w /dev/null >/dev/null
    i=0
    while [ "$i" -lt "$runs" ]; do
        wall_ms "$mw" replay "$file" -o /dev/null >>"$work/mw"
        wall_ms tcpdump -r "$file" -w /dev/null >>"$work/td"
        i=$((i + 1))
    done
    printf '| %s | %s ms | %s ms | %s |\n' "$1" "$(median <"$work/mw")" "$(median <"$work/td")" \
        "$(paste "$work/mw" "$work/td" | awk '{ if ($2 > 0) print $1 / $2 }' | median)"
}

echo "input: $(basename "$input"), $(du -m "$input" | cut -f1) MB; $runs pairs per state (alternating), medians"
echo
echo '| page cache of the input | mirrorwatch replay | tcpdump -r F -w /dev/null | ratio |'
echo '| --- | ---: | ---: | ---: |'
dd if="$input" of="$file" bs=4096 2>/dev/null
# Written back before timing: the kernel's flush of 881 MB would otherwise run during the
# rows on the same two cores, and dirty pages are not dropped by the eviction below.
sync "$file"
row "written (4 KiB writes)"
dd if="$file" iflag=nocache count=0 2>/dev/null
cat "$file" >/dev/null
row "from storage (read back)"
