//! The lock-free single-producer/single-consumer ring under all four NDK queues.
//!
//! Design (rings.md §0): power-of-two capacity, free-running `u32` indices that wrap
//! naturally (`slot = index & mask`, `used = producer - consumer`), the producer index, the
//! consumer index and the control word each on their own 128-byte block, and a cached copy of
//! the remote index in each half, so a half touches the other half's line only when its cached
//! view runs out. Batches are the primary API: [`Producer::reserve`] hands out up to two
//! mutable slices and [`WriteChunk::commit`] publishes them with one `Release` store;
//! [`Consumer::peek`] / [`ReadChunk::release`] mirror it.
//!
//! The header and the slots are `#[repr(C)]` and live in a [`Region`], so the C++ dext (see
//! `dext-shim/include/vnic/ring.h`) and a Rust helper in another process can share one ring.
//! A peer in another process is not trusted: an index that would put more than `capacity`
//! entries in the ring is reported as [`RingCorrupted`] instead of being followed.
//!
//! Sleep and wakeup use a need-wakeup flag per direction in the control block (the AF_XDP /
//! io_uring pattern, rings.md §1.6–1.7). Setting the flag and re-checking the ring is a Dekker
//! store→load pattern, so both sides put a `fence(SeqCst)` between their store and their load.
//!
//! This is one of the crate's three `unsafe` modules.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::shm::{Region, RegionError};
use crate::sync::{fence, AtomicU32, Ordering, UnsafeCell};

/// `"VRNG"`: marks an initialised ring header.
pub const RING_MAGIC: u32 = u32::from_le_bytes(*b"VRNG");
/// Largest ring capacity, in slots.
pub const RING_CAPACITY_MAX: u32 = 1 << 24;
/// Need-wakeup flag: the consumer is (about to go) asleep waiting for entries.
pub const WAKE_CONSUMER: u32 = 1 << 0;
/// Need-wakeup flag: the producer is (about to go) asleep waiting for free slots.
pub const WAKE_PRODUCER: u32 = 1 << 1;

/// A value that can sit in a ring slot shared with another process.
///
/// # Safety
/// Implementers guarantee that every bit pattern of `size_of::<Self>()` bytes is a valid value
/// and that the type has no padding, because the peer may write any bytes into a slot and the
/// ring reads them back as `Self`.
pub unsafe trait RingElement: Copy + Default + Send + Sync + 'static {}

// SAFETY: every bit pattern is a valid u32 / u64, and they have no padding.
unsafe impl RingElement for u32 {}
// SAFETY: as above.
unsafe impl RingElement for u64 {}
/// A 32-byte block of plain bytes: rings of these carry bytes in place (a record of blocks
/// per frame, written into reserved slots and read from peeked ones, `as_flattened` giving
/// the byte view), so a byte hand-off needs no per-frame pool ownership steps.
// SAFETY: every bit pattern is a valid `[u8; 32]`; an array of bytes has no padding.
unsafe impl RingElement for [u8; 32] {}

/// A 16-byte packet descriptor, the richer slot format (AF_XDP `xdp_desc`-like) that the
/// benchmark moves next to plain `u32` indices.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketDescriptor {
    /// Packet index in its pool.
    pub index: u32,
    /// Frame length in bytes.
    pub length_bytes: u32,
    /// Data offset in bytes from the start of the buffer.
    pub offset_bytes: u16,
    /// Opaque flags.
    pub flags: u16,
    /// Sequence number or cookie chosen by the producer.
    pub cookie: u32,
}

// SAFETY: `#[repr(C)]` of u32, u32, u16, u16, u32: 16 bytes, no padding, any bits valid.
unsafe impl RingElement for PacketDescriptor {}

/// One 128-byte block: the false-sharing range on x86-64 and Apple silicon (rings.md §1.2).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct CacheLine<T>(pub T);

/// Fields written once at creation, plus the need-wakeup flags and the enable flag.
#[repr(C)]
#[derive(Debug)]
pub struct RingControl {
    /// Need-wakeup bits: [`WAKE_CONSUMER`], [`WAKE_PRODUCER`].
    pub flags: AtomicU32,
    /// 1 when the queue is enabled (NDK queues start disabled).
    pub enabled: AtomicU32,
    /// [`RING_MAGIC`] once initialised.
    pub magic: AtomicU32,
    /// Number of slots, a power of two.
    pub capacity: AtomicU32,
    /// `size_of` one slot, checked on attach.
    pub element_size_bytes: AtomicU32,
    /// The NDK queue id (a free tag).
    pub queue_id: AtomicU32,
    /// Which NDK queue this ring carries ([`crate::queue::QueueKind`] as `u32`).
    pub kind: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
}

/// The shared ring header: three 128-byte blocks, then the slots.
#[repr(C)]
#[derive(Debug)]
pub struct RingHeader {
    /// Free-running producer index: written only by the producer.
    pub producer: CacheLine<AtomicU32>,
    /// Free-running consumer index: written only by the consumer.
    pub consumer: CacheLine<AtomicU32>,
    /// Creation-time facts and flags.
    pub control: CacheLine<RingControl>,
}

