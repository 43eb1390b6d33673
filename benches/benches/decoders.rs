//! Per-header cost of each decoder view we write ourselves (VXLAN, Geneve, GRE, ERSPAN II and
//! III, MPLS), and of the full layer walk (`Decoder::decode`) on one frame of each kind.
//!
//! Each view case parses one header in front of a 60-byte inner frame with `from_slice` and
//! reads the fields the walk reads (id, protocol, payload), so the figure is what one layer
//! costs the walk. The walk cases decode a whole frame: plain Ethernet/IPv4/TCP, and the same
//! inner frame in VXLAN, Geneve (two options), IP-in-GRE (key, sequence), ERSPAN II,
//! ERSPAN III and a two-label MPLS stack. Headers come from the generator's writers
//! (`generate::encap`), so they are the bytes the pcap cases use.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench decoders -- --warm-up-time 1 --measurement-time 3`.

// A bench that cannot build its input must stop loudly; not a packet path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::{IpNumber, PacketBuilder};
use mirrorwatch::decode::erspan::{Erspan2Slice, Erspan3Slice};
use mirrorwatch::decode::geneve::GeneveSlice;
use mirrorwatch::decode::gre::GreSlice;
use mirrorwatch::decode::link::LinkType;
use mirrorwatch::decode::mpls::MplsSlice;
use mirrorwatch::decode::vxlan::VxlanSlice;
use mirrorwatch::decode::{DecodeConfig, DecodeCounters, Decoder};
use mirrorwatch::generate::encap::{
    Erspan3Fields, GRE_PROTO_ERSPAN_1_2, GRE_PROTO_ERSPAN_3, GeneveOption, GreFields, VXLAN_PORT,
    erspan2_header, erspan3_header, geneve_header, gre_header, vxlan_header,
};

/// Labels of the MPLS case.
const MPLS_LABELS: [u32; 2] = [16_000, 16_001];

/// A minimum-size Ethernet/IPv4/TCP frame (60 bytes).
fn inner_frame() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [192, 0, 2, 7], 64)
        .tcp(40_000, 443, 1, 65_535)
        .ack(1)
        .write(&mut out, &[0; 6])
        .unwrap();
    out
}

fn geneve_options() -> Vec<GeneveOption> {
    vec![
        GeneveOption {
            class: 0x0108,
            option_type: 1,
            data: vec![0; 8],
        },
        GeneveOption {
            class: 0x0108,
            option_type: 2,
            data: vec![0; 4],
        },
    ]
}

/// The MPLS label stack (bottom-of-stack on the last), then an IPv4 packet.
fn mpls_payload(ip: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in MPLS_LABELS.iter().enumerate() {
        let bottom = if i + 1 == MPLS_LABELS.len() {
            1 << 8
        } else {
            0
        };
        out.extend_from_slice(&((label << 12) | bottom | 64).to_be_bytes());
    }
    out.extend_from_slice(ip);
    out
}

/// One header in front of `inner`, as each view parses it.
struct Headers {
    vxlan: Vec<u8>,
    geneve: Vec<u8>,
    gre: Vec<u8>,
    erspan2: Vec<u8>,
    erspan3: Vec<u8>,
    mpls: Vec<u8>,
}

fn headers(inner: &[u8]) -> Headers {
    let cat = |h: &[u8]| [h, inner].concat();
    let ip = &inner[14..];
    let gre_fields = GreFields {
        sequence: Some(7),
        ..GreFields::new(0x0800, Some(300))
    };
    Headers {
        vxlan: cat(&vxlan_header(100).unwrap()),
        geneve: cat(&geneve_header(200, 0x6558, &geneve_options()).unwrap()),
        gre: [gre_header(&gre_fields, ip).as_slice(), ip].concat(),
        erspan2: cat(&erspan2_header(101, 0, 5).unwrap()),
        erspan3: cat(&erspan3_header(&erspan3_fields()).unwrap()),
        mpls: mpls_payload(ip),
    }
}

fn erspan3_fields() -> Erspan3Fields {
    Erspan3Fields {
        session_id: 300,
        vlan: 0,
        timestamp: 12_345,
        hardware_id: 1,
        egress: false,
        platform: None,
    }
}

