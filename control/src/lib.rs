#![forbid(unsafe_code)]
//! espgw control plane.
