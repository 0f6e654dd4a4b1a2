//! vmnet's numbers, exactly as the SDK headers define them (vmnet.md §1.2), and the per-operation
//! errors of the model.

use core::fmt;

/// `operating_modes_t` (`uint32_t`): how an interface reaches the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum OperatingMode {
    /// `VMNET_HOST_MODE` = 1000: guests and host only, no outside world.
    Host = 1000,
    /// `VMNET_SHARED_MODE` = 1001: NAT to the outside through the host.
    Shared = 1001,
    /// `VMNET_BRIDGED_MODE` = 1002 (10.15+): bridged onto a physical interface's LAN.
    Bridged = 1002,
}

impl OperatingMode {
    /// The header's number.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The mode with this number, if any.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            1000 => Some(Self::Host),
            1001 => Some(Self::Shared),
            1002 => Some(Self::Bridged),
            _ => None,
        }
    }
}

/// `vmnet_return_t` (`uint32_t`), numbered as in the shipping SDKs (not the pre-release stubs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum VmnetReturn {
    /// 1000 `VMNET_SUCCESS`.
    Success = 1000,
    /// 1001 `VMNET_FAILURE`: general failure; also what a non-root, non-entitled caller gets.
    Failure = 1001,
    /// 1002 `VMNET_MEM_FAILURE`.
    MemFailure = 1002,
    /// 1003 `VMNET_INVALID_ARGUMENT`.
    InvalidArgument = 1003,
    /// 1004 `VMNET_SETUP_INCOMPLETE`.
    SetupIncomplete = 1004,
    /// 1005 `VMNET_INVALID_ACCESS`: permission denied.
    InvalidAccess = 1005,
    /// 1006 `VMNET_PACKET_TOO_BIG` (documented as "larger than MTU").
    PacketTooBig = 1006,
    /// 1007 `VMNET_BUFFER_EXHAUSTED`: kernel buffers exhausted.
    BufferExhausted = 1007,
    /// 1008 `VMNET_TOO_MANY_PACKETS`: the count exceeds the per-call limit.
    TooManyPackets = 1008,
    /// 1009 `VMNET_SHARING_SERVICE_BUSY` (11.0+): a conflicting sharing service is active.
    SharingServiceBusy = 1009,
    /// 1010 `VMNET_NOT_AUTHORIZED` (15.x SDK; exact OS version UNCONFIRMED).
    NotAuthorized = 1010,
}

impl VmnetReturn {
    /// Every code, ascending.
    pub const ALL: [Self; 11] = [
        Self::Success,
        Self::Failure,
        Self::MemFailure,
        Self::InvalidArgument,
        Self::SetupIncomplete,
        Self::InvalidAccess,
        Self::PacketTooBig,
        Self::BufferExhausted,
        Self::TooManyPackets,
        Self::SharingServiceBusy,
        Self::NotAuthorized,
    ];

    /// The header's number.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The code with this number, if any.
    pub const fn from_code(code: u32) -> Option<Self> {
        if code < 1000 || code > 1010 {
            return None;
        }
        Some(Self::ALL[(code - 1000) as usize])
    }

    /// The header's name, e.g. `"VMNET_PACKET_TOO_BIG"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "VMNET_SUCCESS",
            Self::Failure => "VMNET_FAILURE",
            Self::MemFailure => "VMNET_MEM_FAILURE",
            Self::InvalidArgument => "VMNET_INVALID_ARGUMENT",
            Self::SetupIncomplete => "VMNET_SETUP_INCOMPLETE",
            Self::InvalidAccess => "VMNET_INVALID_ACCESS",
            Self::PacketTooBig => "VMNET_PACKET_TOO_BIG",
            Self::BufferExhausted => "VMNET_BUFFER_EXHAUSTED",
            Self::TooManyPackets => "VMNET_TOO_MANY_PACKETS",
            Self::SharingServiceBusy => "VMNET_SHARING_SERVICE_BUSY",
            Self::NotAuthorized => "VMNET_NOT_AUTHORIZED",
        }
    }
}

impl fmt::Display for VmnetReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// `interface_event_t` (`uint32_t` options): a set of event bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InterfaceEvent(pub u32);

