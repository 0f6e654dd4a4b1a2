//! [`VirtualEthernet`]: the NIC. It implements ndk-model's [`EthernetDriver`] overrides and
//! moves frames between the four NDK queues and a [`HardwarePort`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndk_model::error::IoReturn;
use ndk_model::ethernet::{EthernetDriver, LinkReporter, MacAddress, MULTICAST_LIST_MAX};
use ndk_model::link::{HardwareAssists, LinkStatus, MediaType};
use ndk_model::notify::Notifier;
use ndk_model::packet::{Packet, PacketView, PacketViewMut};
use ndk_model::pool::PacketBufferPool;
use ndk_model::queue::{
    DequeueError, RxCompletionQueue, RxSubmissionQueue, TxCompletionQueue, TxSubmissionQueue,
};
use ndk_model::ring::RingCorrupted;

use crate::counters::Counters;
use crate::port::{HardwarePort, PortEvent, PortInfo, WriteError, ETHERNET_HEADER_BYTES};

/// The most frames one Tx or Rx pass handles (and the largest per-call limit honoured).
pub const BATCH_FRAMES_MAX: usize = 256;

/// The most port events one [`VirtualEthernet::poll`] handles.
pub const EVENTS_PER_POLL_MAX: usize = 16;

type Batch = heapless::Vec<Packet, BATCH_FRAMES_MAX>;

/// What became of one Tx packet in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxFate {
    /// Written to the port (or, until the write is done, valid and waiting for it).
    Sent,
    /// Not from the Tx pool (impossible from our own queue).
    Foreign,
    /// Longer than the port's max packet size.
    TooBig,
    /// Shorter than an Ethernet header.
    Runt,
    /// The port refused its write: completes with this status (already counted).
    Failed(IoReturn),
}

/// The driver halves of the four NDK queues.
#[derive(Debug)]
pub struct DriverQueues {
    /// Frames to send (from the OS).
    pub tx_submission: TxSubmissionQueue,
    /// Sent frames back to the OS.
    pub tx_completion: TxCompletionQueue,
    /// Empty buffers posted by the OS.
    pub rx_submission: RxSubmissionQueue,
    /// Received frames to the OS.
    pub rx_completion: RxCompletionQueue,
}

/// How the NIC behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicConfig {
    /// How many times a busy write is retried (once per pass; the packets wait in the
    /// driver meanwhile) before its frames are dropped.
    pub tx_busy_retries_max: u32,
    /// The media reported with link status (and for `Auto`).
    pub media: MediaType,
}

impl Default for NicConfig {
    fn default() -> Self {
        Self {
            tx_busy_retries_max: 8,
            media: MediaType::ETHERNET_10GBASE_T,
        }
    }
}

/// Why [`VirtualEthernet::new`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NewError {
    /// Rx buffers cannot hold the port's largest frame.
    #[error("rx buffers of {buffer_size_bytes} B cannot hold {max_packet_size_bytes}-byte frames")]
    RxBufferTooSmall {
        /// The Rx pool's buffer size.
        buffer_size_bytes: usize,
        /// The port's max packet size.
        max_packet_size_bytes: usize,
    },
    /// The port's per-call limits or packet size are zero, or its packet size has no room
    /// for a header.
    #[error("the port's parameters are unusable")]
    BadPortInfo,
}

/// Why an MTU was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MtuError {
    /// MTU plus the 14-byte header exceeds the port's max packet size.
    #[error("MTU {mtu_bytes} + 14 exceeds the port's max packet size {max_packet_size_bytes}")]
    TooBig {
        /// The MTU asked for.
        mtu_bytes: u32,
        /// The port's max packet size.
        max_packet_size_bytes: usize,
    },
}

impl From<MtuError> for IoReturn {
    fn from(_: MtuError) -> Self {
        IoReturn::BadArgument
    }
}

