use super::*;
use crate::link::{HardwareAssists, LinkQuality, LinkStatus, MediaType};
use crate::pool::{PacketBufferPool, PoolConfig};
use crate::queue::{RxCompletionQueue, RxSubmissionQueue, TxCompletionQueue, TxSubmissionQueue};

const MAC: MacAddress = MacAddress([0x10, 0x22, 0x33, 0x44, 0x55, 0x66]);

/// A service with an interface registered on a fresh pool (G1 form), and 1000BaseT plus Auto
/// reported as available.
fn registered(config: EthernetServiceConfig) -> EthernetService {
    let pool = PacketBufferPool::create(PoolConfig::new(*b"unit", 16, 256)).unwrap();
    let rxs = RxSubmissionQueue::create(&pool, 4, 0).unwrap();
    let rxc = RxCompletionQueue::create(&pool, 4, 0).unwrap();
    let txs = TxSubmissionQueue::create(&pool, 4, 0).unwrap();
    let txc = TxCompletionQueue::create(&pool, 4, 0).unwrap();
    let mut service = EthernetService::new(config);
    service
        .report_available_media_types(&[MediaType::ETHERNET_AUTO, MediaType::ETHERNET_1000BASE_T])
        .unwrap();
    service
        .register_ethernet_interface(MAC, &pool, &[&rxs, &rxc, &txs, &txc])
        .unwrap();
    service
}

#[test]
fn mac_address_classification() {
    assert!(MAC.is_unicast());
    assert!(!MAC.is_multicast());
    assert!(!MAC.is_locally_administered());
    let mdns = MacAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    assert!(mdns.is_multicast() && !mdns.is_broadcast() && !mdns.is_unicast());
    assert!(MacAddress::BROADCAST.is_multicast() && MacAddress::BROADCAST.is_broadcast());
    assert!(!MacAddress::ZERO.is_unicast());
    assert!(MacAddress([0x02, 0, 0, 0, 0, 1]).is_locally_administered());
    assert_eq!(MAC.octets(), [0x10, 0x22, 0x33, 0x44, 0x55, 0x66]);
}

#[test]
fn mac_address_displays_and_parses_colon_hex() {
    assert_eq!(MAC.to_string(), "10:22:33:44:55:66");
    assert_eq!(format!("{MAC:?}"), "MacAddress(10:22:33:44:55:66)");
    let parsed: MacAddress = "33:33:FF:AB:cd:01".parse().unwrap();
    assert_eq!(parsed, MacAddress([0x33, 0x33, 0xff, 0xab, 0xcd, 0x01]));
    assert_eq!(parsed.to_string().parse::<MacAddress>(), Ok(parsed));
    for junk in [
        "",
        "10:22:33:44:55",
        "10:22:33:44:55:66:77",
        "1:22:33:44:55:66",
        "10-22-33-44-55-66",
        "g0:22:33:44:55:66",
        "+1:22:33:44:55:66",
    ] {
        let err = junk.parse::<MacAddress>().unwrap_err();
        assert_eq!(IoReturn::from(err), IoReturn::BadArgument, "{junk:?}");
    }
}

#[test]
fn available_media_list_is_bounded_and_not_empty() {
    let mut link = LinkReporter::new(LinkStatusBeforeEnable::Discard);
    assert_eq!(
        link.report_available_media_types(&[]),
        Err(ReportMediaError::Empty)
    );
    let too_many = [MediaType::ETHERNET_AUTO; MEDIA_LIST_MAX + 1];
    let err = link.report_available_media_types(&too_many).unwrap_err();
    assert_eq!(
        err,
        ReportMediaError::TooMany {
            count: MEDIA_LIST_MAX + 1
        }
    );
    assert_eq!(IoReturn::from(err), IoReturn::NoSpace);
    let all: Vec<MediaType> = MediaType::ethernet_subtypes().collect();
    link.report_available_media_types(&all).unwrap();
    assert_eq!(link.available_media(), &all[..]);
    // A new report replaces the list.
    link.report_available_media_types(&[MediaType::ETHERNET_10GBASE_T])
        .unwrap();
    assert!(link.is_media_available(MediaType::ETHERNET_10GBASE_T));
    assert!(!link.is_media_available(MediaType::ETHERNET_AUTO));
}

