//! Raw libc calls for shared mappings (memfd, mmap); each returns a typed error.

use crate::shm::RegionError;
use std::os::fd::{AsRawFd, BorrowedFd};
#[cfg(target_os = "linux")]
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;

fn os_error(call: &'static str) -> RegionError {
    RegionError::Os {
        call,
        source: std::io::Error::last_os_error(),
    }
}

#[cfg(target_os = "linux")]
pub(crate) fn memfd_create(name: &str, len_bytes: usize) -> Result<OwnedFd, RegionError> {
    let len =
        libc::off_t::try_from(len_bytes).map_err(|_| RegionError::InvalidLength { len_bytes })?;
    let cname = std::ffi::CString::new(name.replace('\0', "?")).unwrap_or_default();
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(os_error("memfd_create"));
    }
    // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `fd` is open (owned above).
    let rc = unsafe { libc::ftruncate(fd.as_raw_fd(), len) };
    if rc != 0 {
        return Err(os_error("ftruncate"));
    }
    Ok(fd)
}

pub(crate) fn map_shared(fd: BorrowedFd<'_>, len_bytes: usize) -> Result<NonNull<u8>, RegionError> {
    // SAFETY: an all-zero `stat` is a valid value for this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the borrow and `st` is a valid out-pointer.
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), &raw mut st) };
    if rc != 0 {
        return Err(os_error("fstat"));
    }
    if usize::try_from(st.st_size).map_or(true, |size| size < len_bytes) {
        return Err(RegionError::InvalidLength { len_bytes });
    }
    // SAFETY: a fresh mapping chosen by the kernel (addr NULL) of a file at least
    // `len_bytes` long; it aliases no Rust object.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len_bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(os_error("mmap"));
    }
    NonNull::new(raw.cast::<u8>()).ok_or_else(|| os_error("mmap"))
}

pub(crate) fn unmap(ptr: NonNull<u8>, len_bytes: usize) {
    // SAFETY: `ptr`/`len_bytes` describe a mapping made by `map_shared` and unmapped once,
    // from `Region::drop`. A failure leaves the mapping in place, which is only a leak.
    let _ = unsafe { libc::munmap(ptr.as_ptr().cast(), len_bytes) };
}
