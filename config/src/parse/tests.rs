use super::*;
use proptest::prelude::*;

pub(super) fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn lab_map() -> InterfaceMap {
    InterfaceMap::parse("Ethernet0/0=in0,Ethernet1/0=out0").unwrap()
}

use crate::slides::{SLIDES_R1, SLIDES_R2};

pub(super) fn parse_ok(text: &str) -> Parsed {
    match parse_config(text, &lab_map()) {
        Ok(p) => p,
        Err(e) => panic!("unexpected error: {e}\n---\n{text}"),
    }
}

fn parse_plain(text: &str) -> Parsed {
    parse_config(text, &InterfaceMap::default()).unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn err(text: &str) -> String {
    match parse_config(text, &lab_map()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn slides_r1_parses_as_written() {
    let p = parse_ok(SLIDES_R1);
    assert!(p.warnings.is_empty(), "warnings: {:?}", p.warnings);
    let c = &p.config;

    let pol: Vec<_> = c.proposals().collect();
    assert_eq!(pol.len(), 1);
    assert_eq!(
        *pol[0],
        IsakmpPolicy {
            priority: 1,
            encryption: IkeEncryption::TripleDes,
            hash: IkeHash::Sha,
            auth: IkeAuth::PreShare,
            group: DhGroup::Group1,
            lifetime_secs: 86400,
        }
    );

    let key = c.psk_for_address(ip("172.16.172.20")).expect("key for R2");
    assert_eq!(key.key.expose_secret(), b"C!scO");
    assert_eq!(key.line, 4);
    assert!(c.psk_for_address(ip("172.16.172.21")).is_none());

    let ts = &c.transform_sets["myset"];
    assert_eq!(ts.transform, "esp-3des esp-md5-hmac");
    assert_eq!(ts.encryption, EspEncryption::TripleDes);
    assert_eq!(ts.auth, Some(EspAuth::Md5Hmac));
    assert_eq!(ts.mode, IpsecMode::Tunnel);

    let r = c
        .map_entry_for_peer(ip("172.16.172.20"))
        .expect("map entry");
    assert_eq!((r.map_name(), r.seq()), ("vpn", 10));
    assert_eq!(r.entry.transform_sets, vec!["myset".to_string()]);
    assert_eq!(r.entry.match_address.as_deref(), Some("101"));
    assert_eq!(r.entry.pfs, None);
    assert_eq!(
        c.lifetime_for(r.entry),
        SaLifetime {
            seconds: 3600,
            kilobytes: 4_608_000
        }
    );
    assert_eq!(c.replay_window, 64);

    let pairs: Vec<_> = c
        .proxy_pairs(r.entry)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        pairs[0].local.to_string(),
        "10.1.1.0/255.255.255.0/0/0 (type=4)"
    );
    assert_eq!(
        pairs[0].remote.to_string(),
        "10.1.2.0/255.255.255.0/0/0 (type=4)"
    );

    let out = c.interface_for_map("vpn").unwrap();
    assert_eq!(out.name, "Ethernet1/0");
    assert_eq!(out.linux_name.as_deref(), Some("out0"));
    assert_eq!(c.local_address_for_map("vpn"), Some(ip("172.16.172.10")));
    let inside = c.interface_for_address(ip("10.1.1.2")).unwrap();
    assert_eq!(inside.linux_name.as_deref(), Some("in0"));
    assert_eq!(c.acl_for(r.entry).unwrap().entries[0].line, 19);
}

#[test]
fn slides_r2_parses_and_mirrors_r1() {
    let p = parse_ok(SLIDES_R2);
    assert!(p.warnings.is_empty(), "warnings: {:?}", p.warnings);
    let c = &p.config;
    let r = c.map_entry_for_peer(ip("172.16.172.10")).unwrap();
    let pair = c.proxy_pairs(r.entry)[0].clone().unwrap();
    assert_eq!(pair.local.addr, ip("10.1.2.0"));
    assert_eq!(pair.remote.addr, ip("10.1.1.0"));
    assert_eq!(c.local_address_for_map("vpn"), Some(ip("172.16.172.20")));
    // R2 as responder finds the entry for what R1 proposes (R1's local is 10.1.1.0/24).
    let r1 = parse_ok(SLIDES_R1).config;
    let r1_pair = r1.proxy_pairs(r1.map_entry("vpn", 10).unwrap().entry)[0]
        .clone()
        .unwrap();
    let (found, ours) = c
        .map_entry_for_proxies(ip("172.16.172.10"), &r1_pair.local, &r1_pair.remote)
        .expect("R2 accepts R1's proxies");
    assert_eq!(found.seq(), 10);
    assert_eq!(ours, pair);
    assert!(c
        .map_entry_for_proxies(ip("172.16.172.99"), &r1_pair.local, &r1_pair.remote)
        .is_none());
}

#[test]
fn deploy_configs_parse_cleanly() {
    for (name, text) in [
        ("r1.conf", include_str!("../../../deploy/configs/r1.conf")),
        ("r2.conf", include_str!("../../../deploy/configs/r2.conf")),
        (
            "r1-aes-pfs.conf",
            include_str!("../../../deploy/configs/r1-aes-pfs.conf"),
        ),
        (
            "r1-am.conf",
            include_str!("../../../deploy/configs/r1-am.conf"),
        ),
    ] {
        let p = parse_config(text, &lab_map()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let skipped: Vec<_> = p
            .warnings
            .iter()
            .filter(|w| !w.message.starts_with("skipped"))
            .collect();
        assert!(skipped.is_empty(), "{name}: {skipped:?}");
        assert!(p.config.map_entry("vpn", 10).is_some(), "{name}");
    }
}

#[test]
fn full_feature_config() {
    let text = "\
hostname R1
crypto isakmp policy 20
 encryption aes 256
 hash sha256
 authentication pre-share
 group 14
 lifetime 3600
crypto isakmp policy 10
 encr aes
 hash md5
 authentication pre-share
 group 2
crypto isakmp key 0 s3cret address 0.0.0.0 0.0.0.0 no-xauth
crypto isakmp key host address 172.16.172.20
crypto isakmp key net address 172.16.172.16 255.255.255.240
crypto isakmp key name hostname r2.example
crypto isakmp keepalive 10 3 periodic
crypto isakmp nat keepalive 20
crypto ipsec security-association lifetime seconds 60
crypto ipsec security-association lifetime kilobytes 10000
crypto ipsec security-association replay window-size 1024
crypto ipsec transform-set aes esp-aes 256 esp-sha-hmac
 mode transport
crypto ipsec transform-set gcm esp-gcm 256
crypto ipsec transform-set myset esp-3des esp-md5-hmac
crypto map vpn local-address Ethernet1/0
crypto map vpn 20 ipsec-isakmp
 description second
 set peer 172.16.172.30
 set peer 172.16.172.31
 set transform-set aes gcm myset
 match address CRYPTO
 set pfs group14
 set security-association lifetime seconds 120
crypto map vpn 10
 set peer 172.16.172.20
 set transform-set myset
 match address 101
 set pfs
 set security-association lifetime kilobytes 5000
ip access-list extended CRYPTO
 remark tunnel traffic
 10 deny tcp any any eq telnet
 20 permit tcp host 10.1.1.5 eq www 10.9.0.0 0.0.255.255 range 1000 2000 log
 permit udp any gt 1023 10.9.0.0 0.0.255.255 eq non500-isakmp
 permit icmp 10.1.1.0 0.0.0.255 any echo
 permit 50 any any
 permit gre any any
access-list 101 remark slides
access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255
interface Ethernet1/0
 description outside
 ip address 172.16.172.10 255.255.255.240
 no shutdown
 crypto map vpn
interface out9
 ip address 192.0.2.1 255.255.255.0
 shutdown
end
";
    let p = parse_ok(text);
    let c = &p.config;
    assert_eq!(c.hostname.as_deref(), Some("R1"));
    let prios: Vec<u16> = c.proposals().map(|p| p.priority).collect();
    assert_eq!(prios, vec![10, 20]);
    let p10 = &c.isakmp_policies[&10];
    assert_eq!(p10.encryption, IkeEncryption::Aes(AesKeySize::K128));
    assert_eq!(
        (p10.hash, p10.group, p10.lifetime_secs),
        (IkeHash::Md5, DhGroup::Group2, 86400)
    );
    let p20 = &c.isakmp_policies[&20];
    assert_eq!(p20.encryption, IkeEncryption::Aes(AesKeySize::K256));
    assert_eq!(
        (p20.hash, p20.group, p20.lifetime_secs),
        (IkeHash::Sha256, DhGroup::Group14, 3600)
    );

    let k = |a: &str| {
        c.psk_for_address(ip(a))
            .map(|k| k.key.expose_secret().to_vec())
    };
    assert_eq!(k("172.16.172.20").unwrap(), b"host");
    assert_eq!(k("172.16.172.17").unwrap(), b"net");
    assert_eq!(k("198.51.100.1").unwrap(), b"s3cret");
    assert!(
        c.isakmp_keys
            .iter()
            .find(|k| k.key.expose_secret() == b"s3cret")
            .unwrap()
            .no_xauth
    );
    assert_eq!(
        c.psk_for_hostname("R2.example")
            .unwrap()
            .key
            .expose_secret(),
        b"name"
    );

    assert_eq!(
        c.keepalive,
        Some(Keepalive {
            interval_secs: 10,
            retry_secs: 3,
            mode: DpdMode::Periodic
        })
    );
    assert_eq!(c.nat_keepalive_secs, Some(20));
    assert_eq!(
        c.ipsec_sa_lifetime,
        SaLifetime {
            seconds: 60,
            kilobytes: 10000
        }
    );
    assert_eq!(c.replay_window, 1024);

    let aes = &c.transform_sets["aes"];
    assert_eq!(aes.transform, "esp-aes 256 esp-sha-hmac");
    assert_eq!(aes.encryption, EspEncryption::Aes(AesKeySize::K256));
    assert_eq!(aes.mode, IpsecMode::Transport);
    assert_eq!(
        c.transform_sets["gcm"].encryption,
        EspEncryption::Gcm(AesKeySize::K256)
    );
    assert_eq!(c.transform_sets["gcm"].auth, None);

    let e20 = c.map_entry("vpn", 20).unwrap().entry;
    assert_eq!(e20.peers, vec![ip("172.16.172.30"), ip("172.16.172.31")]);
    let names: Vec<_> = c
        .transform_sets_for(e20)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, vec!["aes", "gcm", "myset"]);
    assert_eq!(e20.pfs, Some(DhGroup::Group14));
    assert_eq!(
        c.lifetime_for(e20),
        SaLifetime {
            seconds: 120,
            kilobytes: 10000
        }
    );
    let e10 = c.map_entry("vpn", 10).unwrap().entry;
    assert_eq!(e10.pfs, Some(DhGroup::Group1));
    assert_eq!(
        c.lifetime_for(e10),
        SaLifetime {
            seconds: 60,
            kilobytes: 5000
        }
    );
    // Entries are kept in sequence order whatever the order of the text.
    let seqs: Vec<u32> = c.map_entries().map(|r| r.seq()).collect();
    assert_eq!(seqs, vec![10, 20]);
    assert_eq!(c.map_entry_for_peer(ip("172.16.172.31")).unwrap().seq(), 20);
    assert_eq!(c.local_address_for_map("vpn"), Some(ip("172.16.172.10")));

    let acl = &c.access_lists["CRYPTO"];
    assert_eq!(acl.kind, AclKind::Named);
    let texts: Vec<String> = acl.entries.iter().map(|e| e.ios_text()).collect();
    assert_eq!(
        texts,
        vec![
            "deny tcp any any eq telnet",
            "permit tcp host 10.1.1.5 eq www 10.9.0.0 0.0.255.255 range 1000 2000 log",
            "permit udp any gt 1023 10.9.0.0 0.0.255.255 eq non500-isakmp",
            "permit icmp 10.1.1.0 0.0.0.255 any echo",
            "permit 50 any any",
            "permit 47 any any",
        ]
    );
    let verdict = acl
        .evaluate(6, ip("10.1.1.5"), 80, ip("10.9.3.3"), 1500)
        .unwrap();
    assert_eq!(verdict.line, 44);
    assert!(acl
        .evaluate(6, ip("10.1.1.5"), 81, ip("10.9.3.3"), 1500)
        .is_none());
    assert_eq!(
        acl.evaluate(6, ip("1.1.1.1"), 5, ip("2.2.2.2"), 23)
            .unwrap()
            .action,
        AclAction::Deny
    );
    // Proxy pairs: one per permit line; the range line cannot be an IKEv1 identity.
    let pairs = c.proxy_pairs(e20);
    assert_eq!(pairs.len(), 5);
    assert!(matches!(
        pairs[0],
        Err(ProxyError::PortMatch { line: 44, .. })
    ));
    let icmp = pairs[2].clone().unwrap();
    assert_eq!(
        icmp.local.to_string(),
        "10.1.1.0/255.255.255.0/1/0 (type=4)"
    );
    assert_eq!(icmp.remote.to_string(), "0.0.0.0/0.0.0.0/1/0 (type=4)");
    assert!(p
        .warnings
        .iter()
        .any(|w| w.line == 44 && w.message.contains("not a single port")));

    let o = c.interface("ethernet1/0").unwrap();
    assert_eq!(o.description.as_deref(), Some("outside"));
    assert!(!o.shutdown);
    let o9 = c.interface("out9").unwrap();
    assert_eq!(o9.linux_name.as_deref(), Some("out9"));
    assert!(o9.shutdown);
    assert_eq!(
        c.interface_by_linux_name("out0").unwrap().name,
        "Ethernet1/0"
    );
}

#[test]
fn unrelated_lines_warn_with_line_numbers() {
    let text = "\
version 12.4
hostname R1
!
line vty 0 4
 password cisco
 login
ip route 0.0.0.0 0.0.0.0 172.16.172.1
interface Ethernet0/0
 ip address 10.1.1.1 255.255.255.0
 duplex auto
crypto isakmp invalid-spi-recovery
end
";
    let p = parse_plain(text);
    let got: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "line 4: skipped (not used by espgw): line vty 0 4",
            "line 5: skipped (in `line vty 0 4`, not used by espgw): password cisco",
            "line 6: skipped (in `line vty 0 4`, not used by espgw): login",
            "line 7: skipped (not used by espgw): ip route 0.0.0.0 0.0.0.0 172.16.172.1",
            "line 10: skipped (not used by espgw): duplex auto",
            "line 11: skipped (not used by espgw): crypto isakmp invalid-spi-recovery",
        ]
    );
    assert_eq!(p.config.hostname.as_deref(), Some("R1"));
    assert_eq!(
        p.config.interface("Ethernet0/0").unwrap().address,
        Some((ip("10.1.1.1"), ip("255.255.255.0")))
    );
}

