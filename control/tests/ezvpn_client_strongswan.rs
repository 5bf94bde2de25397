//! espgw as an Easy VPN client (R1, `crypto ipsec client ezvpn`), strongSwan 5.9.8 as the
//! Easy VPN server (R2): IKEv1 Aggressive Mode with the group name as ID_KEY_ID and the
//! group key as PSK, XAUTH checked by charon's xauth-generic, Mode Config from a swanctl
//! pool (address, DNS), the split include from charon's unity plugin (the server's
//! CHILD_SA local_ts), then Quick Mode for espgw's inside network against that split
//! network (network-extension mode). Variants: the split network from a pool's
//! `split_include` (strongSwan's 8-byte form) and from both sources at once; a wrong XAUTH
//! password fails cleanly on both sides.
//!
//! The reverse direction (strongSwan as the client) is `easyvpn_strongswan.rs`.
//! These tests need root (network namespaces).

mod common;

use common::Espgw;
use espgw_control::cli::api::{Request, Response};
use espgw_control::cli::ezvpn::EzvpnView;
use espgw_lab::{Lab, Node, Profile, StrongSwan};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// espgw on R1 as the Easy VPN Remote of group `vpngroup`, user alice.
fn client_conf(password: &str) -> String {
    format!(
        "hostname R1
crypto isakmp policy 10
 encr aes
 hash sha
 authentication pre-share
 group 14
crypto ipsec transform-set aesset esp-aes esp-sha-hmac
crypto ipsec client ezvpn ez
 connect auto
 group vpngroup key grouPkey
 mode network-extension
 peer 172.16.172.20
 username alice password {password}
interface Ethernet0/0
 ip address 10.1.1.1 255.255.255.0
 crypto ipsec client ezvpn ez inside
interface Ethernet1/0
 ip address 172.16.172.10 255.255.255.240
 crypto ipsec client ezvpn ez
end
"
    )
}

/// How the server tells espgw its split network (R2's inside network, 10.1.2.0/24).
#[derive(Clone, Copy, PartialEq)]
enum Split {
    /// charon's unity plugin, from the child's local_ts (Cisco's 14-byte form).
    Unity,
    /// The pool's `split_include` (strongSwan's 8-byte form), no unity plugin.
    Pool,
    /// Both: the same network twice, in both forms.
    Both,
}

/// strongSwan on R2 as the Easy VPN server: group key `grouPkey`, user alice with password
/// `wonderland`, pool 10.99.0.10–20 with two DNS servers, a banner and a default domain
/// (Unity attributes 28672 and 28674 by number); the split network as `split` says. No
/// rekeying.
fn server(split: Split) -> Profile {
    let pool_split = match split {
        Split::Unity => "",
        Split::Pool | Split::Both => "\n    split_include = 10.1.2.0/24",
    };
    let conf = r#"connections {
  lab {
    version = 1
    aggressive = yes
    proposals = aes128-sha1-modp2048
    local_addrs = 172.16.172.20
    remote_addrs = 172.16.172.10
    pools = ezpool
    rekey_time = 0
    reauth_time = 0
    local {
      auth = psk
      id = 172.16.172.20
    }
    remote {
      auth = psk
      id = keyid:vpngroup
    }
    remote-xauth {
      auth = xauth
    }
    children {
      lab {
        mode = tunnel
        esp_proposals = aes128-sha1
        local_ts = 10.1.2.0/24
        remote_ts = 10.1.1.0/24
        life_time = 3600s
        rekey_time = 0
        start_action = none
      }
    }
  }
}
pools {
  ezpool {
    addrs = 10.99.0.10-10.99.0.20
    dns = 10.1.2.53, 10.1.2.54
    28672 = "espgw lab server"
    28674 = lab.example{pool_split}
  }
}
secrets {
  ike-group {
    id-1 = keyid:vpngroup
    id-2 = 172.16.172.20
    secret = "grouPkey"
  }
  xauth-alice {
    id = alice
    secret = "wonderland"
  }
}
"#
    .replace("{pool_split}", pool_split);
    let mut p = Profile::new(Node::R2);
    p.raw_swanctl = Some(conf);
    p.extra_plugins = vec!["xauth-generic".into()];
    if split != Split::Pool {
        p.extra_plugins.push("unity".into());
    }
    p.extra_charon = vec!["cisco_unity = yes".into()];
    p
}

