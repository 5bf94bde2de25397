//! IKEv1 cryptography (RFC 2409 §5, Appendix B): prf/hash, SKEYID chain, Ka expansion,
//! phase-1 and per-message-ID IVs, CBC payload encryption, KEYMAT, MODP Diffie-Hellman.
//!
//! Secrets live in [`Secret`] (zeroized on drop). DH uses crypto-bigint's constant-time
//! Montgomery exponentiation with a fixed exponent width, so timing does not depend on the
//! private value.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use hmac::{Hmac, Mac};
use sha1::Digest;
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes, zeroized on drop.
pub type Secret = Zeroizing<Vec<u8>>;

/// Randomness for the protocol core (DESIGN §3: no ambient randomness in sans-IO code).
pub trait Random {
    fn fill(&mut self, buf: &mut [u8]);
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }
}

/// A `Random` from any rand 0.9 RNG.
pub struct RandRng<R>(pub R);
impl<R: rand::RngCore> Random for RandRng<R> {
    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf)
    }
}

/// Hash algorithm of a phase-1 policy (also the prf, as HMAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha256,
}

impl HashAlg {
    /// RFC 2409 Appendix A code.
    pub fn code(self) -> u16 {
        match self {
            HashAlg::Md5 => 1,
            HashAlg::Sha1 => 2,
            HashAlg::Sha256 => 4,
        }
    }
    pub fn from_code(c: u16) -> Option<Self> {
        match c {
            1 => Some(HashAlg::Md5),
            2 => Some(HashAlg::Sha1),
            4 => Some(HashAlg::Sha256),
            _ => None,
        }
    }
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }
    pub fn ios_name(self) -> &'static str {
        match self {
            HashAlg::Md5 => "MD5",
            HashAlg::Sha1 => "SHA",
            HashAlg::Sha256 => "SHA256",
        }
    }
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn h<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            HashAlg::Md5 => h::<md5::Md5>(parts),
            HashAlg::Sha1 => h::<sha1::Sha1>(parts),
            HashAlg::Sha256 => h::<sha2::Sha256>(parts),
        }
    }
    /// prf = HMAC with this hash.
    pub fn prf(self, key: &[u8], parts: &[&[u8]]) -> Secret {
        fn m<D: hmac::EagerHash>(key: &[u8], parts: &[&[u8]]) -> Vec<u8>
        where
            Hmac<D>: KeyInit + Mac,
        {
            let mut mac =
                <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                Mac::update(&mut mac, p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        Zeroizing::new(match self {
            HashAlg::Md5 => m::<md5::Md5>(key, parts),
            HashAlg::Sha1 => m::<sha1::Sha1>(key, parts),
            HashAlg::Sha256 => m::<sha2::Sha256>(key, parts),
        })
    }
}

/// Encryption algorithm for IKE payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncAlg {
    Des3,
    /// AES-CBC with key length in bits (128, 192, 256).
    Aes(u16),
}

impl EncAlg {
    pub fn code(self) -> u16 {
        match self {
            EncAlg::Des3 => 5,
            EncAlg::Aes(_) => 7,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            EncAlg::Des3 => 24,
            EncAlg::Aes(bits) => bits as usize / 8,
        }
    }
    pub fn block_len(self) -> usize {
        match self {
            EncAlg::Des3 => 8,
            EncAlg::Aes(_) => 16,
        }
    }
    pub fn ios_name(self) -> String {
        match self {
            EncAlg::Des3 => "3DES-CBC".into(),
            EncAlg::Aes(_) => "AES-CBC".into(),
        }
    }
    /// CBC-encrypts `data` (a multiple of the block length) in place.
    pub fn cbc_encrypt(self, key: &[u8], iv: &[u8], data: &mut [u8]) {
        match self {
            EncAlg::Des3 => cbc_enc::<des::TdesEde3>(key, iv, data),
            EncAlg::Aes(128) => cbc_enc::<aes::Aes128>(key, iv, data),
            EncAlg::Aes(192) => cbc_enc::<aes::Aes192>(key, iv, data),
            EncAlg::Aes(_) => cbc_enc::<aes::Aes256>(key, iv, data),
        }
    }
    /// CBC-decrypts `data` (a multiple of the block length) in place.
    pub fn cbc_decrypt(self, key: &[u8], iv: &[u8], data: &mut [u8]) {
        match self {
            EncAlg::Des3 => cbc_dec::<des::TdesEde3>(key, iv, data),
            EncAlg::Aes(128) => cbc_dec::<aes::Aes128>(key, iv, data),
            EncAlg::Aes(192) => cbc_dec::<aes::Aes192>(key, iv, data),
            EncAlg::Aes(_) => cbc_dec::<aes::Aes256>(key, iv, data),
        }
    }
}

