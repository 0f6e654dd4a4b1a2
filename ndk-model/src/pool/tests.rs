use super::*;

fn pool(count: u32) -> PacketBufferPool {
    PacketBufferPool::create(PoolConfig::new(*b"test", count, 2048)).unwrap()
}

#[test]
fn configs_are_validated_like_create_with_options() {
    let ok = PoolConfig::new(*b"vnic", 8, 1514);
    assert!(ok.validate().is_ok());
    let cases: [(PoolConfig, IoReturn); 6] = [
        (
            PoolConfig {
                name: *b"a\0bc",
                ..ok
            },
            IoReturn::BadArgument,
        ),
        (
            PoolConfig {
                packet_count: 0,
                buffer_count: 0,
                ..ok
            },
            IoReturn::BadArgument,
        ),
        (
            PoolConfig {
                buffer_count: 7,
                ..ok
            },
            IoReturn::BadArgument,
        ),
        (
            PoolConfig {
                buffer_size_bytes: 0,
                ..ok
            },
            IoReturn::BadArgument,
        ),
        (
            PoolConfig {
                max_buffers_per_packet: 2,
                ..ok
            },
            IoReturn::Unsupported,
        ),
        (PoolConfig { options: 0x8, ..ok }, IoReturn::BadArgument),
    ];
    for (config, code) in cases {
        let err = PacketBufferPool::create(config).unwrap_err();
        assert_eq!(IoReturn::from(&err), code, "{config:?}: {err}");
    }
    let extra_buffers = PoolConfig {
        buffer_count: 16,
        ..ok
    };
    assert_eq!(
        PacketBufferPool::create(extra_buffers)
            .unwrap()
            .buffer_count(),
        16
    );
}

#[test]
fn stride_is_not_a_power_of_two() {
    assert_eq!(PoolConfig::new(*b"abcd", 1, 2048).stride_bytes(), 2112);
    assert_eq!(PoolConfig::new(*b"abcd", 1, 1514).stride_bytes(), 1536);
    assert_eq!(PoolConfig::new(*b"abcd", 1, 16384).stride_bytes(), 16448);
    for size in [1u32, 64, 1500, 2048, 4096, 9216] {
        assert!(!PoolConfig::new(*b"abcd", 1, size)
            .stride_bytes()
            .is_power_of_two());
    }
}

#[test]
fn exhaustion_is_a_typed_error_and_the_pool_refills() {
    let p = pool(4);
    let got: Vec<Packet> = (0..4).map(|_| p.allocate(Owner::Driver).unwrap()).collect();
    assert_eq!(p.in_use(), 4);
    let err = p.allocate(Owner::Driver).unwrap_err();
    assert_eq!(err, AllocateError::Exhausted { packet_count: 4 });
    assert_eq!(IoReturn::from(err), IoReturn::NoResources);
    for packet in got {
        p.deallocate(packet).unwrap();
    }
    assert!(p.leak_report().is_clean());
}

#[test]
fn foreign_packets_are_rejected_and_returned() {
    let a = pool(2);
    let b = pool(2);
    let mut packet = a.allocate(Owner::Driver).unwrap();
    assert!(b.packet_mut(&mut packet).is_err());
    let err = b.deallocate(packet).unwrap_err();
    let DeallocateError::Foreign(packet) = err else {
        panic!("{err}")
    };
    a.deallocate(packet).unwrap();
}

#[test]
fn deallocate_needs_driver_ownership() {
    let p = pool(2);
    let packet = p.allocate(Owner::System).unwrap();
    let err = p.deallocate(packet).unwrap_err();
    let DeallocateError::WrongOwner {
        packet,
        state,
        expected,
    } = err
    else {
        panic!()
    };
    assert_eq!(
        (state, expected),
        (Some(OwnerState::System), OwnerState::Driver)
    );
    p.system_free(packet).unwrap();
    assert_eq!(p.in_use(), 0);
}

