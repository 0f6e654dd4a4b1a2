//! The driver's overrides of `IOUserNetworkEthernet` ([`EthernetDriver`]) and a scripted
//! implementation of them ([`FakeEthernetDriver`]).

use std::sync::Arc;

use crate::error::IoReturn;
use crate::link::{HardwareAssists, LinkStatus, MediaType};
use crate::ring::Ring;

use super::{LinkReporter, MacAddress, MTU_BYTES_DEFAULT, MULTICAST_LIST_MAX};

/// **Models:** the pure-virtual (and the optional) overrides of `IOUserNetworkEthernet`,
/// G1 names with G2 additions (ndk.md §2.1–2.2, §9.5):
/// `SetInterfaceEnable`, `SetPromiscuousModeEnable`, `SetAllMulticastModeEnable`,
/// `setMulticastAddresses`, `SelectMediaType` / `handleChosenMedia`,
/// `SetWakeOnMagicPacketEnable`, `SetMTU` / `GetMaxTransferUnit`,
/// `SetHardwareAssists` / `GetHardwareAssists` / `setHardwareAssists(assists, mask)`.
///
/// The methods a network dext overrides in its `IOUserNetworkEthernet` subclass: what the
/// framework calls when the OS stack changes the interface.
///
/// **Supported:** every method above. Results are `Ok(())` for `kIOReturnSuccess` or the
/// driver's `kern_return_t`; the framework passes that code on. Returning
/// `Err(IoReturn::Success)` is a driver bug and is reported as `kIOReturnError`.
/// [`EthernetDriver::set_interface_enable`] and the media methods get the
/// [`LinkReporter`], because drivers report link status from them (Apple's sample does).
///
/// **Rejected:** [`EthernetDriver::set_multicast_addresses`] has a default that refuses every
/// list with `kIOReturnUnsupported`, as RTL8127 found Apple's default does (the exact code is
/// UNCONFIRMED): a driver that wants multicast must override it. Not modelled (no method):
/// `processInterfaceCommand`, `bpf*`, `get/setHardwareAddress`, `getSupportedMediaArray` /
/// `getInitialMedia` (use [`LinkReporter::report_available_media_types`]), `SetPowerState`,
/// NIC proxy.
///
/// The trait is object-safe; the framework calls it as `&mut dyn EthernetDriver`.
pub trait EthernetDriver {
    /// `SetInterfaceEnable(isEnable)` / `setInterfaceEnable`: follows `ifconfig up/down`.
    /// The driver enables or disables its four queues and usually reports link status.
    ///
    /// # Errors
    /// The driver's code.
    fn set_interface_enable(
        &mut self,
        link: &mut LinkReporter,
        enable: bool,
    ) -> Result<(), IoReturn>;

    /// `SetPromiscuousModeEnable(enable)`.
    ///
    /// # Errors
    /// The driver's code.
    fn set_promiscuous_mode_enable(&mut self, enable: bool) -> Result<(), IoReturn>;

    /// `SetAllMulticastModeEnable(enable)`.
    ///
    /// # Errors
    /// The driver's code.
    fn set_all_multicast_mode_enable(&mut self, enable: bool) -> Result<(), IoReturn>;

    /// `setMulticastAddresses(addresses, count)`: the full list of groups to receive
    /// (replaces the previous one). At most [`MULTICAST_LIST_MAX`] entries, all multicast.
    ///
    /// # Errors
    /// The default refuses with `kIOReturnUnsupported` (UNCONFIRMED code; see the trait docs).
    fn set_multicast_addresses(&mut self, _addresses: &[MacAddress]) -> Result<(), IoReturn> {
        Err(IoReturn::Unsupported)
    }

    /// `SelectMediaType(mediaType)`: the user picked a media type. The driver maps `Auto` to
    /// a concrete type and reports link status. `media` is always one of the available media.
    ///
    /// # Errors
    /// The driver's code.
    fn select_media(&mut self, link: &mut LinkReporter, media: MediaType) -> Result<(), IoReturn>;

