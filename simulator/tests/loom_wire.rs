//! Loom models of the wire hand-off between a [`SimPort`] thread and a [`WireEnd`] thread.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p vnic-sim
//! --target-dir target/loom --test loom_wire`.
//!
//! Capacities are tiny (rings of 2 frames, records of 4 blocks) because loom explores every
//! interleaving. The doorbell is made of loom atomics ([`LoomBell`]) because `FakeNotifier`'s
//! std condvar is invisible to loom: a sleeper waits by yielding until the count moves or the
//! peer says it will ring no more; a wait that ends the second way is a lost wakeup.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use ndk_model::ethernet::MacAddress;
use ndk_model::notify::Notifier;
use vnic_driver::port::{HardwarePort, PortInfo, WriteError};
use vnic_sim::faults::PortFaults;
use vnic_sim::port::{wire, RxFull, SimPort, WireConfig, WireEnd};
use vnic_sim::rng::SimRng;

const FRAME_BYTES: usize = 16;

const STACK_BYTES: usize = 1 << 20;

fn spawn<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(f: F) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(f)
        .unwrap()
}

fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    let runs = Arc::new(StdAtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let f = Arc::new(f);
    loom::model(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        // A wire (its rings of loom cells) is too big for the model thread's small coroutine
        // stack, so the body runs on a thread with a larger one.
        let f = Arc::clone(&f);
        spawn(move || f()).join().unwrap();
    });
    let runs = runs.load(StdOrdering::Relaxed);
    println!("{name}: {runs} executions");
    assert!(runs > 1, "{name}: loom explored a single execution");
}

/// A sticky loom-visible doorbell plus a "the peer will not ring any more" flag.
#[derive(Debug, Default)]
struct LoomBell {
    pending: AtomicUsize,
    peer_finished: AtomicBool,
}

impl LoomBell {
    fn finish(&self) {
        self.peer_finished.store(true, Ordering::Release);
    }
}

impl Notifier for LoomBell {
    fn notify(&self) {
        self.pending.fetch_add(1, Ordering::Release);
    }

    /// `false`: the peer finished without ringing (a lost wakeup if the caller had reason
    /// to sleep).
    fn wait(&self, _timeout_ms: u32) -> bool {
        loop {
            if self.pending.swap(0, Ordering::Acquire) > 0 {
                return true;
            }
            if self.peer_finished.load(Ordering::Acquire) {
                return self.pending.swap(0, Ordering::Acquire) > 0;
            }
            thread::yield_now();
        }
    }
}

fn tiny_wire() -> (SimPort, WireEnd) {
    let mut info = PortInfo::vmnet_documented(MacAddress([2, 0, 0, 0, 0, 1]));
    info.max_packet_size_bytes = 64;
    info.max_packets_per_call = 2;
    info.max_bytes_per_call = 128;
    let config = WireConfig {
        tx_frames_max: 2,
        rx_frames_max: 2,
        events_max: 2,
    };
    let (mut port, end) = wire(info, config, PortFaults::NONE, SimRng::new(1)).unwrap();
    port.start().unwrap();
    (port, end)
}

fn frame(tag: u8) -> [u8; FRAME_BYTES] {
    let mut f = [0u8; FRAME_BYTES];
    for (i, b) in f.iter_mut().enumerate() {
        *b = tag.wrapping_mul(31).wrapping_add(i as u8);
    }
    f
}

fn read_one(port: &mut SimPort) -> Option<[u8; FRAME_BYTES]> {
    let mut buf = [0u8; 64];
    let mut lens = [0usize; 1];
    let mut bufs = [&mut buf[..]];
    match port.read_frames(&mut bufs, &mut lens) {
        Ok(1) => {
            assert_eq!(lens[0], FRAME_BYTES);
            let mut f = [0u8; FRAME_BYTES];
            f.copy_from_slice(&buf[..FRAME_BYTES]);
            Some(f)
        }
        Ok(0) => None,
        other => panic!("read: {other:?}"),
    }
}

