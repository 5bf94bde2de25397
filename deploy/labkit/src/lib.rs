#![forbid(unsafe_code)]
//! Test support for espgw: the slides' lab in network namespaces ([`Lab`]), a real
//! strongSwan peer ([`strongswan`]), and tshark as the independent judge of the bytes on
//! the wire ([`judge`]).
//!
//! Everything here runs as root on Linux and touches nothing outside the namespaces a
//! [`Lab`] creates. Every process started through a [`Lab`] is tracked by PID and killed
//! (with its process group) when its handle or the lab is dropped, also during a panic.
//!
//! ```no_run
//! use espgw_lab::{Lab, Node};
//! let lab = Lab::up(&Lab::unique_prefix("doc")).unwrap();
//! let out = lab.run(Node::R1, &["ip", "-br", "addr"]).unwrap();
//! println!("{out}");
//! let stats = lab.ping(Node::HostA, "10.1.1.1", 3).unwrap();
//! assert_eq!(stats.received, 3);
//! // dropping `lab` kills its processes and deletes its namespaces
//! ```

mod error;
pub mod espgw;
pub mod flood;
pub mod impair;
pub mod judge;
pub mod lab;
pub mod metrics;
pub mod prereq;
pub mod seqflow;
pub mod strongswan;

pub use error::{Error, Result};
pub use espgw::{EspgwBins, EspgwOptions, EspgwRouter, Wire, WireCapture};
pub use judge::{
    judge, parse_keylog, Capture, EspAuth, EspEncr, EspSaKeys, FrameKind, Icv, Ikev1Keys, Verdict,
    Verdicts,
};
pub use lab::{addr, Lab, LabOptions, LabProcess, Node, PingStats, RouterSite};
pub use strongswan::{CharonKeys, IkeMode, IkeSaInfo, Profile, StrongSwan};
