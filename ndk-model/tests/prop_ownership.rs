//! State-machine property test: packet ownership across the four NDK queues against a table
//! of allowed transitions (ndk.md §9.2).
//!
//! ```text
//! Free ─allocate(system)─► System ─system enqueue (Rx/Tx submission)─► InSubmission
//!   ▲  ─allocate(driver)─► Driver ◄─driver dequeue (submission)─────────────┘
//!   │                        │ ─driver enqueue (Rx/Tx completion)─► InCompletion
//!   ├──── deallocate ────────┘                                          │
//!   └──── system_free ◄── System ◄─system dequeue (completion)──────────┘
//! ```
//!
//! One pool, four queues (driver halves created with `create`, system halves attached to
//! their rings). The reference model tracks every allocated packet as a handle: held by the
//! system, held by the driver, or queued (in order) in one of the four queues; plus which
//! queues are enabled. Transitions: allocate for either side, free through the right and the
//! wrong call, single and batch enqueue on every queue from a mix of system- and driver-held
//! packets (so wrong-owner packets stop a batch and come back), enqueue of a packet from
//! another pool, single and batch dequeue, and enabling/disabling queues (a disabled queue
//! moves nothing). After every step each packet's owner word must be the model's; every owner
//! change the step made must be in [`ALLOWED`] and be the change that step is allowed to make;
//! ring lengths, enable flags, `in_use()` and the leak report must match.
//!
//! Honours `PROPTEST_CASES`; under Miri it defaults to 4 cases and writes no regression file.
#![cfg(not(loom))]

mod common;

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use ndk_model::packet::Packet;
use ndk_model::pool::{
    AllocateError, DeallocateError, Owner, OwnerState, PacketBufferPool, PoolConfig,
    OWNER_STATE_MASK, OWNER_TOKEN_BIT,
};
use ndk_model::queue::{
    EnqueueError, EnqueueOutcome, EnqueueRefusal, QueueKind, RxCompletionQueue, RxSubmissionQueue,
    SystemRxCompletion, SystemRxSubmission, SystemTxCompletion, SystemTxSubmission,
    TxCompletionQueue, TxSubmissionQueue,
};

use common::{config, transitions};

/// Every owner change the model allows (ndk.md §9.2).
const ALLOWED: [(OwnerState, OwnerState); 8] = [
    (OwnerState::Free, OwnerState::System),
    (OwnerState::Free, OwnerState::Driver),
    (OwnerState::System, OwnerState::InSubmission),
    (OwnerState::InSubmission, OwnerState::Driver),
    (OwnerState::Driver, OwnerState::InCompletion),
    (OwnerState::InCompletion, OwnerState::System),
    (OwnerState::System, OwnerState::Free),
    (OwnerState::Driver, OwnerState::Free),
];

/// Batch size of the `heapless` vectors handed to the queues.
const BATCH: usize = 8;
type Batch = heapless::Vec<Packet, BATCH>;

/// Queue number = `QueueKind as usize`: 0 Rx submission, 1 Rx completion, 2 Tx submission,
/// 3 Tx completion.
fn kind(q: usize) -> QueueKind {
    QueueKind::ALL[q]
}

#[derive(Debug, Clone)]
enum OwnOp {
    Alloc(Owner),
    /// `system_free` of a system-held packet.
    SysFree(Index),
    /// `deallocate` of a driver-held packet.
    DrvDealloc(Index),
    /// `system_free` of a driver-held packet: refused.
    SysFreeDriverPacket(Index),
    /// `deallocate` of a system-held packet: refused (deallocate only while driver-owned).
    DrvDeallocSystemPacket(Index),
    /// Enqueue on queue `q` by the side that enqueues there, a batch picked from the system's
    /// (`true`) and the driver's (`false`) packets. One pick uses `enqueue_packet`.
    Enqueue {
        q: usize,
        picks: Vec<(bool, Index)>,
    },
    /// Enqueue a packet of another pool on queue `q`: refused as foreign.
    EnqueueForeign {
        q: usize,
    },
    /// Dequeue up to `max` from queue `q` by the side that dequeues there; `single` uses
    /// `dequeue_packet`.
    Dequeue {
        q: usize,
        max: u32,
        single: bool,
    },
    /// `set_enable` on the driver half of queue `q`.
    SetEnable {
        q: usize,
        on: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    System,
    Driver,
    Queue(usize),
}

#[derive(Debug, Clone)]
struct OwnModel {
    packets: u32,
    caps: [u32; 4],
    enabled: [bool; 4],
    free: u32,
    sys: Vec<u32>,
    drv: Vec<u32>,
    queues: [VecDeque<u32>; 4],
    next_handle: u32,
}

/// What a batch enqueue does, computed from the model before it.
#[derive(Debug, Clone)]
struct EnqueuePlan {
    /// The batch: (handle, was it the system's).
    batch: Vec<(u32, bool)>,
    accepted: usize,
    refusal: Option<Refusal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Disabled,
    Full,
    WrongOwner,
}

impl OwnModel {
    fn locate(&self) -> BTreeMap<u32, Loc> {
        let mut map = BTreeMap::new();
        for h in &self.sys {
            map.insert(*h, Loc::System);
        }
        for h in &self.drv {
            map.insert(*h, Loc::Driver);
        }
        for (q, queue) in self.queues.iter().enumerate() {
            for h in queue {
                map.insert(*h, Loc::Queue(q));
            }
        }
        map
    }

