//! State-machine property test: the SPSC ring against a `VecDeque` (rings.md §3.3).
//!
//! Capacities 1, 2, 4 and 8; start indices at 0, near `u32::MAX` (so the free-running indices
//! wrap) or anywhere. Transitions: single push/pop, burst reserve + partial commit and peek +
//! partial release (each way of writing and reading a chunk), bulk and burst slices, the
//! all-or-nothing `reserve_exact`/`peek_exact`, chunks dropped without commit/release, and
//! free/available queries. After every step the ring's length, both indices and (on queries)
//! free/available counts must match the model, and every value read must be the model's.
//!
//! Honours `PROPTEST_CASES`; under Miri it defaults to 4 cases and writes no regression file.
#![cfg(not(loom))]

mod common;

use std::collections::VecDeque;

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use ndk_model::ring::{Consumer, PeekError, Producer, PushError, ReserveError, Ring, RingConfig};

use common::{config, transitions};

/// How a test fills a reserved chunk.
#[derive(Debug, Clone, Copy)]
enum WriteHow {
    /// `WriteChunk::write`, one slot at a time.
    PerSlot,
    /// `WriteChunk::fill_from_slice`.
    FromSlice,
    /// `WriteChunk::as_mut_slices`.
    Slices,
}

/// How a test reads a peeked chunk.
#[derive(Debug, Clone, Copy)]
enum ReadHow {
    /// `ReadChunk::get`, one entry at a time.
    PerEntry,
    /// `ReadChunk::copy_to_slice`.
    ToSlice,
    /// `ReadChunk::as_slices`.
    Slices,
}

#[derive(Debug, Clone)]
enum RingOp {
    Push(u32),
    Pop,
    /// Burst-reserve up to `n`, fill with `base + i`, commit `k` (clamped to what was granted).
    ReserveCommit {
        n: u32,
        k: u32,
        base: u32,
        how: WriteHow,
    },
    /// Bulk-reserve exactly `n` (fails with the free count if fewer), commit `k.min(n)`.
    ReserveExact {
        n: u32,
        k: u32,
        base: u32,
    },
    /// Burst-peek up to `n`, check the entries, release `k` (clamped).
    PeekRelease {
        n: u32,
        k: u32,
        how: ReadHow,
    },
    /// Bulk-peek exactly `n` (fails with the ready count if fewer), release `k.min(n)`.
    PeekExact {
        n: u32,
        k: u32,
    },
    /// `push_slice` (burst) or `reserve_exact` + `fill_from_slice` (bulk, all or nothing).
    BulkPush {
        values: Vec<u32>,
        exact: bool,
    },
    /// `pop_slice` into a buffer of `n`.
    BurstPop(u32),
    /// `Producer::free(u32::MAX)` (forces a re-read of the consumer index).
    QueryFree,
    /// `Consumer::available(u32::MAX)`.
    QueryAvailable,
}

#[derive(Debug, Clone)]
struct RingModel {
    capacity: u32,
    start: u32,
    items: VecDeque<u32>,
    pushed: u32,
    popped: u32,
}

impl RingModel {
    fn free(&self) -> u32 {
        self.capacity - self.items.len() as u32
    }

    fn len(&self) -> u32 {
        self.items.len() as u32
    }

    fn push_n(&mut self, values: impl IntoIterator<Item = u32>) {
        for v in values {
            assert!(self.len() < self.capacity, "model overfilled");
            self.items.push_back(v);
            self.pushed = self.pushed.wrapping_add(1);
        }
    }

    fn pop_n(&mut self, n: u32) {
        for _ in 0..n {
            self.items.pop_front().expect("model underflow");
            self.popped = self.popped.wrapping_add(1);
        }
    }
}

struct RingReference;

impl ReferenceStateMachine for RingReference {
    type State = RingModel;
    type Transition = RingOp;

    fn init_state() -> BoxedStrategy<RingModel> {
        let capacity = prop_oneof![Just(1u32), Just(2), Just(4), Just(8)];
        let start = prop_oneof![
            Just(0u32),
            (0u32..=16).prop_map(|d| u32::MAX - d),
            any::<u32>(),
        ];
        (capacity, start)
            .prop_map(|(capacity, start)| RingModel {
                capacity,
                start,
                items: VecDeque::new(),
                pushed: 0,
                popped: 0,
            })
            .boxed()
    }

