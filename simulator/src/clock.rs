//! Simulated time: a nanosecond counter that moves only when the caller moves it.
//!
//! There is no wall clock anywhere in this crate (house style rule 2). Components that need the
//! time take `now_ns: u64` as an argument; the scheduler owns one [`SimClock`] and passes its
//! reading down.

/// Nanoseconds in a microsecond.
pub const NS_PER_US: u64 = 1_000;
/// Nanoseconds in a millisecond.
pub const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds in a second.
pub const NS_PER_S: u64 = 1_000_000_000;

/// A simulated monotonic clock, in nanosecond ticks since the start of the run.
///
/// **Invariant:** `now_ns` never decreases. Moving it backwards is a bug and panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimClock {
    /// Ticks (nanoseconds) since the start of the run.
    now_ns: u64,
}

impl SimClock {
    /// A clock at tick 0.
    pub const fn new() -> Self {
        Self { now_ns: 0 }
    }

    /// A clock that starts at `now_ns`.
    pub const fn starting_at_ns(now_ns: u64) -> Self {
        Self { now_ns }
    }

    /// The current reading, in nanoseconds since the start of the run.
    pub const fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Moves the clock forward by `delta_ns` and returns the new reading.
    ///
    /// # Panics
    /// If the reading would overflow `u64` (about 584 years of simulated time).
    pub fn advance_ns(&mut self, delta_ns: u64) -> u64 {
        self.now_ns = self
            .now_ns
            .checked_add(delta_ns)
            .expect("simulated clock overflowed");
        self.now_ns
    }

    /// Moves the clock to `deadline_ns`, which must not be in the past.
    ///
    /// # Panics
    /// If `deadline_ns` is earlier than the current reading.
    pub fn advance_to_ns(&mut self, deadline_ns: u64) {
        assert!(
            deadline_ns >= self.now_ns,
            "simulated clock moved backwards: {} -> {deadline_ns}",
            self.now_ns
        );
        self.now_ns = deadline_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_only_when_told() {
        let mut clock = SimClock::new();
        assert_eq!(clock.now_ns(), 0);
        assert_eq!(clock.advance_ns(5 * NS_PER_MS), 5_000_000);
        clock.advance_to_ns(NS_PER_S);
        assert_eq!(clock.now_ns(), NS_PER_S);
        clock.advance_to_ns(NS_PER_S);
        assert_eq!(clock.now_ns(), NS_PER_S);
        assert_eq!(SimClock::starting_at_ns(7).now_ns(), 7);
    }

    #[test]
    #[should_panic(expected = "backwards")]
    fn moving_backwards_is_a_bug() {
        let mut clock = SimClock::starting_at_ns(10);
        clock.advance_to_ns(9);
    }
}
