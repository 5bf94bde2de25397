//! Public-key configuration, the IOS way: `crypto pki trustpoint`, `crypto pki certificate
//! chain` (certificates as the hex blocks IOS keeps in its running configuration), `crypto
//! pki certificate map`, `crypto isakmp identity`, and `crypto key pubkey-chain rsa` (the
//! peers' public keys for rsa-encr).
//!
//! Private keys are never part of the configuration: `crypto key generate rsa` is an exec
//! command (`espgw crypto key generate rsa …`) that writes the key store. The configuration
//! only names a key pair (`rsakeypair LABEL`). Certificates here are DER bytes, checked to
//! be one DER SEQUENCE; their X.509 contents are checked where they are used (the control
//! plane's key store), which names the trustpoint and the certificate's serial.

use std::net::Ipv4Addr;

/// `crypto isakmp identity`: the phase-1 ID espgw sends. IOS default: `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsakmpIdentity {
    /// ID_IPV4_ADDR.
    #[default]
    Address,
    /// ID_DER_ASN1_DN: the subject of the router's certificate.
    Dn,
    /// ID_FQDN: the router's host name (`fqdn` of the trustpoint, else `hostname`).
    Hostname,
}

impl IsakmpIdentity {
    pub fn keyword(self) -> &'static str {
        match self {
            IsakmpIdentity::Address => "address",
            IsakmpIdentity::Dn => "dn",
            IsakmpIdentity::Hostname => "hostname",
        }
    }
}

/// `revocation-check` of a trustpoint. IOS default: `crl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RevocationCheck {
    None,
    /// The trustpoint's CRL (imported into the key store) must list no certificate of the
    /// chain; without a CRL the peer is refused, as IOS refuses when it cannot fetch one.
    #[default]
    Crl,
}

/// `crypto pki trustpoint NAME` and its sub-lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trustpoint {
    pub name: String,
    /// `enrollment terminal` (certificates pasted or imported, as espgw always does).
    pub enrollment_terminal: bool,
    /// `subject-name X.500-NAME` as written (`CN=R1,O=Lab`).
    pub subject_name: Option<String>,
    pub revocation_check: RevocationCheck,
    /// `rsakeypair LABEL`: the key pair of the key store this trustpoint's certificate
    /// certifies. Without it IOS uses the default key (the host name's); espgw uses the
    /// trustpoint's name.
    pub rsakeypair: Option<String>,
    /// `fqdn NAME`: the ID_FQDN espgw sends with `crypto isakmp identity hostname`.
    pub fqdn: Option<String>,
    /// `ip-address A`.
    pub ip_address: Option<Ipv4Addr>,
    pub line: usize,
}

impl Trustpoint {
    pub fn new(name: &str, line: usize) -> Self {
        Trustpoint {
            name: name.to_string(),
            enrollment_terminal: false,
            subject_name: None,
            revocation_check: RevocationCheck::default(),
            rsakeypair: None,
            fqdn: None,
            ip_address: None,
            line,
        }
    }

    /// The key-store label of this trustpoint's key pair.
    pub fn key_label(&self) -> &str {
        self.rsakeypair.as_deref().unwrap_or(&self.name)
    }
}

/// One `certificate [ca] SERIAL` block of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCertificate {
    /// The serial as IOS writes it (hex).
    pub serial: String,
    /// `certificate ca …`: the trustpoint's CA.
    pub ca: bool,
    /// The certificate, DER.
    pub der: Vec<u8>,
    pub line: usize,
}

/// `crypto pki certificate chain TRUSTPOINT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateChain {
    pub trustpoint: String,
    pub certificates: Vec<ChainCertificate>,
    pub line: usize,
}

/// Which name a certificate-map rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertField {
    SubjectName,
    IssuerName,
    AltSubjectName,
}

/// The comparison of a certificate-map rule (IOS: case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertMatchOp {
    Eq,
    Ne,
    /// contains
    Co,
    /// does not contain
    Nc,
}

/// One line of a certificate map: `subject-name co cn = r2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertMapRule {
    pub field: CertField,
    pub op: CertMatchOp,
    /// Lower-cased, as IOS stores it.
    pub value: String,
}

impl CertMapRule {
    /// Whether `text` (the field's value, e.g. a subject as `CN=R2,O=Lab`) satisfies it.
    pub fn matches(&self, text: &str) -> bool {
        let t = text.to_ascii_lowercase();
        let v = self.value.as_str();
        match self.op {
            CertMatchOp::Eq => t == v,
            CertMatchOp::Ne => t != v,
            CertMatchOp::Co => t.contains(v),
            CertMatchOp::Nc => !t.contains(v),
        }
    }
}

/// `crypto pki certificate map NAME SEQ`: every rule must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateMap {
    pub name: String,
    pub seq: u32,
    pub rules: Vec<CertMapRule>,
    pub line: usize,
}

/// Whom a `crypto key pubkey-chain rsa` key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PubkeyName {
    /// `addressed-key A`.
    Addressed(Ipv4Addr),
    /// `named-key NAME` (an ID_FQDN).
    Named(String),
}

