//! Unit tests of the gateway's routing with hand-built frames (the end-to-end rig with smoltcp
//! guests is in `simulator/tests/gateway.rs`).

use super::*;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

const GW_MAC: MacAddress = MacAddress([0x5a, 0, 0, 0, 0, 1]);
const GUEST_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 9]);
const GUEST: [u8; 4] = [192, 168, 64, 9];

fn ping(dst: Ipv4Addr, ttl: u8, ident: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(GUEST_MAC.octets(), GW_MAC.octets())
        .ipv4(GUEST, dst.octets(), ttl)
        .icmpv4_echo_request(ident, 1);
    let mut out = Vec::new();
    b.write(&mut out, b"abcdefgh").unwrap();
    out
}

fn udp(dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(GUEST_MAC.octets(), GW_MAC.octets())
        .ipv4(GUEST, dst.octets(), 64)
        .udp(5000, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn drain(gw: &mut Gateway, now_ns: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..4 {
        gw.poll(now_ns, &mut |f| out.push(f.to_vec()));
    }
    out
}

#[test]
fn ping_through_nat_comes_back_with_the_guests_identifier() {
    let mut gw = Gateway::new(GatewayConfig::shared_default(), GW_MAC, 1);
    gw.receive(0, &ping(OUTSIDE_HOST, 64, 0x1234));
    let out = drain(&mut gw, 0);
    assert_eq!(out.len(), 1, "one echo reply");
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4");
    };
    assert_eq!(ip.header().source_addr(), OUTSIDE_HOST);
    assert_eq!(ip.header().destination_addr(), Ipv4Addr::from(GUEST));
    assert_eq!(ip.header().ttl(), 63, "decremented on the way back in");
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("not ICMP");
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 0x1234, seq: 1 })
    );
    assert_eq!(out[0][..6], GUEST_MAC.octets());
    let c = gw.counters();
    assert_eq!(
        (c.nat_translated_out, c.nat_translated_in, c.nat_sessions),
        (1, 1, 1)
    );
    // Idle ICMP sessions go after 60 s.
    drain(&mut gw, nat::UDP_IDLE_NS + 1);
    assert_eq!(gw.counters().nat_sessions_active, 0);
}

#[test]
fn ttl_unknown_outside_and_foreign_frames_are_counted() {
    let mut gw = Gateway::new(GatewayConfig::shared_default(), GW_MAC, 2);
    gw.receive(0, &ping(OUTSIDE_HOST, 1, 1));
    assert_eq!(gw.counters().drops.ttl_expired, 1);
    gw.receive(0, &ping(Ipv4Addr::new(198, 51, 100, 99), 64, 1));
    assert_eq!(gw.counters().drops.no_route, 1);
    let mut foreign = ping(OUTSIDE_HOST, 64, 1);
    foreign[..6].copy_from_slice(&[0x02, 1, 2, 3, 4, 5]);
    gw.receive(0, &foreign);
    assert_eq!(gw.counters().drops.not_for_us, 1);
    let mut bad_ck = ping(OUTSIDE_HOST, 64, 1);
    bad_ck[14 + 10] ^= 0xff;
    gw.receive(0, &bad_ck);
    assert_eq!(gw.counters().drops.malformed_ipv4, 1);
    // A corrupted ICMP payload is not laundered by the NAT's checksum refill.
    let mut bad_payload = ping(OUTSIDE_HOST, 64, 1);
    *bad_payload.last_mut().unwrap() ^= 0x01;
    gw.receive(0, &bad_payload);
    assert_eq!(gw.counters().drops.malformed_ipv4, 2);
    assert!(drain(&mut gw, 0).is_empty());
    assert_eq!(gw.counters().drops.total(), 5);
    assert_eq!(gw.counters().frames_in, 5);
}

#[test]
fn host_mode_drops_off_subnet_and_answers_at_the_gateway() {
    let mut cfg = GatewayConfig::host_default();
    cfg.subnet = crate::netconfig::SHARED_SUBNET_DEFAULT; // so GUEST is on-link
    let mut gw = Gateway::new(cfg, GW_MAC, 3);
    gw.receive(0, &ping(OUTSIDE_HOST, 64, 7));
    assert_eq!(gw.counters().drops.no_outside, 1);
    gw.receive(0, &ping(gw.address(), 64, 7));
    gw.receive(0, &udp(gw.address(), 7, b"echo me"));
    let out = drain(&mut gw, 0);
    assert_eq!(gw.counters().icmp_echo_replies, 1);
    let udp_back = out
        .iter()
        .filter_map(|f| SlicedPacket::from_ethernet(f).ok())
        .find_map(|p| match p.transport {
            Some(TransportSlice::Udp(u)) => Some(u.payload().to_vec()),
            _ => None,
        });
    assert_eq!(udp_back.as_deref(), Some(&b"echo me"[..]));
}

#[test]
fn from_netconfig_maps_the_switches() {
    let mut nc = NetConfig::new(OperatingMode::Shared);
    nc.add_dhcp_reservation(GUEST_MAC, Ipv4Addr::from(GUEST))
        .unwrap();
    nc.add_port_forwarding_rule(Protocol::Tcp, 80, 8080, IpAddr::V4(Ipv4Addr::from(GUEST)))
        .unwrap();
    let g = GatewayConfig::from_netconfig(&nc);
    assert_eq!(g.mode, GatewayMode::Shared);
    assert!(g.nat44 && g.dns_proxy);
    assert_eq!(
        g.dhcp.as_ref().unwrap().reservations,
        vec![(GUEST_MAC, Ipv4Addr::from(GUEST))]
    );
    assert_eq!(g.port_forwards.len(), 1);
    assert_eq!(g.mtu_bytes, 1500);
    let h = GatewayConfig::from_netconfig(&NetConfig::new(OperatingMode::Host));
    assert!(!h.nat44 && h.dhcp.is_some() && h.mode == GatewayMode::Host);
    let b = GatewayConfig::from_netconfig(&NetConfig::new(OperatingMode::Bridged));
    assert!(b.dhcp.is_none() && !b.nat44);
}

#[test]
fn deadlines_track_pending_work() {
    let mut gw = Gateway::new(GatewayConfig::shared_default(), GW_MAC, 4);
    gw.receive(5, &ping(OUTSIDE_HOST, 64, 1));
    assert_eq!(gw.next_deadline_ns(5), Some(5), "frames waiting");
    drain(&mut gw, 5);
    let d = gw.next_deadline_ns(5).unwrap();
    assert!(
        (5..=5 + nat::UDP_IDLE_NS).contains(&d),
        "session expiry bounds it: {d}"
    );
}
