//! The simulated hardware port: [`SimPort`] (the NIC's [`HardwarePort`]) and [`WireEnd`] (the
//! network actor's side), joined by a lock-free hand-off made of ndk-model's SPSC ring.
//!
//! ```text
//!  VirtualEthernet<SimPort>                      network actor (SimVmnet)
//!   write_frames ─► Tx Ring<[u8; 32]> (bytes) ─► WireEnd::pop_tx / with_tx   (doorbell)
//!   read_frames  ◄─ Rx Ring<[u8; 32]> (bytes) ◄─ WireEnd::push_rx            (readiness)
//!   poll_event   ◄─ event Ring<u32>           ◄─ WireEnd::set_link / push_event
//!   start / stop ─► started flag              ─► WireEnd::is_started
//! ```
//!
//! Each frame ring carries the frames' bytes in place, one fixed-size record per frame
//! (`channel.rs`), so the per-frame cost is the two copies and the per-batch cost one
//! `Release` publish and one `Acquire` read of the peer's index; no pool ownership steps.
//!
//! Both halves are `Send`: the actor may run on another thread (threaded mode) or in the
//! same thread under a deterministic scheduler. Nothing here locks on the datapath; the only
//! mutexes hold the two notifiers and are taken only to ring one. A ring happens only when
//! the receiving side found its ring empty and armed the ring's need-wakeup flag since the
//! last ring (the AF_XDP pattern ndk-model's ring implements), so a busy wire rings rarely
//! and never per frame, and no wakeup is lost (`tests/loom_wire.rs`).
//!
//! # Semantics (vmnet.md §1.3, §1.8, §7(a))
//! - [`HardwarePort::write_frames`] checks, in order: started ([`WriteError::NotStarted`]),
//!   `max_packets_per_call` ([`WriteError::TooManyPackets`]), `max_bytes_per_call`
//!   ([`WriteError::TooManyBytes`]), `max_packet_size_bytes` ([`WriteError::PacketTooBig`]),
//!   runts shorter than the 14-byte Ethernet header ([`WriteError::Failed`]: the driver's
//!   `WriteError` has no runt variant; what vmnet does with a runt is UNCONFIRMED, vmnet.md
//!   is silent on it), then
//!   the injected faults of [`PortFaults`] (failure, too-big, busy, in that order, each drawn
//!   from the port's [`SimRng`] only when its rate is non-zero), then room: a batch the Tx
//!   ring cannot take whole is refused as [`WriteError::Busy`] (`VMNET_BUFFER_EXHAUSTED`) and
//!   nothing is taken. Every refused frame is counted under exactly one reason
//!   ([`SimPortCounters`]), so `frames_offered == frames_accepted + frames_refused()`.
//! - [`HardwarePort::read_frames`] never blocks, moves at most `max_packets_per_call` frames
//!   and `max_bytes_per_call` bytes, and stops before a frame larger than its buffer (an
//!   error, [`ReadError::BufferTooSmall`], only when that frame is the first; it stays).
//!   An injected failure ([`ReadError::Failed`]) is drawn only when a frame is waiting.
//! - [`HardwarePort::stop`] discards nothing: frames stay in both rings (the actor may still
//!   pop Tx frames written before the stop). A stopped port refuses reads and writes.
//! - The port copies bytes at its boundary; pool handles never cross it. Steady state
//!   allocates nothing.

mod channel;
mod sync;

use std::sync::Arc;

use ndk_model::notify::Notifier;
use ndk_model::ring::{Consumer, Producer, PushError, Ring, RingConfig, RingError};
use vnic_driver::port::{
    HardwarePort, PortEvent, PortInfo, ReadError, StartError, WriteError, ETHERNET_HEADER_BYTES,
};

use crate::faults::PortFaults;
use crate::rng::SimRng;

use channel::{frame_channel, ChannelError, FrameReceiver, FrameSender};
use sync::{AtomicBool, Mutex, Ordering};

