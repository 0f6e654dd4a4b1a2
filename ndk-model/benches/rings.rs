//! Ring and packet-pool throughput benchmark (`cargo bench -p ndk-model --bench rings`).
//!
//! Not a test: it prints numbers and asserts nothing about speed. It does check correctness:
//! every item must arrive in sequence (item `i` is the `i`-th received), otherwise it panics.
//!
//! Method (rings.md §4): one invocation runs every variant, interleaved round-robin, with a
//! producer thread pinned to CPU0 and a consumer thread pinned to CPU1 that spin with
//! `std::hint::spin_loop()` on full/empty. A run is discarded and retried (at most
//! `rounds + 4` attempts per variant) when a thread could not be pinned or the process CPU
//! time (getrusage) over the run is below 0.93 × the threads' summed running time — for a
//! ring run, where both threads run to the end, that is 0.93 × 2 × wall — because then a
//! co-tenant took a CPU. Hypervisor steal time on the two CPUs (`/proc/stat`) is printed
//! next to each run for information. `core_affinity::get_core_ids()` is called once, before
//! anything is pinned (rings.md §4.1).
//!
//! Variants, for `u32` items and for 16-byte [`PacketDescriptor`] items: our ring single
//! (`push`/`pop`) and batch 32 (`reserve_exact(32)` with burst fallback + `as_mut_slices`;
//! `peek(32)` burst + `as_slices` + `release_all`), rtrb single and chunk 32
//! (`write_chunk_uninit` + `fill_from_iter`; `read_chunk` + `as_slices` + `commit_all`, both
//! sides falling back to the count reported by `TooFewSlots`), and crossbeam `ArrayQueue`.
//! Then the packet pool: uncontended allocate+free pairs and bursts (allocate 32, free 32),
//! straight on the pool and through a `PoolCache`, and two pinned threads doing pairs on one
//! pool at once.
//!
//! Environment: `VNIC_BENCH_ROUNDS` (default 3), `VNIC_BENCH_ITEMS` (`u32` items per run,
//! default 100 000 000; descriptor runs move a quarter of it), `VNIC_BENCH_POOL_PAIRS`
//! (allocate+free pairs per thread per run, default 10 000 000). Without the `--bench`
//! argument that `cargo bench` passes (for example under `cargo test --all-targets`) it runs
//! a quick smoke pass with small counts whose numbers mean nothing.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use crossbeam_queue::ArrayQueue;
use ndk_model::pool::{Owner, PacketBufferPool, PoolCache, PoolConfig};
use ndk_model::ring::{PacketDescriptor, PushError, ReserveError, Ring, RingConfig, RingElement};

const CAPACITY: u32 = 4096;
const BATCH: u32 = 32;
const CPU_SHARE_MIN: f64 = 0.93;

// ---------------------------------------------------------------------------------------------
// Items

/// An element type moved through the queues; item `seq` has one exact value.
trait Item: RingElement + PartialEq + std::fmt::Debug {
    const NAME: &'static str;
    fn make(seq: u64) -> Self;
}

impl Item for u32 {
    const NAME: &'static str = "u32";
    #[inline(always)]
    fn make(seq: u64) -> Self {
        seq as u32
    }
}

impl Item for PacketDescriptor {
    const NAME: &'static str = "desc16";
    #[inline(always)]
    fn make(seq: u64) -> Self {
        let s = seq as u32;
        PacketDescriptor {
            index: s,
            length_bytes: 64 + (s & 1023),
            offset_bytes: (s & 0x3f) as u16,
            flags: (s >> 16) as u16,
            cookie: s ^ 0x9e37_79b9,
        }
    }
}

#[cold]
#[inline(never)]
fn mismatch<T: Item>(seq: u64, got: T) -> ! {
    panic!(
        "{}: item {seq} arrived as {got:?}, expected {:?}",
        T::NAME,
        T::make(seq)
    );
}

#[inline(always)]
fn check<T: Item>(seq: u64, got: T) {
    if got != T::make(seq) {
        mismatch(seq, got);
    }
}

/// Checks that `items` are `first, first+1, ...` (branch-free in the loop so it vectorises).
#[inline(always)]
fn check_slice<T: Item>(first: u64, items: &[T]) {
    let mut ok = true;
    for (k, v) in items.iter().enumerate() {
        ok &= *v == T::make(first + k as u64);
    }
    if !ok {
        for (k, v) in items.iter().enumerate() {
            check(first + k as u64, *v);
        }
    }
}

