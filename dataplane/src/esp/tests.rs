use super::*;
use crate::wire::{EspPacket, EthernetFrame, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket};

const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);

fn keys(t: Transform) -> SaKeys {
    let enc: Vec<u8> = (0..t.enc_key_len())
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(1))
        .collect();
    let auth: Vec<u8> = (0..t.auth_key_len()).map(|i| (i as u8) ^ 0x5a).collect();
    SaKeys::new(&enc, &auth)
}

fn pair(params: SaParams) -> (OutboundSa, InboundSa) {
    let k = keys(params.transform);
    let mut inbound = params;
    inbound.local = params.remote;
    inbound.remote = params.local;
    if let Some(n) = params.natt {
        inbound.natt = Some(NatT {
            local_port: n.remote_port,
            remote_port: n.local_port,
        });
    }
    (
        OutboundSa::new(params, &k).unwrap(),
        InboundSa::new(inbound, &k).unwrap(),
    )
}

/// An Ethernet frame carrying an IPv4/UDP packet with `payload_len` payload bytes.
fn inner_frame(payload_len: usize, tag: u8) -> Vec<u8> {
    let repr = Ipv4Repr {
        src: Ipv4Addr::new(10, 1, 1, 2),
        dst: Ipv4Addr::new(10, 1, 2, 2),
        protocol: IpProtocol::Udp,
        payload_len: 8 + payload_len,
        ttl: 63,
        dscp_ecn: 0x10,
        ident: 0x1234,
        dont_frag: true,
        options: vec![],
    };
    let mut f = vec![0u8; 14 + repr.buffer_len()];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[8, 0]);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]))
        .unwrap();
    let udp = &mut f[34..];
    udp[..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&40001u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    for (i, b) in udp[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(tag);
    }
    f
}

fn frames(sizes: &[usize]) -> Vec<Frame<Vec<u8>>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| Frame::with_room(&inner_frame(s, i as u8)))
        .collect()
}

fn all_params() -> Vec<SaParams> {
    let mut v = Vec::new();
    for t in Transform::all() {
        for mode in [Mode::Tunnel, Mode::Transport] {
            for natt in [None, Some(NatT::default())] {
                for esn in [false, true] {
                    let mut p = SaParams::tunnel(0x1000_0001, t, LOCAL, REMOTE);
                    p.mode = mode;
                    if mode == Mode::Transport {
                        // Transport mode protects host-to-host traffic.
                        p.local = Ipv4Addr::new(10, 1, 1, 2);
                        p.remote = Ipv4Addr::new(10, 1, 2, 2);
                    }
                    p.natt = natt;
                    p.esn = esn;
                    v.push(p);
                }
            }
        }
    }
    v
}

#[test]
fn round_trip_every_transform_mode_encapsulation() {
    let sizes: Vec<usize> = (0..40).chain([100, 255, 256, 1000, 1472]).collect();
    for p in all_params() {
        let (out, inb) = pair(p);
        let originals: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| inner_frame(s, i as u8))
            .collect();
        let mut fs = frames(&sizes);
        let mut ctx = EspContext::new();
        let mut dc = DropCounters::default();
        let n = encapsulate_batch(&mut fs, |_| Some(&out), &mut ctx, &mut dc);
        assert_eq!(n, sizes.len(), "{p:?} {dc:?}");
        for (i, f) in fs.iter().enumerate() {
            let eth = EthernetFrame::new_checked(f.data()).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(usize::from(ip.total_len()) + 14, f.len);
            let esp_at = if p.natt.is_some() {
                assert_eq!(ip.protocol(), IpProtocol::Udp);
                let u = UdpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!((u.src_port(), u.dst_port(), u.checksum()), (4500, 4500, 0));
                assert_eq!(usize::from(u.len()), ip.payload().len());
                ip.header_len() + 8
            } else {
                assert_eq!(ip.protocol(), IpProtocol::Esp);
                ip.header_len()
            };
            if p.mode == Mode::Tunnel {
                assert_eq!(
                    (ip.src_addr(), ip.dst_addr(), ip.ttl()),
                    (p.local, p.remote, 64)
                );
                assert!(ip.dont_frag(), "DF copied from inner");
                assert_eq!(ip.dscp_ecn(), 0x10);
            } else {
                assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 1, 1, 2));
            }
            let esp = EspPacket::new_checked(&eth.payload()[esp_at..]).unwrap();
            assert_eq!(esp.spi(), 0x1000_0001);
            assert_eq!(esp.seq(), i as u32 + 1);
            // The encrypted part is aligned as the transform requires.
            let t = p.transform;
            assert_eq!(
                (esp.payload().len() - t.iv_len() - t.icv_len()) % t.pad_align(),
                0
            );
        }
        assert_eq!(
            out.counters.packets.load(Ordering::Relaxed),
            sizes.len() as u64
        );
        let n = decapsulate_batch(&mut fs, |spi| (spi == 0x1000_0001).then_some(&inb), &mut dc);
        assert_eq!(n, sizes.len(), "{p:?} {dc:?}");
        for (f, o) in fs.iter().zip(&originals) {
            assert_eq!(f.data(), &o[..], "{p:?}");
        }
        assert_eq!(dc.total(), 0);
    }
}

