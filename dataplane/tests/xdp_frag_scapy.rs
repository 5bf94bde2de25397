//! The fragmenter of the worker's encapsulation path judged by an IPv4
//! implementation we did not write: scapy (Debian's, run with
//! `/usr/bin/python3`) checks every piece's header checksum and reassembles
//! the pieces with `defragment()`, in shuffled order; the datagram it
//! rebuilds must be the original byte for byte (data and options). Covers
//! plain datagrams at tunnel-sized limits, a datagram cut in two and each
//! piece cut again (already-fragmented input), and a header with options.
//! No network.

use espgw_dataplane::worker::frag::Fragmenter;
use std::io::Write;
use std::process::{Command, Stdio};

/// An IPv4/UDP datagram with `opts` (a multiple of 4 bytes) and `data_len`
/// bytes behind the header.
fn datagram(ident: u16, opts: &[u8], flags: u16, data_len: usize) -> Vec<u8> {
    let ihl = 20 + opts.len();
    let mut p = vec![0u8; ihl + data_len];
    p[0] = 0x40 | (ihl / 4) as u8;
    p[2..4].copy_from_slice(&((ihl + data_len) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&flags.to_be_bytes());
    p[8] = 63;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 1, 1, 2]);
    p[16..20].copy_from_slice(&[10, 1, 2, 2]);
    p[20..ihl].copy_from_slice(opts);
    if flags & 0x1fff == 0 && data_len >= 8 {
        let udp = &mut p[ihl..];
        udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        udp[2..4].copy_from_slice(&45210u16.to_be_bytes());
        udp[4..6].copy_from_slice(&(data_len as u16).to_be_bytes());
        for (i, b) in udp[8..].iter_mut().enumerate() {
            *b = (i * 13 + i / 256 + usize::from(ident)) as u8;
        }
    }
    let c = checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The pieces of `ip` at `max` bytes, as the worker makes them.
fn split(ip: &[u8], max: usize) -> Vec<Vec<u8>> {
    let f = Fragmenter::new(ip, max).unwrap();
    let mut v = Vec::new();
    for k in 1..f.count() {
        let mut out = vec![0u8; 4096];
        let n = f.write(ip, k, &mut out).unwrap();
        out.truncate(n);
        v.push(out);
    }
    let mut first = ip.to_vec();
    let n = f.first_in_place(&mut first);
    first.truncate(n);
    v.insert(0, first);
    v
}

const SCAPY: &str = r#"
import json, sys, random
from scapy.all import IP, raw, defragment
random.seed(7)
out = []
for case in json.load(sys.stdin):
    pkts = [IP(bytes.fromhex(h)) for h in case]
    for p in pkts:
        want = p.chksum
        q = IP(raw(p)); del q.chksum
        assert IP(raw(q)).chksum == want, "bad checksum in %r" % p
    random.shuffle(pkts)
    whole = [p for p in defragment(pkts) if p.flags.MF == 0 and p.frag == 0]
    out.append([raw(p).hex() for p in whole])
print(json.dumps(out))
"#;

fn scapy_reassemble(cases: &[Vec<Vec<u8>>]) -> Vec<Vec<Vec<u8>>> {
    let input: Vec<Vec<String>> = cases
        .iter()
        .map(|c| c.iter().map(|p| hex(p)).collect())
        .collect();
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCAPY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Debian python3 with scapy");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    v.iter()
        .map(|c| c.iter().map(|h| unhex(h)).collect())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn scapy_reassembles_what_the_fragmenter_cuts() {
    let mut originals = Vec::new();
    let mut cases = Vec::new();
    // A 1500-byte datagram into tunnel-sized pieces (1438: AES-CBC/SHA-1 at
    // MTU 1500; 1422 with NAT-T), a 4000-byte one into small pieces, the
    // smallest legal pieces.
    for (id, len, max) in [
        (1u16, 1480usize, 1438usize),
        (2, 1480, 1422),
        (3, 3980, 500),
        (4, 100, 28),
    ] {
        let d = datagram(id, &[], 0, len);
        cases.push(split(&d, max));
        originals.push(d);
    }
    // Already fragmented: the datagram is cut at 1000, then every piece
    // (the middle ones with MF and an offset, the last without MF) again at
    // 300.
    let d = datagram(5, &[], 0, 3100);
    let mut twice = Vec::new();
    for piece in split(&d, 1000) {
        if piece.len() > 300 {
            twice.extend(split(&piece, 300));
        } else {
            twice.push(piece);
        }
    }
    assert!(twice.len() > 10);
    cases.push(twice);
    originals.push(d);
    // Options: a not-copied record route and a copied option (0x88, stream
    // ID) stay whole in the first piece; the later ones carry the copied one.
    let opts = [7, 7, 4, 0, 0, 0, 0, 0x88, 4, 0x12, 0x34, 0];
    let d = datagram(6, &opts, 0, 1200);
    let pieces = split(&d, 400);
    assert!(pieces[1..]
        .iter()
        .all(|p| p[0] == 0x46 && p[20..24] == [0x88, 4, 0x12, 0x34]));
    cases.push(pieces);
    originals.push(d);

    let got = scapy_reassemble(&cases);
    for (i, (orig, whole)) in originals.iter().zip(&got).enumerate() {
        assert_eq!(whole.len(), 1, "case {i}: scapy rebuilt one datagram");
        let w = &whole[0];
        let ihl = usize::from(orig[0] & 0x0f) * 4;
        assert_eq!(w.len(), orig.len(), "case {i}: length");
        assert_eq!(&w[ihl..], &orig[ihl..], "case {i}: data");
        assert_eq!(&w[20..ihl], &orig[20..ihl], "case {i}: options");
        assert_eq!(&w[4..6], &orig[4..6], "case {i}: identification");
        assert_eq!(&w[8..10], &orig[8..10], "case {i}: TTL, protocol");
        assert_eq!(&w[12..20], &orig[12..20], "case {i}: addresses");
    }
}
