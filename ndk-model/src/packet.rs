//! Packet handles and per-packet metadata (`IOUserNetworkPacket`).
//!
//! **Models:** `IOUserNetworkPacket`. A packet is never created directly: it comes from a pool
//! ([`crate::pool::PacketBufferPool::allocate`]) or from a submission queue. In Rust it is a
//! move-only token, [`Packet`] = pool id + `u32` index, so two owners of one packet cannot
//! exist in safe code. The bytes and the metadata live in the pool's shared memory and are
//! reached through [`PacketView`] / [`PacketViewMut`].
//!
//! **Supported:** data offset (`u16`), data length (`u32`), capacity, link-header length (`u8`),
//! direction, timestamp, completion status, Tx checksum info, TSO info, Rx checksum info, LRO
//! info; `offset + length <= capacity` is enforced.
//!
//! **Rejected:** multi-buffer packets (`maxBuffersPerPacket > 1`), `getDataIOVirtualAddress`
//! (no DMA in a virtual NIC), service class and trace ids (stored nowhere; not modelled).
//!
//! The numeric values of the checksum, TSO and LRO flags are UNCONFIRMED (ndk.md §1.8), so the
//! flag types are opaque newtypes: the model stores and returns them without interpreting.

use crate::error::IoReturn;

/// A move-only handle to one packet of one pool: `IOUserNetworkPacket*`.
///
/// Whoever holds the token owns the packet. Moving it into a queue moves ownership; a queue
/// that refuses it hands it back. Dropping a token without returning the packet leaks it,
/// which the pool's [`crate::pool::LeakReport`] shows at shutdown.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a dropped packet token leaks its packet until the pool is torn down"]
pub struct Packet {
    pub(crate) pool_id: u32,
    pub(crate) index: u32,
}

impl Packet {
    /// The packet's index in its pool (`IOUserNetworkPacketState.packetIndex`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The process-local id of the pool this packet belongs to.
    pub fn pool_id(&self) -> u32 {
        self.pool_id
    }
}

/// `IOUserNetworkPacketDirection`, with the confirmed values of ndk.md §1.7.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacketDirection {
    /// `kIOUserNetworkPacketDirectionNone` (0): not moving.
    #[default]
    None = 0,
    /// `kIOUserNetworkPacketDirectionTx` (1): stack → device.
    Tx = 1,
    /// `kIOUserNetworkPacketDirectionRx` (2): device → stack.
    Rx = 2,
}

impl PacketDirection {
    /// Decodes a raw direction byte; unknown values are `None`.
    pub fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            0 => Some(Self::None),
            1 => Some(Self::Tx),
            2 => Some(Self::Rx),
            _ => None,
        }
    }
}

macro_rules! opaque_flags {
    ($(#[$doc:meta] $name:ident($ty:ty);)*) => {$(
        #[$doc]
        ///
        /// Opaque: the numeric values of these flags are UNCONFIRMED (ndk.md §1.8), so the model
        /// stores and returns the bits without giving them names.
        #[repr(transparent)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
        pub struct $name(pub $ty);
    )*};
}

opaque_flags! {
    /// `IOUserNetworkPacketTxChecksumFlags`.
    TxChecksumFlags(u32);
    /// `IOUserNetworkPacketRxChecksumFlags`.
    RxChecksumFlags(u32);
    /// `IOUserNetworkPacketTSOFlags` (one driver saw 0x100000 for IPv4 TSO; UNCONFIRMED).
    TsoFlags(u32);
    /// `IOUserNetworkPacketLROFlags`.
    LroFlags(u32);
}

/// Why a packet field could not be set: `offset + length` would pass the buffer's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("data offset {offset_bytes} + length {length_bytes} exceeds capacity {capacity_bytes}")]
pub struct PacketBoundsError {
    /// Offset asked for.
    pub offset_bytes: u32,
    /// Length asked for.
    pub length_bytes: u32,
    /// The buffer's capacity.
    pub capacity_bytes: u32,
}

impl From<PacketBoundsError> for IoReturn {
    fn from(_: PacketBoundsError) -> Self {
        IoReturn::BadArgument
    }
}

pub use crate::pool::{PacketView, PacketViewMut};