/// Ring capacities of a wire, in frames (events for `events_max`). Each must be a power of
/// two; `tx_frames_max` must also hold one full write (`max_packets_per_call`). A frame ring
/// holds one record of 32-byte blocks per frame (the next power of two above the frame size
/// plus one block), so a ring of `frames × record` blocks must fit ndk-model's largest ring
/// (2²⁴ blocks: 262 144 frames of 1514 bytes, 32 768 of 9014), else [`WireError::Ring`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireConfig {
    /// Tx ring capacity: frames the driver may have written that the actor has not popped.
    pub tx_frames_max: u32,
    /// Rx ring capacity: frames the actor may have pushed that the driver has not read.
    pub rx_frames_max: u32,
    /// Event ring capacity.
    pub events_max: u32,
}

impl Default for WireConfig {
    /// 1024 Tx frames, 1024 Rx frames, 64 events.
    fn default() -> Self {
        Self {
            tx_frames_max: 1024,
            rx_frames_max: 1024,
            events_max: 64,
        }
    }
}

/// Why [`wire`] could not build a wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A capacity is zero or not a power of two.
    #[error("{name} = {value} is not a power of two ≥ 1")]
    BadCapacity {
        /// The [`WireConfig`] field.
        name: &'static str,
        /// Its value.
        value: u32,
    },
    /// The Tx ring cannot hold one full write, so a full write would be refused forever.
    #[error("tx_frames_max {tx_frames_max} is below max_packets_per_call {max_packets_per_call}")]
    TxRingBelowBatch {
        /// The Tx ring capacity asked for.
        tx_frames_max: u32,
        /// The port's per-call packet limit.
        max_packets_per_call: usize,
    },
    /// The port parameters are unusable: a zero limit, a packet size with no room for a
    /// header, or a byte limit below one packet.
    #[error("the port parameters are unusable")]
    BadPortInfo,
    /// A ring could not be created (also: a frame ring of `frames × record` blocks would
    /// exceed the ring's largest capacity).
    #[error(transparent)]
    Ring(RingError),
}

/// [`WireEnd::push_rx`] refused the frame; nothing was queued (named for its common case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RxFull {
    /// The Rx ring is full: the driver has not read fast enough (backpressure).
    #[error("the rx ring is full")]
    Full,
    /// The frame is longer than the port's `max_packet_size_bytes`.
    #[error("a {len_bytes}-byte frame exceeds the port's packet size")]
    TooBig {
        /// The frame's length.
        len_bytes: usize,
    },
}

/// [`WireEnd::push_event`] refused the event: the event ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event ring is full")]
pub struct EventsFull(
    /// The event that was not queued.
    pub PortEvent,
);

/// What the driver side did, for conservation checks.
///
/// Write side: `frames_offered == frames_accepted + frames_refused()`; accepted frames are
/// either popped by the [`WireEnd`] ([`WireCounters::tx_frames_popped`]) or still in the Tx
/// ring ([`WireEnd::tx_queued`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimPortCounters {
    /// `write_frames` calls.
    pub write_calls: u64,
    /// Frames offered to `write_frames`, accepted or not.
    pub frames_offered: u64,
    /// Frames accepted into the Tx ring.
    pub frames_accepted: u64,
    /// Bytes accepted into the Tx ring.
    pub bytes_accepted: u64,
    /// Frames refused because the port was not started.
    pub frames_refused_not_started: u64,
    /// Frames refused by the per-call packet or byte limit.
    pub frames_refused_limits: u64,
    /// Frames refused because one of their batch exceeded `max_packet_size_bytes`.
    pub frames_refused_too_big: u64,
    /// Frames refused because one of their batch was a runt (< 14 bytes).
    pub frames_refused_runt: u64,
    /// Frames refused because the Tx ring lacked room for the whole batch.
    pub frames_refused_busy: u64,
    /// Frames refused by an injected `Busy`.
    pub frames_injected_busy: u64,
    /// Frames refused by an injected `PacketTooBig`.
    pub frames_injected_too_big: u64,
    /// Frames refused by an injected write `Failed`.
    pub frames_injected_failure: u64,
    /// Frames refused because the hand-off itself failed (impossible in-process).
    pub frames_refused_internal: u64,
    /// Tx doorbells rung.
    pub doorbells_rung: u64,
    /// `read_frames` calls.
    pub read_calls: u64,
    /// Frames read by the driver.
    pub frames_read: u64,
    /// Bytes read by the driver.
    pub bytes_read: u64,
    /// Reads refused because the port was not started.
    pub reads_not_started: u64,
    /// Reads refused with `BufferTooSmall`.
    pub reads_buffer_too_small: u64,
    /// Reads failed by injection.
    pub reads_injected_failure: u64,
    /// Reads failed because the hand-off itself failed (impossible in-process).
    pub reads_internal_failure: u64,
    /// Events handed to the driver.
    pub events_polled: u64,
    /// Event words that decoded to nothing (impossible in-process).
    pub events_invalid: u64,
}

