//! The IOS configuration parser on arbitrary text: it must never panic, every error and
//! warning must name a line of the input, a configuration that parses must render its show
//! screens, every ACL line must print as IOS text that parses back to the same line, and
//! the dataplane's view (interfaces, classifier rules) must either build or name a line;
//! the rules it builds must decide packets as the ACLs do.
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
        dataplane_view(cfg, lines);
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

/// The dataplane's view of a configuration that parsed: an error names a line of the
/// input (or is about the whole file); the classifier rules decide as the crypto maps'
/// ACLs do for a few probe packets.
fn dataplane_view(cfg: &espgw_control::config::Config, lines: usize) {
    use espgw_dataplane::ios::{DataplanePolicy, IosError};
    use espgw_dataplane::xdp::acl::first_match;
    use std::net::Ipv4Addr;
    let p = match DataplanePolicy::from_config(cfg) {
        Ok(p) => p,
        Err(IosError::NoLinuxName { line, .. })
        | Err(IosError::Acl { line, .. })
        | Err(IosError::MapName { line, .. }) => {
            assert!(line >= 1 && line <= lines, "dataplane error on line {line} of {lines}");
            return;
        }
        Err(_) => return,
    };
    let _ = p.pick(None, None);
    // For each probe, the first entry (by map order) whose ACL permits it, IOS-style.
    let probes = [
        (Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(10, 1, 2, 2), 1u8, None),
        (Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(10, 1, 2, 2), 6, Some((1024, 80))),
        (Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(10, 1, 2, 2), 17, Some((53, 53))),
        (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(10, 0, 0, 1), 6, None),
    ];
    for (src, dst, proto, ports) in probes {
        let got = first_match(&p.rules, src, dst, proto, ports).map(|r| r.policy);
        let mut want = None;
        'maps: for map in cfg.applied_maps() {
            for e in map.entries.values().filter(|e| !e.peers.is_empty()) {
                let Some(acl) = cfg.acl_for(e) else { continue };
                let (sp, dp) = ports.unwrap_or((0, 0));
                // Only whole packets: the ACL model has no notion of fragments.
                if ports.is_none() && (proto == 6 || proto == 17) {
                    want = got;
                    break 'maps;
                }
                if acl.evaluate(proto, src, sp, dst, dp).map(|x| x.action)
                    == Some(espgw_control::config::AclAction::Permit)
                {
                    want = Some(u16::try_from(e.seq).unwrap_or(u16::MAX));
                    break 'maps;
                }
            }
        }
        assert_eq!(got, want, "{src} -> {dst} proto {proto} ports {ports:?}");
    }
}
