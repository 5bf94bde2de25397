//! `espgw-perf gen`: a pktgen-style generator and receiver on AF_XDP.
//!
//! - [`probe`]: the frames (Ethernet/IPv4/UDP + sequence number and transmit time) and
//!   their parser.
//! - [`pacer`]: the token bucket that paces each generator thread.
//! - [`seqtrack`]: exact loss, duplicate and reordering counts per stream.
//! - [`engine`]: generator and receiver threads on real AF_XDP sockets, trial by trial.

pub mod bench;
pub mod cmd;
pub mod engine;
pub mod pacer;
pub mod probe;
pub mod seqtrack;
