//! The macOS 26 network-configuration surface as a plain value (vmnet.md §1.7).
//!
//! Models: `vmnet_network_configuration_ref` and its setters
//! (`vmnet_network_configuration_create`, `_set_ipv4_subnet`, `_set_ipv6_prefix`, `_set_mtu`,
//! `_set_external_interface`, `_add_dhcp_reservation`, `_add_port_forwarding_rule`,
//! `_disable_dhcp`, `_disable_dns_proxy`, `_disable_nat44`, `_disable_nat66`,
//! `_disable_router_advertisement`) and the serialization of the network made from it
//! (`vmnet_network_copy_serialization` / `_create_with_serialization`).
//!
//! **Supported:** every setter above with typed errors (each maps to a [`VmnetReturn`] through
//! `code()`), whole-value validation ([`NetConfig::validate`]), and a line-based text
//! serialization that round-trips ([`NetConfig::serialize`] / [`NetConfig::deserialize`]). Apple's
//! serialization is an opaque XPC object; ours is text so tests can read it.
//!
//! The network object made from a configuration (`vmnet_network_create`, serialization,
//! `vmnet_interface_start_with_network`) lives in [`crate::vmnet::SimVmnet::network_create`].
//!
//! **Rejected / not modelled:** changing DHCP reservations of an active network (Apple forbids
//! it; a configuration here is a value, copied into the network when it is created).
//!
//! **Rules and where they come from:**
//! - The first, second and last addresses of the IPv4 subnet are reserved; the second is the
//!   host's (the gateway); the first and last go to no node [D26 set_ipv4_subnet]. So the prefix
//!   is at most /30 here.
//! - The subnet must be RFC 1918 private space. That rule is documented for the 10.15
//!   start/end/mask keys; applying it to the macOS 26 call is UNCONFIRMED.
//! - What address callers pass to `set_ipv4_subnet` varies (network, first usable, gateway);
//!   this model accepts any address inside the subnet and stores the network address.
//! - The IPv6 prefix must be a ULA (`fd00::/8`) /64, as the `vmnet_nat66_prefix_key` rules say;
//!   applying that to `set_ipv6_prefix` is UNCONFIRMED.
//! - MTU bounds ([`MTU_BYTES_MIN`], [`MTU_BYTES_MAX`]) are UNCONFIRMED choices of this model.
//! - Port-forwarding rules take the INTERNAL port before the EXTERNAL one, as Apple orders them.
//!   The external address is an extension of this simulator: Apple's call has none, which is
//!   [`None`] here (all host addresses).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ndk_model::ethernet::MacAddress;

use crate::vmnet::{OperatingMode, VmnetReturn};

/// Smallest MTU this model accepts (the IPv6 link minimum). UNCONFIRMED for vmnet.
pub const MTU_BYTES_MIN: u32 = 1280;
/// Largest MTU this model accepts. UNCONFIRMED for vmnet.
pub const MTU_BYTES_MAX: u32 = 16_384;
/// The default MTU (vmnet.md §0).
pub const MTU_BYTES_DEFAULT: u32 = 1500;
/// Largest number of DHCP reservations one configuration holds (a bound of this model).
pub const DHCP_RESERVATIONS_MAX: usize = 256;
/// Largest number of port-forwarding rules one configuration holds (a bound of this model).
pub const PORT_FORWARDS_MAX: usize = 256;
/// Longest external interface name (BSD `IFNAMSIZ` minus the NUL).
pub const INTERFACE_NAME_BYTES_MAX: usize = 15;
/// The shared-mode default subnet, 192.168.64.0/24 (vmnet.md §1.4 "Default addressing").
pub const SHARED_SUBNET_DEFAULT: Ipv4Subnet = Ipv4Subnet {
    network: Ipv4Addr::new(192, 168, 64, 0),
    prefix_len: 24,
};
/// The host-mode default subnet of this model. The real default is UNCONFIRMED.
pub const HOST_SUBNET_DEFAULT: Ipv4Subnet = Ipv4Subnet {
    network: Ipv4Addr::new(192, 168, 65, 0),
    prefix_len: 24,
};

