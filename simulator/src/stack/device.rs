//! [`NdkDevice`]: a smoltcp [`Device`] over the *system* halves of the four NDK queues.
//!
//! **Models:** the part of the kernel's network stack that feeds and drains an NDK Ethernet
//! interface: it posts empty buffers on Rx submission, takes received frames from Rx
//! completion, submits frames on Tx submission and collects them from Tx completion.
//!
//! - Rx: [`Device::receive`] takes one frame from Rx completion, copies it into a scratch
//!   buffer and frees the packet at once, so the pool never waits on smoltcp. At most the
//!   per-poll budget ([`NdkDevice::begin_poll`]) is taken per poll.
//! - Tx: [`Device::transmit`] hands out a token only if Tx submission has a free slot *and*
//!   the pool gives a packet; otherwise it returns `None` (backpressure: smoltcp keeps the
//!   data and retries) and counts why. A token smoltcp drops unused frees its packet.
//! - The reply token [`Device::receive`] must hand out (for ARP replies, echo replies and
//!   RSTs) cannot refuse: if it finds no packet or no slot when used, the reply is dropped and
//!   counted ([`StackCounters::tx_dropped_reply_no_packet`] /
//!   [`StackCounters::tx_dropped_reply_queue_full`]). The peer retries those.
//!
//! Every frame smoltcp accepted is either enqueued or counted as a drop with a reason.

use ndk_model::error::IoReturn;
use ndk_model::ethernet::SystemQueues;
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool};
use ndk_model::queue::{
    SystemRxCompletion, SystemRxSubmission, SystemTxCompletion, SystemTxSubmission,
};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetFrame, EthernetProtocol, IpProtocol,
    Ipv4Address, Ipv4Packet, UdpPacket,
};

/// Ethernet header bytes (smoltcp's `max_transmission_unit` is the IP MTU plus this).
pub const ETHERNET_HEADER_BYTES: usize = 14;

/// The UDP port a DHCP client listens on.
const DHCP_CLIENT_PORT: u16 = 68;

/// Counters of the OS stack's side of the queues. Plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(clippy::struct_field_names)]
pub struct StackCounters {
    /// Frames enqueued on Tx submission.
    pub tx_frames_submitted: u64,
    /// Bytes enqueued on Tx submission.
    pub tx_bytes: u64,
    /// `transmit()` refusals because the pool had no free packet (backpressure, not loss).
    pub tx_refused_no_packet: u64,
    /// `transmit()` refusals because Tx submission had no free slot (backpressure, not loss).
    pub tx_refused_queue_full: u64,
    /// Reply frames (ARP/ICMP replies, RSTs) dropped: no free packet when smoltcp wrote them.
    pub tx_dropped_reply_no_packet: u64,
    /// Reply frames dropped: Tx submission full when smoltcp wrote them.
    pub tx_dropped_reply_queue_full: u64,
    /// Frames dropped: longer than a pool buffer.
    pub tx_dropped_too_big: u64,
    /// Frames dropped: Tx submission refused a packet it had room for (disabled or corrupted).
    pub tx_dropped_enqueue_refused: u64,
    /// Tx completions collected (every status).
    pub tx_completed: u64,
    /// Tx completions whose status was not success.
    pub tx_completed_error: u64,
    /// ... of which `kIOReturnBusy` (port stayed busy).
    pub tx_completed_busy: u64,
    /// ... of which `kIOReturnOffline` (port not started).
    pub tx_completed_offline: u64,
    /// ... of which `kIOReturnOverrun` (frame too big for the port).
    pub tx_completed_overrun: u64,
    /// Frames taken from Rx completion and handed to smoltcp.
    pub rx_frames: u64,
    /// Bytes taken from Rx completion.
    pub rx_bytes: u64,
    /// Empty Rx buffers posted and not yet come back (in the driver's hands).
    pub rx_buffers_posted: u64,
    /// Empty Rx buffers posted, ever.
    pub rx_buffers_posted_total: u64,
    /// Reposts skipped: the pool had no free packet.
    pub rx_post_no_packet: u64,
    /// Reposts refused by Rx submission (full or disabled); the packet went back to the pool.
    pub rx_post_refused: u64,
    /// Doorbells rung after enqueueing Tx frames.
    pub doorbells_rung: u64,
    /// Frames freed unread after shutdown (filled by the owner of the device).
    pub rx_dropped_shutdown: u64,
}

