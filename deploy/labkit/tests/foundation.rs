//! The foundation test: strongSwan ↔ strongSwan in the slides' lab, judged by tshark.
//!
//! For each profile: R1 initiates to R2 (both real charon with userspace ESP), hostA pings
//! hostB through the tunnel, and tshark, given the keys charon logged, must decrypt every
//! ESP frame on the R1–R2 link with a good ICV and decrypt the whole ISAKMP exchange with
//! no malformed frame. A wrong integrity key must make tshark report ICV bad. Afterwards
//! the lab's namespaces and every charon/tcpdump the test started are gone.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use espgw_lab::lab::list_netns;
use espgw_lab::{addr, judge, Capture, FrameKind, Icv, IkeMode, Lab, Node, Profile, StrongSwan};

const PINGS: u32 = 10;

fn run_profile(tag: &str, mode: IkeMode, proposal: &str, esp: &str, pfs: Option<&str>) {
    let t0 = Instant::now();
    let prefix = Lab::unique_prefix(tag);
    let mut pids = Vec::new();
    {
        let lab = Lab::up(&prefix).expect("lab up");
        let profile = |n: Node| {
            Profile::new(n)
                .mode(mode)
                .proposal(proposal)
                .esp(esp)
                .pfs(pfs)
                .psk("cisco123")
        };
        let r2 = StrongSwan::start(&lab, Node::R2, profile(Node::R2)).expect("charon on R2");
        let r1 = StrongSwan::start(&lab, Node::R1, profile(Node::R1)).expect("charon on R1");
        let cap = Capture::start(&lab, Node::R1, "out0").expect("tcpdump");
        pids.extend([r1.pid(), r2.pid(), cap.pid()]);

        r1.initiate()
            .unwrap_or_else(|e| panic!("initiate: {e}\n--- R1 log ---\n{}", r1.log()));
        let sa1 = r1
            .wait_established(Duration::from_secs(60))
            .expect("R1 established");
        let sa2 = r2
            .wait_established(Duration::from_secs(60))
            .expect("R2 established");
        assert!(sa1.initiator && !sa2.initiator);
        assert_eq!(sa1.initiator_spi, sa2.initiator_spi);
        let (c1, c2) = (&sa1.children[0], &sa2.children[0]);
        assert_eq!(
            (c1.spi_in, c1.spi_out),
            (c2.spi_out, c2.spi_in),
            "SPIs must mirror"
        );
        assert!(c1.encap, "5.9.8 libipsec always encapsulates in UDP");
        assert_eq!(c1.local_ts, vec![addr::NET_A.to_string()]);
        assert_eq!(c1.remote_ts, vec![addr::NET_B.to_string()]);

        let ping = lab.ping(Node::HostA, addr::HOST_B, PINGS).expect("ping");
        assert!(
            ping.received >= PINGS - 1,
            "hostA→hostB through the tunnel: {ping:?}"
        );
        // Let the last replies reach the capture, then stop it.
        let sa_after = r1.list_sas().expect("list-sas");
        let out_pkts = sa_after[0].children[0].packets_out;
        assert!(
            out_pkts >= u64::from(ping.received),
            "R1 sent {out_pkts} ESP packets"
        );
        std::thread::sleep(Duration::from_millis(300));
        let pcap = cap.stop().expect("stop capture");

        let k1 = r1.keys().expect("R1 keys");
        let k2 = r2.keys().expect("R2 keys");
        assert_eq!(k1.esp.len(), 2, "{:?}", k1.esp);
        let spis: BTreeSet<u32> = k1.esp.iter().map(|k| k.spi).collect();
        assert_eq!(spis, BTreeSet::from([c1.spi_in, c1.spi_out]));
        // DESIGN §5: on the Quick Mode initiator, the "initiator" keys belong to its
        // outbound SPI (the harness reads this from the KEYMAT seeds; check it here).
        assert_eq!(
            (k1.esp[0].spi, k1.esp[0].src.as_str()),
            (c1.spi_out, addr::R1_OUT)
        );
        // Both ends derived the same keys for the same SPIs.
        let mut sorted1 = k1.esp.clone();
        let mut sorted2 = k2.esp.clone();
        sorted1.sort_by_key(|k| k.spi);
        sorted2.sort_by_key(|k| k.spi);
        assert_eq!(sorted1, sorted2, "R1 and R2 disagree on the ESP keys");
        assert_eq!(k1.ike.len(), 1, "{:?}", k1.ike);
        assert_eq!(k1.ike, k2.ike, "R1 and R2 disagree on the phase-1 keys");
        assert_eq!(judge::hex(&k1.ike[0].icookie), sa1.initiator_spi);

        let v = judge(&pcap, &k1.esp, &k1.ike).expect("tshark");
        let summary = v.summary();
        keep_pcap_on_failure(&pcap, tag);
        assert_eq!(v.malformed(), 0, "malformed frames:\n{summary}");

        // ESP: every frame decrypted with ICV good; at least one per ping each way.
        let esp: Vec<_> = v.esp().collect();
        assert!(
            esp.len() as u32 >= 2 * ping.received,
            "{} ESP frames for {ping:?}:\n{summary}",
            esp.len()
        );
        assert!(
            v.bad_esp().is_empty(),
            "ESP frames not decrypted/authenticated:\n{summary}"
        );
        for (_, e) in &esp {
            assert!(e.udp_encap, "libipsec sends ESP in UDP/4500");
            let inner = e.inner.clone().expect("inner packet");
            assert!(
                inner == (addr::HOST_A.into(), addr::HOST_B.into())
                    || inner == (addr::HOST_B.into(), addr::HOST_A.into()),
                "inner {inner:?}"
            );
        }
        for spi in &spis {
            assert!(
                esp.iter().any(|(_, e)| e.spi == *spi),
                "no frame with SPI {spi:#x}:\n{summary}"
            );
        }
        // No plaintext ICMP between the hosts on the outside link.
        assert!(
            v.frames
                .iter()
                .all(|f| !matches!(f.kind, FrameKind::Other) || !f.protocols.contains("icmp")),
            "plaintext on the wire:\n{summary}"
        );

        // ISAKMP: phase 1 (6 or 3 messages) + Quick Mode (3), every encrypted one decrypted.
        let isakmp: Vec<_> = v.isakmp().collect();
        let (p1_type, p1_msgs) = match mode {
            IkeMode::Main => (2u8, 6usize),
            IkeMode::Aggressive => (4u8, 3usize),
        };
        let count = |t: u8| isakmp.iter().filter(|(_, i)| i.exchange == t).count();
        assert_eq!(count(p1_type), p1_msgs, "phase 1:\n{summary}");
        assert_eq!(count(32), 3, "Quick Mode:\n{summary}");
        let encrypted: Vec<_> = isakmp.iter().filter(|(_, i)| i.encrypted).collect();
        assert!(
            encrypted.len() >= if mode == IkeMode::Main { 5 } else { 3 },
            "{summary}"
        );
        assert!(
            encrypted.iter().all(|(_, i)| i.decrypted),
            "ISAKMP not decrypted:\n{summary}"
        );
        assert!(isakmp
            .iter()
            .all(|(_, i)| judge::hex(&k1.ike[0].icookie) == i.icookie));

        // Negative control: one SA's integrity key wrong → tshark says ICV bad for exactly
        // that SPI, still good for the other.
        let bad_spi = c1.spi_out;
        let keys: Vec<_> = k1
            .esp
            .iter()
            .map(|k| {
                if k.spi == bad_spi {
                    k.with_wrong_auth_key()
                } else {
                    k.clone()
                }
            })
            .collect();
        let nv = judge(&pcap, &keys, &k1.ike).expect("tshark (negative control)");
        let mut bad = 0;
        for (_, e) in nv.esp() {
            if e.spi == bad_spi {
                assert_eq!(
                    e.icv,
                    Icv::Bad,
                    "wrong key must fail the ICV:\n{}",
                    nv.summary()
                );
                bad += 1;
            } else {
                assert_eq!(e.icv, Icv::Good);
            }
        }
        assert!(bad >= 1);
        // A retransmitted ISAKMP message (an exact copy, as when a QM1 is resent) cannot be
        // decrypted by tshark (its IV chain has moved on): the judge must name it a
        // retransmission and neither count it as a message nor as malformed.
        if tag == "am3des" {
            let (f, _) = isakmp.iter().find(|(_, i)| i.exchange == 32).expect("QM1");
            let dup = duplicate_frame(&pcap, f.number);
            let dv = judge(&dup, &k1.esp, &k1.ike).expect("tshark (retransmission)");
            let re: Vec<_> = dv.retransmissions().map(|(g, o)| (g.number, o)).collect();
            assert_eq!(re, vec![(f.number + 1, f.number)], "{}", dv.summary());
            assert_eq!(dv.malformed(), 0, "{}", dv.summary());
            assert_eq!(dv.isakmp().count(), isakmp.len());
            assert_eq!(dv.isakmp_all().count(), isakmp.len() + 1);
        }
        // And without any ESP keys nothing decrypts.
        let none = judge(&pcap, &[], &[]).expect("tshark (no keys)");
        assert!(none
            .esp()
            .all(|(_, e)| e.icv == Icv::Unchecked && e.inner.is_none()));
        assert!(none.isakmp().all(|(_, i)| !i.decrypted));
        eprintln!(
            "{tag}: {} ESP + {} ISAKMP frames judged in {:.1}s",
            esp.len(),
            isakmp.len(),
            t0.elapsed().as_secs_f64()
        );
        drop(r1);
        drop(r2);
    }
    // Teardown: namespaces and every process we started are gone.
    let left = list_netns().unwrap();
    assert!(
        left.iter().all(|n| !n.starts_with(&format!("{prefix}-"))),
        "namespaces left: {left:?}"
    );
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
    }
}

