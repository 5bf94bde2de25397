#![deny(unsafe_code)]
//! espgw dataplane.