    fn held(&self) -> usize {
        self.sys.len() + self.drv.len() + self.queues.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Removes the picked packets from the held lists, in pick order.
    fn take_batch(&mut self, picks: &[(bool, Index)]) -> Vec<(u32, bool)> {
        let mut batch = Vec::new();
        for (from_sys, index) in picks {
            let list = if *from_sys {
                &mut self.sys
            } else {
                &mut self.drv
            };
            if !list.is_empty() {
                let pos = index.index(list.len());
                batch.push((list.remove(pos), *from_sys));
            }
        }
        batch
    }

    fn plan_enqueue(&self, q: usize, batch: Vec<(u32, bool)>) -> EnqueuePlan {
        let wants_system = kind(q).is_submission();
        let mut accepted = 0;
        let mut refusal = None;
        if !batch.is_empty() {
            if self.enabled[q] {
                let room = (self.caps[q] as usize - self.queues[q].len()).min(batch.len());
                for (_, from_sys) in &batch {
                    if accepted == room {
                        refusal = Some(Refusal::Full);
                        break;
                    }
                    if *from_sys != wants_system {
                        refusal = Some(Refusal::WrongOwner);
                        break;
                    }
                    accepted += 1;
                }
            } else {
                refusal = Some(Refusal::Disabled);
            }
        }
        EnqueuePlan {
            batch,
            accepted,
            refusal,
        }
    }

    fn dequeue_count(&self, q: usize, max: u32, single: bool) -> usize {
        if !self.enabled[q] {
            return 0;
        }
        let max = if single { 1 } else { (max as usize).min(BATCH) };
        self.queues[q].len().min(max)
    }
}

struct OwnReference;

impl ReferenceStateMachine for OwnReference {
    type State = OwnModel;
    type Transition = OwnOp;

    fn init_state() -> BoxedStrategy<OwnModel> {
        let cap = || prop_oneof![Just(1u32), Just(2), Just(4)];
        (1u32..=8, [cap(), cap(), cap(), cap()])
            .prop_map(|(packets, caps)| OwnModel {
                packets,
                caps,
                enabled: [true; 4],
                free: packets,
                sys: Vec::new(),
                drv: Vec::new(),
                queues: Default::default(),
                next_handle: 0,
            })
            .boxed()
    }