/// Writes a copy of `pcap` with frame `n` (1-based) repeated right after itself.
fn duplicate_frame(pcap: &Path, n: u32) -> std::path::PathBuf {
    let out = pcap.with_extension("dup.pcap");
    let script = "import sys\nfrom scapy.all import rdpcap, wrpcap\np = list(rdpcap(sys.argv[1]))\nn = int(sys.argv[3])\np.insert(n, p[n - 1])\nwrpcap(sys.argv[2], p)\n";
    let st = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(pcap)
        .arg(&out)
        .arg(n.to_string())
        .status()
        .expect("/usr/bin/python3 with scapy");
    assert!(st.success());
    out
}

fn keep_pcap_on_failure(pcap: &Path, tag: &str) {
    if std::env::var_os("ESPGW_LAB_KEEP").is_some() {
        let _ = std::fs::copy(pcap, std::env::temp_dir().join(format!("{tag}.pcap")));
    }
}

#[test]
fn main_mode_3des_md5_modp1024() {
    run_profile(
        "mm3des",
        IkeMode::Main,
        "3des-md5-modp1024",
        "3des-md5",
        None,
    );
}

#[test]
fn main_mode_aes128_sha1_modp2048() {
    run_profile(
        "mmaes",
        IkeMode::Main,
        "aes128-sha1-modp2048",
        "aes128-sha1",
        None,
    );
}

#[test]
fn aggressive_mode_3des_md5_modp1024() {
    run_profile(
        "am3des",
        IkeMode::Aggressive,
        "3des-md5-modp1024",
        "3des-md5",
        None,
    );
}

#[test]
fn aggressive_mode_aes128_sha1_modp2048() {
    run_profile(
        "amaes",
        IkeMode::Aggressive,
        "aes128-sha1-modp2048",
        "aes128-sha1",
        None,
    );
}

/// PFS moves the SPI inside the KEYMAT seed; the key-to-SPI mapping must still hold.
#[test]
fn main_mode_aes128_sha1_pfs_modp2048() {
    run_profile(
        "mmpfs",
        IkeMode::Main,
        "aes128-sha1-modp2048",
        "aes128-sha1",
        Some("modp2048"),
    );
}