    /// `handleChosenMedia(media)`, the G2 name of the same request. Defaults to
    /// [`EthernetDriver::select_media`].
    ///
    /// # Errors
    /// The driver's code.
    fn handle_chosen_media(
        &mut self,
        link: &mut LinkReporter,
        media: MediaType,
    ) -> Result<(), IoReturn> {
        self.select_media(link, media)
    }

    /// `SetWakeOnMagicPacketEnable(enable)`.
    ///
    /// # Errors
    /// The driver's code.
    fn set_wake_on_magic_packet_enable(&mut self, enable: bool) -> Result<(), IoReturn>;

    /// `GetMaxTransferUnit` / `getMaxTransferUnit`: the largest MTU the driver supports, in
    /// bytes (Apple's sample returns 9000).
    fn mtu_bytes_max(&self) -> u32;

    /// `SetMTU(mtu)` / `setMaxTransferUnit`: `mtu_bytes` is already within
    /// [`super::MTU_BYTES_MIN`]..=[`EthernetDriver::mtu_bytes_max`].
    ///
    /// # Errors
    /// The driver's code.
    fn set_mtu(&mut self, mtu_bytes: u32) -> Result<(), IoReturn>;

    /// `GetHardwareAssists` / `getHardwareAssists`: the assists the driver offers (Apple's
    /// sample returns 0).
    fn hardware_assists(&self) -> HardwareAssists;

    /// `setHardwareAssists(assists, mask)` (DriverKit 22+): turn the assists in `mask` on or
    /// off as `assists` says; leave the others. The G1 `SetHardwareAssists(assists)` arrives
    /// here with `mask` = all bits.
    ///
    /// # Errors
    /// The driver's code.
    fn set_hardware_assists(
        &mut self,
        assists: HardwareAssists,
        mask: HardwareAssists,
    ) -> Result<(), IoReturn>;
}

/// One call the framework made into a [`FakeEthernetDriver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverCall {
    /// [`EthernetDriver::set_interface_enable`].
    SetInterfaceEnable(bool),
    /// [`EthernetDriver::set_promiscuous_mode_enable`].
    SetPromiscuousModeEnable(bool),
    /// [`EthernetDriver::set_all_multicast_mode_enable`].
    SetAllMulticastModeEnable(bool),
    /// [`EthernetDriver::set_multicast_addresses`], with the list's length.
    SetMulticastAddresses {
        /// Entries in the list.
        count: usize,
    },
    /// [`EthernetDriver::select_media`].
    SelectMedia(MediaType),
    /// [`EthernetDriver::handle_chosen_media`].
    HandleChosenMedia(MediaType),
    /// [`EthernetDriver::set_wake_on_magic_packet_enable`].
    SetWakeOnMagicPacketEnable(bool),
    /// [`EthernetDriver::set_mtu`].
    SetMtu {
        /// The MTU asked for.
        mtu_bytes: u32,
    },
    /// [`EthernetDriver::set_hardware_assists`].
    SetHardwareAssists {
        /// The values.
        assists: HardwareAssists,
        /// Which assists to change.
        mask: HardwareAssists,
    },
}

impl DriverCall {
    /// Which method this was.
    pub fn kind(&self) -> DriverCallKind {
        match self {
            DriverCall::SetInterfaceEnable(_) => DriverCallKind::SetInterfaceEnable,
            DriverCall::SetPromiscuousModeEnable(_) => DriverCallKind::SetPromiscuousModeEnable,
            DriverCall::SetAllMulticastModeEnable(_) => DriverCallKind::SetAllMulticastModeEnable,
            DriverCall::SetMulticastAddresses { .. } => DriverCallKind::SetMulticastAddresses,
            DriverCall::SelectMedia(_) => DriverCallKind::SelectMedia,
            DriverCall::HandleChosenMedia(_) => DriverCallKind::HandleChosenMedia,
            DriverCall::SetWakeOnMagicPacketEnable(_) => DriverCallKind::SetWakeOnMagicPacketEnable,
            DriverCall::SetMtu { .. } => DriverCallKind::SetMtu,
            DriverCall::SetHardwareAssists { .. } => DriverCallKind::SetHardwareAssists,
        }
    }
}

