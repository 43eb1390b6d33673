//! Helpers shared by the end-to-end tests: locating the binary, the bundled cases and the
//! shared real captures, and running the sensor.
// Test support: a helper that cannot do its job fails the test that called it.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The `mirrorwatch` binary built for this test run (debug or release, as cargo built it).
pub fn binary() -> PathBuf {
    // Cargo puts integration-test binaries in target/<profile>/deps; the crate's binary sits
    // one level up. Build it first if a test run did not.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| workspace_root().join("target/debug"), Path::to_path_buf);
    profile_dir.join("mirrorwatch")
}

/// Builds the binary once per test process (with the tests' profile), so the tests never run
/// a stale `mirrorwatch`; cargo makes this a no-op when it is fresh.
pub fn ensure_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let bin = binary();
    let ok = BUILT.get_or_init(|| {
        let release = bin.to_string_lossy().contains("/release/");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "mirrorwatch",
            "--bin",
            "mirrorwatch",
        ]);
        if release {
            cmd.arg("--release");
        }
        matches!(cmd.current_dir(workspace_root()).status(), Ok(s) if s.success())
    });
    assert!(*ok, "building mirrorwatch failed");
    bin
}

/// The shared real captures, or `None` (with a loud message) when the folder is absent.
pub fn shared_pcaps(test: &str) -> Option<PathBuf> {
    let dir = workspace_root().join("../shared/pcaps");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED {test}: {} not found; the real-capture checks did not run",
            dir.display()
        );
        None
    }
}

/// Runs the sensor with `args`.
pub fn run(args: &[&str]) -> Output {
    match Command::new(ensure_binary()).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("could not run mirrorwatch: {e}"),
    }
}

/// Parses JSON lines.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(v) => v,
            Err(e) => panic!("not a JSON line ({e}): {l}"),
        })
        .collect()
}

/// Looks up a dotted path in a JSON value. At each level a key equal to the whole remaining
/// path wins, so names that contain dots (`decoder.vxlan.bad_flags`) are single keys.
pub fn lookup<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let obj = value.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut split = path.char_indices().filter(|&(_, c)| c == '.');
    split.find_map(|(i, _)| {
        let (head, rest) = (&path[..i], &path[i + 1..]);
        obj.get(head).and_then(|v| lookup(v, rest))
    })
}

/// Whether a JSON value equals a TOML value from a checks file.
pub fn json_equals_toml(json: &serde_json::Value, expected: &toml::Value) -> bool {
    match expected {
        toml::Value::String(s) => json.as_str() == Some(s.as_str()),
        toml::Value::Integer(i) => json.as_i64() == Some(*i),
        toml::Value::Boolean(b) => json.as_bool() == Some(*b),
        toml::Value::Float(f) => json.as_f64() == Some(*f),
        _ => false,
    }
}

