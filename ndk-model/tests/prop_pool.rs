//! State-machine property test: the packet buffer pool against a model of free and owned
//! packets (rings.md §3.3).
//!
//! The reference model predicts counts and outcomes: how many packets are on the shared free
//! list and in the [`PoolCache`], which held packets are tokens (system- or driver-owned) or
//! bare driver-owned indices, and therefore exactly when an allocation is refused. Which
//! *index* an allocation returns is the pool's business; the test keeps the set of free
//! indices and checks every returned index was free, every freed one was held, and after every
//! step that free + held = N with no duplicates, that `in_use()` and the leak report match,
//! and that every packet's owner word is the one the model says.
//!
//! Transitions: allocate (pool or cache, system or driver), free through the right call (pool
//! or cache), free through the wrong call (refused, token handed back), flush the cache,
//! `into_index` / `packet_from_index` / `deallocate_index` including a double free and a free
//! of a packet a token still holds (typed errors), an out-of-range index, a packet from a
//! second pool (typed `Foreign` errors), and writing then reading a packet's bytes and
//! metadata.
//!
//! Honours `PROPTEST_CASES`; under Miri it defaults to 4 cases and writes no regression file.
#![cfg(not(loom))]

mod common;

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use ndk_model::packet::Packet;
use ndk_model::pool::{
    AllocateError, DeallocateError, IndexError, Owner, OwnerState, PacketBufferPool, PoolCache,
    PoolConfig, CACHE_RESERVED_WORD, OWNER_TOKEN_BIT,
};

use common::{config, transitions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// A token owned by the system side.
    System,
    /// A token owned by the driver.
    Driver,
    /// A driver-owned packet given up for its bare index (`into_index`).
    Bare,
}

#[derive(Debug, Clone)]
enum PoolOp {
    Alloc(Owner),
    CacheAlloc(Owner),
    /// Free a token through the pool call matching its owner.
    Free(Index),
    /// Free a token into the cache through the call matching its owner.
    CacheFree(Index),
    /// Free a token through the call for the *other* owner: refused, token handed back.
    FreeWrongOwner(Index),
    FlushCache,
    /// Driver token → bare index.
    IntoIndex(Index),
    /// Bare index → driver token.
    FromIndex(Index),
    /// `deallocate_index` of a bare index, then again: the second is a double free.
    DeallocIndexTwice(Index),
    /// `deallocate_index` of a packet a driver token still holds: `TokenLive`.
    DeallocIndexOfToken(Index),
    /// `deallocate_index` / `packet_from_index` of a free packet (the lowest free index).
    IndexOpsOnFree,
    /// An index past the end.
    IndexOutOfRange(u32),
    /// A packet from a second pool offered to this one (pool and cache calls).
    Foreign,
    /// Write bytes and metadata to a held token, read them back.
    WriteRead(Index, u8),
}

#[derive(Debug, Clone)]
struct PoolModel {
    packets: u32,
    cache_size: u32,
    shared_free: u32,
    cached: u32,
    held: Vec<Held>,
}

impl PoolModel {
    fn tokens(&self) -> Vec<usize> {
        (0..self.held.len())
            .filter(|i| self.held[*i] != Held::Bare)
            .collect()
    }

    fn with_kind(&self, kind: Held) -> Vec<usize> {
        (0..self.held.len())
            .filter(|i| self.held[*i] == kind)
            .collect()
    }

    fn free_total(&self) -> u32 {
        self.shared_free + self.cached
    }

    fn owner_held(owner: Owner) -> Held {
        match owner {
            Owner::System => Held::System,
            Owner::Driver => Held::Driver,
        }
    }

    /// `PoolCache::put`: flush down to half when full, then push.
    fn cache_put(&mut self) {
        if self.cached == self.cache_size {
            let keep = self.cache_size / 2;
            self.shared_free += self.cached - keep;
            self.cached = keep;
        }
        self.cached += 1;
    }
}

/// Picks the position of the `index`-th element of `candidates`.
fn pick(candidates: &[usize], index: Index) -> Option<usize> {
    (!candidates.is_empty()).then(|| candidates[index.index(candidates.len())])
}

struct PoolReference;

impl ReferenceStateMachine for PoolReference {
    type State = PoolModel;
    type Transition = PoolOp;

    fn init_state() -> BoxedStrategy<PoolModel> {
        (1u32..=8, prop_oneof![Just(2u32), Just(3), Just(4), Just(8)])
            .prop_map(|(packets, cache_size)| PoolModel {
                packets,
                cache_size,
                shared_free: packets,
                cached: 0,
                held: Vec::new(),
            })
            .boxed()
    }

