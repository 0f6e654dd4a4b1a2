//! `vnic_sim::stack` against a back-to-back rig: two `OsStack`s, each on its own pool, four
//! queues, `EthernetService` and a real `VirtualEthernet<FakePort>`, with the two fake ports
//! wired together by a test "cable" (optionally lossy and reordering). One test uses a minimal
//! DHCP server, written here with smoltcp's wire types, in place of node B's stack.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use ndk_model::ethernet::{EthernetService, MacAddress};
use ndk_model::notify::{FakeNotifier, Notifier};
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};
use vnic_driver::attach::{attach, AttachedNic};
use vnic_driver::nic::{NicConfig, VirtualEthernet};
use vnic_driver::port::fake::FakePort;
use vnic_driver::port::PortInfo;
use vnic_sim::pattern::Digest;
use vnic_sim::rng::SimRng;
use vnic_sim::stack::{Addressing, AppFailure, AppState, OsStack, StackConfig};

const MAC_A: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x0a]);
const MAC_B: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x0b]);
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// One host: pool, service, NIC on a fake port, and the stack on the system halves.
struct Node {
    pool: PacketBufferPool,
    service: EthernetService,
    nic: VirtualEthernet<FakePort>,
    stack: OsStack,
    doorbell: Arc<FakeNotifier>,
}

struct NodeSpec {
    mac: MacAddress,
    queue_capacity: u32,
    pool_packets: u32,
    rx_buffers_target: u32,
    addressing: Addressing,
    seed: u64,
}

impl NodeSpec {
    fn new(mac: MacAddress, addressing: Addressing, seed: u64) -> Self {
        Self {
            mac,
            queue_capacity: 256,
            pool_packets: 256 * 4 + 64,
            rx_buffers_target: 128,
            addressing,
            seed,
        }
    }
}

fn stat(ip: Ipv4Addr) -> Addressing {
    Addressing::Static {
        cidr: Ipv4Cidr::new(ip, 24),
        gateway: None,
    }
}

fn node(spec: &NodeSpec, now_ns: u64) -> Node {
    let info = PortInfo::vmnet_documented(spec.mac);
    let cap = spec.queue_capacity;
    let pool =
        PacketBufferPool::create(PoolConfig::new(*b"stck", spec.pool_packets, 2048)).unwrap();
    let AttachedNic {
        nic,
        service,
        iface,
    } = attach(FakePort::new(info), &pool, cap, NicConfig::default()).unwrap();
    let doorbell = Arc::new(FakeNotifier::new());
    let mut cfg = StackConfig::new(spec.mac, spec.addressing, spec.seed);
    cfg.rx_buffers_target = spec.rx_buffers_target;
    let bell: Arc<dyn Notifier> = doorbell.clone();
    let stack = OsStack::new(cfg, iface, bell, now_ns);
    Node {
        pool,
        service,
        nic,
        stack,
        doorbell,
    }
}

impl Node {
    /// Stack then driver; returns whether either moved.
    fn step(&mut self, now_ns: u64) -> bool {
        let mut did = self.stack.poll(now_ns);
        let out = self.nic.poll(self.service.link_mut()).unwrap();
        did |= !out.is_idle();
        did
    }
}

/// The cable between the two fake ports: drops `loss_ppm` and swaps adjacent frames with
/// `reorder_ppm`, from a seeded rng.
struct Cable {
    rng: SimRng,
    loss_ppm: u32,
    reorder_ppm: u32,
    dropped: u64,
    reordered: u64,
}

impl Cable {
    fn clean() -> Self {
        Self::lossy(0, 0, 0)
    }

    fn lossy(seed: u64, loss_ppm: u32, reorder_ppm: u32) -> Self {
        Self {
            rng: SimRng::new(seed),
            loss_ppm,
            reorder_ppm,
            dropped: 0,
            reordered: 0,
        }
    }

