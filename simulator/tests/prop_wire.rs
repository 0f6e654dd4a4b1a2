//! State-machine property test: `SimPort` + `WireEnd` against a `VecDeque` reference model.
//!
//! Small rings (Tx 4 or 8, Rx 2/4/8, events 2/4) and small per-call limits (4 frames, 300
//! bytes, 128-byte frames), so every limit, every all-or-nothing refusal and every "full" is
//! hit often. Transitions: writes of 0–5 frames (runts, oversize frames and over-limit
//! batches included), pops, zero-copy peeks that leave the frame, length peeks, Rx pushes
//! (oversize included), reads with 1–6 buffers of mixed sizes, events, link changes, event
//! polls, start and stop. After every step the results must equal the model's, and the
//! counters must balance: offered = accepted + refused, accepted = popped + still queued,
//! pushed = read + still queued.
#![cfg(not(loom))]

use std::collections::VecDeque;

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use ndk_model::ethernet::MacAddress;
use vnic_driver::port::{HardwarePort, PortEvent, PortInfo, ReadError, WriteError};
use vnic_sim::faults::PortFaults;
use vnic_sim::port::{wire, EventsFull, RxFull, SimPort, WireConfig, WireEnd};
use vnic_sim::rng::SimRng;

const PER_CALL: usize = 4;
const BYTES_PER_CALL: usize = 300;
const FRAME_MAX: usize = 128;

/// Frame `(len, tag)`'s bytes: a function of both, so any mix-up shows.
fn frame(len: usize, tag: u8) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(37).wrapping_add(i as u8))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(usize, u8)>),
    PopTx,
    /// `with_tx` that declines the frame.
    KeepTx,
    PeekTxLen,
    PushRx(usize, u8),
    Read(Vec<usize>),
    PushEvent(PortEvent),
    SetLink(bool),
    PollEvent,
    Start,
    Stop,
}

#[derive(Debug, Clone)]
struct Model {
    tx_cap: usize,
    rx_cap: usize,
    events_cap: usize,
    started: bool,
    link_up: bool,
    tx: VecDeque<Vec<u8>>,
    rx: VecDeque<Vec<u8>>,
    events: VecDeque<PortEvent>,
}

impl Model {
    fn write_result(&self, frames: &[Vec<u8>]) -> Result<usize, WriteError> {
        if !self.started {
            return Err(WriteError::NotStarted);
        }
        if frames.len() > PER_CALL {
            return Err(WriteError::TooManyPackets {
                count: frames.len(),
            });
        }
        let bytes: usize = frames.iter().map(Vec::len).sum();
        if bytes > BYTES_PER_CALL {
            return Err(WriteError::TooManyBytes { bytes });
        }
        if let Some(index) = frames.iter().position(|f| f.len() > FRAME_MAX) {
            return Err(WriteError::PacketTooBig { index });
        }
        if frames.iter().any(|f| f.len() < 14) {
            return Err(WriteError::Failed);
        }
        if frames.len() > self.tx_cap - self.tx.len() {
            return Err(WriteError::Busy);
        }
        Ok(frames.len())
    }

    /// What a read with buffers of these sizes returns.
    fn read_result(&self, bufs: &[usize]) -> Result<Vec<Vec<u8>>, ReadError> {
        if !self.started {
            return Err(ReadError::NotStarted);
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for (i, &cap) in bufs.iter().take(PER_CALL).enumerate() {
            let Some(f) = self.rx.get(i) else { break };
            if f.len() > cap {
                if i == 0 {
                    return Err(ReadError::BufferTooSmall {
                        needed_bytes: f.len(),
                    });
                }
                break;
            }
            if bytes + f.len() > BYTES_PER_CALL {
                break;
            }
            bytes += f.len();
            out.push(f.clone());
        }
        Ok(out)
    }

    fn push_event(&mut self, e: PortEvent) -> Result<(), EventsFull> {
        match e {
            PortEvent::LinkUp => self.link_up = true,
            PortEvent::LinkDown => self.link_up = false,
            PortEvent::Stopped => self.started = false,
            PortEvent::PacketsAvailable { .. } => {}
        }
        if self.events.len() == self.events_cap {
            return Err(EventsFull(e));
        }
        self.events.push_back(e);
        Ok(())
    }
}

struct Reference;

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => 0usize..14,
        6 => 14usize..=FRAME_MAX,
        1 => Just(FRAME_MAX + 1),
    ]
}

