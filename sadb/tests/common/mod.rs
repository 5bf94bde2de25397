//! What the region integration tests share.

use std::path::{Path, PathBuf};

/// A region path under /dev/shm unique to this test and process. The region and the files
/// a test keeps beside it (`PATH.final`, `PATH.seqN`) are removed on drop, also on failure.
pub struct TempRegion(PathBuf);

impl TempRegion {
    pub fn new(name: &str) -> TempRegion {
        let p = PathBuf::from(format!(
            "/dev/shm/espgw-sadb-test-{}-{}",
            std::process::id(),
            name
        ));
        let _ = std::fs::remove_file(&p);
        TempRegion(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("final"));
        for i in 0..4 {
            let _ = std::fs::remove_file(self.0.with_extension(format!("seq{i}")));
        }
    }
}
