//! The packet buffer pool (`IOUserNetworkPacketBufferPool`).
//!
//! **Models:** `IOUserNetworkPacketBufferPool` — `Create` / `CreateWithOptions` (a 4-character
//! name, packet count, buffer count, buffer size, options), `AllocatePacket` / `allocatePacket`,
//! `DeallocatePacket` (by packet, and by index as the `_DeallocatePacket(uint32_t)` RPC does),
//! `GetPacketCount`, `GetBufferCount`.
//!
//! **Supported:** one buffer per packet; `bufferCount >= packetCount` (buffers beyond the
//! packet count are accepted and never materialised, since a packet has one buffer); the four
//! confirmed pool flags (ndk.md §1.9) are recorded.
//!
//! **Rejected:** `maxBuffersPerPacket > 1` (`kIOReturnUnsupported`); `bufferCount <
//! packetCount`, zero counts or sizes, unknown flag bits, names that are not 4 printable ASCII
//! characters (`kIOReturnBadArgument`). Whether Apple rejects unknown flags is UNCONFIRMED.
//!
//! # Memory
//! Memory is fixed at creation: a header, a free-list link per packet, a 64-byte
//! [`PacketState`] per packet and one buffer per packet, in one [`Region`]. The buffer stride
//! is the buffer size rounded up to 64 bytes, plus 64 while that is a power of two, so frame
//! starts do not all land in the same cache sets (rings.md §4.3).
//!
//! # Concurrency
//! The free list is a Treiber stack of indices whose head packs a 32-bit ABA tag beside the
//! index in one `AtomicU64` (rings.md §2.4–2.5): allocate and deallocate are lock-free, work
//! from any thread or process, and never block. A [`PoolCache`] in front of it serves one
//! thread from a private stack and touches the shared head once per batch (DPDK's mempool
//! cache).
//!
//! # Ownership
//! Each packet's state word holds its owner ([`OwnerState`], ndk.md §9.2) plus a "token live"
//! bit that is set exactly while a Rust [`Packet`] token exists. Every way of making a token
//! sets the bit with an exclusive step (a pop from the free list, or a compare-and-swap), so
//! two tokens for one packet cannot exist, even when a peer process misbehaves.
//!
//! This is one of the crate's three `unsafe` modules.

use std::ptr::NonNull;
use std::sync::atomic::AtomicU32 as StdAtomicU32;
use std::sync::Arc;

use crate::error::IoReturn;
use crate::packet::{
    LroFlags, Packet, PacketBoundsError, PacketDirection, RxChecksumFlags, TsoFlags,
    TxChecksumFlags,
};
use crate::ring::CacheLine;
use crate::shm::{Region, RegionError};
use crate::sync::{spin_loop, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// `"VPOL"`: marks an initialised pool header.
pub const POOL_MAGIC: u32 = u32::from_le_bytes(*b"VPOL");
/// The free-list "no packet" index.
pub const NIL_INDEX: u32 = u32::MAX;
/// Most packets one pool may hold.
pub const POOL_PACKETS_MAX: u32 = 1 << 24;
/// Largest buffer, in bytes (ours; Apple documents no limit).
pub const POOL_BUFFER_BYTES_MAX: u32 = 1 << 20;
/// Bit in [`PacketState::owner`] that is set while a Rust [`Packet`] token exists.
pub const OWNER_TOKEN_BIT: u32 = 1 << 8;
/// Owner word of a free packet held in a [`PoolCache`]: `Free` plus the token bit, so the
/// cache's claim on it is exclusive. Counts as free.
pub const CACHE_RESERVED_WORD: u32 = OwnerState::Free as u32 | OWNER_TOKEN_BIT;
/// Mask of the [`OwnerState`] part of [`PacketState::owner`].
pub const OWNER_STATE_MASK: u32 = 0xff;
/// Most entries a [`PoolCache`] holds.
pub const POOL_CACHE_MAX: usize = 256;

bitflags::bitflags! {
    /// `IOUserNetworkPacketBufferPoolFlags`: the four values ndk.md §1.9 confirms.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct PoolOptions: u32 {
        /// `PoolFlagSingleMemorySegment`: one segment (always true here).
        const SINGLE_MEMORY_SEGMENT = 0x2;
        /// `PoolFlagPersistentMemory`: wired memory.
        const PERSISTENT_MEMORY = 0x4;
        /// `PoolFlagMapToDext`: buffers mapped into the dext.
        const MAP_TO_DEXT = 0x1000_0000;
        /// `PoolFlagMapToDevice`: DMA-mapped for the provider (recorded, nothing to map).
        const MAP_TO_DEVICE = 0x2000_0000;
    }
}

/// Who owns a packet (ndk.md §9.2): free → submission queue → driver → completion queue →
/// system.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerState {
    /// On the free list (or in a [`PoolCache`]).
    Free = 0,
    /// Held by the system side (the OS stack, or the helper's model of it).
    System = 1,
    /// In a submission queue, on its way to the driver.
    InSubmission = 2,
    /// Held by the driver.
    Driver = 3,
    /// In a completion queue, on its way back to the system.
    InCompletion = 4,
}

impl OwnerState {
    /// Decodes the state part of an owner word.
    pub fn from_word(word: u32) -> Option<Self> {
        match word & OWNER_STATE_MASK {
            0 => Some(Self::Free),
            1 => Some(Self::System),
            2 => Some(Self::InSubmission),
            3 => Some(Self::Driver),
            4 => Some(Self::InCompletion),
            _ => None,
        }
    }
}

/// Which side an allocation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The system side (it will submit the packet to a queue, or free it).
    System,
    /// The driver (`allocatePacket`, as AQC111 does for Rx).
    Driver,
}

impl Owner {
    fn state(self) -> OwnerState {
        match self {
            Owner::System => OwnerState::System,
            Owner::Driver => OwnerState::Driver,
        }
    }
}

/// The shared pool header: the free-list head on its own block, then creation-time facts.
#[repr(C)]
#[derive(Debug)]
pub struct PoolHeader {
    /// `(tag << 32) | index` of the free-list top; index [`NIL_INDEX`] when empty.
    pub free_head: CacheLine<AtomicU64>,
    /// Facts written once at creation.
    pub info: CacheLine<PoolInfo>,
}

/// Creation-time facts of a pool, readable by the peer.
#[repr(C)]
#[derive(Debug)]
pub struct PoolInfo {
    /// [`POOL_MAGIC`].
    pub magic: AtomicU32,
    /// The 4-character name, little-endian.
    pub name: AtomicU32,
    /// Packets in the pool.
    pub packet_count: AtomicU32,
    /// Buffers asked for (≥ packets).
    pub buffer_count: AtomicU32,
    /// Usable bytes per buffer.
    pub buffer_size_bytes: AtomicU32,
    /// Distance between buffer starts.
    pub stride_bytes: AtomicU32,
    /// [`PoolOptions`] bits.
    pub options: AtomicU32,
    /// Bits of ABA tag in `free_head` (32 in production).
    pub tag_bits: AtomicU32,
    /// Offset of the link array from the pool start.
    pub links_offset_bytes: AtomicU32,
    /// Offset of the state array from the pool start.
    pub states_offset_bytes: AtomicU32,
    /// Offset of the first buffer from the pool start.
    pub buffers_offset_bytes: AtomicU64,
    /// Total bytes of the pool section.
    pub total_bytes: AtomicU64,
}

