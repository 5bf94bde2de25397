//! Batch 3DES-CBC: known answers (NIST) and random differential tests against the `des` +
//! `cbc` crates, on every dispatch level this CPU has, for ragged batches.

use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use espgw_dataplane::crypto::tdes::{self, CbcJob, Level, Tdes3Key};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod levels;
use levels::levels;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Kat {
    key: [u8; 24],
    pt: [u8; 8],
    ct: [u8; 8],
}

fn kats() -> Vec<Kat> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/tdea-kat.txt"
    ))
    .unwrap();
    let v: Vec<Kat> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Kat {
                key: hex(f[0]).try_into().unwrap(),
                pt: hex(f[1]).try_into().unwrap(),
                ct: hex(f[2]).try_into().unwrap(),
            }
        })
        .collect();
    assert!(v.len() >= 15);
    v
}

#[test]
fn levels_detected() {
    let levels = Level::available();
    eprintln!("tdes levels on this CPU: {levels:?}");
    assert_eq!(levels[0], Level::Portable);
}

/// All vectors in one batch (ECB = one-block CBC chains with a zero IV), each level.
#[test]
fn nist_known_answers_every_level() {
    let kats = kats();
    let keys: Vec<Tdes3Key> = kats.iter().map(|k| Tdes3Key::new(&k.key)).collect();
    for level in levels("batch_tdes::nist_known_answers_every_level") {
        let mut bufs: Vec<[u8; 8]> = kats.iter().map(|k| k.pt).collect();
        let mut jobs: Vec<CbcJob> = bufs
            .iter_mut()
            .zip(&keys)
            .map(|(b, key)| CbcJob {
                key,
                iv: [0; 8],
                data: &mut b[..],
            })
            .collect();
        tdes::cbc_encrypt_many_at(level, &mut jobs);
        drop(jobs);
        for (b, k) in bufs.iter().zip(&kats) {
            assert_eq!(*b, k.ct, "encrypt {level:?}");
        }
        let mut jobs: Vec<CbcJob> = bufs
            .iter_mut()
            .zip(&keys)
            .map(|(b, key)| CbcJob {
                key,
                iv: [0; 8],
                data: &mut b[..],
            })
            .collect();
        tdes::cbc_decrypt_many_at(level, &mut jobs);
        drop(jobs);
        for (b, k) in bufs.iter().zip(&kats) {
            assert_eq!(*b, k.pt, "decrypt {level:?}");
        }
        // And one at a time (batch of one).
        for (k, key) in kats.iter().zip(&keys) {
            let mut b = k.pt;
            tdes::cbc_encrypt_many_at(
                level,
                &mut [CbcJob {
                    key,
                    iv: [0; 8],
                    data: &mut b,
                }],
            );
            assert_eq!(b, k.ct, "single {level:?}");
        }
    }
}

#[test]
fn nist_known_answers_one_block_path() {
    for k in kats() {
        let key = Tdes3Key::new(&k.key);
        let mut b = k.pt;
        tdes::scalar_crypt_block(&key, true, &mut b);
        assert_eq!(b, k.ct);
        tdes::scalar_crypt_block(&key, false, &mut b);
        assert_eq!(b, k.pt);
    }
}

/// The KAT file agrees with the `des` crate too (guards the vectors themselves).
#[test]
fn known_answers_agree_with_des_crate() {
    for k in kats() {
        let mut b = k.pt;
        let mut e = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&k.key, &[0; 8]).unwrap();
        e.encrypt_block((&mut b[..]).try_into().unwrap());
        assert_eq!(b, k.ct);
    }
}

fn reference(key: &[u8; 24], iv: &[u8; 8], data: &mut [u8], encrypt: bool) {
    if encrypt {
        let mut e = cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv).unwrap();
        for c in data.chunks_exact_mut(8) {
            e.encrypt_block(c.try_into().unwrap());
        }
    } else {
        let mut d = cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv).unwrap();
        for c in data.chunks_exact_mut(8) {
            d.decrypt_block(c.try_into().unwrap());
        }
    }
}

/// Random batches: mixed sizes (0 to 1504 bytes), mixed keys, IVs; compare with the
/// reference in both directions and check the IV is left at the last ciphertext block.
fn differential(level: Level, rng: &mut ChaCha8Rng, njobs: usize, nkeys: usize) {
    let raw: Vec<[u8; 24]> = (0..nkeys)
        .map(|_| {
            let mut k = [0u8; 24];
            rng.fill_bytes(&mut k);
            k
        })
        .collect();
    let keys: Vec<Tdes3Key> = raw.iter().map(Tdes3Key::new).collect();
    let mut spec = Vec::new();
    for _ in 0..njobs {
        let blocks = match rng.random_range(0..10) {
            0 => 0,
            1 => 1,
            2 => 188,
            _ => rng.random_range(1..190),
        };
        let mut data = vec![0u8; 8 * blocks];
        rng.fill_bytes(&mut data);
        let mut iv = [0u8; 8];
        rng.fill_bytes(&mut iv);
        spec.push((rng.random_range(0..nkeys), iv, data));
    }
    for encrypt in [true, false] {
        let mut ours: Vec<Vec<u8>> = spec.iter().map(|s| s.2.clone()).collect();
        let mut jobs: Vec<CbcJob> = ours
            .iter_mut()
            .zip(&spec)
            .map(|(d, s)| CbcJob {
                key: &keys[s.0],
                iv: s.1,
                data: &mut d[..],
            })
            .collect();
        if encrypt {
            tdes::cbc_encrypt_many_at(level, &mut jobs);
        } else {
            tdes::cbc_decrypt_many_at(level, &mut jobs);
        }
        let ivs: Vec<[u8; 8]> = jobs.iter().map(|j| j.iv).collect();
        drop(jobs);
        for (i, s) in spec.iter().enumerate() {
            let mut want = s.2.clone();
            reference(&raw[s.0], &s.1, &mut want, encrypt);
            assert_eq!(
                ours[i],
                want,
                "{level:?} encrypt={encrypt} job {i} len {}",
                want.len()
            );
            let last_ct = if s.2.is_empty() {
                s.1
            } else if encrypt {
                want[want.len() - 8..].try_into().unwrap()
            } else {
                s.2[s.2.len() - 8..].try_into().unwrap()
            };
            assert_eq!(ivs[i], last_ct, "{level:?} iv of job {i}");
        }
    }
}

#[test]
fn differential_ragged_batches_every_level() {
    for level in levels("batch_tdes::differential_ragged_batches_every_level") {
        let mut rng = ChaCha8Rng::seed_from_u64(0x3de5 + level as u64);
        for (njobs, nkeys) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (7, 3),
            (64, 1),
            (64, 5),
            (65, 2),
            (130, 4),
        ] {
            differential(level, &mut rng, njobs, nkeys);
        }
    }
}

#[test]
fn dispatched_entry_points_match_forced_portable() {
    let key = Tdes3Key::new(&[7u8; 24]);
    let mut a = vec![0x5au8; 1400];
    let mut b = a.clone();
    tdes::cbc_encrypt_many(&mut [CbcJob {
        key: &key,
        iv: [1; 8],
        data: &mut a,
    }]);
    tdes::cbc_encrypt_many_at(
        Level::Portable,
        &mut [CbcJob {
            key: &key,
            iv: [1; 8],
            data: &mut b,
        }],
    );
    assert_eq!(a, b);
    tdes::cbc_decrypt_many(&mut [CbcJob {
        key: &key,
        iv: [1; 8],
        data: &mut a,
    }]);
    assert_eq!(a, vec![0x5au8; 1400]);
}
