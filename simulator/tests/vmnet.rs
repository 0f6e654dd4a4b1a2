//! The vmnet model through its public API: lifecycle, data plane, events, limits, isolation
//! and determinism.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use ndk_model::ethernet::MacAddress;
use vnic_sim::clock::{SimClock, NS_PER_MS};
use vnic_sim::netconfig::NetConfig;
use vnic_sim::rng::SimRng;
use vnic_sim::vmnet::{
    Access, Estimate, EventTrigger, GuestId, HandleError, InterfaceDesc, InterfaceEvent,
    InterfaceHandle, InterfaceParams, Iov, NetworkCreateError, NetworkFromSerializationError,
    NetworkKey, NetworkRef, NetworkSerialization, Notification, OperatingMode, OverLimit,
    ReadError, RxDesc, ShortReadBuffer, SimVmnet, SourceIpRule, SourceIpRules, StartError, TxDesc,
    Uuid, VmnetKnobs, VmnetReturn, WriteError,
};

const SEED: u64 = 0x5eed;

/// A vmnet plus the clock that drives it.
struct Fixture {
    vmnet: SimVmnet,
    clock: SimClock,
}

impl Fixture {
    fn new(knobs: VmnetKnobs) -> Self {
        Self::seeded(knobs, SEED)
    }

    fn seeded(knobs: VmnetKnobs, seed: u64) -> Self {
        Self {
            vmnet: SimVmnet::new(knobs, &SimRng::new(seed)),
            clock: SimClock::new(),
        }
    }

    fn tick(&mut self, delta_ns: u64) {
        let now = self.clock.advance_ns(delta_ns);
        self.vmnet.advance(now);
    }

    fn notifications(&mut self) -> Vec<Notification> {
        std::iter::from_fn(|| self.vmnet.poll_notification()).collect()
    }

    /// Starts an interface and runs the clock until its start completes.
    fn start(
        &mut self,
        desc: &InterfaceDesc,
    ) -> (InterfaceHandle, Result<InterfaceParams, StartError>) {
        let handle = self
            .vmnet
            .start_interface(self.clock.now_ns(), desc)
            .unwrap();
        for _ in 0..1000 {
            self.tick(NS_PER_MS);
            for n in self.notifications() {
                if let Notification::StartCompleted { handle: h, result } = n {
                    assert_eq!(h, handle);
                    return (handle, result);
                }
            }
        }
        panic!("start never completed");
    }

    fn start_ok(&mut self, desc: &InterfaceDesc) -> (InterfaceHandle, InterfaceParams) {
        let (h, r) = self.start(desc);
        (h, r.unwrap())
    }

    fn shared(&mut self) -> (InterfaceHandle, InterfaceParams) {
        self.start_ok(&InterfaceDesc::new(OperatingMode::Shared, GuestId(0)))
    }

    fn read_all(&mut self, h: InterfaceHandle, slots: usize) -> Result<Vec<Vec<u8>>, ReadError> {
        let mut bufs = vec![vec![0u8; 1514]; slots];
        let mut descs: Vec<RxDesc<'_>> = bufs.iter_mut().map(|b| RxDesc::new(b)).collect();
        let n = self.vmnet.read(h, &mut descs)?;
        Ok(descs[..n].iter().map(|d| d.frame().to_vec()).collect())
    }

    fn write(&mut self, h: InterfaceHandle, frames: &[Vec<u8>]) -> Result<usize, WriteError> {
        let descs: Vec<TxDesc<'_>> = frames.iter().map(|f| TxDesc::frame(f)).collect();
        self.vmnet.write(h, &descs)
    }
}

fn frame(dst: MacAddress, src: MacAddress, len: usize, tag: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    // A local experimental EtherType: not IPv4, so the source-IPv4 rule lets it through.
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(len, tag);
    f
}

const HOST_MAC: MacAddress = MacAddress([0x02, 0xaa, 0, 0, 0, 1]);

fn from_host(fx: &mut Fixture, to: MacAddress, count: usize) {
    for i in 0..count {
        fx.vmnet
            .host_send(&NetworkKey::Shared, &frame(to, HOST_MAC, 60, i as u8))
            .unwrap();
    }
    fx.tick(1);
}

#[test]
fn start_is_asynchronous_and_completes_with_params() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(1));
    let h = fx.vmnet.start_interface(0, &desc).unwrap();
    fx.tick(1);
    assert!(
        fx.notifications().is_empty(),
        "completion waits for the start delay"
    );
    let err = fx.read_all(h, 1).unwrap_err();
    assert_eq!(err.code(), VmnetReturn::SetupIncomplete);
    let err = fx
        .write(h, &[frame(MacAddress::BROADCAST, HOST_MAC, 60, 0)])
        .unwrap_err();
    assert_eq!(err, WriteError::Handle(HandleError::SetupIncomplete));
    assert_eq!(
        fx.vmnet.next_deadline_ns(),
        Some(VmnetKnobs::default().start_delay_ns)
    );
    fx.tick(VmnetKnobs::default().start_delay_ns);
    let params = match fx.notifications().as_slice() {
        [Notification::StartCompleted {
            handle,
            result: Ok(p),
        }] if *handle == h => p.clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(params.mtu_bytes, 1500);
    assert_eq!(params.max_packet_size_bytes, 1514);
    assert_eq!(params.read_packets_max, Some(256));
    assert_eq!(params.write_packets_max, Some(256));
    let mac = params.mac.unwrap();
    assert!(mac.is_unicast() && mac.is_locally_administered());
    let range = params.ipv4.unwrap();
    assert_eq!(range.start_address.to_string(), "192.168.64.1");
    assert_eq!(range.end_address.to_string(), "192.168.64.254");
    assert_eq!(range.subnet_mask.to_string(), "255.255.255.0");
    assert_eq!(params.nat66_prefix.unwrap().octets()[0], 0xfd);
    assert_eq!(fx.vmnet.params(h), Some(&params));
    assert_eq!(
        fx.read_all(h, 4).unwrap().len(),
        0,
        "an empty read returns 0"
    );
}

#[test]
fn documented_limits_are_a_knob() {
    let (_, p) = Fixture::new(VmnetKnobs::documented()).shared();
    assert_eq!(
        (p.read_packets_max, p.write_packets_max),
        (Some(200), Some(200))
    );
    let knobs = VmnetKnobs {
        report_max_packets_keys: false,
        ..VmnetKnobs::default()
    };
    let (_, p) = Fixture::new(knobs).shared();
    assert_eq!((p.read_packets_max, p.write_packets_max), (None, None));
}

#[test]
fn same_interface_id_gives_same_mac() {
    let id = Uuid([0x42; 16]);
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0)).interface_id(id);
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (h, first) = fx.start_ok(&desc);
    assert_eq!(first.interface_id, id);
    fx.vmnet.stop_interface(fx.clock.now_ns(), h).unwrap();
    fx.tick(10 * NS_PER_MS);
    let (_, second) = fx.start_ok(&desc);
    assert_eq!(first.mac, second.mac);
    let (_, other_seed) = Fixture::seeded(VmnetKnobs::default(), 99).start_ok(&desc);
    assert_eq!(
        first.mac, other_seed.mac,
        "the MAC depends on the id, not the seed"
    );
    let other_id =
        InterfaceDesc::new(OperatingMode::Shared, GuestId(0)).interface_id(Uuid([1; 16]));
    assert_ne!(fx.start_ok(&other_id).1.mac, first.mac);
}