/// The overridable methods of [`EthernetDriver`] that can fail, for scripting failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverCallKind {
    /// [`EthernetDriver::set_interface_enable`].
    SetInterfaceEnable = 0,
    /// [`EthernetDriver::set_promiscuous_mode_enable`].
    SetPromiscuousModeEnable = 1,
    /// [`EthernetDriver::set_all_multicast_mode_enable`].
    SetAllMulticastModeEnable = 2,
    /// [`EthernetDriver::set_multicast_addresses`].
    SetMulticastAddresses = 3,
    /// [`EthernetDriver::select_media`].
    SelectMedia = 4,
    /// [`EthernetDriver::handle_chosen_media`].
    HandleChosenMedia = 5,
    /// [`EthernetDriver::set_wake_on_magic_packet_enable`].
    SetWakeOnMagicPacketEnable = 6,
    /// [`EthernetDriver::set_mtu`].
    SetMtu = 7,
    /// [`EthernetDriver::set_hardware_assists`].
    SetHardwareAssists = 8,
}

impl DriverCallKind {
    /// How many kinds there are.
    pub const COUNT: usize = 9;
}

/// Most calls a [`FakeEthernetDriver`] keeps in its log; later ones are only counted.
pub const FAKE_CALL_LOG_MAX: usize = 4096;

/// Default [`FakeEthernetDriver`] MTU limit: 9000 bytes, what Apple's sample returns.
pub const FAKE_MTU_BYTES_MAX_DEFAULT: u32 = 9000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScriptedFailure {
    code: IoReturn,
    once: bool,
}

/// **Models:** a driver's `IOUserNetworkEthernet` subclass, shaped like Apple's
/// `NetworkingDriverKitSample` (ndk.md §6a).
///
/// A scripted [`EthernetDriver`] for tests and the simulator: it records every call, keeps
/// the state a simple driver would, and fails chosen calls with chosen codes.
///
/// **Supported:**
/// - every [`EthernetDriver`] method, logged as a [`DriverCall`] (up to
///   [`FAKE_CALL_LOG_MAX`], then counted in [`FakeEthernetDriver::calls_dropped`]);
/// - scripted failures: [`FakeEthernetDriver::fail_next`] (once) and
///   [`FakeEthernetDriver::fail_always`]; a failed call is logged and changes no state;
/// - like the sample: on enable it reports the scripted link status
///   ([`FakeEthernetDriver::with_link_on_enable`]) and enables the queue rings it was given
///   ([`FakeEthernetDriver::with_queue_rings`]), and disables them on disable; media
///   selection maps `Auto` to [`FakeEthernetDriver::with_auto_media`] and re-reports link
///   while enabled.
///
/// **Rejected:** with [`FakeEthernetDriver::without_multicast_override`] it behaves as a
/// driver that does not override `setMulticastAddresses` (`kIOReturnUnsupported`).
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "a fake mirrors the driver's independent on/off switches one field each"
)]
pub struct FakeEthernetDriver {
    mtu_bytes_max: u32,
    assists_offered: HardwareAssists,
    link_on_enable: Option<(LinkStatus, MediaType)>,
    auto_media: MediaType,
    overrides_multicast: bool,
    queue_rings: heapless::Vec<Arc<Ring<u32>>, 4>,
    failures: [Option<ScriptedFailure>; DriverCallKind::COUNT],
    calls: Vec<DriverCall>,
    calls_dropped: u64,
    enabled: bool,
    promiscuous: bool,
    all_multicast: bool,
    wake_on_magic_packet: bool,
    mtu_bytes: u32,
    assists_enabled: HardwareAssists,
    multicast: heapless::Vec<MacAddress, MULTICAST_LIST_MAX>,
    media: Option<MediaType>,
}

impl Default for FakeEthernetDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeEthernetDriver {
    /// A fake with MTU limit [`FAKE_MTU_BYTES_MAX_DEFAULT`], no hardware assists, no link
    /// report on enable, `Auto` → 1000BaseT, the multicast override present, no queue rings.
    pub fn new() -> Self {
        Self {
            mtu_bytes_max: FAKE_MTU_BYTES_MAX_DEFAULT,
            assists_offered: HardwareAssists::empty(),
            link_on_enable: None,
            auto_media: MediaType::ETHERNET_1000BASE_T,
            overrides_multicast: true,
            queue_rings: heapless::Vec::new(),
            failures: [None; DriverCallKind::COUNT],
            calls: Vec::new(),
            calls_dropped: 0,
            enabled: false,
            promiscuous: false,
            all_multicast: false,
            wake_on_magic_packet: false,
            mtu_bytes: MTU_BYTES_DEFAULT,
            assists_enabled: HardwareAssists::empty(),
            multicast: heapless::Vec::new(),
            media: None,
        }
    }