impl SimPortCounters {
    /// Frames refused, over every reason.
    pub fn frames_refused(&self) -> u64 {
        self.frames_refused_not_started
            + self.frames_refused_limits
            + self.frames_refused_too_big
            + self.frames_refused_runt
            + self.frames_refused_busy
            + self.frames_injected_busy
            + self.frames_injected_too_big
            + self.frames_injected_failure
            + self.frames_refused_internal
    }
}

/// What the network side did.
///
/// Rx side: frames pushed are either read by the driver ([`SimPortCounters::frames_read`])
/// or still in the Rx ring ([`WireEnd::rx_queued`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireCounters {
    /// Tx frames popped (consumed) by the actor.
    pub tx_frames_popped: u64,
    /// Tx bytes popped by the actor.
    pub tx_bytes_popped: u64,
    /// Rx frames queued for the driver.
    pub rx_frames_pushed: u64,
    /// Rx bytes queued for the driver.
    pub rx_bytes_pushed: u64,
    /// Rx frames refused: ring full.
    pub rx_refused_full: u64,
    /// Rx frames refused: longer than the port's packet size.
    pub rx_refused_too_big: u64,
    /// Events queued (including the ones [`WireEnd::set_link`] queues).
    pub events_pushed: u64,
    /// Events refused: event ring full.
    pub events_refused_full: u64,
    /// Readiness notifications rung.
    pub readiness_rung: u64,
    /// Hand-off failures (a corrupt ring or record; impossible in-process).
    pub internal_errors: u64,
}

/// State both halves see.
#[derive(Debug)]
struct Shared {
    started: AtomicBool,
    link_up: AtomicBool,
    /// The driver's readiness notifier (set by [`SimPort`], rung by [`WireEnd`]).
    readiness: Mutex<Option<Arc<dyn Notifier>>>,
    /// The actor's doorbell (set by [`WireEnd`], rung by [`SimPort`]).
    doorbell: Mutex<Option<Arc<dyn Notifier>>>,
}

fn ring_slot(slot: &Mutex<Option<Arc<dyn Notifier>>>) -> bool {
    let notifier = match slot.lock() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    notifier.is_some_and(|n| {
        n.notify();
        true
    })
}

fn store_slot(slot: &Mutex<Option<Arc<dyn Notifier>>>, notifier: Arc<dyn Notifier>) {
    match slot.lock() {
        Ok(mut guard) => *guard = Some(notifier),
        Err(poisoned) => *poisoned.into_inner() = Some(notifier),
    }
}

/// The driver side of a simulated wire: a [`HardwarePort`] with vmnet's semantics.
#[derive(Debug)]
pub struct SimPort {
    info: PortInfo,
    shared: Arc<Shared>,
    tx: FrameSender,
    rx: FrameReceiver,
    events: Consumer<u32>,
    faults: PortFaults,
    rng: SimRng,
    has_readiness: bool,
    counters: SimPortCounters,
}

/// The network side of a simulated wire (the actor's view of one vmnet interface).
#[derive(Debug)]
pub struct WireEnd {
    info: PortInfo,
    shared: Arc<Shared>,
    tx: FrameReceiver,
    rx: FrameSender,
    events: Producer<u32>,
    has_doorbell: bool,
    counters: WireCounters,
}

fn check_capacity(name: &'static str, value: u32) -> Result<(), WireError> {
    if value == 0 || !value.is_power_of_two() {
        return Err(WireError::BadCapacity { name, value });
    }
    Ok(())
}

