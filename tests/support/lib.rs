//! Shared fixtures for vnic's cross-crate tests: run a world both ways and return what the
//! checkers saw.
#![forbid(unsafe_code)]

use vnic_sim::world::seeds::{run_world, Failure, Mode, Outcome};
use vnic_sim::world::WorldConfig;

/// The wall-clock budget of a threaded scenario run.
pub const THREADED_WALL_NS_MAX: u64 = 300_000_000_000;

/// Runs the world `make()` builds deterministically, then again on threads; panics with the
/// seed and the first violation if either fails. Returns (deterministic, threaded).
pub fn run_both(make: impl Fn() -> WorldConfig) -> (Outcome, Outcome) {
    let det =
        run_world(make(), Mode::Deterministic).unwrap_or_else(|f| report(&f, "deterministic"));
    let thr = run_world(
        make(),
        Mode::Threaded {
            wall_ns_max: THREADED_WALL_NS_MAX,
        },
    )
    .unwrap_or_else(|f| report(&f, "threaded"));
    (det, thr)
}

fn report(f: &Failure, mode: &str) -> ! {
    panic!("{mode} run failed: {f}");
}