/// Per-packet state shared by both sides: `IOUserNetworkPacketState` plus metadata.
///
/// The field widths follow `IOUserNetworkPacketState` (ndk.md §1.9). Fields are atomics so a
/// misbehaving peer cannot make a read undefined; they are accessed `Relaxed` by the packet's
/// owner, and ownership moves with the `Release`/`Acquire` index stores of the rings.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct PacketState {
    /// [`OwnerState`] in the low byte, [`OWNER_TOKEN_BIT`] while a token exists.
    pub owner: AtomicU32,
    /// Data length in bytes.
    pub data_length: AtomicU32,
    /// Data offset from the buffer start, in bytes.
    pub data_offset: AtomicU16,
    /// Link-header length in bytes.
    pub link_header_length: AtomicU8,
    /// [`PacketDirection`].
    pub direction: AtomicU8,
    /// `IOReturn` completion status.
    pub completion_status: AtomicU32,
    /// Timestamp in nanoseconds; 0 = none.
    pub timestamp_ns: AtomicU64,
    /// [`TxChecksumFlags`].
    pub tx_checksum_flags: AtomicU32,
    /// [`RxChecksumFlags`].
    pub rx_checksum_flags: AtomicU32,
    /// Tx checksum start offset.
    pub checksum_start: AtomicU16,
    /// Tx checksum stuff offset.
    pub checksum_stuff: AtomicU16,
    /// Rx checksum value.
    pub rx_checksum_value: AtomicU16,
    /// TSO segment size (0 = not TSO).
    pub tso_segment_size: AtomicU16,
    /// [`TsoFlags`].
    pub tso_flags: AtomicU32,
    /// [`LroFlags`].
    pub lro_flags: AtomicU32,
    /// LRO segment count.
    pub lro_segment_count: AtomicU8,
    /// Reserved, zero.
    pub reserved: [AtomicU8; 15],
}

#[cfg(not(loom))]
mod layout_checks {
    use super::{PacketState, PoolHeader, PoolInfo};
    use static_assertions::const_assert_eq;
    use std::mem::{align_of, offset_of, size_of};

    const_assert_eq!(size_of::<PacketState>(), 64);
    const_assert_eq!(align_of::<PacketState>(), 64);
    const_assert_eq!(offset_of!(PacketState, owner), 0);
    const_assert_eq!(offset_of!(PacketState, data_length), 4);
    const_assert_eq!(offset_of!(PacketState, data_offset), 8);
    const_assert_eq!(offset_of!(PacketState, link_header_length), 10);
    const_assert_eq!(offset_of!(PacketState, direction), 11);
    const_assert_eq!(offset_of!(PacketState, completion_status), 12);
    const_assert_eq!(offset_of!(PacketState, timestamp_ns), 16);
    const_assert_eq!(offset_of!(PacketState, tx_checksum_flags), 24);
    const_assert_eq!(offset_of!(PacketState, rx_checksum_flags), 28);
    const_assert_eq!(offset_of!(PacketState, checksum_start), 32);
    const_assert_eq!(offset_of!(PacketState, checksum_stuff), 34);
    const_assert_eq!(offset_of!(PacketState, rx_checksum_value), 36);
    const_assert_eq!(offset_of!(PacketState, tso_segment_size), 38);
    const_assert_eq!(offset_of!(PacketState, tso_flags), 40);
    const_assert_eq!(offset_of!(PacketState, lro_flags), 44);
    const_assert_eq!(offset_of!(PacketState, lro_segment_count), 48);
    const_assert_eq!(size_of::<PoolInfo>(), 56);
    const_assert_eq!(size_of::<PoolHeader>(), 256);
    const_assert_eq!(offset_of!(PoolHeader, free_head), 0);
    const_assert_eq!(offset_of!(PoolHeader, info), 128);
    const_assert_eq!(offset_of!(PoolInfo, magic), 0);
    const_assert_eq!(offset_of!(PoolInfo, name), 4);
    const_assert_eq!(offset_of!(PoolInfo, packet_count), 8);
    const_assert_eq!(offset_of!(PoolInfo, buffer_count), 12);
    const_assert_eq!(offset_of!(PoolInfo, buffer_size_bytes), 16);
    const_assert_eq!(offset_of!(PoolInfo, stride_bytes), 20);
    const_assert_eq!(offset_of!(PoolInfo, options), 24);
    const_assert_eq!(offset_of!(PoolInfo, tag_bits), 28);
    const_assert_eq!(offset_of!(PoolInfo, links_offset_bytes), 32);
    const_assert_eq!(offset_of!(PoolInfo, states_offset_bytes), 36);
    const_assert_eq!(offset_of!(PoolInfo, buffers_offset_bytes), 40);
    const_assert_eq!(offset_of!(PoolInfo, total_bytes), 48);
}

/// How to create a pool (`IOUserNetworkPacketBufferPoolOptions` plus the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Four printable ASCII characters.
    pub name: [u8; 4],
    /// Packets in the pool.
    pub packet_count: u32,
    /// Buffers; must be ≥ `packet_count`.
    pub buffer_count: u32,
    /// Bytes per buffer.
    pub buffer_size_bytes: u32,
    /// Must be 1 (multi-buffer packets are rejected).
    pub max_buffers_per_packet: u32,
    /// Pool flags.
    pub options: u32,
}

impl PoolConfig {
    /// `packet_count` packets of `buffer_size_bytes`, one buffer each, no flags.
    pub const fn new(name: [u8; 4], packet_count: u32, buffer_size_bytes: u32) -> Self {
        Self {
            name,
            packet_count,
            buffer_count: packet_count,
            buffer_size_bytes,
            max_buffers_per_packet: 1,
            options: 0,
        }
    }

    /// The buffer stride: size rounded up to 64, plus 64 until it is not a power of two.
    pub const fn stride_bytes(&self) -> u32 {
        let mut stride = (self.buffer_size_bytes + 63) & !63;
        while stride.is_power_of_two() {
            stride += 64;
        }
        stride
    }

    /// Checks the configuration the way `CreateWithOptions` would.
    ///
    /// # Errors
    /// See [`PoolCreateError`].
    pub fn validate(&self) -> Result<PoolOptions, PoolCreateError> {
        if !self.name.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(PoolCreateError::BadName { name: self.name });
        }
        if self.packet_count == 0 || self.packet_count > POOL_PACKETS_MAX {
            return Err(PoolCreateError::BadPacketCount {
                packet_count: self.packet_count,
            });
        }
        if self.buffer_count < self.packet_count {
            return Err(PoolCreateError::TooFewBuffers {
                buffer_count: self.buffer_count,
                packet_count: self.packet_count,
            });
        }
        if self.buffer_size_bytes == 0 || self.buffer_size_bytes > POOL_BUFFER_BYTES_MAX {
            return Err(PoolCreateError::BadBufferSize {
                buffer_size_bytes: self.buffer_size_bytes,
            });
        }
        if self.max_buffers_per_packet != 1 {
            return Err(PoolCreateError::MultiBufferUnsupported {
                max_buffers_per_packet: self.max_buffers_per_packet,
            });
        }
        PoolOptions::from_bits(self.options).ok_or(PoolCreateError::UnknownOptions {
            options: self.options,
        })
    }

    /// Bytes the pool section takes in a region, and the offsets inside it.
    pub fn layout(&self) -> PoolLayout {
        let links = std::mem::size_of::<PoolHeader>();
        let states = round_up(links + 4 * self.packet_count as usize, 64);
        let buffers = round_up(states + 64 * self.packet_count as usize, 4096);
        let total = round_up(
            buffers + self.stride_bytes() as usize * self.packet_count as usize,
            4096,
        );
        PoolLayout {
            links_offset_bytes: links,
            states_offset_bytes: states,
            buffers_offset_bytes: buffers,
            total_bytes: total,
        }
    }
}

/// Where the parts of a pool sit, relative to the pool start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLayout {
    /// The free-list links (`u32` per packet).
    pub links_offset_bytes: usize,
    /// The [`PacketState`] array.
    pub states_offset_bytes: usize,
    /// The first buffer (page-aligned).
    pub buffers_offset_bytes: usize,
    /// Total bytes, a multiple of 4096.
    pub total_bytes: usize,
}

const fn round_up(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}

