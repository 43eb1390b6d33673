//! Issue 13 (outputs), issue 18 items 10 and 12, issue 19 item 4: every output form against a
//! real receiver the test owns. A real `redis-server` (started here on a loopback port in a
//! temp dir) gets the same events as the file in a list, a channel and a stream, and a
//! stalled or killed Redis makes a replay wait and lose nothing. Unix sockets and syslog are
//! read from sockets the test binds. Output files are never opened through a symlink planted
//! by another user. Tests that need `redis-server` or root say so loudly and skip.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mirrorwatch_tests::live::{Link, Sensor, can_run};
use mirrorwatch_tests::{ensure_binary, workspace_root};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mw-out-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of this test, on a loopback port in its own directory, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// The network namespace it runs in (a live test's capture side), if any.
    ns: Option<String>,
}

/// `program`, run inside `ns` when given.
fn in_ns(ns: Option<&str>, program: &str) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    }
}

impl Redis {
    fn available(test: &str) -> bool {
        let ok = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok()
            && Command::new("redis-cli").arg("--version").output().is_ok();
        if !ok {
            eprintln!(
                "SKIPPED {test}: redis-server and redis-cli are needed (Debian package \
                 redis-server; tests/run.sh installs it)"
            );
        }
        ok
    }

    fn start(dir: &Path, port: u16) -> Redis {
        Redis::start_in(dir, port, None)
    }