#[test]
fn no_interface_id_gives_a_seeded_random_mac() {
    let mac = |seed| Fixture::seeded(VmnetKnobs::default(), seed).shared().1.mac;
    assert_eq!(mac(1), mac(1));
    assert_ne!(mac(1), mac(2));
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (_, a) = fx.shared();
    let (_, b) = fx.shared();
    assert_ne!(a.mac, b.mac);
    assert_ne!(a.interface_id, b.interface_id);
}

#[test]
fn allocate_mac_false_reports_no_mac() {
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0)).allocate_mac(false);
    let (_, p) = Fixture::new(VmnetKnobs::default()).start_ok(&desc);
    assert_eq!(p.mac, None);
}

#[test]
fn frames_flow_between_interfaces_and_the_host_side() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (a, pa) = fx.shared();
    let (b, pb) = fx.shared();
    let (mac_a, mac_b) = (pa.mac.unwrap(), pb.mac.unwrap());
    assert_eq!(
        fx.write(a, &[frame(MacAddress::BROADCAST, mac_a, 60, 1)]),
        Ok(1)
    );
    assert_eq!(fx.vmnet.next_deadline_ns(), Some(fx.clock.now_ns()));
    fx.tick(1);
    assert_eq!(
        fx.read_all(b, 8).unwrap(),
        vec![frame(MacAddress::BROADCAST, mac_a, 60, 1)]
    );
    assert!(
        fx.read_all(a, 8).unwrap().is_empty(),
        "no echo to the sender"
    );
    assert_eq!(
        fx.vmnet.host_recv(&NetworkKey::Shared).unwrap()[..6],
        MacAddress::BROADCAST.0
    );
    // b now knows a: unicast goes only to a.
    fx.write(b, &[frame(mac_a, mac_b, 100, 2)]).unwrap();
    fx.tick(1);
    assert_eq!(
        fx.read_all(a, 8).unwrap(),
        vec![frame(mac_a, mac_b, 100, 2)]
    );
    assert_eq!(fx.vmnet.host_recv(&NetworkKey::Shared), None);
    let ca = fx.vmnet.counters(a).unwrap();
    assert_eq!(
        (ca.written_frames, ca.read_frames, ca.arrived_frames),
        (1, 1, 1)
    );
    let sw = fx.vmnet.switch(&NetworkKey::Shared).unwrap();
    assert_eq!(sw.lookup(mac_a), fx.vmnet.port(a));
}

#[test]
fn read_fills_up_to_the_per_call_limit() {
    let knobs = VmnetKnobs {
        read_packets_max: 4,
        ..VmnetKnobs::default()
    };
    let mut fx = Fixture::new(knobs.clone());
    let (h, p) = fx.shared();
    from_host(&mut fx, p.mac.unwrap(), 10);
    assert_eq!(fx.read_all(h, 3).unwrap().len(), 3);
    assert_eq!(fx.read_all(h, 4).unwrap().len(), 4);
    let err = fx.read_all(h, 5).unwrap_err();
    assert_eq!(
        err,
        ReadError::TooManyPackets {
            requested: 5,
            packets_max: 4
        }
    );
    assert_eq!(err.code(), VmnetReturn::TooManyPackets);
    assert_eq!(
        fx.vmnet.unread_frames(h),
        Some(3),
        "a rejected read takes nothing"
    );
    let frames = fx.read_all(h, 4).unwrap();
    assert_eq!(
        frames.iter().map(|f| f[20]).collect::<Vec<_>>(),
        vec![7, 8, 9],
        "in order"
    );

    let mut fx = Fixture::new(VmnetKnobs {
        over_limit: OverLimit::Clamp,
        ..knobs
    });
    let (h, p) = fx.shared();
    from_host(&mut fx, p.mac.unwrap(), 10);
    assert_eq!(fx.read_all(h, 9).unwrap().len(), 4, "clamped to the limit");
}

#[test]
fn read_stops_at_the_byte_limit() {
    let mut fx = Fixture::new(VmnetKnobs {
        bytes_per_call_max: Some(1000),
        ..VmnetKnobs::default()
    });
    let (h, p) = fx.shared();
    for _ in 0..3 {
        fx.vmnet
            .host_send(
                &NetworkKey::Shared,
                &frame(p.mac.unwrap(), HOST_MAC, 400, 0),
            )
            .unwrap();
    }
    fx.tick(1);
    assert_eq!(fx.read_all(h, 8).unwrap().len(), 2);
    assert_eq!(fx.read_all(h, 8).unwrap().len(), 1);
}

#[test]
fn write_over_the_packet_limit_fails_whole() {
    let knobs = VmnetKnobs {
        write_packets_max: 4,
        ..VmnetKnobs::default()
    };
    let mut fx = Fixture::new(knobs.clone());
    let (h, p) = fx.shared();
    let frames: Vec<_> = (0..5)
        .map(|i| frame(MacAddress::BROADCAST, p.mac.unwrap(), 60, i))
        .collect();
    let err = fx.write(h, &frames).unwrap_err();
    assert_eq!(
        err,
        WriteError::TooManyPackets {
            requested: 5,
            packets_max: 4
        }
    );
    assert_eq!(err.code(), VmnetReturn::TooManyPackets);
    assert_eq!(fx.vmnet.counters(h).unwrap().written_frames, 0);
    assert_eq!(fx.write(h, &frames[..4]), Ok(4));

    let mut fx = Fixture::new(VmnetKnobs {
        over_limit: OverLimit::Clamp,
        ..knobs
    });
    let (h, _) = fx.shared();
    assert_eq!(fx.write(h, &frames), Ok(4));
}

#[test]
fn write_over_the_byte_limit_fails_whole() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (h, p) = fx.shared();
    let mac = p.mac.unwrap();
    // 173 × 1514 = 261 922 ≤ 256 KiB; 174 frames are over.
    let frames: Vec<_> = (0..174)
        .map(|_| frame(MacAddress::BROADCAST, mac, 1514, 0))
        .collect();
    let err = fx.write(h, &frames).unwrap_err();
    assert_eq!(
        err,
        WriteError::TooManyBytes {
            total_bytes: 174 * 1514,
            bytes_max: 262_144
        }
    );
    assert_eq!(err.code(), VmnetReturn::TooManyPackets);
    assert_eq!(fx.write(h, &frames[..173]), Ok(173));

    let mut fx = Fixture::new(VmnetKnobs {
        over_limit: OverLimit::Clamp,
        ..VmnetKnobs::default()
    });
    let (h, _) = fx.shared();
    assert_eq!(
        fx.write(h, &frames),
        Ok(173),
        "clamped to what fits in 256 KiB"
    );
}

#[test]
fn idle_vmnet_has_no_deadline() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    assert_eq!(fx.vmnet.next_deadline_ns(), None);
    let (h, _) = fx.shared();
    assert_eq!(fx.vmnet.next_deadline_ns(), None);
    fx.vmnet.stop_interface(fx.clock.now_ns(), h).unwrap();
    let due = fx.clock.now_ns() + VmnetKnobs::default().stop_delay_ns;
    assert_eq!(fx.vmnet.next_deadline_ns(), Some(due));
}

