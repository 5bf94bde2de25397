#![forbid(unsafe_code)]
//! espgw control plane: the IOS configuration, ISAKMP/IKEv1 (wire and sans-IO state
//! machines), the UDP/timer driver, the daemon around them ([`daemon`]: the SA database
//! through crate `espgw-sadb`) and the operator CLI. Nothing here needs the dataplane.

pub mod cli;
/// The IOS configuration (crate `espgw-config`, shared with espgw-dataplane).
pub use espgw_config as config;
pub mod daemon;
pub mod driver;
pub mod ike;
pub mod isakmp;
pub mod metrics;
pub mod pki;
