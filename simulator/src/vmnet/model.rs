//! [`SimVmnet`]: the deterministic vmnet, driven by the caller's clock.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};

use ndk_model::ethernet::MacAddress;

use super::desc::{InterfaceDesc, InterfaceParams, Iov, Ipv4Range, RxDesc, TxDesc};
use super::knobs::{
    Access, Estimate, EventTrigger, OverLimit, ShortReadBuffer, SourceIpRule, VmnetKnobs,
};
use super::source_ip::{frame_source, FrameSource};
use super::types::{
    DescError, HandleError, InterfaceEvent, ReadError, StartError, VmnetReturn, WriteError,
    ETHERNET_HEADER_BYTES, MTU_BYTES_DEFAULT,
};
use super::{GuestId, OperatingMode, Uuid};
use crate::netconfig::{MTU_BYTES_MAX, MTU_BYTES_MIN};
use crate::rng::SimRng;
use crate::switch::{PortId, PortKind, Switch};

mod networks;

use networks::ConfiguredNetwork;
pub use networks::{NetworkRef, NetworkSerialization, NETWORK_SERIALIZATION_MAGIC};

/// Leases one network remembers for the source-IPv4 rule (a bound of this model). Beyond it a
/// new lease is not recorded, so that guest's IPv4 frames are dropped by the rule.
pub const LEASES_PER_NETWORK_MAX: usize = 65_536;

/// The model of `interface_ref`: names one interface of one [`SimVmnet`].
///
/// A handle outlives its interface: once the stop (or a failed start) completes, the slot's
/// generation moves on and the handle is stale (`VMNET_INVALID_ARGUMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceHandle {
    index: u32,
    generation: u32,
}

/// Which L2 network (host bridge) an interface joins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetworkKey {
    /// The host-mode network (with DHCP).
    Host,
    /// A host-mode network named by `vmnet_network_identifier_key` (no DHCP).
    HostIsolated(Uuid),
    /// The shared-mode (NAT) network.
    Shared,
    /// The LAN of this physical interface.
    Bridged(String),
    /// A macOS 26 network made by [`SimVmnet::network_create`], by its id
    /// ([`NetworkRef::id`]).
    Configured(u32),
}

impl NetworkKey {
    /// The network `desc` joins.
    pub fn of(desc: &InterfaceDesc) -> Self {
        match (
            desc.mode,
            desc.network_identifier,
            &desc.shared_interface_name,
        ) {
            (OperatingMode::Host, Some(id), _) => Self::HostIsolated(id),
            (OperatingMode::Host, None, _) => Self::Host,
            (OperatingMode::Shared, _, _) => Self::Shared,
            (OperatingMode::Bridged, _, name) => Self::Bridged(name.clone().unwrap_or_default()),
        }
    }
}

/// Something vmnet delivers on the caller's dispatch queue; drained with
/// [`SimVmnet::poll_notification`], in the order vmnet would run the blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// The start completion handler ran.
    StartCompleted {
        /// The interface.
        handle: InterfaceHandle,
        /// `VMNET_SUCCESS` with `interface_param`, or the failure.
        result: Result<InterfaceParams, StartError>,
    },
    /// The stop completion handler ran (always `VMNET_SUCCESS` here).
    StopCompleted {
        /// The interface (now stale).
        handle: InterfaceHandle,
        /// The status.
        status: VmnetReturn,
    },
    /// The event callback ran.
    PacketsAvailable {
        /// The interface.
        handle: InterfaceHandle,
        /// The event mask (`VMNET_INTERFACE_PACKETS_AVAILABLE`).
        event: InterfaceEvent,
        /// `vmnet_estimated_packets_available`: an estimate (see [`Estimate`]).
        estimated_packets: u64,
    },
}

/// Per-interface counters. "Written"/"read" are the guest's calls; "arrived" is frames the
/// switch delivered into the interface's receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceCounters {
    /// Frames accepted by `write`.
    pub written_frames: u64,
    /// Bytes accepted by `write`.
    pub written_bytes: u64,
    /// Frames returned by `read`.
    pub read_frames: u64,
    /// Bytes returned by `read` (after truncation).
    pub read_bytes: u64,
    /// Frames delivered into the receive buffer.
    pub arrived_frames: u64,
    /// Frames dropped because the receive buffer was full.
    pub dropped_rx_full_frames: u64,
    /// Frames truncated into a short read buffer.
    pub truncated_frames: u64,
    /// Written frames still buffered when the interface was stopped, discarded.
    pub discarded_tx_on_stop_frames: u64,
    /// Unread frames discarded when the interface was stopped.
    pub discarded_rx_on_stop_frames: u64,
    /// "Packets available" events fired.
    pub events_fired: u64,
    /// Written frames dropped silently by the source-IPv4 rule: an IPv4 source that is not
    /// the address leased to the frame's source MAC (see [`SimVmnet::set_lease`]).
    pub dropped_source_ip_frames: u64,
}

