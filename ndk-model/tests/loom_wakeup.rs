//! Loom models of the need-wakeup sleep/wake handshake (rings.md §3.2, item 4).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ndk-model --release
//! --test loom_wakeup`.
//!
//! The doorbell is a loom atomic counter ([`LoomBell`]), not [`ndk_model::notify::FakeNotifier`]
//! (whose `std` mutex and condvar loom cannot see). A sleeper "waits" by yielding until the
//! counter moves or the peer says it has finished every step that could ring the bell; a wait
//! that ends the second way while the sleeper was armed is a lost wakeup, and the models
//! assert that it never happens.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use ndk_model::notify::Notifier;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use ndk_model::queue::{SystemTxSubmission, TxSubmissionQueue};
use ndk_model::ring::{Consumer, Producer, PushError, Ring, RingConfig};

fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    let runs = Arc::new(StdAtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    loom::model(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f();
    });
    let runs = runs.load(StdOrdering::Relaxed);
    println!("{name}: {runs} executions");
    assert!(runs > 1, "{name}: loom explored a single execution");
}

/// A doorbell made of loom atomics: a sticky count (like an eventfd) plus a "the peer will not
/// ring any more" flag that ends a wait which would otherwise never end.
#[derive(Debug, Default)]
struct LoomBell {
    pending: AtomicUsize,
    rung: AtomicUsize,
    peer_finished: AtomicBool,
    lost: AtomicUsize,
}

impl LoomBell {
    /// Marks that the peer has made every call that could ring this bell.
    fn finish(&self) {
        self.peer_finished.store(true, Ordering::Release);
    }
}

impl Notifier for LoomBell {
    fn notify(&self) {
        self.rung.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::Release);
    }

    /// Waits for a notification; returns `false` (and counts a lost wakeup) if the peer
    /// finished without ringing.
    fn wait(&self, _timeout_ms: u32) -> bool {
        loop {
            if self.pending.swap(0, Ordering::Acquire) > 0 {
                return true;
            }
            if self.peer_finished.load(Ordering::Acquire) {
                // Re-check: a notify just before `finish` still counts.
                if self.pending.swap(0, Ordering::Acquire) > 0 {
                    return true;
                }
                self.lost.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            thread::yield_now();
        }
    }
}

fn pair(capacity: u32) -> (Producer<u32>, Consumer<u32>) {
    let ring = Ring::<u32>::new(RingConfig::with_capacity(capacity)).unwrap();
    (ring.producer().unwrap(), ring.consumer().unwrap())
}

/// Consumer sleeps on an empty ring while the producer pushes `items` values, each followed by
/// `take_consumer_wakeup`. Whenever `prepare_to_sleep` said "sleep", a wakeup must follow.
fn consumer_sleeps(items: u32) {
    let (mut producer, mut consumer) = pair(2);
    let bell = Arc::new(LoomBell::default());
    let producer_bell = Arc::clone(&bell);
    let t = thread::spawn(move || {
        let mut woke = 0u32;
        for v in 0..items {
            producer.push(10 + v).unwrap();
            if producer.take_consumer_wakeup() {
                woke += 1;
                producer_bell.notify();
            }
        }
        producer_bell.finish();
        woke
    });
    let mut slept = 0u32;
    for expected in 0..items {
        loop {
            if let Some(v) = consumer.pop().unwrap() {
                assert_eq!(v, 10 + expected);
                break;
            }
            if consumer.prepare_to_sleep().unwrap() {
                slept += 1;
                let notified = bell.wait(u32::MAX);
                consumer.cancel_sleep();
                assert!(
                    notified,
                    "lost wakeup: consumer slept and was never notified"
                );
                // The ring may still be empty here: a producer that saw the flag while this
                // consumer was disarming after a successful re-check rings the bell anyway,
                // and that sticky notification ends the next sleep at once (a spurious
                // wakeup, which the loop absorbs).
            } else {
                // Not sleeping means the re-check saw an entry.
                assert!(consumer.available(1).unwrap() > 0);
            }
        }
    }
    let woke = t.join().unwrap();
    assert_eq!(bell.lost.load(Ordering::Relaxed), 0);
    assert!(
        woke >= slept,
        "consumer slept {slept} times, producer woke it {woke} times"
    );
}

#[test]
fn consumer_sleep_vs_one_push() {
    model("consumer_sleep_vs_one_push", || consumer_sleeps(1));
}

#[test]
fn consumer_sleep_vs_two_pushes() {
    model("consumer_sleep_vs_two_pushes", || consumer_sleeps(2));
}

