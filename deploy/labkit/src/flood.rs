//! The reliability suite's flooder (scenario 4): IKE first messages and garbage from many
//! spoofed source addresses, sent with a raw IPv4 socket (`IPPROTO_RAW`, so each packet
//! carries its own IP header) at a paced rate.
//!
//! Eight kinds, in turn: Main Mode MM1 and Aggressive Mode AM1 with valid ISAKMP headers
//! and SA payloads (AES-128/SHA/PSK/group 2, the suite's policy; AM1 also KE, nonce and an
//! address ID), random bytes and a truncated MM1 to UDP 500, a truncated MM1 behind the
//! non-ESP marker on UDP 4500, ESP (IP protocol 50) with random SPIs and bodies, ESP cut
//! short of its 8-byte header, and ESP-in-UDP (4500, non-zero first word). Sources are
//! drawn from 198.18.0.0/15 (the benchmarking range), so the target's replies can be
//! routed back to the flooder's namespace, where they die.
//!
//! `espgw-flood` (this crate's binary) runs it inside the lab; [`Flooder`] starts it in
//! the wire namespace (R1's outside segment) and reads its JSON report.

use crate::lab::{Lab, LabProcess};
use crate::{Error, Result};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kinds of packet, in the order they are sent.
pub const KINDS: [&str; 8] = [
    "mm1",
    "am1",
    "ike-garbage",
    "ike-truncated",
    "natt-truncated",
    "esp-garbage",
    "esp-truncated",
    "esp-udp-garbage",
];

/// The spoofed sources: 198.18.0.0/15.
pub const SOURCE_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// xorshift64*: fast, good enough for cookies, addresses and garbage.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

fn be16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// A generic payload header followed by `body`.
fn payload(next: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![next, 0];
    be16(&mut v, (4 + body.len()) as u16);
    v.extend_from_slice(body);
    v
}

/// The SA payload body: DOI IPsec, situation identity-only, one ISAKMP proposal with one
/// KEY_IKE transform (AES-128, SHA, pre-shared key, group 2, 28800 s).
fn sa_body() -> Vec<u8> {
    let attrs: [(u16, u16); 7] = [
        (1, 7),
        (14, 128),
        (2, 2),
        (3, 1),
        (4, 2),
        (11, 1),
        (12, 28800),
    ];
    let mut t = vec![1, 1, 0, 0]; // transform 1, KEY_IKE
    for (ty, val) in attrs {
        be16(&mut t, 0x8000 | ty);
        be16(&mut t, val);
    }
    let transform = payload(0, &t);
    let mut p = vec![1, 1, 0, 1]; // proposal 1, PROTO_ISAKMP, no SPI, 1 transform
    p.extend_from_slice(&transform);
    let proposal = payload(0, &p);
    let mut b = vec![0, 0, 0, 1, 0, 0, 0, 1];
    b.extend_from_slice(&proposal);
    b
}

/// A first phase-1 message from `src`: MM1 (`aggressive` false: HDR, SA) or AM1 (HDR, SA,
/// KE, Ni, IDii) with a random initiator cookie, KE value and nonce.
pub fn first_message(rng: &mut Rng, src: Ipv4Addr, aggressive: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(320);
    if aggressive {
        body.extend(payload(4, &sa_body()));
        let mut ke = [0u8; 128];
        rng.fill(&mut ke);
        ke[0] |= 0x80;
        body.extend(payload(10, &ke));
        let mut ni = [0u8; 16];
        rng.fill(&mut ni);
        body.extend(payload(5, &ni));
        let mut id = vec![1, 17, 0x01, 0xf4]; // ID_IPV4_ADDR, UDP 500
        id.extend_from_slice(&src.octets());
        body.extend(payload(0, &id));
    } else {
        body.extend(payload(0, &sa_body()));
    }
    let mut m = Vec::with_capacity(28 + body.len());
    let mut icookie = [0u8; 8];
    rng.fill(&mut icookie);
    m.extend_from_slice(&icookie);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[1, 0x10, if aggressive { 4 } else { 2 }, 0]);
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&((28 + body.len()) as u32).to_be_bytes());
    m.extend(body);
    m
}

/// The IPv4 header checksum (RFC 791).
fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 packet (`proto`, `payload`) from `src` to `dst`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    be16(&mut p, len);
    be16(&mut p, id);
    p.extend_from_slice(&[0, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = ip_checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram (checksum 0: none, as IPv4 allows).
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + data.len());
    be16(&mut u, sport);
    be16(&mut u, dport);
    be16(&mut u, (8 + data.len()) as u16);
    be16(&mut u, 0);
    u.extend_from_slice(data);
    u
}

