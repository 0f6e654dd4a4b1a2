//! The host side of a simulated vmnet network: gateway, DHCP server, DNS proxy, NAT44 to a
//! simulated outside world, port forwards, host mode and a bridged LAN (vmnet.md §1.4 "Default
//! addressing", §1.6, §1.7, §7(a) "Policy").
//!
//! [`Gateway`] is frame-in / frame-out: the world hands it every frame the switch delivered to a
//! network's host side ([`Gateway::receive`]) and sends what [`Gateway::poll`] emits with
//! `SimVmnet::host_send`. Time is only `now_ns`; all randomness comes from the seed.
//!
//! **Supported:**
//! - ARP for the gateway (and, bridged, the LAN host); ARP requests for guests it must reach.
//! - The host's own services at the gateway address (a smoltcp `Medium::Ip` stack): ICMP echo,
//!   TCP echo :7, TCP sink :9, UDP echo :7. A Mac host is reachable at bridge100's address, so
//!   they run in every mode.
//! - DHCP (smoltcp's `DhcpRepr`): DISCOVER/OFFER, REQUEST/ACK/NAK, RELEASE, DECLINE, INFORM,
//!   renewals, reservations first, expiry by `now_ns`. Replies go where RFC 2131 §4.1 says.
//! - DNS proxy at gateway:53 (UDP, `simple-dns`): `A` for [`OUTSIDE_NAME`] and [`OUTSIDE_WEB_NAME`],
//!   NXDOMAIN otherwise. With the proxy off nothing listens on :53, so the host stack answers
//!   ICMP port unreachable.
//! - NAT44 (shared mode with NAT on): TCP, UDP and ICMP echo from guests to the outside world
//!   ([`OUTSIDE_HOST`], [`OUTSIDE_WEB_HOST`], another smoltcp stack) leave from
//!   [`EXTERNAL_ADDR`] with an allocated port; replies go back to the guest's MAC. TTL is
//!   decremented; TTL ≤ 1 is a counted drop (no ICMP time exceeded). A destination that is not
//!   an outside host is a counted `no_route` drop (no ICMP unreachable).
//! - Port forwards (any mode): packets to [`EXTERNAL_ADDR`]`:external_port`, from the host's own
//!   clients ([`Gateway::host_tcp_send`]) or from the outside, go to the rule's guest; the guest
//!   sees the real peer address (the gateway address for host clients).
//! - Host mode: no NAT, no outside; off-subnet packets are `no_outside` drops.
//! - Bridged mode: a LAN router at .1 (DHCP, the services) plus a LAN host at [`LAN_HOST_OCTET`]
//!   with the same services; no NAT.
//!
//! **Rejected / not modelled:** IPv6 (a counted `unknown_ethertype` drop), IP fragments
//! (`fragment` drop), DHCP relays, NAT66, ICMP errors through the NAT. NAT idle timeouts are
//! UNCONFIRMED for vmnet (2 h TCP, 60 s UDP/ICMP here).

mod dhcp;
mod dns;
mod nat;
mod stack;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use ndk_model::ethernet::MacAddress;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr, DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};

pub use dhcp::DhcpConfig;
pub use dns::DNS_TTL_S;
pub use stack::{
    ClientFailure, ClientReport, ClientState, SinkReport, HOST_CLIENTS_MAX, OUTSIDE_WEB_BODY,
    SINK_REPORTS_MAX,
};

use crate::netconfig::{Ipv4Subnet, NetConfig, PortForward, Protocol};
use crate::rng::SimRng;
use crate::vmnet::OperatingMode;
use nat::{Flow, FlowError, Nat};
use stack::ServiceStack;

/// The outside echo/sink host: TCP echo :7, TCP sink :9, UDP echo :7 (TEST-NET-2).
pub const OUTSIDE_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// The outside web host: HTTP/1.0 on :80, `GET /` → [`OUTSIDE_WEB_BODY`] (TEST-NET-2).
pub const OUTSIDE_WEB_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 80);
/// The name the DNS proxy resolves to [`OUTSIDE_HOST`].
pub const OUTSIDE_NAME: &str = "echo.vnic.test";
/// The name the DNS proxy resolves to [`OUTSIDE_WEB_HOST`].
pub const OUTSIDE_WEB_NAME: &str = "www.vnic.test";
/// The host's address on the outside (TEST-NET-3): NAT44's source address and where port
/// forwards listen.
pub const EXTERNAL_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// The last octet of the bridged LAN's host (e.g. 192.168.1.10).
pub const LAN_HOST_OCTET: u8 = 10;
/// The bridged LAN default subnet, 192.168.1.0/24.
pub fn bridged_subnet_default() -> Ipv4Subnet {
    match Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 0), 24) {
        Ok(s) => s,
        Err(_) => unreachable!("192.168.1.0/24 is a valid private /24"),
    }
}
/// Most frames waiting to be emitted; more are `queue_full` drops.
pub const OUT_QUEUE_FRAMES_MAX: usize = 4096;
/// Most IPv4 packets parked waiting for an ARP reply.
pub const ARP_PENDING_MAX: usize = 64;
/// Most ARP cache entries.
pub const ARP_CACHE_MAX: usize = 1024;
/// Bound on stack/route rounds in one [`Gateway::poll`].
const POLL_ROUNDS_MAX: usize = 64;

