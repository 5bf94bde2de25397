//! Classic pcap files (the libpcap format, Ethernet link type) and the logic of the
//! offline tool `espgw pcap encap|decap` (the `espgw-pcap` binary, arguments in [`cli`]),
//! which runs captured packets through an SA.
//!
//! The reader accepts both byte orders and both microsecond and nanosecond magics; the
//! writer writes little-endian microsecond files. Every malformed input is a typed error.

use crate::crypto::transform::{Transform, TransformError};
use crate::esp::{
    decapsulate_batch, encapsulate_batch, DropCounters, DropReason, EspContext, Frame, InboundSa,
    NatT, OutboundSa, SaError, SaKeys, SaParams, ENCAP_HEADROOM, ENCAP_TAILROOM, MAX_REPLAY_WINDOW,
};
use crate::wire::{
    EtherType, EthernetFrame, IpProtocol, Ipv4Packet, UdpPacket, ESP_HEADER_LEN, NATT_PORT,
};
use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::Ipv4Addr;
use std::path::Path;

pub mod cli;

/// Link type 1: Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;
const MAGIC_USEC: u32 = 0xa1b2_c3d4;
const MAGIC_NSEC: u32 = 0xa1b2_3c4d;
/// Largest record we accept, whatever the file's snaplen says.
pub const MAX_RECORD_LEN: u32 = 262_144;

/// What is wrong with a pcap file.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("not a pcap file (magic {0:#010x})")]
    BadMagic(u32),
    #[error("unsupported pcap version {0}.{1}")]
    BadVersion(u16, u16),
    #[error("file header truncated")]
    TruncatedHeader,
    #[error("link type {0} is not Ethernet (1)")]
    UnsupportedLinkType(u32),
    #[error("record {index}: header truncated")]
    TruncatedRecordHeader { index: u64 },
    #[error("record {index}: data truncated ({have} of {need} bytes)")]
    TruncatedRecord { index: u64, need: u32, have: usize },
    #[error("record {index}: length {len} exceeds {max}")]
    RecordTooLarge { index: u64, len: u32, max: u32 },
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapPacket {
    pub ts_sec: u32,
    pub ts_nsec: u32,
    /// Length on the wire (may exceed `data.len()` for truncated captures).
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads a classic pcap stream.
pub struct PcapReader<R: Read> {
    r: R,
    swapped: bool,
    nanos: bool,
    pub snaplen: u32,
    pub linktype: u32,
    index: u64,
}

/// Reads up to `buf.len()` bytes; returns how many were read (short only at EOF).
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> PcapReader<R> {
    /// Reads the file header; only Ethernet captures are accepted.
    pub fn new(mut r: R) -> Result<Self, PcapError> {
        let mut h = [0u8; 24];
        if read_full(&mut r, &mut h)? < 24 {
            return Err(PcapError::TruncatedHeader);
        }
        let magic_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (swapped, nanos) = match magic_le {
            MAGIC_USEC => (false, false),
            MAGIC_NSEC => (false, true),
            m if m.swap_bytes() == MAGIC_USEC => (true, false),
            m if m.swap_bytes() == MAGIC_NSEC => (true, true),
            m => return Err(PcapError::BadMagic(m)),
        };
        let u16_at = |i: usize| {
            let v = u16::from_le_bytes([h[i], h[i + 1]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let u32_at = |i: usize| {
            let v = u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (major, minor) = (u16_at(4), u16_at(6));
        if major != 2 {
            return Err(PcapError::BadVersion(major, minor));
        }
        let snaplen = u32_at(16);
        let linktype = u32_at(20) & 0x0fff_ffff;
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapError::UnsupportedLinkType(linktype));
        }
        Ok(PcapReader {
            r,
            swapped,
            nanos,
            snaplen,
            linktype,
            index: 0,
        })
    }

    /// The next packet, or `None` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<PcapPacket>, PcapError> {
        let mut h = [0u8; 16];
        let n = read_full(&mut self.r, &mut h)?;
        if n == 0 {
            return Ok(None);
        }
        let index = self.index;
        if n < 16 {
            return Err(PcapError::TruncatedRecordHeader { index });
        }
        let f = |i: usize| {
            let v = u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            if self.swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (ts_sec, frac, incl, orig) = (f(0), f(4), f(8), f(12));
        if incl > MAX_RECORD_LEN {
            return Err(PcapError::RecordTooLarge {
                index,
                len: incl,
                max: MAX_RECORD_LEN,
            });
        }
        let mut data = vec![0u8; incl as usize];
        let got = read_full(&mut self.r, &mut data)?;
        if got < data.len() {
            return Err(PcapError::TruncatedRecord {
                index,
                need: incl,
                have: got,
            });
        }
        self.index += 1;
        let ts_nsec = if self.nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        Ok(Some(PcapPacket {
            ts_sec,
            ts_nsec,
            orig_len: orig,
            data,
        }))
    }
}

impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<PcapPacket, PcapError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet().transpose()
    }
}

/// Parses a whole pcap image in memory.
pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<PcapPacket>, PcapError> {
    PcapReader::new(bytes)?.collect()
}

/// Writes a little-endian, microsecond, Ethernet pcap stream.
pub struct PcapWriter<W: Write> {
    w: W,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut w: W) -> Result<Self, PcapError> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_USEC.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&MAX_RECORD_LEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    pub fn write_packet(
        &mut self,
        ts_sec: u32,
        ts_nsec: u32,
        data: &[u8],
    ) -> Result<(), PcapError> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if len > MAX_RECORD_LEN {
            return Err(PcapError::RecordTooLarge {
                index: 0,
                len,
                max: MAX_RECORD_LEN,
            });
        }
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&ts_sec.to_le_bytes());
        h[4..8].copy_from_slice(&(ts_nsec / 1000).to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)?;
        Ok(())
    }

    pub fn into_inner(mut self) -> Result<W, PcapError> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Which way the offline tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Encap,
    Decap,
}