/// An IPv4 subnet: a network address and a prefix length.
///
/// **Invariant:** `network` has no bits set past `prefix_len`; `prefix_len` is in
/// [`Ipv4Subnet::PREFIX_LEN_MIN`]`..=`[`Ipv4Subnet::PREFIX_LEN_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// Why an IPv4 subnet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// The mask is not a run of ones followed by zeros.
    #[error("subnet mask {0} is not contiguous")]
    NonContiguousMask(Ipv4Addr),
    /// The prefix is too short or leaves no room for the reserved addresses.
    #[error("prefix /{0} outside /{min}../{max}", min = Ipv4Subnet::PREFIX_LEN_MIN, max = Ipv4Subnet::PREFIX_LEN_MAX)]
    BadPrefix(u8),
    /// The subnet is not inside RFC 1918 private space.
    #[error("{0} is not RFC 1918 private space")]
    NotPrivate(Ipv4Addr),
}

impl SubnetError {
    /// The status vmnet returns for this.
    pub const fn code(self) -> VmnetReturn {
        VmnetReturn::InvalidArgument
    }
}

impl Ipv4Subnet {
    /// Shortest prefix accepted (the whole of 10.0.0.0/8).
    pub const PREFIX_LEN_MIN: u8 = 8;
    /// Longest prefix accepted: /30 leaves the first, host, one node and last address.
    pub const PREFIX_LEN_MAX: u8 = 30;

    /// The subnet of `addr`/`prefix_len`; `addr` may be any address inside it.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, SubnetError> {
        if !(Self::PREFIX_LEN_MIN..=Self::PREFIX_LEN_MAX).contains(&prefix_len) {
            return Err(SubnetError::BadPrefix(prefix_len));
        }
        let mask = u32::MAX << (32 - prefix_len);
        let network = Ipv4Addr::from(u32::from(addr) & mask);
        let private = [
            (Ipv4Addr::new(10, 0, 0, 0), 8u8),
            (Ipv4Addr::new(172, 16, 0, 0), 12),
            (Ipv4Addr::new(192, 168, 0, 0), 16),
        ]
        .iter()
        .any(|&(block, len)| {
            let block_mask = u32::MAX << (32 - len);
            prefix_len >= len && u32::from(network) & block_mask == u32::from(block)
        });
        if !private {
            return Err(SubnetError::NotPrivate(network));
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }

    /// The subnet of `addr` under `mask` (the form `set_ipv4_subnet` takes).
    pub fn with_mask(addr: Ipv4Addr, mask: Ipv4Addr) -> Result<Self, SubnetError> {
        let bits = u32::from(mask);
        let prefix_len = bits.leading_ones();
        if bits.checked_shl(prefix_len).unwrap_or(0) != 0 {
            return Err(SubnetError::NonContiguousMask(mask));
        }
        Self::new(addr, prefix_len as u8)
    }

    /// The network (first) address, which no node may use.
    pub const fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The subnet mask.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - self.prefix_len))
    }

    /// The host's address (the second one): the gateway, DHCP server and DNS proxy.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The last address, which no node may use.
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.mask()))
    }

    /// Whether `addr` is inside the subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & u32::from(self.mask()) == u32::from(self.network)
    }

    /// Whether `addr` is one of the three reserved addresses (first, host, last).
    pub fn is_reserved(&self, addr: Ipv4Addr) -> bool {
        addr == self.network || addr == self.gateway() || addr == self.last()
    }
}

/// An IPv6 prefix (a ULA /64 here).
///
/// **Invariant:** `prefix` has no bits set past `prefix_len`, and `prefix_len == 64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    prefix: Ipv6Addr,
    prefix_len: u8,
}

/// Why an IPv6 prefix was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Only /64 is accepted (UNCONFIRMED for the macOS 26 call; documented for NAT66).
    #[error("IPv6 prefix length /{0} is not /64")]
    BadPrefixLen(u8),
    /// The prefix is not in `fd00::/8`.
    #[error("{0} is not a ULA (fd00::/8)")]
    NotUla(Ipv6Addr),
}

