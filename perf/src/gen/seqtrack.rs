//! Exact loss, duplicate and reordering counts of one stream (one generator thread's
//! sequence numbers 0, 1, 2, … of one trial), from a bitmap of the numbers seen.

/// What one stream's receiver saw.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Frames whose number had been received before.
    pub duplicates: u64,
    /// Frames that arrived after a frame with a higher number (and were not duplicates).
    pub reordered: u64,
    /// Highest number seen plus one (0: none).
    pub next: u64,
}

/// A bitmap never grows past this many sequence numbers (128 MiB of bits): a frame with a
/// larger number is counted as `out_of_range` instead (a corrupted probe).
pub const MAX_SEQ: u64 = 1 << 30;

impl SeqTracker {
    /// Records `seq`; false if it was out of range.
    pub fn record(&mut self, seq: u64) -> bool {
        if seq >= MAX_SEQ {
            return false;
        }
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if w >= self.seen.len() {
            self.seen.resize((w + 1).next_power_of_two().max(1024), 0);
        }
        let bit = 1u64 << b;
        if self.seen[w] & bit != 0 {
            self.duplicates += 1;
            return true;
        }
        self.seen[w] |= bit;
        self.unique += 1;
        if seq + 1 < self.next {
            self.reordered += 1;
        } else {
            self.next = seq + 1;
        }
        true
    }

    /// Numbers below `sent` never received.
    pub fn lost(&self, sent: u64) -> u64 {
        let full = (sent / 64) as usize;
        let mut have: u64 = self
            .seen
            .iter()
            .take(full)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        if !sent.is_multiple_of(64) {
            if let Some(w) = self.seen.get(full) {
                have += u64::from((w & ((1u64 << (sent % 64)) - 1)).count_ones());
            }
        }
        sent - have
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_duplicates_and_reordering_exactly() {
        let mut t = SeqTracker::default();
        for s in [0u64, 1, 2, 4, 3, 3, 7, 5, 200, 200, 199] {
            assert!(t.record(s));
        }
        // sent 0..=200: missing 6, 8..=198 -> 1 + 191
        assert_eq!(t.unique, 9);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.reordered, 3); // 3 after 4, 5 after 7, 199 after 200
        assert_eq!(t.lost(201), 201 - 9);
        assert_eq!(t.lost(3), 0);
        assert_eq!(t.lost(64), 64 - 7);
        assert!(!t.record(MAX_SEQ));
    }

    #[test]
    fn in_order_stream_has_no_events() {
        let mut t = SeqTracker::default();
        for s in 0..100_000u64 {
            t.record(s);
        }
        assert_eq!((t.unique, t.duplicates, t.reordered), (100_000, 0, 0));
        assert_eq!(t.lost(100_000), 0);
        assert_eq!(t.lost(100_010), 10);
    }
}
