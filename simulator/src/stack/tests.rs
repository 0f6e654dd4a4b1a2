//! Unit tests of [`NdkDevice`], with the test playing the driver on the driver halves.

use ndk_model::error::IoReturn;
use ndk_model::ethernet::{EthernetService, MacAddress};
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use ndk_model::queue::{
    RxCompletionQueue, RxSubmissionQueue, TxCompletionQueue, TxSubmissionQueue,
};
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::time::Instant;

use super::device::NdkDevice;

const CAP: u32 = 4;

struct Rig {
    pool: PacketBufferPool,
    dev: NdkDevice,
    rxs: RxSubmissionQueue,
    rxc: RxCompletionQueue,
    txs: TxSubmissionQueue,
    txc: TxCompletionQueue,
}

fn rig() -> Rig {
    let pool = PacketBufferPool::create(PoolConfig::new(*b"unit", CAP * 4, 2048)).unwrap();
    let rxs = RxSubmissionQueue::create(&pool, CAP, 0).unwrap();
    let rxc = RxCompletionQueue::create(&pool, CAP, 1).unwrap();
    let txs = TxSubmissionQueue::create(&pool, CAP, 2).unwrap();
    let txc = TxCompletionQueue::create(&pool, CAP, 3).unwrap();
    let mut service = EthernetService::default();
    let iface = service
        .register_ethernet_interface(
            MacAddress([2, 0, 0, 0, 0, 1]),
            &pool,
            &[&rxs, &rxc, &txs, &txc],
        )
        .unwrap();
    rxs.set_enable(true);
    rxc.set_enable(true);
    txs.set_enable(true);
    txc.set_enable(true);
    let dev = NdkDevice::new(iface.into_queues(), pool.clone(), pool.clone(), 1500);
    Rig {
        pool,
        dev,
        rxs,
        rxc,
        txs,
        txc,
    }
}

fn now() -> Instant {
    Instant::from_micros(0)
}

fn send(dev: &mut NdkDevice, bytes: &[u8]) -> bool {
    let Some(token) = dev.transmit(now()) else {
        return false;
    };
    token.consume(bytes.len(), |buf| buf.copy_from_slice(bytes));
    true
}

#[test]
fn an_exhausted_pool_refuses_transmit_and_an_unused_token_frees_its_packet() {
    let mut r = rig();
    let hoard: Vec<Packet> = (0..CAP * 4)
        .map(|_| r.pool.allocate(Owner::System).unwrap())
        .collect();
    assert!(r.dev.transmit(now()).is_none());
    assert_eq!(r.dev.counters().tx_refused_no_packet, 1);
    let mut hoard = hoard.into_iter();
    r.pool.system_free(hoard.next().unwrap()).unwrap();
    let token = r.dev.transmit(now()).unwrap();
    drop(token);
    assert_eq!(r.dev.packets_held(), 0);
    assert_eq!(r.pool.in_use(), CAP * 4 - 1);
    for p in hoard {
        r.pool.system_free(p).unwrap();
    }
    assert_eq!(r.pool.in_use(), 0);
}

#[test]
fn a_full_submission_queue_refuses_transmit_and_sent_frames_reach_the_driver() {
    let mut r = rig();
    for i in 0..CAP {
        assert!(send(&mut r.dev, &[i as u8; 60]));
    }
    assert!(!send(&mut r.dev, &[9; 60]));
    let c = r.dev.counters();
    assert_eq!(c.tx_refused_queue_full, 1);
    assert_eq!(c.tx_frames_submitted, u64::from(CAP));
    assert_eq!(c.tx_bytes, u64::from(CAP) * 60);
    assert_eq!(r.dev.take_tx_enqueued(), CAP);
    assert_eq!(r.dev.take_tx_enqueued(), 0);
    for i in 0..CAP {
        let p = r.txs.dequeue_packet().unwrap().unwrap();
        assert_eq!(r.pool.packet(&p).unwrap().data(), &[i as u8; 60]);
        r.pool.deallocate(p).unwrap();
    }
}

#[test]
fn completions_are_freed_and_counted_by_status() {
    let mut r = rig();
    assert!(send(&mut r.dev, &[1; 60]));
    assert!(send(&mut r.dev, &[2; 60]));
    for status in [IoReturn::Success, IoReturn::Busy] {
        let mut p = r.txs.dequeue_packet().unwrap().unwrap();
        r.pool
            .packet_mut(&mut p)
            .unwrap()
            .set_completion_status(status);
        r.txc.enqueue_packet(p).unwrap();
    }
    assert_eq!(r.dev.tx_completions_pending(), 2);
    assert_eq!(r.dev.collect_tx_completions(16), 2);
    let c = r.dev.counters();
    assert_eq!(
        (c.tx_completed, c.tx_completed_error, c.tx_completed_busy),
        (2, 1, 1)
    );
    assert_eq!(r.pool.in_use(), 0);
}