impl PrefixError {
    /// The status vmnet returns for this.
    pub const fn code(self) -> VmnetReturn {
        VmnetReturn::InvalidArgument
    }
}

impl Ipv6Prefix {
    /// The only prefix length accepted.
    pub const PREFIX_LEN: u8 = 64;

    /// The prefix of `addr`/`prefix_len`; `addr` may be any address inside it.
    pub fn new(addr: Ipv6Addr, prefix_len: u8) -> Result<Self, PrefixError> {
        if prefix_len != Self::PREFIX_LEN {
            return Err(PrefixError::BadPrefixLen(prefix_len));
        }
        let prefix = Ipv6Addr::from(u128::from(addr) & (u128::MAX << 64));
        if prefix.octets()[0] != 0xfd {
            return Err(PrefixError::NotUla(prefix));
        }
        Ok(Self { prefix, prefix_len })
    }

    /// The prefix address (interface-id bits zero).
    pub const fn prefix(&self) -> Ipv6Addr {
        self.prefix
    }

    /// The prefix length in bits (always 64).
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` is inside the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & (u128::MAX << 64) == u128::from(self.prefix)
    }
}

/// The transport protocol of a port-forwarding rule (the `IPPROTO_*` number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Protocol {
    /// `IPPROTO_TCP`.
    Tcp = 6,
    /// `IPPROTO_UDP`.
    Udp = 17,
}

impl Protocol {
    /// The `IPPROTO_*` number.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The protocol with this `IPPROTO_*` number, if TCP or UDP.
    pub const fn from_number(number: u8) -> Option<Self> {
        match number {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            _ => None,
        }
    }
}

/// A static DHCP lease: this client MAC always gets this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DhcpReservation {
    /// The client's hardware address.
    pub client: MacAddress,
    /// The address reserved for it.
    pub address: Ipv4Addr,
}

/// A port-forwarding rule: the host's `external_port` reaches `internal_address:internal_port`.
///
/// Fields are in Apple's argument order: protocol, internal port, external port, internal address.
/// The address family is that of `internal_address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortForward {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The guest's port (host byte order, non-zero).
    pub internal_port: u16,
    /// The host's port (host byte order, non-zero).
    pub external_port: u16,
    /// The guest's address.
    pub internal_address: IpAddr,
    /// The host address to listen on. Simulator extension: Apple's call has no such argument,
    /// which is `None` (all host addresses).
    pub external_address: Option<IpAddr>,
}

/// Why an MTU was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("MTU {0} bytes outside {MTU_BYTES_MIN}..={MTU_BYTES_MAX}")]
pub struct MtuError(pub u32);

/// Why an external interface name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceNameError {
    /// Empty.
    #[error("empty interface name")]
    Empty,
    /// Longer than [`INTERFACE_NAME_BYTES_MAX`].
    #[error("interface name longer than {INTERFACE_NAME_BYTES_MAX} bytes")]
    TooLong,
    /// Not ASCII letters, digits, `.`, `-` or `_`.
    #[error("interface name has a character other than ASCII letters, digits, '.', '-', '_'")]
    BadCharacter,
}

/// Why a DHCP reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    /// The client address is not a unicast MAC.
    #[error("{0} is not a unicast MAC")]
    NotUnicast(MacAddress),
    /// The address is outside the configured subnet.
    #[error("{0} is outside the subnet")]
    OutsideSubnet(Ipv4Addr),
    /// The address is the first, host or last address of the subnet.
    #[error("{0} is a reserved address of the subnet")]
    ReservedAddress(Ipv4Addr),
    /// This client already has a reservation.
    #[error("{0} already has a reservation")]
    DuplicateClient(MacAddress),
    /// This address is already reserved for another client.
    #[error("{0} is already reserved")]
    DuplicateAddress(Ipv4Addr),
    /// [`DHCP_RESERVATIONS_MAX`] reached.
    #[error("more than {DHCP_RESERVATIONS_MAX} reservations")]
    TooMany,
}