/// A lone packet takes the fused one-pass path where the transform has one (3DES-MD5), the
/// others the two-pass batch calls: either way the packet decapsulates back, in every
/// mode, with and without NAT-T and ESN, and a batch of two (two-pass) agrees with it.
#[test]
fn lone_packets_round_trip_every_transform_mode() {
    let sizes = [0usize, 1, 7, 33, 48, 255, 1000, 1472];
    for p in all_params() {
        let (out, inb) = pair(p);
        let mut dc = DropCounters::default();
        for (i, &s) in sizes.iter().enumerate() {
            let orig = inner_frame(s, i as u8);
            let mut one = vec![Frame::with_room(&orig)];
            let n = encapsulate_batch(&mut one, |_| Some(&out), &mut EspContext::new(), &mut dc);
            assert_eq!(n, 1, "{p:?} {dc:?}");
            let n = decapsulate_batch(&mut one, |_| Some(&inb), &mut dc);
            assert_eq!(n, 1, "{p:?} size {s} {dc:?}");
            assert_eq!(one[0].data(), &orig[..], "{p:?} size {s}");
        }
        let mut two = frames(&[40, 1400]);
        assert_eq!(
            encapsulate_batch(&mut two, |_| Some(&out), &mut EspContext::new(), &mut dc),
            2
        );
        assert_eq!(
            decapsulate_batch(&mut two, |_| Some(&inb), &mut dc),
            2,
            "{p:?}"
        );
        assert_eq!(dc.total(), 0, "{p:?}");
    }
}

#[test]
fn cbc_ivs_differ_and_gcm_iv_is_sequence() {
    for (name, gcm) in [("esp-aes esp-sha-hmac", false), ("esp-gcm", true)] {
        let t = Transform::parse(name).unwrap();
        let (out, _) = pair(SaParams::tunnel(0x2000, t, LOCAL, REMOTE));
        let mut fs = frames(&[10, 10, 10]);
        let mut dc = DropCounters::default();
        encapsulate_batch(&mut fs, |_| Some(&out), &mut EspContext::new(), &mut dc);
        let ivs: Vec<Vec<u8>> = fs
            .iter()
            .map(|f| f.data()[42..42 + t.iv_len()].to_vec())
            .collect();
        if gcm {
            for (i, iv) in ivs.iter().enumerate() {
                assert_eq!(iv[..], (i as u64 + 1).to_be_bytes());
            }
        } else {
            assert!(ivs[0] != ivs[1] && ivs[1] != ivs[2]);
        }
    }
}

fn encap_one(out: &OutboundSa, size: usize) -> Frame<Vec<u8>> {
    let mut fs = frames(&[size]);
    let mut dc = DropCounters::default();
    assert_eq!(
        encapsulate_batch(&mut fs, |_| Some(out), &mut EspContext::new(), &mut dc),
        1
    );
    fs.pop().unwrap()
}

