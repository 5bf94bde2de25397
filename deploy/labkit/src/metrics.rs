//! Reading espgw's OpenMetrics endpoint as a monitoring system does: the text parsed by
//! Python's `prometheus_client` (an implementation we did not write), fetched from inside
//! the router's namespace where the endpoint listens.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::lab::{Lab, Node};

/// One sample: its name (with `_total`, `_bucket`… as the parser gives it), labels, value.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Reads OpenMetrics text from stdin (or fetches `argv[1]`), prints the samples as JSON.
const SCRIPT: &str = "import sys, json, urllib.request\n\
from prometheus_client.parser import text_string_to_metric_families\n\
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode() if len(sys.argv) > 1 else sys.stdin.read()\n\
out = []\n\
for fam in text_string_to_metric_families(text):\n\
\x20   for s in fam.samples:\n\
\x20       out.append({'name': s.name, 'labels': s.labels, 'value': s.value})\n\
print(json.dumps(out))\n";

fn samples(what: &str, out: std::process::Output) -> Result<Vec<Sample>> {
    if !out.status.success() {
        return Err(Error::Command {
            cmd: what.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse {
        what: what.into(),
        detail: e.to_string(),
    })
}

/// The samples of `text` (python3-prometheus-client, installed by deploy/setup.sh).
pub fn parse(text: &str) -> Result<Vec<Sample>> {
    let what = "prometheus_client's parser";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting /usr/bin/python3", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::io("writing to python3", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for python3", e))?;
    samples(what, out)
}

/// `GET http://ADDR/metrics` from inside `node`, parsed.
pub fn scrape(lab: &Lab, node: Node, addr: &str) -> Result<Vec<Sample>> {
    let url = format!("http://{addr}/metrics");
    let out = lab.exec(node, &["/usr/bin/python3", "-c", SCRIPT, &url])?;
    samples(&format!("[{node}] scrape of {url}"), out)
}

/// The sum of the samples named `name` whose labels include all of `want`.
pub fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_parser_reads_counters_histograms_and_labels() {
        let text = "# TYPE a counter\n# HELP a A.\na_total{x=\"1\",y=\"p\"} 3\na_total{x=\"2\",y=\"p\"} 4\n\
                    # TYPE h histogram\n# HELP h H.\nh_sum 0.5\nh_count 2\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n# EOF\n";
        let s = parse(text).expect("python3-prometheus-client");
        assert_eq!(sum(&s, "a_total", &[("y", "p")]), 7.0);
        assert_eq!(sum(&s, "a_total", &[("x", "2")]), 4.0);
        assert_eq!(sum(&s, "h_bucket", &[("le", "+Inf")]), 2.0);
        assert_eq!(sum(&s, "h_count", &[]), 2.0);
        assert!(parse("not metrics {{{").is_err());
    }
}
