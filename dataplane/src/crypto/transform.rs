//! ESP transforms as IOS names them (`esp-3des esp-md5-hmac`, `esp-gcm 256`…), their key
//! and block geometry, and the per-SA expanded key state with a batch-first interface.
//!
//! Per SA the keys are expanded once ([`SaCrypto::new`]) and zeroed on drop. The ESP
//! engine drives a group of packets of one SA through three batch calls:
//! [`SaCrypto::encrypt_many`] / [`SaCrypto::decrypt_many`] (CBC, one chain per job) and
//! [`SaCrypto::icv_many`] (HMAC-96 over ESP header ‖ IV ‖ ciphertext [‖ ESN high bits]),
//! or, for AES-GCM, [`SaCrypto::seal_many`] / [`SaCrypto::open_many`]. Each algorithm's
//! batch loop lives in one match arm, so a multi-lane primitive (bitsliced 3DES, multi-
//! buffer MD5) replaces that arm alone.

mod cbc;
mod fused;
mod rng;

pub use rng::IvRng;

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use des::cipher::KeyInit;

use super::aesmb::gcm::GcmKey;
use super::aesmb::{self, AesCbcJob, AesKey};
use super::md5mb::{self, HmacMd5Job, HmacMd5Key};
use super::tdes::{self, CbcJob, Tdes3Key};
pub use espgw_sadb::TransformId;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt;
use zeroize::Zeroize;

/// Largest IV of any transform (AES-CBC).
pub const MAX_IV_LEN: usize = 16;
/// Largest ICV of any transform (AES-GCM, 16 bytes).
pub const MAX_ICV_LEN: usize = 16;
/// Length of the RFC 4106 salt carried at the end of an esp-gcm key.
pub const GCM_SALT_LEN: usize = 4;

/// AES key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AesBits {
    B128,
    B192,
    B256,
}

impl AesBits {
    pub const fn key_len(self) -> usize {
        match self {
            AesBits::B128 => 16,
            AesBits::B192 => 24,
            AesBits::B256 => 32,
        }
    }
    pub const fn bits(self) -> u16 {
        match self {
            AesBits::B128 => 128,
            AesBits::B192 => 192,
            AesBits::B256 => 256,
        }
    }
    fn from_bits(b: u16) -> Option<Self> {
        match b {
            128 => Some(AesBits::B128),
            192 => Some(AesBits::B192),
            256 => Some(AesBits::B256),
            _ => None,
        }
    }
}

/// The encryption part of a transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// `esp-null` (RFC 2410).
    Null,
    /// `esp-3des`: 3DES-EDE-CBC (RFC 2451).
    Tdes,
    /// `esp-aes [128|192|256]`: AES-CBC (RFC 3602).
    AesCbc(AesBits),
    /// `esp-gcm [128|256]`: AES-GCM with a 16-byte ICV (RFC 4106).
    AesGcm(AesBits),
}

/// The integrity part of a transform (none for AES-GCM, which is combined mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    None,
    /// `esp-md5-hmac`: HMAC-MD5-96 (RFC 2403).
    HmacMd5,
    /// `esp-sha-hmac`: HMAC-SHA1-96 (RFC 2404).
    HmacSha1,
}

/// An ESP transform set: a valid cipher/integrity pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transform {
    cipher: Cipher,
    integrity: Integrity,
}