#[test]
fn write_is_all_or_nothing_and_rejects_oversize_frames() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (h, p) = fx.shared();
    let mac = p.mac.unwrap();
    let batch = vec![
        frame(MacAddress::BROADCAST, mac, 60, 0),
        frame(MacAddress::BROADCAST, mac, 1514, 1),
        frame(MacAddress::BROADCAST, mac, 1515, 2),
    ];
    let err = fx.write(h, &batch).unwrap_err();
    assert_eq!(
        err,
        WriteError::PacketTooBig {
            index: 2,
            frame_bytes: 1515,
            max_packet_size_bytes: 1514
        }
    );
    assert_eq!(err.code(), VmnetReturn::PacketTooBig);
    fx.tick(1);
    assert_eq!(
        fx.vmnet.host_recv(&NetworkKey::Shared),
        None,
        "nothing of the batch left"
    );
    assert_eq!(fx.vmnet.counters(h).unwrap().written_frames, 0);
    assert_eq!(fx.write(h, &batch[..2]), Ok(2));
}

#[test]
fn write_rejects_malformed_descriptors() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (h, p) = fx.shared();
    let good = frame(MacAddress::BROADCAST, p.mac.unwrap(), 60, 0);
    let runt = [0u8; 13];
    let halves: [&[u8]; 2] = [&good[..30], &good[30..]];
    let one: [&[u8]; 1] = [&good];
    let cases: [(TxDesc<'_>, WriteError); 3] = [
        (
            TxDesc::frame(&runt),
            WriteError::Runt {
                index: 1,
                frame_bytes: 13,
            },
        ),
        (
            TxDesc {
                pkt_size_bytes: 60,
                iov: Iov::Many(&halves),
                flags: 0,
            },
            WriteError::MultipleIovecs { index: 1 },
        ),
        (
            TxDesc {
                pkt_size_bytes: 64,
                iov: Iov::One(&good),
                flags: 0,
            },
            WriteError::SizeMismatch {
                index: 1,
                pkt_size_bytes: 64,
                iov_bytes: 60,
            },
        ),
    ];
    for (bad, expected) in cases {
        let err = fx.vmnet.write(h, &[TxDesc::frame(&good), bad]).unwrap_err();
        assert_eq!(err, expected);
        assert_eq!(err.code(), VmnetReturn::InvalidArgument);
    }
    let single_iov = TxDesc {
        pkt_size_bytes: 60,
        iov: Iov::Many(&one),
        flags: 0,
    };
    assert_eq!(fx.vmnet.write(h, &[single_iov]), Ok(1));
    assert_eq!(fx.vmnet.write(h, &[]), Ok(0));
}

#[test]
fn full_kernel_buffer_is_buffer_exhausted() {
    let mut fx = Fixture::new(VmnetKnobs {
        tx_buffer_frames_max: 4,
        ..VmnetKnobs::default()
    });
    let (h, p) = fx.shared();
    let f = frame(MacAddress::BROADCAST, p.mac.unwrap(), 60, 0);
    assert_eq!(fx.write(h, &vec![f.clone(); 3]), Ok(3));
    let err = fx.write(h, &vec![f.clone(); 2]).unwrap_err();
    assert_eq!(err, WriteError::BufferExhausted { free_frames: 1 });
    assert_eq!(err.code(), VmnetReturn::BufferExhausted);
    fx.tick(1);
    assert_eq!(fx.write(h, &vec![f; 2]), Ok(2));
}

#[test]
fn mtu_9000_raises_the_max_packet_size() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0)).mtu_bytes(9000);
    let (h, p) = fx.start_ok(&desc);
    assert_eq!((p.mtu_bytes, p.max_packet_size_bytes), (9000, 9014));
    let mac = p.mac.unwrap();
    assert_eq!(
        fx.write(h, &[frame(MacAddress::BROADCAST, mac, 9014, 0)]),
        Ok(1)
    );
    let err = fx
        .write(h, &[frame(MacAddress::BROADCAST, mac, 9015, 0)])
        .unwrap_err();
    assert_eq!(err.code(), VmnetReturn::PacketTooBig);
}

#[test]
fn short_read_buffers_follow_the_knob() {
    for policy in [ShortReadBuffer::Truncate, ShortReadBuffer::Error] {
        let mut fx = Fixture::new(VmnetKnobs {
            short_read_buffer: policy,
            ..VmnetKnobs::default()
        });
        let (h, p) = fx.shared();
        fx.vmnet
            .host_send(
                &NetworkKey::Shared,
                &frame(p.mac.unwrap(), HOST_MAC, 200, 0),
            )
            .unwrap();
        fx.tick(1);
        let mut buf = [0u8; 100];
        let mut descs = [RxDesc::new(&mut buf)];
        let result = fx.vmnet.read(h, &mut descs);
        match policy {
            ShortReadBuffer::Truncate => {
                assert_eq!(result, Ok(1));
                assert_eq!(descs[0].pkt_size_bytes, 100);
                assert_eq!(fx.vmnet.counters(h).unwrap().truncated_frames, 1);
            }
            ShortReadBuffer::Error => {
                let err = result.unwrap_err();
                assert_eq!(
                    err,
                    ReadError::BufferTooSmall {
                        frame_bytes: 200,
                        buffer_bytes: 100
                    }
                );
                assert_eq!(err.code(), VmnetReturn::InvalidArgument);
                assert_eq!(fx.vmnet.unread_frames(h), Some(1));
            }
        }
    }
}

