//! The hardware-port seam: what the NIC's "wire" looks like to [`crate::nic::VirtualEthernet`].
//!
//! A [`HardwarePort`] moves whole Ethernet frames as bytes, in batches, without blocking, the
//! way vmnet's `vmnet_read` / `vmnet_write` do (vmnet.md §1.2–1.5): each call moves up to a
//! per-call limit of packets and bytes and says how many it moved. The port copies bytes at
//! its boundary, so pool handles never reach a port. [`fake::FakePort`] is the scripted fake
//! beside it.

use std::sync::Arc;

use ndk_model::ethernet::MacAddress;
use ndk_model::notify::Notifier;

pub mod fake;

/// Ethernet header length (destination, source, EtherType), in bytes.
pub const ETHERNET_HEADER_BYTES: usize = 14;

/// vmnet's documented per-call packet limit (`VMNET_MAX_PACKETS`-style, vmnet.md §1.8).
pub const VMNET_PACKETS_PER_CALL_DOCUMENTED: usize = 200;
/// vmnet's per-call packet limit observed on newer systems (vmnet.md §1.8).
pub const VMNET_PACKETS_PER_CALL_OBSERVED: usize = 256;
/// vmnet's documented per-call byte limit: 256 KB (vmnet.md §1.8).
pub const VMNET_BYTES_PER_CALL_DOCUMENTED: usize = 256 * 1024;
/// vmnet's default maximum packet size, in bytes (1500 MTU + 14 header).
pub const VMNET_MAX_PACKET_SIZE_BYTES: usize = 1514;
/// vmnet's default MTU, in bytes.
pub const VMNET_MTU_BYTES: usize = 1500;

/// Facts fixed when the port starts: vmnet's interface-parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortInfo {
    /// The station address the port assigned (vmnet chooses it; an interface id keeps it).
    pub mac: MacAddress,
    /// The port's MTU, in bytes.
    pub mtu_bytes: usize,
    /// The largest frame, header included, the port moves, in bytes.
    pub max_packet_size_bytes: usize,
    /// The most frames one read or write call may move.
    pub max_packets_per_call: usize,
    /// The most bytes one read or write call may move.
    pub max_bytes_per_call: usize,
}

impl PortInfo {
    /// vmnet's documented parameters (MTU 1500, 1514-byte packets, 200 packets / 256 KB per
    /// call) with the given MAC.
    pub const fn vmnet_documented(mac: MacAddress) -> Self {
        Self {
            mac,
            mtu_bytes: VMNET_MTU_BYTES,
            max_packet_size_bytes: VMNET_MAX_PACKET_SIZE_BYTES,
            max_packets_per_call: VMNET_PACKETS_PER_CALL_DOCUMENTED,
            max_bytes_per_call: VMNET_BYTES_PER_CALL_DOCUMENTED,
        }
    }

    /// As [`PortInfo::vmnet_documented`], with the 256-packet limit observed on newer systems.
    pub const fn vmnet_observed(mac: MacAddress) -> Self {
        let mut info = Self::vmnet_documented(mac);
        info.max_packets_per_call = VMNET_PACKETS_PER_CALL_OBSERVED;
        info
    }
}

/// Something the port reports outside the datapath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortEvent {
    /// The link came up.
    LinkUp,
    /// The link went down.
    LinkDown,
    /// The port stopped (vmnet interface stopped); it moves nothing until started again.
    Stopped,
    /// Frames are waiting to be read (vmnet's `VMNET_INTERFACE_PACKETS_AVAILABLE`); the count
    /// is an estimate.
    PacketsAvailable {
        /// Estimated frames waiting.
        estimate: usize,
    },
}

/// Why [`HardwarePort::start`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The port could not start.
    #[error("the port failed to start")]
    Failed,
}

/// Why [`HardwarePort::write_frames`] moved nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The port's buffers are exhausted (vmnet `VMNET_BUFFER_EXHAUSTED`): retry later.
    #[error("the port is busy (buffer exhausted)")]
    Busy,
    /// More frames than [`PortInfo::max_packets_per_call`].
    #[error("{count} frames exceed the per-call limit")]
    TooManyPackets {
        /// Frames offered.
        count: usize,
    },
    /// More bytes than [`PortInfo::max_bytes_per_call`].
    #[error("{bytes} bytes exceed the per-call limit")]
    TooManyBytes {
        /// Bytes offered.
        bytes: usize,
    },
    /// A frame longer than [`PortInfo::max_packet_size_bytes`] (vmnet `VMNET_PACKET_TOO_BIG`).
    #[error("frame {index} is too big")]
    PacketTooBig {
        /// Its position in the batch.
        index: usize,
    },
    /// The port is not started.
    #[error("the port is not started")]
    NotStarted,
    /// The port failed (vmnet `VMNET_FAILURE`).
    #[error("the port failed")]
    Failed,
}

/// Why [`HardwarePort::read_frames`] moved nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The next frame does not fit the buffer offered for it; it stays at the port.
    #[error("a {needed_bytes}-byte frame does not fit its buffer")]
    BufferTooSmall {
        /// The frame's length.
        needed_bytes: usize,
    },
    /// The port is not started.
    #[error("the port is not started")]
    NotStarted,
    /// The port failed (vmnet `VMNET_FAILURE`).
    #[error("the port failed")]
    Failed,
}

/// The NIC's hardware: a batched, non-blocking frame mover with vmnet's semantics.
///
/// No method blocks, sleeps or starts a thread. Readiness is signalled through the notifier
/// given to [`HardwarePort::set_readiness`]. Object-safe: usable as `dyn HardwarePort`.
pub trait HardwarePort {
    /// The port's parameters.
    fn info(&self) -> PortInfo;

    /// Starts the port (vmnet `vmnet_start_interface`). Starting a started port is a no-op.
    ///
    /// # Errors
    /// [`StartError`].
    fn start(&mut self) -> Result<(), StartError>;

    /// Stops the port; frames waiting at it may be lost. Stopping a stopped port is a no-op.
    fn stop(&mut self);

    /// Whether the link is up.
    fn is_link_up(&self) -> bool;

    /// Writes the frames in order. `Ok(n)`: the first `n` were taken (the rest were not);
    /// `Ok(0)` with frames offered means the port took nothing and asks for a retry. At most
    /// [`PortInfo::max_packets_per_call`] frames and [`PortInfo::max_bytes_per_call`] bytes
    /// per call.
    ///
    /// # Errors
    /// [`WriteError`]; nothing was taken.
    fn write_frames(&mut self, frames: &[&[u8]]) -> Result<usize, WriteError>;

    /// Reads waiting frames, one per buffer, in order: frame `i` goes to `bufs[i][..lens[i]]`.
    /// `Ok(0)`: nothing is waiting (not an error). Reads at most `min(bufs.len(),
    /// lens.len(), max_packets_per_call)` frames.
    ///
    /// # Errors
    /// [`ReadError`]; nothing was read.
    fn read_frames(
        &mut self,
        bufs: &mut [&mut [u8]],
        lens: &mut [usize],
    ) -> Result<usize, ReadError>;

    /// The next port event, if any.
    fn poll_event(&mut self) -> Option<PortEvent>;

    /// The notifier the port signals when frames arrive or an event is queued.
    fn set_readiness(&mut self, notifier: Arc<dyn Notifier>);
}