#[test]
fn advisory_warnings() {
    let text = "\
crypto isakmp policy 5
crypto ipsec transform-set t esp-3des esp-sha-hmac
crypto map m 10 ipsec-isakmp
 set peer 192.0.2.9
 set transform-set t
crypto map m 20 ipsec-isakmp
 set peer 192.0.2.10
 set transform-set t
 match address 150
access-list 150 permit ip 10.0.0.0 0.255.0.255 any
interface Serial0/0
 crypto map m
";
    let p = parse_config(text, &InterfaceMap::parse("Ethernet9/9=x0").unwrap()).unwrap();
    let got: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    let expect = [
        "--interface-map: Ethernet9/9=x0 names no interface of the configuration",
        "line 1: crypto isakmp policy 5: authentication rsa-sig (the IOS default) needs a crypto pki trustpoint; without it the policy is not negotiated",
        "line 3: crypto map m 10 stays disabled until it has match address",
        "line 4: no crypto isakmp key matches peer 192.0.2.9",
        "line 7: no crypto isakmp key matches peer 192.0.2.10",
        "line 10: crypto ACL of crypto map m 20: wildcard 0.255.0.255 is not contiguous; IKEv1 cannot express it",
        "line 11: interface Serial0/0 has a crypto map but no Linux name; map it with --interface-map Serial0/0=LINUXNAME",
        "line 11: interface Serial0/0 has a crypto map but no ip address",
    ];
    for e in expect {
        assert!(
            got.iter().any(|g| g == e),
            "missing warning {e:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), expect.len(), "{got:#?}");
}

#[test]
fn unindented_submode_lines_are_taken_as_ios_does() {
    // A configuration pasted without indentation: sub-mode commands stay in the mode until
    // a global command comes.
    let text = "\
crypto isakmp policy 1
encr 3des
hash md5
authentication pre-share
group 2
crypto ipsec transform-set ts esp-aes esp-sha-hmac
mode transport
crypto map vpn 10 ipsec-isakmp
set peer 172.16.172.20
set transform-set ts
match address CRY
ip access-list extended CRY
permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255
interface Ethernet1/0
ip address 172.16.172.10 255.255.255.240
crypto map vpn
ip access-list extended OTHER
deny ip any any
crypto isakmp key k address 172.16.172.20
";
    let c = parse_ok(text).config;
    let p = &c.isakmp_policies[&1];
    assert_eq!(
        (p.encryption, p.hash, p.auth, p.group),
        (
            IkeEncryption::TripleDes,
            IkeHash::Md5,
            IkeAuth::PreShare,
            DhGroup::Group2
        )
    );
    assert_eq!(c.transform_sets["ts"].mode, IpsecMode::Transport);
    assert_eq!(
        c.map_entry("vpn", 10)
            .unwrap()
            .entry
            .match_address
            .as_deref(),
        Some("CRY")
    );
    assert_eq!(c.access_lists["CRY"].entries.len(), 1);
    assert_eq!(c.access_lists["OTHER"].entries.len(), 1);
    let i = c.interface("Ethernet1/0").unwrap();
    assert_eq!(i.crypto_map.as_deref(), Some("vpn"));
    assert_eq!(i.address.unwrap().0, ip("172.16.172.10"));
    assert_eq!(c.isakmp_keys.len(), 1);
}

#[test]
fn no_lines_and_exit() {
    let text = "\
crypto isakmp policy 1
 encr aes 192
 hash md5
 no hash
 no encr
exit
crypto map vpn 10 ipsec-isakmp
 set peer 1.1.1.1
 set peer 2.2.2.2
 no set peer 1.1.1.1
 set pfs group5
 no set pfs
";
    let p = parse_ok(text);
    let pol = &p.config.isakmp_policies[&1];
    assert_eq!(
        (pol.encryption, pol.hash),
        (IkeEncryption::Des, IkeHash::Sha)
    );
    let e = p.config.map_entry("vpn", 10).unwrap().entry;
    assert_eq!(e.peers, vec![ip("2.2.2.2")]);
    assert_eq!(e.pfs, None);
}

#[test]
fn end_stops_parsing() {
    let p = parse_plain("hostname A\nend\n\nhostname B\n");
    assert_eq!(p.config.hostname.as_deref(), Some("A"));
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        p.warnings[0].to_string(),
        "line 4: ignored: configuration text after `end`"
    );
}

#[test]
fn crlf_and_tabs() {
    let text = "crypto isakmp policy 1\r\n\tencr 3des\r\n\tauthentication pre-share\r\n";
    let c = parse_ok(text).config;
    assert_eq!(c.isakmp_policies[&1].encryption, IkeEncryption::TripleDes);
    assert_eq!(c.isakmp_policies[&1].auth, IkeAuth::PreShare);
}

/// Every error path: the exact message, with the line number of the offending line.
/// Each configuration fails with exactly its message.
pub(super) fn assert_errors(cases: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (text, want) in cases {
        let got = err(text);
        if &got != want {
            bad.push(format!("config {text:?}\n  got:  {got}\n  want: {want}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        ("crypto isakmp policy 1\n encr blowfish", r#"line 2: encr: expected des|3des|aes [128|192|256], got "blowfish""#),
        ("crypto isakmp policy 1\n encr", "line 2: encr: expected des|3des|aes [128|192|256], got end of line"),
        ("crypto isakmp policy 1\n encryption aes 512", r#"line 2: encryption: expected 128|192|256, got "512""#),
        ("crypto isakmp policy 1\n encr 3des cbc", r#"line 2: encr: expected end of line, got "cbc""#),
        ("crypto isakmp policy 1\n hash sha512", r#"line 2: hash: expected md5|sha|sha256, got "sha512""#),
        ("crypto isakmp policy 1\n authentication psk", r#"line 2: authentication: expected pre-share|rsa-sig|rsa-encr, got "psk""#),
        ("crypto isakmp policy 1\n group 3", r#"line 2: group: expected 1|2|5|14|15|16, got "3""#),
        ("crypto isakmp policy 1\n lifetime 10", "line 2: lifetime: 10 is out of range 60-86400"),
        ("crypto isakmp policy 1\n lifetime 99999999999999999999999", "line 2: lifetime: 18446744073709551615 is out of range 60-86400"),
        ("crypto isakmp policy 1\n lifetime forever", r#"line 2: lifetime: expected seconds 60-86400, got "forever""#),
        ("crypto isakmp policy 1\n prf sha", r#"line 2: crypto isakmp policy: expected encr|hash|authentication|group|lifetime, got "prf""#),
        ("!\ncrypto isakmp policy 0", "line 2: crypto isakmp policy: 0 is out of range 1-10000"),
        ("crypto isakmp policy 10001", "line 1: crypto isakmp policy: 10001 is out of range 1-10000"),
        ("crypto isakmp policy", "line 1: crypto isakmp policy: expected a priority 1-10000, got end of line"),
        ("crypto isakmp key abc", "line 1: crypto isakmp key: expected address|hostname, got end of line"),
        ("crypto isakmp key abc address 300.1.1.1", r#"line 1: crypto isakmp key: expected an IPv4 address, got "300.1.1.1""#),
        ("crypto isakmp key abc address 1.1.1.1 255.0.255.0", r#"line 1: crypto isakmp key: expected a contiguous netmask, got "255.0.255.0""#),
        ("crypto isakmp key abc address 1.1.1.1 xauth", r#"line 1: crypto isakmp key: expected end of line, got "xauth""#),
        ("crypto isakmp key 6 AbCdEf address 1.1.1.1", "line 1: crypto isakmp key: an encrypted (type 6) key is not supported"),
        ("crypto isakmp keepalive 5", "line 1: crypto isakmp keepalive: 5 is out of range 10-3600"),
        ("crypto isakmp keepalive 10 61", "line 1: crypto isakmp keepalive: 61 is out of range 2-60"),
        ("crypto isakmp keepalive 10 2 always", r#"line 1: crypto isakmp keepalive: expected periodic|on-demand, got "always""#),
        ("crypto isakmp nat keepalive", "line 1: crypto isakmp nat keepalive: expected seconds 5-3600, got end of line"),
        ("crypto isakmp nat traversal", r#"line 1: crypto isakmp nat: expected keepalive, got "traversal""#),
        ("crypto ipsec transform-set t esp-blowfish", r#"line 1: crypto ipsec transform-set: expected esp-des|esp-3des|esp-aes [128|192|256]|esp-gcm [128|256]|esp-null|esp-md5-hmac|esp-sha-hmac|esp-sha256-hmac, got "esp-blowfish""#),
        ("crypto ipsec transform-set", "line 1: crypto ipsec transform-set: expected a transform set name, got end of line"),
        ("crypto ipsec transform-set t", "line 1: crypto ipsec transform-set: expected esp-des|esp-3des|esp-aes [128|192|256]|esp-gcm [128|256]|esp-null|esp-md5-hmac|esp-sha-hmac|esp-sha256-hmac, got end of line"),
        ("crypto ipsec transform-set t ah-md5-hmac esp-3des", "line 1: crypto ipsec transform-set: AH (ah-md5-hmac) is not supported"),
        ("crypto ipsec transform-set t esp-3des comp-lzs", "line 1: crypto ipsec transform-set: IP compression (comp-lzs) is not supported"),
        ("crypto ipsec transform-set t esp-3des esp-aes", "line 1: crypto ipsec transform-set: more than one encryption transform (esp-aes)"),
        ("crypto ipsec transform-set t esp-3des esp-md5-hmac esp-sha-hmac", "line 1: crypto ipsec transform-set: more than one authentication transform (esp-sha-hmac)"),
        ("crypto ipsec transform-set t esp-md5-hmac", "line 1: crypto ipsec transform-set: no ESP encryption transform (esp-des|esp-3des|esp-aes|esp-gcm|esp-null)"),
        ("crypto ipsec transform-set t esp-gcm 192", r#"line 1: crypto ipsec transform-set: expected 128|256, got "192""#),
        ("crypto ipsec transform-set t esp-gcm esp-sha-hmac", "line 1: crypto ipsec transform-set: esp-gcm authenticates by itself; remove the hmac transform"),
        ("crypto ipsec transform-set t esp-null", "line 1: crypto ipsec transform-set: esp-null needs an authentication transform"),
        ("crypto ipsec transform-set t esp-3des\n mode tunel", r#"line 2: mode: expected tunnel|transport, got "tunel""#),
        ("crypto ipsec security-association lifetime seconds 10", "line 1: crypto ipsec security-association lifetime: 10 is out of range 30-86400"),
        ("crypto ipsec security-association lifetime minutes 10", r#"line 1: crypto ipsec security-association lifetime: expected seconds|kilobytes, got "minutes""#),
        ("crypto ipsec security-association lifetime kilobytes 100", "line 1: crypto ipsec security-association lifetime: 100 is out of range 2560-4294967295"),
        ("crypto ipsec security-association replay window-size 100", r#"line 1: crypto ipsec security-association replay window-size: expected 64|128|256|512|1024, got "100""#),
        ("crypto map vpn 10 ipsec-manual", "line 1: crypto map: manual keying (ipsec-manual) is not supported"),
        ("crypto map vpn 10 ipsec-isakmp dynamic dyn", "line 1: crypto map: dynamic map \"dyn\" is not defined"),
        ("crypto map vpn 10 ipsec-isakmp extra", r#"line 1: crypto map: expected end of line, got "extra""#),
        ("crypto map vpn 0 ipsec-isakmp", "line 1: crypto map: 0 is out of range 1-65535"),
        ("crypto map vpn", "line 1: crypto map: expected a sequence number 1-65535, got end of line"),
        ("crypto map vpn 10\n set peer 1.2.3", r#"line 2: set peer: expected an IPv4 address, got "1.2.3""#),
        ("crypto map vpn 10\n set peer r2.example.com", "line 2: set peer: a peer given by host name is not supported"),
        ("crypto map vpn 10\n set pfs group3", r#"line 2: set pfs: expected group1|group2|group5|group14|group15|group16, got "group3""#),
        ("crypto map vpn 10\n set transform-set", "line 2: set transform-set: expected a transform set name, got end of line"),
        ("crypto map vpn 10\n set transform-set a b c d e f g", "line 2: set transform-set: at most 6 transform sets, got 7"),
        ("crypto map vpn 10\n match address", "line 2: match address: expected an access list number or name, got end of line"),
        ("crypto map vpn 10\n match acl 101", r#"line 2: match address: expected address, got "acl""#),
        ("crypto map vpn 10\n set security-association lifetime seconds 20", "line 2: set security-association lifetime: 20 is out of range 30-86400"),
        ("crypto map vpn local-address", "line 1: crypto map local-address: expected an interface name, got end of line"),
        ("access-list 10 permit any", "line 1: access-list 10: a standard access list (crypto ACLs are extended: 100-199, 2000-2699) is not supported"),
        ("access-list 300 permit ip any any", "line 1: access-list 300: 300 is out of range 100-2699"),
        ("access-list abc permit ip any any", r#"line 1: access-list: expected an access list number, got "abc""#),
        ("access-list 101 allow ip any any", r#"line 1: access-list 101: expected permit|deny|remark, got "allow""#),
        ("access-list 101 permit sctp any any", r#"line 1: access-list 101: expected ip|tcp|udp|icmp|a protocol number 0-255, got "sctp""#),
        ("access-list 101 permit 256 any any", "line 1: access-list 101: 256 is out of range 0-255"),
        ("access-list 101 permit ip 10.1.1.0 any", r#"line 1: access-list 101: expected a wildcard mask, got "any""#),
        ("access-list 101 permit ip 10.1.1.0/24 any", r#"line 1: access-list 101: expected any|host A|A WILDCARD, got "10.1.1.0/24""#),
        ("access-list 101 permit ip host any", r#"line 1: access-list 101: expected an IPv4 address, got "any""#),
        ("access-list 101 permit ip any", "line 1: access-list 101: expected any|host A|A WILDCARD, got end of line"),
        ("access-list 101 permit ip any any eq 80", r#"line 1: access-list 101: expected log|end of line, got "eq""#),
        ("access-list 101 permit tcp any any eq", "line 1: access-list 101: expected a port number or name, got end of line"),
        ("access-list 101 permit tcp any any eq gopherz", r#"line 1: access-list 101: expected a port number or name, got "gopherz""#),
        ("access-list 101 permit tcp any any eq 70000", "line 1: access-list 101: 70000 is out of range 0-65535"),
        ("access-list 101 permit udp any any range 200 100", "line 1: access-list 101: range 200 100: the first port must not exceed the second"),
        ("access-list 101 permit udp any any established", r#"line 1: access-list 101: expected eq|neq|lt|gt|range|log|end of line, got "established""#),
        ("ip access-list extended 50", "line 1: ip access-list extended: 50 is out of range 100-2699"),
        ("ip access-list extended X\n permit ip any any foo", r#"line 2: ip access-list extended X: expected log|end of line, got "foo""#),
        ("interface", "line 1: interface: expected an interface name, got end of line"),
        ("interface E0\n ip address 1.1.1.1", "line 2: ip address: expected a netmask, got end of line"),
        ("interface E0\n ip address 1.1.1.1 255.0.255.0", r#"line 2: ip address: expected a contiguous netmask, got "255.0.255.0""#),
        ("interface E0\n ip address dhcp", "line 2: ip address: a dynamic address is not supported"),
        ("interface E0\n crypto map", "line 2: crypto map: expected a crypto map name, got end of line"),
        ("hostname", "line 1: hostname: expected a host name, got end of line"),
    ];
    assert_errors(cases);
}

#[test]
fn unresolved_references_name_the_line() {
    let cases: &[(&str, &str)] = &[
        (
            "crypto map vpn 10\n set transform-set nosuch",
            r#"line 2: set transform-set: transform set "nosuch" is not defined"#,
        ),
        (
            "crypto ipsec transform-set a esp-3des esp-md5-hmac\ncrypto map vpn 10\n set transform-set a b",
            r#"line 3: set transform-set: transform set "b" is not defined"#,
        ),
        ("crypto map vpn 10\n match address 102", r#"line 2: match address: access list "102" is not defined"#),
        ("interface E0\n crypto map nomap", r#"line 2: crypto map: crypto map "nomap" is not defined"#),
        (
            "crypto map vpn local-address Loopback0",
            r#"line 1: crypto map local-address: interface "Loopback0" is not defined"#,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "config:\n{text}");
    }
    // Defining the name later in the file resolves it.
    parse_ok("crypto map vpn 10\n match address 102\naccess-list 102 permit ip any any\n");
}

#[test]
fn check_config_reports_every_error_and_goes_on() {
    let text = "\
crypto isakmp policy 1
 encr blowfish
 hash md5
crypto isakmp policy 99999
 encr 3des
 hash sha
crypto map vpn 10
 set transform-set missing
 set peer 1.1.1.1
";
    let r = check_config(text, &InterfaceMap::default());
    let lines: Vec<usize> = r.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4, 8]);
    // The good lines around the errors were taken; the broken block's sub-lines were not.
    assert_eq!(r.config.isakmp_policies[&1].hash, IkeHash::Md5);
    assert_eq!(r.config.isakmp_policies.len(), 1);
    assert_eq!(
        r.config.map_entry("vpn", 10).unwrap().entry.peers,
        vec![ip("1.1.1.1")]
    );
    // The first error is what parse_config reports.
    assert_eq!(
        parse_config(text, &InterfaceMap::default())
            .unwrap_err()
            .line,
        2
    );
    assert!(matches!(
        r.errors[0].kind,
        ConfigErrorKind::Syntax { ref command, .. } if command == "encr"
    ));
}

#[test]
fn psk_never_in_debug_output() {
    let c = parse_ok(SLIDES_R1).config;
    let dump = format!("{c:?}");
    assert!(!dump.contains("C!scO"), "{dump}");
}

#[test]
fn later_key_for_same_peer_replaces_earlier() {
    let c =
        parse_ok("crypto isakmp key one address 1.1.1.1\ncrypto isakmp key two address 1.1.1.1\n")
            .config;
    assert_eq!(c.isakmp_keys.len(), 1);
    assert_eq!(
        c.psk_for_address(ip("1.1.1.1"))
            .unwrap()
            .key
            .expose_secret(),
        b"two"
    );
}

#[test]
fn key_zero_type_prefix_and_key_named_zero() {
    let c =
        parse_ok("crypto isakmp key 0 abc address 1.1.1.1\ncrypto isakmp key 0 address 2.2.2.2\n")
            .config;
    assert_eq!(
        c.psk_for_address(ip("1.1.1.1"))
            .unwrap()
            .key
            .expose_secret(),
        b"abc"
    );
    assert_eq!(
        c.psk_for_address(ip("2.2.2.2"))
            .unwrap()
            .key
            .expose_secret(),
        b"0"
    );
}

// -------------------------------------------------------------------------------------
// Properties
// -------------------------------------------------------------------------------------

fn arb_addr_match() -> impl Strategy<Value = AddrMatch> {
    prop_oneof![
        Just(AddrMatch::ANY),
        any::<u32>().prop_map(|a| AddrMatch::host(Ipv4Addr::from(a))),
        (any::<u32>(), any::<u32>())
            .prop_filter("not host/any", |(_, w)| *w != 0 && *w != u32::MAX)
            .prop_map(|(a, w)| AddrMatch::new(Ipv4Addr::from(a), Ipv4Addr::from(w))),
        (any::<u32>(), 1u8..32).prop_map(|(a, len)| AddrMatch::new(
            Ipv4Addr::from(a),
            Ipv4Addr::from(u32::MAX >> len)
        )),
    ]
}

fn arb_port() -> impl Strategy<Value = Option<PortMatch>> {
    prop_oneof![
        Just(None),
        any::<u16>().prop_map(|p| Some(PortMatch::Eq(p))),
        any::<u16>().prop_map(|p| Some(PortMatch::Neq(p))),
        any::<u16>().prop_map(|p| Some(PortMatch::Lt(p))),
        any::<u16>().prop_map(|p| Some(PortMatch::Gt(p))),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Some(PortMatch::Range(a.min(b), a.max(b)))),
    ]
}

fn arb_acl_entry() -> impl Strategy<Value = AclEntry> {
    let proto = prop_oneof![
        Just(AclProtocol::Ip),
        Just(AclProtocol::Tcp),
        Just(AclProtocol::Udp),
        Just(AclProtocol::Icmp),
        (2u8..=255)
            .prop_filter("named", |n| ![6, 17].contains(n))
            .prop_map(AclProtocol::Number),
    ];
    (
        any::<bool>(),
        proto,
        arb_addr_match(),
        arb_port(),
        arb_addr_match(),
        arb_port(),
        proptest::option::of((any::<u8>(), proptest::option::of(any::<u8>()))),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(permit, protocol, src, sp, dst, dp, icmp, est, log)| {
            let ports = protocol.has_ports();
            let icmp = if protocol == AclProtocol::Icmp {
                icmp
            } else {
                None
            };
            AclEntry {
                action: if permit {
                    AclAction::Permit
                } else {
                    AclAction::Deny
                },
                protocol,
                src,
                src_port: if ports { sp } else { None },
                dst,
                dst_port: if ports { dp } else { None },
                icmp_type: icmp.map(|(t, _)| t),
                icmp_code: icmp.and_then(|(_, c)| c),
                established: est && protocol == AclProtocol::Tcp,
                log,
                line: 1,
            }
        })
}

proptest! {
    /// What IOS prints for an ACL line parses back to the same line.
    #[test]
    fn acl_line_round_trips(e in arb_acl_entry()) {
        let text = format!("access-list 150 {}\n", e.ios_text());
        let c = parse_config(&text, &InterfaceMap::default())
            .map_err(|err| TestCaseError::fail(format!("{err}: {text}")))?
            .config;
        prop_assert_eq!(&c.access_lists["150"].entries[0], &e, "{}", text);
    }

    /// A wildcard converts to a netmask exactly when it is contiguous, and back.
    #[test]
    fn wildcard_netmask_round_trip(w in any::<u32>(), len in 0u32..=32) {
        let contiguous = (0..=32).any(|n| w == if n == 32 { u32::MAX } else { (1u32 << n) - 1 });
        let wild = Ipv4Addr::from(w);
        prop_assert_eq!(wildcard_to_netmask(wild).is_some(), contiguous);
        if let Some(m) = wildcard_to_netmask(wild) {
            prop_assert_eq!(netmask_to_wildcard(m), Some(wild));
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let wc = netmask_to_wildcard(Ipv4Addr::from(mask)).unwrap();
        prop_assert_eq!(u32::from(wc), !mask);
        prop_assert_eq!(wildcard_to_netmask(wc), Some(Ipv4Addr::from(mask)));
    }

    /// AddrMatch with a contiguous wildcard matches exactly the addresses of its prefix,
    /// and the proxy identity built from it contains exactly those hosts.
    #[test]
    fn addr_match_is_prefix_match(a in any::<u32>(), len in 0u32..=32, probe in any::<u32>()) {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let m = AddrMatch::new(Ipv4Addr::from(a), Ipv4Addr::from(!mask));
        let inside = (probe & mask) == (a & mask);
        prop_assert_eq!(m.matches(Ipv4Addr::from(probe)), inside);
        prop_assert_eq!(m.prefix_len(), Some(len as u8));
        let id = ProxyId { addr: m.addr, mask: Ipv4Addr::from(mask), protocol: 0, port: 0 };
        let host = ProxyId { addr: Ipv4Addr::from(probe), mask: Ipv4Addr::BROADCAST, protocol: 6, port: 1 };
        prop_assert_eq!(id.contains(&host), inside);
    }

    /// Arbitrary text never panics the parser, and an error always names a real line.
    #[test]
    fn arbitrary_text_never_panics(lines in proptest::collection::vec("[ a-z0-9.!/-]{0,40}", 0..20)) {
        let text = lines.join("\n");
        let r = check_config(&text, &InterfaceMap::default());
        for e in &r.errors {
            prop_assert!(e.line >= 1 && e.line <= lines.len().max(1));
        }
    }
}

#[test]
fn isakmp_peer_selects_aggressive_mode() {
    let text = "\
crypto isakmp aggressive-mode disable
crypto isakmp peer address 172.16.172.20
 description R2 (strongSwan)
 set aggressive-mode password C!scO
 set aggressive-mode client-endpoint ipv4-address 172.16.172.10
crypto isakmp peer address 172.16.172.30
 set aggressive-mode client-endpoint fqdn r1.example
 no set aggressive-mode password
crypto isakmp peer address 172.16.172.40
 set aggressive-mode client-endpoint user-fqdn vpn@r1.example
";
    let c = parse_plain(text).config;
    assert!(c.aggressive_mode_disabled);
    assert!(c.initiates_aggressive(ip("172.16.172.20")));
    assert!(!c.initiates_aggressive(ip("172.16.172.30")));
    assert!(c.initiates_aggressive(ip("172.16.172.40")));
    assert!(!c.initiates_aggressive(ip("172.16.172.99")));
    let p = &c.isakmp_peers[0];
    assert_eq!(
        p.client_endpoint.as_deref(),
        Some("ipv4-address 172.16.172.10")
    );
    assert_eq!(p.description.as_deref(), Some("R2 (strongSwan)"));
    assert_eq!(p.line, 2);
    // The aggressive-mode password is the peer's pre-shared key.
    let k = c.psk_for_address(ip("172.16.172.20")).unwrap();
    assert_eq!(k.key.expose_secret(), b"C!scO");
    assert_eq!(k.line, 4);
    assert_eq!(
        err("crypto isakmp peer address 1.1.1.1\n set aggressive-mode secret x"),
        r#"line 2: set aggressive-mode: expected password|client-endpoint, got "secret""#
    );
    assert_eq!(
        err("crypto isakmp peer hostname r2"),
        r#"line 1: crypto isakmp peer: expected address, got "hostname""#
    );
    assert_eq!(
        err("crypto isakmp aggressive-mode enable"),
        r#"line 1: crypto isakmp aggressive-mode: expected disable, got "enable""#
    );
}

#[test]
fn isakmp_fragmentation_with_and_without_a_size() {
    assert_eq!(
        parse_plain("hostname r1\n").config.isakmp_fragmentation,
        None
    );
    let c = parse_plain("crypto isakmp fragmentation\n").config;
    assert_eq!(c.isakmp_fragmentation, Some(None));
    let c = parse_plain("crypto isakmp fragmentation mtu 1280\n").config;
    assert_eq!(c.isakmp_fragmentation, Some(Some(1280)));
    let e = err("hostname r1\ncrypto isakmp fragmentation mtu 100\n");
    assert!(e.contains("line 2") && e.contains("576-1500"), "{e}");
    let e = err("crypto isakmp fragmentation sometimes\n");
    assert!(e.contains("line 1"), "{e}");
}
