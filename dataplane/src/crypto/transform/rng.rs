//! Per-worker IV source: ChaCha12 seeded once from the OS, so no system call per packet.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

/// A fast CSPRNG for CBC IVs (RFC 4303 §3.2: IVs must be unpredictable). One per worker;
/// it is not shared between threads.
pub struct IvRng {
    rng: ChaCha12Rng,
}

impl IvRng {
    /// Seeds from the operating system once.
    pub fn from_os() -> Self {
        IvRng {
            rng: ChaCha12Rng::from_os_rng(),
        }
    }

    /// A deterministic generator, for tests and reproducible tools only.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        IvRng {
            rng: ChaCha12Rng::from_seed(seed),
        }
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        self.rng.fill_bytes(out);
    }
}

impl std::fmt::Debug for IvRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IvRng")
    }
}
