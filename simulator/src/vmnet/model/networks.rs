//! The macOS 26 network objects (vmnet.md §1.7, §7(a) "macOS 26 objects"):
//! `vmnet_network_create`, `vmnet_network_copy_serialization`,
//! `vmnet_network_create_with_serialization` and `vmnet_interface_start_with_network`, over a
//! [`NetConfig`].
//!
//! **Lifetime.** A network is reference-counted: every [`NetworkRef`] is one reference, and
//! every interface started on it holds one more from its start call until its stop (or failed
//! start) completes. [`SimVmnet::network_release`] gives a [`NetworkRef`] back. When the last
//! reference goes (the last `NetworkRef` released and the last interface stopped, in either
//! order) the network is destroyed: its subnet is free again, its host side and leases are
//! gone, and its serialization no longer resolves.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    Access, InterfaceDesc, InterfaceHandle, InterfaceParams, Ipv4Range, Network, NetworkKey,
    OperatingMode, SimVmnet, StartError, ETHERNET_HEADER_BYTES,
};
use crate::netconfig::{Ipv4Subnet, NetConfig};
use crate::switch::{PortKind, Switch};
use crate::vmnet::types::{
    NetworkCreateError, NetworkFromSerializationError, CONFIGURED_NETWORKS_MAX,
};
use crate::vmnet::Uuid;

/// The first line of a [`NetworkSerialization`] (format name and version).
pub const NETWORK_SERIALIZATION_MAGIC: &str = "vnic-sim vmnet network 1";

/// The model of `vmnet_network_ref`: one reference to a network made by
/// [`SimVmnet::network_create`] or [`SimVmnet::network_create_with_serialization`].
///
/// Not `Clone`: each value is one reference. Give it back with [`SimVmnet::network_release`];
/// dropping it instead leaks the reference (the network then lives as long as the vmnet).
#[must_use = "a NetworkRef is a reference: release it with SimVmnet::network_release"]
#[derive(Debug, PartialEq, Eq)]
pub struct NetworkRef {
    id: u32,
}

impl NetworkRef {
    /// The network's id (what [`NetworkKey::Configured`] carries).
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// The key of the network, for [`SimVmnet::host_send`], [`SimVmnet::set_lease`] and the
    /// other per-network calls.
    pub const fn key(&self) -> NetworkKey {
        NetworkKey::Configured(self.id)
    }
}

/// What `vmnet_network_copy_serialization` returns: an opaque token another process (or test
/// actor) turns back into the same network. Apple's is an XPC object; this one is text (a
/// header, the network's id, then [`NetConfig::serialize`]) so tests can read and damage it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSerialization {
    text: String,
}

impl NetworkSerialization {
    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A token from its text form (checked only when used).
    pub fn from_text(text: String) -> Self {
        Self { text }
    }
}

/// A live configured network.
#[derive(Debug)]
pub(super) struct ConfiguredNetwork {
    pub(super) config: NetConfig,
    /// Outstanding [`NetworkRef`]s.
    refs: u32,
}

/// Whether two subnets share an address (prefix-aligned blocks either nest or are disjoint).
fn overlaps(a: Ipv4Subnet, b: Ipv4Subnet) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// Whether a configuration takes a vmnet subnet (bridged networks use the LAN's addressing).
fn reserves_subnet(cfg: &NetConfig) -> bool {
    cfg.mode() != OperatingMode::Bridged
}

