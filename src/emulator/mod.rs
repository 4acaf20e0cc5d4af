//! A Cloudreve v4 emulator: a real HTTP server implementing the contract.