/// Why a pool could not be created or attached.
#[derive(Debug, thiserror::Error)]
pub enum PoolCreateError {
    /// The name is not 4 printable ASCII characters.
    #[error("pool name {name:?} is not 4 printable ASCII characters")]
    BadName {
        /// The name given.
        name: [u8; 4],
    },
    /// Zero packets, or more than [`POOL_PACKETS_MAX`].
    #[error("packet count {packet_count} is not in 1..={POOL_PACKETS_MAX}")]
    BadPacketCount {
        /// The count given.
        packet_count: u32,
    },
    /// `bufferCount < packetCount`.
    #[error("buffer count {buffer_count} is below packet count {packet_count}")]
    TooFewBuffers {
        /// Buffers asked for.
        buffer_count: u32,
        /// Packets asked for.
        packet_count: u32,
    },
    /// Zero bytes, or more than [`POOL_BUFFER_BYTES_MAX`].
    #[error("buffer size {buffer_size_bytes} is not in 1..={POOL_BUFFER_BYTES_MAX}")]
    BadBufferSize {
        /// The size given.
        buffer_size_bytes: u32,
    },
    /// `maxBuffersPerPacket` other than 1.
    #[error("{max_buffers_per_packet} buffers per packet: only 1 is supported")]
    MultiBufferUnsupported {
        /// The value given.
        max_buffers_per_packet: u32,
    },
    /// Flag bits outside the four known pool flags.
    #[error("unknown pool option bits {options:#x}")]
    UnknownOptions {
        /// The options given.
        options: u32,
    },
    /// The pool does not fit at that offset of the region, or the offset is not page-aligned.
    #[error("a {len_bytes}-byte pool does not fit at offset {offset_bytes} of a {region_bytes}-byte region")]
    DoesNotFit {
        /// Requested offset.
        offset_bytes: usize,
        /// Bytes needed.
        len_bytes: usize,
        /// Bytes available.
        region_bytes: usize,
    },
    /// Attaching found no pool header (wrong magic) or an inconsistent one.
    #[error("no valid pool header at this offset")]
    BadHeader,
    /// The region could not be allocated.
    #[error(transparent)]
    Region(#[from] RegionError),
}

impl From<&PoolCreateError> for IoReturn {
    fn from(e: &PoolCreateError) -> Self {
        match e {
            PoolCreateError::MultiBufferUnsupported { .. } => IoReturn::Unsupported,
            PoolCreateError::Region(_) => IoReturn::NoMemory,
            // UNCONFIRMED: Apple documents no codes for pool creation; bad sizes and counts
            // are reported as bad arguments.
            _ => IoReturn::BadArgument,
        }
    }
}

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    /// Every packet is in use.
    #[error("pool exhausted: all {packet_count} packets are in use")]
    Exhausted {
        /// Packets in the pool.
        packet_count: u32,
    },
    /// The shared free list holds an impossible index or state (a peer scribbled on it).
    #[error("pool free list corrupted at index {index:#x}")]
    Corrupted {
        /// The index found.
        index: u32,
    },
}

impl From<AllocateError> for IoReturn {
    fn from(e: AllocateError) -> Self {
        match e {
            // UNCONFIRMED: the code `allocatePacket` returns on exhaustion is undocumented.
            AllocateError::Exhausted { .. } => IoReturn::NoResources,
            AllocateError::Corrupted { .. } => IoReturn::InternalError,
        }
    }
}

/// Why a packet could not be deallocated; the packet comes back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeallocateError {
    /// The packet belongs to another pool.
    #[error("packet {} belongs to pool {}, not this one", .0.index, .0.pool_id)]
    Foreign(Packet),
    /// `DeallocatePacket` is allowed only while the driver owns the packet (or, for
    /// [`PacketBufferPool::system_free`], while the system does).
    #[error("packet {} is owned by {state:?}, not {expected:?}", packet.index)]
    WrongOwner {
        /// The packet, returned.
        packet: Packet,
        /// Its owner.
        state: Option<OwnerState>,
        /// The owner the call needs.
        expected: OwnerState,
    },
}

impl From<&DeallocateError> for IoReturn {
    fn from(_: &DeallocateError) -> Self {
        // UNCONFIRMED: Apple documents no code for deallocating a packet one does not own.
        IoReturn::BadArgument
    }
}

/// Why a by-index operation ([`PacketBufferPool::deallocate_index`],
/// [`PacketBufferPool::packet_from_index`]) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The index is not in this pool.
    #[error("index {index} is outside a pool of {packet_count} packets")]
    OutOfRange {
        /// The index given.
        index: u32,
        /// Packets in the pool.
        packet_count: u32,
    },
    /// The packet is not driver-owned: already free (a double free), queued, or the system's.
    #[error("packet {index} is not driver-owned (owner word {owner_word:#x})")]
    NotDriverOwned {
        /// The index given.
        index: u32,
        /// The owner word found.
        owner_word: u32,
    },
    /// A Rust [`Packet`] token for this index is alive; free it through the token.
    #[error("packet {index} is held by a live token")]
    TokenLive {
        /// The index given.
        index: u32,
    },
}

impl IndexError {
    /// Whether this is a double free: the packet was already free.
    pub fn is_double_free(&self) -> bool {
        matches!(self, IndexError::NotDriverOwned { owner_word, .. } if *owner_word & OWNER_STATE_MASK == OwnerState::Free as u32)
    }
}

impl From<IndexError> for IoReturn {
    fn from(_: IndexError) -> Self {
        // UNCONFIRMED, as for `DeallocateError`.
        IoReturn::BadArgument
    }
}

/// The packet belongs to another pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("packet {index} of pool {packet_pool_id} used with pool {pool_id}")]
pub struct ForeignPacket {
    /// The packet's index.
    pub index: u32,
    /// The pool the packet belongs to.
    pub packet_pool_id: u32,
    /// The pool it was used with.
    pub pool_id: u32,
}

impl From<ForeignPacket> for IoReturn {
    fn from(_: ForeignPacket) -> Self {
        IoReturn::BadArgument
    }
}

/// Packets not free at shutdown, by owner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeakReport {
    /// Packets in the pool.
    pub packet_count: u32,
    /// Packets not free.
    pub in_use: u32,
    /// Held by the system side.
    pub system: u32,
    /// In a submission queue.
    pub in_submission: u32,
    /// Held by the driver.
    pub driver: u32,
    /// In a completion queue.
    pub in_completion: u32,
    /// With an owner word that decodes to no state (peer corruption).
    pub invalid: u32,
    /// The first few leaked indices.
    pub sample: heapless::Vec<u32, 16>,
}

impl LeakReport {
    /// Whether every packet is back.
    pub fn is_clean(&self) -> bool {
        self.in_use == 0
    }
}

/// Why a queue could not take a packet token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferError {
    /// The token is from another pool.
    Foreign,
    /// The packet is not in the state the queue needs.
    WrongOwner(Option<OwnerState>),
}

static NEXT_POOL_ID: StdAtomicU32 = StdAtomicU32::new(1);

/// A packet buffer pool. Cheap to clone: clones share one pool.
///
/// See the module docs for what is modelled.
#[derive(Debug, Clone)]
pub struct PacketBufferPool {
    inner: Arc<PoolInner>,
}

/// Invariant (`PoolInner` invariant): `header`, `links`, `states` and `buffers` point into
/// `region` (kept alive by the `Arc`), at an initialised header, `packet_count` links and
/// states, and `packet_count` buffers of `stride_bytes` each. The owner-word protocol (module
/// docs) guarantees at most one live [`Packet`] token per index, and only the token holder
/// touches that packet's buffer.
#[derive(Debug)]
struct PoolInner {
    region: Arc<Region>,
    header: NonNull<PoolHeader>,
    links: NonNull<AtomicU32>,
    states: NonNull<PacketState>,
    buffers: NonNull<u8>,
    packet_count: u32,
    buffer_count: u32,
    buffer_size_bytes: u32,
    stride_bytes: u32,
    tag_mask: u32,
    name: [u8; 4],
    options: PoolOptions,
    id: u32,
    owns_objects: bool,
}