/// Which kind of vmnet network this host side stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    /// Shared (NAT) mode: bridge100 with DHCP, DNS proxy, NAT44.
    Shared,
    /// Host mode: DHCP and the host's services, no outside world.
    Host,
    /// Bridged mode: a simulated LAN with its own router and a LAN host.
    Bridged,
}

/// The gateway's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The mode.
    pub mode: GatewayMode,
    /// The subnet; the gateway is `subnet.gateway()` (the .1).
    pub subnet: Ipv4Subnet,
    /// The DHCP server, if one runs.
    pub dhcp: Option<DhcpConfig>,
    /// Whether the DNS proxy listens on gateway:53.
    pub dns_proxy: bool,
    /// Whether NAT44 to the outside runs (shared mode only).
    pub nat44: bool,
    /// Port-forwarding rules (internal before external, as Apple orders them). IPv6 rules are
    /// ignored.
    pub port_forwards: Vec<PortForward>,
    /// The IP MTU of the network.
    pub mtu_bytes: usize,
}

impl GatewayConfig {
    /// Shared mode: 192.168.64.0/24, gateway .1, DHCP .2–.254, DNS proxy, NAT44.
    pub fn shared_default() -> Self {
        let subnet = crate::netconfig::SHARED_SUBNET_DEFAULT;
        Self {
            mode: GatewayMode::Shared,
            subnet,
            dhcp: Some(DhcpConfig::for_subnet(subnet)),
            dns_proxy: true,
            nat44: true,
            port_forwards: Vec::new(),
            mtu_bytes: 1500,
        }
    }

    /// Host mode: the host-mode subnet, DHCP and the host's services at .1, no DNS proxy, no
    /// NAT, no outside world.
    pub fn host_default() -> Self {
        let subnet = crate::netconfig::HOST_SUBNET_DEFAULT;
        Self {
            mode: GatewayMode::Host,
            subnet,
            dhcp: Some(DhcpConfig::for_subnet(subnet)),
            dns_proxy: false,
            nat44: false,
            port_forwards: Vec::new(),
            mtu_bytes: 1500,
        }
    }

    /// Bridged mode: a LAN 192.168.1.0/24 with a router at .1 (DHCP .100–.199) and a LAN host at
    /// .10; no DNS proxy, no NAT.
    pub fn bridged_lan() -> Self {
        let subnet = bridged_subnet_default();
        let base = u32::from(subnet.network());
        Self {
            mode: GatewayMode::Bridged,
            subnet,
            dhcp: Some(DhcpConfig {
                pool_start: Ipv4Addr::from(base + 100),
                pool_end: Ipv4Addr::from(base + 199),
                lease_duration_s: 86_400,
                reservations: Vec::new(),
            }),
            dns_proxy: false,
            nat44: false,
            port_forwards: Vec::new(),
            mtu_bytes: 1500,
        }
    }

    /// The gateway a [`NetConfig`] describes: subnet, MTU, DHCP on/off with its reservations, DNS
    /// proxy, NAT44 and forwards. Bridged mode keeps the configured subnet for the LAN.
    pub fn from_netconfig(cfg: &NetConfig) -> Self {
        let subnet = cfg.ipv4_subnet();
        let dhcp = cfg.dhcp().then(|| DhcpConfig {
            reservations: cfg
                .dhcp_reservations()
                .iter()
                .map(|r| (r.client, r.address))
                .collect(),
            ..DhcpConfig::for_subnet(subnet)
        });
        let mode = match cfg.mode() {
            OperatingMode::Shared => GatewayMode::Shared,
            OperatingMode::Host => GatewayMode::Host,
            OperatingMode::Bridged => GatewayMode::Bridged,
        };
        Self {
            mode,
            subnet,
            dhcp,
            dns_proxy: cfg.dns_proxy(),
            nat44: cfg.nat44() && mode == GatewayMode::Shared,
            port_forwards: cfg.port_forwards().to_vec(),
            mtu_bytes: cfg.mtu_bytes() as usize,
        }
    }
}

