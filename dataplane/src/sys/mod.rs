//! The only place with `unsafe` code: AF_XDP sockets and UMEM. (The shared-memory
//! mapping of the SA database is in `espgw-sadb`.)
//! Every `unsafe` block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

pub mod xsk;
