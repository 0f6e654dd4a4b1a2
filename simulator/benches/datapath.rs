//! Driver datapath benchmark: packets/s through `VirtualEthernet<SimPort>` for 64-byte and
//! 1500-byte frames, Tx and Rx, on three threads, next to a bare memcpy of the same frames.
//!
//! Run with `cargo bench -p vnic-sim --bench datapath` (optionally `-- --quick`).
//!
//! Threads per case:
//! - **OS side** (this thread): Tx: allocates packets from the NIC pool, writes the frame,
//!   enqueues Tx submission, frees Tx completions. Rx: posts empty buffers on Rx submission,
//!   frees Rx completions.
//! - **driver**: a poll loop over `VirtualEthernet::poll` that yields the CPU after a run of
//!   idle passes (the machine has 2 cores for 3 threads; a pure `RunMode::BusyPoll` spinner
//!   starves the other two, see the report).
//! - **wire**: the [`WireEnd`]: a Tx sink (`pop_tx` into a reused buffer, then discard) or
//!   an Rx source (`push_rx` of a prepared frame whenever `rx_free() > 0`).
//!
//! Copies per frame, and so the memcpy baseline's copies per frame:
//! - Tx, 3 copies: the OS writes the frame into the NIC pool packet; `SimPort::write_frames`
//!   copies it into the Tx ring; `WireEnd::pop_tx` copies it out to the actor's buffer.
//! - Rx, 2 copies: `WireEnd::push_rx` copies the frame into the Rx ring;
//!   `SimPort::read_frames` copies it into the NIC's Rx buffer (the OS only frees it).
//!
//! - Port only (`SimPort` + `WireEnd` on one thread, no driver): 2 copies either way.
//!
//! The baseline copies each frame that many times, single-threaded, through rotating buffer
//! sets of about the datapath's footprint (so it is not just L1-hot copying), in the same run.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time and yields the CPU"
)]
#![allow(missing_docs, reason = "a benchmark binary")]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use ndk_model::ethernet::{EthernetInterface, EthernetService, MacAddress};
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolCache, PoolConfig};
use vnic_driver::attach::{attach, AttachedNic};
use vnic_driver::nic::{NicConfig, VirtualEthernet};
use vnic_driver::port::{HardwarePort, PortInfo};
use vnic_sim::faults::PortFaults;
use vnic_sim::port::{wire, SimPort, WireConfig, WireEnd};
use vnic_sim::rng::SimRng;

const MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 1]);
const QUEUE_CAPACITY: u32 = 1024;
const POOL_PACKETS: u32 = 8192;
const BATCH: usize = 64;
/// Idle passes before a thread yields its core.
const IDLE_SPINS: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Tx,
    Rx,
}

#[derive(Debug)]
struct Outcome {
    frames: u64,
    secs: f64,
    dropped: u64,
}

fn template(size: usize) -> Vec<u8> {
    let mut f = vec![0u8; size];
    f[..6].copy_from_slice(&MAC.0);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    for (i, b) in f.iter_mut().enumerate().skip(14) {
        *b = i as u8;
    }
    f
}

