use proptest::prelude::*;

use super::*;

fn frame(tag: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..4].copy_from_slice(&tag.to_be_bytes());
    f
}

fn tag(f: &[u8]) -> u32 {
    u32::from_be_bytes([f[0], f[1], f[2], f[3]])
}

/// Drains every frame due by `now_ns`.
fn drain(link: &mut FaultyLink, now_ns: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..100_000 {
        if !link.pop(now_ns, &mut buf) {
            break;
        }
        out.push(buf.clone());
    }
    out
}

#[test]
fn a_perfect_wire_delivers_everything_in_order_at_once() {
    let mut link = FaultyLink::new(WireFaults::NONE, SimRng::new(1));
    for i in 0..100 {
        link.push(10, &frame(i, 60));
    }
    assert_eq!(link.next_deadline_ns(), Some(10));
    let got: Vec<u32> = drain(&mut link, 10).iter().map(|f| tag(f)).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    let c = link.counters();
    assert_eq!((c.entered, c.delivered, c.in_flight()), (100, 100, 0));
    assert!(c.is_conserved());
    assert_eq!(link.next_deadline_ns(), None);
}

#[test]
fn nothing_is_due_before_its_delay() {
    let faults = WireFaults {
        delay_ns_max: 1_000,
        ..WireFaults::NONE
    };
    let mut link = FaultyLink::new(faults, SimRng::new(2));
    for i in 0..50 {
        link.push(0, &frame(i, 60));
    }
    let mut buf = Vec::new();
    let first = link.next_deadline_ns().unwrap();
    assert!(first <= 1_000);
    if first > 0 {
        assert!(!link.pop(first - 1, &mut buf), "popped before its deadline");
    }
    assert_eq!(drain(&mut link, 1_000).len(), 50);
}

#[test]
fn corruption_never_touches_the_ethernet_header() {
    let faults = WireFaults {
        corrupt_ppm: 1_000_000,
        ..WireFaults::NONE
    };
    let mut link = FaultyLink::new(faults, SimRng::new(3));
    let mut original: Vec<u8> = (0..100u8).collect();
    original[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4: the only frames corrupted
    for _ in 0..200 {
        link.push(0, &original);
    }
    link.push(0, &original[..14]); // header only: cannot be corrupted
    let got = drain(&mut link, 0);
    assert_eq!(got.len(), 201);
    for f in &got[..200] {
        assert_eq!(f[..14], original[..14]);
        let diffs = f.iter().zip(&original).filter(|(a, b)| a != b).count();
        assert_eq!(diffs, 1, "exactly one byte flipped");
    }
    assert_eq!(got[200], original[..14]);
    assert_eq!(link.counters().corrupted, 200);
}

#[test]
fn reorder_holds_a_frame_behind_the_next_one() {
    let faults = WireFaults {
        reorder_ppm: 1_000_000,
        ..WireFaults::NONE
    };
    let mut link = FaultyLink::new(faults, SimRng::new(4));
    link.push(0, &frame(1, 60));
    assert!(drain(&mut link, 0).is_empty(), "held back");
    link.push(0, &frame(2, 60));
    let got: Vec<u32> = drain(&mut link, 0).iter().map(|f| tag(f)).collect();
    assert_eq!(got, vec![2, 1]);
    // A frame held with nobody behind it is released after the hold.
    link.push(5, &frame(3, 60));
    assert_eq!(link.next_deadline_ns(), Some(5 + REORDER_HOLD_NS));
    assert!(drain(&mut link, 5 + REORDER_HOLD_NS - 1).is_empty());
    assert_eq!(drain(&mut link, 5 + REORDER_HOLD_NS).len(), 1);
    assert!(link.counters().is_conserved());
}

#[test]
fn flap_drops_frames_while_down_and_reports_each_transition_once() {
    let flap = Flap {
        first_down_ns: 100,
        down_ns: 50,
        period_ns: 1_000,
    };
    let faults = WireFaults {
        flap: Some(flap),
        ..WireFaults::NONE
    };
    let mut link = FaultyLink::new(faults, SimRng::new(5));
    assert!(link.is_up(99) && !link.is_up(100) && !link.is_up(149) && link.is_up(150));
    assert!(!link.is_up(1_100) && link.is_up(1_150));
    assert_eq!(link.next_link_change_ns(0), Some(100));
    assert_eq!(link.next_link_change_ns(120), Some(150));
    assert_eq!(link.next_link_change_ns(150), Some(1_100));
    assert_eq!(link.link_changes(50), None);
    assert_eq!(link.link_changes(100), Some(false));
    assert_eq!(link.link_changes(120), None);
    link.push(120, &frame(1, 60));
    assert_eq!(link.counters().dropped_link_down, 1);
    assert_eq!(link.link_changes(150), Some(true));
    assert_eq!(link.link_changes(160), None);
    // A whole window skipped between calls is still reported, as a pair.
    assert_eq!(link.link_changes(1_500), Some(false));
    assert_eq!(link.link_changes(1_500), Some(true));
    assert_eq!(link.link_changes(1_500), None);
    let once = Flap {
        period_ns: 0,
        ..flap
    };
    assert!(!once.is_down(1_100));
    assert_eq!(once.next_change_ns(200), None);
}

#[test]
fn same_seed_same_deliveries() {
    let faults = WireFaults {
        loss_ppm: 100_000,
        duplicate_ppm: 100_000,
        reorder_ppm: 100_000,
        corrupt_ppm: 100_000,
        delay_ns_max: 10_000,
        flap: None,
    };
    let run = |seed| {
        let mut link = FaultyLink::new(faults, SimRng::new(seed));
        for i in 0..500 {
            link.push(u64::from(i) * 10, &frame(i, 64));
        }
        (drain(&mut link, u64::MAX), link.counters())
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9).0, run(10).0);
}

