//! One direction of the wire: an SPSC [`Ring`] of 32-byte blocks from ndk-model
//! (loom-verified there) that carries the frames' bytes in place.
//!
//! **Records.** Each frame takes one fixed-size record of `record_blocks` blocks (a power of
//! two): block 0 holds the length (`u32`, little-endian, in its first four bytes), the
//! blocks after it hold the bytes. The ring's capacity is `frames × record_blocks` blocks,
//! and the sender only ever reserves and commits whole records (the receiver only releases
//! whole records), so with the indices starting at 0 a record never straddles the ring's
//! wrap and `blocks / record_blocks` is exactly a frame count.
//!
//! **Ownership.** The ring's index protocol is the whole hand-off: the sender writes a
//! record only into slots it reserved (free), publishes a batch with one `Release` store,
//! and the receiver reads a record only after its `Acquire` load saw it published and lets
//! the slots go with one `Release` store after copying the bytes out. No per-frame pool
//! steps (allocate, `into_index`, `packet_from_index`, free) are needed: the port copies
//! bytes at its boundary and nothing but bytes crosses it.
//!
//! **Wakeups.** The ring's need-wakeup flag ([`Consumer::prepare_to_sleep`] /
//! [`Producer::take_consumer_wakeup`], a Dekker store→fence→load pair) decides whether the
//! sender must ring the receiver's notifier: the receiver arms it each time it finds the
//! ring empty, the sender takes it after publishing. At most one ring per empty read, not
//! one per frame.

use ndk_model::ring::{Consumer, Producer, ReadChunk, ReserveError, Ring, RingConfig};

use super::WireError;

/// Bytes per ring block.
const BLOCK_BYTES: usize = 32;

/// One ring slot.
type Block = [u8; BLOCK_BYTES];

/// Why a channel operation failed; impossible in-process and counted by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelError {
    /// The ring's indices, or a record's length word, are not what the protocol allows (or
    /// a caller passed a frame longer than the channel's frame size).
    Corrupted,
}

/// The sending half.
#[derive(Debug)]
pub(super) struct FrameSender {
    ring: Producer<Block>,
    record_blocks: u32,
    frame_bytes_max: usize,
    batch_frames_max: usize,
}

/// The receiving half.
#[derive(Debug)]
pub(super) struct FrameReceiver {
    ring: Consumer<Block>,
    record_blocks: u32,
    frame_bytes_max: usize,
    /// Under loom a record is read slot by slot into here (capacity fixed at creation);
    /// unused (and unallocated) otherwise.
    scratch: Vec<u8>,
}

/// A channel of `capacity` frames of up to `frame_bytes_max` bytes, batches of up to
/// `batch_frames_max`.
pub(super) fn frame_channel(
    capacity: u32,
    frame_bytes_max: usize,
    batch_frames_max: usize,
) -> Result<(FrameSender, FrameReceiver), WireError> {
    let data_blocks =
        u32::try_from(frame_bytes_max.div_ceil(BLOCK_BYTES)).map_err(|_| WireError::BadPortInfo)?;
    let record_blocks = (data_blocks + 1).next_power_of_two();
    let ring_blocks = capacity
        .checked_mul(record_blocks)
        .ok_or(WireError::BadPortInfo)?;
    let ring =
        Ring::<Block>::new(RingConfig::with_capacity(ring_blocks)).map_err(WireError::Ring)?;
    let sender = FrameSender {
        ring: ring.producer().map_err(WireError::Ring)?,
        record_blocks,
        frame_bytes_max,
        batch_frames_max: batch_frames_max.max(1),
    };
    let receiver = FrameReceiver {
        ring: ring.consumer().map_err(WireError::Ring)?,
        record_blocks,
        frame_bytes_max,
        scratch: if cfg!(loom) {
            Vec::with_capacity(frame_bytes_max)
        } else {
            Vec::new()
        },
    };
    Ok((sender, receiver))
}

