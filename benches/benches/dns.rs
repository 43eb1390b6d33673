//! Issue 19 item 3: the cost of one DNS message to the name cache is bounded whatever its
//! header claims. Compares an ordinary answer with hostile messages of the same wire size.
//!
//! Each case is what the capture thread does with a DNS response: the first question's name
//! and every A/AAAA answer (`DnsHeaderSlice::question_name` + `for_each_address`), and the
//! whole name-cache path (`NameCache::observe_query` of the matching query, then
//! `observe_response`: query match, walk, insert).
//! - `ordinary_answer`: one question (`api.example.com`), one A answer (generator's
//!   `dns_message`);
//! - `claims_65535_questions`: 1,500 bytes claiming 65,535 questions, each a compression
//!   pointer to a 200-byte name (before the caps: about 250 names walked, 100 times the
//!   ordinary cost);
//! - `four_questions_max_hops`: the costliest message for its bytes: 4 questions of 127
//!   one-byte labels each, then an answer; the walk stops when the 256 label hops of the
//!   budget are spent (a name only skipped stops at its first pointer, so pointers cost one
//!   hop each and never re-read a name).
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench dns -- --warm-up-time 1 --measurement-time 3`.

// A bench that cannot build its input must stop loudly; not a packet path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use flowtable::Timestamp;
use flowtable::key::ip_to_addr;
use mirrorwatch::decode::dns::{DnsHeaderSlice, MAX_NAME_LEN};
use mirrorwatch::generate::conversation::dns_message;
use mirrorwatch::names::{DnsEnds, NameCache};

fn claims_65535_questions() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0xff, 0xff, 0, 1, 0, 0, 0, 0];
    for _ in 0..4 {
        m.push(49);
        m.extend_from_slice(&[b'a'; 49]);
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    while m.len() + 6 <= 1500 {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    }
    m
}

fn four_questions_max_hops() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 4, 0, 1, 0, 0, 0, 0];
    for _ in 0..4 {
        for _ in 0..127 {
            m.extend_from_slice(&[1, b'x']);
        }
        m.push(0);
        m.extend_from_slice(&[0, 1, 0, 1]);
    }
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
    m
}

/// The query a response answers: its header with QR cleared and no answers, and its first
/// question.
fn query_of(response: &[u8]) -> Vec<u8> {
    let h = DnsHeaderSlice::from_slice(response).unwrap();
    let mut name = [0u8; MAX_NAME_LEN];
    let len = h.question_name(&mut name).unwrap();
    let name = std::str::from_utf8(&name[..len]).unwrap();
    dns_message(h.id(), name, None).unwrap()
}

fn walk(msg: &[u8]) -> usize {
    let h = DnsHeaderSlice::from_slice(msg).unwrap();
    let mut name = [0u8; MAX_NAME_LEN];
    let mut n = h.question_name(&mut name).unwrap_or(0);
    h.for_each_address(|ip| n += usize::from(ip.is_ipv4()));
    n
}

fn bench_dns(c: &mut Criterion) {
    let answer: IpAddr = "198.51.100.20".parse().unwrap();
    let cases = [
        (
            "ordinary_answer",
            dns_message(0x1234, "api.example.com", Some(answer)).unwrap(),
        ),
        ("claims_65535_questions", claims_65535_questions()),
        ("four_questions_max_hops", four_questions_max_hops()),
    ];
    let query_ends = DnsEnds {
        src: ip_to_addr("10.0.0.9".parse().unwrap()),
        src_port: 40000,
        dst: ip_to_addr("10.0.0.53".parse().unwrap()),
        dst_port: 53,
        context: 0,
    };
    let answer_ends = DnsEnds {
        src: query_ends.dst,
        src_port: 53,
        dst: query_ends.src,
        dst_port: 40000,
        context: 0,
    };
    let mut group = c.benchmark_group("dns_walk");
    for (name, msg) in &cases {
        eprintln!("{name}: {} bytes", msg.len());
        group.bench_function(*name, |b| b.iter(|| walk(black_box(msg))));
    }
    group.finish();
    let mut group = c.benchmark_group("dns_name_cache");
    let cache = NameCache::new(4096);
    for (name, msg) in &cases {
        let query = query_of(msg);
        group.bench_function(*name, |b| {
            b.iter(|| {
                cache.observe_query(&query_ends, black_box(&query), Timestamp(1));
                cache.observe_response(&answer_ends, black_box(msg), Timestamp(2));
            })
        });
    }
    group.finish();
    let s = cache.stats();
    assert!(
        s.answers > 0 && s.over_limit > 0 && s.answers_unsolicited == 0,
        "{s:?}"
    );
}

criterion_group!(benches, bench_dns);
criterion_main!(benches);
