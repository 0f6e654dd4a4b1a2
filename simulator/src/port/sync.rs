//! The one place this module chooses between `std` and `loom` primitives, so
//! `RUSTFLAGS="--cfg loom"` puts the port's flags and notifier slots under loom's model
//! checker together with ndk-model's rings and pools (the tokio / crossbeam shim pattern).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