#[cfg(not(loom))]
mod layout_checks {
    use super::{CacheLine, PacketDescriptor, RingControl, RingHeader};
    use static_assertions::{assert_eq_size, const_assert_eq};
    use std::mem::{align_of, offset_of, size_of};

    const_assert_eq!(size_of::<RingControl>(), 32);
    const_assert_eq!(size_of::<CacheLine<u32>>(), 128);
    const_assert_eq!(size_of::<RingHeader>(), 384);
    const_assert_eq!(align_of::<RingHeader>(), 128);
    const_assert_eq!(offset_of!(RingHeader, producer), 0);
    const_assert_eq!(offset_of!(RingHeader, consumer), 128);
    const_assert_eq!(offset_of!(RingHeader, control), 256);
    const_assert_eq!(offset_of!(RingControl, flags), 0);
    const_assert_eq!(offset_of!(RingControl, enabled), 4);
    const_assert_eq!(offset_of!(RingControl, magic), 8);
    const_assert_eq!(offset_of!(RingControl, capacity), 12);
    const_assert_eq!(offset_of!(RingControl, element_size_bytes), 16);
    const_assert_eq!(offset_of!(RingControl, queue_id), 20);
    const_assert_eq!(offset_of!(RingControl, kind), 24);
    assert_eq_size!(PacketDescriptor, [u8; 16]);
    assert_eq_size!(super::Slot<u32>, u32);
}

type Slot<T> = UnsafeCell<T>;

/// Bytes one ring of `capacity` slots of `T` takes in a region (header + slots), rounded up
/// to 128 so rings can be packed back to back.
pub const fn ring_layout_bytes<T>(capacity: u32) -> usize {
    let raw = std::mem::size_of::<RingHeader>() + capacity as usize * std::mem::size_of::<T>();
    (raw + 127) & !127
}

/// How to create a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Number of slots; a power of two from 1 to [`RING_CAPACITY_MAX`].
    pub capacity: u32,
    /// Where both free-running indices start. Tests start near `u32::MAX` to cross the wrap.
    pub start_index: u32,
    /// NDK queue id stored in the header.
    pub queue_id: u32,
    /// Queue kind stored in the header.
    pub kind: u32,
}

impl RingConfig {
    /// A ring of `capacity` slots starting at index 0, id 0, kind 0.
    pub const fn with_capacity(capacity: u32) -> Self {
        Self {
            capacity,
            start_index: 0,
            queue_id: 0,
            kind: 0,
        }
    }
}

