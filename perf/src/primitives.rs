//! Raw batch primitives (3DES-CBC, HMAC-MD5) against OpenSSL on the same bytes.

use std::time::Duration;

use espgw_dataplane::crypto::md5mb::{self, HmacMd5Job, HmacMd5Key};
use espgw_dataplane::crypto::tdes::{self, CbcJob, Level, Tdes3Key};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::clock::{compare, Candidate};

/// OpenSSL 3DES-CBC over each buffer, one context re-initialised with a new IV per packet.
pub fn openssl_3des<'a>(bufs: &'a mut [Vec<u8>], encrypt: bool) -> impl FnMut() + 'a {
    let key = [0x11u8; 24];
    let iv = [0x22u8; 8];
    let mut ctx = CipherCtx::new().unwrap();
    if encrypt {
        ctx.encrypt_init(Some(Cipher::des_ede3_cbc()), Some(&key), Some(&iv))
            .unwrap();
    } else {
        ctx.decrypt_init(Some(Cipher::des_ede3_cbc()), Some(&key), Some(&iv))
            .unwrap();
    }
    ctx.set_padding(false);
    let size = bufs.first().map_or(0, |b| b.len());
    let mut out = vec![0u8; size + 16];
    move || {
        for b in bufs.iter_mut() {
            if encrypt {
                ctx.encrypt_init(None, None, Some(&iv)).unwrap();
            } else {
                ctx.decrypt_init(None, None, Some(&iv)).unwrap();
            }
            let n = ctx.cipher_update(b, Some(&mut out)).unwrap();
            b.copy_from_slice(&out[..n]);
        }
    }
}

/// OpenSSL HMAC-MD5 over each buffer (a signer per packet, as the EVP API requires).
pub fn openssl_hmac_md5<'a>(bufs: &'a [Vec<u8>]) -> impl FnMut() + 'a {
    let pkey = PKey::hmac(&[0x44u8; 16]).unwrap();
    let mut out = [0u8; 16];
    move || {
        for b in bufs.iter() {
            let mut s = Signer::new(MessageDigest::md5(), &pkey).unwrap();
            s.update(b).unwrap();
            s.sign(&mut out).unwrap();
        }
    }
}

pub fn run(size: usize, batch: usize, budget: Duration) {
    let key = Tdes3Key::new(&[0x11u8; 24]);
    let levels = Level::available();
    for encrypt in [true, false] {
        let dir = if encrypt { "encrypt" } else { "decrypt" };
        let mut ob = vec![vec![0x33u8; size]; batch];
        let mut ours: Vec<Vec<Vec<u8>>> = levels
            .iter()
            .map(|_| vec![vec![0x33u8; size]; batch])
            .collect();
        let mut cands = vec![Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(openssl_3des(&mut ob, encrypt)),
        }];
        for (level, bufs) in levels.iter().zip(ours.iter_mut()) {
            let key = &key;
            let level = *level;
            cands.push(Candidate {
                bytes: size * batch,
                packets: batch,
                run: Box::new(move || {
                    let mut jobs: Vec<CbcJob> = bufs
                        .iter_mut()
                        .map(|b| CbcJob {
                            key,
                            iv: [0x22; 8],
                            data: b,
                        })
                        .collect();
                    if encrypt {
                        tdes::cbc_encrypt_many_at(level, &mut jobs);
                    } else {
                        tdes::cbc_decrypt_many_at(level, &mut jobs);
                    }
                }),
            });
        }
        let r = compare(budget, &mut cands);
        println!(
            "3des-cbc {dir} size {size} batch {batch}: openssl {:7.1} MB/s {:6.2} c/B",
            r[0].mb_s(),
            r[0].cycles_per_byte
        );
        for (level, rate) in levels.iter().zip(&r[1..]) {
            println!(
                "3des-cbc {dir} size {size} batch {batch}: {:8} {:7.1} MB/s {:6.2} c/B  x{:.2}",
                level.name(),
                rate.mb_s(),
                rate.cycles_per_byte,
                rate.bytes_per_s / r[0].bytes_per_s
            );
        }
    }
    // HMAC-MD5
    let mkey = HmacMd5Key::new(&[0x44u8; 16]);
    let bufs = vec![vec![0x55u8; size]; batch];
    let mut outs: Vec<Vec<[u8; 16]>> = levels.iter().map(|_| vec![[0u8; 16]; batch]).collect();
    // OpenSSL two ways: an EVP signer per packet, and a reused MD5 context fed the padded
    // key blocks (no per-packet setup); the faster is the baseline.
    let mut hasher = crate::openssl_ref::Hmac::hasher(MessageDigest::md5(), &[0x44u8; 16]);
    let mut o16 = [0u8; 16];
    let bufs2 = bufs.clone();
    let mut cands = vec![
        Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(openssl_hmac_md5(&bufs)),
        },
        Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(move || {
                for b in bufs2.iter() {
                    hasher.mac_parts(b, &[], &mut o16);
                }
            }),
        },
    ];
    for (level, out) in levels.iter().zip(outs.iter_mut()) {
        let (level, bufs, mkey) = (*level, &bufs, &mkey);
        cands.push(Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(move || {
                let mut jobs: Vec<HmacMd5Job> = bufs
                    .iter()
                    .zip(out.iter_mut())
                    .map(|(b, o)| HmacMd5Job {
                        key: mkey,
                        data: b,
                        out: o,
                    })
                    .collect();
                md5mb::hmac_md5_many_at(level, &mut jobs);
            }),
        });
    }
    let mut r = compare(budget, &mut cands);
    println!(
        "hmac-md5 size {size} batch {batch}: openssl evp-signer {:7.1} MB/s, digest+pads {:7.1} MB/s",
        r[0].mb_s(),
        r[1].mb_s()
    );
    if r[1].bytes_per_s > r[0].bytes_per_s {
        r.swap(0, 1);
    }
    println!(
        "hmac-md5 size {size} batch {batch}: openssl {:7.1} MB/s {:6.2} c/B",
        r[0].mb_s(),
        r[0].cycles_per_byte
    );
    for (level, rate) in levels.iter().zip(&r[2..]) {
        println!(
            "hmac-md5 size {size} batch {batch}: {:8} {:7.1} MB/s {:6.2} c/B  x{:.2}",
            level.name(),
            rate.mb_s(),
            rate.cycles_per_byte,
            rate.bytes_per_s / r[0].bytes_per_s
        );
    }
}