// SAFETY: the pointers refer into the `Arc<Region>` the pool owns (PoolInner invariant); shared
// state is atomics, and buffer bytes are reached only through a unique token.
unsafe impl Send for PoolInner {}
// SAFETY: as for `Send`.
unsafe impl Sync for PoolInner {}

impl PacketBufferPool {
    /// Creates a pool on its own heap region (`IOUserNetworkPacketBufferPool::CreateWithOptions`).
    ///
    /// # Errors
    /// See [`PoolCreateError`].
    pub fn create(config: PoolConfig) -> Result<Self, PoolCreateError> {
        config.validate()?;
        let region = Arc::new(Region::heap(config.layout().total_bytes)?);
        Self::create_in(region, 0, config)
    }

    /// Creates a pool at `offset_bytes` (page-aligned) of `region`, overwriting it.
    ///
    /// # Errors
    /// See [`PoolCreateError`].
    pub fn create_in(
        region: Arc<Region>,
        offset_bytes: usize,
        config: PoolConfig,
    ) -> Result<Self, PoolCreateError> {
        Self::create_with_tag_bits(region, offset_bytes, config, 32)
    }

    /// Test-only: a pool whose ABA tag has `tag_bits` bits (0 to 32). Fewer than 32 bits is
    /// the deliberately broken variant the loom suite must catch.
    #[doc(hidden)]
    pub fn create_with_tag_bits(
        region: Arc<Region>,
        offset_bytes: usize,
        config: PoolConfig,
        tag_bits: u32,
    ) -> Result<Self, PoolCreateError> {
        let options = config.validate()?;
        let layout = config.layout();
        check_fits(&region, offset_bytes, layout.total_bytes)?;
        let count = config.packet_count;
        let tag_bits = tag_bits.min(32);
        let header = region.ptr_at::<PoolHeader>(offset_bytes, 1);
        let links =
            region.ptr_at::<AtomicU32>(offset_bytes + layout.links_offset_bytes, count as usize);
        let states =
            region.ptr_at::<PacketState>(offset_bytes + layout.states_offset_bytes, count as usize);
        let buffers = region.ptr_at::<u8>(
            offset_bytes + layout.buffers_offset_bytes,
            config.stride_bytes() as usize * count as usize,
        );
        // Link i points at i + 1, so the free list starts as 0, 1, 2, …
        // The two blocks' contents are written one by one, not as one `PoolHeader` value: a
        // typed write of the whole struct would leave the `CacheLine` padding uninitialised,
        // and a peer reading those bytes through another view would read uninitialised memory.
        // SAFETY: a place projection inside the in-bounds, aligned header.
        let free_head = unsafe { &raw mut (*header).free_head.0 };
        // SAFETY: in bounds and aligned; not yet shared.
        unsafe { free_head.write(AtomicU64::new(0)) };
        // SAFETY: a place projection inside the in-bounds, aligned header.
        let info = unsafe { &raw mut (*header).info.0 };
        // SAFETY: in bounds and aligned; not yet shared. `PoolInfo` has no padding.
        unsafe {
            info.write(PoolInfo {
                magic: AtomicU32::new(0),
                name: AtomicU32::new(u32::from_le_bytes(config.name)),
                packet_count: AtomicU32::new(count),
                buffer_count: AtomicU32::new(config.buffer_count),
                buffer_size_bytes: AtomicU32::new(config.buffer_size_bytes),
                stride_bytes: AtomicU32::new(config.stride_bytes()),
                options: AtomicU32::new(options.bits()),
                tag_bits: AtomicU32::new(tag_bits),
                links_offset_bytes: AtomicU32::new(layout.links_offset_bytes as u32),
                states_offset_bytes: AtomicU32::new(layout.states_offset_bytes as u32),
                buffers_offset_bytes: AtomicU64::new(layout.buffers_offset_bytes as u64),
                total_bytes: AtomicU64::new(layout.total_bytes as u64),
            });
        }
        for i in 0..count {
            let next = if i + 1 == count { NIL_INDEX } else { i + 1 };
            // SAFETY: `i < count`: in bounds of the link array.
            let link = unsafe { links.add(i as usize) };
            // SAFETY: `i < count`: in bounds of the state array.
            let state = unsafe { states.add(i as usize) };
            // SAFETY: aligned (`ptr_at`) and not yet shared with anyone.
            unsafe { link.write(AtomicU32::new(next)) };
            // SAFETY: as above.
            unsafe { state.write(PacketState::new()) };
        }
        // SAFETY: initialised above; shared access to an atomic only. Published last, so a
        // peer that sees the magic sees initialised links and states.
        let info = unsafe { &(*header).info.0 };
        info.magic.store(POOL_MAGIC, Ordering::Release);
        Ok(Self::from_parts(
            region, header, links, states, buffers, &config, options, tag_bits, true,
        ))
    }