    fn transitions(state: &PoolModel) -> BoxedStrategy<PoolOp> {
        let owner = || prop_oneof![Just(Owner::System), Just(Owner::Driver)];
        let index = || any::<Index>();
        // Only transitions valid in this state, so no case is rejected; `preconditions`
        // repeats the checks for shrinking.
        let mut ops: Vec<(u32, BoxedStrategy<PoolOp>)> = vec![
            (4, owner().prop_map(PoolOp::Alloc).boxed()),
            (4, owner().prop_map(PoolOp::CacheAlloc).boxed()),
            (1, Just(PoolOp::FlushCache).boxed()),
            (
                1,
                (state.packets..).prop_map(PoolOp::IndexOutOfRange).boxed(),
            ),
            (1, Just(PoolOp::Foreign).boxed()),
        ];
        if !state.tokens().is_empty() {
            ops.push((3, index().prop_map(PoolOp::Free).boxed()));
            ops.push((3, index().prop_map(PoolOp::CacheFree).boxed()));
            ops.push((1, index().prop_map(PoolOp::FreeWrongOwner).boxed()));
            ops.push((
                1,
                (index(), any::<u8>())
                    .prop_map(|(i, b)| PoolOp::WriteRead(i, b))
                    .boxed(),
            ));
        }
        if !state.with_kind(Held::Driver).is_empty() {
            ops.push((2, index().prop_map(PoolOp::IntoIndex).boxed()));
            ops.push((1, index().prop_map(PoolOp::DeallocIndexOfToken).boxed()));
        }
        if !state.with_kind(Held::Bare).is_empty() {
            ops.push((1, index().prop_map(PoolOp::FromIndex).boxed()));
            ops.push((2, index().prop_map(PoolOp::DeallocIndexTwice).boxed()));
        }
        if state.free_total() > 0 {
            ops.push((1, Just(PoolOp::IndexOpsOnFree).boxed()));
        }
        proptest::strategy::Union::new_weighted(ops).boxed()
    }

    fn preconditions(state: &PoolModel, op: &PoolOp) -> bool {
        match op {
            PoolOp::Free(_)
            | PoolOp::CacheFree(_)
            | PoolOp::FreeWrongOwner(_)
            | PoolOp::WriteRead(..) => !state.tokens().is_empty(),
            PoolOp::IntoIndex(_) | PoolOp::DeallocIndexOfToken(_) => {
                !state.with_kind(Held::Driver).is_empty()
            }
            PoolOp::FromIndex(_) | PoolOp::DeallocIndexTwice(_) => {
                !state.with_kind(Held::Bare).is_empty()
            }
            PoolOp::IndexOpsOnFree => state.free_total() > 0,
            PoolOp::IndexOutOfRange(i) => *i >= state.packets,
            _ => true,
        }
    }

    fn apply(mut state: PoolModel, op: &PoolOp) -> PoolModel {
        match op {
            PoolOp::Alloc(owner) => {
                if state.shared_free > 0 {
                    state.shared_free -= 1;
                    state.held.push(PoolModel::owner_held(*owner));
                }
            }
            PoolOp::CacheAlloc(owner) => {
                if state.cached == 0 {
                    let take = (state.cache_size / 2).min(state.shared_free);
                    state.shared_free -= take;
                    state.cached = take;
                }
                if state.cached > 0 {
                    state.cached -= 1;
                    state.held.push(PoolModel::owner_held(*owner));
                }
            }
            PoolOp::Free(i) => {
                let pos = pick(&state.tokens(), *i).unwrap();
                state.held.remove(pos);
                state.shared_free += 1;
            }
            PoolOp::CacheFree(i) => {
                let pos = pick(&state.tokens(), *i).unwrap();
                state.held.remove(pos);
                state.cache_put();
            }
            PoolOp::FlushCache => {
                state.shared_free += state.cached;
                state.cached = 0;
            }
            PoolOp::IntoIndex(i) => {
                let pos = pick(&state.with_kind(Held::Driver), *i).unwrap();
                state.held[pos] = Held::Bare;
            }
            PoolOp::FromIndex(i) => {
                let pos = pick(&state.with_kind(Held::Bare), *i).unwrap();
                state.held[pos] = Held::Driver;
            }
            PoolOp::DeallocIndexTwice(i) => {
                let pos = pick(&state.with_kind(Held::Bare), *i).unwrap();
                state.held.remove(pos);
                state.shared_free += 1;
            }
            PoolOp::FreeWrongOwner(_)
            | PoolOp::DeallocIndexOfToken(_)
            | PoolOp::IndexOpsOnFree
            | PoolOp::IndexOutOfRange(_)
            | PoolOp::Foreign
            | PoolOp::WriteRead(..) => {}
        }
        state
    }
}