    /// Sets what [`EthernetDriver::mtu_bytes_max`] returns.
    #[must_use]
    pub fn with_mtu_bytes_max(mut self, mtu_bytes_max: u32) -> Self {
        self.mtu_bytes_max = mtu_bytes_max;
        self
    }

    /// Sets what [`EthernetDriver::hardware_assists`] returns.
    #[must_use]
    pub fn with_hardware_assists(mut self, offered: HardwareAssists) -> Self {
        self.assists_offered = offered;
        self
    }

    /// Reports `status` with `media` from `set_interface_enable(true)`, as the sample does
    /// with `(Active, 1000BaseT)`; media selection re-reports `status` while enabled.
    #[must_use]
    pub fn with_link_on_enable(mut self, status: LinkStatus, media: MediaType) -> Self {
        self.link_on_enable = Some((status, media));
        self
    }

    /// The concrete media `Auto` maps to in media selection.
    #[must_use]
    pub fn with_auto_media(mut self, media: MediaType) -> Self {
        self.auto_media = media;
        self
    }

    /// Behave like a driver that does not override `setMulticastAddresses`.
    #[must_use]
    pub fn without_multicast_override(mut self) -> Self {
        self.overrides_multicast = false;
        self
    }

    /// The four queue rings to enable and disable with the interface, as real drivers do
    /// from `SetInterfaceEnable`.
    #[must_use]
    pub fn with_queue_rings(mut self, rings: [Arc<Ring<u32>>; 4]) -> Self {
        self.queue_rings = heapless::Vec::from_iter(rings);
        self
    }

    /// Fails the next call of `kind` with `code` (once).
    ///
    /// # Panics
    /// If `code` is `Success` (a test bug).
    pub fn fail_next(&mut self, kind: DriverCallKind, code: IoReturn) {
        assert_ne!(code, IoReturn::Success, "a failure needs an error code");
        self.failures[kind as usize] = Some(ScriptedFailure { code, once: true });
    }

    /// Fails every call of `kind` with `code` until [`FakeEthernetDriver::clear_failure`].
    ///
    /// # Panics
    /// If `code` is `Success` (a test bug).
    pub fn fail_always(&mut self, kind: DriverCallKind, code: IoReturn) {
        assert_ne!(code, IoReturn::Success, "a failure needs an error code");
        self.failures[kind as usize] = Some(ScriptedFailure { code, once: false });
    }

    /// Stops failing calls of `kind`.
    pub fn clear_failure(&mut self, kind: DriverCallKind) {
        self.failures[kind as usize] = None;
    }

    /// Every logged call, oldest first.
    pub fn calls(&self) -> &[DriverCall] {
        &self.calls
    }

    /// How many logged calls were of `kind`.
    pub fn calls_of(&self, kind: DriverCallKind) -> usize {
        self.calls.iter().filter(|c| c.kind() == kind).count()
    }

    /// Takes the log, leaving it empty.
    pub fn take_calls(&mut self) -> Vec<DriverCall> {
        std::mem::take(&mut self.calls)
    }

    /// Calls not logged because the log was full.
    pub fn calls_dropped(&self) -> u64 {
        self.calls_dropped
    }

    /// Whether the interface is enabled, from the driver's point of view.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Promiscuous mode.
    pub fn is_promiscuous(&self) -> bool {
        self.promiscuous
    }

    /// All-multicast mode.
    pub fn is_all_multicast(&self) -> bool {
        self.all_multicast
    }

    /// Wake on magic packet.
    pub fn is_wake_on_magic_packet_enabled(&self) -> bool {
        self.wake_on_magic_packet
    }