/// Builds a wire: the driver's [`SimPort`] and the actor's [`WireEnd`]. The port starts
/// stopped with the link up; faults are drawn from `rng`.
///
/// # Errors
/// [`WireError`].
pub fn wire(
    info: PortInfo,
    config: WireConfig,
    faults: PortFaults,
    rng: SimRng,
) -> Result<(SimPort, WireEnd), WireError> {
    check_capacity("tx_frames_max", config.tx_frames_max)?;
    check_capacity("rx_frames_max", config.rx_frames_max)?;
    check_capacity("events_max", config.events_max)?;
    if info.max_packets_per_call == 0
        || info.max_packet_size_bytes <= ETHERNET_HEADER_BYTES
        || info.max_bytes_per_call < info.max_packet_size_bytes
    {
        return Err(WireError::BadPortInfo);
    }
    if (config.tx_frames_max as usize) < info.max_packets_per_call {
        return Err(WireError::TxRingBelowBatch {
            tx_frames_max: config.tx_frames_max,
            max_packets_per_call: info.max_packets_per_call,
        });
    }
    let (tx_send, tx_recv) = frame_channel(
        config.tx_frames_max,
        info.max_packet_size_bytes,
        info.max_packets_per_call,
    )?;
    let (rx_send, rx_recv) = frame_channel(config.rx_frames_max, info.max_packet_size_bytes, 1)?;
    let events =
        Ring::<u32>::new(RingConfig::with_capacity(config.events_max)).map_err(WireError::Ring)?;
    let shared = Arc::new(Shared {
        started: AtomicBool::new(false),
        link_up: AtomicBool::new(true),
        readiness: Mutex::new(None),
        doorbell: Mutex::new(None),
    });
    let port = SimPort {
        info,
        shared: Arc::clone(&shared),
        tx: tx_send,
        rx: rx_recv,
        events: events.consumer().map_err(WireError::Ring)?,
        faults,
        rng,
        has_readiness: false,
        counters: SimPortCounters::default(),
    };
    let end = WireEnd {
        info,
        shared,
        tx: tx_recv,
        rx: rx_send,
        events: events.producer().map_err(WireError::Ring)?,
        has_doorbell: false,
        counters: WireCounters::default(),
    };
    Ok((port, end))
}

const EVENT_KIND_SHIFT: u32 = 30;
const EVENT_VALUE_MASK: u32 = (1 << EVENT_KIND_SHIFT) - 1;
const EVENT_LINK_UP: u32 = 0;
const EVENT_LINK_DOWN: u32 = 1;
const EVENT_STOPPED: u32 = 2;
const EVENT_PACKETS_AVAILABLE: u32 = 3;

/// Packs an event into a ring word: kind in the top two bits, a `PacketsAvailable` estimate
/// (clamped to 2³⁰ − 1) in the rest.
fn encode_event(event: PortEvent) -> u32 {
    match event {
        PortEvent::LinkUp => EVENT_LINK_UP << EVENT_KIND_SHIFT,
        PortEvent::LinkDown => EVENT_LINK_DOWN << EVENT_KIND_SHIFT,
        PortEvent::Stopped => EVENT_STOPPED << EVENT_KIND_SHIFT,
        PortEvent::PacketsAvailable { estimate } => {
            let value = u32::try_from(estimate)
                .unwrap_or(u32::MAX)
                .min(EVENT_VALUE_MASK);
            (EVENT_PACKETS_AVAILABLE << EVENT_KIND_SHIFT) | value
        }
    }
}

fn decode_event(word: u32) -> Option<PortEvent> {
    let value = word & EVENT_VALUE_MASK;
    match word >> EVENT_KIND_SHIFT {
        EVENT_LINK_UP if value == 0 => Some(PortEvent::LinkUp),
        EVENT_LINK_DOWN if value == 0 => Some(PortEvent::LinkDown),
        EVENT_STOPPED if value == 0 => Some(PortEvent::Stopped),
        EVENT_PACKETS_AVAILABLE => Some(PortEvent::PacketsAvailable {
            estimate: value as usize,
        }),
        _ => None,
    }
}

impl SimPort {
    /// A copy of the counters.
    pub fn counters(&self) -> SimPortCounters {
        self.counters
    }

    /// Frames waiting in the Rx ring for the driver to read.
    pub fn rx_queued(&self) -> usize {
        self.rx.queued()
    }

    fn draw(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.chance_ppm(ppm)
    }

