//! How the driver learns that there is work on a queue, in the three API generations
//! (ndk.md §0.1, §5.1–5.3).
//!
//! | generation | Apple | ours | who moves packets |
//! | --- | --- | --- | --- |
//! | G1 (DriverKit 19/20) | `CopyDataQueue` + `IODataQueueDispatchSource::SetDataAvailableHandler(OSAction*)` on the Tx submission queue; the action runs on the driver's `IODispatchQueue` | [`DataQueueDispatchSource`], [`OsAction`], [`DispatchQueue`], [`DataAvailableSignal`] | the driver pulls (`DequeuePackets`) from inside the action |
//! | G3 (DriverKit 24) | `withPool(…)` factories with C function pointers (`DequeueAction`, `EnqueueAction`, `QueryFreeSpaceAction`) plus `requestDequeue()` / `requestEnqueue()` | [`TxSubmissionActionQueue`], [`RxSubmissionActionQueue`], [`TxCompletionActionQueue`], [`RxCompletionActionQueue`] | the framework pushes to and pulls from the driver's actions |
//! | G4 (DriverKit 25, `NDK_25`) | the `*QueueCompat` classes with `DequeueActionCompat`, `EnqueueActionCompat`, `QueryFreeSpaceActionCompat` | [`TxSubmissionQueueCompat`], [`RxSubmissionQueueCompat`], [`TxCompletionQueueCompat`], [`RxCompletionQueueCompat`] | as G3; what the Compat family is for is UNCONFIRMED |
//!
//! No hidden threads, clocks or sleeps. Apple runs G1 actions on the driver's dispatch queue
//! and G3 actions on framework threads; here the caller (the test, or the simulator playing
//! the framework) drives both: [`DispatchQueue::dispatch_pending`] runs queued G1 actions,
//! and [`SubmissionActionQueue::run_dequeue`] / [`CompletionActionQueue::run_enqueue`] are one
//! pass of the framework's action thread.
//!
//! Every path respects the queue's enable flag (ndk.md §0.3): on a disabled queue no action
//! is posted or called, and no packet moves.
//!
//! ```text
//!  G1   system enqueue ─► TxSubmission ring ─► signal_data_available ─► DispatchQueue
//!                                                   dispatch_pending(&mut driver) ─► handler(&mut driver)
//!                                                   (driver: DequeuePackets … EnqueuePackets)
//!  G3/4 system enqueue ─► submission ring ─► run_dequeue ─► DequeueAction(offered n) → took k
//!       driver: request_enqueue() ─► run_enqueue ─► EnqueueAction(empty, n) → filled k ─► completion ring
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::IoReturn;
use crate::ethernet::PacketQueue;
use crate::packet::Packet;
use crate::pool::PacketBufferPool;
use crate::queue::{
    DequeueError, DriverRole, DriverRxCompletion, DriverRxSubmission, DriverTxCompletion,
    DriverTxSubmission, EnqueueOutcome, EnqueueRefusal, QueueCreateError, QueueKind, QueueSink,
    QueueSource, Role,
};
use crate::ring::{Ring, RingCorrupted};

/// Driver roles of the two submission queues (system → driver).
pub trait SubmissionRole: DriverRole {}
impl SubmissionRole for DriverTxSubmission {}
impl SubmissionRole for DriverRxSubmission {}

/// Driver roles of the two completion queues (driver → system).
pub trait CompletionRole: DriverRole {}
impl CompletionRole for DriverTxCompletion {}
impl CompletionRole for DriverRxCompletion {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------------------------------
// G1: OSAction + IODataQueueDispatchSource on an IODispatchQueue
// ------------------------------------------------------------------------------------------

/// Most work items a [`DispatchQueue`] holds (ours: a source posts at most one item at a
/// time, so this bounds the number of sources feeding one queue).
pub const DISPATCH_QUEUE_ITEMS_MAX: usize = 64;

/// **Models:** `OSAction` for a `TYPE(IODataQueueDispatchSource::DataAvailable)` method such as
/// the sample's `TxPacketAvailable(OSAction*)`.
///
/// A driver method bound as an action: `OSAction`, as made by the IIG-generated
/// `CreateAction<Method>` factory.
///
/// **Supported:** a plain `fn(&mut Driver)`, run on the driver's [`DispatchQueue`].
///
/// **Rejected:** Apple silently drops an action made with a raw `OSAction::Create` instead of
/// the typed factory (ndk.md §5.1); the model has only the typed constructor, so that mistake
/// does not compile. Reference constants and async completions are not modelled.
pub struct OsAction<T> {
    handler: fn(&mut T),
}

impl<T> OsAction<T> {
    /// `CreateAction<Method>(…)`: binds `handler` (the driver's method).
    pub const fn new(handler: fn(&mut T)) -> Self {
        Self { handler }
    }

    /// Runs the action against `target` (what the dispatch queue does).
    pub fn invoke(&self, target: &mut T) {
        (self.handler)(target);
    }
}

impl<T> Clone for OsAction<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for OsAction<T> {}

impl<T> fmt::Debug for OsAction<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsAction")
            .field("handler", &(self.handler as *const ()))
            .finish()
    }
}

struct Work<T> {
    action: OsAction<T>,
    pending: Arc<AtomicBool>,
}

struct DispatchState<T> {
    items: heapless::Deque<Work<T>, DISPATCH_QUEUE_ITEMS_MAX>,
    dispatched_total: u64,
}

/// **Models:** `IODispatchQueue` (the "Default" queue a dext gets from `CopyDispatchQueue`).
///
/// The driver's serial queue, as a run loop the caller drives.
///
/// **Supported:** a FIFO of posted actions, run in order on the caller's thread by
/// [`DispatchQueue::dispatch_pending`]. Clones share one queue.
///
/// **Rejected:** names, creating or replacing queues (`SetDispatchQueue`; replacing "Default"
/// crashes Apple's `Stop`), timers and `DispatchAsync` are not modelled. A post beyond
/// [`DISPATCH_QUEUE_ITEMS_MAX`] is refused ([`SignalOutcome::DispatchQueueFull`]; ours, GCD
/// has no such bound).
pub struct DispatchQueue<T> {
    state: Arc<Mutex<DispatchState<T>>>,
}

impl<T> DispatchQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(DispatchState {
                items: heapless::Deque::new(),
                dispatched_total: 0,
            })),
        }
    }

    /// Actions waiting to run.
    pub fn pending(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// Actions run so far.
    pub fn dispatched_total(&self) -> u64 {
        lock(&self.state).dispatched_total
    }

    fn post(&self, work: Work<T>) -> Result<(), Work<T>> {
        lock(&self.state).items.push_back(work)
    }

    /// Runs the actions that are queued now, oldest first, against `target`; returns how
    /// many ran. Actions posted while these run wait for the next call, so one call is
    /// bounded by the queue length at entry.
    pub fn dispatch_pending(&self, target: &mut T) -> u32 {
        let due = self.pending();
        let mut ran = 0;
        for _ in 0..due {
            let Some(work) = lock(&self.state).items.pop_front() else {
                break;
            };
            // Cleared before the handler runs, so data arriving meanwhile posts again.
            work.pending.store(false, Ordering::Release);
            work.action.invoke(target);
            ran += 1;
        }
        lock(&self.state).dispatched_total += u64::from(ran);
        ran
    }
}

impl<T> Default for DispatchQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for DispatchQueue<T> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

impl<T> fmt::Debug for DispatchQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("DispatchQueue")
            .field("pending", &state.items.len())
            .field("dispatched_total", &state.dispatched_total)
            .finish()
    }
}