/// Why a [`VirtualEthernet::poll`] pass failed: a queue ring is corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    /// A submission ring is corrupt.
    #[error(transparent)]
    Dequeue(#[from] DequeueError),
    /// A completion ring is corrupt.
    #[error(transparent)]
    Ring(#[from] RingCorrupted),
}

/// What one [`VirtualEthernet::poll`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Tx packets completed (sent or dropped).
    pub tx_completed: u32,
    /// Rx frames delivered.
    pub rx_delivered: u32,
    /// Rx frames read from the port (delivered or dropped).
    pub rx_read: u32,
    /// Port events handled.
    pub events: u32,
    /// Tx packets the driver holds after the pass to retry a busy port next pass (0 when
    /// Tx completion had no room, so the pass could not retry them: the OS must collect
    /// completions first).
    pub tx_held: u32,
}

impl PollOutcome {
    /// Whether the pass did nothing and left nothing to retry (a pass that holds Tx
    /// packets for a busy port is not idle: the next pass retries them, so a caller must
    /// not sleep on the waker, which a busy port does not ring).
    pub fn is_idle(&self) -> bool {
        self.tx_completed == 0 && self.rx_read == 0 && self.events == 0 && self.tx_held == 0
    }
}

/// How [`VirtualEthernet::run`] waits when a pass did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Sleep on the waker (port readiness and the Tx submission doorbell), at most this long
    /// per wait; the timeout also catches newly posted Rx buffers.
    Wait {
        /// The longest wait, in milliseconds.
        timeout_ms: u32,
    },
    /// Never sleep (stands in for `IOUserNetworkPacketPoller`).
    BusyPoll,
}

/// What [`VirtualEthernet::run`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Passes made.
    pub passes: u64,
    /// Passes that did nothing.
    pub idle_passes: u64,
}

/// **Models:** the driver's `IOUserNetworkEthernet` subclass of a virtual NIC whose wire is a
/// [`HardwarePort`] (vmnet on a Mac).
///
/// Tx: Tx submission → port (within its per-call limits) → Tx completion with a status.
/// Rx: Rx submission buffers ← port frames, address-filtered → Rx completion. With no posted
/// buffers it does not read: frames wait at the port. Every dropped frame is counted with a
/// reason ([`Counters`]).
#[derive(Debug)]
pub struct VirtualEthernet<P: HardwarePort> {
    port: P,
    info: PortInfo,
    config: NicConfig,
    tx_pool: PacketBufferPool,
    rx_pool: PacketBufferPool,
    queues: DriverQueues,
    rx_spare: Batch,
    /// Tx packets taken from Tx submission that the port refused as busy, oldest first.
    tx_held: Batch,
    /// Consecutive busy refusals of the first held write (across passes).
    tx_busy: u32,
    enabled: bool,
    port_stopped: bool,
    filter: RxFilter,
    mtu_bytes: u32,
    media: MediaType,
    counters: Counters,
}

/// The Rx address filter: own MAC and broadcast always; groups in the list, every group
/// with all-multicast, everything with promiscuous.
#[derive(Debug, Clone, Default)]
struct RxFilter {
    promiscuous: bool,
    all_multicast: bool,
    multicast: heapless::Vec<MacAddress, MULTICAST_LIST_MAX>,
}

impl RxFilter {
    /// Whether a frame to `dest` passes, for a NIC whose address is `own`.
    fn accepts(&self, dest: MacAddress, own: MacAddress) -> bool {
        self.promiscuous
            || dest == own
            || dest.is_broadcast()
            || (dest.is_multicast() && (self.all_multicast || self.multicast.contains(&dest)))
    }
}

impl<P: HardwarePort> VirtualEthernet<P> {
    /// A disabled NIC on `port`, driving the driver halves of `queues`.
    ///
    /// # Errors
    /// [`NewError`].
    pub fn new(port: P, queues: DriverQueues, config: NicConfig) -> Result<Self, NewError> {
        let info = port.info();
        if info.max_packets_per_call == 0
            || info.max_bytes_per_call < info.max_packet_size_bytes
            || info.max_packet_size_bytes <= ETHERNET_HEADER_BYTES
        {
            return Err(NewError::BadPortInfo);
        }
        let rx_pool = queues.rx_submission.pool().clone();
        let buffer_size_bytes = rx_pool.buffer_size_bytes() as usize;
        if buffer_size_bytes < info.max_packet_size_bytes {
            return Err(NewError::RxBufferTooSmall {
                buffer_size_bytes,
                max_packet_size_bytes: info.max_packet_size_bytes,
            });
        }
        Ok(Self {
            tx_pool: queues.tx_submission.pool().clone(),
            rx_pool,
            port,
            info,
            config,
            queues,
            rx_spare: Batch::new(),
            tx_held: Batch::new(),
            tx_busy: 0,
            enabled: false,
            port_stopped: false,
            filter: RxFilter::default(),
            mtu_bytes: info.mtu_bytes as u32,
            media: config.media,
            counters: Counters::default(),
        })
    }