/// Frames dropped, by reason. Every frame [`Gateway::receive`] takes is answered, forwarded,
/// consumed by a service, or counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayDrops {
    /// Shorter than an Ethernet header.
    pub malformed_frame: u64,
    /// A repeated SYN for a connection a service already holds. smoltcp would hand it to
    /// another listening slot and open a second connection on the same four-tuple, whose
    /// RST would kill the first; a real stack treats it as part of the existing connection,
    /// and the holding socket retransmits its own SYN-ACK, so dropping it is safe.
    pub duplicate_syn: u64,
    /// A bad ARP packet.
    pub malformed_arp: u64,
    /// A bad IPv4 header or checksum, or a transport header that does not parse.
    pub malformed_ipv4: u64,
    /// A DHCP message smoltcp would not parse (bad options, bad op, short).
    pub malformed_dhcp: u64,
    /// A DNS message that is not one parsable query.
    pub malformed_dns: u64,
    /// Unicast to another MAC, or ARP/IP for another node (flooded to the uplink).
    pub not_for_us: u64,
    /// Not IPv4 or ARP (IPv6 included).
    pub unknown_ethertype: u64,
    /// NAT of a protocol other than TCP, UDP, ICMP echo.
    pub unknown_protocol: u64,
    /// Off-subnet in a mode (or config) without NAT.
    pub no_outside: u64,
    /// No route: an outside address that is not a simulated host, or a stack's packet to
    /// nowhere.
    pub no_route: u64,
    /// To the external address with no session and no forward.
    pub no_nat_session: u64,
    /// The NAT's tables are full.
    pub nat_table_full: u64,
    /// TTL would reach 0 when forwarded.
    pub ttl_expired: u64,
    /// An IPv4 fragment.
    pub fragment: u64,
    /// Longer than the MTU.
    pub too_big: u64,
    /// A guest's MAC could not be resolved in time (parked queue overflowed).
    pub arp_unresolved: u64,
    /// The out queue or a stack queue was full.
    pub queue_full: u64,
    /// A DHCP message the server ignores (another server's, a relay's, a server message).
    pub dhcp_ignored: u64,
    /// A DISCOVER with no free address.
    pub dhcp_pool_exhausted: u64,
    /// DHCP with the server off.
    pub no_dhcp: u64,
}

/// The gateway's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayCounters {
    /// Frames taken by [`Gateway::receive`].
    pub frames_in: u64,
    /// Frames emitted by [`Gateway::poll`].
    pub frames_out: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// ARP requests sent for guests.
    pub arp_requests: u64,
    /// ICMP echo replies sent onto the network (from the gateway or the LAN host).
    pub icmp_echo_replies: u64,
    /// DHCP DISCOVERs.
    pub dhcp_discover: u64,
    /// DHCP OFFERs.
    pub dhcp_offer: u64,
    /// DHCP REQUESTs.
    pub dhcp_request: u64,
    /// DHCP ACKs (INFORM answers included).
    pub dhcp_ack: u64,
    /// DHCP NAKs.
    pub dhcp_nak: u64,
    /// DHCP RELEASEs.
    pub dhcp_release: u64,
    /// DHCP DECLINEs.
    pub dhcp_decline: u64,
    /// DHCP INFORMs.
    pub dhcp_inform: u64,
    /// DNS queries to the proxy.
    pub dns_queries: u64,
    /// DNS answers with a record.
    pub dns_answers: u64,
    /// DNS replies without one (NXDOMAIN or empty).
    pub dns_no_answer: u64,
    /// NAT sessions ever created.
    pub nat_sessions: u64,
    /// NAT sessions now.
    pub nat_sessions_active: u64,
    /// Packets translated guest → outside.
    pub nat_translated_out: u64,
    /// Packets translated outside → guest.
    pub nat_translated_in: u64,
    /// Packets that hit a port forward (either direction).
    pub forward_hits: u64,
    /// Sink connections not reported (report table full).
    pub sink_reports_dropped: u64,
    /// Drops by reason.
    pub drops: GatewayDrops,
}

impl GatewayDrops {
    /// All drops.
    pub fn total(&self) -> u64 {
        let d = *self;
        [
            d.malformed_frame,
            d.duplicate_syn,
            d.malformed_arp,
            d.malformed_ipv4,
            d.malformed_dhcp,
            d.malformed_dns,
            d.not_for_us,
            d.unknown_ethertype,
            d.unknown_protocol,
            d.no_outside,
            d.no_route,
            d.no_nat_session,
            d.nat_table_full,
            d.ttl_expired,
            d.fragment,
            d.too_big,
            d.arp_unresolved,
            d.queue_full,
            d.dhcp_ignored,
            d.dhcp_pool_exhausted,
            d.no_dhcp,
        ]
        .iter()
        .sum()
    }
}

/// A host client started by [`Gateway::host_tcp_send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub usize);

/// Which stack a packet came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackId {
    Host,
    Lan,
    Outside,
}

/// The host side of one simulated vmnet network.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    mac: MacAddress,
    gw: Ipv4Addr,
    lan_mac: MacAddress,
    lan_ip: Option<Ipv4Addr>,
    rng: SimRng,
    host: ServiceStack,
    lan: Option<ServiceStack>,
    outside: Option<ServiceStack>,
    dhcp: Option<dhcp::DhcpServer>,
    nat: Nat,
    arp: BTreeMap<Ipv4Addr, MacAddress>,
    pending: VecDeque<(Ipv4Addr, MacAddress, Vec<u8>)>,
    out: VecDeque<Vec<u8>>,
    counters: GatewayCounters,
}