#[test]
fn link_status_needs_media_reported_earlier() {
    let mut link = LinkReporter::new(LinkStatusBeforeEnable::Record);
    let gig = MediaType::ETHERNET_1000BASE_T;
    let err = link
        .report_link_status(LinkStatus::ACTIVE, gig)
        .unwrap_err();
    assert_eq!(err, ReportLinkStatusError::MediaNotAvailable { media: gig });
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    link.report_available_media_types(&[gig | crate::link::MediaOptions::FULL_DUPLEX])
        .unwrap();
    // Options are part of the word: plain 1000BaseT was not reported.
    assert!(link.report_link_status(LinkStatus::ACTIVE, gig).is_err());
    let full = gig | crate::link::MediaOptions::FULL_DUPLEX;
    assert_eq!(
        link.report_link_status(LinkStatus::ACTIVE, full),
        Ok(LinkReport::Recorded)
    );
    assert_eq!(
        (link.link_status(), link.active_media()),
        (LinkStatus::ACTIVE, Some(full))
    );
    let malformed = link
        .report_link_status(LinkStatus::from_raw(0x2), full)
        .unwrap_err();
    assert_eq!(
        malformed,
        ReportLinkStatusError::MalformedStatus { status: 0x2 }
    );
    assert_eq!(
        link.link_status(),
        LinkStatus::ACTIVE,
        "a refused report changes nothing"
    );
}

#[test]
fn link_status_before_enable_follows_the_configured_rule() {
    let media = MediaType::ETHERNET_AUTO;
    let mut discard = LinkReporter::new(LinkStatusBeforeEnable::Discard);
    discard.report_available_media_types(&[media]).unwrap();
    assert_eq!(
        discard.report_link_status(LinkStatus::ACTIVE, media),
        Ok(LinkReport::Discarded)
    );
    assert_eq!(discard.link_status(), LinkStatus::INVALID);
    assert_eq!(discard.active_media(), None);
    assert_eq!(discard.link_reports_discarded(), 1);
    // Validation still applies to reports that will be discarded.
    assert!(discard
        .report_link_status(LinkStatus::ACTIVE, MediaType::ETHERNET_10BASE_T)
        .is_err());
    discard.set_interface_enabled(true);
    assert_eq!(
        discard.report_link_status(LinkStatus::ACTIVE, media),
        Ok(LinkReport::Recorded)
    );
    assert_eq!(discard.link_reports_recorded(), 1);

    let mut record = LinkReporter::new(LinkStatusBeforeEnable::Record);
    record.report_available_media_types(&[media]).unwrap();
    let woke = LinkStatus::ACTIVE | LinkStatus::WAKE_SAME_NET;
    assert_eq!(
        record.report_link_status(woke, media),
        Ok(LinkReport::Recorded)
    );
    assert_eq!(record.link_status(), woke);
    assert_eq!(record.rule(), LinkStatusBeforeEnable::Record);
}