/// Why a port-forwarding rule was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortForwardError {
    /// A port is 0.
    #[error("port 0")]
    ZeroPort,
    /// The internal IPv4 address is outside the subnet.
    #[error("{0} is outside the subnet")]
    OutsideSubnet(Ipv4Addr),
    /// The internal IPv4 address is the first, host or last address of the subnet.
    #[error("{0} is a reserved address of the subnet")]
    ReservedAddress(Ipv4Addr),
    /// The internal IPv6 address is outside the configured prefix, or no prefix is set.
    #[error("{0} is outside the IPv6 prefix")]
    OutsidePrefix(Ipv6Addr),
    /// The external address's family differs from the internal one's.
    #[error("external and internal address families differ")]
    FamilyMismatch,
    /// A rule with this protocol, family and external port exists.
    #[error("external port {0} already forwarded")]
    DuplicateExternalPort(u16),
    /// [`PORT_FORWARDS_MAX`] reached.
    #[error("more than {PORT_FORWARDS_MAX} port-forwarding rules")]
    TooMany,
}

/// Why a whole configuration is invalid (after [`NetConfig::deserialize`] or a subnet change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The MTU is out of range.
    #[error(transparent)]
    Mtu(#[from] MtuError),
    /// The external interface name is invalid.
    #[error(transparent)]
    InterfaceName(#[from] InterfaceNameError),
    /// A reservation does not fit the subnet, or collides with another.
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    /// A port-forwarding rule does not fit, or collides with another.
    #[error(transparent)]
    PortForward(#[from] PortForwardError),
    /// Port forwarding needs NAT, which only shared mode has.
    #[error("port forwarding outside shared mode")]
    PortForwardOutsideShared,
    /// Bridged mode needs an external interface (UNCONFIRMED rule of this model).
    #[error("bridged mode without an external interface")]
    BridgedWithoutExternalInterface,
}

macro_rules! invalid_argument_code {
    ($($t:ty),*) => {$(
        impl $t {
            /// The status vmnet returns for this (`VMNET_INVALID_ARGUMENT`).
            pub const fn code(self) -> VmnetReturn {
                VmnetReturn::InvalidArgument
            }
        }
    )*};
}
invalid_argument_code!(
    MtuError,
    InterfaceNameError,
    ReservationError,
    PortForwardError,
    ConfigError
);

/// A network configuration: what `vmnet_network_configuration_ref` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "mirrors Apple's five independent disable_* switches"
)]
pub struct NetConfig {
    mode: OperatingMode,
    ipv4_subnet: Ipv4Subnet,
    ipv6_prefix: Option<Ipv6Prefix>,
    mtu_bytes: u32,
    dhcp: bool,
    dns_proxy: bool,
    nat44: bool,
    nat66: bool,
    router_advertisement: bool,
    dhcp_reservations: Vec<DhcpReservation>,
    port_forwards: Vec<PortForward>,
    external_interface: Option<String>,
}

impl NetConfig {
    /// A configuration for `mode` with the defaults (`vmnet_network_configuration_create`).
    ///
    /// Shared mode: 192.168.64.0/24 (gateway .1), DHCP, DNS proxy, NAT44, NAT66 and router
    /// advertisement on. Host mode: [`HOST_SUBNET_DEFAULT`] (UNCONFIRMED), DHCP on, no NAT.
    /// Bridged mode: the LAN's addressing; DHCP, DNS proxy and NAT off here (the LAN provides
    /// them; UNCONFIRMED).
    pub fn new(mode: OperatingMode) -> Self {
        let shared = mode == OperatingMode::Shared;
        let bridged = mode == OperatingMode::Bridged;
        Self {
            mode,
            ipv4_subnet: if shared {
                SHARED_SUBNET_DEFAULT
            } else {
                HOST_SUBNET_DEFAULT
            },
            ipv6_prefix: None,
            mtu_bytes: MTU_BYTES_DEFAULT,
            dhcp: !bridged,
            dns_proxy: shared,
            nat44: shared,
            nat66: shared,
            router_advertisement: shared,
            dhcp_reservations: Vec::new(),
            port_forwards: Vec::new(),
            external_interface: None,
        }
    }

