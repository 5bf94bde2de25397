//! IKEv1 protocol core: cryptography and the sans-IO state machines.

pub mod crypto;