/// Why a ring could not be created, attached or split.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// Capacity is 0, not a power of two, or above [`RING_CAPACITY_MAX`].
    #[error("ring capacity {capacity} is not a power of two in 1..={RING_CAPACITY_MAX}")]
    BadCapacity {
        /// The capacity asked for or found.
        capacity: u32,
    },
    /// The ring does not fit in the region at that offset, or the offset is misaligned.
    #[error("a ring of {len_bytes} bytes does not fit at offset {offset_bytes} of a {region_bytes}-byte region")]
    DoesNotFit {
        /// Requested offset.
        offset_bytes: usize,
        /// Bytes the ring needs.
        len_bytes: usize,
        /// Bytes the region has.
        region_bytes: usize,
    },
    /// Attaching found no initialised ring header (wrong magic).
    #[error("no ring header at this offset (magic {found:#x})")]
    BadMagic {
        /// The magic value found.
        found: u32,
    },
    /// Attaching found a ring whose slots are a different size than `T`.
    #[error("ring slots are {found} bytes, expected {expected}")]
    ElementSize {
        /// Slot size recorded in the header.
        found: u32,
        /// `size_of::<T>()`.
        expected: u32,
    },
    /// The header's indices are already inconsistent.
    #[error(transparent)]
    Corrupted(#[from] RingCorrupted),
    /// This process already holds the producer (or consumer) half of this ring.
    #[error("the {half} half of this ring is already taken")]
    HalfTaken {
        /// `"producer"` or `"consumer"`.
        half: &'static str,
    },
    /// The backing region could not be allocated.
    #[error(transparent)]
    Region(#[from] RegionError),
}

/// The peer published indices that cannot be right: more than `capacity` entries in the ring.
///
/// A ring in this state moves nothing more; the values are reported so the caller can log and
/// count them. Only a broken or hostile peer in another process can cause it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ring indices corrupted: producer {producer}, consumer {consumer}, capacity {capacity}")]
pub struct RingCorrupted {
    /// Producer index seen.
    pub producer: u32,
    /// Consumer index seen.
    pub consumer: u32,
    /// Ring capacity.
    pub capacity: u32,
}

/// A ring placed in a region: header and slots. Both halves hold it through an [`Arc`].
///
/// Invariant (`Ring` invariant): `header` points to an initialised [`RingHeader`] and `slots`
/// to `capacity` initialised slots, both inside `region`, which the `Arc` keeps alive. The
/// process holds at most one [`Producer`] and one [`Consumer`] at a time (`producer_taken`,
/// `consumer_taken`, released when the half drops); the peer process holds the other half.
#[derive(Debug)]
pub struct Ring<T: RingElement> {
    region: Arc<Region>,
    header: NonNull<RingHeader>,
    slots: NonNull<Slot<T>>,
    capacity: u32,
    owns_objects: bool,
    producer_taken: AtomicBool,
    consumer_taken: AtomicBool,
    _marker: PhantomData<T>,
}

// SAFETY: the pointers refer into the `Arc<Region>` the ring owns (Ring invariant); all shared
// state behind them is atomics or slots whose access is ordered by the index protocol.
unsafe impl<T: RingElement> Send for Ring<T> {}
// SAFETY: as for `Send`; `&Ring` only exposes atomics and the claim flags.
unsafe impl<T: RingElement> Sync for Ring<T> {}

impl<T: RingElement> Ring<T> {
    /// A fresh ring on its own heap region.
    ///
    /// # Errors
    /// [`RingError::BadCapacity`], or [`RingError::Region`] if memory is short.
    pub fn new(config: RingConfig) -> Result<Arc<Self>, RingError> {
        check_capacity(config.capacity)?;
        // Sized by `Slot<T>`: the same as `T` outside loom (`repr(transparent)`), larger
        // under loom, whose cells carry tracking state.
        let region = Arc::new(Region::heap(ring_layout_bytes::<Slot<T>>(config.capacity))?);
        Self::create_in(region, 0, config)
    }

    /// Initialises a ring at `offset_bytes` of `region`, overwriting whatever was there.
    ///
    /// # Errors
    /// [`RingError::BadCapacity`], [`RingError::DoesNotFit`].
    pub fn create_in(
        region: Arc<Region>,
        offset_bytes: usize,
        config: RingConfig,
    ) -> Result<Arc<Self>, RingError> {
        check_capacity(config.capacity)?;
        let (header, slots) = locate::<T>(&region, offset_bytes, config.capacity)?;
        // The three blocks' contents are written one by one, not as one `RingHeader` value: a
        // typed write of the whole struct would leave the `CacheLine` padding uninitialised,
        // and a peer attaching at another offset would then read uninitialised bytes as an
        // index or magic (undefined behaviour; found by Miri). The padding keeps the region's
        // bytes (zeroed for a heap region).
        let h = header.as_ptr();
        // SAFETY: `header` is in bounds and aligned (`locate`); a place projection only.
        let producer = unsafe { &raw mut (*h).producer.0 };
        // SAFETY: in bounds and aligned; no reference to these bytes exists yet, since the
        // ring is being created.
        unsafe { producer.write(AtomicU32::new(config.start_index)) };
        // SAFETY: as for `producer`.
        let consumer = unsafe { &raw mut (*h).consumer.0 };
        // SAFETY: as above.
        unsafe { consumer.write(AtomicU32::new(config.start_index)) };
        // SAFETY: as for `producer`.
        let control = unsafe { &raw mut (*h).control.0 };
        // SAFETY: as above; `RingControl` is eight `u32`s with no padding.
        unsafe {
            control.write(RingControl {
                flags: AtomicU32::new(0),
                enabled: AtomicU32::new(0),
                magic: AtomicU32::new(0),
                capacity: AtomicU32::new(config.capacity),
                element_size_bytes: AtomicU32::new(std::mem::size_of::<T>() as u32),
                queue_id: AtomicU32::new(config.queue_id),
                kind: AtomicU32::new(config.kind),
                reserved: AtomicU32::new(0),
            });
        };
        for i in 0..config.capacity as usize {
            // SAFETY: slot `i < capacity` is in bounds (`locate`).
            let slot = unsafe { slots.as_ptr().add(i) };
            // SAFETY: in bounds and aligned, and not yet shared with anyone.
            unsafe { slot.write(UnsafeCell::new(T::default())) };
        }
        // SAFETY: initialised just above; shared access to an atomic only.
        let control = unsafe { &header.as_ref().control.0 };
        // Published last, so a peer that sees the magic sees initialised slots.
        control.magic.store(RING_MAGIC, Ordering::Release);
        Ok(Arc::new(Self {
            region,
            header,
            slots,
            capacity: config.capacity,
            owns_objects: true,
            producer_taken: AtomicBool::new(false),
            consumer_taken: AtomicBool::new(false),
            _marker: PhantomData,
        }))
    }

    /// Attaches to a ring another process (or earlier code) created at `offset_bytes`.
    ///
    /// # Errors
    /// [`RingError::BadMagic`], [`RingError::ElementSize`], [`RingError::BadCapacity`],
    /// [`RingError::DoesNotFit`], [`RingError::Corrupted`].
    #[cfg(not(loom))]
    pub fn attach(region: Arc<Region>, offset_bytes: usize) -> Result<Arc<Self>, RingError> {
        let (header, _) = locate::<T>(&region, offset_bytes, 0)?;
        // SAFETY: `header` is in bounds and aligned (`locate` with 0 slots); a `RingHeader` is
        // all `AtomicU32`, for which every bit pattern is valid.
        let h = unsafe { header.as_ref() };
        let magic = h.control.0.magic.load(Ordering::Acquire);
        if magic != RING_MAGIC {
            return Err(RingError::BadMagic { found: magic });
        }
        let element = h.control.0.element_size_bytes.load(Ordering::Relaxed);
        if element != std::mem::size_of::<T>() as u32 {
            return Err(RingError::ElementSize {
                found: element,
                expected: std::mem::size_of::<T>() as u32,
            });
        }
        let capacity = h.control.0.capacity.load(Ordering::Relaxed);
        check_capacity(capacity)?;
        let (header, slots) = locate::<T>(&region, offset_bytes, capacity)?;
        let ring = Self {
            region,
            header,
            slots,
            capacity,
            owns_objects: false,
            producer_taken: AtomicBool::new(false),
            consumer_taken: AtomicBool::new(false),
            _marker: PhantomData,
        };
        let producer = ring.header().producer.0.load(Ordering::Acquire);
        let consumer = ring.header().consumer.0.load(Ordering::Acquire);
        ring.check(producer, consumer)?;
        Ok(Arc::new(ring))
    }

    /// Takes this process's producer half.
    ///
    /// # Errors
    /// [`RingError::HalfTaken`] if it was taken before, [`RingError::Corrupted`] if the
    /// indices in the header are already inconsistent.
    pub fn producer(self: &Arc<Self>) -> Result<Producer<T>, RingError> {
        let tail = self.header().producer.0.load(Ordering::Relaxed);
        let head = self.header().consumer.0.load(Ordering::Acquire);
        // The cached view must start consistent: every fast path relies on it.
        self.check(tail, head)?;
        if self
            .producer_taken
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Err(RingError::HalfTaken { half: "producer" });
        }
        Ok(Producer {
            ring: Arc::clone(self),
            tail,
            cached_head: head,
        })
    }

    /// Takes this process's consumer half.
    ///
    /// # Errors
    /// [`RingError::HalfTaken`] if it was taken before, [`RingError::Corrupted`] if the
    /// indices in the header are already inconsistent.
    pub fn consumer(self: &Arc<Self>) -> Result<Consumer<T>, RingError> {
        let head = self.header().consumer.0.load(Ordering::Relaxed);
        let tail = self.header().producer.0.load(Ordering::Acquire);
        // The cached view must start consistent: every fast path relies on it.
        self.check(tail, head)?;
        if self
            .consumer_taken
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Err(RingError::HalfTaken { half: "consumer" });
        }
        Ok(Consumer {
            ring: Arc::clone(self),
            head,
            cached_tail: tail,
        })
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Whether the queue this ring carries is enabled.
    pub fn is_enabled(&self) -> bool {
        self.header().control.0.enabled.load(Ordering::Acquire) != 0
    }

    /// Enables or disables the queue this ring carries (NDK `SetEnable`).
    pub fn set_enabled(&self, enabled: bool) {
        self.header()
            .control
            .0
            .enabled
            .store(u32::from(enabled), Ordering::Release);
    }

    /// The queue id stored at creation.
    pub fn queue_id(&self) -> u32 {
        self.header().control.0.queue_id.load(Ordering::Relaxed)
    }

    /// The queue kind stored at creation.
    pub fn kind(&self) -> u32 {
        self.header().control.0.kind.load(Ordering::Relaxed)
    }

    /// Entries currently in the ring, as seen by a third party (approximate while in use).
    pub fn len(&self) -> u32 {
        let producer = self.header().producer.0.load(Ordering::Acquire);
        let consumer = self.header().consumer.0.load(Ordering::Acquire);
        producer.wrapping_sub(consumer).min(self.capacity)
    }

    /// Whether [`Ring::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region this ring lives in.
    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    fn header(&self) -> &RingHeader {
        // SAFETY: initialised and alive for `self`'s lifetime (Ring invariant); shared access
        // to atomics only.
        unsafe { self.header.as_ref() }
    }

    #[inline(always)]
    fn slot(&self, index: u32) -> &Slot<T> {
        let i = (index & (self.capacity - 1)) as usize;
        // SAFETY: `i < capacity` by the mask (capacity is a power of two): in bounds.
        let slot = unsafe { self.slots.as_ptr().add(i) };
        // SAFETY: the slots are initialised and alive (Ring invariant).
        unsafe { &*slot }
    }

    #[inline(always)]
    fn check(&self, producer: u32, consumer: u32) -> Result<u32, RingCorrupted> {
        let used = producer.wrapping_sub(consumer);
        if used > self.capacity {
            return Err(RingCorrupted {
                producer,
                consumer,
                capacity: self.capacity,
            });
        }
        Ok(used)
    }

    /// The Dekker half of going to sleep: set `bit`, full fence, then re-read `remote`.
    fn arm(&self, bit: u32, remote: &AtomicU32) -> u32 {
        let flags = &self.header().control.0.flags;
        flags.fetch_or(bit, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        remote.load(Ordering::Acquire)
    }

    fn disarm(&self, bit: u32) {
        self.header()
            .control
            .0
            .flags
            .fetch_and(!bit, Ordering::Relaxed);
    }

    /// The other Dekker half: after publishing, full fence, then test and clear `bit`.
    fn take_flag(&self, bit: u32) -> bool {
        fence(Ordering::SeqCst);
        let flags = &self.header().control.0.flags;
        if flags.load(Ordering::Relaxed) & bit == 0 {
            return false;
        }
        flags.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    }
}

impl<T: RingElement> Drop for Ring<T> {
    fn drop(&mut self) {
        if self.owns_objects {
            // SAFETY: this ring wrote the header and slots in `create_in` and nothing refers
            // to them any more (the halves hold `Arc<Ring>`, so they are gone). Dropping them
            // in place matters only under loom, whose atomics track their objects.
            unsafe { std::ptr::drop_in_place(self.header.as_ptr()) };
            let slots =
                std::ptr::slice_from_raw_parts_mut(self.slots.as_ptr(), self.capacity as usize);
            // SAFETY: as above, for the slots.
            unsafe { std::ptr::drop_in_place(slots) };
        }
    }
}

fn check_capacity(capacity: u32) -> Result<(), RingError> {
    if capacity == 0 || !capacity.is_power_of_two() || capacity > RING_CAPACITY_MAX {
        return Err(RingError::BadCapacity { capacity });
    }
    Ok(())
}

fn locate<T>(
    region: &Region,
    offset_bytes: usize,
    capacity: u32,
) -> Result<(NonNull<RingHeader>, NonNull<Slot<T>>), RingError> {
    let len_bytes =
        std::mem::size_of::<RingHeader>() + capacity as usize * std::mem::size_of::<T>();
    let fits = offset_bytes
        .checked_add(len_bytes)
        .is_some_and(|end| end <= region.len_bytes());
    if !fits || !offset_bytes.is_multiple_of(std::mem::align_of::<RingHeader>()) {
        return Err(RingError::DoesNotFit {
            offset_bytes,
            len_bytes,
            region_bytes: region.len_bytes(),
        });
    }
    let header = region.ptr_at::<RingHeader>(offset_bytes, 1);
    let slots = region.ptr_at::<Slot<T>>(
        offset_bytes + std::mem::size_of::<RingHeader>(),
        capacity as usize,
    );
    // Region pointers are never null (Region invariant).
    Ok((
        NonNull::new(header).expect("region pointer"),
        NonNull::new(slots).expect("region pointer"),
    ))
}

/// The producer half. One per ring per process; `Send`, used from one thread at a time.
///
/// Invariant: `tail` is the ring's producer index (only this half writes it), and
/// `cached_head` is a consumer index this half has seen, so `tail - cached_head <= capacity`.
#[derive(Debug)]
pub struct Producer<T: RingElement> {
    ring: Arc<Ring<T>>,
    tail: u32,
    cached_head: u32,
}

impl<T: RingElement> Producer<T> {
    /// Free slots, re-reading the consumer index only if the cached view shows fewer than
    /// `wanted`.
    ///
    /// # Errors
    /// [`RingCorrupted`] if the consumer index is impossible.
    #[inline]
    pub fn free(&mut self, wanted: u32) -> Result<u32, RingCorrupted> {
        let cap = self.ring.capacity;
        let free = cap - self.tail.wrapping_sub(self.cached_head);
        if free >= wanted {
            return Ok(free);
        }
        let head = self.ring.header().consumer.0.load(Ordering::Acquire);
        let used = self.ring.check(self.tail, head)?;
        self.cached_head = head;
        Ok(cap - used)
    }

    /// Reserves up to `n` slots (burst): the chunk may be shorter, even empty.
    ///
    /// # Errors
    /// [`RingCorrupted`] if the consumer index is impossible.
    #[inline]
    pub fn reserve(&mut self, n: u32) -> Result<WriteChunk<'_, T>, RingCorrupted> {
        let len = self.free(n)?.min(n);
        Ok(WriteChunk {
            producer: self,
            len,
        })
    }

    /// Reserves exactly `n` slots (bulk), or fails with the number free.
    ///
    /// # Errors
    /// [`ReserveError::TooFew`] if fewer than `n` are free, [`ReserveError::Corrupted`].
    #[inline]
    pub fn reserve_exact(&mut self, n: u32) -> Result<WriteChunk<'_, T>, ReserveError> {
        let free = self.free(n)?;
        if free < n {
            return Err(ReserveError::TooFew { free });
        }
        Ok(WriteChunk {
            producer: self,
            len: n,
        })
    }

    /// Pushes one value.
    ///
    /// # Errors
    /// [`PushError::Full`] (with the value) or [`PushError::Corrupted`].
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        match self.free(1) {
            Ok(0) => Err(PushError::Full(value)),
            Ok(_) => {
                self.ring.slot(self.tail).with_mut(|p| {
                    // SAFETY: slot `tail` is free (free >= 1), so only this half touches it
                    // until the Release store below publishes it.
                    unsafe { p.write(value) }
                });
                self.publish(1);
                Ok(())
            }
            Err(e) => Err(PushError::Corrupted(value, e)),
        }
    }

    /// Copies as many values from `src` as fit and publishes them; returns how many.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    pub fn push_slice(&mut self, src: &[T]) -> Result<usize, RingCorrupted> {
        let mut chunk = self.reserve(src.len().min(u32::MAX as usize) as u32)?;
        let n = chunk.fill_from_slice(src);
        chunk.commit(n as u32);
        Ok(n)
    }

    /// Capacity of the ring.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity
    }

    /// The ring this half belongs to.
    pub fn ring(&self) -> &Arc<Ring<T>> {
        &self.ring
    }

    /// The local producer index (next slot to write).
    pub fn index(&self) -> u32 {
        self.tail
    }

    /// After publishing: whether the consumer asked to be woken. Clears the request, so the
    /// caller that gets `true` must notify.
    #[inline]
    pub fn take_consumer_wakeup(&self) -> bool {
        self.ring.take_flag(WAKE_CONSUMER)
    }

    /// Before sleeping on a full ring: announce the wait, then re-check. Returns `true` if the
    /// ring is still full and the caller may sleep until notified.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    pub fn prepare_to_sleep(&mut self) -> Result<bool, RingCorrupted> {
        let head = self.ring.arm(WAKE_PRODUCER, &self.ring.header().consumer.0);
        let used = self.ring.check(self.tail, head)?;
        self.cached_head = head;
        if used < self.ring.capacity {
            self.ring.disarm(WAKE_PRODUCER);
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws a wakeup request after waking (or deciding not to sleep).
    pub fn cancel_sleep(&self) {
        self.ring.disarm(WAKE_PRODUCER);
    }

    #[inline(always)]
    fn publish(&mut self, n: u32) {
        self.tail = self.tail.wrapping_add(n);
        self.ring
            .header()
            .producer
            .0
            .store(self.tail, Ordering::Release);
    }

    /// Test-only: publishes with `Relaxed` instead of `Release`. This is the deliberately
    /// broken variant the loom suite must catch; never use it for real work.
    #[doc(hidden)]
    pub fn push_with_broken_publish(&mut self, value: T) -> Result<(), PushError<T>> {
        match self.free(1) {
            Ok(0) => Err(PushError::Full(value)),
            Ok(_) => {
                self.ring.slot(self.tail).with_mut(|p| {
                    // SAFETY: slot `tail` is free, as in `push`.
                    unsafe { p.write(value) }
                });
                self.tail = self.tail.wrapping_add(1);
                self.ring
                    .header()
                    .producer
                    .0
                    .store(self.tail, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(PushError::Corrupted(value, e)),
        }
    }
}

impl<T: RingElement> Drop for Producer<T> {
    /// Releases this process's claim, so the half can be taken again.
    fn drop(&mut self) {
        self.ring
            .producer_taken
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Reserved, writable slots of a [`Producer`]. Nothing is visible to the consumer until
/// [`WriteChunk::commit`]; dropping the chunk publishes nothing.
#[derive(Debug)]
pub struct WriteChunk<'a, T: RingElement> {
    producer: &'a mut Producer<T>,
    len: u32,
}

impl<T: RingElement> WriteChunk<'_, T> {
    /// Number of reserved slots.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no slot was reserved.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The reserved slots as up to two slices (the second is non-empty when the chunk wraps).
    #[cfg(not(loom))]
    #[inline]
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        let ring = &self.producer.ring;
        let start = (self.producer.tail & (ring.capacity - 1)) as usize;
        let first = (ring.capacity as usize - start).min(self.len as usize);
        let second = self.len as usize - first;
        let base = ring.slots.as_ptr().cast::<T>();
        // SAFETY: `start < capacity`, in bounds of the slots.
        let at = unsafe { base.add(start) };
        // SAFETY: `Slot<T>` is `repr(transparent)` over `T` outside loom; the two ranges
        // `[start, start+first)` and `[0, second)` are inside the slots, disjoint, and free
        // (reserved by this chunk), so no one else reads or writes them until `commit`.
        let a = unsafe { std::slice::from_raw_parts_mut(at, first) };
        // SAFETY: as above, for the wrapped part.
        let b = unsafe { std::slice::from_raw_parts_mut(base, second) };
        (a, b)
    }

    /// Writes `value` into reserved slot `i`.
    ///
    /// # Panics
    /// If `i >= len()` (a bug in the caller).
    #[inline]
    pub fn write(&mut self, i: u32, value: T) {
        assert!(i < self.len, "write past the reserved chunk");
        let index = self.producer.tail.wrapping_add(i);
        self.producer.ring.slot(index).with_mut(|p| {
            // SAFETY: the slot is reserved by this chunk (i < len <= free).
            unsafe { p.write(value) }
        });
    }

    /// Copies from `src` into the chunk; returns how many values were copied.
    #[inline]
    pub fn fill_from_slice(&mut self, src: &[T]) -> usize {
        let n = src.len().min(self.len as usize);
        #[cfg(not(loom))]
        {
            let (a, b) = self.as_mut_slices();
            let na = a.len().min(n);
            a[..na].copy_from_slice(&src[..na]);
            b[..n - na].copy_from_slice(&src[na..n]);
        }
        #[cfg(loom)]
        for (i, v) in src[..n].iter().enumerate() {
            self.write(i as u32, *v);
        }
        n
    }

    /// Publishes the first `n` reserved slots with one `Release` store.
    ///
    /// # Panics
    /// If `n > len()`.
    #[inline]
    pub fn commit(self, n: u32) {
        assert!(n <= self.len, "commit past the reserved chunk");
        if n > 0 {
            self.producer.publish(n);
        }
    }

    /// Publishes every reserved slot.
    #[inline]
    pub fn commit_all(self) {
        let n = self.len;
        self.commit(n);
    }
}

/// The consumer half. One per ring per process; `Send`, used from one thread at a time.
///
/// Invariant: `head` is the ring's consumer index (only this half writes it), and
/// `cached_tail` is a producer index this half has seen, with `cached_tail - head <= capacity`.
#[derive(Debug)]
pub struct Consumer<T: RingElement> {
    ring: Arc<Ring<T>>,
    head: u32,
    cached_tail: u32,
}

impl<T: RingElement> Consumer<T> {
    /// Entries ready, re-reading the producer index only if the cached view shows fewer than
    /// `wanted`.
    ///
    /// # Errors
    /// [`RingCorrupted`] if the producer index is impossible.
    #[inline]
    pub fn available(&mut self, wanted: u32) -> Result<u32, RingCorrupted> {
        let ready = self.cached_tail.wrapping_sub(self.head);
        if ready >= wanted {
            return Ok(ready);
        }
        let tail = self.ring.header().producer.0.load(Ordering::Acquire);
        let ready = self.ring.check(tail, self.head)?;
        self.cached_tail = tail;
        Ok(ready)
    }

    /// Looks at up to `n` entries (burst): the chunk may be shorter, even empty.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    #[inline]
    pub fn peek(&mut self, n: u32) -> Result<ReadChunk<'_, T>, RingCorrupted> {
        let len = self.available(n)?.min(n);
        Ok(ReadChunk {
            consumer: self,
            len,
        })
    }

    /// Looks at exactly `n` entries (bulk), or fails with the number ready.
    ///
    /// # Errors
    /// [`PeekError::TooFew`], [`PeekError::Corrupted`].
    #[inline]
    pub fn peek_exact(&mut self, n: u32) -> Result<ReadChunk<'_, T>, PeekError> {
        let ready = self.available(n)?;
        if ready < n {
            return Err(PeekError::TooFew { available: ready });
        }
        Ok(ReadChunk {
            consumer: self,
            len: n,
        })
    }

    /// Pops one value; `Ok(None)` when the ring is empty.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    #[inline]
    pub fn pop(&mut self) -> Result<Option<T>, RingCorrupted> {
        if self.available(1)? == 0 {
            return Ok(None);
        }
        let value = self.ring.slot(self.head).with(|p| {
            // SAFETY: slot `head` was published by the producer (available >= 1, Acquire
            // load), and it will not rewrite it until the Release below.
            unsafe { p.read() }
        });
        self.advance(1);
        Ok(Some(value))
    }

    /// Copies up to `dst.len()` entries out and releases them; returns how many.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    pub fn pop_slice(&mut self, dst: &mut [T]) -> Result<usize, RingCorrupted> {
        let chunk = self.peek(dst.len().min(u32::MAX as usize) as u32)?;
        let n = chunk.copy_to_slice(dst);
        chunk.release(n as u32);
        Ok(n)
    }

    /// Capacity of the ring.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity
    }

    /// The ring this half belongs to.
    pub fn ring(&self) -> &Arc<Ring<T>> {
        &self.ring
    }

    /// The local consumer index (next slot to read).
    pub fn index(&self) -> u32 {
        self.head
    }

    /// After releasing: whether the producer asked to be woken. Clears the request, so the
    /// caller that gets `true` must notify.
    #[inline]
    pub fn take_producer_wakeup(&self) -> bool {
        self.ring.take_flag(WAKE_PRODUCER)
    }

    /// Before sleeping on an empty ring: announce the wait, then re-check. Returns `true` if
    /// the ring is still empty and the caller may sleep until notified.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    pub fn prepare_to_sleep(&mut self) -> Result<bool, RingCorrupted> {
        let tail = self.ring.arm(WAKE_CONSUMER, &self.ring.header().producer.0);
        let ready = self.ring.check(tail, self.head)?;
        self.cached_tail = tail;
        if ready > 0 {
            self.ring.disarm(WAKE_CONSUMER);
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws a wakeup request after waking (or deciding not to sleep).
    pub fn cancel_sleep(&self) {
        self.ring.disarm(WAKE_CONSUMER);
    }

    #[inline(always)]
    fn advance(&mut self, n: u32) {
        self.head = self.head.wrapping_add(n);
        self.ring
            .header()
            .consumer
            .0
            .store(self.head, Ordering::Release);
    }
}