impl SimVmnet {
    /// `vmnet_network_create`: validates `cfg`, reserves its subnet and makes the network.
    /// The returned [`NetworkRef`] is one reference ([`SimVmnet::network_release`]).
    ///
    /// The network's host side exists at once ([`SimVmnet::host_send`] with
    /// [`NetworkRef::key`]). The subnet reservation is checked only against other configured
    /// networks, not the classic shared/host networks of [`SimVmnet::start_interface`]
    /// (whether real vmnet checks those is UNCONFIRMED).
    ///
    /// # Errors
    /// See [`NetworkCreateError`]: an invalid configuration, an unknown external interface, a
    /// subnet overlapping a live configured network (`VMNET_SHARING_SERVICE_BUSY`,
    /// UNCONFIRMED code), too many networks, or the caller's access.
    pub fn network_create(&mut self, cfg: &NetConfig) -> Result<NetworkRef, NetworkCreateError> {
        match self.knobs.access {
            Access::Privileged => {}
            Access::Unprivileged => return Err(NetworkCreateError::NotPrivileged),
            Access::NotAuthorized => return Err(NetworkCreateError::NotAuthorized),
        }
        cfg.validate()?;
        if let Some(name) = cfg.external_interface() {
            if cfg.mode() == OperatingMode::Bridged
                && !self.knobs.bridgeable_interfaces.iter().any(|b| b == name)
            {
                return Err(NetworkCreateError::UnknownExternalInterface(
                    name.to_owned(),
                ));
            }
        }
        if reserves_subnet(cfg) {
            let subnet = cfg.ipv4_subnet();
            let taken = self
                .configured
                .values()
                .any(|n| reserves_subnet(&n.config) && overlaps(n.config.ipv4_subnet(), subnet));
            if taken {
                return Err(NetworkCreateError::SubnetInUse {
                    network: subnet.network(),
                    prefix_len: subnet.prefix_len(),
                });
            }
        }
        if self.configured.len() >= CONFIGURED_NETWORKS_MAX {
            return Err(NetworkCreateError::TooManyNetworks);
        }
        let id = self.next_network_id;
        self.next_network_id = id.checked_add(1).expect("network ids exhausted");
        let nat66_prefix = cfg.nat66().then(|| {
            cfg.ipv6_prefix().map_or_else(
                || {
                    let mut b = [0u8; 16];
                    self.rng_ids.fill_bytes(&mut b[1..8]);
                    b[0] = 0xfd;
                    Ipv6Addr::from(b)
                },
                |p| p.prefix(),
            )
        });
        let mut switch = Switch::new(self.knobs.fdb_entries_max);
        let uplink = switch.add_port(PortKind::Uplink);
        self.networks.insert(
            NetworkKey::Configured(id),
            Network {
                switch,
                uplink,
                port_owner: std::collections::BTreeMap::new(),
                host_rx: std::collections::VecDeque::new(),
                host_tx: std::collections::VecDeque::new(),
                host_dropped_full_frames: 0,
                nat66_prefix,
            },
        );
        self.configured.insert(
            id,
            ConfiguredNetwork {
                config: cfg.clone(),
                refs: 1,
            },
        );
        Ok(NetworkRef { id })
    }