impl Gateway {
    /// A gateway with the host-side MAC `mac`, all randomness from `seed`.
    pub fn new(config: GatewayConfig, mac: MacAddress, seed: u64) -> Self {
        let rng = SimRng::new(seed);
        let gw = config.subnet.gateway();
        let prefix = config.subnet.prefix_len();
        let mtu = config.mtu_bytes;
        let mut host =
            ServiceStack::new(&[gw], prefix, mtu, rng.fork("gateway.host").next_u64(), 0);
        host.add_standard_services(None);
        let (lan, lan_ip) = if config.mode == GatewayMode::Bridged {
            let ip = Ipv4Addr::from(u32::from(config.subnet.network()) + u32::from(LAN_HOST_OCTET));
            let mut s =
                ServiceStack::new(&[ip], prefix, mtu, rng.fork("gateway.lan").next_u64(), 0);
            s.add_standard_services(None);
            (Some(s), Some(ip))
        } else {
            (None, None)
        };
        let outside = (config.mode == GatewayMode::Shared && config.nat44).then(|| {
            let mut s = ServiceStack::new(
                &[OUTSIDE_HOST, OUTSIDE_WEB_HOST],
                24,
                mtu,
                rng.fork("gateway.outside").next_u64(),
                0,
            );
            s.add_standard_services(Some(OUTSIDE_HOST));
            s.add_tcp(stack::ServiceKind::Http, Some(OUTSIDE_WEB_HOST), 80);
            s
        });
        let mut o = mac.octets();
        o[5] ^= 0x5a;
        o[0] = (o[0] | 0x02) & !0x01;
        let lan_mac = MacAddress::new(o);
        let dhcp = config.dhcp.clone().map(|d| {
            dhcp::DhcpServer::new(
                d,
                config.subnet,
                config.dns_proxy.then_some(gw),
                lan_ip.into_iter().chain([gw]).collect(),
            )
        });
        Self {
            nat: Nat::new(EXTERNAL_ADDR, rng.fork("gateway.nat")),
            config,
            mac,
            gw,
            lan_mac,
            lan_ip,
            rng: rng.fork("gateway.clients"),
            host,
            lan,
            outside,
            dhcp,
            arp: BTreeMap::new(),
            pending: VecDeque::new(),
            out: VecDeque::new(),
            counters: GatewayCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The gateway's (host side's) MAC.
    pub fn mac(&self) -> MacAddress {
        self.mac
    }

    /// The gateway address (the subnet's .1).
    pub fn address(&self) -> Ipv4Addr {
        self.gw
    }

    /// The bridged LAN host's address and MAC (bridged mode only).
    pub fn lan_host(&self) -> Option<(Ipv4Addr, MacAddress)> {
        self.lan_ip.map(|ip| (ip, self.lan_mac))
    }

    /// Active DHCP leases in MAC order (what vmnet's source-IP rule needs).
    pub fn leases(&self) -> Vec<(MacAddress, Ipv4Addr)> {
        self.dhcp
            .as_ref()
            .map(dhcp::DhcpServer::leases)
            .unwrap_or_default()
    }

    /// The counters.
    pub fn counters(&self) -> GatewayCounters {
        let mut c = self.counters;
        c.nat_sessions = self.nat.created;
        c.nat_sessions_active = (self.nat.sessions() + self.nat.forward_sessions()) as u64;
        c.sink_reports_dropped = [Some(&self.host), self.lan.as_ref(), self.outside.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| s.reports_dropped)
            .sum();
        c
    }

    /// Every TCP sink connection seen: the host's services, then the LAN host, then the outside.
    pub fn sink_reports(&self) -> Vec<SinkReport> {
        [Some(&self.host), self.lan.as_ref(), self.outside.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|s| s.reports().iter().copied())
            .collect()
    }

    /// Starts a TCP client on the host (at the gateway address) that connects to `dst`, sends
    /// `total_bytes` of the pattern for `seed` and closes. `dst` may be a guest (directly),
    /// [`EXTERNAL_ADDR`] with a forwarded port (to reach a guest through a forward), or an
    /// outside host. The SYN leaves on the next [`Gateway::poll`] (`now_ns` is accepted for the
    /// caller's symmetry; the stack takes its time from `poll`). The local port comes from the
    /// seed. Progress and failure are in [`Gateway::host_client`]; the bytes the peer sends back
    /// are digested there too (for an echo service).
    pub fn host_tcp_send(
        &mut self,
        now_ns: u64,
        dst: SocketAddrV4,
        total_bytes: u64,
        seed: u64,
    ) -> ClientId {
        let _ = now_ns;
        let port = self.rng.range_inclusive(49_152, 65_535) as u16;
        ClientId(self.host.start_client(dst, port, total_bytes, seed))
    }

    /// The state of a host client. An unknown id reads as failed with `TooManyClients`.
    pub fn host_client(&self, id: ClientId) -> ClientReport {
        self.host.client(id.0).unwrap_or(ClientReport {
            state: ClientState::Failed,
            bytes_sent: 0,
            bytes_total: 0,
            bytes_received: 0,
            received: crate::pattern::Digest::new(),
            failure: Some(ClientFailure::TooManyClients),
        })
    }

    /// Takes one frame from the switch uplink. Never panics; bad frames are counted drops.
    pub fn receive(&mut self, now_ns: u64, frame: &[u8]) {
        self.counters.frames_in += 1;
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.drops.malformed_frame += 1;
            return;
        };
        let dst = MacAddress::new(eth.dst_addr().0);
        let src = MacAddress::new(eth.src_addr().0);
        let ours = dst == self.mac || (self.lan_ip.is_some() && dst == self.lan_mac);
        if !ours && !dst.is_multicast() {
            self.counters.drops.not_for_us += 1;
            return;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.receive_arp(src, eth.payload()),
            EthernetProtocol::Ipv4 => self.receive_ipv4(now_ns, src, dst, eth.payload()),
            _ => self.counters.drops.unknown_ethertype += 1,
        }
    }