#[derive(Debug)]
enum HeldSut {
    Token(Packet),
    Bare(u32),
}

impl HeldSut {
    fn index(&self) -> u32 {
        match self {
            HeldSut::Token(p) => p.index(),
            HeldSut::Bare(i) => *i,
        }
    }
}

struct PoolSut {
    pool: PacketBufferPool,
    other: PacketBufferPool,
    cache: PoolCache,
    held: Vec<HeldSut>,
    /// Indices not held: on the shared free list or in the cache.
    free: BTreeSet<u32>,
    before: PoolModel,
}

impl PoolSut {
    fn took(&mut self, packet: Packet) {
        assert!(
            self.free.remove(&packet.index()),
            "allocated index {} was not free (free: {:?})",
            packet.index(),
            self.free
        );
        self.held.push(HeldSut::Token(packet));
    }

    fn gave_back(&mut self, index: u32) {
        assert!(self.free.insert(index), "index {index} freed twice");
    }

    fn token(&self, pos: usize) -> &Packet {
        match &self.held[pos] {
            HeldSut::Token(p) => p,
            HeldSut::Bare(i) => panic!("model/SUT mismatch: position {pos} is bare index {i}"),
        }
    }

    fn take_token(&mut self, pos: usize) -> Packet {
        match self.held.remove(pos) {
            HeldSut::Token(p) => p,
            HeldSut::Bare(i) => panic!("model/SUT mismatch: position {pos} is bare index {i}"),
        }
    }

    fn bare(&self, pos: usize) -> u32 {
        match &self.held[pos] {
            HeldSut::Bare(i) => *i,
            HeldSut::Token(p) => panic!("model/SUT mismatch: position {pos} is token {p:?}"),
        }
    }
}

fn expected_word(kind: Held) -> u32 {
    match kind {
        Held::System => OwnerState::System as u32 | OWNER_TOKEN_BIT,
        Held::Driver => OwnerState::Driver as u32 | OWNER_TOKEN_BIT,
        Held::Bare => OwnerState::Driver as u32,
    }
}

impl StateMachineTest for PoolSut {
    type SystemUnderTest = Self;
    type Reference = PoolReference;

