//! The shared area of one virtual NIC: pool(s) and the four queue rings in one region.
//!
//! On a Mac the dext and the Rust helper are two processes (ndk.md §0.5, §7.5); they share one
//! block of memory holding everything the datapath touches. On Linux the same block is a
//! memfd, which is how the C++ side of `dext-shim` is exercised in tests.
//!
//! ```text
//! offset 0      AreaHeader (128 B): magic "VNIC", version, size, offsets of everything below
//! page-aligned  Tx pool   (PoolHeader, links, PacketState[], buffers)
//! page-aligned  Rx pool   (only for the G3 two-pool form; otherwise the Tx pool serves both)
//! 128-aligned   ring RxSubmission, RxCompletion, TxSubmission, TxCompletion (RingHeader + u32 slots)
//! ```
//!
//! `dext-shim/include/vnic/abi.h` describes the same bytes for C++.
//!
//! One of the crate's `unsafe` modules: writing and reading the area header in place.

use std::sync::Arc;

use crate::pool::{PacketBufferPool, PoolConfig, PoolCreateError};
use crate::queue::QueueKind;
use crate::ring::{ring_layout_bytes, Ring, RingConfig, RingError};
use crate::shm::{Region, RegionError};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// `"VNIC"`: marks an initialised area header.
pub const AREA_MAGIC: u32 = u32::from_le_bytes(*b"VNIC");
/// Layout version; bumped on any change to a shared struct.
pub const AREA_VERSION: u32 = 1;

/// The area header at offset 0.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct AreaHeader {
    /// [`AREA_MAGIC`], written last at creation.
    pub magic: AtomicU32,
    /// [`AREA_VERSION`].
    pub version: AtomicU32,
    /// Size of the whole area.
    pub total_bytes: AtomicU64,
    /// Offsets of the Tx pool and the Rx pool (equal when one pool serves both).
    pub pool_offsets_bytes: [AtomicU64; 2],
    /// Offsets of the four rings, in [`QueueKind`] order.
    pub ring_offsets_bytes: [AtomicU64; 4],
    /// Reserved, zero. Explicit, so the header has no padding bytes (a typed write would leave
    /// padding uninitialised for a peer to read).
    pub reserved: [AtomicU64; 8],
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(std::mem::size_of::<AreaHeader>(), 128);
#[cfg(not(loom))]
static_assertions::const_assert_eq!(std::mem::offset_of!(AreaHeader, pool_offsets_bytes), 16);
#[cfg(not(loom))]
static_assertions::const_assert_eq!(std::mem::offset_of!(AreaHeader, ring_offsets_bytes), 32);

/// What to put in an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaConfig {
    /// The pool for Tx (and for Rx when `rx_pool` is `None`, the G1 one-pool form).
    pub tx_pool: PoolConfig,
    /// A separate Rx pool (the G3 two-pool form).
    pub rx_pool: Option<PoolConfig>,
    /// Ring capacities in [`QueueKind`] order.
    pub capacities: [u32; 4],
    /// Queue ids in [`QueueKind`] order.
    pub queue_ids: [u32; 4],
}

/// Offsets computed from an [`AreaConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaLayout {
    /// Tx and Rx pool offsets.
    pub pool_offsets_bytes: [usize; 2],
    /// Ring offsets in [`QueueKind`] order.
    pub ring_offsets_bytes: [usize; 4],
    /// Total size, a multiple of 4096.
    pub total_bytes: usize,
}

impl AreaConfig {
    /// Where everything goes.
    pub fn layout(&self) -> AreaLayout {
        let tx = 4096;
        let mut end = tx + self.tx_pool.layout().total_bytes;
        let rx = match &self.rx_pool {
            Some(rx_pool) => {
                let at = end;
                end += rx_pool.layout().total_bytes;
                at
            }
            None => tx,
        };
        let mut rings = [0; 4];
        for (slot, capacity) in rings.iter_mut().zip(self.capacities) {
            *slot = end;
            end += ring_layout_bytes::<u32>(capacity);
        }
        AreaLayout {
            pool_offsets_bytes: [tx, rx],
            ring_offsets_bytes: rings,
            total_bytes: end.div_ceil(4096) * 4096,
        }
    }
}