/// What one data-available signal did. None of these is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The handler was queued on the dispatch queue.
    Posted,
    /// The handler was already queued and has not run yet (signals coalesce).
    AlreadyPending,
    /// No handler is set.
    NoHandler,
    /// The queue is disabled: nothing is delivered.
    QueueDisabled,
    /// The dispatch queue holds [`DISPATCH_QUEUE_ITEMS_MAX`] items (the model's bound).
    DispatchQueueFull,
}

struct SourceShared<T> {
    ring: Arc<Ring<u32>>,
    dispatch: DispatchQueue<T>,
    handler: Mutex<Option<OsAction<T>>>,
    pending: Arc<AtomicBool>,
}

/// The framework's view of a data queue, without the driver's type.
trait SignalTarget: Send + Sync {
    fn signal(&self) -> SignalOutcome;
    fn ring(&self) -> &Arc<Ring<u32>>;
}

impl<T: 'static> SignalTarget for SourceShared<T> {
    fn signal(&self) -> SignalOutcome {
        let Some(action) = *lock(&self.handler) else {
            return SignalOutcome::NoHandler;
        };
        if !self.ring.is_enabled() {
            return SignalOutcome::QueueDisabled;
        }
        if self.pending.swap(true, Ordering::AcqRel) {
            return SignalOutcome::AlreadyPending;
        }
        let work = Work {
            action,
            pending: Arc::clone(&self.pending),
        };
        if self.dispatch.post(work).is_err() {
            self.pending.store(false, Ordering::Release);
            return SignalOutcome::DispatchQueueFull;
        }
        SignalOutcome::Posted
    }

    fn ring(&self) -> &Arc<Ring<u32>> {
        &self.ring
    }
}

/// **Models:** `IODataQueueDispatchSource` as G1 drivers use it:
/// `queue->CopyDataQueue(&dq); dq->SetDataAvailableHandler(action)` (ndk.md §5.1). Drivers
/// wire it on the Tx submission queue only; Rx is driven by the driver's own timer or
/// interrupt.
///
/// The data queue of a submission queue, with its data-available handler.
///
/// **Supported:** [`DataQueueDispatchSource::copy_data_queue`] on either submission queue,
/// setting and clearing the handler, and the framework's end
/// ([`DataQueueDispatchSource::framework_signal`]). A signal posts the handler to the
/// [`DispatchQueue`] given at copy time (the queue the G1 `Create` would have been given),
/// at most once until it runs, and never while the queue is disabled.
///
/// **Rejected:** completion queues have no data-available source (the bound on
/// [`SubmissionRole`] makes that a compile error). Not modelled: `SetDataQueue`, enabling or
/// disabling the source itself, and identity: Apple's `CopyDataQueue` returns the queue's one
/// source each time, while each call here makes an independent source (the framework
/// signals the one whose [`DataAvailableSignal`] it holds).
///
/// # Examples
///
/// The sample's G1 wiring in `Start`, then one data-available round:
///
/// ```
/// use ndk_model::actions::{DataQueueDispatchSource, DispatchQueue, OsAction, SignalOutcome};
/// use ndk_model::pool::{PacketBufferPool, PoolConfig};
/// use ndk_model::queue::TxSubmissionQueue;
///
/// struct Driver {
///     txs: TxSubmissionQueue,
///     wakeups: u32,
/// }
///
/// impl Driver {
///     fn tx_packet_available(&mut self) {
///         self.wakeups += 1; // a real driver calls DequeuePackets here
///     }
/// }
///
/// let pool = PacketBufferPool::create(PoolConfig::new(*b"smpl", 8, 2048))?;
/// let txs = TxSubmissionQueue::create(&pool, 4, 0)?;
/// let dispatch = DispatchQueue::new();
/// let source = DataQueueDispatchSource::copy_data_queue(&txs, &dispatch);
/// source.set_data_available_handler(Some(OsAction::new(Driver::tx_packet_available)));
/// let signal = source.framework_signal(); // kept by whoever plays the framework
///
/// let mut driver = Driver { txs, wakeups: 0 };
/// assert_eq!(signal.signal_data_available(), SignalOutcome::QueueDisabled);
/// driver.txs.set_enable(true);
/// assert_eq!(signal.signal_data_available(), SignalOutcome::Posted);
/// assert_eq!(dispatch.dispatch_pending(&mut driver), 1);
/// assert_eq!(driver.wakeups, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DataQueueDispatchSource<T> {
    shared: Arc<SourceShared<T>>,
}

impl<T: 'static> DataQueueDispatchSource<T> {
    /// `CopyDataQueue`: the data queue of `queue`, whose handler will run on `dispatch`.
    pub fn copy_data_queue<R: SubmissionRole>(
        queue: &QueueSource<R>,
        dispatch: &DispatchQueue<T>,
    ) -> Self {
        Self {
            shared: Arc::new(SourceShared {
                ring: Arc::clone(queue.ring()),
                dispatch: dispatch.clone(),
                handler: Mutex::new(None),
                pending: Arc::new(AtomicBool::new(false)),
            }),
        }
    }

    /// `SetDataAvailableHandler(action)`; `None` removes the handler.
    pub fn set_data_available_handler(&self, action: Option<OsAction<T>>) {
        *lock(&self.shared.handler) = action;
    }

    /// Whether a handler is set.
    pub fn has_handler(&self) -> bool {
        lock(&self.shared.handler).is_some()
    }

    /// Whether the handler is queued and has not run yet.
    pub fn is_pending(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// The framework's end: what the (simulated) system calls after it enqueues.
    pub fn framework_signal(&self) -> DataAvailableSignal {
        DataAvailableSignal {
            target: Arc::clone(&self.shared) as Arc<dyn SignalTarget>,
        }
    }
}

impl<T> fmt::Debug for DataQueueDispatchSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataQueueDispatchSource")
            .field("queue_kind", &self.shared.ring.kind())
            .field("queue_id", &self.shared.ring.queue_id())
            .field("has_handler", &lock(&self.shared.handler).is_some())
            .field("pending", &self.shared.pending.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// What [`DataAvailableSignal::enqueue_and_signal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// The enqueue's outcome.
    pub enqueue: EnqueueOutcome,
    /// The signal's outcome; `None` when nothing was enqueued, so nothing was signalled.
    pub signal: Option<SignalOutcome>,
}

/// **Models:** the framework's end of `IODataQueueDispatchSource`: the kernel side that
/// signals "data available" after the stack enqueues.
///
/// **Supported:** signalling ([`DataAvailableSignal::signal_data_available`]), and the
/// enqueue-then-signal path ([`DataAvailableSignal::enqueue_and_signal`]). Clones share one
/// source.
///
/// **Rejected:** signals on a disabled queue or without a handler post nothing (see
/// [`SignalOutcome`]); pairing it with another queue's system half panics (a wiring bug).
///
/// In Apple's system the framework owns the data queue and signals it when the stack
/// enqueues; in the model, whoever plays the framework holds this and calls
/// [`DataAvailableSignal::signal_data_available`] after each system-side enqueue (or uses
/// [`DataAvailableSignal::enqueue_and_signal`], which does both).
#[derive(Clone)]
pub struct DataAvailableSignal {
    target: Arc<dyn SignalTarget>,
}

impl DataAvailableSignal {
    /// Data was enqueued: post the driver's handler (see [`SignalOutcome`]).
    pub fn signal_data_available(&self) -> SignalOutcome {
        self.target.signal()
    }

