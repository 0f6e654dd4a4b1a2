//! The settings of the vmnet model, including every behaviour vmnet.md leaves UNCONFIRMED.

use crate::netconfig::{Ipv4Subnet, HOST_SUBNET_DEFAULT, SHARED_SUBNET_DEFAULT};

use super::{VmnetReturn, INTERFACES_MAX, INTERFACES_PER_GUEST_MAX};
use super::{
    BYTES_PER_CALL_MAX_DOCUMENTED, PACKETS_PER_CALL_MAX_DOCUMENTED, PACKETS_PER_CALL_MAX_OBSERVED,
};

/// When a "packets available" event fires. Real vmnet is UNCONFIRMED (vmnet.md §1.5, §8 Q1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTrigger {
    /// Only when new packets arrived since the last event.
    Edge,
    /// On every [`super::SimVmnet::advance`] while unread packets remain.
    Level,
}

/// How accurate the event's `vmnet_estimated_packets_available` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimate {
    /// The number of unread packets.
    Exact,
    /// The unread count, capped at `packets_max`.
    Capped {
        /// The cap.
        packets_max: u64,
    },
    /// Stale: only the packets that arrived since the last event (leftovers are not counted).
    ArrivalsOnly,
    /// The unread count plus a uniform error in `-error_max..=error_max` from the seeded PRNG,
    /// at least 0.
    Jitter {
        /// Largest error either way.
        error_max: u64,
    },
}

/// What a read or write with more descriptors than the per-call limit does (vmnet.md §8 Q3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Fail with `VMNET_TOO_MANY_PACKETS` (inferred from the key's wording; default).
    Reject,
    /// Use only the first `max` descriptors.
    Clamp,
}

/// What a read does when the next frame is longer than its buffer (vmnet.md §8 Q2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortReadBuffer {
    /// Copy what fits; `vm_pkt_size` says how much; the rest of the frame is lost (counted).
    Truncate,
    /// Stop: fail with `VMNET_INVALID_ARGUMENT` if it is the first frame, else return the count
    /// so far and leave the frame queued.
    Error,
}

/// Whether vmnet drops IPv4 frames whose source is not the interface's DHCP lease
/// (vmnet.md §0.3, §1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceIpRule {
    /// Drop them, silently (the write succeeds) and counted
    /// ([`super::InterfaceCounters::dropped_source_ip_frames`]).
    Enforce,
    /// Let every source through.
    Off,
}

/// [`SourceIpRule`] per kind of network. Documented only for networks whose addresses come
/// from vmnet's DHCP; whether it also applies without DHCP (`network_identifier` host networks,
/// bridged mode, configured networks with DHCP disabled) is UNCONFIRMED (vmnet.md §8 Q7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceIpRules {
    /// Shared and host mode, and configured networks with DHCP on (default: enforce).
    pub with_vmnet_dhcp: SourceIpRule,
    /// `network_identifier` host networks, bridged mode, and configured networks with DHCP off
    /// or in bridged mode (default: off, UNCONFIRMED).
    pub without_vmnet_dhcp: SourceIpRule,
}

impl Default for SourceIpRules {
    fn default() -> Self {
        Self {
            with_vmnet_dhcp: SourceIpRule::Enforce,
            without_vmnet_dhcp: SourceIpRule::Off,
        }
    }
}

impl SourceIpRules {
    /// Neither kind of network enforces the rule.
    pub const OFF: Self = Self {
        with_vmnet_dhcp: SourceIpRule::Off,
        without_vmnet_dhcp: SourceIpRule::Off,
    };

    /// The rule for a network with (`true`) or without vmnet's DHCP.
    pub const fn for_dhcp(self, vmnet_dhcp: bool) -> SourceIpRule {
        if vmnet_dhcp {
            self.with_vmnet_dhcp
        } else {
            self.without_vmnet_dhcp
        }
    }
}

/// Who the caller is, for start failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Root or entitled: starts succeed.
    Privileged,
    /// Neither: starts fail with `VMNET_FAILURE` (1001).
    Unprivileged,
    /// Missing authorization: starts fail with `VMNET_NOT_AUTHORIZED` (1010).
    NotAuthorized,
}