/// A lease snooped from a DHCP ACK on its way to smoltcp (smoltcp's `Config` omits the lease
/// time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpAckSeen {
    /// `yiaddr` of the ACK.
    pub address: Ipv4Address,
    /// Option 51, in seconds, if present.
    pub lease_duration_s: Option<u32>,
}

#[derive(Debug)]
struct RxSide {
    completion: SystemRxCompletion,
    pool: PacketBufferPool,
    scratch: Vec<u8>,
    budget_frames: u32,
    last_dhcp_ack: Option<DhcpAckSeen>,
}

#[derive(Debug)]
struct TxSide {
    submission: SystemTxSubmission,
    pool: PacketBufferPool,
    scratch: Vec<u8>,
    enqueued_since_take: u32,
    /// Packets allocated for tokens and not yet enqueued or freed.
    held: u32,
    counters: TxCounts,
}

#[derive(Debug, Default, Clone, Copy)]
struct TxCounts {
    frames: u64,
    bytes: u64,
    refused_no_packet: u64,
    refused_queue_full: u64,
    reply_no_packet: u64,
    reply_queue_full: u64,
    too_big: u64,
    enqueue_refused: u64,
}

/// The smoltcp device over the system halves of an NDK interface's queues.
#[derive(Debug)]
pub struct NdkDevice {
    rx: RxSide,
    tx: TxSide,
    rx_submission: SystemRxSubmission,
    tx_completion: SystemTxCompletion,
    /// smoltcp's `max_transmission_unit`: IP MTU + 14, at most a Tx buffer.
    frame_max_bytes: usize,
    rx_frames: u64,
    rx_bytes: u64,
    rx_outstanding: u64,
    rx_posted_total: u64,
    rx_post_no_packet: u64,
    rx_post_refused: u64,
    tx_completed: u64,
    tx_completed_error: u64,
    tx_completed_busy: u64,
    tx_completed_offline: u64,
    tx_completed_overrun: u64,
    doorbells_rung: u64,
}

impl NdkDevice {
    /// A device over `queues`, Tx packets from `tx_pool`, Rx buffers from `rx_pool`, for an
    /// IP MTU of `mtu_bytes` (lowered so a frame fits one Tx buffer: the stack never builds a
    /// frame it cannot submit). Takes no frames until [`NdkDevice::begin_poll`] grants a
    /// budget.
    pub fn new(
        queues: SystemQueues,
        tx_pool: PacketBufferPool,
        rx_pool: PacketBufferPool,
        mtu_bytes: usize,
    ) -> Self {
        let SystemQueues {
            rx_submission,
            rx_completion,
            tx_submission,
            tx_completion,
        } = queues;
        let frame_max =
            (mtu_bytes + ETHERNET_HEADER_BYTES).min(tx_pool.buffer_size_bytes() as usize);
        Self {
            rx: RxSide {
                completion: rx_completion,
                scratch: Vec::with_capacity(rx_pool.buffer_size_bytes() as usize),
                pool: rx_pool,
                budget_frames: 0,
                last_dhcp_ack: None,
            },
            tx: TxSide {
                submission: tx_submission,
                pool: tx_pool,
                scratch: vec![0; frame_max],
                enqueued_since_take: 0,
                held: 0,
                counters: TxCounts::default(),
            },
            rx_submission,
            tx_completion,
            frame_max_bytes: frame_max,
            rx_frames: 0,
            rx_bytes: 0,
            rx_outstanding: 0,
            rx_posted_total: 0,
            rx_post_no_packet: 0,
            rx_post_refused: 0,
            tx_completed: 0,
            tx_completed_error: 0,
            tx_completed_busy: 0,
            tx_completed_offline: 0,
            tx_completed_overrun: 0,
            doorbells_rung: 0,
        }
    }

