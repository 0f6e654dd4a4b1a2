//! The four NDK packet queues (`IOUserNetworkPacketQueue` and its subclasses).
//!
//! ```text
//!            system (OS stack / helper)                      driver (the NIC)
//!  Tx:  allocate ─► SystemTxSubmission ══ring══► TxSubmissionQueue ─► transmit
//!       free ◄──── SystemTxCompletion ◄══ring══ TxCompletionQueue ◄── done
//!  Rx:  allocate ─► SystemRxSubmission ══ring══► RxSubmissionQueue ─► fill with a frame
//!       deliver ◄── SystemRxCompletion ◄══ring══ RxCompletionQueue ◄─ filled
//! ```
//!
//! Each queue is one SPSC [`Ring`](crate::ring::Ring) of `u32` packet indices in shared memory, with a *driver
//! half* and a *system half* as separate types, so code can only do what its side may do:
//! the driver dequeues from submission queues and enqueues to completion queues; the system
//! does the opposite. Every move also moves ownership in the pool (ndk.md §9.2):
//! `System → InSubmission → Driver → InCompletion → System`. A successful enqueue to a
//! completion queue hands the packet to the system; `DeallocatePacket` is for the drop path
//! only. A refused enqueue leaves the packet with the caller.
//!
//! **Models:** `IOUserNetworkRxSubmissionQueue`, `IOUserNetworkRxCompletionQueue`,
//! `IOUserNetworkTxSubmissionQueue`, `IOUserNetworkTxCompletionQueue` — `Create(pool, owner,
//! capacity, queueId, dispatchQueue)`, `SetEnable`, `EnqueuePacket(s)`, `DequeuePacket(s)`.
//!
//! **Supported:** capacity, queue id, enable flag (queues start disabled, and a disabled queue
//! moves nothing), batch dequeue and enqueue that may take part of a batch, free-space query.
//!
//! **Rejected:** capacities that are not a power of two (our ring's requirement; Apple's limit
//! is UNCONFIRMED) and above [`crate::ring::RING_CAPACITY_MAX`] (`kIOReturnBadArgument`);
//! dispatch queues (the model has no `IODispatchQueue`: the caller's thread is the queue).

mod half;

pub use half::{
    DequeueError, DriverRole, EnqueueError, EnqueueOutcome, EnqueueRefusal, QueueSink, QueueSource,
    QueueStats,
};

use crate::error::IoReturn;
use crate::pool::OwnerState;
use crate::ring::RingError;

/// Which of the four queues.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueKind {
    /// `IOUserNetworkRxSubmissionQueue`: empty buffers, system → driver.
    RxSubmission = 0,
    /// `IOUserNetworkRxCompletionQueue`: received frames, driver → system.
    RxCompletion = 1,
    /// `IOUserNetworkTxSubmissionQueue`: frames to send, system → driver.
    TxSubmission = 2,
    /// `IOUserNetworkTxCompletionQueue`: sent frames, driver → system.
    TxCompletion = 3,
}

impl QueueKind {
    /// All four, in registration order.
    pub const ALL: [QueueKind; 4] = [
        QueueKind::RxSubmission,
        QueueKind::RxCompletion,
        QueueKind::TxSubmission,
        QueueKind::TxCompletion,
    ];

    /// Decodes the value stored in a ring header.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u32 == raw)
    }

    /// Whether packets flow system → driver on this queue.
    pub fn is_submission(self) -> bool {
        matches!(self, QueueKind::RxSubmission | QueueKind::TxSubmission)
    }
}

/// A queue's role: which kind, which side, and the ownership move its operation makes.
pub trait Role: Send + 'static {
    /// The queue.
    const KIND: QueueKind;
    /// Owner before this half's operation.
    const FROM: OwnerState;
    /// Owner after it.
    const TO: OwnerState;
    /// For messages: `"driver"` or `"system"`.
    const SIDE: &'static str;
}

macro_rules! roles {
    ($($(#[$doc:meta])* $name:ident: $kind:ident, $from:ident -> $to:ident, $side:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl Role for $name {
            const KIND: QueueKind = QueueKind::$kind;
            const FROM: OwnerState = OwnerState::$from;
            const TO: OwnerState = OwnerState::$to;
            const SIDE: &'static str = $side;
        }
    )*};
}

roles! {
    /// Driver side of Rx submission: dequeues empty buffers.
    DriverRxSubmission: RxSubmission, InSubmission -> Driver, "driver";
    /// Driver side of Rx completion: enqueues filled buffers.
    DriverRxCompletion: RxCompletion, Driver -> InCompletion, "driver";
    /// Driver side of Tx submission: dequeues frames to send.
    DriverTxSubmission: TxSubmission, InSubmission -> Driver, "driver";
    /// Driver side of Tx completion: enqueues sent frames.
    DriverTxCompletion: TxCompletion, Driver -> InCompletion, "driver";
    /// System side of Rx submission: posts empty buffers.
    SystemRxSubmissionRole: RxSubmission, System -> InSubmission, "system";
    /// System side of Rx completion: collects received frames.
    SystemRxCompletionRole: RxCompletion, InCompletion -> System, "system";
    /// System side of Tx submission: submits frames to send.
    SystemTxSubmissionRole: TxSubmission, System -> InSubmission, "system";
    /// System side of Tx completion: collects sent frames.
    SystemTxCompletionRole: TxCompletion, InCompletion -> System, "system";
}

/// Driver half of `IOUserNetworkRxSubmissionQueue`.
pub type RxSubmissionQueue = QueueSource<DriverRxSubmission>;
/// Driver half of `IOUserNetworkRxCompletionQueue`.
pub type RxCompletionQueue = QueueSink<DriverRxCompletion>;
/// Driver half of `IOUserNetworkTxSubmissionQueue`.
pub type TxSubmissionQueue = QueueSource<DriverTxSubmission>;
/// Driver half of `IOUserNetworkTxCompletionQueue`.
pub type TxCompletionQueue = QueueSink<DriverTxCompletion>;
/// System half of the Rx submission queue.
pub type SystemRxSubmission = QueueSink<SystemRxSubmissionRole>;
/// System half of the Rx completion queue.
pub type SystemRxCompletion = QueueSource<SystemRxCompletionRole>;
/// System half of the Tx submission queue.
pub type SystemTxSubmission = QueueSink<SystemTxSubmissionRole>;
/// System half of the Tx completion queue.
pub type SystemTxCompletion = QueueSource<SystemTxCompletionRole>;

/// Why a queue could not be created or a half attached.
#[derive(Debug, thiserror::Error)]
pub enum QueueCreateError {
    /// The ring refused (capacity, placement, or the half is already taken).
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The ring carries another kind of queue.
    #[error("ring carries queue kind {found}, expected {expected:?}")]
    WrongKind {
        /// Kind in the ring header.
        found: u32,
        /// Kind this half needs.
        expected: QueueKind,
    },
}

impl From<&QueueCreateError> for IoReturn {
    fn from(e: &QueueCreateError) -> Self {
        match e {
            QueueCreateError::Ring(RingError::Region(_)) => IoReturn::NoMemory,
            QueueCreateError::Ring(RingError::HalfTaken { .. }) => IoReturn::Busy,
            // UNCONFIRMED: Apple documents no codes for queue creation.
            _ => IoReturn::BadArgument,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
