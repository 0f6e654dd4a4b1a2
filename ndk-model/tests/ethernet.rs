//! The Ethernet service end to end: registration in both forms and every way it can be
//! refused, the link-status rules, control requests dispatched to a fake driver, the
//! multicast bound, and a packet going system → driver → system through each generation's
//! notification (G1 data-available action, G3 actions, G4 Compat actions).
#![cfg(not(loom))]

use std::sync::Arc;

use ndk_model::actions::{
    ActionQueueParam, CompletionActionQueue, DataAvailableSignal, DataQueueDispatchSource,
    DispatchQueue, EnqueueRequester, OfferedPackets, OsAction, PacketQueueCompatRef,
    PacketQueueRef, PacketSlots, RefCon, SignalOutcome, SubmissionActionQueue,
};
use ndk_model::error::IoReturn;
use ndk_model::ethernet::{
    ControlError, DriverCall, DriverCallKind, EthernetInterface, EthernetService,
    EthernetServiceConfig, FakeEthernetDriver, LinkReport, LinkStatusBeforeEnable, MacAddress,
    PacketQueue, RegisterError, RegistrationForm, SelectMediaError, SetHardwareAssistsError,
    SetMtuError, SetMulticastError, WakeOnMagicPacketError, MTU_BYTES_MAX, MTU_BYTES_MIN,
    MULTICAST_LIST_MAX,
};
use ndk_model::link::{HardwareAssists, LinkStatus, MediaOptions, MediaType};
use ndk_model::packet::Packet;
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use ndk_model::queue::{
    DriverRxCompletion, DriverRxSubmission, DriverTxCompletion, DriverTxSubmission, EnqueueRefusal,
    QueueKind, QueueSource, RxCompletionQueue, RxSubmissionQueue, SystemRxSubmission,
    TxCompletionQueue, TxSubmissionQueue,
};
use ndk_model::ring::Ring;

const MAC: MacAddress = MacAddress([0x10, 0x22, 0x33, 0x44, 0x55, 0x66]);
const GIG_FULL: MediaType = MediaType::ETHERNET_1000BASE_T.with_options(MediaOptions::FULL_DUPLEX);

fn pool(name: [u8; 4], packets: u32) -> PacketBufferPool {
    PacketBufferPool::create(PoolConfig::new(name, packets, 2048)).unwrap()
}

fn frame(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

/// Builder for a G1 NIC: one pool and the four driver halves.
struct NicFixture {
    pool_packets: u32,
    capacity: u32,
}

struct Nic {
    pool: PacketBufferPool,
    rxs: RxSubmissionQueue,
    rxc: RxCompletionQueue,
    txs: TxSubmissionQueue,
    txc: TxCompletionQueue,
}

impl NicFixture {
    fn new() -> Self {
        Self {
            pool_packets: 32,
            capacity: 8,
        }
    }

    fn pool_packets(mut self, pool_packets: u32) -> Self {
        self.pool_packets = pool_packets;
        self
    }

    fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    fn build(self) -> Nic {
        let pool = pool(*b"nic1", self.pool_packets);
        Nic {
            rxs: RxSubmissionQueue::create(&pool, self.capacity, 0).unwrap(),
            rxc: RxCompletionQueue::create(&pool, self.capacity, 0).unwrap(),
            txs: TxSubmissionQueue::create(&pool, self.capacity, 0).unwrap(),
            txc: TxCompletionQueue::create(&pool, self.capacity, 0).unwrap(),
            pool,
        }
    }
}

impl Nic {
    fn rings(&self) -> [Arc<Ring<u32>>; 4] {
        [
            Arc::clone(self.rxs.ring()),
            Arc::clone(self.rxc.ring()),
            Arc::clone(self.txs.ring()),
            Arc::clone(self.txc.ring()),
        ]
    }

    fn register(&self, service: &mut EthernetService) -> Result<EthernetInterface, RegisterError> {
        // Deliberately not in QueueKind order: any order is allowed.
        service.register_ethernet_interface(
            MAC,
            &self.pool,
            &[&self.txc, &self.rxs, &self.txs, &self.rxc],
        )
    }
}

/// A service that has reported Auto and 1000BaseT-FDX, as the sample does in `Start`.
fn service_with_media(config: EthernetServiceConfig) -> EthernetService {
    let mut service = EthernetService::new(config);
    service
        .report_available_media_types(&[MediaType::ETHERNET_AUTO, GIG_FULL])
        .unwrap();
    service
}

/// A registered service plus its NIC, interface and a fake that reports link on enable.
fn up_and_running(
    config: EthernetServiceConfig,
) -> (EthernetService, Nic, EthernetInterface, FakeEthernetDriver) {
    let nic = NicFixture::new().build();
    let mut service = service_with_media(config);
    let iface = nic.register(&mut service).unwrap();
    let fake = FakeEthernetDriver::new()
        .with_link_on_enable(LinkStatus::ACTIVE, GIG_FULL)
        .with_auto_media(GIG_FULL)
        .with_queue_rings(nic.rings());
    (service, nic, iface, fake)
}

// ------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------

#[test]
fn g1_registration_hands_the_system_halves_to_the_os() {
    let nic = NicFixture::new().build();
    let mut service = service_with_media(EthernetServiceConfig::default());
    let mut iface = nic.register(&mut service).unwrap();
    assert!(service.is_registered());
    assert_eq!(service.mac_address(), Some(MAC));
    assert_eq!(service.registration_form(), Some(RegistrationForm::OnePool));
    assert_eq!(iface.mac(), MAC);
    assert_eq!(iface.form(), RegistrationForm::OnePool);
    assert_eq!(iface.tx_pool().id(), nic.pool.id());
    assert_eq!(iface.rx_pool().id(), nic.pool.id());
    let q = iface.queues();
    assert_eq!(
        [
            q.rx_submission.kind(),
            q.rx_completion.kind(),
            q.tx_submission.kind(),
            q.tx_completion.kind()
        ],
        QueueKind::ALL
    );
    assert!(Arc::ptr_eq(q.tx_submission.ring(), nic.txs.ring()));
    assert!(Arc::ptr_eq(q.rx_completion.ring(), nic.rxc.ring()));

    // The halves are live: a Tx frame crosses to the driver and its completion comes back.
    let mut nic = nic;
    nic.txs.set_enable(true);
    nic.txc.set_enable(true);
    let mut packet = nic.pool.allocate(Owner::System).unwrap();
    nic.pool
        .packet_mut(&mut packet)
        .unwrap()
        .write_frame(0, &frame(1, 60))
        .unwrap();
    iface
        .queues_mut()
        .tx_submission
        .enqueue_packet(packet)
        .unwrap();
    let sent = nic
        .txs
        .dequeue_packet()
        .unwrap()
        .expect("the driver sees the frame");
    assert_eq!(nic.pool.packet(&sent).unwrap().data(), &frame(1, 60)[..]);
    nic.txc.enqueue_packet(sent).unwrap();
    let done = iface
        .queues_mut()
        .tx_completion
        .dequeue_packet()
        .unwrap()
        .unwrap();
    nic.pool.system_free(done).unwrap();
    assert!(nic.pool.leak_report().is_clean());
}

#[test]
fn g3_registration_puts_tx_and_rx_queues_on_their_own_pools() {
    let tx_pool = pool(*b"txpl", 8);
    let rx_pool = pool(*b"rxpl", 16);
    let txs = TxSubmissionQueue::create(&tx_pool, 4, 0).unwrap();
    let txc = TxCompletionQueue::create(&tx_pool, 4, 0).unwrap();
    let rxs = RxSubmissionQueue::create(&rx_pool, 8, 1).unwrap();
    let rxc = RxCompletionQueue::create(&rx_pool, 8, 1).unwrap();
    let mut service = EthernetService::default();
    let iface = service
        .register_ethernet_interface_with_pools(MAC, &[&rxc, &txs, &rxs, &txc], &tx_pool, &rx_pool)
        .unwrap();
    assert_eq!(iface.form(), RegistrationForm::TxRxPools);
    assert_eq!(
        service.registration_form(),
        Some(RegistrationForm::TxRxPools)
    );
    assert_eq!(iface.tx_pool().id(), tx_pool.id());
    assert_eq!(iface.rx_pool().id(), rx_pool.id());
    assert_eq!(iface.queues().tx_completion.pool().id(), tx_pool.id());
    assert_eq!(iface.queues().rx_submission.pool().id(), rx_pool.id());
    assert_eq!(iface.queues().rx_submission.queue_id(), 1);
    let queues = iface.into_queues();
    assert_eq!(queues.rx_completion.capacity(), 8);
}

#[test]
fn g3_registration_accepts_one_pool_passed_twice_if_it_covers_all_four_queues() {
    let shared = pool(*b"both", 16);
    let nic_queues = |p: &PacketBufferPool| {
        (
            RxSubmissionQueue::create(p, 4, 0).unwrap(),
            RxCompletionQueue::create(p, 4, 0).unwrap(),
            TxSubmissionQueue::create(p, 4, 0).unwrap(),
            TxCompletionQueue::create(p, 4, 0).unwrap(),
        )
    };
    let (rxs, rxc, txs, txc) = nic_queues(&shared);
    let mut service = EthernetService::default();
    service
        .register_ethernet_interface_with_pools(MAC, &[&rxs, &rxc, &txs, &txc], &shared, &shared)
        .unwrap();

    // 12 packets cover each pair (8) but not all four queues (16).
    let small = pool(*b"smal", 12);
    let (rxs, rxc, txs, txc) = nic_queues(&small);
    let err = EthernetService::default()
        .register_ethernet_interface_with_pools(MAC, &[&rxs, &rxc, &txs, &txc], &small, &small)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::PoolTooSmall {
                packet_count: 12,
                queue_slots: 16,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn registration_refuses_missing_queue_kinds() {
    let nic = NicFixture::new().build();
    let mut service = EthernetService::default();
    let err = service
        .register_ethernet_interface(MAC, &nic.pool, &[&nic.rxs, &nic.rxc, &nic.txc])
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::MissingQueue {
                kind: QueueKind::TxSubmission
            }
        ),
        "{err}"
    );
    assert_eq!(IoReturn::from(&err), IoReturn::BadArgument);
    let err = service
        .register_ethernet_interface(MAC, &nic.pool, &[])
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::MissingQueue {
                kind: QueueKind::RxSubmission
            }
        ),
        "{err}"
    );
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    assert!(!service.is_registered());
}