impl InterfaceEvent {
    /// No events (passing it to `set_event_callback` disables events, like NULL queue + block).
    pub const NONE: Self = Self(0);
    /// `VMNET_INTERFACE_PACKETS_AVAILABLE` = `1 << 0`.
    pub const PACKETS_AVAILABLE: Self = Self(1 << 0);
    /// Every bit vmnet defines.
    pub const ALL: Self = Self::PACKETS_AVAILABLE;

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The default MTU vmnet reports (vmnet.md §0).
pub const MTU_BYTES_DEFAULT: u32 = 1500;
/// The max packet size vmnet reports at MTU 1500: the MTU plus a 14-byte header, no FCS.
pub const MAX_PACKET_SIZE_BYTES_DEFAULT: u32 = 1514;
/// Bytes of Ethernet header; a written frame shorter than this is not a frame.
pub const ETHERNET_HEADER_BYTES: u32 = 14;
/// The per-call packet limit Apple documents.
pub const PACKETS_PER_CALL_MAX_DOCUMENTED: u32 = 200;
/// The `vmnet_read_max_packets` / `vmnet_write_max_packets` observed on macOS 26.2.
pub const PACKETS_PER_CALL_MAX_OBSERVED: u32 = 256;
/// The per-call byte limit Apple documents (256 KB).
pub const BYTES_PER_CALL_MAX_DOCUMENTED: u32 = 256 * 1024;
/// Interfaces in total (documented).
pub const INTERFACES_MAX: u32 = 32;
/// Interfaces per guest (documented).
pub const INTERFACES_PER_GUEST_MAX: u32 = 4;
/// `sizeof(struct vmpktdesc)` on LP64.
pub const VMPKTDESC_SIZE_BYTES: usize = 24;
/// Offsets of `vm_pkt_size`, `vm_pkt_iov`, `vm_pkt_iovcnt`, `vm_flags` in `struct vmpktdesc`
/// on LP64 (computed from field order).
pub const VMPKTDESC_FIELD_OFFSETS_BYTES: [usize; 4] = [0, 8, 16, 20];

/// Key strings as raw dictionary dumps show them (the symbol name without `_key`). The
/// strings are UNCONFIRMED-stable; real bindings must use the exported symbols.
pub mod keys {
    /// `vmnet_operation_mode_key`.
    pub const OPERATION_MODE: &str = "vmnet_operation_mode";
    /// `vmnet_interface_id_key`.
    pub const INTERFACE_ID: &str = "vmnet_interface_id";
    /// `vmnet_mac_address_key`.
    pub const MAC_ADDRESS: &str = "vmnet_mac_address";
    /// `vmnet_allocate_mac_address_key`.
    pub const ALLOCATE_MAC_ADDRESS: &str = "vmnet_allocate_mac_address";
    /// `vmnet_mtu_key`.
    pub const MTU: &str = "vmnet_mtu";
    /// `vmnet_max_packet_size_key`.
    pub const MAX_PACKET_SIZE: &str = "vmnet_max_packet_size";
    /// `vmnet_shared_interface_name_key`.
    pub const SHARED_INTERFACE_NAME: &str = "vmnet_shared_interface_name";
    /// `vmnet_start_address_key`.
    pub const START_ADDRESS: &str = "vmnet_start_address";
    /// `vmnet_end_address_key`.
    pub const END_ADDRESS: &str = "vmnet_end_address";
    /// `vmnet_subnet_mask_key`.
    pub const SUBNET_MASK: &str = "vmnet_subnet_mask";
    /// `vmnet_nat66_prefix_key`.
    pub const NAT66_PREFIX: &str = "vmnet_nat66_prefix";
    /// `vmnet_network_identifier_key`.
    pub const NETWORK_IDENTIFIER: &str = "vmnet_network_identifier";
    /// `vmnet_enable_isolation_key`.
    pub const ENABLE_ISOLATION: &str = "vmnet_enable_isolation";
    /// `vmnet_read_max_packets_key`.
    pub const READ_MAX_PACKETS: &str = "vmnet_read_max_packets";
    /// `vmnet_write_max_packets_key`.
    pub const WRITE_MAX_PACKETS: &str = "vmnet_write_max_packets";
    /// `vmnet_estimated_packets_available_key`.
    pub const ESTIMATED_PACKETS_AVAILABLE: &str = "vmnet_estimated_packets_available";
}

/// Why `interface_desc` was refused at once (the start call returns NULL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescError {
    /// Bridged mode needs `vmnet_shared_interface_name_key`.
    #[error("bridged mode without a shared interface name")]
    BridgedWithoutInterfaceName,
    /// The shared interface name is not in the bridgeable list (the model's
    /// `vmnet_copy_shared_interface_list`).
    #[error("{0:?} is not a bridgeable interface")]
    UnknownSharedInterface(String),
    /// Setting the MTU in bridged mode is an error.
    #[error("MTU set in bridged mode")]
    MtuInBridgedMode,
    /// The MTU is outside the model's range (UNCONFIRMED bounds).
    #[error("MTU {0} bytes out of range")]
    MtuOutOfRange(u32),
    /// `vmnet_network_identifier_key` is host mode only.
    #[error("network identifier outside host mode")]
    NetworkIdentifierOutsideHostMode,
}