/// Producer sleeps on a full capacity-1 ring while the consumer pops, each pop followed by
/// `take_producer_wakeup`.
#[test]
fn producer_sleep_vs_pop() {
    model("producer_sleep_vs_pop", || {
        let (mut producer, mut consumer) = pair(1);
        producer.push(1).unwrap();
        let bell = Arc::new(LoomBell::default());
        let consumer_bell = Arc::clone(&bell);
        let t = thread::spawn(move || {
            let mut woke = 0u32;
            let mut got = Vec::new();
            while got.len() < 2 {
                match consumer.pop().unwrap() {
                    Some(v) => {
                        got.push(v);
                        if consumer.take_producer_wakeup() {
                            woke += 1;
                            consumer_bell.notify();
                        }
                        if got.len() == 1 {
                            // The only pop that can free space the producer waits for.
                            consumer_bell.finish();
                        }
                    }
                    None => thread::yield_now(),
                }
            }
            assert_eq!(got, [1, 2]);
            woke
        });
        let mut slept = 0u32;
        loop {
            match producer.push(2) {
                Ok(()) => break,
                Err(PushError::Full(_)) => {
                    if producer.prepare_to_sleep().unwrap() {
                        slept += 1;
                        let notified = bell.wait(u32::MAX);
                        producer.cancel_sleep();
                        assert!(
                            notified,
                            "lost wakeup: producer slept and was never notified"
                        );
                        assert!(producer.free(1).unwrap() > 0, "woken on a full ring");
                    } else {
                        assert!(producer.free(1).unwrap() > 0);
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        let woke = t.join().unwrap();
        assert_eq!(bell.lost.load(Ordering::Relaxed), 0);
        assert!(woke >= slept, "producer slept {slept}, woken {woke}");
    });
}

/// The same handshake one level up: the driver half of a Tx submission queue sleeps in
/// `wait_for_packets` while the system half enqueues a packet with the bell as its doorbell.
#[test]
fn queue_wait_for_packets_vs_enqueue() {
    model("queue_wait_for_packets_vs_enqueue", || {
        let pool = PacketBufferPool::create(PoolConfig::new(*b"loom", 1, 64)).unwrap();
        let mut driver = TxSubmissionQueue::create(&pool, 2, 0).unwrap();
        let mut system = SystemTxSubmission::attach(driver.ring(), &pool).unwrap();
        driver.set_enable(true);
        let bell = Arc::new(LoomBell::default());
        system.set_doorbell(Arc::clone(&bell) as Arc<dyn Notifier>);
        let packet = pool.allocate(Owner::System).unwrap();
        let system_bell = Arc::clone(&bell);
        let t = thread::spawn(move || {
            system.enqueue_packet(packet).expect("enqueue");
            system_bell.finish();
            system.stats().doorbells_rung
        });
        let packet = loop {
            if let Some(packet) = driver.dequeue_packet().unwrap() {
                break packet;
            }
            let pending = driver.wait_for_packets(&*bell, u32::MAX).unwrap();
            assert_eq!(bell.lost.load(Ordering::Relaxed), 0, "lost wakeup");
            let _ = pending;
        };
        let rung = t.join().unwrap();
        assert_eq!(bell.lost.load(Ordering::Relaxed), 0, "lost wakeup");
        assert!(rung <= 1);
        pool.deallocate(packet)
            .expect("driver owns the dequeued packet");
        assert!(pool.leak_report().is_clean());
    });
}

/// Proof that the wakeup models can fail: a producer that checks the flag *before* publishing
/// (the wrong order) loses the wakeup of a consumer that armed in between, and the model
/// reports it.
#[test]
#[should_panic(expected = "lost wakeup")]
fn checking_the_flag_before_publishing_is_caught() {
    model("checking_the_flag_before_publishing_is_caught", || {
        let (mut producer, mut consumer) = pair(2);
        let bell = Arc::new(LoomBell::default());
        let producer_bell = Arc::clone(&bell);
        let t = thread::spawn(move || {
            let woke = producer.take_consumer_wakeup();
            producer.push(10).unwrap();
            if woke {
                producer_bell.notify();
            }
            producer_bell.finish();
        });
        loop {
            if consumer.pop().unwrap().is_some() {
                break;
            }
            if consumer.prepare_to_sleep().unwrap() {
                let notified = bell.wait(u32::MAX);
                consumer.cancel_sleep();
                assert!(
                    notified,
                    "lost wakeup: consumer slept and was never notified"
                );
            }
        }
        t.join().unwrap();
    });
}
