//! The ndk-model loopback demo that `vnic run` runs until the simulated vmnet network lands.
//!
//! Two threads share one pool and the four NDK queues, exactly as the dext and the helper
//! would across processes:
//! - the *system* thread plays the OS stack: it keeps the Rx submission queue stocked with
//!   empty buffers, submits numbered frames on Tx submission, frees completed Tx packets, and
//!   checks every received frame's bytes and order;
//! - the *driver* thread plays a NIC whose wire is a loopback: each Tx frame is copied into
//!   an Rx buffer, the Rx buffer completes on Rx completion, and the Tx packet completes on Tx
//!   completion with `kIOReturnSuccess`.
//!
//! Every frame is either delivered or counted as dropped with a reason, and the pool must be
//! full again at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ndk_model::error::IoReturn;
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use ndk_model::queue::{
    RxCompletionQueue, RxSubmissionQueue, SystemRxCompletion, SystemRxSubmission,
    SystemTxCompletion, SystemTxSubmission, TxCompletionQueue, TxSubmissionQueue,
};

const BATCH: usize = 32;
type Batch = heapless::Vec<Packet, BATCH>;

/// What the demo should do.
#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    /// Frames to send through the loopback.
    pub frames: u64,
    /// Packets in the pool.
    pub pool_packets: u32,
    /// Slots per queue (a power of two).
    pub queue_capacity: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            frames: 2_000_000,
            pool_packets: 1024,
            queue_capacity: 256,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// Frames submitted on Tx.
    pub tx_frames: u64,
    /// Tx packets that came back on Tx completion.
    pub tx_completed: u64,
    /// Frames received on Rx completion, in order and intact.
    pub rx_frames: u64,
    /// Payload bytes received.
    pub rx_bytes: u64,
    /// Frames the driver dropped because no Rx buffer was posted.
    pub dropped_no_rx_buffer: u64,
    /// Completions the driver could not enqueue (must be 0: it reserves room first).
    pub lost_completions: u64,
    /// Frames that arrived out of order or damaged (must be 0).
    pub corrupted: u64,
    /// Packets not back in the pool at the end (must be 0).
    pub pool_in_use_at_end: u32,
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Pool creation failed.
    #[error(transparent)]
    Pool(#[from] ndk_model::pool::PoolCreateError),
    /// Queue creation failed.
    #[error(transparent)]
    Queue(#[from] ndk_model::queue::QueueCreateError),
    /// A ring was corrupted (cannot happen in-process; reported rather than unwrapped).
    #[error("{0}")]
    Ring(String),
}

fn frame_len_bytes(seq: u64) -> usize {
    60 + (seq % 1455) as usize
}

fn fill(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in buf[8..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(i as u8);
    }
}

fn intact(buf: &[u8], seq: u64) -> bool {
    buf.len() == frame_len_bytes(seq)
        && buf[..8] == seq.to_le_bytes()
        && buf[8..]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (seq as u8).wrapping_add(i as u8))
}

struct Driver {
    pool: PacketBufferPool,
    tx_sub: TxSubmissionQueue,
    tx_comp: TxCompletionQueue,
    rx_sub: RxSubmissionQueue,
    rx_comp: RxCompletionQueue,
    dropped_no_rx_buffer: Arc<AtomicU64>,
    lost_completions: Arc<AtomicU64>,
}

