//! The one place that chooses between `std` and `loom` primitives.
//!
//! Every atomic, cell, fence and thread the lock-free code uses comes from here, so
//! `RUSTFLAGS="--cfg loom"` swaps the whole crate onto loom's model checker
//! (the tokio / crossbeam shim pattern, rings.md §3.1).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Spin-wait hint; under loom it yields so the scheduler can make progress.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` with loom's closure API, so ring slots are race-checked under loom.
///
/// Outside loom it is `repr(transparent)` over [`core::cell::UnsafeCell`], which is what lets
/// a slice of slots be viewed as a slice of values in shared memory.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