/// Runs: 3 frames arrive; read 1; advance with nothing new; 1 more arrives. Returns the
/// estimates of the events fired after each of the three advances.
fn event_script(knobs: VmnetKnobs) -> [Vec<u64>; 3] {
    let mut fx = Fixture::new(knobs);
    let (h, p) = fx.shared();
    fx.vmnet
        .set_event_callback(h, InterfaceEvent::PACKETS_AVAILABLE)
        .unwrap();
    let mac = p.mac.unwrap();
    let estimates = |fx: &mut Fixture| -> Vec<u64> {
        fx.notifications()
            .into_iter()
            .map(|n| match n {
                Notification::PacketsAvailable {
                    handle,
                    event,
                    estimated_packets,
                } => {
                    assert_eq!((handle, event), (h, InterfaceEvent::PACKETS_AVAILABLE));
                    estimated_packets
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    from_host(&mut fx, mac, 3);
    let first = estimates(&mut fx);
    assert_eq!(fx.read_all(h, 1).unwrap().len(), 1);
    fx.tick(1);
    let second = estimates(&mut fx);
    from_host(&mut fx, mac, 1);
    let third = estimates(&mut fx);
    [first, second, third]
}

#[test]
fn edge_events_fire_only_on_arrivals() {
    let r = event_script(VmnetKnobs::default());
    assert_eq!(r, [vec![3], vec![], vec![3]]);
}

#[test]
fn level_events_refire_while_packets_remain() {
    let r = event_script(VmnetKnobs {
        event_trigger: EventTrigger::Level,
        ..VmnetKnobs::default()
    });
    assert_eq!(r, [vec![3], vec![2], vec![3]]);
}

#[test]
fn estimate_accuracy_is_a_knob() {
    let with = |estimate| {
        event_script(VmnetKnobs {
            estimate,
            ..VmnetKnobs::default()
        })
    };
    assert_eq!(
        with(Estimate::Capped { packets_max: 2 }),
        [vec![2], vec![], vec![2]]
    );
    assert_eq!(
        with(Estimate::ArrivalsOnly),
        [vec![3], vec![], vec![1]],
        "stale: leftovers missed"
    );
    let jitter = with(Estimate::Jitter { error_max: 2 });
    assert!(jitter[0][0] <= 5 && jitter[2][0] <= 5);
    assert_eq!(jitter, with(Estimate::Jitter { error_max: 2 }), "seeded");
}

#[test]
fn events_can_be_disabled() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (h, p) = fx.shared();
    fx.vmnet
        .set_event_callback(h, InterfaceEvent::PACKETS_AVAILABLE)
        .unwrap();
    fx.vmnet
        .set_event_callback(h, InterfaceEvent::NONE)
        .unwrap();
    from_host(&mut fx, p.mac.unwrap(), 2);
    assert!(fx.notifications().is_empty());
    assert_eq!(fx.vmnet.counters(h).unwrap().events_fired, 0);
}

#[test]
fn stop_is_asynchronous_and_fails_later_io() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (h, p) = fx.shared();
    from_host(&mut fx, p.mac.unwrap(), 2);
    fx.write(h, &[frame(MacAddress::BROADCAST, p.mac.unwrap(), 60, 0)])
        .unwrap();
    fx.vmnet.stop_interface(fx.clock.now_ns(), h).unwrap();
    let c = fx.vmnet.counters(h).unwrap();
    assert_eq!(
        (c.discarded_rx_on_stop_frames, c.discarded_tx_on_stop_frames),
        (2, 1)
    );
    let stopped = HandleError::Stopped(VmnetReturn::InvalidArgument);
    assert_eq!(fx.read_all(h, 1), Err(ReadError::Handle(stopped)));
    assert_eq!(fx.write(h, &[]), Err(WriteError::Handle(stopped)));
    assert_eq!(fx.vmnet.stop_interface(fx.clock.now_ns(), h), Err(stopped));
    assert_eq!(
        fx.vmnet.set_event_callback(h, InterfaceEvent::ALL),
        Err(stopped)
    );
    assert_eq!(
        fx.vmnet.live_interfaces(),
        1,
        "counts until the stop completes"
    );
    fx.tick(1);
    assert_eq!(
        fx.vmnet.host_recv(&NetworkKey::Shared),
        None,
        "discarded frames never leave"
    );
    fx.tick(VmnetKnobs::default().stop_delay_ns);
    assert_eq!(
        fx.notifications(),
        vec![Notification::StopCompleted {
            handle: h,
            status: VmnetReturn::Success
        }]
    );
    assert_eq!(fx.vmnet.live_interfaces(), 0);
    let err = fx.read_all(h, 1).unwrap_err();
    assert_eq!(err, ReadError::Handle(HandleError::Stale));
    assert_eq!(err.code(), VmnetReturn::InvalidArgument);
    assert_eq!(fx.vmnet.params(h), None);
}

#[test]
fn after_stop_code_is_a_knob_and_stop_needs_a_started_interface() {
    let mut fx = Fixture::new(VmnetKnobs {
        after_stop_status: VmnetReturn::Failure,
        ..VmnetKnobs::default()
    });
    let (h, _) = fx.shared();
    fx.vmnet.stop_interface(fx.clock.now_ns(), h).unwrap();
    assert_eq!(fx.read_all(h, 1).unwrap_err().code(), VmnetReturn::Failure);
    let starting = fx
        .vmnet
        .start_interface(
            fx.clock.now_ns(),
            &InterfaceDesc::new(OperatingMode::Shared, GuestId(0)),
        )
        .unwrap();
    assert_eq!(
        fx.vmnet.stop_interface(fx.clock.now_ns(), starting),
        Err(HandleError::SetupIncomplete)
    );
}

#[test]
fn the_33rd_interface_fails() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    for i in 0..32u32 {
        fx.start_ok(&InterfaceDesc::new(OperatingMode::Shared, GuestId(i / 4)));
    }
    let (h, result) = fx.start(&InterfaceDesc::new(OperatingMode::Shared, GuestId(100)));
    let err = result.unwrap_err();
    assert_eq!(
        err,
        StartError::TooManyInterfaces {
            interfaces_max: 32,
            status: VmnetReturn::Failure
        }
    );
    assert_eq!(err.code(), VmnetReturn::Failure);
    assert_eq!(fx.vmnet.live_interfaces(), 32);
    assert_eq!(
        fx.read_all(h, 1),
        Err(ReadError::Handle(HandleError::Stale))
    );
}

#[test]
fn the_5th_interface_of_a_guest_fails_and_a_stop_frees_a_place() {
    let mut fx = Fixture::new(VmnetKnobs {
        too_many_for_guest_status: VmnetReturn::InvalidAccess,
        ..VmnetKnobs::default()
    });
    let desc = InterfaceDesc::new(OperatingMode::Host, GuestId(7));
    let handles: Vec<_> = (0..4).map(|_| fx.start_ok(&desc).0).collect();
    let err = fx.start(&desc).1.unwrap_err();
    assert_eq!(
        err,
        StartError::TooManyInterfacesForGuest {
            guest: GuestId(7),
            interfaces_per_guest_max: 4,
            status: VmnetReturn::InvalidAccess,
        }
    );
    assert_eq!(
        err.code(),
        VmnetReturn::InvalidAccess,
        "the UNCONFIRMED code is a knob"
    );
    assert!(fx
        .start(&InterfaceDesc::new(OperatingMode::Host, GuestId(8)))
        .1
        .is_ok());
    fx.vmnet
        .stop_interface(fx.clock.now_ns(), handles[0])
        .unwrap();
    assert!(
        fx.start(&desc).1.is_err(),
        "a stopping interface still counts"
    );
    fx.tick(VmnetKnobs::default().stop_delay_ns);
    assert!(fx.start(&desc).1.is_ok());
}

#[test]
fn access_knob_gives_failure_or_not_authorized() {
    for (access, code) in [(Access::Unprivileged, 1001), (Access::NotAuthorized, 1010)] {
        let mut fx = Fixture::new(VmnetKnobs {
            access,
            ..VmnetKnobs::default()
        });
        let err = fx
            .start(&InterfaceDesc::new(OperatingMode::Shared, GuestId(0)))
            .1
            .unwrap_err();
        assert_eq!(err.code().code(), code);
        assert_eq!(fx.vmnet.live_interfaces(), 0);
    }
}

#[test]
fn invalid_descriptors_fail_at_once() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let g = GuestId(0);
    let bad = [
        InterfaceDesc::new(OperatingMode::Bridged, g),
        InterfaceDesc::new(OperatingMode::Bridged, g).shared_interface_name("en9"),
        InterfaceDesc::new(OperatingMode::Bridged, g)
            .shared_interface_name("en0")
            .mtu_bytes(1500),
        InterfaceDesc::new(OperatingMode::Shared, g).network_identifier(Uuid([1; 16])),
        InterfaceDesc::new(OperatingMode::Shared, g).mtu_bytes(100),
    ];
    for desc in &bad {
        let err = fx.vmnet.start_interface(0, desc).unwrap_err();
        assert!(matches!(err, StartError::InvalidDesc(_)), "{desc:?}");
        assert_eq!(err.code(), VmnetReturn::InvalidArgument);
    }
    assert_eq!(fx.vmnet.live_interfaces(), 0);
    let bridged = InterfaceDesc::new(OperatingMode::Bridged, g).shared_interface_name("en0");
    let (_, p) = fx.start_ok(&bridged);
    assert_eq!((p.mtu_bytes, p.ipv4, p.nat66_prefix), (1500, None, None));
}