/// Why the host side of a network refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostSendError {
    /// No interface ever joined that network.
    #[error("no such network")]
    NoSuchNetwork,
    /// The host's transmit buffer is full.
    #[error("host transmit buffer full")]
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    Running,
    Stopping,
}

#[derive(Debug)]
struct Interface {
    guest: GuestId,
    network: NetworkKey,
    state: State,
    /// Whether this interface counts against the limits (false for a start doomed to fail).
    counted: bool,
    isolated: bool,
    /// The MAC chosen at the start call (kept here so concurrent starts never share one).
    mac: Option<MacAddress>,
    params: Option<InterfaceParams>,
    port: Option<PortId>,
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    events: InterfaceEvent,
    arrivals_since_event: u64,
    counters: InterfaceCounters,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    iface: Option<Interface>,
}

#[derive(Debug)]
struct Network {
    switch: Switch,
    uplink: PortId,
    /// Interface ports → slot index.
    port_owner: BTreeMap<PortId, u32>,
    host_rx: VecDeque<Vec<u8>>,
    host_tx: VecDeque<Vec<u8>>,
    host_dropped_full_frames: u64,
    nat66_prefix: Option<Ipv6Addr>,
}

#[derive(Debug)]
enum Pending {
    Start(InterfaceHandle, Result<InterfaceParams, StartError>),
    Stop(InterfaceHandle),
}

/// A deterministic model of vmnet.framework's data plane and interface lifecycle.
///
/// Models: `vmnet_start_interface`, `vmnet_interface_set_event_callback`, `vmnet_read`,
/// `vmnet_write`, `vmnet_stop_interface`, and the host bridges the interfaces sit on.
///
/// **Supported:** asynchronous start and stop (completions after simulated delays, delivered
/// by [`SimVmnet::advance`] as [`Notification`]s); interface parameters (MAC, MTU 1500, max
/// packet size 1514, read/write max packets, DHCP range, NAT66 prefix); a stable MAC per
/// interface id; non-blocking batched reads; all-or-nothing batched writes with vmnet's
/// per-call limits and codes; "packets available" events with knobs for re-firing and estimate
/// accuracy; the 32-total and 4-per-guest limits; per-network learning switches with isolation;
/// a host side per network ([`SimVmnet::host_send`] / [`SimVmnet::host_recv`]) where the
/// gateway plugs in; the source-IPv4 rule (written IPv4 frames whose source is not the DHCP
/// lease of their source MAC are dropped silently and counted; leases come from
/// [`SimVmnet::set_lease`]; where it applies is [`VmnetKnobs::source_ip_rule`]); the macOS 26
/// network objects ([`SimVmnet::network_create`], [`SimVmnet::network_release`],
/// [`SimVmnet::network_copy_serialization`], [`SimVmnet::network_create_with_serialization`],
/// [`SimVmnet::interface_start_with_network`]; reference-counted, subnets reserved).
///
/// **Rejected / not modelled yet:** DHCP, NAT and DNS themselves (the gateway);
/// port-forwarding calls; TSO, checksum offload and the virtio header; custom DHCP ranges in
/// `interface_desc`; OS-version gating of keys (only [`VmnetKnobs::report_max_packets_keys`]).
///
/// Time is an argument: every call that depends on it takes `now_ns`, which must not go
/// backwards. Nothing happens between calls.
///
/// # Examples
///
/// ```
/// use vnic_sim::rng::SimRng;
/// use vnic_sim::vmnet::{
///     GuestId, InterfaceDesc, Notification, OperatingMode, RxDesc, SimVmnet, TxDesc, VmnetKnobs,
/// };
///
/// let mut vmnet = SimVmnet::new(VmnetKnobs::default(), &SimRng::new(7));
/// let desc = InterfaceDesc::new(OperatingMode::Shared, GuestId(0));
/// let a = vmnet.start_interface(0, &desc).unwrap();
/// let b = vmnet.start_interface(0, &desc).unwrap();
/// vmnet.advance(vmnet.next_deadline_ns().unwrap());
/// let mut macs = Vec::new();
/// while let Some(n) = vmnet.poll_notification() {
///     if let Notification::StartCompleted { result: Ok(params), .. } = n {
///         assert_eq!((params.mtu_bytes, params.max_packet_size_bytes), (1500, 1514));
///         macs.push(params.mac.unwrap());
///     }
/// }
/// // a broadcasts one minimal frame; b reads it after the next advance.
/// let mut frame = [0xff_u8; 60];
/// frame[6..12].copy_from_slice(&macs[0].octets());
/// assert_eq!(vmnet.write(a, &[TxDesc::frame(&frame)]), Ok(1));
/// vmnet.advance(vmnet.now_ns());
/// let mut buf = [0u8; 1514];
/// let mut descs = [RxDesc::new(&mut buf)];
/// assert_eq!(vmnet.read(b, &mut descs), Ok(1));
/// assert_eq!(descs[0].frame(), &frame[..]);
/// assert_eq!(vmnet.read(b, &mut descs), Ok(0)); // nothing left: 0, not an error
/// ```
#[derive(Debug)]
pub struct SimVmnet {
    knobs: VmnetKnobs,
    rng_ids: SimRng,
    rng_delay: SimRng,
    rng_events: SimRng,
    now_ns: u64,
    slots: Vec<Slot>,
    networks: BTreeMap<NetworkKey, Network>,
    pending: BTreeMap<(u64, u64), Pending>,
    pending_seq: u64,
    outbox: VecDeque<Notification>,
    egress_scratch: Vec<PortId>,
    /// macOS 26 networks by id.
    configured: BTreeMap<u32, ConfiguredNetwork>,
    /// The id the next configured network gets (never reused).
    next_network_id: u32,
    /// DHCP leases per network, for the source-IPv4 rule.
    leases: BTreeMap<NetworkKey, BTreeMap<MacAddress, Ipv4Addr>>,
}

