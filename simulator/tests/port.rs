//! `SimPort` + `WireEnd`: every error path, the counters' conservation, wakeups, events and
//! a `VirtualEthernet<SimPort>` loopback.
#![cfg(not(loom))]

use std::sync::Arc;

use ndk_model::ethernet::MacAddress;
use ndk_model::notify::{FakeNotifier, Notifier};
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use vnic_driver::attach::{attach, AttachedNic};
use vnic_driver::nic::NicConfig;
use vnic_driver::port::{HardwarePort, PortEvent, PortInfo, ReadError, WriteError};
use vnic_sim::faults::PortFaults;
use vnic_sim::port::{wire, RxFull, SimPort, WireConfig, WireEnd, WireError};
use vnic_sim::rng::SimRng;

const MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 1]);
const PEER: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 2]);

fn small_info() -> PortInfo {
    let mut info = PortInfo::vmnet_documented(MAC);
    info.max_packets_per_call = 4;
    info.max_bytes_per_call = 4 * 1514;
    info
}

fn config(tx: u32, rx: u32, events: u32) -> WireConfig {
    WireConfig {
        tx_frames_max: tx,
        rx_frames_max: rx,
        events_max: events,
    }
}

fn started(info: PortInfo, cfg: WireConfig, faults: PortFaults) -> (SimPort, WireEnd) {
    let (mut port, end) = wire(info, cfg, faults, SimRng::new(7)).unwrap();
    port.start().unwrap();
    (port, end)
}

fn frame(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&MAC.0);
    f[6..12].copy_from_slice(&PEER.0);
    for (i, b) in f.iter_mut().enumerate().skip(12) {
        *b = tag.wrapping_add(i as u8);
    }
    f
}

fn read_one(port: &mut SimPort, cap: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut buf = vec![0u8; cap];
    let mut lens = [0usize; 1];
    let mut bufs = [&mut buf[..]];
    let n = port.read_frames(&mut bufs, &mut lens)?;
    Ok((n == 1).then(|| buf[..lens[0]].to_vec()))
}

#[test]
fn bad_configs_are_refused() {
    let info = small_info();
    let rng = SimRng::new(1);
    assert!(matches!(
        wire(info, config(3, 4, 4), PortFaults::NONE, rng.clone()),
        Err(WireError::BadCapacity {
            name: "tx_frames_max",
            value: 3
        })
    ));
    assert!(matches!(
        wire(info, config(4, 0, 4), PortFaults::NONE, rng.clone()),
        Err(WireError::BadCapacity {
            name: "rx_frames_max",
            ..
        })
    ));
    assert!(matches!(
        wire(info, config(4, 4, 6), PortFaults::NONE, rng.clone()),
        Err(WireError::BadCapacity {
            name: "events_max",
            ..
        })
    ));
    assert!(matches!(
        wire(info, config(2, 4, 4), PortFaults::NONE, rng.clone()),
        Err(WireError::TxRingBelowBatch { .. })
    ));
    let mut bad = info;
    bad.max_packet_size_bytes = 14;
    assert!(matches!(
        wire(bad, config(4, 4, 4), PortFaults::NONE, rng),
        Err(WireError::BadPortInfo)
    ));
    assert_eq!(WireConfig::default(), config(1024, 1024, 64));
}

#[test]
fn write_limits_and_their_counters() {
    let (mut port, mut end) = started(small_info(), config(8, 8, 4), PortFaults::NONE);
    let f = frame(64, 1);
    let big = frame(1515, 2);
    let full = frame(1514, 3);
    assert_eq!(
        port.write_frames(&[&f[..]; 5]),
        Err(WriteError::TooManyPackets { count: 5 })
    );
    let mut info = small_info();
    info.max_bytes_per_call = 2000;
    let (mut tight, _tight_end) = started(info, config(8, 8, 4), PortFaults::NONE);
    assert_eq!(
        tight.write_frames(&[&full[..], &full[..]]),
        Err(WriteError::TooManyBytes { bytes: 3028 })
    );
    assert_eq!(
        port.write_frames(&[&f[..], &big[..]]),
        Err(WriteError::PacketTooBig { index: 1 })
    );
    let runt = [0u8; 13];
    assert_eq!(
        port.write_frames(&[&f[..], &runt[..]]),
        Err(WriteError::Failed)
    );
    assert_eq!(port.write_frames(&[]), Ok(0));
    assert_eq!(port.write_frames(&[&f[..], &full[..]]), Ok(2));
    let c = port.counters();
    assert_eq!(c.write_calls, 5);
    assert_eq!(c.frames_offered, 5 + 2 + 2 + 2);
    assert_eq!(c.frames_refused_limits, 5);
    assert_eq!(c.frames_refused_too_big, 2);
    assert_eq!(c.frames_refused_runt, 2);
    assert_eq!(c.frames_accepted, 2);
    assert_eq!(c.bytes_accepted, 64 + 1514);
    assert_eq!(c.frames_offered, c.frames_accepted + c.frames_refused());
    assert_eq!(tight.counters().frames_refused_limits, 2);
    // Accepted frames arrive intact and in order.
    let mut out = Vec::new();
    assert_eq!(end.peek_tx_len(), Some(64));
    assert!(end.pop_tx(&mut out));
    assert_eq!(out, f);
    assert!(end.pop_tx(&mut out));
    assert_eq!(out, full);
    assert!(!end.pop_tx(&mut out));
    assert!(out.is_empty());
    assert_eq!(end.counters().tx_frames_popped, 2);
    assert_eq!(end.counters().tx_bytes_popped, 64 + 1514);
}

