//! The crate-level choice between `std` and `loom` atomics for the world's cross-thread state
//! (the script board), so `RUSTFLAGS="--cfg loom"` puts it under loom's model checker (the
//! tokio / crossbeam shim pattern). The port keeps its own shim (`port::sync`).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
