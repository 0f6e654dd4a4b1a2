//! Memory that the rings and the pool live in: a heap block, or a shared mapping.
//!
//! Everything the dext and the helper share (ring headers, ring slots, the pool's free list,
//! packet states and packet buffers) is laid out inside one [`Region`]. A region is either a
//! private, zeroed heap block (tests, the simulator, Miri, loom) or a `MAP_SHARED` mapping of a
//! file descriptor, such as a Linux memfd that a second process maps too. On a Mac the same
//! bytes would come from an `IOBufferMemoryDescriptor` that the dext hands out through
//! `CopyClientMemoryForType` (ndk.md §7.5, option 2; that path is UNCONFIRMED by any public
//! network dext).
//!
//! This is one of the crate's `unsafe` modules (with `ring`, `pool` and `sys`); the system calls
//! themselves live in `sys::unix`.

use std::alloc::Layout;
use std::ptr::NonNull;

#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Alignment of every region: one page, so a shared mapping and a heap block agree.
pub const REGION_ALIGN_BYTES: usize = 4096;

/// Why a [`Region`] could not be created or mapped.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// A region of zero bytes, or one too large to describe, was asked for.
    #[error("invalid region length {len_bytes} bytes")]
    InvalidLength {
        /// The length that was asked for.
        len_bytes: usize,
    },
    /// The allocator had no memory for the heap block.
    #[error("out of memory allocating {len_bytes} bytes")]
    OutOfMemory {
        /// The length that was asked for.
        len_bytes: usize,
    },
    /// The operating system refused (memfd_create, ftruncate, fstat or mmap).
    #[error("{call} failed")]
    Os {
        /// The system call that failed.
        call: &'static str,
        /// The error it returned.
        #[source]
        source: std::io::Error,
    },
    /// Shared mappings are not available on this target (or under Miri).
    #[error("shared mappings are not supported on this target")]
    Unsupported,
}

#[derive(Debug)]
enum Backing {
    Heap {
        layout: Layout,
    },
    #[cfg(all(unix, not(miri)))]
    Mapped {
        fd: OwnedFd,
    },
}

/// A fixed block of memory that shared structures are placed into.
///
/// Invariant (`Region` invariant): `ptr` is valid for reads and writes of `len_bytes` bytes,
/// aligned to [`REGION_ALIGN_BYTES`], for as long as the `Region` lives, and was zero-filled
/// when created (heap) or is whatever the file holds (mapping). The region never moves.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len_bytes: usize,
    backing: Backing,
}

// SAFETY: `Region` owns its memory (Region invariant); the raw pointer is only an address.
// Concurrent access to the bytes is mediated by the atomics placed in them and by the
// ownership protocol of the types built on top.
unsafe impl Send for Region {}
// SAFETY: as for `Send`: `&Region` hands out only raw pointers; synchronisation is the job of
// the structures placed in the region.
unsafe impl Sync for Region {}

impl Region {
    /// A private, zero-filled heap region of `len_bytes` bytes.
    ///
    /// # Errors
    /// [`RegionError::InvalidLength`] for 0 bytes or an impossible size,
    /// [`RegionError::OutOfMemory`] if the allocator fails.
    pub fn heap(len_bytes: usize) -> Result<Self, RegionError> {
        if len_bytes == 0 {
            return Err(RegionError::InvalidLength { len_bytes });
        }
        let layout = Layout::from_size_align(len_bytes, REGION_ALIGN_BYTES)
            .map_err(|_| RegionError::InvalidLength { len_bytes })?;
        // SAFETY: `layout` has a non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(RegionError::OutOfMemory { len_bytes })?;
        Ok(Self {
            ptr,
            len_bytes,
            backing: Backing::Heap { layout },
        })
    }

