//! espgw as Easy VPN client against espgw as Easy VPN server, sans-IO with a virtual
//! clock: Aggressive Mode with the group's ID_KEY_ID, XAUTH with the saved credentials,
//! Mode Config pull, then Quick Mode for the inside network against each split include;
//! and the Transaction Mode retransmission schedule.

use super::rng;
use crate::config::model::InterfaceMap;
use crate::config::parse::parse_config;
use crate::ike::ios::ike_config;
use crate::ike::*;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The lab's server without PFS (its `set pfs group2` is for vpnc) and without DPD.
fn server_cfg(xauth_timeout: u32) -> IkeConfig {
    let text = include_str!("../../../../deploy/configs/r1-easyvpn.conf")
        .replace(
            "crypto isakmp xauth timeout 30",
            &format!("crypto isakmp xauth timeout {xauth_timeout}"),
        )
        // DPD would end a silent client before the retransmissions do.
        .replace("crypto isakmp keepalive 10\n", "")
        .replace(" pfs\n", "\n")
        .replace(" set pfs group2\n", "");
    let p = parse_config(&text, &InterfaceMap::default()).unwrap();
    ike_config(&p.config, false).unwrap()
}

fn client_cfg(text: &str) -> IkeConfig {
    let p = parse_config(text, &InterfaceMap::default()).unwrap();
    ike_config(&p.config, false).unwrap()
}

const CLIENT: &str = include_str!("../../../../deploy/configs/r2-ezvpn-client.conf");

struct Pair {
    c: Endpoint,
    s: Endpoint,
    now: Instant,
    /// Drop every datagram from the client to the server.
    cut: bool,
    debug_c: Vec<String>,
}

impl Pair {
    fn new(client: &str) -> Pair {
        Pair::with_xauth_timeout(client, 30)
    }
    fn with_xauth_timeout(client: &str, secs: u32) -> Pair {
        let mut c = Endpoint::new(client_cfg(client), rng(11));
        let mut s = Endpoint::new(server_cfg(secs), rng(12));
        c.debug_isakmp = true;
        s.debug_isakmp = true;
        Pair {
            c,
            s,
            now: Instant::now(),
            cut: false,
            debug_c: Vec::new(),
        }
    }
    fn pump(&mut self) -> usize {
        let mut n = 0;
        for _ in 0..200 {
            let mut moved = false;
            while let Some(t) = self.c.poll_transmit() {
                moved = true;
                n += 1;
                if !self.cut {
                    self.s.handle_datagram(self.now, t.remote, t.local, &t.data);
                }
            }
            while let Some(t) = self.s.poll_transmit() {
                moved = true;
                n += 1;
                self.c.handle_datagram(self.now, t.remote, t.local, &t.data);
            }
            while let Some(d) = self.c.poll_debug() {
                self.debug_c.push(d.text);
            }
            while self.s.poll_debug().is_some() {}
            while self.c.poll_event().is_some() {}
            while self.s.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        n
    }
    /// Runs the clock to `now + d`, firing both endpoints' timers.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = [self.c.poll_timeout(), self.s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.c.handle_timeout(self.now);
                    self.s.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = until;
    }
}

#[test]
fn espgw_client_gets_its_mode_config_and_both_networks_get_sas() {
    let mut p = Pair::new(CLIENT);
    p.c.ezvpn_start(p.now);
    p.pump();
    // The AM3 → QM1 hold and the QM exchanges.
    p.advance(Duration::from_secs(2));
    let st = p.c.ezvpn_status();
    assert_eq!(st.len(), 1);
    let st = &st[0];
    assert_eq!(st.state, "IPSEC_ACTIVE", "{:#?}", p.debug_c);
    let mc = st.config.clone().unwrap();
    let addr = mc.address.unwrap();
    assert!(
        u32::from(addr) >= u32::from(Ipv4Addr::new(10, 99, 0, 10))
            && u32::from(addr) <= u32::from(Ipv4Addr::new(10, 99, 0, 20)),
        "{addr}"
    );
    assert_eq!(
        mc.dns,
        vec![Ipv4Addr::new(10, 1, 1, 53), Ipv4Addr::new(10, 1, 1, 54)]
    );
    assert_eq!(mc.domain.as_deref(), Some("example.com"));
    // acl 150: two split networks, one SA pair each for the inside network 10.1.2.0/24.
    assert_eq!(mc.split_include.len(), 2);
    assert_eq!(p.c.ipsec_sa_pair_count(), 2);
    assert_eq!(p.s.ipsec_sa_pair_count(), 2);
    let sas = p.c.ipsec_sas(p.now);
    let inside = Proxy::subnet(Ipv4Addr::new(10, 1, 2, 0), Ipv4Addr::new(255, 255, 255, 0));
    assert!(sas.iter().all(|s| s.local_proxy == inside), "{sas:#?}");
    let remotes: Vec<Proxy> = sas.iter().map(|s| s.remote_proxy).collect();
    assert!(remotes.contains(&Proxy::subnet(
        Ipv4Addr::new(10, 1, 1, 0),
        Ipv4Addr::new(255, 255, 255, 0)
    )));
    // The server sees the client with its user and address.
    let cs = p.s.client_sessions();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].user.as_deref(), Some("alice"));
    assert_eq!(cs[0].assigned, Some(addr));
    assert!(p
        .debug_c
        .iter()
        .any(|l| l.contains("%CRYPTO-6-EZVPN_CONNECTION_UP") && l.contains("User=alice")));
}