fn idle(spins: &mut u32) {
    *spins += 1;
    if *spins >= IDLE_SPINS {
        *spins = 0;
        thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// One turn of the wire: drain up to 256 Tx frames, or fill the Rx ring. Whether it moved
/// anything.
fn wire_step(end: &mut WireEnd, dir: Dir, frame: &[u8], out: &mut Vec<u8>) -> bool {
    match dir {
        Dir::Tx => {
            let mut n = 0;
            while n < 256 && end.pop_tx(out) {
                black_box(&*out);
                n += 1;
            }
            n > 0
        }
        Dir::Rx => {
            let room = end.rx_free();
            for _ in 0..room {
                if end.push_rx(frame).is_err() {
                    break;
                }
            }
            room > 0
        }
    }
}

/// Tx sink or Rx source until `stop`.
fn wire_thread(mut end: WireEnd, dir: Dir, size: usize, stop: &AtomicBool) -> WireEnd {
    let frame = template(size);
    let mut out = Vec::with_capacity(2048);
    let mut spins = 0;
    while !stop.load(Ordering::Relaxed) {
        if !wire_step(&mut end, dir, &frame, &mut out) {
            idle(&mut spins);
        }
    }
    end
}

struct Rig {
    pool: PacketBufferPool,
    iface: EthernetInterface,
    service: EthernetService,
    nic: VirtualEthernet<SimPort>,
    end: WireEnd,
}

fn rig() -> Rig {
    let info = PortInfo::vmnet_documented(MAC);
    let (port, end) = wire(
        info,
        WireConfig::default(),
        PortFaults::NONE,
        SimRng::new(1),
    )
    .expect("wire");
    let pool = PacketBufferPool::create(PoolConfig::new(*b"bnch", POOL_PACKETS, 2048)).unwrap();
    // A sink that falls behind makes the port say Busy; with the default 8 retries (when
    // they were immediate, within one pass) the driver dropped most 64-byte frames
    // (measured: >90 %), which would count drops as throughput. Retrying (almost) without limit turns Busy into backpressure instead.
    let config = NicConfig {
        tx_busy_retries_max: 1 << 20,
        ..NicConfig::default()
    };
    let AttachedNic {
        nic,
        service,
        iface,
    } = attach(port, &pool, QUEUE_CAPACITY, config).unwrap();
    Rig {
        pool,
        iface,
        service,
        nic,
        end,
    }
}

/// The OS side's state for one case.
struct OsSide {
    pool: PacketBufferPool,
    cache: PoolCache,
    batch: heapless::Vec<Packet, BATCH>,
    frame: Vec<u8>,
    frames: u64,
    submitted: u64,
    done: u64,
}

impl OsSide {
    fn new(pool: &PacketBufferPool, size: usize, frames: u64) -> Self {
        Self {
            pool: pool.clone(),
            cache: PoolCache::new(pool, 128),
            batch: heapless::Vec::new(),
            frame: template(size),
            frames,
            submitted: 0,
            done: 0,
        }
    }

    /// One turn: submit or post, then collect completions. Whether it moved anything.
    fn step(&mut self, dir: Dir, iface: &mut EthernetInterface) -> bool {
        let q = iface.queues_mut();
        let mut progressed = false;
        match dir {
            Dir::Tx => {
                while self.batch.len() < BATCH
                    && self.submitted + (self.batch.len() as u64) < self.frames
                {
                    let Ok(mut p) = self.cache.allocate(Owner::System) else {
                        break;
                    };
                    self.pool
                        .packet_mut(&mut p)
                        .unwrap()
                        .write_frame(0, &self.frame)
                        .unwrap();
                    let _ = self.batch.push(p);
                }
                let accepted = q.tx_submission.enqueue_packets(&mut self.batch).accepted;
                self.submitted += u64::from(accepted);
                progressed |= accepted > 0;
                // Refused packets stay at the front of `batch` for the next turn; the
                // completions are appended after them and freed.
                let room = (BATCH - self.batch.len()) as u32;
                let n = q
                    .tx_completion
                    .dequeue_packets(&mut self.batch, room)
                    .unwrap_or(0);
                let keep = self.batch.len() - n as usize;
                for p in self.batch.drain(keep..) {
                    self.cache.system_free(p).unwrap();
                }
                self.done += u64::from(n);
                progressed |= n > 0;
            }
            Dir::Rx => {
                while self.batch.len() < BATCH {
                    let Ok(p) = self.cache.allocate(Owner::System) else {
                        break;
                    };
                    let _ = self.batch.push(p);
                }
                progressed |= q.rx_submission.enqueue_packets(&mut self.batch).accepted > 0;
                for p in self.batch.drain(..) {
                    self.cache.system_free(p).unwrap();
                }
                let n = q
                    .rx_completion
                    .dequeue_packets(&mut self.batch, BATCH as u32)
                    .unwrap_or(0);
                for p in self.batch.drain(..) {
                    black_box(self.pool.packet(&p).map(|v| v.data_length()).ok());
                    self.cache.system_free(p).unwrap();
                }
                self.done += u64::from(n);
                progressed |= n > 0;
            }
        }
        progressed
    }

    fn finish(mut self) {
        for p in self.batch.drain(..) {
            let _ = self.cache.system_free(p);
        }
    }
}

/// Checks the wire's conservation; returns the driver's drops.
fn check_and_count(nic: &VirtualEthernet<SimPort>, end: &WireEnd, dir: Dir) -> u64 {
    let c = nic.counters();
    let p = nic.port().counters();
    let w = end.counters();
    match dir {
        Dir::Tx => assert_eq!(
            w.tx_frames_popped + end.tx_queued() as u64,
            p.frames_accepted
        ),
        Dir::Rx => assert_eq!(p.frames_read + end.rx_queued() as u64, w.rx_frames_pushed),
    }
    c.tx.dropped_total() + c.rx.dropped_total()
}

/// The three roles on three threads.
fn run_threaded(dir: Dir, size: usize, frames: u64) -> Outcome {
    let Rig {
        pool,
        mut iface,
        mut service,
        mut nic,
        end,
    } = rig();
    let stop = Arc::new(AtomicBool::new(false));
    let driver = {
        let stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("driver".into())
            .spawn(move || {
                let mut spins = 0;
                while !stop.load(Ordering::Relaxed) {
                    let outcome = nic.poll(service.link_mut()).expect("poll");
                    if outcome.is_idle() {
                        idle(&mut spins);
                    }
                }
                (nic, service)
            })
            .unwrap()
    };
    let wire = {
        let stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("wire".into())
            .spawn(move || wire_thread(end, dir, size, &stop))
            .unwrap()
    };
    let mut os = OsSide::new(&pool, size, frames);
    let mut spins = 0;
    let start = Instant::now();
    while os.done < frames {
        if !os.step(dir, &mut iface) {
            idle(&mut spins);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (nic, _service) = driver.join().unwrap();
    let end = wire.join().unwrap();
    let done = os.done;
    os.finish();
    Outcome {
        frames: done,
        secs,
        dropped: check_and_count(&nic, &end, dir),
    }
}

/// The three roles taking turns on one thread (the deterministic mode's shape): the CPU
/// cost per frame without cross-core traffic or scheduling.
fn run_inline(dir: Dir, size: usize, frames: u64) -> Outcome {
    let Rig {
        pool,
        mut iface,
        mut service,
        mut nic,
        mut end,
    } = rig();
    let mut os = OsSide::new(&pool, size, frames);
    let frame = template(size);
    let mut out = Vec::with_capacity(2048);
    let start = Instant::now();
    while os.done < frames {
        os.step(dir, &mut iface);
        nic.poll(service.link_mut()).expect("poll");
        wire_step(&mut end, dir, &frame, &mut out);
    }
    let secs = start.elapsed().as_secs_f64();
    let done = os.done;
    os.finish();
    Outcome {
        frames: done,
        secs,
        dropped: check_and_count(&nic, &end, dir),
    }
}

/// Copies `frames` frames of `size` bytes `copies` times each through rotating buffer sets;
/// returns seconds.
fn memcpy_baseline(size: usize, frames: u64, copies: usize) -> f64 {
    const SLOTS: usize = 1024;
    const STRIDE: usize = 2048;
    let src = template(size);
    let mut sets: Vec<Vec<u8>> = (0..copies).map(|_| vec![0u8; SLOTS * STRIDE]).collect();
    let start = Instant::now();
    for i in 0..frames {
        let at = (i as usize % SLOTS) * STRIDE;
        sets[0][at..at + size].copy_from_slice(black_box(&src));
        for c in 1..copies {
            let (a, b) = sets.split_at_mut(c);
            b[0][at..at + size].copy_from_slice(&a[c - 1][at..at + size]);
        }
        black_box(&sets[copies - 1][at]);
    }
    start.elapsed().as_secs_f64()
}

/// The port alone, one thread: `write_frames` of 64-frame batches then `pop_tx` (Tx), or
/// `push_rx` then `read_frames` (Rx). What the hand-off itself costs per frame.
fn run_port_only(dir: Dir, size: usize, frames: u64) -> Outcome {
    let info = PortInfo::vmnet_documented(MAC);
    let (mut port, mut end) = wire(
        info,
        WireConfig::default(),
        PortFaults::NONE,
        SimRng::new(1),
    )
    .expect("wire");
    port.start().unwrap();
    let frame = template(size);
    let refs = [&frame[..]; BATCH];
    let mut out = Vec::with_capacity(2048);
    let mut store = vec![[0u8; 2048]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut done = 0u64;
    let start = Instant::now();
    while done < frames {
        match dir {
            Dir::Tx => {
                port.write_frames(&refs).expect("write");
                for _ in 0..BATCH {
                    assert!(end.pop_tx(&mut out));
                    black_box(&out);
                }
            }
            Dir::Rx => {
                for _ in 0..BATCH {
                    end.push_rx(&frame).expect("push");
                }
                let mut bufs: heapless::Vec<&mut [u8], BATCH> =
                    store.iter_mut().map(|b| &mut b[..]).collect();
                assert_eq!(port.read_frames(&mut bufs, &mut lens), Ok(BATCH));
            }
        }
        done += BATCH as u64;
    }
    Outcome {
        frames: done,
        secs: start.elapsed().as_secs_f64(),
        dropped: 0,
    }
}

type Runner = fn(Dir, usize, u64) -> Outcome;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `-- --case 'Tx 64B inline'`: run only the cases whose name contains that text (for
    // profiling one case); every case by default.
    let filter: Option<String> = std::env::args().skip_while(|a| a != "--case").nth(1);
    let scale = if quick { 10 } else { 1 };
    println!(
        "datapath: VirtualEthernet<SimPort>; '3 thr' = OS side, driver, wire on their own \
         threads ({} CPUs); 'inline' = the three taking turns on one thread",
        thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!(
        "{:<20} {:>9} {:>7} {:>7} {:>6} | {:>6} {:>8} {:>8} | {:>6} {:>7}",
        "case",
        "frames",
        "secs",
        "Mpps",
        "GB/s",
        "copies",
        "cpy Mpps",
        "cpy GB/s",
        "ratio",
        "dropped"
    );
    for (dir, size, frames) in [
        (Dir::Tx, 64usize, 4_000_000u64),
        (Dir::Tx, 1500, 1_000_000),
        (Dir::Rx, 64, 4_000_000),
        (Dir::Rx, 1500, 1_000_000),
    ] {
        let frames = frames / scale;
        let runs: [(&str, Runner); 3] = [
            ("3 thr", run_threaded),
            ("inline", run_inline),
            ("port only", run_port_only),
        ];
        for (mode, run) in runs {
            let name = format!("{dir:?} {size}B {mode}");
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            // The OS side's write is the third Tx copy; the port-only run has no OS side.
            let copies = match (dir, mode) {
                (Dir::Tx, "port only") | (Dir::Rx, _) => 2,
                (Dir::Tx, _) => 3,
            };
            let base_secs = memcpy_baseline(size, frames, copies);
            let base_mpps = frames as f64 / base_secs / 1e6;
            let base_gbps = frames as f64 * size as f64 / base_secs / 1e9;
            // Warm-up run, then the measured one.
            let _ = run(dir, size, frames / 10);
            let outcome = run(dir, size, frames);
            let mpps = outcome.frames as f64 / outcome.secs / 1e6;
            let gbps = outcome.frames as f64 * size as f64 / outcome.secs / 1e9;
            println!(
                "{:<20} {:>9} {:>7.3} {:>7.2} {:>6.2} | {:>6} {:>8.2} {:>8.2} | {:>6.3} {:>7}",
                name,
                outcome.frames,
                outcome.secs,
                mpps,
                gbps,
                copies,
                base_mpps,
                base_gbps,
                mpps / base_mpps,
                outcome.dropped
            );
        }
    }
    println!("targets: ratio >= 0.5 (x memcpy); >= 20 Mpps at 64 B where memcpy allows");
}