#[test]
fn link_quality_and_bandwidths_are_checked_and_recorded() {
    let mut link = LinkReporter::new(LinkStatusBeforeEnable::Discard);
    assert_eq!(link.link_quality(), LinkQuality::UNKNOWN);
    link.report_link_quality(LinkQuality::POOR).unwrap();
    assert_eq!(link.link_quality(), LinkQuality::POOR);
    let err = link
        .report_link_quality(LinkQuality::from_raw(101))
        .unwrap_err();
    assert_eq!(err, ReportLinkQualityError::OutOfRange { quality: 101 });
    assert_eq!(IoReturn::from(err), IoReturn::BadArgument);
    assert_eq!(link.link_quality(), LinkQuality::POOR);

    assert_eq!(link.data_bandwidths(), None);
    let gig = 1_000_000_000;
    let asymmetric = DataBandwidths {
        input_bps_max: gig,
        output_bps_max: gig / 2,
        input_bps_effective: 0,
        output_bps_effective: gig / 4,
    };
    link.report_data_bandwidths(asymmetric).unwrap();
    let recorded = link.data_bandwidths().unwrap();
    assert_eq!(recorded.input_bps_resolved(), gig, "0 means the maximum");
    assert_eq!(recorded.output_bps_resolved(), gig / 4);
    let err = link
        .report_data_bandwidths(DataBandwidths {
            output_bps_effective: gig,
            ..asymmetric
        })
        .unwrap_err();
    assert_eq!(
        err,
        ReportBandwidthsError::EffectiveAboveMax {
            effective_bps: gig,
            max_bps: gig / 2
        }
    );
    assert_eq!(link.data_bandwidths(), Some(asymmetric));
    assert_eq!(DataBandwidths::symmetric(gig).output_bps_resolved(), gig);
}

#[test]
fn fake_driver_fails_once_or_always_and_logs_every_call() {
    let mut service = registered(EthernetServiceConfig::default());
    let mut fake = FakeEthernetDriver::new();
    fake.fail_next(DriverCallKind::SetPromiscuousModeEnable, IoReturn::Busy);
    assert_eq!(
        service.set_promiscuous_mode_enable(&mut fake, true),
        Err(ControlError::Driver(IoReturn::Busy))
    );
    assert!(!service.is_promiscuous() && !fake.is_promiscuous());
    service
        .set_promiscuous_mode_enable(&mut fake, true)
        .unwrap();
    assert!(service.is_promiscuous() && fake.is_promiscuous());

    fake.fail_always(DriverCallKind::SetAllMulticastModeEnable, IoReturn::IoError);
    for _ in 0..2 {
        let err = service
            .set_all_multicast_mode_enable(&mut fake, true)
            .unwrap_err();
        assert_eq!(IoReturn::from(err), IoReturn::IoError);
    }
    fake.clear_failure(DriverCallKind::SetAllMulticastModeEnable);
    service
        .set_all_multicast_mode_enable(&mut fake, true)
        .unwrap();
    assert!(service.is_all_multicast() && fake.is_all_multicast());

    assert_eq!(
        fake.calls(),
        &[
            DriverCall::SetPromiscuousModeEnable(true),
            DriverCall::SetPromiscuousModeEnable(true),
            DriverCall::SetAllMulticastModeEnable(true),
            DriverCall::SetAllMulticastModeEnable(true),
            DriverCall::SetAllMulticastModeEnable(true),
        ]
    );
    assert_eq!(fake.calls_of(DriverCallKind::SetAllMulticastModeEnable), 3);
    assert_eq!(fake.take_calls().len(), 5);
    assert!(fake.calls().is_empty());
}

#[test]
fn fake_driver_log_is_bounded() {
    let mut service = registered(EthernetServiceConfig::default());
    let mut fake = FakeEthernetDriver::new();
    for i in 0..=FAKE_CALL_LOG_MAX {
        service
            .set_promiscuous_mode_enable(&mut fake, i % 2 == 0)
            .unwrap();
    }
    assert_eq!(fake.calls().len(), FAKE_CALL_LOG_MAX);
    assert_eq!(fake.calls_dropped(), 1);
}

#[test]
#[should_panic(expected = "a failure needs an error code")]
fn fake_driver_refuses_to_script_success_as_a_failure() {
    FakeEthernetDriver::new().fail_next(DriverCallKind::SetMtu, IoReturn::Success);
}

/// A driver that overrides only what it must: `setMulticastAddresses` keeps the default.
struct Minimal {
    answer: Result<(), IoReturn>,
}