    fn start_in(dir: &Path, port: u16, ns: Option<&str>) -> Redis {
        // Append-only with fsync before every reply: what Redis acknowledged survives a kill.
        let child = in_ns(ns, "redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let r = Redis {
            child,
            port,
            dir: dir.to_owned(),
            ns: ns.map(str::to_owned),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while r.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = in_ns(self.ns.as_deref(), "redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.cli(&["LRANGE", key, "0", "-1"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every entry's `eve` field (XRANGE --raw prints id, field, value per entry).
    fn stream(&self, key: &str) -> Vec<String> {
        let text = self.cli(&["XRANGE", key, "-", "+"]);
        let l: Vec<&str> = text.lines().collect();
        l.chunks(3)
            .map(|c| {
                assert_eq!(c[1], "eve", "stream field");
                c[2].to_owned()
            })
            .collect()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} redis");
    }

    /// SIGKILL, then a new server on the same port and directory (its append-only file).
    fn kill_and_restart(mut self) -> Redis {
        self.signal("KILL");
        let _ = self.child.wait();
        Redis::start_in(&self.dir.clone(), self.port, self.ns.clone().as_deref())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `replay --flows` of every `pcaps/` case with these outputs; returns the exit status and
/// stderr.
fn replay(outputs: &[String], extra: &[&str]) -> (i32, String) {
    let child = replay_child(outputs, extra);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn replay_child(outputs: &[String], extra: &[&str]) -> Child {
    let mut cmd = Command::new(ensure_binary());
    cmd.args(["replay", "--flows", "--no-progress"]);
    for o in outputs {
        cmd.arg("--output").arg(o);
    }
    cmd.args(extra)
        .arg(workspace_root().join("pcaps"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Subscribes to a channel with redis-cli; each message arrives on the receiver.
fn subscribe(redis: &Redis, channel: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--raw", "SUBSCRIBE", channel])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // --raw prints each reply element on its own line: kind, channel, payload.
        let mut l = BufReader::new(out).lines().map_while(Result::ok);
        while let Some(kind) = l.next() {
            let _channel = l.next();
            let payload = l.next().unwrap_or_default();
            if kind == "subscribe" {
                let _ = subscribed_tx.send(());
            } else if kind == "message" && tx.send(payload).is_err() {
                break;
            }
        }
    });
    subscribed
        .recv_timeout(Duration::from_secs(20))
        .expect("redis-cli subscribed");
    (child, rx)
}

#[test]
fn redis_list_channel_and_stream_get_exactly_the_file_events() {
    let test = "redis_list_channel_and_stream_get_exactly_the_file_events";
    if !Redis::available(test) {
        return;
    }
    let dir = scratch("redis-equal");
    let redis = Redis::start(&dir, free_port());
    let (mut sub, messages) = subscribe(&redis, "events");
    let base = format!("redis://127.0.0.1:{}", redis.port);
    let file = dir.join("eve.json");
    let (code, stderr) = replay(
        &[
            file.display().to_string(),
            format!("{base}/list/rpush"),
            format!("{base}/lpush/lpush"),
            format!("{base}/channel/events"),
            format!("{base}/stream/stream?maxlen=1000000"),
            format!("{base}/list/alerts?types=alert"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&file);
    assert!(events.len() > 1000, "{} events", events.len());
    assert_eq!(redis.list("rpush"), events, "RPUSH keeps the order");
    let mut reversed = redis.list("lpush");
    reversed.reverse();
    assert_eq!(reversed, events, "LPUSH: newest first");
    assert_eq!(redis.stream("stream"), events, "XADD keeps the order");
    let alerts: Vec<String> = events
        .iter()
        .filter(|e| e.contains("\"event_type\":\"alert\""))
        .cloned()
        .collect();
    assert!(!alerts.is_empty());
    assert_eq!(redis.list("alerts"), alerts, "the filter keeps alerts only");
    // The subscriber got every event (PUBLISH was acknowledged, the rest is in its pipe).
    let mut published = Vec::new();
    while published.len() < events.len() {
        match messages.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => published.push(m),
            Err(_) => break,
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    assert_eq!(published, events, "PUBLISH");
    // The stats event counts what each output delivered, and nothing dropped.
    let stats: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(stats["event_type"], "stats");
    assert_eq!(stats["stats"]["output"]["dropped"], 0, "{stats}");
    assert_eq!(
        stats["stats"]["output"]["outputs"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_waits_for_a_stalled_then_killed_redis_and_loses_nothing() {
    let test = "replay_waits_for_a_stalled_then_killed_redis_and_loses_nothing";
    if !Redis::available(test) {
        return;
    }
    let dir = scratch("redis-stall");
    let redis = Redis::start(&dir, free_port());
    let base = format!("redis://127.0.0.1:{}", redis.port);
    let file = dir.join("eve.json");
    let outputs = [file.display().to_string(), format!("{base}/list/ev")];
    // Stalled: the replay must wait for it, not drop.
    redis.signal("STOP");
    let mut child = replay_child(&outputs, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the replay ended while its Redis was stalled"
    );
    redis.signal("CONT");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = lines(&file);
    assert_eq!(
        redis.list("ev"),
        events,
        "stalled then resumed: nothing lost"
    );
    // Stalled, then killed and restarted on the same port: the replay reconnects and resends.
    let file2 = dir.join("eve2.json");
    let outputs = [file2.display().to_string(), format!("{base}/list/ev2")];
    redis.signal("STOP");
    let mut child = replay_child(&outputs, &[]);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(child.try_wait().unwrap().is_none());
    let redis = redis.kill_and_restart();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(stderr.contains("delivering again"), "{stderr}");
    let events2 = lines(&file2);
    assert_eq!(events2.len(), events.len());
    assert_eq!(
        redis.list("ev2"),
        events2,
        "killed and restarted: nothing lost"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dead_redis_ends_a_replay_with_an_error_after_the_file_has_everything() {
    let dir = scratch("redis-dead");
    let file = dir.join("eve.json");
    let config = dir.join("c.toml");
    std::fs::write(&config, "[output]\nretry_timeout_s = 1\n").unwrap();
    let port = free_port();
    let (code, stderr) = replay(
        &[
            file.display().to_string(),
            format!("redis://127.0.0.1:{port}/list/ev"),
        ],
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "writing events to redis://127.0.0.1:{port}/list/ev: unreachable for"
        )),
        "{stderr}"
    );
    // The file output is whole: it ends with the final stats event.
    let events = lines(&file);
    assert!(events.len() > 1000);
    assert!(events.last().unwrap().contains("\"event_type\":\"stats\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Receives datagrams in a thread until `done` is set and a read times out (the sockets have
/// a short read timeout): a loaded machine may take seconds before the first one.
fn datagrams(
    recv: impl Fn(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
    done: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    let done = Arc::clone(done);
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match recv(&mut buf) {
                Ok(n) => got.push(String::from_utf8(buf[..n].to_vec()).unwrap()),
                Err(_) if done.load(Ordering::SeqCst) => break,
                Err(_) => {}
            }
        }
        got
    })
}

#[test]
fn unix_dgram_and_stream_sockets_get_every_event_framed() {
    let dir = scratch("unix");
    let dgram_path = dir.join("dgram.sock");
    let stream_path = dir.join("stream.sock");
    let dgram = UnixDatagram::bind(&dgram_path).unwrap();
    dgram
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let listener = UnixListener::bind(&stream_path).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let dgrams = datagrams(move |b| dgram.recv(b), &done);
    let stream = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    });
    let file = dir.join("eve.json");
    let (code, stderr) = replay(
        &[
            file.display().to_string(),
            format!("unix-dgram:{}", dgram_path.display()),
            format!("unix-stream:{}", stream_path.display()),
        ],
        &[],
    );
    done.store(true, Ordering::SeqCst);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&file);
    assert!(events.len() > 1000);
    // Datagrams: one event each, without the newline.
    let got = dgrams.join().unwrap();
    assert_eq!(got, events);
    // Stream: the file's bytes exactly.
    assert_eq!(
        stream.join().unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Splits an RFC 5424 message into (PRI, VERSION, HOSTNAME, APP-NAME, MSGID, SD, MSG).
fn rfc5424(msg: &str) -> (u32, String, String, String, String, String) {
    let (pri, rest) = msg
        .strip_prefix('<')
        .and_then(|m| m.split_once('>'))
        .unwrap();
    let mut f = rest.splitn(6, ' ');
    let version = f.next().unwrap().to_owned();
    let ts = f.next().unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T'), "timestamp {ts}");
    let _host = f.next().unwrap();
    let app = f.next().unwrap().to_owned();
    let _pid: u32 = f.next().unwrap().parse().unwrap();
    let rest = f.next().unwrap();
    let (msgid, rest) = rest.split_once(' ').unwrap();
    let (sd, body) = rest.split_once(' ').unwrap();
    (
        pri.parse().unwrap(),
        version,
        app,
        msgid.to_owned(),
        sd.to_owned(),
        body.to_owned(),
    )
}

#[test]
fn syslog_over_unix_udp_and_tcp_frames_every_event() {
    let dir = scratch("syslog");
    let sock = dir.join("log.sock");
    let unix = UnixDatagram::bind(&sock).unwrap();
    unix.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let unix_got = datagrams(move |b| unix.recv(b), &done);
    let udp_got = datagrams(move |b| udp.recv(b), &done);
    let tcp_got = std::thread::spawn(move || {
        let (mut s, _) = tcp.accept().unwrap();
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).unwrap();
        // Octet counting: LEN SP MSG, repeated.
        let mut frames = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let sp = at + bytes[at..].iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&bytes[at..sp])
                .unwrap()
                .parse()
                .unwrap();
            frames.push(String::from_utf8(bytes[sp + 1..sp + 1 + len].to_vec()).unwrap());
            at = sp + 1 + len;
        }
        frames
    });
    let file = dir.join("eve.json");
    // Only alerts over UDP (a burst of flow or tunnel records would overflow the receiver's
    // buffer on a loaded machine: UDP syslog has no flow control, which is why TCP exists).
    let (code, stderr) = replay(
        &[
            file.display().to_string(),
            format!(
                "syslog:unix:{}?facility=local5&level=warning",
                sock.display()
            ),
            format!("syslog:udp:127.0.0.1:{udp_port}?types=alert"),
            format!("syslog:tcp:127.0.0.1:{tcp_port}"),
        ],
        &[],
    );
    done.store(true, Ordering::SeqCst);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&file);
    let event_type = |e: &str| {
        serde_json::from_str::<serde_json::Value>(e).unwrap()["event_type"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let check = |got: Vec<String>, pri: u32, want: Vec<String>| {
        let bodies: Vec<String> = got
            .iter()
            .map(|m| {
                let (p, version, app, msgid, sd, body) = rfc5424(m);
                assert_eq!(p, pri, "{m}");
                assert_eq!(version, "1");
                assert_eq!(app, "mirrorwatch");
                assert_eq!(msgid, event_type(&body), "MSGID is the event type");
                assert_eq!(sd, "-");
                body
            })
            .collect();
        assert_eq!(bodies, want);
    };
    // local5 (21) * 8 + warning (4); the default is local0 (16) * 8 + info (6).
    check(unix_got.join().unwrap(), 21 * 8 + 4, events.clone());
    let some: Vec<String> = events
        .iter()
        .filter(|e| event_type(e) == "alert")
        .cloned()
        .collect();
    check(udp_got.join().unwrap(), 16 * 8 + 6, some);
    check(tcp_got.join().unwrap(), 16 * 8 + 6, events);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_files_are_created_0640_and_bad_forms_are_usage_errors() {
    let dir = scratch("mode");
    let file = dir.join("eve.json");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec {} replay -o {} {}",
            ensure_binary().display(),
            file.display(),
            workspace_root().join("pcaps/mirror-vxlan").display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let (code, stderr) = replay(&["syslog:carrier-pigeon".to_owned()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--output output \"syslog:carrier-pigeon\""),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether we are root (the symlink attack needs another user to plant the link).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_symlink_planted_by_nobody_never_redirects_an_output_file() {
    let test = "a_symlink_planted_by_nobody_never_redirects_an_output_file";
    let planter = Command::new("setpriv").arg("--version").output().is_ok();
    if !is_root() || !planter {
        eprintln!(
            "SKIPPED {test}: needs root and setpriv (util-linux) to plant a link as nobody \
             (root: {}, setpriv: {planter})",
            is_root()
        );
        return;
    }
    let dir = scratch("symlink");
    // A sticky world-writable directory, like /tmp, and a root-owned victim elsewhere.
    let shared = dir.join("drop");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's data\n").unwrap();
    let link = shared.join("eve.json");
    let planted = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(&victim)
        .arg(&link)
        .status()
        .unwrap();
    assert!(planted.success(), "planting the link as nobody");
    // The kernel's fs.protected_symlinks may refuse the link before our O_NOFOLLOW does:
    // either way the run fails naming the output, and the victim is untouched.
    let replay_to = |output: &Path| {
        let out = Command::new(ensure_binary())
            .arg("replay")
            .arg("-o")
            .arg(output)
            .arg(workspace_root().join("pcaps/mirror-vxlan"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = replay_to(&link);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&link.display().to_string()), "{stderr}");
    // A link where the kernel does not step in (not a sticky directory): our own refusal.
    let plain = dir.join("plain-link.json");
    std::os::unix::fs::symlink(&victim, &plain).unwrap();
    let (code, stderr) = replay_to(&plain);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("is a symbolic link; output files are never opened through one"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's data\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Live tests: flows end after a second of quiet so that events keep coming while traffic
/// runs; the loopback of the capture namespace is up for Redis and the metrics endpoint.
fn live_setup(name: &str) -> (Link, PathBuf, PathBuf) {
    let link = Link::new();
    let up = Command::new("ip")
        .args(["-n", &link.rx_ns, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let dir = scratch(name);
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        "[flows]\nidle_timeout_s = 1\nactive_timeout_s = 1\n[output]\nshutdown_grace_s = 2\n",
    )
    .unwrap();
    (link, dir, config)
}

/// `GET /metrics` from inside the capture namespace (bash's /dev/tcp), within 10 s.
fn scrape(link: &Link, port: u16) -> String {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; \
         timeout 10 cat <&3"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &link.rx_ns, "bash", "-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Scrapes until `ok` holds (the endpoint refreshes its text once a second), at most 10 s;
/// returns the last text.
fn scrape_until(link: &Link, port: u16, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(link, port);
        if ok(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The value of a Prometheus sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn packets_in(pcap: &Path) -> u64 {
    let out = Command::new(ensure_binary())
        .args(["replay", "--no-progress", "-o", "/dev/null"])
        .arg(pcap)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    // "N packets" in the summary's first line.
    text.split_whitespace()
        .zip(text.split_whitespace().skip(1))
        .find(|(_, w)| w.starts_with("packets"))
        .and_then(|(n, _)| n.parse().ok())
        .expect("packet count in the replay summary")
}

#[test]
fn a_stalled_redis_never_stalls_live_capture_and_a_killed_one_loses_only_what_is_counted() {
    let test =
        "a_stalled_redis_never_stalls_live_capture_and_a_killed_one_loses_only_what_is_counted";
    if !can_run(test) || !Redis::available(test) {
        return;
    }
    let (link, dir, config) = live_setup("live-redis");
    let redis = Redis::start_in(&dir, 6390, Some(&link.rx_ns));
    redis.signal("STOP");
    let url = "redis://127.0.0.1:6390/list/ev";
    let file = dir.join("eve.json");
    let metrics_port = 9717;
    let mut sensor = Sensor::start(
        &link,
        &file,
        &[
            "--config",
            config.to_str().unwrap(),
            "--flows",
            "--output",
            &format!("{url}?queue_kib=4"),
            "--metrics",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );
    let pcap = workspace_root().join("pcaps/beacon-browsing/input.pcap");
    let per_pass = packets_in(&pcap);
    link.send(&pcap, &["--topspeed", "--loop", "3"]);
    // Capture went on while Redis was stalled: every packet is counted in a stats event that
    // reached the file, and the metrics endpoint answers with the Redis drops counted.
    assert!(
        sensor.wait_packets(&file, 3 * per_pass, Duration::from_secs(30)),
        "capture stalled behind a stopped Redis: {:?}",
        sensor.stderr_lines
    );
    let metric = format!("mirrorwatch_output_events_dropped_total{{output=\"{url}?queue_kib=4\"}}");
    let text = scrape_until(&link, metrics_port, |t| {
        sample(t, &metric).is_some_and(|d| d > 0)
    });
    assert!(sample(&text, &metric).is_some_and(|d| d > 0), "{text}");
    // Killed while stalled, restarted: the sensor reconnects and delivers again.
    let redis = redis.kill_and_restart();
    link.send(&pcap, &["--topspeed"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.list("ev").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(sensor.wait_stderr("delivering again", Duration::from_secs(10)));
    let (code, stderr) = sensor.stop();
    assert_eq!(code, Some(0), "{stderr:?}");
    // What the file has and Redis lacks is at most what the sensor counted as dropped.
    let counted: u64 = stderr
        .iter()
        .find(|l| l.starts_with(&format!("  output {url}")))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|d| d.split(' ').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no output line in {stderr:?}"));
    assert!(counted > 0);
    let events = lines(&file);
    let mut in_redis = redis.list("ev");
    in_redis.sort();
    in_redis.dedup();
    let in_file: std::collections::HashSet<&String> = events.iter().collect();
    assert!(
        in_redis.iter().all(|e| in_file.contains(e)),
        "Redis got an event the file does not have"
    );
    let missing = events.len() as u64 - in_redis.len() as u64;
    assert!(
        missing <= counted,
        "{missing} events missing from Redis, {counted} counted as dropped"
    );
    assert!(!in_redis.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fifo_output_without_a_reader_or_with_a_stalled_one_never_blocks_the_live_sensor() {
    let test = "a_fifo_output_without_a_reader_or_with_a_stalled_one_never_blocks_the_live_sensor";
    if !can_run(test) {
        return;
    }
    let (link, dir, config) = live_setup("live-fifo");
    let fifo = dir.join("eve.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let file = dir.join("eve.json");
    let metrics_port = 9718;
    // No reader: the sensor still starts (Sensor::start waits for "capturing on").
    let mut sensor = Sensor::start(
        &link,
        &file,
        &[
            "--config",
            config.to_str().unwrap(),
            "--flows",
            "--output",
            fifo.to_str().unwrap(),
            "--metrics",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );
    assert!(sensor.wait_stderr("a FIFO without a reader", Duration::from_secs(10)));
    // A reader that opens the FIFO and never reads: the pipe fills, the output blocks.
    let mut reader = Command::new("sh")
        .arg("-c")
        .arg(format!("exec sleep 600 < {}", fifo.display()))
        .spawn()
        .unwrap();
    let pcap = workspace_root().join("pcaps/beacon-browsing/input.pcap");
    let per_pass = packets_in(&pcap);
    link.send(&pcap, &["--topspeed", "--loop", "3"]);
    assert!(
        sensor.wait_packets(&file, 3 * per_pass, Duration::from_secs(30)),
        "capture or stats stalled behind the FIFO: {:?}",
        sensor.stderr_lines
    );
    let full = |t: &str| sample(t, "mirrorwatch_packets_total").is_some_and(|n| n >= 3 * per_pass);
    let text = scrape_until(&link, metrics_port, full);
    assert!(full(&text), "{text}");
    let started = Instant::now();
    let (code, stderr) = sensor.stop();
    let took = started.elapsed();
    let _ = reader.kill();
    let _ = reader.wait();
    assert_eq!(code, Some(0), "{stderr:?}");
    // SIGTERM obeyed: the 2 s grace, a second more, and the flush.
    assert!(took < Duration::from_secs(15), "exit took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_never_reopens_an_output_through_a_symlink_planted_by_nobody() {
    let test = "sighup_never_reopens_an_output_through_a_symlink_planted_by_nobody";
    let planter = Command::new("setpriv").arg("--version").output().is_ok();
    if !can_run(test) || !planter {
        return;
    }
    let (link, dir, _config) = live_setup("hup-symlink");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = dir.join("drop");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's data\n").unwrap();
    let out = shared.join("eve.json");
    let mut sensor = Sensor::start(&link, &out, &[]);
    // logrotate's rename, then the attacker's link where the sensor will reopen.
    std::fs::rename(&out, shared.join("eve.json.1")).unwrap();
    let planted = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(&victim)
        .arg(&out)
        .status()
        .unwrap();
    assert!(planted.success());
    sensor.signal("HUP");
    // Refused and said so; the sensor keeps its old file (issue 18 item 17).
    assert!(
        sensor.wait_stderr("mirrorwatch: error:", Duration::from_secs(20)),
        "no error after a refused reopen: {:?}",
        sensor.stderr_lines
    );
    let err = sensor
        .stderr_lines
        .iter()
        .find(|l| l.contains("mirrorwatch: error:"))
        .unwrap()
        .clone();
    assert!(err.contains(&out.display().to_string()), "{err}");
    drop(sensor);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's data\n");
    let _ = std::fs::remove_dir_all(&dir);
}