    /// Checks a write; `Ok` with its bytes, or `Err` with the reason (the counter charged).
    fn check_write(&mut self, frames: &[&[u8]]) -> Result<usize, WriteError> {
        let n = frames.len() as u64;
        let c = &mut self.counters;
        if !self.shared.started.load(Ordering::Acquire) {
            c.frames_refused_not_started += n;
            return Err(WriteError::NotStarted);
        }
        if frames.len() > self.info.max_packets_per_call {
            c.frames_refused_limits += n;
            return Err(WriteError::TooManyPackets {
                count: frames.len(),
            });
        }
        // One scan for the three per-frame facts; they are still judged in the order above.
        let mut bytes = 0usize;
        let mut too_big = None;
        let mut runt = false;
        for (index, f) in frames.iter().enumerate() {
            bytes += f.len();
            if f.len() > self.info.max_packet_size_bytes {
                too_big = too_big.or(Some(index));
            }
            runt |= f.len() < ETHERNET_HEADER_BYTES;
        }
        if bytes > self.info.max_bytes_per_call {
            c.frames_refused_limits += n;
            return Err(WriteError::TooManyBytes { bytes });
        }
        if let Some(index) = too_big {
            c.frames_refused_too_big += n;
            return Err(WriteError::PacketTooBig { index });
        }
        if runt {
            c.frames_refused_runt += n;
            return Err(WriteError::Failed);
        }
        if frames.is_empty() {
            return Ok(0);
        }
        let faults = self.faults;
        if self.draw(faults.failure_ppm) {
            self.counters.frames_injected_failure += n;
            return Err(WriteError::Failed);
        }
        if self.draw(faults.too_big_ppm) {
            self.counters.frames_injected_too_big += n;
            return Err(WriteError::PacketTooBig { index: 0 });
        }
        if self.draw(faults.busy_ppm) {
            self.counters.frames_injected_busy += n;
            return Err(WriteError::Busy);
        }
        Ok(bytes)
    }
}

impl HardwarePort for SimPort {
    fn info(&self) -> PortInfo {
        self.info
    }

    fn start(&mut self) -> Result<(), StartError> {
        self.shared.started.store(true, Ordering::Release);
        Ok(())
    }

    fn stop(&mut self) {
        self.shared.started.store(false, Ordering::Release);
    }

    fn is_link_up(&self) -> bool {
        self.shared.started.load(Ordering::Acquire) && self.shared.link_up.load(Ordering::Acquire)
    }

    fn write_frames(&mut self, frames: &[&[u8]]) -> Result<usize, WriteError> {
        self.counters.write_calls += 1;
        self.counters.frames_offered += frames.len() as u64;
        let bytes = self.check_write(frames)?;
        if frames.is_empty() {
            return Ok(0);
        }
        let n = frames.len() as u64;
        match self.tx.send_all(frames) {
            Ok(true) => {}
            Ok(false) => {
                self.counters.frames_refused_busy += n;
                return Err(WriteError::Busy);
            }
            Err(ChannelError::Corrupted) => {
                self.counters.frames_refused_internal += n;
                return Err(WriteError::Failed);
            }
        }
        self.counters.frames_accepted += n;
        self.counters.bytes_accepted += bytes as u64;
        if self.tx.take_wakeup() && ring_slot(&self.shared.doorbell) {
            self.counters.doorbells_rung += 1;
        }
        Ok(frames.len())
    }

    fn read_frames(
        &mut self,
        bufs: &mut [&mut [u8]],
        lens: &mut [usize],
    ) -> Result<usize, ReadError> {
        self.counters.read_calls += 1;
        if !self.shared.started.load(Ordering::Acquire) {
            self.counters.reads_not_started += 1;
            return Err(ReadError::NotStarted);
        }
        let max = bufs
            .len()
            .min(lens.len())
            .min(self.info.max_packets_per_call);
        if max == 0 {
            return Ok(0);
        }
        let mut ready = self.rx.ready(1);
        if ready == Ok(0) && self.has_readiness {
            ready = self.rx.arm();
        }
        match ready {
            Ok(0) => return Ok(0),
            Ok(_) => {}
            Err(_) => {
                self.counters.reads_internal_failure += 1;
                return Err(ReadError::Failed);
            }
        }
        if self.draw(self.faults.failure_ppm) {
            self.counters.reads_injected_failure += 1;
            return Err(ReadError::Failed);
        }
        let Ok(outcome) = self.rx.recv_into(
            &mut bufs[..max],
            &mut lens[..max],
            self.info.max_bytes_per_call,
        ) else {
            self.counters.reads_internal_failure += 1;
            return Err(ReadError::Failed);
        };
        if outcome.corrupted {
            self.counters.reads_internal_failure += 1;
        }
        self.counters.frames_read += outcome.frames as u64;
        self.counters.bytes_read += outcome.bytes as u64;
        if let Some(needed_bytes) = outcome.too_small_bytes {
            self.counters.reads_buffer_too_small += 1;
            return Err(ReadError::BufferTooSmall { needed_bytes });
        }
        Ok(outcome.frames)
    }

