//! The SA database as espgw-control keeps it: every negotiated IPsec SA becomes an
//! [`SaRecord`] ([`sa_record`], the one translation from `ike::IpsecSa`), installed in the
//! shared-memory region for the dataplane and deleted with it; the SAs a previous
//! espgw-control left in the region are adopted at start and retired when their lifetime
//! ends or new SAs with their peer replace them; the dataplane's sa_requests and per-SA
//! counters are read back.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Mutex, MutexGuard};

use espgw_sadb::{
    AuthKey, Direction as SaDirection, DropReason, EncKey, GlobalCounter, Ipv4Prefix, MapName,
    Mode, ProxyIdentity, SaCounterValues, SaDbWriter, SaRecord, SaRequest, SlotId, TransformId,
    WriteError,
};

use crate::ike::{Direction, EspAuth, EspEnc, IpsecSa, Proxy, TransformSet};

/// Why a negotiated SA did not reach the SA database.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The dataplane implements no such transform (e.g. esp-sha256-hmac).
    #[error("transform {0} not supported by the dataplane")]
    UnsupportedTransform(String),
    /// A key longer than the record holds.
    #[error("spi {spi:#x}: {what} key of {len} bytes does not fit the SA record")]
    KeyTooLong {
        spi: u32,
        what: &'static str,
        len: usize,
    },
    /// The region refused the record (full, duplicate inbound SPI…).
    #[error("SA database install of spi {spi:#x} failed: {source}")]
    Install {
        spi: u32,
        #[source]
        source: WriteError,
    },
}

/// The dataplane's code for a negotiated transform set, if it implements it.
pub fn transform_id(t: &TransformSet) -> Option<TransformId> {
    use TransformId as T;
    Some(match (t.enc, t.auth) {
        (EspEnc::Des3, Some(EspAuth::Md5)) => T::Esp3desMd5,
        (EspEnc::Des3, Some(EspAuth::Sha1)) => T::Esp3desSha,
        (EspEnc::Aes(128), Some(EspAuth::Md5)) => T::EspAes128Md5,
        (EspEnc::Aes(128), Some(EspAuth::Sha1)) => T::EspAes128Sha,
        (EspEnc::Aes(192), Some(EspAuth::Md5)) => T::EspAes192Md5,
        (EspEnc::Aes(192), Some(EspAuth::Sha1)) => T::EspAes192Sha,
        (EspEnc::Aes(256), Some(EspAuth::Md5)) => T::EspAes256Md5,
        (EspEnc::Aes(256), Some(EspAuth::Sha1)) => T::EspAes256Sha,
        (EspEnc::Null, Some(EspAuth::Md5)) => T::EspNullMd5,
        (EspEnc::Null, Some(EspAuth::Sha1)) => T::EspNullSha,
        (EspEnc::Gcm(128), None) => T::EspGcm128,
        (EspEnc::Gcm(256), None) => T::EspGcm256,
        _ => return None,
    })
}

/// The record for one negotiated SA, seen from this gateway: for an inbound SA the peer
/// is the outer source and our proxy the destination's; UDP encapsulation (NAT-T) keeps
/// the negotiated ports, raw ESP records 500/500. `created_at` is seconds since the epoch.
pub fn sa_record(sa: &IpsecSa, replay_window: u32, created_at: u64) -> Result<SaRecord, SyncError> {
    let transform = transform_id(&sa.transform)
        .ok_or_else(|| SyncError::UnsupportedTransform(sa.transform.ios_name()))?;
    let inbound = sa.direction == Direction::Inbound;
    let (me, peer) = if inbound {
        (sa.dst, sa.src)
    } else {
        (sa.src, sa.dst)
    };
    let (lport, pport) = match (sa.encap, inbound) {
        (Some((s, d)), true) => (d, s),
        (Some((s, d)), false) => (s, d),
        (None, _) => (500, 500),
    };
    let (lp, rp) = if inbound {
        (sa.dst_proxy, sa.src_proxy)
    } else {
        (sa.src_proxy, sa.dst_proxy)
    };
    let prefix = |p: Proxy| Ipv4Prefix {
        addr: p.addr,
        mask: p.mask,
    };
    let too_long = |what, len| SyncError::KeyTooLong {
        spi: sa.spi,
        what,
        len,
    };
    Ok(SaRecord {
        spi: sa.spi,
        direction: if inbound {
            SaDirection::Inbound
        } else {
            SaDirection::Outbound
        },
        mode: if sa.transform.transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        },
        local: SocketAddrV4::new(me, lport),
        peer: SocketAddrV4::new(peer, pport),
        udp_encap: sa.encap.is_some(),
        esn: false,
        proxy: ProxyIdentity {
            local: prefix(lp),
            remote: prefix(rp),
            protocol: lp.protocol,
            local_port: lp.port,
            remote_port: rp.port,
        },
        transform,
        enc_key: EncKey::new(&sa.enc_key).ok_or(too_long("encryption", sa.enc_key.len()))?,
        auth_key: AuthKey::new(&sa.auth_key)
            .ok_or(too_long("authentication", sa.auth_key.len()))?,
        lifetime_secs: u64::from(sa.lifetime_secs),
        lifetime_kb: sa.lifetime_kb,
        replay_window,
        crypto_map: MapName::new(&sa.map).unwrap_or_default(),
        crypto_map_seq: sa.seq,
        conn_id: sa.conn_id,
        created_at,
    })
}

/// An SA found in the region at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Adopted {
    slot: SlotId,
    spi: u32,
    peer: Ipv4Addr,
}