fn cbc_enc<C: BlockCipherEncrypt + KeyInit>(key: &[u8], iv: &[u8], data: &mut [u8]) {
    let c = C::new_from_slice(key).expect("key length checked by caller");
    let bl = iv.len();
    let mut prev = iv.to_vec();
    for chunk in data.chunks_exact_mut(bl) {
        for (b, p) in chunk.iter_mut().zip(&prev) {
            *b ^= p;
        }
        let blk = aes::cipher::Block::<C>::try_from(&*chunk).expect("block length");
        let mut blk = blk;
        c.encrypt_block(&mut blk);
        chunk.copy_from_slice(&blk);
        prev.copy_from_slice(chunk);
    }
}

fn cbc_dec<C: BlockCipherDecrypt + KeyInit>(key: &[u8], iv: &[u8], data: &mut [u8]) {
    let c = C::new_from_slice(key).expect("key length checked by caller");
    let bl = iv.len();
    let mut prev = iv.to_vec();
    for chunk in data.chunks_exact_mut(bl) {
        let ct = chunk.to_vec();
        let mut blk = aes::cipher::Block::<C>::try_from(&*chunk).expect("block length");
        c.decrypt_block(&mut blk);
        for ((b, d), p) in chunk.iter_mut().zip(blk.iter()).zip(&prev) {
            *b = d ^ p;
        }
        prev = ct;
    }
}

/// SKEYID for pre-shared keys: prf(PSK, Ni_b | Nr_b).
pub fn skeyid_psk(prf: HashAlg, psk: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
    prf.prf(psk, &[ni, nr])
}

/// SKEYID_d, SKEYID_a, SKEYID_e.
pub struct SkeyIds {
    pub d: Secret,
    pub a: Secret,
    pub e: Secret,
}

pub fn derive_skeyids(
    prf: HashAlg,
    skeyid: &[u8],
    gxy: &[u8],
    cky_i: &[u8],
    cky_r: &[u8],
) -> SkeyIds {
    let d = prf.prf(skeyid, &[gxy, cky_i, cky_r, &[0]]);
    let a = prf.prf(skeyid, &[&d, gxy, cky_i, cky_r, &[1]]);
    let e = prf.prf(skeyid, &[&a, gxy, cky_i, cky_r, &[2]]);
    SkeyIds { d, a, e }
}

/// The encryption key Ka from SKEYID_e (RFC 2409 Appendix B expansion when too short).
pub fn encryption_key(prf: HashAlg, skeyid_e: &[u8], len: usize) -> Secret {
    if skeyid_e.len() >= len {
        return Zeroizing::new(skeyid_e[..len].to_vec());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + prf.len()));
    let mut k = prf.prf(skeyid_e, &[&[0u8]]);
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len {
            break;
        }
        k = prf.prf(skeyid_e, &[&k]);
    }
    out.truncate(len);
    out
}

/// Phase-1 IV: hash(g^xi | g^xr) truncated to the block length.
pub fn phase1_iv(hash: HashAlg, gxi: &[u8], gxr: &[u8], block: usize) -> Vec<u8> {
    let mut h = hash.hash(&[gxi, gxr]);
    h.truncate(block);
    h
}