#[inline(always)]
fn fill_slice<T: Item>(first: u64, slots: &mut [T]) {
    for (k, s) in slots.iter_mut().enumerate() {
        *s = T::make(first + k as u64);
    }
}

// ---------------------------------------------------------------------------------------------
// Two pinned threads, the CPU guard

/// Set by whichever thread panics, so its peer stops spinning instead of hanging.
struct PanicFlag<'a>(&'a AtomicBool);

impl Drop for PanicFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// One spin while waiting for the peer; gives up if the peer panicked.
#[inline(always)]
fn wait(abort: &AtomicBool) {
    if abort.load(Ordering::Relaxed) {
        peer_failed();
    }
    spin_loop();
}

#[cold]
#[inline(never)]
fn peer_failed() -> ! {
    panic!("peer thread failed");
}

/// Process CPU time (user + system) so far.
fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid, writable memory for one `rusage`; getrusage only writes it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: zero-initialised (all-integer struct) and then filled by a successful getrusage.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// `(steal, total)` ticks of the given CPUs from `/proc/stat` (Linux; `None` elsewhere).
fn cpu_ticks(cores: &[CoreId]) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut steal = 0;
    let mut total = 0;
    for core in cores {
        let label = format!("cpu{}", core.id);
        let line = stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        // already inside user/nice.
        steal += ticks.get(7).copied().unwrap_or(0);
        total += ticks.iter().take(8).sum::<u64>();
    }
    Some((steal, total))
}

/// Share of the CPUs' time the hypervisor gave to someone else between two readings.
fn steal_share(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((s0, t0), (s1, t1)) = (before?, after?);
    let total = t1.checked_sub(t0)?;
    (total > 0).then(|| as_f64(s1.saturating_sub(s0)) / as_f64(total))
}

/// One timed run of one or two pinned threads.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// From the start barrier to the last join.
    wall: Duration,
    /// Process CPU time (user + system) over the run.
    cpu: Duration,
    /// Each thread's own running time, from the start barrier to the end of its work
    /// (`ZERO` for an unused second thread).
    busy: [Duration; 2],
    /// Whether every thread was pinned.
    pinned: bool,
    /// Hypervisor steal time on the CPUs used, as a share of their time (informational).
    steal: Option<f64>,
}

impl Sample {
    /// CPU time over the threads' summed running time (1.0 = no thread ever waited for a
    /// CPU). For a ring run both threads run to the end, so the sum is 2 × wall.
    fn cpu_share(&self) -> f64 {
        self.cpu.as_secs_f64() / (self.busy[0] + self.busy[1]).as_secs_f64()
    }

    fn clean(&self) -> bool {
        self.pinned && self.cpu_share() >= CPU_SHARE_MIN
    }

    fn describe_discard(&self) -> String {
        if self.pinned {
            format!("cpu share {:.3} < {CPU_SHARE_MIN}", self.cpu_share())
        } else {
            "a thread could not be pinned".to_owned()
        }
    }
}

/// Thread body: pin, wait for the start, run `work`; returns (pinned, running time).
fn pinned_body(
    core: CoreId,
    barrier: &Barrier,
    abort: &AtomicBool,
    work: impl FnOnce(&AtomicBool),
) -> (bool, Duration) {
    let _flag = PanicFlag(abort);
    let pinned = core_affinity::set_for_current(core);
    barrier.wait();
    let t0 = Instant::now();
    work(abort);
    (pinned, t0.elapsed())
}

