//! Fault injection: what can go wrong on the wire, at the port and in the OS stack, drawn
//! deterministically from a seed.
//!
//! (More of this module is being written: issue 3.)

/// Faults a simulated hardware port injects into the driver's calls, in parts per million of
/// calls. Each injected fault is counted by the port that injects it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortFaults {
    /// A write refused as `VMNET_BUFFER_EXHAUSTED` (the driver retries, then drops).
    pub busy_ppm: u32,
    /// A write refused as `VMNET_PACKET_TOO_BIG` although the frame fits (a port that lies).
    pub too_big_ppm: u32,
    /// A read or write that fails as `VMNET_FAILURE`.
    pub failure_ppm: u32,
}

impl PortFaults {
    /// No faults.
    pub const NONE: Self = Self {
        busy_ppm: 0,
        too_big_ppm: 0,
        failure_ppm: 0,
    };
}
