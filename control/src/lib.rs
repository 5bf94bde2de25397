#![forbid(unsafe_code)]
//! espgw control plane: the IOS configuration, ISAKMP/IKEv1 (wire and sans-IO state
//! machines), the UDP/timer driver and the operator CLI.

pub mod cli;
pub mod config;
pub mod driver;
pub mod ike;
pub mod isakmp;