    fn local_l2(&self, ip: Ipv4Addr) -> Option<MacAddress> {
        if ip == self.gw {
            Some(self.mac)
        } else if Some(ip) == self.lan_ip {
            Some(self.lan_mac)
        } else {
            None
        }
    }

    fn learn(&mut self, ip: Ipv4Addr, mac: MacAddress) {
        if !self.config.subnet.contains(ip)
            || self.config.subnet.is_reserved(ip)
            || !mac.is_unicast()
        {
            return;
        }
        if self.local_l2(ip).is_some() {
            return;
        }
        if self.arp.len() < ARP_CACHE_MAX || self.arp.contains_key(&ip) {
            self.arp.insert(ip, mac);
        }
        // Flush packets parked for this address (bounded by ARP_PENDING_MAX).
        let mut keep = VecDeque::new();
        while let Some((dst, src_mac, pkt)) = self.pending.pop_front() {
            if dst == ip {
                self.push_frame(src_mac, mac, EthernetProtocol::Ipv4, &pkt);
            } else {
                keep.push_back((dst, src_mac, pkt));
            }
        }
        self.pending = keep;
    }

    fn receive_arp(&mut self, src: MacAddress, payload: &[u8]) {
        let repr = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p));
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = repr
        else {
            self.counters.drops.malformed_arp += 1;
            return;
        };
        let sha = MacAddress::new(source_hardware_addr.0);
        if source_protocol_addr != Ipv4Addr::UNSPECIFIED {
            self.learn(source_protocol_addr, sha);
        }
        match (operation, self.local_l2(target_protocol_addr)) {
            (ArpOperation::Request, Some(mac)) => {
                let reply = ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: EthernetAddress(mac.octets()),
                    source_protocol_addr: target_protocol_addr,
                    target_hardware_addr: source_hardware_addr,
                    target_protocol_addr: source_protocol_addr,
                };
                let mut buf = vec![0u8; reply.buffer_len()];
                reply.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
                self.counters.arp_replies += 1;
                let to = if sha.is_unicast() { sha } else { src };
                self.push_frame(mac, to, EthernetProtocol::Arp, &buf);
            }
            (ArpOperation::Reply, Some(_)) => {} // learned above
            _ => self.counters.drops.not_for_us += 1,
        }
    }

    fn receive_ipv4(
        &mut self,
        now_ns: u64,
        src_mac: MacAddress,
        dst_mac: MacAddress,
        payload: &[u8],
    ) {
        let Ok(ip) = Ipv4Packet::new_checked(payload) else {
            self.counters.drops.malformed_ipv4 += 1;
            return;
        };
        if Ipv4Repr::parse(&ip, &ChecksumCapabilities::default()).is_err() {
            self.counters.drops.malformed_ipv4 += 1;
            return;
        }
        if ip.more_frags() || ip.frag_offset() != 0 {
            self.counters.drops.fragment += 1;
            return;
        }
        let total = usize::from(ip.total_len());
        if total > self.config.mtu_bytes {
            self.counters.drops.too_big += 1;
            return;
        }
        let packet = &payload[..total];
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if src != Ipv4Addr::UNSPECIFIED {
            self.learn(src, src_mac);
        }
        let udp_dport = (ip.next_header() == IpProtocol::Udp)
            .then(|| {
                UdpPacket::new_checked(ip.payload())
                    .ok()
                    .map(|u| u.dst_port())
            })
            .flatten();
        let broadcast = dst == Ipv4Addr::BROADCAST || dst == self.config.subnet.last();
        // DHCP to the server (broadcast or unicast to the gateway).
        if udp_dport == Some(DHCP_SERVER_PORT) && (broadcast || dst == self.gw) {
            self.receive_dhcp(now_ns, &ip);
            return;
        }
        if dst.is_multicast() || dst.is_broadcast() || broadcast || dst_mac.is_multicast() {
            self.counters.drops.not_for_us += 1;
            return;
        }
        // DNS proxy.
        if dst == self.gw && udp_dport == Some(53) && self.config.dns_proxy {
            self.receive_dns(&ip, src_mac);
            return;
        }
        let flow = match nat::flow_of(&ip) {
            Ok(f) => Some(f),
            Err(FlowError::Malformed) => {
                self.counters.drops.malformed_ipv4 += 1;
                return;
            }
            Err(FlowError::Unsupported) => None,
        };
        // A guest's reply on a port-forward session.
        if let Some(to) = flow.and_then(|f| self.nat.forward_out(now_ns, f)) {
            self.counters.forward_hits += 1;
            let target = if to.dst == self.gw {
                Some(StackId::Host)
            } else {
                self.outside_owner(to.dst)
            };
            self.translate_to_stack(packet, to, target, to.dst != self.gw);
            return;
        }
        if dst == self.gw {
            self.enqueue_stack(StackId::Host, packet.to_vec());
            return;
        }
        if Some(dst) == self.lan_ip {
            self.enqueue_stack(StackId::Lan, packet.to_vec());
            return;
        }
        if self.config.subnet.contains(dst) {
            self.counters.drops.not_for_us += 1;
            return;
        }
        if self.outside.is_none() {
            self.counters.drops.no_outside += 1;
            return;
        }
        let Some(flow) = flow else {
            self.counters.drops.unknown_protocol += 1;
            return;
        };
        let Some(target) = self.outside_owner(dst) else {
            self.counters.drops.no_route += 1;
            return;
        };
        if ip.hop_limit() <= 1 {
            self.counters.drops.ttl_expired += 1;
            return;
        }
        match self.nat.outbound(now_ns, flow, src_mac) {
            Ok(to) => {
                self.counters.nat_translated_out += 1;
                self.translate_to_stack(packet, to, Some(target), true);
            }
            Err(nat::NatError::TableFull) => self.counters.drops.nat_table_full += 1,
        }
    }

    fn outside_owner(&self, ip: Ipv4Addr) -> Option<StackId> {
        self.outside
            .as_ref()
            .is_some_and(|s| s.owns(ip))
            .then_some(StackId::Outside)
    }

    fn translate_to_stack(
        &mut self,
        packet: &[u8],
        to: Flow,
        target: Option<StackId>,
        forwarded: bool,
    ) {
        let Some(target) = target else {
            self.counters.drops.no_route += 1;
            return;
        };
        if forwarded && packet.get(8).is_some_and(|&ttl| ttl <= 1) {
            self.counters.drops.ttl_expired += 1;
            return;
        }
        let mut pkt = packet.to_vec();
        if nat::rewrite(&mut pkt, to, forwarded).is_err() {
            self.counters.drops.malformed_ipv4 += 1;
            return;
        }
        self.enqueue_stack(target, pkt);
    }

    fn stack_mut(&mut self, id: StackId) -> Option<&mut ServiceStack> {
        match id {
            StackId::Host => Some(&mut self.host),
            StackId::Lan => self.lan.as_mut(),
            StackId::Outside => self.outside.as_mut(),
        }
    }

    fn enqueue_stack(&mut self, id: StackId, pkt: Vec<u8>) {
        let Some(s) = self.stack_mut(id) else {
            self.counters.drops.no_route += 1;
            return;
        };
        if s.dev.rx.len() >= stack::DEVICE_QUEUE_PACKETS_MAX {
            self.counters.drops.queue_full += 1;
            return;
        }
        if s.is_duplicate_syn(&pkt) {
            self.counters.drops.duplicate_syn += 1;
            return;
        }
        s.dev.rx.push_back(pkt);
    }

    fn receive_dhcp(&mut self, now_ns: u64, ip: &Ipv4Packet<&[u8]>) {
        let Some(server) = self.dhcp.as_mut() else {
            self.counters.drops.no_dhcp += 1;
            return;
        };
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
            self.counters.drops.malformed_dhcp += 1;
            return;
        };
        if !dhcp::options_well_formed(udp.payload()) {
            self.counters.drops.malformed_dhcp += 1;
            return;
        }
        let Ok(pkt) = DhcpPacket::new_checked(udp.payload()) else {
            self.counters.drops.malformed_dhcp += 1;
            return;
        };
        if pkt.opcode() != smoltcp::wire::DhcpOpCode::Request {
            self.counters.drops.dhcp_ignored += 1;
            return;
        }
        let Ok(repr) = DhcpRepr::parse(&pkt) else {
            self.counters.drops.malformed_dhcp += 1;
            return;
        };
        let Some(reply) = server.handle(now_ns, &repr, &mut self.counters) else {
            return;
        };
        let frame = udp_frame(
            self.mac,
            reply.dst_mac,
            self.gw,
            reply.dst_ip,
            DHCP_SERVER_PORT,
            DHCP_CLIENT_PORT,
            &reply.payload,
        );
        self.push_raw(frame);
    }

    fn receive_dns(&mut self, ip: &Ipv4Packet<&[u8]>, src_mac: MacAddress) {
        self.counters.dns_queries += 1;
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
            self.counters.drops.malformed_dns += 1;
            return;
        };
        let mut names = vec![
            (OUTSIDE_NAME, OUTSIDE_HOST),
            (OUTSIDE_WEB_NAME, OUTSIDE_WEB_HOST),
        ];
        if self.outside.is_none() {
            names.clear(); // nothing outside to name
        }
        let bytes = match dns::answer(udp.payload(), &names) {
            dns::DnsOutcome::Answer(b) => {
                self.counters.dns_answers += 1;
                b
            }
            dns::DnsOutcome::NoAnswer(b) => {
                self.counters.dns_no_answer += 1;
                b
            }
            dns::DnsOutcome::Malformed => {
                self.counters.drops.malformed_dns += 1;
                return;
            }
        };
        let frame = udp_frame(
            self.mac,
            src_mac,
            self.gw,
            ip.src_addr(),
            53,
            udp.src_port(),
            &bytes,
        );
        self.push_raw(frame);
    }

    fn push_raw(&mut self, frame: Vec<u8>) {
        if self.out.len() >= OUT_QUEUE_FRAMES_MAX {
            self.counters.drops.queue_full += 1;
        } else {
            self.out.push_back(frame);
        }
    }

    fn push_frame(
        &mut self,
        src: MacAddress,
        dst: MacAddress,
        proto: EthernetProtocol,
        payload: &[u8],
    ) {
        let repr = EthernetRepr {
            src_addr: EthernetAddress(src.octets()),
            dst_addr: EthernetAddress(dst.octets()),
            ethertype: proto,
        };
        let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut f);
        f.payload_mut().copy_from_slice(payload);
        self.push_raw(buf);
    }

    /// Sends an IPv4 packet from a local L2 node (`src_mac`) onto the network.
    fn send_l2(&mut self, src_mac: MacAddress, src_ip: Ipv4Addr, pkt: Vec<u8>) {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt[..]) else {
            self.counters.drops.malformed_ipv4 += 1;
            return;
        };
        let dst = ip.dst_addr();
        if ip.next_header() == IpProtocol::Icmp
            && Icmpv4Packet::new_checked(ip.payload())
                .is_ok_and(|i| i.msg_type() == Icmpv4Message::EchoReply)
        {
            self.counters.icmp_echo_replies += 1;
        }
        if dst == Ipv4Addr::BROADCAST || dst == self.config.subnet.last() {
            self.push_frame(src_mac, MacAddress::BROADCAST, EthernetProtocol::Ipv4, &pkt);
            return;
        }
        let known = self
            .arp
            .get(&dst)
            .copied()
            .or_else(|| self.dhcp.as_ref().and_then(|d| d.mac_of(dst)));
        if let Some(mac) = known {
            self.push_frame(src_mac, mac, EthernetProtocol::Ipv4, &pkt);
            return;
        }
        // Park it and ask.
        if self.pending.len() >= ARP_PENDING_MAX {
            self.pending.pop_front();
            self.counters.drops.arp_unresolved += 1;
        }
        let asked = self.pending.iter().any(|(d, _, _)| *d == dst);
        self.pending.push_back((dst, src_mac, pkt));
        if !asked {
            let req = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: EthernetAddress(src_mac.octets()),
                source_protocol_addr: src_ip,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: dst,
            };
            let mut buf = vec![0u8; req.buffer_len()];
            req.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            self.counters.arp_requests += 1;
            self.push_frame(src_mac, MacAddress::BROADCAST, EthernetProtocol::Arp, &buf);
        }
    }

    /// Routes one packet a stack sent.
    fn route_from(&mut self, now_ns: u64, from: StackId, pkt: Vec<u8>) {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt[..]) else {
            self.counters.drops.malformed_ipv4 += 1;
            return;
        };
        let dst = ip.dst_addr();
        let flow = nat::flow_of(&ip).ok();
        match from {
            StackId::Host | StackId::Lan => {
                let (mac, src_ip) = if from == StackId::Host {
                    (self.mac, self.gw)
                } else {
                    (self.lan_mac, self.lan_ip.unwrap_or(self.gw))
                };
                if self.config.subnet.contains(dst) || dst == Ipv4Addr::BROADCAST {
                    self.send_l2(mac, src_ip, pkt);
                } else if from == StackId::Host && dst == EXTERNAL_ADDR {
                    self.forward_in(now_ns, &pkt, flow);
                } else if from == StackId::Host && self.outside_owner(dst).is_some() {
                    self.enqueue_stack(StackId::Outside, pkt);
                } else {
                    self.counters.drops.no_route += 1;
                }
            }
            StackId::Outside => {
                if dst == EXTERNAL_ADDR {
                    if let Some((to, guest_mac)) = flow.and_then(|f| self.nat.inbound(now_ns, f)) {
                        let mut p = pkt;
                        if nat::rewrite(&mut p, to, true).is_err() {
                            self.counters.drops.malformed_ipv4 += 1;
                            return;
                        }
                        self.counters.nat_translated_in += 1;
                        self.push_frame(self.mac, guest_mac, EthernetProtocol::Ipv4, &p);
                    } else {
                        self.forward_in(now_ns, &pkt, flow);
                    }
                } else if dst == self.gw {
                    self.enqueue_stack(StackId::Host, pkt);
                } else {
                    self.counters.drops.no_route += 1;
                }
            }
        }
    }

    /// A packet to `EXTERNAL_ADDR`: through a port forward to a guest, or dropped.
    fn forward_in(&mut self, now_ns: u64, pkt: &[u8], flow: Option<Flow>) {
        let rule = flow.and_then(|f| {
            let proto = Protocol::from_number(f.proto)?;
            self.config
                .port_forwards
                .iter()
                .find_map(|r| match r.internal_address {
                    IpAddr::V4(a)
                        if r.protocol == proto
                            && r.external_port == f.dport
                            && r.external_address
                                .is_none_or(|e| e == IpAddr::V4(EXTERNAL_ADDR)) =>
                    {
                        Some((a, r.internal_port))
                    }
                    _ => None,
                })
        });
        let (Some(f), Some(internal)) = (flow, rule) else {
            self.counters.drops.no_nat_session += 1;
            return;
        };
        match self.nat.forward_in(now_ns, f, internal) {
            Ok(to) => {
                let mut p = pkt.to_vec();
                if nat::rewrite(&mut p, to, false).is_err() {
                    self.counters.drops.malformed_ipv4 += 1;
                    return;
                }
                self.counters.forward_hits += 1;
                self.send_l2(self.mac, self.gw, p);
            }
            Err(nat::NatError::TableFull) => self.counters.drops.nat_table_full += 1,
        }
    }

    /// Runs the stacks and emits every frame ready to go onto the network.
    pub fn poll(&mut self, now_ns: u64, emit: &mut dyn FnMut(&[u8])) {
        if let Some(d) = self.dhcp.as_mut() {
            d.expire(now_ns);
        }
        self.nat.expire(now_ns);
        for _ in 0..POLL_ROUNDS_MAX {
            let mut moved = false;
            for id in [StackId::Host, StackId::Lan, StackId::Outside] {
                let Some(s) = self.stack_mut(id) else {
                    continue;
                };
                moved |= s.poll(now_ns);
                let sent: Vec<Vec<u8>> = s.dev.tx.drain(..).collect();
                moved |= !sent.is_empty();
                for p in sent {
                    self.route_from(now_ns, id, p);
                }
            }
            let queued = [Some(&self.host), self.lan.as_ref(), self.outside.as_ref()]
                .into_iter()
                .flatten()
                .any(|s| !s.dev.rx.is_empty());
            if !moved && !queued {
                break;
            }
        }
        while let Some(f) = self.out.pop_front() {
            self.counters.frames_out += 1;
            emit(&f);
        }
    }

    /// When [`Gateway::poll`] next has work (a stack timer, a lease or session expiry), or
    /// `now_ns` if frames are waiting.
    pub fn next_deadline_ns(&mut self, now_ns: u64) -> Option<u64> {
        let waiting = !self.out.is_empty()
            || [Some(&self.host), self.lan.as_ref(), self.outside.as_ref()]
                .into_iter()
                .flatten()
                .any(|s| !s.dev.rx.is_empty());
        if waiting {
            return Some(now_ns);
        }
        let mut at = [
            self.dhcp
                .as_ref()
                .and_then(dhcp::DhcpServer::next_deadline_ns),
            self.nat.next_deadline_ns(),
        ]
        .into_iter()
        .flatten()
        .min();
        for id in [StackId::Host, StackId::Lan, StackId::Outside] {
            if let Some(t) = self.stack_mut(id).and_then(|s| s.poll_at_ns(now_ns)) {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        }
        at.map(|t| t.max(now_ns))
    }
}

/// An Ethernet/IPv4/UDP frame carrying `payload`.
fn udp_frame(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac.octets()),
        dst_addr: EthernetAddress(dst_mac.octets()),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let caps = ChecksumCapabilities::default();
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, &caps);
    let mut u = UdpPacket::new_unchecked(p.payload_mut());
    udp.emit(
        &mut u,
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &caps,
    );
    buf
}

#[cfg(test)]
mod tests;