#[test]
fn decap_drops_by_reason() {
    let t = Transform::parse("esp-3des esp-md5-hmac").unwrap();
    let (out, inb) = pair(SaParams::tunnel(0x3000, t, LOCAL, REMOTE));
    let good: Vec<Frame<Vec<u8>>> = (0..6).map(|_| encap_one(&out, 50)).collect(); // seq 1..=6
    let mut batch = Vec::new();
    batch.push(good[0].clone()); // ok
    batch.push(good[0].clone()); // replay within the batch
    let mut bad_icv = good[1].clone();
    let l = bad_icv.len;
    bad_icv.data_mut()[l - 1] ^= 1;
    batch.push(bad_icv); // auth
    let mut trunc = good[2].clone();
    trunc.len -= 4; // IP total length now lies
    batch.push(trunc); // truncated
    let mut unknown = good[3].clone();
    unknown.data_mut()[34] ^= 0x80; // SPI
    batch.push(unknown); // no SA
    let mut ike = Frame::with_room(&inner_frame(20, 0));
    ike.data_mut()[36..38].copy_from_slice(&4500u16.to_be_bytes());
    ike.data_mut()[40..46].fill(0); // zero checksum + non-ESP marker start
    ike.data_mut()[42..46].fill(0);
    batch.push(ike); // not ESP
    batch.push(good[4].clone()); // ok
    let mut dc = DropCounters::default();
    let n = decapsulate_batch(&mut batch, |s| (s == 0x3000).then_some(&inb), &mut dc);
    assert_eq!(n, 2, "{dc:?}");
    assert_eq!(dc.get(DropReason::Replay), 1);
    assert_eq!(dc.get(DropReason::Auth), 1);
    assert_eq!(dc.get(DropReason::Truncated), 1);
    assert_eq!(dc.get(DropReason::NoSa), 1);
    assert_eq!(dc.get(DropReason::NotEsp), 1);
    assert_eq!(dc.total(), 5);
    // Survivors come first, in arrival order, and are the inner packets.
    assert_eq!(batch[0].data(), &inner_frame(50, 0)[..]);
    assert_eq!(inb.replay.top(), 5);
    // The tampered packet was not committed: its genuine copy still passes.
    let mut again = vec![good[1].clone(), good[0].clone()];
    assert_eq!(
        decapsulate_batch(&mut again, |s| (s == 0x3000).then_some(&inb), &mut dc),
        1
    );
    assert_eq!(dc.get(DropReason::Replay), 2);
}

#[test]
fn out_of_window_dropped() {
    let t = Transform::parse("esp-aes esp-sha-hmac").unwrap();
    let mut p = SaParams::tunnel(0x4000, t, LOCAL, REMOTE);
    p.replay_window = 64;
    let (out, inb) = pair(p);
    let first = encap_one(&out, 10);
    let out = out.with_next_seq(66);
    let late = encap_one(&out, 10); // seq 66: window now 3..=66
    let mut dc = DropCounters::default();
    let mut b = vec![late, first];
    assert_eq!(decapsulate_batch(&mut b, |_| Some(&inb), &mut dc), 1);
    assert_eq!(dc.get(DropReason::OutOfWindow), 1);
}

#[test]
fn seq_exhausted_and_no_room() {
    let t = Transform::parse("esp-gcm 256").unwrap();
    let (out, _) = pair(SaParams::tunnel(0x5000, t, LOCAL, REMOTE));
    let out = out.with_next_seq(u64::from(u32::MAX) - 1);
    let mut fs = frames(&[1, 2, 3, 4]);
    let tight = Frame::new(inner_frame(5, 0), 0, inner_frame(5, 0).len());
    fs.insert(1, tight);
    let mut dc = DropCounters::default();
    let n = encapsulate_batch(&mut fs, |_| Some(&out), &mut EspContext::new(), &mut dc);
    assert_eq!(n, 2);
    assert_eq!(dc.get(DropReason::NoRoom), 1);
    assert_eq!(dc.get(DropReason::SeqExhausted), 2);
    assert!(out.seq.is_exhausted());
    assert!(fs[2..].iter().all(|f| f.drop_reason().is_some()));
}