fn ezvpn(espgw: &Espgw) -> EzvpnView {
    match espgw.request(Request::ShowEzvpn) {
        Response::Ezvpn { tunnels } => tunnels.into_iter().next().expect("tunnel ez"),
        other => panic!("{other:?}"),
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn ezvpn_client_gets_address_dns_and_split_from_strongswan() {
    connects("ezc", Split::Unity);
}

/// A pool's `split_include` comes in strongSwan's 8-byte form (address, mask); espgw takes
/// it as well as Cisco's.
#[test]
fn ezvpn_client_takes_strongswans_pool_split_include() {
    connects("ezs", Split::Pool);
}

/// The unity plugin and the pool both send 10.1.2.0/24: espgw keeps one split network (one
/// Quick Mode).
#[test]
fn ezvpn_client_takes_a_split_network_sent_twice_once() {
    connects("ezb", Split::Both);
}

fn connects(tag: &str, split: Split) {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix(tag)).expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, server(split)).expect("charon");
    // `connect auto`: the tunnel comes up when espgw starts.
    let espgw = Espgw::start_text(&lab, &client_conf("wonderland"), &["--no-sadb"]);
    let dump = |what: &str| {
        format!(
            "{what}\n--- espgw ---\n{}\n--- charon ---\n{}",
            espgw.log(),
            swan.log()
        )
    };
    let sa = swan
        .wait_established(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{}", dump(&format!("not established: {e}"))));
    let t0 = Instant::now();
    while ezvpn(&espgw).state != "IPSEC_ACTIVE" && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }

    // espgw's view: active, the pool's first address, the pool's DNS servers, and the
    // server's inside network as the one split network.
    let v = ezvpn(&espgw);
    let screen = espgw.cli(&["show", "crypto", "ipsec", "client", "ezvpn"]);
    assert_eq!(v.state, "IPSEC_ACTIVE", "{}", dump(&screen));
    assert_eq!(v.address, Some(ip("10.99.0.10")), "{screen}");
    assert_eq!(v.dns, vec![ip("10.1.2.53"), ip("10.1.2.54")], "{screen}");
    assert_eq!(v.domain.as_deref(), Some("lab.example"), "{screen}");
    assert_eq!(
        v.split,
        vec![(ip("10.1.2.0"), ip("255.255.255.0"))],
        "{screen}"
    );
    for line in [
        "Current State: IPSEC_ACTIVE",
        "Address: 10.99.0.10",
        "DNS Primary: 10.1.2.53",
        "DNS Secondary: 10.1.2.54",
        "Default Domain: lab.example",
        "Split Tunnel List: 1\n       Address    : 10.1.2.0\n       Mask       : 255.255.255.0",
        "Current EzVPN Peer: 172.16.172.20",
    ] {
        assert!(screen.contains(line), "no {line:?} in:\n{screen}");
    }

    // strongSwan's view: the group and the XAUTH user, the leased address, and a CHILD_SA
    // for espgw's inside network against the split network, with espgw's SPIs.
    let f = |k: &str| sa.fields.get(k).cloned().unwrap_or_default();
    assert_eq!(f("remote-id"), "vpngroup", "{sa:?}");
    assert_eq!(f("remote-xauth-id"), "alice", "{sa:?}");
    let leases = swan.swanctl(&["--list-pools", "--leases"]).unwrap();
    assert!(
        leases.contains("10.99.0.10") && leases.contains("online"),
        "{leases}"
    );
    assert_eq!(sa.children.len(), 1, "{sa:?}");
    let child = &sa.children[0];
    assert_eq!(child.local_ts, vec!["10.1.2.0/24"], "{child:?}");
    assert_eq!(child.remote_ts, vec!["10.1.1.0/24"], "{child:?}");
    let spis = espgw.wait_spis(1, Duration::from_secs(5));
    assert_eq!(
        spis,
        vec![(child.spi_out, child.spi_in)],
        "espgw (in, out) vs charon's (out, in)"
    );

    let log = espgw.log();
    for line in [
        "SA is doing pre-shared key authentication using id type ID_KEY_ID",
        "Old State = IKE_P1_COMPLETE  New State = IKE_XAUTH_REPLY_SENT",
        "Old State = IKE_XAUTH_REPLY_SENT  New State = IKE_CONFIG_MODE_REQ_SENT",
        "%CRYPTO-6-EZVPN_CONNECTION_UP: (Client)  User=alice  Group=vpngroup  Server_public_addr=172.16.172.20  Assigned_client_addr=10.99.0.10",
    ] {
        assert!(log.contains(line), "no {line:?} in espgw's debug:\n{log}");
    }
    assert!(
        !log.contains("wonderland") && !log.contains("grouPkey"),
        "a secret in the log:\n{log}"
    );
}

#[test]
fn ezvpn_client_wrong_password_fails_cleanly_against_strongswan() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("ezw")).expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, server(Split::Unity)).expect("charon");
    let espgw = Espgw::start_text(&lab, &client_conf("rabbit"), &["--no-sadb"]);
    let want = "%CRYPTO-4-EZVPN_FAILED_TO_CONNECT: Group=vpngroup  Server_public_addr=172.16.172.20  Reason=XAUTH failed";
    assert!(
        common::wait_log(&espgw, want, Duration::from_secs(20)),
        "no {want:?}:\n--- espgw ---\n{}\n--- charon ---\n{}",
        espgw.log(),
        swan.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    // No SA left on espgw: no IPsec SA, no ISAKMP SA, the tunnel is not active.
    assert!(espgw.spis().is_empty(), "IPsec SAs on espgw");
    let isakmp = espgw.cli(&["show", "crypto", "isakmp", "sa"]);
    assert!(
        !isakmp.contains("172.16.172.20"),
        "ISAKMP SA left on espgw:\n{isakmp}"
    );
    let v = ezvpn(&espgw);
    assert_ne!(v.state, "IPSEC_ACTIVE");
    assert_eq!(v.address, None);
    let sas = swan.list_sas().unwrap_or_default();
    assert!(
        sas.iter().all(|s| s.children.is_empty()),
        "charon has a child SA: {sas:?}"
    );
    assert!(!espgw.log().contains("rabbit"), "the password in the log");
}
