//! Thousands of tunnels through one espgw router (real XDP and AF_XDP on
//! veth in namespaces): R1's IOS configuration has 10,000 crypto map entries
//! (one site-to-site peer each, its own remote /24 behind it), the
//! dataplane takes interfaces and crypto ACLs from it, and 10,000 outbound
//! SAs (plus their inbound twins) are installed through the real SA-database
//! writer. hostA sends one UDP datagram into each remote network; each one
//! must leave R1 as ESP on its own tunnel's SA: that SA's packet counter is
//! one and every other's unchanged, and on the wire (tshark, which parses
//! the ESP-NULL payload by itself) each SPI appears once, sent to its own
//! peer, carrying a packet to its own remote network. Nothing is dropped.

#[path = "xdp_support/tunnel.rs"]
mod tunnel;
mod xdp_support;

use espgw_dataplane::sadb::{
    Direction, Geometry, Ipv4Prefix, ProxyIdentity, SaDb, SaRecord, SlotId,
};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use tunnel::{capture_wire_buffered, R1_OUT};
use xdp_support::{dataplane_from_config, worker_sum, Topology};

const TUNNELS: u32 = 10_000;
const SPI_OUT: u32 = 0x0100_0000;
const SPI_IN: u32 = 0x0200_0000;

fn peer(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn remote(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (100 + i / 256) as u8, (i % 256) as u8, 0)
}

/// R1 with one crypto map entry (and one named ACL) per tunnel.
fn config() -> String {
    let mut c = String::from(
        "hostname R1\n\
         crypto isakmp policy 10\n encr aes\n authentication pre-share\n\
         crypto isakmp key k3y address 0.0.0.0 0.0.0.0\n\
         crypto ipsec transform-set t esp-aes esp-sha-hmac\n",
    );
    for i in 0..TUNNELS {
        let seq = i + 1;
        c.push_str(&format!(
            "crypto map vpn {seq} ipsec-isakmp\n set peer {}\n set transform-set t\n match address T{seq}\n",
            peer(i)
        ));
    }
    c.push_str(
        "interface Ethernet1/0\n ip address 172.16.172.10 255.255.255.240\n crypto map vpn\n\
         interface Ethernet0/0\n ip address 10.1.1.1 255.255.255.0\n",
    );
    for i in 0..TUNNELS {
        c.push_str(&format!(
            "ip access-list extended T{}\n permit ip 10.1.1.0 0.0.0.255 {} 0.0.0.255\n",
            i + 1,
            remote(i)
        ));
    }
    c.push_str("end\n");
    c
}

fn record(i: u32, dir: Direction) -> SaRecord {
    let spi = if dir == Direction::Outbound {
        SPI_OUT + i
    } else {
        SPI_IN + i
    };
    let proxy = ProxyIdentity {
        local: Ipv4Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24),
        remote: Ipv4Prefix::new(remote(i), 24),
        protocol: 0,
        local_port: 0,
        remote_port: 0,
    };
    let ends = (
        SocketAddrV4::new(R1_OUT, 500),
        SocketAddrV4::new(peer(i), 500),
    );
    let mut key = [0u8; 20];
    key.copy_from_slice(&tunnel::random_key(20));
    SaRecord::null_sha(spi, dir, ends, proxy, i + 1, &key)
}

