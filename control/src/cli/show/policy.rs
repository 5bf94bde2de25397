//! `show crypto isakmp default policy` and `show crypto ipsec transform-set`.

use std::fmt::Write as _;

use super::super::views::TransformSetView;
use crate::config::model::IsakmpPolicy;

/// `show crypto isakmp default policy`: the suites used when no `crypto isakmp policy`
/// is configured.
pub fn isakmp_default_policy(policies: &[IsakmpPolicy]) -> String {
    let mut out = String::from("\nDefault IKE policy\n");
    for (i, p) in policies.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "Default Protection suite of priority {}", p.priority);
        super::policy_body(&mut out, p);
    }
    out
}

/// `show crypto ipsec transform-set`.
pub fn transform_sets(sets: &[TransformSetView]) -> String {
    let mut out = String::new();
    for t in sets {
        let _ = writeln!(out, "Transform set {}: {{ {}  }}", t.name, t.transforms);
        let _ = writeln!(out, "   will negotiate = {{ {},  }},", t.mode.ios_name());
        out.push('\n');
    }
    out
}