/// Runs `first` on `cores[0]` and, if given, `second` on `cores[1]`, released together by a
/// barrier; wall time from the release to the last join.
fn run_threads<A, B>(cores: [CoreId; 2], first: A, second: Option<B>) -> Sample
where
    A: FnOnce(&AtomicBool) + Send,
    B: FnOnce(&AtomicBool) + Send,
{
    let used: &[CoreId] = if second.is_some() {
        &cores
    } else {
        &cores[..1]
    };
    let abort = &AtomicBool::new(false);
    let barrier = &Barrier::new(used.len() + 1);
    std::thread::scope(|s| {
        let h1 = s.spawn(move || pinned_body(cores[0], barrier, abort, first));
        let h2 =
            second.map(|second| s.spawn(move || pinned_body(cores[1], barrier, abort, second)));
        let ticks0 = cpu_ticks(used);
        let cpu0 = process_cpu_time();
        let t0 = Instant::now();
        barrier.wait();
        let r1 = h1.join();
        let r2 = h2.map_or(
            Ok((true, Duration::ZERO)),
            std::thread::ScopedJoinHandle::join,
        );
        let wall = t0.elapsed();
        let cpu = process_cpu_time().saturating_sub(cpu0);
        let steal = steal_share(ticks0, cpu_ticks(used));
        // Report the original failure, not the peer's "peer thread failed".
        let ((p1, b1), (p2, b2)) = match (r1, r2) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), Ok(_)) | (Ok(_) | Err(_), Err(e)) => std::panic::resume_unwind(e),
        };
        Sample {
            wall,
            cpu,
            busy: [b1, b2],
            pinned: p1 && p2,
            steal,
        }
    })
}

/// Two threads: `first` on `cores[0]`, `second` on `cores[1]`.
fn run_pair<A, B>(cores: [CoreId; 2], first: A, second: B) -> Sample
where
    A: FnOnce(&AtomicBool) + Send,
    B: FnOnce(&AtomicBool) + Send,
{
    run_threads(cores, first, Some(second))
}

/// One thread: `work` on `cores[0]`.
fn run_one<A>(cores: [CoreId; 2], work: A) -> Sample
where
    A: FnOnce(&AtomicBool) + Send,
{
    run_threads(cores, work, None::<fn(&AtomicBool)>)
}

// ---------------------------------------------------------------------------------------------
// Ring variants

fn our_ring<T: Item>() -> (ndk_model::ring::Producer<T>, ndk_model::ring::Consumer<T>) {
    let ring = Ring::<T>::new(RingConfig::with_capacity(CAPACITY)).expect("ring");
    (
        ring.producer().expect("producer"),
        ring.consumer().expect("consumer"),
    )
}

fn ours_single<T: Item>(n: u64, cores: [CoreId; 2]) -> Sample {
    let (mut tx, mut rx) = our_ring::<T>();
    run_pair(
        cores,
        move |abort| {
            for seq in 0..n {
                loop {
                    match tx.push(T::make(seq)) {
                        Ok(()) => break,
                        Err(PushError::Full(_)) => wait(abort),
                        Err(PushError::Corrupted(_, e)) => panic!("{e}"),
                    }
                }
            }
        },
        move |abort| {
            let mut seq = 0;
            while seq < n {
                match rx.pop() {
                    Ok(Some(v)) => {
                        check(seq, v);
                        seq += 1;
                    }
                    Ok(None) => wait(abort),
                    Err(e) => panic!("{e}"),
                }
            }
        },
    )
}

fn ours_batch<T: Item>(n: u64, cores: [CoreId; 2]) -> Sample {
    let (mut tx, mut rx) = our_ring::<T>();
    run_pair(
        cores,
        move |abort| {
            let mut seq = 0;
            while seq < n {
                let want = (n - seq).min(BATCH as u64) as u32;
                let mut chunk = match tx.reserve_exact(want) {
                    Ok(chunk) => chunk,
                    Err(ReserveError::TooFew { free: 0 }) => {
                        wait(abort);
                        continue;
                    }
                    Err(ReserveError::TooFew { free }) => tx.reserve(free).expect("reserve"),
                    Err(ReserveError::Corrupted(e)) => panic!("{e}"),
                };
                let (a, b) = chunk.as_mut_slices();
                fill_slice(seq, a);
                fill_slice(seq + a.len() as u64, b);
                seq += chunk.len() as u64;
                chunk.commit_all();
            }
        },
        move |abort| {
            let mut seq = 0;
            while seq < n {
                let chunk = rx.peek(BATCH).expect("peek");
                if chunk.is_empty() {
                    wait(abort);
                    continue;
                }
                let (a, b) = chunk.as_slices();
                check_slice(seq, a);
                check_slice(seq + a.len() as u64, b);
                seq += chunk.len() as u64;
                chunk.release_all();
            }
        },
    )
}

fn rtrb_single<T: Item>(n: u64, cores: [CoreId; 2]) -> Sample {
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(CAPACITY as usize);
    run_pair(
        cores,
        move |abort| {
            for seq in 0..n {
                while tx.push(T::make(seq)).is_err() {
                    wait(abort);
                }
            }
        },
        move |abort| {
            let mut seq = 0;
            while seq < n {
                if let Ok(v) = rx.pop() {
                    check(seq, v);
                    seq += 1;
                } else {
                    wait(abort);
                }
            }
        },
    )
}

