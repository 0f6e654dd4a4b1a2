//! The framework side of `IOUserNetworkEthernet`: setup, registration, reports, and the
//! dispatch of OS requests to the driver's overrides.

use std::sync::Arc;

use crate::error::IoReturn;
use crate::link::{FeatureFlags, HardwareAssists, LinkQuality, LinkStatus, MediaType};
use crate::pool::PacketBufferPool;
use crate::queue::{
    DriverRole, QueueCreateError, QueueKind, QueueSink, QueueSource, SystemRxCompletion,
    SystemRxSubmission, SystemTxCompletion, SystemTxSubmission,
};
use crate::ring::Ring;

use super::{
    DataBandwidths, EthernetDriver, LinkReport, LinkReporter, LinkStatusBeforeEnable, MacAddress,
    ReportBandwidthsError, ReportLinkQualityError, ReportLinkStatusError, ReportMediaError,
    MTU_BYTES_DEFAULT, MTU_BYTES_MAX, MTU_BYTES_MIN, MULTICAST_LIST_MAX,
};

/// **Models:** the `IOUserNetworkPacketQueue **queues` array of
/// `RegisterEthernetInterface` / `registerEthernetInterface`.
///
/// A driver-side queue, as registration sees it: `IOUserNetworkPacketQueue *`.
///
/// **Supported:** the four G1 driver halves ([`crate::queue::RxSubmissionQueue`],
/// [`crate::queue::RxCompletionQueue`], [`crate::queue::TxSubmissionQueue`],
/// [`crate::queue::TxCompletionQueue`]) and the G3/G4 action queues of [`crate::actions`].
///
/// **Rejected:** system halves do not implement it, so passing one does not compile.
pub trait PacketQueue {
    /// Which of the four queues.
    fn kind(&self) -> QueueKind;
    /// The ring the two halves share; registration attaches the system half to it.
    fn ring(&self) -> &Arc<Ring<u32>>;
    /// The pool the queue's packets come from.
    fn pool(&self) -> &PacketBufferPool;
    /// Slots in the queue.
    fn capacity(&self) -> u32 {
        self.ring().capacity()
    }
}

impl<R: DriverRole> PacketQueue for QueueSource<R> {
    fn kind(&self) -> QueueKind {
        QueueSource::kind(self)
    }

    fn ring(&self) -> &Arc<Ring<u32>> {
        QueueSource::ring(self)
    }

    fn pool(&self) -> &PacketBufferPool {
        QueueSource::pool(self)
    }
}

impl<R: DriverRole> PacketQueue for QueueSink<R> {
    fn kind(&self) -> QueueKind {
        QueueSink::kind(self)
    }

    fn ring(&self) -> &Arc<Ring<u32>> {
        QueueSink::ring(self)
    }

    fn pool(&self) -> &PacketBufferPool {
        QueueSink::pool(self)
    }
}

/// Which registration call made an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationForm {
    /// G1 `RegisterEthernetInterface(mac, pool, queues, 4)`: one pool for everything.
    OnePool,
    /// DriverKit 24 `registerEthernetInterface(mac, queues, 4, txPool, rxPool)`.
    TxRxPools,
}

/// **Models:** the framework's end of the four NDK queues after `RegisterEthernetInterface`
/// (the kernel-side `IOSkywalk*Queue` objects, ndk.md §5.2).
///
/// The system halves of the four queues, for the (simulated) OS stack.
///
/// **Supported:** posting Rx buffers and Tx frames, collecting Rx frames and Tx completions,
/// through the queue halves' own API.
///
/// **Rejected:** enabling or disabling a queue: only the driver's halves can
/// (`SetEnable` is a driver call).
#[derive(Debug)]
pub struct SystemQueues {
    /// Posts empty buffers to the driver.
    pub rx_submission: SystemRxSubmission,
    /// Collects received frames from the driver.
    pub rx_completion: SystemRxCompletion,
    /// Submits frames for the driver to send.
    pub tx_submission: SystemTxSubmission,
    /// Collects sent frames from the driver.
    pub tx_completion: SystemTxCompletion,
}

/// **Models:** the interface `RegisterEthernetInterface` creates in the kernel
/// (`_IOUserNetworkEthernetInterfaceDescriptor` plus the queues handed over).
///
/// A registered Ethernet interface: its address, its pools, and the system halves of its
/// queues.
///
/// **Supported:** the MAC address, which registration form was used, the Tx and Rx pools
/// (the same pool twice for [`RegistrationForm::OnePool`]), and [`SystemQueues`].
///
/// **Rejected:** a second interface on the same service (see
/// [`RegisterError::AlreadyRegistered`]).
#[derive(Debug)]
pub struct EthernetInterface {
    mac: MacAddress,
    form: RegistrationForm,
    tx_pool: PacketBufferPool,
    rx_pool: PacketBufferPool,
    queues: SystemQueues,
}

impl EthernetInterface {
    /// The station address.
    pub fn mac(&self) -> MacAddress {
        self.mac
    }

    /// Which registration call made it.
    pub fn form(&self) -> RegistrationForm {
        self.form
    }

    /// The pool Tx queues draw on.
    pub fn tx_pool(&self) -> &PacketBufferPool {
        &self.tx_pool
    }

    /// The pool Rx queues draw on.
    pub fn rx_pool(&self) -> &PacketBufferPool {
        &self.rx_pool
    }