    /// The operating mode.
    pub const fn mode(&self) -> OperatingMode {
        self.mode
    }
    /// The IPv4 subnet.
    pub const fn ipv4_subnet(&self) -> Ipv4Subnet {
        self.ipv4_subnet
    }
    /// The IPv6 prefix, if one was set (vmnet picks a random ULA /64 otherwise).
    pub const fn ipv6_prefix(&self) -> Option<Ipv6Prefix> {
        self.ipv6_prefix
    }
    /// The MTU.
    pub const fn mtu_bytes(&self) -> u32 {
        self.mtu_bytes
    }
    /// Whether the DHCP server runs.
    pub const fn dhcp(&self) -> bool {
        self.dhcp
    }
    /// Whether the DNS proxy runs.
    pub const fn dns_proxy(&self) -> bool {
        self.dns_proxy
    }
    /// Whether IPv4 NAT runs.
    pub const fn nat44(&self) -> bool {
        self.nat44
    }
    /// Whether IPv6 NAT runs.
    pub const fn nat66(&self) -> bool {
        self.nat66
    }
    /// Whether router advertisements are sent.
    pub const fn router_advertisement(&self) -> bool {
        self.router_advertisement
    }
    /// The DHCP reservations, in the order added.
    pub fn dhcp_reservations(&self) -> &[DhcpReservation] {
        &self.dhcp_reservations
    }
    /// The port-forwarding rules, in the order added.
    pub fn port_forwards(&self) -> &[PortForward] {
        &self.port_forwards
    }
    /// The external interface (bridged mode's LAN), if set.
    pub fn external_interface(&self) -> Option<&str> {
        self.external_interface.as_deref()
    }

    /// `vmnet_network_configuration_set_ipv4_subnet`. Existing reservations and rules are not
    /// re-checked here; [`NetConfig::validate`] does that.
    pub fn set_ipv4_subnet(
        &mut self,
        subnet_addr: Ipv4Addr,
        subnet_mask: Ipv4Addr,
    ) -> Result<(), SubnetError> {
        self.ipv4_subnet = Ipv4Subnet::with_mask(subnet_addr, subnet_mask)?;
        Ok(())
    }

    /// `vmnet_network_configuration_set_ipv6_prefix`.
    pub fn set_ipv6_prefix(&mut self, prefix: Ipv6Addr, prefix_len: u8) -> Result<(), PrefixError> {
        self.ipv6_prefix = Some(Ipv6Prefix::new(prefix, prefix_len)?);
        Ok(())
    }

    /// `vmnet_network_configuration_set_mtu`.
    pub fn set_mtu(&mut self, mtu_bytes: u32) -> Result<(), MtuError> {
        check_mtu(mtu_bytes)?;
        self.mtu_bytes = mtu_bytes;
        Ok(())
    }

    /// `vmnet_network_configuration_set_external_interface`.
    pub fn set_external_interface(&mut self, ifname: &str) -> Result<(), InterfaceNameError> {
        check_interface_name(ifname)?;
        self.external_interface = Some(ifname.to_owned());
        Ok(())
    }

    /// `vmnet_network_configuration_add_dhcp_reservation`.
    pub fn add_dhcp_reservation(
        &mut self,
        client: MacAddress,
        reservation: Ipv4Addr,
    ) -> Result<(), ReservationError> {
        let r = DhcpReservation {
            client,
            address: reservation,
        };
        check_reservation(self.ipv4_subnet, &self.dhcp_reservations, r)?;
        self.dhcp_reservations.push(r);
        Ok(())
    }

