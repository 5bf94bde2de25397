//! Keys and certificates: the key store ([`store`]: RSA key pairs, mode 0600; imported
//! certificates and CRLs), X.509 certificates ([`cert`]), chain validation to a
//! trustpoint's CA and ID-to-certificate matching ([`validate`]), and what IKEv1 does with
//! RSA keys ([`ike`]: SKEYID for signatures and encrypted nonces, SIG_I/SIG_R, the
//! encrypted payloads of rsa-encr).
//!
//! Nothing here logs; private keys never leave [`store::KeyStore`] except as `rsa`
//! key values, which zeroize themselves when dropped.

pub mod cert;
pub mod credentials;
pub mod ike;
pub mod store;
pub mod validate;

#[cfg(test)]
mod kat;

pub use cert::{Cert, CertError};
pub use credentials::{Credentials, CredentialsError};
pub use store::{KeyStore, StoreError};
pub use validate::{ChainError, Crl, PeerIdentity, TrustAnchor};