/// The offline tool's settings, validated: every error names the flag at fault.
#[derive(Clone)]
pub struct OfflineConfig {
    pub direction: Direction,
    pub spi: u32,
    pub transform: Transform,
    pub keys: SaKeys,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub udp_encap: bool,
    pub replay_window: u32,
}

impl fmt::Debug for OfflineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineConfig")
            .field("direction", &self.direction)
            .field("spi", &format_args!("{:#x}", self.spi))
            .field("transform", &self.transform.ios_name())
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("udp_encap", &self.udp_encap)
            .field("replay_window", &self.replay_window)
            .finish_non_exhaustive()
    }
}

/// A bad flag, or a failure reading or writing the files.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("{flag}: {msg}")]
    Flag { flag: &'static str, msg: String },
    #[error("{path}: {source}")]
    Pcap {
        path: String,
        #[source]
        source: PcapError,
    },
}

fn flag(flag: &'static str, msg: impl Into<String>) -> OfflineError {
    OfflineError::Flag {
        flag,
        msg: msg.into(),
    }
}

impl OfflineConfig {
    /// Checks the flags against each other: key lengths against the transform, the SPI
    /// range, the window size.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        direction: Direction,
        spi: u32,
        transform: &str,
        enc_key: &[u8],
        auth_key: Option<&[u8]>,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        udp_encap: bool,
        replay_window: Option<u32>,
    ) -> Result<Self, OfflineError> {
        if spi < 256 {
            return Err(flag(
                "--spi",
                format!("{spi:#x} is reserved (SPIs 0..=0xff are not used)"),
            ));
        }
        let t = Transform::parse(transform).map_err(|e| flag("--transform", e.to_string()))?;
        if enc_key.len() != t.enc_key_len() {
            let what = if t.is_aead() {
                " (key followed by the 4-byte salt)"
            } else {
                ""
            };
            return Err(flag(
                "--enc-key",
                format!(
                    "{} needs {} bytes{what}, got {}",
                    t.ios_name(),
                    t.enc_key_len(),
                    enc_key.len()
                ),
            ));
        }
        let auth = auth_key.unwrap_or(&[]);
        match (t.auth_key_len(), auth_key) {
            (0, Some(_)) => {
                return Err(flag(
                    "--auth-key",
                    format!("{} takes no authentication key", t.ios_name()),
                ))
            }
            (n, None) if n > 0 => {
                return Err(flag(
                    "--auth-key",
                    format!("required by {} ({n} bytes)", t.ios_name()),
                ))
            }
            (n, Some(k)) if k.len() != n => {
                return Err(flag(
                    "--auth-key",
                    format!("{} needs {n} bytes, got {}", t.ios_name(), k.len()),
                ))
            }
            _ => {}
        }
        let w = replay_window.unwrap_or(crate::esp::DEFAULT_REPLAY_WINDOW);
        if w == 0 || w > MAX_REPLAY_WINDOW {
            return Err(flag(
                "--replay-window",
                format!("must be 1..={MAX_REPLAY_WINDOW}, got {w}"),
            ));
        }
        if replay_window.is_some() && direction == Direction::Encap {
            return Err(flag("--replay-window", "applies to decap only"));
        }
        if local == remote {
            return Err(flag("--remote", "must differ from --local"));
        }
        // Weak 3DES keys and the like surface here.
        crate::crypto::transform::SaCrypto::new(t, enc_key, auth).map_err(|e| match e {
            TransformError::KeyLength {
                what: "authentication",
                ..
            } => flag("--auth-key", e.to_string()),
            _ => flag("--enc-key", e.to_string()),
        })?;
        Ok(OfflineConfig {
            direction,
            spi,
            transform: t,
            keys: SaKeys::new(enc_key, auth),
            local,
            remote,
            udp_encap,
            replay_window: w,
        })
    }

    fn params(&self, local: Ipv4Addr, remote: Ipv4Addr) -> SaParams {
        let mut p = SaParams::tunnel(self.spi, self.transform, local, remote);
        p.natt = self.udp_encap.then(NatT::default);
        p.replay_window = self.replay_window;
        p
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets_in: u64,
    pub packets_out: u64,
    pub drops: DropCounters,
}