#[test]
fn isolation_blocks_interface_to_interface_but_not_the_host() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0)).isolation(true);
    let (a, pa) = fx.start_ok(&desc);
    let (b, pb) = fx.start_ok(&desc);
    fx.write(a, &[frame(MacAddress::BROADCAST, pa.mac.unwrap(), 60, 0)])
        .unwrap();
    fx.write(a, &[frame(pb.mac.unwrap(), pa.mac.unwrap(), 60, 0)])
        .unwrap();
    fx.tick(1);
    assert!(fx.read_all(b, 8).unwrap().is_empty());
    assert_eq!(
        std::iter::from_fn(|| fx.vmnet.host_recv(&NetworkKey::Shared)).count(),
        2,
        "the host side sees both (b unknown, so the unicast floods to the uplink)"
    );
    from_host(&mut fx, MacAddress::BROADCAST, 1);
    assert_eq!(fx.read_all(a, 8).unwrap().len(), 1);
    assert_eq!(fx.read_all(b, 8).unwrap().len(), 1);
}

#[test]
fn networks_are_separate() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let n1 = InterfaceDesc::new(OperatingMode::Host, GuestId(0)).network_identifier(Uuid([1; 16]));
    let n2 = InterfaceDesc::new(OperatingMode::Host, GuestId(0)).network_identifier(Uuid([2; 16]));
    let (a, pa) = fx.start_ok(&n1);
    let (b, _) = fx.start_ok(&n2);
    let (c, pc) = fx.start_ok(&InterfaceDesc::new(OperatingMode::Shared, GuestId(0)));
    assert_eq!(pa.ipv4, None, "network-identifier networks have no DHCP");
    assert_eq!(pc.ipv4.unwrap().start_address.to_string(), "192.168.64.1");
    fx.write(a, &[frame(MacAddress::BROADCAST, pa.mac.unwrap(), 60, 0)])
        .unwrap();
    fx.tick(1);
    assert!(fx.read_all(b, 8).unwrap().is_empty());
    assert!(fx.read_all(c, 8).unwrap().is_empty());
    assert!(fx
        .vmnet
        .host_recv(&NetworkKey::HostIsolated(Uuid([1; 16])))
        .is_some());
    assert_eq!(
        fx.vmnet
            .host_send(&NetworkKey::Bridged("en0".into()), &[0; 60]),
        Err(vnic_sim::vmnet::HostSendError::NoSuchNetwork)
    );
}

#[test]
fn receive_buffer_overflow_is_counted() {
    let mut fx = Fixture::new(VmnetKnobs {
        rx_buffer_frames_max: 2,
        ..VmnetKnobs::default()
    });
    let (h, p) = fx.shared();
    from_host(&mut fx, p.mac.unwrap(), 5);
    let c = fx.vmnet.counters(h).unwrap();
    assert_eq!((c.arrived_frames, c.dropped_rx_full_frames), (2, 3));
}

/// A busy little run with every random choice in play; returns its trace.
fn traced_run(seed: u64) -> Vec<String> {
    let mut fx = Fixture::seeded(
        VmnetKnobs {
            start_delay_jitter_ns: 5 * NS_PER_MS,
            estimate: Estimate::Jitter { error_max: 3 },
            ..VmnetKnobs::default()
        },
        seed,
    );
    let mut trace = Vec::new();
    let mut handles = Vec::new();
    for g in 0..3 {
        let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(g));
        handles.push(fx.vmnet.start_interface(fx.clock.now_ns(), &desc).unwrap());
    }
    let mut macs = Vec::new();
    for _ in 0..20 {
        fx.tick(NS_PER_MS);
        for n in fx.notifications() {
            if let Notification::StartCompleted {
                result: Ok(p),
                handle,
            } = &n
            {
                macs.push((*handle, p.mac.unwrap()));
                fx.vmnet
                    .set_event_callback(*handle, InterfaceEvent::ALL)
                    .unwrap();
            }
            trace.push(format!("{:>9} {n:?}", fx.clock.now_ns()));
        }
        for &(h, mac) in &macs {
            fx.write(h, &[frame(MacAddress::BROADCAST, mac, 64, 0)])
                .unwrap();
            let got = fx.read_all(h, 2).unwrap().len();
            trace.push(format!("{h:?} read {got}"));
        }
    }
    trace
}

#[test]
fn same_seed_same_run() {
    let a = traced_run(1234);
    assert!(a.len() > 40, "the run did something");
    assert_eq!(a, traced_run(1234));
    assert_ne!(a, traced_run(4321));
}

// ---- the source-IPv4 rule -------------------------------------------------------------------

/// A QEMU-style guest MAC (allocate_mac = false).
const GUEST_MAC: MacAddress = MacAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn udp_from(src_mac: MacAddress, src: Ipv4Addr) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src_mac.0, MacAddress::BROADCAST.0)
        .ipv4(src.octets(), [192, 168, 64, 1], 64)
        .udp(5000, 5001);
    let mut out = Vec::new();
    builder.write(&mut out, &[0xab; 32]).unwrap();
    out
}

fn with_ether_type(mut frame: Vec<u8>, ether_type: u16) -> Vec<u8> {
    frame[12..14].copy_from_slice(&ether_type.to_be_bytes());
    frame
}

/// Writes `frame` on `h` (the write must succeed) and says whether the host side got it.
#[allow(
    clippy::needless_pass_by_value,
    reason = "call sites build the frame inline"
)]
fn reaches_host(fx: &mut Fixture, h: InterfaceHandle, key: &NetworkKey, frame: Vec<u8>) -> bool {
    assert_eq!(
        fx.vmnet.write(h, &[TxDesc::frame(&frame)]),
        Ok(1),
        "the write itself succeeds"
    );
    fx.tick(1);
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| fx.vmnet.host_recv(key)).collect();
    assert!(got.len() <= 1);
    got.into_iter().next().is_some_and(|f| f == frame)
}

fn qemu_guest(mode: OperatingMode) -> InterfaceDesc {
    InterfaceDesc::new(mode, GuestId(0)).allocate_mac(false)
}