#[test]
fn reposting_keeps_the_target_and_receive_copies_frees_and_obeys_the_budget() {
    let mut r = rig();
    assert_eq!(r.dev.repost_rx(3, 16), 3);
    assert_eq!(r.dev.repost_rx(3, 16), 0, "target already posted");
    for i in 0..3u8 {
        let mut p = r.rxs.dequeue_packet().unwrap().unwrap();
        r.pool
            .packet_mut(&mut p)
            .unwrap()
            .write_frame(0, &[i; 64])
            .unwrap();
        r.rxc.enqueue_packet(p).unwrap();
    }
    assert_eq!(r.dev.rx_pending(), 3);
    r.dev.begin_poll(2);
    for i in 0..2u8 {
        let (rx, _tx) = r.dev.receive(now()).unwrap();
        rx.consume(|frame| assert_eq!(frame, &[i; 64]));
    }
    assert!(r.dev.receive(now()).is_none(), "budget spent");
    let c = r.dev.counters();
    assert_eq!((c.rx_frames, c.rx_bytes, c.rx_buffers_posted), (2, 128, 1));
    assert_eq!(r.pool.in_use(), 1);
    // Two buffers came back, so two more are posted.
    assert_eq!(r.dev.repost_rx(3, 16), 2);
    assert_eq!(r.dev.counters().rx_buffers_posted_total, 5);
    let (tx, rx) = r.dev.drain_completions(16);
    assert_eq!((tx, rx), (0, 1));
    for _ in 0..2 {
        let p = r.rxs.dequeue_packet().unwrap().unwrap();
        r.pool.deallocate(p).unwrap();
    }
    assert_eq!(r.pool.in_use(), 0);
}

#[test]
fn a_reply_with_no_packet_is_dropped_and_counted() {
    let mut r = rig();
    r.dev.repost_rx(1, 1);
    let mut p = r.rxs.dequeue_packet().unwrap().unwrap();
    r.pool
        .packet_mut(&mut p)
        .unwrap()
        .write_frame(0, &[7; 64])
        .unwrap();
    r.rxc.enqueue_packet(p).unwrap();
    r.dev.begin_poll(1);
    let (rx, tx) = r.dev.receive(now()).unwrap();
    // The frame's own packet is already free; take every packet so the reply finds none.
    let hoard: Vec<Packet> = (0..CAP * 4)
        .map(|_| r.pool.allocate(Owner::System).unwrap())
        .collect();
    rx.consume(|_| tx.consume(60, |buf| buf.fill(1)));
    assert_eq!(r.dev.counters().tx_dropped_reply_no_packet, 1);
    assert_eq!(r.dev.counters().tx_frames_submitted, 0);
    for p in hoard {
        r.pool.system_free(p).unwrap();
    }
}

#[test]
fn the_mtu_is_lowered_to_fit_a_tx_buffer() {
    let r = rig();
    assert_eq!(r.dev.frame_max_bytes(), 1514);
    let pool = PacketBufferPool::create(PoolConfig::new(*b"jumb", CAP * 4, 4096)).unwrap();
    let rxs = RxSubmissionQueue::create(&pool, CAP, 0).unwrap();
    let rxc = RxCompletionQueue::create(&pool, CAP, 1).unwrap();
    let txs = TxSubmissionQueue::create(&pool, CAP, 2).unwrap();
    let txc = TxCompletionQueue::create(&pool, CAP, 3).unwrap();
    let mut service = EthernetService::default();
    let iface = service
        .register_ethernet_interface(
            MacAddress([2, 0, 0, 0, 0, 2]),
            &pool,
            &[&rxs, &rxc, &txs, &txc],
        )
        .unwrap();
    let dev = NdkDevice::new(iface.into_queues(), pool.clone(), pool, 9000);
    assert_eq!(dev.frame_max_bytes(), 4096);
    assert_eq!(dev.capabilities().max_transmission_unit, 4096);
}

#[test]
fn the_stack_can_move_to_another_thread() {
    fn is_send<T: Send>() {}
    is_send::<super::OsStack>();
}