    /// The MTU last set (starts at [`MTU_BYTES_DEFAULT`]).
    pub fn mtu_bytes(&self) -> u32 {
        self.mtu_bytes
    }

    /// The assists switched on.
    pub fn hardware_assists_enabled(&self) -> HardwareAssists {
        self.assists_enabled
    }

    /// The multicast list last accepted.
    pub fn multicast_addresses(&self) -> &[MacAddress] {
        &self.multicast
    }

    /// The media last selected (with `Auto` already mapped).
    pub fn media(&self) -> Option<MediaType> {
        self.media
    }

    /// Logs `call` and returns the scripted failure for it, if any.
    fn enter(&mut self, call: DriverCall) -> Result<(), IoReturn> {
        if self.calls.len() < FAKE_CALL_LOG_MAX {
            self.calls.push(call);
        } else {
            self.calls_dropped += 1;
        }
        let slot = &mut self.failures[call.kind() as usize];
        match *slot {
            Some(ScriptedFailure { code, once }) => {
                if once {
                    *slot = None;
                }
                Err(code)
            }
            None => Ok(()),
        }
    }

    fn choose_media(&mut self, link: &mut LinkReporter, media: MediaType) -> Result<(), IoReturn> {
        let chosen = if media.is_auto() {
            self.auto_media
        } else {
            media
        };
        if let (true, Some((status, _))) = (self.enabled, self.link_on_enable) {
            link.report_link_status(status, chosen)?;
        }
        self.media = Some(chosen);
        Ok(())
    }
}

impl EthernetDriver for FakeEthernetDriver {
    fn set_interface_enable(
        &mut self,
        link: &mut LinkReporter,
        enable: bool,
    ) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetInterfaceEnable(enable))?;
        if enable {
            if let Some((status, media)) = self.link_on_enable {
                link.report_link_status(status, media)?;
                self.media = Some(media);
            }
        }
        for ring in &self.queue_rings {
            ring.set_enabled(enable);
        }
        self.enabled = enable;
        Ok(())
    }

    fn set_promiscuous_mode_enable(&mut self, enable: bool) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetPromiscuousModeEnable(enable))?;
        self.promiscuous = enable;
        Ok(())
    }

    fn set_all_multicast_mode_enable(&mut self, enable: bool) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetAllMulticastModeEnable(enable))?;
        self.all_multicast = enable;
        Ok(())
    }

    fn set_multicast_addresses(&mut self, addresses: &[MacAddress]) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetMulticastAddresses {
            count: addresses.len(),
        })?;
        if !self.overrides_multicast {
            return Err(IoReturn::Unsupported);
        }
        // The framework bounds the list, so this only fails for a direct caller.
        self.multicast = heapless::Vec::from_slice(addresses).map_err(|_| IoReturn::NoSpace)?;
        Ok(())
    }

    fn select_media(&mut self, link: &mut LinkReporter, media: MediaType) -> Result<(), IoReturn> {
        self.enter(DriverCall::SelectMedia(media))?;
        self.choose_media(link, media)
    }

    fn handle_chosen_media(
        &mut self,
        link: &mut LinkReporter,
        media: MediaType,
    ) -> Result<(), IoReturn> {
        self.enter(DriverCall::HandleChosenMedia(media))?;
        self.choose_media(link, media)
    }

    fn set_wake_on_magic_packet_enable(&mut self, enable: bool) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetWakeOnMagicPacketEnable(enable))?;
        self.wake_on_magic_packet = enable;
        Ok(())
    }

    fn mtu_bytes_max(&self) -> u32 {
        self.mtu_bytes_max
    }

    fn set_mtu(&mut self, mtu_bytes: u32) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetMtu { mtu_bytes })?;
        self.mtu_bytes = mtu_bytes;
        Ok(())
    }

    fn hardware_assists(&self) -> HardwareAssists {
        self.assists_offered
    }

    fn set_hardware_assists(
        &mut self,
        assists: HardwareAssists,
        mask: HardwareAssists,
    ) -> Result<(), IoReturn> {
        self.enter(DriverCall::SetHardwareAssists { assists, mask })?;
        self.assists_enabled = (self.assists_enabled & !mask) | (assists & mask);
        Ok(())
    }
}
