//! The OS network stack model: smoltcp 0.12 on the *system* side of an NDK interface's queues.
//!
//! **Models:** the macOS kernel network stack above a NetworkingDriverKit Ethernet interface:
//! it keeps empty buffers posted on Rx submission, takes frames from Rx completion, submits
//! frames on Tx submission and frees them from Tx completion, and runs a DHCP client and a few
//! applications (ping, UDP and TCP) on top.
//!
//! **Supported:** IPv4 over Ethernet, static addressing or DHCP (smoltcp's client), ARP, ICMP
//! echo, UDP, TCP with window scaling; [`OsStack::set_reposting`] to model a stack that stops
//! posting Rx buffers; [`OsStack::shutdown`] to hand every packet back.
//!
//! **Rejected:** IPv6, DNS, more than [`APPS_MAX`] applications (the starter returns
//! [`AppId::NONE`], whose report is [`AppFailure::TooManyApps`]).
//!
//! - [`device`]: [`NdkDevice`], the smoltcp `Device` over the queues (reusable on its own).
//! - [`apps`]: the applications' state machines and their [`AppReport`]s.
//!
//! Deterministic: time is `now_ns` passed in (smoltcp gets `Instant::from_micros(now_ns /
//! 1000)`), randomness only from [`StackConfig::seed`] (smoltcp's `random_seed` and the
//! ephemeral ports both come from forks of a [`SimRng`] on it). Each [`OsStack::poll`] does
//! bounded work: at most [`RX_FRAMES_PER_POLL_MAX`] received frames,
//! [`COMPLETIONS_PER_POLL_MAX`] Tx completions, [`REPOSTS_PER_POLL_MAX`] Rx reposts and
//! [`SMOLTCP_ROUNDS_PER_POLL_MAX`] smoltcp rounds.

pub mod apps;
pub mod device;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use ndk_model::ethernet::{EthernetInterface, MacAddress};
use ndk_model::notify::Notifier;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, icmp, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

pub use apps::{AppFailure, AppId, AppKind, AppReport, AppState};
pub use device::{NdkDevice, RawFrameError, StackCounters};

use crate::rng::SimRng;
use apps::{App, Detail};

/// Received frames handed to smoltcp per poll, at most.
pub const RX_FRAMES_PER_POLL_MAX: u32 = 256;
/// Tx completions freed per poll, at most.
pub const COMPLETIONS_PER_POLL_MAX: u32 = 512;
/// Rx buffers posted per poll, at most.
pub const REPOSTS_PER_POLL_MAX: u32 = 512;
/// `Interface::poll` rounds per poll, at most (smoltcp sends one segment per socket a round).
pub const SMOLTCP_ROUNDS_PER_POLL_MAX: u32 = 256;
/// Applications one stack runs, at most.
pub const APPS_MAX: usize = 64;
/// TCP socket buffers are clamped to this (smoltcp refuses more than 1 GiB).
pub const TCP_BUFFER_BYTES_MAX: usize = 16 * 1024 * 1024;
/// ... and to at least this.
pub const TCP_BUFFER_BYTES_MIN: usize = 1024;
/// smoltcp's TCP timeout: a connection that gets no ACK for this long aborts. smoltcp 0.13
/// follows RFC 6298 (RTO at least 1 s, doubling up to 60 s), so a few losses of one segment
/// can take minutes to repair; the timeout leaves room for that.
pub const TCP_TIMEOUT_S: u64 = 600;
/// TCP keep-alive interval. smoltcp 0.12 had no zero-window probe (persist timer): a lost
/// window update after a zero window stalled the sender until [`TCP_TIMEOUT_S`]; a keep-alive
/// on an idle timer makes the peer answer with its current window. Kept with smoltcp 0.13,
/// whose probes back off like its RTO.
pub const TCP_KEEP_ALIVE_MS: u64 = 250;
/// When a poll did nothing at `t`, a smoltcp deadline at or before `t` is stale (smoltcp 0.12
/// keeps reporting a silenced socket's past `silent_until` while its neighbour stays
/// unresolved): the stack then asks to be polled this much later instead of spinning.
pub const STALE_DEADLINE_RETRY_NS: u64 = 10_000_000;
/// The first ephemeral port (IANA dynamic range 49152–65535).
pub const EPHEMERAL_PORT_FIRST: u16 = 49152;

