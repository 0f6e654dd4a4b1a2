//! The NIC's datapath and control through the NDK queues, against FakePort.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{default_rig, frame, rig, try_rig, MAC, PEER, SUCCESS};
use ndk_model::error::IoReturn;
use ndk_model::ethernet::{EthernetDriver, MacAddress};
use ndk_model::link::LinkStatus;
use ndk_model::notify::{FakeNotifier, Notifier};
use vnic_driver::nic::{MtuError, NewError, NicConfig, RunMode};
use vnic_driver::port::{PortEvent, PortInfo, WriteError};

const GROUP: MacAddress = MacAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
const OTHER_GROUP: MacAddress = MacAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);

#[test]
fn tx_frames_reach_the_port_and_complete_with_success() {
    let mut r = default_rig();
    let frames: Vec<_> = (0..10)
        .map(|i| frame(PEER, 60 + i * 100, i as u8))
        .collect();
    assert_eq!(r.submit(&frames), 10);
    let out = r.poll();
    assert_eq!(out.tx_completed, 10);
    assert_eq!(r.nic.port().outbound(), &frames[..]);
    assert_eq!(r.tx_completions(), vec![SUCCESS; 10]);
    let c = r.nic.counters().tx;
    assert_eq!(c.frames, 10);
    assert_eq!(c.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert_eq!(c.dropped_total(), 0);
}

#[test]
fn tx_honours_the_packets_per_call_limit() {
    let mut r = default_rig(); // 200 packets per call
    let frames: Vec<_> = (0..300u32).map(|i| frame(PEER, 64, i as u8)).collect();
    assert_eq!(r.submit(&frames), 300);
    r.poll();
    r.poll();
    assert_eq!(r.nic.port().write_batch_sizes(), &[200, 100]);
    assert_eq!(r.nic.port().outbound(), &frames[..]);
    assert_eq!(r.tx_completions().len(), 300);
}

#[test]
fn tx_honours_the_observed_256_limit() {
    let mut r = rig(PortInfo::vmnet_observed(MAC), 512, NicConfig::default());
    let frames: Vec<_> = (0..300u32).map(|i| frame(PEER, 64, i as u8)).collect();
    r.submit(&frames);
    r.poll();
    r.poll();
    assert_eq!(r.nic.port().write_batch_sizes(), &[256, 44]);
}

#[test]
fn tx_honours_the_bytes_per_call_limit() {
    let mut r = default_rig(); // 256 KB per call: 173 frames of 1514 B
    let frames: Vec<_> = (0..200u32).map(|i| frame(PEER, 1514, i as u8)).collect();
    r.submit(&frames);
    r.poll();
    assert_eq!(r.nic.port().write_batch_sizes(), &[173, 27]);
    assert_eq!(r.tx_completions(), vec![SUCCESS; 200]);
}

#[test]
fn tx_oversize_frame_is_dropped_counted_and_completed_with_an_error() {
    let mut r = default_rig();
    let frames = vec![
        frame(PEER, 100, 1),
        frame(PEER, 1515, 2),
        frame(PEER, 100, 3),
    ];
    r.submit(&frames);
    r.poll();
    assert_eq!(
        r.nic.port().outbound(),
        &[frames[0].clone(), frames[2].clone()]
    );
    let statuses = r.tx_completions();
    assert_eq!(statuses, vec![SUCCESS, IoReturn::Overrun as u32, SUCCESS]);
    assert_eq!(r.nic.counters().tx.dropped_packet_too_big, 1);
}

#[test]
fn tx_runt_frame_is_dropped_counted_and_does_not_spoil_its_batch() {
    let mut r = default_rig();
    let frames = vec![frame(PEER, 100, 1), frame(PEER, 10, 2), frame(PEER, 100, 3)];
    r.submit(&frames);
    r.poll();
    // vmnet would fail the whole call for one runt; the driver keeps it from the port.
    assert_eq!(
        r.nic.port().outbound(),
        &[frames[0].clone(), frames[2].clone()]
    );
    let statuses = r.tx_completions();
    assert_eq!(
        statuses,
        vec![SUCCESS, IoReturn::BadArgument as u32, SUCCESS]
    );
    let c = r.nic.counters().tx;
    assert_eq!((c.dropped_runt, c.dropped_total()), (1, 1));
}

#[test]
fn tx_busy_port_is_retried_then_sent() {
    let mut r = default_rig();
    r.nic.port_mut().busy_writes(3);
    let frames: Vec<_> = (0..5).map(|i| frame(PEER, 64, i)).collect();
    r.submit(&frames);
    // One retry per pass: the packets wait in the driver (a pass holding them is not idle).
    for retry in 1..=3u64 {
        let out = r.poll();
        assert_eq!((out.tx_completed, out.tx_held), (0, 5), "pass {retry}");
        assert!(!out.is_idle());
        assert_eq!(r.nic.tx_packets_held(), 5);
        assert_eq!(r.nic.counters().tx.busy_retries, retry);
    }
    let out = r.poll();
    assert_eq!((out.tx_completed, out.tx_held), (5, 0));
    assert_eq!(r.nic.tx_packets_held(), 0);
    assert_eq!(r.nic.port().outbound(), &frames[..]);
    assert_eq!(r.tx_completions(), vec![SUCCESS; 5]);
    let c = r.nic.counters().tx;
    assert_eq!((c.busy_retries, c.dropped_busy), (3, 0));
}

#[test]
fn tx_busy_past_the_retry_limit_drops_and_counts() {
    let config = NicConfig {
        tx_busy_retries_max: 2,
        ..NicConfig::default()
    };
    let mut r = rig(PortInfo::vmnet_documented(MAC), 512, config);
    r.nic.port_mut().busy_writes(3);
    let frames: Vec<_> = (0..5).map(|i| frame(PEER, 64, i)).collect();
    r.submit(&frames);
    // Two passes retry; the third busy refusal is past the limit.
    assert_eq!(r.poll().tx_completed, 0);
    assert_eq!(r.poll().tx_completed, 0);
    let out = r.poll();
    assert_eq!((out.tx_completed, out.tx_held), (5, 0));
    assert!(r.nic.port().outbound().is_empty());
    assert_eq!(r.tx_completions(), vec![IoReturn::Busy as u32; 5]);
    let c = r.nic.counters().tx;
    assert_eq!((c.busy_retries, c.dropped_busy, c.frames), (2, 5, 0));
}

#[test]
fn tx_held_packets_go_first_in_order_and_are_counted_once() {
    let mut r = default_rig();
    r.nic.port_mut().busy_writes(1);
    let first = vec![frame(PEER, 64, 0), frame(PEER, 10, 1), frame(PEER, 64, 2)];
    r.submit(&first);
    let out = r.poll();
    assert_eq!((out.tx_completed, out.tx_held), (0, 3));
    // The runt behind the busy write is not counted yet: it is counted when it completes.
    assert_eq!(r.nic.counters().tx.dropped_runt, 0);
    let later = frame(PEER, 64, 3);
    r.submit(std::slice::from_ref(&later));
    let out = r.poll();
    assert_eq!((out.tx_completed, out.tx_held), (4, 0));
    assert_eq!(
        r.nic.port().outbound(),
        &[first[0].clone(), first[2].clone(), later]
    );
    assert_eq!(
        r.tx_completions(),
        vec![SUCCESS, IoReturn::BadArgument as u32, SUCCESS, SUCCESS]
    );
    let c = r.nic.counters().tx;
    assert_eq!((c.frames, c.dropped_runt, c.busy_retries), (3, 1, 1));
    assert_eq!(c.frames + c.dropped_total(), 4);
}

#[test]
fn disable_returns_held_tx_packets_counted() {
    let mut r = default_rig();
    r.nic.port_mut().busy_writes(100);
    r.submit(&[frame(PEER, 64, 0), frame(PEER, 64, 1), frame(PEER, 64, 2)]);
    assert_eq!(r.poll().tx_held, 3);
    r.submit(&[frame(PEER, 64, 3)]);
    r.service.set_interface_enable(&mut r.nic, false).unwrap();
    assert_eq!(r.nic.tx_packets_held(), 0);
    assert!(r.tx_completions().is_empty());
    // Three held plus one still in Tx submission.
    assert_eq!(r.nic.counters().tx.dropped_disabled, 4);
    assert!(
        r.pool.leak_report().is_clean(),
        "{:?}",
        r.pool.leak_report()
    );
}

#[test]
fn tx_port_failure_drops_and_counts() {
    let mut r = default_rig();
    r.nic.port_mut().fail_next_write(WriteError::Failed);
    r.submit(&[frame(PEER, 64, 0)]);
    r.poll();
    assert_eq!(r.tx_completions(), vec![IoReturn::IoError as u32]);
    assert_eq!(r.nic.counters().tx.dropped_port_error, 1);
}

#[test]
fn tx_takes_only_what_tx_completion_can_hold() {
    let mut r = rig(PortInfo::vmnet_documented(MAC), 8, NicConfig::default());
    let frames: Vec<_> = (0..8).map(|i| frame(PEER, 64, i)).collect();
    r.submit(&frames);
    r.poll();
    // Completion is full; new frames wait in Tx submission, nothing lost.
    r.submit(&frames[..4]);
    assert_eq!(r.poll().tx_completed, 0);
    assert_eq!(r.tx_completions().len(), 8);
    assert_eq!(r.poll().tx_completed, 4);
    assert_eq!(r.tx_completions().len(), 4);
    assert_eq!(r.nic.counters().tx.completions_lost, 0);
}

#[test]
fn rx_frames_reach_rx_completion_in_order() {
    let mut r = default_rig();
    r.post_rx(16);
    let frames: Vec<_> = (0..10).map(|i| frame(MAC, 60 + i * 140, i as u8)).collect();
    for f in &frames {
        r.nic.port_mut().push_inbound(f);
    }
    let out = r.poll();
    assert_eq!((out.rx_read, out.rx_delivered), (10, 10));
    assert_eq!(r.rx_frames(), frames);
    assert_eq!(r.nic.counters().rx.frames, 10);
}

#[test]
fn rx_filter_table() {
    // (destination, promiscuous, all-multicast, multicast list, delivered)
    let cases: &[(MacAddress, bool, bool, &[MacAddress], bool)] = &[
        (MAC, false, false, &[], true),
        (MacAddress::BROADCAST, false, false, &[], true),
        (PEER, false, false, &[], false),
        (GROUP, false, false, &[GROUP], true),
        (OTHER_GROUP, false, false, &[GROUP], false),
        (GROUP, false, false, &[], false),
        (OTHER_GROUP, false, true, &[GROUP], true),
        (PEER, true, false, &[], true),
        (OTHER_GROUP, true, false, &[], true),
    ];
    for &(dst, promiscuous, all_multicast, list, delivered) in cases {
        let mut r = default_rig();
        r.service
            .set_promiscuous_mode_enable(&mut r.nic, promiscuous)
            .unwrap();
        r.service
            .set_all_multicast_mode_enable(&mut r.nic, all_multicast)
            .unwrap();
        r.service.set_multicast_addresses(&mut r.nic, list).unwrap();
        r.post_rx(4);
        r.nic.port_mut().push_inbound(&frame(dst, 64, 7));
        r.poll();
        let got = r.rx_frames().len();
        let case = format!("{dst} promisc={promiscuous} allmulti={all_multicast} list={list:?}");
        assert_eq!(got == 1, delivered, "{case}");
        assert_eq!(
            r.nic.counters().rx.dropped_filtered,
            u64::from(!delivered),
            "{case}"
        );
    }
}

#[test]
fn rx_runt_frames_are_dropped_and_counted_and_buffers_reused() {
    let mut r = default_rig();
    r.post_rx(2);
    r.nic.port_mut().push_inbound(&[0xff; 13]);
    r.nic.port_mut().push_inbound(&frame(MAC, 64, 1));
    r.poll();
    assert_eq!(r.rx_frames().len(), 1);
    assert_eq!(r.nic.counters().rx.dropped_runt, 1);
    assert_eq!(r.nic.rx_buffers_held(), 1);
}

#[test]
fn rx_without_posted_buffers_leaves_frames_at_the_port() {
    let mut r = default_rig();
    let frames: Vec<_> = (0..5).map(|i| frame(MAC, 64, i)).collect();
    for f in &frames {
        r.nic.port_mut().push_inbound(f);
    }
    for _ in 0..3 {
        assert!(r.poll().is_idle());
    }
    assert_eq!(r.nic.port().inbound_len(), 5);
    assert_eq!(r.nic.port().read_calls(), 0);
    assert_eq!(r.nic.counters().rx.dropped_total(), 0);
    r.post_rx(3);
    r.poll();
    assert_eq!(r.nic.port().inbound_len(), 2);
    r.post_rx(3);
    r.poll();
    assert_eq!(r.rx_frames(), frames);
}

#[test]
fn mtu_is_checked_against_the_port_max_packet_size() {
    let mut r = default_rig();
    assert_eq!(r.nic.mtu_bytes_max(), 1500);
    r.service.set_mtu(&mut r.nic, 1500).unwrap();
    r.service.set_mtu(&mut r.nic, 1280).unwrap();
    assert_eq!(r.nic.mtu_bytes(), 1280);
    assert!(r.service.set_mtu(&mut r.nic, 1501).is_err());
    assert_eq!(
        r.nic.check_mtu(1501),
        Err(MtuError::TooBig {
            mtu_bytes: 1501,
            max_packet_size_bytes: 1514
        })
    );
    assert_eq!(r.nic.set_mtu(1501), Err(IoReturn::BadArgument));
    let mut jumbo = PortInfo::vmnet_documented(MAC);
    jumbo.max_packet_size_bytes = 9014;
    jumbo.mtu_bytes = 9000;
    let err = try_rig(jumbo, 64, NicConfig::default(), 2048).err();
    assert_eq!(
        err,
        Some(NewError::RxBufferTooSmall {
            buffer_size_bytes: 2048,
            max_packet_size_bytes: 9014
        })
    );
    let mut j = try_rig(jumbo, 64, NicConfig::default(), 9216).unwrap();
    assert_eq!(j.nic.mtu_bytes_max(), 9000);
    j.service.set_mtu(&mut j.nic, 9000).unwrap();
    j.submit(&[frame(PEER, 9014, 1)]);
    j.poll();
    assert_eq!(j.tx_completions(), vec![SUCCESS]);
}

#[test]
fn link_events_become_link_status_reports() {
    let mut r = default_rig();
    assert_eq!(r.service.link_status(), LinkStatus::ACTIVE);
    r.nic.port_mut().push_event(PortEvent::LinkDown);
    r.poll();
    assert_eq!(r.service.link_status(), LinkStatus::INACTIVE);
    r.nic.port_mut().push_event(PortEvent::LinkUp);
    r.poll();
    assert_eq!(r.service.link_status(), LinkStatus::ACTIVE);
    r.nic.port_mut().link_flap();
    assert_eq!(r.poll().events, 2);
    assert_eq!(r.service.link_status(), LinkStatus::ACTIVE);
    r.nic.port_mut().push_event(PortEvent::Stopped);
    r.poll();
    assert_eq!(r.service.link_status(), LinkStatus::INACTIVE);
}

#[test]
fn interface_enable_starts_the_port_and_queues_and_disable_stops_them() {
    let mut r = default_rig();
    assert!(r.nic.port().is_started());
    assert!(r.iface.queues().tx_submission.is_enabled());
    r.submit(&[frame(PEER, 64, 0), frame(PEER, 64, 1)]);
    r.post_rx(4);
    r.service.set_interface_enable(&mut r.nic, false).unwrap();
    assert!(!r.nic.port().is_started());
    assert!(!r.iface.queues().tx_submission.is_enabled());
    // The unsent frames went back to the pool, counted.
    assert!(r.tx_completions().is_empty());
    assert_eq!(r.nic.counters().tx.dropped_disabled, 2);
    assert!(
        r.pool.leak_report().is_clean(),
        "{:?}",
        r.pool.leak_report()
    );
}

#[test]
fn the_pool_is_full_again_when_quiet() {
    let mut r = default_rig();
    for round in 0..20u8 {
        r.post_rx(32);
        let frames: Vec<_> = (0..50).map(|i| frame(PEER, 64 + i, round)).collect();
        r.submit(&frames);
        for i in 0..40u8 {
            let dst = if i % 4 == 0 { PEER } else { MAC };
            r.nic.port_mut().push_inbound(&frame(dst, 80, i));
        }
        r.nic.port_mut().push_inbound(&[1, 2, 3]);
        for _ in 0..4 {
            r.poll();
        }
        r.tx_completions();
        r.rx_frames();
    }
    r.service.set_interface_enable(&mut r.nic, false).unwrap();
    r.tx_completions();
    r.rx_frames();
    assert!(
        r.pool.leak_report().is_clean(),
        "{:?}",
        r.pool.leak_report()
    );
    let c = r.nic.counters();
    assert_eq!(c.tx.frames, 1000);
    assert_eq!(c.rx.completions_lost + c.tx.completions_lost, 0);
}

#[test]
fn run_busy_poll_moves_frames_and_is_bounded() {
    let mut r = default_rig();
    r.submit(&[frame(PEER, 64, 0)]);
    let waker: Arc<dyn Notifier> = Arc::new(FakeNotifier::new());
    let stop = AtomicBool::new(false);
    let report = r
        .nic
        .run(r.service.link_mut(), &waker, &stop, RunMode::BusyPoll, 5)
        .unwrap();
    assert_eq!(report.passes, 5);
    assert_eq!(report.idle_passes, 4);
    assert_eq!(r.nic.port().frames_written(), 1);
}

#[test]
fn run_waits_on_the_waker_and_stops_when_asked() {
    let mut r = default_rig();
    let fake = Arc::new(FakeNotifier::new());
    let waker: Arc<dyn Notifier> = fake.clone();
    let stop = AtomicBool::new(true);
    let report = r
        .nic
        .run(
            r.service.link_mut(),
            &waker,
            &stop,
            RunMode::Wait { timeout_ms: 1 },
            10,
        )
        .unwrap();
    assert_eq!(report.passes, 0);
    let stop = AtomicBool::new(false);
    // Readiness from the port makes the wait return at once.
    r.nic.port_mut().push_inbound(&frame(MAC, 64, 0));
    let report = r
        .nic
        .run(
            r.service.link_mut(),
            &waker,
            &stop,
            RunMode::Wait { timeout_ms: 1 },
            2,
        )
        .unwrap();
    assert_eq!(report.passes, 2);
    assert!(fake.waits_total() >= 1);
}

#[test]
fn rx_port_read_failure_is_counted_and_frames_follow() {
    let mut r = default_rig();
    r.post_rx(2);
    r.nic.port_mut().push_inbound(&frame(MAC, 64, 0));
    r.nic
        .port_mut()
        .fail_next_read(vnic_driver::port::ReadError::Failed);
    r.poll();
    assert_eq!(r.nic.counters().rx.port_errors, 1);
    r.poll();
    assert_eq!(r.rx_frames().len(), 1);
}

#[test]
fn run_in_wait_mode_on_its_own_thread_moves_every_frame() {
    let mut r = default_rig();
    let waker: Arc<dyn Notifier> = Arc::new(FakeNotifier::new());
    r.iface
        .queues_mut()
        .tx_submission
        .set_doorbell(Arc::clone(&waker));
    let mut link = r.service.link().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut nic = r.nic;
    let thread_stop = Arc::clone(&stop);
    let thread_waker = Arc::clone(&waker);
    let driver = std::thread::spawn(move || {
        let report = nic
            .run(
                &mut link,
                &thread_waker,
                &thread_stop,
                RunMode::Wait { timeout_ms: 100 },
                10_000_000,
            )
            .unwrap();
        (nic, report)
    });
    let frames: Vec<_> = (0..64u8).map(|i| frame(PEER, 64, i)).collect();
    let mut completed = 0;
    let mut submitted = 0;
    let mut rounds = 0;
    while completed < 1000 {
        rounds += 1;
        assert!(rounds < 10_000_000, "no progress");
        if submitted < 1000 {
            let chunk = (1000 - submitted).min(16);
            submitted += common::submit(&r.pool, &mut r.iface, &frames[..chunk]);
        }
        completed += common::tx_completions(&r.pool, &mut r.iface).len();
        std::thread::yield_now();
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    waker.notify();
    let (nic, report) = driver.join().unwrap();
    assert_eq!(nic.port().frames_written(), 1000);
    assert!(report.passes > 0);
}

#[test]
fn a_stopped_port_is_not_read_and_tx_completes_offline_until_reenabled() {
    let mut r = default_rig();
    r.post_rx(4);
    r.nic.port_mut().push_event(PortEvent::Stopped);
    r.poll();
    let reads = r.nic.port().read_calls();
    r.poll();
    assert_eq!(r.nic.port().read_calls(), reads);
    assert_eq!(r.nic.counters().rx.port_errors, 0);
    r.submit(&[frame(PEER, 64, 0)]);
    r.poll();
    assert_eq!(r.tx_completions(), vec![IoReturn::Offline as u32]);
    assert_eq!(r.nic.counters().tx.dropped_port_error, 1);
    r.service.set_interface_enable(&mut r.nic, false).unwrap();
    r.service.set_interface_enable(&mut r.nic, true).unwrap();
    assert_eq!(r.service.link_status(), LinkStatus::ACTIVE);
    r.post_rx(4);
    r.nic.port_mut().push_inbound(&frame(MAC, 64, 1));
    r.poll();
    assert_eq!(r.rx_frames().len(), 1);
}
