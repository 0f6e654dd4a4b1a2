//! The two generic queue halves: [`QueueSource`] takes packets out of a ring, [`QueueSink`]
//! puts them in. The four NDK queues are each a source on one side and a sink on the other.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{QueueCreateError, QueueKind, Role};
use crate::error::IoReturn;
use crate::notify::Notifier;
use crate::packet::Packet;
use crate::pool::{OwnerState, PacketBufferPool, TransferError};
use crate::ring::{Consumer, Producer, Ring, RingConfig, RingCorrupted};

/// Counters of one queue half. Plain numbers: a half is used by one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets this half moved (dequeued or enqueued).
    pub packets_moved: u64,
    /// Calls that moved nothing because the queue was disabled.
    pub disabled_calls: u64,
    /// Packets an enqueue refused (and returned to the caller).
    pub packets_refused: u64,
    /// Indices the peer put in the ring that were out of range or not in the state the queue
    /// promises (a duplicate, or a packet the peer did not own). They are skipped, never
    /// turned into a second owner.
    pub ownership_violations: u64,
    /// Wakeups this half sent to the peer.
    pub doorbells_rung: u64,
}

/// Why [`QueueSource`] could not dequeue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DequeueError {
    /// The peer corrupted the ring's indices.
    #[error(transparent)]
    Corrupted(#[from] RingCorrupted),
}

impl From<DequeueError> for IoReturn {
    fn from(_: DequeueError) -> Self {
        IoReturn::InternalError
    }
}

/// Why one packet was not enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueRefusal {
    /// The queue is disabled.
    #[error("queue disabled")]
    Disabled,
    /// The queue is full.
    #[error("queue full")]
    Full,
    /// The packet belongs to another pool.
    #[error("packet {index} belongs to another pool")]
    Foreign {
        /// The packet's index.
        index: u32,
    },
    /// The packet is not owned by the side this half serves.
    #[error("packet {index} is owned by {state:?}, not {expected:?}")]
    WrongOwner {
        /// The packet's index.
        index: u32,
        /// Its owner.
        state: Option<OwnerState>,
        /// The owner this queue needs.
        expected: OwnerState,
    },
    /// The peer corrupted the ring's indices.
    #[error(transparent)]
    Corrupted(#[from] RingCorrupted),
}

impl From<EnqueueRefusal> for IoReturn {
    fn from(r: EnqueueRefusal) -> Self {
        match r {
            // UNCONFIRMED: Apple documents no codes for enqueue failures.
            EnqueueRefusal::Disabled => IoReturn::NotReady,
            EnqueueRefusal::Full => IoReturn::NoSpace,
            EnqueueRefusal::Foreign { .. } | EnqueueRefusal::WrongOwner { .. } => {
                IoReturn::BadArgument
            }
            EnqueueRefusal::Corrupted(_) => IoReturn::InternalError,
        }
    }
}

/// A refused single enqueue: the packet comes back with the reason.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("enqueue of packet {} refused: {refusal}", packet.index())]
pub struct EnqueueError {
    /// The packet, still owned by the caller.
    pub packet: Packet,
    /// Why.
    pub refusal: EnqueueRefusal,
}

/// What a batch enqueue did: the first `accepted` packets moved, the rest are still in the
/// caller's batch, and `refusal` says why the first of them was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnqueueOutcome {
    /// Packets taken from the front of the batch.
    pub accepted: u32,
    /// Why the next packet was refused; `None` when the whole batch went in.
    pub refusal: Option<EnqueueRefusal>,
}

/// The accessors both halves share; `$end` is the ring half the queue half wraps.
macro_rules! half_accessors {
    ($end:ident) => {
        /// The ring shared with the other half.
        pub fn ring(&self) -> &Arc<Ring<u32>> {
            self.$end.ring()
        }

        /// The pool the queue's packets belong to.
        pub fn pool(&self) -> &PacketBufferPool {
            &self.pool
        }

        /// Which queue.
        pub fn kind(&self) -> QueueKind {
            R::KIND
        }

        /// Slots in the queue.
        pub fn capacity(&self) -> u32 {
            self.$end.capacity()
        }

        /// The queue id given at creation.
        pub fn queue_id(&self) -> u32 {
            self.ring().queue_id()
        }

        /// Whether the queue is enabled.
        pub fn is_enabled(&self) -> bool {
            self.ring().is_enabled()
        }

        /// This half's counters.
        pub fn stats(&self) -> QueueStats {
            self.stats
        }
    };
}

