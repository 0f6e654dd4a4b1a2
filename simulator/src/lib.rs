//! vnic's deterministic world: vmnet networks, the OS network stack, faults and checkers.
//!
//! Empty until issue 3 (the simulated vmnet network) lands; the crate exists so the workspace
//! has its fixed shape.
#![forbid(unsafe_code)]