    fn poll_event(&mut self) -> Option<PortEvent> {
        // Bounded by the ring's capacity: each turn pops one word.
        for _ in 0..self.events.capacity() {
            let word = self.events.pop().ok().flatten()?;
            if let Some(event) = decode_event(word) {
                self.counters.events_polled += 1;
                return Some(event);
            }
            self.counters.events_invalid += 1;
        }
        None
    }

    fn set_readiness(&mut self, notifier: Arc<dyn Notifier>) {
        let pending = self.rx.queued() > 0 || !self.events.ring().is_empty();
        if pending {
            notifier.notify();
        }
        store_slot(&self.shared.readiness, notifier);
        self.has_readiness = true;
    }
}

impl WireEnd {
    /// The port's parameters.
    pub fn info(&self) -> PortInfo {
        self.info
    }

    /// A copy of the counters.
    pub fn counters(&self) -> WireCounters {
        self.counters
    }

    /// Whether the driver last asked for the port to be started (and no
    /// [`PortEvent::Stopped`] was pushed since).
    pub fn is_started(&self) -> bool {
        self.shared.started.load(Ordering::Acquire)
    }

    /// Frames the driver wrote that are still waiting in the Tx ring.
    pub fn tx_queued(&self) -> usize {
        self.tx.queued()
    }

    /// Frames pushed that the driver has not read yet.
    pub fn rx_queued(&self) -> usize {
        self.rx.queued()
    }

    /// Free Rx slots: how many more frames [`WireEnd::push_rx`] would take now.
    pub fn rx_free(&mut self) -> usize {
        self.rx.free()
    }

    /// The doorbell the port rings when it queues Tx frames for an actor that found the ring
    /// empty, so a network thread can sleep on it. Rung once at once if frames are waiting.
    pub fn set_doorbell(&mut self, n: Arc<dyn Notifier>) {
        if self.tx.queued() > 0 {
            n.notify();
        }
        store_slot(&self.shared.doorbell, n);
        self.has_doorbell = true;
    }

    /// Tx ring empty: arm the doorbell (when one is set) and re-check.
    fn tx_ready(&mut self) -> bool {
        let ready = match self.tx.ready(1) {
            Ok(0) if self.has_doorbell => self.tx.arm(),
            other => other,
        };
        ready.unwrap_or_else(|_| {
            self.counters.internal_errors += 1;
            0
        }) > 0
    }

    /// Hands the next Tx frame to `f` without copying; consumes it only if `f` returns
    /// `true` (so a frame vmnet refused with `BUFFER_EXHAUSTED` can stay first in line).
    /// `None`: no frame waiting.
    pub fn with_tx(&mut self, f: impl FnOnce(&[u8]) -> bool) -> Option<bool> {
        if !self.tx_ready() {
            return None;
        }
        let mut len = 0;
        let result = self.tx.with_front(|frame| {
            len = frame.len();
            let consume = f(frame);
            (consume, consume)
        });
        match result {
            Ok(Some(consumed)) => {
                if consumed {
                    self.counters.tx_frames_popped += 1;
                    self.counters.tx_bytes_popped += len as u64;
                }
                Some(consumed)
            }
            Ok(None) => None,
            Err(_) => {
                self.counters.internal_errors += 1;
                None
            }
        }
    }

    /// Pops the next Tx frame into `out` (cleared first; it keeps its capacity). `false`:
    /// no frame waiting.
    pub fn pop_tx(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        self.with_tx(|frame| {
            out.extend_from_slice(frame);
            true
        })
        .is_some()
    }