#[test]
fn double_free_by_index_is_a_typed_error() {
    let p = pool(2);
    let packet = p.allocate(Owner::Driver).unwrap();
    let index = p.into_index(packet).unwrap();
    p.deallocate_index(index).unwrap();
    let err = p.deallocate_index(index).unwrap_err();
    assert!(err.is_double_free(), "{err}");
    assert_eq!(
        p.deallocate_index(7),
        Err(IndexError::OutOfRange {
            index: 7,
            packet_count: 2
        })
    );
    // A live token blocks the by-index path, so no second owner can appear.
    let packet = p.allocate(Owner::Driver).unwrap();
    let index = packet.index();
    assert_eq!(
        p.deallocate_index(index),
        Err(IndexError::TokenLive { index })
    );
    assert_eq!(
        p.packet_from_index(index),
        Err(IndexError::TokenLive { index })
    );
    let index = p.into_index(packet).unwrap();
    let packet = p.packet_from_index(index).unwrap();
    p.deallocate(packet).unwrap();
    assert!(p.leak_report().is_clean());
}

#[test]
fn offset_plus_length_never_passes_capacity() {
    let p = PacketBufferPool::create(PoolConfig::new(*b"bnds", 1, 100)).unwrap();
    let mut packet = p.allocate(Owner::Driver).unwrap();
    {
        let mut v = p.packet_mut(&mut packet).unwrap();
        assert_eq!(v.capacity_bytes(), 100);
        v.set_data_offset_and_length(10, 90).unwrap();
        assert!(v.set_data_length(91).is_err());
        assert!(v.set_data_offset(11).is_err());
        assert_eq!(
            v.set_data_offset_and_length(u16::MAX, u32::MAX),
            Err(PacketBoundsError {
                offset_bytes: 65535,
                length_bytes: u32::MAX,
                capacity_bytes: 100
            })
        );
        v.write_frame(4, &[1, 2, 3]).unwrap();
        assert_eq!(v.data(), &[1, 2, 3]);
        assert!(v.write_frame(0, &[0; 101]).is_err());
        v.set_link_header_length(14);
        v.set_direction(PacketDirection::Rx);
        v.set_completion_status(IoReturn::Aborted);
        v.set_timestamp_ns(5);
        v.set_tx_checksum_info(TxChecksumFlags(3), 14, 24);
        v.set_tso_info(1448, TsoFlags(0x10_0000));
        v.set_rx_checksum_info(RxChecksumFlags(9), 0xffff);
        v.set_lro_info(LroFlags(1), 4);
    }
    let v = p.packet(&packet).unwrap();
    assert_eq!(
        (v.data_offset(), v.data_length(), v.link_header_length()),
        (4, 3, 14)
    );
    assert_eq!(v.direction(), Some(PacketDirection::Rx));
    assert_eq!(v.completion_status(), IoReturn::Aborted.code());
    assert_eq!(v.timestamp_ns(), Some(5));
    assert_eq!(v.tx_checksum_info(), (TxChecksumFlags(3), 14, 24));
    assert_eq!(v.tso_info(), (1448, TsoFlags(0x10_0000)));
    assert_eq!(v.rx_checksum_info(), (RxChecksumFlags(9), 0xffff));
    assert_eq!(v.lro_info(), (LroFlags(1), 4));
    p.deallocate(packet).unwrap();
    // Metadata is reset on the next allocation.
    let packet = p.allocate(Owner::Driver).unwrap();
    let v = p.packet(&packet).unwrap();
    assert_eq!(
        (v.data_length(), v.timestamp_ns(), v.direction()),
        (0, None, Some(PacketDirection::None))
    );
    p.deallocate(packet).unwrap();
}

