#![deny(unsafe_code)]
//! espgw dataplane: zero-copy packet views, ESP encapsulation and decapsulation,
//! batch crypto and the AF_XDP workers. The shared-memory SA database is the crate
//! `espgw-sadb`, here as [`sadb`].

pub mod crypto;
pub mod esp;
pub mod ios;
pub mod pcap;
pub mod sa_rules;
/// The shared-memory contract with espgw-control (crate `espgw-sadb`).
pub use espgw_sadb as sadb;
pub mod sys;
pub mod wire;
pub mod worker;
pub mod xdp;
