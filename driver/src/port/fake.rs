//! [`FakePort`]: a scripted, inspectable [`HardwarePort`].

use std::collections::VecDeque;
use std::sync::Arc;

use ndk_model::notify::Notifier;

use super::{HardwarePort, PortEvent, PortInfo, ReadError, StartError, WriteError};

/// A scripted [`HardwarePort`] for tests and the simulator.
///
/// - inbound frames are queued with [`FakePort::push_inbound`] and read in order;
/// - outbound frames are recorded (see [`FakePort::outbound`]) unless recording is off;
/// - errors are injectable: busy `n` times, one write or read failure, a start failure;
/// - link flaps and other events are queued with [`FakePort::push_event`] /
///   [`FakePort::link_flap`];
/// - vmnet's per-call limits are enforced on every write with vmnet's errors.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent script switches
pub struct FakePort {
    info: PortInfo,
    started: bool,
    link_up: bool,
    inbound: VecDeque<Vec<u8>>,
    outbound: Vec<Vec<u8>>,
    record_outbound: bool,
    events: VecDeque<PortEvent>,
    readiness: Option<Arc<dyn Notifier>>,
    busy_writes_left: u32,
    next_write_error: Option<WriteError>,
    next_read_error: Option<ReadError>,
    start_fails: bool,
    write_calls: u64,
    read_calls: u64,
    frames_written: u64,
    bytes_written: u64,
    batch_sizes: Vec<usize>,
}

impl FakePort {
    /// A stopped port with these parameters, link up once started, recording outbound frames.
    pub fn new(info: PortInfo) -> Self {
        Self {
            info,
            started: false,
            link_up: true,
            inbound: VecDeque::new(),
            outbound: Vec::new(),
            record_outbound: true,
            events: VecDeque::new(),
            readiness: None,
            busy_writes_left: 0,
            next_write_error: None,
            next_read_error: None,
            start_fails: false,
            write_calls: 0,
            read_calls: 0,
            frames_written: 0,
            bytes_written: 0,
            batch_sizes: Vec::new(),
        }
    }

    /// Stops recording outbound frames and batch sizes (only counts them), so writes
    /// allocate nothing.
    #[must_use]
    pub fn without_recording(mut self) -> Self {
        self.record_outbound = false;
        self
    }

    /// Queues a frame for the NIC to read and signals readiness.
    pub fn push_inbound(&mut self, frame: &[u8]) {
        self.inbound.push_back(frame.to_vec());
        self.signal();
    }

    /// Frames waiting to be read.
    pub fn inbound_len(&self) -> usize {
        self.inbound.len()
    }

    /// Frames written so far (when recording).
    pub fn outbound(&self) -> &[Vec<u8>] {
        &self.outbound
    }

    /// Takes the recorded outbound frames.
    pub fn take_outbound(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outbound)
    }

    /// The frame count of every successful write call, in order (when recording).
    pub fn write_batch_sizes(&self) -> &[usize] {
        &self.batch_sizes
    }

    /// Write calls made, including refused ones.
    pub fn write_calls(&self) -> u64 {
        self.write_calls
    }

    /// Read calls made.
    pub fn read_calls(&self) -> u64 {
        self.read_calls
    }

    /// Frames the port accepted.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Bytes the port accepted.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Whether the port is started.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The next `count` writes fail with [`WriteError::Busy`].
    pub fn busy_writes(&mut self, count: u32) {
        self.busy_writes_left = count;
    }

    /// The next write fails with `error`.
    pub fn fail_next_write(&mut self, error: WriteError) {
        self.next_write_error = Some(error);
    }

    /// The next read fails with `error`.
    pub fn fail_next_read(&mut self, error: ReadError) {
        self.next_read_error = Some(error);
    }

    /// Whether [`HardwarePort::start`] fails.
    pub fn set_start_fails(&mut self, fails: bool) {
        self.start_fails = fails;
    }

    /// Queues an event (and applies link changes) and signals readiness.
    pub fn push_event(&mut self, event: PortEvent) {
        match event {
            PortEvent::LinkUp => self.link_up = true,
            PortEvent::LinkDown => self.link_up = false,
            PortEvent::Stopped => self.started = false,
            PortEvent::PacketsAvailable { .. } => {}
        }
        self.events.push_back(event);
        self.signal();
    }

    /// Link down, then link up.
    pub fn link_flap(&mut self) {
        self.push_event(PortEvent::LinkDown);
        self.push_event(PortEvent::LinkUp);
    }

    fn signal(&self) {
        if let Some(n) = &self.readiness {
            n.notify();
        }
    }
}

impl HardwarePort for FakePort {
    fn info(&self) -> PortInfo {
        self.info
    }

    fn start(&mut self) -> Result<(), StartError> {
        if self.start_fails {
            return Err(StartError::Failed);
        }
        self.started = true;
        Ok(())
    }

    fn stop(&mut self) {
        self.started = false;
    }

    fn is_link_up(&self) -> bool {
        self.started && self.link_up
    }

    fn write_frames(&mut self, frames: &[&[u8]]) -> Result<usize, WriteError> {
        self.write_calls += 1;
        if !self.started {
            return Err(WriteError::NotStarted);
        }
        if let Some(e) = self.next_write_error.take() {
            return Err(e);
        }
        if frames.len() > self.info.max_packets_per_call {
            return Err(WriteError::TooManyPackets {
                count: frames.len(),
            });
        }
        let bytes: usize = frames.iter().map(|f| f.len()).sum();
        if bytes > self.info.max_bytes_per_call {
            return Err(WriteError::TooManyBytes { bytes });
        }
        if let Some(index) = frames
            .iter()
            .position(|f| f.len() > self.info.max_packet_size_bytes)
        {
            return Err(WriteError::PacketTooBig { index });
        }
        if self.busy_writes_left > 0 {
            self.busy_writes_left -= 1;
            return Err(WriteError::Busy);
        }
        self.frames_written += frames.len() as u64;
        self.bytes_written += bytes as u64;
        if self.record_outbound && !frames.is_empty() {
            self.batch_sizes.push(frames.len());
            self.outbound.extend(frames.iter().map(|f| f.to_vec()));
        }
        Ok(frames.len())
    }

