//! End-to-end tests of the `mirrorwatch` binary and library.
// Helpers in test files are test code too: a failed unwrap fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Every folder of `pcaps/`: replay it and hold the output to its checks.toml.
mod pcap_cases;
// The command line: configuration errors, damaged inputs, compressed inputs, signals.
mod cli;
// `mirrorwatch bench` (issue 7): JSON shape, counts equal to a replay of the same input, peers,
// the recorded run folder.
mod bench;
// Real third-party captures in ../shared/pcaps: every file replays, tshark agrees on tunnels
// and inner flows.
mod real_captures;
// Issue 6, the live sensor: a veth link per test, tcpreplay in, `mirrorwatch live` out;
// events equal to replay, SIGTERM and SIGHUP, privilege and output errors.
mod live;
// Issue 14 goal 5: live capture on several threads (`--capture-threads 2`, a kernel fanout
// group on the outer IP pair) gives the events of a replay.
mod fanout;
// Issue 16 item 2: `tc ... mirred egress mirror` into every tunnel device the kernel has
// (gretap, ip6gretap, erspan, vxlan, geneve, ipip, sit, ip6tnl), captured live.
mod mirred;
// Issue 16: the committed fuzzing corpora and crash regressions through the fuzz entry points.
mod fuzz_corpus;
// Issue 12, the control plane: `mirrorwatch audit`, damaged record files, `[control]` errors.
mod control;
// Issues 11, 17.1 and 18.1: alerts on real traffic (../shared/pcaps/wild), a folder as its
// captures, pieces as the whole, jittered timestamps, the same events whatever the workers.
mod precision;
// Issue 13 outputs: Redis (list, channel, stream; stalled, killed), Unix sockets, syslog, file
// modes and planted symlinks, the live sensor never waiting on an output (issue 18, 10 and 12).
mod outputs;
// Issue 13 packaging: the `cargo deb` package installs (dpkg -i), its units verify, it purges.
mod package;
// Issue 13, Suricata-exact EVE: schema validation, Community ID, documented examples.
mod eve;
// Issue 15, the hunting report: replay --report and `mirrorwatch report`, rendered in headless
// Chromium.
mod report;