/// Creates the ring of a queue (heap-backed), disabled, as `Create(pool, …, capacity, queueId)`.
pub(crate) fn new_ring(
    kind: QueueKind,
    capacity: u32,
    queue_id: u32,
) -> Result<Arc<Ring<u32>>, QueueCreateError> {
    Ok(Ring::new(RingConfig {
        capacity,
        start_index: 0,
        queue_id,
        kind: kind as u32,
    })?)
}

fn check_kind<R: Role>(ring: &Ring<u32>) -> Result<(), QueueCreateError> {
    if ring.kind() != R::KIND as u32 {
        return Err(QueueCreateError::WrongKind {
            found: ring.kind(),
            expected: R::KIND,
        });
    }
    Ok(())
}

/// The half of a queue that takes packets out: the driver's side of a submission queue, the
/// system's side of a completion queue.
#[derive(Debug)]
pub struct QueueSource<R: Role> {
    consumer: Consumer<u32>,
    pool: PacketBufferPool,
    doorbell: Option<Arc<dyn Notifier>>,
    stats: QueueStats,
    _role: PhantomData<R>,
}

impl<R: Role> QueueSource<R> {
    /// Creates a new queue (disabled) and returns this half of it. The other half attaches to
    /// [`QueueSource::ring`].
    ///
    /// # Errors
    /// [`QueueCreateError`] for a bad capacity.
    pub fn create(
        pool: &PacketBufferPool,
        capacity: u32,
        queue_id: u32,
    ) -> Result<Self, QueueCreateError> {
        Self::attach(&new_ring(R::KIND, capacity, queue_id)?, pool)
    }

    /// This half of an existing queue ring.
    ///
    /// # Errors
    /// [`QueueCreateError::WrongKind`], or the ring's half is already taken.
    pub fn attach(
        ring: &Arc<Ring<u32>>,
        pool: &PacketBufferPool,
    ) -> Result<Self, QueueCreateError> {
        check_kind::<R>(ring)?;
        Ok(Self {
            consumer: ring.consumer()?,
            pool: pool.clone(),
            doorbell: None,
            stats: QueueStats::default(),
            _role: PhantomData,
        })
    }

    half_accessors!(consumer);

    /// Packets waiting to be dequeued.
    ///
    /// # Errors
    /// [`DequeueError::Corrupted`].
    pub fn pending(&mut self) -> Result<u32, DequeueError> {
        Ok(self.consumer.available(u32::MAX)?)
    }

    /// Sets the notifier rung when this half frees slots and the peer asked to be woken.
    pub fn set_doorbell(&mut self, doorbell: Arc<dyn Notifier>) {
        self.doorbell = Some(doorbell);
    }

    /// `DequeuePacket`: one packet, or `None` if the queue is empty or disabled.
    ///
    /// # Errors
    /// [`DequeueError::Corrupted`].
    pub fn dequeue_packet(&mut self) -> Result<Option<Packet>, DequeueError> {
        let mut one: heapless::Vec<Packet, 1> = heapless::Vec::new();
        self.dequeue_packets(&mut one, 1)?;
        Ok(one.pop())
    }

