//! Crypto for ESP: transforms as IOS names them, and the batch primitives they use.

pub mod aesmb;
pub mod md5mb;
pub mod tdes;
pub mod transform;
