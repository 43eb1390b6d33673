#!/usr/bin/env bash
# Rebuilds the release binary and regenerates every case's input.pcap with the seed recorded
# in its case.toml. Run from anywhere; review the diff and the checks.toml files afterwards.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

cargo build --release -p mirrorwatch
binary="${CARGO_TARGET_DIR:-$repo_root/target}/release/mirrorwatch"

for case_toml in pcaps/*/case.toml; do
    case_dir="$(dirname "$case_toml")"
    name="$(basename "$case_dir")"
    scenario="$(sed -n 's/^scenario *= *"\([a-z0-9-]*\)" *$/\1/p' "$case_toml")"
    seed="$(sed -n 's/^seed *= *\([0-9][0-9]*\) *$/\1/p' "$case_toml")"
    if [[ "$scenario" != "$name" || -z "$seed" ]]; then
        echo "$case_toml: needs scenario = \"$name\" and a seed = N line" >&2
        exit 1
    fi
    echo "mirrorwatch generate $name --seed $seed -o $case_dir/input.pcap"
    "$binary" generate "$name" --seed "$seed" -o "$case_dir/input.pcap"
done