impl fmt::Display for Summary {
    /// One line: `in=N out=M dropped=K no-sa=… replay=… …` (every reason, always).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in={} out={} dropped={}",
            self.packets_in,
            self.packets_out,
            self.drops.total()
        )?;
        for (r, n) in self.drops.iter() {
            write!(f, " {}={}", r.name(), n)?;
        }
        Ok(())
    }
}

/// Packets per batch call.
const BATCH: usize = 64;

/// The outer (src, dst) of an ESP frame for this SPI, if it is one.
fn esp_endpoints(data: &[u8], spi: u32, udp_encap: bool) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let eth = EthernetFrame::new_checked(data).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let esp = match (ip.protocol(), udp_encap) {
        (IpProtocol::Esp, false) => ip.payload(),
        (IpProtocol::Udp, true) => {
            let u = UdpPacket::new_checked(ip.payload()).ok()?;
            if u.dst_port() != NATT_PORT {
                return None;
            }
            &ip.payload()[8..usize::from(u.len())]
        }
        _ => return None,
    };
    if esp.len() < ESP_HEADER_LEN || u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]) != spi {
        return None;
    }
    Some((ip.src_addr(), ip.dst_addr()))
}

/// Runs packets through the SA: encap turns each IPv4 packet into tunnel-mode ESP from
/// `local` to `remote`; decap recovers the inner packets. Decap takes ESP addressed to
/// `local` (captured at this gateway); when the first ESP packet of the SPI goes from
/// `local` to `remote` instead, it takes that direction (the output of encap with the
/// same flags).
pub fn process(
    cfg: &OfflineConfig,
    packets: Vec<PcapPacket>,
) -> Result<(Summary, Vec<PcapPacket>), OfflineError> {
    let sa_err = |e: SaError| flag("--enc-key", e.to_string());
    let mut summary = Summary {
        packets_in: packets.len() as u64,
        ..Summary::default()
    };
    let mut out = Vec::with_capacity(packets.len());
    let mut ctx = EspContext::new();
    match cfg.direction {
        Direction::Encap => {
            let sa =
                OutboundSa::new(cfg.params(cfg.local, cfg.remote), &cfg.keys).map_err(sa_err)?;
            for chunk in packets.chunks(BATCH) {
                let mut frames: Vec<Frame<Vec<u8>>> =
                    chunk.iter().map(|p| Frame::with_room(&p.data)).collect();
                let n = encapsulate_batch(&mut frames, |_| Some(&sa), &mut ctx, &mut summary.drops);
                // Good frames come back in arrival order.
                let kept = kept_timestamps(chunk, &frames[n..]);
                for (f, (s, ns)) in frames[..n].iter().zip(kept) {
                    out.push(PcapPacket {
                        ts_sec: s,
                        ts_nsec: ns,
                        orig_len: f.len as u32,
                        data: f.data().to_vec(),
                    });
                }
            }
        }
        Direction::Decap => {
            let first = packets
                .iter()
                .find_map(|p| esp_endpoints(&p.data, cfg.spi, cfg.udp_encap));
            let (local, remote) = match first {
                Some((src, dst)) if src == cfg.local && dst == cfg.remote => {
                    (cfg.remote, cfg.local)
                }
                _ => (cfg.local, cfg.remote),
            };
            let sa = InboundSa::new(cfg.params(local, remote), &cfg.keys).map_err(sa_err)?;
            for chunk in packets.chunks(BATCH) {
                let mut frames: Vec<Frame<Vec<u8>>> = chunk
                    .iter()
                    .map(|p| {
                        let mut buf = vec![0u8; ENCAP_HEADROOM + p.data.len() + ENCAP_TAILROOM];
                        buf[ENCAP_HEADROOM..ENCAP_HEADROOM + p.data.len()].copy_from_slice(&p.data);
                        Frame::new(buf, ENCAP_HEADROOM, p.data.len())
                    })
                    .collect();
                let n = decapsulate_batch(
                    &mut frames,
                    |spi| (spi == cfg.spi).then_some(&sa),
                    &mut summary.drops,
                );
                let kept = kept_timestamps(chunk, &frames[n..]);
                for (f, (s, ns)) in frames[..n].iter().zip(kept) {
                    out.push(PcapPacket {
                        ts_sec: s,
                        ts_nsec: ns,
                        orig_len: f.len as u32,
                        data: f.data().to_vec(),
                    });
                }
            }
        }
    }
    summary.packets_out = out.len() as u64;
    debug_assert_eq!(
        summary.packets_in,
        summary.packets_out + summary.drops.total()
    );
    Ok((summary, out))
}