#[test]
fn writes_are_all_or_nothing_when_the_ring_is_short() {
    let (mut port, mut end) = started(small_info(), config(4, 4, 4), PortFaults::NONE);
    let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(60 + i, i as u8)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(port.write_frames(&refs[..3]), Ok(3));
    assert_eq!(port.write_frames(&refs[..2]), Err(WriteError::Busy));
    assert_eq!(end.tx_queued(), 3, "a refused batch takes nothing");
    assert_eq!(port.write_frames(&refs[3..]), Ok(1));
    assert_eq!(port.write_frames(&refs[..1]), Err(WriteError::Busy));
    let mut out = Vec::new();
    for f in &frames[..3] {
        assert!(end.pop_tx(&mut out));
        assert_eq!(&out, f);
    }
    assert_eq!(port.write_frames(&refs[..2]), Ok(2));
    let c = port.counters();
    assert_eq!(c.frames_refused_busy, 3);
    assert_eq!(c.frames_accepted, 6);
    assert_eq!(
        c.frames_accepted,
        end.counters().tx_frames_popped + end.tx_queued() as u64
    );
    assert_eq!(c.frames_offered, c.frames_accepted + c.frames_refused());
}

#[test]
fn not_started_refuses_and_stop_discards_nothing() {
    let (mut port, mut end) = wire(
        small_info(),
        config(8, 8, 4),
        PortFaults::NONE,
        SimRng::new(3),
    )
    .unwrap();
    let f = frame(64, 9);
    assert!(!end.is_started());
    assert!(!port.is_link_up());
    assert_eq!(port.write_frames(&[&f]), Err(WriteError::NotStarted));
    assert_eq!(read_one(&mut port, 2048), Err(ReadError::NotStarted));
    port.start().unwrap();
    assert!(end.is_started());
    assert!(port.is_link_up());
    assert_eq!(port.write_frames(&[&f]), Ok(1));
    end.push_rx(&f).unwrap();
    port.stop();
    assert!(!end.is_started());
    assert_eq!(read_one(&mut port, 2048), Err(ReadError::NotStarted));
    // Both frames are still there.
    assert_eq!(end.tx_queued(), 1);
    assert_eq!(port.rx_queued(), 1);
    let mut out = Vec::new();
    assert!(end.pop_tx(&mut out));
    port.start().unwrap();
    assert_eq!(read_one(&mut port, 2048), Ok(Some(f.clone())));
    let c = port.counters();
    assert_eq!(c.frames_refused_not_started, 1);
    assert_eq!(c.reads_not_started, 2);
    assert_eq!(c.frames_read, 1);
}

