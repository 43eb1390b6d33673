//! Issue 15, the hunting report: `replay --report` and `mirrorwatch report` on the bundled
//! cases, rendered in headless Chromium (console, sections, charts, screenshot pixels).

use std::path::{Path, PathBuf};
use std::process::Command;

use mirrorwatch_tests::{run, workspace_root};

const SECTIONS: [&str; 6] = [
    "summary",
    "mirror-map",
    "beacons",
    "extraneous",
    "inventory",
    "not-understood",
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mw-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every bundled case in one replay, with one case's approved collectors so the map shows
/// approved and unapproved sessions; returns (events, report).
fn demo_report(dir: &Path) -> (PathBuf, PathBuf) {
    let root = workspace_root();
    let events = dir.join("events.jsonl");
    let html = dir.join("report.html");
    let config = root.join("pcaps/collectors-vxlan/config.toml");
    let pcaps = root.join("pcaps");
    let out = run(&[
        "replay",
        "--flows",
        "--no-progress",
        "-c",
        config.to_str().unwrap(),
        "-o",
        events.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
        pcaps.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "replay --report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (events, html)
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Loads `page` in headless Chromium: the console lines it logged, its DOM after scripts ran,
/// and a screenshot (PNG bytes) of the top of the page.
fn render(browser: &str, page: &Path, dir: &Path) -> (Vec<String>, String, Vec<u8>) {
    let url = format!("file://{}", page.display());
    let shot = dir.join("shot.png");
    let base = |profile: &str| {
        let mut cmd = Command::new(browser);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,2000",
            "--enable-logging=stderr",
            "--v=0",
        ]);
        let profile = dir.join(profile);
        std::fs::create_dir_all(&profile).unwrap();
        cmd.arg(format!("--user-data-dir={}", profile.display()));
        cmd
    };
    let dom = base("profile-dom")
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(dom.status.success(), "chromium --dump-dom failed");
    let shot_run = base("profile-shot")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot_run.status.success(), "chromium --screenshot failed");
    // Chromium logs the page's console as `INFO:CONSOLE(line)] "message", source: ...`:
    // errors, warnings, refused fetches (the page's Content-Security-Policy) and uncaught
    // exceptions alike.
    let console = [&dom.stderr, &shot_run.stderr]
        .iter()
        .flat_map(|e| {
            String::from_utf8_lossy(e)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains(":CONSOLE"))
        .collect();
    let png = std::fs::read(&shot).unwrap();
    (
        console,
        String::from_utf8_lossy(&dom.stdout).into_owned(),
        png,
    )
}

/// The `<svg class="chart" ...>...</svg>` elements of a DOM.
fn charts(dom: &str) -> Vec<&str> {
    dom.match_indices("<svg class=\"chart\"")
        .map(|(i, _)| {
            let end = dom[i..].find("</svg>").map_or(dom.len(), |e| i + e);
            &dom[i..end]
        })
        .collect()
}

#[test]
fn demo_report_renders_in_chromium_with_every_section_and_chart() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED demo_report_renders_in_chromium: chromium is not installed (tests/run.sh installs it)"
        );
        return;
    };
    let dir = scratch("chromium");
    let (_, html) = demo_report(&dir);
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 5 << 20, "report is {size} bytes");

    // The checker itself can fail: a page with an uncaught error is caught.
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<html><body>x<script>noSuchFunction();</script></body></html>",
    )
    .unwrap();
    let (console, _, _) = render(browser, &bad, &dir);
    assert!(
        console.iter().any(|l| l.contains("Uncaught")),
        "the console check saw nothing on a failing page: {console:?}"
    );

    let (console, dom, png) = render(browser, &html, &dir);
    assert!(console.is_empty(), "console output: {console:#?}");
    // The sorting script ran to its end.
    assert!(
        dom.contains("data-script=\"ran\""),
        "the page's script did not run"
    );
    for id in SECTIONS {
        assert!(
            dom.contains(&format!("<section id=\"{id}\"")),
            "section {id} missing"
        );
    }
    let charts = charts(&dom);
    // Summary bars, mirror map, per beacon a score chart (and a timeline and two
    // histograms with flow records), extraneous time and reason charts, tunnel types and
    // classes, decode events.
    assert!(charts.len() >= 10, "only {} charts", charts.len());
    for c in &charts {
        let marks = ["<rect", "<line", "<path", "<circle"]
            .iter()
            .map(|m| c.matches(m).count())
            .sum::<usize>();
        assert!(marks > 0, "empty chart: {}", &c[..c.len().min(300)]);
    }
    // The beacons of the demo cases drew their beats from flow records.
    assert!(dom.contains("beats from flow records of this pair"));
    // Approved and unapproved sessions, inside and outside home, on the map.
    let map = charts
        .iter()
        .find(|c| c.contains("id=\"mirror-graph\""))
        .unwrap();
    for class in [
        "session mirror",
        "session overlay",
        "session unknown",
        "node home",
        "node outside",
    ] {
        assert!(map.contains(class), "mirror map lacks {class}");
    }
    assert!(
        map.contains("stroke-dasharray=\"5 4\" opacity"),
        "no approved session drawn"
    );

    let image = png_rgb(&png);
    assert_eq!((image.width, image.height), (1400, 2000));
    let background = image.pixel(image.width - 1, image.height / 2);
    let differing = (0..image.height)
        .flat_map(|y| (0..image.width).map(move |x| (x, y)))
        .filter(|&(x, y)| image.pixel(x, y) != background)
        .count();
    let share = differing as f64 / (image.width * image.height) as f64;
    assert!(
        share > 0.05,
        "screenshot is nearly blank: {share:.4} of pixels differ"
    );
    let mut colours: Vec<[u8; 3]> = (0..image.height)
        .step_by(4)
        .flat_map(|y| (0..image.width).step_by(4).map(move |x| (x, y)))
        .map(|(x, y)| image.pixel(x, y))
        .collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "only {} colours", colours.len());
}