    /// Attaches to a pool created (by this or another process) at `offset_bytes` of `region`.
    ///
    /// # Errors
    /// [`PoolCreateError::BadHeader`] if the header is missing or inconsistent with the region.
    #[cfg(not(loom))]
    pub fn attach(region: Arc<Region>, offset_bytes: usize) -> Result<Self, PoolCreateError> {
        check_fits(&region, offset_bytes, std::mem::size_of::<PoolHeader>())?;
        let header = region.ptr_at::<PoolHeader>(offset_bytes, 1);
        // SAFETY: in bounds and aligned; a `PoolHeader` is all atomics, valid for any bits.
        let info = unsafe { &(*header).info.0 };
        if info.magic.load(Ordering::Acquire) != POOL_MAGIC {
            return Err(PoolCreateError::BadHeader);
        }
        let config = PoolConfig {
            name: info.name.load(Ordering::Relaxed).to_le_bytes(),
            packet_count: info.packet_count.load(Ordering::Relaxed),
            buffer_count: info.buffer_count.load(Ordering::Relaxed),
            buffer_size_bytes: info.buffer_size_bytes.load(Ordering::Relaxed),
            max_buffers_per_packet: 1,
            options: info.options.load(Ordering::Relaxed),
        };
        let options = config.validate().map_err(|_| PoolCreateError::BadHeader)?;
        let layout = config.layout();
        let consistent = info.stride_bytes.load(Ordering::Relaxed) == config.stride_bytes()
            && info.links_offset_bytes.load(Ordering::Relaxed) as usize
                == layout.links_offset_bytes
            && info.states_offset_bytes.load(Ordering::Relaxed) as usize
                == layout.states_offset_bytes
            && info.buffers_offset_bytes.load(Ordering::Relaxed) as usize
                == layout.buffers_offset_bytes
            && info.total_bytes.load(Ordering::Relaxed) as usize == layout.total_bytes;
        if !consistent {
            return Err(PoolCreateError::BadHeader);
        }
        check_fits(&region, offset_bytes, layout.total_bytes)?;
        let tag_bits = info.tag_bits.load(Ordering::Relaxed).min(32);
        let count = config.packet_count as usize;
        let links = region.ptr_at::<AtomicU32>(offset_bytes + layout.links_offset_bytes, count);
        let states = region.ptr_at::<PacketState>(offset_bytes + layout.states_offset_bytes, count);
        let buffers = region.ptr_at::<u8>(
            offset_bytes + layout.buffers_offset_bytes,
            config.stride_bytes() as usize * count,
        );
        Ok(Self::from_parts(
            region, header, links, states, buffers, &config, options, tag_bits, false,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        region: Arc<Region>,
        header: *mut PoolHeader,
        links: *mut AtomicU32,
        states: *mut PacketState,
        buffers: *mut u8,
        config: &PoolConfig,
        options: PoolOptions,
        tag_bits: u32,
        owns_objects: bool,
    ) -> Self {
        let nn = |p: *mut u8| NonNull::new(p).expect("region pointers are never null");
        Self {
            inner: Arc::new(PoolInner {
                region,
                header: nn(header.cast()).cast(),
                links: nn(links.cast()).cast(),
                states: nn(states.cast()).cast(),
                buffers: nn(buffers),
                packet_count: config.packet_count,
                buffer_count: config.buffer_count,
                buffer_size_bytes: config.buffer_size_bytes,
                stride_bytes: config.stride_bytes(),
                tag_mask: if tag_bits >= 32 {
                    u32::MAX
                } else {
                    (1u32 << tag_bits) - 1
                },
                name: config.name,
                options,
                id: NEXT_POOL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                owns_objects,
            }),
        }
    }

    /// Process-local id, carried by every [`Packet`] of this pool.
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// The 4-character name.
    pub fn name(&self) -> [u8; 4] {
        self.inner.name
    }

    /// `GetPacketCount`.
    pub fn packet_count(&self) -> u32 {
        self.inner.packet_count
    }

    /// `GetBufferCount`.
    pub fn buffer_count(&self) -> u32 {
        self.inner.buffer_count
    }

    /// Usable bytes per buffer: every packet's capacity.
    pub fn buffer_size_bytes(&self) -> u32 {
        self.inner.buffer_size_bytes
    }

    /// Distance between buffer starts in the region.
    pub fn stride_bytes(&self) -> u32 {
        self.inner.stride_bytes
    }

    /// The pool's flags.
    pub fn options(&self) -> PoolOptions {
        self.inner.options
    }

    /// The region the pool lives in.
    pub fn region(&self) -> &Arc<Region> {
        &self.inner.region
    }

    /// `allocatePacket`: takes a packet off the free list for `owner`, metadata reset.
    ///
    /// # Errors
    /// [`AllocateError::Exhausted`] when every packet is in use; [`AllocateError::Corrupted`]
    /// when a peer broke the shared free list.
    pub fn allocate(&self, owner: Owner) -> Result<Packet, AllocateError> {
        let index = self.inner.pop()?.ok_or(AllocateError::Exhausted {
            packet_count: self.inner.packet_count,
        })?;
        self.inner.claim_popped(index, owner)
    }

    /// `DeallocatePacket`: returns a driver-owned packet to the free list.
    ///
    /// # Errors
    /// [`DeallocateError::Foreign`], or [`DeallocateError::WrongOwner`] unless the driver
    /// owns it. The packet comes back in the error.
    pub fn deallocate(&self, packet: Packet) -> Result<(), DeallocateError> {
        let index =
            self.inner
                .release_token(packet, OwnerState::Driver, OwnerState::Free as u32)?;
        self.inner.push_chain(index, index);
        Ok(())
    }

    /// The system side's free: returns a system-owned packet to the free list.
    ///
    /// # Errors
    /// As [`PacketBufferPool::deallocate`], with the system as the required owner.
    pub fn system_free(&self, packet: Packet) -> Result<(), DeallocateError> {
        let index =
            self.inner
                .release_token(packet, OwnerState::System, OwnerState::Free as u32)?;
        self.inner.push_chain(index, index);
        Ok(())
    }

    /// The by-index `_DeallocatePacket(uint32_t packetIndex)` RPC: frees a driver-owned packet
    /// that was turned into a bare index with [`PacketBufferPool::into_index`].
    ///
    /// # Errors
    /// [`IndexError::OutOfRange`]; [`IndexError::NotDriverOwned`] — a second call for the same
    /// index is a double free and lands here ([`IndexError::is_double_free`]);
    /// [`IndexError::TokenLive`] if a token still holds it.
    pub fn deallocate_index(&self, index: u32) -> Result<(), IndexError> {
        let state = self.inner.state_checked(index)?;
        let expected = OwnerState::Driver as u32;
        if let Err(found) = state.owner.compare_exchange(
            expected,
            OwnerState::Free as u32,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            return Err(if found == expected | OWNER_TOKEN_BIT {
                IndexError::TokenLive { index }
            } else {
                IndexError::NotDriverOwned {
                    index,
                    owner_word: found,
                }
            });
        }
        self.inner.push_chain(index, index);
        Ok(())
    }

    /// Gives up a driver-owned token for its bare index (`_GetPacketIndex`), for crossing an
    /// FFI or IPC boundary. The packet stays driver-owned.
    ///
    /// # Errors
    /// [`DeallocateError::Foreign`] or [`DeallocateError::WrongOwner`], with the packet.
    pub fn into_index(&self, packet: Packet) -> Result<u32, DeallocateError> {
        self.inner
            .release_token(packet, OwnerState::Driver, OwnerState::Driver as u32)
    }

    /// Re-forms a token for a driver-owned bare index (`_CopyPacketWithIndex`).
    ///
    /// # Errors
    /// [`IndexError::OutOfRange`], [`IndexError::TokenLive`], [`IndexError::NotDriverOwned`].
    pub fn packet_from_index(&self, index: u32) -> Result<Packet, IndexError> {
        let state = self.inner.state_checked(index)?;
        let expected = OwnerState::Driver as u32;
        match state.owner.compare_exchange(
            expected,
            expected | OWNER_TOKEN_BIT,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(self.inner.token(index)),
            Err(found) if found == expected | OWNER_TOKEN_BIT => {
                Err(IndexError::TokenLive { index })
            }
            Err(found) => Err(IndexError::NotDriverOwned {
                index,
                owner_word: found,
            }),
        }
    }

    /// A read-only view of `packet`'s metadata and bytes.
    ///
    /// # Errors
    /// [`ForeignPacket`] if the packet is from another pool.
    pub fn packet<'a>(&'a self, packet: &'a Packet) -> Result<PacketView<'a>, ForeignPacket> {
        self.inner.check_pool(packet)?;
        Ok(PacketView {
            pool: &self.inner,
            index: packet.index,
        })
    }

    /// A mutable view of `packet`'s metadata and bytes.
    ///
    /// # Errors
    /// [`ForeignPacket`] if the packet is from another pool.
    pub fn packet_mut<'a>(
        &'a self,
        packet: &'a mut Packet,
    ) -> Result<PacketViewMut<'a>, ForeignPacket> {
        self.inner.check_pool(packet)?;
        Ok(PacketViewMut {
            pool: &self.inner,
            index: packet.index,
        })
    }

    /// The owner word of packet `index`, for audits and checkers.
    pub fn owner_word(&self, index: u32) -> Option<u32> {
        (index < self.inner.packet_count)
            .then(|| self.inner.state(index).owner.load(Ordering::Acquire))
    }

    /// Packets not on the free list or in a cache (a scan; for shutdown and checkers).
    pub fn in_use(&self) -> u32 {
        self.leak_report().in_use
    }

    /// Which packets are not free, by owner (a scan; for shutdown and checkers).
    pub fn leak_report(&self) -> LeakReport {
        let mut report = LeakReport {
            packet_count: self.inner.packet_count,
            ..LeakReport::default()
        };
        for index in 0..self.inner.packet_count {
            let word = self.inner.state(index).owner.load(Ordering::Acquire);
            let bucket = match OwnerState::from_word(word) {
                Some(OwnerState::Free) => continue,
                Some(OwnerState::System) => &mut report.system,
                Some(OwnerState::InSubmission) => &mut report.in_submission,
                Some(OwnerState::Driver) => &mut report.driver,
                Some(OwnerState::InCompletion) => &mut report.in_completion,
                None => &mut report.invalid,
            };
            *bucket += 1;
            report.in_use += 1;
            let _ = report.sample.push(index);
        }
        report
    }

    /// Moves a queued packet's owner state for a queue: checks `from`, stores `to`. The
    /// caller then spends the token.
    pub(crate) fn transfer_out_ref(
        &self,
        packet: &Packet,
        from: OwnerState,
        to: OwnerState,
    ) -> Result<u32, TransferError> {
        if self.inner.check_pool(packet).is_err() {
            return Err(TransferError::Foreign);
        }
        let state = self.inner.state(packet.index);
        let word = state.owner.load(Ordering::Relaxed);
        if word != from as u32 | OWNER_TOKEN_BIT {
            return Err(TransferError::WrongOwner(OwnerState::from_word(word)));
        }
        state.owner.store(to as u32, Ordering::Relaxed);
        Ok(packet.index)
    }