#[test]
fn ten_thousand_tunnels_one_packet_each_on_its_own_sa() {
    let t = Topology::with_wire("mt", 1);
    // Every peer lies behind R2.
    t.ip(
        "r1",
        &["route", "add", "198.18.0.0/15", "via", "172.16.172.20"],
    );
    // R2 stands in for the path to them: it drops the ESP without a word
    // (no ICMP unreachable back to R1).
    t.ip("r2", &["route", "add", "blackhole", "198.18.0.0/15"]);
    let db_path = t.dir.join("sadb");
    let mut db = SaDb::open_or_create(&db_path, Geometry::with_capacity(2 * TUNNELS + 16)).unwrap();
    let mut out_slots: Vec<SlotId> = Vec::new();
    for i in 0..TUNNELS {
        out_slots.push(db.install(&record(i, Direction::Outbound)).unwrap());
        db.install(&record(i, Direction::Inbound)).unwrap();
    }
    let (dp, _conf, stats) = dataplane_from_config(
        &t,
        &config(),
        &["--sadb", db_path.to_str().unwrap(), "--cores", "0"],
    );
    let log = dp.log_text();
    assert!(log.contains(&format!("{TUNNELS} ACL rule(s)")), "{log}");
    assert!(
        log.contains(&format!(
            "crypto ACL compiled: {TUNNELS} rule(s): {TUNNELS} destination prefix(es), {TUNNELS} cell(s)"
        )),
        "{log}"
    );
    // The workers ask for every peer's next hop when they pick the SAs up;
    // let that settle before the traffic.
    std::thread::sleep(Duration::from_secs(5));
    // A capture buffer that holds the whole burst (the default one drops some).
    let (mut cap, pcap) = capture_wire_buffered(&t, 65536);

    // One datagram into each remote network, paced.
    let script = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range({TUNNELS}):\n\
         \x20   s.sendto(b'tunnel %d' % i, ('10.%d.%d.9' % (100 + i // 256, i % 256), 7000))\n\
         \x20   time.sleep(0.0004)\n"
    );
    let out = t.exec_output("hA", &["/usr/bin/python3", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
    let reader = db.reader().clone();
    let counted = || {
        out_slots
            .iter()
            .filter(|s| reader.counters(**s).unwrap().values().packets > 0)
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while counted() < TUNNELS as usize {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {TUNNELS} SAs counted a packet; stats: {}",
            counted(),
            xdp_support::stats(&stats).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(cap.signal_and_wait("-INT", Duration::from_secs(5)));

    // Each tunnel's SA carried exactly its one packet.
    for (i, s) in out_slots.iter().enumerate() {
        let v = reader.counters(*s).unwrap().values();
        assert_eq!(v.packets, 1, "tunnel {i}: {v:?}");
    }
    let s = xdp_support::stats(&stats).unwrap();
    assert_eq!(worker_sum(&s, "esp_encap"), u64::from(TUNNELS), "{s}");
    assert_eq!(worker_sum(&s, "drop_no_sa"), 0, "{s}");

    // On the wire: SPI, peer and inner destination belong together.
    let fields = t.exec_output(
        "wire",
        &[
            "tshark",
            "-r",
            pcap.to_str().unwrap(),
            "-o",
            "esp.enable_null_encryption_decode_heuristic:TRUE",
            "-Y",
            "esp && !icmp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "ip.dst",
        ],
    );
    assert!(fields.status.success(), "{fields:?}");
    let text = String::from_utf8_lossy(&fields.stdout);
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for line in text.lines() {
        let mut cols = line.split('\t');
        let spi = cols.next().unwrap();
        let spi = u32::from_str_radix(spi.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("SPI {spi:?} in {line:?}"));
        let i = spi
            .checked_sub(SPI_OUT)
            .filter(|i| *i < TUNNELS)
            .unwrap_or_else(|| panic!("SPI {spi:#x} is not an outbound SA: {line}"));
        let dsts: Vec<Ipv4Addr> = cols
            .next()
            .unwrap_or("")
            .split(',')
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(dsts.len(), 2, "outer and inner destination: {line}");
        assert_eq!(dsts[0], peer(i), "{line}");
        let r = remote(i).octets();
        assert_eq!(dsts[1], Ipv4Addr::new(r[0], r[1], r[2], 9), "{line}");
        *seen.entry(i).or_default() += 1;
    }
    assert_eq!(
        seen.len(),
        TUNNELS as usize,
        "distinct tunnels on the wire; tcpdump: {}; stats: {s}",
        cap.log_text()
    );
    assert!(seen.values().all(|n| *n == 1), "one ESP packet per tunnel");
}