/// Whole frames for the walk, by name.
fn frames(inner: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let outer = || {
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 5], [2, 0, 0, 0, 0, 9]).ipv4(
            [10, 10, 0, 5],
            [203, 0, 113, 50],
            64,
        )
    };
    let ip = &inner[14..];
    let mut out = vec![("plain", inner.to_vec())];
    let mut f = Vec::new();
    let payload = [vxlan_header(100).unwrap().as_slice(), inner].concat();
    outer()
        .udp(50_000, VXLAN_PORT)
        .write(&mut f, &payload)
        .unwrap();
    out.push(("vxlan", std::mem::take(&mut f)));
    let payload = [
        geneve_header(200, 0x6558, &geneve_options())
            .unwrap()
            .as_slice(),
        inner,
    ]
    .concat();
    outer().udp(50_000, 6_081).write(&mut f, &payload).unwrap();
    out.push(("geneve", std::mem::take(&mut f)));
    let fields = GreFields {
        sequence: Some(7),
        ..GreFields::new(0x0800, Some(300))
    };
    let payload = [gre_header(&fields, ip).as_slice(), ip].concat();
    outer().write(&mut f, IpNumber::GRE, &payload).unwrap();
    out.push(("gre", std::mem::take(&mut f)));
    let fields = GreFields {
        sequence: Some(7),
        ..GreFields::new(GRE_PROTO_ERSPAN_1_2, None)
    };
    let erspan = [erspan2_header(101, 0, 5).unwrap().as_slice(), inner].concat();
    let payload = [gre_header(&fields, &erspan).as_slice(), &erspan].concat();
    outer().write(&mut f, IpNumber::GRE, &payload).unwrap();
    out.push(("erspan2", std::mem::take(&mut f)));
    let fields = GreFields {
        sequence: Some(7),
        ..GreFields::new(GRE_PROTO_ERSPAN_3, None)
    };
    let erspan = [erspan3_header(&erspan3_fields()).unwrap().as_slice(), inner].concat();
    let payload = [gre_header(&fields, &erspan).as_slice(), &erspan].concat();
    outer().write(&mut f, IpNumber::GRE, &payload).unwrap();
    out.push(("erspan3", std::mem::take(&mut f)));
    // Ethernet with EtherType 0x8847, then the label stack and the IPv4 packet.
    let mut mpls = inner[..12].to_vec();
    mpls.extend_from_slice(&0x8847u16.to_be_bytes());
    mpls.extend_from_slice(&mpls_payload(ip));
    out.push(("mpls", mpls));
    out
}

fn views(c: &mut Criterion) {
    let inner = inner_frame();
    let h = headers(&inner);
    let mut g = c.benchmark_group("view");
    g.throughput(Throughput::Elements(1));
    g.bench_function("vxlan", |b| {
        b.iter(|| {
            let v = VxlanSlice::from_slice(black_box(&h.vxlan)).unwrap();
            black_box((v.vni(), v.payload().len()))
        });
    });
    g.bench_function("geneve", |b| {
        b.iter(|| {
            let v = GeneveSlice::from_slice(black_box(&h.geneve)).unwrap();
            black_box((
                v.vni(),
                v.protocol_type(),
                v.options().count(),
                v.payload().len(),
            ))
        });
    });
    g.bench_function("gre", |b| {
        b.iter(|| {
            let v = GreSlice::from_slice(black_box(&h.gre)).unwrap();
            black_box((v.protocol_type(), v.key(), v.sequence(), v.payload().len()))
        });
    });
    g.bench_function("erspan2", |b| {
        b.iter(|| {
            let v = Erspan2Slice::from_slice(black_box(&h.erspan2)).unwrap();
            black_box((v.session_id(), v.index(), v.payload().len()))
        });
    });
    g.bench_function("erspan3", |b| {
        b.iter(|| {
            let v = Erspan3Slice::from_slice(black_box(&h.erspan3)).unwrap();
            black_box((v.session_id(), v.payload().len()))
        });
    });
    g.bench_function("mpls", |b| {
        b.iter(|| {
            let v = MplsSlice::from_slice(black_box(&h.mpls), 8).unwrap();
            black_box((v.label_count(), v.top_label(), v.payload().len()))
        });
    });
    g.finish();
}

fn walk(c: &mut Criterion) {
    let inner = inner_frame();
    let decoder = Decoder::new(DecodeConfig::default());
    let mut g = c.benchmark_group("walk");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in frames(&inner) {
        // The frame must decode to the inner TCP packet, through the expected tunnel count.
        let mut counters = DecodeCounters::default();
        let d = decoder.decode(
            LinkType::ETHERNET,
            &frame,
            frame.len() as u32,
            &mut counters,
        );
        let inner_port = d.inner.map(|p| p.dst_port);
        assert_eq!(inner_port, Some(443), "{name}: inner TCP packet");
        let tunnels = usize::from(!matches!(name, "plain" | "mpls"));
        assert_eq!(d.tunnels.len(), tunnels, "{name}: tunnel layers");
        g.bench_function(name, |b| {
            b.iter(|| {
                let d = decoder.decode(
                    LinkType::ETHERNET,
                    black_box(&frame),
                    frame.len() as u32,
                    &mut counters,
                );
                black_box(d.inner.map(|p| p.ip_len))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, views, walk);
criterion_main!(benches);
