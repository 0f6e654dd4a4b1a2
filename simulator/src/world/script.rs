//! Scripts: what each simulated machine does, as data, so the same scenario runs under the
//! deterministic scheduler and on threads.
//!
//! A node's [`Script`] runs on its OS stack (the kernel side of the NIC): wait for a DHCP
//! lease, ping, stream TCP, serve a sink. The host's [`HostStep`]s run on the network side
//! (the Mac's own sockets, reaching guests through port forwards). Nodes publish their
//! address and readiness on a lock-free [`Board`] so scripts can name each other.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crate::gateway::OUTSIDE_HOST;
use crate::stack::{AppId, AppReport, AppState, OsStack, RawFrameError};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Where a step sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The network's gateway (the host's bridge address, `.1`).
    Gateway,
    /// The simulated outside host behind NAT ([`OUTSIDE_HOST`]).
    Outside,
    /// Another node of the world, by index, once it has an address.
    Node(usize),
    /// A fixed address.
    Addr(Ipv4Addr),
}

/// One step of a node's script. Steps run in order; a step that starts an app waits for it
/// unless it says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait until DHCP leases an address (published on the board).
    AwaitLease,
    /// Ping `target` `count` times, one per `interval_ns`; passes with at least
    /// `replies_min` replies.
    Ping {
        /// Whom to ping.
        target: Target,
        /// Echo requests to send.
        count: u16,
        /// Replies needed to pass.
        replies_min: u16,
        /// Time between requests.
        interval_ns: u64,
    },
    /// Stream `total_bytes` of the seeded pattern to `target:port` over TCP and close.
    TcpSend {
        /// The receiver.
        target: Target,
        /// Its port.
        port: u16,
        /// Bytes to send.
        total_bytes: u64,
        /// The pattern's seed.
        seed: u64,
    },
    /// Start a TCP sink on `port` and mark this node ready; does not wait for it.
    TcpSink {
        /// The port to listen on.
        port: u16,
    },
    /// Wait until the sink on `port` has received a whole stream (the peer closed).
    AwaitSink {
        /// The sink's port.
        port: u16,
    },
    /// Send `count` UDP datagrams of `len_bytes` to an echo server at `target:port`, one every
    /// `interval_ns`; passes with at least `echoes_min` intact echoes.
    UdpProbe {
        /// The echo server.
        target: Target,
        /// Its port.
        port: u16,
        /// Datagrams to send.
        count: u16,
        /// Echoes needed to pass.
        echoes_min: u16,
        /// Payload size.
        len_bytes: usize,
        /// Time between datagrams.
        interval_ns: u64,
    },
    /// Submit a raw frame of `len_bytes` straight on Tx submission, past the stack's TCP/IP:
    /// an OS handing the driver a malformed frame (a runt, or one over the port's packet
    /// size). Waits while the queue or pool is full.
    RawFrame {
        /// The frame's length.
        len_bytes: usize,
    },
    /// Turn Rx-buffer reposting off or on (the "stack stops reposting" fault).
    SetReposting(bool),
    /// Wait this long.
    Sleep {
        /// How long.
        duration_ns: u64,
    },
}

/// A node's script.
pub type Script = Vec<Step>;

/// The main job's script: wait for a DHCP lease, ping the gateway four times (all four must
/// answer), then stream `total_bytes` of the pattern for `seed` to the sink on `target:9`.
pub fn lease_ping_send(target: Target, total_bytes: u64, seed: u64) -> Script {
    vec![
        Step::AwaitLease,
        Step::Ping {
            target: Target::Gateway,
            count: 4,
            replies_min: 4,
            interval_ns: 10_000_000,
        },
        Step::TcpSend {
            target,
            port: 9,
            total_bytes,
            seed,
        },
    ]
}

/// What a finished (or failed) step reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The step.
    pub step: Step,
    /// The app's last report, for steps that ran one.
    pub report: Option<AppReport>,
    /// Simulated (or wall) nanoseconds the step took.
    pub elapsed_ns: u64,
}

/// Why a script failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {index} ({step:?}) failed: {reason}")]
pub struct ScriptError {
    /// The failing step's position.
    pub index: usize,
    /// The step.
    pub step: Step,
    /// Why.
    pub reason: String,
}

/// What nodes publish for each other: a leased address (0 = none), a ready flag, a done flag
/// and progress counts per node. Lock-free, shared between threads: each value is published
/// with `Release` and read with `Acquire`, so a reader that sees a node ready also sees the
/// address it published before (checked under loom in `simulator/tests/loom_board.rs`).
#[derive(Debug)]
pub struct Board {
    addresses: Vec<AtomicU32>,
    ready: Vec<AtomicBool>,
    done: Vec<AtomicBool>,
    tx_bytes: Vec<AtomicU64>,
    rx_bytes: Vec<AtomicU64>,
}

