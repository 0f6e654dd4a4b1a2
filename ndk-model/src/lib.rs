//! A Rust model of Apple's NetworkingDriverKit (NDK).
#![deny(unsafe_code)]

mod sync;

#[allow(unsafe_code)]
pub mod shm;

#[allow(unsafe_code)]
pub mod ring;
