//! Multi-buffer AES-CBC encryption: FIPS 197 known answers and random differential tests
//! against the `aes` + `cbc` crates, VAES engine and fallback, ragged batches.

use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use espgw_dataplane::crypto::aesmb::{self, AesCbcJob, AesKey, Level};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

mod levels;

/// Every level this CPU runs: the `aes` crate (portable), the AES-NI lanes (AVX2; AVX-512
/// with fewer chains than the VAES engine takes) and the VAES engine (AVX-512 with VAES).
fn levels(test: &str) -> Vec<Level> {
    if !aesmb::vaes_available() {
        espgw_lab::prereq::skip(
            &format!("{test} [vaes]"),
            "this CPU lacks AVX-512F and VAES",
        );
    }
    if !aesmb::aesni_available() {
        espgw_lab::prereq::skip(&format!("{test} [aes-ni]"), "this CPU lacks AES-NI");
    }
    levels::levels(test)
}

/// The FIPS 197 vectors: per line key, plaintext, ciphertext.
fn fips197() -> Vec<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/aes-fips197.txt"
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(hex).collect())
        .collect()
}

#[test]
fn fips197_known_answers_batched_and_single() {
    let v = fips197();
    assert_eq!(v.len(), 4);
    let keys: Vec<AesKey> = v.iter().map(|t| AesKey::new(&t[0]).unwrap()).collect();
    for level in levels("batch_aes::fips197_known_answers_batched_and_single") {
        let mut bufs: Vec<Vec<u8>> = v.iter().map(|t| t[1].clone()).collect();
        let mut jobs: Vec<AesCbcJob> = bufs
            .iter_mut()
            .zip(&keys)
            .map(|(b, key)| AesCbcJob {
                key,
                iv: [0; 16],
                data: b,
            })
            .collect();
        aesmb::cbc_encrypt_many_at(level, &mut jobs);
        drop(jobs);
        for (b, t) in bufs.iter().zip(&v) {
            assert_eq!(b, &t[2], "{level:?}");
        }
        for (t, key) in v.iter().zip(&keys) {
            let mut b = t[1].clone();
            aesmb::cbc_encrypt_many_at(
                level,
                &mut [AesCbcJob {
                    key,
                    iv: [0; 16],
                    data: &mut b,
                }],
            );
            assert_eq!(b, t[2], "single {level:?}");
        }
    }
}

fn reference(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
    fn run<C: KeyIvInit + BlockModeEncrypt>(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
        let mut e = C::new_from_slices(key, iv).unwrap();
        for c in data.chunks_exact_mut(16) {
            e.encrypt_block(c.try_into().unwrap());
        }
    }
    match key.len() {
        16 => run::<cbc::Encryptor<aes::Aes128>>(key, iv, data),
        24 => run::<cbc::Encryptor<aes::Aes192>>(key, iv, data),
        _ => run::<cbc::Encryptor<aes::Aes256>>(key, iv, data),
    }
}

