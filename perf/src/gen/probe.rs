//! The generator's frames: Ethernet + IPv4 + UDP with a probe (stream, trial, sequence
//! number, transmit time) at the start of the UDP payload, and the receiver's parser.
//!
//! A 64-byte frame (no FCS on veth) leaves 22 bytes of UDP payload; the probe takes 20:
//!
//! ```text
//! 0      2       3      4               12              20
//! magic  stream  trial  sequence (BE)   tx ns (BE, CLOCK_MONOTONIC)
//! ```
//! Frame sizes count the bytes handed to the interface, Ethernet header to the last
//! payload byte (no preamble, FCS or gap: a veth has none).

use std::net::Ipv4Addr;

/// First two bytes of every probe.
pub const MAGIC: u16 = 0xE5B0;
/// Bytes of the probe.
pub const PROBE_LEN: usize = 20;
/// Ethernet + IPv4 + UDP headers.
pub const HEADERS_LEN: usize = 14 + 20 + 8;
/// Smallest frame that holds a probe.
pub const MIN_FRAME: usize = HEADERS_LEN + PROBE_LEN;
/// Largest frame a 1500-byte MTU carries.
pub const MAX_FRAME: usize = 1514;

/// What the receiver reads back from one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub stream: u8,
    pub trial: u8,
    pub seq: u64,
    pub tx_ns: u64,
}

/// Why a received frame is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("shorter than a probe frame ({0} bytes)")]
    Short(usize),
    #[error("not IPv4 (ethertype {0:#06x})")]
    NotIpv4(u16),
    #[error("IPv4 header length {0} words")]
    BadIhl(u8),
    #[error("not UDP (protocol {0})")]
    NotUdp(u8),
    #[error("an IPv4 fragment")]
    Fragment,
    #[error("no probe magic")]
    NoMagic,
}

impl Probe {
    /// Parses an Ethernet frame; never panics on any input.
    pub fn parse(frame: &[u8]) -> Result<Probe, ProbeError> {
        if frame.len() < 14 + 20 {
            return Err(ProbeError::Short(frame.len()));
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if ethertype != 0x0800 {
            return Err(ProbeError::NotIpv4(ethertype));
        }
        let ip = &frame[14..];
        let ihl = ip[0] & 0x0f;
        if ip[0] >> 4 != 4 || ihl < 5 {
            return Err(ProbeError::BadIhl(ihl));
        }
        if ip[9] != 17 {
            return Err(ProbeError::NotUdp(ip[9]));
        }
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        if frag & 0x3fff != 0 {
            return Err(ProbeError::Fragment);
        }
        let payload = 14 + usize::from(ihl) * 4 + 8;
        let p = frame
            .get(payload..payload + PROBE_LEN)
            .ok_or(ProbeError::Short(frame.len()))?;
        if u16::from_be_bytes([p[0], p[1]]) != MAGIC {
            return Err(ProbeError::NoMagic);
        }
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&p[o..o + 8]);
            u64::from_be_bytes(b)
        };
        Ok(Probe {
            stream: p[2],
            trial: p[3],
            seq: u64_at(4),
            tx_ns: u64_at(12),
        })
    }
}

/// The traffic's addresses: `flows` flows cycle through `src_count` source addresses
/// from `src_ip` (fastest) and `sport_count` UDP source ports from `sport`, so RSS and
/// the DUT's hashing see many 5-tuples.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub src_count: u32,
    pub dst_ip: Ipv4Addr,
    pub sport: u16,
    pub sport_count: u16,
    pub dport: u16,
}

impl FlowSpec {
    /// Number of distinct flows.
    pub fn flows(&self) -> u64 {
        u64::from(self.src_count.max(1)) * u64::from(self.sport_count.max(1))
    }

    /// Writes frame `len` bytes long (`MIN_FRAME..=capacity`) for flow `flow` and
    /// `probe` into `buf[..len]`. Bytes past the probe are left as they are (filler).
    pub fn write(&self, buf: &mut [u8], len: usize, flow: u64, probe: &Probe) {
        let len = len.clamp(MIN_FRAME, buf.len());
        let src_n = u64::from(self.src_count.max(1));
        let src = u32::from(self.src_ip).wrapping_add((flow % src_n) as u32);
        let sport = self
            .sport
            .wrapping_add(((flow / src_n) % u64::from(self.sport_count.max(1))) as u16);
        let b = &mut buf[..len];
        b[0..6].copy_from_slice(&self.dst_mac);
        b[6..12].copy_from_slice(&self.src_mac);
        b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = (len - 14) as u16;
        let ip = &mut b[14..34];
        ip[0] = 0x45;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..6].copy_from_slice(&(probe.seq as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
        ip[8] = 64;
        ip[9] = 17;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&src.to_be_bytes());
        ip[16..20].copy_from_slice(&u32::from(self.dst_ip).to_be_bytes());
        let csum = ipv4_checksum(ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        let udp = &mut b[34..42];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&self.dport.to_be_bytes());
        udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]); // no UDP checksum (IPv4 allows it)
        let p = &mut b[42..42 + PROBE_LEN];
        p[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        p[2] = probe.stream;
        p[3] = probe.trial;
        p[4..12].copy_from_slice(&probe.seq.to_be_bytes());
        p[12..20].copy_from_slice(&probe.tx_ns.to_be_bytes());
    }
}

