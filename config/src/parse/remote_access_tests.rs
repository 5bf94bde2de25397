//! Remote-access lines (Easy VPN server) as IOS writes them.

use super::*;

use super::tests::{assert_errors, ip, parse_ok as ok};

/// The lab's Easy VPN server configuration, the way `show running-config` prints one.
pub(crate) const EZVPN_SERVER: &str = include_str!("../../../deploy/configs/r1-easyvpn.conf");

#[test]
fn easy_vpn_server_parses_as_ios_writes_it() {
    let p = ok(EZVPN_SERVER);
    let ra = &p.config.remote_access;
    assert!(ra.aaa_new_model);
    assert_eq!(ra.login_lists["userauthen"].methods, vec![AaaMethod::Local]);
    assert_eq!(ra.login_lists["userauthen"].line, 3);
    assert_eq!(
        ra.network_lists["groupauthor"].methods,
        vec![AaaMethod::Local]
    );
    match &ra.users["alice"].password {
        UserPassword::Clear(k) => assert_eq!(k.expose_secret(), b"wonderland"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ra.users["bob"].privilege, Some(15));
    assert_eq!(
        ra.users["bob"].password,
        UserPassword::Md5Crypt("$1$mERr$LiYHHJxqSJ4tEY/Xy4UdT0".into())
    );
    assert_eq!(ra.xauth_timeout_secs, 30);

    let g = &ra.groups["vpngroup"];
    assert_eq!(g.line, 14);
    assert_eq!(g.key.as_ref().unwrap().expose_secret(), b"grouPkey");
    assert_eq!(g.dns, vec![ip("10.1.1.53"), ip("10.1.1.54")]);
    assert_eq!(g.wins, vec![ip("10.1.1.55")]);
    assert_eq!(g.domain.as_deref(), Some("example.com"));
    assert_eq!(g.pool.as_deref(), Some("ezpool"));
    assert_eq!(g.acl.as_deref(), Some("150"));
    assert!(g.pfs && g.save_password);
    assert_eq!(g.max_users, Some(20));
    assert_eq!(
        g.banner.as_deref(),
        Some("Welcome to R1.\nAuthorised users only.")
    );
    let o = &ra.groups["other"];
    assert_eq!(o.banner.as_deref(), Some("one line"));
    assert!(!o.pfs && o.max_users.is_none());

    let pool = &ra.pools["ezpool"];
    assert_eq!(
        pool.ranges,
        vec![
            (ip("10.99.0.10"), ip("10.99.0.20")),
            (ip("10.99.1.1"), ip("10.99.1.1"))
        ]
    );
    assert_eq!(pool.size(), 12);

    let d = &ra.dynamic_maps["dynmap"].entries[&10];
    assert_eq!(d.transform_sets, vec!["aesset".to_string()]);
    assert_eq!(d.pfs, Some(DhGroup::Group2));
    assert!(d.reverse_route);
    assert!(d.peers.is_empty());

    let c = &ra.map_clients["clientmap"];
    assert_eq!(c.authentication_list.as_deref(), Some("userauthen"));
    assert_eq!(c.authorization_list.as_deref(), Some("groupauthor"));
    assert_eq!(c.address, Some(ModeConfigAddress::Respond));
    assert_eq!(
        ra.dynamic_refs,
        vec![DynamicMapRef {
            map: "clientmap".into(),
            seq: 10,
            dynamic: "dynmap".into(),
            line: 40,
        }]
    );
    // The map exists (the interface refers to it) and has no static entry.
    assert!(p.config.crypto_maps["clientmap"].entries.is_empty());
    assert!(ra.enabled());
    // Nothing in it was skipped.
    assert!(
        p.warnings.iter().all(|w| !w.message.starts_with("skipped")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let p = ok(EZVPN_SERVER);
    let dump = format!("{:?}", p.config);
    for s in [
        "wonderland",
        "grouPkey",
        "otherkey",
        "hx5rVt7rPNoS4wqbXKX7m0",
    ] {
        assert!(!dump.contains(s), "{s} in {dump}");
    }
}

#[test]
fn remote_access_errors_name_line_and_reason() {
    let cases: &[(&str, &str)] = &[
        ("aaa authentication login L local", "line 1: aaa authentication login: needs `aaa new-model` first"),
        ("aaa new-model\naaa authentication login L group radius", "line 2: aaa authentication login: method group (espgw authenticates against `local` only) is not supported"),
        ("aaa new-model\naaa authorization network L", "line 2: aaa authorization network: expected local, got end of line"),
        ("aaa new-model\naaa authorization network L localx", r#"line 2: aaa authorization network: expected local, got "localx""#),
        ("username", "line 1: username: expected a user name, got end of line"),
        ("username u", "line 1: username: expected password|secret, got end of line"),
        ("username u passwd x", r#"line 1: username: expected password|secret, got "passwd""#),
        ("username u password", "line 1: username: expected a password, got end of line"),
        ("username u password 7 0822455D0A16", "line 1: username: a type 7 password (write it in clear or as `secret 5`) is not supported"),
        ("username u secret 9 $9$abc", "line 1: username: a type 9 secret (use type 5 or a clear secret) is not supported"),
        ("username u secret 5 notahash", r#"line 1: username: expected an MD5-crypt hash ($1$SALT$HASH), got "notahash""#),
        ("username u privilege 16 password x", "line 1: username: 16 is out of range 0-15"),
        ("ip local pool p 10.0.0.9 10.0.0.1", "line 1: ip local pool: 10.0.0.9 10.0.0.1: the last address comes before the first"),
        ("ip local pool p 10.0.0.1 10.0.0.300", r#"line 1: ip local pool: expected the last address, got "10.0.0.300""#),
        ("ip local pool p", "line 1: ip local pool: expected the first address, got end of line"),
        ("ip local pool p 10.0.0.1 10.0.0.9\nip local pool q 10.0.0.5 10.0.0.6", "line 2: ip local pool: 10.0.0.5 10.0.0.6 overlaps pool p (10.0.0.1 10.0.0.9)"),
        ("ip local pool p 10.0.0.0 10.255.255.255", "line 1: ip local pool: 10.0.0.0 10.255.255.255: more than 1048576 addresses in one range"),
        ("crypto isakmp client configuration", "line 1: crypto isakmp client configuration group: expected group, got end of line"),
        ("crypto isakmp client configuration group", "line 1: crypto isakmp client configuration group: expected a group name, got end of line"),
        ("crypto isakmp client configuration group g\n key", "line 2: key: expected a key, got end of line"),
        ("crypto isakmp client configuration group g\n key 6 AbC", "line 2: key: an encrypted (type 6) key is not supported"),
        ("crypto isakmp client configuration group g\n dns 1.1.1.1 2.2.2.2 3.3.3.3", "line 2: dns: at most 2 servers, got 3"),
        ("crypto isakmp client configuration group g\n wins x", r#"line 2: wins: expected an IPv4 address, got "x""#),
        ("crypto isakmp client configuration group g\n max-users 0", "line 2: max-users: 0 is out of range 1-5000"),
        ("crypto isakmp client configuration group g\n pfs group2", r#"line 2: pfs: expected end of line, got "group2""#),
        ("crypto isakmp client configuration group g\n pool nowhere", "line 2: pool: ip local pool \"nowhere\" is not defined"),
        ("crypto isakmp client configuration group g\n acl 199", "line 2: acl: access list \"199\" is not defined"),
        ("crypto isakmp client configuration group g\n banner", "line 2: banner: expected a delimiter and the banner text, got end of line"),
        ("crypto isakmp xauth timeout 100", "line 1: crypto isakmp xauth timeout: 100 is out of range 5-90"),
        ("crypto dynamic-map d", "line 1: crypto dynamic-map: expected a sequence number 1-65535, got end of line"),
        ("crypto dynamic-map d 10\n set transform-set nope", "line 2: set transform-set: transform set \"nope\" is not defined"),
        ("crypto dynamic-map d 10\n reverse-route now", r#"line 2: reverse-route: expected end of line, got "now""#),
        ("crypto map m client authentication list nolist", "line 1: crypto map client authentication list: aaa authentication login list \"nolist\" is not defined"),
        ("crypto map m isakmp authorization list nolist", "line 1: crypto map isakmp authorization list: aaa authorization network list \"nolist\" is not defined"),
        ("crypto map m client configuration address push", r#"line 1: crypto map client configuration address: expected respond|initiate, got "push""#),
        ("crypto map m client authentication userauthen", r#"line 1: crypto map client authentication list: expected list, got "userauthen""#),
        ("crypto map m client", "line 1: crypto map: expected authentication|configuration, got end of line"),
        ("crypto map vpn 10 ipsec-isakmp dynamic dyn", "line 1: crypto map: dynamic map \"dyn\" is not defined"),
        ("crypto map vpn 10 ipsec-isakmp dynamic", "line 1: crypto map: expected a dynamic map name, got end of line"),
    ];
    assert_errors(cases);
}

#[test]
fn group_sub_lines_unindented_and_negated() {
    let p = ok("\
ip local pool p 10.9.0.1 10.9.0.9
crypto isakmp client configuration group g
key k1
pool p
pfs
no pfs
dns 1.1.1.1
no dns
crypto isakmp keepalive 10
");
    let g = &p.config.remote_access.groups["g"];
    assert_eq!(g.key.as_ref().unwrap().expose_secret(), b"k1");
    assert_eq!(g.pool.as_deref(), Some("p"));
    assert!(!g.pfs);
    assert!(g.dns.is_empty());
    assert!(p.config.keepalive.is_some());
}

#[test]
fn advisories_for_groups_without_key_or_pool() {
    let p = ok("crypto isakmp client configuration group lonely\n domain x.example");
    let msgs: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    assert!(msgs.contains(&"line 1: crypto isakmp client configuration group lonely: no key; its clients cannot authenticate".to_string()), "{msgs:?}");
    assert!(msgs.contains(&"line 1: crypto isakmp client configuration group lonely: no pool; its clients get no address".to_string()), "{msgs:?}");
}

#[test]
fn banner_lines_are_not_parsed_as_commands() {
    // A banner line that looks like a command stays text; the line after the closing
    // delimiter is a command again.
    let p = ok("\
crypto isakmp client configuration group g
 key k
 banner $
crypto map nope 10 ipsec-manual
$
 save-password
");
    let g = &p.config.remote_access.groups["g"];
    assert_eq!(g.banner.as_deref(), Some("crypto map nope 10 ipsec-manual"));
    assert!(g.save_password);
}

#[test]
fn reverse_route_on_a_static_map_entry() {
    let p = ok("\
crypto ipsec transform-set t esp-3des esp-md5-hmac
crypto map m 10 ipsec-isakmp
 set peer 1.2.3.4
 set transform-set t
 reverse-route static
");
    assert!(p.config.crypto_maps["m"].entries[&10].reverse_route);
}
