//! What the IKE core authenticates with by public key: our RSA key, our certificate, the
//! trustpoints' CAs (with their CRLs), the identity we send, the peers' public keys for
//! rsa-encr — gathered from the configuration (trustpoints, certificate chains, pubkey
//! chain) and the key store (keys, imported certificates and CRLs).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use rsa::pkcs8::DecodePublicKey;
use rsa::{PrivateKey, PublicKey};

use super::cert::Cert;
use super::store::{KeyStore, StoreError};
use super::validate::TrustAnchor;
use crate::config::model::Config;
use crate::config::pki::{IsakmpIdentity, KeyUsage};

/// The credentials of one gateway. `Debug` shows no private material.
pub struct Credentials {
    pub key: PrivateKey,
    /// Our certificate (rsa-sig); None with only a pubkey chain (rsa-encr).
    pub cert: Option<Cert>,
    pub anchors: Vec<TrustAnchor>,
    pub identity: IsakmpIdentity,
    /// The ID_FQDN we send with `crypto isakmp identity hostname`.
    pub fqdn: Option<String>,
    /// rsa-encr: the peers' public keys by address (`addressed-key`, and `named-key` with
    /// an `address`), in configuration order.
    pub peer_keys: Vec<(Ipv4Addr, PublicKey)>,
    /// rsa-encr: the `named-key` keys by name (a responder finds the initiator's key by the
    /// ID_FQDN it decrypted).
    pub peer_names: Vec<(String, PublicKey)>,
    /// The wall clock certificates are checked against (the sans-IO core reads none).
    pub clock: fn() -> SystemTime,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &"<private>")
            .field("cert", &self.cert.as_ref().map(|c| c.subject()))
            .field(
                "anchors",
                &self
                    .anchors
                    .iter()
                    .map(|a| &a.trustpoint)
                    .collect::<Vec<_>>(),
            )
            .field("identity", &self.identity)
            .field("peer_keys", &self.peer_keys.len())
            .field("peer_names", &self.peer_names.len())
            .finish()
    }
}

impl Credentials {
    /// Whether rsa-sig can run: a certificate for our key and a CA to check peers with.
    pub fn can_sign(&self) -> bool {
        self.cert.is_some() && !self.anchors.is_empty()
    }

    /// Whether rsa-encr can run: our key pair and at least one peer's public key.
    pub fn can_encrypt(&self) -> bool {
        !self.peer_keys.is_empty() || !self.peer_names.is_empty()
    }

    /// All the keys the pubkey chain holds for the peer at `addr`, in configuration order.
    pub fn peer_keys_for(&self, addr: Ipv4Addr) -> Vec<&PublicKey> {
        self.peer_keys
            .iter()
            .filter(|(a, _)| *a == addr)
            .map(|(_, k)| k)
            .collect()
    }

    /// The `named-key` key called `name` (IOS compares host names without case).
    pub fn peer_named(&self, name: &str) -> Option<&PublicKey> {
        self.peer_names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| k)
    }

    pub fn peer_key(&self, addr: Ipv4Addr) -> Option<&PublicKey> {
        self.peer_keys
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, k)| k)
    }
}

/// Why the credentials could not be put together; each names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("trustpoint {trustpoint}: {source}")]
    Store {
        trustpoint: String,
        source: StoreError,
    },
    #[error("line {line}: certificate {serial} of trustpoint {trustpoint}: {reason}")]
    Chain {
        line: usize,
        serial: String,
        trustpoint: String,
        reason: String,
    },
    #[error("trustpoint {0}: no CA certificate (crypto pki certificate chain … certificate ca, or espgw crypto pki import)")]
    NoCa(String),
    #[error("trustpoint {trustpoint}: the router certificate (SN: {serial}) does not certify key pair {label}")]
    KeyMismatch {
        trustpoint: String,
        serial: String,
        label: String,
    },
    #[error("line {line}: pubkey-chain key: {reason}")]
    PeerKey { line: usize, reason: String },
    #[error("rsa-encr needs a key pair: configure a trustpoint with rsakeypair, or a hostname naming one")]
    NoKeyPair,
}

