//! rsa-sig pieces shared by the certificate interop tests: the test PKI
//! (control/src/pki/testdata, gen.sh and gen4096.sh), R1's IOS configuration and
//! espgw-control started with a key store filled by the operator command itself.

use super::Espgw;
use espgw_lab::strongswan::Pubkey;
use espgw_lab::{IkeMode, Lab};
use std::path::{Path, PathBuf};

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/pki/testdata")
        .join(name)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ident {
    Address,
    Fqdn,
    Dn,
}

impl Ident {
    pub fn ios(self) -> &'static str {
        match self {
            Ident::Address => "address",
            Ident::Fqdn => "hostname",
            Ident::Dn => "dn",
        }
    }
    /// strongSwan's identity strings for R2 (local) and R1 (remote).
    pub fn swan(self) -> (&'static str, &'static str) {
        match self {
            Ident::Address => ("172.16.172.20", "172.16.172.10"),
            Ident::Fqdn => ("r2.lab.example", "r1.lab.example"),
            Ident::Dn => (
                "C=CH, O=espgw lab, CN=r2.lab.example",
                "C=CH, O=espgw lab, CN=r1.lab.example",
            ),
        }
    }
    /// The ID type name espgw's debug output prints.
    pub fn id_type(self) -> &'static str {
        match self {
            Ident::Address => "ID_IPV4_ADDR",
            Ident::Fqdn => "ID_FQDN",
            Ident::Dn => "ID_DER_ASN1_DN",
        }
    }
}

/// R1's side of an rsa-sig case.
#[derive(Clone, Debug)]
pub struct RsaConf {
    pub mode: IkeMode,
    pub aes: bool,
    pub ident: Ident,
    /// RSA key size of the PKI: 2048 (gen.sh) or 4096 (gen4096.sh).
    pub bits: u32,
    /// `crypto isakmp fragmentation`.
    pub fragmentation: bool,
    /// The trustpoint's `fqdn` (R1's ID_FQDN).
    pub fqdn: &'static str,
}

impl RsaConf {
    pub fn new(mode: IkeMode, aes: bool, ident: Ident, bits: u32) -> RsaConf {
        RsaConf {
            mode,
            aes,
            ident,
            bits,
            fragmentation: true,
            fqdn: "r1.lab.example",
        }
    }

    /// strongSwan's IKE and ESP proposals matching the policy.
    pub fn swan_proposals(&self) -> (&'static str, &'static str) {
        if self.aes {
            ("aes128-sha1-modp2048", "aes128-sha1")
        } else {
            ("3des-md5-modp1024", "3des-md5")
        }
    }

    /// Testdata file `stem` of this key size (`ca` → ca.pem or ca4096.pem, `r2` → r2.pem
    /// or r2-4096.pem).
    pub fn file(&self, stem: &str, ext: &str) -> PathBuf {
        match (self.bits, stem) {
            (2048, _) => testdata(&format!("{stem}.{ext}")),
            (4096, "ca") => testdata(&format!("ca4096.{ext}")),
            (4096, _) => testdata(&format!("{stem}-4096.{ext}")),
            (b, _) => panic!("no {b}-bit test PKI"),
        }
    }

    /// R2's credentials for strongSwan (the CA it trusts for R1 is the same).
    pub fn r2_pubkey(&self) -> Pubkey {
        let (local_id, remote_id) = self.ident.swan();
        Pubkey {
            cert: self.file("r2", "pem"),
            key: self.file("r2", "key"),
            ca: self.file("ca", "pem"),
            local_id: local_id.into(),
            remote_id: remote_id.into(),
        }
    }

    pub fn ios_config(&self) -> String {
        let (encr, hash, group, ts) = if self.aes {
            ("aes 128", "sha", 14, "esp-aes 128 esp-sha-hmac")
        } else {
            ("3des", "md5", 2, "esp-3des esp-md5-hmac")
        };
        let mut s = String::from("hostname R1\n!\n");
        s += &format!(
            "crypto pki trustpoint LAB\n enrollment terminal\n revocation-check crl\n rsakeypair LAB\n fqdn {}\n!\n",
            self.fqdn
        );
        s += &format!("crypto isakmp identity {}\n", self.ident.ios());
        if self.fragmentation {
            // strongSwan announces fragmentation (swanctl's default `fragmentation = yes`):
            // messages with certificates over 576 bytes go in fragments both ways.
            s += "crypto isakmp fragmentation\n";
        }
        s += &format!(
            "crypto isakmp policy 10\n encr {encr}\n hash {hash}\n authentication rsa-sig\n group {group}\n!\n"
        );
        if self.mode == IkeMode::Aggressive {
            s += "crypto isakmp peer address 172.16.172.20\n set aggressive-mode client-endpoint ipv4-address 172.16.172.10\n!\n";
        }
        s += &format!("crypto ipsec transform-set myset {ts}\n mode tunnel\n!\n");
        s += "crypto map vpn 10 ipsec-isakmp\n set peer 172.16.172.20\n set transform-set myset\n match address 101\n!\n";
        s += "interface Ethernet0/0\n ip address 10.1.1.1 255.255.255.0\n!\n";
        s += "interface Ethernet1/0\n ip address 172.16.172.10 255.255.255.240\n crypto map vpn\n!\n";
        s += "access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n!\nend\n";
        s
    }

    /// espgw-control as R1 with this configuration, its key store filled by the operator
    /// command (`espgw crypto pki import LAB pem CA CERT KEY CRL`); `sadb`: the SA database
    /// for espgw-dataplane (None: `--no-sadb`).
    pub fn start_espgw(&self, lab: &Lab, sadb: Option<&Path>) -> Espgw {
        let store = lab.dir().join("espgw-pki");
        let crl = match self.bits {
            4096 => testdata("ca4096.crl"),
            _ => testdata("ca.crl"),
        };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_espgw"))
            .arg("--key-store")
            .arg(&store)
            .args(["crypto", "pki", "import", "LAB", "pem"])
            .arg(self.file("ca", "pem"))
            .arg(self.file("r1", "pem"))
            .arg(self.file("r1", "key"))
            .arg(crl)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = store.to_str().unwrap().to_string();
        let sadb_args: Vec<&str> = match sadb {
            Some(p) => vec!["--sadb", p.to_str().unwrap()],
            None => vec!["--no-sadb"],
        };
        let mut extra = sadb_args;
        extra.extend(["--key-store", store.as_str()]);
        Espgw::start_text(lab, &self.ios_config(), &extra)
    }
}