/// (1) Frames written by the port thread (a single, a batch of two, a single; each retried
/// while the ring of 2 says Busy) arrive at the wire thread intact, in order, once each.
#[test]
fn tx_frames_arrive_intact_and_in_order() {
    model("tx_frames_arrive_intact_and_in_order", || {
        let (mut port, mut end) = tiny_wire();
        let writer = spawn(move || {
            let (f0, f1, f2, f3) = (frame(0), frame(1), frame(2), frame(3));
            let batches: [&[&[u8]]; 3] = [&[&f0], &[&f1, &f2], &[&f3]];
            for batch in batches {
                loop {
                    match port.write_frames(batch) {
                        Ok(n) => {
                            assert_eq!(n, batch.len());
                            break;
                        }
                        Err(WriteError::Busy) => thread::yield_now(),
                        Err(e) => panic!("write: {e}"),
                    }
                }
            }
            port
        });
        let mut out = Vec::with_capacity(64);
        let mut got = 0u8;
        while got < 4 {
            if end.pop_tx(&mut out) {
                assert_eq!(out, frame(got), "frame {got}");
                got += 1;
            } else {
                thread::yield_now();
            }
        }
        let port = writer.join().unwrap();
        assert!(!end.pop_tx(&mut out), "a frame was duplicated");
        let c = port.counters();
        assert_eq!(c.frames_accepted, 4);
        assert_eq!(end.counters().tx_frames_popped, 4);
        assert_eq!(c.frames_offered, c.frames_accepted + c.frames_refused());
    });
}

/// (2) Frames pushed by the wire thread (retried while the ring is full) are read by the
/// port thread intact, in order, once each.
#[test]
fn rx_frames_arrive_intact_and_in_order() {
    model("rx_frames_arrive_intact_and_in_order", || {
        let (mut port, mut end) = tiny_wire();
        let pusher = spawn(move || {
            for tag in 0..3u8 {
                loop {
                    match end.push_rx(&frame(tag)) {
                        Ok(()) => break,
                        Err(RxFull::Full) => thread::yield_now(),
                        Err(e) => panic!("push: {e}"),
                    }
                }
            }
            end
        });
        let mut got = 0u8;
        while got < 3 {
            if let Some(f) = read_one(&mut port) {
                assert_eq!(f, frame(got), "frame {got}");
                got += 1;
            } else {
                thread::yield_now();
            }
        }
        let end = pusher.join().unwrap();
        assert!(read_one(&mut port).is_none(), "a frame was duplicated");
        assert_eq!(port.counters().frames_read, 3);
        assert_eq!(end.counters().rx_frames_pushed, 3);
    });
}

/// (3a) No lost wakeup on Rx: the driver side reads until empty and then sleeps on its
/// readiness notifier; the wire side pushes three frames into a ring of two. Every sleep ends with a ring.
#[test]
fn rx_readiness_is_never_lost() {
    model("rx_readiness_is_never_lost", || {
        let (mut port, mut end) = tiny_wire();
        let bell = Arc::new(LoomBell::default());
        port.set_readiness(bell.clone());
        let peer_bell = Arc::clone(&bell);
        let pusher = spawn(move || {
            for tag in 0..3u8 {
                // The third push may find the ring of 2 full: retry until the reader drains.
                while end.push_rx(&frame(tag)) == Err(RxFull::Full) {
                    thread::yield_now();
                }
            }
            peer_bell.finish();
        });
        let mut got = 0u8;
        while got < 3 {
            if let Some(f) = read_one(&mut port) {
                assert_eq!(f, frame(got));
                got += 1;
                continue;
            }
            // `read_frames` found the ring empty and armed (or kept armed) the need-wakeup
            // flag: a push after that must ring, so this sleep must end with a notification.
            // A `false` here means the pusher finished every push without ringing.
            assert!(
                bell.wait(u32::MAX),
                "lost wakeup: slept on an empty Rx ring, frames pushed, never notified"
            );
            // A notification may also be spurious (the loop absorbs it).
        }
        pusher.join().unwrap();
    });
}

/// (3b) No lost wakeup on Tx: the wire side pops until empty and then sleeps on its
/// doorbell; the port side writes three frames into a ring of two.
#[test]
fn tx_doorbell_is_never_lost() {
    model("tx_doorbell_is_never_lost", || {
        let (mut port, mut end) = tiny_wire();
        let bell = Arc::new(LoomBell::default());
        end.set_doorbell(bell.clone());
        let peer_bell = Arc::clone(&bell);
        let writer = spawn(move || {
            for tag in 0..3u8 {
                let f = frame(tag);
                // The third write may find the ring of 2 full: retry until the actor drains.
                while port.write_frames(&[&f]) == Err(WriteError::Busy) {
                    thread::yield_now();
                }
            }
            peer_bell.finish();
        });
        let mut out = Vec::with_capacity(64);
        let mut got = 0u8;
        while got < 3 {
            if end.pop_tx(&mut out) {
                assert_eq!(out, frame(got));
                got += 1;
                continue;
            }
            assert!(
                bell.wait(u32::MAX),
                "lost wakeup: slept on an empty Tx ring, frames written, never rung"
            );
        }
        writer.join().unwrap();
    });
}
