//! Devices under test and the topologies they run in.

pub mod netns;
