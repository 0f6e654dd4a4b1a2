//! A Rust model of Apple's NetworkingDriverKit (NDK), and the lock-free shared-memory transport
//! under it.
//!
//! A driver written against this crate runs unchanged in the simulator, on Linux wires, and on
//! a Mac, where the C++ dext and the Rust helper share the same rings and pool through one
//! mapping (`dext-shim/include/vnic/abi.h` is the C view of the same bytes).
//!
//! # Module map
//!
//! | module | what it is |
//! | --- | --- |
//! | [`pool`] | the packet buffer pool: fixed memory, lock-free allocate/free, [`pool::PoolCache`] |
//! | [`packet`] | [`packet::Packet`] tokens and per-packet metadata |
//! | [`queue`] | the four queues, each a driver half and a system half over one ring |
//! | [`actions`] | data-available notification: G1 action, G3 function-pointer actions, G4 Compat |
//! | [`ethernet`], [`link`] | the Ethernet service: driver overrides, registration, link reporting, constants |
//! | [`error`] | `IOReturn` codes |
//! | [`ring`] | the SPSC ring every queue is built on |
//! | [`shm`], [`area`] | memory regions (heap or memfd) and one NIC's shared layout |
//! | [`notify`] | doorbells: the [`notify::Notifier`] trait, eventfd and a fake |
//!
//! # Apple ↔ Rust names
//!
//! | Apple | ours |
//! | --- | --- |
//! | `IOUserNetworkPacketBufferPool` (`Create`, `AllocatePacket`, `DeallocatePacket`) | [`pool::PacketBufferPool`] (`create`, `allocate`, `deallocate`) |
//! | `IOUserNetworkPacket` | [`packet::Packet`] + [`packet::PacketView`] / [`packet::PacketViewMut`] |
//! | `IOUserNetworkRxSubmissionQueue` … `TxCompletionQueue` | [`queue::RxSubmissionQueue`], [`queue::RxCompletionQueue`], [`queue::TxSubmissionQueue`], [`queue::TxCompletionQueue`] (driver halves); `queue::System*` (system halves) |
//! | `EnqueuePackets` / `DequeuePackets` | `enqueue_packets` / `dequeue_packets` |
//! | `IOUserNetworkEthernet` overrides | [`ethernet::EthernetDriver`] |
//! | `RegisterEthernetInterface`, `ReportLinkStatus` | [`ethernet::EthernetService`] |
//! | `kIOUserNetworkLinkStatusActive` | [`link::LinkStatus::ACTIVE`] |
//! | `kIOReturn*` | [`error::IoReturn`] |
//!
//! # Unsafe
//!
//! The crate root denies `unsafe_code`; only `shm`, `ring`, `pool`, `area` and the private
//! `sys` leaves (memfd, mmap, eventfd) opt back in, and every block there carries a safety
//! comment. Everything else is safe code on top of them. Under `--cfg loom` the atomics, cells and
//! fences come from loom (`sync`).
#![deny(unsafe_code)]

mod sync;

pub mod actions;
pub mod error;
pub mod ethernet;
pub mod link;
pub mod notify;
pub mod packet;
pub mod queue;

#[allow(unsafe_code)]
pub mod shm;

#[allow(unsafe_code)]
pub mod ring;

#[allow(unsafe_code)]
pub mod pool;

#[allow(unsafe_code)]
pub mod area;

#[allow(unsafe_code)]
mod sys;