#[test]
fn differential_ragged_batches_mixed_key_sizes() {
    assert!(AesKey::new(&[0u8; 20]).is_none());
    for level in levels("batch_aes::differential_ragged_batches_mixed_key_sizes") {
        let mut rng = ChaCha8Rng::seed_from_u64(0xae5 + level as u64);
        for (njobs, nkeys) in [
            (0, 1),
            (1, 1),
            (5, 2),
            (16, 1),
            (17, 3),
            (64, 1),
            (64, 6),
            (100, 4),
        ] {
            let raw: Vec<Vec<u8>> = (0..nkeys)
                .map(|i| {
                    let mut k = vec![0u8; [16, 24, 32][(i + njobs) % 3]];
                    rng.fill_bytes(&mut k);
                    k
                })
                .collect();
            let keys: Vec<AesKey> = raw.iter().map(|k| AesKey::new(k).unwrap()).collect();
            let spec: Vec<(usize, [u8; 16], Vec<u8>)> = (0..njobs)
                .map(|_| {
                    let blocks = match rng.random_range(0..8) {
                        0 => 0,
                        1 => 1,
                        _ => rng.random_range(1..95),
                    };
                    let mut d = vec![0u8; 16 * blocks];
                    rng.fill_bytes(&mut d);
                    let mut iv = [0u8; 16];
                    rng.fill_bytes(&mut iv);
                    (rng.random_range(0..nkeys), iv, d)
                })
                .collect();
            let mut ours: Vec<Vec<u8>> = spec.iter().map(|s| s.2.clone()).collect();
            let mut jobs: Vec<AesCbcJob> = ours
                .iter_mut()
                .zip(&spec)
                .map(|(d, s)| AesCbcJob {
                    key: &keys[s.0],
                    iv: s.1,
                    data: d,
                })
                .collect();
            aesmb::cbc_encrypt_many_at(level, &mut jobs);
            let ivs: Vec<[u8; 16]> = jobs.iter().map(|j| j.iv).collect();
            drop(jobs);
            for (i, s) in spec.iter().enumerate() {
                let mut want = s.2.clone();
                reference(&raw[s.0], &s.1, &mut want);
                assert_eq!(ours[i], want, "{level:?} job {i}");
                let last: [u8; 16] = if want.is_empty() {
                    s.1
                } else {
                    want[want.len() - 16..].try_into().unwrap()
                };
                assert_eq!(ivs[i], last, "{level:?} iv of job {i}");
            }
        }
    }
}

/// CBC decryption at every level: the FIPS 197 ciphertexts back to their plaintexts, and
/// random ragged jobs (every key size) encrypted by the `cbc` crate come back intact, each
/// job's IV left at its last ciphertext block.
#[test]
fn decrypt_known_answers_and_differential_every_level() {
    let v = fips197();
    let kat_keys: Vec<AesKey> = v.iter().map(|t| AesKey::new(&t[0]).unwrap()).collect();
    for level in levels("batch_aes::decrypt_known_answers_and_differential_every_level") {
        for (t, key) in v.iter().zip(&kat_keys) {
            let mut b = t[2].clone();
            aesmb::cbc_decrypt_many_at(
                level,
                &mut [AesCbcJob {
                    key,
                    iv: [0; 16],
                    data: &mut b,
                }],
            );
            assert_eq!(b, t[1], "known answer {level:?}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0xdec + level as u64);
        for njobs in [1usize, 3, 17, 64] {
            let raw: Vec<Vec<u8>> = (0..3)
                .map(|i| {
                    let mut k = vec![0u8; [16, 24, 32][i]];
                    rng.fill_bytes(&mut k);
                    k
                })
                .collect();
            let keys: Vec<AesKey> = raw.iter().map(|k| AesKey::new(k).unwrap()).collect();
            let spec: Vec<(usize, [u8; 16], Vec<u8>)> = (0..njobs)
                .map(|_| {
                    let mut d = vec![0u8; 16 * rng.random_range(0..95)];
                    rng.fill_bytes(&mut d);
                    let mut iv = [0u8; 16];
                    rng.fill_bytes(&mut iv);
                    (rng.random_range(0..3), iv, d)
                })
                .collect();
            let mut bufs: Vec<Vec<u8>> = spec
                .iter()
                .map(|s| {
                    let mut c = s.2.clone();
                    reference(&raw[s.0], &s.1, &mut c);
                    c
                })
                .collect();
            let cts = bufs.clone();
            let mut jobs: Vec<AesCbcJob> = bufs
                .iter_mut()
                .zip(&spec)
                .map(|(d, s)| AesCbcJob {
                    key: &keys[s.0],
                    iv: s.1,
                    data: d,
                })
                .collect();
            aesmb::cbc_decrypt_many_at(level, &mut jobs);
            let ivs: Vec<[u8; 16]> = jobs.iter().map(|j| j.iv).collect();
            drop(jobs);
            for (i, s) in spec.iter().enumerate() {
                assert_eq!(bufs[i], s.2, "{level:?} job {i}");
                let last: [u8; 16] = if cts[i].is_empty() {
                    s.1
                } else {
                    cts[i][cts[i].len() - 16..].try_into().unwrap()
                };
                assert_eq!(ivs[i], last, "{level:?} iv of job {i}");
            }
        }
    }
}
