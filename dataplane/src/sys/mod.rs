//! System interfaces with `unsafe` code: AF_XDP sockets and UMEM (`xsk.rs`, which alone
//! allows it). The shared-memory mapping of the SA database is in `espgw-sadb`; the other
//! unsafe code is the SIMD crypto kernels under `crypto/`, each file allowing it for itself.
//! Every `unsafe` block carries a `// SAFETY:` comment (clippy's
//! `undocumented_unsafe_blocks`, on for the workspace).

pub mod xsk;