    fn transitions(state: &OwnModel) -> BoxedStrategy<OwnOp> {
        let index = || any::<Index>();
        // Pick only from non-empty lists, so the precondition never rejects a generated case.
        let side = match (state.sys.is_empty(), state.drv.is_empty()) {
            (false, false) => any::<bool>().boxed(),
            (false, true) => Just(true).boxed(),
            _ => Just(false).boxed(),
        };
        let picks = proptest::collection::vec((side, index()), 1..=4);
        let mut ops: Vec<(u32, BoxedStrategy<OwnOp>)> = vec![
            (
                4,
                prop_oneof![Just(Owner::System), Just(Owner::Driver)]
                    .prop_map(OwnOp::Alloc)
                    .boxed(),
            ),
            (
                1,
                (0..4usize)
                    .prop_map(|q| OwnOp::EnqueueForeign { q })
                    .boxed(),
            ),
            (
                6,
                (0..4usize, 0..=BATCH as u32 + 1, any::<bool>())
                    .prop_map(|(q, max, single)| OwnOp::Dequeue { q, max, single })
                    .boxed(),
            ),
            (
                1,
                (0..4usize, prop::bool::weighted(0.7))
                    .prop_map(|(q, on)| OwnOp::SetEnable { q, on })
                    .boxed(),
            ),
        ];
        if !state.sys.is_empty() || !state.drv.is_empty() {
            ops.push((
                8,
                (0..4usize, picks)
                    .prop_map(|(q, picks)| OwnOp::Enqueue { q, picks })
                    .boxed(),
            ));
        }
        if !state.sys.is_empty() {
            ops.push((2, index().prop_map(OwnOp::SysFree).boxed()));
            ops.push((1, index().prop_map(OwnOp::DrvDeallocSystemPacket).boxed()));
        }
        if !state.drv.is_empty() {
            ops.push((2, index().prop_map(OwnOp::DrvDealloc).boxed()));
            ops.push((1, index().prop_map(OwnOp::SysFreeDriverPacket).boxed()));
        }
        proptest::strategy::Union::new_weighted(ops).boxed()
    }

    fn preconditions(state: &OwnModel, op: &OwnOp) -> bool {
        match op {
            OwnOp::SysFree(_) | OwnOp::DrvDeallocSystemPacket(_) => !state.sys.is_empty(),
            OwnOp::DrvDealloc(_) | OwnOp::SysFreeDriverPacket(_) => !state.drv.is_empty(),
            OwnOp::Enqueue { picks, .. } => picks.iter().any(|(s, _)| {
                if *s {
                    !state.sys.is_empty()
                } else {
                    !state.drv.is_empty()
                }
            }),
            _ => true,
        }
    }

    fn apply(mut state: OwnModel, op: &OwnOp) -> OwnModel {
        match op {
            OwnOp::Alloc(owner) => {
                if state.free > 0 {
                    state.free -= 1;
                    let h = state.next_handle;
                    state.next_handle += 1;
                    match owner {
                        Owner::System => state.sys.push(h),
                        Owner::Driver => state.drv.push(h),
                    }
                }
            }
            OwnOp::SysFree(i) => {
                let pos = i.index(state.sys.len());
                state.sys.remove(pos);
                state.free += 1;
            }
            OwnOp::DrvDealloc(i) => {
                let pos = i.index(state.drv.len());
                state.drv.remove(pos);
                state.free += 1;
            }
            OwnOp::Enqueue { q, picks } => {
                let batch = state.take_batch(picks);
                let plan = state.plan_enqueue(*q, batch);
                for (k, (h, from_sys)) in plan.batch.iter().enumerate() {
                    if k < plan.accepted {
                        state.queues[*q].push_back(*h);
                    } else if *from_sys {
                        state.sys.push(*h);
                    } else {
                        state.drv.push(*h);
                    }
                }
            }
            OwnOp::Dequeue { q, max, single } => {
                let n = state.dequeue_count(*q, *max, *single);
                for _ in 0..n {
                    let h = state.queues[*q].pop_front().unwrap();
                    if kind(*q).is_submission() {
                        state.drv.push(h);
                    } else {
                        state.sys.push(h);
                    }
                }
            }
            OwnOp::SetEnable { q, on } => state.enabled[*q] = *on,
            OwnOp::SysFreeDriverPacket(_)
            | OwnOp::DrvDeallocSystemPacket(_)
            | OwnOp::EnqueueForeign { .. } => {}
        }
        state
    }
}

struct Queues {
    rx_sub: RxSubmissionQueue,
    sys_rx_sub: SystemRxSubmission,
    rx_comp: RxCompletionQueue,
    sys_rx_comp: SystemRxCompletion,
    tx_sub: TxSubmissionQueue,
    sys_tx_sub: SystemTxSubmission,
    tx_comp: TxCompletionQueue,
    sys_tx_comp: SystemTxCompletion,
}

impl Queues {
    fn new(pool: &PacketBufferPool, caps: [u32; 4]) -> Self {
        let rx_sub = RxSubmissionQueue::create(pool, caps[0], 10).unwrap();
        let rx_comp = RxCompletionQueue::create(pool, caps[1], 11).unwrap();
        let tx_sub = TxSubmissionQueue::create(pool, caps[2], 12).unwrap();
        let tx_comp = TxCompletionQueue::create(pool, caps[3], 13).unwrap();
        let queues = Self {
            sys_rx_sub: SystemRxSubmission::attach(rx_sub.ring(), pool).unwrap(),
            sys_rx_comp: SystemRxCompletion::attach(rx_comp.ring(), pool).unwrap(),
            sys_tx_sub: SystemTxSubmission::attach(tx_sub.ring(), pool).unwrap(),
            sys_tx_comp: SystemTxCompletion::attach(tx_comp.ring(), pool).unwrap(),
            rx_sub,
            rx_comp,
            tx_sub,
            tx_comp,
        };
        for q in 0..4 {
            assert!(!queues.enabled(q), "queues start disabled");
            queues.set_enable(q, true);
        }
        queues
    }