#[test]
fn batch_groups_several_sas_and_keeps_order() {
    let t = Transform::parse("esp-aes 256 esp-sha-hmac").unwrap();
    let (o1, i1) = pair(SaParams::tunnel(0x6001, t, LOCAL, REMOTE));
    let (o2, i2) = pair(SaParams::tunnel(
        0x6002,
        Transform::parse("esp-3des esp-sha-hmac").unwrap(),
        LOCAL,
        REMOTE,
    ));
    let sizes: Vec<usize> = (0..20).map(|i| 30 + i).collect();
    let originals: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| inner_frame(s, i as u8))
        .collect();
    let mut fs = frames(&sizes);
    let mut dc = DropCounters::default();
    // Odd payload sizes to SA 2, even to SA 1, one frame with no SA.
    let pick = |f: &Frame<Vec<u8>>| {
        let l = f.len;
        if l == 14 + 28 + 35 {
            None
        } else if l.is_multiple_of(2) {
            Some(&o1)
        } else {
            Some(&o2)
        }
    };
    let n = encapsulate_batch(&mut fs, pick, &mut EspContext::new(), &mut dc);
    assert_eq!(n, 19);
    assert_eq!(dc.get(DropReason::NoSa), 1);
    assert_eq!(o1.seq.peek() - 1 + o2.seq.peek() - 1, 19);
    fs.truncate(n);
    let n = decapsulate_batch(
        &mut fs,
        |s| match s {
            0x6001 => Some(&i1),
            0x6002 => Some(&i2),
            _ => None,
        },
        &mut dc,
    );
    assert_eq!(n, 19);
    let expect: Vec<&Vec<u8>> = originals
        .iter()
        .filter(|o| o.len() != 14 + 28 + 35)
        .collect();
    for (f, o) in fs.iter().zip(expect) {
        assert_eq!(f.data(), &o[..]);
    }
}

#[test]
fn wrong_encapsulation_or_address_is_no_sa() {
    let t = Transform::parse("esp-null esp-sha-hmac").unwrap();
    let mut p = SaParams::tunnel(0x7000, t, LOCAL, REMOTE);
    p.natt = Some(NatT::default());
    let (out, _) = pair(p);
    let (_, raw_in) = pair(SaParams::tunnel(0x7000, t, LOCAL, REMOTE));
    let mut b = vec![encap_one(&out, 10)];
    let mut dc = DropCounters::default();
    assert_eq!(decapsulate_batch(&mut b, |_| Some(&raw_in), &mut dc), 0);
    assert_eq!(dc.get(DropReason::NoSa), 1);
    let (out, _) = pair(SaParams::tunnel(
        0x7000,
        t,
        LOCAL,
        Ipv4Addr::new(1, 2, 3, 4),
    ));
    let mut b = vec![encap_one(&out, 10)];
    assert_eq!(decapsulate_batch(&mut b, |_| Some(&raw_in), &mut dc), 0);
    assert_eq!(dc.get(DropReason::NoSa), 2);
}

#[test]
fn keys_are_not_printed() {
    let k = SaKeys::new(&[0xab; 24], &[0xcd; 16]);
    let s = format!("{k:?}");
    assert!(!s.contains("171") && !s.contains("ab"), "{s}");
    assert!(OutboundSa::new(
        SaParams::tunnel(5, Transform::parse("esp-gcm").unwrap(), LOCAL, REMOTE),
        &SaKeys::new(&[1; 20], &[])
    )
    .is_err());
}

/// `encapsulated_len` is what the encapsulation really builds, for every transform,
/// mode and encapsulation, and `max_inner_len` is its exact inverse: the largest inner
/// packet that fits, one byte more does not.
#[test]
fn encapsulated_len_matches_the_wire_and_max_inner_len_inverts_it() {
    let sizes: Vec<usize> = (0..40).chain([100, 1000, 1409, 1410, 1411, 1412]).collect();
    for p in all_params() {
        let (out, _) = pair(p);
        let mut fs = frames(&sizes);
        let mut ctx = EspContext::new();
        let mut dc = DropCounters::default();
        assert_eq!(
            encapsulate_batch(&mut fs, |_| Some(&out), &mut ctx, &mut dc),
            sizes.len()
        );
        for (f, &s) in fs.iter().zip(&sizes) {
            let inner = 20 + 8 + s;
            assert_eq!(p.encapsulated_len(inner, 20), f.len - 14, "{p:?} {inner}");
        }
        for mtu in (60..200).chain(1400..1520) {
            match p.max_inner_len(mtu, 20) {
                Some(m) => {
                    assert!(m >= 20);
                    assert!(p.encapsulated_len(m, 20) <= mtu, "{p:?} mtu {mtu}");
                    assert!(p.encapsulated_len(m + 1, 20) > mtu, "{p:?} mtu {mtu}");
                }
                None => assert!(p.encapsulated_len(20, 20) > mtu, "{p:?} mtu {mtu}"),
            }
        }
    }
    // The anchors: a 1500-byte outside MTU carries inner packets of up to 1438 bytes
    // with AES-CBC/SHA-1, 1446 with 3DES/MD5 or GCM; NAT-T takes 8 more.
    let p = |t: &str| SaParams::tunnel(0x1000, Transform::parse(t).unwrap(), LOCAL, REMOTE);
    assert_eq!(
        p("esp-aes esp-sha-hmac").max_inner_len(1500, 20),
        Some(1438)
    );
    assert_eq!(
        p("esp-3des esp-md5-hmac").max_inner_len(1500, 20),
        Some(1446)
    );
    assert_eq!(p("esp-gcm").max_inner_len(1500, 20), Some(1446));
    let mut n = p("esp-aes esp-sha-hmac");
    n.natt = Some(NatT::default());
    assert_eq!(n.max_inner_len(1500, 20), Some(1422));
}