/// Every [`TransformId`] is a valid transform: this is how the dataplane builds its
/// crypto from an SA record.
impl From<TransformId> for Transform {
    fn from(id: TransformId) -> Transform {
        use TransformId as T;
        let (cipher, integrity) = match id {
            T::Esp3desMd5 => (Cipher::Tdes, Integrity::HmacMd5),
            T::Esp3desSha => (Cipher::Tdes, Integrity::HmacSha1),
            T::EspAes128Md5 => (Cipher::AesCbc(AesBits::B128), Integrity::HmacMd5),
            T::EspAes128Sha => (Cipher::AesCbc(AesBits::B128), Integrity::HmacSha1),
            T::EspAes192Md5 => (Cipher::AesCbc(AesBits::B192), Integrity::HmacMd5),
            T::EspAes192Sha => (Cipher::AesCbc(AesBits::B192), Integrity::HmacSha1),
            T::EspAes256Md5 => (Cipher::AesCbc(AesBits::B256), Integrity::HmacMd5),
            T::EspAes256Sha => (Cipher::AesCbc(AesBits::B256), Integrity::HmacSha1),
            T::EspNullMd5 => (Cipher::Null, Integrity::HmacMd5),
            T::EspNullSha => (Cipher::Null, Integrity::HmacSha1),
            T::EspGcm128 => (Cipher::AesGcm(AesBits::B128), Integrity::None),
            T::EspGcm256 => (Cipher::AesGcm(AesBits::B256), Integrity::None),
        };
        Transform { cipher, integrity }
    }
}

/// Why a transform name, code or key does not make a transform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("unknown transform keyword '{0}'")]
    UnknownKeyword(String),
    #[error("invalid key size '{0}' (esp-aes: 128, 192, 256; esp-gcm: 128, 256)")]
    BadKeySize(String),
    #[error("transform needs exactly one encryption transform")]
    NeedsCipher,
    #[error(
        "esp-3des, esp-aes and esp-null need an integrity transform (esp-md5-hmac or esp-sha-hmac)"
    )]
    NeedsIntegrity,
    #[error("esp-gcm is combined mode and takes no integrity transform")]
    GcmWithIntegrity,
    #[error("more than one {0} transform")]
    Duplicate(&'static str),
    #[error("unknown transform code {0:#06x}")]
    UnknownCode(u16),
    #[error("{what} key must be {need} bytes, got {got}")]
    KeyLength {
        what: &'static str,
        need: usize,
        got: usize,
    },
    #[error("weak or degenerate 3DES key (K1 = K2 or K2 = K3)")]
    WeakKey,
}

impl Transform {
    /// Makes a transform from parts, rejecting invalid pairs.
    pub fn new(cipher: Cipher, integrity: Integrity) -> Result<Self, TransformError> {
        match (cipher, integrity) {
            (Cipher::AesGcm(AesBits::B192), _) => Err(TransformError::BadKeySize("192".into())),
            (Cipher::AesGcm(_), Integrity::None) => Ok(Transform { cipher, integrity }),
            (Cipher::AesGcm(_), _) => Err(TransformError::GcmWithIntegrity),
            (_, Integrity::None) => Err(TransformError::NeedsIntegrity),
            _ => Ok(Transform { cipher, integrity }),
        }
    }

    /// Every supported transform, in a stable order.
    pub fn all() -> Vec<Transform> {
        let mut v = Vec::new();
        let ciphers = [
            Cipher::Tdes,
            Cipher::AesCbc(AesBits::B128),
            Cipher::AesCbc(AesBits::B192),
            Cipher::AesCbc(AesBits::B256),
            Cipher::Null,
        ];
        for c in ciphers {
            for i in [Integrity::HmacMd5, Integrity::HmacSha1] {
                v.push(Transform {
                    cipher: c,
                    integrity: i,
                });
            }
        }
        for b in [AesBits::B128, AesBits::B256] {
            v.push(Transform {
                cipher: Cipher::AesGcm(b),
                integrity: Integrity::None,
            });
        }
        v
    }