    fn set_enable(&self, q: usize, on: bool) {
        match q {
            0 => self.rx_sub.set_enable(on),
            1 => self.rx_comp.set_enable(on),
            2 => self.tx_sub.set_enable(on),
            _ => self.tx_comp.set_enable(on),
        }
    }

    fn enabled(&self, q: usize) -> bool {
        // Both halves see the one flag in the shared ring.
        let (a, b) = match q {
            0 => (self.rx_sub.is_enabled(), self.sys_rx_sub.is_enabled()),
            1 => (self.rx_comp.is_enabled(), self.sys_rx_comp.is_enabled()),
            2 => (self.tx_sub.is_enabled(), self.sys_tx_sub.is_enabled()),
            _ => (self.tx_comp.is_enabled(), self.sys_tx_comp.is_enabled()),
        };
        assert_eq!(a, b, "halves disagree on the enable flag");
        a
    }

    fn ring_len(&self, q: usize) -> u32 {
        match q {
            0 => self.rx_sub.ring().len(),
            1 => self.rx_comp.ring().len(),
            2 => self.tx_sub.ring().len(),
            _ => self.tx_comp.ring().len(),
        }
    }

    fn enqueue(&mut self, q: usize, batch: &mut Batch) -> EnqueueOutcome {
        match q {
            0 => self.sys_rx_sub.enqueue_packets(batch),
            1 => self.rx_comp.enqueue_packets(batch),
            2 => self.sys_tx_sub.enqueue_packets(batch),
            _ => self.tx_comp.enqueue_packets(batch),
        }
    }

    fn enqueue_one(&mut self, q: usize, packet: Packet) -> Result<(), EnqueueError> {
        match q {
            0 => self.sys_rx_sub.enqueue_packet(packet),
            1 => self.rx_comp.enqueue_packet(packet),
            2 => self.sys_tx_sub.enqueue_packet(packet),
            _ => self.tx_comp.enqueue_packet(packet),
        }
    }

    fn dequeue(&mut self, q: usize, out: &mut Batch, max: u32) -> u32 {
        match q {
            0 => self.rx_sub.dequeue_packets(out, max),
            1 => self.sys_rx_comp.dequeue_packets(out, max),
            2 => self.tx_sub.dequeue_packets(out, max),
            _ => self.sys_tx_comp.dequeue_packets(out, max),
        }
        .unwrap()
    }

    fn dequeue_one(&mut self, q: usize) -> Option<Packet> {
        match q {
            0 => self.rx_sub.dequeue_packet(),
            1 => self.sys_rx_comp.dequeue_packet(),
            2 => self.tx_sub.dequeue_packet(),
            _ => self.sys_tx_comp.dequeue_packet(),
        }
        .unwrap()
    }
}

struct OwnSut {
    pool: PacketBufferPool,
    other: PacketBufferPool,
    queues: Queues,
    /// Tokens in the same order as the model's lists.
    sys: Vec<Packet>,
    drv: Vec<Packet>,
    /// Handle → packet index.
    index_of: BTreeMap<u32, u32>,
    before: OwnModel,
}

fn state_of(word: u32) -> OwnerState {
    OwnerState::from_word(word).unwrap_or_else(|| panic!("invalid owner word {word:#x}"))
}

impl OwnSut {
    fn states(&self) -> Vec<OwnerState> {
        (0..self.pool.packet_count())
            .map(|i| state_of(self.pool.owner_word(i).unwrap()))
            .collect()
    }

    fn indices(&self, handles: impl IntoIterator<Item = u32>) -> Vec<u32> {
        handles.into_iter().map(|h| self.index_of[&h]).collect()
    }