/// Encapsulation grows each packet toward its headroom and decapsulation strips it
/// from the front, both in place: the inner IPv4 packet never moves in its buffer,
/// and decapsulation reports the outer headers and the inner packet's header.
#[test]
fn encap_and_decap_work_in_place_and_report_headers() {
    for p in all_params() {
        let (out, inb) = pair(p);
        let mut fs = frames(&[0, 100, 1400]);
        let inner_at: Vec<usize> = fs.iter().map(|f| f.head + 14).collect();
        let mut ctx = EspContext::new();
        let mut dc = DropCounters::default();
        assert_eq!(
            encapsulate_batch(&mut fs, |_| Some(&out), &mut ctx, &mut dc),
            3
        );
        for (f, &at) in fs.iter().zip(&inner_at) {
            assert!(f.head < at - 14, "{p:?}: grew toward the headroom");
            assert_eq!(
                f.esp_header(),
                None,
                "outbound frames report no inbound header"
            );
        }
        let n = decapsulate_batch(&mut fs, |spi| (spi == 0x1000_0001).then_some(&inb), &mut dc);
        assert_eq!(n, 3, "{p:?} {dc:?}");
        for (i, (f, &at)) in fs.iter().zip(&inner_at).enumerate() {
            let h = f.esp_header().expect("ESP header reported");
            assert_eq!(
                (h.src, h.dst, h.spi, h.seq),
                (p.local, p.remote, 0x1000_0001, i as u32 + 1)
            );
            let inner = f.inner().expect("inner header reported");
            assert_eq!(
                (inner.src, inner.dst, inner.protocol, inner.header_len),
                (
                    Ipv4Addr::new(10, 1, 1, 2),
                    Ipv4Addr::new(10, 1, 2, 2),
                    17,
                    20
                )
            );
            assert!(inner.checksum_ok);
            if p.mode == Mode::Tunnel {
                // The inner packet is where it was before encapsulation.
                assert_eq!(f.head + 14, at, "{p:?}");
            } else {
                // Transport: the payload stayed; the headers moved back onto it.
                assert_eq!(f.head + 14 + 20, at + 20, "{p:?}");
            }
        }
    }
}

/// A frame dropped after its ESP header was found still reports it (the worker
/// counts the drop on the SA and logs the event from it).
#[test]
fn dropped_frame_reports_its_esp_header() {
    let t = Transform::parse("esp-aes esp-sha-hmac").unwrap();
    let (out, inb) = pair(SaParams::tunnel(0x4000, t, LOCAL, REMOTE));
    let mut f = encap_one(&out, 30);
    let l = f.len;
    f.data_mut()[l - 1] ^= 1;
    let mut batch = vec![f];
    let mut dc = DropCounters::default();
    assert_eq!(decapsulate_batch(&mut batch, |_| Some(&inb), &mut dc), 0);
    assert_eq!(batch[0].drop_reason(), Some(DropReason::Auth));
    let h = batch[0].esp_header().unwrap();
    assert_eq!((h.src, h.dst, h.spi, h.seq), (LOCAL, REMOTE, 0x4000, 1));
    assert_eq!(batch[0].inner(), None);
}

/// Frames with their arrival positions.
type Numbered = Vec<(usize, Frame<Vec<u8>>)>;

/// Which arrival positions `decide` accepts, given the stream in arrival order.
fn accepted(n: usize, mut decide: impl FnMut(&mut Numbered)) -> Vec<usize> {
    let mut got: Numbered = Vec::with_capacity(n);
    decide(&mut got);
    let mut idx: Vec<usize> = got.iter().map(|(i, _)| *i).collect();
    idx.sort_unstable();
    idx
}

