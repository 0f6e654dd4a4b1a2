//! Loom models of the SPSC ring (rings.md §3.2, items 2 and 5).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ndk-model --release
//! --test loom_ring`. Every model is tiny (capacity 2–4, at most 6 items) so that loom can
//! explore every interleaving within the preemption bound.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use loom::thread;
use ndk_model::ring::{Consumer, Producer, PushError, Ring, RingConfig};

/// `loom::model`, counting the executions it explored; asserts loom really branched.
fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let runs = runs.load(Ordering::Relaxed);
    println!("{name}: {runs} executions");
    assert!(runs > 1, "{name}: loom explored a single execution");
}

fn pair(capacity: u32, start_index: u32) -> (Producer<u32>, Consumer<u32>) {
    let ring = Ring::<u32>::new(RingConfig {
        start_index,
        ..RingConfig::with_capacity(capacity)
    })
    .expect("ring");
    (
        ring.producer().expect("producer"),
        ring.consumer().expect("consumer"),
    )
}

/// Pushes `value`, yielding while the ring is full.
fn push_blocking(producer: &mut Producer<u32>, value: u32) {
    loop {
        match producer.push(value) {
            Ok(()) => return,
            Err(PushError::Full(_)) => thread::yield_now(),
            Err(e) => panic!("push failed: {e}"),
        }
    }
}

/// Pops one value, yielding while the ring is empty.
fn pop_blocking(consumer: &mut Consumer<u32>) -> u32 {
    loop {
        match consumer.pop().expect("ring corrupted") {
            Some(v) => return v,
            None => thread::yield_now(),
        }
    }
}

/// Model A: one-by-one push and pop through a ring smaller than the message.
fn single_items(name: &str, capacity: u32, start_index: u32, items: u32) {
    model(name, move || {
        let (mut producer, mut consumer) = pair(capacity, start_index);
        let t = thread::spawn(move || {
            for v in 0..items {
                push_blocking(&mut producer, 100 + v);
            }
            producer
        });
        for expected in 0..items {
            assert_eq!(pop_blocking(&mut consumer), 100 + expected, "FIFO order");
        }
        let producer = t.join().unwrap();
        assert_eq!(
            consumer.pop().unwrap(),
            None,
            "no duplicate after the last item"
        );
        assert_eq!(producer.index(), consumer.index());
        assert_eq!(
            producer.index(),
            start_index.wrapping_add(items),
            "both indices advanced exactly once per item"
        );
        assert!(producer.ring().is_empty());
    });
}

#[test]
fn capacity_2_three_items_fifo() {
    single_items("capacity_2_three_items_fifo", 2, 0, 3);
}

#[test]
fn capacity_2_four_items_fifo() {
    single_items("capacity_2_four_items_fifo", 2, 0, 4);
}

#[test]
fn capacity_2_across_u32_wrap() {
    // Indices go MAX-1, MAX, 0, 1, 2: the free-running counters wrap mid-stream.
    single_items("capacity_2_across_u32_wrap", 2, u32::MAX - 1, 4);
}