impl SimVmnet {
    /// A vmnet with these knobs, drawing ids, MACs, delays and estimate errors from `rng`.
    ///
    /// # Panics
    /// If a knob is nonsensical (a zero per-call limit or buffer).
    pub fn new(knobs: VmnetKnobs, rng: &SimRng) -> Self {
        assert!(knobs.read_packets_max > 0 && knobs.write_packets_max > 0);
        assert!(knobs.tx_buffer_frames_max > 0 && knobs.rx_buffer_frames_max > 0);
        assert!(knobs.host_buffer_frames_max > 0);
        Self {
            knobs,
            rng_ids: rng.fork("vmnet.ids"),
            rng_delay: rng.fork("vmnet.delay"),
            rng_events: rng.fork("vmnet.events"),
            now_ns: 0,
            slots: Vec::new(),
            networks: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_seq: 0,
            outbox: VecDeque::new(),
            egress_scratch: Vec::new(),
            configured: BTreeMap::new(),
            next_network_id: 1,
            leases: BTreeMap::new(),
        }
    }

    /// The knobs.
    pub fn knobs(&self) -> &VmnetKnobs {
        &self.knobs
    }

    /// The latest time seen.
    pub const fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn observe(&mut self, now_ns: u64) {
        assert!(
            now_ns >= self.now_ns,
            "time went backwards: {} -> {now_ns}",
            self.now_ns
        );
        self.now_ns = now_ns;
    }

    /// `vmnet_start_interface`: returns the handle at once; the status and parameters arrive
    /// later as [`Notification::StartCompleted`].
    ///
    /// # Errors
    /// An invalid descriptor fails at once ([`StartError::InvalidDesc`], a NULL handle). Every
    /// other failure arrives in the completion.
    pub fn start_interface(
        &mut self,
        now_ns: u64,
        desc: &InterfaceDesc,
    ) -> Result<InterfaceHandle, StartError> {
        self.observe(now_ns);
        self.check_desc(desc)?;
        let key = NetworkKey::of(desc);
        let outcome = self.admit(desc).map(|()| self.make_params(desc, &key));
        Ok(self.begin_start(now_ns, desc, key, outcome))
    }

    /// Allocates the interface of a start call and schedules its completion.
    fn begin_start(
        &mut self,
        now_ns: u64,
        desc: &InterfaceDesc,
        key: NetworkKey,
        outcome: Result<InterfaceParams, StartError>,
    ) -> InterfaceHandle {
        let counted = outcome.is_ok();
        let mac = outcome.as_ref().ok().and_then(|p| p.mac);
        let handle = self.allocate(Interface {
            guest: desc.guest,
            network: key,
            state: State::Starting,
            counted,
            isolated: desc.enable_isolation,
            mac,
            params: None,
            port: None,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            events: InterfaceEvent::NONE,
            arrivals_since_event: 0,
            counters: InterfaceCounters::default(),
        });
        let jitter_ns = match self.knobs.start_delay_jitter_ns {
            0 => 0,
            j => self.rng_delay.range_inclusive(0, j),
        };
        let delay_ns = self.knobs.start_delay_ns.saturating_add(jitter_ns);
        self.schedule(
            now_ns.saturating_add(delay_ns),
            Pending::Start(handle, outcome),
        );
        handle
    }

    fn check_desc(&self, desc: &InterfaceDesc) -> Result<(), DescError> {
        if desc.network_identifier.is_some() && desc.mode != OperatingMode::Host {
            return Err(DescError::NetworkIdentifierOutsideHostMode);
        }
        if desc.mode == OperatingMode::Bridged {
            let name = desc
                .shared_interface_name
                .as_ref()
                .ok_or(DescError::BridgedWithoutInterfaceName)?;
            if !self.knobs.bridgeable_interfaces.contains(name) {
                return Err(DescError::UnknownSharedInterface(name.clone()));
            }
            if desc.mtu_bytes.is_some() {
                return Err(DescError::MtuInBridgedMode);
            }
        }
        match desc.mtu_bytes {
            Some(mtu) if !(MTU_BYTES_MIN..=MTU_BYTES_MAX).contains(&mtu) => {
                Err(DescError::MtuOutOfRange(mtu))
            }
            _ => Ok(()),
        }
    }

