#!/usr/bin/env bash
# Rebuilds the release binary and regenerates every case's input.pcap with the seed recorded
# in its case.toml, and checks each case's optional config.toml the way the case runner will
# use it. Run from anywhere; review the diff and the checks.toml files afterwards, then run
# `cargo test -p mirrorwatch-tests --test main pcap_cases`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

cargo build --release -p mirrorwatch
binary="${CARGO_TARGET_DIR:-$repo_root/target}/release/mirrorwatch"

# Every scenario the generator knows has a case folder (the generator's tests check the
# converse too).
while read -r name _; do
    if [[ ! -f "pcaps/$name/case.toml" ]]; then
        echo "scenario $name has no pcaps/$name/case.toml" >&2
        exit 1
    fi
done < <("$binary" generate --list)

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
    # The case runner replays with `--config config.toml` when the case has one.
    if [[ -f "$case_dir/config.toml" ]]; then
        "$binary" config check "$case_dir/config.toml"
    fi
done