fn rtrb_chunk<T: Item>(n: u64, cores: [CoreId; 2]) -> Sample {
    use rtrb::chunks::ChunkError::TooFewSlots;
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(CAPACITY as usize);
    run_pair(
        cores,
        move |abort| {
            let mut seq = 0;
            while seq < n {
                let want = (n - seq).min(BATCH as u64) as usize;
                let chunk = match tx.write_chunk_uninit(want) {
                    Ok(chunk) => chunk,
                    Err(TooFewSlots(0)) => {
                        wait(abort);
                        continue;
                    }
                    Err(TooFewSlots(k)) => tx.write_chunk_uninit(k).expect("write_chunk"),
                };
                let len = chunk.len() as u64;
                let filled = chunk.fill_from_iter((seq..seq + len).map(T::make));
                seq += filled as u64;
            }
        },
        move |abort| {
            let mut seq = 0;
            while seq < n {
                let want = (n - seq).min(BATCH as u64) as usize;
                let chunk = match rx.read_chunk(want) {
                    Ok(chunk) => chunk,
                    Err(TooFewSlots(0)) => {
                        wait(abort);
                        continue;
                    }
                    Err(TooFewSlots(k)) => rx.read_chunk(k).expect("read_chunk"),
                };
                let (a, b) = chunk.as_slices();
                check_slice(seq, a);
                check_slice(seq + a.len() as u64, b);
                seq += chunk.len() as u64;
                chunk.commit_all();
            }
        },
    )
}