    /// Access and limits, judged at the start call (live = starting, running or stopping).
    fn admit(&self, desc: &InterfaceDesc) -> Result<(), StartError> {
        match self.knobs.access {
            Access::Privileged => {}
            Access::Unprivileged => return Err(StartError::NotPrivileged),
            Access::NotAuthorized => return Err(StartError::NotAuthorized),
        }
        let live = || {
            self.slots
                .iter()
                .filter_map(|s| s.iface.as_ref())
                .filter(|i| i.counted)
        };
        if live().count() >= self.knobs.interfaces_max as usize {
            return Err(StartError::TooManyInterfaces {
                interfaces_max: self.knobs.interfaces_max,
                status: self.knobs.too_many_interfaces_status,
            });
        }
        if live().filter(|i| i.guest == desc.guest).count()
            >= self.knobs.interfaces_per_guest_max as usize
        {
            return Err(StartError::TooManyInterfacesForGuest {
                guest: desc.guest,
                interfaces_per_guest_max: self.knobs.interfaces_per_guest_max,
                status: self.knobs.too_many_for_guest_status,
            });
        }
        Ok(())
    }

    fn make_params(&mut self, desc: &InterfaceDesc, key: &NetworkKey) -> InterfaceParams {
        let interface_id = desc.interface_id.unwrap_or_else(|| {
            let mut b = [0u8; 16];
            self.rng_ids.fill_bytes(&mut b);
            b[6] = (b[6] & 0x0f) | 0x40; // version 4
            b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
            Uuid(b)
        });
        let mac = match (desc.allocate_mac, desc.interface_id) {
            (false, _) => None,
            (true, Some(id)) => Some(mac_from_interface_id(id)),
            (true, None) => Some(self.random_mac()),
        };
        let mtu_bytes = desc.mtu_bytes.unwrap_or(MTU_BYTES_DEFAULT);
        let subnet = match key {
            NetworkKey::Shared => Some(self.knobs.shared_subnet),
            NetworkKey::Host => Some(self.knobs.host_subnet),
            NetworkKey::HostIsolated(_) | NetworkKey::Bridged(_) | NetworkKey::Configured(_) => {
                None
            }
        };
        let ipv4 = subnet.map(|s| Ipv4Range {
            start_address: s.gateway(),
            end_address: std::net::Ipv4Addr::from(u32::from(s.last()) - 1),
            subnet_mask: s.mask(),
        });
        let report = self.knobs.report_max_packets_keys;
        let nat66_prefix = self.network_mut(key).nat66_prefix;
        InterfaceParams {
            interface_id,
            mac,
            mtu_bytes,
            max_packet_size_bytes: mtu_bytes + ETHERNET_HEADER_BYTES,
            read_packets_max: report.then_some(self.knobs.read_packets_max),
            write_packets_max: report.then_some(self.knobs.write_packets_max),
            ipv4,
            nat66_prefix,
        }
    }

    /// A random locally-administered unicast MAC not used by a live interface.
    fn random_mac(&mut self) -> MacAddress {
        for _ in 0..64 {
            let mut b = [0u8; 6];
            self.rng_ids.fill_bytes(&mut b);
            let mac = local_unicast(b);
            let taken = self
                .slots
                .iter()
                .filter_map(|s| s.iface.as_ref())
                .any(|i| i.mac == Some(mac));
            if !taken {
                return mac;
            }
        }
        unreachable!("64 random MACs all collided")
    }

    fn network_mut(&mut self, key: &NetworkKey) -> &mut Network {
        if !self.networks.contains_key(key) {
            let nat66_prefix = (*key == NetworkKey::Shared).then(|| {
                let mut b = [0u8; 16];
                self.rng_ids.fill_bytes(&mut b[1..8]);
                b[0] = 0xfd;
                Ipv6Addr::from(b)
            });
            let mut switch = Switch::new(self.knobs.fdb_entries_max);
            let uplink = switch.add_port(PortKind::Uplink);
            self.networks.insert(
                key.clone(),
                Network {
                    switch,
                    uplink,
                    port_owner: BTreeMap::new(),
                    host_rx: VecDeque::new(),
                    host_tx: VecDeque::new(),
                    host_dropped_full_frames: 0,
                    nat66_prefix,
                },
            );
        }
        self.networks.get_mut(key).expect("just inserted")
    }

    fn allocate(&mut self, iface: Interface) -> InterfaceHandle {
        let index = if let Some(i) = self.slots.iter().position(|s| s.iface.is_none()) {
            i
        } else {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        };
        let slot = &mut self.slots[index];
        slot.iface = Some(iface);
        InterfaceHandle {
            index: index as u32,
            generation: slot.generation,
        }
    }

    fn free(&mut self, handle: InterfaceHandle) {
        let slot = &mut self.slots[handle.index as usize];
        assert_eq!(slot.generation, handle.generation, "freeing a stale handle");
        let iface = slot.iface.take().expect("freeing an empty slot");
        slot.generation = slot.generation.wrapping_add(1);
        if let NetworkKey::Configured(id) = iface.network {
            self.release_if_unused(id);
        }
    }

