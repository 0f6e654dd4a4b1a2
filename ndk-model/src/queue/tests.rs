use super::*;
use crate::error::IoReturn;
use crate::notify::{FakeNotifier, Notifier};
use crate::pool::OwnerState;
use crate::pool::{Owner, PacketBufferPool, PoolConfig};
use crate::ring::Ring;
use std::sync::Arc;

type Batch = heapless::Vec<crate::packet::Packet, 8>;

struct Nic {
    pool: PacketBufferPool,
    tx_sub: TxSubmissionQueue,
    tx_comp: TxCompletionQueue,
    sys_tx_sub: SystemTxSubmission,
    sys_tx_comp: SystemTxCompletion,
}

fn nic(capacity: u32) -> Nic {
    let pool = PacketBufferPool::create(PoolConfig::new(*b"qtst", 16, 256)).unwrap();
    let tx_sub = TxSubmissionQueue::create(&pool, capacity, 2).unwrap();
    let tx_comp = TxCompletionQueue::create(&pool, capacity, 3).unwrap();
    let sys_tx_sub = SystemTxSubmission::attach(tx_sub.ring(), &pool).unwrap();
    let sys_tx_comp = SystemTxCompletion::attach(tx_comp.ring(), &pool).unwrap();
    Nic {
        pool,
        tx_sub,
        tx_comp,
        sys_tx_sub,
        sys_tx_comp,
    }
}

#[test]
fn queues_start_disabled_and_move_nothing() {
    let mut n = nic(4);
    assert!(!n.tx_sub.is_enabled());
    let p = n.pool.allocate(Owner::System).unwrap();
    let err = n.sys_tx_sub.enqueue_packet(p).unwrap_err();
    assert_eq!(err.refusal, EnqueueRefusal::Disabled);
    assert_eq!(IoReturn::from(err.refusal), IoReturn::NotReady);
    n.tx_sub.set_enable(true);
    n.sys_tx_sub.enqueue_packet(err.packet).unwrap();
    n.tx_sub.set_enable(false);
    assert_eq!(
        n.tx_sub.dequeue_packet().unwrap(),
        None,
        "disabled: nothing comes out"
    );
    assert_eq!(n.tx_sub.stats().disabled_calls, 1);
    n.tx_sub.set_enable(true);
    let p = n.tx_sub.dequeue_packet().unwrap().unwrap();
    n.pool.deallocate(p).unwrap();
    assert!(n.pool.leak_report().is_clean());
}

#[test]
fn full_cycle_moves_ownership() {
    let mut n = nic(4);
    n.tx_sub.set_enable(true);
    n.tx_comp.set_enable(true);
    let mut p = n.pool.allocate(Owner::System).unwrap();
    n.pool
        .packet_mut(&mut p)
        .unwrap()
        .write_frame(0, b"frame")
        .unwrap();
    let index = p.index();
    n.sys_tx_sub.enqueue_packet(p).unwrap();
    assert_eq!(n.pool.leak_report().in_submission, 1);
    let p = n.tx_sub.dequeue_packet().unwrap().unwrap();
    assert_eq!(n.pool.packet(&p).unwrap().data(), b"frame");
    assert_eq!(n.pool.leak_report().driver, 1);
    n.tx_comp.enqueue_packet(p).unwrap();
    assert_eq!(n.pool.leak_report().in_completion, 1);
    let p = n.sys_tx_comp.dequeue_packet().unwrap().unwrap();
    assert_eq!(p.index(), index);
    assert_eq!(n.pool.leak_report().system, 1);
    n.pool.system_free(p).unwrap();
    assert!(n.pool.leak_report().is_clean());
}

#[test]
fn batches_are_taken_in_part_and_the_rest_returned() {
    let mut n = nic(4);
    n.tx_sub.set_enable(true);
    let mut batch = Batch::new();
    for _ in 0..6 {
        batch.push(n.pool.allocate(Owner::System).unwrap()).unwrap();
    }
    let first_left = batch[4].index();
    let out = n.sys_tx_sub.enqueue_packets(&mut batch);
    assert_eq!(
        out,
        EnqueueOutcome {
            accepted: 4,
            refusal: Some(EnqueueRefusal::Full)
        }
    );
    assert_eq!(batch.len(), 2);
    assert_eq!(
        batch[0].index(),
        first_left,
        "rejected packets keep their order"
    );
    assert_eq!(n.sys_tx_sub.free_space().unwrap(), 0);
    let mut got = Batch::new();
    assert_eq!(n.tx_sub.dequeue_packets(&mut got, 3).unwrap(), 3);
    assert_eq!(n.tx_sub.pending().unwrap(), 1);
    assert_eq!(n.sys_tx_sub.free_space().unwrap(), 3);
    for p in got.into_iter().chain(batch) {
        match OwnerState::from_word(n.pool.owner_word(p.index()).unwrap()) {
            Some(OwnerState::Driver) => n.pool.deallocate(p).unwrap(),
            _ => n.pool.system_free(p).unwrap(),
        }
    }
    let last = n.tx_sub.dequeue_packet().unwrap().unwrap();
    n.pool.deallocate(last).unwrap();
    assert!(n.pool.leak_report().is_clean());
}