/// `encryption` / `signature` after the key's name (none: both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyUsage {
    #[default]
    General,
    Encryption,
    Signature,
}

/// A peer's RSA public key (`key-string` block: SubjectPublicKeyInfo DER, in hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPublicKey {
    pub name: PubkeyName,
    pub usage: KeyUsage,
    /// `address A` under a named key.
    pub address: Option<Ipv4Addr>,
    pub der: Vec<u8>,
    pub line: usize,
}

impl PeerPublicKey {
    /// Whether this key is the one of the peer at `addr`.
    pub fn is_for(&self, addr: Ipv4Addr) -> bool {
        match self.name {
            PubkeyName::Addressed(a) => a == addr,
            PubkeyName::Named(_) => self.address == Some(addr),
        }
    }
}

/// Everything public-key the configuration holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PkiConfig {
    pub identity: IsakmpIdentity,
    /// In configuration order.
    pub trustpoints: Vec<Trustpoint>,
    pub chains: Vec<CertificateChain>,
    pub certificate_maps: Vec<CertificateMap>,
    pub pubkeys: Vec<PeerPublicKey>,
}

impl PkiConfig {
    pub fn trustpoint(&self, name: &str) -> Option<&Trustpoint> {
        self.trustpoints.iter().find(|t| t.name == name)
    }
    pub fn chain(&self, trustpoint: &str) -> Option<&CertificateChain> {
        self.chains.iter().find(|c| c.trustpoint == trustpoint)
    }
    /// The public key of the peer at `addr` usable for `usage` (rsa-encr: encryption).
    pub fn pubkey_for(&self, addr: Ipv4Addr, usage: KeyUsage) -> Option<&PeerPublicKey> {
        self.pubkeys
            .iter()
            .find(|k| k.is_for(addr) && (k.usage == KeyUsage::General || k.usage == usage))
    }
}

/// Checks that `der` is exactly one DER SEQUENCE (tag 0x30, definite length covering the
/// rest); the reason if not.
pub fn check_der_sequence(der: &[u8]) -> Result<(), String> {
    if der.is_empty() {
        return Err("the block is empty".into());
    }
    if der[0] != 0x30 {
        return Err(format!(
            "the block does not start with a DER SEQUENCE (tag {:#04x})",
            der[0]
        ));
    }
    let (len, hdr) = match der.get(1) {
        None => return Err("the block ends inside its DER header".into()),
        Some(&b) if b < 0x80 => (b as usize, 2),
        Some(&b) => {
            let n = (b & 0x7f) as usize;
            if n == 0 || n > 4 || der.len() < 2 + n {
                return Err("the block has a malformed DER length".into());
            }
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | x as usize);
            (len, 2 + n)
        }
    };
    if hdr + len != der.len() {
        return Err(format!(
            "the block is {} bytes but its DER header says {}",
            der.len(),
            hdr + len
        ));
    }
    Ok(())
}

/// Hex as IOS prints it in running configurations: groups of 8 digits, 8 groups a line,
/// each line indented by `indent`.
pub fn ios_hex_lines(der: &[u8], indent: &str) -> Vec<String> {
    der.chunks(32)
        .map(|line| {
            let groups: Vec<String> = line
                .chunks(4)
                .map(|g| g.iter().map(|b| format!("{b:02X}")).collect())
                .collect();
            format!("{indent}{}", groups.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_sequence_check() {
        assert!(check_der_sequence(&[0x30, 0x03, 1, 2, 3]).is_ok());
        assert!(check_der_sequence(&[0x30, 0x81, 0x01, 9]).is_ok());
        assert_eq!(
            check_der_sequence(&[0x30, 0x04, 1, 2, 3]).unwrap_err(),
            "the block is 5 bytes but its DER header says 6"
        );
        assert!(check_der_sequence(&[0x31, 0x00]).is_err());
        assert!(check_der_sequence(&[0x30]).is_err());
        assert!(check_der_sequence(&[0x30, 0x85, 0, 0, 0, 0, 0]).is_err());
        assert!(check_der_sequence(&[]).is_err());
    }

    #[test]
    fn hex_lines_group_like_ios() {
        let der: Vec<u8> = (0u8..36).collect();
        let l = ios_hex_lines(&der, "  ");
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0],
            "  00010203 04050607 08090A0B 0C0D0E0F 10111213 14151617 18191A1B 1C1D1E1F"
        );
        assert_eq!(l[1], "  20212223");
    }

    #[test]
    fn certificate_map_rules() {
        let r = |op, v: &str| CertMapRule {
            field: CertField::SubjectName,
            op,
            value: v.into(),
        };
        assert!(r(CertMatchOp::Co, "cn=r2").matches("CN=R2,O=Lab"));
        assert!(!r(CertMatchOp::Nc, "cn=r2").matches("CN=R2,O=Lab"));
        assert!(r(CertMatchOp::Eq, "cn=r2,o=lab").matches("CN=R2,O=Lab"));
        assert!(r(CertMatchOp::Ne, "cn=r3").matches("CN=R2,O=Lab"));
    }
}
