//! The DHCP server (bootpd's role, vmnet.md §1.4 "Default addressing", §7(a) "Policy").
//!
//! Parsing and emitting go through smoltcp's `DhcpPacket`/`DhcpRepr`; this file holds only the
//! server's decisions (RFC 2131 §4.3): which address to offer, when to ACK or NAK, and where a
//! reply goes (§4.1: `ciaddr` → unicast to it; NAK or the broadcast flag → broadcast; otherwise
//! unicast to `chaddr`/`yiaddr`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ndk_model::ethernet::MacAddress;
use smoltcp::wire::{DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress};

use super::GatewayCounters;
use crate::netconfig::Ipv4Subnet;

/// How long an offered address is held for the client it was offered to.
const OFFER_HOLD_NS: u64 = 60_000_000_000;
/// How long a DECLINEd address stays out of the pool (RFC 2131 leaves it to the server).
const DECLINE_HOLD_NS: u64 = 600_000_000_000;

/// The DHCP server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// First address of the pool.
    pub pool_start: Ipv4Addr,
    /// Last address of the pool (inclusive).
    pub pool_end: Ipv4Addr,
    /// Lease length (bootpd: 86 400 s).
    pub lease_duration_s: u32,
    /// Static leases, served before the pool.
    pub reservations: Vec<(MacAddress, Ipv4Addr)>,
}

impl DhcpConfig {
    /// The pool `.2..=last-1` of `subnet` (vmnet.md §7(a): "pool from start+1 to end"), 86 400 s
    /// leases, no reservations.
    pub fn for_subnet(subnet: Ipv4Subnet) -> Self {
        Self {
            pool_start: Ipv4Addr::from(u32::from(subnet.gateway()) + 1),
            pool_end: Ipv4Addr::from(u32::from(subnet.last()) - 1),
            lease_duration_s: 86_400,
            reservations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    addr: Ipv4Addr,
    expires_ns: u64,
    bound: bool,
}

/// A reply to send: the DHCP payload and where it goes.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) payload: Vec<u8>,
    pub(crate) dst_ip: Ipv4Addr,
    pub(crate) dst_mac: MacAddress,
}

/// The server state.
#[derive(Debug)]
pub(crate) struct DhcpServer {
    cfg: DhcpConfig,
    subnet: Ipv4Subnet,
    dns: Option<Ipv4Addr>,
    /// Addresses no client may get (the gateway's and the LAN hosts').
    taken: Vec<Ipv4Addr>,
    leases: BTreeMap<[u8; 6], Lease>,
    declined: BTreeMap<Ipv4Addr, u64>,
}

enum Answer {
    Offer(Ipv4Addr),
    Ack(Ipv4Addr),
    Inform,
    Nak,
}

impl DhcpServer {
    pub(crate) fn new(
        cfg: DhcpConfig,
        subnet: Ipv4Subnet,
        dns: Option<Ipv4Addr>,
        taken: Vec<Ipv4Addr>,
    ) -> Self {
        Self {
            cfg,
            subnet,
            dns,
            taken,
            leases: BTreeMap::new(),
            declined: BTreeMap::new(),
        }
    }

    fn server_id(&self) -> Ipv4Addr {
        self.subnet.gateway()
    }

    /// Active (bound, unexpired) leases in MAC order.
    pub(crate) fn leases(&self) -> Vec<(MacAddress, Ipv4Addr)> {
        self.leases
            .iter()
            .filter(|(_, l)| l.bound)
            .map(|(m, l)| (MacAddress::new(*m), l.addr))
            .collect()
    }

    /// The MAC holding a lease (or offer) on `addr`.
    pub(crate) fn mac_of(&self, addr: Ipv4Addr) -> Option<MacAddress> {
        self.leases
            .iter()
            .find(|(_, l)| l.addr == addr)
            .map(|(m, _)| MacAddress::new(*m))
    }

    /// Drops expired leases, offers and declines.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        self.leases.retain(|_, l| l.expires_ns > now_ns);
        self.declined.retain(|_, &mut t| t > now_ns);
    }