    /// A new anonymous shared-memory file (`memfd_create`) of `len_bytes`, mapped `MAP_SHARED`.
    ///
    /// Another process can map the same bytes from [`Region::fd`] (pass the descriptor to a
    /// child, or over a unix socket) with [`Region::map_shared`].
    ///
    /// # Errors
    /// [`RegionError::Os`] when a system call fails, [`RegionError::Unsupported`] off Linux or
    /// under Miri.
    pub fn memfd(name: &str, len_bytes: usize) -> Result<Self, RegionError> {
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            let fd = crate::sys::unix::memfd_create(name, len_bytes)?;
            Self::map_shared(fd, len_bytes)
        }
        #[cfg(not(all(target_os = "linux", not(miri))))]
        {
            let _ = (name, len_bytes);
            Err(RegionError::Unsupported)
        }
    }

    /// Maps `len_bytes` of an existing shared-memory descriptor `MAP_SHARED`, read-write.
    ///
    /// The file must be at least `len_bytes` long.
    ///
    /// # Errors
    /// [`RegionError::InvalidLength`] when the file is shorter than `len_bytes` or it is 0,
    /// [`RegionError::Os`] when `fstat` or `mmap` fails, [`RegionError::Unsupported`] under Miri.
    #[cfg(unix)]
    pub fn map_shared(fd: OwnedFd, len_bytes: usize) -> Result<Self, RegionError> {
        #[cfg(not(miri))]
        {
            if len_bytes == 0 {
                return Err(RegionError::InvalidLength { len_bytes });
            }
            let ptr = crate::sys::unix::map_shared(fd.as_fd(), len_bytes)?;
            Ok(Self {
                ptr,
                len_bytes,
                backing: Backing::Mapped { fd },
            })
        }
        #[cfg(miri)]
        {
            let _ = (fd, len_bytes);
            Err(RegionError::Unsupported)
        }
    }

    /// The file descriptor behind a shared mapping; `None` for a heap region.
    #[cfg(unix)]
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.backing {
            Backing::Heap { .. } => None,
            #[cfg(not(miri))]
            Backing::Mapped { fd } => Some(fd.as_fd()),
        }
    }

    /// Length in bytes.
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// A raw pointer `offset_bytes` into the region, for a `T` that fits there.
    ///
    /// # Panics
    /// If `[offset, offset + size_of::<T>() * count)` is not inside the region or the address
    /// is not aligned for `T`. Callers compute offsets from a checked layout, so a failure
    /// here is a bug in this crate, not bad input.
    pub(crate) fn ptr_at<T>(&self, offset_bytes: usize, count: usize) -> *mut T {
        let size = std::mem::size_of::<T>()
            .checked_mul(count)
            .and_then(|s| s.checked_add(offset_bytes));
        assert!(
            size.is_some_and(|end| end <= self.len_bytes),
            "layout bug: {count} x {} bytes at {offset_bytes} overflows a {}-byte region",
            std::mem::size_of::<T>(),
            self.len_bytes
        );
        assert!(
            offset_bytes.is_multiple_of(std::mem::align_of::<T>()),
            "layout bug: offset {offset_bytes} is not aligned for {}",
            std::any::type_name::<T>()
        );
        // SAFETY: the offset is inside the allocation (checked above, Region invariant).
        unsafe { self.ptr.as_ptr().add(offset_bytes) }.cast::<T>()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match &self.backing {
            Backing::Heap { layout } => {
                // SAFETY: `ptr` came from `alloc_zeroed(layout)` and is freed only here.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr(), *layout) };
            }
            #[cfg(all(unix, not(miri)))]
            Backing::Mapped { .. } => crate::sys::unix::unmap(self.ptr, self.len_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_region_is_zeroed_and_aligned() {
        let r = Region::heap(10_000).unwrap();
        assert_eq!(r.len_bytes(), 10_000);
        let p = r.ptr_at::<u8>(0, 10_000);
        assert_eq!(p as usize % REGION_ALIGN_BYTES, 0);
        // SAFETY: the region is 10_000 zeroed bytes and nothing else references it.
        let bytes = unsafe { std::slice::from_raw_parts(p, 10_000) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn zero_length_is_rejected() {
        assert!(matches!(
            Region::heap(0),
            Err(RegionError::InvalidLength { len_bytes: 0 })
        ));
    }

    #[test]
    #[should_panic(expected = "layout bug")]
    fn out_of_bounds_pointer_is_a_bug() {
        let r = Region::heap(64).unwrap();
        let _ = r.ptr_at::<u64>(60, 1);
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn memfd_mappings_share_bytes() {
        use std::os::fd::AsFd;
        let a = Region::memfd("vnic-test", 8192).unwrap();
        let fd = a.fd().unwrap().as_fd().try_clone_to_owned().unwrap();
        let b = Region::map_shared(fd, 8192).unwrap();
        // SAFETY: both mappings are 8192 bytes; one byte is written through `a` then read via `b`.
        unsafe {
            a.ptr_at::<u8>(100, 1).write_volatile(0xAB);
        }
        // SAFETY: as above.
        let seen = unsafe { b.ptr_at::<u8>(100, 1).read_volatile() };
        assert_eq!(seen, 0xAB);
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn short_file_is_rejected() {
        use std::os::fd::AsFd;
        let a = Region::memfd("vnic-short", 4096).unwrap();
        let fd = a.fd().unwrap().as_fd().try_clone_to_owned().unwrap();
        assert!(matches!(
            Region::map_shared(fd, 8192),
            Err(RegionError::InvalidLength { .. })
        ));
    }
}