/// IV of a phase-2/informational exchange: hash(last phase-1 CBC block | M-ID).
pub fn phase2_iv(hash: HashAlg, last_block: &[u8], mid: u32, block: usize) -> Vec<u8> {
    let mut h = hash.hash(&[last_block, &mid.to_be_bytes()]);
    h.truncate(block);
    h
}

/// KEYMAT (RFC 2409 §5.5) expanded to `len` bytes.
#[allow(clippy::too_many_arguments)]
pub fn keymat(
    prf: HashAlg,
    skeyid_d: &[u8],
    gqm: Option<&[u8]>,
    protocol: u8,
    spi: &[u8],
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Secret {
    let g = gqm.unwrap_or(&[]);
    let mut out = Zeroizing::new(Vec::with_capacity(len + prf.len()));
    let mut k = prf.prf(skeyid_d, &[g, &[protocol], spi, ni, nr]);
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len {
            break;
        }
        k = prf.prf(skeyid_d, &[&k, g, &[protocol], spi, ni, nr]);
    }
    out.truncate(len);
    out
}

/// MODP Diffie-Hellman groups (RFC 2409 §6, RFC 3526).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    Modp768,
    Modp1024,
    Modp1536,
    Modp2048,
    Modp3072,
    Modp4096,
}

/// Why a peer's public value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    #[error("public value has {0} bytes, expected {1}")]
    BadLength(usize, usize),
    #[error("public value out of range")]
    OutOfRange,
}

impl DhGroup {
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            1 => DhGroup::Modp768,
            2 => DhGroup::Modp1024,
            5 => DhGroup::Modp1536,
            14 => DhGroup::Modp2048,
            15 => DhGroup::Modp3072,
            16 => DhGroup::Modp4096,
            _ => return None,
        })
    }
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
        }
    }
    pub fn bits(self) -> u32 {
        match self {
            DhGroup::Modp768 => 768,
            DhGroup::Modp1024 => 1024,
            DhGroup::Modp1536 => 1536,
            DhGroup::Modp2048 => 2048,
            DhGroup::Modp3072 => 3072,
            DhGroup::Modp4096 => 4096,
        }
    }
    /// Length of public values and the shared secret in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        self.bits() as usize / 8
    }
    fn prime_hex(self) -> &'static str {
        match self {
            DhGroup::Modp768 => MODP_768,
            DhGroup::Modp1024 => MODP_1024,
            DhGroup::Modp1536 => MODP_1536,
            DhGroup::Modp2048 => MODP_2048,
            DhGroup::Modp3072 => MODP_3072,
            DhGroup::Modp4096 => MODP_4096,
        }
    }
    fn precision(self) -> u32 {
        // a multiple of the limb size that holds the modulus
        self.bits().div_ceil(64) * 64
    }
    fn params(self) -> BoxedMontyParams {
        let p = BoxedUint::from_be_hex(self.prime_hex(), self.precision()).expect("valid prime");
        BoxedMontyParams::new(Odd::new(p).expect("odd prime"))
    }
    /// Private exponent width in bits (twice the group's symmetric strength, at least 320).
    fn exp_bits(self) -> u32 {
        match self {
            DhGroup::Modp768 | DhGroup::Modp1024 | DhGroup::Modp1536 => 320,
            DhGroup::Modp2048 => 384,
            DhGroup::Modp3072 => 448,
            DhGroup::Modp4096 => 512,
        }
    }
    /// Generates a key pair.
    pub fn generate(self, rng: &mut dyn Random) -> DhKeyPair {
        let mut x = rng.bytes(self.exp_bits() as usize / 8);
        x[0] |= 0x80; // fixed bit length
        let public = self.pow(&BoxedUint::from(2u32), &x);
        DhKeyPair {
            group: self,
            private: Zeroizing::new(x),
            public,
        }
    }
    fn pow(self, base: &BoxedUint, exp: &[u8]) -> Vec<u8> {
        let params = self.params();
        let prec = self.precision();
        let b = if base.bits_precision() < prec {
            crypto_bigint::Resize::resize(base.clone(), prec)
        } else {
            base.clone()
        };
        let e =
            BoxedUint::from_be_slice(exp, (exp.len() as u32 * 8).div_ceil(64) * 64).expect("fits");
        let m = BoxedMontyForm::new(b, &params);
        let r = m.pow_bounded_exp(&e, self.exp_bits()).retrieve();
        let bytes = r.to_be_bytes();
        let mut out = vec![0u8; self.len()];
        let n = bytes.len().min(out.len());
        out[self.len() - n..].copy_from_slice(&bytes[bytes.len() - n..]);
        out
    }
}