#[test]
fn reads_respect_buffers_and_per_call_limit() {
    let (mut port, mut end) = started(small_info(), config(8, 8, 4), PortFaults::NONE);
    let frames: Vec<Vec<u8>> = [100, 300, 60, 61, 62, 63]
        .iter()
        .enumerate()
        .map(|(i, &len)| frame(len, i as u8))
        .collect();
    for f in &frames {
        end.push_rx(f).unwrap();
    }
    assert_eq!(end.rx_free(), 2);
    // Second frame does not fit its buffer: the read stops before it.
    let mut a = [0u8; 200];
    let mut b = [0u8; 200];
    let mut lens = [0usize; 2];
    let mut bufs = [&mut a[..], &mut b[..]];
    assert_eq!(port.read_frames(&mut bufs, &mut lens), Ok(1));
    assert_eq!(lens[0], 100);
    assert_eq!(&a[..100], &frames[0][..]);
    // Now it is first: BufferTooSmall, and it stays.
    let mut bufs = [&mut a[..], &mut b[..]];
    assert_eq!(
        port.read_frames(&mut bufs, &mut lens),
        Err(ReadError::BufferTooSmall { needed_bytes: 300 })
    );
    assert_eq!(port.rx_queued(), 5);
    assert_eq!(read_one(&mut port, 2048), Ok(Some(frames[1].clone())));
    // Never more than max_packets_per_call (4), even with 6 buffers.
    let mut store = vec![[0u8; 2048]; 6];
    let mut bufs: Vec<&mut [u8]> = store.iter_mut().map(|s| &mut s[..]).collect();
    let mut lens = [0usize; 6];
    assert_eq!(port.read_frames(&mut bufs, &mut lens), Ok(4));
    for i in 0..4 {
        assert_eq!(&bufs[i][..lens[i]], &frames[2 + i][..]);
    }
    assert_eq!(port.read_frames(&mut bufs, &mut lens), Ok(0));
    let c = port.counters();
    assert_eq!(c.frames_read, 6);
    assert_eq!(c.reads_buffer_too_small, 1);
    assert_eq!(end.counters().rx_frames_pushed, 6);
}

#[test]
fn push_rx_refuses_full_and_too_big() {
    let (mut port, mut end) = started(small_info(), config(4, 2, 4), PortFaults::NONE);
    let f = frame(64, 1);
    end.push_rx(&f).unwrap();
    end.push_rx(&f).unwrap();
    assert_eq!(end.push_rx(&f), Err(RxFull::Full));
    assert_eq!(
        end.push_rx(&frame(1515, 0)),
        Err(RxFull::TooBig { len_bytes: 1515 })
    );
    let w = end.counters();
    assert_eq!((w.rx_refused_full, w.rx_refused_too_big), (1, 1));
    assert_eq!(read_one(&mut port, 2048), Ok(Some(f.clone())));
    assert_eq!(end.rx_free(), 1);
    end.push_rx(&f).unwrap();
    assert_eq!(end.rx_queued(), 2);
}

#[test]
fn injected_faults_are_deterministic_and_counted() {
    let faults = PortFaults {
        busy_ppm: 200_000,
        too_big_ppm: 100_000,
        failure_ppm: 100_000,
    };
    let run = |seed: u64| {
        let (mut port, mut end) =
            wire(small_info(), config(8, 8, 4), faults, SimRng::new(seed)).unwrap();
        port.start().unwrap();
        let f = frame(64, 0);
        let mut results = Vec::new();
        let mut out = Vec::new();
        for _ in 0..400 {
            results.push(port.write_frames(&[&f, &f]));
            while end.pop_tx(&mut out) {}
            let _ = end.push_rx(&f);
            results.push(
                read_one(&mut port, 2048)
                    .map(|o| o.map_or(0, |v| v.len()))
                    .map_err(|_| WriteError::Failed),
            );
        }
        (results, port.counters())
    };
    let (a, ca) = run(11);
    let (b, cb) = run(11);
    assert_eq!(a, b, "a seed reproduces the faults");
    assert_eq!(ca, cb);
    assert!(ca.frames_injected_busy > 0);
    assert!(ca.frames_injected_too_big > 0);
    assert!(ca.frames_injected_failure > 0);
    assert!(ca.reads_injected_failure > 0);
    assert!(a.contains(&Err(WriteError::PacketTooBig { index: 0 })));
    assert!(a.contains(&Err(WriteError::Busy)));
    assert_eq!(ca.frames_offered, ca.frames_accepted + ca.frames_refused());
    let (c, _) = run(12);
    assert_ne!(a, c, "another seed, other faults");
}

#[test]
fn events_and_link_state() {
    let (mut port, mut end) = started(small_info(), config(4, 4, 2), PortFaults::NONE);
    let n = Arc::new(FakeNotifier::new());
    port.set_readiness(n.clone());
    assert!(port.is_link_up());
    end.set_link(false);
    assert!(!port.is_link_up());
    end.push_event(PortEvent::PacketsAvailable { estimate: 5 })
        .unwrap();
    assert_eq!(
        end.push_event(PortEvent::LinkUp),
        Err(vnic_sim::port::EventsFull(PortEvent::LinkUp))
    );
    assert!(
        port.is_link_up(),
        "state changes even when the event is dropped"
    );
    assert!(n.notified_total() >= 3);
    assert_eq!(port.poll_event(), Some(PortEvent::LinkDown));
    assert_eq!(
        port.poll_event(),
        Some(PortEvent::PacketsAvailable { estimate: 5 })
    );
    assert_eq!(port.poll_event(), None);
    end.push_event(PortEvent::Stopped).unwrap();
    assert!(!end.is_started());
    assert_eq!(port.poll_event(), Some(PortEvent::Stopped));
    let w = end.counters();
    assert_eq!((w.events_pushed, w.events_refused_full), (3, 1));
    assert_eq!(port.counters().events_polled, 3);
}

