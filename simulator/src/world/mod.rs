//! The world: NICs with their OS stacks on a simulated vmnet network, run deterministically
//! (one thread, one seed, a simulated clock) or on threads (stack, driver and network each on
//! their own, over the lock-free ndk-model rings and the port's wire hand-off).
//!
//! Each node is a whole Mac-side NIC:
//!
//! ```text
//!  OsStack (smoltcp, the kernel's side) ═ four NDK queues ═ VirtualEthernet (the dext's driver)
//!        ═ SimPort ═ WireEnd ═ WireActor ═ FaultyLinks ═ SimVmnet ═ switch ═ host side ═ Gateway
//! ```
//!
//! - [`WorldConfig`] says what to build; [`World::build`] starts the vmnet interfaces (their
//!   start is asynchronous, as vmnet's is) and wires every node.
//! - [`World::run_deterministic`] runs every actor from one thread in a seeded order and moves
//!   the simulated clock to the next deadline when nothing moved. A seed reproduces a run.
//! - [`World::run_threaded`] (in [`threaded`]) runs the same parts on threads with a wall clock.
//! - [`World::quiesce`] stops traffic and drains everything; [`World::check`] runs the
//!   checkers ([`crate::checkers`]) over what every layer counted.

pub mod network;
pub mod script;
pub mod seeds;
pub mod threaded;

use std::net::Ipv4Addr;
use std::sync::Arc;

use ndk_model::ethernet::{EthernetService, MacAddress};
use ndk_model::notify::{FakeNotifier, Notifier};
use ndk_model::pool::{PacketBufferPool, PoolConfig};
use vnic_driver::attach::{attach, AttachedNic};
use vnic_driver::nic::{NicConfig, VirtualEthernet};
use vnic_driver::port::PortInfo;

use crate::checkers::{self, CheckReport, Ledger, Violation};
use crate::faults::{FaultPlan, FaultyLink};
use crate::gateway::{Gateway, GatewayConfig, SinkReport};
use crate::pattern::Digest;
use crate::port::{wire, SimPort, WireConfig};
use crate::rng::SimRng;
use crate::stack::{Addressing, OsStack, StackConfig};
use crate::vmnet::{
    GuestId, InterfaceDesc, NetworkKey, Notification, OperatingMode, SimVmnet, StartError, Uuid,
    VmnetKnobs,
};

use network::{NetworkSide, WireActor};
use script::{Board, HostStep, Script, ScriptError, ScriptRunner, Step};

/// The gateway's MAC (the host bridge's; locally administered).
pub const GATEWAY_MAC: MacAddress = MacAddress([0x5a, 0x94, 0xef, 0x00, 0x00, 0x01]);

/// One simulated machine with a vnic NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Which guest owns its interface (vmnet's 4-per-guest limit counts these).
    pub guest: GuestId,
    /// `vmnet_interface_id_key`: the same id gives the same MAC.
    pub interface_id: Uuid,
    /// What it does.
    pub script: Script,
    /// How its stack gets an address; `None`: DHCP.
    pub addressing: Option<Addressing>,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// The one seed everything is drawn from.
    pub seed: u64,
    /// vmnet's operating mode for every node.
    pub mode: OperatingMode,
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// vmnet's knobs.
    pub knobs: VmnetKnobs,
    /// The gateway; `None`: the default for `mode`.
    pub gateway: Option<GatewayConfig>,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// The interfaces' MTU (`vmnet_mtu_key`; host and shared modes).
    pub mtu_bytes: Option<u32>,
    /// Packets in each NIC's pool (unless the fault plan shrinks it).
    pub pool_packets: u32,
    /// Slots in each NDK queue (a power of two).
    pub queue_capacity: u32,
    /// The host's own script (port-forward clients).
    pub host: Vec<HostStep>,
    /// The deterministic run gives up after this much simulated time.
    pub sim_time_ns_max: u64,
    /// Raw frames pushed into node `.0`'s port from the wire once it has an address (for
    /// malformed-frame tests).
    pub inject_to_nic: Vec<(usize, Vec<u8>)>,
    /// Link flaps triggered by progress: once a node has sent so many bytes, its link goes
    /// down for a while (mid-transfer, whatever the clock).
    pub flaps: Vec<network::FlapTrigger>,
}

