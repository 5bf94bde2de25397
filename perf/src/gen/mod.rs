//! `espgw-perf gen`: a pktgen-style generator and receiver on AF_XDP.
//!
//! - [`probe`]: the frames (Ethernet/IPv4/UDP + sequence number and transmit time) and
//!   their parser.
//! - [`pacer`]: the token bucket that paces each generator thread.
//! - [`seqtrack`]: exact loss, duplicate and reordering counts per stream.
//! - [`engine`]: generator and receiver threads on real AF_XDP sockets, trial by trial.
//! - [`bench`]: one trial and the counters checked around it; [`cmd`]: `espgw-perf gen`.
//! - [`pktgen`]: the kernel's pktgen as the generator, where the kernel has it.

pub mod bench;
pub mod cmd;
pub mod engine;
pub mod pacer;
pub mod pktgen;
pub mod probe;
pub mod seqtrack;