    fn take_batch(&mut self, picks: &[(bool, Index)]) -> Batch {
        let mut batch = Batch::new();
        for (from_sys, index) in picks {
            let list = if *from_sys {
                &mut self.sys
            } else {
                &mut self.drv
            };
            if !list.is_empty() {
                let pos = index.index(list.len());
                batch.push(list.remove(pos)).unwrap();
            }
        }
        batch
    }

    fn give_back(&mut self, packet: Packet, from_sys: bool) {
        if from_sys {
            self.sys.push(packet);
        } else {
            self.drv.push(packet);
        }
    }

    fn check_refusal(refusal: EnqueueRefusal, plan: Refusal, q: usize, index: u32) {
        match (refusal, plan) {
            (EnqueueRefusal::Disabled, Refusal::Disabled)
            | (EnqueueRefusal::Full, Refusal::Full) => {}
            (
                EnqueueRefusal::WrongOwner {
                    index: i,
                    state,
                    expected,
                },
                Refusal::WrongOwner,
            ) => {
                assert_eq!(i, index, "refusal names the refused packet");
                let (wants, has) = if kind(q).is_submission() {
                    (OwnerState::System, OwnerState::Driver)
                } else {
                    (OwnerState::Driver, OwnerState::System)
                };
                assert_eq!(expected, wants);
                assert_eq!(state, Some(has));
            }
            (got, want) => panic!("refusal {got:?}, model expected {want:?}"),
        }
    }
}

/// The owner changes `op` may make, given the model before it.
fn changes_allowed_by(op: &OwnOp) -> Vec<(OwnerState, OwnerState)> {
    use OwnerState::{Driver, Free, InCompletion, InSubmission, System};
    match op {
        OwnOp::Alloc(Owner::System) => vec![(Free, System)],
        OwnOp::Alloc(Owner::Driver) => vec![(Free, Driver)],
        OwnOp::SysFree(_) => vec![(System, Free)],
        OwnOp::DrvDealloc(_) => vec![(Driver, Free)],
        OwnOp::Enqueue { q, .. } if kind(*q).is_submission() => vec![(System, InSubmission)],
        OwnOp::Enqueue { .. } => vec![(Driver, InCompletion)],
        OwnOp::Dequeue { q, .. } if kind(*q).is_submission() => vec![(InSubmission, Driver)],
        OwnOp::Dequeue { .. } => vec![(InCompletion, System)],
        OwnOp::SysFreeDriverPacket(_)
        | OwnOp::DrvDeallocSystemPacket(_)
        | OwnOp::EnqueueForeign { .. }
        | OwnOp::SetEnable { .. } => vec![],
    }
}

impl StateMachineTest for OwnSut {
    type SystemUnderTest = Self;
    type Reference = OwnReference;

