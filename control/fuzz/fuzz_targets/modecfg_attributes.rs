//! Transaction Mode attributes (XAUTH, Mode Config, Cisco Unity) on arbitrary bytes: the
//! generic attribute list and the typed view of it never panic, and whatever types
//! cleanly emits in the form its type has and types back to the same value.
#![no_main]

use espgw_control::ike::endpoint::attributes::CfgAttr;
use espgw_control::isakmp::attr::Attr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(list) = Attr::parse_list(data, "ATTR") else {
        return;
    };
    let Ok(typed) = CfgAttr::parse_list(&list) else {
        return;
    };
    for t in &typed {
        let wire = t.to_attr();
        let mut bytes = Vec::new();
        wire.emit(&mut bytes);
        let back = Attr::parse_list(&bytes, "ATTR").expect("emitted attribute parses");
        assert_eq!(back.len(), 1);
        assert_eq!(&CfgAttr::parse(&back[0]).expect("emitted attribute types"), t);
        let _ = t.debug_name();
        let _ = CfgAttr::parse(&t.empty()).expect("the asked-for form types");
    }
});
