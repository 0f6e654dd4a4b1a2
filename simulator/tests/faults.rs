//! Fault injection through its public API, judged by the checkers: what a plan injects is
//! exactly what the checkers must be told to allow.

use vnic_sim::checkers::{check_conservation, Ledger, OrderChecker};
use vnic_sim::faults::{
    FaultCounters, FaultPlan, FaultyLink, Flap, WireFaults, CORRUPT_SKIP_BYTES, REORDER_HOLD_NS,
};
use vnic_sim::rng::SimRng;

const FRAMES: u32 = 2_000;
const GAP_NS: u64 = 10_000;

/// A frame that carries its sequence number in its Ethernet source and payload.
fn frame(seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..10].copy_from_slice(&seq.to_be_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4: the only frames corruption touches
    f[CORRUPT_SKIP_BYTES..CORRUPT_SKIP_BYTES + 4].copy_from_slice(&seq.to_be_bytes());
    f
}

fn digest(f: &[u8]) -> u64 {
    f.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Streams [`FRAMES`] frames through one link, popping as time passes, then drains it.
/// Returns the order checker and the counters, and the time the last frame came out.
fn stream(faults: WireFaults, seed: u64) -> (OrderChecker, FaultCounters, u64) {
    let mut link = FaultyLink::new(faults, SimRng::new(seed));
    let mut order = OrderChecker::new("link");
    let mut buf = Vec::new();
    let mut last_ns = 0;
    let mut pop_due = |link: &mut FaultyLink, order: &mut OrderChecker, now_ns: u64| {
        for _ in 0..10_000 {
            if !link.pop(now_ns, &mut buf) {
                break;
            }
            order.received(digest(&buf));
            last_ns = now_ns;
        }
    };
    for seq in 0..FRAMES {
        let now_ns = u64::from(seq) * GAP_NS;
        pop_due(&mut link, &mut order, now_ns);
        let f = frame(seq);
        order.sent(digest(&f));
        link.push(now_ns, &f);
    }
    for _ in 0..100_000 {
        let Some(t) = link.next_deadline_ns() else {
            break;
        };
        pop_due(&mut link, &mut order, t);
    }
    (order, link.counters(), last_ns)
}

fn ledger(c: &FaultCounters) -> Ledger {
    Ledger {
        name: "link".to_owned(),
        entered: c.entered + c.duplicated,
        delivered: c.delivered,
        drops: vec![
            ("lost", c.lost),
            ("link down", c.dropped_link_down),
            ("full", c.dropped_full),
        ],
        in_flight: c.in_flight(),
    }
}

#[test]
fn loss_alone_keeps_order_and_conserves() {
    let faults = WireFaults {
        loss_ppm: 50_000,
        ..WireFaults::NONE
    };
    let (order, c, _) = stream(faults, 1);
    assert!(c.lost > 50, "{c:?}");
    assert_eq!(c.delivered + c.lost, u64::from(FRAMES));
    assert_eq!(order.check(false, false), Ok(()));
    assert_eq!(check_conservation(&ledger(&c)), Ok(()));
}

#[test]
fn duplicates_are_caught_unless_allowed() {
    let faults = WireFaults {
        duplicate_ppm: 50_000,
        ..WireFaults::NONE
    };
    let (order, c, _) = stream(faults, 2);
    assert!(c.duplicated > 50);
    assert_eq!(order.stats().duplicates, c.duplicated);
    assert!(order.check(false, false).is_err());
    assert_eq!(order.check(true, false), Ok(()));
    assert_eq!(check_conservation(&ledger(&c)), Ok(()));
}

#[test]
fn reorders_and_delay_jitter_are_caught_unless_allowed() {
    for faults in [
        WireFaults {
            reorder_ppm: 50_000,
            ..WireFaults::NONE
        },
        WireFaults {
            delay_ns_max: 5 * GAP_NS,
            ..WireFaults::NONE
        },
    ] {
        let plan = FaultPlan {
            to_nic: faults,
            ..FaultPlan::none()
        };
        assert!(plan.injects_reorder_or_duplicate(), "{}", plan.describe());
        let (order, c, _) = stream(faults, 3);
        assert!(order.stats().reordered > 10, "{:?}", order.stats());
        assert!(order.check(false, false).is_err());
        assert_eq!(order.check(false, true), Ok(()));
        assert_eq!(c.delivered, u64::from(FRAMES));
    }
}

#[test]
fn only_ipv4_frames_are_corrupted() {
    // ARP has no checksum (and vmnet frames no FCS): corrupting it could not be detected.
    let mut link = FaultyLink::new(
        WireFaults {
            corrupt_ppm: 1_000_000,
            ..WireFaults::NONE
        },
        SimRng::new(5),
    );
    let mut arp = frame(1);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    link.push(0, &arp);
    let mut ipv4 = frame(2);
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    link.push(0, &ipv4);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    assert!(link.pop(0, &mut a) && link.pop(0, &mut b));
    assert_eq!(a, arp, "the ARP frame is untouched");
    assert_ne!(b, ipv4, "the IPv4 frame is corrupted");
    assert_eq!(link.counters().corrupted, 1);
}

#[test]
fn corruption_reaches_the_receiver_as_frames_never_sent() {
    let faults = WireFaults {
        corrupt_ppm: 20_000,
        ..WireFaults::NONE
    };
    let (order, c, _) = stream(faults, 4);
    assert!(c.corrupted > 10);
    assert_eq!(
        c.delivered,
        u64::from(FRAMES),
        "corrupted frames still arrive"
    );
    assert_eq!(order.stats().never_sent, c.corrupted);
    assert!(order.check(true, true).is_err());
}

#[test]
fn a_flap_drops_what_is_pushed_while_down() {
    let flap = Flap {
        first_down_ns: 1_000_000,
        down_ns: 2_000_000,
        period_ns: 8_000_000,
    };
    let faults = WireFaults {
        flap: Some(flap),
        ..WireFaults::NONE
    };
    let (order, c, _) = stream(faults, 5);
    let expected_down = (0..FRAMES)
        .filter(|&s| flap.is_down(u64::from(s) * GAP_NS))
        .count() as u64;
    assert!(expected_down > 100);
    assert_eq!(c.dropped_link_down, expected_down);
    assert_eq!(order.check(false, false), Ok(()));
    // Link events: one down and one up per window.
    let mut link = FaultyLink::new(faults, SimRng::new(5));
    let mut events = Vec::new();
    let mut now_ns = 0;
    for _ in 0..8 {
        let Some(t) = link.next_link_change_ns(now_ns) else {
            break;
        };
        now_ns = t;
        events.extend(link.link_changes(now_ns));
    }
    assert_eq!(
        events,
        vec![false, true, false, true, false, true, false, true]
    );
}

#[test]
fn drawn_plans_deliver_every_surviving_frame_in_bounded_time() {
    let mut faulty = 0;
    for seed in 0..40 {
        let plan = FaultPlan::draw(&mut SimRng::new(seed).fork("faults"));
        for wire in [plan.to_nic, plan.from_nic] {
            let (order, c, last_ns) = stream(wire, seed);
            assert_eq!(c.in_flight(), 0);
            assert!(c.is_conserved(), "seed {seed}: {c:?}");
            assert_eq!(check_conservation(&ledger(&c)), Ok(()));
            let sent_until_ns = u64::from(FRAMES - 1) * GAP_NS;
            assert!(
                last_ns <= sent_until_ns + wire.delay_ns_max + REORDER_HOLD_NS,
                "seed {seed}: last frame at {last_ns} ns ({})",
                plan.describe()
            );
            let dup_or_reorder = plan.injects_reorder_or_duplicate();
            if wire.corrupt_ppm == 0 {
                assert_eq!(
                    order.check(dup_or_reorder, dup_or_reorder),
                    Ok(()),
                    "seed {seed}: {}",
                    plan.describe()
                );
            }
            let lost_share = (c.dropped_total() as f64) / f64::from(FRAMES);
            if wire.flap.is_none() {
                assert!(lost_share < 0.05, "seed {seed}: {lost_share}");
            }
            faulty += u32::from(!wire.is_none());
        }
    }
    assert!(faulty > 20, "most seeds inject something");
}