/// Every setting of [`super::SimVmnet`]. Defaults follow vmnet.md's observed macOS 26.2 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmnetKnobs {
    /// Delay from `start_interface` to its completion.
    pub start_delay_ns: u64,
    /// Extra uniform random delay added to each start, `0..=start_delay_jitter_ns`.
    pub start_delay_jitter_ns: u64,
    /// Delay from `stop_interface` to its completion.
    pub stop_delay_ns: u64,
    /// `vmnet_read_max_packets`: 256 observed, 200 documented.
    pub read_packets_max: u32,
    /// `vmnet_write_max_packets`: 256 observed, 200 documented.
    pub write_packets_max: u32,
    /// Bytes per call (256 KB documented). `None`: no byte limit. Reads stop filling before it;
    /// writes over it fail (code UNCONFIRMED).
    pub bytes_per_call_max: Option<u32>,
    /// Whether the parameters carry the read/write max-packets keys (macOS 15+).
    pub report_max_packets_keys: bool,
    /// What an over-limit descriptor count does.
    pub over_limit: OverLimit,
    /// What a too-small read buffer does.
    pub short_read_buffer: ShortReadBuffer,
    /// Edge or level events.
    pub event_trigger: EventTrigger,
    /// How accurate event estimates are.
    pub estimate: Estimate,
    /// Frames an interface's kernel transmit buffer holds before writes fail with
    /// `VMNET_BUFFER_EXHAUSTED`. Drained on every `advance`.
    pub tx_buffer_frames_max: usize,
    /// Frames waiting to be read per interface; arrivals beyond it are dropped and counted.
    pub rx_buffer_frames_max: usize,
    /// Frames waiting at each network's host side; arrivals beyond it are dropped and counted.
    pub host_buffer_frames_max: usize,
    /// Addresses each network's switch learns.
    pub fdb_entries_max: usize,
    /// Live interfaces in total (documented 32).
    pub interfaces_max: u32,
    /// Live interfaces per guest (documented 4).
    pub interfaces_per_guest_max: u32,
    /// The status of a start over `interfaces_max`. UNCONFIRMED: vmnet.md documents the limit,
    /// not its code; `VMNET_FAILURE` (general failure) is the closest documented one.
    pub too_many_interfaces_status: VmnetReturn,
    /// The status of a start over `interfaces_per_guest_max`. UNCONFIRMED, as above.
    pub too_many_for_guest_status: VmnetReturn,
    /// The status of I/O on a stopped interface. UNCONFIRMED; vmnet.md says only that it fails.
    pub after_stop_status: VmnetReturn,
    /// Who the caller is.
    pub access: Access,
    /// The names `vmnet_copy_shared_interface_list` returns (bridgeable interfaces).
    pub bridgeable_interfaces: Vec<String>,
    /// Shared mode's subnet (default 192.168.64.0/24, gateway .1).
    pub shared_subnet: Ipv4Subnet,
    /// Host mode's subnet (UNCONFIRMED default).
    pub host_subnet: Ipv4Subnet,
    /// Where the source-IPv4 rule applies. IPv6 is never filtered (UNCONFIRMED, vmnet.md §8
    /// Q7); neither are ARP and other non-IPv4 frames, nor DHCP's unspecified source 0.0.0.0.
    pub source_ip_rule: SourceIpRules,
}

impl VmnetKnobs {
    /// The defaults, but with the per-call packet limits Apple documents (200) instead of the
    /// 256 observed on macOS 26.2.
    pub fn documented() -> Self {
        Self {
            read_packets_max: PACKETS_PER_CALL_MAX_DOCUMENTED,
            write_packets_max: PACKETS_PER_CALL_MAX_DOCUMENTED,
            ..Self::default()
        }
    }
}

impl Default for VmnetKnobs {
    fn default() -> Self {
        Self {
            start_delay_ns: 2_000_000,
            start_delay_jitter_ns: 0,
            stop_delay_ns: 1_000_000,
            read_packets_max: PACKETS_PER_CALL_MAX_OBSERVED,
            write_packets_max: PACKETS_PER_CALL_MAX_OBSERVED,
            bytes_per_call_max: Some(BYTES_PER_CALL_MAX_DOCUMENTED),
            report_max_packets_keys: true,
            over_limit: OverLimit::Reject,
            short_read_buffer: ShortReadBuffer::Truncate,
            event_trigger: EventTrigger::Edge,
            estimate: Estimate::Exact,
            tx_buffer_frames_max: 1024,
            rx_buffer_frames_max: 1024,
            host_buffer_frames_max: 4096,
            fdb_entries_max: 1024,
            interfaces_max: INTERFACES_MAX,
            interfaces_per_guest_max: INTERFACES_PER_GUEST_MAX,
            too_many_interfaces_status: VmnetReturn::Failure,
            too_many_for_guest_status: VmnetReturn::Failure,
            after_stop_status: VmnetReturn::InvalidArgument,
            access: Access::Privileged,
            bridgeable_interfaces: vec!["en0".to_owned()],
            shared_subnet: SHARED_SUBNET_DEFAULT,
            host_subnet: HOST_SUBNET_DEFAULT,
            source_ip_rule: SourceIpRules::default(),
        }
    }
}
