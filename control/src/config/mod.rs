//! The IOS configuration: the typed model ([`model`]) and the parser of the IOS subset an
//! IPsec router uses ([`parse`]).

pub mod model;

pub use model::*;
