//! The IOS configuration parser on arbitrary text: it must never panic, every error and
//! warning must name a line of the input, a configuration that parses must render its show
//! screens, and every ACL line must print as IOS text that parses back to the same line.
//! (The dataplane's view of the same text is `dataplane/fuzz`'s `config_policy` target.)
#![no_main]

use espgw_control::cli::api::{CryptoMapView, Response};
use espgw_control::cli::show;
use espgw_control::config::{check_config, InterfaceMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let ifmap = InterfaceMap::parse("Ethernet0/0=in0,Ethernet1/0=out0").unwrap();
    let report = check_config(&text, &ifmap);
    for e in &report.errors {
        assert!(e.line >= 1 && e.line <= lines, "error on line {} of {lines}", e.line);
        let _ = e.to_string();
    }
    for w in &report.warnings {
        assert!(w.line <= lines, "warning on line {} of {lines}", w.line);
    }
    let cfg = &report.config;
    if report.errors.is_empty() {
        let maps = CryptoMapView::from_config(cfg, |_, _| None);
        let _ = show::crypto_map(&maps);
        let _ = show::render(&Response::isakmp_policies(cfg));
        for r in cfg.map_entries() {
            let _ = cfg.proxy_pairs(r.entry);
            let _ = cfg.transform_sets_for(r.entry);
            let _ = cfg.local_address_for_map(r.map_name());
        }
        // Remote access: every reference a clean parse kept resolves.
        let ra = &cfg.remote_access;
        for g in ra.groups.values() {
            if let Some(p) = &g.pool {
                assert!(ra.pools.contains_key(p), "group {} pool {p}", g.name);
            }
            assert!(g.dns.len() <= 2 && g.wins.len() <= 2);
        }
        for p in ra.pools.values() {
            assert!(p.ranges.iter().all(|(a, b)| a <= b) && p.size() >= 1);
        }
        for r in &ra.dynamic_refs {
            assert!(ra.dynamic_maps.contains_key(&r.dynamic));
            assert!(cfg.crypto_maps.contains_key(&r.map));
        }
        // Logging: levels are IOS's, the buffer at least IOS's minimum, and the screen
        // renders for what parsed.
        let l = &cfg.logging;
        assert!(l.trap <= 7);
        assert!(l.buffered.is_none_or(|b| b.level <= 7 && b.size >= 4096));
        assert!(l.rate_limit.is_none_or(|r| r.per_second >= 1));
        let logger = espgw_control::daemon::logging::Logger::offline(l, cfg.hostname.as_deref());
        let _ = show::render(&Response::Logging { view: logger.view() });
        // Easy VPN client: a clean parse has a group, a peer and at most one outside
        // interface per client, and every interface it names exists.
        for c in cfg.ezvpn_clients.values() {
            assert!(c.group.is_some() && !c.peers.is_empty(), "ezvpn {}", c.name);
            assert!(c.outside.len() <= 1);
            for i in c.outside.iter().chain(&c.inside) {
                assert!(cfg.interface(i).is_some(), "ezvpn {} interface {i}", c.name);
            }
        }
    }
    for acl in cfg.access_lists.values() {
        for entry in &acl.entries {
            let again = format!("access-list 150 {}\n", entry.ios_text());
            let back = check_config(&again, &InterfaceMap::default());
            assert!(back.errors.is_empty(), "{again:?}: {:?}", back.errors);
            let mut parsed = back.config.access_lists["150"].entries[0].clone();
            parsed.line = entry.line;
            assert_eq!(&parsed, entry, "{again:?}");
        }
    }
});