    /// The framework's enqueue path: moves `batch` into the queue through the system half
    /// `queue`, then signals if anything went in.
    ///
    /// # Panics
    /// If `queue` is not the queue this signal belongs to (a wiring bug).
    pub fn enqueue_and_signal<R: Role, const N: usize>(
        &self,
        queue: &mut QueueSink<R>,
        batch: &mut heapless::Vec<Packet, N>,
    ) -> SubmitOutcome {
        assert!(
            Arc::ptr_eq(queue.ring(), self.target.ring()),
            "enqueue_and_signal: the queue is not the one this signal belongs to"
        );
        let enqueue = queue.enqueue_packets(batch);
        let signal = (enqueue.accepted > 0).then(|| self.signal_data_available());
        SubmitOutcome { enqueue, signal }
    }
}

impl fmt::Debug for DataAvailableSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataAvailableSignal")
            .field("queue_kind", &self.target.ring().kind())
            .field("queue_id", &self.target.ring().queue_id())
            .finish()
    }
}

// ------------------------------------------------------------------------------------------
// G3 / G4: function-pointer actions called by the framework
// ------------------------------------------------------------------------------------------

/// Most packets one action call is offered or may hand back (ours; Apple's batch size is
/// UNCONFIRMED).
pub const ACTION_BATCH_MAX: usize = 64;

/// The `void *refCon` given at `withPool` and passed back to every action: an opaque value.
pub type RefCon = u64;

mod sealed {
    use crate::queue::QueueKind;

    pub trait Sealed {
        fn describe(kind: QueueKind, queue_id: u32, capacity: u32) -> Self;
    }
}

/// The type of an action's queue argument: [`PacketQueueRef`] (G3) or
/// [`PacketQueueCompatRef`] (G4). Sealed.
pub trait ActionQueueParam: sealed::Sealed + fmt::Debug + Send + 'static {
    /// Which queue.
    fn kind(&self) -> QueueKind;
    /// The `queueId` given at `withPool`.
    fn queue_id(&self) -> u32;
    /// Slots in the queue.
    fn capacity(&self) -> u32;
}

/// **Models:** the `IOUserNetworkPacketQueue *q` argument of a G3 action: which queue is
/// calling.
///
/// **Supported:** kind, queue id, capacity. **Rejected:** calling queue methods through it
/// (the action gets a description, not the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketQueueRef {
    kind: QueueKind,
    queue_id: u32,
    capacity: u32,
}

/// **Models:** the `IOUserNetworkPacketQueueCompat *q` argument of a G4 (`NDK_25`) action.
///
/// **Supported:** kind, queue id, capacity. **Rejected:** calling queue methods through it.
///
/// The queue id's type, `IOUserNetworkPacketQueueCompatId`, is assumed to be `uint32_t`
/// (UNCONFIRMED, ndk.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketQueueCompatRef {
    kind: QueueKind,
    queue_id: u32,
    capacity: u32,
}

macro_rules! queue_param {
    ($name:ident) => {
        impl sealed::Sealed for $name {
            fn describe(kind: QueueKind, queue_id: u32, capacity: u32) -> Self {
                Self {
                    kind,
                    queue_id,
                    capacity,
                }
            }
        }

        impl ActionQueueParam for $name {
            fn kind(&self) -> QueueKind {
                self.kind
            }

            fn queue_id(&self) -> u32 {
                self.queue_id
            }

            fn capacity(&self) -> u32 {
                self.capacity
            }
        }

        impl $name {
            /// Which queue.
            pub fn kind(&self) -> QueueKind {
                self.kind
            }

            /// The `queueId` given at `withPool`.
            pub fn queue_id(&self) -> u32 {
                self.queue_id
            }

            /// Slots in the queue.
            pub fn capacity(&self) -> u32 {
                self.capacity
            }
        }
    };
}

queue_param!(PacketQueueRef);
queue_param!(PacketQueueCompatRef);

/// A submission queue's action: `uint32_t (*)(OSObject *target, Queue *q,
/// IOUserNetworkPacket **pkts, uint32_t n, void *refCon)`. The framework offers `n` packets;
/// the driver takes what it can with [`OfferedPackets::take`] and returns how many it took.
pub type DequeueFn<T, Q> = fn(&mut T, &Q, &mut OfferedPackets<'_>, u32, RefCon) -> u32;

/// A completion queue's action: same C shape as [`DequeueFn`]. The framework passes an empty
/// array with room for `n`; the driver fills it with [`PacketSlots::push`] and returns how
/// many it filled.
pub type EnqueueFn<T, Q> = fn(&mut T, &Q, &mut PacketSlots<'_>, u32, RefCon) -> u32;

/// The Tx submission queue's free-space query: `uint32_t (*)(OSObject *target, Queue *q,
/// uint32_t *freeBytes)`: returns free descriptor slots and sets `*freeBytes`.
pub type QueryFreeSpaceFn<T, Q> = fn(&mut T, &Q, &mut u32) -> u32;

/// G3 `IOUserNetworkPacketQueue::DequeueAction`.
pub type DequeueAction<T> = DequeueFn<T, PacketQueueRef>;
/// G3 `IOUserNetworkPacketQueue::EnqueueAction`.
pub type EnqueueAction<T> = EnqueueFn<T, PacketQueueRef>;
/// G3 `IOUserNetworkPacketQueue::QueryFreeSpaceAction`.
pub type QueryFreeSpaceAction<T> = QueryFreeSpaceFn<T, PacketQueueRef>;
/// G4 `DequeueActionCompat` (purpose of the Compat family UNCONFIRMED).
pub type DequeueActionCompat<T> = DequeueFn<T, PacketQueueCompatRef>;
/// G4 `EnqueueActionCompat` (purpose of the Compat family UNCONFIRMED).
pub type EnqueueActionCompat<T> = EnqueueFn<T, PacketQueueCompatRef>;
/// G4 `QueryFreeSpaceActionCompat` (purpose of the Compat family UNCONFIRMED).
pub type QueryFreeSpaceActionCompat<T> = QueryFreeSpaceFn<T, PacketQueueCompatRef>;

/// **Models:** the `IOUserNetworkPacket **pkts, uint32_t n` arguments of a dequeue action:
/// the packets the framework offers.
///
/// **Supported:** looking at and taking packets from the front, up to `n`; packets not taken
/// stay with the framework.
///
/// **Rejected:** taking more than `n`, or out of order (there is no method for it).
#[derive(Debug)]
pub struct OfferedPackets<'a> {
    held: &'a mut heapless::Deque<Packet, ACTION_BATCH_MAX>,
    remaining: u32,
    taken: u32,
}

impl OfferedPackets<'_> {
    /// Packets still on offer.
    pub fn len(&self) -> u32 {
        self.remaining
    }

    /// Whether nothing is left on offer.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The next packet on offer, to look at before taking it.
    pub fn peek(&self) -> Option<&Packet> {
        if self.remaining == 0 {
            return None;
        }
        self.held.front()
    }

    /// Takes the next packet: it now belongs to the driver.
    pub fn take(&mut self) -> Option<Packet> {
        if self.remaining == 0 {
            return None;
        }
        let packet = self.held.pop_front()?;
        self.remaining -= 1;
        self.taken += 1;
        Some(packet)
    }

    /// Packets taken so far.
    pub fn taken(&self) -> u32 {
        self.taken
    }
}

/// Why [`PacketSlots::push`] refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefusal {
    /// All `n` slots are filled.
    Full,
    /// The packet is from another pool than the queue's.
    Foreign {
        /// The packet's pool.
        packet_pool_id: u32,
        /// The queue's pool.
        pool_id: u32,
    },
}

/// A packet [`PacketSlots::push`] refused; it goes back to the driver.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("packet {} refused by the action's array: {reason:?}", packet.index())]
pub struct SlotRefused {
    /// The packet, still the driver's.
    pub packet: Packet,
    /// Why.
    pub reason: SlotRefusal,
}