    /// The earliest expiry.
    pub(crate) fn next_deadline_ns(&self) -> Option<u64> {
        self.leases
            .values()
            .map(|l| l.expires_ns)
            .chain(self.declined.values().copied())
            .min()
    }

    fn in_pool(&self, a: Ipv4Addr) -> bool {
        (u32::from(self.cfg.pool_start)..=u32::from(self.cfg.pool_end)).contains(&u32::from(a))
    }

    /// Whether `mac` may hold `addr` now.
    fn available_to(&self, mac: [u8; 6], addr: Ipv4Addr) -> bool {
        if !self.subnet.contains(addr)
            || self.subnet.is_reserved(addr)
            || self.taken.contains(&addr)
            || self.declined.contains_key(&addr)
        {
            return false;
        }
        if let Some(&(m, _)) = self.cfg.reservations.iter().find(|(_, a)| *a == addr) {
            return m.octets() == mac;
        }
        if !self.in_pool(addr) {
            return false;
        }
        !self.leases.iter().any(|(m, l)| *m != mac && l.addr == addr)
    }

    /// The address for `mac`: its reservation, its current lease, the requested one, else the
    /// lowest free pool address.
    fn choose(&self, mac: [u8; 6], requested: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        if let Some(&(_, a)) = self
            .cfg
            .reservations
            .iter()
            .find(|(m, _)| m.octets() == mac)
        {
            return Some(a);
        }
        if let Some(l) = self.leases.get(&mac) {
            if self.available_to(mac, l.addr) {
                return Some(l.addr);
            }
        }
        if let Some(r) = requested.filter(|&r| self.available_to(mac, r)) {
            return Some(r);
        }
        let (lo, hi) = (u32::from(self.cfg.pool_start), u32::from(self.cfg.pool_end));
        (lo..=hi)
            .take(1 << 16)
            .map(Ipv4Addr::from)
            .find(|&a| self.available_to(mac, a))
    }

    /// What the client should hold for a REQUEST, or `None` to NAK.
    fn request_addr(&self, mac: [u8; 6], repr: &DhcpRepr<'_>) -> Option<Ipv4Addr> {
        let wanted = repr
            .requested_ip
            .or_else(|| (repr.client_ip != Ipv4Addr::UNSPECIFIED).then_some(repr.client_ip))?;
        let expected = self.choose(mac, Some(wanted))?;
        (expected == wanted).then_some(wanted)
    }

    /// Handles one parsed message from `src_mac`.
    pub(crate) fn handle(
        &mut self,
        now_ns: u64,
        repr: &DhcpRepr<'_>,
        counters: &mut GatewayCounters,
    ) -> Option<Reply> {
        let mac = repr.client_hardware_address.0;
        if repr.relay_agent_ip != Ipv4Addr::UNSPECIFIED {
            counters.drops.dhcp_ignored += 1; // relays are not modelled
            return None;
        }
        let answer = match repr.message_type {
            DhcpMessageType::Discover => {
                counters.dhcp_discover += 1;
                let Some(addr) = self.choose(mac, repr.requested_ip) else {
                    counters.drops.dhcp_pool_exhausted += 1;
                    return None;
                };
                // A DISCOVER from a client that already holds a binding on this address (a
                // late or duplicated DISCOVER, or a client restarting) is offered the same
                // address; the binding stays as it is until a REQUEST, RELEASE or expiry
                // changes it, as a server keeps its bindings.
                let bound_here = self
                    .leases
                    .get(&mac)
                    .is_some_and(|l| l.bound && l.addr == addr);
                if !bound_here {
                    self.leases.insert(
                        mac,
                        Lease {
                            addr,
                            expires_ns: now_ns.saturating_add(OFFER_HOLD_NS),
                            bound: false,
                        },
                    );
                }
                Answer::Offer(addr)
            }
            DhcpMessageType::Request => {
                counters.dhcp_request += 1;
                if repr
                    .server_identifier
                    .is_some_and(|s| s != self.server_id())
                {
                    // SELECTING another server's offer: release ours silently.
                    if self.leases.get(&mac).is_some_and(|l| !l.bound) {
                        self.leases.remove(&mac);
                    }
                    counters.drops.dhcp_ignored += 1;
                    return None;
                }
                if let Some(addr) = self.request_addr(mac, repr) {
                    let lease_ns = u64::from(self.cfg.lease_duration_s) * 1_000_000_000;
                    self.leases.insert(
                        mac,
                        Lease {
                            addr,
                            expires_ns: now_ns.saturating_add(lease_ns),
                            bound: true,
                        },
                    );
                    Answer::Ack(addr)
                } else {
                    self.leases.remove(&mac);
                    Answer::Nak
                }
            }
            DhcpMessageType::Release => {
                counters.dhcp_release += 1;
                if self
                    .leases
                    .get(&mac)
                    .is_some_and(|l| l.addr == repr.client_ip)
                {
                    self.leases.remove(&mac);
                }
                return None;
            }
            DhcpMessageType::Decline => {
                counters.dhcp_decline += 1;
                if let Some(a) = repr.requested_ip {
                    if self.leases.get(&mac).is_some_and(|l| l.addr == a) {
                        self.leases.remove(&mac);
                        self.declined
                            .insert(a, now_ns.saturating_add(DECLINE_HOLD_NS));
                    }
                }
                return None;
            }
            DhcpMessageType::Inform => {
                counters.dhcp_inform += 1;
                Answer::Inform
            }
            _ => {
                counters.drops.dhcp_ignored += 1;
                return None;
            }
        };
        Some(self.reply(repr, &answer, counters))
    }

