//! IKEv1 protocol core: cryptography and the sans-IO state machines.

pub mod config;
pub mod crypto;
pub mod endpoint;
pub mod ios;
pub mod keylog;
pub mod types;

pub use config::*;
pub use endpoint::{Endpoint, IkeError, P1State, QmState};
pub use types::*;

#[cfg(test)]
mod tests;
