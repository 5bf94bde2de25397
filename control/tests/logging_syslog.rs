//! `logging host` on the real daemon (issue 16): R1's espgw-control, with no debugging on,
//! answers Main Mode from R2's espgw-control configured with the wrong pre-shared key, and
//! logs `%CRYPTO-4-IKMP_BAD_MESSAGE` as RFC 3164 syslog over UDP to a socket this test owns
//! on hostA (10.1.1.2, inside the test's lab) from the configured `logging facility local6`:
//! PRI 180 (local6 = 22, severity 4 from the tag; local7's 188 when no facility is given is
//! the config and daemon unit tests'). Neither router's key is in any datagram, and `show
//! logging` counts what was sent.

use espgw_lab::{Lab, LabProcess, Node};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const R1_PSK: &str = "R1sEcretPSKv4lue";
const R2_PSK: &str = "R2wr0ngPSKv4lue";
const SYSLOG_PORT: u16 = 5514;

/// A slides-like router configuration with `psk` and `extra` lines.
fn config(node: Node, psk: &str, extra: &str) -> String {
    let site = node.site().expect("a router");
    let (me, peer, inside, out) = (site.name, site.peer_outside, site.inside, site.outside);
    let (local, remote) = (site.local_net, site.remote_net);
    format!(
        "hostname {me}\n{extra}!\ncrypto isakmp policy 10\n encr 3des\n hash md5\n authentication pre-share\n group 2\n\
         crypto isakmp key {psk} address {peer}\n!\n\
         crypto ipsec transform-set myset esp-3des esp-md5-hmac\n!\n\
         crypto map vpn 10 ipsec-isakmp\n set peer {peer}\n set transform-set myset\n match address 101\n!\n\
         interface Ethernet0/0\n ip address {inside} 255.255.255.0\n!\n\
         interface Ethernet1/0\n ip address {out} 255.255.255.240\n crypto map vpn\n!\n\
         access-list 101 permit ip {local} 0.0.0.255 {remote} 0.0.0.255\n!\nend\n"
    )
}

/// espgw-control in `node` (no debug switches), and its control socket.
fn control(lab: &Lab, node: Node, text: &str) -> (LabProcess, PathBuf) {
    let dir = lab.dir();
    let cfg = dir.join(format!("{node}.conf"));
    std::fs::write(&cfg, text).unwrap();
    let socket = dir.join(format!("{node}.sock"));
    let args = [
        env!("CARGO_BIN_EXE_espgw-control"),
        "--config",
        cfg.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
        "--interface-map",
        "Ethernet0/0=in0,Ethernet1/0=out0",
        "--no-sadb",
    ];
    let p = lab.spawn(node, &args).expect("spawn espgw-control");
    let t0 = Instant::now();
    while !socket.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no start:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (p, socket)
}

fn cli(socket: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_espgw"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("espgw");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The test's syslog receiver on hostA: every datagram to 10.1.1.2:5514, one hex line each.
const RECEIVER: &str = "import socket,sys\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
s.bind(('10.1.1.2',int(sys.argv[2])))\n\
f=open(sys.argv[1],'a')\n\
print('listening',flush=True)\n\
while True: d=s.recv(65535); f.write(d.hex()+'\\n'); f.flush()\n";

fn datagrams(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            (0..l.len() / 2)
                .map(|i| u8::from_str_radix(&l[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn crypto_messages_reach_the_logging_host_with_ios_pri_and_no_key() {
    espgw_lab::prereq::require_root();
    let t_start = Instant::now();
    let lab = Lab::up(&Lab::unique_prefix("syslog")).expect("lab");
    let received = lab.dir().join("syslog.hex");
    let port = SYSLOG_PORT.to_string();
    let receiver = lab
        .spawn(
            Node::HostA,
            &[
                "/usr/bin/python3",
                "-c",
                RECEIVER,
                received.to_str().unwrap(),
                &port,
            ],
        )
        .expect("receiver");
    lab.wait_for("the receiver", Duration::from_secs(10), || {
        receiver.log().contains("listening")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", receiver.log()));

    let logging = format!(
        "logging host 10.1.1.2 transport udp port {SYSLOG_PORT}\nlogging trap informational\n\
         logging facility local6\nlogging buffered 8192\n"
    );
    let (r1, s1) = control(&lab, Node::R1, &config(Node::R1, R1_PSK, &logging));
    let (r2, s2) = control(&lab, Node::R2, &config(Node::R2, R2_PSK, ""));
    cli(&s2, &["initiate", "vpn", "10"]);

    let want = "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 172.16.172.20 failed its sanity check or is malformed";
    lab.wait_for("a syslog datagram", Duration::from_secs(15), || {
        datagrams(&received)
            .iter()
            .any(|d| String::from_utf8_lossy(d).contains(want))
    })
    .unwrap_or_else(|e| panic!("{e}\nR1:\n{}\nR2:\n{}", r1.log(), r2.log()));

    let all = datagrams(&received);
    let bad: Vec<String> = all
        .iter()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .filter(|d| d.contains(want))
        .collect();
    // RFC 3164: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG, PRI = 22 (local6) * 8 + 4.
    let d = &bad[0];
    assert!(d.starts_with("<180>"), "{d}");
    let rest = &d[5..];
    assert_eq!(&rest[15..], format!(" R1 espgw-control: {want}"), "{d}");
    assert_eq!(rest.as_bytes()[3], b' ', "{d}");
    // Nothing secret in anything sent.
    for dg in &all {
        for key in [R1_PSK, R2_PSK] {
            assert!(
                !dg.windows(key.len()).any(|w| w == key.as_bytes()),
                "{key} in {}",
                String::from_utf8_lossy(dg)
            );
        }
    }
    // The daemon's own log has the message without any debug switch on.
    assert!(r1.log().contains(want), "{}", r1.log());
    assert!(
        !r1.log().contains("ISAKMP (0:"),
        "debug output without debug"
    );

    let show = cli(&s1, &["show", "logging"]);
    eprintln!("{show}\n{}", bad[0]);
    assert!(show.contains("Trap logging: level informational"), "{show}");
    assert!(
        show.contains("Logging to 10.1.1.2  (udp port 5514"),
        "{show}"
    );
    let lines_logged: u64 = show
        .lines()
        .find_map(|l| l.trim().strip_suffix(" message lines logged,"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{show}"));
    // Counted no fewer than arrived (more may be in flight).
    assert!(
        lines_logged >= all.len() as u64 && lines_logged > 0,
        "{show}\n{}",
        all.len()
    );
    assert!(show.contains("Log Buffer (8192 bytes):"), "{show}");
    let running = cli(&s1, &["show", "running-config"]);
    assert!(running.contains("\nlogging facility local6\n"), "{running}");
    assert!(show.contains(want), "{show}");
    drop((r1, r2, receiver));
    eprintln!("logging_syslog: {:.1} s", t_start.elapsed().as_secs_f64());
}