    /// Parses an IOS transform set such as `esp-3des esp-md5-hmac`, `esp-aes 256
    /// esp-sha-hmac` or `esp-gcm 256` (keywords in any order, case-insensitive).
    pub fn parse(s: &str) -> Result<Self, TransformError> {
        let mut cipher: Option<Cipher> = None;
        let mut integ: Option<Integrity> = None;
        let toks: Vec<String> = s
            .split_whitespace()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i].as_str();
            let set_cipher = |c: &mut Option<Cipher>, v: Cipher| {
                if c.is_some() {
                    return Err(TransformError::Duplicate("encryption"));
                }
                *c = Some(v);
                Ok(())
            };
            match t {
                "esp-3des" => set_cipher(&mut cipher, Cipher::Tdes)?,
                "esp-null" => set_cipher(&mut cipher, Cipher::Null)?,
                "esp-aes" | "esp-gcm" => {
                    let mut bits = AesBits::B128;
                    if let Some(n) = toks.get(i + 1).and_then(|n| n.parse::<u16>().ok()) {
                        bits = AesBits::from_bits(n)
                            .ok_or_else(|| TransformError::BadKeySize(n.to_string()))?;
                        i += 1;
                    }
                    let c = if t == "esp-aes" {
                        Cipher::AesCbc(bits)
                    } else {
                        Cipher::AesGcm(bits)
                    };
                    set_cipher(&mut cipher, c)?;
                }
                "esp-md5-hmac" | "esp-sha-hmac" => {
                    if integ.is_some() {
                        return Err(TransformError::Duplicate("integrity"));
                    }
                    integ = Some(if t == "esp-md5-hmac" {
                        Integrity::HmacMd5
                    } else {
                        Integrity::HmacSha1
                    });
                }
                other => return Err(TransformError::UnknownKeyword(other.to_string())),
            }
            i += 1;
        }
        let cipher = cipher.ok_or(TransformError::NeedsCipher)?;
        Transform::new(cipher, integ.unwrap_or(Integrity::None))
    }

    /// The name IOS prints in `show crypto ipsec transform-set` / `show crypto ipsec sa`.
    pub fn ios_name(&self) -> String {
        self.id().ios_name().to_string()
    }

    /// The typed code of this transform, as the SA record stores it (see
    /// [`TransformId`]: the one table of codes and IOS names).
    pub const fn id(&self) -> TransformId {
        use TransformId as T;
        // `Transform::new` admits only the pairs of `From<TransformId>`: a CBC or null
        // cipher with HMAC-MD5 or HMAC-SHA1, esp-gcm 128 or 256 alone. The wildcards
        // stand for HMAC-MD5 (or, for esp-gcm, for no integrity).
        match (self.cipher, self.integrity) {
            (Cipher::Tdes, Integrity::HmacSha1) => T::Esp3desSha,
            (Cipher::Tdes, _) => T::Esp3desMd5,
            (Cipher::AesCbc(AesBits::B128), Integrity::HmacSha1) => T::EspAes128Sha,
            (Cipher::AesCbc(AesBits::B128), _) => T::EspAes128Md5,
            (Cipher::AesCbc(AesBits::B192), Integrity::HmacSha1) => T::EspAes192Sha,
            (Cipher::AesCbc(AesBits::B192), _) => T::EspAes192Md5,
            (Cipher::AesCbc(AesBits::B256), Integrity::HmacSha1) => T::EspAes256Sha,
            (Cipher::AesCbc(AesBits::B256), _) => T::EspAes256Md5,
            (Cipher::Null, Integrity::HmacSha1) => T::EspNullSha,
            (Cipher::Null, _) => T::EspNullMd5,
            (Cipher::AesGcm(AesBits::B128 | AesBits::B192), _) => T::EspGcm128,
            (Cipher::AesGcm(AesBits::B256), _) => T::EspGcm256,
        }
    }

    /// Stable 16-bit code stored in the shared-memory SA record ([`TransformId::code`]).
    pub const fn code(&self) -> u16 {
        self.id().code()
    }

    /// Inverse of [`Transform::code`].
    pub fn from_code(code: u16) -> Result<Self, TransformError> {
        TransformId::from_code(code)
            .map(Transform::from)
            .ok_or(TransformError::UnknownCode(code))
    }

    pub const fn cipher(&self) -> Cipher {
        self.cipher
    }
    pub const fn integrity(&self) -> Integrity {
        self.integrity
    }
    pub const fn is_aead(&self) -> bool {
        matches!(self.cipher, Cipher::AesGcm(_))
    }

    /// Encryption key length in bytes; for esp-gcm this includes the 4-byte salt
    /// (RFC 4106 §8.1: the KEYMAT is key ‖ salt).
    pub const fn enc_key_len(&self) -> usize {
        match self.cipher {
            Cipher::Null => 0,
            Cipher::Tdes => 24,
            Cipher::AesCbc(b) => b.key_len(),
            Cipher::AesGcm(b) => b.key_len() + GCM_SALT_LEN,
        }
    }

    /// Integrity key length in bytes (0 for esp-gcm).
    pub const fn auth_key_len(&self) -> usize {
        match self.integrity {
            Integrity::None => 0,
            Integrity::HmacMd5 => 16,
            Integrity::HmacSha1 => 20,
        }
    }

    /// Bytes of IV on the wire (the explicit 8-byte IV for esp-gcm).
    pub const fn iv_len(&self) -> usize {
        match self.cipher {
            Cipher::Null => 0,
            Cipher::Tdes => 8,
            Cipher::AesCbc(_) => 16,
            Cipher::AesGcm(_) => 8,
        }
    }

    /// The alignment of pad-length/next-header end: cipher block, at least 4 (RFC 4303
    /// §2.4).
    pub const fn pad_align(&self) -> usize {
        match self.cipher {
            Cipher::Null | Cipher::AesGcm(_) => 4,
            Cipher::Tdes => 8,
            Cipher::AesCbc(_) => 16,
        }
    }

    /// ICV bytes on the wire: 12 for the HMAC-96 family, 16 for esp-gcm.
    pub const fn icv_len(&self) -> usize {
        match (self.cipher, self.integrity) {
            (Cipher::AesGcm(_), _) => 16,
            (_, Integrity::None) => 0,
            _ => 12,
        }
    }

    /// ESP overhead beyond the inner packet, worst case: header, IV, maximal padding,
    /// trailer, ICV.
    pub const fn max_overhead(&self) -> usize {
        8 + self.iv_len() + (self.pad_align() - 1) + 2 + self.icv_len()
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ios_name())
    }
}

