//! Issue 12, the control plane, measured.
//!
//! - `audit/cloudtrail_records`: what `mirrorwatch audit` does with a CloudTrail delivery
//!   file short of writing events: content sniffing, the streaming read of a
//!   `{"Records": [...]}` document of 50,000 traffic-mirroring calls (sessions, targets,
//!   filters, a failed call every 50th, an unrelated call every 10th) built in memory at
//!   start, the configured-session inventory and the judgement of every change. Throughput in
//!   records; the summary printed before criterion gives records/s (median of 5).
//! - `correlation/<with|without>_audit`: the VXLAN pipeline (one worker, 20,000 flows of 10
//!   packets through 16 mirror sessions, `mirrorwatch_benches::Traffic`) with and without a
//!   correlator holding 16 matching and 1,000 other configured sessions, in one run,
//!   interleaved. Correlation runs per tunnel session decision and record, never per packet,
//!   so the two rows should be equal within noise.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench control -- --warm-up-time 1 --measurement-time 4`.

// A bench that cannot build its input or gets wrong counts must stop loudly; not packet paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowtable::Timestamp;
use mirrorwatch::alert::{EventWriter, OutputTarget};
use mirrorwatch::config::Config;
use mirrorwatch::control::correlate::Correlator;
use mirrorwatch::control::inventory::{Assets, ConfiguredSession, ControlInventory};
use mirrorwatch::control::{Provider, ReadOptions, ReadOutcome, read_bytes};
use mirrorwatch::pipeline::{Pipeline, PipelineOptions};
use mirrorwatch_benches::{Encapsulation, MixSpec, Traffic};

// The allocator of the `mirrorwatch` binary, so the audit rows measure what the command does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records in the CloudTrail document.
const RECORDS: usize = 50_000;

