use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn mac(last: u8) -> MacAddress {
    MacAddress([0x02, 0, 0, 0, 0, last])
}

#[test]
fn shared_defaults_are_192_168_64_0_24_with_gateway_dot_1() {
    let cfg = NetConfig::new(OperatingMode::Shared);
    let s = cfg.ipv4_subnet();
    assert_eq!((s.network(), s.prefix_len()), (v4("192.168.64.0"), 24));
    assert_eq!(s.gateway(), v4("192.168.64.1"));
    assert_eq!(s.mask(), v4("255.255.255.0"));
    assert_eq!(s.last(), v4("192.168.64.255"));
    assert_eq!(cfg.mtu_bytes(), 1500);
    assert!(cfg.dhcp() && cfg.dns_proxy() && cfg.nat44() && cfg.nat66());
    assert!(cfg.router_advertisement());
    assert_eq!(cfg.validate(), Ok(()));

    let host = NetConfig::new(OperatingMode::Host);
    assert!(host.dhcp() && !host.nat44() && !host.nat66() && !host.dns_proxy());
    let bridged = NetConfig::new(OperatingMode::Bridged);
    assert_eq!(
        bridged.validate(),
        Err(ConfigError::BridgedWithoutExternalInterface)
    );
}

#[test]
fn disable_switches_turn_services_off() {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    cfg.disable_dhcp();
    cfg.disable_dns_proxy();
    cfg.disable_nat44();
    cfg.disable_nat66();
    cfg.disable_router_advertisement();
    assert!(!(cfg.dhcp() || cfg.dns_proxy() || cfg.nat44() || cfg.nat66()));
    assert!(!cfg.router_advertisement());
}

#[test]
fn subnet_validation() {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    assert_eq!(
        cfg.set_ipv4_subnet(v4("10.1.2.3"), v4("255.255.0.0")),
        Ok(())
    );
    assert_eq!(
        cfg.ipv4_subnet().network(),
        v4("10.1.0.0"),
        "stored as the network"
    );
    assert_eq!(
        cfg.set_ipv4_subnet(v4("10.0.0.0"), v4("255.0.255.0")),
        Err(SubnetError::NonContiguousMask(v4("255.0.255.0")))
    );
    assert_eq!(
        cfg.set_ipv4_subnet(v4("192.168.1.0"), v4("255.255.255.254")),
        Err(SubnetError::BadPrefix(31))
    );
    assert_eq!(
        cfg.set_ipv4_subnet(v4("10.0.0.0"), v4("254.0.0.0")),
        Err(SubnetError::BadPrefix(7))
    );
    assert_eq!(
        cfg.set_ipv4_subnet(v4("8.8.8.0"), v4("255.255.255.0")),
        Err(SubnetError::NotPrivate(v4("8.8.8.0")))
    );
    assert_eq!(
        Ipv4Subnet::new(v4("172.32.0.0"), 16),
        Err(SubnetError::NotPrivate(v4("172.32.0.0")))
    );
    assert!(Ipv4Subnet::new(v4("172.31.0.0"), 16).is_ok());
    assert_eq!(
        SubnetError::BadPrefix(31).code(),
        VmnetReturn::InvalidArgument
    );
    assert_eq!(
        cfg.ipv4_subnet().network(),
        v4("10.1.0.0"),
        "failed sets change nothing"
    );
}

#[test]
fn ipv6_prefix_and_mtu_validation() {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    let ula: Ipv6Addr = "fd12:3456:789a:1::99".parse().unwrap();
    assert_eq!(cfg.set_ipv6_prefix(ula, 64), Ok(()));
    assert_eq!(
        cfg.ipv6_prefix().unwrap().prefix().to_string(),
        "fd12:3456:789a:1::"
    );
    assert_eq!(
        cfg.set_ipv6_prefix(ula, 48),
        Err(PrefixError::BadPrefixLen(48))
    );
    let global: Ipv6Addr = "2001:db8::".parse().unwrap();
    assert_eq!(
        cfg.set_ipv6_prefix(global, 64),
        Err(PrefixError::NotUla(global))
    );
    assert_eq!(cfg.set_mtu(9000), Ok(()));
    assert_eq!(cfg.mtu_bytes(), 9000);
    assert_eq!(cfg.set_mtu(1279), Err(MtuError(1279)));
    assert_eq!(cfg.set_mtu(16_385), Err(MtuError(16_385)));
    assert_eq!(
        cfg.set_external_interface(""),
        Err(InterfaceNameError::Empty)
    );
    assert_eq!(
        cfg.set_external_interface("a-very-long-interface"),
        Err(InterfaceNameError::TooLong)
    );
    assert_eq!(
        cfg.set_external_interface("en 0"),
        Err(InterfaceNameError::BadCharacter)
    );
    assert_eq!(cfg.set_external_interface("en0"), Ok(()));
    assert_eq!(cfg.external_interface(), Some("en0"));
}

