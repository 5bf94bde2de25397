//! The SIMD dispatch levels a batch-crypto test runs on (shared by the batch_* tests).

use espgw_dataplane::crypto::tdes::Level;

/// The levels this CPU runs; each one it cannot run is recorded as skipped for `test`
/// (espgw_lab::prereq: deploy/test.sh prints the count).
pub fn levels(test: &str) -> Vec<Level> {
    for l in Level::unavailable() {
        espgw_lab::prereq::skip(
            &format!("{test} [{}]", l.name()),
            &format!("this CPU lacks {}", l.needs()),
        );
    }
    let run = Level::available();
    let names: Vec<&str> = run.iter().map(|l| l.name()).collect();
    let skipped: Vec<&str> = Level::unavailable().iter().map(|l| l.name()).collect();
    println!(
        "{test}: crypto dispatch levels exercised on this CPU: {}; not available: {}",
        names.join(", "),
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        }
    );
    run
}
