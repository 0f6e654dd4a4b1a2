use super::*;

fn pair(capacity: u32, start: u32) -> (Producer<u32>, Consumer<u32>) {
    let ring = Ring::<u32>::new(RingConfig {
        start_index: start,
        ..RingConfig::with_capacity(capacity)
    })
    .unwrap();
    (ring.producer().unwrap(), ring.consumer().unwrap())
}

#[test]
fn bad_capacities_are_rejected() {
    for capacity in [0, 3, 6, RING_CAPACITY_MAX * 2] {
        assert!(matches!(
            Ring::<u32>::new(RingConfig::with_capacity(capacity)),
            Err(RingError::BadCapacity { .. })
        ));
    }
}

#[test]
fn fifo_across_the_u32_wrap() {
    let (mut p, mut c) = pair(4, u32::MAX - 5);
    let mut next_out = 0u32;
    for v in 0..40u32 {
        p.push(v).unwrap();
        if v % 3 == 2 {
            while let Some(x) = c.pop().unwrap() {
                assert_eq!(x, next_out);
                next_out += 1;
            }
        }
    }
    while let Some(x) = c.pop().unwrap() {
        assert_eq!(x, next_out);
        next_out += 1;
    }
    assert_eq!(next_out, 40);
}

#[test]
fn full_ring_returns_the_value() {
    let (mut p, _c) = pair(2, 0);
    p.push(1).unwrap();
    p.push(2).unwrap();
    assert_eq!(p.push(3), Err(PushError::Full(3)));
}

#[test]
fn chunks_hand_out_two_slices_on_wrap() {
    let (mut p, mut c) = pair(8, 0);
    assert_eq!(p.push_slice(&[0, 1, 2, 3, 4, 5]).unwrap(), 6);
    let mut sink = [0u32; 6];
    assert_eq!(c.pop_slice(&mut sink).unwrap(), 6);
    // Producer is at slot 6 of 8: a 5-slot chunk wraps.
    let mut chunk = p.reserve_exact(5).unwrap();
    let (a, b) = chunk.as_mut_slices();
    assert_eq!((a.len(), b.len()), (2, 3));
    a.copy_from_slice(&[10, 11]);
    b.copy_from_slice(&[12, 13, 14]);
    chunk.commit_all();
    let chunk = c.peek_exact(5).unwrap();
    let (a, b) = chunk.as_slices();
    assert_eq!((a, b), (&[10, 11][..], &[12, 13, 14][..]));
    chunk.release(2);
    assert_eq!(c.available(0).unwrap(), 3);
    assert!(matches!(
        c.peek_exact(4),
        Err(PeekError::TooFew { available: 3 })
    ));
    assert!(matches!(
        p.reserve_exact(6),
        Err(ReserveError::TooFew { free: 5 })
    ));
}

#[test]
fn dropping_a_chunk_publishes_nothing() {
    let (mut p, mut c) = pair(4, 7);
    {
        let mut chunk = p.reserve(3).unwrap();
        chunk.write(0, 9);
    }
    assert_eq!(c.pop().unwrap(), None);
    let mut chunk = p.reserve(3).unwrap();
    assert_eq!(chunk.len(), 3);
    chunk.write(0, 5);
    chunk.commit(1);
    assert_eq!(c.pop().unwrap(), Some(5));
    assert_eq!(c.pop().unwrap(), None);
}

#[test]
fn halves_can_be_taken_once() {
    let ring = Ring::<u32>::new(RingConfig::with_capacity(4)).unwrap();
    let _p = ring.producer().unwrap();
    assert!(matches!(
        ring.producer(),
        Err(RingError::HalfTaken { half: "producer" })
    ));
    let _c = ring.consumer().unwrap();
    assert!(matches!(
        ring.consumer(),
        Err(RingError::HalfTaken { half: "consumer" })
    ));
}

#[test]
fn corrupt_peer_index_is_reported_not_followed() {
    let (mut p, mut c) = pair(4, 0);
    // A hostile peer jumps the producer index far ahead.
    p.ring().header().producer.0.store(1000, Ordering::Release);
    let err = c.pop().unwrap_err();
    assert_eq!(err.capacity, 4);
    assert_eq!(err.producer, 1000);
    // ... and moves the consumer index beyond the producer.
    p.ring().header().producer.0.store(0, Ordering::Release);
    c.ring().header().consumer.0.store(9, Ordering::Release);
    p.push(1).unwrap();
    p.push(2).unwrap();
    p.push(3).unwrap();
    p.push(4).unwrap();
    assert!(matches!(p.push(5), Err(PushError::Corrupted(5, _))));
}

