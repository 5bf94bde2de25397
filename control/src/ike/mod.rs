//! IKEv1 protocol core: cryptography and the sans-IO state machines.
//!
//! - [`crypto`]: prf/hash (HMAC-MD5/SHA1/SHA256), SKEYID chain, Ka expansion (RFC 2409
//!   App. B), phase-1 and per-message-ID IVs, 3DES/AES-CBC, KEYMAT, MODP groups 1/2/5/14/15/16
//!   with constant-time exponentiation (crypto-bigint, fixed exponent width).
//! - [`endpoint`]: [`Endpoint`], every phase-1 (Main/Aggressive, PSK) and Quick Mode
//!   exchange of the gateway, informational (DELETE, INITIAL-CONTACT, DPD), NAT-T,
//!   retransmission, rekey, half-open bound; IOS `debug crypto isakmp|ipsec` lines. One
//!   module per exchange; inputs `(now, …)`, outputs polled; randomness through
//!   [`crypto::Random`].
//! - [`config`]: what the core is configured with; [`ios`] builds it from the IOS model.
//! - [`failure`]: why a negotiation failed ([`FailReason`]), counted per phase.
//! - [`syslog`]: the `%CRYPTO-…` system messages, as values the endpoint queues always.
//! - [`keylog`]: the `--keylog` line format (tshark UAT records) and its parser.
//!
//! States are types (rustls style): a phase-1 SA's state is an enum whose variants carry
//! what that state has, a handler consumes the old state and returns the next, and each
//! `Old State = X  New State = Y` debug line takes its IOS names ([`IosState`]) from the
//! state values.

pub mod config;
pub mod crypto;
pub mod endpoint;
pub mod ezvpn;
pub mod failure;
pub mod ios;
pub mod keylog;
pub mod latency;
pub mod pool;
pub mod remote;
pub mod syslog;
pub mod types;

pub use config::*;
pub use endpoint::{Endpoint, IkeError, IosState, ReconfigReport};
pub use failure::{FailReason, Failures};
pub use syslog::SyslogMessage;
pub use types::*;

#[cfg(test)]
mod tests;