    /// The system halves.
    pub fn queues(&self) -> &SystemQueues {
        &self.queues
    }

    /// The system halves, to move packets.
    pub fn queues_mut(&mut self) -> &mut SystemQueues {
        &mut self.queues
    }

    /// Gives up the interface for its system halves.
    pub fn into_queues(self) -> SystemQueues {
        self.queues
    }
}

/// Why `RegisterEthernetInterface` failed. Nothing was registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The service already has an interface. Apple's dext crashes on a second
    /// `RegisterEthernetInterface` (ndk.md §7.1, §8); the model refuses instead.
    #[error("an interface ({mac}) is already registered on this service")]
    AlreadyRegistered {
        /// The address of the registered interface.
        mac: MacAddress,
    },
    /// The station address is a group address or all zeros.
    #[error("{mac} cannot be a station address")]
    BadMacAddress {
        /// The address given.
        mac: MacAddress,
    },
    /// No queue of this kind was given (exactly one of each is needed).
    #[error("no {kind:?} queue")]
    MissingQueue {
        /// The missing kind.
        kind: QueueKind,
    },
    /// A second queue of this kind was given.
    #[error("more than one {kind:?} queue")]
    DuplicateQueue {
        /// The repeated kind.
        kind: QueueKind,
    },
    /// The queue draws on another pool than the one registration names for it (G1: the one
    /// pool; G3: Tx queues on `txPool`, Rx queues on `rxPool`).
    #[error(
        "{kind:?} queue uses pool {queue_pool_id}, registration expects pool {expected_pool_id}"
    )]
    WrongPool {
        /// The queue.
        kind: QueueKind,
        /// Its pool.
        queue_pool_id: u32,
        /// The pool it should use.
        expected_pool_id: u32,
    },
    /// The pool has fewer packets than the queues drawing on it have slots (Apple: "the pool
    /// must be large enough for every packet in the Tx and Rx queues").
    #[error("pool {pool_id} has {packet_count} packets for {queue_slots} queue slots")]
    PoolTooSmall {
        /// The pool.
        pool_id: u32,
        /// Its packets.
        packet_count: u32,
        /// Slots of the queues drawing on it.
        queue_slots: u64,
    },
    /// The system half of a queue could not be attached (it is already taken). The system
    /// halves are attached in [`QueueKind`] order after every other check passed; the halves
    /// attached before the failing one are dropped again, which releases their claims.
    #[error("cannot attach the system half of the {kind:?} queue")]
    SystemHalf {
        /// The queue.
        kind: QueueKind,
        /// Why.
        #[source]
        source: QueueCreateError,
    },
}

impl From<&RegisterError> for IoReturn {
    fn from(e: &RegisterError) -> Self {
        match e {
            // UNCONFIRMED: Apple's dext crashes; "unsupported" states the model's rule.
            RegisterError::AlreadyRegistered { .. } => IoReturn::Unsupported,
            RegisterError::SystemHalf { source, .. } => IoReturn::from(source),
            // Queue count and kinds: kIOReturnBadArgument. Pool membership, pool size and the
            // station address: UNCONFIRMED, reported as bad arguments too.
            RegisterError::BadMacAddress { .. }
            | RegisterError::MissingQueue { .. }
            | RegisterError::DuplicateQueue { .. }
            | RegisterError::WrongPool { .. }
            | RegisterError::PoolTooSmall { .. } => IoReturn::BadArgument,
        }
    }
}

impl From<RegisterError> for IoReturn {
    fn from(e: RegisterError) -> Self {
        IoReturn::from(&e)
    }
}

/// Why a `Start`-time setup call (`SetTxPacketHeadroom`, `SetWakeOnMagicPacketSupport`, …)
/// was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// Setup calls belong before `RegisterEthernetInterface` (ndk.md §2.3).
    #[error("setup calls must come before the interface is registered")]
    AlreadyRegistered,
}

impl From<SetupError> for IoReturn {
    fn from(_: SetupError) -> Self {
        // UNCONFIRMED: Apple documents the order, not a code for breaking it.
        IoReturn::NotPermitted
    }
}

/// Why an on/off request (`SetInterfaceEnable`, `SetPromiscuousModeEnable`,
/// `SetAllMulticastModeEnable`) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No interface is registered, so the OS cannot address it.
    #[error("no interface is registered")]
    NotRegistered,
    /// The driver's override returned this code.
    #[error("the driver refused: {0}")]
    Driver(IoReturn),
}

impl From<ControlError> for IoReturn {
    fn from(e: ControlError) -> Self {
        match e {
            // UNCONFIRMED: unreachable in Apple's system (the OS only calls a registered
            // interface).
            ControlError::NotRegistered => IoReturn::NotReady,
            ControlError::Driver(code) => code,
        }
    }
}

/// Why `setMulticastAddresses` failed. The previous list stays in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetMulticastError {
    /// No interface is registered.
    #[error("no interface is registered")]
    NotRegistered,
    /// More than [`MULTICAST_LIST_MAX`] addresses.
    #[error("{count} multicast addresses; at most {MULTICAST_LIST_MAX} are kept")]
    TooMany {
        /// Addresses given.
        count: usize,
    },
    /// An entry is not a multicast group address (unicast, or broadcast).
    #[error("entry {index} ({address}) is not a multicast group address")]
    NotMulticast {
        /// Its position in the list.
        index: usize,
        /// The address.
        address: MacAddress,
    },
    /// The driver's override returned this code (the default override refuses with
    /// `kIOReturnUnsupported`).
    #[error("the driver refused: {0}")]
    Driver(IoReturn),
}

