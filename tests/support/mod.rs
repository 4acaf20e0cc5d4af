//! What every test binary shares: which upstream a test runs against
//! ([`upstream`]) and how a real Cloudreve is started for it
//! ([`real_cloudreve`]), and the gateway wired as in production in front of
//! it ([`stack`]).
#![allow(dead_code)]

pub(crate) mod real_cloudreve;
pub(crate) mod rng;
pub(crate) mod stack;
pub(crate) mod upstream;
pub(crate) mod wait;
