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
    Level::available()
}