    /// The length of the next Tx frame, if one is waiting.
    pub fn peek_tx_len(&mut self) -> Option<usize> {
        if !self.tx_ready() {
            return None;
        }
        self.tx
            .with_front(|frame| (false, frame.len()))
            .unwrap_or_else(|_| {
                self.counters.internal_errors += 1;
                None
            })
    }

    fn ring_readiness(&mut self) {
        if ring_slot(&self.shared.readiness) {
            self.counters.readiness_rung += 1;
        }
    }

    /// Queues a frame for the NIC to read and, if the port found its Rx ring empty since the
    /// last ring, signals the port's readiness notifier.
    ///
    /// # Errors
    /// [`RxFull::Full`] when the Rx ring is full (backpressure), [`RxFull::TooBig`] for a
    /// frame longer than `max_packet_size_bytes`; either way nothing is queued.
    pub fn push_rx(&mut self, frame: &[u8]) -> Result<(), RxFull> {
        if frame.len() > self.info.max_packet_size_bytes {
            self.counters.rx_refused_too_big += 1;
            return Err(RxFull::TooBig {
                len_bytes: frame.len(),
            });
        }
        match self.rx.send_all(std::slice::from_ref(&frame)) {
            Ok(true) => {}
            Ok(false) => {
                self.counters.rx_refused_full += 1;
                return Err(RxFull::Full);
            }
            Err(_) => {
                // Impossible in-process; reported as a full ring so the caller counts a drop.
                self.counters.internal_errors += 1;
                self.counters.rx_refused_full += 1;
                return Err(RxFull::Full);
            }
        }
        self.counters.rx_frames_pushed += 1;
        self.counters.rx_bytes_pushed += frame.len() as u64;
        if self.rx.take_wakeup() {
            self.ring_readiness();
        }
        Ok(())
    }

    /// Queues an event for the driver and signals readiness. `LinkUp`/`LinkDown` also set the
    /// link state the port reports; `Stopped` also clears the started flag (vmnet stopped
    /// the interface; the driver must start it again).
    ///
    /// # Errors
    /// [`EventsFull`] (with the event) when the event ring is full; the state change above
    /// still applies.
    pub fn push_event(&mut self, e: PortEvent) -> Result<(), EventsFull> {
        match e {
            PortEvent::LinkUp => self.shared.link_up.store(true, Ordering::Release),
            PortEvent::LinkDown => self.shared.link_up.store(false, Ordering::Release),
            PortEvent::Stopped => self.shared.started.store(false, Ordering::Release),
            PortEvent::PacketsAvailable { .. } => {}
        }
        let result = match self.events.push(encode_event(e)) {
            Ok(()) => {
                self.counters.events_pushed += 1;
                Ok(())
            }
            Err(PushError::Full(_)) => {
                self.counters.events_refused_full += 1;
                Err(EventsFull(e))
            }
            Err(PushError::Corrupted(..)) => {
                self.counters.internal_errors += 1;
                Err(EventsFull(e))
            }
        };
        self.ring_readiness();
        result
    }

    /// Sets the link state [`HardwarePort::is_link_up`] reports and queues
    /// `LinkUp`/`LinkDown` (counted in [`WireCounters::events_refused_full`] if the event
    /// ring is full; the state still changes).
    pub fn set_link(&mut self, up: bool) {
        let event = if up {
            PortEvent::LinkUp
        } else {
            PortEvent::LinkDown
        };
        let _ = self.push_event(event);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_encoding() {
        for e in [
            PortEvent::LinkUp,
            PortEvent::LinkDown,
            PortEvent::Stopped,
            PortEvent::PacketsAvailable { estimate: 0 },
            PortEvent::PacketsAvailable { estimate: 77 },
        ] {
            assert_eq!(decode_event(encode_event(e)), Some(e));
        }
        assert_eq!(
            decode_event(encode_event(PortEvent::PacketsAvailable {
                estimate: usize::MAX
            })),
            Some(PortEvent::PacketsAvailable {
                estimate: EVENT_VALUE_MASK as usize
            })
        );
        assert_eq!(decode_event(1), None);
    }
}
