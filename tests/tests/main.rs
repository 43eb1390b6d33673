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
// Issue 16: the committed fuzzing corpora and crash regressions through the fuzz entry points.
mod fuzz_corpus;
