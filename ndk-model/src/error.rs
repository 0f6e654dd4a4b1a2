//! `IOReturn` codes. Each operation's error type, next to its operation, converts into the code
//! Apple gives through a `From` impl.
//!
//! Values are `kIOReturn*` from xnu's public `IOKit/IOReturn.h`
//! (`iokit_common_err(x) = 0xe0000000 | x`). Which code NDK returns for a given failure is, in
//! most cases, not documented by Apple; each `From` impl that picks one says so (UNCONFIRMED).

/// The subset of `kIOReturn*` codes the model produces.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoReturn {
    /// `kIOReturnSuccess`.
    Success = 0,
    /// `kIOReturnError`: general error.
    Error = 0xe000_02bc,
    /// `kIOReturnNoMemory`.
    NoMemory = 0xe000_02bd,
    /// `kIOReturnNoResources`.
    NoResources = 0xe000_02be,
    /// `kIOReturnBadArgument`.
    BadArgument = 0xe000_02c2,
    /// `kIOReturnUnsupported`.
    Unsupported = 0xe000_02c7,
    /// `kIOReturnInternalError`.
    InternalError = 0xe000_02c9,
    /// `kIOReturnIOError`.
    IoError = 0xe000_02ca,
    /// `kIOReturnBusy`.
    Busy = 0xe000_02d5,
    /// `kIOReturnOffline`.
    Offline = 0xe000_02d7,
    /// `kIOReturnNotReady`.
    NotReady = 0xe000_02d8,
    /// `kIOReturnNoSpace`.
    NoSpace = 0xe000_02db,
    /// `kIOReturnNotPermitted`.
    NotPermitted = 0xe000_02e2,
    /// `kIOReturnOverrun`.
    Overrun = 0xe000_02e8,
    /// `kIOReturnAborted`.
    Aborted = 0xe000_02eb,
    /// `kIOReturnNotFound`.
    NotFound = 0xe000_02f0,
}

impl IoReturn {
    /// The raw `kern_return_t` value.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// Decodes a raw value, if it is one of the codes above.
    pub fn from_code(code: u32) -> Option<Self> {
        use IoReturn::{
            Aborted, BadArgument, Busy, Error, InternalError, IoError, NoMemory, NoResources,
            NoSpace, NotFound, NotPermitted, NotReady, Offline, Overrun, Success, Unsupported,
        };
        [
            Success,
            Error,
            NoMemory,
            NoResources,
            BadArgument,
            Unsupported,
            InternalError,
            IoError,
            Busy,
            Offline,
            NotReady,
            NoSpace,
            NotPermitted,
            Overrun,
            Aborted,
            NotFound,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}

impl std::fmt::Display for IoReturn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} ({:#010x})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::IoReturn;

    #[test]
    fn codes_round_trip_and_match_iokit_common_err() {
        assert_eq!(IoReturn::BadArgument.code(), 0xe000_0000 | 0x2c2);
        assert_eq!(IoReturn::Unsupported.code(), 0xe000_0000 | 0x2c7);
        for code in [0, 0xe000_02bc, 0xe000_02d8, 0xe000_02f0] {
            assert_eq!(IoReturn::from_code(code).unwrap().code(), code);
        }
        assert_eq!(IoReturn::from_code(0xe000_02cb), None);
    }
}
