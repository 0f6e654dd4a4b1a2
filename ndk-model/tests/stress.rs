//! Threaded stress tests on real hardware (rings.md §3.3, last point): what loom cannot
//! explore (real reorderings, long runs, index wrap-around many times over).
//!
//! * `ring_moves_100m_items_in_order`: two threads move ≥ 100,000,000 `u32` sequence numbers
//!   through a 1024-slot ring, mixing single pushes/pops with burst and bulk batches through
//!   every batch API; the consumer checks the strict sequence. Debug builds move 5,000,000.
//! * `queues_move_packets_both_ways`: a system thread and a driver thread drive all four
//!   queues of one pool (Tx: allocate → submit → driver → complete → free; Rx: post buffer →
//!   driver fills → complete → deliver → free), with sequence numbers in the payloads checked
//!   in order at both ends, and a clean leak report at the end.
//! * `sleep_and_wake_never_loses_a_wakeup`: both sides of a small ring sleep on
//!   [`FakeNotifier`]s with the need-wakeup handshake; a lost wakeup shows up as a wait that
//!   times out.
//!
//! `VNIC_STRESS_PERCENT` (default 100) scales every count, e.g. `1` for a quick run. Under
//! Miri the counts are tiny (a few hundred to a few thousand): there the point is Miri's data
//! race and weak-memory checks on the threaded code, not volume.
#![cfg(not(loom))]
#![allow(
    clippy::disallowed_methods,
    reason = "the stress test reports its own throughput"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use ndk_model::notify::{FakeNotifier, Notifier};
use ndk_model::packet::Packet;
use ndk_model::pool::{AllocateError, Owner, PacketBufferPool, PoolCache, PoolConfig};
use ndk_model::queue::{
    EnqueueRefusal, RxCompletionQueue, RxSubmissionQueue, SystemRxCompletion, SystemRxSubmission,
    SystemTxCompletion, SystemTxSubmission, TxCompletionQueue, TxSubmissionQueue,
};
use ndk_model::ring::{PeekError, PushError, ReserveError, Ring, RingConfig};

