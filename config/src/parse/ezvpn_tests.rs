//! Easy VPN client lines as IOS writes them.

use super::*;

use super::tests::{assert_errors, ip, parse_ok as ok};

/// The lab's Easy VPN client (R2 in network-extension mode).
pub(crate) const EZVPN_CLIENT: &str = include_str!("../../../deploy/configs/r2-ezvpn-client.conf");

#[test]
fn easy_vpn_client_parses_as_ios_writes_it() {
    let p = ok(EZVPN_CLIENT);
    let c = &p.config.ezvpn_clients["ez"];
    assert_eq!(c.connect, EzvpnConnect::Auto);
    assert_eq!(c.mode, EzvpnMode::NetworkExtension);
    let (g, k) = c.group.as_ref().unwrap();
    assert_eq!(g, "vpngroup");
    assert_eq!(k.expose_secret(), b"grouPkey");
    assert_eq!(c.peers, vec![ip("172.16.172.10")]);
    let (u, pw) = c.xauth.as_ref().unwrap();
    assert_eq!(u, "alice");
    assert_eq!(pw.expose_secret(), b"wonderland");
    assert_eq!(c.outside, vec!["Ethernet1/0".to_string()]);
    assert_eq!(c.inside, vec!["Ethernet0/0".to_string()]);
    assert_eq!(c.line, 9);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn connect_manual_unindented_paste_and_negation() {
    let p = ok("crypto ipsec client ezvpn r\nconnect manual\ngroup g key 0 two words\npeer 192.0.2.1\npeer 192.0.2.2 default\nno peer 192.0.2.1\nxauth userid mode interactive\n\
interface in0\n ip address 10.0.0.1 255.255.255.0\ncrypto ipsec client ezvpn r inside\ninterface out0\n crypto ipsec client ezvpn r outside\n");
    let c = &p.config.ezvpn_clients["r"];
    assert_eq!(c.connect, EzvpnConnect::Manual);
    assert_eq!(c.group.as_ref().unwrap().1.expose_secret(), b"two words");
    assert_eq!(c.peers, vec![ip("192.0.2.2")]);
    assert!(c.xauth.is_none());
    assert_eq!(c.inside, vec!["in0".to_string()]);
    assert_eq!(c.outside, vec!["out0".to_string()]);
    let w: Vec<_> = p.warnings.iter().filter(|w| w.line != 0).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].line, 7);
}

#[test]
fn ezvpn_error_messages() {
    assert_errors(&[
        (
            "crypto ipsec client ezvpn",
            "line 1: crypto ipsec client ezvpn: expected a tunnel name, got end of line",
        ),
        (
            "crypto ipsec client vpn x",
            r#"line 1: crypto ipsec client: expected ezvpn, got "vpn""#,
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n group g\n peer 1.2.3.4",
            "line 3: group: expected key, got end of line",
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n group g key\n peer 1.2.3.4",
            "line 3: group: expected a group key, got end of line",
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n connect sometimes\n peer 1.2.3.4",
            r#"line 3: connect: expected auto|manual, got "sometimes""#,
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n mode client\n peer 1.2.3.4",
            "line 3: mode: mode client (needs NAT of the inside network; use mode network-extension) is not supported",
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n peer 1.2.3.999\n peer 1.2.3.4",
            r#"line 3: peer: expected an IPv4 address, got "1.2.3.999""#,
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n peer 1.2.3.4 backup\n peer 1.2.3.4",
            r#"line 3: peer: expected end of line, got "backup""#,
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n peer 1.2.3.4\n username u pass p",
            r#"line 4: username: expected password, got "pass""#,
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n peer 1.2.3.4\n username u password",
            "line 4: username: expected a password, got end of line",
        ),
        (
            "crypto ipsec client ezvpn x\n peer 1.2.3.4",
            "line 1: crypto ipsec client ezvpn x: needs group G key K",
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k",
            "line 1: crypto ipsec client ezvpn x: needs peer A",
        ),
        (
            "interface out0\n crypto ipsec client ezvpn nope",
            r#"line 2: crypto ipsec client ezvpn: ezvpn client "nope" is not defined"#,
        ),
        (
            "crypto ipsec client ezvpn x\n group g key k\n peer 1.2.3.4\ninterface out0\n crypto ipsec client ezvpn x insider",
            r#"line 5: crypto ipsec client ezvpn: expected end of line, got "insider""#,
        ),
    ]);
}
