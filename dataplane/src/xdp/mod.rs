//! The XDP classifiers: loading (aya), attaching, and their maps.
//!
//! The dataplane owns the programs and their maps: it loads `inside` and
//! `outside` (compiled from `ebpf/` by build.rs), registers each worker's
//! AF_XDP sockets in the XSKMAPs and installs the crypto-ACL rules that
//! control hands over (see [`acl`]) *before* attaching, so a program never
//! runs with an empty ACL. Both programs get the same rules: the inside
//! steers the packets they protect to the workers, the outside applies them
//! mirrored to packets arriving in clear and drops the ones they protect
//! (IOS: traffic the policy says is encrypted may not enter unencrypted;
//! counted as `drop_clear_protected`). Only IKE, NAT-T keepalives and ESP
//! addressed to one of the router's own addresses are exempt from that
//! check; the outside's `espgw_local_addrs` map holds them ([`local_addrs`]).
//!
//! **Fail closed.** The programs are attached through rtnetlink, not BPF
//! links, so they outlive the process: if the dataplane dies, its sockets
//! leave the XSKMAPs and the classifiers *drop* interesting traffic
//! (`drop_no_xsk`) instead of letting the kernel forward it in clear, while
//! IKE and everything else still reach the kernel. A restarted dataplane
//! replaces the programs atomically. A clean stop (SIGTERM/SIGINT) detaches
//! them unless `--keep-xdp` is given; `espgw-dataplane --detach` removes
//! leftovers.

pub mod acl;
pub mod classify;
pub mod local_addrs;
pub mod maps;

use crate::worker::netlink::{xdp_flags, Netlink};
use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::Xdp;
use aya::Ebpf;
use classify::{AclShape, CompiledAcl};
use local_addrs::LocalAddrChange;
use maps::{
    ClearSampleRaw, ClsCandRaw, ClsCellRaw, ClsConfigRaw, ClsDstRaw, ClsKeyData, CounterIndex,
    CounterRaw, LocalAddrRaw, CLS_CAND_MAX, MAP_CLEAR_SAMPLE, MAP_CLS_CAND, MAP_CLS_CONFIG,
    MAP_CLS_DST, MAP_CLS_SRC, MAP_COUNTERS, MAP_LOCAL_ADDRS, MAP_XSKS,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::os::fd::{AsFd, AsRawFd};

/// The inside classifier object.
pub static INSIDE_OBJ: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/inside.bpf.o"));
/// The outside classifier object.
pub static OUTSIDE_OBJ: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/outside.bpf.o"));

/// Which interface a program or socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Inside,
    Outside,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Inside => "inside",
            Side::Outside => "outside",
        }
    }
}

/// How the program ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) XDP.
    Driver,
    /// Generic XDP in the kernel stack.
    Skb,
}

