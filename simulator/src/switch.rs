//! A learning Ethernet switch: the L2 bridge that every simulated vmnet network sits on.
//!
//! Models: the host bridge (`bridge100`, `bridge101`, …) that vmnet attaches each interface to
//! (vmnet.md §1.8 "Bridge and isolation").
//!
//! **Supported:** source-MAC learning per port (unicast sources only); unicast to the learned port;
//! flooding of unknown unicast, broadcast and multicast to every other permitted port in ascending
//! port order (deterministic); per-port isolation; per-port counters; removing a port forgets the
//! addresses learned on it.
//!
//! **Rejected / not modelled:** address ageing (entries live until their port is removed or the
//! address moves), VLANs, STP, and the kernel `PRIVATE` member flag vmnet sets on Sequoia/Tahoe.
//!
//! **Isolation.** vmnet's `vmnet_enable_isolation_key` means "no traffic between vmnet interfaces;
//! guest↔host still flows". Here that is a per-port flag. Two isolated ports never exchange frames;
//! the uplink (the host/gateway side) is never isolated. What vmnet does when isolated and
//! non-isolated interfaces share one network is UNCONFIRMED; this model follows Linux
//! `BR_ISOLATED` (a frame is blocked only when both ends are isolated).
//!
//! The switch does not own frames: [`Switch::forward`] decides the egress ports and the caller
//! copies the bytes.

use std::collections::BTreeMap;

use ndk_model::ethernet::MacAddress;

/// Bytes in an Ethernet header (destination, source, EtherType); no FCS on vmnet frames.
pub const ETHERNET_HEADER_BYTES: usize = 14;

/// A port number on one [`Switch`]. Port numbers are never reused within a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u32);

/// What sits behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// The host side of the bridge (later: the gateway with DHCP, DNS and NAT). Never isolated.
    Uplink,
    /// A vmnet interface (a guest).
    Interface {
        /// Whether this port was started with isolation on.
        isolated: bool,
    },
}

/// Per-port counters, from the switch's point of view (`ingress` = into the switch from the
/// port, `egress` = out of the switch to the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortCounters {
    /// Frames received from this port.
    pub ingress_frames: u64,
    /// Bytes received from this port.
    pub ingress_bytes: u64,
    /// Frames sent to this port.
    pub egress_frames: u64,
    /// Bytes sent to this port.
    pub egress_bytes: u64,
    /// Ingress frames that were flooded (unknown unicast, broadcast or multicast).
    pub flooded_frames: u64,
    /// Ingress frames shorter than an Ethernet header, dropped.
    pub dropped_runt_frames: u64,
    /// Ingress frames whose learned destination is the ingress port itself, dropped.
    pub dropped_same_port_frames: u64,
    /// Ingress frames whose only destination was blocked by isolation, dropped.
    pub dropped_isolation_frames: u64,
    /// Ingress frames that reached no port at all (nothing else permitted on the switch).
    pub dropped_no_egress_frames: u64,
}

/// Why [`Switch::forward`] delivered a frame nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than [`ETHERNET_HEADER_BYTES`].
    Runt,
    /// The destination was learned on the ingress port.
    SamePort,
    /// Isolation forbids the only destination.
    Isolation,
    /// No other permitted port exists.
    NoEgress,
}

/// How a frame was forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Sent to the one learned port.
    Unicast,
    /// Sent to every permitted port except the ingress one (maybe none).
    Flooded,
    /// Sent nowhere.
    Dropped(DropReason),
}

/// An error from [`Switch::forward`] or a port lookup: the port does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no port {0:?} on this switch")]
pub struct UnknownPort(pub PortId);

#[derive(Debug, Clone)]
struct Port {
    kind: PortKind,
    counters: PortCounters,
}

impl Port {
    fn isolated(&self) -> bool {
        matches!(self.kind, PortKind::Interface { isolated: true })
    }
}