impl From<&SlotRefused> for IoReturn {
    fn from(e: &SlotRefused) -> Self {
        match e.reason {
            SlotRefusal::Full => IoReturn::NoSpace,
            SlotRefusal::Foreign { .. } => IoReturn::BadArgument,
        }
    }
}

impl From<SlotRefused> for IoReturn {
    fn from(e: SlotRefused) -> Self {
        IoReturn::from(&e)
    }
}

/// **Models:** the `IOUserNetworkPacket **pkts, uint32_t n` arguments of an enqueue action:
/// `n` empty slots the driver fills with packets to hand back to the system.
///
/// **Supported:** filling up to `n` slots in order.
///
/// **Rejected:** a packet beyond `n` (`kIOReturnNoSpace`) or from another pool
/// (`kIOReturnBadArgument`); both UNCONFIRMED codes, and the packet comes back in
/// [`SlotRefused`].
#[derive(Debug)]
pub struct PacketSlots<'a> {
    packets: &'a mut heapless::Vec<Packet, ACTION_BATCH_MAX>,
    limit: u32,
    pool_id: u32,
}

impl PacketSlots<'_> {
    /// Fills the next slot with `packet`.
    ///
    /// # Errors
    /// [`SlotRefused`] with the packet when all slots are filled or the packet is from
    /// another pool.
    pub fn push(&mut self, packet: Packet) -> Result<(), SlotRefused> {
        if packet.pool_id() != self.pool_id {
            let reason = SlotRefusal::Foreign {
                packet_pool_id: packet.pool_id(),
                pool_id: self.pool_id,
            };
            return Err(SlotRefused { packet, reason });
        }
        if self.len() >= self.limit {
            return Err(SlotRefused {
                packet,
                reason: SlotRefusal::Full,
            });
        }
        self.packets.push(packet).map_err(|packet| SlotRefused {
            packet,
            reason: SlotRefusal::Full,
        })
    }

    /// Slots filled.
    pub fn len(&self) -> u32 {
        self.packets.len() as u32
    }

    /// Whether no slot is filled.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Slots still empty.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.len())
    }
}

/// **Models:** `IOUserNetworkPacketQueue::requestDequeue(refCon, options)` on a G3/G4
/// submission queue: "call my dequeue action again".
///
/// **Supported:** the request, kept until the framework's next pass; clones share it.
///
/// **Rejected:** `refCon` and `options` arguments (drivers pass none). Completion queues
/// hand out [`EnqueueRequester`] instead, so requesting a dequeue there does not compile.
#[derive(Debug, Clone)]
pub struct DequeueRequester {
    requested: Arc<AtomicBool>,
}

impl DequeueRequester {
    /// `requestDequeue()`: ask the framework to offer packets again on its next pass, even
    /// if the action last took fewer than it was offered.
    pub fn request_dequeue(&self) {
        self.requested.store(true, Ordering::Release);
    }
}

/// **Models:** `IOUserNetworkPacketQueue::requestEnqueue(refCon, options)` on a G3/G4
/// completion queue: "I have packets for you".
///
/// **Supported:** the request, kept until the framework's next pass; clones share it.
///
/// **Rejected:** `refCon` and `options` arguments. Submission queues hand out
/// [`DequeueRequester`] instead.
#[derive(Debug, Clone)]
pub struct EnqueueRequester {
    requested: Arc<AtomicBool>,
}

impl EnqueueRequester {
    /// `requestEnqueue()`: ask the framework to call the enqueue action on its next pass.
    pub fn request_enqueue(&self) {
        self.requested.store(true, Ordering::Release);
    }
}

/// Counters of one action queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionQueueStats {
    /// Times the dequeue or enqueue action was called.
    pub action_calls: u64,
    /// Packets the driver took (submission) or handed back (completion).
    pub packets_moved: u64,
    /// Passes that did nothing because the queue was disabled.
    pub disabled_runs: u64,
    /// Submission passes skipped because the driver last took fewer than offered and has not
    /// called `requestDequeue` since.
    pub stalled_runs: u64,
    /// Actions whose return value differed from the packets they actually took or filled
    /// (the model trusts the packets).
    pub count_mismatches: u64,
    /// `*freeBytes` from the last free-space query (Tx submission only).
    pub free_bytes_last: u32,
}

/// **Models:** G3 `IOUserNetworkTxSubmissionQueue::withPool(pool, capacity, queueId, target,
/// QueryFreeSpaceAction, DequeueAction, refCon, options)` and
/// `IOUserNetworkRxSubmissionQueue::withPool(pool, capacity, bufferCount, queueId, target,
/// DequeueAction, refCon, options)`; with `Q = PacketQueueCompatRef`, the G4
/// `IOUserNetwork{Tx,Rx}SubmissionQueueCompat::withPool` forms (same semantics; what the
/// Compat family is for is UNCONFIRMED). Aliases: [`TxSubmissionActionQueue`],
/// [`RxSubmissionActionQueue`], [`TxSubmissionQueueCompat`], [`RxSubmissionQueueCompat`].
///
/// A submission queue whose packets the framework pushes into the driver's dequeue action.
///
/// **Supported** (semantics from RTL8127, ndk.md §5.2, UNCONFIRMED by Apple):
/// - one framework pass ([`SubmissionActionQueue::run_dequeue`]): for Tx, ask the free-space
///   action how many slots the driver has; fill the offer from the ring (at most
///   [`ACTION_BATCH_MAX`]); call the dequeue action with `n` offered packets; the driver
///   takes `k ≤ n` (Tx frames to send, or Rx empty buffers to stock its ring);
/// - if `k < n` the rest stay with the framework and no more is offered until the driver
///   calls `requestDequeue()` ([`SubmissionActionQueue::request_dequeue`] or a
///   [`DequeueRequester`]);
/// - `setEnable`; a disabled queue offers nothing and keeps what it holds;
/// - registration: it is a [`PacketQueue`].
///
/// Packets the framework holds between offers are driver-owned in the pool's books (they
/// left the ring); dropping the queue returns them to the pool.
///
/// **Rejected** (not modelled, no method): `withPoolAndServiceClass` and service classes,
/// `purgePackets`, `setPacketPoller`, the `options` argument, the G1-style `Create` of the
/// Compat classes (use [`crate::queue::QueueSource::create`]), and calling `DequeuePackets`
/// directly on a G3 queue. Rx `bufferCount` is recorded but not interpreted (its meaning is
/// UNCONFIRMED). Actions run on the caller's thread, not on framework threads.
pub struct SubmissionActionQueue<T, Q: ActionQueueParam, R: SubmissionRole> {
    queue: QueueSource<R>,
    param: Q,
    dequeue: DequeueFn<T, Q>,
    query_free_space: Option<QueryFreeSpaceFn<T, Q>>,
    ref_con: RefCon,
    buffer_count: u32,
    held: heapless::Deque<Packet, ACTION_BATCH_MAX>,
    requested: Arc<AtomicBool>,
    stalled: bool,
    stats: ActionQueueStats,
}

/// G3 Tx submission queue (`IOUserNetworkTxSubmissionQueue::withPool`).
pub type TxSubmissionActionQueue<T> = SubmissionActionQueue<T, PacketQueueRef, DriverTxSubmission>;
/// G3 Rx submission queue (`IOUserNetworkRxSubmissionQueue::withPool`).
pub type RxSubmissionActionQueue<T> = SubmissionActionQueue<T, PacketQueueRef, DriverRxSubmission>;
/// G4 `IOUserNetworkTxSubmissionQueueCompat` (purpose UNCONFIRMED).
pub type TxSubmissionQueueCompat<T> =
    SubmissionActionQueue<T, PacketQueueCompatRef, DriverTxSubmission>;
