//! One direction of the wire: a frame slab ([`PacketBufferPool`]) plus an SPSC
//! [`Ring<u32>`] of slab indices, both from ndk-model and both loom-verified there.
//!
//! **Ownership.** The sender allocates a slab packet as [`Owner::Driver`] (through its own
//! [`PoolCache`]), copies the frame in, gives the token up for its bare index with
//! [`PacketBufferPool::into_index`] and publishes the index. The receiver re-forms the token
//! with [`PacketBufferPool::packet_from_index`], copies the frame out and frees the packet
//! (into its own cache) *before* it releases the ring slot.
//!
//! **Why the slab never runs dry while the ring has room.** The slab holds
//! `capacity + 2 × cache` packets. A packet is in use only while its index sits in the ring
//! (published, or peeked and not yet released) or while the sender holds it for a batch it
//! has already reserved ring slots for, so at most `capacity` are in use; each cache holds at
//! most `cache` free packets, which leaves at least `cache` free ones on the shared list for
//! the sender's refill. An allocation failure is therefore a bug, still handled (the batch is
//! undone and refused) rather than assumed away.
//!
//! **Wakeups.** The ring's need-wakeup flag ([`Consumer::prepare_to_sleep`] /
//! [`Producer::take_consumer_wakeup`], a Dekker store→fence→load pair) decides whether the
//! sender must ring the receiver's notifier: the receiver arms it each time it finds the
//! ring empty, the sender takes it after publishing. At most one ring per empty read, not
//! one per frame.

use ndk_model::pool::{Owner, PacketBufferPool, PoolCache, PoolConfig};
use ndk_model::ring::{Consumer, Producer, ReserveError, Ring, RingConfig};

use super::WireError;

/// Why a channel operation failed; both are impossible in-process and counted by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelError {
    /// The ring's indices or a slab packet's owner word are not what the protocol allows.
    Corrupted,
    /// The slab had no packet although the ring had room (see the module docs).
    SlabExhausted,
}

/// The sending half.
#[derive(Debug)]
pub(super) struct FrameSender {
    pool: PacketBufferPool,
    cache: PoolCache,
    ring: Producer<u32>,
    /// Indices written in the current batch, to undo it (capacity fixed at creation).
    undo: Vec<u32>,
}

/// The receiving half.
#[derive(Debug)]
pub(super) struct FrameReceiver {
    pool: PacketBufferPool,
    cache: PoolCache,
    ring: Consumer<u32>,
}

/// A channel of `capacity` frames of up to `frame_bytes_max` bytes, batches of up to
/// `batch_frames_max`.
pub(super) fn frame_channel(
    name: [u8; 4],
    capacity: u32,
    frame_bytes_max: usize,
    batch_frames_max: usize,
) -> Result<(FrameSender, FrameReceiver), WireError> {
    let cache_frames = (capacity / 8).clamp(2, 64);
    let buffer_size_bytes =
        u32::try_from(frame_bytes_max.div_ceil(64) * 64).map_err(|_| WireError::BadPortInfo)?;
    let config = PoolConfig::new(name, capacity + 2 * cache_frames, buffer_size_bytes);
    let pool = PacketBufferPool::create(config).map_err(WireError::Pool)?;
    let ring = Ring::<u32>::new(RingConfig::with_capacity(capacity)).map_err(WireError::Ring)?;
    let sender = FrameSender {
        cache: PoolCache::new(&pool, cache_frames as usize),
        pool: pool.clone(),
        ring: ring.producer().map_err(WireError::Ring)?,
        undo: Vec::with_capacity(batch_frames_max.max(1)),
    };
    let receiver = FrameReceiver {
        cache: PoolCache::new(&pool, cache_frames as usize),
        pool,
        ring: ring.consumer().map_err(WireError::Ring)?,
    };
    Ok((sender, receiver))
}

impl FrameSender {
    /// Sends all of `frames` or none: `Ok(false)` if the ring lacks room for the whole batch.
    /// `frames.len()` must not exceed the batch size given at creation (checked by callers;
    /// a longer batch is refused as no room, never split).
    pub(super) fn send_all(&mut self, frames: &[&[u8]]) -> Result<bool, ChannelError> {
        if frames.len() > self.undo.capacity() {
            return Ok(false);
        }
        let n = frames.len() as u32;
        let mut chunk = match self.ring.reserve_exact(n) {
            Ok(chunk) => chunk,
            Err(ReserveError::TooFew { .. }) => return Ok(false),
            Err(ReserveError::Corrupted(_)) => return Err(ChannelError::Corrupted),
        };
        self.undo.clear();
        let mut failed = None;
        for (i, frame) in frames.iter().enumerate() {
            let Ok(mut packet) = self.cache.allocate(Owner::Driver) else {
                failed = Some(ChannelError::SlabExhausted);
                break;
            };
            let written = match self.pool.packet_mut(&mut packet) {
                Ok(mut view) => view.write_frame(0, frame).is_ok(),
                Err(_) => false,
            };
            let Ok(index) = self.pool.into_index(packet) else {
                failed = Some(ChannelError::Corrupted);
                break;
            };
            // `undo` has room: `frames.len() <= capacity` was checked above.
            self.undo.push(index);
            chunk.write(i as u32, index);
            if !written {
                // A frame longer than the slab buffer: callers check sizes first.
                failed = Some(ChannelError::Corrupted);
                break;
            }
        }
        if let Some(error) = failed {
            // The chunk is never committed, so its slots stay free.
            for &index in &self.undo {
                if let Ok(packet) = self.pool.packet_from_index(index) {
                    let _ = self.cache.deallocate(packet);
                }
            }
            self.undo.clear();
            return Err(error);
        }
        chunk.commit_all();
        Ok(true)
    }

