//! The fused lone-packet 3DES-MD5 path (`SaCrypto::encrypt_icv_one`: 3DES-CBC on the
//! latency path with HMAC-MD5 run beside it): known answers from Python's `cryptography`
//! (OpenSSL), and random differential tests against the two-pass batch calls and against
//! the `des` + `cbc` + `hmac` + `md-5` crates, with the dispatch level forced to every level
//! this CPU runs.

use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use espgw_dataplane::crypto::tdes::Level;
use espgw_dataplane::crypto::transform::{CipherJob, IcvJob, SaCrypto, Transform};
use hmac::{Hmac, KeyInit, Mac};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

mod levels;
use levels::levels;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Vector {
    enc: Vec<u8>,
    auth: Vec<u8>,
    ct: Range<usize>,
    msg_in: Vec<u8>,
    msg_out: Vec<u8>,
    icv: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/tdes-md5-esp.txt"
    ))
    .unwrap();
    let v: Vec<Vector> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Vector {
                enc: hex(f[0]),
                auth: hex(f[1]),
                ct: f[2].parse().unwrap()..f[3].parse().unwrap(),
                msg_in: hex(f[4]),
                msg_out: hex(f[5]),
                icv: hex(f[6]),
            }
        })
        .collect();
    assert!(v.len() >= 12);
    v
}

fn tdes_md5() -> Transform {
    Transform::parse("esp-3des esp-md5-hmac").unwrap()
}

/// The same packet the two-pass way: `encrypt_many` then `icv_many`.
fn two_pass(c: &SaCrypto, msg: &mut [u8], ct: Range<usize>) -> [u8; 12] {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&msg[ct.start - 8..ct.start]);
    c.encrypt_many(&mut [CipherJob {
        iv,
        data: &mut msg[ct],
    }]);
    let mut j = [IcvJob {
        data: msg,
        icv: [0; 16],
    }];
    c.icv_many(&mut j);
    j[0].icv[..12].try_into().unwrap()
}

/// The same packet through crates we did not write.
fn crates(enc: &[u8], auth: &[u8], msg: &mut [u8], ct: Range<usize>) -> [u8; 12] {
    let iv: [u8; 8] = msg[ct.start - 8..ct.start].try_into().unwrap();
    let mut e = cbc::Encryptor::<des::TdesEde3>::new_from_slices(enc, &iv).unwrap();
    for blk in msg[ct].chunks_exact_mut(8) {
        e.encrypt_block(blk.try_into().unwrap());
    }
    let mut h = <Hmac<md5::Md5> as KeyInit>::new_from_slice(auth).unwrap();
    h.update(msg);
    h.finalize().into_bytes()[..12].try_into().unwrap()
}

#[test]
fn fused_matches_python_cryptography_at_every_level() {
    for level in levels("fused_matches_python_cryptography_at_every_level") {
        Level::force(Some(level));
        for (i, v) in vectors().iter().enumerate() {
            let c = SaCrypto::new(tdes_md5(), &v.enc, &v.auth).unwrap();
            assert!(c.has_fused_one());
            let mut msg = v.msg_in.clone();
            let icv = c.encrypt_icv_one(&mut msg, v.ct.clone()).unwrap();
            assert_eq!(msg, v.msg_out, "vector {i} at {}", level.name());
            assert_eq!(&icv[..12], &v.icv[..], "vector {i} at {}", level.name());
        }
    }
    Level::force(None);
}

#[test]
fn fused_matches_two_pass_and_the_crates_at_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for level in levels("fused_matches_two_pass_and_the_crates_at_every_level") {
        Level::force(Some(level));
        for round in 0..120 {
            let mut enc = [0u8; 24];
            let mut auth = [0u8; 16];
            rng.fill_bytes(&mut enc);
            rng.fill_bytes(&mut auth);
            let c = SaCrypto::new(tdes_md5(), &enc, &auth).unwrap();
            // Every block count up to 40, then long chains; the tail plays the ESN bits.
            let blocks = if round < 41 {
                round
            } else {
                rng.random_range(41..=200)
            };
            let tail = if rng.random_bool(0.5) { 4 } else { 0 };
            let mut msg = vec![0u8; 16 + 8 * blocks + tail];
            rng.fill_bytes(&mut msg);
            let ct = 16..16 + 8 * blocks;
            let (mut a, mut b) = (msg.clone(), msg.clone());
            let icv = c.encrypt_icv_one(&mut msg, ct.clone()).unwrap();
            let icv_two = two_pass(&c, &mut a, ct.clone());
            let icv_crates = crates(&enc, &auth, &mut b, ct);
            let what = format!("{blocks} blocks, tail {tail}, {}", level.name());
            assert_eq!(msg, a, "{what}");
            assert_eq!(msg, b, "{what}");
            assert_eq!(icv[..12], icv_two, "{what}");
            assert_eq!(icv[..12], icv_crates, "{what}");
        }
    }
    Level::force(None);
}

#[test]
fn no_fused_path_touches_nothing() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    for t in Transform::all() {
        let enc: Vec<u8> = (0..t.enc_key_len()).map(|i| i as u8 * 7 + 1).collect();
        let auth: Vec<u8> = (0..t.auth_key_len()).map(|i| i as u8 ^ 0x5a).collect();
        let c = SaCrypto::new(t, &enc, &auth).unwrap();
        let mut msg = vec![0u8; 16 + 64];
        rng.fill_bytes(&mut msg);
        let orig = msg.clone();
        let fused = t == tdes_md5();
        assert_eq!(c.has_fused_one(), fused, "{t}");
        if !fused {
            assert!(c.encrypt_icv_one(&mut msg, 16..80).is_none(), "{t}");
        } else {
            // Ranges that are not whole blocks after an IV inside the message.
            // (20..12: an end before the start, as a corrupt length would give.)
            let backwards = Range { start: 20, end: 12 };
            for bad in [4..12, 16..81, 16..76, backwards, 16..88] {
                assert!(
                    c.encrypt_icv_one(&mut msg, bad.clone()).is_none(),
                    "{bad:?}"
                );
            }
        }
        assert_eq!(msg, orig, "{t}");
    }
}
