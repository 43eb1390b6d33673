#!/usr/bin/env python3
"""Builds the fuzzers' seed corpora, never committed: `seeds/own/<target>/` from the project's
generated cases (pcaps/), and `seeds/shared/<target>/` from the shared third-party captures
(../shared/pcaps/) when present. The committed `corpus/<target>/` is minimised from the own
seeds and what fuzzing found from them only, so no third-party bytes enter the repository;
the shared seeds are passed to a run as a second, read-only corpus directory (README.md).

Frames are taken from classic pcap files (pcapng inputs are converted with editcap when it is
installed); the first byte of a layer_walk seed selects the link type as fuzzing.rs does.
An eve_round_trip seed is a capture in that target's frame format (fuzzing.rs
`eve_round_trip`: link selector, name, then gap/length/bytes per frame). control_records
seeds are the control-plane files of the generated cases (pcaps/control-*/input.audit/, the
asset and change-record files), whole and line by line, behind the selector of each reader
that may read them.
"""
import gzip, hashlib, os, struct, subprocess, sys, tempfile, zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEEDS = HERE / "seeds"
# Index of the link type in fuzzing.rs FUZZ_LINKS.
LINK_SELECTOR = {1: 0, 101: 1, 228: 2, 229: 3, 113: 4, 276: 5, 0: 6, 108: 7}
MAX_FILE_SEED = 256 * 1024
MAX_FRAMES_PER_FILE = 200
# eve_round_trip: frames per seed (beacon cases need a few minutes of beats) and the name cap
# of fuzzing.rs MAX_EVE_NAME.
MAX_EVE_FRAMES = 600
MAX_EVE_NAME = 47
# control_records selectors (fuzzing.rs): sniffed, JSON, CSV, syslog, device configuration,
# raw file, gzip-compressed file, asset and change-record loaders.
SNIFF, JSON_READER, CSV_READER, SYSLOG, DEVICE, RAW_FILE, GZIP_FILE, TABLES = range(8)


def put_seed(target, data, origin="own"):
    d = SEEDS / origin / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_frames(raw):
    """(linktype, frame) of a classic pcap (either byte order), stopping at damage."""
    for link, _, frame in pcap_records(raw):
        yield link, frame


