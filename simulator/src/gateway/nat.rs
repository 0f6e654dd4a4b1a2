//! NAT44 and port forwarding: the session tables and the header rewrite.
//!
//! Outbound sessions map (protocol, guest address, guest port, remote address, remote port) to
//! an external port on [`super::EXTERNAL_ADDR`]; for ICMP echo the "port" is the identifier.
//! Forward sessions map a peer connecting to a forwarded external port onto the rule's internal
//! address and port. Rewrites go through smoltcp's wire types and refill every checksum.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ndk_model::ethernet::MacAddress;
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

use crate::rng::SimRng;

/// Most outbound NAT sessions at once.
pub(crate) const NAT_SESSIONS_MAX: usize = 4096;
/// Most forward sessions at once.
pub(crate) const FORWARD_SESSIONS_MAX: usize = 1024;
/// Idle timeout of a TCP session (UNCONFIRMED for vmnet; a common NAT default).
pub(crate) const TCP_IDLE_NS: u64 = 7_200_000_000_000;
/// Idle timeout of a UDP or ICMP session (UNCONFIRMED for vmnet).
pub(crate) const UDP_IDLE_NS: u64 = 60_000_000_000;
/// External ports (and ICMP identifiers) the NAT allocates from.
const PORT_LOW: u16 = 49_152;
const PORT_HIGH: u16 = 65_535;
/// Random tries before the allocator scans.
const ALLOC_TRIES: usize = 32;

/// The transport 5-tuple of an IPv4 packet: (protocol, src, sport, dst, dport). For ICMP echo the
/// identifier is the requester's port and the responder's port is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Flow {
    pub(crate) proto: u8,
    pub(crate) src: Ipv4Addr,
    pub(crate) sport: u16,
    pub(crate) dst: Ipv4Addr,
    pub(crate) dport: u16,
}

/// Why a packet could not be read as a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowError {
    /// The transport header is short or inconsistent.
    Malformed,
    /// Not TCP, UDP or ICMP echo request/reply.
    Unsupported,
}

/// The flow of a checked IPv4 packet. A bad transport checksum is `Malformed`: the rewrite
/// refills checksums, so checking first keeps the NAT from laundering corrupted packets.
pub(crate) fn flow_of(ip: &Ipv4Packet<&[u8]>) -> Result<Flow, FlowError> {
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    let (proto, sport, dport) = match ip.next_header() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(payload).map_err(|_| FlowError::Malformed)?;
            if !t.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)) {
                return Err(FlowError::Malformed);
            }
            (6, t.src_port(), t.dst_port())
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(payload).map_err(|_| FlowError::Malformed)?;
            if !u.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)) {
                return Err(FlowError::Malformed);
            }
            (17, u.src_port(), u.dst_port())
        }
        IpProtocol::Icmp => {
            let i = Icmpv4Packet::new_checked(payload).map_err(|_| FlowError::Malformed)?;
            if !i.verify_checksum() {
                return Err(FlowError::Malformed);
            }
            match i.msg_type() {
                Icmpv4Message::EchoRequest => (1, i.echo_ident(), 0),
                Icmpv4Message::EchoReply => (1, 0, i.echo_ident()),
                _ => return Err(FlowError::Unsupported),
            }
        }
        _ => return Err(FlowError::Unsupported),
    };
    Ok(Flow {
        proto,
        src,
        sport,
        dst,
        dport,
    })
}