    fn carry(&mut self, from: &mut FakePort, to: &mut FakePort) -> bool {
        let mut frames = from.take_outbound();
        if frames.is_empty() {
            return false;
        }
        for i in 1..frames.len() {
            if self.rng.chance_ppm(self.reorder_ppm) {
                frames.swap(i - 1, i);
                self.reordered += 1;
            }
        }
        for f in frames {
            if self.rng.chance_ppm(self.loss_ppm) {
                self.dropped += 1;
            } else {
                to.push_inbound(&f);
            }
        }
        true
    }
}

struct Pair {
    a: Node,
    b: Node,
    cable: Cable,
    now_ns: u64,
    steps: u64,
}

impl Pair {
    fn new(a: &NodeSpec, b: &NodeSpec, cable: Cable) -> Self {
        Self {
            a: node(a, 0),
            b: node(b, 0),
            cable,
            now_ns: 0,
            steps: 0,
        }
    }

    fn statics(seed: u64) -> Self {
        Self::new(
            &NodeSpec::new(MAC_A, stat(IP_A), seed),
            &NodeSpec::new(MAC_B, stat(IP_B), seed + 1),
            Cable::clean(),
        )
    }

    /// One round: both nodes, then the cable both ways. Time moves 10 µs per busy round (a
    /// wire), or jumps to the next deadline when idle.
    fn step(&mut self, until_ns: u64) {
        let now = self.now_ns;
        let mut did = self.a.step(now);
        did |= self.b.step(now);
        did |= self
            .cable
            .carry(self.a.nic.port_mut(), self.b.nic.port_mut());
        did |= self
            .cable
            .carry(self.b.nic.port_mut(), self.a.nic.port_mut());
        self.steps += 1;
        if did {
            self.now_ns += 10_000;
        } else {
            let next = [
                self.a.stack.next_deadline_ns(now),
                self.b.stack.next_deadline_ns(now),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + 10 * MS)
            .min(until_ns);
            self.now_ns = next.max(now + 1_000);
        }
    }

    /// Steps until `done` or `limit_ns` of simulated time; returns whether `done` held.
    fn run_until(&mut self, limit_ns: u64, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now_ns + limit_ns;
        // Bounded: time moves at least 1 µs per step.
        while self.now_ns < end {
            if done(self) {
                return true;
            }
            self.step(end);
        }
        done(self)
    }

    fn run_for(&mut self, duration_ns: u64) {
        let end = self.now_ns + duration_ns;
        self.run_until(duration_ns, |p| p.now_ns >= end);
    }
}

fn finished(s: &AppState) -> bool {
    matches!(s, AppState::Done | AppState::Failed(_))
}

#[test]
fn static_ping_a_to_b_gets_every_reply() {
    let mut p = Pair::statics(1);
    let id = p.a.stack.ping(IP_B, 4, 10 * MS);
    assert!(p.run_until(5 * S, |p| finished(&p.a.stack.app(id).state)));
    let r = p.a.stack.app(id);
    assert_eq!(r.state, AppState::Done);
    assert_eq!(r.pings_sent, 4);
    assert_eq!(r.pings_received, 4);
    assert!(r.rtt_ns_min.unwrap() <= r.rtt_ns_max.unwrap());
    // B answered from its own stack: it took the requests from Rx completion.
    assert!(p.b.stack.counters().rx_frames >= 4);
    assert!(p.a.doorbell.notified_total() > 0);
    assert_eq!(p.a.stack.packets_held(), 0);
}

#[test]
fn ping_to_a_silent_address_times_out_with_no_replies() {
    let mut p = Pair::statics(2);
    let id = p.a.stack.ping(Ipv4Addr::new(10, 0, 0, 99), 3, 10 * MS);
    assert!(p.run_until(10 * S, |p| finished(&p.a.stack.app(id).state)));
    let r = p.a.stack.app(id);
    assert_eq!(r.state, AppState::Done);
    assert_eq!(r.pings_received, 0);
}