fn array_queue<T: Item>(n: u64, cores: [CoreId; 2]) -> Sample {
    let queue = ArrayQueue::<T>::new(CAPACITY as usize);
    let (tx, rx) = (&queue, &queue);
    run_pair(
        cores,
        move |abort| {
            for seq in 0..n {
                while tx.push(T::make(seq)).is_err() {
                    wait(abort);
                }
            }
        },
        move |abort| {
            let mut seq = 0;
            while seq < n {
                if let Some(v) = rx.pop() {
                    check(seq, v);
                    seq += 1;
                } else {
                    wait(abort);
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Packet pool

const POOL_PACKETS: u32 = 1024;
const POOL_BUFFER_BYTES: u32 = 2048;
const POOL_CACHE_SIZE: usize = 64;
const POOL_BURST: usize = 32;

fn new_pool() -> PacketBufferPool {
    PacketBufferPool::create(PoolConfig::new(*b"bnch", POOL_PACKETS, POOL_BUFFER_BYTES))
        .expect("pool")
}

/// `pairs` allocate+free pairs straight on the shared pool.
fn pairs_direct(pool: &PacketBufferPool, pairs: u64) {
    for _ in 0..pairs {
        let packet = pool.allocate(Owner::Driver).expect("allocate");
        pool.deallocate(black_box(packet)).expect("deallocate");
    }
}

/// `pairs` allocate+free pairs through a private [`PoolCache`].
fn pairs_cached(pool: &PacketBufferPool, pairs: u64) {
    let mut cache = PoolCache::new(pool, POOL_CACHE_SIZE);
    for _ in 0..pairs {
        let packet = cache.allocate(Owner::Driver).expect("allocate");
        cache.deallocate(black_box(packet)).expect("deallocate");
    }
}

/// `pairs` pairs as bursts: allocate [`POOL_BURST`] packets, then free them all.
fn bursts_direct(pool: &PacketBufferPool, pairs: u64) {
    let mut held = Vec::with_capacity(POOL_BURST);
    for _ in 0..pairs / POOL_BURST as u64 {
        for _ in 0..POOL_BURST {
            held.push(pool.allocate(Owner::Driver).expect("allocate"));
        }
        for packet in held.drain(..) {
            pool.deallocate(black_box(packet)).expect("deallocate");
        }
    }
}

/// As [`bursts_direct`], through a private [`PoolCache`].
fn bursts_cached(pool: &PacketBufferPool, pairs: u64) {
    let mut cache = PoolCache::new(pool, POOL_CACHE_SIZE);
    let mut held = Vec::with_capacity(POOL_BURST);
    for _ in 0..pairs / POOL_BURST as u64 {
        for _ in 0..POOL_BURST {
            held.push(cache.allocate(Owner::Driver).expect("allocate"));
        }
        for packet in held.drain(..) {
            cache.deallocate(black_box(packet)).expect("deallocate");
        }
    }
}

fn check_pool_empty(pool: &PacketBufferPool) {
    assert_eq!(pool.in_use(), 0, "pool bench leaked packets");
}

fn pool_direct_1(pairs: u64, cores: [CoreId; 2]) -> Sample {
    let pool = new_pool();
    let s = run_one(cores, |_| pairs_direct(&pool, pairs));
    check_pool_empty(&pool);
    s
}

fn pool_cached_1(pairs: u64, cores: [CoreId; 2]) -> Sample {
    let pool = new_pool();
    let s = run_one(cores, |_| pairs_cached(&pool, pairs));
    check_pool_empty(&pool);
    s
}

fn pool_burst_direct_1(pairs: u64, cores: [CoreId; 2]) -> Sample {
    let pool = new_pool();
    let s = run_one(cores, |_| bursts_direct(&pool, pairs));
    check_pool_empty(&pool);
    s
}

fn pool_burst_cached_1(pairs: u64, cores: [CoreId; 2]) -> Sample {
    let pool = new_pool();
    let s = run_one(cores, |_| bursts_cached(&pool, pairs));
    check_pool_empty(&pool);
    s
}

fn pool_direct_2(pairs: u64, cores: [CoreId; 2]) -> Sample {
    let pool = new_pool();
    let s = run_pair(
        cores,
        |_| pairs_direct(&pool, pairs),
        |_| pairs_direct(&pool, pairs),
    );
    check_pool_empty(&pool);
    s
}

fn pool_cached_2(pairs: u64, cores: [CoreId; 2]) -> Sample {
    let pool = new_pool();
    let s = run_pair(
        cores,
        |_| pairs_cached(&pool, pairs),
        |_| pairs_cached(&pool, pairs),
    );
    check_pool_empty(&pool);
    s
}

// ---------------------------------------------------------------------------------------------
// Driver

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OursSingle,
    OursBatch,
    RtrbSingle,
    RtrbChunk,
    ArrayQueue,
    PoolDirect,
    PoolCached,
    PoolBurstDirect,
    PoolBurstCached,
    PoolDirect2,
    PoolCached2,
}

impl Kind {
    const RINGS: [Kind; 5] = [
        Kind::OursSingle,
        Kind::OursBatch,
        Kind::RtrbSingle,
        Kind::RtrbChunk,
        Kind::ArrayQueue,
    ];

    const POOL: [Kind; 6] = [
        Kind::PoolDirect,
        Kind::PoolCached,
        Kind::PoolBurstDirect,
        Kind::PoolBurstCached,
        Kind::PoolDirect2,
        Kind::PoolCached2,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::OursSingle => "ours single",
            Kind::OursBatch => "ours batch32",
            Kind::RtrbSingle => "rtrb single",
            Kind::RtrbChunk => "rtrb chunk32",
            Kind::ArrayQueue => "ArrayQueue",
            Kind::PoolDirect => "pool pairs, 1 thread",
            Kind::PoolCached => "cache pairs, 1 thread",
            Kind::PoolBurstDirect => "pool bursts32, 1 thread",
            Kind::PoolBurstCached => "cache bursts32, 1 thread",
            Kind::PoolDirect2 => "pool pairs, 2 threads",
            Kind::PoolCached2 => "cache pairs, 2 threads",
        }
    }

    fn is_pool(self) -> bool {
        Kind::POOL.contains(&self)
    }

    fn runner<T: Item>(self) -> fn(u64, [CoreId; 2]) -> Sample {
        match self {
            Kind::OursSingle => ours_single::<T>,
            Kind::OursBatch => ours_batch::<T>,
            Kind::RtrbSingle => rtrb_single::<T>,
            Kind::RtrbChunk => rtrb_chunk::<T>,
            Kind::ArrayQueue => array_queue::<T>,
            Kind::PoolDirect => pool_direct_1,
            Kind::PoolCached => pool_cached_1,
            Kind::PoolBurstDirect => pool_burst_direct_1,
            Kind::PoolBurstCached => pool_burst_cached_1,
            Kind::PoolDirect2 => pool_direct_2,
            Kind::PoolCached2 => pool_cached_2,
        }
    }
}

struct Variant {
    group: &'static str,
    kind: Kind,
    /// Ring: items moved per run. Pool: allocate+free pairs per thread per run.
    items: u64,
    run: fn(u64, [CoreId; 2]) -> Sample,
    attempts: u32,
    /// The figure of the clean run of each round (M items/s for rings, ns per pair per
    /// thread for the pool), `None` if the round had none.
    per_round: Vec<Option<f64>>,
}

impl Variant {
    fn new<T: Item>(group: &'static str, kind: Kind, items: u64) -> Self {
        Variant {
            group,
            kind,
            items,
            run: kind.runner::<T>(),
            attempts: 0,
            per_round: Vec::new(),
        }
    }

    fn figure(&self, s: &Sample) -> f64 {
        if self.kind.is_pool() {
            s.wall.as_secs_f64() * 1e9 / as_f64(self.items)
        } else {
            as_f64(self.items) / s.wall.as_secs_f64() / 1e6
        }
    }

    /// Per-thread figures of a two-thread pool run.
    fn per_thread(&self, s: &Sample) -> String {
        if self.kind.is_pool() && s.busy[1] > Duration::ZERO {
            let ns = |d: Duration| d.as_secs_f64() * 1e9 / as_f64(self.items);
            format!(" (threads {:.2} / {:.2})", ns(s.busy[0]), ns(s.busy[1]))
        } else {
            String::new()
        }
    }

    fn describe(&self, figure: f64) -> String {
        if self.kind.is_pool() {
            format!("{figure:>8.2} ns/pair per thread")
        } else {
            format!("{figure:>8.1} M/s  ({:.2} ns/item)", 1e3 / figure)
        }
    }

    fn median(&self) -> Option<f64> {
        median(self.per_round.iter().flatten().copied().collect())
    }
}

/// A count as `f64`; the counts here stay far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn as_f64(x: u64) -> f64 {
    x as f64
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        f64::midpoint(v[mid - 1], v[mid])
    })
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}={s:?}: {e}")),
        Err(_) => default,
    }
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.prec$}"))
}