    fn init_test(model: &OwnModel) -> Self {
        let pool = PacketBufferPool::create(PoolConfig::new(*b"own ", model.packets, 64)).unwrap();
        let other = PacketBufferPool::create(PoolConfig::new(*b"othr", 1, 64)).unwrap();
        let queues = Queues::new(&pool, model.caps);
        Self {
            pool,
            other,
            queues,
            sys: Vec::new(),
            drv: Vec::new(),
            index_of: BTreeMap::new(),
            before: model.clone(),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn apply(mut sut: Self, after: &OwnModel, op: OwnOp) -> Self {
        let before = sut.before.clone();
        let states_before = sut.states();
        match &op {
            OwnOp::Alloc(owner) => match sut.pool.allocate(*owner) {
                Ok(packet) => {
                    assert!(before.free > 0, "allocated from an exhausted pool");
                    sut.index_of.insert(before.next_handle, packet.index());
                    match owner {
                        Owner::System => sut.sys.push(packet),
                        Owner::Driver => sut.drv.push(packet),
                    }
                }
                Err(AllocateError::Exhausted { .. }) => assert_eq!(before.free, 0),
                Err(e) => panic!("{e}"),
            },
            OwnOp::SysFree(i) => {
                let packet = sut.sys.remove(i.index(before.sys.len()));
                sut.pool.system_free(packet).unwrap();
            }
            OwnOp::DrvDealloc(i) => {
                let packet = sut.drv.remove(i.index(before.drv.len()));
                sut.pool.deallocate(packet).unwrap();
            }
            OwnOp::SysFreeDriverPacket(i) => {
                let pos = i.index(before.drv.len());
                let packet = sut.drv.remove(pos);
                match sut.pool.system_free(packet) {
                    Err(DeallocateError::WrongOwner {
                        packet,
                        state,
                        expected,
                    }) => {
                        assert_eq!(
                            (state, expected),
                            (Some(OwnerState::Driver), OwnerState::System)
                        );
                        sut.drv.insert(pos, packet);
                    }
                    other => panic!("system_free of a driver packet: {other:?}"),
                }
            }
            OwnOp::DrvDeallocSystemPacket(i) => {
                let pos = i.index(before.sys.len());
                let packet = sut.sys.remove(pos);
                match sut.pool.deallocate(packet) {
                    Err(DeallocateError::WrongOwner {
                        packet,
                        state,
                        expected,
                    }) => {
                        assert_eq!(
                            (state, expected),
                            (Some(OwnerState::System), OwnerState::Driver)
                        );
                        sut.sys.insert(pos, packet);
                    }
                    other => panic!("deallocate of a system packet: {other:?}"),
                }
            }
            OwnOp::Enqueue { q, picks } => {
                let q = *q;
                let mut model = before.clone();
                let plan_batch = model.take_batch(picks);
                let plan = model.plan_enqueue(q, plan_batch);
                let mut batch = sut.take_batch(picks);
                assert_eq!(batch.len(), plan.batch.len());
                let sent: Vec<u32> = batch.iter().map(Packet::index).collect();
                assert_eq!(sent, sut.indices(plan.batch.iter().map(|(h, _)| *h)));
                if batch.len() == 1 {
                    let packet = batch.pop().unwrap();
                    match sut.queues.enqueue_one(q, packet) {
                        Ok(()) => assert_eq!(plan.accepted, 1, "model expected a refusal"),
                        Err(EnqueueError { packet, refusal }) => {
                            assert_eq!(plan.accepted, 0, "refused: {refusal:?}");
                            assert_eq!(packet.index(), sent[0], "the refused packet comes back");
                            Self::check_refusal(refusal, plan.refusal.unwrap(), q, sent[0]);
                            sut.give_back(packet, plan.batch[0].1);
                        }
                    }
                } else {
                    let outcome = sut.queues.enqueue(q, &mut batch);
                    assert_eq!(outcome.accepted as usize, plan.accepted, "{outcome:?}");
                    assert_eq!(batch.len(), plan.batch.len() - plan.accepted);
                    match (outcome.refusal, plan.refusal) {
                        (None, None) => {}
                        (Some(r), Some(p)) => {
                            Self::check_refusal(r, p, q, sent[plan.accepted]);
                        }
                        (r, p) => panic!("refusal {r:?}, model expected {p:?}"),
                    }
                    let back: Vec<u32> = batch.iter().map(Packet::index).collect();
                    assert_eq!(
                        back,
                        sent[plan.accepted..],
                        "refused packets stay, in order"
                    );
                    for (packet, (_, from_sys)) in
                        batch.into_iter().zip(&plan.batch[plan.accepted..])
                    {
                        sut.give_back(packet, *from_sys);
                    }
                }
            }
            OwnOp::EnqueueForeign { q } => {
                let q = *q;
                let owner = if kind(q).is_submission() {
                    Owner::System
                } else {
                    Owner::Driver
                };
                let foreign = sut.other.allocate(owner).unwrap();
                let index = foreign.index();
                let err = sut.queues.enqueue_one(q, foreign).unwrap_err();
                let expected = if !before.enabled[q] {
                    EnqueueRefusal::Disabled
                } else if before.queues[q].len() as u32 == before.caps[q] {
                    EnqueueRefusal::Full
                } else {
                    EnqueueRefusal::Foreign { index }
                };
                assert_eq!(err.refusal, expected);
                assert_eq!(err.packet.index(), index);
                match owner {
                    Owner::System => sut.other.system_free(err.packet).unwrap(),
                    Owner::Driver => sut.other.deallocate(err.packet).unwrap(),
                }
                assert!(sut.other.leak_report().is_clean());
            }
            OwnOp::Dequeue { q, max, single } => {
                let q = *q;
                let n = before.dequeue_count(q, *max, *single);
                let expected = sut.indices(before.queues[q].iter().take(n).copied());
                let got: Vec<Packet> = if *single {
                    sut.queues.dequeue_one(q).into_iter().collect()
                } else {
                    let mut out = Batch::new();
                    let count = sut.queues.dequeue(q, &mut out, *max);
                    assert_eq!(count as usize, out.len());
                    out.into_iter().collect()
                };
                let got_indices: Vec<u32> = got.iter().map(Packet::index).collect();
                assert_eq!(got_indices, expected, "dequeued packets, in FIFO order");
                for packet in got {
                    sut.give_back(packet, !kind(q).is_submission());
                }
            }
            OwnOp::SetEnable { q, on } => sut.queues.set_enable(*q, *on),
        }

        // Every owner change is in the table, and is one this operation may make.
        let allowed_here = changes_allowed_by(&op);
        for (index, (from, to)) in states_before.iter().zip(sut.states()).enumerate() {
            if *from != to {
                assert!(
                    ALLOWED.contains(&(*from, to)),
                    "packet {index}: {from:?} → {to:?} is not an allowed transition"
                );
                assert!(
                    allowed_here.contains(&(*from, to)),
                    "packet {index}: {from:?} → {to:?} is not what {op:?} may do"
                );
            }
        }
        sut.before = after.clone();
        sut
    }

    fn check_invariants(sut: &Self, model: &OwnModel) {
        assert_eq!(sut.sys.len(), model.sys.len());
        assert_eq!(sut.drv.len(), model.drv.len());
        assert_eq!(
            sut.sys.iter().map(Packet::index).collect::<Vec<_>>(),
            sut.indices(model.sys.iter().copied())
        );
        assert_eq!(
            sut.drv.iter().map(Packet::index).collect::<Vec<_>>(),
            sut.indices(model.drv.iter().copied())
        );
        let located = model.locate();
        let mut by_index = BTreeMap::new();
        for (h, loc) in &located {
            let index = sut.index_of[h];
            assert!(
                by_index.insert(index, *loc).is_none(),
                "index {index} in two places"
            );
        }
        for index in 0..model.packets {
            let word = sut.pool.owner_word(index).unwrap();
            let expected = match by_index.get(&index) {
                None => OwnerState::Free as u32,
                Some(Loc::System) => OwnerState::System as u32 | OWNER_TOKEN_BIT,
                Some(Loc::Driver) => OwnerState::Driver as u32 | OWNER_TOKEN_BIT,
                Some(Loc::Queue(q)) if kind(*q).is_submission() => OwnerState::InSubmission as u32,
                Some(Loc::Queue(_)) => OwnerState::InCompletion as u32,
            };
            assert_eq!(
                word,
                expected,
                "owner word of packet {index} ({:?})",
                by_index.get(&index)
            );
            assert_eq!(word & !(OWNER_STATE_MASK | OWNER_TOKEN_BIT), 0);
        }
        for q in 0..4 {
            assert_eq!(
                sut.queues.ring_len(q),
                model.queues[q].len() as u32,
                "queue {q} length"
            );
            assert_eq!(
                sut.queues.enabled(q),
                model.enabled[q],
                "queue {q} enable flag"
            );
        }
        let report = sut.pool.leak_report();
        assert_eq!(sut.pool.in_use() as usize, model.held());
        assert_eq!(report.in_use as usize, model.held());
        assert_eq!(report.system as usize, model.sys.len());
        assert_eq!(report.driver as usize, model.drv.len());
        assert_eq!(
            report.in_submission as usize,
            model.queues[0].len() + model.queues[2].len()
        );
        assert_eq!(
            report.in_completion as usize,
            model.queues[1].len() + model.queues[3].len()
        );
        assert_eq!(report.invalid, 0);
        assert_eq!(model.free as usize + model.held(), model.packets as usize);
    }

    fn teardown(mut sut: Self) {
        for q in 0..4 {
            sut.queues.set_enable(q, true);
            loop {
                let mut out = Batch::new();
                if sut.queues.dequeue(q, &mut out, BATCH as u32) == 0 {
                    break;
                }
                for packet in out {
                    sut.give_back(packet, !kind(q).is_submission());
                }
            }
        }
        for packet in std::mem::take(&mut sut.sys) {
            sut.pool.system_free(packet).unwrap();
        }
        for packet in std::mem::take(&mut sut.drv) {
            sut.pool.deallocate(packet).unwrap();
        }
        let report = sut.pool.leak_report();
        assert!(report.is_clean(), "{report:?}");
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn ownership_follows_the_transition_table(sequential transitions() => OwnSut);
}