fn transfer(p: &mut Pair, len_bytes: u64, seed: u64, limit_ns: u64) {
    let sink = p.b.stack.tcp_sink(5001);
    let send =
        p.a.stack
            .tcp_send(SocketAddrV4::new(IP_B, 5001), len_bytes, seed);
    let ok = p.run_until(limit_ns, |p| {
        finished(&p.a.stack.app(send).state) && finished(&p.b.stack.app(sink).state)
    });
    let (rs, rr) = (p.a.stack.app(send), p.b.stack.app(sink));
    assert!(ok, "transfer did not finish: sender {rs:?} sink {rr:?}");
    assert_eq!(rs.state, AppState::Done, "{rs:?}");
    assert_eq!(rr.state, AppState::Done, "{rr:?}");
    assert_eq!(rs.bytes_sent, len_bytes);
    assert_eq!(rr.bytes_received, len_bytes);
    assert_eq!(rr.digest, Digest::of_pattern(seed, len_bytes));
    assert_eq!(rr.connections, 1);
}

#[test]
fn tcp_one_mebibyte_a_to_b_arrives_intact() {
    #[allow(clippy::disallowed_methods, reason = "reports the test's wall time")]
    let started = std::time::Instant::now();
    let mut p = Pair::statics(3);
    transfer(&mut p, 1 << 20, 77, 60 * S);
    let c = p.a.stack.counters();
    assert!(c.tx_frames_submitted > 700, "{c:?}");
    assert_eq!(c.tx_completed_error, 0);
    assert_eq!(p.a.nic.counters().tx.dropped_total(), 0);
    eprintln!(
        "1 MiB: {:?} wall, {} ms simulated, {} steps",
        started.elapsed(),
        p.now_ns / MS,
        p.steps
    );
}

#[test]
fn tcp_ten_mebibytes_finish() {
    let mut p = Pair::statics(30);
    transfer(&mut p, 10 << 20, 78, 600 * S);
}

#[test]
fn tcp_survives_loss_and_reordering() {
    let mut p = Pair::new(
        &NodeSpec::new(MAC_A, stat(IP_A), 4),
        &NodeSpec::new(MAC_B, stat(IP_B), 5),
        Cable::lossy(99, 20_000, 20_000),
    );
    transfer(&mut p, 256 * 1024, 8, 300 * S);
    assert!(p.cable.dropped > 0 && p.cable.reordered > 0);
}

#[test]
fn tcp_echo_returns_the_stream() {
    let mut p = Pair::statics(6);
    let echo = p.b.stack.tcp_echo(7);
    // A streams to B's echo; the echo comes back on the same connection and A's sender
    // digests it.
    let send = p.a.stack.tcp_send(SocketAddrV4::new(IP_B, 7), 100_000, 21);
    assert!(p.run_until(60 * S, |p| finished(&p.a.stack.app(send).state)));
    assert_eq!(p.a.stack.app(send).state, AppState::Done);
    p.run_for(S);
    let r = p.a.stack.app(send);
    assert_eq!(r.bytes_received, 100_000);
    assert_eq!(r.digest, Digest::of_pattern(21, 100_000));
    let e = p.b.stack.app(echo);
    assert_eq!(e.state, AppState::Running);
    assert_eq!(e.connections, 1);
    assert_eq!(e.bytes_received, 100_000);
    assert_eq!(e.bytes_sent, 100_000);
    assert_eq!(e.digest, Digest::of_pattern(21, 100_000));
    // The server listens again: a second connection is accepted too.
    let send2 = p.a.stack.tcp_send(SocketAddrV4::new(IP_B, 7), 10_000, 22);
    assert!(p.run_until(60 * S, |p| finished(&p.a.stack.app(send2).state)));
    assert_eq!(p.a.stack.app(send2).state, AppState::Done);
    p.run_for(S);
    assert_eq!(p.b.stack.app(echo).connections, 2);
    assert_eq!(p.a.stack.app(send2).bytes_received, 10_000);
}

#[test]
fn udp_echo_answers_every_probe() {
    let mut p = Pair::statics(7);
    let echo = p.b.stack.udp_echo(7);
    let probe = p.a.stack.udp_probe(SocketAddrV4::new(IP_B, 7), 20, 200, 5);
    assert!(p.run_until(10 * S, |p| finished(&p.a.stack.app(probe).state)));
    let r = p.a.stack.app(probe);
    assert_eq!(r.state, AppState::Done);
    assert_eq!(r.datagrams_sent, 20);
    assert_eq!(r.echoes_received, 20);
    let e = p.b.stack.app(echo);
    assert_eq!(e.datagrams_received, 20);
    assert_eq!(e.datagrams_sent, 20);
}