impl WorldConfig {
    /// `nodes` nodes (each its own guest) in `mode`, no faults, each running `script`.
    pub fn new(seed: u64, mode: OperatingMode, nodes: usize, script: &Script) -> Self {
        Self {
            seed,
            mode,
            nodes: (0..nodes)
                .map(|i| NodeSpec {
                    guest: GuestId(i as u32),
                    interface_id: node_interface_id(seed, i),
                    script: script.clone(),
                    addressing: None,
                })
                .collect(),
            knobs: VmnetKnobs::default(),
            gateway: None,
            faults: FaultPlan::none(),
            mtu_bytes: None,
            pool_packets: 1024,
            queue_capacity: 256,
            host: Vec::new(),
            sim_time_ns_max: 3_600_000_000_000,
            inject_to_nic: Vec::new(),
            flaps: Vec::new(),
        }
    }
}

/// A stable interface id for node `i` of a world seeded with `seed`.
pub fn node_interface_id(seed: u64, i: usize) -> Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid(b)
}

/// Why [`World::build`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// vmnet refused an interface (at the call or in its completion).
    #[error("node {node}: vmnet start failed: {error}")]
    Start {
        /// Which node.
        node: usize,
        /// vmnet's error (its `code()` is the `vmnet_return_t`).
        error: StartError,
    },
    /// vmnet gave no MAC (allocation off): this world needs vmnet's MAC.
    #[error("node {node}: vmnet assigned no MAC")]
    NoMac {
        /// Which node.
        node: usize,
    },
    /// The NIC's pool, queues or service could not be made.
    #[error("node {node}: {what}")]
    Nic {
        /// Which node.
        node: usize,
        /// What failed.
        what: String,
    },
}

/// The driver's half of one node: the NIC and the Ethernet service it reports to.
#[derive(Debug)]
pub struct DriverSide {
    /// The NIC.
    pub nic: VirtualEthernet<SimPort>,
    /// The Ethernet service (link reports land here).
    pub service: EthernetService,
    /// Rung by the port (readiness) and the stack (Tx doorbell); the driver sleeps on it.
    pub waker: Arc<dyn Notifier>,
}

/// The OS half of one node: the stack and its script.
#[derive(Debug)]
pub struct StackSide {
    /// The stack.
    pub stack: OsStack,
    /// Its script.
    pub script: ScriptRunner,
    /// The NIC's pool (the stack's and the driver's), for the pool-full check.
    pub pool: PacketBufferPool,
    /// Packets taken from the pool and held for the whole run (the pool-exhaustion fault:
    /// something else in the OS holds most buffers); given back by [`World::quiesce`].
    pub hog: Vec<ndk_model::packet::Packet>,
}

/// Why a run did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// A node's script failed.
    #[error("node {node}: {error}")]
    Script {
        /// Which node.
        node: usize,
        /// The failure.
        error: ScriptError,
    },
    /// The run did not finish in its time budget.
    #[error("stalled at {now_ns} ns: scripts not finished ({pending})")]
    Stalled {
        /// When it gave up.
        now_ns: u64,
        /// Which nodes were not done.
        pending: String,
    },
    /// A driver pass failed (a corrupt ring).
    #[error("node {node}: driver: {detail}")]
    Driver {
        /// Which node.
        node: usize,
        /// What failed.
        detail: String,
    },
}

