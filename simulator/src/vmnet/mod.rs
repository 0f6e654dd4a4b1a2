//! The vmnet model: vmnet.framework's numbers, lifecycle and data plane, deterministic and
//! driven by the caller (vmnet.md §1, §7(a)).
//!
//! - [`types`]: `operating_modes_t`, `vmnet_return_t`, `interface_event_t`, limits, key
//!   strings, `vmpktdesc` layout, and one error type per operation.
//! - [`desc`]: `interface_desc`, `interface_param` and `struct vmpktdesc` as typed values.
//! - [`knobs`]: settings, including every UNCONFIRMED behaviour.
//! - [`model`]: [`SimVmnet`] itself, with the source-IPv4 rule ([`SimVmnet::set_lease`]) and
//!   the macOS 26 network objects ([`SimVmnet::network_create`],
//!   [`SimVmnet::interface_start_with_network`]).
//!
//! A run looks like vmnet's: [`SimVmnet::start_interface`] returns a handle at once;
//! [`SimVmnet::advance`] later delivers [`Notification::StartCompleted`] with the parameters;
//! the guest writes and reads in batches; events say packets are available; a stop completes
//! asynchronously too.

pub mod desc;
pub mod knobs;
pub mod model;
mod source_ip;
pub mod types;

pub use desc::{GuestId, InterfaceDesc, InterfaceParams, Iov, Ipv4Range, RxDesc, TxDesc, Uuid};
pub use knobs::{
    Access, Estimate, EventTrigger, OverLimit, ShortReadBuffer, SourceIpRule, SourceIpRules,
    VmnetKnobs,
};
pub use model::{
    mac_from_interface_id, HostSendError, InterfaceCounters, InterfaceHandle, NetworkKey,
    NetworkRef, NetworkSerialization, Notification, SimVmnet, LEASES_PER_NETWORK_MAX,
    NETWORK_SERIALIZATION_MAGIC,
};
pub use types::*;

#[cfg(test)]
mod tests;