impl std::str::FromStr for Transform {
    type Err = TransformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transform::parse(s)
    }
}

enum CipherState {
    Null,
    Tdes(Box<Tdes3Key>),
    Aes128(Box<Aes128>),
    Aes192(Box<Aes192>),
    Aes256(Box<Aes256>),
    Gcm128(Box<Aes128Gcm>),
    Gcm256(Box<Aes256Gcm>),
}

enum AuthState {
    None,
    Md5(Box<HmacMd5Key>),
    Sha1(Box<Hmac<Sha1>>),
}

/// One CBC job: encrypt or decrypt `data` (a multiple of the block size) in place as one
/// chain starting from `iv`.
pub struct CipherJob<'a> {
    pub iv: [u8; MAX_IV_LEN],
    pub data: &'a mut [u8],
}

/// One ICV job: the truncated HMAC of `data` lands in `icv[..icv_len]`.
pub struct IcvJob<'a> {
    pub data: &'a [u8],
    pub icv: [u8; MAX_ICV_LEN],
}

/// One AEAD job (RFC 4106): nonce = salt ‖ `explicit_iv`; AAD = SPI ‖ [seq-hi ‖] seq-lo
/// (`aad[..aad_len]`, 8 or 12 bytes). `seal_many` fills `tag`; `open_many` checks it and
/// sets `ok`.
pub struct AeadJob<'a> {
    pub explicit_iv: [u8; 8],
    pub aad: [u8; 12],
    pub aad_len: usize,
    pub data: &'a mut [u8],
    pub tag: [u8; 16],
    pub ok: bool,
}