/// One packet of kind `KINDS[kind]` from `src` to `dst`.
pub fn packet(rng: &mut Rng, kind: usize, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let id = rng.next_u64() as u16;
    let random = |rng: &mut Rng, min: usize, max: usize| {
        let mut b = vec![0u8; min + rng.below(max - min + 1)];
        rng.fill(&mut b);
        b
    };
    let cut = |rng: &mut Rng, m: Vec<u8>| {
        let n = 1 + rng.below(m.len() - 1);
        m[..n].to_vec()
    };
    match kind % KINDS.len() {
        0 => ipv4(
            src,
            dst,
            17,
            id,
            &udp(500, 500, &first_message(rng, src, false)),
        ),
        1 => ipv4(
            src,
            dst,
            17,
            id,
            &udp(500, 500, &first_message(rng, src, true)),
        ),
        2 => ipv4(src, dst, 17, id, &udp(500, 500, &random(rng, 0, 300))),
        3 => {
            let am = rng.next_u64() & 1 == 1;
            let m = first_message(rng, src, am);
            ipv4(src, dst, 17, id, &udp(500, 500, &cut(rng, m)))
        }
        4 => {
            let mut d = vec![0, 0, 0, 0];
            let am = rng.next_u64() & 1 == 1;
            let m = first_message(rng, src, am);
            d.extend(cut(rng, m));
            let sport = 1024 + rng.below(60000) as u16;
            ipv4(src, dst, 17, id, &udp(sport, 4500, &d))
        }
        5 => {
            let mut e = random(rng, 8, 200);
            e[0] |= 0x80; // SPI never 0 (nor one of the small reserved ones)
            ipv4(src, dst, 50, id, &e)
        }
        6 => ipv4(src, dst, 50, id, &random(rng, 0, 7)),
        _ => {
            let mut e = random(rng, 8, 200);
            e[0] |= 0x80;
            let sport = 1024 + rng.below(60000) as u16;
            ipv4(src, dst, 17, id, &udp(sport, 4500, &e))
        }
    }
}

/// A random address of [`SOURCE_NET`].
pub fn source(rng: &mut Rng) -> Ipv4Addr {
    let host_bits = 32 - SOURCE_NET.1;
    let host = (rng.next_u64() as u32) & ((1u32 << host_bits) - 1);
    Ipv4Addr::from(u32::from(SOURCE_NET.0) | host)
}

/// What one flood run is told.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    pub target: Ipv4Addr,
    pub pps: u64,
    pub duration: Duration,
}