#[test]
fn dhcp_reservation_validation() {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    assert_eq!(
        cfg.add_dhcp_reservation(mac(1), v4("192.168.64.10")),
        Ok(())
    );
    let cases = [
        (
            mac(2),
            "192.168.65.10",
            ReservationError::OutsideSubnet(v4("192.168.65.10")),
        ),
        (
            mac(2),
            "192.168.64.0",
            ReservationError::ReservedAddress(v4("192.168.64.0")),
        ),
        (
            mac(2),
            "192.168.64.1",
            ReservationError::ReservedAddress(v4("192.168.64.1")),
        ),
        (
            mac(2),
            "192.168.64.255",
            ReservationError::ReservedAddress(v4("192.168.64.255")),
        ),
        (
            mac(1),
            "192.168.64.11",
            ReservationError::DuplicateClient(mac(1)),
        ),
        (
            mac(2),
            "192.168.64.10",
            ReservationError::DuplicateAddress(v4("192.168.64.10")),
        ),
        (
            MacAddress::BROADCAST,
            "192.168.64.12",
            ReservationError::NotUnicast(MacAddress::BROADCAST),
        ),
    ];
    for (client, addr, expected) in cases {
        assert_eq!(cfg.add_dhcp_reservation(client, v4(addr)), Err(expected));
        assert_eq!(expected.code(), VmnetReturn::InvalidArgument);
    }
    assert_eq!(cfg.dhcp_reservations().len(), 1);
    // Moving the subnet away strands the reservation: whole-value validation catches it.
    cfg.set_ipv4_subnet(v4("10.0.0.0"), v4("255.255.255.0"))
        .unwrap();
    assert_eq!(
        cfg.validate(),
        Err(ConfigError::Reservation(ReservationError::OutsideSubnet(
            v4("192.168.64.10")
        )))
    );
}

#[test]
fn reservations_are_bounded() {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    cfg.set_ipv4_subnet(v4("10.0.0.0"), v4("255.255.0.0"))
        .unwrap();
    for i in 0..DHCP_RESERVATIONS_MAX as u32 {
        let client = MacAddress([0x02, 0, 0, 0, (i >> 8) as u8, i as u8]);
        cfg.add_dhcp_reservation(client, Ipv4Addr::from(0x0a00_0100 + i))
            .unwrap();
    }
    assert_eq!(
        cfg.add_dhcp_reservation(MacAddress([0x02, 1, 0, 0, 0, 0]), v4("10.0.9.9")),
        Err(ReservationError::TooMany)
    );
}