/// Rewrites `packet` (a whole IPv4 packet) to `to`, decrementing TTL when `forwarded`, and
/// refills the IPv4 and transport checksums. The caller checked it with [`flow_of`].
pub(crate) fn rewrite(packet: &mut [u8], to: Flow, forwarded: bool) -> Result<(), FlowError> {
    let mut ip = Ipv4Packet::new_checked(packet).map_err(|_| FlowError::Malformed)?;
    ip.set_src_addr(to.src);
    ip.set_dst_addr(to.dst);
    if forwarded {
        let ttl = ip.hop_limit();
        ip.set_hop_limit(ttl.saturating_sub(1));
    }
    ip.fill_checksum();
    let (src, dst) = (IpAddress::Ipv4(to.src), IpAddress::Ipv4(to.dst));
    let proto = ip.next_header();
    let payload = ip.payload_mut();
    match proto {
        IpProtocol::Tcp => {
            let mut t = TcpPacket::new_checked(payload).map_err(|_| FlowError::Malformed)?;
            t.set_src_port(to.sport);
            t.set_dst_port(to.dport);
            t.fill_checksum(&src, &dst);
        }
        IpProtocol::Udp => {
            let mut u = UdpPacket::new_checked(payload).map_err(|_| FlowError::Malformed)?;
            u.set_src_port(to.sport);
            u.set_dst_port(to.dport);
            u.fill_checksum(&src, &dst);
        }
        IpProtocol::Icmp => {
            let mut i = Icmpv4Packet::new_checked(payload).map_err(|_| FlowError::Malformed)?;
            // Outbound the source "port" is the new identifier, inbound the destination one.
            i.set_echo_ident(if i.msg_type() == Icmpv4Message::EchoRequest {
                to.sport
            } else {
                to.dport
            });
            i.fill_checksum();
        }
        _ => return Err(FlowError::Unsupported),
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Session {
    ext_port: u16,
    guest_mac: MacAddress,
    last_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Forward {
    internal: (Ipv4Addr, u16),
    last_ns: u64,
}

/// Why an outbound packet found no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NatError {
    /// [`NAT_SESSIONS_MAX`] or [`FORWARD_SESSIONS_MAX`] reached, or no free port.
    TableFull,
}

/// The NAT's tables.
#[derive(Debug)]
pub(crate) struct Nat {
    external: Ipv4Addr,
    rng: SimRng,
    /// Outbound key: the guest's flow.
    out: BTreeMap<Flow, Session>,
    /// Inbound key: (proto, external port, remote, remote port) → the guest's flow.
    inbound: BTreeMap<(u8, u16, Ipv4Addr, u16), Flow>,
    /// Forward key: (proto, peer, peer port, external port).
    fwd: BTreeMap<(u8, Ipv4Addr, u16, u16), Forward>,
    /// Reverse forward key: (proto, internal, internal port, peer, peer port) → external port.
    fwd_rev: BTreeMap<(u8, Ipv4Addr, u16, Ipv4Addr, u16), u16>,
    /// Sessions ever created.
    pub(crate) created: u64,
}

fn idle_ns(proto: u8) -> u64 {
    if proto == 6 {
        TCP_IDLE_NS
    } else {
        UDP_IDLE_NS
    }
}

impl Nat {
    pub(crate) fn new(external: Ipv4Addr, rng: SimRng) -> Self {
        Self {
            external,
            rng,
            out: BTreeMap::new(),
            inbound: BTreeMap::new(),
            fwd: BTreeMap::new(),
            fwd_rev: BTreeMap::new(),
            created: 0,
        }
    }

    /// Outbound sessions now.
    pub(crate) fn sessions(&self) -> usize {
        self.out.len()
    }

    /// Forward sessions now.
    pub(crate) fn forward_sessions(&self) -> usize {
        self.fwd.len()
    }

    fn port_free(&self, proto: u8, port: u16) -> bool {
        !self
            .inbound
            .range(
                (proto, port, Ipv4Addr::UNSPECIFIED, 0)
                    ..=(proto, port, Ipv4Addr::BROADCAST, u16::MAX),
            )
            .any(|_| true)
    }

    fn allocate(&mut self, proto: u8) -> Option<u16> {
        for _ in 0..ALLOC_TRIES {
            let p = self
                .rng
                .range_inclusive(u64::from(PORT_LOW), u64::from(PORT_HIGH))
                as u16;
            if self.port_free(proto, p) {
                return Some(p);
            }
        }
        (PORT_LOW..=PORT_HIGH).find(|&p| self.port_free(proto, p))
    }

    /// The translated flow for a guest's outbound packet, making a session if needed.
    pub(crate) fn outbound(
        &mut self,
        now_ns: u64,
        flow: Flow,
        guest_mac: MacAddress,
    ) -> Result<Flow, NatError> {
        let ext_port = if let Some(s) = self.out.get_mut(&flow) {
            s.last_ns = now_ns;
            s.guest_mac = guest_mac;
            s.ext_port
        } else {
            if self.out.len() >= NAT_SESSIONS_MAX {
                return Err(NatError::TableFull);
            }
            let p = self.allocate(flow.proto).ok_or(NatError::TableFull)?;
            self.out.insert(
                flow,
                Session {
                    ext_port: p,
                    guest_mac,
                    last_ns: now_ns,
                },
            );
            self.inbound
                .insert((flow.proto, p, flow.dst, flow.dport), flow);
            self.created += 1;
            p
        };
        Ok(Flow {
            src: self.external,
            sport: ext_port,
            ..flow
        })
    }

    /// The translated flow (and guest MAC) for a packet to the external address, if a session
    /// holds it.
    pub(crate) fn inbound(&mut self, now_ns: u64, flow: Flow) -> Option<(Flow, MacAddress)> {
        let guest = *self
            .inbound
            .get(&(flow.proto, flow.dport, flow.src, flow.sport))?;
        let s = self.out.get_mut(&guest)?;
        s.last_ns = now_ns;
        Some((
            Flow {
                dst: guest.src,
                dport: guest.sport,
                ..flow
            },
            s.guest_mac,
        ))
    }

    /// A peer's packet to forwarded external port `flow.dport`, sent on to `internal`.
    pub(crate) fn forward_in(
        &mut self,
        now_ns: u64,
        flow: Flow,
        internal: (Ipv4Addr, u16),
    ) -> Result<Flow, NatError> {
        let key = (flow.proto, flow.src, flow.sport, flow.dport);
        if let Some(f) = self.fwd.get_mut(&key) {
            f.last_ns = now_ns;
        } else {
            if self.fwd.len() >= FORWARD_SESSIONS_MAX {
                return Err(NatError::TableFull);
            }
            self.fwd.insert(
                key,
                Forward {
                    internal,
                    last_ns: now_ns,
                },
            );
            self.fwd_rev.insert(
                (flow.proto, internal.0, internal.1, flow.src, flow.sport),
                flow.dport,
            );
        }
        let internal = self.fwd[&key].internal;
        Ok(Flow {
            dst: internal.0,
            dport: internal.1,
            ..flow
        })
    }

    /// A guest's reply on a forward session, rewritten to come from the external port.
    pub(crate) fn forward_out(&mut self, now_ns: u64, flow: Flow) -> Option<Flow> {
        let ext = *self
            .fwd_rev
            .get(&(flow.proto, flow.src, flow.sport, flow.dst, flow.dport))?;
        if let Some(f) = self.fwd.get_mut(&(flow.proto, flow.dst, flow.dport, ext)) {
            f.last_ns = now_ns;
        }
        Some(Flow {
            src: self.external,
            sport: ext,
            ..flow
        })
    }

    /// Removes idle sessions.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        let dead: Vec<Flow> = self
            .out
            .iter()
            .filter(|(f, s)| now_ns.saturating_sub(s.last_ns) >= idle_ns(f.proto))
            .map(|(f, _)| *f)
            .collect();
        for f in dead {
            if let Some(s) = self.out.remove(&f) {
                self.inbound.remove(&(f.proto, s.ext_port, f.dst, f.dport));
            }
        }
        let dead: Vec<_> = self
            .fwd
            .iter()
            .filter(|(k, f)| now_ns.saturating_sub(f.last_ns) >= idle_ns(k.0))
            .map(|(k, f)| (*k, f.internal))
            .collect();
        for (k, internal) in dead {
            self.fwd.remove(&k);
            self.fwd_rev
                .remove(&(k.0, internal.0, internal.1, k.1, k.2));
        }
    }

    /// When the next session goes idle.
    pub(crate) fn next_deadline_ns(&self) -> Option<u64> {
        self.out
            .iter()
            .map(|(f, s)| s.last_ns.saturating_add(idle_ns(f.proto)))
            .chain(
                self.fwd
                    .iter()
                    .map(|(k, f)| f.last_ns.saturating_add(idle_ns(k.0))),
            )
            .min()
    }
}