#[test]
fn source_ip_rule_drops_unleased_ipv4_silently_and_counts_it() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let key = NetworkKey::Shared;
    let (h, p) = fx.start_ok(&qemu_guest(OperatingMode::Shared));
    assert_eq!(p.mac, None);
    let leased = v4("192.168.64.5");
    assert!(!reaches_host(&mut fx, h, &key, udp_from(GUEST_MAC, leased)));
    assert_eq!(fx.vmnet.counters(h).unwrap().dropped_source_ip_frames, 1);
    assert!(
        reaches_host(&mut fx, h, &key, udp_from(GUEST_MAC, Ipv4Addr::UNSPECIFIED)),
        "DHCP's 0.0.0.0 passes"
    );
    let arp = with_ether_type(udp_from(GUEST_MAC, leased), 0x0806);
    assert!(reaches_host(&mut fx, h, &key, arp), "ARP passes");
    let ipv6 = with_ether_type(udp_from(GUEST_MAC, leased), 0x86dd);
    assert!(
        reaches_host(&mut fx, h, &key, ipv6),
        "IPv6 passes (UNCONFIRMED)"
    );

    fx.vmnet.set_lease(&key, GUEST_MAC, Some(leased));
    assert_eq!(fx.vmnet.lease(&key, GUEST_MAC), Some(leased));
    assert!(reaches_host(&mut fx, h, &key, udp_from(GUEST_MAC, leased)));
    assert!(!reaches_host(
        &mut fx,
        h,
        &key,
        udp_from(GUEST_MAC, v4("192.168.64.6"))
    ));
    let other_mac = MacAddress([0x52, 0x54, 0, 0, 0, 9]);
    assert!(
        !reaches_host(&mut fx, h, &key, udp_from(other_mac, leased)),
        "the lease belongs to a MAC"
    );
    let mut malformed = udp_from(GUEST_MAC, leased);
    malformed[14] = 0x35; // version 3
    assert!(!reaches_host(&mut fx, h, &key, malformed));
    fx.vmnet.set_lease(&key, GUEST_MAC, None);
    assert!(!reaches_host(&mut fx, h, &key, udp_from(GUEST_MAC, leased)));

    let c = fx.vmnet.counters(h).unwrap();
    assert_eq!((c.written_frames, c.dropped_source_ip_frames), (9, 5));
}

#[test]
fn source_ip_rule_applies_to_interface_to_interface_traffic_too() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let (a, _) = fx.start_ok(&qemu_guest(OperatingMode::Host));
    let (b, _) = fx.shared_on_host();
    fx.write(a, &[udp_from(GUEST_MAC, v4("192.168.65.7"))])
        .unwrap();
    fx.tick(1);
    assert!(fx.read_all(b, 4).unwrap().is_empty());
    fx.vmnet
        .set_lease(&NetworkKey::Host, GUEST_MAC, Some(v4("192.168.65.7")));
    fx.write(a, &[udp_from(GUEST_MAC, v4("192.168.65.7"))])
        .unwrap();
    fx.tick(1);
    assert_eq!(fx.read_all(b, 4).unwrap().len(), 1);
}

impl Fixture {
    /// A second host-mode interface with a vmnet MAC.
    fn shared_on_host(&mut self) -> (InterfaceHandle, InterfaceParams) {
        self.start_ok(&InterfaceDesc::new(OperatingMode::Host, GuestId(1)))
    }
}

#[test]
fn source_ip_rule_defaults_per_network_and_knob() {
    let spoofed = || udp_from(GUEST_MAC, v4("10.9.9.9"));
    // Defaults: enforced with vmnet DHCP (shared, host), off without (UNCONFIRMED).
    let mut fx = Fixture::new(VmnetKnobs::default());
    let id = Uuid([3; 16]);
    let isolated = qemu_guest(OperatingMode::Host).network_identifier(id);
    let (h, _) = fx.start_ok(&isolated);
    assert!(reaches_host(
        &mut fx,
        h,
        &NetworkKey::HostIsolated(id),
        spoofed()
    ));
    let (b, _) = fx.start_ok(&qemu_guest(OperatingMode::Bridged).shared_interface_name("en0"));
    assert!(reaches_host(
        &mut fx,
        b,
        &NetworkKey::Bridged("en0".into()),
        spoofed()
    ));
    let (s, _) = fx.start_ok(&qemu_guest(OperatingMode::Shared));
    assert!(!reaches_host(&mut fx, s, &NetworkKey::Shared, spoofed()));
    assert_eq!(
        fx.vmnet.source_ip_rule(&NetworkKey::Host),
        SourceIpRule::Enforce
    );

    // Knob: off everywhere.
    let mut fx = Fixture::new(VmnetKnobs {
        source_ip_rule: SourceIpRules::OFF,
        ..VmnetKnobs::default()
    });
    let (s, _) = fx.start_ok(&qemu_guest(OperatingMode::Shared));
    assert!(reaches_host(&mut fx, s, &NetworkKey::Shared, spoofed()));
    assert_eq!(fx.vmnet.counters(s).unwrap().dropped_source_ip_frames, 0);

    // Knob: enforced even without DHCP.
    let mut fx = Fixture::new(VmnetKnobs {
        source_ip_rule: SourceIpRules {
            with_vmnet_dhcp: SourceIpRule::Enforce,
            without_vmnet_dhcp: SourceIpRule::Enforce,
        },
        ..VmnetKnobs::default()
    });
    let (h, _) = fx.start_ok(&isolated);
    assert!(!reaches_host(
        &mut fx,
        h,
        &NetworkKey::HostIsolated(id),
        spoofed()
    ));
}

// ---- macOS 26 network objects ---------------------------------------------------------------

fn subnet_cfg(mode: OperatingMode, network: &str, prefix_len: u8) -> NetConfig {
    let mut cfg = NetConfig::new(mode);
    let mask = Ipv4Addr::from(u32::MAX << (32 - prefix_len));
    cfg.set_ipv4_subnet(v4(network), mask).unwrap();
    cfg
}

impl Fixture {
    /// Starts an interface on a configured network and runs the clock until it completes.
    fn start_on(
        &mut self,
        net: &NetworkRef,
        desc: &InterfaceDesc,
    ) -> (InterfaceHandle, Result<InterfaceParams, StartError>) {
        let handle = self
            .vmnet
            .interface_start_with_network(self.clock.now_ns(), net, desc)
            .unwrap();
        for _ in 0..1000 {
            self.tick(NS_PER_MS);
            for n in self.notifications() {
                if let Notification::StartCompleted { handle: h, result } = n {
                    assert_eq!(h, handle);
                    return (handle, result);
                }
            }
        }
        panic!("start never completed");
    }

    /// Stops `h` and runs the clock until the stop completes.
    fn stop(&mut self, h: InterfaceHandle) {
        self.vmnet.stop_interface(self.clock.now_ns(), h).unwrap();
        for _ in 0..1000 {
            self.tick(NS_PER_MS);
            if self
                .notifications()
                .iter()
                .any(|n| matches!(n, Notification::StopCompleted { handle, .. } if *handle == h))
            {
                return;
            }
        }
        panic!("stop never completed");
    }
}

