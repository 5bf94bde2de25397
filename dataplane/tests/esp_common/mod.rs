//! Shared helpers for the esp_* integration tests (included with `mod esp_common;`).
#![allow(dead_code)]

use espgw_dataplane::crypto::transform::{Cipher, Integrity, Transform};
use espgw_dataplane::pcap::{Direction, OfflineConfig, PcapPacket, PcapWriter};
use espgw_dataplane::wire::{checksum, IpProtocol, Ipv4Packet, Ipv4Repr};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);
/// IP protocol 253 (RFC 3692, experimentation): tshark shows the payload as plain data,
/// whatever its bytes.
pub const EXPERIMENT_PROTO: u8 = 253;

/// IPv4 payload sizes: every size 1..=48 (all padding lengths of every block size), the
/// MTU neighbourhood, and jumbo sizes.
pub fn sizes() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=48).collect();
    v.extend([
        63, 64, 65, 127, 128, 129, 255, 256, 511, 512, 1000, 1399, 1400, 1438, 1472, 1480, 1500,
        1501, 1520, 2000, 4000, 9000,
    ]);
    v
}

/// An Ethernet frame with an IPv4 packet (10.1.1.2 → 10.1.2.2) of `len` payload bytes.
pub fn inner_frame(len: usize, tag: u8) -> Vec<u8> {
    let repr = Ipv4Repr {
        src: Ipv4Addr::new(10, 1, 1, 2),
        dst: Ipv4Addr::new(10, 1, 2, 2),
        protocol: IpProtocol::Unknown(EXPERIMENT_PROTO),
        payload_len: len,
        ttl: 64,
        dscp_ecn: 0,
        ident: u16::from(tag) << 8 | (len as u16 & 0xff),
        dont_frag: len.is_multiple_of(2),
        options: vec![],
    };
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    f.resize(14 + repr.buffer_len(), 0);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]))
        .unwrap();
    for (i, b) in f[34..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7).wrapping_add(tag);
    }
    let _ = checksum::sum(&[]);
    f
}

pub fn packets(frames: &[Vec<u8>]) -> Vec<PcapPacket> {
    frames
        .iter()
        .enumerate()
        .map(|(i, d)| PcapPacket {
            ts_sec: 1_700_000_000 + i as u32,
            ts_nsec: 0,
            orig_len: d.len() as u32,
            data: d.clone(),
        })
        .collect()
}

pub fn write_pcap(path: &Path, pk: &[PcapPacket]) {
    let mut w = PcapWriter::new(std::io::BufWriter::new(
        std::fs::File::create(path).unwrap(),
    ))
    .unwrap();
    for p in pk {
        w.write_packet(p.ts_sec, p.ts_nsec, &p.data).unwrap();
    }
    w.into_inner().unwrap();
}

/// Deterministic keys per transform (different for each SPI).
pub fn keys_for(t: Transform, salt: u8) -> (Vec<u8>, Vec<u8>) {
    let enc = (0..t.enc_key_len())
        .map(|i| {
            (i as u8)
                .wrapping_mul(29)
                .wrapping_add(salt)
                .wrapping_add(3)
        })
        .collect();
    let auth = (0..t.auth_key_len())
        .map(|i| (i as u8).wrapping_mul(13) ^ salt)
        .collect();
    (enc, auth)
}

pub fn config(
    dir: Direction,
    spi: u32,
    t: Transform,
    salt: u8,
    udp: bool,
    window: Option<u32>,
) -> OfflineConfig {
    let (enc, auth) = keys_for(t, salt);
    OfflineConfig::new(
        dir,
        spi,
        &t.ios_name(),
        &enc,
        (t.auth_key_len() > 0).then_some(&auth[..]),
        LOCAL,
        REMOTE,
        udp,
        window,
    )
    .unwrap()
}

pub fn tshark_encr(t: Transform) -> &'static str {
    match t.cipher() {
        Cipher::Null => "NULL",
        Cipher::Tdes => "TripleDES-CBC [RFC2451]",
        Cipher::AesCbc(_) => "AES-CBC [RFC3602]",
        Cipher::AesGcm(_) => "AES-GCM with 16 octet ICV [RFC4106]",
    }
}

pub fn tshark_auth(t: Transform) -> &'static str {
    match t.integrity() {
        Integrity::None => "NULL",
        Integrity::HmacMd5 => "HMAC-MD5-96 [RFC2403]",
        Integrity::HmacSha1 => "HMAC-SHA-1-96 [RFC2404]",
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A scratch directory removed on drop (kept when ESP_TEST_KEEP is set).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("espgw-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ESP_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