#[test]
fn registration_refuses_duplicate_queue_kinds() {
    let nic = NicFixture::new().build();
    let second_txs = TxSubmissionQueue::create(&nic.pool, 8, 1).unwrap();
    let mut service = EthernetService::default();
    // Four queues, but two Tx submissions (and so no Rx completion).
    let err = service
        .register_ethernet_interface(MAC, &nic.pool, &[&nic.rxs, &nic.txs, &second_txs, &nic.txc])
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::DuplicateQueue {
                kind: QueueKind::TxSubmission
            }
        ),
        "{err}"
    );
    assert_eq!(IoReturn::from(&err), IoReturn::BadArgument);
    // Five queues: all four kinds plus a repeat.
    let err = service
        .register_ethernet_interface(
            MAC,
            &nic.pool,
            &[&nic.rxs, &nic.rxc, &nic.txs, &nic.txc, &second_txs],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::DuplicateQueue {
                kind: QueueKind::TxSubmission
            }
        ),
        "{err}"
    );
    // The same queue twice is a duplicate too.
    let err = service
        .register_ethernet_interface(MAC, &nic.pool, &[&nic.rxs, &nic.rxs, &nic.txs, &nic.txc])
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::DuplicateQueue {
                kind: QueueKind::RxSubmission
            }
        ),
        "{err}"
    );
    assert!(!service.is_registered());
}

#[test]
fn g1_registration_refuses_a_queue_on_another_pool() {
    let nic = NicFixture::new().build();
    let other = pool(*b"othr", 32);
    let stray_rxc = RxCompletionQueue::create(&other, 8, 0).unwrap();
    let err = EthernetService::default()
        .register_ethernet_interface(MAC, &nic.pool, &[&nic.rxs, &stray_rxc, &nic.txs, &nic.txc])
        .unwrap_err();
    match &err {
        RegisterError::WrongPool {
            kind,
            queue_pool_id,
            expected_pool_id,
        } => {
            assert_eq!(*kind, QueueKind::RxCompletion);
            assert_eq!(*queue_pool_id, other.id());
            assert_eq!(*expected_pool_id, nic.pool.id());
        }
        other => panic!("expected WrongPool, got {other}"),
    }
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
}

