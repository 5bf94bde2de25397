//! OpenSSL doing the same ESP crypto work as our batch path, packet by packet: for CBC
//! transforms encrypt (or decrypt) the padded ESP payload and HMAC the ESP header, IV and
//! ciphertext; for AES-GCM seal (or open) the payload with the 8-byte SPI/sequence AAD.
//! No ESP header building, padding, replay or IV generation is charged to OpenSSL.

use espgw_dataplane::crypto::transform::{AesBits, Cipher as EspCipher, Integrity, Transform};
use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

/// HMAC with OpenSSL. Two ways, both per packet: the EVP signer (an HMAC context per
/// packet) or a reused digest context fed K^ipad / K^opad blocks (two extra compressions
/// per packet, no context setup). `Fastest` measures both once and keeps the faster.
pub enum Hmac {
    Signer {
        md: MessageDigest,
        key: PKey<Private>,
    },
    Hasher {
        h: Hasher,
        ipad: Vec<u8>,
        opad: Vec<u8>,
    },
}

impl Hmac {
    pub fn signer(md: MessageDigest, key: &[u8]) -> Hmac {
        Hmac::Signer {
            md,
            key: PKey::hmac(key).unwrap(),
        }
    }

    pub fn hasher(md: MessageDigest, key: &[u8]) -> Hmac {
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        Hmac::Hasher {
            h: Hasher::new(md).unwrap(),
            ipad: k.iter().map(|b| b ^ 0x36).collect(),
            opad: k.iter().map(|b| b ^ 0x5c).collect(),
        }
    }
}

fn cipher_of(c: EspCipher) -> Option<&'static CipherRef> {
    Some(match c {
        EspCipher::Null => return None,
        EspCipher::Tdes => Cipher::des_ede3_cbc(),
        EspCipher::AesCbc(AesBits::B128) => Cipher::aes_128_cbc(),
        EspCipher::AesCbc(AesBits::B192) => Cipher::aes_192_cbc(),
        EspCipher::AesCbc(AesBits::B256) => Cipher::aes_256_cbc(),
        EspCipher::AesGcm(AesBits::B128) => Cipher::aes_128_gcm(),
        EspCipher::AesGcm(_) => Cipher::aes_256_gcm(),
    })
}

/// ESP payload bytes (inner packet + padding + pad length + next header) for an inner
/// packet of `inner` bytes.
pub fn esp_payload_len(t: Transform, inner: usize) -> usize {
    (inner + 2).div_ceil(t.pad_align()) * t.pad_align()
}

/// A per-packet OpenSSL ESP crypto workload over `batch` packets of `inner` bytes.
pub struct Reference {
    t: Transform,
    ctx: Option<CipherCtx>,
    mac: Option<Hmac>,
    /// Per packet: ESP header (8) ‖ IV ‖ payload.
    bufs: Vec<Vec<u8>>,
    out: Vec<u8>,
    icv: [u8; 16],
    encrypt: bool,
}

impl Reference {
    pub fn new(t: Transform, inner: usize, batch: usize, encrypt: bool, hasher_hmac: bool) -> Self {
        let key = vec![0x42u8; t.enc_key_len()];
        let akey = vec![0x24u8; t.auth_key_len()];
        let ctx = cipher_of(t.cipher()).map(|c| {
            let mut ctx = CipherCtx::new().unwrap();
            let k = if t.is_aead() {
                &key[..key.len() - 4]
            } else {
                &key[..]
            };
            if encrypt {
                ctx.encrypt_init(Some(c), Some(k), None).unwrap();
            } else {
                ctx.decrypt_init(Some(c), Some(k), None).unwrap();
            }
            ctx.set_padding(false);
            ctx
        });
        let md = match t.integrity() {
            Integrity::None => None,
            Integrity::HmacMd5 => Some(MessageDigest::md5()),
            Integrity::HmacSha1 => Some(MessageDigest::sha1()),
        };
        let mac = md.map(|md| {
            if hasher_hmac {
                Hmac::hasher(md, &akey)
            } else {
                Hmac::signer(md, &akey)
            }
        });
        let len = 8 + t.iv_len() + esp_payload_len(t, inner);
        Reference {
            t,
            ctx,
            mac,
            bufs: (0..batch).map(|i| vec![i as u8; len]).collect(),
            out: vec![0u8; len + 32],
            icv: [0; 16],
            encrypt,
        }
    }

    /// One pass over the batch.
    pub fn run(&mut self) {
        let hdr = 8 + self.t.iv_len();
        let aead = self.t.is_aead();
        for b in self.bufs.iter_mut() {
            let (head, payload) = b.split_at_mut(hdr);
            if !self.encrypt {
                if let Some(m) = self.mac.as_mut() {
                    // Verify: compute over header ‖ IV ‖ ciphertext.
                    m.mac_parts(head, payload, &mut self.icv[..12]);
                }
            }
            if let Some(ctx) = self.ctx.as_mut() {
                let iv: Vec<u8> = if aead {
                    let mut n = vec![0x11u8; 4];
                    n.extend_from_slice(&head[8..16]);
                    n
                } else {
                    head[8..].to_vec()
                };
                if self.encrypt {
                    ctx.encrypt_init(None, None, Some(&iv)).unwrap();
                } else {
                    ctx.decrypt_init(None, None, Some(&iv)).unwrap();
                }
                if aead {
                    ctx.cipher_update(&head[..8], None).unwrap();
                }
                let n = ctx.cipher_update(payload, Some(&mut self.out)).unwrap();
                if aead {
                    if self.encrypt {
                        ctx.cipher_final(&mut self.out[n..]).unwrap();
                        ctx.tag(&mut self.icv).unwrap();
                    } else {
                        // The buffers hold no real ciphertext, so the tag check fails;
                        // the work (GHASH over AAD and ciphertext, final block) is done.
                        ctx.set_tag(&self.icv).unwrap();
                        let _ = ctx.cipher_final(&mut self.out[n..]);
                    }
                }
                payload.copy_from_slice(&self.out[..payload.len()]);
            }
            if self.encrypt {
                if let Some(m) = self.mac.as_mut() {
                    m.mac_parts(head, payload, &mut self.icv[..12]);
                }
            }
        }
    }
}

impl Hmac {
    /// HMAC over `a ‖ b`.
    pub fn mac_parts(&mut self, a: &[u8], b: &[u8], out: &mut [u8]) {
        match self {
            Hmac::Signer { md, key } => {
                let mut s = Signer::new(*md, key).unwrap();
                s.update(a).unwrap();
                s.update(b).unwrap();
                let v = s.sign_to_vec().unwrap();
                out.copy_from_slice(&v[..out.len()]);
            }
            Hmac::Hasher { h, ipad, opad } => {
                h.update(ipad).unwrap();
                h.update(a).unwrap();
                h.update(b).unwrap();
                let inner = h.finish().unwrap();
                h.update(opad).unwrap();
                h.update(&inner).unwrap();
                let d = h.finish().unwrap();
                out.copy_from_slice(&d[..out.len()]);
            }
        }
    }
}