impl From<SetMulticastError> for IoReturn {
    fn from(e: SetMulticastError) -> Self {
        match e {
            // UNCONFIRMED, as for ControlError.
            SetMulticastError::NotRegistered => IoReturn::NotReady,
            // UNCONFIRMED: our bound; Apple's limit and code are unknown.
            SetMulticastError::TooMany { .. } => IoReturn::NoSpace,
            // UNCONFIRMED.
            SetMulticastError::NotMulticast { .. } => IoReturn::BadArgument,
            SetMulticastError::Driver(code) => code,
        }
    }
}

/// Why `SelectMediaType` / `handleChosenMedia` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectMediaError {
    /// No interface is registered.
    #[error("no interface is registered")]
    NotRegistered,
    /// The media was not in the driver's available-media list.
    #[error("media {media} is not among the available media")]
    NotAvailable {
        /// The media asked for.
        media: MediaType,
    },
    /// The driver's override returned this code.
    #[error("the driver refused: {0}")]
    Driver(IoReturn),
}

impl From<SelectMediaError> for IoReturn {
    fn from(e: SelectMediaError) -> Self {
        match e {
            // UNCONFIRMED, as for ControlError.
            SelectMediaError::NotRegistered => IoReturn::NotReady,
            // UNCONFIRMED: Settings only offers available media, so Apple's code is unknown.
            SelectMediaError::NotAvailable { .. } => IoReturn::BadArgument,
            SelectMediaError::Driver(code) => code,
        }
    }
}

/// Why `SetWakeOnMagicPacketEnable` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WakeOnMagicPacketError {
    /// No interface is registered.
    #[error("no interface is registered")]
    NotRegistered,
    /// The driver did not call `SetWakeOnMagicPacketSupport(true)` in `Start`.
    #[error("wake on magic packet was not advertised")]
    NotSupported,
    /// The driver's override returned this code.
    #[error("the driver refused: {0}")]
    Driver(IoReturn),
}

impl From<WakeOnMagicPacketError> for IoReturn {
    fn from(e: WakeOnMagicPacketError) -> Self {
        match e {
            // UNCONFIRMED, as for ControlError.
            WakeOnMagicPacketError::NotRegistered => IoReturn::NotReady,
            // UNCONFIRMED: the stack probably never asks; the code is a guess.
            WakeOnMagicPacketError::NotSupported => IoReturn::Unsupported,
            WakeOnMagicPacketError::Driver(code) => code,
        }
    }
}

/// Why `SetMTU` / `setMaxTransferUnit` failed. The MTU is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetMtuError {
    /// No interface is registered.
    #[error("no interface is registered")]
    NotRegistered,
    /// Below [`MTU_BYTES_MIN`], or above the driver's `GetMaxTransferUnit` (or
    /// [`MTU_BYTES_MAX`]).
    #[error("MTU {mtu_bytes} is outside {mtu_bytes_min}..={mtu_bytes_max}")]
    OutOfRange {
        /// The MTU asked for.
        mtu_bytes: u32,
        /// The smallest allowed.
        mtu_bytes_min: u32,
        /// The largest allowed.
        mtu_bytes_max: u32,
    },
    /// The driver's override returned this code.
    #[error("the driver refused: {0}")]
    Driver(IoReturn),
}

impl From<SetMtuError> for IoReturn {
    fn from(e: SetMtuError) -> Self {
        match e {
            // UNCONFIRMED, as for ControlError.
            SetMtuError::NotRegistered => IoReturn::NotReady,
            // xnu refuses IF_MINMTU/IF_MAXMTU violations with EINVAL; which kIOReturn the
            // driver-maximum check maps to is UNCONFIRMED.
            SetMtuError::OutOfRange { .. } => IoReturn::BadArgument,
            SetMtuError::Driver(code) => code,
        }
    }
}

/// Why `SetHardwareAssists` / `setHardwareAssists` failed. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetHardwareAssistsError {
    /// No interface is registered.
    #[error("no interface is registered")]
    NotRegistered,
    /// The request turns on assists the driver's `getHardwareAssists` does not offer.
    #[error("assists {requested:?} are not all offered ({offered:?})")]
    NotOffered {
        /// The assists the request turns on.
        requested: HardwareAssists,
        /// What the driver offers.
        offered: HardwareAssists,
    },
    /// The driver's override returned this code.
    #[error("the driver refused: {0}")]
    Driver(IoReturn),
}

impl From<SetHardwareAssistsError> for IoReturn {
    fn from(e: SetHardwareAssistsError) -> Self {
        match e {
            // UNCONFIRMED, as for ControlError.
            SetHardwareAssistsError::NotRegistered => IoReturn::NotReady,
            // UNCONFIRMED: the stack only asks for what was offered, so Apple's code is unknown.
            SetHardwareAssistsError::NotOffered { .. } => IoReturn::Unsupported,
            SetHardwareAssistsError::Driver(code) => code,
        }
    }
}

/// How to build an [`EthernetService`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthernetServiceConfig {
    /// What happens to a link status reported before the interface is enabled (UNCONFIRMED
    /// rule; default [`LinkStatusBeforeEnable::Discard`]).
    pub link_status_before_enable: LinkStatusBeforeEnable,
}