    /// `DequeuePackets`: appends up to `max` packets (and no more than `out` has room for).
    /// Returns how many were appended; 0 when empty or disabled.
    ///
    /// # Errors
    /// [`DequeueError::Corrupted`].
    pub fn dequeue_packets<const N: usize>(
        &mut self,
        out: &mut heapless::Vec<Packet, N>,
        max: u32,
    ) -> Result<u32, DequeueError> {
        if !self.is_enabled() {
            self.stats.disabled_calls += 1;
            return Ok(0);
        }
        let room = (N - out.len()).min(max as usize) as u32;
        let chunk = self.consumer.peek(room)?;
        let mut taken = 0;
        for i in 0..chunk.len() {
            let index = chunk.get(i);
            match self.pool.transfer_in(index, R::FROM, R::TO) {
                Ok(packet) => {
                    // Cannot fail: `room` bounds the chunk.
                    let _ = out.push(packet);
                    taken += 1;
                }
                Err(_) => self.stats.ownership_violations += 1,
            }
        }
        chunk.release_all();
        self.stats.packets_moved += u64::from(taken);
        self.ring_doorbell_if_asked();
        Ok(taken)
    }

    /// Sleeps on `notifier` (at most `timeout_ms`) if the queue is empty, using the ring's
    /// need-wakeup handshake so a packet published meanwhile is never missed. Returns whether
    /// packets are pending.
    ///
    /// # Errors
    /// [`DequeueError::Corrupted`].
    pub fn wait_for_packets(
        &mut self,
        notifier: &dyn Notifier,
        timeout_ms: u32,
    ) -> Result<bool, DequeueError> {
        if self.consumer.available(1)? > 0 {
            return Ok(true);
        }
        if self.consumer.prepare_to_sleep()? {
            notifier.wait(timeout_ms);
            self.consumer.cancel_sleep();
        }
        Ok(self.consumer.available(1)? > 0)
    }

    fn ring_doorbell_if_asked(&mut self) {
        if let Some(bell) = &self.doorbell {
            if self.consumer.take_producer_wakeup() {
                bell.notify();
                self.stats.doorbells_rung += 1;
            }
        }
    }
}

/// The half of a queue that puts packets in: the system's side of a submission queue, the
/// driver's side of a completion queue.
#[derive(Debug)]
pub struct QueueSink<R: Role> {
    producer: Producer<u32>,
    pool: PacketBufferPool,
    doorbell: Option<Arc<dyn Notifier>>,
    stats: QueueStats,
    _role: PhantomData<R>,
}

impl<R: Role> QueueSink<R> {
    /// Creates a new queue (disabled) and returns this half of it. The other half attaches to
    /// [`QueueSink::ring`].
    ///
    /// # Errors
    /// [`QueueCreateError`] for a bad capacity.
    pub fn create(
        pool: &PacketBufferPool,
        capacity: u32,
        queue_id: u32,
    ) -> Result<Self, QueueCreateError> {
        Self::attach(&new_ring(R::KIND, capacity, queue_id)?, pool)
    }

    /// This half of an existing queue ring.
    ///
    /// # Errors
    /// [`QueueCreateError::WrongKind`], or the ring's half is already taken.
    pub fn attach(
        ring: &Arc<Ring<u32>>,
        pool: &PacketBufferPool,
    ) -> Result<Self, QueueCreateError> {
        check_kind::<R>(ring)?;
        Ok(Self {
            producer: ring.producer()?,
            pool: pool.clone(),
            doorbell: None,
            stats: QueueStats::default(),
            _role: PhantomData,
        })
    }

    half_accessors!(producer);

    /// Sets the notifier rung when this half publishes and the peer asked to be woken.
    pub fn set_doorbell(&mut self, doorbell: Arc<dyn Notifier>) {
        self.doorbell = Some(doorbell);
    }

