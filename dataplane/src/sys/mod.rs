//! The only place with `unsafe` code: AF_XDP sockets and UMEM, shared memory.
//! Every `unsafe` block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

pub mod shm;
pub mod xsk;
