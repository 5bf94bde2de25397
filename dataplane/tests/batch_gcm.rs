//! AES-GCM (VAES + VPCLMULQDQ): the GCM specification's test case 4 and random
//! differential tests against the `aes-gcm` crate (seal, open, tampered tags).
#![cfg(target_arch = "x86_64")]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use espgw_dataplane::crypto::aesmb::gcm::{self, GcmKey};
use espgw_dataplane::crypto::tdes::Level;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod levels;

const NO_GCM_ENGINE: &str = "this CPU lacks VAES and VPCLMULQDQ (the GCM engine)";

/// The levels at which this CPU runs the GCM engine (zmm loops at AVX-512, ymm loops at
/// AVX2); each level it cannot is recorded as skipped.
fn gcm_levels(test: &str) -> Vec<Level> {
    let all = levels::levels(test);
    for l in all
        .iter()
        .filter(|l| **l > Level::Portable && !gcm::usable_at(**l))
    {
        espgw_lab::prereq::skip(&format!("{test} [{}]", l.name()), NO_GCM_ENGINE);
    }
    all.into_iter().filter(|l| gcm::usable_at(*l)).collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn reference(key: &[u8], nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
    let tag = if key.len() == 16 {
        Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(nonce.into(), aad, data.into())
    } else {
        Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(nonce.into(), aad, data.into())
    };
    tag.unwrap().into()
}

#[test]
fn gcm_spec_test_case_4() {
    for level in gcm_levels("batch_gcm::gcm_spec_test_case_4") {
        spec_test_case_4(level);
    }
}

fn spec_test_case_4(level: Level) {
    let key = hex("feffe9928665731c6d6a8f9467308308");
    let nonce: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
    let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    let mut want = pt.clone();
    let want_tag = reference(&key, &nonce, &aad, &mut want);
    assert_eq!(
        want_tag.to_vec(),
        hex("5bc94fbc3221a5db94fae95ae7121a47"),
        "reference crate vs spec"
    );
    let k = GcmKey::new(&key).unwrap();
    let mut d = pt.clone();
    let tag = k.seal_at(level, &nonce, &aad, &mut d);
    assert_eq!(d, want, "{level:?}");
    assert_eq!(tag, want_tag, "{level:?}");
    assert!(k.open_at(level, &nonce, &aad, &mut d, &tag));
    assert_eq!(d, pt);
}

#[test]
fn differential_against_aes_gcm_crate() {
    for level in gcm_levels("batch_gcm::differential_against_aes_gcm_crate") {
        differential(level);
    }
}

fn differential(level: Level) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6c3);
    for i in 0..600 {
        let mut key = vec![0u8; if i % 2 == 0 { 16 } else { 32 }];
        rng.fill_bytes(&mut key);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut aad = vec![0u8; [0, 8, 12, 16, 17, 40][i % 6]];
        rng.fill_bytes(&mut aad);
        let len = match i % 5 {
            0 => rng.random_range(0..40),
            1 => 16 * rng.random_range(0..100),
            _ => rng.random_range(0..2100),
        };
        let mut pt = vec![0u8; len];
        rng.fill_bytes(&mut pt);
        let mut want = pt.clone();
        let want_tag = reference(&key, &nonce, &aad, &mut want);
        let k = GcmKey::new(&key).unwrap();
        let mut d = pt.clone();
        let tag = k.seal_at(level, &nonce, &aad, &mut d);
        assert_eq!(d, want, "ciphertext, {level:?} case {i} len {len}");
        assert_eq!(
            tag,
            want_tag,
            "tag, {level:?} case {i} len {len} aad {}",
            aad.len()
        );
        let mut bad = tag;
        bad[i % 16] ^= 1 << (i % 8);
        let mut d2 = d.clone();
        assert!(
            !k.open_at(level, &nonce, &aad, &mut d2, &bad),
            "tampered tag accepted, {level:?} case {i}"
        );
        assert_eq!(d2, d, "data touched on a bad tag");
        assert!(k.open_at(level, &nonce, &aad, &mut d, &tag));
        assert_eq!(d, pt);
    }
}
