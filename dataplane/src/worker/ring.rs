//! A bounded lock-free ring between exactly two threads (single producer, single
//! consumer): the hand-off between workers (see [`super::fanout`]). [`channel`] makes
//! the two ends; neither is `Clone`, so each side has one user by construction.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Next slot the consumer reads (only the consumer stores it).
    head: AtomicUsize,
    /// Next slot the producer writes (only the producer stores it).
    tail: AtomicUsize,
}

// SAFETY: a slot is written only by the producer while it is outside head..tail and
// read only by the consumer while inside; the Release store of tail (head) publishes
// the slot to the other side, which loads it with Acquire. Values move between threads,
// hence `T: Send`.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above; the ring owns its values.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let (h, t) = (*self.head.get_mut(), *self.tail.get_mut());
        for i in h..t {
            // SAFETY: slots in head..tail hold initialised values nobody else reads
            // (both ends are gone: this is the last reference).
            unsafe { self.slots[i & self.mask].get_mut().assume_init_drop() };
        }
    }
}

/// The sending end.
pub struct Producer<T>(Arc<Ring<T>>);
/// The receiving end.
pub struct Consumer<T>(Arc<Ring<T>>);

/// A ring of at least `capacity` slots (rounded up to a power of two).
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let n = capacity.max(1).next_power_of_two();
    let ring = Arc::new(Ring {
        slots: (0..n)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
        mask: n - 1,
        head: AtomicUsize::new(0),
        tail: AtomicUsize::new(0),
    });
    (Producer(ring.clone()), Consumer(ring))
}

impl<T> Producer<T> {
    /// Appends `v`, or gives it back when the ring is full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let r = &*self.0;
        let t = r.tail.load(Ordering::Relaxed);
        if t - r.head.load(Ordering::Acquire) > r.mask {
            return Err(v);
        }
        // SAFETY: slot t is outside head..tail (not full), so the consumer does not
        // read it, and `&mut self` makes this the only producer.
        unsafe { (*r.slots[t & r.mask].get()).write(v) };
        r.tail.store(t + 1, Ordering::Release);
        Ok(())
    }
}

impl<T> Consumer<T> {
    /// Takes the oldest value, if any.
    pub fn pop(&mut self) -> Option<T> {
        let r = &*self.0;
        let h = r.head.load(Ordering::Relaxed);
        if h == r.tail.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: slot h is inside head..tail: initialised by the producer (published
        // by its Release store of tail) and not written again until head passes it;
        // `&mut self` makes this the only consumer.
        let v = unsafe { (*r.slots[h & r.mask].get()).assume_init_read() };
        r.head.store(h + 1, Ordering::Release);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_and_empty() {
        let (mut p, mut c) = channel::<u32>(3);
        assert_eq!(c.pop(), None);
        for i in 0..4 {
            assert_eq!(p.push(i), Ok(()));
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.pop(), Some(0));
        assert_eq!(p.push(4), Ok(()));
        assert_eq!(
            (1..=4).map(|_| c.pop().unwrap()).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn two_threads_keep_order_and_drop_leftovers() {
        let (mut p, mut c) = channel::<Vec<u64>>(8);
        let t = std::thread::spawn(move || {
            let mut next = 0u64;
            while next < 100_000 {
                if let Some(v) = c.pop() {
                    assert_eq!(v, vec![next; 2]);
                    next += 1;
                }
            }
            c
        });
        let mut i = 0u64;
        while i < 100_000 {
            if p.push(vec![i; 2]).is_ok() {
                i += 1;
            }
        }
        let _c = t.join().unwrap();
        // Values left in the ring are dropped with it (no leak under Miri/valgrind).
        p.push(vec![1]).unwrap();
    }
}