impl EthernetDriver for Minimal {
    fn set_interface_enable(&mut self, _: &mut LinkReporter, _: bool) -> Result<(), IoReturn> {
        self.answer
    }
    fn set_promiscuous_mode_enable(&mut self, _: bool) -> Result<(), IoReturn> {
        self.answer
    }
    fn set_all_multicast_mode_enable(&mut self, _: bool) -> Result<(), IoReturn> {
        self.answer
    }
    fn select_media(&mut self, _: &mut LinkReporter, _: MediaType) -> Result<(), IoReturn> {
        self.answer
    }
    fn set_wake_on_magic_packet_enable(&mut self, _: bool) -> Result<(), IoReturn> {
        self.answer
    }
    fn mtu_bytes_max(&self) -> u32 {
        1500
    }
    fn set_mtu(&mut self, _: u32) -> Result<(), IoReturn> {
        self.answer
    }
    fn hardware_assists(&self) -> HardwareAssists {
        HardwareAssists::empty()
    }
    fn set_hardware_assists(
        &mut self,
        _: HardwareAssists,
        _: HardwareAssists,
    ) -> Result<(), IoReturn> {
        self.answer
    }
}

#[test]
fn default_multicast_override_refuses_the_list() {
    let mut service = registered(EthernetServiceConfig::default());
    let mut driver = Minimal { answer: Ok(()) };
    let group = MacAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    let err = service
        .set_multicast_addresses(&mut driver as &mut dyn EthernetDriver, &[group])
        .unwrap_err();
    assert_eq!(err, SetMulticastError::Driver(IoReturn::Unsupported));
    assert!(service.multicast_addresses().is_empty());
    // handle_chosen_media defaults to select_media.
    service
        .handle_chosen_media(&mut driver, MediaType::ETHERNET_AUTO)
        .unwrap();
    assert_eq!(service.selected_media(), Some(MediaType::ETHERNET_AUTO));
}

#[test]
fn a_driver_returning_err_success_is_reported_as_an_error() {
    let mut service = registered(EthernetServiceConfig::default());
    let mut driver = Minimal {
        answer: Err(IoReturn::Success),
    };
    assert_eq!(
        service.set_interface_enable(&mut driver, true),
        Err(ControlError::Driver(IoReturn::Error))
    );
    assert!(!service.is_enabled());
    assert_eq!(
        service.set_mtu(&mut driver, 1400),
        Err(SetMtuError::Driver(IoReturn::Error))
    );
    assert_eq!(service.mtu_bytes(), MTU_BYTES_DEFAULT);
}

#[test]
fn setup_calls_are_refused_after_registration() {
    let mut service = EthernetService::default();
    service.set_tx_packet_headroom(32).unwrap();
    service.set_tx_packet_tailroom(4).unwrap();
    service.set_wake_on_magic_packet_support(true).unwrap();
    service.set_software_vlan_support(true).unwrap();
    assert_eq!(
        service.feature_flags(),
        crate::link::FeatureFlags::WOMP | crate::link::FeatureFlags::SOFTWARE_VLAN
    );
    assert_eq!(
        (
            service.tx_packet_headroom_bytes(),
            service.tx_packet_tailroom_bytes()
        ),
        (32, 4)
    );

    let mut service = registered(EthernetServiceConfig::default());
    let refused = [
        service.set_tx_packet_headroom(1),
        service.set_tx_packet_tailroom(1),
        service.set_wake_on_magic_packet_support(true),
        service.set_software_vlan_support(true),
    ];
    for result in refused {
        assert_eq!(result, Err(SetupError::AlreadyRegistered));
        assert_eq!(IoReturn::from(result.unwrap_err()), IoReturn::NotPermitted);
    }
    assert_eq!(service.feature_flags(), crate::link::FeatureFlags::empty());
    assert_eq!(service.tx_packet_headroom_bytes(), 0);
}