#[test]
fn oversized_probe_fails_at_once() {
    let mut p = Pair::statics(8);
    let probe = p.a.stack.udp_probe(SocketAddrV4::new(IP_B, 7), 1, 1500, 5);
    let r = p.a.stack.app(probe);
    assert_eq!(r.failure, Some(AppFailure::DatagramTooBig));
    assert!(matches!(r.state, AppState::Failed(_)));
    p.run_for(10 * MS);
}

#[test]
fn pool_exhaustion_slows_a_transfer_but_loses_nothing() {
    let tiny = |mac, ip, seed| NodeSpec {
        mac,
        queue_capacity: 8,
        pool_packets: 32,
        rx_buffers_target: 8,
        addressing: stat(ip),
        seed,
    };
    let mut p = Pair::new(
        &tiny(MAC_A, IP_A, 9),
        &tiny(MAC_B, IP_B, 10),
        Cable::clean(),
    );
    // Something else in the system holds most of each pool: 10 packets are left for 8 Rx
    // buffers and all of Tx.
    let hoard = |pool: &PacketBufferPool| -> Vec<_> {
        (0..22)
            .map(|_| pool.allocate(Owner::System).unwrap())
            .collect()
    };
    let (hoard_a, hoard_b) = (hoard(&p.a.pool), hoard(&p.b.pool));
    transfer(&mut p, 256 * 1024, 31, 300 * S);
    let (ca, cb) = (p.a.stack.counters(), p.b.stack.counters());
    assert!(ca.tx_refused_no_packet > 0, "{ca:?}");
    assert!(
        ca.rx_post_no_packet + cb.rx_post_no_packet > 0,
        "{ca:?} {cb:?}"
    );
    for c in [ca, cb] {
        assert_eq!(c.tx_dropped_too_big, 0);
        assert_eq!(c.tx_dropped_enqueue_refused, 0);
        assert_eq!(c.tx_dropped_reply_no_packet, 0);
        assert_eq!(c.tx_completed_error, 0);
    }
    for n in [&p.a, &p.b] {
        assert_eq!(n.nic.counters().tx.dropped_total(), 0);
        assert_eq!(n.nic.counters().rx.dropped_total(), 0);
    }
    for (pool, hoard) in [(&p.a.pool, hoard_a), (&p.b.pool, hoard_b)] {
        for packet in hoard {
            pool.system_free(packet).unwrap();
        }
    }
    quiesce(&mut p);
}

#[test]
fn stopping_reposting_makes_frames_wait_at_the_driver_until_resumed() {
    let mut spec_b = NodeSpec::new(MAC_B, stat(IP_B), 12);
    spec_b.rx_buffers_target = 4;
    let mut p = Pair::new(
        &NodeSpec::new(MAC_A, stat(IP_A), 11),
        &spec_b,
        Cable::clean(),
    );
    // Warm up ARP both ways.
    let warm = p.a.stack.ping(IP_B, 1, MS);
    assert!(p.run_until(S, |p| finished(&p.a.stack.app(warm).state)));
    assert_eq!(p.a.stack.app(warm).pings_received, 1);

    p.b.stack.set_reposting(false);
    let posted_before = p.b.stack.counters().rx_buffers_posted_total;
    let id = p.a.stack.ping(IP_B, 10, 10 * MS);
    p.run_for(300 * MS);
    let waiting = p.b.nic.port().inbound_len();
    assert!(waiting > 0, "frames should wait at B's port");
    assert_eq!(p.b.stack.counters().rx_buffers_posted_total, posted_before);
    let answered_while_off = p.a.stack.app(id).pings_received;
    assert!(answered_while_off < 10);
    let rx_before = p.b.stack.counters().rx_frames;

    p.b.stack.set_reposting(true);
    p.run_for(2 * S);
    assert_eq!(p.b.nic.port().inbound_len(), 0);
    assert!(p.b.stack.counters().rx_frames >= rx_before + waiting as u64);
    let r = p.a.stack.app(id);
    assert_eq!(r.state, AppState::Done);
    assert!(r.pings_received > answered_while_off);
    let again = p.a.stack.ping(IP_B, 3, 10 * MS);
    assert!(p.run_until(5 * S, |p| finished(&p.a.stack.app(again).state)));
    assert_eq!(p.a.stack.app(again).pings_received, 3);
}

