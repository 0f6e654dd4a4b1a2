//! Shared fixtures for vnic's cross-crate tests.
//!
//! Empty until the driver and simulator land (issues 3 and 4).
#![forbid(unsafe_code)]
