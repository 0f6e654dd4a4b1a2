//! `VirtualEthernet<SimPort>` plus its `WireEnd` looping Tx back to Rx allocates nothing in
//! steady state: a counting global allocator watches 10,000+ frames go each way. (The
//! allocator is global, so this binary holds only this test.)
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ndk_model::ethernet::MacAddress;
use ndk_model::notify::{FakeNotifier, Notifier};
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use vnic_driver::attach::{attach, AttachedNic};
use vnic_driver::nic::NicConfig;
use vnic_driver::port::{HardwarePort, PortInfo};
use vnic_sim::faults::PortFaults;
use vnic_sim::port::{wire, WireConfig};
use vnic_sim::rng::SimRng;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to `System`, only counting.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one setup, one loop, one set of checks"
)]
fn sim_port_loopback_allocates_nothing_in_steady_state() {
    let mac = MacAddress([0x02, 0, 0, 0, 0, 1]);
    let info = PortInfo::vmnet_documented(mac);
    let (mut port, mut end) = wire(
        info,
        WireConfig::default(),
        PortFaults::NONE,
        SimRng::new(1),
    )
    .unwrap();
    // Wakeup paths on: the readiness notifier and the doorbell get rung during the run.
    let readiness = Arc::new(FakeNotifier::new());
    let doorbell = Arc::new(FakeNotifier::new());
    port.set_readiness(readiness.clone());
    end.set_doorbell(doorbell.clone());
    let pool = PacketBufferPool::create(PoolConfig::new(*b"noal", 2048, 2048)).unwrap();
    let AttachedNic {
        mut nic,
        mut service,
        mut iface,
    } = attach(port, &pool, 256, NicConfig::default()).unwrap();

    let mut template = [0u8; 1514];
    template[..6].copy_from_slice(&mac.0);
    template[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    let mut scratch: Vec<u8> = Vec::with_capacity(2048);
    let mut batch: heapless::Vec<Packet, 64> = heapless::Vec::new();
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut step = |count: u64, sent: &mut u64, received: &mut u64| {
        let target = *sent + count;
        let mut passes = 0;
        while *received < target {
            passes += 1;
            assert!(passes < 100_000, "no progress");
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
            while batch.len() < 32 && *sent + (batch.len() as u64) < target {
                let Ok(mut p) = pool.allocate(Owner::System) else {
                    break;
                };
                let len = if (*sent + batch.len() as u64).is_multiple_of(2) {
                    64
                } else {
                    1514
                };
                pool.packet_mut(&mut p)
                    .unwrap()
                    .write_frame(0, &template[..len])
                    .unwrap();
                let _ = batch.push(p);
            }
            let out = q.tx_submission.enqueue_packets(&mut batch);
            *sent += u64::from(out.accepted);
            for p in batch.drain(..) {
                pool.system_free(p).unwrap();
            }
            nic.poll(service.link_mut()).unwrap();
            // The wire: Tx back to Rx, as far as the Rx ring has room.
            while end.rx_free() > 0 && end.pop_tx(&mut scratch) {
                end.push_rx(&scratch).unwrap();
            }
            let q = iface.queues_mut();
            q.tx_completion.dequeue_packets(&mut batch, 64).unwrap();
            for p in batch.drain(..) {
                pool.system_free(p).unwrap();
            }
            *received += u64::from(q.rx_completion.dequeue_packets(&mut batch, 64).unwrap());
            for p in batch.drain(..) {
                pool.system_free(p).unwrap();
            }
            // Consume the wakeups, as the sleeping threads would.
            readiness.wait(0);
            doorbell.wait(0);
        }
    };
    // The counter works: one allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Box::new(1u64)));
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.swap(0, Ordering::SeqCst) >= 1);
    step(2_000, &mut sent, &mut received);
    COUNTING.store(true, Ordering::SeqCst);
    step(12_000, &mut sent, &mut received);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(allocations, 0, "the datapath allocated {allocations} times");
    let port = nic.port().counters();
    let wire = end.counters();
    assert!(
        port.frames_accepted >= 14_000 && wire.tx_frames_popped >= 14_000,
        "{port:?}"
    );
    assert!(
        wire.rx_frames_pushed >= 14_000 && port.frames_read >= 14_000,
        "{wire:?}"
    );
    assert!(readiness.notified_total() > 0 && doorbell.notified_total() > 0);
    let c = nic.counters();
    assert_eq!(c.tx.dropped_total() + c.rx.dropped_total(), 0);
}
