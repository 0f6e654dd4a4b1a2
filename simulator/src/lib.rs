//! vnic's deterministic world: vmnet networks, (later) the OS network stack, faults and checkers.
//!
//! # Module map
//!
//! Start with [`vmnet`]; everything else is a primitive it is built on.
//!
//! | module | what it is |
//! | --- | --- |
//! | [`clock`] | [`clock::SimClock`]: simulated nanoseconds, moved only by the caller |
//! | [`rng`] | [`rng::SimRng`]: the one seeded PRNG, forked per component |
//! | [`switch`] | [`switch::Switch`]: a learning L2 switch with isolation and counters |
//! | [`netconfig`] | [`netconfig::NetConfig`]: the macOS 26 network-configuration value |
//! | [`vmnet`] | [`vmnet::SimVmnet`]: vmnet's lifecycle and data plane, with its exact numbers |
//!
//! # Layers
//!
//! Nothing here reads a wall clock or an unseeded random source. A run is a function of its
//! seed and the calls made: time is passed in (`now_ns`), randomness comes from a [`rng::SimRng`]
//! forked by label, and all collections iterate in a fixed order. Facts come from
//! `shared/docs/vmnet.md`; what it marks UNCONFIRMED is marked so here and, where it changes
//! behaviour, is a knob ([`vmnet::VmnetKnobs`]).
//!
//! Not yet here (issue 3, later slices): the gateway (ARP, ping, DHCP, DNS, NAT), the smoltcp OS
//! stack, the threaded mode, faults, checkers and the seed runner.
#![forbid(unsafe_code)]

pub mod checkers;
pub mod clock;
pub mod faults;
pub mod gateway;
pub mod netconfig;
pub mod pattern;
pub mod port;
pub mod rng;
pub mod stack;
pub mod switch;
pub mod vmnet;
pub mod world;
