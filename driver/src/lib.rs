//! The vnic virtual Ethernet NIC.
//!
//! The datapath and the hardware ports arrive with issue 3; for now the crate holds the
//! `vnic` command and the ndk-model demo it runs.
#![deny(unsafe_code)]

pub mod demo;