    fn init_test(model: &PoolModel) -> Self {
        let pool = PacketBufferPool::create(PoolConfig::new(*b"prop", model.packets, 64)).unwrap();
        let other = PacketBufferPool::create(PoolConfig::new(*b"othr", 2, 64)).unwrap();
        let cache = PoolCache::new(&pool, model.cache_size as usize);
        Self {
            free: (0..model.packets).collect(),
            pool,
            other,
            cache,
            held: Vec::new(),
            before: model.clone(),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn apply(mut sut: Self, after: &PoolModel, op: PoolOp) -> Self {
        let before = sut.before.clone();
        match op {
            PoolOp::Alloc(owner) => match sut.pool.allocate(owner) {
                Ok(packet) => {
                    assert!(before.shared_free > 0, "allocated from an empty free list");
                    sut.took(packet);
                }
                Err(AllocateError::Exhausted { packet_count }) => {
                    assert_eq!(before.shared_free, 0, "refused with packets free");
                    assert_eq!(packet_count, before.packets);
                }
                Err(e) => panic!("{e}"),
            },
            PoolOp::CacheAlloc(owner) => match sut.cache.allocate(owner) {
                Ok(packet) => {
                    assert!(before.free_total() > 0);
                    sut.took(packet);
                }
                Err(AllocateError::Exhausted { .. }) => {
                    assert_eq!(
                        after.held.len(),
                        before.held.len(),
                        "model expected a packet"
                    );
                }
                Err(e) => panic!("{e}"),
            },
            PoolOp::Free(i) => {
                let pos = pick(&before.tokens(), i).unwrap();
                let packet = sut.take_token(pos);
                let index = packet.index();
                match before.held[pos] {
                    Held::System => sut.pool.system_free(packet).unwrap(),
                    Held::Driver => sut.pool.deallocate(packet).unwrap(),
                    Held::Bare => unreachable!(),
                }
                sut.gave_back(index);
            }
            PoolOp::CacheFree(i) => {
                let pos = pick(&before.tokens(), i).unwrap();
                let packet = sut.take_token(pos);
                let index = packet.index();
                match before.held[pos] {
                    Held::System => sut.cache.system_free(packet).unwrap(),
                    Held::Driver => sut.cache.deallocate(packet).unwrap(),
                    Held::Bare => unreachable!(),
                }
                sut.gave_back(index);
            }
            PoolOp::FreeWrongOwner(i) => {
                let pos = pick(&before.tokens(), i).unwrap();
                let packet = sut.take_token(pos);
                let index = packet.index();
                let kind = before.held[pos];
                let (result, expected) = match kind {
                    // A system token through `DeallocatePacket` (driver only) ...
                    Held::System => (sut.pool.deallocate(packet), OwnerState::Driver),
                    // ... and a driver token through the system's free.
                    Held::Driver => (sut.pool.system_free(packet), OwnerState::System),
                    Held::Bare => unreachable!(),
                };
                match result {
                    Err(DeallocateError::WrongOwner {
                        packet,
                        state,
                        expected: e,
                    }) => {
                        assert_eq!(packet.index(), index, "the refused token comes back");
                        assert_eq!(e, expected);
                        let actual = if kind == Held::System {
                            OwnerState::System
                        } else {
                            OwnerState::Driver
                        };
                        assert_eq!(state, Some(actual));
                        sut.held.insert(pos, HeldSut::Token(packet));
                    }
                    other => panic!("wrong-owner free not refused: {other:?}"),
                }
            }
            PoolOp::FlushCache => {
                sut.cache.flush();
                assert_eq!(sut.cache.cached(), 0);
            }
            PoolOp::IntoIndex(i) => {
                let pos = pick(&before.with_kind(Held::Driver), i).unwrap();
                let packet = sut.take_token(pos);
                let index = sut.pool.into_index(packet).unwrap();
                sut.held.insert(pos, HeldSut::Bare(index));
            }
            PoolOp::FromIndex(i) => {
                let pos = pick(&before.with_kind(Held::Bare), i).unwrap();
                let index = sut.bare(pos);
                let packet = sut.pool.packet_from_index(index).unwrap();
                assert_eq!(packet.index(), index);
                assert_eq!(
                    sut.pool.packet_from_index(index),
                    Err(IndexError::TokenLive { index }),
                    "a second token for one index"
                );
                sut.held[pos] = HeldSut::Token(packet);
            }
            PoolOp::DeallocIndexTwice(i) => {
                let pos = pick(&before.with_kind(Held::Bare), i).unwrap();
                let index = sut.bare(pos);
                sut.held.remove(pos);
                sut.pool.deallocate_index(index).unwrap();
                sut.gave_back(index);
                let err = sut.pool.deallocate_index(index).unwrap_err();
                assert!(
                    err.is_double_free(),
                    "second free not a double free: {err:?}"
                );
                assert!(matches!(err, IndexError::NotDriverOwned { index: i, .. } if i == index));
            }
            PoolOp::DeallocIndexOfToken(i) => {
                let pos = pick(&before.with_kind(Held::Driver), i).unwrap();
                let index = sut.token(pos).index();
                let err = sut.pool.deallocate_index(index).unwrap_err();
                assert_eq!(err, IndexError::TokenLive { index });
                assert!(!err.is_double_free());
            }
            PoolOp::IndexOpsOnFree => {
                let index = *sut.free.first().expect("model says a packet is free");
                let err = sut.pool.deallocate_index(index).unwrap_err();
                assert!(err.is_double_free(), "{err:?}");
                let err = sut.pool.packet_from_index(index).unwrap_err();
                assert!(matches!(err, IndexError::NotDriverOwned { .. }), "{err:?}");
            }
            PoolOp::IndexOutOfRange(index) => {
                let out = IndexError::OutOfRange {
                    index,
                    packet_count: before.packets,
                };
                assert_eq!(sut.pool.deallocate_index(index), Err(out));
                assert_eq!(sut.pool.packet_from_index(index), Err(out));
                assert_eq!(sut.pool.owner_word(index), None);
            }
            PoolOp::Foreign => {
                let foreign = sut.other.allocate(Owner::Driver).unwrap();
                let index = foreign.index();
                assert!(sut.pool.packet(&foreign).is_err(), "foreign view");
                let foreign = match sut.pool.deallocate(foreign) {
                    Err(DeallocateError::Foreign(p)) => p,
                    other => panic!("foreign deallocate not refused: {other:?}"),
                };
                let foreign = match sut.cache.deallocate(foreign) {
                    Err(DeallocateError::Foreign(p)) => p,
                    other => panic!("foreign cache deallocate not refused: {other:?}"),
                };
                let foreign = match sut.pool.into_index(foreign) {
                    Err(DeallocateError::Foreign(p)) => p,
                    other => panic!("foreign into_index not refused: {other:?}"),
                };
                assert_eq!(foreign.index(), index);
                sut.other.deallocate(foreign).unwrap();
                assert!(sut.other.leak_report().is_clean());
            }
            PoolOp::WriteRead(i, byte) => {
                let pos = pick(&before.tokens(), i).unwrap();
                let mut packet = match sut.held.remove(pos) {
                    HeldSut::Token(p) => p,
                    HeldSut::Bare(_) => unreachable!(),
                };
                let frame: Vec<u8> = (0..20u8).map(|k| byte.wrapping_add(k)).collect();
                {
                    let mut view = sut.pool.packet_mut(&mut packet).unwrap();
                    view.write_frame(4, &frame).unwrap();
                    view.set_timestamp_ns(u64::from(byte) + 1);
                    assert!(view.set_data_length(1 << 20).is_err(), "bounds enforced");
                }
                let view = sut.pool.packet(&packet).unwrap();
                assert_eq!(view.data(), &frame[..]);
                assert_eq!(view.data_offset(), 4);
                assert_eq!(view.timestamp_ns(), Some(u64::from(byte) + 1));
                sut.held.insert(pos, HeldSut::Token(packet));
            }
        }
        sut.before = after.clone();
        sut
    }

    fn check_invariants(sut: &Self, model: &PoolModel) {
        let n = model.packets;
        assert_eq!(sut.held.len(), model.held.len(), "held count");
        assert_eq!(sut.free.len() as u32, model.free_total(), "free count");
        assert_eq!(
            sut.free.len() + sut.held.len(),
            n as usize,
            "free + held = N"
        );
        let mut seen = BTreeSet::new();
        for (h, kind) in sut.held.iter().zip(&model.held) {
            let index = h.index();
            assert!(index < n);
            assert!(seen.insert(index), "index {index} held twice");
            assert!(!sut.free.contains(&index), "index {index} held and free");
            assert_eq!(
                sut.pool.owner_word(index),
                Some(expected_word(*kind)),
                "owner word of held index {index} ({kind:?})"
            );
        }
        // Free packets are plain `Free`, except those a cache holds, which carry the
        // cache's exclusive reservation.
        let mut reserved = 0u32;
        for &index in &sut.free {
            let word = sut.pool.owner_word(index);
            if word == Some(CACHE_RESERVED_WORD) {
                reserved += 1;
            } else {
                assert_eq!(word, Some(OwnerState::Free as u32));
            }
        }
        assert_eq!(reserved, model.cached, "cached packets are reserved");
        assert_eq!(sut.cache.cached() as u32, model.cached, "cache fill");
        let report = sut.pool.leak_report();
        assert_eq!(sut.pool.in_use(), model.held.len() as u32);
        assert_eq!(report.in_use, model.held.len() as u32);
        let count = |k: &[Held]| model.held.iter().filter(|h| k.contains(h)).count() as u32;
        assert_eq!(report.system, count(&[Held::System]));
        assert_eq!(report.driver, count(&[Held::Driver, Held::Bare]));
        assert_eq!(
            report.in_submission + report.in_completion + report.invalid,
            0
        );
    }

    fn teardown(mut sut: Self) {
        for (h, kind) in std::mem::take(&mut sut.held)
            .into_iter()
            .zip(&sut.before.held)
        {
            match (h, kind) {
                (HeldSut::Token(p), Held::System) => sut.pool.system_free(p).unwrap(),
                (HeldSut::Token(p), Held::Driver) => sut.pool.deallocate(p).unwrap(),
                (HeldSut::Bare(i), Held::Bare) => sut.pool.deallocate_index(i).unwrap(),
                (h, k) => panic!("model/SUT mismatch at teardown: {h:?} vs {k:?}"),
            }
        }
        drop(sut.cache);
        let report = sut.pool.leak_report();
        assert!(report.is_clean(), "{report:?}");
        // Every packet is on the free list exactly once.
        let mut all = Vec::new();
        loop {
            match sut.pool.allocate(Owner::System) {
                Ok(p) => all.push(p),
                Err(AllocateError::Exhausted { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let distinct: BTreeSet<u32> = all.iter().map(Packet::index).collect();
        assert_eq!(distinct.len(), all.len(), "an index on the free list twice");
        assert_eq!(
            all.len() as u32,
            sut.before.packets,
            "free list lost packets"
        );
        for p in all {
            sut.pool.system_free(p).unwrap();
        }
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn pool_matches_free_set_model(sequential transitions() => PoolSut);
}