/// Model B: batches through `reserve`/`commit` and `peek`/`release`, on a capacity-4 ring whose
/// indices start at slot 2, so the first 3-item batch straddles the slot wrap (two-slice path)
/// and, with `start_index` near `u32::MAX`, the index wrap as well.
fn batches(name: &str, start_index: u32) {
    const TOTAL: u32 = 6;
    model(name, move || {
        let (mut producer, mut consumer) = pair(4, start_index);
        let t = thread::spawn(move || {
            let mut sent = 0u32;
            let mut round = 0u32;
            while sent < TOTAL {
                let want = (TOTAL - sent).min(3);
                let mut chunk = producer.reserve(want).unwrap();
                if chunk.is_empty() {
                    thread::yield_now();
                    continue;
                }
                let n = chunk.len();
                if round.is_multiple_of(2) {
                    for i in 0..n {
                        chunk.write(i, 100 + sent + i);
                    }
                } else {
                    let values: Vec<u32> = (0..n).map(|i| 100 + sent + i).collect();
                    assert_eq!(chunk.fill_from_slice(&values), n as usize);
                }
                chunk.commit(n);
                sent += n;
                round += 1;
            }
            producer
        });
        let mut received = 0u32;
        let mut round = 0u32;
        while received < TOTAL {
            let chunk = consumer.peek(3).unwrap();
            if chunk.is_empty() {
                thread::yield_now();
                continue;
            }
            let n = chunk.len();
            let mut got = [0u32; 3];
            if round.is_multiple_of(2) {
                for i in 0..n {
                    got[i as usize] = chunk.get(i);
                }
            } else {
                assert_eq!(chunk.copy_to_slice(&mut got[..n as usize]), n as usize);
            }
            // Release only part of a 3-entry chunk sometimes: the rest must come back first.
            let keep = if n == 3 && round == 0 { 2 } else { n };
            for (i, v) in got[..keep as usize].iter().enumerate() {
                assert_eq!(*v, 100 + received + i as u32, "FIFO order in batches");
            }
            chunk.release(keep);
            received += keep;
            round += 1;
        }
        let producer = t.join().unwrap();
        assert_eq!(consumer.pop().unwrap(), None);
        assert_eq!(producer.index(), start_index.wrapping_add(TOTAL));
        assert_eq!(consumer.index(), start_index.wrapping_add(TOTAL));
    });
}

#[test]
fn capacity_4_batches_straddle_slot_wrap() {
    batches("capacity_4_batches_straddle_slot_wrap", 2);
}

#[test]
fn capacity_4_batches_across_u32_wrap() {
    // Slot 2 = (MAX - 1) & 3: the first batch covers slots 2, 3, 0 and indices MAX-1, MAX, 0.
    batches("capacity_4_batches_across_u32_wrap", u32::MAX - 1);
}

/// Model B': the bulk (all-or-nothing) calls, `reserve_exact` and `peek_exact`.
#[test]
fn capacity_4_bulk_calls() {
    model("capacity_4_bulk_calls", || {
        let (mut producer, mut consumer) = pair(4, u32::MAX - 2);
        let t = thread::spawn(move || {
            for batch in 0..2u32 {
                loop {
                    match producer.reserve_exact(3) {
                        Ok(mut chunk) => {
                            for i in 0..3 {
                                chunk.write(i, batch * 3 + i);
                            }
                            chunk.commit_all();
                            break;
                        }
                        Err(ndk_model::ring::ReserveError::TooFew { free }) => {
                            assert!(free < 3);
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        for batch in 0..2u32 {
            loop {
                match consumer.peek_exact(3) {
                    Ok(chunk) => {
                        let mut got = [0u32; 3];
                        assert_eq!(chunk.copy_to_slice(&mut got), 3);
                        assert_eq!(got, [batch * 3, batch * 3 + 1, batch * 3 + 2]);
                        chunk.release_all();
                        break;
                    }
                    Err(ndk_model::ring::PeekError::TooFew { available }) => {
                        assert!(available < 3);
                        thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        t.join().unwrap();
        assert_eq!(consumer.pop().unwrap(), None);
    });
}

/// The deliberately broken ring: `push_with_broken_publish` stores the producer index with
/// `Relaxed`, so the consumer's read of the slot is not ordered after the producer's write.
/// Loom must report it (a causality violation on the slot's `UnsafeCell`).
#[test]
#[should_panic(expected = "Causality violation")]
fn broken_relaxed_publish_is_caught() {
    loom::model(|| {
        let (mut producer, mut consumer) = pair(2, 0);
        let t = thread::spawn(move || {
            for v in 0..2u32 {
                loop {
                    match producer.push_with_broken_publish(100 + v) {
                        Ok(()) => break,
                        Err(PushError::Full(_)) => thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        for expected in 0..2u32 {
            assert_eq!(pop_blocking(&mut consumer), 100 + expected);
        }
        t.join().unwrap();
    });
}