#[test]
fn reposting_recovers_after_the_interface_is_disabled_and_enabled() {
    let mut p = Pair::statics(14);
    let first = p.a.stack.ping(IP_B, 2, 10 * MS);
    assert!(p.run_until(5 * S, |p| finished(&p.a.stack.app(first).state)));
    assert_eq!(p.a.stack.app(first).pings_received, 2);
    // B's driver drains (frees) its posted buffers on disable.
    p.b.service
        .set_interface_enable(&mut p.b.nic, false)
        .unwrap();
    p.run_for(50 * MS);
    assert_eq!(p.b.stack.counters().rx_buffers_posted, 0);
    p.b.service
        .set_interface_enable(&mut p.b.nic, true)
        .unwrap();
    let again = p.a.stack.ping(IP_B, 3, 10 * MS);
    assert!(p.run_until(5 * S, |p| finished(&p.a.stack.app(again).state)));
    assert_eq!(p.a.stack.app(again).pings_received, 3);
    assert!(p.b.stack.counters().rx_buffers_posted > 0);
}

/// Shuts both stacks down and lets the drivers return every packet; asserts the pools are
/// whole.
fn quiesce(p: &mut Pair) {
    for n in [&mut p.a, &mut p.b] {
        n.stack.shutdown();
        for _ in 0..8 {
            n.nic.poll(n.service.link_mut()).unwrap();
            n.stack.poll(p.now_ns);
        }
        n.service.set_interface_enable(&mut n.nic, false).unwrap();
        assert_eq!(n.stack.packets_held(), 0);
        assert_eq!(n.pool.in_use(), 0, "{:?}", n.pool.leak_report());
    }
}

#[test]
fn shutdown_returns_the_pool_whole() {
    let mut p = Pair::statics(13);
    let sink = p.b.stack.tcp_sink(5001);
    let send =
        p.a.stack
            .tcp_send(SocketAddrV4::new(IP_B, 5001), 1 << 20, 3);
    // Stop in the middle of the transfer: packets are everywhere.
    p.run_until(60 * S, |p| p.b.stack.app(sink).bytes_received > 200_000);
    assert_eq!(p.a.stack.app(send).state, AppState::Running);
    assert!(p.a.pool.in_use() > 0);
    quiesce(&mut p);
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut p = Pair::new(
            &NodeSpec::new(MAC_A, stat(IP_A), seed),
            &NodeSpec::new(MAC_B, stat(IP_B), seed + 1),
            Cable::lossy(seed, 10_000, 10_000),
        );
        transfer(&mut p, 64 * 1024, 4, 120 * S);
        (
            p.now_ns,
            p.steps,
            p.a.stack.counters(),
            p.b.stack.counters(),
        )
    };
    assert_eq!(run(40), run(40));
}

// --- DHCP: a minimal test server in place of node B's stack ---

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 1);
const OFFERED_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 2);
const DNS_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 53);

/// Answers DISCOVER with OFFER and REQUEST with ACK (while `answering`), broadcast.
struct DhcpServer {
    lease_s: u32,
    answering: bool,
    acks: u32,
}

