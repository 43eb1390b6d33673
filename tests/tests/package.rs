//! Issue 13, installable as a service: the Debian package `cargo deb` built (tests/run.sh
//! builds it before the tests) installs with `dpkg -i`, holds the binary, both systemd units,
//! the embedded default configuration as a conffile and the logrotate file; the units pass
//! `systemd-analyze verify`; the package is purged afterwards. Skipped loudly when not root,
//! without dpkg, without a built package, or when a mirrorwatch package is already installed
//! (the test never replaces someone's install).

use std::path::{Path, PathBuf};
use std::process::Command;

use mirrorwatch_tests::{ensure_binary, workspace_root};

fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    match Command::new(cmd).args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), e.to_string()),
    }
}

/// The newest `target/debian/mirrorwatch_*.deb`.
fn built_package() -> Option<PathBuf> {
    let dir = workspace_root().join("target/debian");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mirrorwatch_") && n.ends_with(".deb"))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Purges the package when the test ends, passed or failed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "mirrorwatch"])
            .output();
    }
}

#[test]
fn the_debian_package_installs_a_hardened_service_and_purges_cleanly() {
    let test = "the_debian_package_installs_a_hardened_service_and_purges_cleanly";
    let root = run("id", &["-u"]).1.trim() == "0";
    let dpkg = run("dpkg", &["--version"]).0;
    let deb = built_package();
    if !root || !dpkg || deb.is_none() {
        eprintln!(
            "SKIPPED {test}: needs root, dpkg and a package built by `cargo deb -p mirrorwatch` \
             (tests/run.sh builds it) (root: {root}, dpkg: {dpkg}, package: {deb:?})"
        );
        return;
    }
    if run("dpkg", &["-s", "mirrorwatch"]).0 {
        eprintln!("SKIPPED {test}: a mirrorwatch package is already installed here");
        return;
    }
    let deb = deb.unwrap();
    let _guard = Installed;
    let (ok, _, err) = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(ok, "dpkg -i {}: {err}", deb.display());

    let (ok, files, _) = run("dpkg", &["-L", "mirrorwatch"]);
    assert!(ok);
    let has = |suffix: &str| files.lines().any(|l| l.ends_with(suffix));
    for f in [
        "/usr/bin/mirrorwatch",
        "/etc/mirrorwatch/mirrorwatch.toml",
        "/etc/default/mirrorwatch",
        "/etc/logrotate.d/mirrorwatch",
        "/systemd/system/mirrorwatch.service",
        "/systemd/system/mirrorwatch@.service",
        "/usr/share/doc/mirrorwatch/README.md",
    ] {
        assert!(has(f), "{f} not in the package:\n{files}");
    }
    // The configuration is the embedded default, and a conffile (kept on upgrade and removal).
    let installed = std::fs::read_to_string("/etc/mirrorwatch/mirrorwatch.toml").unwrap();
    let embedded = run(ensure_binary().to_str().unwrap(), &["config", "default"]).1;
    assert_eq!(installed, embedded);
    let (_, conffiles, _) = run("dpkg-query", &["-W", "-f=${Conffiles}", "mirrorwatch"]);
    assert!(
        conffiles.contains("/etc/mirrorwatch/mirrorwatch.toml"),
        "{conffiles}"
    );
    // The installed binary runs, with the long help of its outputs.
    let (ok, help, _) = run("/usr/bin/mirrorwatch", &["live", "--help"]);
    assert!(ok);
    assert!(help.contains("redis://HOST"), "{help}");
    assert!(
        run(
            "/usr/bin/mirrorwatch",
            &["config", "check", "/etc/mirrorwatch/mirrorwatch.toml"]
        )
        .0
    );

    let unit_dir = files
        .lines()
        .find(|l| l.ends_with("/systemd/system/mirrorwatch@.service"))
        .and_then(|l| Path::new(l).parent())
        .unwrap()
        .to_owned();
    for unit in ["mirrorwatch.service", "mirrorwatch@.service"] {
        let text = std::fs::read_to_string(unit_dir.join(unit)).unwrap();
        for line in [
            "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
            "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "StateDirectory=mirrorwatch",
            "ExecReload=/bin/kill -HUP $MAINPID",
            // The event writer's `[output] nice` for a service user (see `sched.rs`).
            "LimitNICE=-10",
        ] {
            assert!(text.lines().any(|l| l == line), "{unit} lacks {line}");
        }
    }
    if run("systemd-analyze", &["--version"]).0 {
        for unit in ["mirrorwatch.service", "mirrorwatch@eth1.service"] {
            let (ok, out, err) = run("systemd-analyze", &["verify", unit]);
            assert!(ok, "systemd-analyze verify {unit}: {out}{err}");
            assert!(
                !err.contains("mirrorwatch"),
                "systemd-analyze verify {unit} complains: {err}"
            );
        }
    } else {
        eprintln!("{test}: systemd-analyze absent; the units were not verified by systemd");
    }
    if run("logrotate", &["--version"]).0 {
        let (ok, out, err) = run("logrotate", &["-d", "/etc/logrotate.d/mirrorwatch"]);
        assert!(ok, "logrotate -d: {out}{err}");
    }

    let (ok, _, err) = run("dpkg", &["--purge", "mirrorwatch"]);
    assert!(ok, "dpkg --purge: {err}");
    assert!(!Path::new("/usr/bin/mirrorwatch").exists());
    assert!(!Path::new("/etc/mirrorwatch/mirrorwatch.toml").exists());
}