#[test]
fn report_command_builds_the_same_page_from_the_events_file() {
    let dir = scratch("command");
    let (events, html) = demo_report(&dir);
    let again = dir.join("again.html");
    let config = workspace_root().join("pcaps/collectors-vxlan/config.toml");
    let out = run(&[
        "report",
        events.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same page but for the inputs named (capture files, or the events file).
    let strip = |p: &Path| {
        let page = std::fs::read_to_string(p).unwrap();
        let start = page.find("<main>").unwrap();
        let body = &page[start..];
        let summary_end = body.find("<section id=\"mirror-map\"").unwrap();
        body[summary_end..].to_owned()
    };
    assert_eq!(strip(&html), strip(&again));

    // Counts in the page equal the events': alerts by detector.
    let text = std::fs::read_to_string(&events).unwrap();
    let mut beacon = 0;
    let mut mirror = 0;
    let mut mirror_signatures = std::collections::BTreeSet::new();
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        match e["detector"].as_str() {
            Some("beacon") => beacon += 1,
            Some("mirror_stream") => {
                mirror += 1;
                mirror_signatures.insert(e["alert"]["signature"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    assert!(beacon > 0 && mirror > 0, "the demo cases alert");
    let page = std::fs::read_to_string(&again).unwrap();
    assert!(page.contains(&format!("from {beacon} beacon alerts (updates included)")));
    // One row per mirror alert in section 2, one per signature in the summary.
    assert_eq!(
        page.matches("<td class=\"mono\">mirror.").count(),
        mirror + mirror_signatures.len()
    );
}

#[test]
fn report_refuses_stdout_events_and_names_a_missing_file() {
    let dir = scratch("errors");
    let case = workspace_root().join("pcaps/mirror-vxlan/input.pcap");
    let html = dir.join("r.html");
    let out = run(&[
        "replay",
        "--report",
        html.to_str().unwrap(),
        case.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report needs --output FILE"));
    assert!(!html.exists());
    // Events to a device cannot be read back: refused, not an empty report.
    let out = run(&[
        "replay",
        "--report",
        html.to_str().unwrap(),
        "-o",
        "/dev/null",
        case.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a regular file"));
    assert!(!html.exists());

    // A report that cannot be written: exit 1 naming it, the events all written.
    let events = dir.join("events.jsonl");
    let unwritable = dir.join("no-such-dir/r.html");
    let out = run(&[
        "replay",
        "-o",
        events.to_str().unwrap(),
        "--report",
        unwritable.to_str().unwrap(),
        case.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir/r.html"));
    let written = std::fs::read_to_string(&events).unwrap();
    assert!(
        written
            .lines()
            .any(|l| l.contains("\"event_type\":\"stats\""))
    );

    let missing = dir.join("nope.jsonl");
    let out = run(&[
        "report",
        missing.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jsonl"));

    // Damaged lines and unknown events are reported, not fatal.
    let events = dir.join("odd.jsonl");
    std::fs::write(
        &events,
        "{\"event_type\":\"future_thing\",\"timestamp\":\"2026-01-05T09:00:00.000000+0000\"}\nnot json\n",
    )
    .unwrap();
    let out = run(&[
        "report",
        events.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("future_thing"));
    assert!(page.contains("1 lines were not JSON objects (the first, line 2"));
}

/// A decoded 8-bit RGB(A) PNG, enough for Chromium's screenshots (non-interlaced).
struct Rgb {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Rgb {
    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * self.channels;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

fn png_rgb(png: &[u8]) -> Rgb {
    use std::io::Read;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut pos = 8;
    let (mut width, mut height, mut channels) = (0, 0, 0);
    let mut idat = Vec::new();
    while pos + 8 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &png[pos + 4..pos + 8];
        let body = &png[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
                assert_eq!(body[8], 8, "bit depth");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
                assert_eq!(body[12], 0, "interlaced");
            }
            b"IDAT" => idat.extend_from_slice(body),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1));
    let mut data = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for i in 0..stride {
            let a = if i >= channels {
                data[y * stride + i - channels]
            } else {
                0
            };
            let b = if y > 0 { data[(y - 1) * stride + i] } else { 0 };
            let c = if y > 0 && i >= channels {
                data[(y - 1) * stride + i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            data[y * stride + i] = line[i].wrapping_add(predicted);
        }
    }
    Rgb {
        width,
        height,
        channels,
        data,
    }
}

/// Issue 15 follow-up: a packet beacon's card draws the bursts its alert carries, like a
/// connection beacon's: a timeline with one stem per beat and the two histograms, without
/// `--flows` (the bursts are inside one flow, no flow record has them). In `beacon-heartbeat`
/// the 30 s heartbeat alerts at its 8th burst and updates at its 128th (the latest 32 drawn),
/// the 5 s one alerts once at its 8th.
#[test]
fn heartbeat_cards_draw_their_beats() {
    let dir = scratch("heartbeat");
    let html = dir.join("report.html");
    let input = workspace_root().join("pcaps/beacon-heartbeat/input.pcap");
    let out = run(&[
        "replay",
        "--no-progress",
        "-o",
        dir.join("events.jsonl").to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    let card = |dest: &str| -> &str {
        page.split("<details class=\"beacon\"")
            .skip(1)
            .find(|c| {
                c.split("</summary>")
                    .next()
                    .is_some_and(|s| s.contains(dest))
            })
            .and_then(|c| c.split("</details>").next())
            .unwrap_or_else(|| panic!("no card for {dest}"))
    };
    for (dest, beats, note) in [
        (
            "203.0.113.41:443",
            32,
            "32 bursts from the alert&#39;s evidence (the latest only)",
        ),
        (
            "203.0.113.42:8443",
            // Every 5 s: the 13th burst is the first a minute after the first (min_span_s).
            13,
            "13 bursts from the alert&#39;s evidence:",
        ),
    ] {
        let c = card(dest);
        assert_eq!(
            c.matches("bytes</title></circle>").count(),
            beats,
            "stems on the card of {dest}"
        );
        assert!(c.contains("intervals between beats"), "{dest}");
        assert!(c.contains("payload bytes per burst"), "{dest}");
        assert!(c.contains(note), "{dest}: {c}");
    }
}