/// G4 `IOUserNetworkRxSubmissionQueueCompat` (purpose UNCONFIRMED).
pub type RxSubmissionQueueCompat<T> =
    SubmissionActionQueue<T, PacketQueueCompatRef, DriverRxSubmission>;

impl<T, Q: ActionQueueParam> SubmissionActionQueue<T, Q, DriverTxSubmission> {
    /// `IOUserNetworkTxSubmissionQueue::withPool` (or the Compat form): a new, disabled Tx
    /// submission queue of `capacity` slots on `pool`, with its two actions.
    ///
    /// # Errors
    /// [`QueueCreateError`] for a bad capacity.
    pub fn with_pool(
        pool: &PacketBufferPool,
        capacity: u32,
        queue_id: u32,
        query_free_space: QueryFreeSpaceFn<T, Q>,
        dequeue: DequeueFn<T, Q>,
        ref_con: RefCon,
    ) -> Result<Self, QueueCreateError> {
        let queue = QueueSource::create(pool, capacity, queue_id)?;
        Ok(Self::new(
            queue,
            dequeue,
            Some(query_free_space),
            ref_con,
            0,
        ))
    }
}

impl<T, Q: ActionQueueParam> SubmissionActionQueue<T, Q, DriverRxSubmission> {
    /// `IOUserNetworkRxSubmissionQueue::withPool` (or the Compat form): a new, disabled Rx
    /// submission queue of `capacity` slots on `pool`, with its dequeue action.
    /// `buffer_count` is recorded, not interpreted (UNCONFIRMED meaning).
    ///
    /// # Errors
    /// [`QueueCreateError`] for a bad capacity.
    pub fn with_pool(
        pool: &PacketBufferPool,
        capacity: u32,
        buffer_count: u32,
        queue_id: u32,
        dequeue: DequeueFn<T, Q>,
        ref_con: RefCon,
    ) -> Result<Self, QueueCreateError> {
        let queue = QueueSource::create(pool, capacity, queue_id)?;
        Ok(Self::new(queue, dequeue, None, ref_con, buffer_count))
    }

    /// The `bufferCount` given at `withPool`.
    pub fn buffer_count(&self) -> u32 {
        self.buffer_count
    }
}

impl<T, Q: ActionQueueParam, R: SubmissionRole> SubmissionActionQueue<T, Q, R> {
    fn new(
        queue: QueueSource<R>,
        dequeue: DequeueFn<T, Q>,
        query_free_space: Option<QueryFreeSpaceFn<T, Q>>,
        ref_con: RefCon,
        buffer_count: u32,
    ) -> Self {
        let param = Q::describe(R::KIND, queue.queue_id(), queue.capacity());
        Self {
            queue,
            param,
            dequeue,
            query_free_space,
            ref_con,
            buffer_count,
            held: heapless::Deque::new(),
            requested: Arc::new(AtomicBool::new(false)),
            stalled: false,
            stats: ActionQueueStats::default(),
        }
    }

    /// `setEnable(enable)`: a disabled queue offers nothing.
    pub fn set_enable(&self, enable: bool) {
        self.queue.set_enable(enable);
    }

    /// Whether the queue is enabled.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_enabled()
    }

    /// The queue argument the actions receive.
    pub fn param(&self) -> &Q {
        &self.param
    }

    /// The `refCon` given at `withPool`.
    pub fn ref_con(&self) -> RefCon {
        self.ref_con
    }

    /// `requestDequeue()`, called by the driver on the queue itself.
    pub fn request_dequeue(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// A handle the driver keeps to call `requestDequeue()` later.
    pub fn requester(&self) -> DequeueRequester {
        DequeueRequester {
            requested: Arc::clone(&self.requested),
        }
    }

    /// Packets the framework holds: offered and not taken.
    pub fn held_packets(&self) -> u32 {
        self.held.len() as u32
    }

    /// Whether the driver refused part of the last offer and has not called
    /// `requestDequeue()` since.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// This queue's counters.
    pub fn stats(&self) -> ActionQueueStats {
        self.stats
    }

    /// One pass of the framework: offers up to [`ACTION_BATCH_MAX`] packets (and, for Tx, no
    /// more than the free-space action allows) to the dequeue action. Returns how many the
    /// driver took; 0 when disabled, stalled, out of space, or with nothing to offer.
    ///
    /// # Errors
    /// [`DequeueError`] if the system side corrupted the ring.
    pub fn run_dequeue(&mut self, target: &mut T) -> Result<u32, DequeueError> {
        if !self.queue.is_enabled() {
            self.stats.disabled_runs += 1;
            return Ok(0);
        }
        let requested = self.requested.swap(false, Ordering::AcqRel);
        if self.stalled && !requested {
            self.stats.stalled_runs += 1;
            return Ok(0);
        }
        self.stalled = false;
        let mut limit = ACTION_BATCH_MAX as u32;
        if let Some(query) = self.query_free_space {
            let mut free_bytes = 0u32;
            let free_slots = query(target, &self.param, &mut free_bytes);
            self.stats.free_bytes_last = free_bytes;
            limit = limit.min(free_slots);
            if limit == 0 {
                // No room in the driver: wait for its requestDequeue().
                self.stalled = true;
                return Ok(0);
            }
        }
        let want = limit.saturating_sub(self.held.len() as u32);
        if want > 0 {
            let mut fresh: heapless::Vec<Packet, ACTION_BATCH_MAX> = heapless::Vec::new();
            self.queue.dequeue_packets(&mut fresh, want)?;
            for packet in fresh {
                self.held
                    .push_back(packet)
                    .expect("the offer is bounded by the deque's capacity");
            }
        }
        let offered = limit.min(self.held.len() as u32);
        if offered == 0 {
            return Ok(0);
        }
        let mut offer = OfferedPackets {
            held: &mut self.held,
            remaining: offered,
            taken: 0,
        };
        let returned = (self.dequeue)(target, &self.param, &mut offer, offered, self.ref_con);
        let taken = offer.taken;
        self.stats.action_calls += 1;
        self.stats.packets_moved += u64::from(taken);
        if returned != taken {
            self.stats.count_mismatches += 1;
        }
        if taken < offered {
            self.stalled = true;
        }
        Ok(taken)
    }
}

impl<T, Q: ActionQueueParam, R: SubmissionRole> PacketQueue for SubmissionActionQueue<T, Q, R> {
    fn kind(&self) -> QueueKind {
        R::KIND
    }

    fn ring(&self) -> &Arc<Ring<u32>> {
        self.queue.ring()
    }

    fn pool(&self) -> &PacketBufferPool {
        self.queue.pool()
    }
}

impl<T, Q: ActionQueueParam, R: SubmissionRole> Drop for SubmissionActionQueue<T, Q, R> {
    fn drop(&mut self) {
        // The framework frees what it was still offering; a refusal would only mean the
        // packet was not ours, and then it shows in the pool's leak report.
        while let Some(packet) = self.held.pop_front() {
            let _ = self.queue.pool().deallocate(packet);
        }
    }
}

impl<T, Q: ActionQueueParam, R: SubmissionRole> fmt::Debug for SubmissionActionQueue<T, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmissionActionQueue")
            .field("param", &self.param)
            .field("enabled", &self.queue.is_enabled())
            .field("held", &self.held.len())
            .field("stalled", &self.stalled)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Why a completion pass failed.