impl<T: RingElement> Drop for Consumer<T> {
    /// Releases this process's claim, so the half can be taken again.
    fn drop(&mut self) {
        self.ring
            .consumer_taken
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Published entries of a [`Consumer`], readable until [`ReadChunk::release`]; dropping the
/// chunk releases nothing.
#[derive(Debug)]
pub struct ReadChunk<'a, T: RingElement> {
    consumer: &'a mut Consumer<T>,
    len: u32,
}

impl<T: RingElement> ReadChunk<'_, T> {
    /// Number of entries in the chunk.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries as up to two slices (the second is non-empty when the chunk wraps).
    #[cfg(not(loom))]
    #[inline]
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let ring = &self.consumer.ring;
        let start = (self.consumer.head & (ring.capacity - 1)) as usize;
        let first = (ring.capacity as usize - start).min(self.len as usize);
        let second = self.len as usize - first;
        let base = ring.slots.as_ptr().cast::<T>();
        // SAFETY: `start < capacity`, in bounds of the slots.
        let at = unsafe { base.add(start) };
        // SAFETY: `Slot<T>` is `repr(transparent)` over `T` outside loom; both ranges are in
        // the slots and hold entries published to this consumer (Acquire), which the producer
        // does not touch until they are released.
        let a = unsafe { std::slice::from_raw_parts(at, first) };
        // SAFETY: as above, for the wrapped part.
        let b = unsafe { std::slice::from_raw_parts(base, second) };
        (a, b)
    }

    /// Entry `i` of the chunk.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[inline]
    pub fn get(&self, i: u32) -> T {
        assert!(i < self.len, "read past the peeked chunk");
        let index = self.consumer.head.wrapping_add(i);
        self.consumer.ring.slot(index).with(|p| {
            // SAFETY: the entry is published and not yet released (i < len <= ready).
            unsafe { p.read() }
        })
    }

    /// Copies the chunk's entries into `dst`; returns how many.
    #[inline]
    pub fn copy_to_slice(&self, dst: &mut [T]) -> usize {
        let n = dst.len().min(self.len as usize);
        #[cfg(not(loom))]
        {
            let (a, b) = self.as_slices();
            let na = a.len().min(n);
            dst[..na].copy_from_slice(&a[..na]);
            dst[na..n].copy_from_slice(&b[..n - na]);
        }
        #[cfg(loom)]
        for (i, d) in dst[..n].iter_mut().enumerate() {
            *d = self.get(i as u32);
        }
        n
    }

    /// Releases the first `n` entries back to the producer with one `Release` store.
    ///
    /// # Panics
    /// If `n > len()`.
    #[inline]
    pub fn release(self, n: u32) {
        assert!(n <= self.len, "release past the peeked chunk");
        if n > 0 {
            self.consumer.advance(n);
        }
    }

    /// Releases every entry in the chunk.
    #[inline]
    pub fn release_all(self) {
        let n = self.len;
        self.release(n);
    }
}

/// Why [`Producer::reserve_exact`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// Fewer slots are free than asked for.
    #[error("only {free} slots free")]
    TooFew {
        /// Free slots.
        free: u32,
    },
    /// The peer's index is impossible.
    #[error(transparent)]
    Corrupted(#[from] RingCorrupted),
}

/// Why [`Consumer::peek_exact`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeekError {
    /// Fewer entries are ready than asked for.
    #[error("only {available} entries ready")]
    TooFew {
        /// Ready entries.
        available: u32,
    },
    /// The peer's index is impossible.
    #[error(transparent)]
    Corrupted(#[from] RingCorrupted),
}

/// Why [`Producer::push`] failed; the value comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError<T> {
    /// The ring is full.
    #[error("ring full")]
    Full(T),
    /// The peer's index is impossible.
    #[error("{1}")]
    Corrupted(T, RingCorrupted),
}

#[cfg(all(test, not(loom)))]
mod tests;