/// Timestamps of the packets of `chunk` that survived, in order. Survivors keep arrival
/// order, so the dropped frames' original positions identify the rest.
fn kept_timestamps<B: AsRef<[u8]> + AsMut<[u8]>>(
    chunk: &[PcapPacket],
    dropped: &[Frame<B>],
) -> Vec<(u32, u32)> {
    let mut gone = vec![false; chunk.len()];
    for f in dropped {
        gone[f.batch_index()] = true;
    }
    chunk
        .iter()
        .zip(gone)
        .filter(|(_, g)| !g)
        .map(|(p, _)| (p.ts_sec, p.ts_nsec))
        .collect()
}

/// Reads `input`, runs [`process`], writes `output`, and returns the summary.
pub fn run_offline(
    cfg: &OfflineConfig,
    input: &Path,
    output: &Path,
) -> Result<Summary, OfflineError> {
    let perr = |path: &Path| {
        let path = path.display().to_string();
        move |source: PcapError| OfflineError::Pcap {
            path: path.clone(),
            source,
        }
    };
    let file = std::fs::File::open(input).map_err(|e| perr(input)(e.into()))?;
    let packets: Vec<PcapPacket> = PcapReader::new(BufReader::new(file))
        .map_err(perr(input))?
        .collect::<Result<_, _>>()
        .map_err(perr(input))?;
    let (summary, out) = process(cfg, packets)?;
    let file = std::fs::File::create(output).map_err(|e| perr(output)(e.into()))?;
    let mut w = PcapWriter::new(BufWriter::new(file)).map_err(perr(output))?;
    for p in &out {
        w.write_packet(p.ts_sec, p.ts_nsec, &p.data)
            .map_err(perr(output))?;
    }
    w.into_inner().map_err(perr(output))?;
    Ok(summary)
}