#[test]
fn readiness_rings_once_per_empty_episode_not_per_frame() {
    let (mut port, mut end) = started(small_info(), config(4, 16, 4), PortFaults::NONE);
    let n = Arc::new(FakeNotifier::new());
    port.set_readiness(n.clone());
    assert_eq!(n.notified_total(), 0, "nothing waiting, no ring");
    // The port has not looked yet: no need-wakeup armed, so no ring.
    let f = frame(64, 0);
    end.push_rx(&f).unwrap();
    assert_eq!(n.notified_total(), 0);
    while read_one(&mut port, 2048).unwrap().is_some() {}
    // The empty read armed the flag: the next push rings, the following ones do not.
    for _ in 0..8 {
        end.push_rx(&f).unwrap();
    }
    assert_eq!(n.notified_total(), 1);
    assert!(n.wait(0));
    while read_one(&mut port, 2048).unwrap().is_some() {}
    end.push_rx(&f).unwrap();
    assert_eq!(n.notified_total(), 2);
    assert_eq!(end.counters().readiness_rung, 2);
}

#[test]
fn doorbell_rings_once_per_empty_episode() {
    let (mut port, mut end) = started(small_info(), config(8, 4, 4), PortFaults::NONE);
    let f = frame(64, 0);
    assert_eq!(port.write_frames(&[&f]), Ok(1));
    let bell = Arc::new(FakeNotifier::new());
    end.set_doorbell(bell.clone());
    assert_eq!(
        bell.notified_total(),
        1,
        "frames already waiting: rung at once"
    );
    let mut out = Vec::new();
    assert!(end.pop_tx(&mut out));
    assert!(!end.pop_tx(&mut out)); // empty: arms the doorbell
    assert_eq!(port.write_frames(&[&f, &f]), Ok(2));
    assert_eq!(port.write_frames(&[&f]), Ok(1));
    assert_eq!(bell.notified_total(), 2);
    assert_eq!(port.counters().doorbells_rung, 1);
}

#[test]
fn with_tx_leaves_a_refused_frame_first_in_line() {
    let (mut port, mut end) = started(small_info(), config(8, 4, 4), PortFaults::NONE);
    let a = frame(70, 1);
    let b = frame(80, 2);
    assert_eq!(port.write_frames(&[&a, &b]), Ok(2));
    assert_eq!(end.with_tx(|f| f.len() == 999), Some(false));
    assert_eq!(end.with_tx(|f| f.len() == 999), Some(false));
    assert_eq!(end.tx_queued(), 2);
    assert_eq!(end.with_tx(|f| f == &a[..]), Some(true));
    assert_eq!(end.peek_tx_len(), Some(80));
    assert_eq!(end.with_tx(|f| f == &b[..]), Some(true));
    assert_eq!(end.with_tx(|_| true), None);
    assert_eq!(end.counters().tx_frames_popped, 2);
}

#[test]
fn halves_are_send() {
    fn send<T: Send>() {}
    send::<SimPort>();
    send::<WireEnd>();
}

