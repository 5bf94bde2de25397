//! The per-SA families, written by hand straight into the scrape: with 10,000 SAs they
//! are 20,000 series and nearly all of a scrape's bytes, and prometheus-client's text
//! encoder (a label writer per label, per series) took 12–16 ms for them. Here each SA's
//! label block is written once per scrape into a buffer kept from scrape to scrape, and
//! each of its series copies that block: no allocation per series or per SA once the
//! buffers have grown. The text is the OpenMetrics text prometheus-client writes
//! (`# HELP`, `# TYPE … counter`, `NAME_total{labels} VALUE`), label values escaped as
//! OpenMetrics says (`\\`, `\"`, `\n`).

use std::net::Ipv4Addr;
use std::ops::Range;

use espgw_sadb::{Direction, DropReason, SaCounterValues, SaDbReader, SaRecord};

/// The buffers one scrape of the per-SA families reuses.
#[derive(Debug, Default)]
pub struct SaFamilies {
    /// Every SA's label block (`peer="…",…,transform="…"`), one after the other.
    labels: String,
    /// Each SA's block in `labels` and its counters.
    sas: Vec<(Range<usize>, SaCounterValues)>,
}

const PACKETS: (&str, &str) = (
    "espgw_ipsec_sa_packets",
    "Packets the data plane processed on an IPsec SA (show crypto ipsec sa #pkts encaps/decaps).",
);
const BYTES: (&str, &str) = (
    "espgw_ipsec_sa_bytes",
    "Bytes the data plane processed on an IPsec SA (counted for the kilobyte lifetime).",
);
const DROPS: (&str, &str) = (
    "espgw_ipsec_sa_drops",
    "Packets of an IPsec SA the data plane dropped, by reason.",
);

impl SaFamilies {
    /// Appends the three per-SA families of `region` to `out`. A writer stalled
    /// mid-update for 200 ms: this scrape has the families with no series (the next one
    /// will have them).
    pub fn encode(&mut self, region: &SaDbReader, out: &mut String) {
        self.labels.clear();
        self.sas.clear();
        let entries = region.snapshot_all().map(|s| s.entries).unwrap_or_default();
        for e in &entries {
            let Some(c) = region.counters(e.slot) else {
                continue;
            };
            let start = self.labels.len();
            label_block(&mut self.labels, &e.record);
            self.sas.push((start..self.labels.len(), c.values()));
        }
        self.family(out, PACKETS, |v| v.packets);
        self.family(out, BYTES, |v| v.bytes);
        descriptor(out, DROPS);
        for (l, v) in &self.sas {
            for r in DropReason::ALL {
                let n = v.drop_count(r);
                if n > 0 {
                    series_start(out, DROPS.0, &self.labels[l.clone()]);
                    out.push_str(",reason=\"");
                    escaped(out, r.name());
                    out.push_str("\"} ");
                    integer(out, n);
                    out.push('\n');
                }
            }
        }
    }

    /// A family with one series per SA, its value `value`.
    fn family(&self, out: &mut String, d: (&str, &str), value: impl Fn(&SaCounterValues) -> u64) {
        descriptor(out, d);
        for (l, v) in &self.sas {
            series_start(out, d.0, &self.labels[l.clone()]);
            out.push_str("} ");
            integer(out, value(v));
            out.push('\n');
        }
    }
}

/// `# HELP` and `# TYPE` of a counter family.
fn descriptor(out: &mut String, (name, help): (&str, &str)) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    out.push_str(help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push_str(" counter\n");
}

/// `NAME_total{LABELS` (the caller closes the brace).
fn series_start(out: &mut String, name: &str, labels: &str) {
    out.push_str(name);
    out.push_str("_total{");
    out.push_str(labels);
}

/// `peer="…",map="…",seq="…",spi="…",direction="…",transform="…"`; the SPI as IOS
/// prints it (`0x1A2B(6699)`, [`espgw_sadb::ios_spi`]).
fn label_block(out: &mut String, r: &SaRecord) {
    out.push_str("peer=\"");
    ipv4(out, *r.peer.ip());
    out.push_str("\",map=\"");
    escaped(out, r.crypto_map.as_str());
    out.push_str("\",seq=\"");
    integer(out, u64::from(r.crypto_map_seq));
    out.push_str("\",spi=\"0x");
    hex_upper(out, r.spi);
    out.push('(');
    integer(out, u64::from(r.spi));
    out.push_str(")\",direction=\"");
    out.push_str(match r.direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    });
    out.push_str("\",transform=\"");
    escaped(out, r.transform.ios_name());
    out.push('"');
}

/// A label value as OpenMetrics escapes it: backslash, double quote and line feed.
fn escaped(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn integer(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn ipv4(out: &mut String, a: Ipv4Addr) {
    let [a, b, c, d] = a.octets();
    let mut buf = itoa::Buffer::new();
    for (i, o) in [a, b, c, d].into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(buf.format(o));
    }
}

/// `n` in upper-case hex without leading zeros, as `{:X}` writes it.
fn hex_upper(out: &mut String, n: u32) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut buf = [0u8; 8];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 0xF) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_openmetrics_says() {
        let mut s = String::new();
        escaped(&mut s, r#"a"b\c"#);
        assert_eq!(s, r#"a\"b\\c"#);
        s.clear();
        escaped(&mut s, "plain map");
        assert_eq!(s, "plain map");
    }

    #[test]
    fn numbers_are_written_as_std_formats_them() {
        for n in [0u32, 1, 0xF, 0x10, 0x1001, 0xDEAD_BEEF, u32::MAX] {
            let mut s = String::new();
            hex_upper(&mut s, n);
            assert_eq!(s, format!("{n:X}"));
            s.clear();
            integer(&mut s, u64::from(n));
            assert_eq!(s, n.to_string());
        }
        let mut s = String::new();
        integer(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string());
        for a in ["0.0.0.0", "172.16.172.20", "255.255.255.255", "10.1.2.3"] {
            let mut s = String::new();
            ipv4(&mut s, a.parse().unwrap());
            assert_eq!(s, a);
        }
    }
}