fn event_strategy() -> impl Strategy<Value = PortEvent> {
    prop_oneof![
        Just(PortEvent::LinkUp),
        Just(PortEvent::LinkDown),
        Just(PortEvent::Stopped),
        (0usize..5000).prop_map(|estimate| PortEvent::PacketsAvailable { estimate }),
    ]
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        (
            prop_oneof![Just(4usize), Just(8)],
            prop_oneof![Just(2usize), Just(4), Just(8)],
            prop_oneof![Just(2usize), Just(4)],
        )
            .prop_map(|(tx_cap, rx_cap, events_cap)| Model {
                tx_cap,
                rx_cap,
                events_cap,
                started: false,
                link_up: true,
                tx: VecDeque::new(),
                rx: VecDeque::new(),
                events: VecDeque::new(),
            })
            .boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Op> {
        let buf = prop_oneof![Just(8usize), Just(64), Just(FRAME_MAX), Just(200)];
        prop_oneof![
            5 => proptest::collection::vec((len_strategy(), any::<u8>()), 0..=PER_CALL + 1)
                .prop_map(Op::Write),
            4 => Just(Op::PopTx),
            1 => Just(Op::KeepTx),
            1 => Just(Op::PeekTxLen),
            5 => (len_strategy(), any::<u8>()).prop_map(|(l, t)| Op::PushRx(l, t)),
            4 => proptest::collection::vec(buf, 1..=6).prop_map(Op::Read),
            1 => event_strategy().prop_map(Op::PushEvent),
            1 => any::<bool>().prop_map(Op::SetLink),
            2 => Just(Op::PollEvent),
            2 => Just(Op::Start),
            1 => Just(Op::Stop),
        ]
        .boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        match op {
            Op::Write(spec) => {
                let frames: Vec<Vec<u8>> = spec.iter().map(|&(l, t)| frame(l, t)).collect();
                if state.write_result(&frames).is_ok() {
                    state.tx.extend(frames);
                }
            }
            Op::PopTx => {
                state.tx.pop_front();
            }
            Op::KeepTx | Op::PeekTxLen => {}
            Op::PushRx(len, tag) => {
                if *len <= FRAME_MAX && state.rx.len() < state.rx_cap {
                    state.rx.push_back(frame(*len, *tag));
                }
            }
            Op::Read(bufs) => {
                if let Ok(got) = state.read_result(bufs) {
                    state.rx.drain(..got.len());
                }
            }
            Op::PushEvent(e) => {
                let _ = state.push_event(*e);
            }
            Op::SetLink(up) => {
                let e = if *up {
                    PortEvent::LinkUp
                } else {
                    PortEvent::LinkDown
                };
                let _ = state.push_event(e);
            }
            Op::PollEvent => {
                state.events.pop_front();
            }
            Op::Start => state.started = true,
            Op::Stop => state.started = false,
        }
        state
    }
}

struct Sut {
    port: SimPort,
    end: WireEnd,
    before: Model,
    out: Vec<u8>,
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Self;
    type Reference = Reference;

    fn init_test(model: &Model) -> Self {
        let mut info = PortInfo::vmnet_documented(MacAddress([2, 0, 0, 0, 0, 1]));
        info.max_packets_per_call = PER_CALL;
        info.max_bytes_per_call = BYTES_PER_CALL;
        info.max_packet_size_bytes = FRAME_MAX;
        let config = WireConfig {
            tx_frames_max: model.tx_cap as u32,
            rx_frames_max: model.rx_cap as u32,
            events_max: model.events_cap as u32,
        };
        let (port, end) = wire(info, config, PortFaults::NONE, SimRng::new(0)).unwrap();
        Self {
            port,
            end,
            before: model.clone(),
            out: Vec::new(),
        }
    }