    /// The station address (the port's).
    pub fn mac(&self) -> MacAddress {
        self.info.mac
    }

    /// The port's parameters.
    pub fn port_info(&self) -> PortInfo {
        self.info
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The port, to script it (fakes) or poke it.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// A copy of the counters.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    /// Whether the interface is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current MTU, in bytes.
    pub fn mtu_bytes(&self) -> u32 {
        self.mtu_bytes
    }

    /// Rx buffers the driver holds, taken from Rx submission and not yet filled.
    pub fn rx_buffers_held(&self) -> usize {
        self.rx_spare.len()
    }

    /// Tx packets the driver holds for a retry because the port was busy (taken from Tx
    /// submission, not yet written or completed).
    pub fn tx_packets_held(&self) -> usize {
        self.tx_held.len()
    }

    /// Checks an MTU against the port: `mtu_bytes + 14 <= max_packet_size_bytes`.
    ///
    /// # Errors
    /// [`MtuError::TooBig`].
    pub fn check_mtu(&self, mtu_bytes: u32) -> Result<(), MtuError> {
        if mtu_bytes as usize + ETHERNET_HEADER_BYTES > self.info.max_packet_size_bytes {
            return Err(MtuError::TooBig {
                mtu_bytes,
                max_packet_size_bytes: self.info.max_packet_size_bytes,
            });
        }
        Ok(())
    }

    fn report_link(&self, link: &mut LinkReporter, up: bool) {
        if !link.is_media_available(self.media) {
            // The list is never empty and has two entries: cannot fail.
            let _ = link.report_available_media_types(&[MediaType::ETHERNET_AUTO, self.media]);
        }
        let status = if up {
            LinkStatus::ACTIVE
        } else {
            LinkStatus::INACTIVE
        };
        // Media is available (above) and the status well formed: cannot fail.
        let _ = link.report_link_status(status, self.media);
    }

    fn set_queues_enabled(&self, enable: bool) {
        self.queues.tx_submission.set_enable(enable);
        self.queues.tx_completion.set_enable(enable);
        self.queues.rx_submission.set_enable(enable);
        self.queues.rx_completion.set_enable(enable);
    }

    /// One bounded pass: port events (turned into link reports on `link`), one Tx batch and
    /// one Rx batch. Does nothing while the interface is disabled. After the port reports
    /// [`PortEvent::Stopped`] it reads nothing, and Tx frames complete with
    /// `kIOReturnOffline` (counted as port errors), until the interface is enabled again.
    ///
    /// # Errors
    /// [`PollError`] if a queue ring is corrupt.
    pub fn poll(&mut self, link: &mut LinkReporter) -> Result<PollOutcome, PollError> {
        let mut outcome = PollOutcome::default();
        if !self.enabled {
            return Ok(outcome);
        }
        for _ in 0..EVENTS_PER_POLL_MAX {
            let Some(event) = self.port.poll_event() else {
                break;
            };
            outcome.events += 1;
            match event {
                PortEvent::LinkUp => self.report_link(link, true),
                PortEvent::LinkDown => self.report_link(link, false),
                PortEvent::Stopped => {
                    self.port_stopped = true;
                    self.report_link(link, false);
                }
                PortEvent::PacketsAvailable { .. } => {}
            }
        }
        (outcome.tx_completed, outcome.tx_held) = self.tx_pass()?;
        let (read, delivered) = if self.port_stopped {
            (0, 0)
        } else {
            self.rx_pass()?
        };
        outcome.rx_read = read;
        outcome.rx_delivered = delivered;
        Ok(outcome)
    }

    /// Moves one Tx batch; returns (packets completed, packets held to retry a busy port).
    ///
    /// Packets the port refused as busy stay with the driver
    /// ([`VirtualEthernet::tx_packets_held`]) and go first in the next pass, in order; the
    /// consecutive busy refusals are counted across passes and, past
    /// [`NicConfig::tx_busy_retries_max`], the write's frames are dropped (`dropped_busy`)
    /// and completed with `kIOReturnBusy`.
    fn tx_pass(&mut self) -> Result<(u32, u32), PollError> {
        let limit = BATCH_FRAMES_MAX.min(self.info.max_packets_per_call) as u32;
        // Every packet completed this pass needs a completion slot: held and new together.
        let room = self.queues.tx_completion.free_space()?.min(limit) as usize;
        if room == 0 {
            return Ok((0, 0));
        }
        let mut packets = core::mem::take(&mut self.tx_held);
        if packets.len() < room {
            let want = (room - packets.len()) as u32;
            self.queues
                .tx_submission
                .dequeue_packets(&mut packets, want)?;
        }
        if packets.is_empty() {
            return Ok((0, 0));
        }
        let k = packets.len().min(room);
        let mut fates: heapless::Vec<TxFate, BATCH_FRAMES_MAX> = heapless::Vec::new();
        let done = self.send(&packets[..k], &mut fates);
        let tx = &mut self.counters.tx;
        for (packet, fate) in packets[..done].iter_mut().zip(&fates) {
            let status = match *fate {
                TxFate::Sent => IoReturn::Success,
                TxFate::Foreign => IoReturn::BadArgument,
                TxFate::TooBig => {
                    tx.dropped_packet_too_big += 1;
                    IoReturn::Overrun
                }
                TxFate::Runt => {
                    tx.dropped_runt += 1;
                    IoReturn::BadArgument
                }
                TxFate::Failed(code) => code,
            };
            if let Ok(mut view) = self.tx_pool.packet_mut(packet) {
                view.set_completion_status(status);
            }
        }
        // The rest (not yet written: the port is busy) stay for the next pass, in order.
        for packet in packets.drain(done..) {
            // Cannot fail: `tx_held` was emptied above and has the batch's capacity.
            let _ = self.tx_held.push(packet);
        }
        self.queues.tx_completion.enqueue_packets(&mut packets);
        for lost in packets {
            // Cannot happen: `room` reserved the space. Counted, never silent.
            self.counters.tx.completions_lost += 1;
            let _ = self.tx_pool.deallocate(lost);
        }
        Ok((done as u32, self.tx_held.len() as u32))
    }

    /// Writes the frames of `packets` to the port and records each packet's fate in
    /// `fates` (index for index). Returns how many packets, from the front, are done (sent
    /// or failed); the others were not written because the port is busy and within the
    /// retry limit. Drops are counted here only for port refusals; the caller counts the
    /// validation drops of the done packets (a held packet is checked again next pass).
    fn send(
        &mut self,
        packets: &[Packet],
        fates: &mut heapless::Vec<TxFate, BATCH_FRAMES_MAX>,
    ) -> usize {
        let mut views: heapless::Vec<PacketView<'_>, BATCH_FRAMES_MAX> = heapless::Vec::new();
        let mut slot: heapless::Vec<u16, BATCH_FRAMES_MAX> = heapless::Vec::new();
        for (i, packet) in packets.iter().enumerate() {
            // A foreign packet, impossible from our own queue, completes with
            // `kIOReturnBadArgument`.
            let fate = match self.tx_pool.packet(packet) {
                Err(_) => TxFate::Foreign,
                Ok(view) => {
                    let data = view.data();
                    if data.len() > self.info.max_packet_size_bytes {
                        TxFate::TooBig
                    } else if data.len() < ETHERNET_HEADER_BYTES {
                        TxFate::Runt
                    } else {
                        // Cannot fail: `packets.len() <= BATCH_FRAMES_MAX`.
                        let _ = views.push(view);
                        let _ = slot.push(i as u16);
                        TxFate::Sent
                    }
                }
            };
            let _ = fates.push(fate);
        }
        let frames: heapless::Vec<&[u8], BATCH_FRAMES_MAX> =
            views.iter().map(PacketView::data).collect();
        let tx = &mut self.counters.tx;
        let mut pos = 0;
        // Bounded: each turn advances `pos` or ends the pass on a busy refusal.
        while pos < frames.len() {
            let mut end = pos;
            let mut bytes = 0;
            while end < frames.len()
                && end - pos < self.info.max_packets_per_call
                && bytes + frames[end].len() <= self.info.max_bytes_per_call
            {
                bytes += frames[end].len();
                end += 1;
            }
            tx.port_calls += 1;
            let result = self.port.write_frames(&frames[pos..end]);
            let (done, fail) = match result {
                Ok(k) if k > 0 => (k.min(end - pos), None),
                Ok(_) | Err(WriteError::Busy) => {
                    if self.tx_busy < self.config.tx_busy_retries_max {
                        // Retried next pass: this frame and every packet after it wait.
                        self.tx_busy += 1;
                        tx.busy_retries += 1;
                        return usize::from(slot[pos]);
                    }
                    tx.dropped_busy += (end - pos) as u64;
                    (end - pos, Some(IoReturn::Busy))
                }
                Err(WriteError::NotStarted) => {
                    tx.dropped_port_error += (end - pos) as u64;
                    (end - pos, Some(IoReturn::Offline))
                }
                Err(_) => {
                    tx.dropped_port_error += (end - pos) as u64;
                    (end - pos, Some(IoReturn::IoError))
                }
            };
            self.tx_busy = 0;
            if let Some(code) = fail {
                for &i in &slot[pos..pos + done] {
                    fates[usize::from(i)] = TxFate::Failed(code);
                }
            } else {
                tx.frames += done as u64;
                tx.bytes += frames[pos..pos + done]
                    .iter()
                    .map(|f| f.len() as u64)
                    .sum::<u64>();
            }
            pos += done;
        }
        packets.len()
    }

    /// Moves one Rx batch; returns (frames read, frames delivered).
    fn rx_pass(&mut self) -> Result<(u32, u32), PollError> {
        let limit = BATCH_FRAMES_MAX.min(self.info.max_packets_per_call) as u32;
        let room = self.queues.rx_completion.free_space()?.min(limit) as usize;
        if room == 0 {
            return Ok((0, 0));
        }
        if self.rx_spare.len() < room {
            let want = (room - self.rx_spare.len()) as u32;
            self.queues
                .rx_submission
                .dequeue_packets(&mut self.rx_spare, want)?;
        }
        let k = self.rx_spare.len().min(room);
        if k == 0 {
            // Backpressure: no buffers, so frames wait at the port.
            return Ok((0, 0));
        }
        let mut lens = [0usize; BATCH_FRAMES_MAX];
        let mut keep = [false; BATCH_FRAMES_MAX];
        let n = {
            // Views keep their packet's position (a foreign packet, impossible from our own
            // queue, gets an empty buffer and so no frame).
            let mut views: heapless::Vec<Option<PacketViewMut<'_>>, BATCH_FRAMES_MAX> = self
                .rx_spare[..k]
                .iter_mut()
                .map(|p| self.rx_pool.packet_mut(p).ok())
                .collect();
            let n = {
                let mut bufs: heapless::Vec<&mut [u8], BATCH_FRAMES_MAX> = views
                    .iter_mut()
                    .map(|v| v.as_mut().map_or(&mut [][..], PacketViewMut::buffer_mut))
                    .collect();
                self.counters.rx.port_calls += 1;
                if let Ok(n) = self.port.read_frames(&mut bufs, &mut lens[..k]) {
                    n.min(k)
                } else {
                    self.counters.rx.port_errors += 1;
                    0
                }
            };
            let rx = &mut self.counters.rx;
            // Summed here and added once: no store-to-load chain through the counters.
            let (mut frames, mut bytes) = (0u64, 0u64);
            for (i, view) in views.iter_mut().enumerate().take(n) {
                let Some(view) = view else {
                    continue;
                };
                let len = lens[i];
                if len < ETHERNET_HEADER_BYTES {
                    rx.dropped_runt += 1;
                    continue;
                }
                if len > self.info.max_packet_size_bytes {
                    rx.dropped_too_big += 1;
                    continue;
                }
                let mut dest = [0u8; 6];
                dest.copy_from_slice(&view.buffer()[..6]);
                if !self.filter.accepts(MacAddress(dest), self.info.mac) {
                    rx.dropped_filtered += 1;
                    continue;
                }
                if view.set_data_offset_and_length(0, len as u32).is_err() {
                    rx.dropped_too_big += 1;
                    continue;
                }
                view.set_link_header_length(ETHERNET_HEADER_BYTES as u8);
                keep[i] = true;
                frames += 1;
                bytes += len as u64;
            }
            rx.frames += frames;
            rx.bytes += bytes;
            n
        };
        if n == 0 {
            return Ok((0, 0));
        }
        let mut deliver = Batch::new();
        let spare = core::mem::take(&mut self.rx_spare);
        for (i, packet) in spare.into_iter().enumerate() {
            if keep[i] {
                let _ = deliver.push(packet);
            } else {
                // Dropped frames' buffers are reused for the next read.
                let _ = self.rx_spare.push(packet);
            }
        }
        let delivered = deliver.len() as u32;
        self.queues.rx_completion.enqueue_packets(&mut deliver);
        for refused in deliver {
            // Cannot happen: `room` reserved the space. Counted, never silent.
            self.counters.rx.completions_lost += 1;
            let _ = self.rx_spare.push(refused);
        }
        Ok((n as u32, delivered))
    }

    /// Returns every waiting Tx packet (unsent, counted as `dropped_disabled`) and every Rx
    /// buffer to the pool (interface disable). Bounded by the queues' capacities.
    fn drain(&mut self) {
        // Held packets (the port was busy) are unsent too.
        self.tx_busy = 0;
        self.counters.tx.dropped_disabled += self.tx_held.len() as u64;
        for packet in core::mem::take(&mut self.tx_held) {
            let _ = self.tx_pool.deallocate(packet);
        }
        let tx_rounds = self.queues.tx_submission.capacity() as usize / BATCH_FRAMES_MAX + 2;
        for _ in 0..tx_rounds {
            let mut packets = Batch::new();
            let n = self
                .queues
                .tx_submission
                .dequeue_packets(&mut packets, BATCH_FRAMES_MAX as u32)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            // The queues are about to be disabled, so the OS could not collect completions:
            // the packets go straight back to the pool, counted.
            self.counters.tx.dropped_disabled += u64::from(n);
            for packet in packets {
                let _ = self.tx_pool.deallocate(packet);
            }
        }
        for packet in core::mem::take(&mut self.rx_spare) {
            let _ = self.rx_pool.deallocate(packet);
        }
        let rx_rounds = self.queues.rx_submission.capacity() as usize / BATCH_FRAMES_MAX + 2;
        for _ in 0..rx_rounds {
            let mut packets = Batch::new();
            let n = self
                .queues
                .rx_submission
                .dequeue_packets(&mut packets, BATCH_FRAMES_MAX as u32)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            for packet in packets {
                let _ = self.rx_pool.deallocate(packet);
            }
        }
    }

    /// Runs passes until `stop` is set or `passes_max` passes are made. After an idle pass it
    /// waits on `waker` (in [`RunMode::Wait`]) or spins (in [`RunMode::BusyPoll`]). The port
    /// signals `waker` on readiness; the OS side should use it as its Tx submission doorbell.
    ///
    /// # Errors
    /// [`PollError`] from [`VirtualEthernet::poll`].
    pub fn run(
        &mut self,
        link: &mut LinkReporter,
        waker: &Arc<dyn Notifier>,
        stop: &AtomicBool,
        mode: RunMode,
        passes_max: u64,
    ) -> Result<RunReport, PollError> {
        self.port.set_readiness(Arc::clone(waker));
        let mut report = RunReport::default();
        while report.passes < passes_max && !stop.load(Ordering::Acquire) {
            let outcome = self.poll(link)?;
            report.passes += 1;
            if outcome.is_idle() {
                report.idle_passes += 1;
                match mode {
                    RunMode::Wait { timeout_ms } => {
                        self.queues
                            .tx_submission
                            .wait_for_packets(waker.as_ref(), timeout_ms)?;
                    }
                    RunMode::BusyPoll => std::hint::spin_loop(),
                }
            }
        }
        Ok(report)
    }
}

impl<P: HardwarePort> EthernetDriver for VirtualEthernet<P> {
    fn set_interface_enable(
        &mut self,
        link: &mut LinkReporter,
        enable: bool,
    ) -> Result<(), IoReturn> {
        if enable {
            self.port.start().map_err(|_| IoReturn::IoError)?;
            self.set_queues_enabled(true);
            self.enabled = true;
            self.port_stopped = false;
            let up = self.port.is_link_up();
            self.report_link(link, up);
        } else {
            self.drain();
            self.set_queues_enabled(false);
            self.port.stop();
            self.enabled = false;
            self.report_link(link, false);
        }
        Ok(())
    }