    /// `vmnet_network_configuration_add_port_forwarding_rule`: note the INTERNAL port comes
    /// before the EXTERNAL one, as in Apple's signature. Apple's family argument is implied by
    /// `internal_address`.
    pub fn add_port_forwarding_rule(
        &mut self,
        protocol: Protocol,
        internal_port: u16,
        external_port: u16,
        internal_address: IpAddr,
    ) -> Result<(), PortForwardError> {
        self.add_port_forward(PortForward {
            protocol,
            internal_port,
            external_port,
            internal_address,
            external_address: None,
        })
    }

    /// Adds a rule given as a value (also the way to set the simulator-only external address).
    pub fn add_port_forward(&mut self, rule: PortForward) -> Result<(), PortForwardError> {
        check_port_forward(
            self.ipv4_subnet,
            self.ipv6_prefix,
            &self.port_forwards,
            rule,
        )?;
        self.port_forwards.push(rule);
        Ok(())
    }

    /// `vmnet_network_configuration_disable_dhcp`.
    pub fn disable_dhcp(&mut self) {
        self.dhcp = false;
    }
    /// `vmnet_network_configuration_disable_dns_proxy`.
    pub fn disable_dns_proxy(&mut self) {
        self.dns_proxy = false;
    }
    /// `vmnet_network_configuration_disable_nat44`.
    pub fn disable_nat44(&mut self) {
        self.nat44 = false;
    }
    /// `vmnet_network_configuration_disable_nat66`.
    pub fn disable_nat66(&mut self) {
        self.nat66 = false;
    }
    /// `vmnet_network_configuration_disable_router_advertisement`.
    pub fn disable_router_advertisement(&mut self) {
        self.router_advertisement = false;
    }

    /// Checks the whole value: every rule the setters check, against the current subnet and
    /// prefix, plus the cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_mtu(self.mtu_bytes)?;
        if let Some(name) = &self.external_interface {
            check_interface_name(name)?;
        }
        for (i, &r) in self.dhcp_reservations.iter().enumerate() {
            check_reservation(self.ipv4_subnet, &self.dhcp_reservations[..i], r)?;
        }
        for (i, &rule) in self.port_forwards.iter().enumerate() {
            check_port_forward(
                self.ipv4_subnet,
                self.ipv6_prefix,
                &self.port_forwards[..i],
                rule,
            )?;
        }
        if !self.port_forwards.is_empty() && self.mode != OperatingMode::Shared {
            return Err(ConfigError::PortForwardOutsideShared);
        }
        if self.mode == OperatingMode::Bridged && self.external_interface.is_none() {
            return Err(ConfigError::BridgedWithoutExternalInterface);
        }
        Ok(())
    }

    /// The text form: one `key value…` line per field, fixed order, ending in a newline.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        let on = |b: bool| if b { "on" } else { "off" };
        let s = self.ipv4_subnet;
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{SERIALIZATION_MAGIC}");
        let _ = writeln!(out, "mode {}", self.mode.code());
        let _ = writeln!(out, "ipv4_subnet {} {}", s.network(), s.prefix_len());
        if let Some(p) = self.ipv6_prefix {
            let _ = writeln!(out, "ipv6_prefix {} {}", p.prefix(), p.prefix_len());
        }
        let _ = writeln!(out, "mtu {}", self.mtu_bytes);
        let _ = writeln!(out, "dhcp {}", on(self.dhcp));
        let _ = writeln!(out, "dns_proxy {}", on(self.dns_proxy));
        let _ = writeln!(out, "nat44 {}", on(self.nat44));
        let _ = writeln!(out, "nat66 {}", on(self.nat66));
        let _ = writeln!(
            out,
            "router_advertisement {}",
            on(self.router_advertisement)
        );
        for r in &self.dhcp_reservations {
            let _ = writeln!(out, "dhcp_reservation {} {}", r.client, r.address);
        }
        for f in &self.port_forwards {
            let ext = f
                .external_address
                .map_or_else(|| "-".to_owned(), |a| a.to_string());
            let _ = writeln!(
                out,
                "port_forward {} {} {} {} {}",
                f.protocol.number(),
                f.internal_port,
                f.external_port,
                f.internal_address,
                ext
            );
        }
        if let Some(name) = &self.external_interface {
            let _ = writeln!(out, "external_interface {name}");
        }
        out
    }

    /// Parses [`NetConfig::serialize`]'s output, then [`NetConfig::validate`]s it.
    pub fn deserialize(text: &str) -> Result<Self, DeserializeError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, SERIALIZATION_MAGIC)) => {}
            _ => return Err(DeserializeError::BadHeader),
        }
        let mut cfg: Option<NetConfig> = None;
        for (index, line) in lines {
            let line_number = index + 1;
            let bad = |what: &'static str| DeserializeError::BadLine { line_number, what };
            let mut words = line.split(' ');
            let key = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            if key == "mode" {
                if cfg.is_some() {
                    return Err(bad("mode twice"));
                }
                let code = one(&args).and_then(|a| a.parse().ok()).ok_or(bad("mode"))?;
                let mode = OperatingMode::from_code(code).ok_or(bad("mode code"))?;
                cfg = Some(NetConfig::new(mode));
                continue;
            }
            let c = cfg.as_mut().ok_or(bad("mode must come first"))?;
            parse_line(c, key, &args).ok_or(bad(leak_key(key)))?;
        }
        let cfg = cfg.ok_or(DeserializeError::MissingMode)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The first line of the text form (format name and version).