/// A built world.
#[derive(Debug)]
pub struct World {
    /// What it was built from.
    pub config: WorldConfig,
    /// vmnet, the gateway and the wire actors.
    pub net: NetworkSide,
    /// The nodes' driver halves.
    pub drivers: Vec<DriverSide>,
    /// The nodes' OS halves.
    pub stacks: Vec<StackSide>,
    /// Addresses and readiness the nodes publish.
    pub board: Arc<Board>,
    /// The simulated clock (deterministic runs), or the last wall-clock reading.
    pub now_ns: u64,
    rng: SimRng,
    /// Scheduler rounds run.
    pub rounds: u64,
}

fn nic_err(node: usize, e: impl std::fmt::Display) -> BuildError {
    BuildError::Nic {
        node,
        what: e.to_string(),
    }
}

impl World {
    /// Starts every node's vmnet interface (waiting out vmnet's asynchronous start on the
    /// simulated clock) and wires its NIC, stack and wire actor.
    ///
    /// # Errors
    /// [`BuildError`]: vmnet refused an interface (with vmnet's code), or a NIC part failed.
    #[expect(
        clippy::too_many_lines,
        reason = "the wiring of one node is one sequence: vmnet params → port → pool → queues → service → NIC → stack → wire actor"
    )]
    pub fn build(config: WorldConfig) -> Result<Self, BuildError> {
        let rng = SimRng::new(config.seed);
        let mut vmnet = SimVmnet::new(config.knobs.clone(), &rng.fork("vmnet"));
        let mut now_ns = 0;
        let mut handles = Vec::new();
        for (i, spec) in config.nodes.iter().enumerate() {
            let mut desc =
                InterfaceDesc::new(config.mode, spec.guest).interface_id(spec.interface_id);
            if config.mode == OperatingMode::Bridged {
                desc = desc.shared_interface_name(
                    config
                        .knobs
                        .bridgeable_interfaces
                        .first()
                        .map_or("en0", String::as_str),
                );
            } else if let Some(mtu) = config.mtu_bytes {
                desc = desc.mtu_bytes(mtu);
            }
            let h = vmnet
                .start_interface(now_ns, &desc)
                .map_err(|error| BuildError::Start { node: i, error })?;
            handles.push(h);
        }
        let mut params = vec![None; handles.len()];
        // Bounded: every start completes after its delay.
        for _ in 0..=handles.len() * 4 {
            if params.iter().all(Option::is_some) {
                break;
            }
            match vmnet.next_deadline_ns() {
                Some(t) => now_ns = now_ns.max(t),
                None => now_ns += 1_000_000,
            }
            vmnet.advance(now_ns);
            while let Some(n) = vmnet.poll_notification() {
                if let Notification::StartCompleted { handle, result } = n {
                    let i = handles
                        .iter()
                        .position(|h| *h == handle)
                        .expect("our handle");
                    match result {
                        Ok(p) => params[i] = Some(p),
                        Err(error) => return Err(BuildError::Start { node: i, error }),
                    }
                }
            }
        }
        let key = NetworkKey::of(
            &InterfaceDesc::new(config.mode, GuestId(0)).shared_interface_name(
                config
                    .knobs
                    .bridgeable_interfaces
                    .first()
                    .map_or("en0", String::as_str),
            ),
        );
        let gateway_config = config.gateway.clone().unwrap_or_else(|| match config.mode {
            OperatingMode::Shared => GatewayConfig::shared_default(),
            OperatingMode::Host => GatewayConfig::host_default(),
            OperatingMode::Bridged => GatewayConfig::bridged_lan(),
        });
        let gateway_ip = gateway_config.subnet.gateway();
        let mut gateway_config = gateway_config;
        if let Some(mtu) = config.mtu_bytes {
            gateway_config.mtu_bytes = mtu as usize;
        }
        let gateway = Gateway::new(gateway_config, GATEWAY_MAC, rng.fork("gateway").next_u64());
        let board = Board::new(config.nodes.len());
        let mut actors = Vec::new();
        let mut drivers = Vec::new();
        let mut stacks = Vec::new();
        for (i, (spec, p)) in config.nodes.iter().zip(params).enumerate() {
            let p = p.expect("all started");
            let mac = p.mac.ok_or(BuildError::NoMac { node: i })?;
            let max_packet_size_bytes = p.max_packet_size_bytes as usize;
            let info = PortInfo {
                mac,
                mtu_bytes: p.mtu_bytes as usize,
                max_packet_size_bytes,
                max_packets_per_call: p
                    .write_packets_max
                    .unwrap_or(crate::vmnet::PACKETS_PER_CALL_MAX_DOCUMENTED)
                    as usize,
                max_bytes_per_call: config
                    .knobs
                    .bytes_per_call_max
                    .map_or(usize::MAX / 2, |b| b as usize),
            };
            let node_rng = rng.fork(&format!("node{i}"));
            let (port, wire_end) = wire(
                info,
                WireConfig::default(),
                config.faults.port,
                node_rng.fork("port"),
            )
            .map_err(|e| nic_err(i, e))?;
            let buffer_size_bytes = (max_packet_size_bytes as u32)
                .next_multiple_of(512)
                .max(2048);
            let pool_packets = config
                .faults
                .stack
                .pool_packets
                .unwrap_or(config.pool_packets)
                .max(8);
            let name = *b"nic0";
            let pool = PacketBufferPool::create(PoolConfig::new(
                [name[0], name[1], name[2], b'0' + (i % 10) as u8],
                pool_packets,
                buffer_size_bytes,
            ))
            .map_err(|e| nic_err(i, e))?;
            // NDK registration needs a packet per queue slot (ndk.md §3), so a small pool
            // (the pool-exhaustion fault) gets small queues: the largest power of two with
            // four queues' worth of slots in the pool.
            let cap = if pool_packets / 4 >= config.queue_capacity {
                config.queue_capacity
            } else {
                (1u32 << (pool_packets / 4).max(2).ilog2()).max(2)
            };
            let AttachedNic {
                nic,
                service,
                iface,
            } = attach(port, &pool, cap, NicConfig::default()).map_err(|e| nic_err(i, e))?;
            let waker: Arc<dyn Notifier> = Arc::new(FakeNotifier::new());
            let mtu_bytes = p.mtu_bytes as usize;
            // The pool-exhaustion fault: hold all but one and a half queues' worth of the
            // pool for the whole run, so the stack's Rx buffers and Tx frames compete.
            let mut hog = Vec::new();
            if config.faults.stack.pool_packets.is_some() {
                let usable = (cap + cap / 2).max(5);
                for _ in usable..pool_packets {
                    match pool.allocate(ndk_model::pool::Owner::System) {
                        Ok(p) => hog.push(p),
                        Err(_) => break,
                    }
                }
            }
            let stack = OsStack::new(
                StackConfig {
                    mac,
                    mtu_bytes,
                    // A small pool is meant to run dry: keep every Rx slot stocked.
                    rx_buffers_target: if config.faults.stack.pool_packets.is_some() {
                        cap
                    } else {
                        (cap / 2).max(4)
                    },
                    tcp_buffer_bytes: if mtu_bytes > 1500 {
                        256 * 1024
                    } else {
                        64 * 1024
                    },
                    addressing: spec.addressing.unwrap_or(Addressing::Dhcp),
                    seed: node_rng.fork("stack").next_u64(),
                },
                iface,
                Arc::clone(&waker),
                now_ns,
            );
            let actor = WireActor::new(
                wire_end,
                handles[i],
                (mac, GATEWAY_MAC),
                (
                    FaultyLink::new(config.faults.from_nic, node_rng.fork("from_nic")),
                    FaultyLink::new(config.faults.to_nic, node_rng.fork("to_nic")),
                ),
                max_packet_size_bytes,
                32,
            );
            actors.push(actor);
            drivers.push(DriverSide {
                nic,
                service,
                waker,
            });
            stacks.push(StackSide {
                stack,
                script: ScriptRunner::new(i, spec.script.clone(), gateway_ip),
                pool,
                hog,
            });
        }
        let mut net = NetworkSide::new(vmnet, key, gateway, actors, config.host.clone());
        net.inject.clone_from(&config.inject_to_nic);
        net.flaps.clone_from(&config.flaps);
        net.enable_events();
        Ok(Self {
            config,
            net,
            drivers,
            stacks,
            board,
            now_ns,
            rng: rng.fork("scheduler"),
            rounds: 0,
        })
    }

    /// Whether every script (and the host's) is finished.
    pub fn scripts_done(&self) -> bool {
        self.stacks.iter().all(|s| s.script.is_finished()) && self.net.host_done()
    }

    fn script_error(&self) -> Option<RunError> {
        self.stacks.iter().enumerate().find_map(|(node, s)| {
            s.script.error().map(|e| RunError::Script {
                node,
                error: e.clone(),
            })
        })
    }

    /// One scheduler round: every actor once, in a seeded order. Returns whether anything
    /// moved.
    ///
    /// # Errors
    /// [`RunError::Driver`] if a driver pass fails.
    pub fn round(&mut self) -> Result<bool, RunError> {
        let n = self.stacks.len();
        // Actors: 0 = network; 1 + 2i = stack i; 2 + 2i = driver i.
        let mut order: Vec<usize> = (0..=2 * n).collect();
        for k in (1..order.len()).rev() {
            let j = self.rng.below(k as u64 + 1) as usize;
            order.swap(k, j);
        }
        let now_ns = self.now_ns;
        let mut moved = false;
        for a in order {
            if a == 0 {
                moved |= self.net.step(now_ns, &self.board);
            } else if a % 2 == 1 {
                let s = &mut self.stacks[(a - 1) / 2];
                moved |= s.stack.poll(now_ns);
                moved |= s.script.step(&mut s.stack, now_ns, &self.board);
            } else {
                let i = (a - 2) / 2;
                let d = &mut self.drivers[i];
                let out = d
                    .nic
                    .poll(d.service.link_mut())
                    .map_err(|e| RunError::Driver {
                        node: i,
                        detail: e.to_string(),
                    })?;
                moved |= !out.is_idle();
            }
        }
        self.rounds += 1;
        Ok(moved)
    }

    /// The earliest deadline of any actor after `now_ns`.
    fn next_deadline_ns(&mut self) -> Option<u64> {
        let now_ns = self.now_ns;
        let mut t = self.net.next_deadline_ns(now_ns);
        for s in &mut self.stacks {
            t = [t, s.stack.next_deadline_ns(now_ns)]
                .into_iter()
                .flatten()
                .min();
        }
        t
    }

    /// Moves the simulated clock: a little after work (processing time), or to the next
    /// deadline when nothing moved.
    fn tick(&mut self, moved: bool) {
        const WORK_NS: u64 = 1_000;
        const IDLE_NS_MAX: u64 = 10_000_000;
        if moved {
            self.now_ns += WORK_NS;
        } else {
            let next = self
                .next_deadline_ns()
                .unwrap_or(self.now_ns + IDLE_NS_MAX)
                .clamp(self.now_ns + 1, self.now_ns + IDLE_NS_MAX);
            self.now_ns = next;
        }
    }

    /// Runs the scripts to the end on one thread, in seeded order, on the simulated clock.
    ///
    /// # Errors
    /// [`RunError`]: a script failed, a driver pass failed, or the time budget ran out.
    pub fn run_deterministic(&mut self) -> Result<(), RunError> {
        while !self.scripts_done() {
            if let Some(e) = self.script_error() {
                return Err(e);
            }
            if self.now_ns > self.config.sim_time_ns_max {
                return Err(self.stalled());
            }
            let moved = self.round()?;
            self.tick(moved);
        }
        self.script_error().map_or(Ok(()), Err)
    }

    fn stalled(&self) -> RunError {
        let pending: Vec<String> = self
            .stacks
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.script.is_finished())
            .map(|(i, s)| format!("node{i} at {:?}", s.script.outcomes().len()))
            .collect();
        RunError::Stalled {
            now_ns: self.now_ns,
            pending: if pending.is_empty() {
                "host clients".to_owned()
            } else {
                pending.join(", ")
            },
        }
    }

    /// Stops traffic and drains every layer on the simulated clock: stacks stop reposting,
    /// frames in flight land, stacks give back what they hold, and each NIC is disabled
    /// (which returns its buffers). Bounded.
    ///
    /// # Errors
    /// [`RunError::Driver`] if a driver pass fails.
    pub fn quiesce(&mut self) -> Result<(), RunError> {
        for s in &mut self.stacks {
            s.stack.set_reposting(false);
            for p in s.hog.drain(..) {
                // Our own token from this pool: cannot fail.
                let _ = s.pool.system_free(p);
            }
        }
        // Let in-flight frames land: until nothing moves for a while (simulated).
        let mut quiet_rounds = 0;
        for _ in 0..200_000 {
            let moved = self.round()?;
            quiet_rounds = if moved { 0 } else { quiet_rounds + 1 };
            if quiet_rounds > 64 && self.in_flight_frames() == 0 {
                break;
            }
            self.now_ns += 1_000_000;
        }
        for s in &mut self.stacks {
            s.stack.shutdown();
        }
        for d in &mut self.drivers {
            let _ = d.service.set_interface_enable(&mut d.nic, false);
        }
        for _ in 0..64 {
            self.round()?;
            self.now_ns += 1_000_000;
        }
        for s in &mut self.stacks {
            s.stack.shutdown();
        }
        Ok(())
    }

    /// Frames still in the wire actors' links and hands.
    pub fn in_flight_frames(&self) -> u64 {
        self.net
            .actors
            .iter()
            .map(|a| {
                a.from_nic.counters().in_flight()
                    + a.to_nic.counters().in_flight()
                    + a.held_frames()
            })
            .sum()
    }

    /// Every ledger of the world: per node, each hop of the Tx and Rx paths.
    #[expect(clippy::too_many_lines, reason = "one ledger per hop, in path order")]
    pub fn ledgers(&self) -> Vec<Ledger> {
        let mut out = Vec::new();
        for (i, ((s, d), a)) in self
            .stacks
            .iter()
            .zip(&self.drivers)
            .zip(&self.net.actors)
            .enumerate()
        {
            let sc = s.stack.counters();
            let dc = d.nic.counters();
            let pc = d.nic.port().counters();
            let wc = a.counters();
            let from = a.from_nic.counters();
            let to = a.to_nic.counters();
            out.push(Ledger {
                name: format!("node{i} tx: stack → driver"),
                entered: sc.tx_frames_submitted,
                delivered: dc.tx.frames,
                drops: vec![
                    ("packet too big", dc.tx.dropped_packet_too_big),
                    ("runt", dc.tx.dropped_runt),
                    ("port busy", dc.tx.dropped_busy),
                    ("port error", dc.tx.dropped_port_error),
                    ("interface disabled", dc.tx.dropped_disabled),
                ],
                in_flight: 0,
            });
            out.push(Ledger {
                name: format!("node{i} tx: port → wire actor"),
                entered: pc.frames_accepted,
                delivered: wc.from_port_frames,
                drops: vec![],
                in_flight: a.wire.tx_queued() as u64,
            });
            out.push(Ledger {
                name: format!("node{i} tx: wire actor → from-NIC link"),
                entered: wc.from_port_frames,
                delivered: from.entered,
                drops: vec![("link down (flap)", wc.dropped_link_down_tx_frames)],
                in_flight: 0,
            });
            out.push(Ledger {
                name: format!("node{i} tx: from-NIC link"),
                entered: from.entered + from.duplicated,
                delivered: from.delivered,
                drops: vec![
                    ("lost", from.lost),
                    ("link down", from.dropped_link_down),
                    ("link full", from.dropped_full),
                ],
                in_flight: from.in_flight(),
            });
            out.push(Ledger {
                name: format!("node{i} tx: wire actor → vmnet"),
                entered: wc.to_vmnet_offered_frames,
                delivered: wc.to_vmnet_frames,
                drops: vec![("vmnet refused", wc.to_vmnet_refused_frames)],
                in_flight: a.write_pending_frames(),
            });
            out.extend(self.vmnet_ledgers(i, a));
            out.push(Ledger {
                name: format!("node{i} rx: vmnet → wire actor"),
                entered: wc.from_vmnet_frames,
                delivered: to.entered,
                drops: vec![("link down (flap)", wc.dropped_link_down_rx_frames)],
                in_flight: 0,
            });
            out.push(Ledger {
                name: format!("node{i} rx: vmnet → to-NIC link"),
                entered: to.entered + to.duplicated,
                delivered: to.delivered,
                drops: vec![
                    ("lost", to.lost),
                    ("link down", to.dropped_link_down),
                    ("link full", to.dropped_full),
                ],
                in_flight: to.in_flight(),
            });
            out.push(Ledger {
                name: format!("node{i} rx: wire actor → port"),
                entered: wc.to_port_frames,
                delivered: pc.frames_read,
                drops: vec![],
                in_flight: a.wire.rx_queued() as u64,
            });
            out.push(Ledger {
                name: format!("node{i} rx: port → driver"),
                entered: pc.frames_read,
                delivered: dc.rx.frames,
                drops: vec![
                    ("runt", dc.rx.dropped_runt),
                    ("address filter", dc.rx.dropped_filtered),
                    ("too big", dc.rx.dropped_too_big),
                ],
                in_flight: 0,
            });
            out.push(Ledger {
                name: format!("node{i} rx: driver → stack"),
                entered: dc.rx.frames,
                delivered: sc.rx_frames,
                drops: vec![("stack shut down", sc.rx_dropped_shutdown)],
                in_flight: 0,
            });
        }
        out
    }

    /// The hops inside vmnet for node `i`'s interface, cross-checked against the wire
    /// actor's own counts: actor → `vmnet_write` → switch → receive buffer → `vmnet_read` →
    /// actor.
    fn vmnet_ledgers(&self, i: usize, a: &WireActor) -> Vec<Ledger> {
        let vmnet = &self.net.vmnet;
        let Some(v) = vmnet.counters(a.handle) else {
            return vec![];
        };
        let wc = a.counters();
        let port = vmnet
            .port(a.handle)
            .and_then(|p| vmnet.switch(&self.net.key)?.counters(p).ok())
            .unwrap_or_default();
        vec![
            Ledger {
                name: format!("node{i} tx: wire actor → vmnet_write"),
                entered: wc.to_vmnet_frames,
                delivered: v.written_frames,
                drops: vec![],
                in_flight: 0,
            },
            Ledger {
                name: format!("node{i} tx: vmnet → switch"),
                entered: v.written_frames,
                delivered: port.ingress_frames,
                drops: vec![
                    ("source-IP rule", v.dropped_source_ip_frames),
                    ("interface stopped", v.discarded_tx_on_stop_frames),
                ],
                in_flight: 0,
            },
            Ledger {
                name: format!("node{i} rx: switch → vmnet receive buffer"),
                entered: port.egress_frames,
                delivered: v.arrived_frames,
                drops: vec![("receive buffer full", v.dropped_rx_full_frames)],
                in_flight: 0,
            },
            Ledger {
                name: format!("node{i} rx: vmnet receive buffer → vmnet_read"),
                entered: v.arrived_frames,
                delivered: v.read_frames,
                drops: vec![("interface stopped", v.discarded_rx_on_stop_frames)],
                in_flight: vmnet.unread_frames(a.handle).unwrap_or(0) as u64,
            },
            Ledger {
                name: format!("node{i} rx: vmnet_read → wire actor"),
                entered: v.read_frames,
                delivered: wc.from_vmnet_frames,
                drops: vec![],
                in_flight: 0,
            },
        ]
    }

    /// Runs every checker over the quiesced world.
    pub fn check(&self) -> CheckReport {
        let mut report = CheckReport::default();
        for l in self.ledgers() {
            report.add(checkers::check_conservation(&l));
        }
        for (i, s) in self.stacks.iter().enumerate() {
            report.add(checkers::check_pool_full(&format!("node{i} pool"), &s.pool));
            let d = &self.drivers[i];
            let sc = s.stack.counters();
            report.add(checkers::check_driver_counters(
                &d.nic.counters(),
                sc.tx_frames_submitted,
                sc.tx_completed,
            ));
        }
        let reorder_or_dup = self.config.faults.injects_reorder_or_duplicate();
        let corrupt = self.config.faults.to_nic.corrupt_ppm > 0
            || self.config.faults.from_nic.corrupt_ppm > 0;
        if !corrupt {
            for a in &self.net.actors {
                report.add(a.order_out.check(reorder_or_dup, reorder_or_dup));
                report.add(a.order_in.check(reorder_or_dup, reorder_or_dup));
            }
        }
        for (expected, got) in self.transfers() {
            report.add(got.map_or_else(
                |name| {
                    Err(Violation {
                        checker: "transfer",
                        detail: format!("{name}: no receiver saw this stream"),
                    })
                },
                |(name, d)| checkers::check_transfer(&name, expected, d),
            ));
        }
        report
    }

    /// Every TCP stream a script or the host sent, with what its receiver digested.
    #[allow(clippy::type_complexity)]
    pub fn transfers(&self) -> Vec<(Digest, Result<(String, Digest), String>)> {
        let sinks = self.net.gateway.sink_reports();
        let mut out = Vec::new();
        for (i, s) in self.stacks.iter().enumerate() {
            for o in s.script.outcomes() {
                let Step::TcpSend {
                    target,
                    port,
                    total_bytes,
                    seed,
                } = o.step
                else {
                    continue;
                };
                let expected = Digest::of_pattern(seed, total_bytes);
                let name = format!("node{i} → {target:?}:{port} ({total_bytes} B)");
                let got = match target {
                    script::Target::Node(j) => self.stacks.get(j).and_then(|r| {
                        r.script
                            .sinks()
                            .iter()
                            .find(|(p, _)| *p == port)
                            .map(|(_, id)| r.stack.app(*id).digest)
                    }),
                    _ => find_sink(&sinks, port, expected),
                };
                out.push((expected, got.map(|d| (name.clone(), d)).ok_or(name)));
            }
        }
        for h in &self.net.host {
            let HostStep::TcpSend {
                after_node,
                total_bytes,
                seed,
                ..
            } = h.step;
            let expected = Digest::of_pattern(seed, total_bytes);
            let name = format!("host → node{after_node} ({total_bytes} B)");
            let got = self.stacks.get(after_node).and_then(|r| {
                r.script
                    .sinks()
                    .iter()
                    .map(|(_, id)| r.stack.app(*id).digest)
                    .find(|d| *d == expected)
                    .or_else(|| {
                        r.script
                            .sinks()
                            .first()
                            .map(|(_, id)| r.stack.app(*id).digest)
                    })
            });
            out.push((expected, got.map(|d| (name.clone(), d)).ok_or(name)));
        }
        out
    }

    /// The gateway address nodes see.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        self.stacks
            .first()
            .and_then(|s| s.stack.lease().and_then(|l| l.router))
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

/// The sink report matching a stream: the one with the expected digest, else the last one on
/// that port (so a damaged stream is reported, not hidden).
fn find_sink(sinks: &[SinkReport], port: u16, expected: Digest) -> Option<Digest> {
    sinks
        .iter()
        .filter(|s| s.port == port)
        .map(|s| s.digest)
        .find(|d| *d == expected)
        .or_else(|| {
            sinks
                .iter()
                .filter(|s| s.port == port)
                .map(|s| s.digest)
                .next_back()
        })
}