    fn transitions(state: &RingModel) -> BoxedStrategy<RingOp> {
        let cap = state.capacity;
        let count = 0..=cap + 1;
        let write_how = prop_oneof![
            Just(WriteHow::PerSlot),
            Just(WriteHow::FromSlice),
            Just(WriteHow::Slices)
        ];
        let read_how = prop_oneof![
            Just(ReadHow::PerEntry),
            Just(ReadHow::ToSlice),
            Just(ReadHow::Slices)
        ];
        prop_oneof![
            3 => any::<u32>().prop_map(RingOp::Push),
            3 => Just(RingOp::Pop),
            3 => (count.clone(), count.clone(), any::<u32>(), write_how).prop_map(
                |(n, k, base, how)| RingOp::ReserveCommit { n, k, base, how }
            ),
            1 => (count.clone(), count.clone(), any::<u32>())
                .prop_map(|(n, k, base)| RingOp::ReserveExact { n, k, base }),
            3 => (count.clone(), count.clone(), read_how)
                .prop_map(|(n, k, how)| RingOp::PeekRelease { n, k, how }),
            1 => (count.clone(), count.clone()).prop_map(|(n, k)| RingOp::PeekExact { n, k }),
            2 => (
                proptest::collection::vec(any::<u32>(), 0..=cap as usize + 2),
                any::<bool>()
            )
                .prop_map(|(values, exact)| RingOp::BulkPush { values, exact }),
            2 => count.prop_map(RingOp::BurstPop),
            1 => Just(RingOp::QueryFree),
            1 => Just(RingOp::QueryAvailable),
        ]
        .boxed()
    }

    fn apply(mut state: RingModel, op: &RingOp) -> RingModel {
        match op {
            RingOp::Push(v) => {
                if state.free() > 0 {
                    state.push_n([*v]);
                }
            }
            RingOp::Pop => {
                if state.len() > 0 {
                    state.pop_n(1);
                }
            }
            RingOp::ReserveCommit { n, k, base, .. } => {
                let granted = (*n).min(state.free());
                let committed = (*k).min(granted);
                state.push_n((0..committed).map(|i| base.wrapping_add(i)));
            }
            RingOp::ReserveExact { n, k, base } => {
                if *n <= state.free() {
                    state.push_n((0..(*k).min(*n)).map(|i| base.wrapping_add(i)));
                }
            }
            RingOp::PeekRelease { n, k, .. } => {
                let ready = (*n).min(state.len());
                state.pop_n((*k).min(ready));
            }
            RingOp::PeekExact { n, k } => {
                if *n <= state.len() {
                    state.pop_n((*k).min(*n));
                }
            }
            RingOp::BulkPush { values, exact } => {
                let fits = values.len() as u32 <= state.free();
                if !*exact || fits {
                    let n = (values.len() as u32).min(state.free()) as usize;
                    state.push_n(values[..n].iter().copied());
                }
            }
            RingOp::BurstPop(n) => {
                let n = (*n).min(state.len());
                state.pop_n(n);
            }
            RingOp::QueryFree | RingOp::QueryAvailable => {}
        }
        state
    }
}

struct RingSut {
    producer: Producer<u32>,
    consumer: Consumer<u32>,
    /// The model before the transition being applied (the runner hands over the one after).
    before: RingModel,
}

/// The values the model says a read of up to `n` entries returns.
fn front(model: &RingModel, n: u32) -> Vec<u32> {
    model.items.iter().take(n as usize).copied().collect()
}

impl StateMachineTest for RingSut {
    type SystemUnderTest = Self;
    type Reference = RingReference;