/// Why an interface start failed. Descriptor errors are reported at once (NULL handle); the rest
/// arrive in the start completion. Which failures real vmnet reports which way is UNCONFIRMED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The descriptor is invalid: `VMNET_INVALID_ARGUMENT`.
    #[error("invalid interface description: {0}")]
    InvalidDesc(#[from] DescError),
    /// The caller is neither root nor entitled: `VMNET_FAILURE`.
    #[error("not privileged (VMNET_FAILURE)")]
    NotPrivileged,
    /// The caller lacks authorization: `VMNET_NOT_AUTHORIZED`.
    #[error("not authorized (VMNET_NOT_AUTHORIZED)")]
    NotAuthorized,
    /// Another sharing service holds the subnet: `VMNET_SHARING_SERVICE_BUSY`.
    #[error("sharing service busy (VMNET_SHARING_SERVICE_BUSY)")]
    SharingServiceBusy,
    /// `vmnet_interface_start_with_network` with a network this vmnet does not have (made by
    /// another [`super::SimVmnet`]): `VMNET_INVALID_ARGUMENT`, at once (NULL handle).
    #[error("no such network (VMNET_INVALID_ARGUMENT)")]
    NoSuchNetwork,
    /// The total interface limit is reached. The code vmnet returns is UNCONFIRMED; it is a
    /// knob ([`super::VmnetKnobs::too_many_interfaces_status`]).
    #[error("interface limit {interfaces_max} reached ({status})")]
    TooManyInterfaces {
        /// The limit.
        interfaces_max: u32,
        /// The status reported.
        status: VmnetReturn,
    },
    /// The per-guest interface limit is reached. The code is UNCONFIRMED; it is a knob
    /// ([`super::VmnetKnobs::too_many_for_guest_status`]).
    #[error("guest {guest:?} has its {interfaces_per_guest_max} interfaces ({status})")]
    TooManyInterfacesForGuest {
        /// The guest.
        guest: super::GuestId,
        /// The limit.
        interfaces_per_guest_max: u32,
        /// The status reported.
        status: VmnetReturn,
    },
}

impl StartError {
    /// The `vmnet_return_t` for this failure.
    pub const fn code(&self) -> VmnetReturn {
        match self {
            Self::InvalidDesc(_) | Self::NoSuchNetwork => VmnetReturn::InvalidArgument,
            Self::NotPrivileged => VmnetReturn::Failure,
            Self::NotAuthorized => VmnetReturn::NotAuthorized,
            Self::SharingServiceBusy => VmnetReturn::SharingServiceBusy,
            Self::TooManyInterfaces { status, .. }
            | Self::TooManyInterfacesForGuest { status, .. } => *status,
        }
    }
}

/// Why a handle cannot do I/O or be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Not a live interface (never started, failed to start, or its stop completed):
    /// `VMNET_INVALID_ARGUMENT`.
    #[error("not a live interface")]
    Stale,
    /// The start has not completed: `VMNET_SETUP_INCOMPLETE` (UNCONFIRMED, vmnet.md §7(a)).
    #[error("interface start not complete")]
    SetupIncomplete,
    /// The interface was stopped. The code is a knob, [`super::VmnetKnobs::after_stop_status`]
    /// (UNCONFIRMED; vmnet.md only says I/O after stop fails).
    #[error("interface stopped ({0})")]
    Stopped(VmnetReturn),
}

