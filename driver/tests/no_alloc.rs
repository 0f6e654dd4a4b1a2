//! The Tx and Rx datapath allocates nothing in steady state: a counting global allocator
//! watches thousands of frames go out through the NIC, loop back at the port and come in.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ndk_model::ethernet::MacAddress;
use ndk_model::notify::Notifier;
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use vnic_driver::attach::{attach, AttachedNic};
use vnic_driver::nic::NicConfig;
use vnic_driver::port::{HardwarePort, PortEvent, PortInfo, ReadError, StartError, WriteError};

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

const SLOTS: usize = 512;
const FRAME_MAX: usize = 1514;

/// A loopback wire with preallocated storage: what is written comes back on read.
#[derive(Debug)]
struct LoopPort {
    info: PortInfo,
    slots: Vec<[u8; FRAME_MAX]>,
    lens: Vec<usize>,
    head: usize,
    len: usize,
}

impl HardwarePort for LoopPort {
    fn info(&self) -> PortInfo {
        self.info
    }
    fn start(&mut self) -> Result<(), StartError> {
        Ok(())
    }
    fn stop(&mut self) {}
    fn is_link_up(&self) -> bool {
        true
    }
    fn write_frames(&mut self, frames: &[&[u8]]) -> Result<usize, WriteError> {
        let n = frames.len().min(SLOTS - self.len);
        if n == 0 && !frames.is_empty() {
            return Err(WriteError::Busy);
        }
        for f in &frames[..n] {
            let at = (self.head + self.len) % SLOTS;
            self.slots[at][..f.len()].copy_from_slice(f);
            self.lens[at] = f.len();
            self.len += 1;
        }
        Ok(n)
    }
    fn read_frames(
        &mut self,
        bufs: &mut [&mut [u8]],
        lens: &mut [usize],
    ) -> Result<usize, ReadError> {
        let n = bufs.len().min(lens.len()).min(self.len);
        for (buf, len) in bufs.iter_mut().zip(lens.iter_mut()).take(n) {
            let l = self.lens[self.head];
            buf[..l].copy_from_slice(&self.slots[self.head][..l]);
            *len = l;
            self.head = (self.head + 1) % SLOTS;
            self.len -= 1;
        }
        Ok(n)
    }
    fn poll_event(&mut self) -> Option<PortEvent> {
        None
    }
    fn set_readiness(&mut self, _notifier: Arc<dyn Notifier>) {}
}

#[test]
fn steady_state_datapath_allocates_nothing() {
    let mac = MacAddress([0x02, 0, 0, 0, 0, 1]);
    let info = PortInfo::vmnet_documented(mac);
    let pool = PacketBufferPool::create(PoolConfig::new(*b"noal", 2048, 2048)).unwrap();
    let port = LoopPort {
        info,
        slots: vec![[0; FRAME_MAX]; SLOTS],
        lens: vec![0; SLOTS],
        head: 0,
        len: 0,
    };
    let AttachedNic {
        mut nic,
        mut service,
        mut iface,
    } = attach(port, &pool, 256, NicConfig::default()).unwrap();

    let mut template = [0u8; 1514];
    template[..6].copy_from_slice(&mac.0);
    template[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut step = |count: u64, sent: &mut u64, received: &mut u64| {
        let target = *sent + count;
        let mut passes = 0;
        while *received < target {
            passes += 1;
            assert!(passes < 100_000, "no progress");
            let q = iface.queues_mut();
            // Post Rx buffers.
            let mut batch: heapless::Vec<Packet, 64> = heapless::Vec::new();
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
            // Submit Tx frames of varying size (64 B and 1514 B).
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
            let q = iface.queues_mut();
            q.tx_completion.dequeue_packets(&mut batch, 64).unwrap();
            for p in batch.drain(..) {
                pool.system_free(p).unwrap();
            }
            *received += u64::from(q.rx_completion.dequeue_packets(&mut batch, 64).unwrap());
            for p in batch.drain(..) {
                pool.system_free(p).unwrap();
            }
        }
    };
    // The counter works: one allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Box::new(1u64)));
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.swap(0, Ordering::SeqCst) >= 1);
    // Warm up.
    step(2_000, &mut sent, &mut received);
    COUNTING.store(true, Ordering::SeqCst);
    step(20_000, &mut sent, &mut received);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(allocations, 0, "the datapath allocated {allocations} times");
    let c = nic.counters();
    assert!(c.tx.frames >= 22_000 && c.rx.frames >= 22_000, "{c:?}");
    assert_eq!(c.tx.dropped_total() + c.rx.dropped_total(), 0);
}