def pcap_records(raw):
    """(linktype, time in ns, frame) of a classic pcap (either byte order, µs or ns)."""
    if len(raw) < 24:
        return
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return
    scale = 1 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1000
    link = struct.unpack(e + "I", raw[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(raw):
        sec, frac, incl, _ = struct.unpack(e + "IIII", raw[off:off + 16])
        off += 16
        if incl > 262144 or off + incl > len(raw):
            return
        yield link, sec * 1_000_000_000 + frac * scale, raw[off:off + incl]
        off += incl


def eve_seed(name, raw):
    """A capture in eve_round_trip's frame format, or None when its link type is not one the
    target picks."""
    out = bytearray()
    last = None
    for n, (link, ts, frame) in enumerate(pcap_records(raw)):
        if n >= MAX_EVE_FRAMES or len(out) > MAX_FILE_SEED:
            break
        sel = LINK_SELECTOR.get(link)
        if sel is None:
            return None
        if last is None:
            label = name.encode()[:MAX_EVE_NAME]
            out += bytes([sel, len(label)]) + label
            last = ts
        gap_ms = max(0, ts - last) // 1_000_000
        # Milliseconds up to 32767, whole seconds (top bit) beyond.
        gap = gap_ms if gap_ms < 0x8000 else 0x8000 | min(gap_ms // 1000, 0x7FFF)
        last = ts
        frame = frame[:0xFFFF]
        out += struct.pack(">HH", gap, len(frame)) + frame
    return bytes(out) if out else None


def control_seeds():
    """(selector, bytes) seeds from the generated control-plane cases."""
    for case in sorted((ROOT / "pcaps").glob("control-*")):
        for f in sorted((case / "input.audit").glob("*")):
            raw = f.read_bytes()
            yield RAW_FILE, raw
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            yield GZIP_FILE, text
            name = f.name.lower()
            if name.endswith((".json", ".json.gz", ".jsonl")):
                reader = JSON_READER
            elif name.endswith(".csv"):
                reader = CSV_READER
            elif name.endswith(".log"):
                reader = SYSLOG
            else:
                reader = DEVICE
            for sel in (SNIFF, reader):
                if len(text) <= MAX_FILE_SEED:
                    yield sel, text
            lines = text.splitlines(keepends=True)
            # Line-delimited formats also give one seed per line (a CSV line keeps its header).
            if reader in (JSON_READER, SYSLOG) and len(lines) > 1:
                for line in lines:
                    yield SNIFF, line
                    yield reader, line
            elif reader == CSV_READER:
                for line in lines[1:]:
                    yield reader, lines[0] + line
        for table in ("input.assets.csv", "input.changes.csv"):
            p = case / table
            if p.is_file():
                yield TABLES, p.read_bytes()


def as_pcap(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return b""
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        with tempfile.NamedTemporaryFile(suffix=".pcap") as out:
            r = subprocess.run(["editcap", "-F", "pcap", str(path), out.name],
                               capture_output=True)
            return Path(out.name).read_bytes() if r.returncode == 0 else b""
    return raw


def dns_payloads(path):
    try:
        r = subprocess.run(["tshark", "-r", str(path), "-Y", "dns && udp", "-T", "fields",
                            "-e", "udp.payload"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = []
    for h in r.stdout.replace(",", " ").split():
        try:
            out.append(bytes.fromhex(h.replace(":", "")))
        except ValueError:
            continue
    return out


def main():
    inputs = [(p, "own") for p in sorted((ROOT / "pcaps").glob("*/input.pcap"))]
    shared = ROOT.parent / "shared" / "pcaps"
    if shared.is_dir():
        inputs += [(p, "shared") for p in sorted(shared.rglob("*"))
                   if p.is_file() and p.suffix != ".tsv"]
    else:
        print(f"seed.py: {shared} absent, seeding from pcaps/ only", file=sys.stderr)
    for path, origin in inputs:
        put = lambda target, data: put_seed(target, data, origin)  # noqa: E731
        raw = path.read_bytes()
        if len(raw) <= MAX_FILE_SEED:
            put("capture_file", raw)
        for n, (link, frame) in enumerate(pcap_frames(as_pcap(path))):
            if n >= MAX_FRAMES_PER_FILE:
                break
            sel = LINK_SELECTOR.get(link)
            if sel is not None:
                put("layer_walk", bytes([sel]) + frame)
                # Our views see what follows Ethernet + IPv4 + UDP/GRE; offer the tail.
                for cut, view in ((42, 0), (42, 2), (38, 4), (46, 6), (46, 7)):
                    if len(frame) > cut:
                        put("decoder_views", bytes([view]) + frame[cut:])
        for payload in dns_payloads(path):
            put("dns_message", payload)
        try:
            label = str(path.relative_to(ROOT))
        except ValueError:
            label = path.name
        eve = eve_seed(label, as_pcap(path))
        if eve is not None:
            put("eve_round_trip", eve)
    small = sorted((ROOT / "pcaps").glob("*/input.pcap"), key=lambda p: p.stat().st_size)[:3]
    for p in small:
        put_seed("capture_file", gzip.compress(p.read_bytes()))
        z = subprocess.run(["zstd", "-c", str(p)], capture_output=True)
        if z.returncode == 0:
            put_seed("capture_file", z.stdout)
    put_seed("config_toml", (ROOT / "sensor/src/default_config.toml").read_bytes())
    for cfg in (ROOT / "pcaps").glob("*/*.toml"):
        put_seed("config_toml", cfg.read_bytes())
    put_seed("baseline_file", b"# known\n203.0.113.7\n2001:db8::1\n\n198.51.100.9 # comment\n")
    put_seed("baseline_file", b"not an address\n")
    for sel, data in control_seeds():
        put_seed("control_records", bytes([sel]) + data)


def cap(target, keep):
    """Keeps the `keep` seeds with the lowest hashes: a deterministic sample for cmin."""
    for origin in ("own", "shared"):
        d = SEEDS / origin / target
        names = sorted(d.iterdir()) if d.is_dir() else []
        for p in names[keep:]:
            p.unlink()


if __name__ == "__main__":
    main()
    cap("layer_walk", 4000)
    cap("decoder_views", 4000)