#[test]
fn network_create_validates_and_reserves_its_subnet() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let first = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Shared, "192.168.80.0", 24))
        .unwrap();
    let busy = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Host, "192.168.80.0", 24))
        .unwrap_err();
    assert_eq!(busy.code(), VmnetReturn::SharingServiceBusy);
    assert_eq!(busy.code().code(), 1009);
    let wider = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Host, "192.168.0.0", 16))
        .unwrap_err();
    assert!(matches!(
        wider,
        NetworkCreateError::SubnetInUse { prefix_len: 16, .. }
    ));
    let narrower = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Host, "192.168.80.128", 25));
    assert!(narrower.is_err(), "a /25 inside the /24 overlaps");
    let other = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Host, "192.168.81.0", 24))
        .unwrap();
    assert_ne!(first.id(), other.id());
    assert_eq!(fx.vmnet.configured_networks(), 2);

    let invalid = fx
        .vmnet
        .network_create(&NetConfig::new(OperatingMode::Bridged))
        .unwrap_err();
    assert!(matches!(invalid, NetworkCreateError::InvalidConfig(_)));
    assert_eq!(invalid.code(), VmnetReturn::InvalidArgument);
    let mut unknown = NetConfig::new(OperatingMode::Bridged);
    unknown.set_external_interface("en7").unwrap();
    assert_eq!(
        fx.vmnet.network_create(&unknown),
        Err(NetworkCreateError::UnknownExternalInterface("en7".into()))
    );
    let mut bridged = NetConfig::new(OperatingMode::Bridged);
    bridged.set_external_interface("en0").unwrap();
    let bridged = fx.vmnet.network_create(&bridged).unwrap();
    assert!(
        fx.vmnet
            .network_create(&NetConfig::new(OperatingMode::Host))
            .is_ok(),
        "bridged networks reserve no vmnet subnet"
    );

    // Releasing the last reference frees the subnet.
    let first_key = first.key();
    fx.vmnet.network_release(first);
    assert_eq!(fx.vmnet.network_config(&first_key), None);
    let again = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Shared, "192.168.80.0", 24))
        .unwrap();
    assert_ne!(again.key(), first_key, "ids are not reused");
    fx.vmnet.network_release(again);
    fx.vmnet.network_release(other);
    fx.vmnet.network_release(bridged);
}

#[test]
fn network_create_follows_the_access_knob() {
    for (access, code) in [
        (Access::Unprivileged, VmnetReturn::Failure),
        (Access::NotAuthorized, VmnetReturn::NotAuthorized),
    ] {
        let mut fx = Fixture::new(VmnetKnobs {
            access,
            ..VmnetKnobs::default()
        });
        let err = fx
            .vmnet
            .network_create(&NetConfig::new(OperatingMode::Shared))
            .unwrap_err();
        assert_eq!(err.code(), code);
    }
}

#[test]
fn start_with_network_takes_mtu_and_dhcp_range_from_the_configuration() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let mut cfg = subnet_cfg(OperatingMode::Shared, "10.1.2.0", 24);
    cfg.set_mtu(9000).unwrap();
    let net = fx.vmnet.network_create(&cfg).unwrap();
    assert_eq!(fx.vmnet.network_config(&net.key()), Some(&cfg));
    // Every key but allocate-MAC and isolation is ignored: mode, MTU, id.
    let id = Uuid([0x42; 16]);
    let desc = InterfaceDesc::new(OperatingMode::Host, GuestId(0))
        .interface_id(id)
        .mtu_bytes(1500);
    let (h1, p1) = fx.start_on(&net, &desc);
    let p1 = p1.unwrap();
    assert_eq!((p1.mtu_bytes, p1.max_packet_size_bytes), (9000, 9014));
    let range = p1.ipv4.unwrap();
    assert_eq!(
        (range.start_address, range.end_address, range.subnet_mask),
        (v4("10.1.2.1"), v4("10.1.2.254"), v4("255.255.255.0"))
    );
    assert_ne!(p1.interface_id, id, "the interface id is ignored");
    assert!(p1.nat66_prefix.is_some_and(|p| p.octets()[0] == 0xfd));
    fx.stop(h1);
    let (_, p2) = fx.start_on(&net, &desc);
    let p2 = p2.unwrap();
    assert_ne!(p1.mac, p2.mac, "a random MAC each start, whatever the id");
    assert!(p2.mac.unwrap().is_locally_administered());
    let (_, p3) = fx.start_on(&net, &desc.clone().allocate_mac(false));
    assert_eq!(p3.unwrap().mac, None);

    let mut no_dhcp = subnet_cfg(OperatingMode::Host, "10.1.3.0", 24);
    no_dhcp.disable_dhcp();
    let quiet = fx.vmnet.network_create(&no_dhcp).unwrap();
    let (_, p) = fx.start_on(
        &quiet,
        &InterfaceDesc::new(OperatingMode::Shared, GuestId(1)),
    );
    let p = p.unwrap();
    assert_eq!((p.ipv4, p.nat66_prefix, p.mtu_bytes), (None, None, 1500));
}

#[test]
fn start_with_network_honours_isolation_and_the_limits() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let net = fx
        .vmnet
        .network_create(&NetConfig::new(OperatingMode::Host))
        .unwrap();
    let key = net.key();
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0)).isolation(true);
    let (a, pa) = fx.start_on(&net, &desc);
    let (b, _) = fx.start_on(&net, &desc);
    let mac_a = pa.unwrap().mac.unwrap();
    fx.write(a, &[frame(MacAddress::BROADCAST, mac_a, 60, 0)])
        .unwrap();
    fx.tick(1);
    assert!(fx.read_all(b, 4).unwrap().is_empty(), "isolated");
    assert!(fx.vmnet.host_recv(&key).is_some(), "the host still sees it");
    // The guest already has two; two more fit, the fifth fails in the completion.
    for _ in 0..2 {
        assert!(fx.start_on(&net, &desc).1.is_ok());
    }
    let (_, fifth) = fx.start_on(&net, &desc);
    assert!(matches!(
        fifth,
        Err(StartError::TooManyInterfacesForGuest { .. })
    ));
    // A network of another vmnet fails at once.
    let mut other = SimVmnet::new(VmnetKnobs::default(), &SimRng::new(1));
    let _one = other
        .network_create(&subnet_cfg(OperatingMode::Host, "10.5.0.0", 24))
        .unwrap();
    let two = other
        .network_create(&subnet_cfg(OperatingMode::Host, "10.6.0.0", 24))
        .unwrap();
    let err = fx
        .vmnet
        .interface_start_with_network(fx.clock.now_ns(), &two, &desc)
        .unwrap_err();
    assert_eq!(err, StartError::NoSuchNetwork);
    assert_eq!(err.code(), VmnetReturn::InvalidArgument);
}

#[test]
fn the_last_interface_stop_releases_the_network() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let cfg = subnet_cfg(OperatingMode::Shared, "172.16.5.0", 24);
    let net = fx.vmnet.network_create(&cfg).unwrap();
    let key = net.key();
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0));
    let (a, _) = fx.start_on(&net, &desc);
    let (b, _) = fx.start_on(&net, &desc);
    assert_eq!(fx.vmnet.network_references(&key), Some(3));
    fx.vmnet.network_release(net);
    assert_eq!(fx.vmnet.network_references(&key), Some(2));
    assert!(
        fx.vmnet.network_config(&key).is_some(),
        "interfaces hold it"
    );
    assert!(fx.vmnet.host_send(&key, &[0xff; 60]).is_ok());
    assert!(
        fx.vmnet.network_create(&cfg).is_err(),
        "the subnet is still reserved"
    );
    fx.stop(a);
    assert_eq!(fx.vmnet.network_references(&key), Some(1));
    fx.stop(b);
    assert_eq!(fx.vmnet.network_references(&key), None);
    assert_eq!(fx.vmnet.network_config(&key), None);
    assert_eq!(fx.vmnet.configured_networks(), 0);
    assert_eq!(
        fx.vmnet.host_send(&key, &[0xff; 60]),
        Err(vnic_sim::vmnet::HostSendError::NoSuchNetwork)
    );
    let again = fx.vmnet.network_create(&cfg).unwrap();
    fx.vmnet.network_release(again);
}

