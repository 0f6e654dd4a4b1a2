//! End-to-end tests of `vnic_sim::gateway`: guests are bare smoltcp `Interface`s
//! (`Medium::Ethernet`) with smoltcp's own DHCP client, wired to a [`Gateway`] by an in-test
//! device (and, in one test, through a real `SimVmnet` host side).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use ndk_model::ethernet::MacAddress;
use proptest::prelude::*;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{dhcpv4, icmp, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr,
    IpEndpoint,
};
use vnic_sim::gateway::{
    ClientState, DhcpConfig, Gateway, GatewayConfig, GatewayMode, EXTERNAL_ADDR, OUTSIDE_HOST,
    OUTSIDE_NAME, OUTSIDE_WEB_BODY, OUTSIDE_WEB_HOST, OUTSIDE_WEB_NAME,
};
use vnic_sim::netconfig::{PortForward, Protocol};
use vnic_sim::pattern::{fill_pattern, Digest};

const GW_MAC: MacAddress = MacAddress([0x5a, 0x94, 0xef, 0x00, 0x00, 0x01]);
const STEP_NS: u64 = 1_000_000;

fn now_instant(now_ns: u64) -> Instant {
    Instant::from_micros(i64::try_from(now_ns / 1000).unwrap())
}

/// An Ethernet device over two queues.
#[derive(Default)]
struct Dev {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}
impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0; len];
        let r = f(&mut b);
        self.0.push_back(b);
        r
    }
}
impl Device for Dev {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let b = self.rx.pop_front()?;
        Some((Rx(b), Tx(&mut self.tx)))
    }
    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }
}

struct Guest {
    mac: MacAddress,
    iface: Interface,
    dev: Dev,
    sockets: SocketSet<'static>,
    dhcp: SocketHandle,
    addr: Option<Ipv4Addr>,
    router: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
}

impl Guest {
    fn new(mac: MacAddress, seed: u64) -> Self {
        let mut dev = Dev::default();
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac.octets())));
        cfg.random_seed = seed;
        let iface = Interface::new(cfg, &mut dev, now_instant(0));
        let mut sockets = SocketSet::new(Vec::new());
        let dhcp = sockets.add(dhcpv4::Socket::new());
        Self {
            mac,
            iface,
            dev,
            sockets,
            dhcp,
            addr: None,
            router: None,
            dns: Vec::new(),
        }
    }

    fn poll(&mut self, now_ns: u64) {
        self.iface
            .poll(now_instant(now_ns), &mut self.dev, &mut self.sockets);
        let event = self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll();
        match event {
            Some(dhcpv4::Event::Configured(c)) => {
                self.addr = Some(c.address.address());
                self.router = c.router;
                self.dns = c.dns_servers.iter().copied().collect();
                self.iface.update_ip_addrs(|a| {
                    a.clear();
                    a.push(IpCidr::Ipv4(c.address)).unwrap();
                });
                if let Some(r) = c.router {
                    self.iface.routes_mut().add_default_ipv4_route(r).unwrap();
                }
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.addr = None;
                self.iface.update_ip_addrs(|a| a.truncate(0));
                self.iface.routes_mut().remove_default_ipv4_route();
            }
            None => {}
        }
    }

    fn tcp(&mut self, bytes: usize) -> SocketHandle {
        self.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; bytes]),
            tcp::SocketBuffer::new(vec![0; bytes]),
        ))
    }

    fn udp(&mut self, port: u16) -> SocketHandle {
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]),
        );
        s.bind(port).unwrap();
        self.sockets.add(s)
    }
}

/// A gateway plus guests; frames go guest → `Gateway::receive`, `Gateway::poll` → guests by MAC.
struct Rig {
    gw: Gateway,
    guests: Vec<Guest>,
    now_ns: u64,
    trace: Digest,
    /// ICMP destination-unreachable frames the gateway emitted.
    unreachable_seen: u64,
}

