//! Doorbells: how one side wakes the other after the ring's need-wakeup handshake.
//!
//! The ring decides *whether* a wakeup is needed (the need-wakeup flags, see
//! [`crate::ring`]); a [`Notifier`] delivers it. Linux uses an `eventfd`
//! ([`EventFdNotifier`]); tests and the simulator use [`FakeNotifier`]. On a Mac the dext's
//! doorbell would be an `ExternalMethod` call one way and an `OSAction` async completion the
//! other (ndk.md §7.5; UNCONFIRMED for network dexts).

use std::fmt::Debug;
use std::sync::{Condvar, Mutex};

/// Delivers and awaits wakeups. Implementations must not lose a `notify` that happens before
/// the matching `wait` starts: the count is sticky, like an eventfd's.
pub trait Notifier: Send + Sync + Debug {
    /// Wakes the waiter (or makes its next wait return at once).
    fn notify(&self);

    /// Waits until notified or `timeout_ms` passes; `true` if notified. Consumes pending
    /// notifications.
    fn wait(&self, timeout_ms: u32) -> bool;
}

/// An in-process notifier with a sticky count: for tests and the simulator.
#[derive(Debug, Default)]
pub struct FakeNotifier {
    state: Mutex<FakeState>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct FakeState {
    pending: u64,
    notified_total: u64,
    waits_total: u64,
}

impl FakeNotifier {
    /// A notifier with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times `notify` was called.
    pub fn notified_total(&self) -> u64 {
        self.lock().notified_total
    }

    /// How many times `wait` was called.
    pub fn waits_total(&self) -> u64 {
        self.lock().waits_total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Notifier for FakeNotifier {
    fn notify(&self) {
        let mut s = self.lock();
        s.pending += 1;
        s.notified_total += 1;
        self.cond.notify_all();
    }

    fn wait(&self, timeout_ms: u32) -> bool {
        let mut s = self.lock();
        s.waits_total += 1;
        if s.pending == 0 {
            let timeout = std::time::Duration::from_millis(u64::from(timeout_ms));
            s = self
                .cond
                .wait_timeout_while(s, timeout, |s| s.pending == 0)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let notified = s.pending > 0;
        s.pending = 0;
        notified
    }
}

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub use crate::sys::linux::EventFdNotifier;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_notifier_is_sticky_and_counts() {
        let n = FakeNotifier::new();
        assert!(!n.wait(0));
        n.notify();
        assert!(n.wait(0));
        assert!(!n.wait(0));
        assert_eq!((n.notified_total(), n.waits_total()), (1, 3));
    }

    #[test]
    fn fake_notifier_wakes_another_thread() {
        let n = std::sync::Arc::new(FakeNotifier::new());
        let m = std::sync::Arc::clone(&n);
        let t = std::thread::spawn(move || m.wait(60_000));
        n.notify();
        assert!(t.join().unwrap());
    }
}