    fn schedule(&mut self, deadline_ns: u64, op: Pending) {
        self.pending.insert((deadline_ns, self.pending_seq), op);
        self.pending_seq += 1;
    }

    fn slot_iface(
        slots: &mut [Slot],
        handle: InterfaceHandle,
    ) -> Result<&mut Interface, HandleError> {
        let slot = slots
            .get_mut(handle.index as usize)
            .ok_or(HandleError::Stale)?;
        if slot.generation != handle.generation {
            return Err(HandleError::Stale);
        }
        slot.iface.as_mut().ok_or(HandleError::Stale)
    }

    fn running(
        slots: &mut [Slot],
        handle: InterfaceHandle,
        after_stop: VmnetReturn,
    ) -> Result<&mut Interface, HandleError> {
        let iface = Self::slot_iface(slots, handle)?;
        match iface.state {
            State::Starting => Err(HandleError::SetupIncomplete),
            State::Stopping => Err(HandleError::Stopped(after_stop)),
            State::Running => Ok(iface),
        }
    }

    /// `vmnet_interface_set_event_callback`: [`InterfaceEvent::NONE`] disables events (NULL
    /// queue and block); bits vmnet does not define are ignored. Allowed while starting.
    ///
    /// # Errors
    /// A stale or stopped handle.
    pub fn set_event_callback(
        &mut self,
        handle: InterfaceHandle,
        mask: InterfaceEvent,
    ) -> Result<(), HandleError> {
        let iface = Self::slot_iface(&mut self.slots, handle)?;
        if iface.state == State::Stopping {
            return Err(HandleError::Stopped(self.knobs.after_stop_status));
        }
        iface.events = InterfaceEvent(mask.bits() & InterfaceEvent::ALL.bits());
        Ok(())
    }

    /// `vmnet_stop_interface`: I/O fails from now on; [`Notification::StopCompleted`] arrives
    /// after [`VmnetKnobs::stop_delay_ns`], and then the handle is stale. Buffered frames in
    /// both directions are discarded (counted).
    ///
    /// # Errors
    /// A stale handle; a start not yet complete (`VMNET_SETUP_INCOMPLETE`, UNCONFIRMED); an
    /// interface already stopping.
    pub fn stop_interface(
        &mut self,
        now_ns: u64,
        handle: InterfaceHandle,
    ) -> Result<(), HandleError> {
        self.observe(now_ns);
        let iface = Self::running(&mut self.slots, handle, self.knobs.after_stop_status)?;
        iface.state = State::Stopping;
        iface.counters.discarded_tx_on_stop_frames += iface.tx.len() as u64;
        iface.counters.discarded_rx_on_stop_frames += iface.rx.len() as u64;
        iface.tx.clear();
        iface.rx.clear();
        if let Some(port) = iface.port.take() {
            let net = self
                .networks
                .get_mut(&iface.network)
                .expect("network of a port");
            net.switch.remove_port(port).expect("port exists");
            net.port_owner.remove(&port);
        }
        self.schedule(
            now_ns.saturating_add(self.knobs.stop_delay_ns),
            Pending::Stop(handle),
        );
        Ok(())
    }

    /// `vmnet_read`: copies waiting frames into `descs` (one frame per descriptor) and returns
    /// how many. Never blocks; nothing waiting is `Ok(0)`. Each counted descriptor's
    /// `pkt_size_bytes` is set to the frame's length.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub fn read(
        &mut self,
        handle: InterfaceHandle,
        descs: &mut [RxDesc<'_>],
    ) -> Result<usize, ReadError> {
        let knobs = &self.knobs;
        let iface = Self::running(&mut self.slots, handle, knobs.after_stop_status)?;
        let limit = knobs.read_packets_max as usize;
        let descs = match (descs.len() > limit, knobs.over_limit) {
            (false, _) => descs,
            (true, OverLimit::Clamp) => &mut descs[..limit],
            (true, OverLimit::Reject) => {
                return Err(ReadError::TooManyPackets {
                    requested: descs.len(),
                    packets_max: knobs.read_packets_max,
                })
            }
        };
        let mut count = 0;
        let mut total_bytes = 0usize;
        for desc in descs.iter_mut() {
            let Some(frame) = iface.rx.front() else { break };
            let over_bytes = knobs
                .bytes_per_call_max
                .is_some_and(|max| total_bytes + frame.len() > max as usize);
            if count > 0 && over_bytes {
                break;
            }
            let capacity = desc.pkt_size_bytes.min(desc.buf.len());
            let copied = if frame.len() <= capacity {
                frame.len()
            } else if knobs.short_read_buffer == ShortReadBuffer::Truncate {
                iface.counters.truncated_frames += 1;
                capacity
            } else if count == 0 {
                return Err(ReadError::BufferTooSmall {
                    frame_bytes: frame.len(),
                    buffer_bytes: capacity,
                });
            } else {
                break;
            };
            desc.buf[..copied].copy_from_slice(&frame[..copied]);
            desc.pkt_size_bytes = copied;
            total_bytes += frame.len();
            iface.counters.read_frames += 1;
            iface.counters.read_bytes += copied as u64;
            iface.rx.pop_front();
            count += 1;
        }
        Ok(count)
    }