fn is_icmp_unreachable(f: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(f) else {
        return false;
    };
    let Ok(ip) = smoltcp::wire::Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    ip.next_header() == smoltcp::wire::IpProtocol::Icmp
        && Icmpv4Packet::new_checked(ip.payload())
            .is_ok_and(|i| i.msg_type() == smoltcp::wire::Icmpv4Message::DstUnreachable)
}

impl Rig {
    fn new(config: GatewayConfig, seed: u64, guests: usize) -> Self {
        let guests = (0..guests)
            .map(|i| {
                Guest::new(
                    MacAddress([0x02, 0, 0, 0, 0x10, i as u8 + 1]),
                    seed ^ (i as u64 + 1),
                )
            })
            .collect();
        Self {
            gw: Gateway::new(config, GW_MAC, seed),
            guests,
            now_ns: 0,
            trace: Digest::new(),
            unreachable_seen: 0,
        }
    }

    fn step(&mut self) {
        let now = self.now_ns;
        for g in &mut self.guests {
            g.poll(now);
            while let Some(f) = g.dev.tx.pop_front() {
                self.trace.update(&f);
                self.gw.receive(now, &f);
            }
        }
        let guests = &mut self.guests;
        let trace = &mut self.trace;
        let unreachable = &mut self.unreachable_seen;
        self.gw.poll(now, &mut |f: &[u8]| {
            trace.update(f);
            *unreachable += u64::from(is_icmp_unreachable(f));
            let dst = MacAddress(EthernetFrame::new_checked(f).unwrap().dst_addr().0);
            for g in guests.iter_mut() {
                if dst == g.mac || dst.is_multicast() {
                    g.dev.rx.push_back(f.to_vec());
                }
            }
        });
        for g in &mut self.guests {
            g.poll(now);
        }
        self.now_ns += STEP_NS;
    }