    /// Claims an index taken from a ring: `from` → `to` plus token, exclusively.
    pub(crate) fn transfer_in(
        &self,
        index: u32,
        from: OwnerState,
        to: OwnerState,
    ) -> Result<Packet, Option<u32>> {
        if index >= self.inner.packet_count {
            return Err(None);
        }
        self.inner
            .state(index)
            .owner
            .compare_exchange(
                from as u32,
                to as u32 | OWNER_TOKEN_BIT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .map(|_| self.inner.token(index))
            .map_err(Some)
    }
}

impl PoolInner {
    fn header(&self) -> &PoolHeader {
        // SAFETY: initialised and alive (PoolInner invariant); atomics only.
        unsafe { self.header.as_ref() }
    }

    fn link(&self, index: u32) -> &AtomicU32 {
        assert!(index < self.packet_count, "packet index out of range");
        // SAFETY: `index < packet_count` (asserted): in bounds.
        let link = unsafe { self.links.as_ptr().add(index as usize) };
        // SAFETY: initialised and alive (PoolInner invariant).
        unsafe { &*link }
    }

    fn state(&self, index: u32) -> &PacketState {
        assert!(index < self.packet_count, "packet index out of range");
        // SAFETY: `index < packet_count` (asserted): in bounds.
        let state = unsafe { self.states.as_ptr().add(index as usize) };
        // SAFETY: initialised and alive (PoolInner invariant).
        unsafe { &*state }
    }

    fn state_checked(&self, index: u32) -> Result<&PacketState, IndexError> {
        if index >= self.packet_count {
            return Err(IndexError::OutOfRange {
                index,
                packet_count: self.packet_count,
            });
        }
        Ok(self.state(index))
    }

    fn token(&self, index: u32) -> Packet {
        Packet {
            pool_id: self.id,
            index,
        }
    }

    fn check_pool(&self, packet: &Packet) -> Result<(), ForeignPacket> {
        if packet.pool_id != self.id || packet.index >= self.packet_count {
            return Err(ForeignPacket {
                index: packet.index,
                packet_pool_id: packet.pool_id,
                pool_id: self.id,
            });
        }
        Ok(())
    }

    fn pack(&self, tag: u32, index: u32) -> u64 {
        (u64::from(tag & self.tag_mask) << 32) | u64::from(index)
    }

    /// Pops one index (Treiber stack with ABA tag).
    fn pop(&self) -> Result<Option<u32>, AllocateError> {
        let head = &self.header().free_head.0;
        let mut current = head.load(Ordering::Acquire);
        loop {
            let index = current as u32;
            if index == NIL_INDEX {
                return Ok(None);
            }
            if index >= self.packet_count {
                return Err(AllocateError::Corrupted { index });
            }
            let next = self.link(index).load(Ordering::Relaxed);
            let new = self.pack(((current >> 32) as u32).wrapping_add(1), next);
            match head.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(Some(index)),
                Err(actual) => {
                    current = actual;
                    spin_loop();
                }
            }
        }
    }

