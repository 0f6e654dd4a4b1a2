//! Settings shared by the proptest state-machine suites.

use proptest::test_runner::Config;

/// Transitions per case: up to 63; under Miri up to 23, to keep the interpreted run short.
pub fn transitions() -> std::ops::Range<usize> {
    if cfg!(miri) {
        1..24
    } else {
        1..64
    }
}

/// The proptest configuration: `PROPTEST_CASES` as usual. Under Miri: no failure file, and 4
/// cases unless the variable is visible to the interpreted program (Miri's isolation hides the
/// host environment unless `MIRIFLAGS=-Zmiri-env-forward=PROPTEST_CASES`).
pub fn config() -> Config {
    let mut config = Config::default();
    if cfg!(miri) {
        config.failure_persistence = None;
        if std::env::var_os("PROPTEST_CASES").is_none() {
            config.cases = 4;
        }
    }
    config
}