impl Board {
    /// A board for `nodes` nodes.
    pub fn new(nodes: usize) -> Arc<Self> {
        Arc::new(Self {
            addresses: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
            ready: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
            done: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
            tx_bytes: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
            rx_bytes: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Node `i`'s address, once leased.
    pub fn address(&self, i: usize) -> Option<Ipv4Addr> {
        match self.addresses.get(i)?.load(Ordering::Acquire) {
            0 => None,
            a => Some(Ipv4Addr::from(a)),
        }
    }

    /// Publishes node `i`'s address.
    pub fn publish_address(&self, i: usize, a: Ipv4Addr) {
        self.addresses[i].store(u32::from(a), Ordering::Release);
    }

    /// Whether node `i` has a sink listening.
    pub fn is_ready(&self, i: usize) -> bool {
        self.ready.get(i).is_some_and(|r| r.load(Ordering::Acquire))
    }

    /// Whether node `i`'s script has finished.
    pub fn is_done(&self, i: usize) -> bool {
        self.done.get(i).is_some_and(|r| r.load(Ordering::Acquire))
    }

    /// Whether every node's script has finished.
    pub fn all_done(&self) -> bool {
        self.done.iter().all(|d| d.load(Ordering::Acquire))
    }

    /// Publishes node `i`'s stack byte counts (for a live progress line).
    pub fn publish_progress(&self, i: usize, tx_bytes: u64, rx_bytes: u64) {
        self.tx_bytes[i].store(tx_bytes, Ordering::Relaxed);
        self.rx_bytes[i].store(rx_bytes, Ordering::Relaxed);
    }

    /// Node `i`'s last published (tx, rx) stack byte counts.
    pub fn progress(&self, i: usize) -> (u64, u64) {
        (
            self.tx_bytes[i].load(Ordering::Relaxed),
            self.rx_bytes[i].load(Ordering::Relaxed),
        )
    }

    /// How many nodes the board has.
    pub fn nodes(&self) -> usize {
        self.done.len()
    }

    /// Marks node `i` ready (its sink listens).
    pub fn set_ready(&self, i: usize) {
        self.ready[i].store(true, Ordering::Release);
    }

    /// Marks node `i`'s script finished.
    pub fn set_done(&self, i: usize) {
        self.done[i].store(true, Ordering::Release);
    }
}

/// Runs one node's script against its stack, one non-blocking step at a time.
#[derive(Debug)]
pub struct ScriptRunner {
    node: usize,
    steps: Script,
    pc: usize,
    app: Option<AppId>,
    sinks: Vec<(u16, AppId)>,
    step_started_ns: Option<u64>,
    outcomes: Vec<StepOutcome>,
    error: Option<ScriptError>,
    gateway: Ipv4Addr,
}

impl ScriptRunner {
    /// A runner for node `node`; `gateway` is the network's gateway address.
    pub fn new(node: usize, steps: Script, gateway: Ipv4Addr) -> Self {
        Self {
            node,
            steps,
            pc: 0,
            app: None,
            sinks: Vec::new(),
            step_started_ns: None,
            outcomes: Vec::new(),
            error: None,
            gateway,
        }
    }

    /// Whether every step finished or one failed.
    pub fn is_finished(&self) -> bool {
        self.error.is_some() || self.pc >= self.steps.len()
    }

    /// The failure, if a step failed.
    pub fn error(&self) -> Option<&ScriptError> {
        self.error.as_ref()
    }

    /// What each finished step reported.
    pub fn outcomes(&self) -> &[StepOutcome] {
        &self.outcomes
    }

    /// The sinks this script started: (port, app).
    pub fn sinks(&self) -> &[(u16, AppId)] {
        &self.sinks
    }

    fn resolve(&self, target: Target, board: &Board) -> Option<Ipv4Addr> {
        match target {
            Target::Gateway => Some(self.gateway),
            Target::Outside => Some(OUTSIDE_HOST),
            Target::Node(i) => board.address(i),
            Target::Addr(a) => Some(a),
        }
    }

    fn fail(&mut self, reason: String) {
        self.error = Some(ScriptError {
            index: self.pc,
            step: self.steps[self.pc].clone(),
            reason,
        });
    }

    fn finish(&mut self, now_ns: u64, report: Option<AppReport>) {
        let started = self.step_started_ns.take().unwrap_or(now_ns);
        self.outcomes.push(StepOutcome {
            step: self.steps[self.pc].clone(),
            report,
            elapsed_ns: now_ns.saturating_sub(started),
        });
        self.app = None;
        self.pc += 1;
    }

    /// Advances the script as far as it can without waiting; returns whether it moved.
    /// Bounded: at most one step finishes per call.
    #[expect(clippy::too_many_lines, reason = "one arm per step kind")]
    pub fn step(&mut self, stack: &mut OsStack, now_ns: u64, board: &Board) -> bool {
        if self.is_finished() {
            return false;
        }
        let c = stack.counters();
        board.publish_progress(self.node, c.tx_bytes, c.rx_bytes);
        if let Some(a) = stack.ipv4() {
            if board.address(self.node) != Some(a) {
                board.publish_address(self.node, a);
            }
        }
        let started = *self.step_started_ns.get_or_insert(now_ns);
        let step = self.steps[self.pc].clone();
        let moved = match step {
            Step::AwaitLease => {
                if stack.ipv4().is_some() {
                    self.finish(now_ns, None);
                    true
                } else {
                    false
                }
            }
            Step::Ping {
                target,
                count,
                replies_min,
                interval_ns,
            } => self.run_app(
                stack,
                now_ns,
                board,
                target,
                |s, dst| s.ping(dst, count, interval_ns),
                move |r| {
                    if r.pings_received >= u64::from(replies_min) {
                        Ok(())
                    } else {
                        Err(format!(
                            "{} of {count} pings answered, {replies_min} needed",
                            r.pings_received
                        ))
                    }
                },
            ),
            Step::TcpSend {
                target,
                port,
                total_bytes,
                seed,
            } => self.run_app(
                stack,
                now_ns,
                board,
                target,
                |s, dst| s.tcp_send(SocketAddrV4::new(dst, port), total_bytes, seed),
                move |r| {
                    if r.bytes_sent == total_bytes {
                        Ok(())
                    } else {
                        Err(format!("sent {} of {total_bytes} bytes", r.bytes_sent))
                    }
                },
            ),
            Step::UdpProbe {
                target,
                port,
                count,
                echoes_min,
                len_bytes,
                interval_ns,
            } => {
                let seed = u64::from(port) ^ (self.node as u64) << 32;
                self.run_app(
                    stack,
                    now_ns,
                    board,
                    target,
                    |s, dst| {
                        s.udp_probe_every(
                            SocketAddrV4::new(dst, port),
                            count,
                            len_bytes,
                            seed,
                            interval_ns,
                        )
                    },
                    move |r| {
                        if r.echoes_received >= u64::from(echoes_min) {
                            Ok(())
                        } else {
                            Err(format!(
                                "{} of {count} echoes, {echoes_min} needed",
                                r.echoes_received
                            ))
                        }
                    },
                )
            }
            Step::TcpSink { port } => {
                let id = stack.tcp_sink(port);
                self.sinks.push((port, id));
                board.set_ready(self.node);
                self.finish(now_ns, None);
                true
            }
            Step::AwaitSink { port } => {
                let Some(&(_, id)) = self.sinks.iter().find(|(p, _)| *p == port) else {
                    self.fail(format!("no sink on port {port}"));
                    return true;
                };
                let report = stack.app(id);
                match report.state {
                    AppState::Done => {
                        self.finish(now_ns, Some(report));
                        true
                    }
                    AppState::Failed(reason) => {
                        self.fail(reason);
                        true
                    }
                    _ => false,
                }
            }
            Step::RawFrame { len_bytes } => {
                let mut frame = vec![0x5a_u8; len_bytes];
                let header = [
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0, 0x88, 0xb5,
                ];
                let n = len_bytes.min(header.len());
                frame[..n].copy_from_slice(&header[..n]);
                match stack.submit_raw_frame(&frame) {
                    Ok(()) => {
                        self.finish(now_ns, None);
                        true
                    }
                    Err(RawFrameError::QueueFull | RawFrameError::NoPacket) => false,
                    Err(e @ RawFrameError::TooBigForBuffer { .. }) => {
                        self.fail(e.to_string());
                        true
                    }
                }
            }
            Step::SetReposting(on) => {
                stack.set_reposting(on);
                self.finish(now_ns, None);
                true
            }
            Step::Sleep { duration_ns } => {
                if now_ns.saturating_sub(started) >= duration_ns {
                    self.finish(now_ns, None);
                    true
                } else {
                    false
                }
            }
        };
        if self.is_finished() {
            board.set_done(self.node);
        }
        moved
    }

    /// Starts an app once its target resolves, then waits for it and judges its report.
    fn run_app(
        &mut self,
        stack: &mut OsStack,
        now_ns: u64,
        board: &Board,
        target: Target,
        start: impl FnOnce(&mut OsStack, Ipv4Addr) -> AppId,
        judge: impl FnOnce(&AppReport) -> Result<(), String>,
    ) -> bool {
        let Some(id) = self.app else {
            let Some(dst) = self.resolve(target, board) else {
                return false;
            };
            if let Target::Node(i) = target {
                if !board.is_ready(i) && self.needs_ready() {
                    return false;
                }
            }
            self.app = Some(start(stack, dst));
            return true;
        };
        let report = stack.app(id);
        match &report.state {
            AppState::Done => {
                match judge(&report) {
                    Ok(()) => self.finish(now_ns, Some(report)),
                    Err(reason) => self.fail(reason),
                }
                true
            }
            AppState::Failed(reason) => {
                let reason = reason.clone();
                self.fail(reason);
                true
            }
            _ => false,
        }
    }

    fn needs_ready(&self) -> bool {
        matches!(self.steps[self.pc], Step::TcpSend { .. })
    }
}

/// One step of the host's own script (the Mac side, on the network thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostStep {
    /// Once node `after_node` has a sink ready, connect from the host to `dst` (a forwarded
    /// port) and stream `total_bytes` of the pattern for `seed`.
    TcpSend {
        /// Wait for this node's sink.
        after_node: usize,
        /// Where the host connects (the forward's external side).
        dst: SocketAddrV4,
        /// Bytes to send.
        total_bytes: u64,
        /// The pattern's seed.
        seed: u64,
    },
}