/// The CloudTrail delivery document: `RECORDS` records; with `mixed`, nine in ten are other
/// API calls (as in a real account's trail), else nine in ten are traffic-mirroring calls.
fn cloudtrail_document(mixed: bool) -> Vec<u8> {
    let mut doc = String::from("{\"Records\":[");
    for i in 0..RECORDS {
        if i > 0 {
            doc.push(',');
        }
        let kind = if mixed {
            (i / 10 % 10 + 1) * usize::from(i % 10 == 0)
        } else {
            i % 10
        };
        let (name, request, response) = match kind {
            0 => (
                "DescribeInstances",
                format!(
                    "{{\"instancesSet\":{{\"items\":[{{\"instanceId\":\"i-{i:017x}\"}}]}},\"filterSet\":{{}}}}"
                ),
                "null".to_owned(),
            ),
            1 => (
                "CreateTrafficMirrorTarget",
                format!(
                    "{{\"CreateTrafficMirrorTargetRequest\":{{\"NetworkInterfaceId\":\"eni-c{i:016x}\",\"ClientToken\":\"t{i}\"}}}}"
                ),
                format!(
                    "{{\"CreateTrafficMirrorTargetResponse\":{{\"trafficMirrorTarget\":{{\"trafficMirrorTargetId\":\"tmt-{i:017x}\",\"networkInterfaceId\":\"eni-c{i:016x}\",\"type\":\"network-interface\"}}}}}}"
                ),
            ),
            2 => (
                "CreateTrafficMirrorFilter",
                "{\"CreateTrafficMirrorFilterRequest\":{\"Description\":\"all\"}}".to_owned(),
                format!(
                    "{{\"CreateTrafficMirrorFilterResponse\":{{\"trafficMirrorFilter\":{{\"trafficMirrorFilterId\":\"tmf-{i:017x}\"}}}}}}"
                ),
            ),
            _ => (
                "CreateTrafficMirrorSession",
                format!(
                    "{{\"CreateTrafficMirrorSessionRequest\":{{\"NetworkInterfaceId\":\"eni-s{i:016x}\",\"TrafficMirrorTargetId\":\"tmt-{:017x}\",\"TrafficMirrorFilterId\":\"tmf-{:017x}\",\"SessionNumber\":1,\"VirtualNetworkId\":{},\"ClientToken\":\"c{i}\"}}}}",
                    i / 10 * 10 + 1,
                    i / 10 * 10 + 2,
                    i % 16_000_000
                ),
                format!(
                    "{{\"CreateTrafficMirrorSessionResponse\":{{\"xmlns\":\"http://ec2.amazonaws.com/doc/2016-11-15/\",\"requestId\":\"r{i}\",\"trafficMirrorSession\":{{\"trafficMirrorSessionId\":\"tms-{i:017x}\",\"trafficMirrorTargetId\":\"tmt-{:017x}\",\"networkInterfaceId\":\"eni-s{i:016x}\",\"ownerId\":\"111122223333\",\"sessionNumber\":1,\"virtualNetworkId\":{}}}}}}}",
                    i / 10 * 10 + 1,
                    i % 16_000_000
                ),
            ),
        };
        let error = if i % 50 == 7 {
            ",\"errorCode\":\"Client.UnauthorizedOperation\",\"errorMessage\":\"You are not authorized to perform this operation.\""
        } else {
            ""
        };
        let secs = i % 3600;
        doc.push_str(&format!(
            "{{\"eventVersion\":\"1.09\",\"userIdentity\":{{\"type\":\"AssumedRole\",\"principalId\":\"AROAEXAMPLE:alice\",\"arn\":\"arn:aws:sts::111122223333:assumed-role/NetOps/alice\",\"accountId\":\"111122223333\",\"accessKeyId\":\"ASIAEXAMPLE{i:08}\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"arn\":\"arn:aws:iam::111122223333:role/NetOps\",\"accountId\":\"111122223333\",\"userName\":\"NetOps\"}},\"attributes\":{{\"creationDate\":\"2026-01-05T08:00:00Z\",\"mfaAuthenticated\":\"true\"}}}}}},\"eventTime\":\"2026-01-05T{:02}:{:02}:{:02}Z\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"{name}\",\"awsRegion\":\"eu-west-1\",\"sourceIPAddress\":\"198.51.100.23\",\"userAgent\":\"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023\",\"requestParameters\":{request},\"responseElements\":{response}{error},\"requestID\":\"req-{i}\",\"eventID\":\"ev-{i}\",\"readOnly\":false,\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":\"111122223333\",\"eventCategory\":\"Management\",\"tlsDetails\":{{\"tlsVersion\":\"TLSv1.3\",\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"clientProvidedHostHeader\":\"ec2.eu-west-1.amazonaws.com\"}}}}",
            8 + secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
    }
    doc.push_str("]}");
    doc.into_bytes()
}

/// Reads, inventories and judges the document; returns (records, changes, sessions).
fn audit_pass(doc: &[u8], config: &Config) -> (u64, usize, usize) {
    let mut out = ReadOutcome::default();
    read_bytes(
        doc,
        &Arc::from("bench.json"),
        ReadOptions::default(),
        &mut out,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors.first());
    let records = out.records;
    let inv = ControlInventory::build(out.changes, &Assets::default(), config, &[], false);
    (records, inv.changes.len(), inv.sessions.len())
}

/// A correlator with 16 sessions matching the bench traffic's collector and 1,000 others.
fn correlator(config: &Config) -> Arc<Mutex<Correlator>> {
    let session = |i: u32, collector: [u8; 4]| ConfiguredSession {
        provider: Provider::Aws,
        id: format!("tms-{i:017x}"),
        sources: Vec::new(),
        source_ip: None,
        collector: None,
        collector_ip: Some(std::net::IpAddr::from(collector)),
        kind: None,
        tunnel_id: None,
        created: Some(Timestamp::from_secs_nanos(1_767_600_000, 0)),
        modified: None,
        deleted: None,
        last_change: usize::MAX,
        approved: true,
        change_record: None,
        reasons: Vec::new(),
    };
    let mut inv = ControlInventory::default();
    for i in 0..1_000u32 {
        let [_, _, hi, lo] = i.to_be_bytes();
        inv.sessions.push(session(i, [10, 251, hi, lo]));
    }
    for i in 0..16u32 {
        inv.sessions.push(session(10_000 + i, [10, 250, 0, 10]));
    }
    Arc::new(Mutex::new(Correlator::new(inv, config)))
}

/// One pipeline run; returns the time of push + finish and the tunnel records written.
fn pipeline_run(config: &Config, traffic: &Traffic, with_audit: bool) -> (StdDuration, u64) {
    let out = std::env::temp_dir().join(format!("mw-bench-control-{}.json", std::process::id()));
    let writer = EventWriter::spawn(&OutputTarget::File(out.clone())).unwrap();
    let options = PipelineOptions {
        workers: 1,
        flow_records: false,
        drop_when_full: false,
    };
    let mut pipeline = Pipeline::start(config, options, || writer.sink()).unwrap();
    let control = with_audit.then(|| correlator(config));
    if let Some(c) = &control {
        pipeline.set_control(Arc::clone(c));
    }
    let start = Instant::now();
    for rec in traffic.records() {
        pipeline.push(&rec).unwrap();
    }
    let report = pipeline.finish().unwrap();
    let elapsed = start.elapsed();
    writer.finish().unwrap();
    let _ = std::fs::remove_file(&out);
    if let Some(c) = control {
        // The 16 sessions fix only the collector, so every tunnel record matches the first of
        // them: one session seen, and every record correlated.
        let seen = c.lock().unwrap().seen.iter().filter(|s| **s).count();
        assert_eq!(seen, 1, "tunnel records correlated");
    }
    (elapsed, report.tunnel_events)
}

fn bench_control(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    for (row, mixed) in [
        ("cloudtrail_records/mixed", true),
        ("cloudtrail_records/all_mirror", false),
    ] {
        let doc = cloudtrail_document(mixed);
        let (records, changes, sessions) = audit_pass(&doc, &config);
        assert_eq!(records, RECORDS as u64);
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                black_box(audit_pass(&doc, &config));
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "audit/{row}: {records} records ({:.1} MB, {changes} mirror changes, {sessions} sessions) in {:.3} s median: {:.0} records/s, {:.0} MB/s",
            doc.len() as f64 / 1e6,
            times[2],
            records as f64 / times[2],
            doc.len() as f64 / 1e6 / times[2]
        );
        group.bench_function(row, |b| b.iter(|| black_box(audit_pass(&doc, &config))));
    }
    group.finish();

    let spec = MixSpec {
        flows: 20_000,
        packets_per_flow: 10,
        mirror_sessions: 16,
        seed: 0x6d69_7272_6f72,
    };
    let traffic = Traffic::build(&spec, Encapsulation::Vxlan);
    // Interleaved summary: without, with, without, with ... (median of 5 each).
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..5 {
        let (t, n0) = pipeline_run(&config, &traffic, false);
        without.push(t.as_secs_f64());
        let (t, n1) = pipeline_run(&config, &traffic, true);
        with.push(t.as_secs_f64());
        assert_eq!(n0, n1);
        assert_eq!(n0, 16, "16 tunnel records");
    }
    without.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);
    let pkts = traffic.len() as f64;
    println!(
        "correlation: {} packets, 16 sessions; without_audit {:.1} ns/packet, with_audit {:.1} ns/packet (median of 5, interleaved)",
        traffic.len(),
        without[2] / pkts * 1e9,
        with[2] / pkts * 1e9
    );
    let mut group = c.benchmark_group("correlation");
    group.throughput(Throughput::Elements(traffic.len() as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    for (name, with_audit) in [("without_audit", false), ("with_audit", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| pipeline_run(&config, &traffic, with_audit).0)
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_control);
criterion_main!(benches);
