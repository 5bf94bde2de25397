//! Transaction Mode (exchange 6, "phase 1.5"): XAUTH and Mode Config as Cisco Easy VPN
//! runs them, sans-IO.
//!
//! - [`attributes`]: the attributes, typed, with typed errors.
//! - [`TxnCrypto`]: the protection of every Transaction Mode message: HASH = prf(SKEYID_a,
//!   M-ID | ATTR) as RFC 2409 §5.7 has it for informational and Quick Mode messages, CBC with
//!   its own IV chain per message ID (the first IV from hash(last phase-1 block | M-ID), then
//!   the last ciphertext block of the previous message with that ID). A message that fails
//!   to decrypt or verify does not move the IV.
//! - [`Server`]: the Easy VPN server's side. Server-initiated XAUTH (REQUEST → REPLY → SET
//!   status → ACK), a wrong password answered by a new REQUEST until the attempts are spent
//!   (then SET status FAIL), then Mode Config: *respond* (the client's REQUEST → our REPLY)
//!   or *initiate* (our SET → the client's ACK).
//! - [`Client`]: the client's side (the Easy VPN client, and the tests' peer).
//!
//! States are types: each state is a struct with what it has, the state enum names the IOS
//! state (`IKE_XAUTH_REQ_SENT` …) for the debug lines, and a handler consumes the state and
//! returns the next one.

pub mod attributes;
// The client's side: the Easy VPN client (`crypto ipsec client ezvpn`, [`ezclient`]) and
// the peer of the server in the tests.
mod client;
mod endpoint;
mod ezclient;
mod server;

#[cfg(test)]
use client::Client;
pub use client::ModeConfig;
pub use endpoint::{ClientSessionInfo, RemoteAccess, AUTH_XAUTH_INIT_PSK, VID_UNITY, VID_XAUTH};
pub use ezclient::{EzClients, EzvpnStatus};
pub use server::Server;
#[cfg(test)]
use server::{ServerCtx, ServerOut};

use super::phase1::{IsakmpKeys, P1Sa};
use super::quick::qm_hash;
use super::IkeError;
use crate::isakmp::*;
use std::collections::HashMap;

/// Our last Transaction Mode message that waits for an answer (an XAUTH REQUEST or SET, a
/// Mode Config REQUEST or SET), resent unchanged on the phase-1 schedule (IOS: every
/// 10 s, five times), then the phase-1 SA is given up. Any verified message from the peer
/// disarms it.
#[derive(Clone)]
pub struct TxnRetx {
    pub tx: crate::ike::types::Transmit,
    pub count: u32,
    pub at: std::time::Instant,
    /// The IOS state we wait in (for the debug line).
    pub state: &'static str,
}

/// What a due [`TxnRetx`] asks for.
pub enum RetxStep {
    Resend(crate::ike::types::Transmit, u32),
    GiveUp,
}

impl TxnRetx {
    pub fn arm(
        tx: crate::ike::types::Transmit,
        now: std::time::Instant,
        base: std::time::Duration,
        state: &'static str,
    ) -> TxnRetx {
        TxnRetx {
            tx,
            count: 0,
            at: now + base,
            state,
        }
    }
    /// Due at `now`: the resend (re-armed `base` later), or give up after `limit`.
    pub fn fire(
        &mut self,
        now: std::time::Instant,
        base: std::time::Duration,
        limit: u32,
    ) -> RetxStep {
        if self.count >= limit {
            return RetxStep::GiveUp;
        }
        self.count += 1;
        self.at = now + base;
        RetxStep::Resend(self.tx.clone(), self.count)
    }
}

/// One Transaction Mode message, decrypted and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMessage {
    pub mid: u32,
    pub attr: AttrPayload,
}

/// The IV chains of the Transaction Mode exchanges of one phase-1 SA, by message ID.
#[derive(Default)]
pub struct TxnCrypto {
    ivs: HashMap<u32, Vec<u8>>,
}

impl TxnCrypto {
    fn iv(&self, k: &IsakmpKeys, mid: u32) -> Vec<u8> {
        self.ivs
            .get(&mid)
            .cloned()
            .unwrap_or_else(|| k.phase2_iv(mid))
    }

    /// HASH | ATTR, encrypted under message ID `mid`; the IV of `mid` moves past it.
    pub fn seal(&mut self, k: &IsakmpKeys, sa: &P1Sa, mid: u32, attr: &AttrPayload) -> Vec<u8> {
        let body = Payload::Attr(attr.clone());
        let mut rb = Vec::new();
        emit_chain(std::slice::from_ref(&body), &mut rb);
        let h = qm_hash(k, mid, None, &rb);
        let iv = self.iv(k, mid);
        let (out, next) = k.seal(
            sa,
            &iv,
            ExchangeType::Transaction,
            mid,
            0,
            &[Payload::Hash(h), body],
        );
        self.ivs.insert(mid, next);
        out
    }

    /// Decrypts and verifies a Transaction Mode message: HASH first, then one ATTR payload.
    pub fn open(
        &mut self,
        k: &IsakmpKeys,
        hdr: &HeaderRepr,
        msg: &[u8],
    ) -> Result<TxnMessage, IkeError> {
        if !hdr.encrypted() {
            return Err(IkeError::Peer("Transaction Mode message in the clear"));
        }
        let body = msg.get(HEADER_LEN..).unwrap_or(&[]);
        let bl = k.neg.enc.block_len();
        if body.is_empty() || !body.len().is_multiple_of(bl) {
            return Err(WireError::BadCiphertext.into());
        }
        let mid = hdr.message_id;
        let iv = self.iv(k, mid);
        let mut pt = body.to_vec();
        k.neg.enc.cbc_decrypt(&k.ka, &iv, &mut pt);
        let ps = parse_chain(hdr.next_payload, &pt, true)?;
        let Some(Payload::Hash(h)) = ps.first() else {
            return Err(IkeError::Peer(
                "Transaction Mode message must start with HASH",
            ));
        };
        let start = GENERIC_LEN + h.len();
        let end = chain_len(&ps);
        if end > pt.len() || start > end {
            return Err(IkeError::Peer("chain"));
        }
        if qm_hash(k, mid, None, &pt[start..end]) != h[..] {
            return Err(IkeError::HashFailed);
        }
        let attr = ps
            .iter()
            .find_map(|p| match p {
                Payload::Attr(a) => Some(a.clone()),
                _ => None,
            })
            .ok_or(IkeError::Peer("Transaction Mode message without ATTR"))?;
        self.ivs.insert(mid, body[body.len() - bl..].to_vec());
        Ok(TxnMessage { mid, attr })
    }
}

/// The ISAKMP `cfg_type` name as IOS debug prints it.
pub fn cfg_type_name(t: u8) -> &'static str {
    match t {
        cfg_type::REQUEST => "REQUEST",
        cfg_type::REPLY => "REPLY",
        cfg_type::SET => "SET",
        cfg_type::ACK => "ACK",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests;