/// Runs every variant once per round, round-robin, retrying discarded runs while the
/// variant's budget of `rounds + 4` attempts lasts.
fn run_rounds(variants: &mut [Variant], cores: [CoreId; 2], rounds: u32) {
    let budget = rounds + 4;
    for round in 1..=rounds {
        for v in variants.iter_mut() {
            let mut result = None;
            while v.attempts < budget {
                v.attempts += 1;
                let s = (v.run)(v.items, cores);
                let figure = v.figure(&s);
                let line = format!(
                    "round {round}/{rounds}  {:6}  {:24} {}{}  cpu share {:.3}, steal {}",
                    v.group,
                    v.kind.name(),
                    v.describe(figure),
                    v.per_thread(&s),
                    s.cpu_share(),
                    s.steal
                        .map_or_else(|| "n/a".to_owned(), |x| format!("{:.1}%", x * 100.0))
                );
                if s.clean() {
                    println!("{line}");
                    result = Some(figure);
                    break;
                }
                println!(
                    "{line}  DISCARDED: {} (attempt {}/{budget})",
                    s.describe_discard(),
                    v.attempts
                );
            }
            if result.is_none() {
                println!(
                    "round {round}/{rounds}  {:6}  {:24} no clean run: attempt budget {budget} used up",
                    v.group,
                    v.kind.name()
                );
            }
            v.per_round.push(result);
        }
    }
}

fn print_medians(variants: &[Variant]) {
    for v in variants {
        let clean = v.per_round.iter().flatten().count();
        let med = v
            .median()
            .map_or_else(|| "n/a".to_owned(), |m| v.describe(m));
        println!(
            "{:6}  {:24} median {med}  ({clean} clean of {} attempts, {} {}/run)",
            v.group,
            v.kind.name(),
            v.attempts,
            v.items,
            if v.kind.is_pool() {
                "pairs per thread"
            } else {
                "items"
            }
        );
    }
}