    /// Gives back one reference. The network is destroyed once no reference and no interface
    /// remains (module docs); with interfaces still live, it lives on until the last one's stop
    /// completes.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "releasing takes the reference away from the caller"
    )]
    pub fn network_release(&mut self, net: NetworkRef) {
        if let Some(n) = self.configured.get_mut(&net.id) {
            n.refs = n.refs.saturating_sub(1);
            self.release_if_unused(net.id);
        }
    }

    /// Destroys configured network `id` if nothing references it any more.
    pub(super) fn release_if_unused(&mut self, id: u32) {
        let Some(n) = self.configured.get(&id) else {
            return;
        };
        let key = NetworkKey::Configured(id);
        let interfaces = self
            .slots
            .iter()
            .filter_map(|s| s.iface.as_ref())
            .filter(|i| i.network == key)
            .count();
        if n.refs == 0 && interfaces == 0 {
            self.configured.remove(&id);
            self.networks.remove(&key);
            self.leases.remove(&key);
        }
    }

    /// The configuration of a live configured network (`None` for the classic networks and
    /// for destroyed ones). `vmnet_network_get_ipv4_subnet` / `_get_ipv6_prefix` read it.
    pub fn network_config(&self, key: &NetworkKey) -> Option<&NetConfig> {
        match key {
            NetworkKey::Configured(id) => self.configured.get(id).map(|n| &n.config),
            _ => None,
        }
    }

    /// The IPv6 prefix a live network hands out (`vmnet_network_get_ipv6_prefix`): the
    /// configured one, or a random ULA /64 when NAT66 is on and none was set.
    pub fn network_nat66_prefix(&self, key: &NetworkKey) -> Option<Ipv6Addr> {
        self.networks.get(key)?.nat66_prefix
    }

    /// References (outstanding [`NetworkRef`]s plus interfaces) holding a configured network.
    pub fn network_references(&self, key: &NetworkKey) -> Option<u32> {
        let NetworkKey::Configured(id) = key else {
            return None;
        };
        let n = self.configured.get(id)?;
        let interfaces = self
            .slots
            .iter()
            .filter_map(|s| s.iface.as_ref())
            .filter(|i| i.network == *key)
            .count() as u32;
        Some(n.refs + interfaces)
    }

    /// Live configured networks.
    pub fn configured_networks(&self) -> usize {
        self.configured.len()
    }

    /// `vmnet_network_copy_serialization`. `None` if `net` is not a network of this vmnet.
    pub fn network_copy_serialization(&self, net: &NetworkRef) -> Option<NetworkSerialization> {
        let n = self.configured.get(&net.id)?;
        let mut text = String::new();
        let _ = writeln!(text, "{NETWORK_SERIALIZATION_MAGIC}");
        let _ = writeln!(text, "id {}", net.id);
        text.push_str(&n.config.serialize());
        Some(NetworkSerialization { text })
    }

    /// `vmnet_network_create_with_serialization`: a new reference to the same live network.
    ///
    /// # Errors
    /// See [`NetworkFromSerializationError`]: a damaged token, or a network that no longer
    /// exists (UNCONFIRMED: what real vmnet does once the owner is gone).
    pub fn network_create_with_serialization(
        &mut self,
        serialization: &NetworkSerialization,
    ) -> Result<NetworkRef, NetworkFromSerializationError> {
        let text = serialization.as_str();
        let mut lines = text.splitn(3, '\n');
        if lines.next() != Some(NETWORK_SERIALIZATION_MAGIC) {
            return Err(NetworkFromSerializationError::BadHeader);
        }
        let id: u32 = lines
            .next()
            .and_then(|l| l.strip_prefix("id "))
            .and_then(|n| n.parse().ok())
            .ok_or(NetworkFromSerializationError::BadHeader)?;
        let config = NetConfig::deserialize(lines.next().unwrap_or(""))?;
        let n = self
            .configured
            .get_mut(&id)
            .ok_or(NetworkFromSerializationError::NoSuchNetwork(id))?;
        if n.config != config {
            return Err(NetworkFromSerializationError::ConfigMismatch(id));
        }
        n.refs += 1;
        Ok(NetworkRef { id })
    }

    /// `vmnet_interface_start_with_network`: like [`SimVmnet::start_interface`] (the handle at
    /// once, the parameters in [`super::Notification::StartCompleted`]), on a configured
    /// network.
    ///
    /// Of `desc` only allocate-MAC and isolation are honoured (Apple also honours TSO and
    /// checksum offload, which this model does not have), plus `guest` for the per-guest limit.
    /// The mode, MTU, shared interface name and network identifier are ignored, and so is the
    /// interface id: a fresh id and a random MAC every start. The MTU and the DHCP range come
    /// from the configuration. The interface holds a reference to the network until its stop
    /// (or failed start) completes.
    ///
    /// # Errors
    /// [`StartError::NoSuchNetwork`] at once if `net` is not a network of this vmnet; access
    /// and limit failures arrive in the completion, as for `start_interface`.
    pub fn interface_start_with_network(
        &mut self,
        now_ns: u64,
        net: &NetworkRef,
        desc: &InterfaceDesc,
    ) -> Result<InterfaceHandle, StartError> {
        self.observe(now_ns);
        let Some(n) = self.configured.get(&net.id) else {
            return Err(StartError::NoSuchNetwork);
        };
        let config = n.config.clone();
        let key = net.key();
        let outcome = self
            .admit(desc)
            .map(|()| self.configured_params(&config, &key, desc.allocate_mac));
        Ok(self.begin_start(now_ns, desc, key, outcome))
    }

    fn configured_params(
        &mut self,
        cfg: &NetConfig,
        key: &NetworkKey,
        allocate_mac: bool,
    ) -> InterfaceParams {
        let mut b = [0u8; 16];
        self.rng_ids.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        let interface_id = Uuid(b);
        let mac = allocate_mac.then(|| self.random_mac());
        let subnet = cfg.ipv4_subnet();
        let ipv4 = (cfg.dhcp() && cfg.mode() != OperatingMode::Bridged).then(|| Ipv4Range {
            start_address: subnet.gateway(),
            end_address: Ipv4Addr::from(u32::from(subnet.last()) - 1),
            subnet_mask: subnet.mask(),
        });
        let report = self.knobs.report_max_packets_keys;
        InterfaceParams {
            interface_id,
            mac,
            mtu_bytes: cfg.mtu_bytes(),
            max_packet_size_bytes: cfg.mtu_bytes() + ETHERNET_HEADER_BYTES,
            read_packets_max: report.then_some(self.knobs.read_packets_max),
            write_packets_max: report.then_some(self.knobs.write_packets_max),
            ipv4,
            nat66_prefix: self.networks.get(key).and_then(|n| n.nat66_prefix),
        }
    }
}