impl DhcpServer {
    fn handle(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Udp {
            return None;
        }
        let udp = UdpPacket::new_checked(ip.payload()).ok()?;
        if udp.dst_port() != 67 || !self.answering {
            return None;
        }
        let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
        let req = DhcpRepr::parse(&dhcp).ok()?;
        let message_type = match req.message_type {
            DhcpMessageType::Discover => DhcpMessageType::Offer,
            DhcpMessageType::Request => {
                self.acks += 1;
                DhcpMessageType::Ack
            }
            _ => return None,
        };
        let reply = DhcpRepr {
            message_type,
            transaction_id: req.transaction_id,
            secs: 0,
            client_hardware_address: req.client_hardware_address,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: OFFERED_IP,
            server_ip: SERVER_IP,
            router: Some(SERVER_IP),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(SERVER_IP),
            parameter_request_list: None,
            dns_servers: Some(std::iter::once(DNS_IP).collect()),
            max_size: None,
            lease_duration: Some(self.lease_s),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        Some(emit_udp(
            eth.src_addr(),
            SERVER_IP,
            Ipv4Addr::BROADCAST,
            (67, 68),
            &reply,
        ))
    }
}

fn emit_udp(
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ports: (u16, u16),
    dhcp: &DhcpRepr<'_>,
) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let dhcp_len = dhcp.buffer_len();
    let udp = UdpRepr {
        src_port: ports.0,
        dst_port: ports.1,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + dhcp_len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]),
        dst_addr: dst_mac,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut ipp = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut ipp, &caps);
    let mut udpp = UdpPacket::new_unchecked(ipp.payload_mut());
    udp.emit(
        &mut udpp,
        &src.into(),
        &dst.into(),
        dhcp_len,
        |payload| {
            let mut d = DhcpPacket::new_unchecked(payload);
            dhcp.emit(&mut d).unwrap();
        },
        &caps,
    );
    buf
}

/// Node A with DHCP and the test server on the other end of its port.
fn run_dhcp(
    p: &mut Node,
    server: &mut DhcpServer,
    now_ns: &mut u64,
    until_ns: u64,
    stop: impl Fn(&Node) -> bool,
) -> u64 {
    let mut steps = 0;
    while *now_ns < until_ns && !stop(p) {
        let did = p.step(*now_ns);
        let out = p.nic.port_mut().take_outbound();
        let answered = !out.is_empty();
        for f in out {
            if let Some(reply) = server.handle(&f) {
                p.nic.port_mut().push_inbound(&reply);
            }
        }
        if did || answered {
            *now_ns += 10_000;
        } else {
            let next = p
                .stack
                .next_deadline_ns(*now_ns)
                .unwrap_or(*now_ns + 10 * MS);
            *now_ns = next.max(*now_ns + 1_000);
        }
        steps += 1;
    }
    steps
}

#[test]
fn dhcp_client_gets_a_lease_and_loses_it_when_it_expires() {
    let mut now = 0;
    let mut a = node(&NodeSpec::new(MAC_A, Addressing::Dhcp, 20), now);
    let mut server = DhcpServer {
        lease_s: 120,
        answering: true,
        acks: 0,
    };
    assert_eq!(a.stack.ipv4(), None);
    let _ = run_dhcp(&mut a, &mut server, &mut now, 30 * S, |n| {
        n.stack.ipv4().is_some()
    });
    let lease = a.stack.lease().expect("a lease");
    assert_eq!(a.stack.ipv4(), Some(OFFERED_IP));
    assert_eq!(lease.address, Ipv4Cidr::new(OFFERED_IP, 24));
    assert_eq!(lease.router, Some(SERVER_IP));
    assert_eq!(lease.dns_servers, vec![DNS_IP]);
    assert_eq!(lease.lease_duration_s, Some(120));
    assert_eq!(server.acks, 1);

    // The server goes away: renew and rebind go unanswered, the lease expires.
    server.answering = false;
    let deadline = now + 200 * S;
    let steps = run_dhcp(&mut a, &mut server, &mut now, deadline, |n| {
        n.stack.ipv4().is_none()
    });
    // The stack's deadlines let the clock jump: no spinning on smoltcp's stale poll_at.
    assert!(steps < 20_000, "{steps} steps");
    assert_eq!(a.stack.ipv4(), None);
    assert_eq!(a.stack.lease(), None);
    assert!(now < deadline);
}
