//! `espgw pcap decap` recovers, byte for byte, the inner packets of ESP that scapy's ESP
//! implementation built, for every transform, raw and in UDP/4500; replayed, out-of-
//! window, truncated, bad-padding and wrong-ICV packets are dropped under the right
//! reason and never delivered.

mod esp_common;

use esp_common::*;
use espgw_dataplane::crypto::transform::{Cipher, Integrity, Transform};
use espgw_dataplane::esp::DropReason;
use espgw_dataplane::pcap::{parse_pcap, process, run_offline, Direction};
use std::process::Command;

fn scapy_crypt(t: Transform) -> &'static str {
    match t.cipher() {
        Cipher::Null => "NULL",
        Cipher::Tdes => "3DES",
        Cipher::AesCbc(_) => "AES-CBC",
        Cipher::AesGcm(_) => "AES-GCM",
    }
}

fn scapy_auth(t: Transform) -> &'static str {
    match t.integrity() {
        Integrity::None => "NULL",
        Integrity::HmacMd5 => "HMAC-MD5-96",
        Integrity::HmacSha1 => "HMAC-SHA1-96",
    }
}

#[test]
fn decap_recovers_scapy_esp_and_drops_bad_packets_by_reason() {
    let dir = TempDir::new("scapy");
    let mut sas = Vec::new();
    let mut cases = Vec::new();
    for (k, t) in Transform::all().into_iter().enumerate() {
        for udp in [false, true] {
            let name = format!("sa{k}-udp{udp}");
            let spi = 0x5ca9_0000 + (k as u32) * 2 + u32::from(udp);
            let (enc, auth) = keys_for(t, 40 + k as u8);
            sas.push(serde_json::json!({
                "name": name, "spi": spi, "crypt": scapy_crypt(t), "crypt_key": hex(&enc),
                "auth": scapy_auth(t), "auth_key": hex(&auth), "udp": udp,
            }));
            cases.push((name, spi, t, k, udp));
        }
    }
    let sizes: Vec<usize> = sizes().into_iter().filter(|&s| s <= 1600).collect();
    let job = serde_json::json!({"sas": sas, "local": LOCAL.to_string(), "remote": REMOTE.to_string(), "sizes": sizes});
    let job_path = dir.path("job.json");
    std::fs::write(&job_path, job.to_string()).unwrap();
    let gen = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/esp_scapy_gen.py");
    let out = Command::new("/usr/bin/python3")
        .arg(gen)
        .arg(&job_path)
        .arg(&dir.0)
        .output()
        .expect("Debian python3 with scapy");
    assert!(
        out.status.success(),
        "scapy generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (name, spi, t, k, udp) in cases {
        let expect: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path(&format!("{name}.json"))).unwrap())
                .unwrap();
        let input = dir.path(&format!("{name}.pcap"));
        let output = dir.path(&format!("{name}-out.pcap"));
        let cfg = config(Direction::Decap, spi, t, 40 + k as u8, udp, Some(64));
        let summary = run_offline(&cfg, &input, &output).unwrap();
        let got = parse_pcap(&std::fs::read(&output).unwrap()).unwrap();
        let delivered: Vec<String> = expect["delivered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got.len(), delivered.len(), "{t} udp={udp}: {summary}");
        for (i, (g, d)) in got.iter().zip(&delivered).enumerate() {
            // The output frame is Ethernet + the inner packet exactly as scapy built it.
            assert_eq!(hex(&g.data[14..]), *d, "{t} udp={udp}: packet {i} differs");
            assert_eq!(&g.data[12..14], &[8, 0]);
        }
        let drops = expect["drops"].as_object().unwrap();
        for r in DropReason::ALL {
            let want = drops.get(r.name()).and_then(|v| v.as_u64()).unwrap_or(0);
            assert_eq!(
                summary.drops.get(r),
                want,
                "{t} udp={udp}: {} — {summary}",
                r.name()
            );
        }
        assert_eq!(
            summary.packets_in,
            summary.packets_out + summary.drops.total()
        );
    }
}

/// Our own encap output, fed back through decap with the same flags, round-trips (the
/// operator's "reverse it" use), and decap of it with the wrong key counts auth drops.
#[test]
fn decap_reverses_encap_with_the_same_flags() {
    let originals: Vec<Vec<u8>> = sizes()
        .iter()
        .enumerate()
        .map(|(i, &s)| inner_frame(s, i as u8))
        .collect();
    for t in Transform::all() {
        for udp in [false, true] {
            let (_, esp) = process(
                &config(Direction::Encap, 0x777, t, 5, udp, None),
                packets(&originals),
            )
            .unwrap();
            let (s, back) = process(
                &config(Direction::Decap, 0x777, t, 5, udp, Some(1024)),
                esp.clone(),
            )
            .unwrap();
            assert_eq!(s.drops.total(), 0, "{t}: {s}");
            for (b, o) in back.iter().zip(&originals) {
                assert_eq!(&b.data, o);
            }
            let (s, back) =
                process(&config(Direction::Decap, 0x777, t, 6, udp, None), esp).unwrap();
            assert!(back.is_empty());
            assert_eq!(
                s.drops.get(DropReason::Auth),
                originals.len() as u64,
                "{t}: {s}"
            );
        }
    }
}