/// A driver's `Err(Success)` is a bug; pass it on as `kIOReturnError`.
fn driver_result(result: Result<(), IoReturn>) -> Result<(), IoReturn> {
    match result {
        Err(IoReturn::Success) => Err(IoReturn::Error),
        other => other,
    }
}

/// **Models:** `IOUserNetworkEthernet`, the part Apple implements: the `Start`-time setup
/// calls, `RegisterEthernetInterface` (G1) and `registerEthernetInterface(…, txPool, rxPool)`
/// (DriverKit 24), the report calls, and the kernel proxy that turns OS requests into calls
/// of the driver's overrides ([`EthernetDriver`]).
///
/// The framework side of one `IOUserNetworkEthernet` service.
///
/// **Supported:**
/// - setup before registration: `SetTxPacketHeadroom`, `SetTxPacketTailroom`,
///   `SetWakeOnMagicPacketSupport`, `SetSoftwareVlanSupport`, and the [`FeatureFlags`] they
///   imply (WOMP, SoftwareVlan; the mapping is UNCONFIRMED);
/// - registration in both forms: exactly one queue of each kind in any order, each on the
///   right pool, pools covering the queues' slots, then the system halves attached and
///   returned in an [`EthernetInterface`];
/// - reports through [`LinkReporter`] (also delegated here);
/// - dispatch of OS requests to the driver, each validated first, the driver's code passed
///   on, and the framework's state (enabled, promiscuous, all-multicast, multicast list,
///   media, MTU, assists, wake on magic packet) updated only on success.
///
/// **Rejected:**
/// - a second registration (`kIOReturnUnsupported`; Apple's dext crashes, UNCONFIRMED code);
/// - missing or repeated queue kinds (`kIOReturnBadArgument`); a queue on the wrong pool, a
///   pool smaller than its queues' slots, a group or zero MAC (`kIOReturnBadArgument`,
///   UNCONFIRMED); a system half already taken (`kIOReturnBusy`, UNCONFIRMED);
/// - setup calls after registration (`kIOReturnNotPermitted`, UNCONFIRMED);
/// - dispatch before registration (`kIOReturnNotReady`, UNCONFIRMED);
/// - multicast lists longer than [`MULTICAST_LIST_MAX`] (`kIOReturnNoSpace`, UNCONFIRMED) or
///   holding a non-multicast address (`kIOReturnBadArgument`, UNCONFIRMED);
/// - media not in the available list (`kIOReturnBadArgument`, UNCONFIRMED);
/// - an MTU outside [`MTU_BYTES_MIN`]..=min(driver maximum, [`MTU_BYTES_MAX`])
///   (`kIOReturnBadArgument`, UNCONFIRMED);
/// - turning on assists the driver does not offer, or wake on magic packet without
///   advertised support (`kIOReturnUnsupported`, UNCONFIRMED);
/// - not modelled (no method): `ReportNicProxyLimits`, BPF, statistics, power states.
///
/// # Examples
///
/// The sample's `Start` and `ifconfig up`, with a fake driver:
///
/// ```
/// use std::sync::Arc;
/// use ndk_model::ethernet::{EthernetService, FakeEthernetDriver, MacAddress};
/// use ndk_model::link::{LinkStatus, MediaType};
/// use ndk_model::pool::{PacketBufferPool, PoolConfig};
/// use ndk_model::queue::{
///     RxCompletionQueue, RxSubmissionQueue, TxCompletionQueue, TxSubmissionQueue,
/// };
///
/// // Start: a pool, four queues of 8 slots, the available media, registration.
/// let pool = PacketBufferPool::create(PoolConfig::new(*b"smpl", 32, 2048))?;
/// let rxs = RxSubmissionQueue::create(&pool, 8, 0)?;
/// let rxc = RxCompletionQueue::create(&pool, 8, 0)?;
/// let txs = TxSubmissionQueue::create(&pool, 8, 0)?;
/// let txc = TxCompletionQueue::create(&pool, 8, 0)?;
/// let mut service = EthernetService::default();
/// let gig = MediaType::ETHERNET_1000BASE_T;
/// service.report_available_media_types(&[MediaType::ETHERNET_AUTO, gig])?;
/// let mac: MacAddress = "10:22:33:44:55:66".parse()?;
/// let iface = service.register_ethernet_interface(mac, &pool, &[&rxs, &rxc, &txs, &txc])?;
///
/// // ifconfig up: the driver enables its queues and reports the link from the call.
/// let rings = [rxs.ring(), rxc.ring(), txs.ring(), txc.ring()].map(Arc::clone);
/// let mut driver = FakeEthernetDriver::new()
///     .with_link_on_enable(LinkStatus::ACTIVE, gig)
///     .with_queue_rings(rings);
/// service.set_interface_enable(&mut driver, true)?;
/// assert_eq!(service.link_status(), LinkStatus::ACTIVE);
/// assert!(iface.queues().tx_submission.is_enabled());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EthernetService {
    link: LinkReporter,
    registered: Option<(MacAddress, RegistrationForm)>,
    tx_headroom_bytes: u16,
    tx_tailroom_bytes: u16,
    /// Capabilities advertised at setup (`WOMP`, `SoftwareVlan`).
    features: FeatureFlags,
    promiscuous: bool,
    all_multicast: bool,
    wake_on_magic_packet_enabled: bool,
    mtu_bytes: u32,
    assists_enabled: HardwareAssists,
    multicast: heapless::Vec<MacAddress, MULTICAST_LIST_MAX>,
    media_selected: Option<MediaType>,
}