#[test]
fn need_wakeup_protocol_single_thread() {
    let (mut p, mut c) = pair(4, 0);
    assert!(
        c.prepare_to_sleep().unwrap(),
        "empty ring: consumer may sleep"
    );
    p.push(1).unwrap();
    assert!(p.take_consumer_wakeup(), "producer sees the request");
    assert!(!p.take_consumer_wakeup(), "the request is taken once");
    assert!(!c.prepare_to_sleep().unwrap(), "non-empty ring: no sleep");
    assert!(!p.take_consumer_wakeup(), "flag was withdrawn");
    for v in 2..=4 {
        p.push(v).unwrap();
    }
    assert!(
        p.prepare_to_sleep().unwrap(),
        "full ring: producer may sleep"
    );
    assert_eq!(c.pop().unwrap(), Some(1));
    assert!(c.take_producer_wakeup());
}

#[test]
fn enable_flag_and_ids_round_trip() {
    let ring = Ring::<u32>::new(RingConfig {
        queue_id: 7,
        kind: 2,
        ..RingConfig::with_capacity(8)
    })
    .unwrap();
    assert!(!ring.is_enabled());
    ring.set_enabled(true);
    assert!(ring.is_enabled());
    assert_eq!((ring.queue_id(), ring.kind(), ring.capacity()), (7, 2, 8));
}

#[test]
fn attach_sees_the_same_ring() {
    let region = Arc::new(Region::heap(ring_layout_bytes::<u64>(16) + 128).unwrap());
    let ring =
        Ring::<u64>::create_in(Arc::clone(&region), 128, RingConfig::with_capacity(16)).unwrap();
    let mut p = ring.producer().unwrap();
    p.push(42).unwrap();
    let other = Ring::<u64>::attach(Arc::clone(&region), 128).unwrap();
    let mut c = other.consumer().unwrap();
    assert_eq!(c.pop().unwrap(), Some(42));
    assert!(matches!(
        Ring::<u32>::attach(Arc::clone(&region), 128),
        Err(RingError::ElementSize {
            found: 8,
            expected: 4
        })
    ));
    assert!(matches!(
        Ring::<u64>::attach(region, 0),
        Err(RingError::BadMagic { .. })
    ));
}

#[test]
fn two_threads_move_values_in_order() {
    let (mut p, mut c) = pair(64, u32::MAX - 100);
    let total: u32 = if cfg!(miri) { 500 } else { 200_000 };
    let producer = std::thread::spawn(move || {
        let mut v = 0;
        while v < total {
            let mut chunk = p.reserve(8).unwrap();
            let k = chunk.len().min(total - v);
            for i in 0..k {
                chunk.write(i, v + i);
            }
            chunk.commit(k);
            v += k;
            std::thread::yield_now();
        }
    });
    let mut expect = 0;
    while expect < total {
        let chunk = c.peek(16).unwrap();
        for i in 0..chunk.len() {
            assert_eq!(chunk.get(i), expect);
            expect += 1;
        }
        chunk.release_all();
        std::thread::yield_now();
    }
    producer.join().unwrap();
}

#[test]
fn a_half_is_not_handed_out_over_corrupt_indices() {
    let region = Arc::new(Region::heap(ring_layout_bytes::<u32>(8)).unwrap());
    let ring =
        Ring::<u32>::create_in(Arc::clone(&region), 0, RingConfig::with_capacity(8)).unwrap();
    // A peer moves the producer index 100 ahead before this process takes its consumer half.
    ring.header().producer.0.store(100, Ordering::Release);
    assert!(matches!(ring.consumer(), Err(RingError::Corrupted(_))));
    assert!(matches!(ring.producer(), Err(RingError::Corrupted(_))));
    ring.header().producer.0.store(8, Ordering::Release);
    let mut c = ring.consumer().unwrap();
    assert_eq!(c.peek(100).unwrap().len(), 8);
}