#[derive(Debug, thiserror::Error)]
pub enum CompletionRunError {
    /// The system side corrupted the ring.
    #[error(transparent)]
    Corrupted(#[from] RingCorrupted),
    /// The queue refused packets the driver handed back (e.g. not driver-owned). They come
    /// back here; the first `accepted` went in.
    #[error("{} packets handed back by the action were refused: {refusal}", packets.len())]
    Refused {
        /// Packets that went into the queue.
        accepted: u32,
        /// Why the first of the rest was refused.
        refusal: EnqueueRefusal,
        /// The refused packets, in order.
        packets: Vec<Packet>,
    },
}

impl From<&CompletionRunError> for IoReturn {
    fn from(e: &CompletionRunError) -> Self {
        match e {
            CompletionRunError::Corrupted(_) => IoReturn::InternalError,
            CompletionRunError::Refused { refusal, .. } => IoReturn::from(*refusal),
        }
    }
}

impl From<CompletionRunError> for IoReturn {
    fn from(e: CompletionRunError) -> Self {
        IoReturn::from(&e)
    }
}

/// **Models:** G3 `IOUserNetworkTxCompletionQueue::withPool(pool, capacity, queueId, target,
/// EnqueueAction, refCon, options)` and `IOUserNetworkRxCompletionQueue::withPool(…)`; with
/// `Q = PacketQueueCompatRef`, the G4 `IOUserNetwork{Tx,Rx}CompletionQueueCompat::withPool`
/// forms (same semantics; purpose UNCONFIRMED). Aliases: [`TxCompletionActionQueue`],
/// [`RxCompletionActionQueue`], [`TxCompletionQueueCompat`], [`RxCompletionQueueCompat`].
///
/// A completion queue whose packets the framework pulls from the driver's enqueue action.
///
/// **Supported** (semantics from RTL8127, ndk.md §5.2, UNCONFIRMED by Apple):
/// - the driver calls `requestEnqueue()` ([`CompletionActionQueue::request_enqueue`] or an
///   [`EnqueueRequester`]) when it has finished Tx packets or filled Rx packets;
/// - on its next pass ([`CompletionActionQueue::run_enqueue`]) the framework calls the
///   enqueue action with an empty array of `n` slots (`n` = free ring slots, at most
///   [`ACTION_BATCH_MAX`]), the driver fills `k ≤ n`, and the framework moves them into the
///   completion ring for the system; if the driver filled all `n`, the request stays so the
///   next pass asks again;
/// - `setEnable`; on a disabled queue the action is not called and the request waits;
/// - registration: it is a [`PacketQueue`].
///
/// **Rejected:** a packet from another pool is refused by [`PacketSlots::push`]
/// (`kIOReturnBadArgument`, UNCONFIRMED) and stays the driver's; a packet the driver does not
/// own comes back in [`CompletionRunError::Refused`]. Not modelled: `setPacketPoller`, the
/// `options` argument, the G1-style `Create` of the Compat classes, calling `EnqueuePackets`
/// directly on a G3 queue. Actions run on the caller's thread.
pub struct CompletionActionQueue<T, Q: ActionQueueParam, R: CompletionRole> {
    queue: QueueSink<R>,
    param: Q,
    enqueue: EnqueueFn<T, Q>,
    ref_con: RefCon,
    requested: Arc<AtomicBool>,
    stats: ActionQueueStats,
}

/// G3 Tx completion queue (`IOUserNetworkTxCompletionQueue::withPool`).
pub type TxCompletionActionQueue<T> = CompletionActionQueue<T, PacketQueueRef, DriverTxCompletion>;
/// G3 Rx completion queue (`IOUserNetworkRxCompletionQueue::withPool`).
pub type RxCompletionActionQueue<T> = CompletionActionQueue<T, PacketQueueRef, DriverRxCompletion>;
/// G4 `IOUserNetworkTxCompletionQueueCompat` (purpose UNCONFIRMED).
pub type TxCompletionQueueCompat<T> =
    CompletionActionQueue<T, PacketQueueCompatRef, DriverTxCompletion>;
/// G4 `IOUserNetworkRxCompletionQueueCompat` (purpose UNCONFIRMED).
pub type RxCompletionQueueCompat<T> =
    CompletionActionQueue<T, PacketQueueCompatRef, DriverRxCompletion>;

impl<T, Q: ActionQueueParam, R: CompletionRole> CompletionActionQueue<T, Q, R> {
    /// `withPool` of a Tx or Rx completion queue (or its Compat form): a new, disabled queue
    /// of `capacity` slots on `pool`, with its enqueue action.
    ///
    /// # Errors
    /// [`QueueCreateError`] for a bad capacity.
    pub fn with_pool(
        pool: &PacketBufferPool,
        capacity: u32,
        queue_id: u32,
        enqueue: EnqueueFn<T, Q>,
        ref_con: RefCon,
    ) -> Result<Self, QueueCreateError> {
        let queue = QueueSink::create(pool, capacity, queue_id)?;
        let param = Q::describe(R::KIND, queue.queue_id(), queue.capacity());
        Ok(Self {
            queue,
            param,
            enqueue,
            ref_con,
            requested: Arc::new(AtomicBool::new(false)),
            stats: ActionQueueStats::default(),
        })
    }

    /// `setEnable(enable)`: a disabled queue calls no action and moves nothing.
    pub fn set_enable(&self, enable: bool) {
        self.queue.set_enable(enable);
    }

    /// Whether the queue is enabled.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_enabled()
    }

    /// The queue argument the action receives.
    pub fn param(&self) -> &Q {
        &self.param
    }

    /// The `refCon` given at `withPool`.
    pub fn ref_con(&self) -> RefCon {
        self.ref_con
    }

    /// `requestEnqueue()`, called by the driver on the queue itself.
    pub fn request_enqueue(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// A handle the driver keeps to call `requestEnqueue()` later.
    pub fn requester(&self) -> EnqueueRequester {
        EnqueueRequester {
            requested: Arc::clone(&self.requested),
        }
    }

    /// Whether a `requestEnqueue()` is waiting for a pass.
    pub fn is_enqueue_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// This queue's counters.
    pub fn stats(&self) -> ActionQueueStats {
        self.stats
    }

    /// One pass of the framework: if the driver requested it and the queue is enabled, calls
    /// the enqueue action with room for up to [`ACTION_BATCH_MAX`] packets and moves what the
    /// driver filled into the completion ring. Returns how many moved.
    ///
    /// # Errors
    /// [`CompletionRunError`]; refused packets come back inside it.
    pub fn run_enqueue(&mut self, target: &mut T) -> Result<u32, CompletionRunError> {
        if !self.queue.is_enabled() {
            self.stats.disabled_runs += 1;
            return Ok(0);
        }
        if !self.requested.swap(false, Ordering::AcqRel) {
            return Ok(0);
        }
        let room = self.queue.free_space()?.min(ACTION_BATCH_MAX as u32);
        if room == 0 {
            // The system has not collected yet: keep the request for a later pass.
            self.request_enqueue();
            return Ok(0);
        }
        let mut batch: heapless::Vec<Packet, ACTION_BATCH_MAX> = heapless::Vec::new();
        let mut slots = PacketSlots {
            packets: &mut batch,
            limit: room,
            pool_id: self.queue.pool().id(),
        };
        let returned = (self.enqueue)(target, &self.param, &mut slots, room, self.ref_con);
        let filled = slots.len();
        self.stats.action_calls += 1;
        if returned != filled {
            self.stats.count_mismatches += 1;
        }
        let outcome = self.queue.enqueue_packets(&mut batch);
        self.stats.packets_moved += u64::from(outcome.accepted);
        if !batch.is_empty() {
            return Err(CompletionRunError::Refused {
                accepted: outcome.accepted,
                refusal: outcome.refusal.unwrap_or(EnqueueRefusal::Full),
                packets: batch.into_iter().collect(),
            });
        }
        if filled == room {
            // The array was full: there may be more.
            self.request_enqueue();
        }
        Ok(filled)
    }
}

impl<T, Q: ActionQueueParam, R: CompletionRole> PacketQueue for CompletionActionQueue<T, Q, R> {
    fn kind(&self) -> QueueKind {
        R::KIND
    }

