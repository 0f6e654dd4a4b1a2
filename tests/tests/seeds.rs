//! The pinned seed set: worlds drawn from these seeds (faults included) must pass every
//! checker. CI also runs 200 fresh seeds through `vnic sim` in release; a failure there
//! prints its seed, and a seed worth keeping is added here.

use vnic_sim::world::seeds::run_seed;

/// Seeds kept because they once drew something interesting, plus a contiguous block.
const PINNED: &[u64] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 1000, 65_535,
];

#[test]
fn pinned_seeds_pass_every_checker() {
    let mut checks = 0;
    for &seed in PINNED {
        match run_seed(seed) {
            Ok(o) => {
                assert!(o.checks.checks_run > 0);
                checks += o.checks.checks_run;
            }
            Err(f) => panic!("{f}"),
        }
    }
    assert!(checks > 0);
}