impl Driver {
    /// One pass: returns how many Tx frames it handled.
    fn poll(&mut self) -> Result<u32, DemoError> {
        let ring = |e: ndk_model::queue::DequeueError| DemoError::Ring(e.to_string());
        // Take only as many frames as both completion queues can hold, so no completion is
        // ever refused (backpressure instead of loss).
        let corrupt = |e: ndk_model::ring::RingCorrupted| DemoError::Ring(e.to_string());
        let room = self
            .tx_comp
            .free_space()
            .map_err(corrupt)?
            .min(self.rx_comp.free_space().map_err(corrupt)?)
            .min(BATCH as u32);
        let mut tx = Batch::new();
        let n = self.tx_sub.dequeue_packets(&mut tx, room).map_err(ring)?;
        if n == 0 {
            return Ok(0);
        }
        let mut rx = Batch::new();
        self.rx_sub.dequeue_packets(&mut rx, n).map_err(ring)?;
        let mut filled = Batch::new();
        for mut tx_packet in tx {
            if let Some(mut rx_packet) = rx.pop() {
                // The loopback wire: copy the Tx frame's bytes into the Rx buffer.
                if let (Ok(frame), Ok(mut view)) = (
                    self.pool.packet(&tx_packet),
                    self.pool.packet_mut(&mut rx_packet),
                ) {
                    let _ = view.write_frame(0, frame.data());
                    view.set_link_header_length(14);
                }
                let _ = filled.push(rx_packet);
            } else {
                self.dropped_no_rx_buffer.fetch_add(1, Ordering::Release);
            }
            if let Ok(mut view) = self.pool.packet_mut(&mut tx_packet) {
                view.set_completion_status(IoReturn::Success);
            }
            if let Err(e) = self.tx_comp.enqueue_packet(tx_packet) {
                // Cannot happen: `room` reserved the space. Counted, never silent.
                self.lost_completions.fetch_add(1, Ordering::Release);
                let _ = self.pool.deallocate(e.packet);
            }
        }
        // Buffers taken but not needed go back as free buffers.
        for unused in rx {
            let _ = self.pool.deallocate(unused);
        }
        self.rx_comp.enqueue_packets(&mut filled);
        for refused in filled {
            // Cannot happen either (`room`); counted if it does.
            self.lost_completions.fetch_add(1, Ordering::Release);
            let _ = self.pool.deallocate(refused);
        }
        Ok(n)
    }

    /// Interface disable: hands back the empty Rx buffers still posted.
    fn drain_rx_submission(&mut self) -> Result<(), DemoError> {
        let mut rx = Batch::new();
        while self
            .rx_sub
            .dequeue_packets(&mut rx, BATCH as u32)
            .map_err(|e| DemoError::Ring(e.to_string()))?
            > 0
        {
            for p in rx.drain(..) {
                let _ = self.pool.deallocate(p);
            }
        }
        Ok(())
    }
}

struct System {
    pool: PacketBufferPool,
    tx_sub: SystemTxSubmission,
    tx_comp: SystemTxCompletion,
    rx_sub: SystemRxSubmission,
    rx_comp: SystemRxCompletion,
}

/// Runs the demo; `progress` is called now and then with the report so far.
///
/// # Errors
/// [`DemoError`] if the pool or queues cannot be built.
pub fn run(
    config: DemoConfig,
    mut progress: impl FnMut(&DemoReport),
) -> Result<DemoReport, DemoError> {
    let pool = PacketBufferPool::create(PoolConfig::new(*b"demo", config.pool_packets, 2048))?;
    let cap = config.queue_capacity;
    let tx_sub = TxSubmissionQueue::create(&pool, cap, 0)?;
    let tx_comp = TxCompletionQueue::create(&pool, cap, 1)?;
    let rx_sub = RxSubmissionQueue::create(&pool, cap, 2)?;
    let rx_comp = RxCompletionQueue::create(&pool, cap, 3)?;
    let mut sys = System {
        pool: pool.clone(),
        tx_sub: SystemTxSubmission::attach(tx_sub.ring(), &pool)?,
        tx_comp: SystemTxCompletion::attach(tx_comp.ring(), &pool)?,
        rx_sub: SystemRxSubmission::attach(rx_sub.ring(), &pool)?,
        rx_comp: SystemRxCompletion::attach(rx_comp.ring(), &pool)?,
    };
    for half in [tx_sub.ring(), tx_comp.ring(), rx_sub.ring(), rx_comp.ring()] {
        half.set_enabled(true);
    }
    let mut driver = Driver {
        pool: pool.clone(),
        tx_sub,
        tx_comp,
        rx_sub,
        rx_comp,
        dropped_no_rx_buffer: Arc::new(AtomicU64::new(0)),
        lost_completions: Arc::new(AtomicU64::new(0)),
    };
    let lost = Arc::clone(&driver.lost_completions);
    let dropped = Arc::clone(&driver.dropped_no_rx_buffer);
    let stop = Arc::new(AtomicBool::new(false));
    let driver_stop = Arc::clone(&stop);
    let driver_thread = std::thread::spawn(move || -> Result<Driver, DemoError> {
        loop {
            let moved = driver.poll()?;
            if moved == 0 {
                if driver_stop.load(Ordering::Acquire) {
                    driver.drain_rx_submission()?;
                    return Ok(driver);
                }
                std::thread::yield_now();
            }
        }
    });
    let mut report = run_system(&mut sys, &config, &dropped, &lost, &mut progress);
    stop.store(true, Ordering::Release);
    let driver = driver_thread
        .join()
        .map_err(|_| DemoError::Ring("driver thread panicked".into()))??;
    if let Ok(r) = report.as_mut() {
        r.dropped_no_rx_buffer = dropped.load(Ordering::Acquire);
        r.lost_completions = lost.load(Ordering::Acquire);
        drop(driver);
        r.pool_in_use_at_end = pool.in_use();
    }
    report
}