#[test]
fn g3_registration_refuses_queues_on_swapped_pools() {
    let tx_pool = pool(*b"txpl", 16);
    let rx_pool = pool(*b"rxpl", 16);
    let txs = TxSubmissionQueue::create(&tx_pool, 4, 0).unwrap();
    let txc = TxCompletionQueue::create(&tx_pool, 4, 0).unwrap();
    let rxs = RxSubmissionQueue::create(&rx_pool, 4, 0).unwrap();
    let rxc = RxCompletionQueue::create(&rx_pool, 4, 0).unwrap();
    let mut service = EthernetService::default();
    let err = service
        .register_ethernet_interface_with_pools(MAC, &[&rxs, &rxc, &txs, &txc], &rx_pool, &tx_pool)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::WrongPool {
                kind: QueueKind::RxSubmission,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(IoReturn::from(&err), IoReturn::BadArgument);
    // An Rx queue on the Tx pool, with the pools in the right order.
    let stray_rxc = RxCompletionQueue::create(&tx_pool, 4, 0).unwrap();
    let err = service
        .register_ethernet_interface_with_pools(
            MAC,
            &[&rxs, &stray_rxc, &txs, &txc],
            &tx_pool,
            &rx_pool,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::WrongPool {
                kind: QueueKind::RxCompletion,
                ..
            }
        ),
        "{err}"
    );
    assert!(!service.is_registered());
}

#[test]
fn registration_refuses_a_pool_smaller_than_its_queues() {
    // G1: 4 queues × 8 slots need 32 packets.
    let nic = NicFixture::new().pool_packets(31).capacity(8).build();
    let err = nic.register(&mut EthernetService::default()).unwrap_err();
    match &err {
        RegisterError::PoolTooSmall {
            pool_id,
            packet_count,
            queue_slots,
        } => {
            assert_eq!(
                (*pool_id, *packet_count, *queue_slots),
                (nic.pool.id(), 31, 32)
            );
        }
        other => panic!("expected PoolTooSmall, got {other}"),
    }
    assert_eq!(IoReturn::from(&err), IoReturn::BadArgument);
    let exact = NicFixture::new().pool_packets(32).capacity(8).build();
    exact.register(&mut EthernetService::default()).unwrap();

    // G3: each pool covers only its own two queues.
    let tx_pool = pool(*b"txpl", 8);
    let rx_pool = pool(*b"rxpl", 15);
    let txs = TxSubmissionQueue::create(&tx_pool, 4, 0).unwrap();
    let txc = TxCompletionQueue::create(&tx_pool, 4, 0).unwrap();
    let rxs = RxSubmissionQueue::create(&rx_pool, 8, 0).unwrap();
    let rxc = RxCompletionQueue::create(&rx_pool, 8, 0).unwrap();
    let err = EthernetService::default()
        .register_ethernet_interface_with_pools(MAC, &[&rxs, &rxc, &txs, &txc], &tx_pool, &rx_pool)
        .unwrap_err();
    match &err {
        RegisterError::PoolTooSmall {
            pool_id,
            packet_count,
            queue_slots,
        } => {
            assert_eq!(
                (*pool_id, *packet_count, *queue_slots),
                (rx_pool.id(), 15, 16)
            );
        }
        other => panic!("expected PoolTooSmall, got {other}"),
    }
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
}

#[test]
fn a_second_registration_on_one_service_is_refused() {
    let first = NicFixture::new().build();
    let second = NicFixture::new().build();
    let mut service = EthernetService::default();
    first.register(&mut service).unwrap();
    let err = second.register(&mut service).unwrap_err();
    assert!(
        matches!(err, RegisterError::AlreadyRegistered { mac: MAC }),
        "{err}"
    );
    assert_eq!(IoReturn::from(&err), IoReturn::Unsupported);
    // The refused NIC's system halves were not taken: another service can register it.
    second.register(&mut EthernetService::default()).unwrap();
}

#[test]
fn registration_refuses_group_and_zero_station_addresses() {
    let nic = NicFixture::new().build();
    let mut service = EthernetService::default();
    for mac in [
        MacAddress::BROADCAST,
        MacAddress([0x01, 0, 0x5e, 0, 0, 1]),
        MacAddress::ZERO,
    ] {
        let err = service
            .register_ethernet_interface(mac, &nic.pool, &[&nic.rxs, &nic.rxc, &nic.txs, &nic.txc])
            .unwrap_err();
        assert!(
            matches!(err, RegisterError::BadMacAddress { mac: m } if m == mac),
            "{err}"
        );
        assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    }
    assert!(!service.is_registered());
    nic.register(&mut service).unwrap();
}

#[test]
fn registration_refuses_a_queue_whose_system_half_is_already_taken() {
    let nic = NicFixture::new().build();
    // Someone else already holds the system side of the Rx submission queue.
    let _squatter = SystemRxSubmission::attach(nic.rxs.ring(), &nic.pool).unwrap();
    let mut service = EthernetService::default();
    let err = nic.register(&mut service).unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::SystemHalf {
                kind: QueueKind::RxSubmission,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the ring's error is the source"
    );
    assert_eq!(IoReturn::from(&err), IoReturn::Busy);
    assert!(!service.is_registered());
}

// ------------------------------------------------------------------------------------------
// Link status
// ------------------------------------------------------------------------------------------

#[test]
fn link_status_is_refused_for_media_never_reported() {
    let (mut service, _nic, _iface, _fake) = up_and_running(EthernetServiceConfig::default());
    let err = service
        .report_link_status(LinkStatus::ACTIVE, MediaType::ETHERNET_10GBASE_T)
        .unwrap_err();
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    let fresh_err = EthernetService::default()
        .report_link_status(LinkStatus::ACTIVE, MediaType::ETHERNET_AUTO)
        .unwrap_err();
    assert_eq!(
        IoReturn::from(fresh_err),
        IoReturn::BadArgument,
        "nothing reported at all"
    );
}

