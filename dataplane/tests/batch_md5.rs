//! Multi-buffer HMAC-MD5: RFC 1321 / RFC 2202 known answers and random differential tests
//! against the `md-5` + `hmac` crates, on every dispatch level, for ragged batches.

use espgw_dataplane::crypto::md5mb::{self, HmacMd5Job, HmacMd5Key};
use hmac::{Hmac, KeyInit, Mac};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod levels;
use levels::levels;

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors(name: &str) -> Vec<Vec<Vec<u8>>> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(hex).collect())
        .collect()
}

fn reference(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().into()
}

#[test]
fn md5_rfc1321_known_answers() {
    let v = vectors("md5-rfc1321.txt");
    assert_eq!(v.len(), 7);
    for t in v {
        assert_eq!(md5mb::md5(&t[0]).to_vec(), t[1]);
    }
}

#[test]
fn hmac_md5_rfc2202_every_level_batched_and_single() {
    let v = vectors("hmac-md5-rfc2202.txt");
    assert_eq!(v.len(), 7);
    let keys: Vec<HmacMd5Key> = v.iter().map(|t| HmacMd5Key::new(&t[0])).collect();
    for level in levels("batch_md5::hmac_md5_rfc2202_every_level_batched_and_single") {
        let mut outs = vec![[0u8; 16]; v.len()];
        let mut jobs: Vec<HmacMd5Job> = outs
            .iter_mut()
            .zip(&v)
            .zip(&keys)
            .map(|((out, t), key)| HmacMd5Job {
                key,
                data: &t[1],
                out,
            })
            .collect();
        md5mb::hmac_md5_many_at(level, &mut jobs);
        for (o, t) in outs.iter().zip(&v) {
            assert_eq!(o.to_vec(), t[2], "{level:?}");
            assert_eq!(reference(&t[0], &t[1]).to_vec(), t[2]);
        }
        for (t, key) in v.iter().zip(&keys) {
            let mut out = [0u8; 16];
            md5mb::hmac_md5_many_at(
                level,
                &mut [HmacMd5Job {
                    key,
                    data: &t[1],
                    out: &mut out,
                }],
            );
            assert_eq!(out.to_vec(), t[2], "single {level:?}");
        }
    }
}

#[test]
fn differential_ragged_batches_every_level() {
    for level in levels("batch_md5::differential_ragged_batches_every_level") {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5d5 + level as u64);
        for (njobs, nkeys) in [(0, 1), (1, 1), (3, 2), (16, 1), (17, 3), (64, 4), (100, 7)] {
            let raw: Vec<Vec<u8>> = (0..nkeys)
                .map(|_| {
                    let mut k = vec![0u8; rng.random_range(0..100)];
                    rng.fill_bytes(&mut k);
                    k
                })
                .collect();
            let keys: Vec<HmacMd5Key> = raw.iter().map(|k| HmacMd5Key::new(k)).collect();
            let spec: Vec<(usize, Vec<u8>)> = (0..njobs)
                .map(|_| {
                    // Lengths around the padding edges (55, 56, 63, 64) and ESP sizes.
                    let len = match rng.random_range(0..6) {
                        0 => rng.random_range(0..130),
                        1 => [0usize, 55, 56, 63, 64, 119, 120, 127, 128][rng.random_range(0..9)],
                        _ => rng.random_range(0..1520),
                    };
                    let mut d = vec![0u8; len];
                    rng.fill_bytes(&mut d);
                    (rng.random_range(0..nkeys), d)
                })
                .collect();
            let mut outs = vec![[0u8; 16]; njobs];
            let mut jobs: Vec<HmacMd5Job> = outs
                .iter_mut()
                .zip(&spec)
                .map(|(out, s)| HmacMd5Job {
                    key: &keys[s.0],
                    data: &s.1,
                    out,
                })
                .collect();
            md5mb::hmac_md5_many_at(level, &mut jobs);
            for (i, (o, s)) in outs.iter().zip(&spec).enumerate() {
                assert_eq!(
                    *o,
                    reference(&raw[s.0], &s.1),
                    "{level:?} job {i} len {}",
                    s.1.len()
                );
            }
        }
    }
}
