//! INITIAL-CONTACT behind one NAT: several peers share the NAT's public address and differ by
//! their NAT port only. A new peer's INITIAL-CONTACT clears what *that* peer (address and
//! port) had, never its neighbours' SAs; a peer that reboots behind the same mapping is
//! cleared as before.

use super::*;

const NAT_PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// A NAT with port mappings: (client, its local port) ↔ public port.
struct NatLab {
    server: Endpoint,
    clients: Vec<Endpoint>,
    /// (client index, private source) → public port, in mapping order.
    map: Vec<(usize, SocketAddr, u16)>,
    next_port: u16,
    now: Instant,
    ev_server: Vec<Event>,
}

fn private(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, 2 + i as u8)
}

/// The client's inside network: 10.2.(i+1).0/24.
fn inside(i: usize) -> String {
    format!("10.2.{}.0", i + 1)
}

impl NatLab {
    fn new(n: usize) -> NatLab {
        let o = Opts::default();
        // One crypto map entry per client network, all with the NAT's address as peer.
        let mut sc = cfg(R1, NAT_PUBLIC, "10.1.1.0", &inside(0), &o);
        for i in 1..n {
            let mut e = sc.maps[0].clone();
            e.seq = 10 * (i as u32 + 1);
            e.remote_proxy = net(&inside(i));
            sc.maps.push(e);
        }
        let mut server = Endpoint::new(sc, rng(100));
        server.debug_isakmp = true;
        let clients = (0..n).map(|i| Self::client(i, 200 + i as u64)).collect();
        NatLab {
            server,
            clients,
            map: vec![],
            next_port: 40_000,
            now: Instant::now(),
            ev_server: vec![],
        }
    }
    fn client(i: usize, seed: u64) -> Endpoint {
        let o = Opts::default();
        Endpoint::new(cfg(private(i), R1, &inside(i), "10.1.1.0", &o), rng(seed))
    }
    fn public_port(&mut self, i: usize, src: SocketAddr) -> u16 {
        if let Some(&(_, _, p)) = self.map.iter().find(|(c, s, _)| *c == i && *s == src) {
            return p;
        }
        let p = self.next_port;
        self.next_port += 1;
        self.map.push((i, src, p));
        p
    }
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while let Some(t) = self.clients[i].poll_transmit() {
                    moved = true;
                    let p = self.public_port(i, t.local);
                    let from = SocketAddr::new(NAT_PUBLIC.into(), p);
                    self.server
                        .handle_datagram(self.now, t.remote, from, &t.data);
                }
                while self.clients[i].poll_event().is_some() {}
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                assert_eq!(t.remote.ip(), std::net::IpAddr::from(NAT_PUBLIC));
                let Some(&(i, src, _)) = self.map.iter().find(|m| m.2 == t.remote.port()) else {
                    continue; // no mapping: the NAT drops it
                };
                self.clients[i].handle_datagram(self.now, src, t.local, &t.data);
            }
            while let Some(e) = self.server.poll_event() {
                self.ev_server.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("ping-pong never settled");
    }
    fn connect(&mut self, i: usize) {
        assert!(self.clients[i].initiate(self.now, "vpn", 10));
        self.pump();
    }
    fn downs(&self) -> Vec<u32> {
        self.ev_server
            .iter()
            .filter_map(|e| match e {
                Event::IpsecSaDown { inbound_spi, .. } => Some(*inbound_spi),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn initial_contact_behind_one_nat_clears_only_that_clients_sas() {
    let mut lab = NatLab::new(3);
    for i in 0..3 {
        lab.connect(i);
        assert_eq!(lab.server.ipsec_sa_pair_count(), i + 1, "client {i} is up");
    }
    // Every client came from the NAT's address, each from its own port (floated to 4500
    // behind the NAT: the NAT-D hashes did not match).
    let sas = lab.server.ipsec_sas(lab.now);
    let mut ports: Vec<u16> = sas.iter().map(|s| s.remote_port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3, "{sas:?}");
    assert!(sas.iter().all(|s| s.remote == NAT_PUBLIC));
    assert_eq!(lab.server.isakmp_sa_count(), 3);
    // Each client sent INITIAL-CONTACT, and none tore another one down.
    let debug: Vec<String> = Lab::debug(&mut lab.server);
    assert_eq!(
        debug
            .iter()
            .filter(|l| l.contains("received INITIAL_CONTACT from 198.51.100.1"))
            .count(),
        3,
        "{debug:#?}"
    );
    assert!(lab.downs().is_empty(), "{:?}", lab.ev_server);

    // Client 1 reboots: a fresh endpoint behind the same NAT mapping (same private address
    // and ports, so the same public port). Its INITIAL-CONTACT clears its old SAs only.
    let old1: Vec<u32> = {
        let public: Vec<u16> = lab.map.iter().filter(|m| m.0 == 1).map(|m| m.2).collect();
        lab.server
            .ipsec_sas(lab.now)
            .iter()
            .filter(|s| public.contains(&s.remote_port))
            .map(|s| s.inbound_spi)
            .collect()
    };
    assert_eq!(old1.len(), 1);
    lab.clients[1] = NatLab::client(1, 999);
    lab.connect(1);
    assert_eq!(
        lab.downs(),
        old1,
        "only the rebooted client's old pair is cleared"
    );
    assert_eq!(lab.server.ipsec_sa_pair_count(), 3);
    // The dead phase 1 goes at the next timer tick.
    lab.now += Duration::from_secs(1);
    lab.server.handle_timeout(lab.now);
    lab.pump();
    assert_eq!(lab.server.isakmp_sa_count(), 3);
    assert_eq!(lab.server.ipsec_sa_pair_count(), 3);
}