/// How the stack gets its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// Run smoltcp's DHCP client.
    Dhcp,
    /// A fixed address and an optional default gateway.
    Static {
        /// Address and prefix.
        cidr: Ipv4Cidr,
        /// Default route, if any.
        gateway: Option<Ipv4Addr>,
    },
}

/// An [`OsStack`]'s settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackConfig {
    /// The station address (must be unicast; otherwise the interface's own is used).
    pub mac: MacAddress,
    /// IP MTU; smoltcp's `max_transmission_unit` is this plus 14.
    pub mtu_bytes: usize,
    /// Empty Rx buffers to keep posted.
    pub rx_buffers_target: u32,
    /// Per-socket TCP receive and send buffer (clamped to
    /// [`TCP_BUFFER_BYTES_MIN`]..=[`TCP_BUFFER_BYTES_MAX`]).
    pub tcp_buffer_bytes: usize,
    /// Static or DHCP.
    pub addressing: Addressing,
    /// The seed of every random choice the stack makes.
    pub seed: u64,
}

impl StackConfig {
    /// MTU 1500, 64 Rx buffers, 64 KiB TCP buffers.
    pub fn new(mac: MacAddress, addressing: Addressing, seed: u64) -> Self {
        Self {
            mac,
            mtu_bytes: 1500,
            rx_buffers_target: 64,
            tcp_buffer_bytes: 64 * 1024,
            addressing,
            seed,
        }
    }
}

/// A DHCP lease as the stack holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Address and prefix.
    pub address: Ipv4Cidr,
    /// Default gateway (option 3).
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns_servers: Vec<Ipv4Addr>,
    /// Lease time (option 51) from the ACK, in seconds; `None` if the ACK carried none.
    pub lease_duration_s: Option<u32>,
}

/// The OS network stack on one NDK Ethernet interface.
pub struct OsStack {
    config: StackConfig,
    device: NdkDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    lease: Option<Lease>,
    doorbell: Arc<dyn Notifier>,
    reposting: bool,
    shut_down: bool,
    rx_dropped_shutdown: u64,
    /// When the last poll that did nothing ran (cleared by one that did something).
    idle_poll_ns: Option<u64>,
    apps: Vec<App>,
    ports_rng: SimRng,
    ports_used: BTreeSet<u16>,
    tcp_buffer_bytes: usize,
}

impl std::fmt::Debug for OsStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // smoltcp's `Interface` and `SocketSet` are not `Debug`.
        f.debug_struct("OsStack")
            .field("config", &self.config)
            .field("ipv4", &self.iface.ipv4_addr())
            .field("lease", &self.lease)
            .field("reposting", &self.reposting)
            .field("shut_down", &self.shut_down)
            .field("apps", &self.apps.len())
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

fn instant(now_ns: u64) -> Instant {
    Instant::from_micros(i64::try_from(now_ns / 1000).unwrap_or(i64::MAX))
}

fn instant_ns(at: Instant) -> u64 {
    u64::try_from(at.total_micros())
        .unwrap_or(0)
        .saturating_mul(1000)
}

