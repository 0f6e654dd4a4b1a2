//! `interface_desc`, `interface_param` and `struct vmpktdesc` as typed values.

use std::net::{Ipv4Addr, Ipv6Addr};

use ndk_model::ethernet::MacAddress;

use super::OperatingMode;

/// A UUID (`vmnet_interface_id_key`, `vmnet_network_identifier_key`): 16 raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

/// The caller-chosen owner of interfaces, for the "4 per guest" limit. vmnet does not say how
/// it identifies a guest (UNCONFIRMED); here the caller names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestId(pub u32);

/// What the caller asks for: the model of `interface_desc`.
///
/// **Supported keys:** operation mode, interface id, allocate-MAC, MTU (host/shared),
/// shared interface name (bridged), network identifier (host), isolation.
///
/// **Rejected / not modelled yet:** start/end address and mask (custom DHCP range), NAT66
/// prefix, host IP keys, TSO, checksum offload, virtio header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDesc {
    /// `vmnet_operation_mode_key`.
    pub mode: OperatingMode,
    /// Who owns the interface (the per-guest limit counts these).
    pub guest: GuestId,
    /// `vmnet_interface_id_key`: the same id gives the same MAC again. `None`: vmnet picks a
    /// fresh id and a random MAC.
    pub interface_id: Option<Uuid>,
    /// `vmnet_allocate_mac_address_key` (default true). False: no MAC in the parameters; the
    /// guest brings its own (as QEMU does).
    pub allocate_mac: bool,
    /// `vmnet_mtu_key` (host and shared modes only).
    pub mtu_bytes: Option<u32>,
    /// `vmnet_shared_interface_name_key` (required for bridged mode).
    pub shared_interface_name: Option<String>,
    /// `vmnet_network_identifier_key` (host mode only): join the isolated network of this id.
    /// Such networks have no DHCP.
    pub network_identifier: Option<Uuid>,
    /// `vmnet_enable_isolation_key`: no traffic to other vmnet interfaces.
    pub enable_isolation: bool,
}

impl InterfaceDesc {
    /// A descriptor for `mode` owned by `guest`, with every optional key absent.
    pub fn new(mode: OperatingMode, guest: GuestId) -> Self {
        Self {
            mode,
            guest,
            interface_id: None,
            allocate_mac: true,
            mtu_bytes: None,
            shared_interface_name: None,
            network_identifier: None,
            enable_isolation: false,
        }
    }

    /// Sets `vmnet_interface_id_key`.
    #[must_use]
    pub fn interface_id(mut self, id: Uuid) -> Self {
        self.interface_id = Some(id);
        self
    }

    /// Sets `vmnet_mtu_key`.
    #[must_use]
    pub fn mtu_bytes(mut self, mtu_bytes: u32) -> Self {
        self.mtu_bytes = Some(mtu_bytes);
        self
    }

    /// Sets `vmnet_shared_interface_name_key`.
    #[must_use]
    pub fn shared_interface_name(mut self, name: &str) -> Self {
        self.shared_interface_name = Some(name.to_owned());
        self
    }

    /// Sets `vmnet_network_identifier_key`.
    #[must_use]
    pub fn network_identifier(mut self, id: Uuid) -> Self {
        self.network_identifier = Some(id);
        self
    }

    /// Sets `vmnet_enable_isolation_key`.
    #[must_use]
    pub fn isolation(mut self, on: bool) -> Self {
        self.enable_isolation = on;
        self
    }

    /// Sets `vmnet_allocate_mac_address_key`.
    #[must_use]
    pub fn allocate_mac(mut self, on: bool) -> Self {
        self.allocate_mac = on;
        self
    }
}

/// DHCP addressing reported in the parameters (`start`/`end`/`mask` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Range {
    /// `vmnet_start_address_key`: the gateway; the DHCP pool follows it.
    pub start_address: Ipv4Addr,
    /// `vmnet_end_address_key`: the end of the DHCP pool.
    pub end_address: Ipv4Addr,
    /// `vmnet_subnet_mask_key`.
    pub subnet_mask: Ipv4Addr,
}

/// What the start completion hands back: the model of `interface_param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceParams {
    /// `vmnet_interface_id_key`: the caller's id, or one vmnet made up.
    pub interface_id: Uuid,
    /// `vmnet_mac_address_key`: absent when MAC allocation is off. Locally administered unicast.
    pub mac: Option<MacAddress>,
    /// `vmnet_mtu_key`.
    pub mtu_bytes: u32,
    /// `vmnet_max_packet_size_key`: MTU + 14.
    pub max_packet_size_bytes: u32,
    /// `vmnet_read_max_packets_key` (absent before macOS 15).
    pub read_packets_max: Option<u32>,
    /// `vmnet_write_max_packets_key` (absent before macOS 15).
    pub write_packets_max: Option<u32>,
    /// Start/end/mask, in host and shared modes with DHCP.
    pub ipv4: Option<Ipv4Range>,
    /// `vmnet_nat66_prefix_key`: shared mode's ULA /64.
    pub nat66_prefix: Option<Ipv6Addr>,
}

/// One `struct vmpktdesc` for [`super::SimVmnet::read`]: one buffer (one iovec).
#[derive(Debug)]
pub struct RxDesc<'a> {
    /// `vm_pkt_size`: in, the capacity to use (with `buf.len()`, the smaller wins); out, the
    /// frame's length.
    pub pkt_size_bytes: usize,
    /// The iovec's buffer. Should be at least `max_packet_size` long.
    pub buf: &'a mut [u8],
    /// `vm_flags` (meaning undocumented; every wrapper sets 0; left untouched).
    pub flags: u32,
}

impl<'a> RxDesc<'a> {
    /// A descriptor for `buf`, with `vm_pkt_size` reset to the buffer's length (as callers must
    /// before every read).
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self {
            pkt_size_bytes: buf.len(),
            buf,
            flags: 0,
        }
    }

    /// The frame read into this descriptor (valid after a read counted it).
    pub fn frame(&self) -> &[u8] {
        &self.buf[..self.pkt_size_bytes.min(self.buf.len())]
    }
}

/// The iovecs of a [`TxDesc`].
#[derive(Debug, Clone, Copy)]
pub enum Iov<'a> {
    /// One iovec (the only form vmnet accepts in practice).
    One(&'a [u8]),
    /// Several iovecs: rejected with `VMNET_INVALID_ARGUMENT` unless there is exactly one.
    Many(&'a [&'a [u8]]),
}

/// One `struct vmpktdesc` for [`super::SimVmnet::write`].
#[derive(Debug, Clone, Copy)]
pub struct TxDesc<'a> {
    /// `vm_pkt_size`: must equal the iovec's length.
    pub pkt_size_bytes: usize,
    /// `vm_pkt_iov` + `vm_pkt_iovcnt`.
    pub iov: Iov<'a>,
    /// `vm_flags` (ignored).
    pub flags: u32,
}

impl<'a> TxDesc<'a> {
    /// A well-formed descriptor for one whole frame.
    pub fn frame(frame: &'a [u8]) -> Self {
        Self {
            pkt_size_bytes: frame.len(),
            iov: Iov::One(frame),
            flags: 0,
        }
    }
}