#[test]
fn deferred_commit_in_arrival_order_matches_one_worker() {
    use rand::{Rng, SeedableRng};
    let t = Transform::parse("esp-aes esp-sha-hmac").unwrap();
    for seed in 0..20u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut p = SaParams::tunnel(0x5000, t, LOCAL, REMOTE);
        p.replay_window = 64;
        let (out, one) = pair(p);
        let split = InboundSa::new(one.params, &keys(t)).unwrap();
        // 400 packets, reordered locally (some beyond the window of 64), some duplicated,
        // some tampered.
        let mut stream: Vec<Frame<Vec<u8>>> =
            (0..400).map(|i| encap_one(&out, 20 + i % 40)).collect();
        for i in 0..stream.len() {
            let d = if rng.random_range(0..10) == 0 { 90 } else { 8 };
            let j = (i + rng.random_range(0..d)).min(stream.len() - 1);
            stream.swap(i, j);
        }
        for _ in 0..30 {
            let k = rng.random_range(0..stream.len());
            let copy = stream[k].clone();
            let at = rng.random_range(k..stream.len());
            stream.insert(at, copy);
        }
        for _ in 0..10 {
            let k = rng.random_range(0..stream.len());
            let l = stream[k].len;
            stream[k].data_mut()[l - 3] ^= 0x40;
        }
        let batches: Vec<Numbered> = stream
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>()
            .chunks(32)
            .map(|c| c.to_vec())
            .collect();
        let mut dc = DropCounters::default();
        // One worker: each batch decapsulated and committed at once.
        let reference = accepted(400, |got| {
            for b in &batches {
                let mut fs: Vec<Frame<Vec<u8>>> = b.iter().map(|(_, f)| f.clone()).collect();
                let n = decapsulate_batch(&mut fs, |_| Some(&one), &mut dc);
                for f in &fs[..n] {
                    got.push((b[f.batch_index()].0, f.clone()));
                }
            }
        });
        // Fan-out: each batch cut into slices, the slices of up to three batches verified
        // in a random order (as by several workers), committed in arrival order.
        let fanned = accepted(400, |got| {
            let mut slices: Vec<Numbered> = Vec::new();
            for b in &batches {
                let k = rng.random_range(1..=4usize);
                let len = b.len().div_ceil(k);
                slices.extend(b.chunks(len).map(|c| c.to_vec()));
            }
            let mut done: Vec<Option<Numbered>> = vec![None; slices.len()];
            let mut next_commit = 0;
            let mut order: Vec<usize> = (0..slices.len()).collect();
            for w in order.chunks_mut(9) {
                // A window of slices in flight at once, verified in any order.
                for i in (1..w.len()).rev() {
                    w.swap(i, rng.random_range(0..=i));
                }
                for &s in w.iter() {
                    let mut fs: Vec<Frame<Vec<u8>>> =
                        slices[s].iter().map(|(_, f)| f.clone()).collect();
                    let _ = decapsulate_batch_deferred(&mut fs, |_| Some(&split), &mut dc);
                    let mut r: Numbered = fs
                        .into_iter()
                        .map(|f| (slices[s][f.batch_index()].0, f))
                        .collect();
                    r.sort_by_key(|(i, _)| *i);
                    done[s] = Some(r);
                    while let Some(Some(r)) = done.get_mut(next_commit).map(Option::take) {
                        for (i, f) in r {
                            if let Some(seq) = f.pending_seq() {
                                let bytes = f.len.saturating_sub(14);
                                if commit_deferred(&split, seq, f.drop_reason(), bytes).is_ok() {
                                    got.push((i, f));
                                }
                            }
                        }
                        next_commit += 1;
                    }
                }
            }
            assert_eq!(next_commit, slices.len());
        });
        assert_eq!(fanned, reference, "seed {seed}");
        assert!(reference.len() > 150, "seed {seed}: {}", reference.len());
        assert!(
            reference.len() < 400,
            "seed {seed}: the stream tests nothing"
        );
        assert_eq!(split.replay.top(), one.replay.top());
        for (a, b) in [
            (&split.counters.packets, &one.counters.packets),
            (&split.counters.bytes, &one.counters.bytes),
        ] {
            assert_eq!(
                a.load(Ordering::Relaxed),
                b.load(Ordering::Relaxed),
                "seed {seed}"
            );
        }
    }
}
