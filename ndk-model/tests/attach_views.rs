//! Two views of one shared region, as a peer process would have them: a ring and a pool are
//! created in a heap [`Region`] and attached a second time from the same bytes, and both
//! views are used (also from two threads). The point is to run `attach` under Miri, on heap
//! regions (no `mmap` needed), so aliasing between the two views is checked too.
#![cfg(not(loom))]

use std::sync::Arc;

use ndk_model::pool::{Owner, OwnerState, PacketBufferPool, PoolConfig, OWNER_TOKEN_BIT};
use ndk_model::ring::{ring_layout_bytes, Ring, RingConfig, RingError};
use ndk_model::shm::Region;

#[test]
fn ring_attached_twice_moves_values_between_views() {
    let region = Arc::new(Region::heap(ring_layout_bytes::<u64>(8) + 128).unwrap());
    let created = Ring::<u64>::create_in(
        Arc::clone(&region),
        128,
        RingConfig {
            start_index: u32::MAX - 3,
            ..RingConfig::with_capacity(8)
        },
    )
    .unwrap();
    let attached = Ring::<u64>::attach(Arc::clone(&region), 128).unwrap();
    assert_eq!(attached.capacity(), 8);
    let mut producer = created.producer().unwrap();
    let mut consumer = attached.consumer().unwrap();
    let total: u64 = if cfg!(miri) { 200 } else { 100_000 };
    let t = std::thread::spawn(move || {
        let mut next = 0;
        while next < total {
            let n = producer
                .push_slice(&[next, next + 1, next + 2][..(total - next).min(3) as usize])
                .unwrap();
            next += n as u64;
            if n == 0 {
                std::thread::yield_now();
            }
        }
    });
    let mut expected = 0;
    while expected < total {
        let chunk = consumer.peek(4).unwrap();
        let (a, b) = chunk.as_slices();
        for v in a.iter().chain(b) {
            assert_eq!(*v, expected);
            expected += 1;
        }
        let n = chunk.len();
        chunk.release(n);
        if n == 0 {
            std::thread::yield_now();
        }
    }
    t.join().unwrap();
    assert_eq!(created.len(), 0);
    assert_eq!(attached.len(), 0);
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
fn pool_attached_twice_shares_packets() {
    let config = PoolConfig::new(*b"shrd", 4, 256);
    let region = Arc::new(Region::heap(config.layout().total_bytes + 4096).unwrap());
    let a = PacketBufferPool::create_in(Arc::clone(&region), 4096, config).unwrap();
    let b = PacketBufferPool::attach(Arc::clone(&region), 4096).unwrap();
    assert_eq!(b.packet_count(), 4);
    let mut packet = a.allocate(Owner::Driver).unwrap();
    a.packet_mut(&mut packet)
        .unwrap()
        .write_frame(2, b"hello")
        .unwrap();
    let index = a.into_index(packet).unwrap();
    // The other view sees the owner word and re-forms a token from the bare index.
    assert_eq!(b.owner_word(index), Some(OwnerState::Driver as u32));
    let packet = b.packet_from_index(index).unwrap();
    assert_eq!(
        b.owner_word(index),
        Some(OwnerState::Driver as u32 | OWNER_TOKEN_BIT)
    );
    assert_eq!(b.packet(&packet).unwrap().data(), b"hello");
    b.deallocate(packet).unwrap();
    assert!(a.leak_report().is_clean());
    // Both views allocate from the one free list: four packets in all, each once.
    let mut held: Vec<_> = (0..2).map(|_| a.allocate(Owner::System).unwrap()).collect();
    held.extend((0..2).map(|_| b.allocate(Owner::System).unwrap()));
    assert!(b.allocate(Owner::System).is_err());
    let mut indices: Vec<u32> = held.iter().map(ndk_model::packet::Packet::index).collect();
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2, 3]);
    for (i, p) in held.into_iter().enumerate() {
        let pool = if i < 2 { &a } else { &b };
        pool.system_free(p).unwrap();
    }
    assert!(a.leak_report().is_clean() && b.leak_report().is_clean());
}