    /// `vmnet_write`: queues every frame of `descs` for the network, or none. Returns how many
    /// were written: all of them, or under [`OverLimit::Clamp`] the longest prefix within the
    /// packet and byte limits. Frames leave on the next [`SimVmnet::advance`].
    ///
    /// # Errors
    /// See [`WriteError`]; on error nothing was written.
    pub fn write(
        &mut self,
        handle: InterfaceHandle,
        descs: &[TxDesc<'_>],
    ) -> Result<usize, WriteError> {
        let knobs = &self.knobs;
        let iface = Self::running(&mut self.slots, handle, knobs.after_stop_status)?;
        let max_packet_size_bytes = iface
            .params
            .as_ref()
            .expect("running")
            .max_packet_size_bytes;
        let limit = knobs.write_packets_max as usize;
        let mut descs = match (descs.len() > limit, knobs.over_limit) {
            (false, _) => descs,
            (true, OverLimit::Clamp) => &descs[..limit],
            (true, OverLimit::Reject) => {
                return Err(WriteError::TooManyPackets {
                    requested: descs.len(),
                    packets_max: knobs.write_packets_max,
                })
            }
        };
        let mut total_bytes = 0usize;
        for (index, d) in descs.iter().enumerate() {
            let frame = tx_frame(index, d, max_packet_size_bytes)?;
            if let Some(max) = knobs.bytes_per_call_max {
                if total_bytes + frame.len() > max as usize {
                    if knobs.over_limit == OverLimit::Reject {
                        let total_bytes = descs.iter().map(|d| d.pkt_size_bytes).sum();
                        return Err(WriteError::TooManyBytes {
                            total_bytes,
                            bytes_max: max,
                        });
                    }
                    descs = &descs[..index];
                    break;
                }
            }
            total_bytes += frame.len();
        }
        let free_frames = knobs.tx_buffer_frames_max - iface.tx.len();
        if descs.len() > free_frames {
            return Err(WriteError::BufferExhausted { free_frames });
        }
        for (index, d) in descs.iter().enumerate() {
            let frame = tx_frame(index, d, max_packet_size_bytes).expect("checked above");
            iface.tx.push_back(frame.to_vec());
        }
        iface.counters.written_frames += descs.len() as u64;
        iface.counters.written_bytes += total_bytes as u64;
        Ok(descs.len())
    }

    /// Moves time to `now_ns`: runs due start/stop completions (in deadline order), moves every
    /// buffered frame through its network's switch, then fires events.
    pub fn advance(&mut self, now_ns: u64) {
        self.observe(now_ns);
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let op = entry.remove();
            self.complete(op);
        }
        self.pump();
        self.fire_events();
    }