pub const SERIALIZATION_MAGIC: &str = "vnic-sim netconfig 1";

/// Why [`NetConfig::deserialize`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeserializeError {
    /// The first line is not [`SERIALIZATION_MAGIC`].
    #[error("not a vnic-sim netconfig (bad first line)")]
    BadHeader,
    /// No `mode` line.
    #[error("no mode line")]
    MissingMode,
    /// A line could not be parsed (1-based line number).
    #[error("line {line_number}: bad {what}")]
    BadLine {
        /// 1-based line number.
        line_number: usize,
        /// Which key (or rule) was wrong.
        what: &'static str,
    },
    /// The parsed value breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl DeserializeError {
    /// The status vmnet returns for this (`vmnet_network_create_with_serialization`).
    pub const fn code(self) -> VmnetReturn {
        VmnetReturn::InvalidArgument
    }
}

/// Maps a parsed key to a static name for errors (unknown keys become "key").
fn leak_key(key: &str) -> &'static str {
    match key {
        "ipv4_subnet" => "ipv4_subnet",
        "ipv6_prefix" => "ipv6_prefix",
        "mtu" => "mtu",
        "dhcp" => "dhcp",
        "dns_proxy" => "dns_proxy",
        "nat44" => "nat44",
        "nat66" => "nat66",
        "router_advertisement" => "router_advertisement",
        "dhcp_reservation" => "dhcp_reservation",
        "port_forward" => "port_forward",
        "external_interface" => "external_interface",
        _ => "key",
    }
}

fn one<'a>(args: &[&'a str]) -> Option<&'a str> {
    match args {
        [a] => Some(a),
        _ => None,
    }
}