    /// Steps until `done` holds or `steps_max` steps pass; returns whether it held.
    fn run_until(&mut self, steps_max: usize, mut done: impl FnMut(&mut Rig) -> bool) -> bool {
        for _ in 0..steps_max {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn lease_all(&mut self) {
        assert!(
            self.run_until(20_000, |r| r.guests.iter().all(|g| g.addr.is_some())),
            "DHCP did not complete"
        );
    }

    fn g(&mut self, i: usize) -> &mut Guest {
        &mut self.guests[i]
    }
}

fn dns_query(name: &str, id: u16) -> Vec<u8> {
    let mut p = simple_dns::Packet::new_query(id);
    p.set_flags(simple_dns::PacketFlag::RECURSION_DESIRED);
    p.questions.push(simple_dns::Question::new(
        simple_dns::Name::new_unchecked(name),
        simple_dns::TYPE::A.into(),
        simple_dns::CLASS::IN.into(),
        false,
    ));
    p.build_bytes_vec().unwrap()
}

/// Resolves `name` through the guest's DNS server; `None` for NXDOMAIN.
fn resolve(rig: &mut Rig, name: &str) -> Option<Ipv4Addr> {
    let dns = rig.g(0).dns[0];
    let h = rig.g(0).udp(5353);
    rig.g(0)
        .sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(
            &dns_query(name, 0x4242),
            IpEndpoint::new(IpAddress::Ipv4(dns), 53),
        )
        .unwrap();
    let mut reply = None;
    assert!(rig.run_until(5_000, |r| {
        let s = r.g(0).sockets.get_mut::<udp::Socket>(h);
        if let Ok((data, _)) = s.recv() {
            reply = Some(data.to_vec());
        }
        reply.is_some()
    }));
    rig.g(0).sockets.remove(h);
    let bytes = reply.unwrap();
    let p = simple_dns::Packet::parse(&bytes).unwrap();
    assert_eq!(p.id(), 0x4242);
    p.answers.iter().find_map(|a| match &a.rdata {
        simple_dns::rdata::RData::A(a) => Some(Ipv4Addr::from(a.address)),
        _ => None,
    })
}

/// Sends `len` pattern bytes from guest 0 to `dst` over TCP and closes; returns the socket.
fn guest_tcp_send(rig: &mut Rig, dst: SocketAddrV4, len: u64, seed: u64) -> SocketHandle {
    let h = rig.g(0).tcp(65_536);
    let g = rig.g(0);
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(
            g.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(*dst.ip()), dst.port()),
            40_000,
        )
        .unwrap();
    let mut sent = 0u64;
    assert!(
        rig.run_until(60_000, |r| {
            let s = r.g(0).sockets.get_mut::<tcp::Socket>(h);
            while sent < len && s.can_send() {
                let n = s
                    .send(|b| {
                        let n = b.len().min((len - sent) as usize);
                        fill_pattern(seed, sent, &mut b[..n]);
                        (n, n)
                    })
                    .unwrap();
                if n == 0 {
                    break;
                }
                sent += n as u64;
            }
            if sent == len && s.state() == tcp::State::Established {
                s.close();
            }
            sent == len && matches!(s.state(), tcp::State::TimeWait | tcp::State::Closed)
        }),
        "guest TCP send did not finish: sent {sent}"
    );
    h
}

#[test]
fn dhcp_leases_from_the_pool_with_router_and_dns() {
    let mut rig = Rig::new(GatewayConfig::shared_default(), 1, 2);
    rig.lease_all();
    let gw = Ipv4Addr::new(192, 168, 64, 1);
    let mut addrs = Vec::new();
    for g in &rig.guests {
        let a = g.addr.unwrap();
        assert!((2..=254).contains(&a.octets()[3]) && a.octets()[..3] == [192, 168, 64]);
        assert_eq!(g.router, Some(gw));
        assert_eq!(g.dns, vec![gw]);
        addrs.push((g.mac, a));
    }
    assert_ne!(addrs[0].1, addrs[1].1, "two guests, two addresses");
    addrs.sort();
    assert_eq!(rig.gw.leases(), addrs);
    let c = rig.gw.counters();
    assert!(c.dhcp_discover >= 2 && c.dhcp_offer >= 2 && c.dhcp_ack >= 2);
    assert_eq!(c.dhcp_nak, 0);
}

#[test]
fn a_reservation_gets_its_reserved_address() {
    let mut cfg = GatewayConfig::shared_default();
    let mac = MacAddress([0x02, 0, 0, 0, 0x10, 1]);
    let reserved = Ipv4Addr::new(192, 168, 64, 77);
    cfg.dhcp
        .as_mut()
        .unwrap()
        .reservations
        .push((mac, reserved));
    let mut rig = Rig::new(cfg, 2, 2);
    rig.lease_all();
    assert_eq!(rig.guests[0].addr, Some(reserved));
    assert_ne!(rig.guests[1].addr, Some(reserved));
}

#[test]
fn leases_expire_and_renew() {
    let mut cfg = GatewayConfig::shared_default();
    cfg.dhcp.as_mut().unwrap().lease_duration_s = 20;
    let mut rig = Rig::new(cfg, 3, 1);
    rig.lease_all();
    let first = rig.guests[0].addr;
    let acks = rig.gw.counters().dhcp_ack;
    // smoltcp renews at T1 = 10 s; after 30 s the lease must still be held (renewed).
    for _ in 0..30_000 {
        rig.step();
    }
    assert!(rig.gw.counters().dhcp_ack > acks, "no renewal ACK");
    assert_eq!(rig.guests[0].addr, first);
    assert_eq!(rig.gw.leases().len(), 1);
    // Left alone (no more renewals) the lease expires by `now_ns`.
    let later = rig.now_ns + 21_000_000_000;
    rig.gw.poll(later, &mut |_| {});
    assert!(rig.gw.leases().is_empty());
}

#[test]
fn arp_and_ping_the_gateway() {
    let mut rig = Rig::new(GatewayConfig::shared_default(), 4, 1);
    rig.lease_all();
    let h = rig.g(0).sockets.add(icmp::Socket::new(
        icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
        icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
    ));
    rig.g(0)
        .sockets
        .get_mut::<icmp::Socket>(h)
        .bind(icmp::Endpoint::Ident(0x77))
        .unwrap();
    let req = Icmpv4Repr::EchoRequest {
        ident: 0x77,
        seq_no: 1,
        data: b"vnic ping",
    };
    let mut buf = vec![0; req.buffer_len()];
    req.emit(
        &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
        &ChecksumCapabilities::default(),
    );
    let gw = rig.gw.address();
    rig.g(0)
        .sockets
        .get_mut::<icmp::Socket>(h)
        .send_slice(&buf, IpAddress::Ipv4(gw))
        .unwrap();
    let mut got = None;
    assert!(rig.run_until(5_000, |r| {
        if let Ok((data, from)) = r.g(0).sockets.get_mut::<icmp::Socket>(h).recv() {
            got = Some((data.to_vec(), from));
        }
        got.is_some()
    }));
    let (data, from) = got.unwrap();
    assert_eq!(from, IpAddress::Ipv4(gw));
    let p = Icmpv4Packet::new_checked(&data[..]).unwrap();
    let repr = Icmpv4Repr::parse(&p, &ChecksumCapabilities::default()).unwrap();
    assert!(
        matches!(repr, Icmpv4Repr::EchoReply { ident: 0x77, seq_no: 1, data } if data == b"vnic ping")
    );
    let c = rig.gw.counters();
    assert!(c.arp_replies >= 1, "the guest had to ARP for the gateway");
    assert_eq!(c.icmp_echo_replies, 1);
}

#[test]
fn dns_resolves_the_outside_names_and_nxdomain_otherwise() {
    let mut rig = Rig::new(GatewayConfig::shared_default(), 5, 1);
    rig.lease_all();
    assert_eq!(resolve(&mut rig, OUTSIDE_NAME), Some(OUTSIDE_HOST));
    assert_eq!(resolve(&mut rig, OUTSIDE_WEB_NAME), Some(OUTSIDE_WEB_HOST));
    assert_eq!(resolve(&mut rig, "nowhere.example"), None);
    let c = rig.gw.counters();
    assert_eq!((c.dns_queries, c.dns_answers, c.dns_no_answer), (3, 2, 1));
}

#[test]
fn dns_proxy_off_means_port_unreachable() {
    let mut cfg = GatewayConfig::shared_default();
    cfg.dns_proxy = false;
    let mut rig = Rig::new(cfg, 6, 1);
    rig.lease_all();
    assert!(
        rig.guests[0].dns.is_empty(),
        "no DNS option without the proxy"
    );
    let gw = rig.gw.address();
    let h = rig.g(0).udp(5353);
    rig.g(0)
        .sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(
            &dns_query(OUTSIDE_NAME, 1),
            IpEndpoint::new(IpAddress::Ipv4(gw), 53),
        )
        .unwrap();
    assert!(
        rig.run_until(3_000, |r| r.unreachable_seen > 0),
        "no port unreachable"
    );
    assert_eq!(rig.gw.counters().dns_queries, 0);
    assert!(!rig.g(0).sockets.get_mut::<udp::Socket>(h).can_recv());
}

#[test]
fn tcp_256k_through_nat_reaches_the_outside_sink_intact() {
    let mut rig = Rig::new(GatewayConfig::shared_default(), 7, 1);
    rig.lease_all();
    let len = 256 * 1024;
    guest_tcp_send(&mut rig, SocketAddrV4::new(OUTSIDE_HOST, 9), len, 99);
    let reports = rig.gw.sink_reports();
    let r = reports
        .iter()
        .find(|r| r.host == OUTSIDE_HOST && r.port == 9)
        .expect("outside sink saw the connection");
    assert_eq!(r.bytes, len);
    assert_eq!(r.digest, Digest::of_pattern(99, len));
    assert!(r.closed);
    assert_eq!(
        *r.peer.ip(),
        EXTERNAL_ADDR,
        "the outside sees the NAT's address"
    );
    assert_ne!(r.peer.port(), 40_000, "the NAT allocated a port");
    let c = rig.gw.counters();
    assert!(c.nat_translated_out > 100 && c.nat_translated_in > 10);
    assert_eq!(c.nat_sessions, 1);
}

#[test]
fn udp_echo_through_nat() {
    let mut rig = Rig::new(GatewayConfig::shared_default(), 8, 1);
    rig.lease_all();
    let h = rig.g(0).udp(6000);
    let payload: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
    rig.g(0)
        .sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(&payload, IpEndpoint::new(IpAddress::Ipv4(OUTSIDE_HOST), 7))
        .unwrap();
    let mut got = None;
    assert!(rig.run_until(5_000, |r| {
        if let Ok((d, meta)) = r.g(0).sockets.get_mut::<udp::Socket>(h).recv() {
            got = Some((d.to_vec(), meta.endpoint));
        }
        got.is_some()
    }));
    let (d, from) = got.unwrap();
    assert_eq!(d, payload);
    assert_eq!(from, IpEndpoint::new(IpAddress::Ipv4(OUTSIDE_HOST), 7));
}

#[test]
fn http_get_through_nat_returns_the_body() {
    let mut rig = Rig::new(GatewayConfig::shared_default(), 9, 1);
    rig.lease_all();
    let web = resolve(&mut rig, OUTSIDE_WEB_NAME).unwrap();
    let h = rig.g(0).tcp(8192);
    let g = rig.g(0);
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(
            g.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(web), 80),
            41_000,
        )
        .unwrap();
    let mut sent = false;
    let mut body = Vec::new();
    assert!(rig.run_until(10_000, |r| {
        let s = r.g(0).sockets.get_mut::<tcp::Socket>(h);
        if !sent && s.can_send() {
            s.send_slice(b"GET / HTTP/1.0\r\nHost: www.vnic.test\r\n\r\n")
                .unwrap();
            sent = true;
        }
        while let Ok(d) = s.recv(|b| (b.len(), b.to_vec())) {
            if d.is_empty() {
                break;
            }
            body.extend_from_slice(&d);
        }
        sent && !s.may_recv() && s.state() != tcp::State::SynSent
    }));
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(text.ends_with(OUTSIDE_WEB_BODY), "{text}");
}

