//! tshark, an ESP implementation we did not write, decrypts and authenticates every frame
//! `espgw pcap encap` writes: every transform, raw ESP and ESP in UDP/4500, IPv4
//! payloads from 1 byte to jumbo.

mod esp_common;

use esp_common::*;
use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::pcap::{process, Direction};
use std::collections::HashMap;
use std::process::Command;

#[test]
fn tshark_decrypts_and_authenticates_every_encapsulated_frame() {
    let dir = TempDir::new("tshark");
    let sizes = sizes();
    let originals: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| inner_frame(s, i as u8))
        .collect();
    let input = packets(&originals);
    for udp in [false, true] {
        let mut all = Vec::new();
        let mut uat = Vec::new();
        // spi -> transform index
        let mut by_spi: HashMap<u32, Transform> = HashMap::new();
        for (k, t) in Transform::all().into_iter().enumerate() {
            let spi = 0x1c0f_f000 + k as u32;
            let cfg = config(Direction::Encap, spi, t, k as u8, udp, None);
            let (summary, out) = process(&cfg, input.clone()).unwrap();
            assert_eq!(summary.packets_out, input.len() as u64, "{t}: {summary}");
            all.extend(out);
            let (enc, auth) = keys_for(t, k as u8);
            uat.push(format!(
                "uat:esp_sa:\"IPv4\",\"{LOCAL}\",\"{REMOTE}\",\"{spi:#010x}\",\"{}\",\"0x{}\",\"{}\",\"0x{}\"",
                tshark_encr(t),
                hex(&enc),
                tshark_auth(t),
                hex(&auth)
            ));
            by_spi.insert(spi, t);
        }
        let pcap = dir.path(&format!("esp-udp{udp}.pcap"));
        write_pcap(&pcap, &all);
        let mut cmd = Command::new("tshark");
        cmd.arg("-r")
            .arg(&pcap)
            .args(["-n", "-d", "udp.port==4500,udpencap"]);
        cmd.args([
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
        ]);
        for u in &uat {
            cmd.arg("-o").arg(u);
        }
        cmd.args([
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ]);
        for f in [
            "frame.number",
            "esp.spi",
            "esp.sequence",
            "esp.icv_good",
            "esp.icv_bad",
            "ip.src",
            "ip.dst",
            "ip.proto",
            "data.data",
            "_ws.malformed",
            "frame.protocols",
        ] {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("tshark runs (apt install tshark)");
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), all.len(), "one line per frame");
        let mut per_spi_seq: HashMap<u32, u32> = HashMap::new();
        for line in &lines {
            let f: Vec<&str> = line.split('|').collect();
            let spi = u32::from_str_radix(f[1].trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| panic!("no ESP in: {line}"));
            let t = by_spi[&spi];
            let seq: u32 = f[2].parse().unwrap();
            let n = per_spi_seq.entry(spi).or_insert(0);
            *n += 1;
            assert_eq!(seq, *n, "sequence numbers count from 1: {line}");
            let idx = (seq - 1) as usize;
            // ICV verified by tshark (for GCM the tag check is the ICV check).
            assert!(
                f[3] == "1" || f[3] == "True",
                "{t} udp={udp} size {}: ICV not good: {line}",
                sizes[idx]
            );
            assert!(f[4].is_empty() || f[4] == "0" || f[4] == "False", "{line}");
            // Decrypted: outer and inner IPv4, and the inner payload equals the original.
            assert_eq!(f[5], format!("{LOCAL},10.1.1.2"), "{t}: {line}");
            assert_eq!(f[6], format!("{REMOTE},10.1.2.2"));
            let expect_proto = if udp { "17,253" } else { "50,253" };
            assert_eq!(f[7], expect_proto);
            assert_eq!(
                f[8],
                hex(&originals[idx][34..]),
                "{t} udp={udp}: payload of size {} differs",
                sizes[idx]
            );
            assert!(f[9].is_empty(), "malformed: {line}");
        }
        assert_eq!(per_spi_seq.len(), Transform::all().len());
    }
}

/// The judge discriminates: with a wrong integrity key tshark reports every ICV bad, and
/// with a wrong GCM key it decrypts nothing.
#[test]
fn tshark_rejects_wrong_keys() {
    let dir = TempDir::new("tshark-neg");
    let originals: Vec<Vec<u8>> = [1usize, 100, 1400]
        .iter()
        .map(|&s| inner_frame(s, 9))
        .collect();
    for name in ["esp-3des esp-md5-hmac", "esp-gcm"] {
        let t = Transform::parse(name).unwrap();
        let cfg = config(Direction::Encap, 0x4242, t, 1, false, None);
        let (_, out) = process(&cfg, packets(&originals)).unwrap();
        let pcap = dir.path("neg.pcap");
        write_pcap(&pcap, &out);
        let (mut enc, mut auth) = keys_for(t, 1);
        if auth.is_empty() {
            enc[0] ^= 1;
        } else {
            auth[0] ^= 1;
        }
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(["-n", "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE", "-o"])
            .arg(format!(
                "uat:esp_sa:\"IPv4\",\"{LOCAL}\",\"{REMOTE}\",\"0x00004242\",\"{}\",\"0x{}\",\"{}\",\"0x{}\"",
                tshark_encr(t),
                hex(&enc),
                tshark_auth(t),
                hex(&auth)
            ))
            .args(["-T", "fields", "-E", "separator=|", "-e", "esp.icv_good", "-e", "data.data"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 3);
        for (line, o) in text.lines().zip(&originals) {
            let f: Vec<&str> = line.split('|').collect();
            assert!(
                f[0] != "1" && f[0] != "True",
                "{name}: wrong key yet ICV good: {line}"
            );
            if t.is_aead() {
                assert_ne!(
                    f.get(1).copied().unwrap_or(""),
                    hex(&o[34..]),
                    "{name}: decrypted with a wrong key"
                );
            }
        }
    }
}