    fn ring(&self) -> &Arc<Ring<u32>> {
        self.queue.ring()
    }

    fn pool(&self) -> &PacketBufferPool {
        self.queue.pool()
    }
}

impl<T, Q: ActionQueueParam, R: CompletionRole> fmt::Debug for CompletionActionQueue<T, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionActionQueue")
            .field("param", &self.param)
            .field("enabled", &self.queue.is_enabled())
            .field("requested", &self.requested.load(Ordering::Acquire))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::pool::{Owner, PoolConfig};
    use crate::queue::{
        SystemRxSubmission, SystemTxCompletion, SystemTxSubmission, TxSubmissionQueue,
    };

    fn pool(packets: u32) -> PacketBufferPool {
        PacketBufferPool::create(PoolConfig::new(*b"actn", packets, 256)).unwrap()
    }

    /// Puts `n` system-owned packets into a submission queue through its system half.
    fn submit(system: &mut SystemTxSubmission, pool: &PacketBufferPool, n: usize) {
        let mut batch: heapless::Vec<Packet, 16> = heapless::Vec::new();
        for _ in 0..n {
            batch.push(pool.allocate(Owner::System).unwrap()).unwrap();
        }
        let outcome = system.enqueue_packets(&mut batch);
        assert_eq!(outcome.accepted as usize, n);
    }

    #[derive(Default)]
    struct Counter {
        runs: u32,
    }

    fn count(c: &mut Counter) {
        c.runs += 1;
    }

    #[test]
    fn dispatch_queue_coalesces_and_runs_each_post_once() {
        let p = pool(8);
        let txs = TxSubmissionQueue::create(&p, 4, 0).unwrap();
        txs.set_enable(true);
        let dq = DispatchQueue::<Counter>::new();
        let source = DataQueueDispatchSource::copy_data_queue(&txs, &dq);
        let signal = source.framework_signal();
        assert_eq!(signal.signal_data_available(), SignalOutcome::NoHandler);
        source.set_data_available_handler(Some(OsAction::new(count)));
        assert!(source.has_handler());
        assert_eq!(signal.signal_data_available(), SignalOutcome::Posted);
        assert_eq!(
            signal.signal_data_available(),
            SignalOutcome::AlreadyPending
        );
        assert!(source.is_pending());
        let mut counter = Counter::default();
        assert_eq!(dq.dispatch_pending(&mut counter), 1);
        assert_eq!(counter.runs, 1);
        assert!(!source.is_pending());
        assert_eq!(dq.dispatch_pending(&mut counter), 0, "nothing left to run");
        assert_eq!(signal.signal_data_available(), SignalOutcome::Posted);
        assert_eq!(dq.dispatch_pending(&mut counter), 1);
        assert_eq!((counter.runs, dq.dispatched_total()), (2, 2));
    }

    #[test]
    fn disabled_queue_posts_nothing_and_a_cleared_handler_stops_posts() {
        let p = pool(8);
        let txs = TxSubmissionQueue::create(&p, 4, 0).unwrap();
        let dq = DispatchQueue::<Counter>::new();
        let source = DataQueueDispatchSource::copy_data_queue(&txs, &dq);
        source.set_data_available_handler(Some(OsAction::new(count)));
        let signal = source.framework_signal();
        assert_eq!(signal.signal_data_available(), SignalOutcome::QueueDisabled);
        assert_eq!(dq.pending(), 0);
        txs.set_enable(true);
        source.set_data_available_handler(None);
        assert_eq!(signal.signal_data_available(), SignalOutcome::NoHandler);
        assert_eq!(dq.dispatch_pending(&mut Counter::default()), 0);
    }

    #[test]
    fn dispatch_queue_is_bounded() {
        let p = pool(8);
        let dq = DispatchQueue::<Counter>::new();
        let mut queues = Vec::new();
        let mut signals = Vec::new();
        for id in 0..=DISPATCH_QUEUE_ITEMS_MAX as u32 {
            let q = TxSubmissionQueue::create(&p, 1, id).unwrap();
            q.set_enable(true);
            let source = DataQueueDispatchSource::copy_data_queue(&q, &dq);
            source.set_data_available_handler(Some(OsAction::new(count)));
            signals.push(source.framework_signal());
            queues.push((q, source));
        }
        let outcomes: Vec<SignalOutcome> = signals
            .iter()
            .map(DataAvailableSignal::signal_data_available)
            .collect();
        let posted = outcomes
            .iter()
            .filter(|o| **o == SignalOutcome::Posted)
            .count();
        assert_eq!(posted, DISPATCH_QUEUE_ITEMS_MAX);
        assert_eq!(outcomes.last(), Some(&SignalOutcome::DispatchQueueFull));
        let mut counter = Counter::default();
        assert_eq!(
            dq.dispatch_pending(&mut counter) as usize,
            DISPATCH_QUEUE_ITEMS_MAX
        );
        // The refused source was not left marked pending, so it can post now.
        assert_eq!(
            signals.last().unwrap().signal_data_available(),
            SignalOutcome::Posted
        );
    }

    /// A driver for the G3 unit tests: takes at most `room` Tx packets, hands back `done`.
    #[derive(Default)]
    struct Taker {
        room: u32,
        lie: bool,
        taken: Vec<Packet>,
        done: Vec<Packet>,
        seen_ref_con: RefCon,
    }

    fn free_space(driver: &mut Taker, _queue: &PacketQueueRef, free_bytes: &mut u32) -> u32 {
        *free_bytes = driver.room * 256;
        driver.room
    }

    fn take(
        driver: &mut Taker,
        queue: &PacketQueueRef,
        pkts: &mut OfferedPackets<'_>,
        n: u32,
        ref_con: RefCon,
    ) -> u32 {
        assert_eq!(queue.kind(), QueueKind::TxSubmission);
        assert_eq!(pkts.len(), n);
        driver.seen_ref_con = ref_con;
        while driver.room > 0 {
            let Some(packet) = pkts.take() else { break };
            driver.taken.push(packet);
            driver.room -= 1;
        }
        pkts.taken() + u32::from(driver.lie)
    }

    fn give(
        driver: &mut Taker,
        _queue: &PacketQueueRef,
        slots: &mut PacketSlots<'_>,
        n: u32,
        _ref_con: RefCon,
    ) -> u32 {
        assert_eq!(slots.remaining(), n);
        while let Some(packet) = driver.done.pop() {
            if let Err(refused) = slots.push(packet) {
                driver.done.push(refused.packet);
                break;
            }
        }
        slots.len()
    }