#[test]
fn a_port_forward_reaches_a_guest_tcp_server() {
    let mut cfg = GatewayConfig::shared_default();
    let mac = MacAddress([0x02, 0, 0, 0, 0x10, 1]);
    let guest_ip = Ipv4Addr::new(192, 168, 64, 50);
    cfg.dhcp
        .as_mut()
        .unwrap()
        .reservations
        .push((mac, guest_ip));
    cfg.port_forwards.push(PortForward {
        protocol: Protocol::Tcp,
        internal_port: 8080,
        external_port: 18_080,
        internal_address: IpAddr::V4(guest_ip),
        external_address: None,
    });
    let mut rig = Rig::new(cfg, 10, 1);
    rig.lease_all();
    assert_eq!(rig.guests[0].addr, Some(guest_ip));
    let h = rig.g(0).tcp(65_536);
    rig.g(0)
        .sockets
        .get_mut::<tcp::Socket>(h)
        .listen(8080)
        .unwrap();
    let len = 100_000;
    let id = rig
        .gw
        .host_tcp_send(rig.now_ns, SocketAddrV4::new(EXTERNAL_ADDR, 18_080), len, 5);
    let mut digest = Digest::new();
    let mut peer = None;
    assert!(rig.run_until(60_000, |r| {
        let s = r.g(0).sockets.get_mut::<tcp::Socket>(h);
        if peer.is_none() {
            peer = s.remote_endpoint();
        }
        while let Ok(d) = s.recv(|b| (b.len(), b.to_vec())) {
            if d.is_empty() {
                break;
            }
            digest.update(&d);
        }
        if s.state() == tcp::State::CloseWait {
            s.close();
        }
        r.gw.host_client(id).state == ClientState::Done
    }));
    assert_eq!(digest, Digest::of_pattern(5, len));
    assert_eq!(rig.gw.host_client(id).bytes_sent, len);
    let peer = peer.unwrap();
    assert_eq!(
        peer.addr,
        IpAddress::Ipv4(rig.gw.address()),
        "host clients come from the gateway"
    );
    assert!(rig.gw.counters().forward_hits > 10);
    // A port with no rule is a counted drop.
    let before = rig.gw.counters().drops.no_nat_session;
    let bad = rig
        .gw
        .host_tcp_send(rig.now_ns, SocketAddrV4::new(EXTERNAL_ADDR, 18_081), 10, 5);
    rig.run_until(100, |_| false);
    assert!(rig.gw.counters().drops.no_nat_session > before);
    assert_eq!(rig.gw.host_client(bad).bytes_sent, 0);
}