#[test]
fn cache_serves_and_flushes() {
    let p = pool(64);
    let mut cache = PoolCache::new(&p, 16);
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(cache.allocate(Owner::Driver).unwrap());
    }
    assert!(cache.allocate(Owner::Driver).is_err());
    let mut seen: Vec<u32> = held.iter().map(Packet::index).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 64, "no index handed out twice");
    for packet in held {
        cache.deallocate(packet).unwrap();
    }
    assert!(cache.cached() <= 16);
    assert_eq!(p.in_use(), 0);
    drop(cache);
    // Everything is back on the shared list: 64 direct allocations succeed.
    let again: Vec<Packet> = (0..64)
        .map(|_| p.allocate(Owner::System).unwrap())
        .collect();
    assert_eq!(p.leak_report().system, 64);
    for packet in again {
        p.system_free(packet).unwrap();
    }
}

#[test]
fn leak_report_names_the_leaks() {
    let p = pool(8);
    let a = p.allocate(Owner::Driver).unwrap();
    let b = p.allocate(Owner::System).unwrap();
    let r = p.leak_report();
    assert_eq!((r.in_use, r.driver, r.system), (2, 1, 1));
    assert_eq!(r.sample.as_slice(), &[a.index(), b.index()]);
    p.deallocate(a).unwrap();
    p.system_free(b).unwrap();
    assert!(p.leak_report().is_clean());
}

#[test]
fn corrupted_free_list_is_reported() {
    let p = pool(4);
    p.inner.header().free_head.0.store(99, Ordering::Release);
    assert_eq!(
        p.allocate(Owner::Driver),
        Err(AllocateError::Corrupted { index: 99 })
    );
    let mut cache = PoolCache::new(&p, 8);
    assert_eq!(
        cache.allocate(Owner::Driver),
        Err(AllocateError::Corrupted { index: 99 })
    );
}

#[test]
fn attach_sees_the_same_pool() {
    let config = PoolConfig::new(*b"shrd", 16, 1514);
    let region = Arc::new(Region::heap(config.layout().total_bytes + 4096).unwrap());
    let a = PacketBufferPool::create_in(Arc::clone(&region), 4096, config).unwrap();
    let mut packet = a.allocate(Owner::Driver).unwrap();
    a.packet_mut(&mut packet)
        .unwrap()
        .write_frame(2, b"hello")
        .unwrap();
    let index = a.into_index(packet).unwrap();
    let b = PacketBufferPool::attach(Arc::clone(&region), 4096).unwrap();
    assert_eq!(
        (b.packet_count(), b.buffer_size_bytes(), b.name()),
        (16, 1514, *b"shrd")
    );
    let packet = b.packet_from_index(index).unwrap();
    assert_eq!(b.packet(&packet).unwrap().data(), b"hello");
    b.deallocate(packet).unwrap();
    assert_eq!(a.in_use(), 0);
    assert!(matches!(
        PacketBufferPool::attach(region, 0),
        Err(PoolCreateError::BadHeader)
    ));
}

#[test]
fn threads_allocate_and_free_without_double_allocation() {
    let p = pool(8);
    let owners: Arc<Vec<std::sync::atomic::AtomicBool>> = Arc::new(
        (0..8)
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect(),
    );
    let rounds = if cfg!(miri) { 50 } else { 20_000 };
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let p = p.clone();
            let owners = Arc::clone(&owners);
            std::thread::spawn(move || {
                let mut cache = (t == 2).then(|| PoolCache::new(&p, 4));
                for _ in 0..rounds {
                    let got = match cache.as_mut() {
                        Some(c) => c.allocate(Owner::Driver),
                        None => p.allocate(Owner::Driver),
                    };
                    let Ok(packet) = got else { continue };
                    let i = packet.index() as usize;
                    assert!(
                        !owners[i].swap(true, std::sync::atomic::Ordering::AcqRel),
                        "double allocation of {i}"
                    );
                    owners[i].store(false, std::sync::atomic::Ordering::Release);
                    match cache.as_mut() {
                        Some(c) => c.deallocate(packet).unwrap(),
                        None => p.deallocate(packet).unwrap(),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(p.leak_report().is_clean());
}
