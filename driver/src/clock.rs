//! Time, as a seam: everything that needs "now" takes a [`Clock`] or a `now_ns` argument.
//!
//! [`WallClock`] is the one real clock in the workspace (style.md §4.9). Deterministic code
//! uses a simulated clock instead (`vnic_sim::clock::SimClock`); [`FakeClock`] is the scripted
//! stand-in for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A monotonic source of nanoseconds since some fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds since the clock's origin; never goes backwards.
    fn now_ns(&self) -> u64;
}

/// Real monotonic time since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    origin: Instant,
}

impl WallClock {
    /// A clock whose origin is now.
    #[expect(
        clippy::disallowed_methods,
        reason = "the only wall clock (style.md §4.9)"
    )]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for WallClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock moved only by [`FakeClock::advance_ns`]: for tests.
#[derive(Debug, Default)]
pub struct FakeClock {
    now_ns: AtomicU64,
}

impl FakeClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `delta_ns`.
    pub fn advance_ns(&self, delta_ns: u64) {
        self.now_ns.fetch_add(delta_ns, Ordering::Relaxed);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_is_monotonic_and_fake_clock_moves_only_when_told() {
        let wall = WallClock::new();
        let a = wall.now_ns();
        let b = wall.now_ns();
        assert!(b >= a);
        let fake = FakeClock::new();
        assert_eq!(fake.now_ns(), 0);
        fake.advance_ns(5);
        assert_eq!(fake.now_ns(), 5);
    }
}