/// A learning switch with a bounded forwarding database.
///
/// **Invariant:** every port named in `fdb` is in `ports`.
#[derive(Debug, Clone)]
pub struct Switch {
    /// Live ports by number (a `BTreeMap` so flooding order is ascending port number).
    ports: BTreeMap<PortId, Port>,
    /// Learned source addresses.
    fdb: BTreeMap<MacAddress, PortId>,
    /// Most addresses `fdb` may hold; new addresses are not learned beyond it.
    fdb_entries_max: usize,
    /// Addresses not learned because `fdb` was full.
    fdb_full_count: u64,
    /// The next port number to hand out.
    next_port: u32,
}

impl Switch {
    /// An empty switch whose forwarding database holds at most `fdb_entries_max` addresses.
    pub fn new(fdb_entries_max: usize) -> Self {
        Self {
            ports: BTreeMap::new(),
            fdb: BTreeMap::new(),
            fdb_entries_max,
            fdb_full_count: 0,
            next_port: 0,
        }
    }

    /// Adds a port and returns its number (ascending, never reused).
    pub fn add_port(&mut self, kind: PortKind) -> PortId {
        let id = PortId(self.next_port);
        self.next_port = self
            .next_port
            .checked_add(1)
            .expect("port numbers exhausted");
        self.ports.insert(
            id,
            Port {
                kind,
                counters: PortCounters::default(),
            },
        );
        id
    }

    /// Removes a port and forgets every address learned on it; returns its final counters.
    pub fn remove_port(&mut self, port: PortId) -> Result<PortCounters, UnknownPort> {
        let removed = self.ports.remove(&port).ok_or(UnknownPort(port))?;
        self.fdb.retain(|_, p| *p != port);
        Ok(removed.counters)
    }

