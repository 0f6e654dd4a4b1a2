//! A Rust model of Apple's NetworkingDriverKit (NDK).
#![deny(unsafe_code)]

mod sync;

pub mod actions;
pub mod area;
pub mod error;
pub mod ethernet;
pub mod link;
pub mod notify;
pub mod packet;
pub mod queue;

#[allow(unsafe_code)]
pub mod shm;

#[allow(unsafe_code)]
pub mod ring;

#[allow(unsafe_code)]
pub mod pool;

#[allow(unsafe_code)]
mod sys;
