//! Attaching a NIC: the one sequence every host of the driver runs to bring a
//! [`VirtualEthernet`] up on a pool (the dext's `Start`, the simulator's nodes, the tests and
//! the benchmark).
//!
//! 1. the four NDK queues on `pool` (ids 0–3: Rx submission, Rx completion, Tx submission,
//!    Tx completion);
//! 2. an [`EthernetService`] that offers auto and the NIC's media;
//! 3. registration of the interface with the port's MAC (G1 form: one pool);
//! 4. the NIC on the driver halves, then interface enable, which starts the port.

use ndk_model::ethernet::{
    ControlError, EthernetInterface, EthernetService, RegisterError, ReportMediaError,
};
use ndk_model::link::MediaType;
use ndk_model::pool::PacketBufferPool;
use ndk_model::queue::{
    QueueCreateError, RxCompletionQueue, RxSubmissionQueue, TxCompletionQueue, TxSubmissionQueue,
};

use crate::nic::{DriverQueues, NewError, NicConfig, VirtualEthernet};
use crate::port::HardwarePort;

/// An enabled NIC with the service it reports to and the system side of its queues.
#[derive(Debug)]
pub struct AttachedNic<P: HardwarePort> {
    /// The NIC (driver halves of the queues, the port).
    pub nic: VirtualEthernet<P>,
    /// The Ethernet service: link reports and controls.
    pub service: EthernetService,
    /// The registered interface: the OS side's halves of the queues.
    pub iface: EthernetInterface,
}

/// Why [`attach`] failed; nothing was left running.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A queue could not be made on the pool.
    #[error(transparent)]
    Queue(#[from] QueueCreateError),
    /// The media list was refused.
    #[error(transparent)]
    Media(#[from] ReportMediaError),
    /// Registration was refused (for example, a pool too small for the queues).
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// The NIC refused the port or the pool.
    #[error(transparent)]
    Nic(#[from] NewError),
    /// Interface enable failed (the port did not start).
    #[error(transparent)]
    Enable(#[from] ControlError),
}

/// Makes the four queues of `queue_capacity` slots on `pool`, registers an interface with
/// the port's MAC, builds the NIC on `port` and enables it.
///
/// # Errors
/// [`AttachError`], at the first step that fails.
pub fn attach<P: HardwarePort>(
    port: P,
    pool: &PacketBufferPool,
    queue_capacity: u32,
    config: NicConfig,
) -> Result<AttachedNic<P>, AttachError> {
    let rxs = RxSubmissionQueue::create(pool, queue_capacity, 0)?;
    let rxc = RxCompletionQueue::create(pool, queue_capacity, 1)?;
    let txs = TxSubmissionQueue::create(pool, queue_capacity, 2)?;
    let txc = TxCompletionQueue::create(pool, queue_capacity, 3)?;
    let mut service = EthernetService::default();
    service.report_available_media_types(&[MediaType::ETHERNET_AUTO, config.media])?;
    let iface =
        service.register_ethernet_interface(port.info().mac, pool, &[&rxs, &rxc, &txs, &txc])?;
    let queues = DriverQueues {
        tx_submission: txs,
        tx_completion: txc,
        rx_submission: rxs,
        rx_completion: rxc,
    };
    let mut nic = VirtualEthernet::new(port, queues, config)?;
    service.set_interface_enable(&mut nic, true)?;
    Ok(AttachedNic {
        nic,
        service,
        iface,
    })
}