    /// The live ports, ascending.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports.keys().copied()
    }

    /// What sits behind `port`.
    pub fn port_kind(&self, port: PortId) -> Result<PortKind, UnknownPort> {
        self.ports
            .get(&port)
            .map(|p| p.kind)
            .ok_or(UnknownPort(port))
    }

    /// The counters of `port`.
    pub fn counters(&self, port: PortId) -> Result<PortCounters, UnknownPort> {
        self.ports
            .get(&port)
            .map(|p| p.counters)
            .ok_or(UnknownPort(port))
    }

    /// The port `mac` was learned on, if any.
    pub fn lookup(&self, mac: MacAddress) -> Option<PortId> {
        self.fdb.get(&mac).copied()
    }

    /// Addresses not learned because the forwarding database was full.
    pub const fn fdb_full_count(&self) -> u64 {
        self.fdb_full_count
    }

    /// Whether isolation lets a frame go from `from` to `to`.
    fn permitted(from: &Port, to: &Port) -> bool {
        !(from.isolated() && to.isolated())
    }

    /// Learns the source of `frame` from `ingress` and decides where it goes.
    ///
    /// `egress` is cleared, then filled with the destination ports in ascending order. Counters
    /// of the ingress port and of every egress port are updated (the caller is expected to
    /// deliver the frame to every port in `egress`).
    pub fn forward(
        &mut self,
        ingress: PortId,
        frame: &[u8],
        egress: &mut Vec<PortId>,
    ) -> Result<Verdict, UnknownPort> {
        egress.clear();
        let len_bytes = frame.len() as u64;
        let from = self.ports.get_mut(&ingress).ok_or(UnknownPort(ingress))?;
        from.counters.ingress_frames += 1;
        from.counters.ingress_bytes += len_bytes;
        if frame.len() < ETHERNET_HEADER_BYTES {
            from.counters.dropped_runt_frames += 1;
            return Ok(Verdict::Dropped(DropReason::Runt));
        }
        let dst = MacAddress(frame[0..6].try_into().expect("6 bytes"));
        let src = MacAddress(frame[6..12].try_into().expect("6 bytes"));
        self.learn(src, ingress);

        let verdict = self.route(ingress, dst, egress);
        let from = self.ports.get_mut(&ingress).expect("ingress exists");
        match verdict {
            Verdict::Flooded => from.counters.flooded_frames += 1,
            Verdict::Dropped(DropReason::SamePort) => from.counters.dropped_same_port_frames += 1,
            Verdict::Dropped(DropReason::Isolation) => from.counters.dropped_isolation_frames += 1,
            Verdict::Dropped(DropReason::NoEgress) => from.counters.dropped_no_egress_frames += 1,
            Verdict::Dropped(DropReason::Runt) | Verdict::Unicast => {}
        }
        for port in egress.iter() {
            let to = self.ports.get_mut(port).expect("egress exists");
            to.counters.egress_frames += 1;
            to.counters.egress_bytes += len_bytes;
        }
        Ok(verdict)
    }

    fn learn(&mut self, src: MacAddress, ingress: PortId) {
        if !src.is_unicast() {
            return;
        }
        if let Some(port) = self.fdb.get_mut(&src) {
            *port = ingress;
        } else if self.fdb.len() < self.fdb_entries_max {
            self.fdb.insert(src, ingress);
        } else {
            self.fdb_full_count += 1;
        }
    }

    fn route(&self, ingress: PortId, dst: MacAddress, egress: &mut Vec<PortId>) -> Verdict {
        let from = &self.ports[&ingress];
        if dst.is_unicast() {
            if let Some(&to_id) = self.fdb.get(&dst) {
                if to_id == ingress {
                    return Verdict::Dropped(DropReason::SamePort);
                }
                if !Self::permitted(from, &self.ports[&to_id]) {
                    return Verdict::Dropped(DropReason::Isolation);
                }
                egress.push(to_id);
                return Verdict::Unicast;
            }
        }
        let mut blocked = false;
        for (&id, to) in &self.ports {
            if id == ingress {
                continue;
            }
            if Self::permitted(from, to) {
                egress.push(id);
            } else {
                blocked = true;
            }
        }
        match (egress.is_empty(), blocked) {
            (false, _) => Verdict::Flooded,
            (true, true) => Verdict::Dropped(DropReason::Isolation),
            (true, false) => Verdict::Dropped(DropReason::NoEgress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddress {
        MacAddress([0x02, 0, 0, 0, 0, last])
    }

    fn frame(dst: MacAddress, src: MacAddress) -> Vec<u8> {
        let mut f = Vec::with_capacity(60);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(60, 0xab);
        f
    }

    fn three_ports(isolated: bool) -> (Switch, PortId, PortId, PortId) {
        let mut sw = Switch::new(16);
        let up = sw.add_port(PortKind::Uplink);
        let a = sw.add_port(PortKind::Interface { isolated });
        let b = sw.add_port(PortKind::Interface { isolated });
        (sw, up, a, b)
    }

    #[test]
    fn floods_unknown_then_unicasts_learned() {
        let (mut sw, up, a, b) = three_ports(false);
        let mut out = Vec::new();
        assert_eq!(
            sw.forward(a, &frame(mac(2), mac(1)), &mut out),
            Ok(Verdict::Flooded)
        );
        assert_eq!(
            out,
            vec![up, b],
            "flood goes to every other port, ascending"
        );
        assert_eq!(sw.lookup(mac(1)), Some(a));
        assert_eq!(
            sw.forward(b, &frame(mac(1), mac(2)), &mut out),
            Ok(Verdict::Unicast)
        );
        assert_eq!(out, vec![a]);
        assert_eq!(
            sw.forward(a, &frame(mac(2), mac(1)), &mut out),
            Ok(Verdict::Unicast)
        );
        assert_eq!(out, vec![b]);
        let ca = sw.counters(a).unwrap();
        assert_eq!(
            (ca.ingress_frames, ca.egress_frames, ca.flooded_frames),
            (2, 1, 1)
        );
        assert_eq!(sw.counters(up).unwrap().egress_frames, 1);
    }

    #[test]
    fn floods_broadcast_and_multicast_even_when_known() {
        let (mut sw, up, a, b) = three_ports(false);
        let mut out = Vec::new();
        for dst in [
            MacAddress::BROADCAST,
            MacAddress([0x01, 0, 0x5e, 0, 0, 0xfb]),
        ] {
            assert_eq!(
                sw.forward(a, &frame(dst, mac(1)), &mut out),
                Ok(Verdict::Flooded)
            );
            assert_eq!(out, vec![up, b]);
        }
        // A multicast source is never learned.
        sw.forward(
            b,
            &frame(mac(9), MacAddress([0x01, 0, 0, 0, 0, 1])),
            &mut out,
        )
        .unwrap();
        assert_eq!(sw.lookup(MacAddress([0x01, 0, 0, 0, 0, 1])), None);
    }

    #[test]
    fn isolation_allows_only_the_uplink() {
        let (mut sw, up, a, b) = three_ports(true);
        let mut out = Vec::new();
        assert_eq!(
            sw.forward(a, &frame(MacAddress::BROADCAST, mac(1)), &mut out),
            Ok(Verdict::Flooded)
        );
        assert_eq!(out, vec![up]);
        sw.forward(b, &frame(MacAddress::BROADCAST, mac(2)), &mut out)
            .unwrap();
        assert_eq!(
            sw.forward(a, &frame(mac(2), mac(1)), &mut out),
            Ok(Verdict::Dropped(DropReason::Isolation))
        );
        assert!(out.is_empty());
        assert_eq!(sw.counters(a).unwrap().dropped_isolation_frames, 1);
        // The host side reaches both.
        assert_eq!(
            sw.forward(up, &frame(mac(1), mac(100)), &mut out),
            Ok(Verdict::Unicast)
        );
        assert_eq!(out, vec![a]);
        assert_eq!(
            sw.forward(up, &frame(MacAddress::BROADCAST, mac(100)), &mut out),
            Ok(Verdict::Flooded)
        );
        assert_eq!(out, vec![a, b]);
    }

    #[test]
    fn mixed_isolation_follows_br_isolated() {
        let mut sw = Switch::new(16);
        let a = sw.add_port(PortKind::Interface { isolated: true });
        let b = sw.add_port(PortKind::Interface { isolated: false });
        let mut out = Vec::new();
        assert_eq!(
            sw.forward(a, &frame(MacAddress::BROADCAST, mac(1)), &mut out),
            Ok(Verdict::Flooded)
        );
        assert_eq!(out, vec![b]);
    }

    #[test]
    fn drops_runts_same_port_and_lonely_frames() {
        let mut sw = Switch::new(16);
        let a = sw.add_port(PortKind::Interface { isolated: false });
        let mut out = Vec::new();
        assert_eq!(
            sw.forward(a, &[0u8; 13], &mut out),
            Ok(Verdict::Dropped(DropReason::Runt))
        );
        assert_eq!(
            sw.forward(a, &frame(MacAddress::BROADCAST, mac(1)), &mut out),
            Ok(Verdict::Dropped(DropReason::NoEgress))
        );
        assert_eq!(
            sw.forward(a, &frame(mac(1), mac(1)), &mut out),
            Ok(Verdict::Dropped(DropReason::SamePort))
        );
        let c = sw.counters(a).unwrap();
        assert_eq!(
            (
                c.dropped_runt_frames,
                c.dropped_no_egress_frames,
                c.dropped_same_port_frames
            ),
            (1, 1, 1)
        );
        assert_eq!(
            sw.forward(PortId(99), &frame(mac(1), mac(2)), &mut out),
            Err(UnknownPort(PortId(99)))
        );
    }

    #[test]
    fn relearns_moves_and_forgets_removed_ports() {
        let (mut sw, _up, a, b) = three_ports(false);
        let mut out = Vec::new();
        sw.forward(a, &frame(MacAddress::BROADCAST, mac(1)), &mut out)
            .unwrap();
        sw.forward(b, &frame(MacAddress::BROADCAST, mac(1)), &mut out)
            .unwrap();
        assert_eq!(sw.lookup(mac(1)), Some(b), "a moved station is relearned");
        let counters = sw.remove_port(b).unwrap();
        assert_eq!(counters.ingress_frames, 1);
        assert_eq!(sw.lookup(mac(1)), None);
        assert_eq!(sw.remove_port(b), Err(UnknownPort(b)));
        let c = sw.add_port(PortKind::Interface { isolated: false });
        assert!(c > b, "port numbers are not reused");
    }

    proptest::proptest! {
        /// Against a reference model: egress is sorted, never holds the ingress port, respects
        /// isolation, goes to the learned port for known unicast, and the counters add up.
        #[test]
        fn forwarding_matches_a_reference_model(
            isolated in proptest::collection::vec(proptest::bool::ANY, 4),
            steps in proptest::collection::vec((0usize..5, 0u8..8, 0u8..6), 1..200),
        ) {
            let mut sw = Switch::new(64);
            let mut ports = vec![sw.add_port(PortKind::Uplink)];
            for &iso in &isolated {
                ports.push(sw.add_port(PortKind::Interface { isolated: iso }));
            }
            let is_iso = |p: PortId| p != ports[0] && isolated[p.0 as usize - 1];
            let mut learned: BTreeMap<MacAddress, PortId> = BTreeMap::new();
            let mut out = Vec::new();
            let (mut delivered, mut dropped) = (0u64, 0u64);
            for (ingress_index, dst, src) in steps {
                let ingress = ports[ingress_index];
                // dst 7 is broadcast; src 5 is a multicast source (never learned).
                let dst_mac = if dst == 7 { MacAddress::BROADCAST } else { mac(dst) };
                let src_mac = if src == 5 { MacAddress([0x01, 0, 0, 0, 0, 5]) } else { mac(src) };
                let verdict = sw.forward(ingress, &frame(dst_mac, src_mac), &mut out).unwrap();
                if src_mac.is_unicast() {
                    learned.insert(src_mac, ingress);
                }
                proptest::prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
                proptest::prop_assert!(!out.contains(&ingress));
                proptest::prop_assert!(out.iter().all(|&p| !(is_iso(p) && is_iso(ingress))));
                match learned.get(&dst_mac).copied().filter(|_| dst_mac.is_unicast()) {
                    Some(to) if to == ingress => {
                        proptest::prop_assert_eq!(verdict, Verdict::Dropped(DropReason::SamePort));
                    }
                    Some(to) if is_iso(to) && is_iso(ingress) => {
                        proptest::prop_assert_eq!(verdict, Verdict::Dropped(DropReason::Isolation));
                    }
                    Some(to) => proptest::prop_assert_eq!(&out, &vec![to]),
                    None => {
                        let expected: Vec<PortId> = ports
                            .iter()
                            .copied()
                            .filter(|&p| p != ingress && !(is_iso(p) && is_iso(ingress)))
                            .collect();
                        proptest::prop_assert_eq!(&out, &expected);
                    }
                }
                delivered += out.len() as u64;
                dropped += u64::from(matches!(verdict, Verdict::Dropped(_)));
            }
            let totals = ports.iter().map(|&p| sw.counters(p).unwrap()).fold(
                (0u64, 0u64),
                |(egress, drops), c| {
                    let d = c.dropped_runt_frames
                        + c.dropped_same_port_frames
                        + c.dropped_isolation_frames
                        + c.dropped_no_egress_frames;
                    (egress + c.egress_frames, drops + d)
                },
            );
            proptest::prop_assert_eq!(totals, (delivered, dropped));
        }
    }

    #[test]
    fn fdb_is_bounded() {
        let mut sw = Switch::new(2);
        let a = sw.add_port(PortKind::Interface { isolated: false });
        let _b = sw.add_port(PortKind::Interface { isolated: false });
        let mut out = Vec::new();
        for i in 1..=3 {
            sw.forward(a, &frame(MacAddress::BROADCAST, mac(i)), &mut out)
                .unwrap();
        }
        assert_eq!(sw.lookup(mac(3)), None);
        assert_eq!(sw.fdb_full_count(), 1);
    }
}
