#![no_main]
//! Decapsulation of arbitrary frames never panics, never delivers more frames than it got,
//! and keeps `good + dropped == total`.
//!
//! Mode 0 (first byte even): the rest is a batch of frames (2-byte length prefixes) run
//! against 3DES-MD5 and AES-GCM SAs, raw and NAT-T. Mode 1 (odd): the rest is the
//! plaintext of an authentic esp-null esp-sha-hmac packet (ICV computed here), so the
//! fuzzer reaches the trailer checks and the inner-packet rewrite behind the ICV. With bit
//! 2 set the batch goes through the fan-out path instead: decapsulation with the replay
//! commit deferred, then the commits in arrival order.
use espgw_dataplane::crypto::transform::{IcvJob, SaCrypto, Transform};
use espgw_dataplane::esp::{commit_deferred, decapsulate_batch, decapsulate_batch_deferred, DropCounters, Frame, InboundSa, Mode, NatT, SaKeys, SaParams};
use espgw_dataplane::wire::checksum;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);
const NULL_KEY: [u8; 20] = [0x11; 20];

struct Sas {
    tdes: InboundSa,
    gcm_natt: InboundSa,
    null_tunnel: InboundSa,
    null_transport: InboundSa,
}

fn sas() -> &'static Sas {
    static S: OnceLock<Sas> = OnceLock::new();
    S.get_or_init(|| {
        let mk = |spi, t: &str, enc: &[u8], auth: &[u8], natt: bool, mode: Mode| {
            let mut p = SaParams::tunnel(spi, Transform::parse(t).unwrap(), LOCAL, REMOTE);
            p.natt = natt.then(NatT::default);
            p.mode = mode;
            p.replay_window = 128;
            InboundSa::new(p, &SaKeys::new(enc, auth)).unwrap()
        };
        let tdes_key: Vec<u8> = (1..=24).collect();
        Sas {
            tdes: mk(0x100, "esp-3des esp-md5-hmac", &tdes_key, &[7; 16], false, Mode::Tunnel),
            gcm_natt: mk(0x101, "esp-gcm", &[9; 20], &[], true, Mode::Tunnel),
            null_tunnel: mk(0x102, "esp-null esp-sha-hmac", &[], &NULL_KEY, false, Mode::Tunnel),
            null_transport: mk(0x103, "esp-null esp-sha-hmac", &[], &NULL_KEY, false, Mode::Transport),
        }
    })
}

fn lookup(spi: u32) -> Option<&'static InboundSa> {
    let s = sas();
    match spi {
        0x100 => Some(&s.tdes),
        0x101 => Some(&s.gcm_natt),
        0x102 => Some(&s.null_tunnel),
        0x103 => Some(&s.null_transport),
        _ => None,
    }
}

fn run(frames: &mut Vec<Frame<Vec<u8>>>, deferred: bool) {
    let mut dc = DropCounters::default();
    let total = frames.len();
    let n = if deferred {
        decapsulate_batch_deferred(frames, lookup, &mut dc)
    } else {
        decapsulate_batch(frames, lookup, &mut dc)
    };
    assert!(n <= total);
    assert_eq!(n as u64 + dc.total(), total as u64);
    for f in &frames[..n] {
        assert!(f.head + f.len <= f.buf.len());
        if !deferred {
            assert!(f.len >= 14 + 20);
        }
    }
    if deferred {
        // Every survivor waits for its commit; commit in arrival order.
        let mut pending: Vec<&Frame<Vec<u8>>> = frames[..n].iter().collect();
        pending.sort_by_key(|f| f.batch_index());
        for f in pending {
            let seq = f.pending_seq().expect("a survivor of the deferred path is pending");
            let spi = f.esp_header().expect("a pending frame has its ESP header").spi;
            let sa = lookup(spi).expect("a pending frame has its SA");
            if commit_deferred(sa, seq, f.drop_reason(), f.len.saturating_sub(14)).is_ok() {
                assert!(f.len >= 14 + 20);
            }
        }
    }
}

/// An authentic esp-null packet to LOCAL whose decrypted payload is `plain`.
fn authentic(plain: &[u8], seq: u32, transport: bool) -> Vec<u8> {
    let spi: u32 = if transport { 0x103 } else { 0x102 };
    let esp_len = 8 + plain.len() + 12;
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 50, 0, 0];
    ip.extend_from_slice(&REMOTE.octets());
    ip.extend_from_slice(&LOCAL.octets());
    let total = (20 + esp_len) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let esp_at = f.len();
    f.extend_from_slice(&spi.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(plain);
    let crypto = SaCrypto::new(Transform::parse("esp-null esp-sha-hmac").unwrap(), &[], &NULL_KEY).unwrap();
    let mut jobs = [IcvJob { data: &f[esp_at..], icv: [0; 16] }];
    crypto.icv_many(&mut jobs);
    let icv = jobs[0].icv;
    f.extend_from_slice(&icv[..12]);
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut frames = Vec::new();
    if mode & 1 == 0 {
        let mut r = rest;
        while r.len() >= 2 && frames.len() < 16 {
            let l = usize::from(u16::from_be_bytes([r[0], r[1]])).min(r.len() - 2);
            frames.push(Frame::with_room(&r[2..2 + l]));
            r = &r[2 + l..];
        }
    } else {
        // Sequence numbers from a counter so replays do not hide everything.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        frames.push(Frame::with_room(&authentic(rest, seq, mode & 2 != 0)));
    }
    run(&mut frames, mode & 4 != 0);
});