impl Default for EthernetService {
    fn default() -> Self {
        Self::new(EthernetServiceConfig::default())
    }
}

impl EthernetService {
    /// A service with nothing registered or reported; MTU [`MTU_BYTES_DEFAULT`].
    pub fn new(config: EthernetServiceConfig) -> Self {
        Self {
            link: LinkReporter::new(config.link_status_before_enable),
            registered: None,
            tx_headroom_bytes: 0,
            tx_tailroom_bytes: 0,
            features: FeatureFlags::empty(),
            promiscuous: false,
            all_multicast: false,
            wake_on_magic_packet_enabled: false,
            mtu_bytes: MTU_BYTES_DEFAULT,
            assists_enabled: HardwareAssists::empty(),
            multicast: heapless::Vec::new(),
            media_selected: None,
        }
    }

    // --- Setup (LOCALONLY, called in Start before registration) ---

    fn before_registration(&self) -> Result<(), SetupError> {
        match self.registered {
            Some(_) => Err(SetupError::AlreadyRegistered),
            None => Ok(()),
        }
    }

    /// `SetTxPacketHeadroom(numBytes)`: bytes reserved before the data of Tx packets.
    ///
    /// # Errors
    /// [`SetupError::AlreadyRegistered`].
    pub fn set_tx_packet_headroom(&mut self, headroom_bytes: u16) -> Result<(), SetupError> {
        self.before_registration()?;
        self.tx_headroom_bytes = headroom_bytes;
        Ok(())
    }

    /// `SetTxPacketTailroom(numBytes)`: bytes reserved after the data of Tx packets.
    ///
    /// # Errors
    /// [`SetupError::AlreadyRegistered`].
    pub fn set_tx_packet_tailroom(&mut self, tailroom_bytes: u16) -> Result<(), SetupError> {
        self.before_registration()?;
        self.tx_tailroom_bytes = tailroom_bytes;
        Ok(())
    }

    /// `SetWakeOnMagicPacketSupport(isSupported)`.
    ///
    /// # Errors
    /// [`SetupError::AlreadyRegistered`].
    pub fn set_wake_on_magic_packet_support(&mut self, supported: bool) -> Result<(), SetupError> {
        self.before_registration()?;
        self.features.set(FeatureFlags::WOMP, supported);
        Ok(())
    }

    /// `SetSoftwareVlanSupport(isSupported)`.
    ///
    /// # Errors
    /// [`SetupError::AlreadyRegistered`].
    pub fn set_software_vlan_support(&mut self, supported: bool) -> Result<(), SetupError> {
        self.before_registration()?;
        self.features.set(FeatureFlags::SOFTWARE_VLAN, supported);
        Ok(())
    }

    /// Tx headroom in bytes.
    pub fn tx_packet_headroom_bytes(&self) -> u16 {
        self.tx_headroom_bytes
    }

    /// Tx tailroom in bytes.
    pub fn tx_packet_tailroom_bytes(&self) -> u16 {
        self.tx_tailroom_bytes
    }

    /// The feature flags the setup calls imply: `WOMP` for wake-on-magic-packet support,
    /// `SoftwareVlan` for software VLAN support (mapping UNCONFIRMED: the names match).
    pub fn feature_flags(&self) -> FeatureFlags {
        self.features
    }

    // --- Registration ---

    /// G1 `RegisterEthernetInterface(mac, pool, queues, 4)`: one pool for all four queues.
    ///
    /// `queues` must hold exactly one queue of each [`QueueKind`], in any order, all on
    /// `pool`, and `pool` must have at least as many packets as the four queues have slots.
    /// On success the framework attaches the system half of each queue and returns them in
    /// the [`EthernetInterface`].
    ///
    /// # Errors
    /// [`RegisterError`]; the service stays unregistered.
    pub fn register_ethernet_interface(
        &mut self,
        mac: MacAddress,
        pool: &PacketBufferPool,
        queues: &[&dyn PacketQueue],
    ) -> Result<EthernetInterface, RegisterError> {
        self.register(mac, queues, pool, pool, RegistrationForm::OnePool)
    }

    /// DriverKit 24 `registerEthernetInterface(mac, queues, 4, txPool, rxPool)`: Tx queues on
    /// `tx_pool`, Rx queues on `rx_pool`, each pool covering the slots of its two queues (or
    /// of all four, when both arguments are the same pool).
    ///
    /// # Errors
    /// [`RegisterError`]; the service stays unregistered.
    pub fn register_ethernet_interface_with_pools(
        &mut self,
        mac: MacAddress,
        queues: &[&dyn PacketQueue],
        tx_pool: &PacketBufferPool,
        rx_pool: &PacketBufferPool,
    ) -> Result<EthernetInterface, RegisterError> {
        self.register(mac, queues, tx_pool, rx_pool, RegistrationForm::TxRxPools)
    }