#[test]
fn port_forward_validation_keeps_internal_before_external() {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    let guest = IpAddr::V4(v4("192.168.64.10"));
    // internal 80, external 8080: Apple's argument order.
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 80, 8080, guest),
        Ok(())
    );
    let rule = cfg.port_forwards()[0];
    assert_eq!((rule.internal_port, rule.external_port), (80, 8080));
    assert_eq!(rule.external_address, None);
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 0, 8081, guest),
        Err(PortForwardError::ZeroPort)
    );
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 81, 0, guest),
        Err(PortForwardError::ZeroPort)
    );
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 81, 8080, guest),
        Err(PortForwardError::DuplicateExternalPort(8080))
    );
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Udp, 81, 8080, guest),
        Ok(())
    );
    let outside = IpAddr::V4(v4("10.0.0.5"));
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 81, 8082, outside),
        Err(PortForwardError::OutsideSubnet(v4("10.0.0.5")))
    );
    let gw = IpAddr::V4(v4("192.168.64.1"));
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 81, 8082, gw),
        Err(PortForwardError::ReservedAddress(v4("192.168.64.1")))
    );
    let v6: Ipv6Addr = "fd00:1:2:3::10".parse().unwrap();
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 81, 8082, IpAddr::V6(v6)),
        Err(PortForwardError::OutsidePrefix(v6)),
        "no IPv6 prefix set"
    );
    cfg.set_ipv6_prefix(v6, 64).unwrap();
    assert_eq!(
        cfg.add_port_forwarding_rule(Protocol::Tcp, 81, 8080, IpAddr::V6(v6)),
        Ok(())
    );
    let mismatched = PortForward {
        protocol: Protocol::Tcp,
        internal_port: 22,
        external_port: 2222,
        internal_address: guest,
        external_address: Some(IpAddr::V6(v6)),
    };
    assert_eq!(
        cfg.add_port_forward(mismatched),
        Err(PortForwardError::FamilyMismatch)
    );
    assert_eq!(Protocol::from_number(6), Some(Protocol::Tcp));
    assert_eq!(Protocol::Udp.number(), 17);
    assert_eq!(Protocol::from_number(1), None);
    assert_eq!(cfg.validate(), Ok(()));
}

#[test]
fn port_forwards_need_shared_mode() {
    let text =
        format!("{SERIALIZATION_MAGIC}\nmode 1000\nport_forward 6 80 8080 192.168.65.10 -\n");
    assert_eq!(
        NetConfig::deserialize(&text),
        Err(DeserializeError::Invalid(
            ConfigError::PortForwardOutsideShared
        ))
    );
}

fn sample() -> NetConfig {
    let mut cfg = NetConfig::new(OperatingMode::Shared);
    cfg.set_ipv4_subnet(v4("192.168.100.1"), v4("255.255.255.0"))
        .unwrap();
    cfg.set_ipv6_prefix("fd00:abcd::".parse().unwrap(), 64)
        .unwrap();
    cfg.set_mtu(9000).unwrap();
    cfg.disable_nat66();
    cfg.add_dhcp_reservation(mac(5), v4("192.168.100.50"))
        .unwrap();
    cfg.add_port_forwarding_rule(Protocol::Udp, 53, 5353, IpAddr::V4(v4("192.168.100.50")))
        .unwrap();
    cfg.add_port_forward(PortForward {
        protocol: Protocol::Tcp,
        internal_port: 22,
        external_port: 2222,
        internal_address: IpAddr::V4(v4("192.168.100.50")),
        external_address: Some(IpAddr::V4(v4("127.0.0.1"))),
    })
    .unwrap();
    cfg.set_external_interface("en0").unwrap();
    cfg
}

#[test]
fn serialization_round_trips_and_reads_well() {
    let cfg = sample();
    let text = cfg.serialize();
    assert_eq!(
        text,
        "vnic-sim netconfig 1\n\
         mode 1001\n\
         ipv4_subnet 192.168.100.0 24\n\
         ipv6_prefix fd00:abcd:: 64\n\
         mtu 9000\n\
         dhcp on\n\
         dns_proxy on\n\
         nat44 on\n\
         nat66 off\n\
         router_advertisement on\n\
         dhcp_reservation 02:00:00:00:00:05 192.168.100.50\n\
         port_forward 17 53 5353 192.168.100.50 -\n\
         port_forward 6 22 2222 192.168.100.50 127.0.0.1\n\
         external_interface en0\n"
    );
    assert_eq!(NetConfig::deserialize(&text), Ok(cfg));
}

#[test]
fn deserialization_errors_are_typed() {
    assert_eq!(NetConfig::deserialize(""), Err(DeserializeError::BadHeader));
    assert_eq!(
        NetConfig::deserialize(SERIALIZATION_MAGIC),
        Err(DeserializeError::MissingMode)
    );
    let bad = |body: &str| NetConfig::deserialize(&format!("{SERIALIZATION_MAGIC}\n{body}"));
    assert_eq!(
        bad("mtu 1500\n"),
        Err(DeserializeError::BadLine {
            line_number: 2,
            what: "mode must come first"
        })
    );
    assert_eq!(
        bad("mode 1001\nmtu x\n"),
        Err(DeserializeError::BadLine {
            line_number: 3,
            what: "mtu"
        })
    );
    assert_eq!(
        bad("mode 1001\nbogus 1\n"),
        Err(DeserializeError::BadLine {
            line_number: 3,
            what: "key"
        })
    );
    assert_eq!(
        bad("mode 7\n"),
        Err(DeserializeError::BadLine {
            line_number: 2,
            what: "mode code"
        })
    );
    assert_eq!(
        bad("mode 1001\nmtu 100\n"),
        Err(DeserializeError::Invalid(ConfigError::Mtu(MtuError(100))))
    );
    assert_eq!(
        DeserializeError::BadHeader.code(),
        VmnetReturn::InvalidArgument
    );
}