#[test]
fn a_failed_start_also_gives_its_reference_back() {
    let mut fx = Fixture::new(VmnetKnobs {
        interfaces_max: 0,
        ..VmnetKnobs::default()
    });
    let net = fx
        .vmnet
        .network_create(&NetConfig::new(OperatingMode::Shared))
        .unwrap();
    let key = net.key();
    fx.vmnet.network_release(net);
    assert_eq!(fx.vmnet.network_references(&key), None);
    let net = fx
        .vmnet
        .network_create(&NetConfig::new(OperatingMode::Shared))
        .unwrap();
    let key = net.key();
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0));
    let h = fx
        .vmnet
        .interface_start_with_network(0, &net, &desc)
        .unwrap();
    fx.vmnet.network_release(net);
    assert_eq!(
        fx.vmnet.network_references(&key),
        Some(1),
        "the start holds it"
    );
    fx.tick(10 * NS_PER_MS);
    let failed = fx.notifications().into_iter().any(
        |n| matches!(n, Notification::StartCompleted { handle, result: Err(_) } if handle == h),
    );
    assert!(failed);
    assert_eq!(fx.vmnet.network_config(&key), None);
}

#[test]
fn serialization_reaches_the_same_network() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let mut cfg = subnet_cfg(OperatingMode::Shared, "192.168.90.0", 24);
    cfg.set_mtu(4000).unwrap();
    let net = fx.vmnet.network_create(&cfg).unwrap();
    let token = fx.vmnet.network_copy_serialization(&net).unwrap();
    assert!(token.as_str().contains("mtu 4000"));
    let twin = fx.vmnet.network_create_with_serialization(&token).unwrap();
    assert_eq!(twin.key(), net.key());
    assert_eq!(fx.vmnet.network_references(&net.key()), Some(2));
    // An interface started through the twin is on the same L2 as one through the original.
    let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0));
    let (a, pa) = fx.start_on(&net, &desc);
    let (b, pb) = fx.start_on(&twin, &desc);
    assert_eq!(pb.as_ref().unwrap().mtu_bytes, 4000);
    fx.write(
        a,
        &[frame(
            MacAddress::BROADCAST,
            pa.unwrap().mac.unwrap(),
            60,
            0,
        )],
    )
    .unwrap();
    fx.tick(1);
    assert_eq!(fx.read_all(b, 4).unwrap().len(), 1);

    // Damaged tokens.
    let mut damaged = |text: String| {
        fx.vmnet
            .network_create_with_serialization(&NetworkSerialization::from_text(text))
            .expect_err("a damaged token must fail")
    };
    let text = token.as_str().to_owned();
    assert_eq!(
        damaged(text.replacen("vnic-sim vmnet network", "something else", 1)),
        NetworkFromSerializationError::BadHeader
    );
    assert!(matches!(
        damaged(text.replace("mtu 4000", "mtu 99")),
        NetworkFromSerializationError::BadConfig(_)
    ));
    assert_eq!(
        damaged(text.replace("mtu 4000", "mtu 4001")),
        NetworkFromSerializationError::ConfigMismatch(net.id())
    );
    let e = damaged(text.replace(&format!("id {}", net.id()), "id 77"));
    assert_eq!(e, NetworkFromSerializationError::NoSuchNetwork(77));
    assert_eq!(e.code(), VmnetReturn::InvalidArgument);

    // Once every reference and interface is gone, the token no longer resolves.
    let id = net.id();
    fx.vmnet.network_release(net);
    fx.vmnet.network_release(twin);
    fx.stop(a);
    fx.stop(b);
    assert_eq!(
        fx.vmnet.network_create_with_serialization(&token),
        Err(NetworkFromSerializationError::NoSuchNetwork(id))
    );
}

#[test]
fn source_ip_rule_on_configured_networks_follows_their_dhcp() {
    let mut fx = Fixture::new(VmnetKnobs::default());
    let with = fx
        .vmnet
        .network_create(&subnet_cfg(OperatingMode::Shared, "10.20.0.0", 24))
        .unwrap();
    let mut cfg = subnet_cfg(OperatingMode::Shared, "10.21.0.0", 24);
    cfg.disable_dhcp();
    let without = fx.vmnet.network_create(&cfg).unwrap();
    assert_eq!(fx.vmnet.source_ip_rule(&with.key()), SourceIpRule::Enforce);
    assert_eq!(fx.vmnet.source_ip_rule(&without.key()), SourceIpRule::Off);
    let desc = qemu_guest(OperatingMode::Shared);
    let (a, _) = fx.start_on(&with, &desc);
    let (b, _) = fx.start_on(&without, &desc);
    let static_ip = udp_from(GUEST_MAC, v4("10.20.0.50"));
    assert!(!reaches_host(&mut fx, a, &with.key(), static_ip.clone()));
    assert!(reaches_host(&mut fx, b, &without.key(), static_ip.clone()));
    fx.vmnet
        .set_lease(&with.key(), GUEST_MAC, Some(v4("10.20.0.50")));
    assert!(reaches_host(&mut fx, a, &with.key(), static_ip));
}

mod source_ip_property {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Lease(Option<u8>),
        Write { last_octet: u8, ipv4: bool },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            proptest::option::of(0u8..4).prop_map(Step::Lease),
            ((0u8..4), any::<bool>())
                .prop_map(|(last_octet, ipv4)| Step::Write { last_octet, ipv4 }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every written frame reaches the host side exactly when the rule allows it, and every
        /// other one is counted as a source-IPv4 drop.
        #[test]
        fn frames_pass_exactly_when_the_rule_allows(steps in proptest::collection::vec(step(), 1..40)) {
            let mut fx = Fixture::new(VmnetKnobs::default());
            let key = NetworkKey::Shared;
            let (h, _) = fx.start_ok(&qemu_guest(OperatingMode::Shared));
            // Last octet 0 is 0.0.0.0 (DHCP); 1..=3 are 192.168.64.x.
            let addr = |o: u8| if o == 0 { Ipv4Addr::UNSPECIFIED } else { Ipv4Addr::new(192, 168, 64, o) };
            let mut lease: Option<u8> = None;
            let (mut written, mut passed) = (0u64, 0u64);
            for s in steps {
                match s {
                    Step::Lease(o) => {
                        let o = o.filter(|&o| o != 0);
                        fx.vmnet.set_lease(&key, GUEST_MAC, o.map(addr));
                        lease = o;
                    }
                    Step::Write { last_octet, ipv4 } => {
                        let mut f = udp_from(GUEST_MAC, addr(last_octet));
                        if !ipv4 {
                            f = with_ether_type(f, 0x0806);
                        }
                        let allowed = !ipv4 || last_octet == 0 || lease == Some(last_octet);
                        prop_assert_eq!(reaches_host(&mut fx, h, &key, f), allowed);
                        written += 1;
                        passed += u64::from(allowed);
                    }
                }
            }
            let c = fx.vmnet.counters(h).unwrap();
            prop_assert_eq!(c.written_frames, written);
            prop_assert_eq!(c.dropped_source_ip_frames, written - passed);
        }
    }
}