/// The expanded keys of one SA direction. Keys are expanded once here and zeroed when
/// the value is dropped (the cipher and hash states zeroize themselves; the salt is
/// zeroed by `Drop`).
pub struct SaCrypto {
    transform: Transform,
    cipher: CipherState,
    auth: AuthState,
    salt: [u8; GCM_SALT_LEN],
    /// AES-CBC round keys for the 16-lane VAES encryption engine (when the CPU has it).
    aes_mb: Option<Box<AesKey>>,
    /// AES-GCM with VAES counter mode and VPCLMULQDQ GHASH (when the CPU has them).
    gcm_mb: Option<Box<GcmKey>>,
}

/// Whether the VAES/VPCLMULQDQ GCM runs at the active level (zmm at AVX-512, ymm from
/// AVX2 up where the CPU has VAES).
fn gcm_fast() -> bool {
    aesmb::gcm::usable_at(tdes::Level::active())
}

/// The multi-lane AES view of CBC jobs.
fn aes_jobs<'j>(key: &'j AesKey, jobs: &'j mut [CipherJob<'_>]) -> Vec<AesCbcJob<'j>> {
    jobs.iter_mut()
        .map(|j| AesCbcJob {
            key,
            iv: j.iv,
            data: &mut *j.data,
        })
        .collect()
}

/// The batch 3DES view of CBC jobs (3DES IVs are the first 8 bytes).
fn tdes_jobs<'j>(key: &'j Tdes3Key, jobs: &'j mut [CipherJob<'_>]) -> Vec<CbcJob<'j>> {
    jobs.iter_mut()
        .map(|j| {
            let mut iv = [0u8; 8];
            iv.copy_from_slice(&j.iv[..8]);
            CbcJob {
                key,
                iv,
                data: &mut *j.data,
            }
        })
        .collect()
}

impl Drop for SaCrypto {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl fmt::Debug for SaCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("SaCrypto")
            .field("transform", &self.transform.ios_name())
            .finish_non_exhaustive()
    }
}

impl SaCrypto {
    /// Expands `enc_key` (for esp-gcm: key ‖ 4-byte salt) and `auth_key`.
    pub fn new(
        transform: Transform,
        enc_key: &[u8],
        auth_key: &[u8],
    ) -> Result<Self, TransformError> {
        if enc_key.len() != transform.enc_key_len() {
            return Err(TransformError::KeyLength {
                what: "encryption",
                need: transform.enc_key_len(),
                got: enc_key.len(),
            });
        }
        if auth_key.len() != transform.auth_key_len() {
            return Err(TransformError::KeyLength {
                what: "authentication",
                need: transform.auth_key_len(),
                got: auth_key.len(),
            });
        }
        let bad = |_| TransformError::KeyLength {
            what: "encryption",
            need: transform.enc_key_len(),
            got: enc_key.len(),
        };
        let mut salt = [0u8; GCM_SALT_LEN];
        let cipher = match transform.cipher {
            Cipher::Null => CipherState::Null,
            Cipher::Tdes => {
                if enc_key[0..8] == enc_key[8..16] || enc_key[8..16] == enc_key[16..24] {
                    return Err(TransformError::WeakKey);
                }
                // Length checked above (enc_key_len is 24 for 3DES).
                let mut key = [0u8; 24];
                key.copy_from_slice(enc_key);
                let st = CipherState::Tdes(Box::new(Tdes3Key::new(&key)));
                key.zeroize();
                st
            }
            Cipher::AesCbc(AesBits::B128) => {
                CipherState::Aes128(Box::new(Aes128::new_from_slice(enc_key).map_err(bad)?))
            }
            Cipher::AesCbc(AesBits::B192) => {
                CipherState::Aes192(Box::new(Aes192::new_from_slice(enc_key).map_err(bad)?))
            }
            Cipher::AesCbc(AesBits::B256) => {
                CipherState::Aes256(Box::new(Aes256::new_from_slice(enc_key).map_err(bad)?))
            }
            Cipher::AesGcm(b) => {
                let k = b.key_len();
                salt.copy_from_slice(&enc_key[k..]);
                match b {
                    AesBits::B128 => CipherState::Gcm128(Box::new(
                        Aes128Gcm::new_from_slice(&enc_key[..k]).map_err(bad)?,
                    )),
                    AesBits::B256 => CipherState::Gcm256(Box::new(
                        Aes256Gcm::new_from_slice(&enc_key[..k]).map_err(bad)?,
                    )),
                    AesBits::B192 => return Err(TransformError::BadKeySize("192".into())),
                }
            }
        };
        let auth = match transform.integrity {
            Integrity::None => AuthState::None,
            Integrity::HmacMd5 => AuthState::Md5(Box::new(HmacMd5Key::new(auth_key))),
            Integrity::HmacSha1 => AuthState::Sha1(Box::new(
                <Hmac<Sha1> as KeyInit>::new_from_slice(auth_key)
                    .expect("HMAC takes any key length"),
            )),
        };
        let aes_mb = match transform.cipher {
            Cipher::AesCbc(_) => AesKey::new(enc_key).map(Box::new),
            _ => None,
        };
        let gcm_mb = match transform.cipher {
            Cipher::AesGcm(b) => GcmKey::new(&enc_key[..b.key_len()]).map(Box::new),
            _ => None,
        };
        Ok(SaCrypto {
            transform,
            cipher,
            auth,
            salt,
            aes_mb,
            gcm_mb,
        })
    }