    fn set_promiscuous_mode_enable(&mut self, enable: bool) -> Result<(), IoReturn> {
        self.filter.promiscuous = enable;
        Ok(())
    }

    fn set_all_multicast_mode_enable(&mut self, enable: bool) -> Result<(), IoReturn> {
        self.filter.all_multicast = enable;
        Ok(())
    }

    fn set_multicast_addresses(&mut self, addresses: &[MacAddress]) -> Result<(), IoReturn> {
        self.filter.multicast =
            heapless::Vec::from_slice(addresses).map_err(|_| IoReturn::NoSpace)?;
        Ok(())
    }

    fn select_media(&mut self, link: &mut LinkReporter, media: MediaType) -> Result<(), IoReturn> {
        self.media = if media.is_auto() {
            self.config.media
        } else {
            media
        };
        let up = self.enabled && self.port.is_link_up();
        self.report_link(link, up);
        Ok(())
    }

    fn set_wake_on_magic_packet_enable(&mut self, _enable: bool) -> Result<(), IoReturn> {
        Err(IoReturn::Unsupported)
    }

    fn mtu_bytes_max(&self) -> u32 {
        (self.info.max_packet_size_bytes - ETHERNET_HEADER_BYTES) as u32
    }

    fn set_mtu(&mut self, mtu_bytes: u32) -> Result<(), IoReturn> {
        self.check_mtu(mtu_bytes)?;
        self.mtu_bytes = mtu_bytes;
        Ok(())
    }