    fn register(
        &mut self,
        mac: MacAddress,
        queues: &[&dyn PacketQueue],
        tx_pool: &PacketBufferPool,
        rx_pool: &PacketBufferPool,
        form: RegistrationForm,
    ) -> Result<EthernetInterface, RegisterError> {
        if let Some((mac, _)) = self.registered {
            return Err(RegisterError::AlreadyRegistered { mac });
        }
        if !mac.is_unicast() {
            return Err(RegisterError::BadMacAddress { mac });
        }
        let by_kind = sort_queues(queues)?;
        let pool_for = |kind: QueueKind| match kind {
            QueueKind::TxSubmission | QueueKind::TxCompletion => tx_pool,
            QueueKind::RxSubmission | QueueKind::RxCompletion => rx_pool,
        };
        for (kind, queue) in QueueKind::ALL.into_iter().zip(by_kind) {
            let expected = pool_for(kind);
            if queue.pool().id() != expected.id() {
                return Err(RegisterError::WrongPool {
                    kind,
                    queue_pool_id: queue.pool().id(),
                    expected_pool_id: expected.id(),
                });
            }
        }
        check_pool_covers(tx_pool, rx_pool, &by_kind)?;
        let queues = attach_system_halves(&by_kind)?;
        self.registered = Some((mac, form));
        Ok(EthernetInterface {
            mac,
            form,
            tx_pool: tx_pool.clone(),
            rx_pool: rx_pool.clone(),
            queues,
        })
    }

    /// Whether an interface is registered.
    pub fn is_registered(&self) -> bool {
        self.registered.is_some()
    }

    /// The registered interface's address.
    pub fn mac_address(&self) -> Option<MacAddress> {
        self.registered.map(|(mac, _)| mac)
    }

    /// Which registration form was used.
    pub fn registration_form(&self) -> Option<RegistrationForm> {
        self.registered.map(|(_, form)| form)
    }

    // --- Reports (driver → framework) ---

    /// The link reports and their state.
    pub fn link(&self) -> &LinkReporter {
        &self.link
    }

    /// The link reporter, to report through it.
    pub fn link_mut(&mut self) -> &mut LinkReporter {
        &mut self.link
    }

    /// `ReportAvailableMediaTypes`; see [`LinkReporter::report_available_media_types`].
    ///
    /// # Errors
    /// [`ReportMediaError`].
    pub fn report_available_media_types(
        &mut self,
        media: &[MediaType],
    ) -> Result<(), ReportMediaError> {
        self.link.report_available_media_types(media)
    }

    /// `ReportLinkStatus`; see [`LinkReporter::report_link_status`].
    ///
    /// # Errors
    /// [`ReportLinkStatusError`].
    pub fn report_link_status(
        &mut self,
        status: LinkStatus,
        active_media: MediaType,
    ) -> Result<LinkReport, ReportLinkStatusError> {
        self.link.report_link_status(status, active_media)
    }

    /// `ReportLinkQuality`; see [`LinkReporter::report_link_quality`].
    ///
    /// # Errors
    /// [`ReportLinkQualityError`].
    pub fn report_link_quality(
        &mut self,
        quality: LinkQuality,
    ) -> Result<(), ReportLinkQualityError> {
        self.link.report_link_quality(quality)
    }

    /// `ReportDataBandwidths`; see [`LinkReporter::report_data_bandwidths`].
    ///
    /// # Errors
    /// [`ReportBandwidthsError`].
    pub fn report_data_bandwidths(
        &mut self,
        bandwidths: DataBandwidths,
    ) -> Result<(), ReportBandwidthsError> {
        self.link.report_data_bandwidths(bandwidths)
    }

    // --- Dispatch (OS → framework → driver) ---

    fn require_registered<E>(&self, not_registered: E) -> Result<(), E> {
        match self.registered {
            Some(_) => Ok(()),
            None => Err(not_registered),
        }
    }

