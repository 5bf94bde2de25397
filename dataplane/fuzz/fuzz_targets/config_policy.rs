//! The dataplane's view of an IOS configuration on arbitrary text: for every text that
//! parses (the parser itself is `control/fuzz`'s `config_parse`), the interfaces and
//! classifier rules must either build or name a line of the input, and the rules must
//! decide packets as the crypto maps' ACLs do.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let map = espgw_config::InterfaceMap::parse("Ethernet0/0=in0,Ethernet1/0=out0");
    let report = espgw_config::check_config(&text, &map.unwrap());
    if report.errors.is_empty() {
        dataplane_view(&report.config, text.lines().count());
    }
});

/// The dataplane's view of a configuration that parsed: an error names a line of the
/// input (or is about the whole file); the classifier rules decide as the crypto maps'
/// ACLs do for a few probe packets.
fn dataplane_view(cfg: &espgw_config::Config, lines: usize) {
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
                    == Some(espgw_config::AclAction::Permit)
                {
                    want = Some(u16::try_from(e.seq).unwrap_or(u16::MAX));
                    break 'maps;
                }
            }
        }
        assert_eq!(got, want, "{src} -> {dst} proto {proto} ports {ports:?}");
    }
    // The compiled classifier (LPM tries and cell walks) decides as the walk does, or the
    // list is refused with a reason.
    use espgw_dataplane::xdp::classify::{CompiledAcl, Verdict};
    if let Ok(c) = CompiledAcl::compile(&p.rules) {
        for (src, dst, proto, ports) in probes {
            assert_eq!(
                c.lookup(src, dst, proto, ports),
                Verdict::of_walk(&p.rules, src, dst, proto, ports),
                "compiled: {src} -> {dst} proto {proto} ports {ports:?}"
            );
        }
    }
}
