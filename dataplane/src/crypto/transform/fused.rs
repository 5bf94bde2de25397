//! One packet encrypted and authenticated in one pass, where a lone packet's CBC chain
//! leaves the core idle most of the time: 3DES-CBC on the latency path with HMAC-MD5 run
//! eight steps beside each DES block, over the ciphertext already written. The result is
//! byte for byte what [`SaCrypto::encrypt_many`] then [`SaCrypto::icv_many`] give.

use super::{AuthState, CipherState, SaCrypto, MAX_ICV_LEN};
use crate::crypto::md5mb::HmacMd5Feed;
use crate::crypto::tdes;
use core::ops::Range;

impl SaCrypto {
    /// Whether [`SaCrypto::encrypt_icv_one`] has a fused path for this transform.
    pub fn has_fused_one(&self) -> bool {
        matches!(
            (&self.cipher, &self.auth),
            (CipherState::Tdes(_), AuthState::Md5(_))
        )
    }

    /// Encrypts `msg[ct]` in place (its IV the 8 bytes before `ct`) and returns the ICV
    /// over all of `msg` (ESP header ‖ IV ‖ ciphertext [‖ ESN high bits]), or `None`,
    /// touching nothing, where the transform has no fused path or `ct` is not whole
    /// blocks after an IV inside `msg`.
    pub fn encrypt_icv_one(&self, msg: &mut [u8], ct: Range<usize>) -> Option<[u8; MAX_ICV_LEN]> {
        let (CipherState::Tdes(k), AuthState::Md5(m)) = (&self.cipher, &self.auth) else {
            return None;
        };
        if ct.start < 8 || ct.end > msg.len() || ct.start > ct.end || !ct.len().is_multiple_of(8) {
            return None;
        }
        let mut iv = [0u8; 8];
        iv.copy_from_slice(&msg[ct.start - 8..ct.start]);
        let mut feed = HmacMd5Feed::new(m);
        tdes::cbc_encrypt_one_with(k, iv, msg, ct, |b, ready| feed.tick(b, ready));
        let mac = feed.finish(msg);
        let mut icv = [0u8; MAX_ICV_LEN];
        icv[..12].copy_from_slice(&mac[..12]);
        Some(icv)
    }
}