    /// The earliest time at which [`SimVmnet::advance`] has something to do: a pending
    /// completion, or `now_ns` when frames wait to be switched. `None` when idle (level-
    /// triggered events re-fire only when the caller advances anyway).
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let frames_waiting = self.networks.values().any(|n| !n.host_tx.is_empty())
            || self
                .slots
                .iter()
                .filter_map(|s| s.iface.as_ref())
                .any(|i| !i.tx.is_empty());
        let pending = self.pending.keys().next().map(|&(t, _)| t);
        match (frames_waiting, pending) {
            (true, _) => Some(self.now_ns),
            (false, p) => p,
        }
    }

    /// The next completion or event, in the order vmnet would run them.
    pub fn poll_notification(&mut self) -> Option<Notification> {
        self.outbox.pop_front()
    }

    fn complete(&mut self, op: Pending) {
        match op {
            Pending::Start(handle, Ok(params)) => {
                let iface = Self::slot_iface(&mut self.slots, handle).expect("starting iface");
                let key = iface.network.clone();
                let isolated = iface.isolated;
                let net = self.network_mut(&key);
                let port = net.switch.add_port(PortKind::Interface { isolated });
                net.port_owner.insert(port, handle.index);
                let iface = Self::slot_iface(&mut self.slots, handle).expect("starting iface");
                iface.state = State::Running;
                iface.port = Some(port);
                iface.params = Some(params.clone());
                self.outbox.push_back(Notification::StartCompleted {
                    handle,
                    result: Ok(params),
                });
            }
            Pending::Start(handle, Err(e)) => {
                self.free(handle);
                self.outbox.push_back(Notification::StartCompleted {
                    handle,
                    result: Err(e),
                });
            }
            Pending::Stop(handle) => {
                self.free(handle);
                self.outbox.push_back(Notification::StopCompleted {
                    handle,
                    status: VmnetReturn::Success,
                });
            }
        }
    }

    /// Switches every buffered frame: the host sides first (network order), then interfaces
    /// (slot order).
    fn pump(&mut self) {
        let keys: Vec<NetworkKey> = self.networks.keys().cloned().collect();
        for key in &keys {
            let frames = std::mem::take(&mut self.networks.get_mut(key).expect("key").host_tx);
            let uplink = self.networks[key].uplink;
            for frame in &frames {
                self.switch_frame(key, uplink, frame);
            }
        }
        for index in 0..self.slots.len() {
            let Some(iface) = self.slots[index].iface.as_mut() else {
                continue;
            };
            let (Some(port), false) = (iface.port, iface.tx.is_empty()) else {
                continue;
            };
            let frames = std::mem::take(&mut iface.tx);
            let key = iface.network.clone();
            let enforce = self.source_ip_rule(&key) == SourceIpRule::Enforce;
            for frame in &frames {
                if enforce && !self.source_ip_allowed(&key, frame) {
                    let iface = self.slots[index].iface.as_mut().expect("still live");
                    iface.counters.dropped_source_ip_frames += 1;
                    continue;
                }
                self.switch_frame(&key, port, frame);
            }
        }
    }

    /// The source-IPv4 rule of a network (see [`super::SourceIpRules`]).
    pub fn source_ip_rule(&self, key: &NetworkKey) -> SourceIpRule {
        let vmnet_dhcp = match key {
            NetworkKey::Shared | NetworkKey::Host => true,
            NetworkKey::HostIsolated(_) | NetworkKey::Bridged(_) => false,
            NetworkKey::Configured(id) => self
                .configured
                .get(id)
                .is_some_and(|n| n.config.dhcp() && n.config.mode() != OperatingMode::Bridged),
        };
        self.knobs.source_ip_rule.for_dhcp(vmnet_dhcp)
    }

    /// Whether the source-IPv4 rule lets `frame` (written on network `key`) through: not
    /// IPv4, the unspecified source 0.0.0.0 (DHCP), or the address leased to the frame's
    /// source MAC.
    fn source_ip_allowed(&self, key: &NetworkKey, frame: &[u8]) -> bool {
        match frame_source(frame) {
            FrameSource::NotIpv4 => true,
            FrameSource::Ipv4 { ip, .. } if ip.is_unspecified() => true,
            FrameSource::Ipv4 { mac, ip } => self.lease(key, mac) == Some(ip),
            FrameSource::MalformedIpv4 => false,
        }
    }

    /// Records (`Some`) or forgets (`None`) the DHCP lease of `mac` on network `key`, for the
    /// source-IPv4 rule. The gateway calls this as it hands out and expires leases; it may
    /// run before any interface joins. At most [`LEASES_PER_NETWORK_MAX`] leases per network
    /// are kept; a new one beyond that is ignored.
    pub fn set_lease(&mut self, key: &NetworkKey, mac: MacAddress, ip: Option<Ipv4Addr>) {
        match ip {
            Some(ip) => {
                let table = self.leases.entry(key.clone()).or_default();
                if table.len() < LEASES_PER_NETWORK_MAX || table.contains_key(&mac) {
                    table.insert(mac, ip);
                }
            }
            None => {
                if let Some(table) = self.leases.get_mut(key) {
                    table.remove(&mac);
                }
            }
        }
    }

    /// The address leased to `mac` on network `key`, if any.
    pub fn lease(&self, key: &NetworkKey, mac: MacAddress) -> Option<Ipv4Addr> {
        self.leases.get(key)?.get(&mac).copied()
    }

    fn switch_frame(&mut self, key: &NetworkKey, ingress: PortId, frame: &[u8]) {
        let net = self.networks.get_mut(key).expect("network");
        let mut egress = std::mem::take(&mut self.egress_scratch);
        net.switch
            .forward(ingress, frame, &mut egress)
            .expect("ingress port exists");
        for port in &egress {
            if *port == net.uplink {
                if net.host_rx.len() < self.knobs.host_buffer_frames_max {
                    net.host_rx.push_back(frame.to_vec());
                } else {
                    net.host_dropped_full_frames += 1;
                }
                continue;
            }
            let index = net.port_owner[port] as usize;
            let iface = self.slots[index].iface.as_mut().expect("port owner lives");
            if iface.rx.len() < self.knobs.rx_buffer_frames_max {
                iface.rx.push_back(frame.to_vec());
                iface.counters.arrived_frames += 1;
                iface.arrivals_since_event += 1;
            } else {
                iface.counters.dropped_rx_full_frames += 1;
            }
        }
        self.egress_scratch = egress;
    }

    fn fire_events(&mut self) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(iface) = slot.iface.as_mut() else {
                continue;
            };
            if iface.state != State::Running
                || !iface.events.contains(InterfaceEvent::PACKETS_AVAILABLE)
            {
                continue;
            }
            let unread = iface.rx.len() as u64;
            let fire = match self.knobs.event_trigger {
                EventTrigger::Edge => iface.arrivals_since_event > 0,
                EventTrigger::Level => unread > 0,
            };
            if !fire {
                continue;
            }
            let estimated_packets = match self.knobs.estimate {
                Estimate::Exact => unread,
                Estimate::Capped { packets_max } => unread.min(packets_max),
                Estimate::ArrivalsOnly => iface.arrivals_since_event,
                Estimate::Jitter { error_max } => {
                    let offset = self.rng_events.range_inclusive(0, 2 * error_max);
                    (unread + offset).saturating_sub(error_max)
                }
            };
            iface.arrivals_since_event = 0;
            iface.counters.events_fired += 1;
            self.outbox.push_back(Notification::PacketsAvailable {
                handle: InterfaceHandle {
                    index: index as u32,
                    generation: slot.generation,
                },
                event: InterfaceEvent::PACKETS_AVAILABLE,
                estimated_packets,
            });
        }
    }

    /// The parameters of a running interface.
    pub fn params(&self, handle: InterfaceHandle) -> Option<&InterfaceParams> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.iface.as_ref()?.params.as_ref()
    }

    /// The counters of a live interface.
    pub fn counters(&self, handle: InterfaceHandle) -> Option<InterfaceCounters> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        Some(slot.iface.as_ref()?.counters)
    }

    /// Frames waiting to be read on a live interface.
    pub fn unread_frames(&self, handle: InterfaceHandle) -> Option<usize> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        Some(slot.iface.as_ref()?.rx.len())
    }

    /// Interfaces that count against the limits (starting, running or stopping).
    pub fn live_interfaces(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.iface.as_ref())
            .filter(|i| i.counted)
            .count()
    }

    /// The switch of a network, for its counters and forwarding table.
    pub fn switch(&self, key: &NetworkKey) -> Option<&Switch> {
        self.networks.get(key).map(|n| &n.switch)
    }

    /// The host-side port of a network's switch.
    pub fn uplink(&self, key: &NetworkKey) -> Option<PortId> {
        self.networks.get(key).map(|n| n.uplink)
    }

    /// The switch port of a running interface.
    pub fn port(&self, handle: InterfaceHandle) -> Option<PortId> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.iface.as_ref()?.port
    }

    /// Sends `frame` from the host side of a network (the gateway's stand-in); it is switched
    /// on the next [`SimVmnet::advance`].
    ///
    /// # Errors
    /// No such network yet, or the host's buffer is full.
    pub fn host_send(&mut self, key: &NetworkKey, frame: &[u8]) -> Result<(), HostSendError> {
        let max = self.knobs.host_buffer_frames_max;
        let net = self
            .networks
            .get_mut(key)
            .ok_or(HostSendError::NoSuchNetwork)?;
        if net.host_tx.len() >= max {
            return Err(HostSendError::Full);
        }
        net.host_tx.push_back(frame.to_vec());
        Ok(())
    }

    /// The next frame the switch delivered to the host side of a network.
    pub fn host_recv(&mut self, key: &NetworkKey) -> Option<Vec<u8>> {
        self.networks.get_mut(key)?.host_rx.pop_front()
    }

    /// Frames the host side of a network dropped because its buffer was full.
    pub fn host_dropped_full_frames(&self, key: &NetworkKey) -> Option<u64> {
        self.networks.get(key).map(|n| n.host_dropped_full_frames)
    }
}