    /// Pops up to `out.len()` indices with one successful CAS; returns how many.
    fn pop_many(&self, out: &mut [u32]) -> Result<usize, AllocateError> {
        let head = &self.header().free_head.0;
        let mut current = head.load(Ordering::Acquire);
        'retry: loop {
            let first = current as u32;
            if first == NIL_INDEX || out.is_empty() {
                return Ok(0);
            }
            if first >= self.packet_count {
                return Err(AllocateError::Corrupted { index: first });
            }
            let mut n = 0;
            let mut index = first;
            let next = loop {
                out[n] = index;
                n += 1;
                let next = self.link(index).load(Ordering::Relaxed);
                if n == out.len() || next == NIL_INDEX {
                    break next;
                }
                if next >= self.packet_count {
                    // A stale read while another thread moved the list, or corruption:
                    // re-read the head; if it has not changed, the list is corrupt.
                    let again = head.load(Ordering::Acquire);
                    if again == current {
                        return Err(AllocateError::Corrupted { index: next });
                    }
                    current = again;
                    spin_loop();
                    continue 'retry;
                }
                index = next;
            };
            let new = self.pack(((current >> 32) as u32).wrapping_add(1), next);
            match head.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(n),
                Err(actual) => {
                    current = actual;
                    spin_loop();
                }
            }
        }
    }

    /// Pushes a chain `first → … → last` whose inner links are already set.
    fn push_chain(&self, first: u32, last: u32) {
        let head = &self.header().free_head.0;
        let mut current = head.load(Ordering::Relaxed);
        loop {
            self.link(last).store(current as u32, Ordering::Relaxed);
            let new = self.pack(((current >> 32) as u32).wrapping_add(1), first);
            match head.compare_exchange(current, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => {
                    current = actual;
                    spin_loop();
                }
            }
        }
    }

    /// Makes a token for an index just taken off the free list.
    /// Claims an index taken off the shared free list: `Free` → `owner` + token, with a
    /// compare-and-swap, so even a free list a peer corrupted (one index popped twice)
    /// cannot produce two tokens.
    fn claim_popped(&self, index: u32, owner: Owner) -> Result<Packet, AllocateError> {
        let state = self.state(index);
        if state
            .owner
            .compare_exchange(
                OwnerState::Free as u32,
                owner.state() as u32 | OWNER_TOKEN_BIT,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // The free list handed out a packet that is not free: a peer broke the list.
            // The index is dropped from the list rather than handed out twice.
            return Err(AllocateError::Corrupted { index });
        }
        state.reset();
        Ok(self.token(index))
    }

    /// Reserves an index taken off the shared free list for a [`PoolCache`]:
    /// `Free` → [`CACHE_RESERVED_WORD`], with a compare-and-swap as in `claim_popped`.
    fn reserve_popped(&self, index: u32) -> bool {
        self.state(index)
            .owner
            .compare_exchange(
                OwnerState::Free as u32,
                CACHE_RESERVED_WORD,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Claims an index a [`PoolCache`] holds (reserved, so exclusively this cache's).
    fn claim_reserved(&self, index: u32, owner: Owner) -> Packet {
        let state = self.state(index);
        state.reset();
        state
            .owner
            .store(owner.state() as u32 | OWNER_TOKEN_BIT, Ordering::Release);
        self.token(index)
    }

    /// Ends a token for `expected` owner, storing `new_word` as the packet's owner word.
    fn release_token(
        &self,
        packet: Packet,
        expected: OwnerState,
        new_word: u32,
    ) -> Result<u32, DeallocateError> {
        if self.check_pool(&packet).is_err() {
            return Err(DeallocateError::Foreign(packet));
        }
        let state = self.state(packet.index);
        let word = state.owner.load(Ordering::Acquire);
        if word != expected as u32 | OWNER_TOKEN_BIT {
            return Err(DeallocateError::WrongOwner {
                packet,
                state: OwnerState::from_word(word),
                expected,
            });
        }
        state.owner.store(new_word, Ordering::Release);
        Ok(packet.index)
    }

    fn buffer_ptr(&self, index: u32) -> *mut u8 {
        assert!(index < self.packet_count, "packet index out of range");
        // SAFETY: `index < packet_count`, so the buffer start is inside the buffer area.
        unsafe {
            self.buffers
                .as_ptr()
                .add(index as usize * self.stride_bytes as usize)
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        if self.owns_objects {
            // SAFETY: the pool wrote these objects in `create_with_tag_bits`; this is the last
            // reference (Arc drop). Dropping in place matters only for loom's atomics.
            unsafe { std::ptr::drop_in_place(self.header.as_ptr()) };
            let count = self.packet_count as usize;
            let links = std::ptr::slice_from_raw_parts_mut(self.links.as_ptr(), count);
            // SAFETY: as above, for the links.
            unsafe { std::ptr::drop_in_place(links) };
            let states = std::ptr::slice_from_raw_parts_mut(self.states.as_ptr(), count);
            // SAFETY: as above, for the states.
            unsafe { std::ptr::drop_in_place(states) };
        }
    }
}

fn check_fits(
    region: &Region,
    offset_bytes: usize,
    len_bytes: usize,
) -> Result<(), PoolCreateError> {
    let fits = offset_bytes
        .checked_add(len_bytes)
        .is_some_and(|end| end <= region.len_bytes());
    if !fits || !offset_bytes.is_multiple_of(4096) {
        return Err(PoolCreateError::DoesNotFit {
            offset_bytes,
            len_bytes,
            region_bytes: region.len_bytes(),
        });
    }
    Ok(())
}

impl PacketState {
    fn new() -> Self {
        Self {
            owner: AtomicU32::new(OwnerState::Free as u32),
            data_length: AtomicU32::new(0),
            data_offset: AtomicU16::new(0),
            link_header_length: AtomicU8::new(0),
            direction: AtomicU8::new(0),
            completion_status: AtomicU32::new(0),
            timestamp_ns: AtomicU64::new(0),
            tx_checksum_flags: AtomicU32::new(0),
            rx_checksum_flags: AtomicU32::new(0),
            checksum_start: AtomicU16::new(0),
            checksum_stuff: AtomicU16::new(0),
            rx_checksum_value: AtomicU16::new(0),
            tso_segment_size: AtomicU16::new(0),
            tso_flags: AtomicU32::new(0),
            lro_flags: AtomicU32::new(0),
            lro_segment_count: AtomicU8::new(0),
            reserved: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }

    fn reset(&self) {
        let r = Ordering::Relaxed;
        self.data_length.store(0, r);
        self.data_offset.store(0, r);
        self.link_header_length.store(0, r);
        self.direction.store(0, r);
        self.completion_status.store(0, r);
        self.timestamp_ns.store(0, r);
        self.tx_checksum_flags.store(0, r);
        self.rx_checksum_flags.store(0, r);
        self.checksum_start.store(0, r);
        self.checksum_stuff.store(0, r);
        self.rx_checksum_value.store(0, r);
        self.tso_segment_size.store(0, r);
        self.tso_flags.store(0, r);
        self.lro_flags.store(0, r);
        self.lro_segment_count.store(0, r);
    }
}

/// Read access to one packet (`IOUserNetworkPacket` getters).
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    pool: &'a PoolInner,
    index: u32,
}

/// Read-write access to one packet (`IOUserNetworkPacket` getters and setters).
#[derive(Debug)]
pub struct PacketViewMut<'a> {
    pool: &'a PoolInner,
    index: u32,
}

macro_rules! packet_getters {
    () => {
        fn st(&self) -> &PacketState {
            self.pool.state(self.index)
        }

        /// The packet's index.
        pub fn index(&self) -> u32 {
            self.index
        }

        /// `getDataOffset`.
        pub fn data_offset(&self) -> u16 {
            self.st().data_offset.load(Ordering::Relaxed)
        }

        /// `getDataLength`.
        pub fn data_length(&self) -> u32 {
            self.st().data_length.load(Ordering::Relaxed)
        }

        /// Buffer capacity in bytes.
        pub fn capacity_bytes(&self) -> u32 {
            self.pool.buffer_size_bytes
        }

        /// `getLinkHeaderLength`.
        pub fn link_header_length(&self) -> u8 {
            self.st().link_header_length.load(Ordering::Relaxed)
        }

        /// The packet's direction (`None` for an unknown raw value a peer wrote).
        pub fn direction(&self) -> Option<PacketDirection> {
            PacketDirection::from_raw(self.st().direction.load(Ordering::Relaxed))
        }

        /// The raw completion status (`IOReturn`).
        pub fn completion_status(&self) -> u32 {
            self.st().completion_status.load(Ordering::Relaxed)
        }

        /// `getTimestamp`: `None` when cleared.
        pub fn timestamp_ns(&self) -> Option<u64> {
            let t = self.st().timestamp_ns.load(Ordering::Relaxed);
            (t != 0).then_some(t)
        }

        /// `getTxChecksumInfo`: flags, start and stuff offsets.
        pub fn tx_checksum_info(&self) -> (TxChecksumFlags, u16, u16) {
            let s = self.st();
            (
                TxChecksumFlags(s.tx_checksum_flags.load(Ordering::Relaxed)),
                s.checksum_start.load(Ordering::Relaxed),
                s.checksum_stuff.load(Ordering::Relaxed),
            )
        }

        /// `getTSOInfo`: segment size (0 = not TSO) and flags.
        pub fn tso_info(&self) -> (u16, TsoFlags) {
            let s = self.st();
            (
                s.tso_segment_size.load(Ordering::Relaxed),
                TsoFlags(s.tso_flags.load(Ordering::Relaxed)),
            )
        }

        /// `getRxChecksumInfo`: flags and value.
        pub fn rx_checksum_info(&self) -> (RxChecksumFlags, u16) {
            let s = self.st();
            (
                RxChecksumFlags(s.rx_checksum_flags.load(Ordering::Relaxed)),
                s.rx_checksum_value.load(Ordering::Relaxed),
            )
        }

        /// LRO flags and segment count.
        pub fn lro_info(&self) -> (LroFlags, u8) {
            let s = self.st();
            (
                LroFlags(s.lro_flags.load(Ordering::Relaxed)),
                s.lro_segment_count.load(Ordering::Relaxed),
            )
        }

        /// The whole buffer (capacity bytes).
        pub fn buffer(&self) -> &[u8] {
            let ptr = self.pool.buffer_ptr(self.index);
            // SAFETY: the buffer is `buffer_size_bytes <= stride` bytes inside the region, and
            // this view borrows the packet's unique token, so no `&mut` to it exists.
            unsafe { std::slice::from_raw_parts(ptr, self.pool.buffer_size_bytes as usize) }
        }

        /// The frame: `buffer[offset .. offset + length]` (clamped to capacity if a peer wrote
        /// impossible values).
        pub fn data(&self) -> &[u8] {
            let (start, end) = self.data_range();
            &self.buffer()[start..end]
        }

        fn data_range(&self) -> (usize, usize) {
            let cap = self.pool.buffer_size_bytes as usize;
            let start = (self.data_offset() as usize).min(cap);
            let end = start.saturating_add(self.data_length() as usize).min(cap);
            (start, end)
        }
    };
}

impl PacketView<'_> {
    packet_getters!();
}

impl PacketViewMut<'_> {
    packet_getters!();

    fn check_bounds(&self, offset: u32, length: u32) -> Result<(), PacketBoundsError> {
        if u64::from(offset) + u64::from(length) > u64::from(self.pool.buffer_size_bytes) {
            return Err(PacketBoundsError {
                offset_bytes: offset,
                length_bytes: length,
                capacity_bytes: self.pool.buffer_size_bytes,
            });
        }
        Ok(())
    }

    /// `setDataOffset`.
    ///
    /// # Errors
    /// [`PacketBoundsError`] if `offset + length > capacity`.
    pub fn set_data_offset(&mut self, offset: u16) -> Result<(), PacketBoundsError> {
        self.check_bounds(u32::from(offset), self.data_length())?;
        self.st().data_offset.store(offset, Ordering::Relaxed);
        Ok(())
    }

    /// `setDataLength`.
    ///
    /// # Errors
    /// [`PacketBoundsError`] if `offset + length > capacity`.
    pub fn set_data_length(&mut self, length: u32) -> Result<(), PacketBoundsError> {
        self.check_bounds(u32::from(self.data_offset()), length)?;
        self.st().data_length.store(length, Ordering::Relaxed);
        Ok(())
    }

    /// `setDataOffsetAndLength`.
    ///
    /// # Errors
    /// [`PacketBoundsError`] if `offset + length > capacity`.
    pub fn set_data_offset_and_length(
        &mut self,
        offset: u16,
        length: u32,
    ) -> Result<(), PacketBoundsError> {
        self.check_bounds(u32::from(offset), length)?;
        self.st().data_offset.store(offset, Ordering::Relaxed);
        self.st().data_length.store(length, Ordering::Relaxed);
        Ok(())
    }

    /// `setLinkHeaderLength`.
    pub fn set_link_header_length(&mut self, length: u8) {
        self.st()
            .link_header_length
            .store(length, Ordering::Relaxed);
    }

    /// Sets the direction.
    pub fn set_direction(&mut self, direction: PacketDirection) {
        self.st()
            .direction
            .store(direction as u8, Ordering::Relaxed);
    }

    /// `setCompletionStatus`.
    pub fn set_completion_status(&mut self, status: IoReturn) {
        self.st()
            .completion_status
            .store(status.code(), Ordering::Relaxed);
    }

    /// `setTimestamp` (0 is stored as "no timestamp").
    pub fn set_timestamp_ns(&mut self, timestamp_ns: u64) {
        self.st()
            .timestamp_ns
            .store(timestamp_ns, Ordering::Relaxed);
    }

    /// `clearTimestamp`.
    pub fn clear_timestamp(&mut self) {
        self.st().timestamp_ns.store(0, Ordering::Relaxed);
    }

    /// Sets the Tx checksum request (the system side fills it for the driver).
    pub fn set_tx_checksum_info(&mut self, flags: TxChecksumFlags, start: u16, stuff: u16) {
        let s = self.st();
        s.tx_checksum_flags.store(flags.0, Ordering::Relaxed);
        s.checksum_start.store(start, Ordering::Relaxed);
        s.checksum_stuff.store(stuff, Ordering::Relaxed);
    }

    /// Sets the TSO request (segment size 0 = not TSO).
    pub fn set_tso_info(&mut self, segment_size: u16, flags: TsoFlags) {
        let s = self.st();
        s.tso_segment_size.store(segment_size, Ordering::Relaxed);
        s.tso_flags.store(flags.0, Ordering::Relaxed);
    }

    /// `setRxChecksumInfo`.
    pub fn set_rx_checksum_info(&mut self, flags: RxChecksumFlags, value: u16) {
        let s = self.st();
        s.rx_checksum_flags.store(flags.0, Ordering::Relaxed);
        s.rx_checksum_value.store(value, Ordering::Relaxed);
    }

    /// `setLROInfo`.
    pub fn set_lro_info(&mut self, flags: LroFlags, segment_count: u8) {
        let s = self.st();
        s.lro_flags.store(flags.0, Ordering::Relaxed);
        s.lro_segment_count.store(segment_count, Ordering::Relaxed);
    }

    /// The whole buffer, writable.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        let ptr = self.pool.buffer_ptr(self.index);
        // SAFETY: in bounds (see `buffer`); this view mutably borrows the packet's unique
        // token (PoolInner invariant), so this is the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.pool.buffer_size_bytes as usize) }
    }

    /// The frame, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (start, end) = self.data_range();
        &mut self.buffer_mut()[start..end]
    }

    /// Copies `frame` to `offset`, and sets offset and length.
    ///
    /// # Errors
    /// [`PacketBoundsError`] if it does not fit.
    pub fn write_frame(&mut self, offset: u16, frame: &[u8]) -> Result<(), PacketBoundsError> {
        let length = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.set_data_offset_and_length(offset, length)?;
        self.data_mut().copy_from_slice(frame);
        Ok(())
    }
}

