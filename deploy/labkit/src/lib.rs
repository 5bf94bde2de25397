#![forbid(unsafe_code)]
//! Lab support.
