//! The XDP classifiers: loading (aya), attaching, and their maps.
//!
//! The dataplane owns the programs and their maps for its whole life: it
//! loads `inside` and `outside` (compiled from `ebpf/` by build.rs), attaches
//! them through BPF links (so they go away with the process, even on
//! SIGKILL), registers each worker's AF_XDP sockets in the XSKMAPs and
//! installs the crypto-ACL rules that control hands over (see [`acl`]).

pub mod acl;
pub mod maps;

use aya::maps::{Array, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use maps::{AclRuleRaw, CounterIndex, CounterRaw, ACL_MAX, MAP_ACL, MAP_COUNTERS, MAP_XSKS};
use std::os::fd::RawFd;

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
    #[error("map {0}: {1}")]
    Map(&'static str, String),
    #[error(transparent)]
    Acl(#[from] acl::AclError),
}

/// One loaded and attached classifier.
pub struct Classifier {
    side: Side,
    ifname: String,
    mode: AttachMode,
    // Keeps the program, its link and its maps alive.
    ebpf: Ebpf,
    xsks: XskMap<MapData>,
    counters: PerCpuArray<MapData, CounterRaw>,
    acl: Option<Array<MapData, AclRuleRaw>>,
}

impl Classifier {
    /// Loads the program for `side` and attaches it to `ifname`.
    pub fn attach(side: Side, ifname: &str, mode: ModeRequest) -> Result<Self, XdpError> {
        let (obj, prog_name) = match side {
            Side::Inside => (INSIDE_OBJ, "espgw_inside"),
            Side::Outside => (OUTSIDE_OBJ, "espgw_outside"),
        };
        let sname = side.name();
        let mut ebpf = Ebpf::load(obj).map_err(|e| XdpError::Load(sname, e.to_string()))?;
        let prog: &mut Xdp = ebpf
            .program_mut(prog_name)
            .ok_or_else(|| XdpError::Load(sname, format!("no program {prog_name}")))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(sname, e.to_string()))?;
        prog.load()
            .map_err(|e| XdpError::Load(sname, format!("{e:?}")))?;
        let attach_err = |e: aya::programs::ProgramError| XdpError::Attach {
            side: sname,
            ifname: ifname.to_string(),
            err: e.to_string(),
        };
        let mode = match mode {
            ModeRequest::Driver => {
                prog.attach(ifname, XdpMode::Driver).map_err(attach_err)?;
                AttachMode::Driver
            }
            ModeRequest::Skb => {
                prog.attach(ifname, XdpMode::Skb).map_err(attach_err)?;
                AttachMode::Skb
            }
            ModeRequest::Auto => match prog.attach(ifname, XdpMode::Driver) {
                Ok(_) => AttachMode::Driver,
                Err(_) => {
                    prog.attach(ifname, XdpMode::Skb).map_err(attach_err)?;
                    AttachMode::Skb
                }
            },
        };
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| XdpError::Map(name, "missing from object".into()))
        };
        let xsks = XskMap::try_from(take(&mut ebpf, MAP_XSKS)?)
            .map_err(|e| XdpError::Map(MAP_XSKS, e.to_string()))?;
        let counters = PerCpuArray::try_from(take(&mut ebpf, MAP_COUNTERS)?)
            .map_err(|e| XdpError::Map(MAP_COUNTERS, e.to_string()))?;
        let acl = match side {
            Side::Inside => Some(
                Array::try_from(take(&mut ebpf, MAP_ACL)?)
                    .map_err(|e| XdpError::Map(MAP_ACL, e.to_string()))?,
            ),
            Side::Outside => None,
        };
        Ok(Classifier {
            side,
            ifname: ifname.to_string(),
            mode,
            ebpf,
            xsks,
            counters,
            acl,
        })
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Steers the traffic of RX queue `queue` to the AF_XDP socket `fd`.
    pub fn register_xsk(&mut self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        self.xsks
            .set(queue, fd, 0)
            .map_err(|e| XdpError::Map(MAP_XSKS, e.to_string()))
    }

    /// Installs the crypto-ACL rules (inside classifier only): rules first,
    /// then the end marker, so the program never sees a half-written list
    /// longer than the old one... the list is rewritten from the end back to
    /// the front so each intermediate state is a prefix of old or new rules.
    pub fn set_acl(&mut self, rules: &[acl::AclRule]) -> Result<(), XdpError> {
        let Some(map) = self.acl.as_mut() else {
            return Err(XdpError::Map(
                MAP_ACL,
                "the outside classifier has no ACL".into(),
            ));
        };
        if rules.len() > ACL_MAX as usize {
            return Err(acl::AclError::TooMany(rules.len()).into());
        }
        let err = |e: aya::maps::MapError| XdpError::Map(MAP_ACL, e.to_string());
        // Terminate first at the new length, then fill the rules in from the
        // back: a packet classified meanwhile sees at worst a shorter list.
        if (rules.len() as u32) < ACL_MAX {
            map.set(rules.len() as u32, AclRuleRaw::default(), 0)
                .map_err(err)?;
        }
        for (i, r) in rules.iter().enumerate().rev() {
            map.set(i as u32, r.to_raw(), 0).map_err(err)?;
        }
        Ok(())
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

    /// The aya object (programs and remaining maps).
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}
