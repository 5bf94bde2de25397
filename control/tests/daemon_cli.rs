//! espgw-control's command line: configuration errors, key log permissions. No root needed.

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
