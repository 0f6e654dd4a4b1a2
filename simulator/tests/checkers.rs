//! Every checker passes on a consistent input and fails on a broken one: a checker that cannot
//! fail is worthless.

use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use vnic_driver::counters::Counters;
use vnic_sim::checkers::{
    check_conservation, check_driver_counters, check_pool_full, check_transfer, CheckReport,
    Ledger, OrderChecker, Violation,
};
use vnic_sim::faults::{FaultyLink, WireFaults};
use vnic_sim::pattern::{fill_pattern, Digest};
use vnic_sim::rng::SimRng;

fn ledger() -> Ledger {
    Ledger {
        name: "link".to_owned(),
        entered: 100,
        delivered: 90,
        drops: vec![("lost", 4), ("link_down", 3)],
        in_flight: 3,
    }
}

#[test]
fn conservation_passes_when_every_frame_is_accounted_for() {
    assert_eq!(check_conservation(&ledger()), Ok(()));
    assert_eq!(check_conservation(&Ledger::default()), Ok(()));
}

#[test]
fn conservation_fails_on_a_missing_drop_or_a_frame_from_nowhere() {
    let mut missing = ledger();
    missing.drops.pop();
    let v = check_conservation(&missing).unwrap_err();
    assert_eq!(v.checker, "conservation");
    assert!(
        v.detail.contains("link") && v.detail.contains("entered 100"),
        "{v}"
    );
    let mut extra = ledger();
    extra.delivered += 1;
    assert!(check_conservation(&extra).is_err());
}

#[test]
fn conservation_agrees_with_a_faulty_link() {
    let faults = WireFaults {
        loss_ppm: 200_000,
        duplicate_ppm: 200_000,
        reorder_ppm: 200_000,
        delay_ns_max: 100,
        ..WireFaults::NONE
    };
    let mut link = FaultyLink::new(faults, SimRng::new(11));
    let mut buf = Vec::new();
    for i in 0..500u64 {
        link.push(i, &[0u8; 60]);
        if i % 3 == 0 {
            let _ = link.pop(i, &mut buf);
        }
    }
    let c = link.counters();
    let mut l = Ledger {
        name: "from_nic".to_owned(),
        entered: c.entered + c.duplicated,
        delivered: c.delivered,
        drops: vec![
            ("lost", c.lost),
            ("link_down", c.dropped_link_down),
            ("full", c.dropped_full),
        ],
        in_flight: c.in_flight(),
    };
    assert!(c.lost > 0 && c.duplicated > 0 && c.in_flight() > 0);
    assert_eq!(check_conservation(&l), Ok(()));
    l.drops[0].1 -= 1; // a frame lost without being counted
    assert!(check_conservation(&l).is_err());
}

#[test]
fn pool_full_passes_when_everything_is_back_and_fails_on_a_leak() {
    let pool = PacketBufferPool::create(PoolConfig::new(*b"chkr", 8, 2048)).unwrap();
    assert_eq!(check_pool_full("rx", &pool), Ok(()));
    let a = pool.allocate(Owner::System).unwrap();
    let b = pool.allocate(Owner::Driver).unwrap();
    let v = check_pool_full("rx", &pool).unwrap_err();
    assert_eq!(v.checker, "pool_full");
    assert!(v.detail.starts_with("rx: 2 of 8"), "{v}");
    pool.system_free(a).unwrap();
    let v = check_pool_full("rx", &pool).unwrap_err();
    assert!(
        v.detail.contains("1 of 8") && v.detail.contains("driver 1"),
        "{v}"
    );
    pool.deallocate(b).unwrap();
    assert_eq!(check_pool_full("rx", &pool), Ok(()));
}

fn order(sent: &[u64], received: &[u64]) -> OrderChecker {
    let mut c = OrderChecker::new("path");
    for &d in sent {
        c.sent(d);
    }
    for &d in received {
        c.received(d);
    }
    c
}

#[test]
fn order_passes_on_a_subsequence_with_losses() {
    let c = order(&[1, 2, 3, 4, 5], &[1, 3, 5]);
    assert_eq!(c.check(false, false), Ok(()));
    let s = c.stats();
    assert_eq!((s.sent, s.received, s.in_order), (5, 3, 3));
    // Identical frames sent twice may arrive twice.
    assert_eq!(order(&[7, 7, 8], &[7, 7, 8]).check(false, false), Ok(()));
}

