//! vnic's simulated world: vmnet networks, the OS network stack on the NIC's system side, the
//! host side (gateway, DHCP, DNS, NAT, outside hosts), faults and checkers, run
//! deterministically from one seed or on threads.
//!
//! # Module map
//!
//! Start with [`world`]: it builds whole NICs on a network and runs them.
//!
//! | module | what it is |
//! | --- | --- |
//! | [`world`] | [`world::World`]: nodes (OS stack ═ NDK queues ═ driver ═ port) on a vmnet network; deterministic and threaded runs; scripts; the seed runner |
//! | [`vmnet`] | [`vmnet::SimVmnet`]: vmnet's lifecycle and data plane with its exact numbers, the source-IP rule, macOS 26 network objects |
//! | [`port`] | [`port::SimPort`] (the driver's `HardwarePort`) and [`port::WireEnd`]: the lock-free wire hand-off to the network side |
//! | [`stack`] | [`stack::OsStack`]: the kernel's side of the NDK queues, on smoltcp (DHCP client, ping, UDP, TCP) |
//! | [`gateway`] | [`gateway::Gateway`]: the host side of a network: ARP, ping, DHCP server, DNS proxy, NAT44, outside hosts, port forwards |
//! | [`faults`] | [`faults::FaultPlan`], [`faults::FaultyLink`]: loss, duplication, reordering, corruption, delay, flaps; port and stack faults |
//! | [`checkers`] | conservation ledgers, pool-full, order, driver counters, transfer digests: observers only |
//! | [`pattern`] | seeded payloads and digests for transfer integrity |
//! | [`switch`] | [`switch::Switch`]: a learning L2 switch with isolation and counters |
//! | [`netconfig`] | [`netconfig::NetConfig`]: the macOS 26 network-configuration value |
//! | [`clock`], [`rng`] | [`clock::SimClock`] and [`rng::SimRng`]: simulated time and the one seeded PRNG |
//!
//! # Layers
//!
//! Nothing here reads a wall clock or an unseeded random source, except the threaded run,
//! which takes its time from the driver crate's one `WallClock`. A deterministic run is a
//! function of its seed: time is passed in (`now_ns`), randomness comes from a [`rng::SimRng`]
//! forked by label, the scheduler's order is drawn from the seed, and all collections iterate
//! in a fixed order. Facts come from `shared/docs/vmnet.md`; what it marks UNCONFIRMED is
//! marked so here and, where it changes behaviour, is a knob ([`vmnet::VmnetKnobs`]).
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
mod sync;
pub mod vmnet;
pub mod world;