/// The IPv4 header checksum of `hdr` (its checksum field taken as zero).
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, c) in hdr.chunks(2).enumerate() {
        if i == 5 {
            continue;
        }
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Frame sizes: one fixed size, or IMIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeMix {
    Fixed(usize),
    /// The simple IMIX: of every 12 frames 7 of 64, 4 of 570 and 1 of 1514 bytes
    /// (1518 less the FCS a veth does not have), interleaved.
    Imix,
}

const IMIX_PATTERN: [usize; 12] = [64, 570, 64, 64, 570, 64, 1514, 64, 570, 64, 64, 570];

impl SizeMix {
    /// Size of frame number `seq`.
    pub fn size(&self, seq: u64) -> usize {
        match *self {
            SizeMix::Fixed(n) => n,
            SizeMix::Imix => IMIX_PATTERN[(seq % 12) as usize],
        }
    }

    /// Mean frame size.
    pub fn mean(&self) -> f64 {
        match *self {
            SizeMix::Fixed(n) => n as f64,
            SizeMix::Imix => IMIX_PATTERN.iter().sum::<usize>() as f64 / 12.0,
        }
    }

    /// `64`, `1400`, `imix`.
    pub fn label(&self) -> String {
        match *self {
            SizeMix::Fixed(n) => n.to_string(),
            SizeMix::Imix => "imix".into(),
        }
    }
}

impl std::str::FromStr for SizeMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(SizeMix::Imix);
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("frame size {s:?}: a number of bytes or `imix`"))?;
        // 1518 is the classic Ethernet maximum with FCS; without it 1514.
        let n = if n == 1518 { MAX_FRAME } else { n };
        if !(MIN_FRAME..=MAX_FRAME).contains(&n) {
            return Err(format!(
                "frame size {n}: between {MIN_FRAME} and 1518 bytes (a probe needs {MIN_FRAME})"
            ));
        }
        Ok(SizeMix::Fixed(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FlowSpec {
        FlowSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(10, 1, 1, 2),
            src_count: 4,
            dst_ip: Ipv4Addr::new(10, 1, 2, 2),
            sport: 40000,
            sport_count: 8,
            dport: 40001,
        }
    }

    #[test]
    fn frames_round_trip_at_every_size() {
        let s = spec();
        for len in [64usize, 128, 512, 1400, 1514] {
            let mut buf = vec![0u8; 2048];
            let p = Probe {
                stream: 3,
                trial: 7,
                seq: 0x0102_0304_0506_0708,
                tx_ns: 99,
            };
            s.write(&mut buf, len, 13, &p);
            let f = &buf[..len];
            assert_eq!(Probe::parse(f), Ok(p));
            assert_eq!(usize::from(u16::from_be_bytes([f[16], f[17]])), len - 14);
            assert_eq!(
                ipv4_checksum(&f[14..34]),
                u16::from_be_bytes([f[24], f[25]])
            );
            // flow 13 = source 13 % 4 = +1, port (13 / 4) % 8 = +3
            assert_eq!(&f[26..30], &[10, 1, 1, 3]);
            assert_eq!(u16::from_be_bytes([f[34], f[35]]), 40003);
        }
        assert_eq!(s.flows(), 32);
    }

    #[test]
    fn checksum_matches_a_known_header() {
        // RFC 1071-style example header (checksum 0xb861).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
    }

    #[test]
    fn foreign_frames_are_typed_errors() {
        assert_eq!(Probe::parse(&[0u8; 10]), Err(ProbeError::Short(10)));
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(Probe::parse(&arp), Err(ProbeError::NotIpv4(0x0806)));
        let mut buf = vec![0u8; 64];
        spec().write(
            &mut buf,
            64,
            0,
            &Probe {
                stream: 0,
                trial: 1,
                seq: 1,
                tx_ns: 1,
            },
        );
        let mut bad = buf.clone();
        bad[42] ^= 0xff;
        assert_eq!(Probe::parse(&bad), Err(ProbeError::NoMagic));
        let mut tcp = buf.clone();
        tcp[23] = 6;
        assert_eq!(Probe::parse(&tcp), Err(ProbeError::NotUdp(6)));
        assert_eq!(Probe::parse(&buf[..50]), Err(ProbeError::Short(50)));
    }

    #[test]
    fn any_bytes_parse_without_panic() {
        // A cheap deterministic sweep of random inputs (xorshift), all lengths to 100.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..100 {
            for _ in 0..200 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let mut b = buf.clone();
                if len > 14 {
                    b[12] = 8;
                    b[13] = 0;
                    b[14] = 0x45;
                }
                if len > 23 {
                    b[23] = 17;
                }
                let _ = Probe::parse(&buf);
                let _ = Probe::parse(&b);
            }
        }
    }

    #[test]
    fn sizes_parse_and_imix_mean() {
        assert_eq!("64".parse::<SizeMix>(), Ok(SizeMix::Fixed(64)));
        assert_eq!("1518".parse::<SizeMix>(), Ok(SizeMix::Fixed(1514)));
        assert_eq!("IMIX".parse::<SizeMix>(), Ok(SizeMix::Imix));
        assert!("40".parse::<SizeMix>().is_err());
        assert!("9000".parse::<SizeMix>().is_err());
        let m = SizeMix::Imix;
        let n7 = (0..12).filter(|&i| m.size(i) == 64).count();
        let n4 = (0..12).filter(|&i| m.size(i) == 570).count();
        assert_eq!((n7, n4), (7, 4));
        assert!((m.mean() - (7.0 * 64.0 + 4.0 * 570.0 + 1514.0) / 12.0).abs() < 1e-9);
    }
}