/// Writes `frame` into `record` (length block, then the bytes). `record` is a whole
/// record, long enough for any frame the channel takes.
#[cfg(not(loom))]
fn write_record(record: &mut [Block], frame: &[u8]) {
    let (head, body) = record.split_at_mut(1);
    // `frame.len() <= frame_bytes_max`, checked by the caller, so it fits in a u32.
    head[0][..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    body.as_flattened_mut()[..frame.len()].copy_from_slice(frame);
}

/// The length a record's first block announces.
fn record_len(head: &Block) -> usize {
    u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize
}

impl FrameSender {
    /// Sends all of `frames` or none: `Ok(false)` if the ring lacks room for the whole batch.
    /// `frames.len()` must not exceed the batch size given at creation (checked by callers;
    /// a longer batch is refused as no room, never split).
    pub(super) fn send_all(&mut self, frames: &[&[u8]]) -> Result<bool, ChannelError> {
        if frames.len() > self.batch_frames_max {
            return Ok(false);
        }
        let w = self.record_blocks;
        // `frames.len() <= batch_frames_max <= capacity`, so this cannot overflow.
        let n = frames.len() as u32 * w;
        let mut chunk = match self.ring.reserve_exact(n) {
            Ok(chunk) => chunk,
            Err(ReserveError::TooFew { .. }) => return Ok(false),
            Err(ReserveError::Corrupted(_)) => return Err(ChannelError::Corrupted),
        };
        #[cfg(not(loom))]
        {
            let w = w as usize;
            let (a, b) = chunk.as_mut_slices();
            // Whole records only (see the module docs), so the wrap falls between records.
            let mut records = a.chunks_exact_mut(w).chain(b.chunks_exact_mut(w));
            for frame in frames {
                let Some(record) = records.next() else {
                    // The chunk is never committed, so its slots stay free.
                    return Err(ChannelError::Corrupted);
                };
                if frame.len() > self.frame_bytes_max {
                    // Callers check sizes first; refused whole, as above.
                    return Err(ChannelError::Corrupted);
                }
                write_record(record, frame);
            }
        }
        #[cfg(loom)]
        for (i, frame) in frames.iter().enumerate() {
            if frame.len() > self.frame_bytes_max {
                return Err(ChannelError::Corrupted);
            }
            let base = i as u32 * w;
            let mut head = [0u8; BLOCK_BYTES];
            head[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
            chunk.write(base, head);
            for (j, piece) in frame.chunks(BLOCK_BYTES).enumerate() {
                let mut block = [0u8; BLOCK_BYTES];
                block[..piece.len()].copy_from_slice(piece);
                chunk.write(base + 1 + j as u32, block);
            }
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
        (self.ring.ring().len() / self.record_blocks) as usize
    }

    /// Free frame slots.
    pub(super) fn free(&mut self) -> usize {
        self.ring
            .free(self.ring.capacity())
            .map_or(0, |n| (n / self.record_blocks) as usize)
    }
}

/// Record `i` of `chunk` as bytes: from the ring in place, or (under loom, whose cells hand
/// out no slices) copied into `scratch`. `None`: a length word longer than the channel's
/// frame size, or a chunk too short (impossible in-process).
fn chunk_record<'c>(
    chunk: &'c ReadChunk<'_, Block>,
    i: u32,
    record_blocks: u32,
    frame_bytes_max: usize,
    scratch: &'c mut Vec<u8>,
) -> Option<&'c [u8]> {
    let base = i.checked_mul(record_blocks)?;
    if base.checked_add(record_blocks)? > chunk.len() {
        return None;
    }
    #[cfg(not(loom))]
    {
        let _ = scratch;
        let (a, b) = chunk.as_slices();
        let w = record_blocks as usize;
        let at = base as usize;
        // Whole records only, so a record lies entirely in one of the two slices.
        let record = if at + w <= a.len() {
            &a[at..at + w]
        } else {
            b.get(at - a.len()..at - a.len() + w)?
        };
        let len = record_len(&record[0]);
        if len > frame_bytes_max {
            return None;
        }
        record[1..].as_flattened().get(..len)
    }
    #[cfg(loom)]
    {
        let len = record_len(&chunk.get(base));
        if len > frame_bytes_max {
            return None;
        }
        scratch.clear();
        for j in 0..len.div_ceil(BLOCK_BYTES) {
            let block = chunk.get(base + 1 + j as u32);
            let take = (len - j * BLOCK_BYTES).min(BLOCK_BYTES);
            scratch.extend_from_slice(&block[..take]);
        }
        Some(&scratch[..])
    }
}

impl FrameReceiver {
    /// Frames ready to receive.
    pub(super) fn ready(&mut self, wanted: u32) -> Result<u32, ChannelError> {
        let w = self.record_blocks;
        self.ring
            .available(wanted.saturating_mul(w))
            .map(|blocks| blocks / w)
            .map_err(|_| ChannelError::Corrupted)
    }

    /// Frames in the ring.
    pub(super) fn queued(&self) -> usize {
        (self.ring.ring().len() / self.record_blocks) as usize
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
        let w = self.record_blocks;
        let chunk = self.ring.peek(w).map_err(|_| ChannelError::Corrupted)?;
        if chunk.len() < w {
            return Ok(None);
        }
        let Some(frame) = chunk_record(&chunk, 0, w, self.frame_bytes_max, &mut self.scratch)
        else {
            return Err(ChannelError::Corrupted);
        };
        let (consume, result) = f(frame);
        if consume {
            chunk.release(w);
        }
        Ok(Some(result))
    }

    /// Copies up to `bufs.len()` frames (and at most `bytes_max` bytes) into `bufs`, frame
    /// `i` into `bufs[i][..lens[i]]`, consuming them. A frame that does not fit its buffer
    /// stops the batch: `too_small_bytes` is set if it is the first. A corrupt record stops
    /// the batch after the frames before it (`corrupted`).
    pub(super) fn recv_into(
        &mut self,
        bufs: &mut [&mut [u8]],
        lens: &mut [usize],
        bytes_max: usize,
    ) -> Result<RecvOutcome, ChannelError> {
        let w = self.record_blocks;
        let want = bufs.len().min(lens.len()).min((u32::MAX / w) as usize) as u32;
        let chunk = self
            .ring
            .peek(want * w)
            .map_err(|_| ChannelError::Corrupted)?;
        let records = chunk.len() / w;
        let mut n = 0u32;
        let mut bytes = 0usize;
        let mut outcome = RecvOutcome::default();
        while n < records {
            let Some(data) = chunk_record(&chunk, n, w, self.frame_bytes_max, &mut self.scratch)
            else {
                outcome.corrupted = true;
                break;
            };
            let buf = &mut bufs[n as usize];
            if data.len() > buf.len() || bytes + data.len() > bytes_max {
                if n == 0 && data.len() > buf.len() {
                    outcome.too_small_bytes = Some(data.len());
                }
                break;
            }
            buf[..data.len()].copy_from_slice(data);
            lens[n as usize] = data.len();
            bytes += data.len();
            n += 1;
        }
        chunk.release(n * w);
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
    /// A record's length word was impossible (impossible in-process; counted by the
    /// caller); the batch stopped before it.
    pub(super) corrupted: bool,
}