    fn hardware_assists(&self) -> HardwareAssists {
        HardwareAssists::empty()
    }

    fn set_hardware_assists(
        &mut self,
        assists: HardwareAssists,
        mask: HardwareAssists,
    ) -> Result<(), IoReturn> {
        if (assists & mask).is_empty() {
            Ok(())
        } else {
            Err(IoReturn::Unsupported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 1]);
    const OTHER: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 2]);
    const GROUP: MacAddress = MacAddress([0x33, 0x33, 0, 0, 0, 1]);

    fn filter(promiscuous: bool, all_multicast: bool, list: &[MacAddress]) -> RxFilter {
        RxFilter {
            promiscuous,
            all_multicast,
            multicast: heapless::Vec::from_slice(list).unwrap(),
        }
    }

    #[test]
    fn address_filter() {
        assert!(filter(false, false, &[]).accepts(OWN, OWN));
        assert!(filter(false, false, &[]).accepts(MacAddress::BROADCAST, OWN));
        assert!(!filter(false, false, &[]).accepts(OTHER, OWN));
        assert!(filter(true, false, &[]).accepts(OTHER, OWN));
        assert!(!filter(false, false, &[]).accepts(GROUP, OWN));
        assert!(filter(false, false, &[GROUP]).accepts(GROUP, OWN));
        assert!(filter(false, true, &[]).accepts(GROUP, OWN));
        assert!(!filter(false, true, &[GROUP]).accepts(OTHER, OWN));
    }

    #[test]
    fn idle_outcome() {
        assert!(PollOutcome::default().is_idle());
        let busy = PollOutcome {
            events: 1,
            ..PollOutcome::default()
        };
        assert!(!busy.is_idle());
        let held = PollOutcome {
            tx_held: 3,
            ..PollOutcome::default()
        };
        assert!(!held.is_idle());
    }
}
