//! The judge on pcaps written offline (as the `esp` engineer uses it): scapy, an
//! independent ESP implementation, writes raw and UDP-encapsulated ESP for several
//! transforms with known keys; tshark must decrypt and authenticate each frame, report
//! ICV bad for frames with a flipped ICV bit (CBC+HMAC and GCM), and count a truncated frame
//! as not good.

use std::process::Command;
use std::time::Instant;

use espgw_lab::{judge, EspAuth, EspEncr, EspSaKeys, Icv};

const SCAPY: &str = r#"
import sys
from scapy.all import IP, UDP, Raw, Ether, wrpcap
from scapy.layers.ipsec import SecurityAssociation, ESP
out, n = sys.argv[1], int(sys.argv[2])
sas = []
for spec in sys.argv[3:]:
    spi, crypt, ckey, auth, akey, encap = spec.split(':')
    kw = dict(spi=int(spi, 16), crypt_algo=crypt, crypt_key=bytes.fromhex(ckey),
              tunnel_header=IP(src='172.16.172.10', dst='172.16.172.20'))
    if auth != 'NULL':
        kw.update(auth_algo=auth, auth_key=bytes.fromhex(akey))
    if encap == 'udp':
        kw['nat_t_header'] = UDP(sport=4500, dport=4500)
    sas.append(SecurityAssociation(ESP, **kw))
frames = []
for i in range(n):
    for sa in sas:
        inner = IP(src='10.1.1.2', dst='10.1.2.2')/UDP(sport=40000 + i % 100, dport=40001)/Raw(bytes([i % 256]) * (20 + i % 60))
        p = sa.encrypt(inner)
        if UDP in p:  # scapy 2.5 leaves the NAT-T UDP length at 8 (DESIGN 8)
            p[UDP].len = None
            p[UDP].chksum = 0
            p[IP].len = None
            p = IP(bytes(p))
        frames.append(Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02')/p)
# frames n*len(sas)+1 and +2: the first 3DES and the first GCM frame, last ICV bit flipped
for k in (0, 2):
    b = bytearray(bytes(frames[k])); b[-1] ^= 1; frames.append(Ether(bytes(b)))
# and one truncated in the middle of the ESP payload
b = bytes(frames[0]); frames.append(Ether(b[:14 + 20 + 8 + 12]))
wrpcap(out, frames)
"#;

fn sa(spi: u32, encr: EspEncr, enc_key: Vec<u8>, auth: EspAuth, auth_key: Vec<u8>) -> EspSaKeys {
    EspSaKeys {
        spi,
        src: "172.16.172.10".into(),
        dst: "172.16.172.20".into(),
        encr,
        enc_key,
        auth,
        auth_key,
    }
}

fn key(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn scapy_name(e: EspEncr) -> &'static str {
    match e {
        EspEncr::TripleDesCbc => "3DES",
        EspEncr::AesCbc => "AES-CBC",
        EspEncr::AesGcm16 => "AES-GCM",
        _ => unreachable!(),
    }
}

fn auth_name(a: EspAuth) -> &'static str {
    match a {
        EspAuth::HmacMd5_96 => "HMAC-MD5-96",
        EspAuth::HmacSha1_96 => "HMAC-SHA1-96",
        EspAuth::Null => "NULL",
        _ => unreachable!(),
    }
}

fn run(encap: &str) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("gen.py");
    std::fs::write(&script, SCAPY).unwrap();
    let pcap = dir.path().join("offline.pcap");
    let sas = [
        sa(
            0x1000_0001,
            EspEncr::TripleDesCbc,
            key(24, 1),
            EspAuth::HmacMd5_96,
            key(16, 2),
        ),
        sa(
            0x1000_0002,
            EspEncr::AesCbc,
            key(16, 3),
            EspAuth::HmacSha1_96,
            key(20, 4),
        ),
        sa(
            0x1000_0003,
            EspEncr::AesGcm16,
            key(20, 5),
            EspAuth::Null,
            vec![],
        ),
    ];
    let per_sa = 100;
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script).arg(&pcap).arg(per_sa.to_string());
    for k in &sas {
        cmd.arg(format!(
            "{:x}:{}:{}:{}:{}:{encap}",
            k.spi,
            scapy_name(k.encr),
            judge::hex(&k.enc_key),
            auth_name(k.auth),
            if k.auth_key.is_empty() {
                "00".into()
            } else {
                judge::hex(&k.auth_key)
            }
        ));
    }
    let out = cmd.output().expect("/usr/bin/python3 with scapy");
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t = Instant::now();
    let v = judge(&pcap, &sas, &[]).expect("tshark");
    eprintln!(
        "judged {} frames ({encap}) in {:.2}s",
        v.frames.len(),
        t.elapsed().as_secs_f64()
    );
    let total = per_sa * sas.len();
    assert_eq!(v.frames.len(), total + 3);
    let summary = v.summary();
    for f in &v.frames[..total] {
        let espgw_lab::FrameKind::Esp(e) = &f.kind else {
            panic!("not ESP: {summary}")
        };
        assert!(!f.malformed && e.decrypted, "{summary}");
        assert_eq!(e.udp_encap, encap == "udp");
        assert_eq!(e.icv, Icv::Good, "{summary}"); // tshark 4.0 checks the GCM tag too
        assert_eq!(e.inner, Some(("10.1.1.2".into(), "10.1.2.2".into())));
    }
    for (i, spi) in [(total, 0x1000_0001), (total + 1, 0x1000_0003)] {
        let espgw_lab::FrameKind::Esp(e) = &v.frames[i].kind else {
            panic!("{summary}")
        };
        assert_eq!(
            (e.spi, e.icv),
            (spi, Icv::Bad),
            "flipped ICV bit:\n{summary}"
        );
    }
    let espgw_lab::FrameKind::Esp(e) = &v.frames[total + 2].kind else {
        panic!("{summary}")
    };
    assert!(!e.decrypted && e.icv != Icv::Good, "truncated:\n{summary}");
    assert_eq!(
        v.bad_esp().len(),
        3,
        "the two flipped frames and the truncated one:\n{summary}"
    );
}

#[test]
fn judges_raw_esp_written_offline() {
    run("raw");
}

#[test]
fn judges_udp_encapsulated_esp_written_offline() {
    run("udp");
}
