//! espgw-control's command line: configuration errors, key log permissions (no root
//! needed); live reconfiguration of a running daemon (`espgw configure`, SIGHUP, `show
//! running-config`), which runs in a private network namespace (`unshare -n`, root).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("espgw-daemon-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn malformed_config_is_an_error_with_its_line_number() {
    let d = tmpdir("bad");
    let cfg = d.join("r1.conf");
    std::fs::write(&cfg, "crypto isakmp policy 1\n encr 3des\n group 99\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_espgw-control"))
        .args(["--config", cfg.to_str().unwrap(), "--no-sadb", "--socket"])
        .arg(d.join("s"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: group"), "line number missing: {err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A valid configuration whose crypto-map interface has 192.0.2.1 (TEST-NET-1), which is
/// not configured here: binding UDP 500 fails after everything before it (key log,
/// metrics endpoint) was set up.
const UNBINDABLE: &str = "crypto isakmp policy 1\n encr 3des\n authentication pre-share\ncrypto isakmp key S3cr3tPSK address 192.0.2.2\n\
     crypto ipsec transform-set t esp-3des esp-md5-hmac\ncrypto map vpn 10 ipsec-isakmp\n set peer 192.0.2.2\n set transform-set t\n match address 101\n\
     interface out0\n ip address 192.0.2.1 255.255.255.0\n crypto map vpn\naccess-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n";

/// A scratch directory holding [`UNBINDABLE`] as `r1.conf`: (directory, configuration).
fn unbindable(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let d = tmpdir(tag);
    let cfg = d.join("r1.conf");
    std::fs::write(&cfg, UNBINDABLE).unwrap();
    (d, cfg)
}

#[test]
fn keylog_is_created_mode_0600_and_never_holds_the_psk() {
    let (d, cfg) = unbindable("keylog");
    let keylog = d.join("keys.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_espgw-control"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--no-sadb",
            "--keylog",
            keylog.to_str().unwrap(),
            "--socket",
        ])
        .arg(d.join("s"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("binding UDP 500/4500 on 192.0.2.1"), "{err}");
    assert!(!err.contains("S3cr3tPSK"));
    let mode = std::fs::metadata(&keylog).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--metrics`: listens where told (and says where), refuses an address it cannot bind,
/// and is not an address at all.
#[test]
fn metrics_listens_only_where_told() {
    let (d, cfg) = unbindable("metrics");
    let socket = d.join("s");
    let common = [cfg.as_os_str(), "--no-sadb".as_ref(), "--socket".as_ref()];
    let run = |metrics: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_espgw-control"));
        cmd.arg("--config").args(common).arg(&socket);
        let out = cmd.args(["--metrics", metrics]).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("127.0.0.1:0");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("metrics on http://127.0.0.1:"), "{err}");
    assert!(err.contains("binding UDP 500/4500 on 192.0.2.1"), "{err}");
    let (code, err) = run("192.0.2.1:9477");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("metrics endpoint 192.0.2.1:9477"), "{err}");
    assert!(!err.contains("binding UDP"), "stopped before IKE: {err}");
    let (code, err) = run("localhost");
    assert_eq!(code, Some(2), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

// ---------------------------------------------------------------------------------------
// Live reconfiguration: a real daemon in its own network namespace (its IKE address on lo).
// ---------------------------------------------------------------------------------------

/// The slides' R1 with one crypto map entry; the IKE address lives on the namespace's lo.
const LIVE: &str = "hostname R1\n\
crypto isakmp policy 1\n encr 3des\n authentication pre-share\n\
crypto isakmp key Liv3Secr3t address 172.16.172.20\n\
crypto ipsec transform-set t esp-3des esp-md5-hmac\n\
crypto map vpn 10 ipsec-isakmp\n set peer 172.16.172.20\n set transform-set t\n match address 101\n\
interface out0\n ip address 172.16.172.10 255.255.255.240\n crypto map vpn\n\
access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n";

/// [`LIVE`] with a second entry (its own peer and ACL) for crypto map vpn.
fn with_entry(seq: u32, peer: &str, acl: u32, remote: &str) -> String {
    format!(
        "{LIVE}crypto map vpn {seq} ipsec-isakmp\n set peer {peer}\n set transform-set t\n match address {acl}\n\
         access-list {acl} permit ip 10.1.1.0 0.0.0.255 {remote} 0.0.0.255\n"
    )
}

/// A running espgw-control (killed on drop) and its scratch directory.
struct LiveDaemon {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl LiveDaemon {
    /// None (and a note) when not root: namespaces need it.
    fn start(tag: &str) -> Option<LiveDaemon> {
        if !nix_is_root() {
            eprintln!("skipped: needs root for a private network namespace");
            return None;
        }
        let dir = tmpdir(tag);
        let cfg = dir.join("r1.conf");
        std::fs::write(&cfg, LIVE).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let script = format!(
            "ip link set lo up && ip addr add 172.16.172.10/28 dev lo && exec {} --config {} --no-sadb --socket {}",
            env!("CARGO_BIN_EXE_espgw-control"),
            cfg.display(),
            dir.join("s").display()
        );
        let child = Command::new("unshare")
            .args(["-n", "sh", "-c", &script])
            .stderr(log)
            .spawn()
            .unwrap();
        let d = LiveDaemon { child, dir };
        let t0 = std::time::Instant::now();
        while d.cli(&["show", "running-config"]).0 != Some(0) {
            assert!(
                t0.elapsed().as_secs() < 20,
                "daemon did not start: {}",
                d.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(d)
    }

    fn config_path(&self) -> std::path::PathBuf {
        self.dir.join("r1.conf")
    }

    /// `espgw ARGS` against this daemon: (exit status, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_espgw"))
            .arg("--socket")
            .arg(self.dir.join("s"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn running(&self) -> String {
        let (code, out, err) = self.cli(&["show", "running-config"]);
        assert_eq!(code, Some(0), "{err}");
        out
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn hup(&self) {
        let st = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits until the log has `needle` (SIGHUP is asynchronous).
    fn wait_log(&self, needle: &str) -> String {
        let t0 = std::time::Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(t0.elapsed().as_secs() < 10, "no {needle:?} in log: {log}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for LiveDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self is owned by the process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn configure_with_a_bad_line_names_it_and_changes_nothing() {
    let Some(d) = LiveDaemon::start("cfg-bad") else {
        return;
    };
    let before = d.running();
    let bad = d.dir.join("bad.conf");
    // After LIVE: a new entry whose peer is no address, then a transform set that is
    // not defined; both errors come back, each with its line.
    let n = LIVE.lines().count();
    let text = format!(
        "{LIVE}crypto map vpn 20 ipsec-isakmp\n set peer 172.16.999.1\n set transform-set nosuch\n"
    );
    std::fs::write(&bad, &text).unwrap();
    let (code, out, err) = d.cli(&["configure", bad.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains(&format!("bad.conf: line {}: set peer", n + 2)),
        "{err}"
    );
    assert!(
        err.contains(&format!("bad.conf: line {}: set transform-set", n + 3)),
        "{err}"
    );
    assert!(!err.contains("Liv3Secr3t"), "{err}");
    assert_eq!(d.running(), before, "running-config changed");
    assert_eq!(std::fs::read_to_string(d.config_path()).unwrap(), LIVE);
    let (_, map, _) = d.cli(&["show", "crypto", "map"]);
    assert!(!map.contains("\"vpn\" 20"), "{map}");
}

#[test]
fn configure_adds_an_entry_shown_in_running_config_and_written_to_the_file() {
    let Some(d) = LiveDaemon::start("cfg-add") else {
        return;
    };
    let new = d.dir.join("new.conf");
    let text = with_entry(20, "172.16.172.30", 102, "10.1.3.0");
    std::fs::write(&new, &text).unwrap();
    let (code, out, err) = d.cli(&["configure", new.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("configuration applied"), "{out}");
    let run = d.running();
    assert!(run.starts_with("Building configuration...\n"), "{run}");
    assert!(
        run.contains("crypto map vpn 20 ipsec-isakmp\n set peer 172.16.172.30\n"),
        "{run}"
    );
    assert!(run.contains("access-list 102 permit ip 10.1.1.0 0.0.0.255 10.1.3.0 0.0.0.255\n"));
    assert!(
        run.contains("crypto isakmp key ***** address 172.16.172.20\n"),
        "{run}"
    );
    assert!(!run.contains("Liv3Secr3t"), "{run}");
    let (_, map, _) = d.cli(&["show", "crypto", "map"]);
    assert!(map.contains("Crypto Map \"vpn\" 20 ipsec-isakmp"), "{map}");
    assert!(map.contains("Peer = 172.16.172.30"), "{map}");
    // The --config file (which the data plane watches) now holds it, mode kept.
    assert_eq!(std::fs::read_to_string(d.config_path()).unwrap(), text);
    let mode = std::fs::metadata(d.config_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    assert!(!d.log().contains("Liv3Secr3t"));
}

#[test]
fn sighup_rereads_the_file_and_a_bad_one_changes_nothing() {
    let Some(d) = LiveDaemon::start("hup") else {
        return;
    };
    std::fs::write(
        d.config_path(),
        with_entry(30, "172.16.172.40", 103, "10.1.4.0"),
    )
    .unwrap();
    d.hup();
    d.wait_log("SIGHUP: configuration applied");
    let run = d.running();
    assert!(
        run.contains("crypto map vpn 30 ipsec-isakmp\n set peer 172.16.172.40\n"),
        "{run}"
    );
    // A bad file: the error and its line in the log, the configuration as before.
    std::fs::write(
        d.config_path(),
        format!("{LIVE}crypto isakmp policy 2\n group 99\n"),
    )
    .unwrap();
    d.hup();
    let log = d.wait_log("SIGHUP: configuration not changed");
    let at = format!("not changed: line {}: group", LIVE.lines().count() + 2);
    assert!(log.contains(&at), "{log}");
    assert_eq!(d.running(), run);
}
