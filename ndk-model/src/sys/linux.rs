//! The Linux doorbell: an `eventfd`, which can cross a process boundary.

use crate::notify::Notifier;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A notifier over a Linux `eventfd` (counter mode, non-blocking reads).
#[derive(Debug)]
pub struct EventFdNotifier {
    fd: OwnedFd,
}

impl EventFdNotifier {
    /// A new eventfd.
    ///
    /// # Errors
    /// The OS error from `eventfd(2)`.
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall with constant flags; the result is checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    /// Wraps an eventfd received from another process.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The descriptor, to pass to a peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Notifier for EventFdNotifier {
    fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: `fd` is open (owned by self); we write 8 bytes from a live u64. A full
        // counter (EAGAIN) already means "notified", so the result needs no handling.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    fn wait(&self, timeout_ms: u32) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
        // SAFETY: `pfd` is a valid pollfd for one descriptor we own.
        let ready = unsafe { libc::poll(&raw mut pfd, 1, timeout) };
        if ready <= 0 {
            return false;
        }
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our open, non-blocking eventfd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut count).cast(), 8) };
        n == 8 && count > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_before_wait_is_not_lost() {
        let n = EventFdNotifier::new().unwrap();
        assert!(!n.wait(0));
        n.notify();
        n.notify();
        assert!(n.wait(1000));
        assert!(!n.wait(0), "the count was consumed");
    }
}