#[test]
fn wrong_owner_and_foreign_packets_are_refused() {
    let mut n = nic(4);
    n.tx_comp.set_enable(true);
    n.tx_sub.set_enable(true);
    // The system's packet cannot be completed by the driver.
    let p = n.pool.allocate(Owner::System).unwrap();
    let err = n.tx_comp.enqueue_packet(p).unwrap_err();
    assert_eq!(
        err.refusal,
        EnqueueRefusal::WrongOwner {
            index: err.packet.index(),
            state: Some(OwnerState::System),
            expected: OwnerState::Driver
        }
    );
    n.pool.system_free(err.packet).unwrap();
    // A packet from another pool.
    let other = PacketBufferPool::create(PoolConfig::new(*b"othr", 2, 64)).unwrap();
    let p = other.allocate(Owner::System).unwrap();
    let err = n.sys_tx_sub.enqueue_packet(p).unwrap_err();
    assert!(matches!(err.refusal, EnqueueRefusal::Foreign { .. }));
    other.system_free(err.packet).unwrap();
    assert_eq!(n.sys_tx_sub.stats().packets_refused, 1);
}

#[test]
fn a_hostile_peer_cannot_create_a_second_owner() {
    let mut n = nic(4);
    n.tx_sub.set_enable(true);
    let p = n.pool.allocate(Owner::System).unwrap();
    let index = p.index();
    n.sys_tx_sub.enqueue_packet(p).unwrap();
    // The peer writes the same index again, plus an out-of-range one, straight into the ring.
    let ring = Arc::clone(n.tx_sub.ring());
    let forged = Ring::<u32>::attach(Arc::clone(ring.region()), 0).unwrap();
    let mut raw = forged.producer().unwrap();
    let mut chunk = raw.reserve_exact(2).unwrap();
    chunk.write(0, index);
    chunk.write(1, 999);
    chunk.commit_all();
    let mut got = Batch::new();
    assert_eq!(n.tx_sub.dequeue_packets(&mut got, 8).unwrap(), 1);
    assert_eq!(n.tx_sub.stats().ownership_violations, 2);
    n.pool.deallocate(got.pop().unwrap()).unwrap();
    assert!(n.pool.leak_report().is_clean());
}

#[test]
fn halves_check_the_ring_kind_and_are_taken_once() {
    let n = nic(4);
    assert!(matches!(
        RxSubmissionQueue::attach(n.tx_sub.ring(), &n.pool),
        Err(QueueCreateError::WrongKind {
            found: 2,
            expected: QueueKind::RxSubmission
        })
    ));
    let err = SystemTxSubmission::attach(n.tx_sub.ring(), &n.pool).unwrap_err();
    assert_eq!(IoReturn::from(&err), IoReturn::Busy);
    let err = TxSubmissionQueue::create(&n.pool, 3, 0).unwrap_err();
    assert_eq!(IoReturn::from(&err), IoReturn::BadArgument);
    assert_eq!(
        (
            n.tx_sub.capacity(),
            n.tx_sub.queue_id(),
            n.tx_comp.queue_id()
        ),
        (4, 2, 3)
    );
}

#[test]
fn doorbell_wakes_a_sleeping_driver() {
    let mut n = nic(4);
    n.tx_sub.set_enable(true);
    let bell = Arc::new(FakeNotifier::new());
    n.sys_tx_sub
        .set_doorbell(Arc::clone(&bell) as Arc<dyn Notifier>);
    let pool = n.pool.clone();
    let mut driver = n.tx_sub;
    let waiter_bell = Arc::clone(&bell);
    let t = std::thread::spawn(move || {
        // Wait (bounded) until the system side submits, then take the packet.
        while !driver.wait_for_packets(&*waiter_bell, 60_000).unwrap() {}
        driver.dequeue_packet().unwrap().unwrap()
    });
    let p = pool.allocate(Owner::System).unwrap();
    n.sys_tx_sub.enqueue_packet(p).unwrap();
    let p = t.join().unwrap();
    pool.deallocate(p).unwrap();
    assert!(bell.notified_total() <= 1);
    assert!(pool.leak_report().is_clean());
}