fn on_off(args: &[&str]) -> Option<bool> {
    match one(args)? {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// Applies one line to `c`; `None` if it does not parse. Values are set directly (rules are
/// checked once, by `validate`, at the end).
fn parse_line(c: &mut NetConfig, key: &str, args: &[&str]) -> Option<()> {
    match (key, args) {
        ("ipv4_subnet", [addr, len]) => {
            c.ipv4_subnet = Ipv4Subnet::new(addr.parse().ok()?, len.parse().ok()?).ok()?;
        }
        ("ipv6_prefix", [addr, len]) => {
            c.ipv6_prefix = Some(Ipv6Prefix::new(addr.parse().ok()?, len.parse().ok()?).ok()?);
        }
        ("mtu", _) => c.mtu_bytes = one(args)?.parse().ok()?,
        ("dhcp", _) => c.dhcp = on_off(args)?,
        ("dns_proxy", _) => c.dns_proxy = on_off(args)?,
        ("nat44", _) => c.nat44 = on_off(args)?,
        ("nat66", _) => c.nat66 = on_off(args)?,
        ("router_advertisement", _) => c.router_advertisement = on_off(args)?,
        ("dhcp_reservation", [mac, addr]) => {
            if c.dhcp_reservations.len() >= DHCP_RESERVATIONS_MAX {
                return None;
            }
            c.dhcp_reservations.push(DhcpReservation {
                client: mac.parse().ok()?,
                address: addr.parse().ok()?,
            });
        }
        ("port_forward", [proto, internal_port, external_port, internal_address, external]) => {
            if c.port_forwards.len() >= PORT_FORWARDS_MAX {
                return None;
            }
            c.port_forwards.push(PortForward {
                protocol: Protocol::from_number(proto.parse().ok()?)?,
                internal_port: internal_port.parse().ok()?,
                external_port: external_port.parse().ok()?,
                internal_address: internal_address.parse().ok()?,
                external_address: match *external {
                    "-" => None,
                    a => Some(a.parse().ok()?),
                },
            });
        }
        ("external_interface", _) => c.external_interface = Some(one(args)?.to_owned()),
        _ => return None,
    }
    Some(())
}

fn check_mtu(mtu_bytes: u32) -> Result<(), MtuError> {
    if (MTU_BYTES_MIN..=MTU_BYTES_MAX).contains(&mtu_bytes) {
        Ok(())
    } else {
        Err(MtuError(mtu_bytes))
    }
}

fn check_interface_name(name: &str) -> Result<(), InterfaceNameError> {
    if name.is_empty() {
        return Err(InterfaceNameError::Empty);
    }
    if name.len() > INTERFACE_NAME_BYTES_MAX {
        return Err(InterfaceNameError::TooLong);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(InterfaceNameError::BadCharacter);
    }
    Ok(())
}

fn check_reservation(
    subnet: Ipv4Subnet,
    existing: &[DhcpReservation],
    r: DhcpReservation,
) -> Result<(), ReservationError> {
    if !r.client.is_unicast() {
        return Err(ReservationError::NotUnicast(r.client));
    }
    if !subnet.contains(r.address) {
        return Err(ReservationError::OutsideSubnet(r.address));
    }
    if subnet.is_reserved(r.address) {
        return Err(ReservationError::ReservedAddress(r.address));
    }
    if existing.iter().any(|e| e.client == r.client) {
        return Err(ReservationError::DuplicateClient(r.client));
    }
    if existing.iter().any(|e| e.address == r.address) {
        return Err(ReservationError::DuplicateAddress(r.address));
    }
    if existing.len() >= DHCP_RESERVATIONS_MAX {
        return Err(ReservationError::TooMany);
    }
    Ok(())
}

fn check_port_forward(
    subnet: Ipv4Subnet,
    prefix: Option<Ipv6Prefix>,
    existing: &[PortForward],
    rule: PortForward,
) -> Result<(), PortForwardError> {
    if rule.internal_port == 0 || rule.external_port == 0 {
        return Err(PortForwardError::ZeroPort);
    }
    match rule.internal_address {
        IpAddr::V4(a) if !subnet.contains(a) => return Err(PortForwardError::OutsideSubnet(a)),
        IpAddr::V4(a) if subnet.is_reserved(a) => return Err(PortForwardError::ReservedAddress(a)),
        IpAddr::V6(a) if !prefix.is_some_and(|p| p.contains(a)) => {
            return Err(PortForwardError::OutsidePrefix(a))
        }
        _ => {}
    }
    if rule
        .external_address
        .is_some_and(|e| e.is_ipv4() != rule.internal_address.is_ipv4())
    {
        return Err(PortForwardError::FamilyMismatch);
    }
    if existing.iter().any(|e| {
        e.protocol == rule.protocol
            && e.external_port == rule.external_port
            && e.internal_address.is_ipv4() == rule.internal_address.is_ipv4()
    }) {
        return Err(PortForwardError::DuplicateExternalPort(rule.external_port));
    }
    if existing.len() >= PORT_FORWARDS_MAX {
        return Err(PortForwardError::TooMany);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
