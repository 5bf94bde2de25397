//! What IKEv1 does with RSA keys (RFC 2409 §5.1, §5.2).
//!
//! - Signatures (rsa-sig): SKEYID = prf(Ni_b | Nr_b, g^xy); SIG_I / SIG_R are PKCS#1 v1.5
//!   signatures (block type 1) over HASH_I / HASH_R themselves, with no DigestInfo — as
//!   IOS and strongSwan sign them in IKEv1.
//! - Public-key encryption (rsa-encr): SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R); the
//!   nonce and ID payload bodies travel encrypted with the other side's public key, PKCS#1
//!   v1.5 (block type 2).
//!
//! Randomness for encryption padding comes from the caller's [`Random`] (the sans-IO core
//! has no ambient randomness); the private-key operations blind with the system RNG.

use std::convert::Infallible;

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, PrivateKey, PublicKey};

use crate::ike::crypto::{HashAlg, Random, Secret};

/// SKEYID for signatures: prf(Ni_b | Nr_b, g^xy).
pub fn skeyid_sig(prf: HashAlg, ni_b: &[u8], nr_b: &[u8], gxy: &[u8]) -> Secret {
    let mut key = Secret::new(Vec::with_capacity(ni_b.len() + nr_b.len()));
    key.extend_from_slice(ni_b);
    key.extend_from_slice(nr_b);
    prf.prf(&key, &[gxy])
}

/// SKEYID for public-key encryption: prf(hash(Ni_b | Nr_b), CKY-I | CKY-R).
pub fn skeyid_encr(prf: HashAlg, ni_b: &[u8], nr_b: &[u8], cky_i: &[u8], cky_r: &[u8]) -> Secret {
    let key = Secret::new(prf.hash(&[ni_b, nr_b]));
    prf.prf(&key, &[cky_i, cky_r])
}

/// Why a private-key operation failed (a key too small for the hash, nothing else).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RSA operation failed: {0}")]
pub struct RsaOpError(String);

/// SIG_I / SIG_R: PKCS#1 v1.5 over `hash` (no DigestInfo), as long as the modulus.
pub fn sign_hash(key: &PrivateKey, hash: &[u8]) -> Result<Vec<u8>, RsaOpError> {
    key.sign(Pkcs1v15Sign::new_unprefixed(), hash)
        .map_err(|e| RsaOpError(e.to_string()))
}

/// Whether `sig` is `key`'s signature over `hash` (constant-time in the comparison the
/// `rsa` crate does; a signature of the wrong length is simply false).
pub fn verify_hash(key: &PublicKey, hash: &[u8], sig: &[u8]) -> bool {
    sig.len() == key.size()
        && key
            .verify(Pkcs1v15Sign::new_unprefixed(), hash, sig)
            .is_ok()
}

/// The protocol core's [`Random`] as the `rsa` crate's RNG.
struct CoreRng<'a>(&'a mut dyn Random);

impl rsa::rand_core::TryRng for CoreRng<'_> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_be_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}
impl rsa::rand_core::TryCryptoRng for CoreRng<'_> {}

/// `<data>PubKey`: PKCS#1 v1.5 encryption of a payload body.
pub fn encrypt_body(
    key: &PublicKey,
    rng: &mut dyn Random,
    body: &[u8],
) -> Result<Vec<u8>, RsaOpError> {
    key.encrypt(&mut CoreRng(rng), Pkcs1v15Encrypt, body)
        .map_err(|e| RsaOpError(e.to_string()))
}

/// The body of an encrypted payload, decrypted. A wrong padding does not fail here (the
/// `rsa` crate rejects implicitly, returning unrelated bytes): the HASH check that
/// follows fails instead, so a padding oracle learns nothing.
pub fn decrypt_body(key: &PrivateKey, ct: &[u8]) -> Result<Secret, RsaOpError> {
    if ct.len() != key.size() {
        return Err(RsaOpError(format!(
            "ciphertext is {} bytes, the key's modulus {}",
            ct.len(),
            key.size()
        )));
    }
    key.decrypt(Pkcs1v15Encrypt, ct)
        .map(Secret::new)
        .map_err(|e| RsaOpError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::store::parse_private_key;

    fn key(name: &str) -> PrivateKey {
        let p = format!("{}/src/pki/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        parse_private_key(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    struct Counter(u8);
    impl Random for Counter {
        fn fill(&mut self, b: &mut [u8]) {
            for x in b {
                self.0 = self.0.wrapping_add(1) | 1;
                *x = self.0;
            }
        }
    }

    #[test]
    fn signature_over_a_bare_hash_round_trips() {
        let k = key("r1.key");
        let h = HashAlg::Sha1.prf(b"k", &[b"m"]);
        let sig = sign_hash(&k, &h).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verify_hash(k.as_public_key(), &h, &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!verify_hash(k.as_public_key(), &h, &bad));
        assert!(!verify_hash(key("r2.key").as_public_key(), &h, &sig));
        assert!(!verify_hash(k.as_public_key(), &h, &sig[1..]));
        // PKCS#1 v1.5 signing is deterministic: 00 01 FF.. 00 HASH, raised to d.
        assert_eq!(sign_hash(&k, &h).unwrap(), sig);
    }

    #[test]
    fn encrypted_bodies_round_trip() {
        let k = key("r2.key");
        let ct = encrypt_body(k.as_public_key(), &mut Counter(0), b"nonce body").unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(&decrypt_body(&k, &ct).unwrap()[..], b"nonce body");
        assert!(decrypt_body(&k, &ct[1..]).is_err());
        // The wrong key: implicit rejection gives other bytes, not an error.
        let other = key("r1.key");
        assert_ne!(
            decrypt_body(&other, &ct).map(|s| s.to_vec()).ok(),
            Some(b"nonce body".to_vec())
        );
    }

    #[test]
    fn skeyids_by_definition() {
        let (ni, nr, gxy) = (b"ni", b"nr", b"gxy");
        assert_eq!(
            skeyid_sig(HashAlg::Md5, ni, nr, gxy),
            HashAlg::Md5.prf(b"ninr", &[gxy])
        );
        let h = HashAlg::Sha1.hash(&[b"ninr"]);
        assert_eq!(
            skeyid_encr(HashAlg::Sha1, ni, nr, b"ci", b"cr"),
            HashAlg::Sha1.prf(&h, &[b"cicr"])
        );
    }
}