    /// `ifconfig up/down` → `SetInterfaceEnable(enable)`.
    ///
    /// When enabling, the framework counts the interface as enabled *during* the call, so a
    /// link status the driver reports from it is recorded (Apple's sample does exactly
    /// that); if the driver fails, the interface stays disabled. When disabling, it counts as
    /// disabled once the driver succeeds.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn set_interface_enable<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        enable: bool,
    ) -> Result<(), ControlError> {
        self.require_registered(ControlError::NotRegistered)?;
        if enable {
            let was_enabled = self.link.is_interface_enabled();
            self.link.set_interface_enabled(true);
            if let Err(code) = driver_result(driver.set_interface_enable(&mut self.link, true)) {
                self.link.set_interface_enabled(was_enabled);
                return Err(ControlError::Driver(code));
            }
        } else {
            driver_result(driver.set_interface_enable(&mut self.link, false))
                .map_err(ControlError::Driver)?;
            self.link.set_interface_enabled(false);
        }
        Ok(())
    }

    /// `SetPromiscuousModeEnable(enable)`.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn set_promiscuous_mode_enable<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        enable: bool,
    ) -> Result<(), ControlError> {
        self.require_registered(ControlError::NotRegistered)?;
        driver_result(driver.set_promiscuous_mode_enable(enable)).map_err(ControlError::Driver)?;
        self.promiscuous = enable;
        Ok(())
    }

    /// `SetAllMulticastModeEnable(enable)`.
    ///
    /// # Errors
    /// [`ControlError`].
    pub fn set_all_multicast_mode_enable<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        enable: bool,
    ) -> Result<(), ControlError> {
        self.require_registered(ControlError::NotRegistered)?;
        driver_result(driver.set_all_multicast_mode_enable(enable))
            .map_err(ControlError::Driver)?;
        self.all_multicast = enable;
        Ok(())
    }

    /// `setMulticastAddresses(addresses, count)`: the whole list of groups, replacing the
    /// previous one. Checked before the driver sees it: at most [`MULTICAST_LIST_MAX`]
    /// entries, each a multicast group address (not unicast, not broadcast).
    ///
    /// # Errors
    /// [`SetMulticastError`]; the previous list stays.
    pub fn set_multicast_addresses<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        addresses: &[MacAddress],
    ) -> Result<(), SetMulticastError> {
        self.require_registered(SetMulticastError::NotRegistered)?;
        let list: heapless::Vec<MacAddress, MULTICAST_LIST_MAX> =
            heapless::Vec::from_slice(addresses).map_err(|_| SetMulticastError::TooMany {
                count: addresses.len(),
            })?;
        if let Some((index, &address)) = list
            .iter()
            .enumerate()
            .find(|(_, a)| !a.is_multicast() || a.is_broadcast())
        {
            return Err(SetMulticastError::NotMulticast { index, address });
        }
        driver_result(driver.set_multicast_addresses(&list)).map_err(SetMulticastError::Driver)?;
        self.multicast = list;
        Ok(())
    }

    fn check_media(&self, media: MediaType) -> Result<(), SelectMediaError> {
        self.require_registered(SelectMediaError::NotRegistered)?;
        if !self.link.is_media_available(media) {
            return Err(SelectMediaError::NotAvailable { media });
        }
        Ok(())
    }

    /// G1 `SelectMediaType(media)`: the user picked `media` in Settings.
    ///
    /// # Errors
    /// [`SelectMediaError`].
    pub fn select_media<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        media: MediaType,
    ) -> Result<(), SelectMediaError> {
        self.check_media(media)?;
        driver_result(driver.select_media(&mut self.link, media))
            .map_err(SelectMediaError::Driver)?;
        self.media_selected = Some(media);
        Ok(())
    }

    /// G2 `handleChosenMedia(media)`: the same request under its DriverKit 21 name.
    ///
    /// # Errors
    /// [`SelectMediaError`].
    pub fn handle_chosen_media<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        media: MediaType,
    ) -> Result<(), SelectMediaError> {
        self.check_media(media)?;
        driver_result(driver.handle_chosen_media(&mut self.link, media))
            .map_err(SelectMediaError::Driver)?;
        self.media_selected = Some(media);
        Ok(())
    }

    /// `SetWakeOnMagicPacketEnable(enable)`. Enabling needs `SetWakeOnMagicPacketSupport(true)`
    /// at setup.
    ///
    /// # Errors
    /// [`WakeOnMagicPacketError`].
    pub fn set_wake_on_magic_packet_enable<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        enable: bool,
    ) -> Result<(), WakeOnMagicPacketError> {
        self.require_registered(WakeOnMagicPacketError::NotRegistered)?;
        if enable && !self.features.contains(FeatureFlags::WOMP) {
            return Err(WakeOnMagicPacketError::NotSupported);
        }
        driver_result(driver.set_wake_on_magic_packet_enable(enable))
            .map_err(WakeOnMagicPacketError::Driver)?;
        self.wake_on_magic_packet_enabled = enable;
        Ok(())
    }

    /// `ifconfig mtu` → `SetMTU(mtu)`: `mtu_bytes` must be in [`MTU_BYTES_MIN`]..=
    /// min([`EthernetDriver::mtu_bytes_max`], [`MTU_BYTES_MAX`]).
    ///
    /// # Errors
    /// [`SetMtuError`].
    pub fn set_mtu<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        mtu_bytes: u32,
    ) -> Result<(), SetMtuError> {
        self.require_registered(SetMtuError::NotRegistered)?;
        let mtu_bytes_max = driver.mtu_bytes_max().min(MTU_BYTES_MAX);
        if !(MTU_BYTES_MIN..=mtu_bytes_max).contains(&mtu_bytes) {
            return Err(SetMtuError::OutOfRange {
                mtu_bytes,
                mtu_bytes_min: MTU_BYTES_MIN,
                mtu_bytes_max,
            });
        }
        driver_result(driver.set_mtu(mtu_bytes)).map_err(SetMtuError::Driver)?;
        self.mtu_bytes = mtu_bytes;
        Ok(())
    }

    /// G1 `SetHardwareAssists(assists)`: sets every assist at once (mask = all bits).
    ///
    /// # Errors
    /// [`SetHardwareAssistsError`].
    pub fn set_hardware_assists<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        assists: HardwareAssists,
    ) -> Result<(), SetHardwareAssistsError> {
        self.set_hardware_assists_masked(driver, assists, HardwareAssists::all())
    }

    /// G2 `setHardwareAssists(assists, mask)`: the assists in `mask` take their value from
    /// `assists`; the others stay. Turning on an assist the driver's `getHardwareAssists`
    /// does not offer is refused before the driver is called.
    ///
    /// # Errors
    /// [`SetHardwareAssistsError`].
    pub fn set_hardware_assists_masked<D: EthernetDriver + ?Sized>(
        &mut self,
        driver: &mut D,
        assists: HardwareAssists,
        mask: HardwareAssists,
    ) -> Result<(), SetHardwareAssistsError> {
        self.require_registered(SetHardwareAssistsError::NotRegistered)?;
        let offered = driver.hardware_assists();
        let requested = assists & mask;
        if !offered.contains(requested) {
            return Err(SetHardwareAssistsError::NotOffered { requested, offered });
        }
        driver_result(driver.set_hardware_assists(assists, mask))
            .map_err(SetHardwareAssistsError::Driver)?;
        self.assists_enabled = (self.assists_enabled & !mask) | requested;
        Ok(())
    }

    // --- State the framework keeps ---

    /// Whether the interface is enabled (`ifconfig up` succeeded).
    pub fn is_enabled(&self) -> bool {
        self.link.is_interface_enabled()
    }

    /// Promiscuous mode, as last accepted by the driver.
    pub fn is_promiscuous(&self) -> bool {
        self.promiscuous
    }

    /// All-multicast mode, as last accepted by the driver.
    pub fn is_all_multicast(&self) -> bool {
        self.all_multicast
    }

    /// The multicast list, as last accepted by the driver.
    pub fn multicast_addresses(&self) -> &[MacAddress] {
        &self.multicast
    }

    /// Wake on magic packet, as last accepted by the driver.
    pub fn is_wake_on_magic_packet_enabled(&self) -> bool {
        self.wake_on_magic_packet_enabled
    }

    /// The MTU in bytes ([`MTU_BYTES_DEFAULT`] until set).
    pub fn mtu_bytes(&self) -> u32 {
        self.mtu_bytes
    }

    /// The assists switched on.
    pub fn hardware_assists_enabled(&self) -> HardwareAssists {
        self.assists_enabled
    }

    /// The media the user last selected.
    pub fn selected_media(&self) -> Option<MediaType> {
        self.media_selected
    }

    /// The current link status (see [`LinkReporter::link_status`]).
    pub fn link_status(&self) -> LinkStatus {
        self.link.link_status()
    }

    /// The media of the current link status.
    pub fn active_media(&self) -> Option<MediaType> {
        self.link.active_media()
    }

    /// The current link quality.
    pub fn link_quality(&self) -> LinkQuality {
        self.link.link_quality()
    }
}

