//! What every test binary shares: which upstream a test runs against
//! ([`upstream`]) and how a real Cloudreve is started for it
//! ([`real_cloudreve`]), and the gateway wired as in production in front of
//! it ([`stack`]).
#![allow(dead_code)]

pub mod real_cloudreve;
pub mod rng;
pub mod stack;
pub mod upstream;
pub mod wait;