#[test]
fn host_mode_has_no_outside_but_reaches_the_host_services() {
    let mut rig = Rig::new(GatewayConfig::host_default(), 11, 1);
    rig.lease_all();
    let gw = rig.gw.address();
    assert_eq!(gw, Ipv4Addr::new(192, 168, 65, 1));
    assert_eq!(rig.gw.config().mode, GatewayMode::Host);
    // The outside is not there.
    let h = rig.g(0).tcp(4096);
    let g = rig.g(0);
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(
            g.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(OUTSIDE_HOST), 9),
            42_000,
        )
        .unwrap();
    rig.run_until(2_000, |_| false);
    assert!(rig.gw.counters().drops.no_outside >= 1);
    assert_eq!(rig.gw.counters().nat_translated_out, 0);
    assert_ne!(
        rig.g(0).sockets.get_mut::<tcp::Socket>(h).state(),
        tcp::State::Established
    );
    rig.g(0).sockets.get_mut::<tcp::Socket>(h).abort();
    // The host's sink at .1:9 is.
    guest_tcp_send(&mut rig, SocketAddrV4::new(gw, 9), 50_000, 3);
    let r = rig.gw.sink_reports();
    let r = r.iter().find(|r| r.host == gw).unwrap();
    assert_eq!(r.digest, Digest::of_pattern(3, 50_000));
    assert_eq!(*r.peer.ip(), rig.guests[0].addr.unwrap());
}

