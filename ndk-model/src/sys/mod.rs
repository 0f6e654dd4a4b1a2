//! Platform leaves: raw system calls, each wrapped in a safe function that returns a typed
//! error. Nothing outside `sys` calls libc.

#[cfg(all(unix, not(miri)))]
pub(crate) mod unix;

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub(crate) mod linux;