#[test]
fn link_status_before_enable_is_discarded_and_the_enable_report_is_recorded() {
    let (mut service, _nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    // SMSC95xx reports in Start, before enable: discarded (default rule).
    assert_eq!(
        service.report_link_status(LinkStatus::ACTIVE, GIG_FULL),
        Ok(LinkReport::Discarded)
    );
    assert_eq!(service.link_status(), LinkStatus::INVALID);
    assert_eq!(service.link().link_reports_discarded(), 1);
    // The driver re-reports from SetInterfaceEnable(true): recorded.
    service.set_interface_enable(&mut fake, true).unwrap();
    assert_eq!(service.link_status(), LinkStatus::ACTIVE);
    assert_eq!(service.active_media(), Some(GIG_FULL));
    assert_eq!(service.link().link_reports_recorded(), 1);
    // Link down while enabled is recorded too.
    assert_eq!(
        service.report_link_status(LinkStatus::INACTIVE, GIG_FULL),
        Ok(LinkReport::Recorded)
    );
    assert_eq!(service.link_status(), LinkStatus::INACTIVE);
    // After ifconfig down, reports are discarded again.
    service.set_interface_enable(&mut fake, false).unwrap();
    assert_eq!(
        service.report_link_status(LinkStatus::ACTIVE, GIG_FULL),
        Ok(LinkReport::Discarded)
    );
    assert_eq!(service.link_status(), LinkStatus::INACTIVE);
}

#[test]
fn link_status_before_enable_is_kept_under_the_record_rule() {
    let config = EthernetServiceConfig {
        link_status_before_enable: LinkStatusBeforeEnable::Record,
    };
    let (mut service, _nic, _iface, _fake) = up_and_running(config);
    assert!(!service.is_enabled());
    assert_eq!(
        service.report_link_status(LinkStatus::ACTIVE, GIG_FULL),
        Ok(LinkReport::Recorded)
    );
    assert_eq!(service.link_status(), LinkStatus::ACTIVE);
}

// ------------------------------------------------------------------------------------------
// Control requests dispatched to the driver
// ------------------------------------------------------------------------------------------

#[test]
fn interface_enable_reaches_the_driver_which_enables_its_queues() {
    let (mut service, nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    let rings = nic.rings();
    assert!(
        rings.iter().all(|r| !r.is_enabled()),
        "queues start disabled"
    );
    service.set_interface_enable(&mut fake, true).unwrap();
    assert!(service.is_enabled() && fake.is_enabled());
    assert!(rings.iter().all(|r| r.is_enabled()));
    service.set_interface_enable(&mut fake, false).unwrap();
    assert!(!service.is_enabled() && !fake.is_enabled());
    assert!(rings.iter().all(|r| !r.is_enabled()));
    assert_eq!(
        fake.calls(),
        &[
            DriverCall::SetInterfaceEnable(true),
            DriverCall::SetInterfaceEnable(false)
        ]
    );
}

#[test]
fn a_failed_enable_leaves_the_interface_down_and_returns_the_drivers_code() {
    let (mut service, nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    fake.fail_next(DriverCallKind::SetInterfaceEnable, IoReturn::NoResources);
    let err = service.set_interface_enable(&mut fake, true).unwrap_err();
    assert_eq!(err, ControlError::Driver(IoReturn::NoResources));
    assert_eq!(IoReturn::from(err), IoReturn::NoResources);
    assert!(!service.is_enabled());
    assert!(nic.rings().iter().all(|r| !r.is_enabled()));
    assert_eq!(service.link_status(), LinkStatus::INVALID);
    // A failed disable leaves it up.
    service.set_interface_enable(&mut fake, true).unwrap();
    fake.fail_next(DriverCallKind::SetInterfaceEnable, IoReturn::Busy);
    assert_eq!(
        service.set_interface_enable(&mut fake, false),
        Err(ControlError::Driver(IoReturn::Busy))
    );
    assert!(service.is_enabled());
}

#[test]
fn dispatch_before_registration_is_not_ready() {
    let mut service = service_with_media(EthernetServiceConfig::default());
    let mut fake = FakeEthernetDriver::new();
    let codes = [
        IoReturn::from(service.set_interface_enable(&mut fake, true).unwrap_err()),
        IoReturn::from(
            service
                .set_promiscuous_mode_enable(&mut fake, true)
                .unwrap_err(),
        ),
        IoReturn::from(
            service
                .set_all_multicast_mode_enable(&mut fake, true)
                .unwrap_err(),
        ),
        IoReturn::from(service.set_multicast_addresses(&mut fake, &[]).unwrap_err()),
        IoReturn::from(service.select_media(&mut fake, GIG_FULL).unwrap_err()),
        IoReturn::from(
            service
                .handle_chosen_media(&mut fake, GIG_FULL)
                .unwrap_err(),
        ),
        IoReturn::from(
            service
                .set_wake_on_magic_packet_enable(&mut fake, false)
                .unwrap_err(),
        ),
        IoReturn::from(service.set_mtu(&mut fake, 1500).unwrap_err()),
        IoReturn::from(
            service
                .set_hardware_assists(&mut fake, HardwareAssists::empty())
                .unwrap_err(),
        ),
    ];
    assert!(codes.iter().all(|c| *c == IoReturn::NotReady), "{codes:?}");
    assert!(fake.calls().is_empty(), "the driver is never called");
}

#[test]
fn promiscuous_and_all_multicast_reach_the_driver() {
    let (mut service, _nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    service
        .set_promiscuous_mode_enable(&mut fake, true)
        .unwrap();
    service
        .set_all_multicast_mode_enable(&mut fake, true)
        .unwrap();
    assert!(service.is_promiscuous() && fake.is_promiscuous());
    assert!(service.is_all_multicast() && fake.is_all_multicast());
    service
        .set_promiscuous_mode_enable(&mut fake, false)
        .unwrap();
    assert!(!service.is_promiscuous() && !fake.is_promiscuous());
    assert_eq!(fake.calls_of(DriverCallKind::SetPromiscuousModeEnable), 2);
    assert_eq!(fake.calls_of(DriverCallKind::SetAllMulticastModeEnable), 1);
}

fn groups(n: usize) -> Vec<MacAddress> {
    (0..n)
        .map(|i| MacAddress([0x33, 0x33, 0xff, 0, (i >> 8) as u8, i as u8]))
        .collect()
}

#[test]
fn multicast_list_is_bounded_before_the_driver_sees_it() {
    let (mut service, _nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    let full = groups(MULTICAST_LIST_MAX);
    service.set_multicast_addresses(&mut fake, &full).unwrap();
    assert_eq!(service.multicast_addresses(), &full[..]);
    assert_eq!(fake.multicast_addresses(), &full[..]);

    let too_long = groups(MULTICAST_LIST_MAX + 1);
    let err = service
        .set_multicast_addresses(&mut fake, &too_long)
        .unwrap_err();
    assert_eq!(
        err,
        SetMulticastError::TooMany {
            count: MULTICAST_LIST_MAX + 1
        }
    );
    assert_eq!(IoReturn::from(err), IoReturn::NoSpace);
    assert_eq!(
        fake.calls_of(DriverCallKind::SetMulticastAddresses),
        1,
        "not called again"
    );
    assert_eq!(
        service.multicast_addresses(),
        &full[..],
        "the old list stays"
    );

    service.set_multicast_addresses(&mut fake, &[]).unwrap();
    assert!(service.multicast_addresses().is_empty() && fake.multicast_addresses().is_empty());
}

#[test]
fn multicast_list_refuses_unicast_and_broadcast_entries() {
    let (mut service, _nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    let mut list = groups(3);
    list[1] = MAC;
    let err = service
        .set_multicast_addresses(&mut fake, &list)
        .unwrap_err();
    assert_eq!(
        err,
        SetMulticastError::NotMulticast {
            index: 1,
            address: MAC
        }
    );
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    list[1] = MacAddress::BROADCAST;
    let err = service
        .set_multicast_addresses(&mut fake, &list)
        .unwrap_err();
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    assert!(fake.calls().is_empty());
}

#[test]
fn multicast_list_refused_by_a_driver_without_the_override() {
    let (mut service, _nic, _iface, fake) = up_and_running(EthernetServiceConfig::default());
    let mut fake = fake.without_multicast_override();
    let err = service
        .set_multicast_addresses(&mut fake, &groups(2))
        .unwrap_err();
    assert_eq!(err, SetMulticastError::Driver(IoReturn::Unsupported));
    assert!(service.multicast_addresses().is_empty());
}

#[test]
fn media_selection_is_checked_and_auto_maps_to_a_concrete_media() {
    let (mut service, _nic, _iface, mut fake) = up_and_running(EthernetServiceConfig::default());
    let err = service
        .select_media(&mut fake, MediaType::ETHERNET_10BASE_T)
        .unwrap_err();
    assert_eq!(
        err,
        SelectMediaError::NotAvailable {
            media: MediaType::ETHERNET_10BASE_T
        }
    );
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    assert!(fake.calls().is_empty());

    service.set_interface_enable(&mut fake, true).unwrap();
    service
        .report_link_status(LinkStatus::INACTIVE, GIG_FULL)
        .unwrap();
    service
        .select_media(&mut fake, MediaType::ETHERNET_AUTO)
        .unwrap();
    assert_eq!(service.selected_media(), Some(MediaType::ETHERNET_AUTO));
    assert_eq!(fake.media(), Some(GIG_FULL));
    // Like the sample, the driver re-reported link with the mapped media.
    assert_eq!(
        (service.link_status(), service.active_media()),
        (LinkStatus::ACTIVE, Some(GIG_FULL))
    );

    service.handle_chosen_media(&mut fake, GIG_FULL).unwrap();
    assert_eq!(fake.calls_of(DriverCallKind::HandleChosenMedia), 1);
    fake.fail_next(DriverCallKind::SelectMedia, IoReturn::Unsupported);
    assert_eq!(
        service.select_media(&mut fake, MediaType::ETHERNET_AUTO),
        Err(SelectMediaError::Driver(IoReturn::Unsupported))
    );
    assert_eq!(service.selected_media(), Some(GIG_FULL));
}

#[test]
fn mtu_must_be_within_ifminmtu_and_the_drivers_maximum() {
    let (mut service, _nic, _iface, fake) = up_and_running(EthernetServiceConfig::default());
    let mut fake = fake.with_mtu_bytes_max(9000);
    for mtu_bytes in [MTU_BYTES_MIN - 1, 9001, MTU_BYTES_MAX + 1] {
        let err = service.set_mtu(&mut fake, mtu_bytes).unwrap_err();
        assert!(
            matches!(err, SetMtuError::OutOfRange { mtu_bytes: m, mtu_bytes_max: 9000, .. } if m == mtu_bytes)
        );
        assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    }
    assert!(fake.calls().is_empty());
    for mtu_bytes in [MTU_BYTES_MIN, 9000, 1280] {
        service.set_mtu(&mut fake, mtu_bytes).unwrap();
        assert_eq!(
            (service.mtu_bytes(), fake.mtu_bytes()),
            (mtu_bytes, mtu_bytes)
        );
    }
    fake.fail_next(DriverCallKind::SetMtu, IoReturn::Busy);
    assert_eq!(
        service.set_mtu(&mut fake, 1500),
        Err(SetMtuError::Driver(IoReturn::Busy))
    );
    assert_eq!(service.mtu_bytes(), 1280);
}

#[test]
fn hardware_assists_only_turn_on_what_the_driver_offers() {
    let (mut service, _nic, _iface, fake) = up_and_running(EthernetServiceConfig::default());
    let a = HardwareAssists::from_bits_retain(0b0001);
    let b = HardwareAssists::from_bits_retain(0b0100);
    let not_offered = HardwareAssists::from_bits_retain(0b1000);
    let mut fake = fake.with_hardware_assists(a | b);

    service.set_hardware_assists(&mut fake, a | b).unwrap();
    assert_eq!(service.hardware_assists_enabled(), a | b);
    // G2 masked form: turn b off, leave a.
    service
        .set_hardware_assists_masked(&mut fake, HardwareAssists::empty(), b)
        .unwrap();
    assert_eq!(service.hardware_assists_enabled(), a);
    assert_eq!(fake.hardware_assists_enabled(), a);
    assert_eq!(
        fake.calls().last(),
        Some(&DriverCall::SetHardwareAssists {
            assists: HardwareAssists::empty(),
            mask: b
        })
    );

    let err = service
        .set_hardware_assists_masked(&mut fake, not_offered, not_offered)
        .unwrap_err();
    assert_eq!(
        err,
        SetHardwareAssistsError::NotOffered {
            requested: not_offered,
            offered: a | b
        }
    );
    assert_eq!(IoReturn::from(err), IoReturn::Unsupported);
    // Bits outside the mask do not count as requested.
    service
        .set_hardware_assists_masked(&mut fake, not_offered | b, b)
        .unwrap();
    assert_eq!(service.hardware_assists_enabled(), a | b);
    assert_eq!(fake.calls_of(DriverCallKind::SetHardwareAssists), 3);
}

#[test]
fn wake_on_magic_packet_needs_advertised_support() {
    let nic = NicFixture::new().build();
    let mut fake = FakeEthernetDriver::new();

    let mut without = EthernetService::default();
    nic.register(&mut without).unwrap();
    let err = without
        .set_wake_on_magic_packet_enable(&mut fake, true)
        .unwrap_err();
    assert_eq!(err, WakeOnMagicPacketError::NotSupported);
    assert_eq!(IoReturn::from(err), IoReturn::Unsupported);
    without
        .set_wake_on_magic_packet_enable(&mut fake, false)
        .unwrap();

    let other = NicFixture::new().build();
    let mut with = EthernetService::default();
    with.set_wake_on_magic_packet_support(true).unwrap();
    other.register(&mut with).unwrap();
    with.set_wake_on_magic_packet_enable(&mut fake, true)
        .unwrap();
    assert!(with.is_wake_on_magic_packet_enabled() && fake.is_wake_on_magic_packet_enabled());
    assert_eq!(fake.calls_of(DriverCallKind::SetWakeOnMagicPacketEnable), 2);
}

// ------------------------------------------------------------------------------------------
// G1: data-available action on the driver's dispatch queue
// ------------------------------------------------------------------------------------------

/// A G1 driver's data path, shaped like the sample's `TxPacketAvailable`.
struct G1Driver {
    pool: PacketBufferPool,
    txs: TxSubmissionQueue,
    txc: TxCompletionQueue,
    sent: Vec<Vec<u8>>,
}

impl G1Driver {
    fn tx_packet_available(&mut self) {
        let mut batch: heapless::Vec<Packet, 8> = heapless::Vec::new();
        self.txs.dequeue_packets(&mut batch, 8).unwrap();
        for packet in &batch {
            self.sent
                .push(self.pool.packet(packet).unwrap().data().to_vec());
        }
        let outcome = self.txc.enqueue_packets(&mut batch);
        assert!(batch.is_empty(), "completion refused: {outcome:?}");
    }
}

/// A registered G1 NIC whose Tx halves live in the driver, with the data-available action
/// wired as the sample does in `Start`.
struct G1Rig {
    service: EthernetService,
    driver: G1Driver,
    rx_queues: (RxSubmissionQueue, RxCompletionQueue),
    iface: EthernetInterface,
    dispatch: DispatchQueue<G1Driver>,
    source: DataQueueDispatchSource<G1Driver>,
}

fn g1_rig() -> G1Rig {
    let Nic {
        pool,
        rxs,
        rxc,
        txs,
        txc,
    } = NicFixture::new().build();
    let mut service = service_with_media(EthernetServiceConfig::default());
    let iface = service
        .register_ethernet_interface(MAC, &pool, &[&rxs, &rxc, &txs, &txc])
        .unwrap();
    let dispatch = DispatchQueue::new();
    let source = DataQueueDispatchSource::copy_data_queue(&txs, &dispatch);
    source.set_data_available_handler(Some(OsAction::new(G1Driver::tx_packet_available)));
    G1Rig {
        service,
        driver: G1Driver {
            pool,
            txs,
            txc,
            sent: Vec::new(),
        },
        rx_queues: (rxs, rxc),
        iface,
        dispatch,
        source,
    }
}

#[test]
fn g1_data_available_action_moves_a_frame_system_to_driver_to_system() {
    let G1Rig {
        mut service,
        mut driver,
        rx_queues,
        mut iface,
        dispatch,
        source,
    } = g1_rig();
    let mut fake = FakeEthernetDriver::new().with_queue_rings([
        Arc::clone(rx_queues.0.ring()),
        Arc::clone(rx_queues.1.ring()),
        Arc::clone(driver.txs.ring()),
        Arc::clone(driver.txc.ring()),
    ]);
    service.set_interface_enable(&mut fake, true).unwrap();
    let signal: DataAvailableSignal = source.framework_signal();

    let pool = iface.tx_pool().clone();
    let mut batch: heapless::Vec<Packet, 2> = heapless::Vec::new();
    for tag in [10, 20] {
        let mut packet = pool.allocate(Owner::System).unwrap();
        pool.packet_mut(&mut packet)
            .unwrap()
            .write_frame(0, &frame(tag, 64))
            .unwrap();
        batch.push(packet).unwrap();
    }
    let outcome = signal.enqueue_and_signal(&mut iface.queues_mut().tx_submission, &mut batch);
    assert_eq!(outcome.enqueue.accepted, 2);
    assert_eq!(outcome.signal, Some(SignalOutcome::Posted));
    assert!(
        driver.sent.is_empty(),
        "nothing runs until the dispatch queue is driven"
    );
    assert_eq!(dispatch.dispatch_pending(&mut driver), 1);
    assert_eq!(driver.sent, vec![frame(10, 64), frame(20, 64)]);

    let mut done: heapless::Vec<Packet, 4> = heapless::Vec::new();
    assert_eq!(
        iface
            .queues_mut()
            .tx_completion
            .dequeue_packets(&mut done, 4)
            .unwrap(),
        2
    );
    for packet in done {
        pool.system_free(packet).unwrap();
    }
    assert!(pool.leak_report().is_clean());
}

#[test]
fn g1_disabled_queue_delivers_nothing() {
    let G1Rig {
        mut driver,
        mut iface,
        dispatch,
        source,
        ..
    } = g1_rig();
    let signal = source.framework_signal();
    let pool = iface.tx_pool().clone();
    let mut batch: heapless::Vec<Packet, 1> = heapless::Vec::new();
    batch.push(pool.allocate(Owner::System).unwrap()).unwrap();
    let outcome = signal.enqueue_and_signal(&mut iface.queues_mut().tx_submission, &mut batch);
    assert_eq!(outcome.enqueue.accepted, 0);
    assert_eq!(outcome.enqueue.refusal, Some(EnqueueRefusal::Disabled));
    assert_eq!(
        outcome.signal, None,
        "nothing went in, so nothing is signalled"
    );
    assert_eq!(signal.signal_data_available(), SignalOutcome::QueueDisabled);
    assert_eq!(dispatch.dispatch_pending(&mut driver), 0);
    assert!(driver.sent.is_empty());
    pool.system_free(batch.pop().unwrap()).unwrap();
    assert!(pool.leak_report().is_clean());
}

// ------------------------------------------------------------------------------------------
// G3 and G4: actions called by the framework
// ------------------------------------------------------------------------------------------

/// A push-model driver (RTL8127's shape): FIFOs between its "hardware" and the actions.
#[derive(Default)]
struct PushDriver {
    tx_room: u32,
    tx_in_flight: Vec<Packet>,
    tx_done: Vec<Packet>,
    rx_free: Vec<Packet>,
    rx_filled: Vec<Packet>,
    sent: Vec<Vec<u8>>,
    seen: Vec<(QueueKind, u32, RefCon)>,
    tx_completion: Option<EnqueueRequester>,
    rx_completion: Option<EnqueueRequester>,
}

impl PushDriver {
    /// The "hardware" sends every in-flight frame, then asks for a Tx completion pass.
    fn transmit(&mut self, pool: &PacketBufferPool) {
        for packet in self.tx_in_flight.drain(..) {
            self.sent
                .push(pool.packet(&packet).unwrap().data().to_vec());
            self.tx_done.push(packet);
        }
        self.tx_completion.as_ref().unwrap().request_enqueue();
    }

    /// The "hardware" receives `bytes` into a stocked buffer, then asks for an Rx completion
    /// pass.
    fn receive(&mut self, pool: &PacketBufferPool, bytes: &[u8]) {
        let mut packet = self.rx_free.pop().expect("a stocked Rx buffer");
        let mut view = pool.packet_mut(&mut packet).unwrap();
        view.write_frame(0, bytes).unwrap();
        view.set_link_header_length(14);
        self.rx_filled.push(packet);
        self.rx_completion.as_ref().unwrap().request_enqueue();
    }
}

fn tx_free_space<Q: ActionQueueParam>(d: &mut PushDriver, _q: &Q, free_bytes: &mut u32) -> u32 {
    *free_bytes = d.tx_room * 2048;
    d.tx_room
}

fn tx_dequeue<Q: ActionQueueParam>(
    d: &mut PushDriver,
    q: &Q,
    pkts: &mut OfferedPackets<'_>,
    n: u32,
    r: RefCon,
) -> u32 {
    d.seen.push((q.kind(), q.queue_id(), r));
    assert_eq!(pkts.len(), n);
    while let Some(packet) = pkts.take() {
        d.tx_in_flight.push(packet);
        d.tx_room -= 1;
    }
    pkts.taken()
}

fn rx_dequeue<Q: ActionQueueParam>(
    d: &mut PushDriver,
    q: &Q,
    pkts: &mut OfferedPackets<'_>,
    _n: u32,
    r: RefCon,
) -> u32 {
    d.seen.push((q.kind(), q.queue_id(), r));
    while let Some(packet) = pkts.take() {
        d.rx_free.push(packet);
    }
    pkts.taken()
}

fn hand_back(from: &mut Vec<Packet>, slots: &mut PacketSlots<'_>) -> u32 {
    while let Some(packet) = from.pop() {
        if let Err(refused) = slots.push(packet) {
            from.push(refused.packet);
            break;
        }
    }
    slots.len()
}

fn tx_enqueue<Q: ActionQueueParam>(
    d: &mut PushDriver,
    q: &Q,
    slots: &mut PacketSlots<'_>,
    _n: u32,
    r: RefCon,
) -> u32 {
    d.seen.push((q.kind(), q.queue_id(), r));
    hand_back(&mut d.tx_done, slots)
}

fn rx_enqueue<Q: ActionQueueParam>(
    d: &mut PushDriver,
    q: &Q,
    slots: &mut PacketSlots<'_>,
    _n: u32,
    r: RefCon,
) -> u32 {
    d.seen.push((q.kind(), q.queue_id(), r));
    hand_back(&mut d.rx_filled, slots)
}

struct PushNic<Q: ActionQueueParam> {
    tx_pool: PacketBufferPool,
    rx_pool: PacketBufferPool,
    txs: SubmissionActionQueue<PushDriver, Q, DriverTxSubmission>,
    txc: CompletionActionQueue<PushDriver, Q, DriverTxCompletion>,
    rxs: SubmissionActionQueue<PushDriver, Q, DriverRxSubmission>,
    rxc: CompletionActionQueue<PushDriver, Q, DriverRxCompletion>,
    iface: EthernetInterface,
    driver: PushDriver,
}

/// Builds the four action queues (generation chosen by `Q`) on separate Tx and Rx pools and
/// registers them with the DriverKit 24 form.
fn push_nic<Q: ActionQueueParam>() -> PushNic<Q> {
    let tx_pool = pool(*b"txpl", 16);
    let rx_pool = pool(*b"rxpl", 16);
    let txs = SubmissionActionQueue::<PushDriver, Q, DriverTxSubmission>::with_pool(
        &tx_pool,
        4,
        0,
        tx_free_space::<Q>,
        tx_dequeue::<Q>,
        0x7a,
    )
    .unwrap();
    let txc = CompletionActionQueue::<PushDriver, Q, DriverTxCompletion>::with_pool(
        &tx_pool,
        4,
        0,
        tx_enqueue::<Q>,
        0x7c,
    )
    .unwrap();
    let rxs = SubmissionActionQueue::<PushDriver, Q, DriverRxSubmission>::with_pool(
        &rx_pool,
        4,
        1,
        1,
        rx_dequeue::<Q>,
        0x5a,
    )
    .unwrap();
    let rxc = CompletionActionQueue::<PushDriver, Q, DriverRxCompletion>::with_pool(
        &rx_pool,
        4,
        1,
        rx_enqueue::<Q>,
        0x5c,
    )
    .unwrap();
    let iface = EthernetService::default()
        .register_ethernet_interface_with_pools(MAC, &[&txs, &txc, &rxs, &rxc], &tx_pool, &rx_pool)
        .unwrap();
    let driver = PushDriver {
        tx_room: 8,
        tx_completion: Some(txc.requester()),
        rx_completion: Some(rxc.requester()),
        ..PushDriver::default()
    };
    PushNic {
        tx_pool,
        rx_pool,
        txs,
        txc,
        rxs,
        rxc,
        iface,
        driver,
    }
}

impl<Q: ActionQueueParam> PushNic<Q> {
    fn enable(&self, enable: bool) {
        self.txs.set_enable(enable);
        self.txc.set_enable(enable);
        self.rxs.set_enable(enable);
        self.rxc.set_enable(enable);
    }

    fn assert_clean(&self) {
        assert!(
            self.tx_pool.leak_report().is_clean(),
            "{:?}",
            self.tx_pool.leak_report()
        );
        assert!(
            self.rx_pool.leak_report().is_clean(),
            "{:?}",
            self.rx_pool.leak_report()
        );
    }
}

/// Tx: system → DequeueAction → "wire" → EnqueueAction → system. Rx: system posts an empty
/// buffer → DequeueAction stocks it → the driver fills it → EnqueueAction → system.
fn push_round_trip<Q: ActionQueueParam>() {
    let mut nic = push_nic::<Q>();
    nic.enable(true);
    let queues = nic.iface.queues_mut();

    let mut tx = nic.tx_pool.allocate(Owner::System).unwrap();
    nic.tx_pool
        .packet_mut(&mut tx)
        .unwrap()
        .write_frame(0, &frame(0xa0, 90))
        .unwrap();
    queues.tx_submission.enqueue_packet(tx).unwrap();
    assert_eq!(nic.txs.run_dequeue(&mut nic.driver).unwrap(), 1);
    assert_eq!(nic.txs.stats().free_bytes_last, 8 * 2048);
    nic.driver.transmit(&nic.tx_pool);
    assert_eq!(nic.driver.sent, vec![frame(0xa0, 90)]);
    assert_eq!(nic.txc.run_enqueue(&mut nic.driver).unwrap(), 1);
    let done = queues
        .tx_completion
        .dequeue_packet()
        .unwrap()
        .expect("Tx completion");
    nic.tx_pool.system_free(done).unwrap();

    let empty = nic.rx_pool.allocate(Owner::System).unwrap();
    queues.rx_submission.enqueue_packet(empty).unwrap();
    assert_eq!(nic.rxs.run_dequeue(&mut nic.driver).unwrap(), 1);
    nic.driver.receive(&nic.rx_pool, &frame(0x50, 70));
    assert_eq!(nic.rxc.run_enqueue(&mut nic.driver).unwrap(), 1);
    let received = queues
        .rx_completion
        .dequeue_packet()
        .unwrap()
        .expect("Rx frame");
    let view = nic.rx_pool.packet(&received).unwrap();
    assert_eq!(view.data(), &frame(0x50, 70)[..]);
    assert_eq!(view.link_header_length(), 14);
    nic.rx_pool.system_free(received).unwrap();

    // Each action saw its own queue and refCon, in the order the framework called them.
    assert_eq!(
        nic.driver.seen,
        vec![
            (QueueKind::TxSubmission, 0, 0x7a),
            (QueueKind::TxCompletion, 0, 0x7c),
            (QueueKind::RxSubmission, 1, 0x5a),
            (QueueKind::RxCompletion, 1, 0x5c),
        ]
    );
    nic.assert_clean();
}

/// With all four queues disabled, no action is called and no packet moves either way.
fn push_disabled_delivers_nothing<Q: ActionQueueParam>() {
    let mut nic = push_nic::<Q>();
    let queues = nic.iface.queues_mut();
    let tx = nic.tx_pool.allocate(Owner::System).unwrap();
    let refused = queues.tx_submission.enqueue_packet(tx).unwrap_err();
    assert_eq!(refused.refusal, EnqueueRefusal::Disabled);
    nic.tx_pool.system_free(refused.packet).unwrap();
    assert_eq!(nic.txs.run_dequeue(&mut nic.driver).unwrap(), 0);
    assert_eq!(nic.rxs.run_dequeue(&mut nic.driver).unwrap(), 0);

    // The driver has a frame (from the pool, RTL8127's fallback) and asks to hand it back.
    let mut filled = nic.rx_pool.allocate(Owner::Driver).unwrap();
    nic.rx_pool
        .packet_mut(&mut filled)
        .unwrap()
        .write_frame(0, &frame(1, 60))
        .unwrap();
    nic.driver.rx_filled.push(filled);
    nic.rxc.request_enqueue();
    assert_eq!(nic.rxc.run_enqueue(&mut nic.driver).unwrap(), 0);
    assert_eq!(queues.rx_completion.dequeue_packet().unwrap(), None);
    assert!(nic.driver.seen.is_empty(), "no action was called");
    assert_eq!(nic.rxc.stats().disabled_runs, 1);
    assert_eq!(nic.driver.rx_filled.len(), 1, "the driver keeps its packet");

    // Enabling releases the waiting request.
    nic.enable(true);
    assert_eq!(nic.rxc.run_enqueue(&mut nic.driver).unwrap(), 1);
    let received = nic
        .iface
        .queues_mut()
        .rx_completion
        .dequeue_packet()
        .unwrap()
        .unwrap();
    nic.rx_pool.system_free(received).unwrap();
    nic.assert_clean();
}

#[test]
fn g3_actions_move_frames_system_to_driver_to_system() {
    push_round_trip::<PacketQueueRef>();
}

#[test]
fn g3_disabled_queues_deliver_nothing() {
    push_disabled_delivers_nothing::<PacketQueueRef>();
}

#[test]
fn g4_compat_actions_move_frames_system_to_driver_to_system() {
    push_round_trip::<PacketQueueCompatRef>();
}

#[test]
fn g4_compat_disabled_queues_deliver_nothing() {
    push_disabled_delivers_nothing::<PacketQueueCompatRef>();
}

#[test]
fn g3_tx_refused_by_a_full_driver_waits_for_request_dequeue() {
    let mut nic = push_nic::<PacketQueueRef>();
    nic.enable(true);
    nic.driver.tx_room = 1;
    let queues = nic.iface.queues_mut();
    let mut batch: heapless::Vec<Packet, 3> = heapless::Vec::new();
    for tag in 0..3 {
        let mut packet = nic.tx_pool.allocate(Owner::System).unwrap();
        nic.tx_pool
            .packet_mut(&mut packet)
            .unwrap()
            .write_frame(0, &frame(tag, 60))
            .unwrap();
        batch.push(packet).unwrap();
    }
    assert_eq!(queues.tx_submission.enqueue_packets(&mut batch).accepted, 3);
    assert_eq!(nic.txs.run_dequeue(&mut nic.driver).unwrap(), 1);
    // Out of room: nothing more until the driver asks (RTL8127 does after link-up or after
    // its ring drains).
    assert_eq!(nic.txs.run_dequeue(&mut nic.driver).unwrap(), 0);
    assert!(nic.txs.is_stalled());
    nic.driver.transmit(&nic.tx_pool);
    nic.driver.tx_room = 8;
    let requester = nic.txs.requester();
    requester.request_dequeue();
    assert_eq!(nic.txs.run_dequeue(&mut nic.driver).unwrap(), 2);
    nic.driver.transmit(&nic.tx_pool);
    assert_eq!(
        nic.driver.sent,
        vec![frame(0, 60), frame(1, 60), frame(2, 60)],
        "in order"
    );
    assert_eq!(nic.txc.run_enqueue(&mut nic.driver).unwrap(), 3);
    let mut done: heapless::Vec<Packet, 4> = heapless::Vec::new();
    assert_eq!(
        queues.tx_completion.dequeue_packets(&mut done, 4).unwrap(),
        3
    );
    for packet in done {
        nic.tx_pool.system_free(packet).unwrap();
    }
    nic.assert_clean();
}

#[test]
fn action_queues_report_their_kind_ring_and_pool_for_registration() {
    let nic = push_nic::<PacketQueueCompatRef>();
    let queues: [&dyn PacketQueue; 4] = [&nic.rxs, &nic.rxc, &nic.txs, &nic.txc];
    let kinds: Vec<QueueKind> = queues.iter().map(|q| q.kind()).collect();
    assert_eq!(kinds, QueueKind::ALL);
    assert_eq!(nic.rxs.param().capacity(), 4);
    assert_eq!(nic.rxs.buffer_count(), 1);
    assert_eq!(nic.txs.ref_con(), 0x7a);
    assert_eq!(PacketQueue::pool(&nic.rxc).id(), nic.rx_pool.id());
    assert_eq!(PacketQueue::capacity(&nic.txc), 4);
    // The registered system halves share the action queues' rings.
    assert!(Arc::ptr_eq(
        nic.iface.queues().rx_completion.ring(),
        PacketQueue::ring(&nic.rxc)
    ));
    // A G1 driver half is a PacketQueue too.
    let g1 = QueueSource::<DriverTxSubmission>::create(&nic.tx_pool, 2, 0).unwrap();
    assert_eq!(PacketQueue::kind(&g1), QueueKind::TxSubmission);
}