/// Checks one write descriptor and returns its frame.
fn tx_frame<'a>(
    index: usize,
    d: &TxDesc<'a>,
    max_packet_size_bytes: u32,
) -> Result<&'a [u8], WriteError> {
    let frame: &[u8] = match d.iov {
        Iov::One(f) | Iov::Many(&[f]) => f,
        Iov::Many(_) => return Err(WriteError::MultipleIovecs { index }),
    };
    if frame.len() != d.pkt_size_bytes {
        return Err(WriteError::SizeMismatch {
            index,
            pkt_size_bytes: d.pkt_size_bytes,
            iov_bytes: frame.len(),
        });
    }
    if frame.len() < ETHERNET_HEADER_BYTES as usize {
        return Err(WriteError::Runt {
            index,
            frame_bytes: frame.len(),
        });
    }
    if frame.len() > max_packet_size_bytes as usize {
        return Err(WriteError::PacketTooBig {
            index,
            frame_bytes: frame.len(),
            max_packet_size_bytes,
        });
    }
    Ok(frame)
}

/// Forces `octets` to a locally-administered unicast address.
const fn local_unicast(mut octets: [u8; 6]) -> MacAddress {
    octets[0] = (octets[0] & 0xfc) | 0x02;
    MacAddress(octets)
}

/// The MAC vmnet gives an interface id: a pure function of the id, so the same id gets the
/// same MAC in every run and with every seed. vmnet's real derivation is unknown (UNCONFIRMED);
/// only "same id, same MAC" is documented.
pub fn mac_from_interface_id(id: Uuid) -> MacAddress {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &id.0 {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = hash.to_le_bytes();
    local_unicast([b[0], b[1], b[2], b[3], b[4], b[5]])
}