/// A client without inside networks (a software client, as vpnc, and the load generator's
/// identities): its SAs are for its Mode Config address, and the server's for that address.
#[test]
fn client_without_inside_network_protects_its_mode_config_address() {
    let text = CLIENT.replace(" crypto ipsec client ezvpn ez inside\n", "");
    assert_ne!(text, CLIENT);
    let mut p = Pair::new(&text);
    p.c.ezvpn_start(p.now);
    p.pump();
    p.advance(Duration::from_secs(2));
    let st = p.c.ezvpn_status();
    assert_eq!(st[0].state, "IPSEC_ACTIVE", "{:#?}", p.debug_c);
    let addr = st[0].config.as_ref().and_then(|c| c.address).unwrap();
    let sas = p.c.ipsec_sas(p.now);
    assert_eq!(sas.len(), 2, "{sas:#?}");
    assert!(
        sas.iter().all(|s| s.local_proxy == Proxy::host(addr)),
        "{sas:#?}"
    );
    let server = p.s.ipsec_sas(p.now);
    assert!(
        server.iter().all(|s| s.remote_proxy == Proxy::host(addr)),
        "{server:#?}"
    );
}

#[test]
fn connect_manual_waits_for_the_exec_command() {
    let text = CLIENT.replace(" connect auto", " connect manual");
    let mut p = Pair::new(&text);
    p.c.ezvpn_start(p.now);
    assert_eq!(p.pump(), 0);
    assert_eq!(p.c.ezvpn_status()[0].state, "CONNECT_REQUIRED");
    assert!(p.c.ezvpn_connect(p.now, "ez"));
    assert!(!p.c.ezvpn_connect(p.now, "nope"));
    p.pump();
    p.advance(Duration::from_secs(2));
    assert_eq!(p.c.ezvpn_status()[0].state, "IPSEC_ACTIVE");
}

#[test]
fn wrong_password_fails_cleanly() {
    let text = CLIENT.replace("password wonderland", "password nope");
    let mut p = Pair::new(&text);
    p.c.ezvpn_start(p.now);
    p.pump();
    p.advance(Duration::from_secs(2));
    let st = &p.c.ezvpn_status()[0];
    assert_ne!(st.state, "IPSEC_ACTIVE");
    assert_eq!(p.c.ipsec_sa_pair_count(), 0);
    assert_eq!(p.s.ipsec_sa_pair_count(), 0);
}

/// The server's XAUTH REQUEST is resent every 10 s, five times, then the SA is given up
/// (IOS's phase-1 schedule), when the client's answers never arrive.
#[test]
fn transaction_mode_retransmits_every_ten_seconds_five_times() {
    let mut p = Pair::with_xauth_timeout(CLIENT, 90);
    p.c.ezvpn_start(p.now);
    // AM1 → AM2 → AM3: the server completes phase 1 and sends its XAUTH REQUEST; from
    // then on the client's datagrams are lost.
    let mut out = Vec::new();
    while let Some(t) = p.c.poll_transmit() {
        p.s.handle_datagram(p.now, t.remote, t.local, &t.data);
    }
    while let Some(t) = p.s.poll_transmit() {
        p.c.handle_datagram(p.now, t.remote, t.local, &t.data);
    }
    while let Some(t) = p.c.poll_transmit() {
        p.s.handle_datagram(p.now, t.remote, t.local, &t.data); // AM3
    }
    let start = p.now;
    while let Some(t) = p.s.poll_transmit() {
        out.push((Duration::ZERO, t.data)); // the XAUTH REQUEST
    }
    assert_eq!(out.len(), 1);
    let first = out[0].1.clone();
    let mut now = start;
    for _ in 0..40 {
        let Some(t) = p.s.poll_timeout() else { break };
        if t > start + Duration::from_secs(65) {
            break;
        }
        now = t;
        p.s.handle_timeout(now);
        while let Some(x) = p.s.poll_transmit() {
            out.push((now - start, x.data));
        }
    }
    let times: Vec<u64> = out
        .iter()
        .skip(1)
        .filter(|(_, d)| *d == first)
        .map(|(d, _)| d.as_secs())
        .collect();
    assert_eq!(times, [10, 20, 30, 40, 50], "{times:?}");
    // At 60 s the SA is given up and the client's lease returned.
    assert!(p.s.client_sessions().is_empty());
    assert_eq!(p.s.leased_addresses(), 0);
    let _ = now;
}

/// `espgw configure` adding a `connect auto` client tunnel dials it at once (AM1), as a boot
/// with that configuration would; applying it again starts nothing new.
#[test]
fn a_tunnel_added_by_reconfiguration_connects() {
    let now = Instant::now();
    // Before: one tunnel of another name, connect manual (nothing dials).
    let before = CLIENT
        .replace("ezvpn ez", "ezvpn old")
        .replace(" connect auto", " connect manual");
    let base = client_cfg(&before);
    assert_eq!(base.ezvpn.len(), 1);
    let mut c = Endpoint::new(base, rng(21));
    c.ezvpn_start(now);
    assert!(c.poll_transmit().is_none());
    let full = client_cfg(CLIENT);
    assert!(!full.ezvpn.is_empty() && !full.ezvpn[0].manual);
    c.reconfigure(now, full.clone());
    let am1 = c.poll_transmit().expect("the added tunnel sends AM1");
    let hdr = crate::isakmp::Header::new_checked(&am1.data[..]).unwrap();
    assert_eq!(hdr.exchange_type(), crate::isakmp::ExchangeType::Aggressive);
    while c.poll_transmit().is_some() {}
    // Applying the same configuration again starts nothing new.
    c.reconfigure(now, full);
    assert!(c.poll_transmit().is_none());
}
