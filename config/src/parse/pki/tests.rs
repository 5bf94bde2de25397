//! The public-key lines: a lab configuration with real certificates (made by strongSwan's
//! `pki`, see control/src/pki/testdata/gen.sh) and the errors of wrong lines.

use super::super::*;
use crate::pki::*;

const LAB: &str = include_str!("lab.conf");

fn parse(text: &str) -> Report {
    check_config(text, &InterfaceMap::default())
}

fn first_error(text: &str) -> String {
    match parse_config(text, &InterfaceMap::default()) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn lab_configuration_parses() {
    let r = parse(LAB);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let pki = &r.config.pki;
    assert_eq!(pki.identity, IsakmpIdentity::Dn);
    let tp = pki.trustpoint("LAB").unwrap();
    assert!(tp.enrollment_terminal);
    assert_eq!(tp.revocation_check, RevocationCheck::Crl);
    assert_eq!(tp.key_label(), "R1KEY");
    assert_eq!(tp.fqdn.as_deref(), Some("r1.lab.example"));
    assert_eq!(tp.ip_address, Some("172.16.172.10".parse().unwrap()));
    assert_eq!(
        tp.subject_name.as_deref(),
        Some("CN=r1.lab.example,O=espgw lab,C=CH")
    );
    let chain = pki.chain("LAB").unwrap();
    assert_eq!(chain.certificates.len(), 2);
    let (own, ca) = (&chain.certificates[0], &chain.certificates[1]);
    assert!(!own.ca && ca.ca);
    assert_eq!(own.serial, "35219C1D59F6446A");
    // The DER is the certificate file's, byte for byte.
    let pem = include_str!("../../../../control/src/pki/testdata/r1.pem");
    assert_eq!(own.der, pem_body(pem));
    assert_eq!(ca.der.len(), 812);
    let map = &pki.certificate_maps[0];
    assert_eq!((map.name.as_str(), map.seq), ("R2MAP", 10));
    assert_eq!(map.rules[0].value, "cn=r2.lab.example");
    assert_eq!(map.rules[1].value, "c=ch,o=espgw lab,cn=lab ca");
    assert_eq!(map.rules[1].field, CertField::IssuerName);
    assert_eq!(pki.pubkeys.len(), 2);
    let peer = "172.16.172.20".parse().unwrap();
    let k = pki.pubkey_for(peer, KeyUsage::Encryption).unwrap();
    assert_eq!(k.name, PubkeyName::Addressed(peer));
    assert_eq!(k.der.len(), 294);
    assert_eq!(pki.pubkeys[1].address, Some(peer));
    assert!(pki
        .pubkey_for("10.0.0.1".parse().unwrap(), KeyUsage::Encryption)
        .is_none());
}

/// The base64 body of a PEM file, decoded (a test helper; the product decodes PEM in the
/// control plane's key store).
fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in b64.bytes().filter(|&c| c != b'=') {
        let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn unindented_paste_still_belongs_to_its_blocks() {
    let text: String = LAB
        .lines()
        .map(|l| l.trim_start().to_string() + "\n")
        .collect();
    let r = parse(&text);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.config.pki, parse(LAB).config.pki);
}

#[test]
fn wrong_lines_get_line_and_reason() {
    let cases: &[(&str, &str)] = &[
        (
            "crypto pki trustpoint T\n revocation-check ocsp",
            r#"line 2: revocation-check: expected none|crl, got "ocsp""#,
        ),
        (
            "crypto pki trustpoint T\n enrollment url http://ca/",
            "line 2: enrollment: enrollment url http://ca/ (espgw enrolls by terminal: `espgw crypto pki import`) is not supported",
        ),
        (
            "crypto pki trustpoint T\n ip-address Ethernet0",
            r#"line 2: ip-address: expected an IPv4 address, got "Ethernet0""#,
        ),
        (
            "crypto pki trustpoint T\ncrypto pki certificate chain T\n certificate 01\n  3003 0102ZZ\n  quit",
            r#"line 4: certificate 01: expected hex digits in pairs, got "0102ZZ""#,
        ),
        (
            "crypto pki trustpoint T\ncrypto pki certificate chain T\n certificate 01\n  30040102\n  quit",
            "line 3: certificate 01: the block is 4 bytes but its DER header says 6",
        ),
        (
            "crypto pki certificate chain NOPE\n certificate ca 01\n  3000\n  quit",
            r#"line 1: crypto pki certificate chain: trustpoint "NOPE" is not defined"#,
        ),
        (
            "crypto pki trustpoint T\ncrypto pki certificate chain T\n 3000",
            r#"line 3: crypto pki certificate chain T: expected certificate [ca] SERIAL, got "3000""#,
        ),
        (
            "crypto pki trustpoint T\ncrypto pki certificate chain T\n certificate ca 01\n  3000\n  quit\n certificate ca 02\n  3000\n  quit",
            "line 6: certificate: trustpoint T already has a CA certificate",
        ),
        (
            "crypto pki certificate map M 10\n subject-name like cn=x",
            r#"line 2: subject-name: expected eq|ne|co|nc, got "like""#,
        ),
        (
            "crypto pki certificate map M\n",
            "line 1: crypto pki certificate map: expected a sequence number 1-65535, got end of line",
        ),
        (
            "crypto key pubkey-chain rsa\n addressed-key 10.0.0.1\n  key-string\n  30 02 01\n  quit",
            "line 2: addressed-key 10.0.0.1: key-string: the block is 3 bytes but its DER header says 4",
        ),
        (
            "crypto key pubkey-chain rsa\n key-string",
            r#"line 2: key-string: expected addressed-key|named-key first, got end of line"#,
        ),
        (
            "crypto key pubkey-chain rsa\n addressed-key 10.0.0.1 both",
            r#"line 2: addressed-key: expected encryption|signature, got "both""#,
        ),
        (
            "crypto key generate rsa general-keys label K modulus 2048",
            "line 1: crypto key generate: an exec command, not configuration: run `espgw crypto key generate rsa …` (keys live in the key store, never in the configuration)",
        ),
        (
            "crypto isakmp identity user-fqdn",
            r#"line 1: crypto isakmp identity: expected address|dn|hostname, got "user-fqdn""#,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&first_error(text), want, "{text}");
    }
}

#[test]
fn identities_and_defaults() {
    for (kw, id) in [
        ("address", IsakmpIdentity::Address),
        ("dn", IsakmpIdentity::Dn),
        ("hostname", IsakmpIdentity::Hostname),
    ] {
        let r = parse(&format!("crypto isakmp identity {kw}\n"));
        assert!(r.errors.is_empty());
        assert_eq!(r.config.pki.identity, id);
        assert_eq!(id.keyword(), kw);
    }
    let r = parse("crypto pki trustpoint T\n");
    let tp = r.config.pki.trustpoint("T").unwrap();
    // IOS defaults: CRL checking on, the trustpoint's own key name.
    assert_eq!(tp.revocation_check, RevocationCheck::Crl);
    assert_eq!(tp.key_label(), "T");
    assert_eq!(r.config.pki.identity, IsakmpIdentity::Address);
}

#[test]
fn broken_block_head_silences_its_lines() {
    // `certificate map` without a sequence number: its sub-lines are not reported again.
    let r = parse("crypto pki certificate map M\n subject-name co cn=x\n issuer-name junk\n");
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].line, 1);
}

#[test]
fn unknown_trustpoint_lines_are_warned_not_failed() {
    let r = parse("crypto pki trustpoint T\n serial-number none\n password x\n");
    assert!(r.errors.is_empty());
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert_eq!(r.warnings[0].line, 2);
}
