//! Datapath counters: plain numbers, per direction and per drop reason.
//!
//! Rx and Tx are from the NIC's point of view: Tx frames leave the host through the port, Rx
//! frames arrive from the port.

/// Transmit counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxCounters {
    /// Frames the port accepted.
    pub frames: u64,
    /// Bytes the port accepted.
    pub bytes: u64,
    /// Write calls made to the port.
    pub port_calls: u64,
    /// Writes refused as busy and retried.
    pub busy_retries: u64,
    /// Frames dropped: longer than the port's max packet size.
    pub dropped_packet_too_big: u64,
    /// Frames dropped: shorter than an Ethernet header (14 bytes). Kept from the port, since
    /// vmnet fails a whole write call that holds one (`VMNET_INVALID_ARGUMENT`).
    pub dropped_runt: u64,
    /// Frames dropped: the port stayed busy past the retry limit.
    pub dropped_busy: u64,
    /// Frames dropped: the port failed or refused the write.
    pub dropped_port_error: u64,
    /// Frames dropped: waiting in Tx submission when the interface was disabled.
    pub dropped_disabled: u64,
    /// Completions the Tx completion queue refused (must stay 0: room is reserved first).
    pub completions_lost: u64,
}

impl TxCounters {
    /// Every dropped frame, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_packet_too_big
            + self.dropped_runt
            + self.dropped_busy
            + self.dropped_port_error
            + self.dropped_disabled
    }
}

/// Receive counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCounters {
    /// Frames delivered to Rx completion.
    pub frames: u64,
    /// Bytes delivered to Rx completion.
    pub bytes: u64,
    /// Read calls made to the port.
    pub port_calls: u64,
    /// Read calls that failed.
    pub port_errors: u64,
    /// Frames dropped: shorter than an Ethernet header (14 bytes).
    pub dropped_runt: u64,
    /// Frames dropped by the address filter (not ours, not broadcast, not a wanted group).
    pub dropped_filtered: u64,
    /// Frames dropped: the port handed over a frame bigger than the port's max packet size.
    pub dropped_too_big: u64,
    /// Frames the Rx completion queue refused (must stay 0: room is reserved first).
    pub completions_lost: u64,
}

impl RxCounters {
    /// Every dropped frame, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_runt + self.dropped_filtered + self.dropped_too_big
    }
}

/// Both directions; [`Counters::snapshot`] copies them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Transmit (host → port).
    pub tx: TxCounters,
    /// Receive (port → host).
    pub rx: RxCounters,
}

impl Counters {
    /// A copy of the counters now.
    #[must_use]
    pub fn snapshot(&self) -> Counters {
        *self
    }
}
