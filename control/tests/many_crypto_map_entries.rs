//! 10,000 crypto map entries (one site-to-site peer and one named ACL each): the
//! configuration loads in the operator CLI (`espgw check-config --show` lists every entry
//! with its peer) and in espgw-control, which gets past the whole configuration to binding
//! IKE's sockets (the interface address is not configured on this host, so it stops there,
//! as `daemon_cli.rs` arranges). No root needed.

use std::process::Command;

const ENTRIES: u32 = 10_000;

fn peer(i: u32) -> String {
    format!("198.18.{}.{}", i / 250, i % 250 + 1)
}

fn config() -> String {
    let mut c = String::from(
        "hostname R1\ncrypto isakmp policy 10\n encr aes\n authentication pre-share\n\
         crypto isakmp key k3y address 0.0.0.0 0.0.0.0\n\
         crypto ipsec transform-set t esp-aes esp-sha-hmac\n",
    );
    for i in 0..ENTRIES {
        let seq = i + 1;
        c += &format!(
            "crypto map vpn {seq} ipsec-isakmp\n set peer {}\n set transform-set t\n match address T{seq}\n",
            peer(i)
        );
    }
    // 192.0.2.1 (TEST-NET-1) is configured nowhere: espgw-control cannot bind it.
    c += "interface Ethernet1/0\n ip address 192.0.2.1 255.255.255.0\n crypto map vpn\n\
          interface Ethernet0/0\n ip address 10.1.1.1 255.255.255.0\n";
    for i in 0..ENTRIES {
        c += &format!(
            "ip access-list extended T{}\n permit ip 10.1.1.0 0.0.0.255 10.{}.{}.0 0.0.0.255\n",
            i + 1,
            100 + i / 256,
            i % 256
        );
    }
    c + "end\n"
}

#[test]
fn ten_thousand_entries_load_in_the_cli_and_the_daemon() {
    let d = std::env::temp_dir().join(format!("espgw-many-entries-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let cfg = d.join("r1.conf");
    std::fs::write(&cfg, config()).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_espgw"))
        .arg("check-config")
        .arg(&cfg)
        .args([
            "--interface-map",
            "Ethernet0/0=in0,Ethernet1/0=out0",
            "--show",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Crypto Map \"vpn\" ") && l.ends_with("ipsec-isakmp"))
        .collect();
    assert_eq!(entries.len(), ENTRIES as usize);
    for i in [0, 1, 4999, ENTRIES - 1] {
        let head = format!("Crypto Map \"vpn\" {} ipsec-isakmp", i + 1);
        let at = text.find(&head).unwrap_or_else(|| panic!("no {head}"));
        let block = &text[at..];
        let next = block[head.len()..]
            .find("Crypto Map")
            .map_or(block.len(), |n| n + head.len());
        assert!(
            block[..next].contains(&format!("Peer = {}", peer(i))),
            "{}",
            &block[..next]
        );
    }

    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_espgw-control"))
        .args(["--config", cfg.to_str().unwrap(), "--no-sadb", "--socket"])
        .arg(d.join("s"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("binding UDP 500/4500 on 192.0.2.1"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&d);
}