/// Unused reasons are still printed; this keeps the list in one place for callers that
/// parse the summary.
pub fn summary_keys() -> Vec<&'static str> {
    let mut v = vec!["in", "out", "dropped"];
    v.extend(DropReason::ALL.iter().map(|r| r.name()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file(swapped: bool, nanos: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let magic = if nanos { MAGIC_NSEC } else { MAGIC_USEC };
        let put32 = |v: &mut Vec<u8>, x: u32| {
            if swapped {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        };
        let put16 = |v: &mut Vec<u8>, x: u16| {
            if swapped {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        };
        put32(&mut v, magic);
        put16(&mut v, 2);
        put16(&mut v, 4);
        put32(&mut v, 0);
        put32(&mut v, 0);
        put32(&mut v, 65535);
        put32(&mut v, 1);
        for (i, len) in [3u32, 0, 5].iter().enumerate() {
            put32(&mut v, 100 + i as u32);
            put32(&mut v, 7);
            put32(&mut v, *len);
            put32(&mut v, *len + 1);
            v.extend((0..*len).map(|b| b as u8 + i as u8));
        }
        v
    }

    #[test]
    fn reads_all_byte_orders_and_resolutions() {
        for swapped in [false, true] {
            for nanos in [false, true] {
                let pk = parse_pcap(&sample_file(swapped, nanos)).unwrap();
                assert_eq!(pk.len(), 3);
                assert_eq!(pk[0].data, vec![0, 1, 2]);
                assert_eq!(pk[1].data, Vec::<u8>::new());
                assert_eq!(pk[2].data, vec![2, 3, 4, 5, 6]);
                assert_eq!(pk[2].ts_sec, 102);
                assert_eq!(pk[2].orig_len, 6);
                assert_eq!(pk[0].ts_nsec, if nanos { 7 } else { 7000 });
            }
        }
    }

    #[test]
    fn write_then_read() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(1, 2000, b"abc").unwrap();
        w.write_packet(3, 4000, &[9; 1600]).unwrap();
        let bytes = w.into_inner().unwrap();
        let pk = parse_pcap(&bytes).unwrap();
        assert_eq!(pk.len(), 2);
        assert_eq!(
            (pk[0].ts_sec, pk[0].ts_nsec, &pk[0].data[..]),
            (1, 2000, &b"abc"[..])
        );
        assert_eq!(pk[1].data.len(), 1600);
    }

    #[test]
    fn typed_errors() {
        let good = sample_file(false, false);
        assert!(matches!(
            parse_pcap(&good[..10]),
            Err(PcapError::TruncatedHeader)
        ));
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(matches!(parse_pcap(&bad), Err(PcapError::BadMagic(_))));
        let mut v = good.clone();
        v[4] = 1;
        assert!(matches!(parse_pcap(&v), Err(PcapError::BadVersion(1, 4))));
        let mut lt = good.clone();
        lt[20] = 101;
        assert!(matches!(
            parse_pcap(&lt),
            Err(PcapError::UnsupportedLinkType(101))
        ));
        assert!(matches!(
            parse_pcap(&good[..24 + 10]),
            Err(PcapError::TruncatedRecordHeader { index: 0 })
        ));
        assert!(matches!(
            parse_pcap(&good[..good.len() - 1]),
            Err(PcapError::TruncatedRecord {
                index: 2,
                need: 5,
                have: 4
            })
        ));
        let mut huge = good[..24].to_vec();
        huge.extend_from_slice(&[0; 8]);
        huge.extend_from_slice(&(MAX_RECORD_LEN + 1).to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(
            parse_pcap(&huge),
            Err(PcapError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn config_errors_name_the_flag() {
        let a = Ipv4Addr::new(1, 1, 1, 1);
        let b = Ipv4Addr::new(2, 2, 2, 2);
        let cases: Vec<(Result<OfflineConfig, OfflineError>, &str)> = vec![
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x10,
                    "esp-3des esp-md5-hmac",
                    &[1; 24],
                    Some(&[0; 16]),
                    a,
                    b,
                    false,
                    None,
                ),
                "--spi",
            ),
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x1000,
                    "esp-foo",
                    &[1; 24],
                    Some(&[0; 16]),
                    a,
                    b,
                    false,
                    None,
                ),
                "--transform",
            ),
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x1000,
                    "esp-3des esp-md5-hmac",
                    &[1; 16],
                    Some(&[0; 16]),
                    a,
                    b,
                    false,
                    None,
                ),
                "--enc-key",
            ),
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x1000,
                    "esp-3des esp-md5-hmac",
                    &[1; 24],
                    None,
                    a,
                    b,
                    false,
                    None,
                ),
                "--auth-key",
            ),
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x1000,
                    "esp-3des esp-md5-hmac",
                    &[1; 24],
                    Some(&[0; 20]),
                    a,
                    b,
                    false,
                    None,
                ),
                "--auth-key",
            ),
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x1000,
                    "esp-gcm",
                    &[1; 20],
                    Some(&[0; 20]),
                    a,
                    b,
                    false,
                    None,
                ),
                "--auth-key",
            ),
            (
                OfflineConfig::new(
                    Direction::Encap,
                    0x1000,
                    "esp-gcm",
                    &[1; 16],
                    None,
                    a,
                    b,
                    false,
                    None,
                ),
                "--enc-key",
            ),
            (
                OfflineConfig::new(
                    Direction::Decap,
                    0x1000,
                    "esp-gcm",
                    &[1; 20],
                    None,
                    a,
                    b,
                    false,
                    Some(0),
                ),
                "--replay-window",
            ),
            (
                OfflineConfig::new(
                    Direction::Decap,
                    0x1000,
                    "esp-gcm",
                    &[1; 20],
                    None,
                    a,
                    a,
                    false,
                    None,
                ),
                "--remote",
            ),
        ];
        for (r, f) in cases {
            let e = r.unwrap_err();
            assert!(
                matches!(&e, OfflineError::Flag { flag, .. } if *flag == f),
                "{f}: {e}"
            );
            assert!(e.to_string().starts_with(f));
        }
        let ok = OfflineConfig::new(
            Direction::Decap,
            0x1000,
            "esp-3des esp-md5-hmac",
            &(0..24).collect::<Vec<u8>>(),
            Some(&[0; 16]),
            a,
            b,
            true,
            Some(4096),
        )
        .unwrap();
        assert_eq!(ok.replay_window, 4096);
        assert!(!format!("{ok:?}").contains("keys"));
    }

    #[test]
    fn summary_line_lists_every_reason() {
        let mut s = Summary {
            packets_in: 3,
            packets_out: 1,
            drops: DropCounters::default(),
        };
        s.drops.add(DropReason::Replay);
        s.drops.add(DropReason::Auth);
        let line = s.to_string();
        assert!(line.starts_with("in=3 out=1 dropped=2 "), "{line}");
        assert!(
            line.contains(" replay=1")
                && line.contains(" auth=1")
                && line.contains(" bad-padding=0")
        );
        assert_eq!(line.split(' ').count(), summary_keys().len());
    }
}