    /// Allows `rx_budget_frames` more received frames to be taken (the bound per poll).
    pub fn begin_poll(&mut self, rx_budget_frames: u32) {
        self.rx.budget_frames = rx_budget_frames;
    }

    /// Frees up to `max` Tx completions, counting their statuses. Returns how many.
    pub fn collect_tx_completions(&mut self, max: u32) -> u32 {
        let mut n = 0;
        while n < max {
            let Ok(Some(packet)) = self.tx_completion.dequeue_packet() else {
                break;
            };
            let status = self
                .tx
                .pool
                .packet(&packet)
                .map_or(IoReturn::BadArgument.code(), |v| v.completion_status());
            self.tx_completed += 1;
            if status != IoReturn::Success.code() {
                self.tx_completed_error += 1;
                match IoReturn::from_code(status) {
                    Some(IoReturn::Busy) => self.tx_completed_busy += 1,
                    Some(IoReturn::Offline) => self.tx_completed_offline += 1,
                    Some(IoReturn::Overrun) => self.tx_completed_overrun += 1,
                    _ => {}
                }
            }
            // A completion is system-owned once dequeued; a failure here would be a pool bug.
            let _ = self.tx.pool.system_free(packet);
            n += 1;
        }
        n
    }

    /// Posts empty Rx buffers until `target` are in the driver's hands, at most `max` now.
    /// Returns how many were posted.
    ///
    /// While the driver has Rx submission disabled nothing is posted, and the count of
    /// buffers in the driver's hands restarts from 0: a driver that disables its queues
    /// returns every posted buffer to the pool (it does, see `VirtualEthernet`'s drain).
    pub fn repost_rx(&mut self, target: u32, max: u32) -> u32 {
        if !self.rx_submission.is_enabled() {
            self.rx_outstanding = 0;
            return 0;
        }
        let mut posted = 0;
        while posted < max && self.rx_outstanding < u64::from(target) {
            if !matches!(self.rx_submission.free_space(), Ok(n) if n > 0) {
                break;
            }
            let Ok(packet) = self.rx.pool.allocate(Owner::System) else {
                self.rx_post_no_packet += 1;
                break;
            };
            if let Err(refused) = self.rx_submission.enqueue_packet(packet) {
                self.rx_post_refused += 1;
                let _ = self.rx.pool.system_free(refused.packet);
                break;
            }
            self.rx_outstanding += 1;
            self.rx_posted_total += 1;
            posted += 1;
        }
        posted
    }

    /// Tx frames enqueued since the last call (the caller rings the doorbell once if > 0).
    pub fn take_tx_enqueued(&mut self) -> u32 {
        std::mem::take(&mut self.tx.enqueued_since_take)
    }

    /// Records a doorbell rung by the owner (for the counters).
    pub fn note_doorbell(&mut self) {
        self.doorbells_rung += 1;
    }

    /// Frames waiting in Rx completion (0 if the ring is corrupted).
    pub fn rx_pending(&mut self) -> u32 {
        self.rx.completion.pending().unwrap_or(0)
    }

    /// Completions waiting in Tx completion (0 if the ring is corrupted).
    pub fn tx_completions_pending(&mut self) -> u32 {
        self.tx_completion.pending().unwrap_or(0)
    }

    /// The largest frame smoltcp may build (its `max_transmission_unit`), in bytes.
    pub fn frame_max_bytes(&self) -> usize {
        self.frame_max_bytes
    }

    /// Packets this device owns right now (allocated for a token and not yet handed on). Rx
    /// buffers posted to the driver are the driver's, not counted.
    pub fn packets_held(&self) -> u32 {
        self.tx.held
    }

    /// The last DHCP ACK seen on the way in, taken.
    pub fn take_dhcp_ack(&mut self) -> Option<DhcpAckSeen> {
        self.rx.last_dhcp_ack.take()
    }