/// The credentials `cfg` describes, with keys and imported files from `store`; None when
/// the configuration has no trustpoint and no pubkey chain.
pub fn load(cfg: &Config, store: &KeyStore) -> Result<Option<Credentials>, CredentialsError> {
    let pki = &cfg.pki;
    if pki.trustpoints.is_empty() && pki.pubkeys.is_empty() {
        return Ok(None);
    }
    let mut anchors = Vec::new();
    let mut own: Option<(Cert, String, String)> = None;
    for tp in &pki.trustpoints {
        let st = |source| CredentialsError::Store {
            trustpoint: tp.name.clone(),
            source,
        };
        let files = store.trustpoint(&tp.name).map_err(st)?;
        let (mut ca, mut cert) = (files.ca, files.cert);
        if let Some(chain) = pki.chain(&tp.name) {
            for cc in &chain.certificates {
                let c = Cert::from_der(&cc.der).map_err(|e| CredentialsError::Chain {
                    line: cc.line,
                    serial: cc.serial.clone(),
                    trustpoint: tp.name.clone(),
                    reason: e.to_string(),
                })?;
                if cc.ca {
                    ca = Some(c);
                } else {
                    cert = Some(c);
                }
            }
        }
        let ca = ca.ok_or_else(|| CredentialsError::NoCa(tp.name.clone()))?;
        if let (Some(c), None) = (cert, &own) {
            own = Some((c, tp.key_label().to_string(), tp.name.clone()));
        }
        anchors.push(TrustAnchor {
            trustpoint: tp.name.clone(),
            ca,
            revocation: tp.revocation_check,
            crl: files.crl,
        });
    }
    let label = match (&own, pki.trustpoints.first(), &cfg.hostname) {
        (Some((_, l, _)), _, _) => l.clone(),
        (None, Some(tp), _) => tp.key_label().to_string(),
        (None, None, Some(h)) => h.clone(),
        (None, None, None) => return Err(CredentialsError::NoKeyPair),
    };
    let tp_name = own
        .as_ref()
        .map(|o| o.2.clone())
        .unwrap_or_else(|| label.clone());
    let key = store
        .load_key(&label)
        .map_err(|source| CredentialsError::Store {
            trustpoint: tp_name.clone(),
            source,
        })?;
    let cert = match own {
        Some((c, label, tp)) => {
            if c.public_key() != key.as_public_key() {
                return Err(CredentialsError::KeyMismatch {
                    trustpoint: tp,
                    serial: c.serial_hex(),
                    label,
                });
            }
            Some(c)
        }
        None => None,
    };
    let mut peer_keys = Vec::new();
    let mut peer_names = Vec::new();
    for k in &pki.pubkeys {
        if k.usage == KeyUsage::Signature {
            continue;
        }
        let pk = PublicKey::from_public_key_der(&k.der).map_err(|e| CredentialsError::PeerKey {
            line: k.line,
            reason: format!("not an RSA SubjectPublicKeyInfo ({e})"),
        })?;
        let addr = match (&k.name, k.address) {
            (crate::config::pki::PubkeyName::Addressed(a), _) => Some(*a),
            (crate::config::pki::PubkeyName::Named(n), a) => {
                peer_names.push((n.clone(), pk.clone()));
                a
            }
        };
        if let Some(a) = addr {
            peer_keys.push((a, pk));
        }
    }
    let fqdn = pki
        .trustpoints
        .iter()
        .find_map(|t| t.fqdn.clone())
        .or_else(|| cert.as_ref().and_then(|c| c.san_dns().into_iter().next()));
    Ok(Some(Credentials {
        key,
        cert,
        anchors,
        identity: pki.identity,
        fqdn,
        peer_keys,
        peer_names,
        clock: SystemTime::now,
    }))
}