    fn init_test(model: &RingModel) -> Self {
        let ring = Ring::<u32>::new(RingConfig {
            start_index: model.start,
            ..RingConfig::with_capacity(model.capacity)
        })
        .unwrap();
        Self {
            producer: ring.producer().unwrap(),
            consumer: ring.consumer().unwrap(),
            before: model.clone(),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn apply(mut sut: Self, after: &RingModel, op: RingOp) -> Self {
        let before = &sut.before;
        let cap = before.capacity;
        match op {
            RingOp::Push(v) => match sut.producer.push(v) {
                Ok(()) => assert!(before.free() > 0, "push into a full ring succeeded"),
                Err(PushError::Full(back)) => {
                    assert_eq!(before.free(), 0, "push refused with room");
                    assert_eq!(back, v, "refused value handed back");
                }
                Err(e) => panic!("{e}"),
            },
            RingOp::Pop => {
                let got = sut.consumer.pop().unwrap();
                assert_eq!(got, before.items.front().copied());
            }
            RingOp::ReserveCommit { n, k, base, how } => {
                let mut chunk = sut.producer.reserve(n).unwrap();
                let granted = chunk.len();
                assert_eq!(granted, n.min(before.free()), "burst reserve length");
                assert_eq!(chunk.is_empty(), granted == 0);
                let values: Vec<u32> = (0..granted).map(|i| base.wrapping_add(i)).collect();
                match how {
                    WriteHow::PerSlot => {
                        for (i, v) in values.iter().enumerate() {
                            chunk.write(i as u32, *v);
                        }
                    }
                    WriteHow::FromSlice => {
                        assert_eq!(chunk.fill_from_slice(&values), granted as usize);
                    }
                    WriteHow::Slices => {
                        let (a, b) = chunk.as_mut_slices();
                        assert_eq!(a.len() + b.len(), granted as usize);
                        let slot = (before.start.wrapping_add(before.pushed) & (cap - 1)) as usize;
                        assert_eq!(a.len(), (cap as usize - slot).min(granted as usize));
                        let (va, vb) = values.split_at(a.len());
                        a.copy_from_slice(va);
                        b.copy_from_slice(vb);
                    }
                }
                chunk.commit(k.min(granted));
            }
            RingOp::ReserveExact { n, k, base } => match sut.producer.reserve_exact(n) {
                Ok(mut chunk) => {
                    assert!(n <= before.free());
                    assert_eq!(chunk.len(), n);
                    for i in 0..n {
                        chunk.write(i, base.wrapping_add(i));
                    }
                    chunk.commit(k.min(n));
                }
                Err(ReserveError::TooFew { free }) => {
                    assert!(n > before.free());
                    assert_eq!(free, before.free(), "TooFew reports the free count");
                }
                Err(e) => panic!("{e}"),
            },
            RingOp::PeekRelease { n, k, how } => {
                let chunk = sut.consumer.peek(n).unwrap();
                let ready = chunk.len();
                assert_eq!(ready, n.min(before.len()), "burst peek length");
                let expected = front(before, ready);
                let got: Vec<u32> = match how {
                    ReadHow::PerEntry => (0..ready).map(|i| chunk.get(i)).collect(),
                    ReadHow::ToSlice => {
                        let mut buf = vec![0u32; ready as usize + 1];
                        assert_eq!(chunk.copy_to_slice(&mut buf), ready as usize);
                        buf.truncate(ready as usize);
                        buf
                    }
                    ReadHow::Slices => {
                        let (a, b) = chunk.as_slices();
                        let slot = (before.start.wrapping_add(before.popped) & (cap - 1)) as usize;
                        assert_eq!(a.len(), (cap as usize - slot).min(ready as usize));
                        a.iter().chain(b).copied().collect()
                    }
                };
                assert_eq!(got, expected, "peeked entries");
                chunk.release(k.min(ready));
            }
            RingOp::PeekExact { n, k } => match sut.consumer.peek_exact(n) {
                Ok(chunk) => {
                    assert!(n <= before.len());
                    let got: Vec<u32> = (0..n).map(|i| chunk.get(i)).collect();
                    assert_eq!(got, front(before, n));
                    chunk.release(k.min(n));
                }
                Err(PeekError::TooFew { available }) => {
                    assert!(n > before.len());
                    assert_eq!(available, before.len());
                }
                Err(e) => panic!("{e}"),
            },
            RingOp::BulkPush { values, exact } => {
                let len = values.len() as u32;
                if exact {
                    match sut.producer.reserve_exact(len) {
                        Ok(mut chunk) => {
                            assert!(len <= before.free());
                            assert_eq!(chunk.fill_from_slice(&values), values.len());
                            chunk.commit_all();
                        }
                        Err(ReserveError::TooFew { free }) => {
                            assert!(len > before.free());
                            assert_eq!(free, before.free());
                        }
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    let n = sut.producer.push_slice(&values).unwrap();
                    assert_eq!(n as u32, len.min(before.free()));
                }
            }
            RingOp::BurstPop(n) => {
                let mut buf = vec![0u32; n as usize];
                let got = sut.consumer.pop_slice(&mut buf).unwrap();
                assert_eq!(got as u32, n.min(before.len()));
                assert_eq!(buf[..got], front(before, n)[..]);
            }
            RingOp::QueryFree => {
                assert_eq!(sut.producer.free(u32::MAX).unwrap(), before.free());
            }
            RingOp::QueryAvailable => {
                assert_eq!(sut.consumer.available(u32::MAX).unwrap(), before.len());
            }
        }
        sut.before = after.clone();
        sut
    }

    fn check_invariants(sut: &Self, model: &RingModel) {
        let ring = sut.producer.ring();
        assert_eq!(ring.len(), model.len(), "ring length");
        assert_eq!(ring.is_empty(), model.items.is_empty());
        assert_eq!(
            sut.producer.index(),
            model.start.wrapping_add(model.pushed),
            "producer index"
        );
        assert_eq!(
            sut.consumer.index(),
            model.start.wrapping_add(model.popped),
            "consumer index"
        );
        assert_eq!(sut.producer.capacity(), model.capacity);
    }

    fn teardown(mut sut: Self) {
        // Drain: everything the model holds comes out, in order, then nothing.
        let expected: Vec<u32> = sut.before.items.iter().copied().collect();
        let mut got = vec![0u32; expected.len() + 1];
        let n = sut.consumer.pop_slice(&mut got).unwrap();
        assert_eq!(got[..n], expected[..]);
        assert_eq!(sut.consumer.pop().unwrap(), None);
        assert_eq!(sut.producer.free(u32::MAX).unwrap(), sut.before.capacity);
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn ring_matches_vecdeque(sequential transitions() => RingSut);
}