/// Sends the flood (paced in 1 ms steps) and writes `{"sent", "errors", "secs", "pps",
/// "by_kind"}` to `report`.
pub fn run_flood(spec: &FloodSpec, seed: u64, report: &Path) -> Result<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
        .map_err(|e| Error::io("raw socket (IPPROTO_RAW)", e))?;
    let to = SockAddr::from(SocketAddrV4::new(spec.target, 0));
    let mut rng = Rng::new(seed);
    let mut by_kind = [0u64; KINDS.len()];
    let (mut sent, mut errors) = (0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed() < spec.duration {
        let due = (t0.elapsed().as_secs_f64() * spec.pps as f64) as u64;
        // Catch up at most 5 ms behind, so a stall does not become a burst.
        let mut n = due.saturating_sub(sent + errors).min(spec.pps / 200 + 1);
        if n == 0 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        while n > 0 {
            let k = ((sent + errors) % KINDS.len() as u64) as usize;
            let src = source(&mut rng);
            let p = packet(&mut rng, k, src, spec.target);
            match sock.send_to(&p, &to) {
                Ok(_) => {
                    sent += 1;
                    by_kind[k] += 1;
                }
                Err(_) => errors += 1,
            }
            n -= 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let kinds: serde_json::Map<String, serde_json::Value> = KINDS
        .iter()
        .zip(by_kind)
        .map(|(k, n)| (k.to_string(), n.into()))
        .collect();
    let j = serde_json::json!({
        "sent": sent, "errors": errors, "secs": secs,
        "pps": sent as f64 / secs, "by_kind": kinds,
    });
    std::fs::write(report, j.to_string()).map_err(|e| Error::io("flood report", e))
}

/// What a flood run sent.
#[derive(Clone, Debug)]
pub struct FloodReport {
    pub sent: u64,
    pub errors: u64,
    pub pps: f64,
    pub by_kind: Vec<(String, u64)>,
}

impl FloodReport {
    pub fn of(kind: &str, r: &FloodReport) -> u64 {
        r.by_kind.iter().find(|(k, _)| k == kind).map_or(0, |x| x.1)
    }
}

/// A flooder running in a namespace of the lab's (the wire namespace, on R1's outside
/// segment, where `setup` gave the bridge an address and R1 a route back for the sources).
pub struct Flooder {
    proc: LabProcess,
    report: PathBuf,
    limit: Duration,
}

/// The flooder's address on the outside segment (inside R1's and R2's /28s' gap).
pub const FLOODER_ADDR: &str = "172.16.172.11";

/// Gives the wire namespace `ns` an address on the outside segment and routes the
/// spoofed sources from R1 (`r1_ns`) back to it.
pub fn setup(ns: &str, r1_ns: &str) -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| Error::io("running ip", e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    };
    let me = format!("{FLOODER_ADDR}/28");
    run(&["-n", ns, "addr", "add", &me, "dev", "br0"])?;
    let net = format!("{}/{}", SOURCE_NET.0, SOURCE_NET.1);
    run(&[
        "-n",
        r1_ns,
        "route",
        "add",
        &net,
        "via",
        FLOODER_ADDR,
        "dev",
        "out0",
        "onlink",
    ])
}

impl Flooder {
    /// Starts `bin` (`espgw-flood`) in namespace `ns` towards `spec.target`.
    pub fn start(lab: &Lab, ns: &str, bin: &Path, spec: &FloodSpec) -> Result<Flooder> {
        let report = lab
            .dir()
            .join(format!("flood-{}-{}.json", std::process::id(), spec.pps));
        let _ = std::fs::remove_file(&report);
        let log = lab.dir().join("flood.log");
        let f = std::fs::File::create(&log).map_err(|e| Error::io("flood log", e))?;
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", ns]).arg(bin);
        c.args(["--to", &spec.target.to_string()]);
        c.args(["--pps", &spec.pps.to_string()]);
        c.args(["--secs", &format!("{:.3}", spec.duration.as_secs_f64())]);
        c.arg("--report").arg(&report);
        c.stdin(std::process::Stdio::null())
            .stdout(f.try_clone().map_err(|e| Error::io("dup", e))?)
            .stderr(f);
        let proc = lab.spawn_command(c, "espgw-flood")?;
        Ok(Flooder {
            proc,
            report,
            limit: spec.duration + Duration::from_secs(20),
        })
    }

    /// Waits for the flood to end and reads its report.
    pub fn wait(mut self) -> Result<FloodReport> {
        if self.proc.wait_timeout(self.limit)?.is_none() {
            return Err(Error::Invalid("espgw-flood did not finish".into()));
        }
        let t = std::fs::read_to_string(&self.report).map_err(|e| Error::io("flood report", e))?;
        let j: serde_json::Value =
            serde_json::from_str(&t).map_err(|e| Error::Invalid(format!("flood report: {e}")))?;
        let by_kind = KINDS
            .iter()
            .map(|k| (k.to_string(), j["by_kind"][k].as_u64().unwrap_or(0)))
            .collect();
        Ok(FloodReport {
            sent: j["sent"].as_u64().unwrap_or(0),
            errors: j["errors"].as_u64().unwrap_or(0),
            pps: j["pps"].as_f64().unwrap_or(0.0),
            by_kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_messages_have_consistent_lengths() {
        let mut rng = Rng::new(7);
        for aggressive in [false, true] {
            let m = first_message(&mut rng, Ipv4Addr::new(198, 18, 1, 2), aggressive);
            let len = u32::from_be_bytes([m[24], m[25], m[26], m[27]]) as usize;
            assert_eq!(len, m.len());
            assert_eq!(m[16], 1, "first payload SA");
            assert_eq!(m[18], if aggressive { 4 } else { 2 });
            // Walk the payload chain to its end.
            let (mut next, mut at) = (m[16], 28);
            while next != 0 {
                next = m[at];
                at += u16::from_be_bytes([m[at + 2], m[at + 3]]) as usize;
            }
            assert_eq!(at, m.len());
        }
    }

    #[test]
    fn packets_carry_valid_ip_headers_and_sources_in_range() {
        let mut rng = Rng::new(9);
        let dst = Ipv4Addr::new(172, 16, 172, 10);
        for k in 0..64 {
            let src = source(&mut rng);
            assert_eq!(u32::from(src) >> 17, u32::from(SOURCE_NET.0) >> 17);
            let p = packet(&mut rng, k, src, dst);
            assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, p.len());
            assert_eq!(ip_checksum(&p[..20]), 0);
            if p[9] == 17 {
                assert_eq!(u16::from_be_bytes([p[24], p[25]]) as usize, p.len() - 20);
            }
        }
    }
}
