//! The vmnet model: vmnet.framework's numbers, lifecycle and data plane, deterministic and
//! driven by the caller (vmnet.md §1, §7(a)).
//!
//! - [`types`]: `operating_modes_t`, `vmnet_return_t`, `interface_event_t`, limits, key
//!   strings, `vmpktdesc` layout, and one error type per operation.
//! - [`desc`]: `interface_desc`, `interface_param` and `struct vmpktdesc` as typed values.
//! - [`knobs`]: settings, including every UNCONFIRMED behaviour.
//! - [`model`]: [`SimVmnet`] itself.
//!
//! A run looks like vmnet's: [`SimVmnet::start_interface`] returns a handle at once;
//! [`SimVmnet::advance`] later delivers [`Notification::StartCompleted`] with the parameters;
//! the guest writes and reads in batches; events say packets are available; a stop completes
//! asynchronously too.

pub mod desc;
pub mod knobs;
pub mod model;
pub mod types;

pub use desc::{GuestId, InterfaceDesc, InterfaceParams, Iov, Ipv4Range, RxDesc, TxDesc, Uuid};
pub use knobs::{Access, Estimate, EventTrigger, OverLimit, ShortReadBuffer, VmnetKnobs};
pub use model::{
    mac_from_interface_id, HostSendError, InterfaceCounters, InterfaceHandle, NetworkKey,
    Notification, SimVmnet,
};
pub use types::*;

#[cfg(test)]
mod tests;