/// Puts the queues in [`QueueKind`] order, refusing repeated and missing kinds.
fn sort_queues<'a>(
    queues: &[&'a dyn PacketQueue],
) -> Result<[&'a dyn PacketQueue; 4], RegisterError> {
    let mut slots: [Option<&'a dyn PacketQueue>; 4] = [None; 4];
    for queue in queues {
        let kind = queue.kind();
        let slot = &mut slots[kind as usize];
        if slot.is_some() {
            return Err(RegisterError::DuplicateQueue { kind });
        }
        *slot = Some(*queue);
    }
    if let Some(kind) = QueueKind::ALL
        .into_iter()
        .zip(&slots)
        .find_map(|(kind, slot)| slot.is_none().then_some(kind))
    {
        return Err(RegisterError::MissingQueue { kind });
    }
    Ok(slots.map(|slot| slot.expect("no slot is empty: checked above")))
}

/// Checks that each pool has a packet for every slot of the queues drawing on it.
fn check_pool_covers(
    tx_pool: &PacketBufferPool,
    rx_pool: &PacketBufferPool,
    by_kind: &[&dyn PacketQueue; 4],
) -> Result<(), RegisterError> {
    let slots = |kinds: &[QueueKind]| -> u64 {
        kinds
            .iter()
            .map(|kind| u64::from(by_kind[*kind as usize].capacity()))
            .sum()
    };
    let demands: [(&PacketBufferPool, u64); 2] = if tx_pool.id() == rx_pool.id() {
        [(tx_pool, slots(&QueueKind::ALL)), (rx_pool, 0)]
    } else {
        [
            (
                tx_pool,
                slots(&[QueueKind::TxSubmission, QueueKind::TxCompletion]),
            ),
            (
                rx_pool,
                slots(&[QueueKind::RxSubmission, QueueKind::RxCompletion]),
            ),
        ]
    };
    for (pool, queue_slots) in demands {
        if u64::from(pool.packet_count()) < queue_slots {
            return Err(RegisterError::PoolTooSmall {
                pool_id: pool.id(),
                packet_count: pool.packet_count(),
                queue_slots,
            });
        }
    }
    Ok(())
}

/// Attaches the framework's half of each queue.
fn attach_system_halves(by_kind: &[&dyn PacketQueue; 4]) -> Result<SystemQueues, RegisterError> {
    fn attach<T>(
        queue: &dyn PacketQueue,
        attach: fn(&Arc<Ring<u32>>, &PacketBufferPool) -> Result<T, QueueCreateError>,
    ) -> Result<T, RegisterError> {
        attach(queue.ring(), queue.pool()).map_err(|source| RegisterError::SystemHalf {
            kind: queue.kind(),
            source,
        })
    }
    let [rx_submission, rx_completion, tx_submission, tx_completion] = *by_kind;
    Ok(SystemQueues {
        rx_submission: attach(rx_submission, SystemRxSubmission::attach)?,
        rx_completion: attach(rx_completion, SystemRxCompletion::attach)?,
        tx_submission: attach(tx_submission, SystemTxSubmission::attach)?,
        tx_completion: attach(tx_completion, SystemTxCompletion::attach)?,
    })
}