    /// The query-free-space operation: slots free right now.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    pub fn free_space(&mut self) -> Result<u32, RingCorrupted> {
        self.producer.free(u32::MAX)
    }

    /// `EnqueuePacket`: moves one packet into the queue, or hands it back with the reason.
    ///
    /// # Errors
    /// [`EnqueueError`] with the packet.
    pub fn enqueue_packet(&mut self, packet: Packet) -> Result<(), EnqueueError> {
        let mut one: heapless::Vec<Packet, 1> = heapless::Vec::new();
        // Cannot fail: the vector is empty.
        let _ = one.push(packet);
        let outcome = self.enqueue_packets(&mut one);
        match (one.pop(), outcome.refusal) {
            (None, _) => Ok(()),
            (Some(packet), Some(refusal)) => Err(EnqueueError { packet, refusal }),
            (Some(packet), None) => Err(EnqueueError {
                packet,
                refusal: EnqueueRefusal::Full,
            }),
        }
    }

    /// `EnqueuePackets`: moves packets from the front of `batch` while they fit and are owned
    /// by this side. Packets not taken stay in `batch`, in order, and the outcome says why
    /// the first of them was refused.
    pub fn enqueue_packets<const N: usize>(
        &mut self,
        batch: &mut heapless::Vec<Packet, N>,
    ) -> EnqueueOutcome {
        if batch.is_empty() {
            return EnqueueOutcome {
                accepted: 0,
                refusal: None,
            };
        }
        if !self.is_enabled() {
            self.stats.disabled_calls += 1;
            return self.refuse(batch.len(), EnqueueRefusal::Disabled);
        }
        let mut chunk = match self.producer.reserve(batch.len() as u32) {
            Ok(chunk) => chunk,
            Err(e) => return self.refuse(batch.len(), EnqueueRefusal::Corrupted(e)),
        };
        let mut accepted = 0u32;
        let mut refusal = None;
        for packet in batch.iter() {
            if accepted == chunk.len() {
                refusal = Some(EnqueueRefusal::Full);
                break;
            }
            match self.pool.transfer_out_ref(packet, R::FROM, R::TO) {
                Ok(index) => {
                    chunk.write(accepted, index);
                    accepted += 1;
                }
                Err(error) => {
                    refusal = Some(match error {
                        TransferError::Foreign => EnqueueRefusal::Foreign {
                            index: packet.index(),
                        },
                        TransferError::WrongOwner(state) => EnqueueRefusal::WrongOwner {
                            index: packet.index(),
                            state,
                            expected: R::FROM,
                        },
                    });
                    break;
                }
            }
        }
        chunk.commit(accepted);
        // The accepted tokens are spent: their packets now belong to the queue.
        let mut seen = 0u32;
        batch.retain(|_| {
            seen += 1;
            seen > accepted
        });
        self.stats.packets_moved += u64::from(accepted);
        self.stats.packets_refused += batch.len() as u64;
        if accepted > 0 {
            if let Some(bell) = &self.doorbell {
                if self.producer.take_consumer_wakeup() {
                    bell.notify();
                    self.stats.doorbells_rung += 1;
                }
            }
        }
        EnqueueOutcome { accepted, refusal }
    }

    /// Sleeps on `notifier` (at most `timeout_ms`) if the queue is full, with the need-wakeup
    /// handshake. Returns whether space is free.
    ///
    /// # Errors
    /// [`RingCorrupted`].
    pub fn wait_for_space(
        &mut self,
        notifier: &dyn Notifier,
        timeout_ms: u32,
    ) -> Result<bool, RingCorrupted> {
        if self.producer.free(1)? > 0 {
            return Ok(true);
        }
        if self.producer.prepare_to_sleep()? {
            notifier.wait(timeout_ms);
            self.producer.cancel_sleep();
        }
        Ok(self.producer.free(1)? > 0)
    }

    fn refuse(&mut self, n: usize, refusal: EnqueueRefusal) -> EnqueueOutcome {
        self.stats.packets_refused += n as u64;
        EnqueueOutcome {
            accepted: 0,
            refusal: Some(refusal),
        }
    }
}

/// Roles whose half belongs to the driver: only they may enable or disable the queue.
pub trait DriverRole: Role {}
impl DriverRole for super::DriverRxSubmission {}
impl DriverRole for super::DriverRxCompletion {}
impl DriverRole for super::DriverTxSubmission {}
impl DriverRole for super::DriverTxCompletion {}

impl<R: DriverRole> QueueSource<R> {
    /// `SetEnable`: a disabled queue moves nothing.
    pub fn set_enable(&self, enable: bool) {
        self.ring().set_enabled(enable);
    }
}

impl<R: DriverRole> QueueSink<R> {
    /// `SetEnable`: a disabled queue moves nothing.
    pub fn set_enable(&self, enable: bool) {
        self.ring().set_enabled(enable);
    }
}