    fn read_frames(
        &mut self,
        bufs: &mut [&mut [u8]],
        lens: &mut [usize],
    ) -> Result<usize, ReadError> {
        self.read_calls += 1;
        if !self.started {
            return Err(ReadError::NotStarted);
        }
        if let Some(e) = self.next_read_error.take() {
            return Err(e);
        }
        let max = bufs
            .len()
            .min(lens.len())
            .min(self.info.max_packets_per_call);
        let mut n = 0;
        let mut bytes = 0;
        while n < max {
            let Some(frame) = self.inbound.front() else {
                break;
            };
            if bytes + frame.len() > self.info.max_bytes_per_call {
                break;
            }
            let buf = &mut bufs[n];
            if frame.len() > buf.len() {
                if n == 0 {
                    return Err(ReadError::BufferTooSmall {
                        needed_bytes: frame.len(),
                    });
                }
                break;
            }
            buf[..frame.len()].copy_from_slice(frame);
            lens[n] = frame.len();
            bytes += frame.len();
            n += 1;
            self.inbound.pop_front();
        }
        Ok(n)
    }

    fn poll_event(&mut self) -> Option<PortEvent> {
        self.events.pop_front()
    }

    fn set_readiness(&mut self, notifier: Arc<dyn Notifier>) {
        self.readiness = Some(notifier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndk_model::ethernet::MacAddress;

    const MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 1]);

    fn started() -> FakePort {
        let mut port = FakePort::new(PortInfo::vmnet_documented(MAC));
        port.start().unwrap();
        port
    }

    #[test]
    fn writes_enforce_vmnet_per_call_limits() {
        let mut port = started();
        let small = [0u8; 64];
        let big = [0u8; 1514];
        let too_many = vec![&small[..]; 201];
        assert_eq!(
            port.write_frames(&too_many),
            Err(WriteError::TooManyPackets { count: 201 })
        );
        let too_much = vec![&big[..]; 174];
        assert_eq!(
            port.write_frames(&too_much),
            Err(WriteError::TooManyBytes { bytes: 174 * 1514 })
        );
        let oversize = [0u8; 1515];
        assert_eq!(
            port.write_frames(&[&small, &oversize]),
            Err(WriteError::PacketTooBig { index: 1 })
        );
        assert_eq!(port.write_frames(&vec![&small[..]; 200]), Ok(200));
        assert_eq!(port.frames_written(), 200);
        assert_eq!(port.write_calls(), 4);
    }

    #[test]
    fn scripted_errors_fire_once_or_n_times() {
        let mut port = started();
        let f = [1u8; 60];
        port.busy_writes(2);
        assert_eq!(port.write_frames(&[&f]), Err(WriteError::Busy));
        assert_eq!(port.write_frames(&[&f]), Err(WriteError::Busy));
        assert_eq!(port.write_frames(&[&f]), Ok(1));
        port.fail_next_write(WriteError::Failed);
        assert_eq!(port.write_frames(&[&f]), Err(WriteError::Failed));
        port.fail_next_read(ReadError::Failed);
        let mut buf = [0u8; 2048];
        let mut bufs = [&mut buf[..]];
        let mut lens = [0usize; 1];
        assert_eq!(
            port.read_frames(&mut bufs, &mut lens),
            Err(ReadError::Failed)
        );
        port.stop();
        assert_eq!(port.write_frames(&[&f]), Err(WriteError::NotStarted));
        assert_eq!(
            port.read_frames(&mut bufs, &mut lens),
            Err(ReadError::NotStarted)
        );
        port.set_start_fails(true);
        assert_eq!(port.start(), Err(StartError::Failed));
    }

    #[test]
    fn reads_copy_in_order_and_leave_what_does_not_fit() {
        let mut port = started();
        let notifier = Arc::new(ndk_model::notify::FakeNotifier::new());
        port.set_readiness(notifier.clone());
        port.push_inbound(&[1u8; 100]);
        port.push_inbound(&[2u8; 300]);
        assert_eq!(notifier.notified_total(), 2);
        let mut a = [0u8; 200];
        let mut b = [0u8; 200];
        let mut bufs = [&mut a[..], &mut b[..]];
        let mut lens = [0usize; 2];
        assert_eq!(port.read_frames(&mut bufs, &mut lens), Ok(1));
        assert_eq!(lens[0], 100);
        assert_eq!(port.inbound_len(), 1);
        assert_eq!(
            port.read_frames(&mut bufs, &mut lens),
            Err(ReadError::BufferTooSmall { needed_bytes: 300 })
        );
        assert_eq!(port.inbound_len(), 1);
    }

    #[test]
    fn link_flap_queues_events_and_tracks_link() {
        let mut port = started();
        assert!(port.is_link_up());
        port.push_event(PortEvent::LinkDown);
        assert!(!port.is_link_up());
        port.push_event(PortEvent::LinkUp);
        port.link_flap();
        let events: Vec<_> = std::iter::from_fn(|| port.poll_event()).collect();
        assert_eq!(
            events,
            [
                PortEvent::LinkDown,
                PortEvent::LinkUp,
                PortEvent::LinkDown,
                PortEvent::LinkUp
            ]
        );
        assert!(port.is_link_up());
    }
}
