//! The key log (`espgw-control --keylog FILE`): one line per ISAKMP SA and per IPsec SA,
//! each carrying the exact record tshark's UAT tables take, so a capture can be decrypted.
//!
//! Format (version 1), one record per line, `#` starts a comment:
//!
//! ```text
//! ikev1 ICOOKIE,KA
//! esp "IPv4","SRC","DST","0xSPI","ENCR","0xENCKEY","AUTH","0xAUTHKEY"
//! ```
//!
//! - `ikev1` lines: the rest of the line is an `ikev1_decryption_table` record (lower-case
//!   hex initiator cookie, comma, lower-case hex IKE encryption key Ka).
//! - `esp` lines: the rest of the line is an `esp_sa` record (DESIGN §5) with tshark's
//!   algorithm names (`TripleDES-CBC [RFC2451]`, `AES-CBC [RFC3602]`, `HMAC-MD5-96 [RFC2403]`,
//!   `HMAC-SHA-1-96 [RFC2404]`, `HMAC-SHA-256-128 [RFC4868]`).
//!
//! So: `grep '^ikev1 ' keylog | cut -c7-` feeds `-o uat:ikev1_decryption_table:…` and
//! `grep '^esp ' keylog | cut -c5-` feeds `-o uat:esp_sa:…`. The file is created with mode
//! 0600 and only appended to.

use super::config::{EspAuth, EspEnc};
use super::types::IpsecSa;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// tshark's name of an ESP encryption algorithm.
pub fn tshark_encr(e: EspEnc) -> &'static str {
    match e {
        EspEnc::Des3 => "TripleDES-CBC [RFC2451]",
        EspEnc::Aes(_) => "AES-CBC [RFC3602]",
        EspEnc::Gcm(_) => "AES-GCM with 16 octet ICV [RFC4106]",
        EspEnc::Null => "NULL",
    }
}

/// tshark's name of an ESP integrity algorithm.
pub fn tshark_auth(a: EspAuth) -> &'static str {
    match a {
        EspAuth::Md5 => "HMAC-MD5-96 [RFC2403]",
        EspAuth::Sha1 => "HMAC-SHA-1-96 [RFC2404]",
        EspAuth::Sha256 => "HMAC-SHA-256-128 [RFC4868]",
        EspAuth::None => "NULL",
    }
}

/// The `ikev1` line for a phase-1 SA.
pub fn ikev1_line(icookie: &[u8; 8], ka: &[u8]) -> String {
    format!("ikev1 {},{}", hex(icookie), hex(ka))
}

/// The `esp` line for one IPsec SA.
pub fn esp_line(sa: &IpsecSa) -> String {
    format!(
        "esp \"IPv4\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"0x{}\",\"{}\",\"0x{}\"",
        sa.src,
        sa.dst,
        sa.spi,
        tshark_encr(sa.transform.enc),
        hex(&sa.enc_key),
        tshark_auth(sa.transform.auth),
        hex(&sa.auth_key)
    )
}

/// One parsed key-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeylogRecord {
    Ikev1 {
        icookie: Vec<u8>,
        ka: Vec<u8>,
    },
    Esp {
        src: String,
        dst: String,
        spi: u32,
        encr: String,
        enc_key: Vec<u8>,
        auth: String,
        auth_key: Vec<u8>,
    },
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_start_matches("0x");
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses one key-log line (None for comments, blank or malformed lines).
pub fn parse_line(line: &str) -> Option<KeylogRecord> {
    let line = line.trim();
    if let Some(r) = line.strip_prefix("ikev1 ") {
        let (c, k) = r.split_once(',')?;
        return Some(KeylogRecord::Ikev1 {
            icookie: unhex(c)?,
            ka: unhex(k)?,
        });
    }
    let r = line.strip_prefix("esp ")?;
    let f: Vec<&str> = r.split("\",\"").map(|x| x.trim_matches('"')).collect();
    if f.len() != 8 {
        return None;
    }
    Some(KeylogRecord::Esp {
        src: f[1].to_string(),
        dst: f[2].to_string(),
        spi: u32::from_str_radix(f[3].trim_start_matches("0x"), 16).ok()?,
        encr: f[4].to_string(),
        enc_key: unhex(f[5])?,
        auth: f[6].to_string(),
        auth_key: unhex(f[7])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::config::{Proxy, TransformSet};
    use crate::ike::types::Direction;
    use std::net::Ipv4Addr;
    use zeroize::Zeroizing;

    #[test]
    fn lines_round_trip() {
        let l = ikev1_line(&[0xab; 8], &[1, 2, 3]);
        assert_eq!(l, "ikev1 abababababababab,010203");
        assert_eq!(
            parse_line(&l),
            Some(KeylogRecord::Ikev1 {
                icookie: vec![0xab; 8],
                ka: vec![1, 2, 3]
            })
        );
        let p = Proxy::subnet(Ipv4Addr::new(10, 1, 1, 0), Ipv4Addr::new(255, 255, 255, 0));
        let sa = IpsecSa {
            direction: Direction::Outbound,
            spi: 0xeb84dc85,
            src: Ipv4Addr::new(172, 16, 172, 10),
            dst: Ipv4Addr::new(172, 16, 172, 20),
            src_proxy: p,
            dst_proxy: p,
            transform: TransformSet {
                name: "myset".into(),
                enc: EspEnc::Des3,
                auth: EspAuth::Md5,
                transport: false,
            },
            enc_key: Zeroizing::new(vec![7; 24]),
            auth_key: Zeroizing::new(vec![8; 16]),
            lifetime_secs: 3600,
            lifetime_kb: 4608000,
            encap: None,
            conn_id: 2030,
            map: "vpn".into(),
            seq: 10,
        };
        let l = esp_line(&sa);
        assert!(l.starts_with("esp \"IPv4\",\"172.16.172.10\",\"172.16.172.20\",\"0xeb84dc85\",\"TripleDES-CBC [RFC2451]\",\"0x0707"));
        match parse_line(&l).unwrap() {
            KeylogRecord::Esp {
                spi,
                enc_key,
                auth_key,
                auth,
                ..
            } => {
                assert_eq!(spi, 0xeb84dc85);
                assert_eq!(enc_key, vec![7; 24]);
                assert_eq!(auth_key, vec![8; 16]);
                assert_eq!(auth, "HMAC-MD5-96 [RFC2403]");
            }
            _ => panic!(),
        }
    }
}
