//! The vnic virtual Ethernet NIC.
//!
//! - [`attach`]: bringing a NIC up on a pool (queues, service, registration, enable);
//! - [`clock`]: the time seam ([`clock::Clock`]) and the one wall clock;
//! - [`port`]: the hardware-port seam ([`port::HardwarePort`]) and its fake;
//! - [`nic`]: [`nic::VirtualEthernet`], the NIC, on ndk-model's Ethernet service;
//! - [`counters`]: datapath counters;
//! - [`demo`]: the ndk-model loopback demo.
//!
//! **Direction:** rx and tx are always from the NIC's point of view. Tx frames come from the
//! OS on Tx submission and leave through the port; Rx frames arrive from the port and go to
//! the OS on Rx completion.
#![deny(unsafe_code)]

pub mod attach;
pub mod clock;
pub mod counters;
pub mod demo;
pub mod nic;
pub mod port;