    fn apply(mut sut: Self, after: &Model, op: Op) -> Self {
        let before = &sut.before;
        match op {
            Op::Write(spec) => {
                let frames: Vec<Vec<u8>> = spec.iter().map(|&(l, t)| frame(l, t)).collect();
                let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                assert_eq!(sut.port.write_frames(&refs), before.write_result(&frames));
            }
            Op::PopTx => {
                let got = sut.end.pop_tx(&mut sut.out);
                assert_eq!(got, !before.tx.is_empty());
                if let Some(f) = before.tx.front() {
                    assert_eq!(&sut.out, f);
                } else {
                    assert!(sut.out.is_empty());
                }
            }
            Op::KeepTx => {
                let mut seen = None;
                let got = sut.end.with_tx(|f| {
                    seen = Some(f.to_vec());
                    false
                });
                assert_eq!(got, before.tx.front().map(|_| false));
                assert_eq!(seen.as_ref(), before.tx.front());
            }
            Op::PeekTxLen => {
                assert_eq!(sut.end.peek_tx_len(), before.tx.front().map(Vec::len));
            }
            Op::PushRx(len, tag) => {
                let f = frame(len, tag);
                let expected = if len > FRAME_MAX {
                    Err(RxFull::TooBig { len_bytes: len })
                } else if before.rx.len() == before.rx_cap {
                    Err(RxFull::Full)
                } else {
                    Ok(())
                };
                assert_eq!(sut.end.rx_free(), before.rx_cap - before.rx.len());
                assert_eq!(sut.end.push_rx(&f), expected);
            }
            Op::Read(sizes) => {
                let mut store: Vec<Vec<u8>> = sizes.iter().map(|&s| vec![0xee; s]).collect();
                let mut bufs: Vec<&mut [u8]> = store.iter_mut().map(Vec::as_mut_slice).collect();
                let mut lens = vec![0usize; bufs.len()];
                let got = sut.port.read_frames(&mut bufs, &mut lens);
                match before.read_result(&sizes) {
                    Ok(frames) => {
                        assert_eq!(got, Ok(frames.len()));
                        for (i, f) in frames.iter().enumerate() {
                            assert_eq!(&bufs[i][..lens[i]], &f[..], "frame {i}");
                        }
                    }
                    Err(e) => assert_eq!(got, Err(e)),
                }
            }
            Op::PushEvent(e) => {
                let mut m = before.clone();
                assert_eq!(sut.end.push_event(e), m.push_event(e));
            }
            Op::SetLink(up) => sut.end.set_link(up),
            Op::PollEvent => assert_eq!(sut.port.poll_event(), before.events.front().copied()),
            Op::Start => sut.port.start().unwrap(),
            Op::Stop => sut.port.stop(),
        }
        // State and conservation after every step.
        assert_eq!(sut.end.is_started(), after.started);
        assert_eq!(sut.port.is_link_up(), after.started && after.link_up);
        assert_eq!(sut.end.tx_queued(), after.tx.len());
        assert_eq!(sut.end.rx_queued(), after.rx.len());
        assert_eq!(sut.port.rx_queued(), after.rx.len());
        let c = sut.port.counters();
        let w = sut.end.counters();
        assert_eq!(c.frames_offered, c.frames_accepted + c.frames_refused());
        assert_eq!(
            c.frames_accepted,
            w.tx_frames_popped + sut.end.tx_queued() as u64
        );
        assert_eq!(
            w.rx_frames_pushed,
            c.frames_read + sut.end.rx_queued() as u64
        );
        assert_eq!(c.frames_refused_internal + c.reads_internal_failure, 0);
        assert_eq!(w.internal_errors, 0);
        sut.before = after.clone();
        sut
    }
}

prop_state_machine! {
    #[test]
    fn wire_matches_vecdeque_model(sequential 1..64 => Sut);
}