/// A per-thread front for a pool (DPDK mempool cache): allocate and free from a private stack,
/// refilling and flushing half of it at a time with one CAS on the shared free list.
///
/// Packets sitting in the cache count as free. Dropping the cache (or [`PoolCache::flush`])
/// returns them.
#[derive(Debug)]
pub struct PoolCache {
    pool: PacketBufferPool,
    stack: [u32; POOL_CACHE_MAX],
    len: usize,
    size: usize,
}

impl PoolCache {
    /// A cache of up to `size` packets (clamped to 2..=[`POOL_CACHE_MAX`]).
    pub fn new(pool: &PacketBufferPool, size: usize) -> Self {
        Self {
            pool: pool.clone(),
            stack: [NIL_INDEX; POOL_CACHE_MAX],
            len: 0,
            size: size.clamp(2, POOL_CACHE_MAX),
        }
    }

    /// The pool behind the cache.
    pub fn pool(&self) -> &PacketBufferPool {
        &self.pool
    }

    /// Packets held in the cache right now.
    pub fn cached(&self) -> usize {
        self.len
    }

    /// Allocates like [`PacketBufferPool::allocate`], from the cache when it can.
    ///
    /// # Errors
    /// As [`PacketBufferPool::allocate`].
    #[inline]
    pub fn allocate(&mut self, owner: Owner) -> Result<Packet, AllocateError> {
        if self.len == 0 {
            self.refill()?;
        }
        self.len -= 1;
        Ok(self.pool.inner.claim_reserved(self.stack[self.len], owner))
    }

    /// Deallocates a driver-owned packet into the cache.
    ///
    /// # Errors
    /// As [`PacketBufferPool::deallocate`].
    #[inline]
    pub fn deallocate(&mut self, packet: Packet) -> Result<(), DeallocateError> {
        let index =
            self.pool
                .inner
                .release_token(packet, OwnerState::Driver, CACHE_RESERVED_WORD)?;
        self.put(index);
        Ok(())
    }

    /// Frees a system-owned packet into the cache.
    ///
    /// # Errors
    /// As [`PacketBufferPool::system_free`].
    #[inline]
    pub fn system_free(&mut self, packet: Packet) -> Result<(), DeallocateError> {
        let index =
            self.pool
                .inner
                .release_token(packet, OwnerState::System, CACHE_RESERVED_WORD)?;
        self.put(index);
        Ok(())
    }

    #[inline]
    fn put(&mut self, index: u32) {
        if self.len == self.size {
            self.flush_to(self.size / 2);
        }
        self.stack[self.len] = index;
        self.len += 1;
    }

    /// Returns every cached packet to the shared free list.
    pub fn flush(&mut self) {
        self.flush_to(0);
    }

    /// Takes half a cache's worth off the shared list, reserving each index exclusively.
    fn refill(&mut self) -> Result<(), AllocateError> {
        let want = self.size / 2;
        let popped = self.pool.inner.pop_many(&mut self.stack[..want])?;
        let mut corrupted = None;
        for i in 0..popped {
            let index = self.stack[i];
            if self.pool.inner.reserve_popped(index) {
                self.stack[self.len] = index;
                self.len += 1;
            } else {
                // Not free although it was on the free list: a peer broke the list. The index
                // is dropped rather than handed out twice, and the caller hears of it.
                corrupted = Some(index);
            }
        }
        if let Some(index) = corrupted {
            return Err(AllocateError::Corrupted { index });
        }
        if self.len == 0 {
            return Err(AllocateError::Exhausted {
                packet_count: self.pool.inner.packet_count,
            });
        }
        Ok(())
    }

    fn flush_to(&mut self, keep: usize) {
        if self.len <= keep {
            return;
        }
        let chain = &self.stack[keep..self.len];
        for &index in chain {
            self.pool
                .inner
                .state(index)
                .owner
                .store(OwnerState::Free as u32, Ordering::Relaxed);
        }
        for pair in chain.windows(2) {
            self.pool
                .inner
                .link(pair[0])
                .store(pair[1], Ordering::Relaxed);
        }
        self.pool.inner.push_chain(chain[0], chain[chain.len() - 1]);
        self.len = keep;
    }
}

impl Drop for PoolCache {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