    /// After a send: whether the receiver asked to be woken (clears the request; the caller
    /// that gets `true` must notify).
    pub(super) fn take_wakeup(&self) -> bool {
        self.ring.take_consumer_wakeup()
    }

    /// Frames in the ring (published, not yet released by the receiver).
    pub(super) fn queued(&self) -> usize {
        self.ring.ring().len() as usize
    }

    /// Free slots.
    pub(super) fn free(&mut self) -> usize {
        self.ring
            .free(self.ring.capacity())
            .map_or(0, |n| n as usize)
    }
}

impl FrameReceiver {
    /// Frames ready to receive.
    pub(super) fn ready(&mut self, wanted: u32) -> Result<u32, ChannelError> {
        self.ring
            .available(wanted)
            .map_err(|_| ChannelError::Corrupted)
    }

    /// Frames in the ring.
    pub(super) fn queued(&self) -> usize {
        self.ring.ring().len() as usize
    }

    /// The ring is empty: arms the need-wakeup flag and re-checks. Returns the frames ready
    /// after the re-check (0: the sender will ring).
    ///
    /// It arms on every call, never "still armed from last time": a notification taken by a
    /// wait that then found nothing new can be the one that cleared the flag, and skipping the
    /// re-arm after it loses the next wakeup (the loom model `rx_readiness_is_never_lost`
    /// found exactly that interleaving).
    pub(super) fn arm(&mut self) -> Result<u32, ChannelError> {
        match self.ring.prepare_to_sleep() {
            Ok(true) => Ok(0),
            // `prepare_to_sleep` withdrew the request itself: an entry is there.
            Ok(false) => self.ready(1),
            Err(_) => Err(ChannelError::Corrupted),
        }
    }

    /// Hands the oldest frame to `f`; consumes it if `f` says so. `Ok(None)`: no frame.
    pub(super) fn with_front<R>(
        &mut self,
        f: impl FnOnce(&[u8]) -> (bool, R),
    ) -> Result<Option<R>, ChannelError> {
        if self.ready(1)? == 0 {
            return Ok(None);
        }
        let chunk = self.ring.peek(1).map_err(|_| ChannelError::Corrupted)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let index = chunk.get(0);
        let packet = self
            .pool
            .packet_from_index(index)
            .map_err(|_| ChannelError::Corrupted)?;
        let Ok(view) = self.pool.packet(&packet) else {
            let _ = self.pool.into_index(packet);
            return Err(ChannelError::Corrupted);
        };
        let (consume, result) = f(view.data());
        if consume {
            // Freed before the slot is released: see the module docs.
            let freed = self.cache.deallocate(packet).is_ok();
            chunk.release(1);
            if !freed {
                return Err(ChannelError::Corrupted);
            }
        } else if self.pool.into_index(packet).is_err() {
            return Err(ChannelError::Corrupted);
        }
        Ok(Some(result))
    }

    /// Copies up to `bufs.len()` frames (and at most `bytes_max` bytes) into `bufs`, frame
    /// `i` into `bufs[i][..lens[i]]`, consuming them. A frame that does not fit its buffer
    /// stops the batch: `Err(TooSmall)` if it is the first. Returns (frames, bytes).
    pub(super) fn recv_into(
        &mut self,
        bufs: &mut [&mut [u8]],
        lens: &mut [usize],
        bytes_max: usize,
    ) -> Result<RecvOutcome, ChannelError> {
        let want = bufs.len().min(lens.len()).min(u32::MAX as usize) as u32;
        let chunk = self.ring.peek(want).map_err(|_| ChannelError::Corrupted)?;
        let mut n = 0u32;
        let mut bytes = 0usize;
        let mut outcome = RecvOutcome::default();
        while n < chunk.len() {
            let index = chunk.get(n);
            let Ok(packet) = self.pool.packet_from_index(index) else {
                chunk.release(n);
                return Err(ChannelError::Corrupted);
            };
            let Ok(view) = self.pool.packet(&packet) else {
                let _ = self.pool.into_index(packet);
                chunk.release(n);
                return Err(ChannelError::Corrupted);
            };
            let data = view.data();
            let buf = &mut bufs[n as usize];
            if data.len() > buf.len() || bytes + data.len() > bytes_max {
                if n == 0 && data.len() > buf.len() {
                    outcome.too_small_bytes = Some(data.len());
                }
                let _ = self.pool.into_index(packet);
                break;
            }
            buf[..data.len()].copy_from_slice(data);
            lens[n as usize] = data.len();
            bytes += data.len();
            // Freed before the slot is released: see the module docs.
            if self.cache.deallocate(packet).is_err() {
                outcome.corrupted = true;
            }
            n += 1;
        }
        chunk.release(n);
        outcome.frames = n as usize;
        outcome.bytes = bytes;
        Ok(outcome)
    }
}

/// What [`FrameReceiver::recv_into`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RecvOutcome {
    /// Frames copied out.
    pub(super) frames: usize,
    /// Bytes copied out.
    pub(super) bytes: usize,
    /// Set when nothing was copied because the first frame (this long) does not fit.
    pub(super) too_small_bytes: Option<usize>,
    /// A slab packet could not be freed (impossible in-process; counted by the caller).
    pub(super) corrupted: bool,
}