/// espgw-control's handle on the SA database (or none, with `--no-sadb`): what it
/// installed, by (SPI, inbound), and what it adopted.
pub struct SaSync {
    db: Option<Mutex<SaDbWriter>>,
    slots: Mutex<HashMap<(u32, bool), SlotId>>,
    adopted: Mutex<Vec<Adopted>>,
    replay_window: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SaSync {
    /// Takes over a region (or none), adopting every SA in it: a previous espgw-control's
    /// SAs are kept so traffic flows while we renegotiate. `replay_window` goes into every
    /// record installed.
    pub fn new(db: Option<SaDbWriter>, replay_window: u32) -> SaSync {
        let adopted = db
            .as_ref()
            .map(|w| {
                w.entries()
                    .into_iter()
                    .map(|e| Adopted {
                        slot: e.slot,
                        spi: e.record.spi,
                        peer: *e.record.peer.ip(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        SaSync {
            db: db.map(Mutex::new),
            slots: Mutex::new(HashMap::new()),
            adopted: Mutex::new(adopted),
            replay_window,
        }
    }

    /// The anti-replay window every installed SA gets (0: replay detection off).
    pub fn replay_window(&self) -> u32 {
        self.replay_window
    }

    /// Whether there is an SA database (not `--no-sadb`).
    pub fn has_db(&self) -> bool {
        self.db.is_some()
    }

    /// A reader of the region (for the metrics endpoint); `None` without a database.
    pub fn reader(&self) -> Option<espgw_sadb::SaDbReader> {
        self.db.as_ref().map(|db| lock(db).reader().clone())
    }

    /// How many adopted SAs are still in the region.
    pub fn adopted(&self) -> usize {
        lock(&self.adopted).len()
    }

    /// Installs a negotiated SA (nothing without a database).
    pub fn install(&self, sa: &IpsecSa) -> Result<(), SyncError> {
        let Some(db) = &self.db else { return Ok(()) };
        let rec = sa_record(sa, self.replay_window, unix_now())?;
        let slot = lock(db)
            .install(&rec)
            .map_err(|source| SyncError::Install {
                spi: sa.spi,
                source,
            })?;
        lock(&self.slots).insert((sa.spi, sa.direction == Direction::Inbound), slot);
        Ok(())
    }

    /// Deletes an SA this process installed (keys zeroed in the region).
    pub fn uninstall(&self, spi: u32, inbound: bool) {
        let Some(db) = &self.db else { return };
        if let Some(slot) = lock(&self.slots).remove(&(spi, inbound)) {
            let _ = lock(db).delete(slot);
        }
    }

    /// The SAs this process installed: (SPI, inbound).
    pub fn installed(&self) -> Vec<(u32, bool)> {
        lock(&self.slots).keys().copied().collect()
    }

    /// (packets, bytes) the dataplane counted on an installed SA; (0, 0) if unknown.
    pub fn counters(&self, spi: u32, inbound: bool) -> (u64, u64) {
        let v = self.values(spi, inbound);
        (v.packets, v.bytes)
    }

    /// Everything the dataplane counted on an installed SA (packets, bytes, drops by
    /// reason); zeros if unknown.
    pub fn values(&self, spi: u32, inbound: bool) -> SaCounterValues {
        let Some(db) = &self.db else {
            return SaCounterValues::default();
        };
        let Some(slot) = lock(&self.slots).get(&(spi, inbound)).copied() else {
            return SaCounterValues::default();
        };
        lock(db)
            .reader()
            .counters(slot)
            .map(|c| c.values())
            .unwrap_or_default()
    }

    /// Deletes the adopted SAs that `doomed` selects (checking the slot still holds that
    /// SA); forgets those already gone.
    fn retire_adopted_where(&self, doomed: impl Fn(&SaRecord) -> bool) {
        let Some(db) = &self.db else { return };
        let mut adopted = lock(&self.adopted);
        if adopted.is_empty() {
            return;
        }
        let mut w = lock(db);
        let entries = w.entries();
        adopted.retain(|a| {
            let Some(e) = entries
                .iter()
                .find(|e| e.slot == a.slot && e.record.spi == a.spi)
            else {
                return false; // gone already
            };
            if doomed(&e.record) {
                let _ = w.delete(a.slot);
                false
            } else {
                true
            }
        });
    }

    /// New SAs with `peer` replace whatever a previous run left for it.
    pub fn retire_adopted(&self, peer: Ipv4Addr) {
        self.retire_adopted_where(|r| *r.peer.ip() == peer);
    }

    /// Adopted SAs end with their lifetime (`now_unix`: seconds since the epoch).
    pub fn retire_expired(&self, now_unix: u64) {
        self.retire_adopted_where(|r| {
            r.lifetime_secs != 0 && r.created_at.saturating_add(r.lifetime_secs) <= now_unix
        });
    }

    /// Up to `max` waiting sa_request events; `None` without a database.
    pub fn poll_sa_requests(&self, now_ms: u64, max: usize) -> Option<Vec<SaRequest>> {
        let db = self.db.as_ref()?;
        let mut w = lock(db);
        let mut v = Vec::new();
        while v.len() < max {
            let Some(r) = w.poll_sa_request(now_ms) else {
                break;
            };
            v.push(r);
        }
        Some(v)
    }

    /// The dataplane-global counters by name (`show crypto dataplane`): every drop by
    /// reason, then the sa_request statistics; `None` without a database.
    pub fn global_counters(&self) -> Option<Vec<(&'static str, u64)>> {
        let db = self.db.as_ref()?;
        let w = lock(db);
        let g = w.reader().global();
        let drops = DropReason::ALL.iter().map(|r| (r.name(), g.drops(*r)));
        let requests = GlobalCounter::ALL.iter().map(|c| (c.name(), g.get(*c)));
        Some(drops.chain(requests).collect())
    }
}

#[cfg(test)]
mod tests;