/// Why an area could not be created or attached.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// The region could not be made.
    #[error(transparent)]
    Region(#[from] RegionError),
    /// A pool could not be placed or attached.
    #[error(transparent)]
    Pool(#[from] PoolCreateError),
    /// A ring could not be placed or attached.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// No valid area header (magic, version or size).
    #[error("no valid vnic area header (magic {magic:#x}, version {version})")]
    BadHeader {
        /// Magic found.
        magic: u32,
        /// Version found.
        version: u32,
    },
    /// A ring in the area carries the wrong queue kind.
    #[error("ring {position} carries queue kind {found}")]
    WrongRing {
        /// Position in the area.
        position: usize,
        /// Kind found.
        found: u32,
    },
}

/// One NIC's shared memory: pools and rings, created or attached.
#[derive(Debug)]
pub struct SharedArea {
    region: Arc<Region>,
    /// The Tx pool (also Rx in the one-pool form).
    pub tx_pool: PacketBufferPool,
    /// The Rx pool (a clone of `tx_pool` in the one-pool form).
    pub rx_pool: PacketBufferPool,
    /// The four rings in [`QueueKind`] order.
    pub rings: [Arc<Ring<u32>>; 4],
}

impl SharedArea {
    /// Creates an area in a fresh region: a heap block, or (`shared`) a memfd that a second
    /// process can map.
    ///
    /// # Errors
    /// [`AreaError`].
    pub fn create(config: &AreaConfig, shared: bool) -> Result<Self, AreaError> {
        let layout = config.layout();
        let region = if shared {
            Region::memfd("vnic-area", layout.total_bytes)?
        } else {
            Region::heap(layout.total_bytes)?
        };
        Self::create_in(Arc::new(region), config)
    }

    /// Creates an area at the start of `region`.
    ///
    /// # Errors
    /// [`AreaError`].
    pub fn create_in(region: Arc<Region>, config: &AreaConfig) -> Result<Self, AreaError> {
        let layout = config.layout();
        if region.len_bytes() < layout.total_bytes {
            return Err(RegionError::InvalidLength {
                len_bytes: region.len_bytes(),
            }
            .into());
        }
        let tx_pool = PacketBufferPool::create_in(
            Arc::clone(&region),
            layout.pool_offsets_bytes[0],
            config.tx_pool,
        )?;
        let rx_pool = match config.rx_pool {
            Some(rx) => {
                PacketBufferPool::create_in(Arc::clone(&region), layout.pool_offsets_bytes[1], rx)?
            }
            None => tx_pool.clone(),
        };
        let mut rings = Vec::with_capacity(4);
        for (i, kind) in QueueKind::ALL.into_iter().enumerate() {
            rings.push(Ring::create_in(
                Arc::clone(&region),
                layout.ring_offsets_bytes[i],
                RingConfig {
                    capacity: config.capacities[i],
                    start_index: 0,
                    queue_id: config.queue_ids[i],
                    kind: kind as u32,
                },
            )?);
        }
        let header = region.ptr_at::<AreaHeader>(0, 1);
        let to_u64 = |v: usize| AtomicU64::new(v as u64);
        let value = AreaHeader {
            magic: AtomicU32::new(0),
            version: AtomicU32::new(AREA_VERSION),
            total_bytes: to_u64(layout.total_bytes),
            pool_offsets_bytes: layout.pool_offsets_bytes.map(to_u64),
            ring_offsets_bytes: layout.ring_offsets_bytes.map(to_u64),
            reserved: std::array::from_fn(|_| AtomicU64::new(0)),
        };
        write_header(header, value);
        Ok(Self {
            region,
            tx_pool,
            rx_pool,
            rings: rings.try_into().expect("four rings"),
        })
    }

    /// Attaches to an area another process created in `region`.
    ///
    /// # Errors
    /// [`AreaError`].
    #[cfg(not(loom))]
    pub fn attach(region: Arc<Region>) -> Result<Self, AreaError> {
        if region.len_bytes() < std::mem::size_of::<AreaHeader>() {
            return Err(AreaError::BadHeader {
                magic: 0,
                version: 0,
            });
        }
        let header = read_header(&region);
        let magic = header.magic.load(Ordering::Acquire);
        let version = header.version.load(Ordering::Relaxed);
        let total = header.total_bytes.load(Ordering::Relaxed);
        if magic != AREA_MAGIC || version != AREA_VERSION || total > region.len_bytes() as u64 {
            return Err(AreaError::BadHeader { magic, version });
        }
        let offset =
            |a: &AtomicU64| usize::try_from(a.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        let pools = [
            offset(&header.pool_offsets_bytes[0]),
            offset(&header.pool_offsets_bytes[1]),
        ];
        let ring_offsets = [
            offset(&header.ring_offsets_bytes[0]),
            offset(&header.ring_offsets_bytes[1]),
            offset(&header.ring_offsets_bytes[2]),
            offset(&header.ring_offsets_bytes[3]),
        ];
        let tx_pool = PacketBufferPool::attach(Arc::clone(&region), pools[0])?;
        let rx_pool = if pools[1] == pools[0] {
            tx_pool.clone()
        } else {
            PacketBufferPool::attach(Arc::clone(&region), pools[1])?
        };
        let mut rings = Vec::with_capacity(4);
        for (position, at) in ring_offsets.into_iter().enumerate() {
            let ring = Ring::<u32>::attach(Arc::clone(&region), at)?;
            if ring.kind() != position as u32 {
                return Err(AreaError::WrongRing {
                    position,
                    found: ring.kind(),
                });
            }
            rings.push(ring);
        }
        Ok(Self {
            region,
            tx_pool,
            rx_pool,
            rings: rings.try_into().expect("four rings"),
        })
    }

    /// The region behind the area (its fd, for a shared one, goes to the peer).
    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// The ring of `kind`.
    pub fn ring(&self, kind: QueueKind) -> &Arc<Ring<u32>> {
        &self.rings[kind as usize]
    }

    /// The pool packets of `kind`'s queue come from.
    pub fn pool_for(&self, kind: QueueKind) -> &PacketBufferPool {
        match kind {
            QueueKind::RxSubmission | QueueKind::RxCompletion => &self.rx_pool,
            QueueKind::TxSubmission | QueueKind::TxCompletion => &self.tx_pool,
        }
    }
}

fn write_header(at: *mut AreaHeader, value: AreaHeader) {
    // SAFETY: `at` is in bounds and aligned (`Region::ptr_at`), and nothing refers to the
    // header bytes while the area is being created.
    unsafe { at.write(value) };
    // SAFETY: just initialised above.
    let header = unsafe { &*at };
    header.magic.store(AREA_MAGIC, Ordering::Release);
}

#[cfg(not(loom))]
fn read_header(region: &Region) -> &AreaHeader {
    // SAFETY: the region holds at least a header (checked by the caller), the pointer is
    // aligned, and `AreaHeader` is all atomics, valid for any bits.
    unsafe { &*region.ptr_at::<AreaHeader>(0, 1) }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::pool::Owner;
    use crate::queue::{RxSubmissionQueue, SystemRxSubmission};

    fn config(two_pools: bool) -> AreaConfig {
        AreaConfig {
            tx_pool: PoolConfig::new(*b"vtx ", 32, 2048),
            rx_pool: two_pools.then(|| PoolConfig::new(*b"vrx ", 16, 1514)),
            capacities: [8, 8, 16, 16],
            queue_ids: [0, 1, 2, 3],
        }
    }

    #[test]
    fn layout_is_ordered_and_aligned() {
        for two in [false, true] {
            let l = config(two).layout();
            assert_eq!(l.pool_offsets_bytes[0] % 4096, 0);
            assert_eq!(l.pool_offsets_bytes[1] % 4096, 0);
            assert_eq!(two, l.pool_offsets_bytes[0] != l.pool_offsets_bytes[1]);
            for w in l.ring_offsets_bytes.windows(2) {
                assert!(w[0] < w[1] && w[1] % 128 == 0);
            }
            assert!(l.ring_offsets_bytes[3] + ring_layout_bytes::<u32>(16) <= l.total_bytes);
        }
    }

    #[test]
    fn attach_sees_what_create_made() {
        let area = SharedArea::create(&config(true), false).unwrap();
        let mut sys =
            SystemRxSubmission::attach(area.ring(QueueKind::RxSubmission), &area.rx_pool).unwrap();
        let other = SharedArea::attach(Arc::clone(area.region())).unwrap();
        let mut drv =
            RxSubmissionQueue::attach(other.ring(QueueKind::RxSubmission), &other.rx_pool).unwrap();
        drv.set_enable(true);
        let packet = area.rx_pool.allocate(Owner::System).unwrap();
        let index = packet.index();
        sys.enqueue_packet(packet).unwrap();
        let got = drv.dequeue_packet().unwrap().unwrap();
        assert_eq!(got.index(), index);
        other.rx_pool.deallocate(got).unwrap();
        assert_eq!(area.rx_pool.in_use(), 0);
        assert_eq!(area.tx_pool.packet_count(), 32);
        assert_eq!(other.rx_pool.packet_count(), 16);
    }

    #[test]
    fn garbage_is_not_an_area() {
        let region = Arc::new(Region::heap(8192).unwrap());
        assert!(matches!(
            SharedArea::attach(region),
            Err(AreaError::BadHeader { .. })
        ));
    }
}