#[test]
fn bridged_lan_has_a_router_and_a_lan_host() {
    let mut rig = Rig::new(GatewayConfig::bridged_lan(), 12, 1);
    rig.lease_all();
    let a = rig.guests[0].addr.unwrap();
    assert_eq!(a.octets()[..3], [192, 168, 1]);
    assert!((100..=199).contains(&a.octets()[3]));
    let (lan_ip, _) = rig.gw.lan_host().unwrap();
    assert_eq!(lan_ip, Ipv4Addr::new(192, 168, 1, 10));
    // TCP echo on the LAN host.
    let h = rig.g(0).tcp(16_384);
    let g = rig.g(0);
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(
            g.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(lan_ip), 7),
            43_000,
        )
        .unwrap();
    let mut msg = vec![0u8; 3000];
    fill_pattern(8, 0, &mut msg);
    let mut sent = false;
    let mut back = Vec::new();
    assert!(rig.run_until(10_000, |r| {
        let s = r.g(0).sockets.get_mut::<tcp::Socket>(h);
        if !sent && s.can_send() {
            s.send_slice(&msg).unwrap();
            sent = true;
        }
        while let Ok(d) = s.recv(|b| (b.len(), b.to_vec())) {
            if d.is_empty() {
                break;
            }
            back.extend_from_slice(&d);
        }
        back.len() == msg.len()
    }));
    assert_eq!(back, msg);
    // Nothing beyond the LAN.
    let u = rig.g(0).udp(7000);
    rig.g(0)
        .sockets
        .get_mut::<udp::Socket>(u)
        .send_slice(b"x", IpEndpoint::new(IpAddress::Ipv4(OUTSIDE_HOST), 7))
        .unwrap();
    rig.run_until(3_000, |_| false);
    assert!(rig.gw.counters().drops.no_outside >= 1);
}