/// Our half of a DH exchange.
pub struct DhKeyPair {
    pub group: DhGroup,
    private: Secret,
    /// g^x, padded to the modulus length.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhKeyPair({:?})", self.group)
    }
}

impl DhKeyPair {
    /// g^xy padded to the modulus length, after checking 1 < y < p-1.
    pub fn shared(&self, peer: &[u8]) -> Result<Secret, DhError> {
        let g = self.group;
        if peer.len() != g.len() {
            return Err(DhError::BadLength(peer.len(), g.len()));
        }
        let prec = g.precision();
        let y = BoxedUint::from_be_slice(peer, prec).map_err(|_| DhError::OutOfRange)?;
        let p = BoxedUint::from_be_hex(g.prime_hex(), prec).expect("valid prime");
        let one = BoxedUint::one_with_precision(prec);
        let pm1 = p.wrapping_sub(&one);
        if y <= one || y >= pm1 {
            return Err(DhError::OutOfRange);
        }
        let mut out = g.pow(&y, &self.private);
        let s = Zeroizing::new(out.clone());
        out.zeroize();
        Ok(s)
    }
}

const MODP_768: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3620FFFFFFFFFFFFFFFF";
const MODP_1024: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";
const MODP_1536: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF";
const MODP_2048: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";
const MODP_3072: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";
const MODP_4096: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D788719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA993B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF";

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vectors() -> Vec<std::collections::HashMap<String, String>> {
        let text = include_str!("testdata/ikev1-kdf.txt");
        let mut out = Vec::new();
        let mut cur = std::collections::HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.insert("section".to_string(), line.to_string());
            } else if let Some((k, v)) = line.split_once('=') {
                if !line.starts_with('#') {
                    cur.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
        out.push(cur);
        out
    }

    #[test]
    fn acvp_ikev1_psk_vector() {
        let v = &vectors()[0];
        assert!(v["section"].contains("pre-shared"));
        let ni = hex(&v["Ni"]);
        let nr = hex(&v["Nr"]);
        let skeyid = skeyid_psk(HashAlg::Sha1, &hex(&v["PSK"]), &ni, &nr);
        assert_eq!(*skeyid, hex(&v["SKEYID"]));
        let ids = assert_skeyid_chain(v, &skeyid);
        let ka = encryption_key(HashAlg::Sha1, &ids.e, 24);
        assert_eq!(*ka, hex(&v["Ka(3DES)"]));
    }

    #[test]
    fn acvp_ikev1_signature_vector_chain() {
        // Signature auth: SKEYID given; the d/a/e chain is the same.
        let v = &vectors()[1];
        assert_skeyid_chain(v, &hex(&v["SKEYID"]));
    }

    /// SKEYID_d/a/e from SKEYID and the vector's g^xy and cookies match the vector's.
    fn assert_skeyid_chain(
        v: &std::collections::HashMap<String, String>,
        skeyid: &[u8],
    ) -> SkeyIds {
        let ids = derive_skeyids(
            HashAlg::Sha1,
            skeyid,
            &hex(&v["g^xy"]),
            &hex(&v["CKY_I"]),
            &hex(&v["CKY_R"]),
        );
        assert_eq!(*ids.d, hex(&v["SKEYID_d"]));
        assert_eq!(*ids.a, hex(&v["SKEYID_a"]));
        assert_eq!(*ids.e, hex(&v["SKEYID_e"]));
        ids
    }

    #[test]
    fn hmac_rfc2202_vectors() {
        // RFC 2202 test case 2
        assert_eq!(
            *HashAlg::Md5.prf(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            hex("750c783e6ab0b503eaa86e310a5db738")
        );
        assert_eq!(
            *HashAlg::Sha1.prf(b"Jefe", &[b"what do ya want for nothing?"]),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        assert_eq!(
            *HashAlg::Sha256.prf(b"Jefe", &[b"what do ya want for nothing?"]),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn cbc_known_answer_and_round_trip() {
        // NIST SP 800-38A F.2.1 AES-128-CBC first block
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let mut d = hex("6bc1bee22e409f96e93d7e117393172a");
        EncAlg::Aes(128).cbc_encrypt(&key, &iv, &mut d);
        assert_eq!(d, hex("7649abac8119b246cee98e9b12e9197d"));
        EncAlg::Aes(128).cbc_decrypt(&key, &iv, &mut d);
        assert_eq!(d, hex("6bc1bee22e409f96e93d7e117393172a"));
        let k3 = [7u8; 24];
        let mut d = vec![1u8; 32];
        EncAlg::Des3.cbc_encrypt(&k3, &[9; 8], &mut d);
        assert_ne!(d, vec![1u8; 32]);
        EncAlg::Des3.cbc_decrypt(&k3, &[9; 8], &mut d);
        assert_eq!(d, vec![1u8; 32]);
    }

    struct Counter(u8);
    impl Random for Counter {
        fn fill(&mut self, b: &mut [u8]) {
            for x in b {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *x = self.0;
            }
        }
    }

    #[test]
    fn dh_agreement_all_groups() {
        let mut r = Counter(1);
        for id in [1, 2, 5, 14, 15, 16] {
            let g = DhGroup::from_id(id).unwrap();
            let a = g.generate(&mut r);
            let b = g.generate(&mut r);
            assert_eq!(a.public.len(), g.len());
            let s1 = a.shared(&b.public).unwrap();
            let s2 = b.shared(&a.public).unwrap();
            assert_eq!(*s1, *s2, "group {id}");
            assert_eq!(s1.len(), g.len());
            assert!(a.shared(&vec![0u8; g.len()]).is_err());
            assert!(a.shared(&[1u8; 3]).is_err());
        }
    }

    #[test]
    fn dh_small_known_answer() {
        // 2^x mod p for x = 2^319 (the top bit only): compare against the square chain.
        struct Fixed;
        impl Random for Fixed {
            fn fill(&mut self, b: &mut [u8]) {
                b.fill(0)
            }
        }
        let kp = DhGroup::Modp768.generate(&mut Fixed);
        // 2^(2^319) mod p: recompute by repeated squaring of 2 with the same arithmetic
        let mut v = vec![0u8; 96];
        v[95] = 2;
        let other = DhGroup::Modp768;
        let params = other.params();
        let mut m = BoxedMontyForm::new(BoxedUint::from_be_slice(&v, 768).unwrap(), &params);
        for _ in 0..319 {
            m = m.square();
        }
        let expect = m.retrieve().to_be_bytes().to_vec();
        assert_eq!(kp.public, expect);
    }

    #[test]
    fn keymat_expands_by_chaining() {
        let k = keymat(HashAlg::Md5, b"d", None, 3, &[1, 2, 3, 4], b"ni", b"nr", 40);
        assert_eq!(k.len(), 40);
        let k1 = HashAlg::Md5.prf(b"d", &[&[3], &[1, 2, 3, 4], b"ni", b"nr"]);
        let k2 = HashAlg::Md5.prf(b"d", &[&k1, &[3], &[1, 2, 3, 4], b"ni", b"nr"]);
        assert_eq!(&k[..16], &k1[..]);
        assert_eq!(&k[16..32], &k2[..]);
    }
}