impl HandleError {
    /// The `vmnet_return_t` for this failure.
    pub const fn code(self) -> VmnetReturn {
        match self {
            Self::Stale => VmnetReturn::InvalidArgument,
            Self::SetupIncomplete => VmnetReturn::SetupIncomplete,
            Self::Stopped(status) => status,
        }
    }
}

/// Why `vmnet_read` failed. Nothing to read is not an error: it returns `Ok(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The handle cannot read.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// More descriptors than `vmnet_read_max_packets`: `VMNET_TOO_MANY_PACKETS` (inferred from
    /// the key's wording; clamping instead is the [`super::OverLimit::Clamp`] knob).
    #[error("{requested} packets requested, at most {packets_max}")]
    TooManyPackets {
        /// Descriptors passed.
        requested: usize,
        /// The limit.
        packets_max: u32,
    },
    /// The first waiting frame is longer than its buffer, under
    /// [`super::ShortReadBuffer::Error`] (UNCONFIRMED behaviour): `VMNET_INVALID_ARGUMENT`.
    #[error("frame of {frame_bytes} bytes does not fit a {buffer_bytes}-byte buffer")]
    BufferTooSmall {
        /// The frame's length.
        frame_bytes: usize,
        /// The buffer's capacity.
        buffer_bytes: usize,
    },
}

impl ReadError {
    /// The `vmnet_return_t` for this failure.
    pub const fn code(self) -> VmnetReturn {
        match self {
            Self::Handle(e) => e.code(),
            Self::TooManyPackets { .. } => VmnetReturn::TooManyPackets,
            Self::BufferTooSmall { .. } => VmnetReturn::InvalidArgument,
        }
    }
}

/// Why `vmnet_write` failed. Writes are all-or-nothing: on any error nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The handle cannot write.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// More descriptors than `vmnet_write_max_packets`: `VMNET_TOO_MANY_PACKETS`.
    #[error("{requested} packets written, at most {packets_max}")]
    TooManyPackets {
        /// Descriptors passed.
        requested: usize,
        /// The limit.
        packets_max: u32,
    },
    /// The batch is over the documented 256 KB per call. The code vmnet returns is UNCONFIRMED;
    /// this model says `VMNET_TOO_MANY_PACKETS`.
    #[error("{total_bytes} bytes in one call, at most {bytes_max}")]
    TooManyBytes {
        /// Bytes in the batch.
        total_bytes: usize,
        /// The limit.
        bytes_max: u32,
    },
    /// Descriptor `index` has more than one iovec: `VMNET_INVALID_ARGUMENT`.
    #[error("packet {index}: more than one iovec")]
    MultipleIovecs {
        /// Which descriptor.
        index: usize,
    },
    /// Descriptor `index` has `vm_pkt_size` ≠ `iov_len`: `VMNET_INVALID_ARGUMENT`.
    #[error("packet {index}: vm_pkt_size {pkt_size_bytes} != iov_len {iov_bytes}")]
    SizeMismatch {
        /// Which descriptor.
        index: usize,
        /// `vm_pkt_size`.
        pkt_size_bytes: usize,
        /// `iov_len`.
        iov_bytes: usize,
    },
    /// Descriptor `index` is shorter than an Ethernet header: `VMNET_INVALID_ARGUMENT`.
    #[error("packet {index}: {frame_bytes} bytes is not an Ethernet frame")]
    Runt {
        /// Which descriptor.
        index: usize,
        /// Its length.
        frame_bytes: usize,
    },
    /// Descriptor `index` is longer than `max_packet_size`: `VMNET_PACKET_TOO_BIG`.
    #[error("packet {index}: {frame_bytes} bytes over max packet size {max_packet_size_bytes}")]
    PacketTooBig {
        /// Which descriptor.
        index: usize,
        /// Its length.
        frame_bytes: usize,
        /// The interface's `max_packet_size`.
        max_packet_size_bytes: u32,
    },
    /// The interface's kernel buffer cannot take the whole batch: `VMNET_BUFFER_EXHAUSTED`.
    #[error("kernel buffer has room for {free_frames} frames")]
    BufferExhausted {
        /// Frames the buffer could still take.
        free_frames: usize,
    },
}

