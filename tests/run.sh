#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then checks
# formatting, lints and runs every test. This is the command README.md shows and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v editcap >/dev/null 2>&1 || need+=(wireshark-common)
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
# The live tests build a veth link between network namespaces and read offload settings.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
# The output tests run a real Redis; the package test checks the units with systemd-analyze.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
# The report test renders the HTML report in headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The harness's peer rows (benches/peers.toml) run flow exporters beside tcpdump and tshark.
command -v argus >/dev/null 2>&1 || need+=(argus-server)
command -v ra >/dev/null 2>&1 || need+=(argus-client)
command -v softflowd >/dev/null 2>&1 || need+=(softflowd)
[ -e /usr/include/pcap.h ] || [ -e /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Community ID test compares with the reference implementation (PyPI: communityid).
if ! python3 -c 'import communityid' >/dev/null 2>&1; then
  echo "tests/run.sh: installing communityid (PyPI)" >&2
  python3 -m pip install -q communityid 2>/dev/null \
    || python3 -m pip install -q --break-system-packages communityid
fi
# The Debian package (tests/tests/package.rs installs it). cargo-deb is built once per machine
# (about 3 minutes on 2 cores), the package's release build takes about 4 more.
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked
cargo deb -p mirrorwatch --locked

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# Cargo's last lines are the (empty) doc-test runs; end with the total over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"