#[test]
fn runs_are_deterministic_per_seed() {
    let run = |seed| {
        let mut rig = Rig::new(GatewayConfig::shared_default(), seed, 1);
        rig.lease_all();
        guest_tcp_send(&mut rig, SocketAddrV4::new(OUTSIDE_HOST, 9), 20_000, 1);
        (rig.trace, rig.gw.counters(), rig.gw.sink_reports())
    };
    let a = run(21);
    assert_eq!(a, run(21));
    assert_ne!(a.0, run(22).0, "another seed, another run");
}

fn eth_ipv4(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[..6].copy_from_slice(&GW_MAC.octets());
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0x10, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn malformed_frames_are_counted_drops() {
    let mut gw = Gateway::new(GatewayConfig::shared_default(), GW_MAC, 13);
    gw.receive(0, &[1, 2, 3]);
    assert_eq!(gw.counters().drops.malformed_frame, 1);
    // Truncated IPv4 (header says 20 bytes of header, buffer has 10).
    gw.receive(0, &eth_ipv4(&[0x45, 0, 0, 60, 0, 0, 0, 0, 64, 17]));
    assert_eq!(gw.counters().drops.malformed_ipv4, 1);
    // A DHCP DISCOVER whose options run off the end: build a real one and cut its options.
    let mut rig = Rig::new(GatewayConfig::shared_default(), 13, 1);
    let mut discover = None;
    rig.g(0).poll(0);
    if let Some(f) = rig.g(0).dev.tx.pop_front() {
        discover = Some(f);
    }
    let discover = discover.expect("smoltcp sent a DISCOVER");
    // Options start at 14 + 20 + 8 + 240; replace them with an option claiming 200 bytes.
    let mut bad = discover[..14 + 20 + 8 + 240].to_vec();
    bad.extend_from_slice(&[53, 1, 1, 61, 200, 1, 2]);
    let ip_len = (bad.len() - 14) as u16;
    bad[16..18].copy_from_slice(&ip_len.to_be_bytes());
    bad[24..26].copy_from_slice(&[0, 0]);
    let ck = ipv4_checksum(&bad[14..34]);
    bad[24..26].copy_from_slice(&ck.to_be_bytes());
    let udp_len = (bad.len() - 34) as u16;
    bad[38..40].copy_from_slice(&udp_len.to_be_bytes());
    bad[40..42].copy_from_slice(&[0, 0]); // no UDP checksum
    gw.receive(0, &bad);
    assert_eq!(gw.counters().drops.malformed_dhcp, 1, "{:?}", gw.counters());
    // The intact one is answered.
    gw.receive(0, &discover);
    let mut out = 0;
    gw.poll(0, &mut |_| out += 1);
    assert_eq!((gw.counters().dhcp_offer, out), (1, 1));
    // Unknown ethertype and IPv6.
    let mut v6 = eth_ipv4(&[0x60; 40]);
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    gw.receive(0, &v6);
    assert_eq!(gw.counters().drops.unknown_ethertype, 1);
    assert_eq!(gw.counters().frames_in, 5);
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[test]
fn frames_through_a_real_simvmnet_host_side() {
    use vnic_sim::rng::SimRng;
    use vnic_sim::vmnet::{
        GuestId, InterfaceDesc, NetworkKey, Notification, OperatingMode, RxDesc, SimVmnet, TxDesc,
        VmnetKnobs,
    };
    // The pumping contract: every `host_recv` frame goes to `receive`, every `poll` frame to
    // `host_send`; the guest talks to vmnet with read/write.
    let mut vmnet = SimVmnet::new(VmnetKnobs::default(), &SimRng::new(31));
    let mut now = 0u64;
    let h = vmnet
        .start_interface(now, &InterfaceDesc::new(OperatingMode::Shared, GuestId(0)))
        .unwrap();
    let mut params = None;
    for _ in 0..1000 {
        now += STEP_NS;
        vmnet.advance(now);
        while let Some(n) = vmnet.poll_notification() {
            if let Notification::StartCompleted { result, .. } = n {
                params = Some(result.unwrap());
            }
        }
        if params.is_some() {
            break;
        }
    }
    let mac = params.unwrap().mac.unwrap();
    let mut guest = Guest::new(mac, 31);
    let mut gw = Gateway::new(GatewayConfig::shared_default(), GW_MAC, 31);
    let u = guest.udp(6001);
    let mut asked = false;
    let mut echoed = None;
    for _ in 0..20_000 {
        guest.poll(now);
        let frames: Vec<Vec<u8>> = guest.dev.tx.drain(..).collect();
        if !frames.is_empty() {
            let descs: Vec<TxDesc<'_>> = frames.iter().map(|f| TxDesc::frame(f)).collect();
            vmnet.write(h, &descs).unwrap();
        }
        vmnet.advance(now);
        while let Some(f) = vmnet.host_recv(&NetworkKey::Shared) {
            gw.receive(now, &f);
        }
        gw.poll(now, &mut |f: &[u8]| {
            vmnet.host_send(&NetworkKey::Shared, f).unwrap();
        });
        // The world's other duty: leases feed vmnet's source-IPv4 rule.
        for (m, ip) in gw.leases() {
            vmnet.set_lease(&NetworkKey::Shared, m, Some(ip));
        }
        vmnet.advance(now);
        let mut bufs = vec![vec![0u8; 1514]; 16];
        let mut descs: Vec<RxDesc<'_>> = bufs.iter_mut().map(|b| RxDesc::new(b)).collect();
        let n = vmnet.read(h, &mut descs).unwrap();
        for d in &descs[..n] {
            guest.dev.rx.push_back(d.frame().to_vec());
        }
        guest.poll(now);
        let s = guest.sockets.get_mut::<udp::Socket>(u);
        if guest.addr.is_some() && !asked {
            s.send_slice(
                b"through vmnet",
                IpEndpoint::new(IpAddress::Ipv4(OUTSIDE_HOST), 7),
            )
            .unwrap();
            asked = true;
        }
        if let Ok((d, _)) = s.recv() {
            echoed = Some(d.to_vec());
            break;
        }
        now += STEP_NS;
    }
    assert_eq!(gw.leases(), vec![(mac, guest.addr.unwrap())]);
    assert_eq!(
        echoed.as_deref(),
        Some(&b"through vmnet"[..]),
        "{:?}",
        gw.counters()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_bytes_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..16)) {
        let mut gw = Gateway::new(GatewayConfig::shared_default(), GW_MAC, 14);
        for (i, f) in frames.iter().enumerate() {
            gw.receive(i as u64, f);
            // Also as a frame addressed to the gateway carrying IPv4 / ARP.
            let mut g = eth_ipv4(f);
            gw.receive(i as u64, &g);
            g[13] = 0x06;
            gw.receive(i as u64, &g);
        }
        gw.poll(1_000_000, &mut |_| {});
        let c = gw.counters();
        prop_assert_eq!(c.frames_in, frames.len() as u64 * 3);
    }
}

#[test]
fn dhcp_config_for_subnet_matches_the_policy() {
    let d = DhcpConfig::for_subnet(GatewayConfig::shared_default().subnet);
    assert_eq!(d.pool_start, Ipv4Addr::new(192, 168, 64, 2));
    assert_eq!(d.pool_end, Ipv4Addr::new(192, 168, 64, 254));
    assert_eq!(d.lease_duration_s, 86_400);
}
