use super::*;

#[test]
fn modes_have_vmnet_h_numbers() {
    assert_eq!(OperatingMode::Host.code(), 1000);
    assert_eq!(OperatingMode::Shared.code(), 1001);
    assert_eq!(OperatingMode::Bridged.code(), 1002);
    for mode in [
        OperatingMode::Host,
        OperatingMode::Shared,
        OperatingMode::Bridged,
    ] {
        assert_eq!(OperatingMode::from_code(mode.code()), Some(mode));
    }
    assert_eq!(OperatingMode::from_code(999), None);
    assert_eq!(OperatingMode::from_code(1003), None);
}

#[test]
fn return_codes_have_vmnet_h_numbers() {
    let expected = [
        (1000, "VMNET_SUCCESS"),
        (1001, "VMNET_FAILURE"),
        (1002, "VMNET_MEM_FAILURE"),
        (1003, "VMNET_INVALID_ARGUMENT"),
        (1004, "VMNET_SETUP_INCOMPLETE"),
        (1005, "VMNET_INVALID_ACCESS"),
        (1006, "VMNET_PACKET_TOO_BIG"),
        (1007, "VMNET_BUFFER_EXHAUSTED"),
        (1008, "VMNET_TOO_MANY_PACKETS"),
        (1009, "VMNET_SHARING_SERVICE_BUSY"),
        (1010, "VMNET_NOT_AUTHORIZED"),
    ];
    for (code, name) in expected {
        let r = VmnetReturn::from_code(code).unwrap();
        assert_eq!((r.code(), r.name()), (code, name));
    }
    assert_eq!(VmnetReturn::from_code(999), None);
    assert_eq!(VmnetReturn::from_code(1011), None);
    assert_eq!(
        VmnetReturn::PacketTooBig.to_string(),
        "VMNET_PACKET_TOO_BIG (1006)"
    );
}

#[test]
fn event_bits_and_limits_match_vmnet_md() {
    assert_eq!(InterfaceEvent::PACKETS_AVAILABLE.bits(), 1 << 0);
    assert!(InterfaceEvent::ALL.contains(InterfaceEvent::PACKETS_AVAILABLE));
    assert!(InterfaceEvent::NONE.is_empty());
    assert_eq!(
        (MTU_BYTES_DEFAULT, MAX_PACKET_SIZE_BYTES_DEFAULT),
        (1500, 1514)
    );
    assert_eq!(
        (
            PACKETS_PER_CALL_MAX_DOCUMENTED,
            PACKETS_PER_CALL_MAX_OBSERVED
        ),
        (200, 256)
    );
    assert_eq!(BYTES_PER_CALL_MAX_DOCUMENTED, 262_144);
    assert_eq!((INTERFACES_MAX, INTERFACES_PER_GUEST_MAX), (32, 4));
    assert_eq!(VMPKTDESC_SIZE_BYTES, 24);
    assert_eq!(VMPKTDESC_FIELD_OFFSETS_BYTES, [0, 8, 16, 20]);
    assert_eq!(keys::MAX_PACKET_SIZE, "vmnet_max_packet_size");
}

#[test]
fn error_codes_map_to_vmnet_returns() {
    assert_eq!(HandleError::Stale.code(), VmnetReturn::InvalidArgument);
    assert_eq!(
        HandleError::SetupIncomplete.code(),
        VmnetReturn::SetupIncomplete
    );
    assert_eq!(StartError::NotPrivileged.code(), VmnetReturn::Failure);
    assert_eq!(StartError::NotAuthorized.code(), VmnetReturn::NotAuthorized);
    assert_eq!(
        StartError::SharingServiceBusy.code(),
        VmnetReturn::SharingServiceBusy
    );
    let too_big = WriteError::PacketTooBig {
        index: 0,
        frame_bytes: 1515,
        max_packet_size_bytes: 1514,
    };
    assert_eq!(too_big.code(), VmnetReturn::PacketTooBig);
    assert_eq!(
        WriteError::BufferExhausted { free_frames: 0 }.code(),
        VmnetReturn::BufferExhausted
    );
    assert_eq!(
        ReadError::TooManyPackets {
            requested: 300,
            packets_max: 256
        }
        .code(),
        VmnetReturn::TooManyPackets
    );
}

#[test]
fn interface_id_mac_is_stable_local_unicast() {
    let id = Uuid([7; 16]);
    let mac = mac_from_interface_id(id);
    assert_eq!(mac, mac_from_interface_id(id));
    assert!(mac.is_unicast() && mac.is_locally_administered());
    assert_ne!(mac, mac_from_interface_id(Uuid([8; 16])));
}

#[test]
fn network_errors_map_to_vmnet_returns() {
    use crate::netconfig::ConfigError;
    assert_eq!(
        NetworkCreateError::SubnetInUse {
            network: std::net::Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 24
        }
        .code()
        .code(),
        1009
    );
    assert_eq!(
        NetworkCreateError::InvalidConfig(ConfigError::PortForwardOutsideShared).code(),
        VmnetReturn::InvalidArgument
    );
    assert_eq!(
        NetworkCreateError::TooManyNetworks.code(),
        VmnetReturn::Failure
    );
    assert_eq!(
        NetworkCreateError::NotAuthorized.code(),
        VmnetReturn::NotAuthorized
    );
    assert_eq!(
        NetworkFromSerializationError::NoSuchNetwork(3).code(),
        VmnetReturn::InvalidArgument
    );
    assert_eq!(
        StartError::NoSuchNetwork.code(),
        VmnetReturn::InvalidArgument
    );
}

#[test]
fn source_ip_rule_defaults_follow_vmnet_dhcp() {
    let rules = VmnetKnobs::default().source_ip_rule;
    assert_eq!(rules.for_dhcp(true), SourceIpRule::Enforce);
    assert_eq!(rules.for_dhcp(false), SourceIpRule::Off);
    assert_eq!(SourceIpRules::OFF.for_dhcp(true), SourceIpRule::Off);
    let vmnet = SimVmnet::new(VmnetKnobs::default(), &crate::rng::SimRng::new(0));
    assert_eq!(
        vmnet.source_ip_rule(&NetworkKey::Shared),
        SourceIpRule::Enforce
    );
    assert_eq!(
        vmnet.source_ip_rule(&NetworkKey::Host),
        SourceIpRule::Enforce
    );
    assert_eq!(
        vmnet.source_ip_rule(&NetworkKey::HostIsolated(Uuid([1; 16]))),
        SourceIpRule::Off
    );
    assert_eq!(
        vmnet.source_ip_rule(&NetworkKey::Bridged("en0".into())),
        SourceIpRule::Off
    );
    assert_eq!(
        vmnet.source_ip_rule(&NetworkKey::Configured(9)),
        SourceIpRule::Off,
        "no such network: nothing to enforce"
    );
}
