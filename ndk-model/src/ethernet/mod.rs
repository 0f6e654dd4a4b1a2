//! The Ethernet service, `IOUserNetworkEthernet`: the driver's overrides and the framework
//! side that registers the interface, records link reports and calls the driver.
//!
//! ```text
//!   driver (dext)                               framework (NDK + the OS stack)
//!   ───────────────                             ──────────────────────────────────────────
//!   Start: report_available_media_types ──────► EthernetService (LinkReporter state)
//!          register_ethernet_interface[_with_pools](mac, queues, pool[s])
//!                                        ──────► validates, attaches the SYSTEM halves
//!                                        ◄────── EthernetInterface { SystemQueues, … }
//!   impl EthernetDriver  ◄──────────────────── EthernetService::set_interface_enable(&mut drv, …)
//!        └─ link.report_link_status(…) ───────► recorded (or discarded before enable)
//! ```
//!
//! In Apple's system the driver *is* an `IOUserNetworkEthernet` subclass: it overrides the
//! pure virtuals and calls the inherited reporting methods on itself. The model splits that
//! object in two so each half can be borrowed on its own:
//!
//! - [`EthernetDriver`] is the override table (`SetInterfaceEnable`, `SetMTU`, …), implemented
//!   by the driver. [`FakeEthernetDriver`] is a scripted implementation for tests and the
//!   simulator.
//! - [`EthernetService`] is the superclass's state and the framework's entry points: setup
//!   calls made in `Start`, registration, the report calls (through [`LinkReporter`]), and the
//!   dispatch methods the simulated OS calls, each of which validates and then calls the
//!   driver's override. Overrides that Apple drivers report link from
//!   (enable, media selection) receive `&mut LinkReporter`.
//!
//! API generations (ndk.md §0.1): registration has the G1 one-pool form
//! ([`EthernetService::register_ethernet_interface`]) and the DriverKit 24 two-pool form
//! ([`EthernetService::register_ethernet_interface_with_pools`]); the override names follow
//! G1 with the G2 additions (`setHardwareAssists(assists, mask)`, `handleChosenMedia`).
//! The data-path notifications of each generation live in [`crate::actions`].
//!
//! Codes: where ndk.md gives no code for a rejection, the one chosen is marked UNCONFIRMED
//! on its `From<…> for IoReturn` impl.

mod driver;
mod report;
mod service;

#[cfg(all(test, not(loom)))]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::error::IoReturn;

pub use driver::{
    DriverCall, DriverCallKind, EthernetDriver, FakeEthernetDriver, FAKE_CALL_LOG_MAX,
    FAKE_MTU_BYTES_MAX_DEFAULT,
};
pub use report::{
    DataBandwidths, LinkReport, LinkReporter, LinkStatusBeforeEnable, ReportBandwidthsError,
    ReportLinkQualityError, ReportLinkStatusError, ReportMediaError,
};
pub use service::{
    ControlError, EthernetInterface, EthernetService, EthernetServiceConfig, PacketQueue,
    RegisterError, RegistrationForm, SelectMediaError, SetHardwareAssistsError, SetMtuError,
    SetMulticastError, SetupError, SystemQueues, WakeOnMagicPacketError,
};

/// Most multicast addresses the framework keeps and passes to
/// [`EthernetDriver::set_multicast_addresses`] (ours; Apple's limit is UNCONFIRMED). Longer
/// lists are rejected with [`SetMulticastError::TooMany`].
pub const MULTICAST_LIST_MAX: usize = 64;

/// Most media words [`LinkReporter::report_available_media_types`] accepts (ours; Apple's
/// limit is UNCONFIRMED). ndk.md §1.5 lists 48 Ethernet subtypes.
pub const MEDIA_LIST_MAX: usize = 64;

/// `IF_MINMTU` from xnu `net/if.h` (72: a TCP/IP header plus the minimum MSS). The stack
/// refuses smaller MTUs before the driver sees them.
pub const MTU_BYTES_MIN: u32 = 72;

/// `IF_MAXMTU` from xnu `net/if.h` (65535).
pub const MTU_BYTES_MAX: u32 = 65_535;

/// `ETHERMTU` (1500): the MTU an Ethernet interface starts with.
pub const MTU_BYTES_DEFAULT: u32 = 1500;

/// **Models:** `ether_addr_t` / `IOUserNetworkMACAddress` (`uint8_t octet[6]`).
///
/// An Ethernet MAC address: `ether_addr_t` (`IOUserNetworkMACAddress` before DriverKit 21).
///
/// **Supported:** the six octets, group (multicast) and broadcast tests, `aa:bb:cc:dd:ee:ff`
/// formatting and parsing.
///
/// **Rejected:** nothing at this level; [`EthernetService`] rejects a non-unicast interface
/// address and non-multicast entries in the multicast list.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Self = Self([0xff; 6]);
    /// `00:00:00:00:00:00`, which is no station's address.
    pub const ZERO: Self = Self([0; 6]);

    /// The address with these octets.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// The six octets.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Whether the group bit (bit 0 of the first octet) is set: multicast or broadcast.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub const fn is_broadcast(self) -> bool {
        let o = self.0;
        o[0] & o[1] & o[2] & o[3] & o[4] & o[5] == 0xff
    }

    /// Whether this can be a station's own address: not a group address and not all zeros.
    pub const fn is_unicast(self) -> bool {
        let o = self.0;
        !self.is_multicast() && (o[0] | o[1] | o[2] | o[3] | o[4] | o[5]) != 0
    }

    /// Whether the locally-administered bit (bit 1 of the first octet) is set.
    pub const fn is_locally_administered(self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddress {
    /// Lower-case, colon-separated: `10:22:33:44:55:66`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self})")
    }
}

/// A string that is not six colon-separated two-digit hex octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (expected six colon-separated hex octets, like 10:22:33:44:55:66)")]
pub struct ParseMacAddressError;

impl From<ParseMacAddressError> for IoReturn {
    fn from(_: ParseMacAddressError) -> Self {
        IoReturn::BadArgument
    }
}

impl FromStr for MacAddress {
    type Err = ParseMacAddressError;

    /// Parses `aa:bb:cc:dd:ee:ff` (either case; exactly two hex digits per octet).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or(ParseMacAddressError)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseMacAddressError);
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| ParseMacAddressError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacAddressError);
        }
        Ok(Self(octets))
    }
}