    /// Frees everything waiting in the two completion queues (at most `max_each` of each),
    /// without handing Rx frames to smoltcp. For shutdown: the caller stops reposting first.
    /// Returns (Tx completions, Rx frames) freed.
    pub fn drain_completions(&mut self, max_each: u32) -> (u32, u32) {
        let tx = self.collect_tx_completions(max_each);
        let mut rx = 0;
        while rx < max_each {
            let Ok(Some(packet)) = self.rx.completion.dequeue_packet() else {
                break;
            };
            self.rx_outstanding = self.rx_outstanding.saturating_sub(1);
            let _ = self.rx.pool.system_free(packet);
            rx += 1;
        }
        (tx, rx)
    }

    /// Submits `frame` as it is on Tx submission, bypassing smoltcp: how a test plays an OS
    /// that hands the driver a malformed frame (a runt, or one over the port's packet size).
    ///
    /// # Errors
    /// [`RawFrameError`]; nothing was submitted (and nothing is held).
    pub fn submit_raw_frame(&mut self, frame: &[u8]) -> Result<(), RawFrameError> {
        if !matches!(self.tx.submission.free_space(), Ok(n) if n > 0) {
            return Err(RawFrameError::QueueFull);
        }
        let mut packet = self
            .tx
            .pool
            .allocate(Owner::System)
            .map_err(|_| RawFrameError::NoPacket)?;
        self.tx.held += 1;
        let pool = self.tx.pool.clone();
        let written = pool
            .packet_mut(&mut packet)
            .is_ok_and(|mut v| v.write_frame(0, frame).is_ok());
        if !written {
            self.tx.release(packet);
            return Err(RawFrameError::TooBigForBuffer {
                len_bytes: frame.len(),
            });
        }
        self.tx.submit(packet, frame.len());
        Ok(())
    }

    /// A copy of the counters.
    pub fn counters(&self) -> StackCounters {
        let t = self.tx.counters;
        StackCounters {
            tx_frames_submitted: t.frames,
            tx_bytes: t.bytes,
            tx_refused_no_packet: t.refused_no_packet,
            tx_refused_queue_full: t.refused_queue_full,
            tx_dropped_reply_no_packet: t.reply_no_packet,
            tx_dropped_reply_queue_full: t.reply_queue_full,
            tx_dropped_too_big: t.too_big,
            tx_dropped_enqueue_refused: t.enqueue_refused,
            tx_completed: self.tx_completed,
            tx_completed_error: self.tx_completed_error,
            tx_completed_busy: self.tx_completed_busy,
            tx_completed_offline: self.tx_completed_offline,
            tx_completed_overrun: self.tx_completed_overrun,
            rx_frames: self.rx_frames,
            rx_bytes: self.rx_bytes,
            rx_buffers_posted: self.rx_outstanding,
            rx_buffers_posted_total: self.rx_posted_total,
            rx_post_no_packet: self.rx_post_no_packet,
            rx_post_refused: self.rx_post_refused,
            doorbells_rung: self.doorbells_rung,
            rx_dropped_shutdown: 0,
        }
    }
}

/// Records `yiaddr` and the lease time if `frame` is a DHCP ACK to the client port.
fn snoop_dhcp_ack(frame: &[u8]) -> Option<DhcpAckSeen> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != DHCP_CLIENT_PORT {
        return None;
    }
    let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
    let repr = DhcpRepr::parse(&dhcp).ok()?;
    (repr.message_type == DhcpMessageType::Ack).then_some(DhcpAckSeen {
        address: repr.your_ip,
        lease_duration_s: repr.lease_duration,
    })
}

/// A received frame (already copied out of its packet, which is back in the pool).
#[derive(Debug)]
pub struct NdkRxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for NdkRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// A frame to send. From [`Device::transmit`] it holds a packet and a reserved slot; from
/// [`Device::receive`] (a reply) it finds them when used, or drops the reply, counted.
#[derive(Debug)]
pub struct NdkTxToken<'a> {
    tx: &'a mut TxSide,
    packet: Option<Packet>,
}