#[test]
fn plans_are_deterministic_bounded_and_sometimes_none() {
    use draw_bounds as b;
    let mut nones = 0;
    let mut some_faulty = 0;
    for seed in 0..200 {
        let plan = FaultPlan::draw(&mut SimRng::new(seed));
        assert_eq!(plan, FaultPlan::draw(&mut SimRng::new(seed)));
        if plan == FaultPlan::none() {
            nones += 1;
            assert_eq!(plan.describe(), "none");
            assert!(!plan.injects_reorder_or_duplicate());
            continue;
        }
        some_faulty += 1;
        assert_ne!(plan.describe(), "none");
        for w in [plan.to_nic, plan.from_nic] {
            assert!(w.loss_ppm <= b::LOSS_PPM_MAX);
            assert!(w.duplicate_ppm <= b::DUPLICATE_PPM_MAX);
            assert!(w.reorder_ppm <= b::REORDER_PPM_MAX);
            assert!(w.corrupt_ppm <= b::CORRUPT_PPM_MAX);
            assert!(w.delay_ns_max <= b::DELAY_NS_MAX);
            if let Some(f) = w.flap {
                assert!(f.down_ns <= b::FLAP_DOWN_NS_MAX);
                assert!(f.period_ns == 0 || f.period_ns >= b::FLAP_PERIOD_NS_MIN);
                assert!(f.period_ns == 0 || f.period_ns > f.down_ns);
            }
        }
        assert!(plan.port.busy_ppm <= b::PORT_BUSY_PPM_MAX);
        assert!(plan.port.failure_ppm <= b::PORT_FAILURE_PPM_MAX);
        assert!(plan.port.too_big_ppm <= b::PORT_TOO_BIG_PPM_MAX);
        if let Some(n) = plan.stack.pool_packets {
            assert!((b::POOL_PACKETS_MIN..=b::POOL_PACKETS_MAX).contains(&n));
        }
        assert_eq!(
            plan.stack.stop_reposting_at_ns.is_some(),
            plan.stack.resume_reposting_at_ns.is_some(),
            "a stop always has a resume"
        );
        if let (Some(s), Some(r)) = (
            plan.stack.stop_reposting_at_ns,
            plan.stack.resume_reposting_at_ns,
        ) {
            assert!(s < r && r - s <= b::STOP_REPOSTING_NS_MAX);
            assert!(plan.stack.reposting_stopped(s) && !plan.stack.reposting_stopped(r));
        }
    }
    assert!(nones >= 10, "only {nones} none plans in 200 seeds");
    assert!(some_faulty >= 100);
}

#[test]
fn describe_names_every_fault_that_is_on() {
    let plan = FaultPlan {
        from_nic: WireFaults {
            loss_ppm: 7,
            ..WireFaults::NONE
        },
        port: PortFaults {
            busy_ppm: 3,
            ..PortFaults::NONE
        },
        stack: StackFaults {
            pool_packets: Some(9),
            ..StackFaults::NONE
        },
        ..FaultPlan::none()
    };
    let text = plan.describe();
    assert!(text.contains("from_nic{loss=7ppm"), "{text}");
    assert!(!text.contains("to_nic"), "{text}");
    assert!(
        text.contains("busy=3ppm") && text.contains("pool=9"),
        "{text}"
    );
    assert!(!plan.injects_reorder_or_duplicate());
}

fn wire_faults() -> impl Strategy<Value = WireFaults> {
    (
        0u32..300_000,
        0u32..300_000,
        0u32..300_000,
        0u32..300_000,
        0u64..5_000,
        proptest::option::of((
            0u64..2_000,
            1u64..500,
            prop_oneof![Just(0u64), 500u64..3_000],
        )),
    )
        .prop_map(|(loss, dup, reorder, corrupt, delay, flap)| WireFaults {
            loss_ppm: loss,
            duplicate_ppm: dup,
            reorder_ppm: reorder,
            corrupt_ppm: corrupt,
            delay_ns_max: delay,
            flap: flap.map(|(first, down, period)| Flap {
                first_down_ns: first,
                down_ns: down,
                period_ns: period,
            }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Conservation holds after every push and pop, and at the end everything is delivered or
    /// dropped with a reason.
    #[test]
    fn links_conserve_frames(
        faults in wire_faults(),
        seed in any::<u64>(),
        steps in proptest::collection::vec((0u64..300, any::<bool>(), 14usize..200), 1..300),
    ) {
        let mut link = FaultyLink::new(faults, SimRng::new(seed));
        let mut now_ns = 0;
        let mut buf = Vec::new();
        for (i, &(dt, push, len)) in steps.iter().enumerate() {
            now_ns += dt;
            if push {
                link.push(now_ns, &frame(i as u32, len));
            } else {
                let _ = link.pop(now_ns, &mut buf);
            }
            let c = link.counters();
            prop_assert!(c.is_conserved(), "{c:?}");
            prop_assert_eq!(c.entered + c.duplicated, c.delivered + c.lost
                + c.dropped_link_down + c.dropped_full + c.in_flight());
        }
        let _ = drain(&mut link, u64::MAX);
        let c = link.counters();
        prop_assert_eq!(c.in_flight(), 0);
        prop_assert_eq!(link.next_deadline_ns(), None);
        prop_assert!(c.is_conserved(), "{c:?}");
    }
}