    #[test]
    fn tx_submission_offers_within_free_space_and_stalls_until_request_dequeue() {
        let p = pool(16);
        let mut txs =
            TxSubmissionActionQueue::<Taker>::with_pool(&p, 8, 3, free_space, take, 0xfeed)
                .unwrap();
        let mut system = SystemTxSubmission::attach(PacketQueue::ring(&txs), &p).unwrap();
        txs.set_enable(true);
        submit(&mut system, &p, 5);
        let mut drv = Taker {
            room: 2,
            ..Taker::default()
        };
        assert_eq!(txs.run_dequeue(&mut drv).unwrap(), 2);
        assert_eq!(drv.seen_ref_con, 0xfeed);
        assert_eq!(txs.stats().free_bytes_last, 512);
        // The driver had room for exactly what it was offered: not stalled.
        assert!(!txs.is_stalled());
        drv.room = 1;
        // Offered 1 (its free space), took 1.
        assert_eq!(txs.run_dequeue(&mut drv).unwrap(), 1);
        // Free space 0: nothing offered, the queue waits for requestDequeue().
        assert_eq!(txs.run_dequeue(&mut drv).unwrap(), 0);
        assert!(txs.is_stalled());
        drv.room = 8;
        assert_eq!(txs.run_dequeue(&mut drv).unwrap(), 0, "no request yet");
        assert_eq!(txs.stats().stalled_runs, 1);
        txs.requester().request_dequeue();
        assert_eq!(txs.run_dequeue(&mut drv).unwrap(), 2);
        assert_eq!(drv.taken.len(), 5);
        for packet in drv.taken.drain(..) {
            p.deallocate(packet).unwrap();
        }
        assert!(p.leak_report().is_clean());
    }

    #[test]
    fn refused_part_of_an_offer_stays_held_until_request_dequeue() {
        let p = pool(16);
        let mut rxs = RxSubmissionActionQueue::<Taker>::with_pool(
            &p,
            8,
            1,
            1,
            |t: &mut Taker, q: &PacketQueueRef, pkts: &mut OfferedPackets<'_>, _n, _r| {
                assert_eq!(q.kind(), QueueKind::RxSubmission);
                if let Some(packet) = pkts.take() {
                    t.taken.push(packet);
                }
                pkts.taken()
            },
            0,
        )
        .unwrap();
        assert_eq!(rxs.buffer_count(), 1);
        let mut system = SystemRxSubmission::attach(PacketQueue::ring(&rxs), &p).unwrap();
        rxs.set_enable(true);
        let mut batch: heapless::Vec<Packet, 4> = heapless::Vec::new();
        for _ in 0..3 {
            batch.push(p.allocate(Owner::System).unwrap()).unwrap();
        }
        assert_eq!(system.enqueue_packets(&mut batch).accepted, 3);
        let mut drv = Taker::default();
        assert_eq!(rxs.run_dequeue(&mut drv).unwrap(), 1);
        assert_eq!((rxs.held_packets(), rxs.is_stalled()), (2, true));
        assert_eq!(rxs.run_dequeue(&mut drv).unwrap(), 0);
        rxs.request_dequeue();
        assert_eq!(rxs.run_dequeue(&mut drv).unwrap(), 1);
        assert_eq!(rxs.held_packets(), 1);
        // Dropping the queue returns what the framework still held.
        drop(rxs);
        for packet in drv.taken.drain(..) {
            p.deallocate(packet).unwrap();
        }
        assert!(p.leak_report().is_clean());
    }

    #[test]
    fn completion_runs_only_after_request_enqueue_and_only_when_enabled() {
        let p = pool(16);
        let mut txc = TxCompletionActionQueue::<Taker>::with_pool(&p, 4, 0, give, 0).unwrap();
        let mut system = SystemTxCompletion::attach(PacketQueue::ring(&txc), &p).unwrap();
        let mut drv = Taker::default();
        drv.done.push(p.allocate(Owner::Driver).unwrap());
        txc.request_enqueue();
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 0, "disabled");
        assert!(txc.is_enqueue_requested(), "the request waits for enable");
        txc.set_enable(true);
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 1);
        assert!(!txc.is_enqueue_requested());
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 0, "no new request");
        let back = system.dequeue_packet().unwrap().unwrap();
        p.system_free(back).unwrap();
        assert_eq!(txc.stats().action_calls, 1);
        assert!(p.leak_report().is_clean());
    }

    #[test]
    fn a_full_array_keeps_the_request_and_the_ring_bounds_the_array() {
        let p = pool(16);
        let mut txc = TxCompletionActionQueue::<Taker>::with_pool(&p, 2, 0, give, 0).unwrap();
        let mut system = SystemTxCompletion::attach(PacketQueue::ring(&txc), &p).unwrap();
        txc.set_enable(true);
        let mut drv = Taker::default();
        for _ in 0..3 {
            drv.done.push(p.allocate(Owner::Driver).unwrap());
        }
        txc.request_enqueue();
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 2, "ring has 2 slots");
        assert!(txc.is_enqueue_requested(), "array was full: ask again");
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 0, "ring full");
        assert!(txc.is_enqueue_requested());
        let mut out: heapless::Vec<Packet, 4> = heapless::Vec::new();
        assert_eq!(system.dequeue_packets(&mut out, 4).unwrap(), 2);
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 1);
        assert_eq!(system.dequeue_packets(&mut out, 4).unwrap(), 1);
        for packet in out {
            p.system_free(packet).unwrap();
        }
        assert!(p.leak_report().is_clean());
    }

    #[test]
    fn slots_refuse_foreign_packets_and_mismatched_counts_are_counted() {
        let p = pool(8);
        let other = pool(2);
        let mut txc = TxCompletionActionQueue::<Taker>::with_pool(
            &p,
            4,
            0,
            |t: &mut Taker, _q: &PacketQueueRef, slots: &mut PacketSlots<'_>, _n, _r| {
                let packet = t.done.pop().unwrap();
                let refused = slots.push(packet).unwrap_err();
                assert_eq!(IoReturn::from(&refused), IoReturn::BadArgument);
                t.done.push(refused.packet);
                7
            },
            0,
        )
        .unwrap();
        txc.set_enable(true);
        let mut drv = Taker::default();
        drv.done.push(other.allocate(Owner::Driver).unwrap());
        txc.request_enqueue();
        assert_eq!(txc.run_enqueue(&mut drv).unwrap(), 0);
        assert_eq!(txc.stats().count_mismatches, 1);
        other.deallocate(drv.done.pop().unwrap()).unwrap();

        let mut txs =
            TxSubmissionActionQueue::<Taker>::with_pool(&p, 4, 0, free_space, take, 0).unwrap();
        let mut system = SystemTxSubmission::attach(PacketQueue::ring(&txs), &p).unwrap();
        txs.set_enable(true);
        submit(&mut system, &p, 1);
        let mut liar = Taker {
            room: 4,
            lie: true,
            ..Taker::default()
        };
        assert_eq!(
            txs.run_dequeue(&mut liar).unwrap(),
            1,
            "the packets are the truth"
        );
        assert_eq!(txs.stats().count_mismatches, 1);
        p.deallocate(liar.taken.pop().unwrap()).unwrap();
        assert!(p.leak_report().is_clean());
    }

    #[test]
    fn packet_slots_refuse_beyond_n() {
        let p = pool(4);
        let mut storage: heapless::Vec<Packet, ACTION_BATCH_MAX> = heapless::Vec::new();
        let mut slots = PacketSlots {
            packets: &mut storage,
            limit: 1,
            pool_id: p.id(),
        };
        slots.push(p.allocate(Owner::Driver).unwrap()).unwrap();
        let refused = slots.push(p.allocate(Owner::Driver).unwrap()).unwrap_err();
        assert_eq!(refused.reason, SlotRefusal::Full);
        assert_eq!(IoReturn::from(&refused), IoReturn::NoSpace);
        assert_eq!((slots.len(), slots.remaining()), (1, 0));
        p.deallocate(refused.packet).unwrap();
        for packet in storage {
            p.deallocate(packet).unwrap();
        }
        assert!(p.leak_report().is_clean());
    }
}