fn run_system(
    sys: &mut System,
    config: &DemoConfig,
    dropped: &AtomicU64,
    lost: &AtomicU64,
    progress: &mut impl FnMut(&DemoReport),
) -> Result<DemoReport, DemoError> {
    let ring = |e: ndk_model::queue::DequeueError| DemoError::Ring(e.to_string());
    let mut r = DemoReport::default();
    let mut next_rx_seq = 0u64;
    let mut spins = 0u64;
    while r.rx_frames + dropped.load(Ordering::Acquire) < config.frames
        || r.tx_completed + lost.load(Ordering::Acquire) < r.tx_frames
    {
        let mut progressed = false;
        // Keep Rx buffers posted.
        let mut posts = Batch::new();
        while posts.len() < BATCH {
            match sys.pool.allocate(Owner::System) {
                Ok(p) => {
                    let _ = posts.push(p);
                }
                Err(_) => break,
            }
        }
        sys.rx_sub.enqueue_packets(&mut posts);
        for p in posts {
            let _ = sys.pool.system_free(p);
        }
        // Submit frames.
        let mut tx = Batch::new();
        while r.tx_frames + (tx.len() as u64) < config.frames && tx.len() < BATCH {
            let Ok(mut p) = sys.pool.allocate(Owner::System) else {
                break;
            };
            let seq = r.tx_frames + tx.len() as u64;
            if let Ok(mut view) = sys.pool.packet_mut(&mut p) {
                let _ = view.set_data_offset_and_length(0, frame_len_bytes(seq) as u32);
                fill(view.data_mut(), seq);
            }
            let _ = tx.push(p);
        }
        let out = sys.tx_sub.enqueue_packets(&mut tx);
        r.tx_frames += u64::from(out.accepted);
        progressed |= out.accepted > 0;
        for p in tx {
            let _ = sys.pool.system_free(p);
        }
        // Collect Tx completions.
        let mut done = Batch::new();
        let n = sys
            .tx_comp
            .dequeue_packets(&mut done, BATCH as u32)
            .map_err(ring)?;
        r.tx_completed += u64::from(n);
        progressed |= n > 0;
        for p in done {
            let _ = sys.pool.system_free(p);
        }
        // Collect and check received frames.
        let mut rx = Batch::new();
        let n = sys
            .rx_comp
            .dequeue_packets(&mut rx, BATCH as u32)
            .map_err(ring)?;
        progressed |= n > 0;
        for p in rx {
            if let Ok(view) = sys.pool.packet(&p) {
                let data = view.data();
                let seq = data.get(..8).map_or(u64::MAX, |s| {
                    u64::from_le_bytes(s.try_into().unwrap_or_default())
                });
                if seq >= next_rx_seq && intact(data, seq) {
                    r.rx_bytes += data.len() as u64;
                    next_rx_seq = seq + 1;
                    r.rx_frames += 1;
                } else {
                    r.corrupted += 1;
                    r.rx_frames += 1;
                }
            }
            let _ = sys.pool.system_free(p);
        }
        if progressed {
            spins = 0;
        } else {
            spins += 1;
            std::thread::yield_now();
            if spins > 50_000_000 {
                return Err(DemoError::Ring("no progress".into()));
            }
        }
        if r.tx_frames % 262_144 < BATCH as u64 && out.accepted > 0 {
            progress(&r);
        }
    }
    progress(&r);
    Ok(r)
}