fn scaled(release: u64, debug: u64, miri: u64) -> u64 {
    let base = if cfg!(miri) {
        miri
    } else if cfg!(debug_assertions) {
        debug
    } else {
        release
    };
    let percent: u64 = std::env::var("VNIC_STRESS_PERCENT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    (base * percent / 100).max(1)
}

/// Millions per second, for the log line.
#[allow(clippy::cast_precision_loss)]
fn mega_per_second(count: u64, elapsed: std::time::Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64() / 1e6
}

/// Spin briefly, then yield: the two threads may share one core with the rest of the build.
struct Backoff(u32);

impl Backoff {
    fn new() -> Self {
        Self(0)
    }

    fn snooze(&mut self) {
        if self.0 < 64 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
        self.0 = self.0.saturating_add(1);
    }

    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// A small xorshift generator: the batch mix, reproducible.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
#[allow(clippy::too_many_lines)]
fn ring_moves_100m_items_in_order() {
    let total = scaled(100_000_000, 5_000_000, 3_000);
    println!(
        "ring stress: {total} items ({} build)",
        if cfg!(miri) {
            "Miri"
        } else if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let ring = Ring::<u32>::new(RingConfig {
        // Start below 2^32 so the free-running indices wrap early in the run.
        start_index: u32::MAX - 5000,
        ..RingConfig::with_capacity(1024)
    })
    .unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let start = Instant::now();

    let producer_thread = thread::spawn(move || {
        let mut next: u64 = 0;
        let mut mix = Mix(0x9E37_79B9_7F4A_7C15);
        let mut backoff = Backoff::new();
        let mut buf = [0u32; 64];
        while next < total {
            let left = total - next;
            let want = (mix.next() % 64 + 1).min(left) as u32;
            let sent = match mix.next() % 4 {
                0 => {
                    // Singles.
                    let mut sent = 0;
                    for _ in 0..want {
                        match producer.push((next + sent) as u32) {
                            Ok(()) => sent += 1,
                            Err(PushError::Full(_)) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    sent
                }
                1 => {
                    // Burst reserve, fill through the two slices, commit what was granted.
                    let mut chunk = producer.reserve(want).unwrap();
                    let granted = chunk.len();
                    let (first, second) = chunk.as_mut_slices();
                    let mut value = next as u32;
                    for slot in first.iter_mut().chain(second.iter_mut()) {
                        *slot = value;
                        value = value.wrapping_add(1);
                    }
                    chunk.commit(granted);
                    u64::from(granted)
                }
                2 => {
                    // push_slice (burst).
                    for (i, slot) in buf[..want as usize].iter_mut().enumerate() {
                        *slot = (next + i as u64) as u32;
                    }
                    producer.push_slice(&buf[..want as usize]).unwrap() as u64
                }
                _ => {
                    // Bulk: all or nothing.
                    match producer.reserve_exact(want) {
                        Ok(mut chunk) => {
                            for i in 0..want {
                                chunk.write(i, (next + u64::from(i)) as u32);
                            }
                            chunk.commit_all();
                            u64::from(want)
                        }
                        Err(ReserveError::TooFew { .. }) => 0,
                        Err(e) => panic!("{e}"),
                    }
                }
            };
            next += sent;
            if sent == 0 {
                backoff.snooze();
            } else {
                backoff.reset();
            }
        }
    });

    let mut expected: u64 = 0;
    let mut mix = Mix(0xD1B5_4A32_D192_ED03);
    let mut backoff = Backoff::new();
    let mut buf = [0u32; 64];
    while expected < total {
        let want = (mix.next() % 64 + 1) as u32;
        let got = match mix.next() % 4 {
            0 => {
                let mut got = 0u64;
                for _ in 0..want {
                    match consumer.pop().unwrap() {
                        Some(v) => {
                            assert_eq!(v, (expected + got) as u32, "sequence broken (pop)");
                            got += 1;
                        }
                        None => break,
                    }
                }
                got
            }
            1 => {
                // Burst peek through the two slices; release only part of it sometimes.
                let chunk = consumer.peek(want).unwrap();
                let (first, second) = chunk.as_slices();
                let mut value = expected as u32;
                for x in first.iter().chain(second) {
                    assert_eq!(*x, value, "sequence broken (peek)");
                    value = value.wrapping_add(1);
                }
                let ready = chunk.len();
                let keep = if ready > 1 && want.is_multiple_of(3) {
                    ready / 2
                } else {
                    ready
                };
                chunk.release(keep);
                u64::from(keep)
            }
            2 => {
                let n = consumer.pop_slice(&mut buf[..want as usize]).unwrap();
                for (i, x) in buf[..n].iter().enumerate() {
                    assert_eq!(
                        *x,
                        (expected + i as u64) as u32,
                        "sequence broken (pop_slice)"
                    );
                }
                n as u64
            }
            _ => match consumer.peek_exact(want) {
                Ok(chunk) => {
                    for i in 0..want {
                        assert_eq!(
                            chunk.get(i),
                            (expected + u64::from(i)) as u32,
                            "sequence broken (peek_exact)"
                        );
                    }
                    chunk.release_all();
                    u64::from(want)
                }
                Err(PeekError::TooFew { .. }) => {
                    // Near the end fewer than `want` may ever arrive: take what is there.
                    if total - expected < u64::from(want) {
                        let n = consumer.pop_slice(&mut buf).unwrap();
                        for (i, x) in buf[..n].iter().enumerate() {
                            assert_eq!(*x, (expected + i as u64) as u32, "sequence broken");
                        }
                        n as u64
                    } else {
                        0
                    }
                }
                Err(e) => panic!("{e}"),
            },
        };
        expected += got;
        if got == 0 {
            backoff.snooze();
        } else {
            backoff.reset();
        }
    }
    producer_thread.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(consumer.pop().unwrap(), None, "nothing after the last item");
    assert_eq!(
        consumer.index(),
        (u32::MAX - 5000).wrapping_add(total as u32)
    );
    println!(
        "ring stress: {total} items in {elapsed:.2?} ({:.1} M items/s)",
        mega_per_second(total, elapsed)
    );
}

type Batch = heapless::Vec<Packet, 32>;

fn seq_of(pool: &PacketBufferPool, packet: &Packet) -> u64 {
    let view = pool.packet(packet).unwrap();
    assert_eq!(view.data_length(), 16, "frame length");
    let data = view.data();
    let seq = u64::from_le_bytes(data[..8].try_into().unwrap());
    let check = u64::from_le_bytes(data[8..16].try_into().unwrap());
    assert_eq!(check, !seq, "payload corrupted");
    seq
}

fn write_seq(pool: &PacketBufferPool, packet: &mut Packet, seq: u64) {
    let mut frame = [0u8; 16];
    frame[..8].copy_from_slice(&seq.to_le_bytes());
    frame[8..].copy_from_slice(&(!seq).to_le_bytes());
    pool.packet_mut(packet)
        .unwrap()
        .write_frame(0, &frame)
        .unwrap();
}

#[test]
#[allow(clippy::too_many_lines)]
fn queues_move_packets_both_ways() {
    let total = scaled(4_000_000, 200_000, 300);
    println!("queue stress: {total} packets each way");
    let pool = PacketBufferPool::create(PoolConfig::new(*b"strs", 512, 128)).unwrap();
    let rx_sub = RxSubmissionQueue::create(&pool, 128, 0).unwrap();
    let rx_comp = RxCompletionQueue::create(&pool, 128, 1).unwrap();
    let tx_sub = TxSubmissionQueue::create(&pool, 128, 2).unwrap();
    let tx_comp = TxCompletionQueue::create(&pool, 128, 3).unwrap();
    let mut sys_rx_sub = SystemRxSubmission::attach(rx_sub.ring(), &pool).unwrap();
    let mut sys_rx_comp = SystemRxCompletion::attach(rx_comp.ring(), &pool).unwrap();
    let mut sys_tx_sub = SystemTxSubmission::attach(tx_sub.ring(), &pool).unwrap();
    let mut sys_tx_comp = SystemTxCompletion::attach(tx_comp.ring(), &pool).unwrap();
    rx_sub.set_enable(true);
    rx_comp.set_enable(true);
    tx_sub.set_enable(true);
    tx_comp.set_enable(true);
    let start = Instant::now();

    let driver_pool = pool.clone();
    let driver = thread::spawn(move || {
        let (mut rx_sub, mut rx_comp, mut tx_sub, mut tx_comp) = (rx_sub, rx_comp, tx_sub, tx_comp);
        let pool = driver_pool;
        let mut tx_seen = 0u64;
        let mut rx_filled = 0u64;
        let mut tx_out = Batch::new();
        let mut rx_out = Batch::new();
        let mut backoff = Backoff::new();
        while tx_seen < total || rx_filled < total || !tx_out.is_empty() || !rx_out.is_empty() {
            let mut progress = false;
            // Tx: take frames, check their order, complete them.
            let room = (tx_out.capacity() - tx_out.len()) as u32;
            if room > 0 {
                let mut got = Batch::new();
                let n = tx_sub.dequeue_packets(&mut got, room).unwrap();
                progress |= n > 0;
                for packet in got {
                    assert_eq!(seq_of(&pool, &packet), tx_seen, "Tx order at the driver");
                    tx_seen += 1;
                    tx_out.push(packet).unwrap();
                }
            }
            if !tx_out.is_empty() {
                let outcome = tx_comp.enqueue_packets(&mut tx_out);
                progress |= outcome.accepted > 0;
                assert!(
                    matches!(outcome.refusal, None | Some(EnqueueRefusal::Full)),
                    "{outcome:?}"
                );
            }
            // Rx: take empty buffers, fill them in order, complete them.
            let room = (rx_out.capacity() - rx_out.len()) as u32;
            if room > 0 {
                let mut got = Batch::new();
                let n = rx_sub.dequeue_packets(&mut got, room).unwrap();
                progress |= n > 0;
                for mut packet in got {
                    write_seq(&pool, &mut packet, rx_filled);
                    rx_filled += 1;
                    rx_out.push(packet).unwrap();
                }
            }
            if !rx_out.is_empty() {
                let outcome = rx_comp.enqueue_packets(&mut rx_out);
                progress |= outcome.accepted > 0;
                assert!(
                    matches!(outcome.refusal, None | Some(EnqueueRefusal::Full)),
                    "{outcome:?}"
                );
            }
            if progress {
                backoff.reset();
            } else {
                backoff.snooze();
            }
        }
        assert!(rx_filled == total && tx_seen == total);
        (rx_sub, rx_comp, tx_sub, tx_comp)
    });

    // The system side.
    let mut cache = PoolCache::new(&pool, 64);
    let mut tx_sent = 0u64;
    let mut tx_done = 0u64;
    let mut rx_posted = 0u64;
    let mut rx_done = 0u64;
    let mut tx_batch = Batch::new();
    let mut rx_batch = Batch::new();
    let mut backoff = Backoff::new();
    while tx_done < total || rx_done < total {
        let mut progress = false;
        // Tx: allocate frames with sequence numbers and submit them.
        while tx_sent < total && tx_batch.len() < tx_batch.capacity() {
            match cache.allocate(Owner::System) {
                Ok(mut packet) => {
                    write_seq(&pool, &mut packet, tx_sent);
                    tx_sent += 1;
                    tx_batch.push(packet).unwrap();
                }
                Err(AllocateError::Exhausted { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if !tx_batch.is_empty() {
            let outcome = sys_tx_sub.enqueue_packets(&mut tx_batch);
            progress |= outcome.accepted > 0;
            assert!(
                matches!(outcome.refusal, None | Some(EnqueueRefusal::Full)),
                "{outcome:?}"
            );
        }
        // Rx: post empty buffers.
        while rx_posted < total && rx_batch.len() < rx_batch.capacity() {
            match cache.allocate(Owner::System) {
                Ok(packet) => {
                    rx_posted += 1;
                    rx_batch.push(packet).unwrap();
                }
                Err(AllocateError::Exhausted { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if !rx_batch.is_empty() {
            let outcome = sys_rx_sub.enqueue_packets(&mut rx_batch);
            progress |= outcome.accepted > 0;
            assert!(
                matches!(outcome.refusal, None | Some(EnqueueRefusal::Full)),
                "{outcome:?}"
            );
        }
        // Tx completions: in order, then free.
        let mut done = Batch::new();
        let n = sys_tx_comp.dequeue_packets(&mut done, 32).unwrap();
        progress |= n > 0;
        for packet in done {
            assert_eq!(seq_of(&pool, &packet), tx_done, "Tx completion order");
            tx_done += 1;
            cache.system_free(packet).unwrap();
        }
        // Rx completions: frames in order, then free.
        let mut done = Batch::new();
        let n = sys_rx_comp.dequeue_packets(&mut done, 32).unwrap();
        progress |= n > 0;
        for packet in done {
            assert_eq!(seq_of(&pool, &packet), rx_done, "Rx delivery order");
            rx_done += 1;
            cache.system_free(packet).unwrap();
        }
        if progress {
            backoff.reset();
        } else {
            backoff.snooze();
        }
    }
    let (rx_sub, rx_comp, tx_sub, tx_comp) = driver.join().unwrap();
    let elapsed = start.elapsed();
    drop(cache);
    for ring_len in [
        rx_sub.ring().len(),
        rx_comp.ring().len(),
        tx_sub.ring().len(),
        tx_comp.ring().len(),
    ] {
        assert_eq!(ring_len, 0, "a queue still holds packets");
    }
    assert_eq!(tx_sub.stats().packets_moved, total);
    assert_eq!(rx_comp.stats().packets_moved, total);
    assert_eq!(
        tx_sub.stats().ownership_violations + rx_sub.stats().ownership_violations,
        0
    );
    let report = pool.leak_report();
    assert!(report.is_clean(), "{report:?}");
    println!(
        "queue stress: {total} packets each way in {elapsed:.2?} ({:.2} M packets/s both ways)",
        mega_per_second(2 * total, elapsed)
    );
}

/// Forwards to a [`FakeNotifier`] and counts waits that ended without a notification.
#[derive(Debug, Default)]
struct CountingBell {
    inner: FakeNotifier,
    timeouts: AtomicU64,
}

impl Notifier for CountingBell {
    fn notify(&self) {
        self.inner.notify();
    }

    fn wait(&self, timeout_ms: u32) -> bool {
        let notified = self.inner.wait(timeout_ms);
        if !notified {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        notified
    }
}

#[test]
fn sleep_and_wake_never_loses_a_wakeup() {
    // A lost wakeup leaves a sleeper waiting for its full timeout; nothing else does.
    const TIMEOUT_MS: u32 = 5_000;
    let total = scaled(300_000, 30_000, 500);
    let ring = Ring::<u32>::new(RingConfig::with_capacity(16)).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let wake_consumer = Arc::new(CountingBell::default());
    let wake_producer = Arc::new(CountingBell::default());
    let (wc, wp) = (Arc::clone(&wake_consumer), Arc::clone(&wake_producer));
    let start = Instant::now();
    let t = thread::spawn(move || {
        let mut mix = Mix(7);
        let mut next = 0u64;
        let mut sleeps = 0u64;
        while next < total {
            let want = (mix.next() % 8 + 1).min(total - next) as u32;
            let mut chunk = producer.reserve(want).unwrap();
            let n = chunk.len();
            for i in 0..n {
                chunk.write(i, (next + u64::from(i)) as u32);
            }
            chunk.commit(n);
            next += u64::from(n);
            if n > 0 {
                if producer.take_consumer_wakeup() {
                    wc.notify();
                }
            } else if producer.prepare_to_sleep().unwrap() {
                sleeps += 1;
                wp.wait(TIMEOUT_MS);
                producer.cancel_sleep();
            }
        }
        sleeps
    });
    let mut expected = 0u64;
    let mut sleeps = 0u64;
    let mut buf = [0u32; 8];
    let mut mix = Mix(11);
    while expected < total {
        let want = (mix.next() % 8 + 1) as usize;
        let n = consumer.pop_slice(&mut buf[..want]).unwrap();
        for (i, v) in buf[..n].iter().enumerate() {
            assert_eq!(*v, (expected + i as u64) as u32, "sequence broken");
        }
        expected += n as u64;
        if n > 0 {
            if consumer.take_producer_wakeup() {
                wake_producer.notify();
            }
        } else if consumer.prepare_to_sleep().unwrap() {
            sleeps += 1;
            wake_consumer.wait(TIMEOUT_MS);
            consumer.cancel_sleep();
        }
    }
    let producer_sleeps = t.join().unwrap();
    let elapsed = start.elapsed();
    println!(
        "wakeup stress: {total} items in {elapsed:.2?}; consumer slept {sleeps} times, \
         producer {producer_sleeps} times"
    );
    assert_eq!(
        wake_consumer.timeouts.load(Ordering::Relaxed),
        0,
        "the consumer missed a wakeup"
    );
    assert_eq!(
        wake_producer.timeouts.load(Ordering::Relaxed),
        0,
        "the producer missed a wakeup"
    );
}