impl phy::TxToken for NdkTxToken<'_> {
    fn consume<R, F>(mut self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let packet = match self.packet.take() {
            Some(p) => Some(p),
            None => self.tx.reply_packet(),
        };
        let Some(mut packet) = packet else {
            return self.tx.scratch_write(len, f);
        };
        let pool = self.tx.pool.clone();
        let fits = pool
            .packet_mut(&mut packet)
            .is_ok_and(|mut v| v.set_data_offset_and_length(0, len as u32).is_ok());
        if !fits {
            self.tx.counters.too_big += 1;
            self.tx.release(packet);
            return self.tx.scratch_write(len, f);
        }
        let result = match pool.packet_mut(&mut packet) {
            Ok(mut view) => f(view.data_mut()),
            // Unreachable: the packet is from this pool (checked just above).
            Err(_) => self.tx.scratch_write(len, f),
        };
        self.tx.submit(packet, len);
        result
    }
}

impl Drop for NdkTxToken<'_> {
    fn drop(&mut self) {
        // smoltcp dropped the token unused (e.g. neighbor pending): the packet goes back.
        if let Some(packet) = self.packet.take() {
            self.tx.release(packet);
        }
    }
}

impl TxSide {
    /// A packet and a slot for a reply frame, or `None` (the reply drop is counted).
    fn reply_packet(&mut self) -> Option<Packet> {
        if !matches!(self.submission.free_space(), Ok(n) if n > 0) {
            self.counters.reply_queue_full += 1;
            return None;
        }
        if let Ok(packet) = self.pool.allocate(Owner::System) {
            self.held += 1;
            Some(packet)
        } else {
            self.counters.reply_no_packet += 1;
            None
        }
    }

    /// Lets smoltcp write a frame that will not be sent (its drop is already counted).
    fn scratch_write<R, F>(&mut self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        f(&mut self.scratch[..len])
    }

    fn release(&mut self, packet: Packet) {
        self.held = self.held.saturating_sub(1);
        let _ = self.pool.system_free(packet);
    }

    fn submit(&mut self, packet: Packet, len: usize) {
        match self.submission.enqueue_packet(packet) {
            Ok(()) => {
                self.held = self.held.saturating_sub(1);
                self.counters.frames += 1;
                self.counters.bytes += len as u64;
                self.enqueued_since_take += 1;
            }
            Err(refused) => {
                self.counters.enqueue_refused += 1;
                self.release(refused.packet);
            }
        }
    }
}

/// Why [`NdkDevice::submit_raw_frame`] submitted nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RawFrameError {
    /// Tx submission is full.
    #[error("tx submission is full")]
    QueueFull,
    /// The pool has no free packet.
    #[error("no free packet in the pool")]
    NoPacket,
    /// The frame does not fit a packet buffer.
    #[error("a {len_bytes}-byte frame does not fit a packet buffer")]
    TooBigForBuffer {
        /// The frame's length.
        len_bytes: usize,
    },
}

impl Device for NdkDevice {
    type RxToken<'a>
        = NdkRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = NdkTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.rx.budget_frames == 0 {
            return None;
        }
        let packet = self.rx.completion.dequeue_packet().ok()??;
        self.rx.budget_frames -= 1;
        self.rx_outstanding = self.rx_outstanding.saturating_sub(1);
        self.rx.scratch.clear();
        if let Ok(view) = self.rx.pool.packet(&packet) {
            self.rx.scratch.extend_from_slice(view.data());
        }
        let _ = self.rx.pool.system_free(packet);
        self.rx_frames += 1;
        self.rx_bytes += self.rx.scratch.len() as u64;
        if let Some(ack) = snoop_dhcp_ack(&self.rx.scratch) {
            self.rx.last_dhcp_ack = Some(ack);
        }
        Some((
            NdkRxToken {
                frame: &self.rx.scratch,
            },
            NdkTxToken {
                tx: &mut self.tx,
                packet: None,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if !matches!(self.tx.submission.free_space(), Ok(n) if n > 0) {
            self.tx.counters.refused_queue_full += 1;
            return None;
        }
        let Ok(packet) = self.tx.pool.allocate(Owner::System) else {
            self.tx.counters.refused_no_packet += 1;
            return None;
        };
        self.tx.held += 1;
        Some(NdkTxToken {
            tx: &mut self.tx,
            packet: Some(packet),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.frame_max_bytes;
        caps.max_burst_size = None;
        caps
    }
}