impl OsStack {
    /// A stack on `iface` (packets from its Tx and Rx pools), ringing `doorbell` after it
    /// enqueues Tx frames. Posts its first Rx buffers on the first [`OsStack::poll`].
    pub fn new(
        config: StackConfig,
        iface: EthernetInterface,
        doorbell: Arc<dyn Notifier>,
        now_ns: u64,
    ) -> Self {
        let mac = if config.mac.is_unicast() {
            config.mac
        } else {
            iface.mac()
        };
        let tx_pool = iface.tx_pool().clone();
        let rx_pool = iface.rx_pool().clone();
        let mut device = NdkDevice::new(iface.into_queues(), tx_pool, rx_pool, config.mtu_bytes);
        let rng = SimRng::new(config.seed);
        let mut smoltcp_cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac.0)));
        smoltcp_cfg.random_seed = rng.fork("stack.smoltcp").next_u64();
        let mut smol = Interface::new(smoltcp_cfg, &mut device, instant(now_ns));
        let mut sockets = SocketSet::new(Vec::new());
        let dhcp = match config.addressing {
            Addressing::Dhcp => Some(sockets.add(dhcpv4::Socket::new())),
            Addressing::Static { cidr, gateway } => {
                smol.update_ip_addrs(|addrs| {
                    let _ = addrs.push(IpCidr::Ipv4(cidr));
                });
                if let Some(gw) = gateway {
                    let _ = smol.routes_mut().add_default_ipv4_route(gw);
                }
                None
            }
        };
        Self {
            tcp_buffer_bytes: config
                .tcp_buffer_bytes
                .clamp(TCP_BUFFER_BYTES_MIN, TCP_BUFFER_BYTES_MAX),
            config,
            device,
            iface: smol,
            sockets,
            dhcp,
            lease: None,
            doorbell,
            reposting: true,
            shut_down: false,
            rx_dropped_shutdown: 0,
            idle_poll_ns: None,
            apps: Vec::new(),
            ports_rng: rng.fork("stack.ports"),
            ports_used: BTreeSet::new(),
        }
    }

    /// One bounded pass: free Tx completions, repost Rx buffers, run smoltcp (ingress up to
    /// the Rx budget, then egress) and the applications, ring the doorbell once if frames
    /// were submitted. Returns whether it did anything.
    pub fn poll(&mut self, now_ns: u64) -> bool {
        if self.shut_down {
            return self.drain() > 0;
        }
        let ts = instant(now_ns);
        let mut did = self.device.collect_tx_completions(COMPLETIONS_PER_POLL_MAX) > 0;
        did |= self.repost();
        self.device.begin_poll(RX_FRAMES_PER_POLL_MAX);
        for _ in 0..SMOLTCP_ROUNDS_PER_POLL_MAX {
            let frames_before = self.device.counters().rx_frames;
            let smol = self.iface.poll(ts, &mut self.device, &mut self.sockets);
            let rx_moved = self.device.counters().rx_frames != frames_before;
            let dhcp = self.poll_dhcp();
            let mut apps = false;
            for app in &mut self.apps {
                apps |= app.drive(&mut self.sockets, &mut self.iface, now_ns);
            }
            if smol == PollResult::None && !rx_moved && !dhcp && !apps {
                break;
            }
            did = true;
        }
        self.device.begin_poll(0);
        did |= self.repost();
        if self.device.take_tx_enqueued() > 0 {
            self.doorbell.notify();
            self.device.note_doorbell();
            did = true;
        }
        self.idle_poll_ns = (!did).then_some(now_ns);
        did
    }

    fn repost(&mut self) -> bool {
        self.reposting
            && self
                .device
                .repost_rx(self.config.rx_buffers_target, REPOSTS_PER_POLL_MAX)
                > 0
    }

    /// Applies a DHCP event, if any; returns whether one came.
    fn poll_dhcp(&mut self) -> bool {
        let Some(handle) = self.dhcp else {
            return false;
        };
        let event = self.sockets.get_mut::<dhcpv4::Socket<'_>>(handle).poll();
        match event {
            None => false,
            Some(dhcpv4::Event::Configured(cfg)) => {
                let address = cfg.address;
                let router = cfg.router;
                let dns_servers: Vec<Ipv4Addr> = cfg.dns_servers.iter().copied().collect();
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    let _ = addrs.push(IpCidr::Ipv4(address));
                });
                match router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                let ack = self.device.take_dhcp_ack();
                let lease_duration_s = ack
                    .filter(|a| a.address == address.address())
                    .and_then(|a| a.lease_duration_s);
                self.lease = Some(Lease {
                    address,
                    router,
                    dns_servers,
                    lease_duration_s,
                });
                true
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                });
                self.iface.routes_mut().remove_default_ipv4_route();
                self.lease = None;
                true
            }
        }
    }

    /// When the stack next needs a poll with no frame arriving: smoltcp's `poll_at`, the
    /// applications' timers, and `now_ns` if completions are waiting. `None`: only a frame
    /// can wake it.
    pub fn next_deadline_ns(&mut self, now_ns: u64) -> Option<u64> {
        if self.shut_down {
            return None;
        }
        if self.device.rx_pending() > 0 || self.device.tx_completions_pending() > 0 {
            return Some(now_ns);
        }
        let smol = self
            .iface
            .poll_at(instant(now_ns), &self.sockets)
            .map(|at| match self.idle_poll_ns {
                // A poll at `idle` did nothing, so nothing was due by then.
                Some(idle) if instant_ns(at) <= idle => {
                    idle.saturating_add(STALE_DEADLINE_RETRY_NS)
                }
                _ => instant_ns(at),
            });
        let apps = self.apps.iter().filter_map(App::deadline_ns).min();
        match (smol, apps) {
            (Some(a), Some(b)) => Some(a.min(b).max(now_ns)),
            (a, b) => a.or(b).map(|t| t.max(now_ns)),
        }
    }

    /// The DHCP lease, while configured.
    pub fn lease(&self) -> Option<Lease> {
        self.lease.clone()
    }

    /// The interface's IPv4 address, if it has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.iface.ipv4_addr()
    }

    /// Fault switch: with `false` the stack stops posting Rx buffers (frames then wait or
    /// drop at the driver); `true` resumes.
    pub fn set_reposting(&mut self, on: bool) {
        self.reposting = on;
    }

    /// Whether the stack posts Rx buffers.
    pub fn is_reposting(&self) -> bool {
        self.reposting
    }

    fn next_ephemeral_port(&mut self) -> u16 {
        let span = u64::from(u16::MAX - EPHEMERAL_PORT_FIRST) + 1;
        // Bounded: at most APPS_MAX ports are taken, so a free one turns up quickly; the scan
        // after the random start guarantees it.
        let start = self.ports_rng.below(span) as u16;
        for i in 0..span as u16 {
            let port = EPHEMERAL_PORT_FIRST + start.wrapping_add(i) % span as u16;
            if self.ports_used.insert(port) {
                return port;
            }
        }
        EPHEMERAL_PORT_FIRST
    }

    fn add_app(&mut self, kind: AppKind, handle: SocketHandle, detail: Detail) -> AppId {
        let id = AppId(self.apps.len() as u32);
        self.apps.push(App {
            report: AppReport::new(kind),
            handle,
            detail,
        });
        id
    }

    fn tcp_socket(&self) -> tcp::Socket<'static> {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.tcp_buffer_bytes]),
            tcp::SocketBuffer::new(vec![0; self.tcp_buffer_bytes]),
        );
        s.set_timeout(Some(Duration::from_secs(TCP_TIMEOUT_S)));
        s.set_nagle_enabled(false);
        s.set_keep_alive(Some(Duration::from_millis(TCP_KEEP_ALIVE_MS)));
        s
    }

    fn udp_socket(packets: usize, payload_bytes: usize) -> udp::Socket<'static> {
        udp::Socket::new(
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; packets],
                vec![0; payload_bytes],
            ),
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; packets],
                vec![0; payload_bytes],
            ),
        )
    }

    /// Sends `count` echo requests to `dst`, one every `interval_ns`, once the stack has an
    /// address; counts matching replies (ident, sequence and payload) and their RTTs.
    pub fn ping(&mut self, dst: Ipv4Addr, count: u16, interval_ns: u64) -> AppId {
        if self.apps.len() >= APPS_MAX {
            return AppId::NONE;
        }
        let ident = self.ports_rng.next_u32() as u16;
        let packets = usize::from(count.clamp(1, 16));
        let mut socket = icmp::Socket::new(
            icmp::PacketBuffer::new(
                vec![icmp::PacketMetadata::EMPTY; packets],
                vec![0; packets * 128],
            ),
            icmp::PacketBuffer::new(
                vec![icmp::PacketMetadata::EMPTY; packets],
                vec![0; packets * 128],
            ),
        );
        let bound = socket.bind(icmp::Endpoint::Ident(ident)).is_ok();
        let handle = self.sockets.add(socket);
        let id = self.add_app(
            AppKind::Ping,
            handle,
            Detail::Ping(apps::Ping {
                dst,
                count,
                interval_ns,
                ident,
                next_send_ns: None,
                last_send_ns: 0,
                sent_at_ns: vec![u64::MAX; usize::from(count)],
                answered: vec![false; usize::from(count)],
            }),
        );
        if !bound {
            self.fail(id, AppFailure::BindFailed);
        }
        if count == 0 {
            self.apps[id.0 as usize].report.state = AppState::Done;
        }
        id
    }

    fn fail(&mut self, id: AppId, failure: AppFailure) {
        if let Some(app) = self.apps.get_mut(id.0 as usize) {
            app.report.fail(failure);
        }
    }

    /// Connects to `dst` (from an ephemeral port), streams `pattern_byte(seed, i)` for `i` in
    /// `0..total_bytes`, then closes. Done when everything is acknowledged and the FIN is.
    pub fn tcp_send(&mut self, dst: SocketAddrV4, total_bytes: u64, seed: u64) -> AppId {
        if self.apps.len() >= APPS_MAX {
            return AppId::NONE;
        }
        let local_port = self.next_ephemeral_port();
        let handle = self.sockets.add(self.tcp_socket());
        self.add_app(
            AppKind::TcpSend,
            handle,
            Detail::TcpSend(apps::TcpSend {
                dst,
                local_port,
                total_bytes,
                seed,
                offset: 0,
                connected: false,
                closed: false,
            }),
        )
    }

    /// Listens on `port`, accepts one connection and digests everything until the peer
    /// closes; then closes too.
    pub fn tcp_sink(&mut self, port: u16) -> AppId {
        if self.apps.len() >= APPS_MAX {
            return AppId::NONE;
        }
        let mut socket = self.tcp_socket();
        let ok = socket.listen(port).is_ok();
        let handle = self.sockets.add(socket);
        let id = self.add_app(AppKind::TcpSink, handle, Detail::TcpSink);
        if !ok {
            self.fail(id, AppFailure::BindFailed);
        }
        id
    }

    /// An echo server on `port`: one connection at a time, listening again after each.
    pub fn tcp_echo(&mut self, port: u16) -> AppId {
        if self.apps.len() >= APPS_MAX {
            return AppId::NONE;
        }
        let mut socket = self.tcp_socket();
        let ok = socket.listen(port).is_ok();
        let handle = self.sockets.add(socket);
        let id = self.add_app(
            AppKind::TcpEcho,
            handle,
            Detail::TcpEcho(apps::TcpEcho {
                port,
                scratch: vec![0; apps::ECHO_CHUNK_BYTES],
                in_connection: false,
                closed: false,
            }),
        );
        if !ok {
            self.fail(id, AppFailure::BindFailed);
        }
        id
    }

    /// A UDP echo server on `port`.
    pub fn udp_echo(&mut self, port: u16) -> AppId {
        if self.apps.len() >= APPS_MAX {
            return AppId::NONE;
        }
        let payload_bytes = (self.config.mtu_bytes * 32).max(64 * 1024);
        let mut socket = Self::udp_socket(64, payload_bytes);
        let ok = socket.bind(port).is_ok();
        let handle = self.sockets.add(socket);
        let id = self.add_app(
            AppKind::UdpEcho,
            handle,
            Detail::UdpEcho(apps::UdpEcho {
                scratch: vec![0; self.config.mtu_bytes.max(1500)],
            }),
        );
        if !ok {
            self.fail(id, AppFailure::BindFailed);
        }
        id
    }

    /// Sends `count` datagrams of `len_bytes` to `dst` (one every
    /// [`apps::UDP_PROBE_INTERVAL_NS`]) and counts echoes whose payload matches one sent.
    pub fn udp_probe(
        &mut self,
        dst: SocketAddrV4,
        count: u16,
        len_bytes: usize,
        seed: u64,
    ) -> AppId {
        self.udp_probe_every(dst, count, len_bytes, seed, apps::UDP_PROBE_INTERVAL_NS)
    }

    /// As [`OsStack::udp_probe`], one datagram every `interval_ns`.
    pub fn udp_probe_every(
        &mut self,
        dst: SocketAddrV4,
        count: u16,
        len_bytes: usize,
        seed: u64,
        interval_ns: u64,
    ) -> AppId {
        if self.apps.len() >= APPS_MAX {
            return AppId::NONE;
        }
        let local_port = self.next_ephemeral_port();
        // IPv4 (20) + UDP (8) headers; no fragmentation.
        let too_big = len_bytes + 28 > self.config.mtu_bytes;
        let mut socket = Self::udp_socket(16, 16 * len_bytes.max(1));
        let ok = socket.bind(local_port).is_ok();
        let handle = self.sockets.add(socket);
        let id = self.add_app(
            AppKind::UdpProbe,
            handle,
            Detail::UdpProbe(apps::UdpProbe {
                dst,
                count,
                len_bytes,
                seed,
                interval_ns,
                next_send_ns: None,
                last_send_ns: 0,
                sent: 0,
                matched: vec![false; usize::from(count)],
                scratch: vec![0; len_bytes.max(1500)],
            }),
        );
        if too_big {
            self.fail(id, AppFailure::DatagramTooBig);
        } else if !ok {
            self.fail(id, AppFailure::BindFailed);
        } else if count == 0 {
            self.apps[id.0 as usize].report.state = AppState::Done;
        }
        id
    }

    /// What application `id` did so far.
    pub fn app(&self, id: AppId) -> AppReport {
        if id == AppId::NONE {
            return AppReport::failed(AppKind::Ping, AppFailure::TooManyApps);
        }
        self.apps.get(id.0 as usize).map_or(
            AppReport::failed(AppKind::Ping, AppFailure::UnknownApp),
            |a| a.report.clone(),
        )
    }

    /// Submits a raw frame on Tx submission (not through smoltcp) and rings the doorbell: a
    /// malformed frame from the OS, for fault tests.
    ///
    /// # Errors
    /// [`RawFrameError`]; nothing was submitted.
    pub fn submit_raw_frame(&mut self, frame: &[u8]) -> Result<(), RawFrameError> {
        self.device.submit_raw_frame(frame)?;
        self.doorbell.notify();
        self.device.note_doorbell();
        Ok(())
    }

    /// A copy of the counters.
    pub fn counters(&self) -> StackCounters {
        let mut c = self.device.counters();
        c.rx_dropped_shutdown = self.rx_dropped_shutdown;
        c
    }

    /// Packets this stack holds from the pool right now (posted Rx buffers are the driver's).
    pub fn packets_held(&self) -> u32 {
        self.device.packets_held()
    }

    /// Stops reposting and frees everything the stack holds or finds in its completion
    /// queues. Later polls only keep freeing completions (frames that still arrive are
    /// counted in [`StackCounters::rx_dropped_shutdown`]).
    pub fn shutdown(&mut self) {
        self.reposting = false;
        self.shut_down = true;
        self.drain();
    }

    fn drain(&mut self) -> u32 {
        let (tx, rx) = self.device.drain_completions(COMPLETIONS_PER_POLL_MAX * 16);
        self.rx_dropped_shutdown += u64::from(rx);
        tx + rx
    }
}