/// Live-capture test support: a veth link between two network namespaces made for one test
/// and removed when it is dropped (also when the test fails), `tcpreplay` on one end and
/// `mirrorwatch live` on the other.
pub mod live {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// Whether live tests can run here (root, `ip`, `tcpreplay`); says so loudly when not.
    pub fn can_run(test: &str) -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let ip = Command::new("ip").arg("-V").output().is_ok();
        let tcpreplay = Command::new("tcpreplay").arg("--version").output().is_ok();
        if root && ip && tcpreplay {
            return true;
        }
        eprintln!(
            "SKIPPED {test}: live capture tests need root, `ip` (iproute2) and `tcpreplay` \
             (root: {root}, ip: {ip}, tcpreplay: {tcpreplay}); run tests/run.sh as root, as CI does"
        );
        false
    }

    /// Two namespaces joined by a veth pair: `tx_if` in `tx_ns` sends, `rx_if` in `rx_ns`
    /// is the capture end. IPv6 and ARP are off on both ends, so the kernel adds no frames.
    pub struct Link {
        /// Sending namespace.
        pub tx_ns: String,
        /// Capturing namespace.
        pub rx_ns: String,
        /// Sending interface.
        pub tx_if: String,
        /// Capture interface.
        pub rx_if: String,
    }

    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("running ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    impl Link {
        /// Makes a link with names unique to this process and call.
        pub fn new() -> Link {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            // Interface names have at most 15 bytes.
            let tag = format!("mw{:x}x{n}", std::process::id() & 0xf_ffff);
            let link = Link {
                tx_ns: format!("{tag}-tx"),
                rx_ns: format!("{tag}-rx"),
                tx_if: format!("{tag}a"),
                rx_if: format!("{tag}b"),
            };
            ip(&["netns", "add", &link.tx_ns]);
            ip(&["netns", "add", &link.rx_ns]);
            ip(&[
                "link",
                "add",
                &link.tx_if,
                "type",
                "veth",
                "peer",
                "name",
                &link.rx_if,
            ]);
            ip(&["link", "set", &link.tx_if, "netns", &link.tx_ns]);
            ip(&["link", "set", &link.rx_if, "netns", &link.rx_ns]);
            for (ns, ifname) in [(&link.tx_ns, &link.tx_if), (&link.rx_ns, &link.rx_if)] {
                let _ = Command::new("ip")
                    .args(["netns", "exec", ns, "sysctl", "-qw"])
                    .arg(format!("net.ipv6.conf.{ifname}.disable_ipv6=1"))
                    .output();
                ip(&[
                    "-n", ns, "link", "set", ifname, "arp", "off", "mtu", "9216", "up",
                ]);
            }
            link
        }

        /// Sends a capture into the link with `tcpreplay` (original timing unless `extra`
        /// says otherwise) and waits for it.
        pub fn send(&self, pcap: &Path, extra: &[&str]) -> Output {
            let out = self
                .tcpreplay(pcap, extra)
                .wait_with_output()
                .expect("tcpreplay");
            assert!(
                out.status.success(),
                "tcpreplay: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }

        /// Starts `tcpreplay` without waiting.
        pub fn tcpreplay(&self, pcap: &Path, extra: &[&str]) -> Child {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.tx_ns,
                    "tcpreplay",
                    "-q",
                    "-i",
                    &self.tx_if,
                ])
                .args(extra)
                .arg(pcap)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting tcpreplay")
        }

        /// Runs a command inside the capturing namespace.
        pub fn rx_command(&self, program: &Path) -> Command {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &self.rx_ns]).arg(program);
            cmd
        }
    }

    impl Default for Link {
        fn default() -> Link {
            Link::new()
        }
    }

    impl Drop for Link {
        fn drop(&mut self) {
            // Deleting a namespace deletes the veth end inside it, and with it the peer.
            for ns in [&self.tx_ns, &self.rx_ns] {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }

    /// Starts `f` on a thread inside the network namespace `ns` (`/run/netns/NS`, as `ip netns`
    /// makes it); sockets it opens stay in that namespace. Panics in the thread if `setns`
    /// fails, which `join` turns into a test failure.
    pub fn spawn_in_namespace<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("opening the namespace");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the namespace");
            f()
        })
    }

    /// Runs `f` inside the network namespace `ns` and waits for its result.
    pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        spawn_in_namespace(ns, f)
            .join()
            .expect("the namespace thread panicked")
    }

    /// A running `mirrorwatch live`, killed when dropped if still running.
    pub struct Sensor {
        child: Child,
        stderr: mpsc::Receiver<String>,
        /// Stderr lines read so far.
        pub stderr_lines: Vec<String>,
        /// The events file.
        pub output: PathBuf,
    }

    impl Sensor {
        /// Starts the sensor on the link's capture end, writing to `output`, and waits until
        /// it says it is capturing.
        pub fn start(link: &Link, output: &Path, extra: &[&str]) -> Sensor {
            Sensor::start_under(link, output, &[], extra)
        }

        /// [`Sensor::start`] under a wrapper command (`prefix`, e.g. `setpriv ...`) inside the
        /// namespace: the sensor as a service manager would start it.
        pub fn start_under(link: &Link, output: &Path, prefix: &[&str], extra: &[&str]) -> Sensor {
            let mut command = match prefix.split_first() {
                Some((wrapper, args)) => {
                    let mut c = link.rx_command(Path::new(wrapper));
                    c.args(args).arg(crate::ensure_binary());
                    c
                }
                None => link.rx_command(&crate::ensure_binary()),
            };
            let mut child = command
                .args(["live", "--interface", &link.rx_if, "--output"])
                .arg(output)
                .args(["--stats-interval", "500ms"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting mirrorwatch live");
            let (tx, rx) = mpsc::channel();
            let pipe = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut sensor = Sensor {
                child,
                stderr: rx,
                stderr_lines: Vec::new(),
                output: output.to_path_buf(),
            };
            assert!(
                sensor.wait_stderr("capturing on", Duration::from_secs(30)),
                "the sensor never said it was capturing: {:?}",
                sensor.stderr_lines
            );
            sensor
        }

        /// Waits for a stderr line containing `text`.
        pub fn wait_stderr(&mut self, text: &str, timeout: Duration) -> bool {
            let deadline = Instant::now() + timeout;
            if self.stderr_lines.iter().any(|l| l.contains(text)) {
                return true;
            }
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match self.stderr.recv_timeout(left) {
                    Ok(line) => {
                        let hit = line.contains(text);
                        self.stderr_lines.push(line);
                        if hit {
                            return true;
                        }
                    }
                    Err(_) => return false,
                }
            }
            false
        }

        /// Waits until a `stats` event in `file` counts at least `packets` packets.
        pub fn wait_packets(&self, file: &Path, packets: u64, timeout: Duration) -> bool {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                let text = std::fs::read(file).unwrap_or_default();
                // The sensor may be writing as this reads: a last line without its newline is
                // still being written, not a broken event.
                let whole = text
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(&text[..0], |end| &text[..=end]);
                let seen = crate::events(whole)
                    .iter()
                    .filter(|e| e["event_type"] == "stats")
                    .filter_map(|e| e["stats"]["packets"].as_u64())
                    .max()
                    .unwrap_or(0);
                if seen >= packets {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        }

        /// The sensor's process id (`ip netns exec` execs the program).
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Waits (at most `timeout`) for the sensor to exit on its own; its exit code.
        pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Ok(Some(s)) = self.child.try_wait() {
                    while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
                        self.stderr_lines.push(line);
                    }
                    return s.code();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }

        /// Sends a signal (`TERM`, `HUP`, ...) to the sensor.
        pub fn signal(&self, name: &str) {
            // `ip netns exec` execs the program: the child's pid is the sensor's.
            let status = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(self.child.id().to_string())
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{name} failed");
        }

        /// SIGTERM, then waits (at most 30 s) for the exit; returns the exit code and every
        /// stderr line.
        pub fn stop(mut self) -> (Option<i32>, Vec<String>) {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Ok(Some(s)) = self.child.try_wait() {
                    break Some(s);
                }
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            // The reader thread ends with the pipe.
            while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
                self.stderr_lines.push(line);
            }
            let code = status.and_then(|s| s.code());
            (code, std::mem::take(&mut self.stderr_lines))
        }
    }

    impl Drop for Sensor {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
