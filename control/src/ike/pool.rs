//! `ip local pool` address allocation: each client gets a distinct address, given back on
//! DELETE, DPD, expiry or `clear crypto session`. Allocation is O(1) amortised (a free
//! list, lowest address first on a fresh pool) and an address is leased to one owner (the
//! phase-1 SA's initiator cookie) at a time.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// Why no address was leased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("pool {0} is exhausted")]
    Exhausted(String),
    #[error("no pool named {0}")]
    NoSuchPool(String),
}

/// One pool: its ranges, what is free, and who holds what.
#[derive(Debug, Clone)]
pub struct AddressPool {
    pub name: String,
    ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    free: BTreeSet<u32>,
    leases: HashMap<u32, [u8; 8]>,
}

impl AddressPool {
    pub fn new(name: &str, ranges: &[(Ipv4Addr, Ipv4Addr)]) -> AddressPool {
        let free = ranges
            .iter()
            .flat_map(|(a, b)| u32::from(*a)..=u32::from(*b))
            .collect();
        AddressPool {
            name: name.to_string(),
            ranges: ranges.to_vec(),
            free,
            leases: HashMap::new(),
        }
    }
    /// Leases the lowest free address to `owner` (the same owner asking again gets the
    /// address it holds).
    pub fn lease(&mut self, owner: [u8; 8]) -> Result<Ipv4Addr, PoolError> {
        if let Some((a, _)) = self.leases.iter().find(|(_, o)| **o == owner) {
            return Ok(Ipv4Addr::from(*a));
        }
        let a = self
            .free
            .pop_first()
            .ok_or_else(|| PoolError::Exhausted(self.name.clone()))?;
        self.leases.insert(a, owner);
        Ok(Ipv4Addr::from(a))
    }
    /// Gives `addr` back if `owner` holds it; true if it did.
    pub fn release(&mut self, addr: Ipv4Addr, owner: [u8; 8]) -> bool {
        let a = u32::from(addr);
        if self.leases.get(&a) == Some(&owner) {
            self.leases.remove(&a);
            self.free.insert(a);
            true
        } else {
            false
        }
    }
    pub fn in_use(&self) -> usize {
        self.leases.len()
    }
    pub fn available(&self) -> usize {
        self.free.len()
    }
    pub fn holder(&self, addr: Ipv4Addr) -> Option<[u8; 8]> {
        self.leases.get(&u32::from(addr)).copied()
    }
    pub fn ranges(&self) -> &[(Ipv4Addr, Ipv4Addr)] {
        &self.ranges
    }
}

/// Every configured pool, by name.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    pools: HashMap<String, AddressPool>,
}

impl Pools {
    pub fn new<'a>(defs: impl IntoIterator<Item = (&'a str, &'a [(Ipv4Addr, Ipv4Addr)])>) -> Pools {
        Pools {
            pools: defs
                .into_iter()
                .map(|(n, r)| (n.to_string(), AddressPool::new(n, r)))
                .collect(),
        }
    }
    pub fn lease(&mut self, pool: &str, owner: [u8; 8]) -> Result<Ipv4Addr, PoolError> {
        self.pools
            .get_mut(pool)
            .ok_or_else(|| PoolError::NoSuchPool(pool.to_string()))?
            .lease(owner)
    }
    pub fn release(&mut self, pool: &str, addr: Ipv4Addr, owner: [u8; 8]) -> bool {
        self.pools
            .get_mut(pool)
            .is_some_and(|p| p.release(addr, owner))
    }
    pub fn get(&self, pool: &str) -> Option<&AddressPool> {
        self.pools.get(pool)
    }
    /// Addresses leased in every pool.
    pub fn leased(&self) -> usize {
        self.pools.values().map(|p| p.in_use()).sum()
    }
    /// A new configuration: pools keep their leases where the address is still in range;
    /// leases outside the new ranges are forgotten (their clients keep the address until
    /// they go; it is never handed out again).
    pub fn reconfigure<'a>(
        &mut self,
        defs: impl IntoIterator<Item = (&'a str, &'a [(Ipv4Addr, Ipv4Addr)])>,
    ) {
        let mut next = Pools::new(defs);
        for (name, p) in next.pools.iter_mut() {
            if let Some(old) = self.pools.get(name) {
                for (a, o) in &old.leases {
                    if p.free.remove(a) {
                        p.leases.insert(*a, *o);
                    }
                }
            }
        }
        *self = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn distinct_addresses_until_exhausted_then_reused_after_release() {
        let r = [
            (ip("10.99.0.10"), ip("10.99.0.12")),
            (ip("10.99.1.1"), ip("10.99.1.1")),
        ];
        let mut p = AddressPool::new("ez", &r);
        let got: Vec<_> = (0..4u8).map(|i| p.lease([i; 8]).unwrap()).collect();
        assert_eq!(
            got,
            vec![
                ip("10.99.0.10"),
                ip("10.99.0.11"),
                ip("10.99.0.12"),
                ip("10.99.1.1")
            ]
        );
        assert_eq!(p.lease([9; 8]), Err(PoolError::Exhausted("ez".into())));
        // The same owner asking again keeps its address.
        assert_eq!(p.lease([1; 8]).unwrap(), ip("10.99.0.11"));
        // Only the holder can give an address back.
        assert!(!p.release(ip("10.99.0.11"), [2; 8]));
        assert!(p.release(ip("10.99.0.11"), [1; 8]));
        assert!(!p.release(ip("10.99.0.11"), [1; 8]));
        assert_eq!(p.in_use(), 3);
        assert_eq!(p.lease([9; 8]).unwrap(), ip("10.99.0.11"));
        assert_eq!(p.holder(ip("10.99.0.11")), Some([9; 8]));
    }

    #[test]
    fn thousands_of_clients_get_distinct_addresses() {
        let r = [(ip("10.200.0.1"), ip("10.200.39.255"))];
        let mut p = Pools::new([("big", &r[..])]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            let a = p.lease("big", i.to_be_bytes()).unwrap();
            assert!(seen.insert(a));
        }
        assert_eq!(p.leased(), 10_000);
        assert_eq!(
            p.lease("nope", [0; 8]),
            Err(PoolError::NoSuchPool("nope".into()))
        );
    }

    #[test]
    fn reconfigure_keeps_leases_in_range() {
        let r1 = [(ip("10.0.0.1"), ip("10.0.0.4"))];
        let mut p = Pools::new([("a", &r1[..])]);
        let a1 = p.lease("a", [1; 8]).unwrap();
        let a2 = p.lease("a", [2; 8]).unwrap();
        let r2 = [(ip("10.0.0.2"), ip("10.0.0.9"))];
        p.reconfigure([("a", &r2[..])]);
        // 10.0.0.1 is out of the new range: its lease is dropped from the table; 10.0.0.2
        // stays leased to its owner and is not handed out again.
        assert_eq!(a1, ip("10.0.0.1"));
        assert_eq!(p.get("a").unwrap().holder(a2), Some([2; 8]));
        assert_eq!(p.lease("a", [3; 8]).unwrap(), ip("10.0.0.3"));
    }
}