fn arb_config() -> impl Strategy<Value = NetConfig> {
    let mode = prop_oneof![
        Just(OperatingMode::Host),
        Just(OperatingMode::Shared),
        Just(OperatingMode::Bridged)
    ];
    (
        mode,
        (0u8..=255, 16u8..=30),
        proptest::option::of(any::<[u8; 7]>()),
        MTU_BYTES_MIN..=MTU_BYTES_MAX,
        any::<[bool; 5]>(),
        proptest::collection::vec((any::<[u8; 6]>(), any::<u32>()), 0..6),
        proptest::collection::vec(
            (
                any::<bool>(),
                any::<u16>(),
                any::<u16>(),
                any::<u32>(),
                any::<bool>(),
            ),
            0..6,
        ),
        proptest::option::of("[a-z]{1,4}[0-9]{0,3}"),
    )
        .prop_map(
            |(mode, (third, len), v6, mtu, off, reservations, forwards, ext)| {
                let mut cfg = NetConfig::new(mode);
                cfg.set_ipv4_subnet(
                    Ipv4Addr::new(192, 168, third, 0),
                    Ipv4Subnet::new(v4("192.168.0.0"), len).unwrap().mask(),
                )
                .unwrap();
                if let Some(bits) = v6 {
                    let mut b = [0u8; 16];
                    b[0] = 0xfd;
                    b[1..8].copy_from_slice(&bits);
                    cfg.set_ipv6_prefix(Ipv6Addr::from(b), 64).unwrap();
                }
                cfg.set_mtu(mtu).unwrap();
                let switches: [fn(&mut NetConfig); 5] = [
                    NetConfig::disable_dhcp,
                    NetConfig::disable_dns_proxy,
                    NetConfig::disable_nat44,
                    NetConfig::disable_nat66,
                    NetConfig::disable_router_advertisement,
                ];
                for (off, disable) in off.iter().zip(switches) {
                    if *off {
                        disable(&mut cfg);
                    }
                }
                let s = cfg.ipv4_subnet();
                let host_bits = !u32::from(s.mask());
                for (m, r) in reservations {
                    let addr = Ipv4Addr::from(u32::from(s.network()) | (r & host_bits));
                    let _ = cfg.add_dhcp_reservation(MacAddress(m), addr);
                }
                if mode == OperatingMode::Shared {
                    for (tcp, ip, ep, r, with_ext) in forwards {
                        let addr = Ipv4Addr::from(u32::from(s.network()) | (r & host_bits));
                        let _ = cfg.add_port_forward(PortForward {
                            protocol: if tcp { Protocol::Tcp } else { Protocol::Udp },
                            internal_port: ip,
                            external_port: ep,
                            internal_address: IpAddr::V4(addr),
                            external_address: with_ext.then_some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                        });
                    }
                }
                if let Some(name) = ext {
                    cfg.set_external_interface(&name).unwrap();
                } else if mode == OperatingMode::Bridged {
                    cfg.set_external_interface("en0").unwrap();
                }
                cfg
            },
        )
}

proptest! {
    #[test]
    fn any_valid_config_round_trips(cfg in arb_config()) {
        prop_assert_eq!(cfg.validate(), Ok(()));
        let text = cfg.serialize();
        prop_assert_eq!(NetConfig::deserialize(&text), Ok(cfg.clone()));
        prop_assert_eq!(NetConfig::deserialize(&text).unwrap().serialize(), text);
    }

    #[test]
    fn deserialize_never_panics(body in "[a-z0-9_ :.\n-]{0,200}") {
        let _ = NetConfig::deserialize(&format!("{SERIALIZATION_MAGIC}\nmode 1001\n{body}"));
    }
}