#[test]
fn order_fails_on_a_duplicate_unless_allowed() {
    let c = order(&[1, 2, 3], &[1, 2, 2, 3]);
    let v = c.check(false, false).unwrap_err();
    assert_eq!(v.checker, "order");
    assert!(v.detail.contains("1 duplicates"), "{v}");
    assert_eq!(c.check(true, false), Ok(()));
    assert_eq!(c.stats().duplicates, 1);
}

#[test]
fn order_fails_on_a_swap_unless_allowed() {
    let c = order(&[1, 2, 3, 4], &[1, 3, 2, 4]);
    let v = c.check(false, false).unwrap_err();
    assert!(v.detail.contains("reordered"), "{v}");
    assert_eq!(c.check(false, true), Ok(()));
    assert!(
        c.check(true, false).is_err(),
        "duplicates allowed is not reorders allowed"
    );
}

#[test]
fn order_always_fails_on_a_frame_never_sent() {
    let c = order(&[1, 2, 3], &[1, 99, 3]);
    assert!(c.check(true, true).is_err());
    assert_eq!(c.stats().never_sent, 1);
}

#[test]
fn order_memory_is_bounded_and_overflow_is_counted_not_judged() {
    let mut c = OrderChecker::with_window("small", 4);
    for d in 0..10 {
        c.sent(d);
    }
    c.received(0); // evicted long ago: cannot be judged
    c.received(8);
    c.received(9);
    let s = c.stats();
    assert_eq!((s.evicted, s.unresolved, s.in_order), (6, 1, 2));
    assert_eq!(c.check(false, false), Ok(()));
    c.received(8); // still in the window: a real duplicate
    assert!(c.check(false, false).is_err());
}

#[test]
fn driver_counters_pass_when_completions_match() {
    let mut c = Counters::default();
    c.tx.frames = 10;
    c.tx.dropped_busy = 2;
    c.tx.dropped_disabled = 1;
    assert_eq!(check_driver_counters(&c, 15, 13), Ok(()));
}

#[test]
fn driver_counters_fail_on_a_missing_drop_lost_completions_or_too_many_completions() {
    let mut c = Counters::default();
    c.tx.frames = 10;
    let v = check_driver_counters(&c, 12, 11).unwrap_err();
    assert_eq!(v.checker, "driver_counters");
    assert!(check_driver_counters(&c, 9, 10).is_err());
    c.rx.completions_lost = 1;
    let v = check_driver_counters(&c, 10, 10).unwrap_err();
    assert!(v.detail.contains("completions lost"), "{v}");
    c.rx.completions_lost = 0;
    c.tx.completions_lost = 1;
    assert!(check_driver_counters(&c, 10, 10).is_err());
}

#[test]
fn transfer_passes_on_intact_bytes_and_fails_on_a_wrong_digest() {
    let mut got = Digest::new();
    let mut buf = vec![0u8; 3000];
    fill_pattern(5, 0, &mut buf);
    got.update(&buf);
    assert_eq!(
        check_transfer("tcp", Digest::of_pattern(5, 3000), got),
        Ok(())
    );
    let v = check_transfer("tcp", Digest::of_pattern(5, 3001), got).unwrap_err();
    assert_eq!(v.checker, "transfer");
    buf[1000] ^= 1;
    let mut flipped = Digest::new();
    flipped.update(&buf);
    assert!(check_transfer("tcp", Digest::of_pattern(5, 3000), flipped).is_err());
    assert!(v
        .to_string()
        .starts_with("transfer: tcp: expected 3001 bytes"));
}

#[test]
fn report_collects_results() {
    let mut r = CheckReport::new();
    r.add(Ok(()));
    assert!(r.clone().into_result().is_ok());
    r.add(Err(Violation {
        checker: "x",
        detail: "boom".to_owned(),
    }));
    r.add(check_conservation(&ledger()));
    assert_eq!(r.checks_run, 3);
    assert!(!r.is_clean());
    assert_eq!(r.violations.len(), 1);
    let text = r.to_string();
    assert!(text.starts_with("3 checks, 1 violations") && text.contains("x: boom"));
    assert!(r.into_result().is_err());
}
