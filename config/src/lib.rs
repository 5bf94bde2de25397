#![forbid(unsafe_code)]
//! The IOS configuration: the typed model ([`model`]) and the parser of the IOS subset an
//! IPsec router uses ([`parse`]).

pub mod model;
pub mod names;
pub mod parse;
pub mod pki;
pub mod slides;

pub use model::*;
pub use parse::{
    check_config, load_config, parse_config, ConfigError, ConfigErrorKind, ConfigWarning,
    LoadError, Parsed, Report,
};