/// A NIC on a `SimPort` whose `WireEnd` loops Tx back to Rx: frames go out and come in
/// intact, and the counters on all three layers balance.
#[test]
fn virtual_ethernet_loopback_through_the_wire() {
    let info = PortInfo::vmnet_documented(MAC);
    let (port, mut end) = wire(
        info,
        WireConfig::default(),
        PortFaults::NONE,
        SimRng::new(5),
    )
    .unwrap();
    let pool = PacketBufferPool::create(PoolConfig::new(*b"loop", 2048, 2048)).unwrap();
    let AttachedNic {
        mut nic,
        mut service,
        mut iface,
    } = attach(port, &pool, 256, NicConfig::default()).unwrap();
    assert!(end.is_started());
    let total = 3_000usize;
    let mut sent = 0usize;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut scratch = Vec::new();
    let mut batch: heapless::Vec<Packet, 64> = heapless::Vec::new();
    for _ in 0..100_000 {
        if got.len() == total {
            break;
        }
        let q = iface.queues_mut();
        while batch.len() < 32 {
            let Ok(p) = pool.allocate(Owner::System) else {
                break;
            };
            let _ = batch.push(p);
        }
        q.rx_submission.enqueue_packets(&mut batch);
        for p in batch.drain(..) {
            pool.system_free(p).unwrap();
        }
        while batch.len() < 32 && sent + batch.len() < total {
            let i = sent + batch.len();
            let mut p = pool.allocate(Owner::System).unwrap();
            pool.packet_mut(&mut p)
                .unwrap()
                .write_frame(0, &frame(60 + i % 1454, i as u8))
                .unwrap();
            let _ = batch.push(p);
        }
        sent += q.tx_submission.enqueue_packets(&mut batch).accepted as usize;
        for p in batch.drain(..) {
            pool.system_free(p).unwrap();
        }
        nic.poll(service.link_mut()).unwrap();
        // The wire: loop Tx back as Rx while there is room.
        while end.rx_free() > 0 && end.pop_tx(&mut scratch) {
            end.push_rx(&scratch).unwrap();
        }
        let q = iface.queues_mut();
        q.tx_completion.dequeue_packets(&mut batch, 64).unwrap();
        for p in batch.drain(..) {
            pool.system_free(p).unwrap();
        }
        q.rx_completion.dequeue_packets(&mut batch, 64).unwrap();
        for p in batch.drain(..) {
            got.push(pool.packet(&p).unwrap().data().to_vec());
            pool.system_free(p).unwrap();
        }
    }
    assert_eq!(got.len(), total);
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f, &frame(60 + i % 1454, i as u8), "frame {i}");
    }
    let c = nic.port().counters();
    let w = end.counters();
    assert_eq!(c.frames_accepted, total as u64);
    assert_eq!(w.tx_frames_popped, total as u64);
    assert_eq!(c.frames_read, w.rx_frames_pushed);
    assert_eq!(nic.counters().tx.frames, total as u64);
    assert_eq!(nic.counters().rx.frames, total as u64);
}

/// The rings carry bytes in fixed records per frame: a ring holds exactly its frame count
/// whatever the sizes (header-only to the port's largest, jumbo included), frame counts
/// stay exact, and bytes survive several trips round both rings' wrap.
#[test]
fn rings_hold_their_frame_count_at_every_size_across_wraps() {
    for max_packet_size_bytes in [1514usize, 9014] {
        let mut info = PortInfo::vmnet_documented(MAC);
        info.max_packet_size_bytes = max_packet_size_bytes;
        info.max_packets_per_call = 1;
        info.max_bytes_per_call = max_packet_size_bytes;
        let (mut port, mut end) = started(info, config(4, 4, 2), PortFaults::NONE);
        let sizes = [14, 15, 31, 32, 33, 64, 1514, max_packet_size_bytes];
        let mut out = Vec::new();
        for round in 0..3u8 {
            for (k, chunk) in sizes.chunks(4).enumerate() {
                let tag = round.wrapping_mul(16).wrapping_add(k as u8);
                let frames: Vec<_> = chunk.iter().map(|&l| frame(l, tag)).collect();
                for (i, f) in frames.iter().enumerate() {
                    assert_eq!(port.write_frames(&[f]), Ok(1));
                    assert_eq!(end.tx_queued(), i + 1);
                    end.push_rx(f).unwrap();
                    assert_eq!((port.rx_queued(), end.rx_free()), (i + 1, 3 - i));
                }
                // Full at four frames, whatever their sizes.
                assert_eq!(port.write_frames(&[&frames[0]]), Err(WriteError::Busy));
                assert_eq!(end.push_rx(&frames[0]), Err(RxFull::Full));
                for f in &frames {
                    assert_eq!(end.peek_tx_len(), Some(f.len()));
                    assert!(end.pop_tx(&mut out));
                    assert_eq!(&out, f);
                    assert_eq!(
                        read_one(&mut port, max_packet_size_bytes).unwrap().as_ref(),
                        Some(f)
                    );
                }
                assert_eq!((end.tx_queued(), port.rx_queued()), (0, 0));
            }
        }
        let (p, w) = (port.counters(), end.counters());
        assert_eq!(p.frames_accepted, w.tx_frames_popped);
        assert_eq!(w.rx_frames_pushed, p.frames_read);
        assert_eq!(p.frames_accepted, 3 * sizes.len() as u64);
    }
}