/// Requested attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModeRequest {
    /// Driver mode where the interface supports it, else SKB mode.
    #[default]
    Auto,
    Driver,
    Skb,
}

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("loading the {0} classifier: {1}")]
    Load(&'static str, String),
    #[error("attaching the {side} classifier to {ifname}: {err}")]
    Attach {
        side: &'static str,
        ifname: String,
        err: String,
    },
    #[error("no interface {0}")]
    NoInterface(String),
    #[error("map {0}: {1}")]
    Map(&'static str, String),
    #[error(transparent)]
    Acl(#[from] acl::AclError),
    #[error(transparent)]
    Compile(#[from] classify::CompileError),
}

/// One loaded classifier, attached or not.
pub struct Classifier {
    side: Side,
    attached: Option<(String, u32, AttachMode)>,
    ebpf: Ebpf,
    xsks: XskMap<MapData>,
    counters: PerCpuArray<MapData, CounterRaw>,
    cls: ClsMaps,
    /// Outside only: the router's addresses, and what is in the map.
    local: Option<LocalAddrMap>,
    /// Outside only: the last clear packet dropped as protected, per CPU.
    clear_sample: Option<PerCpuArray<MapData, ClearSampleRaw>>,
}

/// The compiled crypto ACL's maps and what each bank holds (see
/// `ebpf/espgw_maps.h`): a new rule set goes into the bank not in force,
/// one write to `espgw_cls_config` switches to it, then the old bank is
/// emptied.
struct ClsMaps {
    config: Array<MapData, ClsConfigRaw>,
    dst: LpmTrie<MapData, ClsKeyData, ClsDstRaw>,
    src: LpmTrie<MapData, ClsKeyData, ClsCellRaw>,
    cand: Array<MapData, ClsCandRaw>,
    bank: u32,
    /// The LPM keys each bank holds.
    keys: [BankKeys; 2],
}

/// The LPM keys of one bank: (destination trie, source trie).
type BankKeys = (Vec<LpmKey<ClsKeyData>>, Vec<LpmKey<ClsKeyData>>);

/// A node's tag in bank `bank` (the top bit is the bank).
fn node_tag(bank: u32, node: u32) -> u32 {
    (bank << 31) | node
}

impl ClsMaps {
    fn install(&mut self, c: &CompiledAcl) -> Result<(), XdpError> {
        let new = 1 - self.bank;
        let off = new * (CLS_CAND_MAX / 2);
        let err = |m: &'static str| move |e: aya::maps::MapError| XdpError::Map(m, e.to_string());
        let mut dst_keys = Vec::with_capacity(c.dst.len());
        let mut src_keys = Vec::with_capacity(c.src.len());
        let r = (|| {
            for (i, cand) in c.cands.iter().enumerate() {
                self.cand
                    .set(off + i as u32, *cand, 0)
                    .map_err(err(MAP_CLS_CAND))?;
            }
            for (node, p, cell) in &c.src {
                let k = LpmKey::new(
                    32 + u32::from(p.len),
                    ClsKeyData::new(node_tag(new, *node), p.addr),
                );
                let v = ClsCellRaw {
                    start: cell.start + off,
                    count: cell.count,
                };
                self.src.insert(&k, v, 0).map_err(err(MAP_CLS_SRC))?;
                src_keys.push(k);
            }
            for (p, node) in &c.dst {
                let k = LpmKey::new(32 + u32::from(p.len), ClsKeyData::new(new, p.addr));
                let v = ClsDstRaw {
                    node: node_tag(new, *node),
                };
                self.dst.insert(&k, v, 0).map_err(err(MAP_CLS_DST))?;
                dst_keys.push(k);
            }
            self.config
                .set(0, ClsConfigRaw { bank: new, pad: 0 }, 0)
                .map_err(err(MAP_CLS_CONFIG))
        })();
        if let Err(e) = r {
            // The bank in force is untouched; take back what went in.
            for k in &dst_keys {
                let _ = self.dst.remove(k);
            }
            for k in &src_keys {
                let _ = self.src.remove(k);
            }
            return Err(e);
        }
        let old = self.bank as usize;
        self.bank = new;
        self.keys[new as usize] = (dst_keys, src_keys);
        let (old_dst, old_src) = std::mem::take(&mut self.keys[old]);
        if !old_dst.is_empty() {
            // A packet that read the old bank just before the switch is
            // still in its lookups for well under this.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for k in &old_dst {
            let _ = self.dst.remove(k);
        }
        for k in &old_src {
            let _ = self.src.remove(k);
        }
        Ok(())
    }
}

struct LocalAddrMap {
    map: HashMap<MapData, u32, LocalAddrRaw>,
    installed: BTreeMap<Ipv4Addr, u32>,
}

fn prog_name(side: Side) -> &'static str {
    match side {
        Side::Inside => "espgw_inside",
        Side::Outside => "espgw_outside",
    }
}

fn ifindex_of(nl: &mut Netlink, ifname: &str) -> Result<u32, XdpError> {
    let links = nl.links().map_err(|e| XdpError::Attach {
        side: "",
        ifname: ifname.to_string(),
        err: e.to_string(),
    })?;
    links
        .iter()
        .find(|l| l.name == ifname)
        .map(|l| l.ifindex)
        .ok_or_else(|| XdpError::NoInterface(ifname.to_string()))
}

/// Removes any XDP program (driver or SKB mode) from `ifname`.
pub fn detach_interface(ifname: &str) -> Result<(), XdpError> {
    let mut nl = Netlink::open().map_err(|e| XdpError::Attach {
        side: "",
        ifname: ifname.to_string(),
        err: e.to_string(),
    })?;
    let ifindex = ifindex_of(&mut nl, ifname)?;
    let _ = nl.set_xdp(ifindex, -1, xdp_flags::DRV_MODE);
    let _ = nl.set_xdp(ifindex, -1, xdp_flags::SKB_MODE);
    Ok(())
}

impl Classifier {
    /// Loads the program for `side` into the kernel (not attached yet).
    pub fn load(side: Side) -> Result<Self, XdpError> {
        let obj = match side {
            Side::Inside => INSIDE_OBJ,
            Side::Outside => OUTSIDE_OBJ,
        };
        let sname = side.name();
        let mut ebpf = Ebpf::load(obj).map_err(|e| XdpError::Load(sname, e.to_string()))?;
        let prog: &mut Xdp = ebpf
            .program_mut(prog_name(side))
            .ok_or_else(|| XdpError::Load(sname, format!("no program {}", prog_name(side))))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(sname, e.to_string()))?;
        prog.load()
            .map_err(|e| XdpError::Load(sname, format!("{e:?}")))?;
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| XdpError::Map(name, "missing from object".into()))
        };
        let xsks = XskMap::try_from(take(&mut ebpf, MAP_XSKS)?)
            .map_err(|e| XdpError::Map(MAP_XSKS, e.to_string()))?;
        let counters = PerCpuArray::try_from(take(&mut ebpf, MAP_COUNTERS)?)
            .map_err(|e| XdpError::Map(MAP_COUNTERS, e.to_string()))?;
        let cls = ClsMaps {
            config: Array::try_from(take(&mut ebpf, MAP_CLS_CONFIG)?)
                .map_err(|e| XdpError::Map(MAP_CLS_CONFIG, e.to_string()))?,
            dst: LpmTrie::try_from(take(&mut ebpf, MAP_CLS_DST)?)
                .map_err(|e| XdpError::Map(MAP_CLS_DST, e.to_string()))?,
            src: LpmTrie::try_from(take(&mut ebpf, MAP_CLS_SRC)?)
                .map_err(|e| XdpError::Map(MAP_CLS_SRC, e.to_string()))?,
            cand: Array::try_from(take(&mut ebpf, MAP_CLS_CAND)?)
                .map_err(|e| XdpError::Map(MAP_CLS_CAND, e.to_string()))?,
            bank: 0,
            keys: Default::default(),
        };
        let local = match side {
            Side::Inside => None,
            Side::Outside => Some(LocalAddrMap {
                map: HashMap::try_from(take(&mut ebpf, MAP_LOCAL_ADDRS)?)
                    .map_err(|e| XdpError::Map(MAP_LOCAL_ADDRS, e.to_string()))?,
                installed: BTreeMap::new(),
            }),
        };
        let clear_sample = match side {
            Side::Inside => None,
            Side::Outside => Some(
                PerCpuArray::try_from(take(&mut ebpf, MAP_CLEAR_SAMPLE)?)
                    .map_err(|e| XdpError::Map(MAP_CLEAR_SAMPLE, e.to_string()))?,
            ),
        };
        Ok(Classifier {
            side,
            attached: None,
            ebpf,
            xsks,
            counters,
            cls,
            local,
            clear_sample,
        })
    }

    /// Attaches the program to `ifname` through rtnetlink (replacing a
    /// program a previous dataplane left there): driver mode where the
    /// interface supports it, else SKB mode, as requested.
    pub fn attach(&mut self, ifname: &str, mode: ModeRequest) -> Result<AttachMode, XdpError> {
        let sname = self.side.name();
        let attach_err = |err: String| XdpError::Attach {
            side: sname,
            ifname: ifname.to_string(),
            err,
        };
        let mut nl = Netlink::open().map_err(|e| attach_err(e.to_string()))?;
        let ifindex = ifindex_of(&mut nl, ifname)?;
        let prog = self.program()?;
        let fd = prog
            .fd()
            .map_err(|e| XdpError::Load(sname, e.to_string()))?
            .as_fd()
            .as_raw_fd();
        let try_mode = |nl: &mut Netlink, m: AttachMode| {
            let flags = match m {
                AttachMode::Driver => xdp_flags::DRV_MODE,
                AttachMode::Skb => xdp_flags::SKB_MODE,
            };
            nl.set_xdp(ifindex, fd, flags)
                .map(|_| m)
                .map_err(|e| attach_err(e.to_string()))
        };
        let mode = match mode {
            ModeRequest::Driver => try_mode(&mut nl, AttachMode::Driver)?,
            ModeRequest::Skb => try_mode(&mut nl, AttachMode::Skb)?,
            ModeRequest::Auto => match try_mode(&mut nl, AttachMode::Driver) {
                Ok(m) => m,
                Err(_) => try_mode(&mut nl, AttachMode::Skb)?,
            },
        };
        self.attached = Some((ifname.to_string(), ifindex, mode));
        Ok(mode)
    }

    /// Detaches the program (clean stop).
    pub fn detach(&mut self) -> Result<(), XdpError> {
        let Some((ifname, ifindex, mode)) = self.attached.take() else {
            return Ok(());
        };
        let flags = match mode {
            AttachMode::Driver => xdp_flags::DRV_MODE,
            AttachMode::Skb => xdp_flags::SKB_MODE,
        };
        let mut nl = Netlink::open().map_err(|e| XdpError::Attach {
            side: self.side.name(),
            ifname: ifname.clone(),
            err: e.to_string(),
        })?;
        nl.set_xdp(ifindex, -1, flags)
            .map_err(|e| XdpError::Attach {
                side: self.side.name(),
                ifname,
                err: e.to_string(),
            })
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// The interface it is attached to ("" if not attached).
    pub fn ifname(&self) -> &str {
        self.attached.as_ref().map(|a| a.0.as_str()).unwrap_or("")
    }

    /// The attach mode, if attached.
    pub fn mode(&self) -> Option<AttachMode> {
        self.attached.as_ref().map(|a| a.2)
    }

    /// Steers the traffic of RX queue `queue` to the AF_XDP socket `fd`.
    pub fn register_xsk(&mut self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        self.xsks
            .set(queue, fd, 0)
            .map_err(|e| XdpError::Map(MAP_XSKS, e.to_string()))
    }

    /// Installs the crypto-ACL rules, the same rules on both sides: the
    /// inside steers what they protect ([`acl::first_match`]), the outside
    /// drops clear packets whose mirror they protect
    /// ([`acl::first_match_inbound`]); an empty list on the outside lets all
    /// clear traffic through. The rules are compiled ([`classify`]) into
    /// the bank not in force, which then takes over with one map write, so
    /// a packet classified meanwhile sees the old rules or the new ones,
    /// never a mix; a list that does not compile or fit leaves the old
    /// rules in force.
    pub fn set_acl(&mut self, rules: &[acl::AclRule]) -> Result<AclShape, XdpError> {
        let c = CompiledAcl::compile(rules)?;
        self.set_compiled_acl(&c)?;
        Ok(c.shape())
    }

    /// [`Classifier::set_acl`] with rules compiled already.
    pub fn set_compiled_acl(&mut self, c: &CompiledAcl) -> Result<(), XdpError> {
        self.cls.install(c)
    }

    /// Makes `wanted` (address → interface holding it) the router's own
    /// addresses in the outside classifier, the only destinations whose
    /// IKE, NAT-T keepalives and ESP are exempt from the inbound check (see
    /// [`local_addrs`]). New addresses go in before stale ones leave (a
    /// renumbering never has a moment with neither), unless that would
    /// overflow the map. A failed insertion or removal is reported in the
    /// change and retried on the next call.
    pub fn set_local_addrs(
        &mut self,
        wanted: &BTreeMap<Ipv4Addr, u32>,
    ) -> Result<LocalAddrChange, XdpError> {
        let Some(l) = self.local.as_mut() else {
            return Err(XdpError::Map(
                MAP_LOCAL_ADDRS,
                "only the outside classifier has one".into(),
            ));
        };
        let key = |a: &Ipv4Addr| u32::from_ne_bytes(a.octets());
        let mut change = LocalAddrChange::default();
        let add: Vec<(Ipv4Addr, u32)> = wanted
            .iter()
            .filter(|(a, i)| l.installed.get(a) != Some(i))
            .map(|(a, i)| (*a, *i))
            .collect();
        let stale: Vec<Ipv4Addr> = l
            .installed
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        let fresh = add
            .iter()
            .filter(|(a, _)| !l.installed.contains_key(a))
            .count();
        let remove = |l: &mut LocalAddrMap, change: &mut LocalAddrChange| {
            for a in &stale {
                match l.map.remove(&key(a)) {
                    Ok(()) => {
                        l.installed.remove(a);
                        change.removed.push(*a);
                    }
                    Err(e) => change.failed.push((*a, e.to_string())),
                }
            }
        };
        let room_first = l.installed.len() + fresh > maps::LOCAL_ADDR_MAX as usize;
        if room_first {
            remove(l, &mut change);
        }
        for (a, ifindex) in add {
            match l.map.insert(key(&a), LocalAddrRaw { ifindex }, 0) {
                Ok(()) => {
                    if l.installed.insert(a, ifindex).is_none() {
                        change.added.push(a);
                    }
                }
                Err(e) => change.failed.push((a, e.to_string())),
            }
        }
        if !room_first {
            remove(l, &mut change);
        }
        Ok(change)
    }

    /// The router's addresses installed in the outside classifier (empty on
    /// the inside).
    pub fn local_addrs(&self) -> Vec<Ipv4Addr> {
        self.local
            .as_ref()
            .map(|l| l.installed.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Counters summed over CPUs, in [`CounterIndex::ALL`] order.
    pub fn counters(&self) -> Result<[CounterRaw; CounterIndex::COUNT], XdpError> {
        let mut out = [CounterRaw::default(); CounterIndex::COUNT];
        for (i, slot) in out.iter_mut().enumerate() {
            let per_cpu = self
                .counters
                .get(&(i as u32), 0)
                .map_err(|e| XdpError::Map(MAP_COUNTERS, e.to_string()))?;
            for v in per_cpu.iter() {
                slot.packets += v.packets;
                slot.bytes += v.bytes;
            }
        }
        Ok(out)
    }

    /// Outside: each CPU's last clear packet dropped because the crypto ACL
    /// protects it (`drops` 0 where none was); empty on the inside.
    pub fn clear_drop_samples(&self) -> Result<Vec<ClearSampleRaw>, XdpError> {
        let Some(m) = &self.clear_sample else {
            return Ok(Vec::new());
        };
        let per_cpu = m
            .get(&0, 0)
            .map_err(|e| XdpError::Map(MAP_CLEAR_SAMPLE, e.to_string()))?;
        Ok(per_cpu.iter().copied().collect())
    }

    /// The loaded XDP program.
    fn program(&self) -> Result<&Xdp, XdpError> {
        let sname = self.side.name();
        self.ebpf
            .program(prog_name(self.side))
            .ok_or_else(|| XdpError::Load(sname, "program vanished".into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(sname, e.to_string()))
    }

    /// Runs the loaded program once on `frame` in the kernel
    /// (`BPF_PROG_TEST_RUN`, attached or not; a redirect is not carried
    /// out), `repeat` times: the XDP action it returned and the kernel's
    /// mean time per run. Counters and samples count these runs too.
    pub fn test_run(
        &self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), XdpError> {
        use aya::programs::{TestRun, TestRunOptions};
        let sname = self.side.name();
        let prog = self.program()?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        let r = prog
            .test_run(opts)
            .map_err(|e| XdpError::Load(sname, format!("test run: {e}")))?;
        Ok((r.return_value, r.duration))
    }

    /// The aya object (programs and remaining maps).
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}