    fn reply(&self, req: &DhcpRepr<'_>, answer: &Answer, counters: &mut GatewayCounters) -> Reply {
        let (message_type, your_ip, lease) = match *answer {
            Answer::Offer(a) => {
                counters.dhcp_offer += 1;
                (DhcpMessageType::Offer, a, true)
            }
            Answer::Ack(a) => {
                counters.dhcp_ack += 1;
                (DhcpMessageType::Ack, a, true)
            }
            Answer::Inform => {
                counters.dhcp_ack += 1;
                (DhcpMessageType::Ack, Ipv4Addr::UNSPECIFIED, false)
            }
            Answer::Nak => {
                counters.dhcp_nak += 1;
                (DhcpMessageType::Nak, Ipv4Addr::UNSPECIFIED, false)
            }
        };
        let nak = matches!(answer, Answer::Nak);
        let dns_servers = self
            .dns
            .filter(|_| !nak)
            .map(|d| core::iter::once(d).collect());
        let repr = DhcpRepr {
            message_type,
            transaction_id: req.transaction_id,
            secs: 0,
            client_hardware_address: EthernetAddress(req.client_hardware_address.0),
            client_ip: if matches!(answer, Answer::Inform) {
                req.client_ip
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            your_ip,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: (!nak).then(|| self.subnet.gateway()),
            subnet_mask: (!nak).then(|| self.subnet.mask()),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: req.broadcast,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(self.server_id()),
            parameter_request_list: None,
            dns_servers,
            max_size: None,
            lease_duration: lease.then_some(self.cfg.lease_duration_s),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut payload = vec![0u8; repr.buffer_len()];
        let mut pkt = DhcpPacket::new_unchecked(&mut payload[..]);
        // `buffer_len` sized the buffer for exactly this repr, so emit cannot run short.
        let _ = repr.emit(&mut pkt);
        let chaddr = MacAddress::new(req.client_hardware_address.0);
        let (dst_ip, dst_mac) = if nak || req.broadcast {
            (Ipv4Addr::BROADCAST, MacAddress::BROADCAST)
        } else if req.client_ip != Ipv4Addr::UNSPECIFIED {
            (req.client_ip, chaddr)
        } else {
            (your_ip, chaddr)
        };
        Reply {
            payload,
            dst_ip,
            dst_mac,
        }
    }
}

/// Offset of the options (after the fixed fields and the magic cookie).
const OPTIONS_OFFSET: usize = 240;
/// The DHCP magic cookie (RFC 2131 §3).
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Whether the options of a DHCP message are well formed: the magic cookie, then options that
/// each fit, ended by END (RFC 2132 §2). smoltcp's parser stops quietly at an option that runs
/// off the end; a server should not act on such a message, so this check runs first.
pub(crate) fn options_well_formed(dhcp: &[u8]) -> bool {
    if dhcp.get(OPTIONS_OFFSET - 4..OPTIONS_OFFSET) != Some(&MAGIC_COOKIE[..]) {
        return false;
    }
    let mut i = OPTIONS_OFFSET;
    // Each round consumes at least one byte, so this ends within `dhcp.len()` rounds.
    while let Some(&kind) = dhcp.get(i) {
        match kind {
            0 => i += 1,
            255 => return true,
            _ => {
                let Some(&len) = dhcp.get(i + 1) else {
                    return false;
                };
                i += 2 + usize::from(len);
                if i > dhcp.len() {
                    return false;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; OPTIONS_OFFSET - 4];
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn option_walk_accepts_good_and_rejects_overruns() {
        assert!(options_well_formed(&msg(&[53, 1, 1, 0, 0, 255])));
        assert!(!options_well_formed(&msg(&[53, 1, 1, 61, 200, 1, 2])));
        assert!(!options_well_formed(&msg(&[53, 1, 1])), "no END");
        assert!(!options_well_formed(&msg(&[53])));
        let mut bad_cookie = msg(&[255]);
        bad_cookie[OPTIONS_OFFSET - 1] = 0;
        assert!(!options_well_formed(&bad_cookie));
    }

    fn server() -> DhcpServer {
        let subnet = crate::netconfig::SHARED_SUBNET_DEFAULT;
        let mut cfg = DhcpConfig::for_subnet(subnet);
        cfg.pool_end = Ipv4Addr::new(192, 168, 64, 3);
        DhcpServer::new(cfg, subnet, None, vec![subnet.gateway()])
    }

    fn repr(mac: u8, t: DhcpMessageType, requested: Option<Ipv4Addr>) -> DhcpRepr<'static> {
        DhcpRepr {
            message_type: t,
            transaction_id: 7,
            secs: 0,
            client_hardware_address: EthernetAddress([2, 0, 0, 0, 0, mac]),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: requested,
            client_identifier: None,
            server_identifier: None,
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        }
    }

    #[test]
    #[expect(clippy::many_single_char_names, reason = "short names in a test")]
    fn pool_exhaustion_naks_and_expiry() {
        let mut s = server();
        let mut c = GatewayCounters::default();
        let a = Ipv4Addr::new(192, 168, 64, 2);
        let b = Ipv4Addr::new(192, 168, 64, 3);
        for (mac, want) in [(1, a), (2, b)] {
            assert!(s
                .handle(0, &repr(mac, DhcpMessageType::Discover, None), &mut c)
                .is_some());
            let r = s.handle(0, &repr(mac, DhcpMessageType::Request, Some(want)), &mut c);
            assert_eq!(r.unwrap().dst_ip, want, "unicast to yiaddr");
        }
        assert_eq!(c.dhcp_ack, 2);
        // A third client: no address.
        assert!(s
            .handle(0, &repr(3, DhcpMessageType::Discover, None), &mut c)
            .is_none());
        assert_eq!(c.drops.dhcp_pool_exhausted, 1);
        // Asking for someone else's address: NAK, broadcast.
        let r = s
            .handle(0, &repr(3, DhcpMessageType::Request, Some(a)), &mut c)
            .unwrap();
        assert_eq!((c.dhcp_nak, r.dst_ip), (1, Ipv4Addr::BROADCAST));
        // After the lease runs out, the address is free again.
        s.expire(86_400 * 1_000_000_000 + 1);
        assert!(s.leases().is_empty());
        let r = s
            .handle(1, &repr(3, DhcpMessageType::Request, Some(a)), &mut c)
            .unwrap();
        assert_eq!(r.dst_ip, a);
        assert_eq!(s.leases(), vec![(MacAddress::new([2, 0, 0, 0, 0, 3]), a)]);
        // RELEASE frees it.
        let mut rel = repr(3, DhcpMessageType::Release, None);
        rel.client_ip = a;
        assert!(s.handle(2, &rel, &mut c).is_none());
        assert!(s.leases().is_empty());
    }
}