fn report_rings(variants: &[Variant]) {
    println!();
    println!("== ring medians (clean runs only) ==");
    print_medians(variants);
    println!();
    println!("== ring ratios (median / median; per-round ratios in brackets; informational) ==");
    let ratios = [
        (Kind::OursBatch, Kind::RtrbChunk, 1.2),
        (Kind::OursSingle, Kind::RtrbSingle, 1.0),
        (Kind::OursSingle, Kind::ArrayQueue, 5.0),
        (Kind::OursBatch, Kind::ArrayQueue, 5.0),
    ];
    for group in [u32::NAME, PacketDescriptor::NAME] {
        let find = |k: Kind| {
            variants
                .iter()
                .find(|v| v.group == group && v.kind == k)
                .expect("variant")
        };
        for (num, den, target) in ratios {
            let (a, b) = (find(num), find(den));
            let ratio = a.median().zip(b.median()).map(|(x, y)| x / y);
            let per_round: Vec<String> = a
                .per_round
                .iter()
                .zip(&b.per_round)
                .map(|(x, y)| fmt_opt(x.zip(*y).map(|(x, y)| x / y), 2))
                .collect();
            let verdict = match ratio {
                Some(r) if r >= target => "meets",
                Some(_) => "below",
                None => "n/a",
            };
            println!(
                "{group:6}  {:12} / {:12} = {:>5}x  [{}]  target >= {target:.1}x: {verdict}",
                num.name(),
                den.name(),
                fmt_opt(ratio, 2),
                per_round.join(", ")
            );
        }
    }
}

fn report_pool(variants: &[Variant]) {
    println!();
    println!(
        "== pool medians (clean runs only; {POOL_PACKETS} packets of {POOL_BUFFER_BYTES} B, \
         cache size {POOL_CACHE_SIZE}) =="
    );
    print_medians(variants);
    println!();
    println!("== pool vs target: <= 10 ns per uncontended allocate+free (informational) ==");
    for v in variants {
        if matches!(v.kind, Kind::PoolDirect | Kind::PoolCached) {
            let verdict = match v.median() {
                Some(m) if m <= 10.0 => "meets",
                Some(_) => "below",
                None => "n/a",
            };
            println!(
                "{:24} median {:>6} ns/pair  target <= 10 ns: {verdict}",
                v.kind.name(),
                fmt_opt(v.median(), 2)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (default_rounds, default_items, default_pairs) = if full {
        (3, 100_000_000, 10_000_000)
    } else {
        (1, 200_000, 100_000)
    };
    let rounds = env_u64("VNIC_BENCH_ROUNDS", default_rounds).max(1) as u32;
    let items = env_u64("VNIC_BENCH_ITEMS", default_items).max(1);
    let pairs = env_u64("VNIC_BENCH_POOL_PAIRS", default_pairs).max(1);

    // Captured once, before anything is pinned: get_core_ids() returns the calling thread's
    // affinity mask, so asking again after pinning would see one CPU (rings.md §4.1).
    let core_ids = core_affinity::get_core_ids().unwrap_or_default();
    if core_ids.len() < 2 {
        println!(
            "rings bench: needs 2 CPUs, found {}; nothing measured",
            core_ids.len()
        );
        return;
    }
    let cores = [core_ids[0], core_ids[1]];
    println!(
        "rings bench: {} mode, rounds {rounds}, u32 items/run {items}, desc16 items/run {}, \
         capacity {CAPACITY}, batch {BATCH}, pool pairs {pairs}",
        if full {
            "full"
        } else {
            "quick (no --bench arg)"
        },
        (items / 4).max(1)
    );
    println!(
        "producer pinned to core {}, consumer to core {} (of {} available); \
         guard: cpu time >= {CPU_SHARE_MIN} x threads x wall",
        cores[0].id,
        cores[1].id,
        core_ids.len()
    );
    println!();
    let t0 = Instant::now();
    let mut rings: Vec<Variant> = Kind::RINGS
        .iter()
        .map(|&k| Variant::new::<u32>(u32::NAME, k, items))
        .chain(Kind::RINGS.iter().map(|&k| {
            Variant::new::<PacketDescriptor>(PacketDescriptor::NAME, k, (items / 4).max(1))
        }))
        .collect();
    run_rounds(&mut rings, cores, rounds);
    report_rings(&rings);

    println!();
    let mut pool: Vec<Variant> = Kind::POOL
        .iter()
        .map(|&k| Variant::new::<u32>("pool", k, pairs))
        .collect();
    run_rounds(&mut pool, cores, rounds);
    report_pool(&pool);
    println!();
    println!("total bench time {:.1} s", t0.elapsed().as_secs_f64());
}