impl WriteError {
    /// The `vmnet_return_t` for this failure.
    pub const fn code(self) -> VmnetReturn {
        match self {
            Self::Handle(e) => e.code(),
            Self::TooManyPackets { .. } | Self::TooManyBytes { .. } => VmnetReturn::TooManyPackets,
            Self::MultipleIovecs { .. } | Self::SizeMismatch { .. } | Self::Runt { .. } => {
                VmnetReturn::InvalidArgument
            }
            Self::PacketTooBig { .. } => VmnetReturn::PacketTooBig,
            Self::BufferExhausted { .. } => VmnetReturn::BufferExhausted,
        }
    }
}

/// Networks made with [`super::SimVmnet::network_create`] that can exist at once (a bound of
/// this model; vmnet's own limit is unknown).
pub const CONFIGURED_NETWORKS_MAX: usize = 64;

/// Why `vmnet_network_create` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkCreateError {
    /// The configuration breaks a rule ([`crate::netconfig::NetConfig::validate`]):
    /// `VMNET_INVALID_ARGUMENT`.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(#[from] crate::netconfig::ConfigError),
    /// The external interface is not bridgeable (not in
    /// [`super::VmnetKnobs::bridgeable_interfaces`]): `VMNET_INVALID_ARGUMENT`.
    #[error("{0:?} is not a bridgeable interface")]
    UnknownExternalInterface(String),
    /// Another network already holds an overlapping subnet: `VMNET_SHARING_SERVICE_BUSY`
    /// (UNCONFIRMED: vmnet.md gives 1009 for "a subnet is taken", not for this call).
    #[error(
        "subnet {network}/{prefix_len} overlaps a network in use (VMNET_SHARING_SERVICE_BUSY)"
    )]
    SubnetInUse {
        /// The requested subnet's network address.
        network: std::net::Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
    },
    /// [`CONFIGURED_NETWORKS_MAX`] networks exist: `VMNET_FAILURE` (a bound of this model).
    #[error("{CONFIGURED_NETWORKS_MAX} networks exist (VMNET_FAILURE)")]
    TooManyNetworks,
    /// The caller is neither root nor entitled: `VMNET_FAILURE` (whether macOS 26 still needs
    /// either is UNCONFIRMED, vmnet.md §1.7 "Root").
    #[error("not privileged (VMNET_FAILURE)")]
    NotPrivileged,
    /// The caller lacks authorization: `VMNET_NOT_AUTHORIZED`.
    #[error("not authorized (VMNET_NOT_AUTHORIZED)")]
    NotAuthorized,
}

impl NetworkCreateError {
    /// The `vmnet_return_t` for this failure.
    pub const fn code(&self) -> VmnetReturn {
        match self {
            Self::InvalidConfig(_) | Self::UnknownExternalInterface(_) => {
                VmnetReturn::InvalidArgument
            }
            Self::SubnetInUse { .. } => VmnetReturn::SharingServiceBusy,
            Self::TooManyNetworks | Self::NotPrivileged => VmnetReturn::Failure,
            Self::NotAuthorized => VmnetReturn::NotAuthorized,
        }
    }
}

/// Why `vmnet_network_create_with_serialization` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkFromSerializationError {
    /// Not a serialization this model made (bad first line): `VMNET_INVALID_ARGUMENT`.
    #[error("not a vmnet network serialization")]
    BadHeader,
    /// The configuration part does not parse or is invalid: `VMNET_INVALID_ARGUMENT`.
    #[error("bad configuration in serialization: {0}")]
    BadConfig(#[from] crate::netconfig::DeserializeError),
    /// The network it names no longer exists (its last reference and interface are gone):
    /// `VMNET_INVALID_ARGUMENT` (UNCONFIRMED code).
    #[error("network {0} no longer exists")]
    NoSuchNetwork(u32),
    /// The configuration differs from the live network's: `VMNET_INVALID_ARGUMENT`.
    #[error("serialization does not match network {0}")]
    ConfigMismatch(u32),
}

impl NetworkFromSerializationError {
    /// The `vmnet_return_t` for this failure.
    pub const fn code(&self) -> VmnetReturn {
        VmnetReturn::InvalidArgument
    }
}