    pub fn transform(&self) -> Transform {
        self.transform
    }

    /// CBC-encrypts every job in place (one chain per job). Jobs of a null cipher are
    /// left as they are; AEAD transforms use [`SaCrypto::seal_many`].
    pub fn encrypt_many(&self, jobs: &mut [CipherJob<'_>]) {
        if let Some(key) = self.aes_mb.as_ref().filter(|_| aesmb::multi_lane()) {
            // AES-CBC encryption, several chains at once (VAES or AES-NI lanes).
            aesmb::cbc_encrypt_many(&mut aes_jobs(key, jobs));
            return;
        }
        match &self.cipher {
            CipherState::Null | CipherState::Gcm128(_) | CipherState::Gcm256(_) => {}
            // Lane-parallel 3DES: one CBC chain per packet, lanes across the batch.
            CipherState::Tdes(k) => tdes::cbc_encrypt_many(&mut tdes_jobs(k, jobs)),
            CipherState::Aes128(k) => jobs
                .iter_mut()
                .for_each(|j| cbc::encrypt(&**k, &j.iv, j.data)),
            CipherState::Aes192(k) => jobs
                .iter_mut()
                .for_each(|j| cbc::encrypt(&**k, &j.iv, j.data)),
            CipherState::Aes256(k) => jobs
                .iter_mut()
                .for_each(|j| cbc::encrypt(&**k, &j.iv, j.data)),
        }
    }

    /// CBC-decrypts every job in place.
    pub fn decrypt_many(&self, jobs: &mut [CipherJob<'_>]) {
        if let Some(key) = self.aes_mb.as_ref().filter(|_| aesmb::multi_lane()) {
            // AES-CBC decryption, eight blocks of a chain side by side (AES-NI).
            aesmb::cbc_decrypt_many(&mut aes_jobs(key, jobs));
            return;
        }
        match &self.cipher {
            CipherState::Null | CipherState::Gcm128(_) | CipherState::Gcm256(_) => {}
            CipherState::Tdes(k) => tdes::cbc_decrypt_many(&mut tdes_jobs(k, jobs)),
            CipherState::Aes128(k) => jobs
                .iter_mut()
                .for_each(|j| cbc::decrypt(&**k, &j.iv, j.data)),
            CipherState::Aes192(k) => jobs
                .iter_mut()
                .for_each(|j| cbc::decrypt(&**k, &j.iv, j.data)),
            CipherState::Aes256(k) => jobs
                .iter_mut()
                .for_each(|j| cbc::decrypt(&**k, &j.iv, j.data)),
        }
    }

    /// Computes the 96-bit ICV of every job.
    pub fn icv_many(&self, jobs: &mut [IcvJob<'_>]) {
        match &self.auth {
            AuthState::None => {}
            // Multi-buffer HMAC-MD5: 16 (AVX-512) or 8 (AVX2) packets at once.
            AuthState::Md5(key) => {
                let mut outs = vec![[0u8; 16]; jobs.len()];
                let mut mjobs: Vec<HmacMd5Job<'_>> = jobs
                    .iter()
                    .zip(outs.iter_mut())
                    .map(|(j, out)| HmacMd5Job {
                        key,
                        data: j.data,
                        out,
                    })
                    .collect();
                md5mb::hmac_md5_many(&mut mjobs);
                for (j, o) in jobs.iter_mut().zip(&outs) {
                    j.icv[..12].copy_from_slice(&o[..12]);
                }
            }
            AuthState::Sha1(m) => jobs.iter_mut().for_each(|j| {
                let mut h = (**m).clone();
                h.update(j.data);
                j.icv[..12].copy_from_slice(&h.finalize().into_bytes()[..12]);
            }),
        }
    }

    fn nonce(&self, explicit: &[u8; 8]) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(explicit);
        n
    }

    /// AES-GCM encrypts every job in place and fills its tag.
    pub fn seal_many(&self, jobs: &mut [AeadJob<'_>]) {
        if let Some(k) = self.gcm_mb.as_ref().filter(|_| gcm_fast()) {
            for j in jobs.iter_mut() {
                let nonce = self.nonce(&j.explicit_iv);
                j.tag = k.seal(&nonce, &j.aad[..j.aad_len], j.data);
                j.ok = true;
            }
            return;
        }
        for j in jobs.iter_mut() {
            let nonce = self.nonce(&j.explicit_iv);
            let aad = &j.aad[..j.aad_len];
            let r = match &self.cipher {
                CipherState::Gcm128(k) => {
                    k.encrypt_inout_detached(&nonce.into(), aad, (&mut *j.data).into())
                }
                CipherState::Gcm256(k) => {
                    k.encrypt_inout_detached(&nonce.into(), aad, (&mut *j.data).into())
                }
                _ => continue,
            };
            match r {
                Ok(tag) => {
                    j.tag.copy_from_slice(&tag);
                    j.ok = true;
                }
                Err(_) => j.ok = false,
            }
        }
    }

    /// AES-GCM verifies and decrypts every job in place; `ok` says whether the tag
    /// verified (on failure the data is left unusable and must be dropped).
    pub fn open_many(&self, jobs: &mut [AeadJob<'_>]) {
        if let Some(k) = self.gcm_mb.as_ref().filter(|_| gcm_fast()) {
            for j in jobs.iter_mut() {
                let nonce = self.nonce(&j.explicit_iv);
                j.ok = k.open(&nonce, &j.aad[..j.aad_len], j.data, &j.tag);
            }
            return;
        }
        for j in jobs.iter_mut() {
            let nonce = self.nonce(&j.explicit_iv);
            let aad = &j.aad[..j.aad_len];
            let tag = j.tag.into();
            j.ok = match &self.cipher {
                CipherState::Gcm128(k) => k
                    .decrypt_inout_detached(&nonce.into(), aad, (&mut *j.data).into(), &tag)
                    .is_ok(),
                CipherState::Gcm256(k) => k
                    .decrypt_inout_detached(&nonce.into(), aad, (&mut *j.data).into(), &tag)
                    .is_ok(),
                _ => false,
            };
        }
    }
}

/// Constant-time equality of two byte strings of the same length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    core::hint::black_box(d) == 0
}

#[cfg(test)]
mod tests;
