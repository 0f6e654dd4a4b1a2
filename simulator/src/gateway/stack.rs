//! The smoltcp stacks behind the gateway: the host's own services at the gateway address, the
//! bridged LAN host and the simulated outside world. Each is a `Medium::Ip` [`Interface`] on a
//! [`QueueDevice`] (two bounded `VecDeque`s), so the gateway moves whole IPv4 packets in and out.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, IpProtocol, Ipv4Packet,
    TcpPacket,
};

use crate::pattern::{fill_pattern, Digest};

/// Most packets one direction of a [`QueueDevice`] holds.
pub(crate) const DEVICE_QUEUE_PACKETS_MAX: usize = 1024;
/// Listening sockets per TCP service (concurrent connections it accepts).
const SERVICE_SLOTS: usize = 4;
/// Most sink reports one stack keeps; later connections are still served, not reported.
pub const SINK_REPORTS_MAX: usize = 1024;
/// Most host clients one gateway runs.
pub const HOST_CLIENTS_MAX: usize = 64;
/// Longest HTTP request head the web service reads.
const HTTP_REQUEST_BYTES_MAX: usize = 2048;
/// Bytes moved per socket call in the service loops.
const CHUNK_BYTES: usize = 4096;
/// Bound on socket-call rounds per socket per service pass.
const ROUNDS_MAX: usize = 64;
/// A host client's connection gives up after this long without progress (smoltcp's timeout).
const CLIENT_TIMEOUT_S: u64 = 600;

/// The body the outside web host sends for `GET /`.
pub const OUTSIDE_WEB_BODY: &str = "vnic outside web host: hello through the NAT\n";

/// smoltcp time from simulated nanoseconds.
pub(crate) fn instant(now_ns: u64) -> Instant {
    Instant::from_micros(i64::try_from(now_ns / 1000).unwrap_or(i64::MAX))
}

/// Simulated nanoseconds from smoltcp time (negative clamps to 0).
pub(crate) fn instant_ns(at: Instant) -> u64 {
    u64::try_from(at.total_micros())
        .unwrap_or(0)
        .saturating_mul(1000)
}

/// An in-memory `Medium::Ip` device: `rx` is what the stack will read, `tx` what it wrote.
#[derive(Debug)]
pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: VecDeque<Vec<u8>>,
    mtu_bytes: usize,
}

impl Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu_bytes;
        caps
    }

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let buffer = self.rx.pop_front()?;
        Some((
            RxToken { buffer },
            TxToken {
                queue: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        (self.tx.len() < DEVICE_QUEUE_PACKETS_MAX).then_some(TxToken {
            queue: &mut self.tx,
        })
    }
}

/// A received packet.
#[derive(Debug)]
pub(crate) struct RxToken {
    buffer: Vec<u8>,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.buffer)
    }
}

/// A slot for one packet to send.
#[derive(Debug)]
pub(crate) struct TxToken<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buffer = vec![0; len];
        let r = f(&mut buffer);
        self.queue.push_back(buffer);
        r
    }
}

/// One TCP sink connection seen by a service (a host service, the LAN host or the outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkReport {
    /// The address of the stack that served it (gateway, LAN host or outside host).
    pub host: Ipv4Addr,
    /// The port it was accepted on.
    pub port: u16,
    /// The connecting peer, as the service saw it (after NAT).
    pub peer: SocketAddrV4,
    /// Bytes received.
    pub bytes: u64,
    /// Digest of the bytes received, in order.
    pub digest: Digest,
    /// Whether the peer closed its side (FIN received).
    pub closed: bool,
}

/// What a TCP service does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    /// Sends back what it receives (port 7).
    Echo,
    /// Receives and digests, sends nothing (port 9).
    Sink,
    /// HTTP/1.0: `GET /` gets [`OUTSIDE_WEB_BODY`], anything else a 404 (port 80).
    Http,
}

#[derive(Debug)]
struct Slot {
    handle: SocketHandle,
    report: Option<usize>,
    request: Vec<u8>,
    response: Vec<u8>,
    response_sent: usize,
}

#[derive(Debug)]
struct TcpService {
    kind: ServiceKind,
    listen: IpListenEndpoint,
    slots: Vec<Slot>,
}

/// Where a host client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// SYN sent, not yet established.
    Connecting,
    /// Established, sending the pattern.
    Sending,
    /// Everything queued; FIN sent, waiting for the close to finish.
    Closing,
    /// Closed after sending every byte.
    Done,
    /// Gave up; see [`ClientReport::failure`].
    Failed,
}

/// Why a host client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFailure {
    /// smoltcp refused the connect call (bad address or port).
    ConnectRejected,
    /// The connection closed (RST or timeout) before it was established.
    NotEstablished,
    /// The connection closed (RST or timeout) before every byte was sent.
    Reset,
    /// [`HOST_CLIENTS_MAX`] clients already exist.
    TooManyClients,
}

/// The state of one host client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientReport {
    /// Where it is.
    pub state: ClientState,
    /// Pattern bytes handed to TCP so far.
    pub bytes_sent: u64,
    /// Bytes it was asked to send.
    pub bytes_total: u64,
    /// Bytes the peer sent back (an echo service returns them).
    pub bytes_received: u64,
    /// Digest of the bytes the peer sent back.
    pub received: Digest,
    /// Why it failed, if it did.
    pub failure: Option<ClientFailure>,
}

#[derive(Debug)]
pub(crate) struct HostClient {
    handle: Option<SocketHandle>,
    seed: u64,
    report: ClientReport,
}

/// One smoltcp stack with its services.
pub(crate) struct ServiceStack {
    iface: Interface,
    pub(crate) dev: QueueDevice,
    sockets: SocketSet<'static>,
    tcp: Vec<TcpService>,
    udp_echo: Vec<SocketHandle>,
    clients: Vec<HostClient>,
    reports: Vec<SinkReport>,
    /// Sink connections not reported because [`SINK_REPORTS_MAX`] was reached.
    pub(crate) reports_dropped: u64,
    addrs: Vec<Ipv4Addr>,
}

impl std::fmt::Debug for ServiceStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceStack")
            .field("addrs", &self.addrs)
            .field("tcp_services", &self.tcp.len())
            .field("clients", &self.clients.len())
            .field("reports", &self.reports.len())
            .finish_non_exhaustive()
    }
}

impl ServiceStack {
    /// A stack owning `addrs` (each with `prefix_len`), with a default route (smoltcp needs one to
    /// send off-link; `Medium::Ip` never resolves the next hop).
    pub(crate) fn new(
        addrs: &[Ipv4Addr],
        prefix_len: u8,
        mtu_bytes: usize,
        seed: u64,
        now_ns: u64,
    ) -> Self {
        let mut dev = QueueDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            mtu_bytes,
        };
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut dev, instant(now_ns));
        iface.update_ip_addrs(|ips| {
            for &a in addrs.iter().take(2) {
                let _ = ips.push(IpCidr::new(IpAddress::Ipv4(a), prefix_len));
            }
        });
        if let Some(&first) = addrs.first() {
            let _ = iface.routes_mut().add_default_ipv4_route(first);
        }
        Self {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            tcp: Vec::new(),
            udp_echo: Vec::new(),
            clients: Vec::new(),
            reports: Vec::new(),
            reports_dropped: 0,
            addrs: addrs.to_vec(),
        }
    }

    /// Whether `addr` is one of this stack's addresses.
    pub(crate) fn owns(&self, addr: Ipv4Addr) -> bool {
        self.addrs.contains(&addr)
    }

    /// Adds a TCP service on `port` (of `addr`, or every address).
    pub(crate) fn add_tcp(&mut self, kind: ServiceKind, addr: Option<Ipv4Addr>, port: u16) {
        let listen = IpListenEndpoint {
            addr: addr.map(IpAddress::Ipv4),
            port,
        };
        let rx_bytes = if kind == ServiceKind::Sink {
            65_536
        } else {
            16_384
        };
        let slots = (0..SERVICE_SLOTS)
            .map(|_| {
                let mut s = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; rx_bytes]),
                    tcp::SocketBuffer::new(vec![0; 16_384]),
                );
                let _ = s.listen(listen);
                Slot {
                    handle: self.sockets.add(s),
                    report: None,
                    request: Vec::new(),
                    response: Vec::new(),
                    response_sent: 0,
                }
            })
            .collect();
        self.tcp.push(TcpService {
            kind,
            listen,
            slots,
        });
    }

    /// Adds the three standard services: TCP echo :7, TCP sink :9, UDP echo :7.
    pub(crate) fn add_standard_services(&mut self, addr: Option<Ipv4Addr>) {
        self.add_tcp(ServiceKind::Echo, addr, 7);
        self.add_tcp(ServiceKind::Sink, addr, 9);
        let mut u = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 32], vec![0; 32_768]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 32], vec![0; 32_768]),
        );
        let _ = u.bind(IpListenEndpoint {
            addr: addr.map(IpAddress::Ipv4),
            port: 7,
        });
        self.udp_echo.push(self.sockets.add(u));
    }

    /// Starts a TCP client to `dst` sending `total_bytes` of the pattern for `seed`.
    pub(crate) fn start_client(
        &mut self,
        dst: SocketAddrV4,
        local_port: u16,
        total_bytes: u64,
        seed: u64,
    ) -> usize {
        if self.clients.len() >= HOST_CLIENTS_MAX {
            // Not stored: the caller gets an id past the end, which reads as TooManyClients.
            return usize::MAX;
        }
        let mut report = ClientReport {
            state: ClientState::Connecting,
            bytes_sent: 0,
            bytes_total: total_bytes,
            bytes_received: 0,
            received: Digest::new(),
            failure: None,
        };
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 65_536]),
            tcp::SocketBuffer::new(vec![0; 65_536]),
        );
        s.set_timeout(Some(Duration::from_secs(CLIENT_TIMEOUT_S)));
        let remote = IpEndpoint::new(IpAddress::Ipv4(*dst.ip()), dst.port());
        let handle = if s.connect(self.iface.context(), remote, local_port).is_ok() {
            Some(self.sockets.add(s))
        } else {
            report.state = ClientState::Failed;
            report.failure = Some(ClientFailure::ConnectRejected);
            None
        };
        self.clients.push(HostClient {
            handle,
            seed,
            report,
        });
        self.clients.len() - 1
    }

    /// The report of client `index`.
    pub(crate) fn client(&self, index: usize) -> Option<ClientReport> {
        self.clients.get(index).map(|c| c.report)
    }

    /// The sink reports so far.
    pub(crate) fn reports(&self) -> &[SinkReport] {
        &self.reports
    }

    /// Whether `pkt` (an IPv4 packet) is a SYN for a four-tuple one of this stack's service
    /// sockets already holds (a duplicated or retransmitted SYN).
    pub(crate) fn is_duplicate_syn(&self, pkt: &[u8]) -> bool {
        let Ok(ip) = Ipv4Packet::new_checked(pkt) else {
            return false;
        };
        if ip.next_header() != IpProtocol::Tcp {
            return false;
        }
        let Ok(seg) = TcpPacket::new_checked(ip.payload()) else {
            return false;
        };
        if !seg.syn() || seg.ack() {
            return false;
        }
        let remote = IpEndpoint::new(IpAddress::Ipv4(ip.src_addr()), seg.src_port());
        self.tcp.iter().flat_map(|svc| &svc.slots).any(|slot| {
            let s = self.sockets.get::<tcp::Socket>(slot.handle);
            s.state() != tcp::State::Listen
                && s.remote_endpoint() == Some(remote)
                && s.local_endpoint().is_some_and(|l| l.port == seg.dst_port())
        })
    }

    /// Runs the interface and the services once. Returns whether anything moved.
    pub(crate) fn poll(&mut self, now_ns: u64) -> bool {
        let now = instant(now_ns);
        let moved = self.iface.poll(now, &mut self.dev, &mut self.sockets)
            == smoltcp::iface::PollResult::SocketStateChanged;
        let served = self.run_services();
        let clients = self.run_clients();
        moved || served || clients
    }

    /// When the interface next wants to be polled.
    pub(crate) fn poll_at_ns(&mut self, now_ns: u64) -> Option<u64> {
        self.iface
            .poll_at(instant(now_ns), &self.sockets)
            .map(instant_ns)
    }

    fn run_services(&mut self) -> bool {
        let mut progress = false;
        let host = self.addrs.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
        for svc in &mut self.tcp {
            for slot in &mut svc.slots {
                let s = self.sockets.get_mut::<tcp::Socket>(slot.handle);
                progress |= serve_tcp(
                    svc.kind,
                    svc.listen,
                    host,
                    s,
                    slot,
                    &mut self.reports,
                    &mut self.reports_dropped,
                );
            }
        }
        for &h in &self.udp_echo {
            let s = self.sockets.get_mut::<udp::Socket>(h);
            let mut buf = [0u8; 2048];
            for _ in 0..ROUNDS_MAX {
                if !s.can_recv() || !s.can_send() {
                    break;
                }
                let Ok((n, meta)) = s.recv_slice(&mut buf) else {
                    break;
                };
                let _ = s.send_slice(&buf[..n], meta.endpoint);
                progress = true;
            }
        }
        progress
    }

    fn run_clients(&mut self) -> bool {
        let mut progress = false;
        for c in &mut self.clients {
            let Some(h) = c.handle else { continue };
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            let r = &mut c.report;
            let mut buf = [0u8; CHUNK_BYTES];
            for _ in 0..ROUNDS_MAX {
                match s.recv_slice(&mut buf) {
                    Ok(n) if n > 0 => {
                        r.received.update(&buf[..n]);
                        r.bytes_received += n as u64;
                        progress = true;
                    }
                    _ => break,
                }
            }
            match r.state {
                ClientState::Connecting => {
                    if s.state() == tcp::State::Established {
                        r.state = ClientState::Sending;
                        progress = true;
                    } else if s.state() == tcp::State::Closed {
                        r.state = ClientState::Failed;
                        r.failure = Some(ClientFailure::NotEstablished);
                    }
                }
                ClientState::Sending if !s.is_open() => {
                    r.state = ClientState::Failed;
                    r.failure = Some(ClientFailure::Reset);
                    continue;
                }
                _ => {}
            }
            if r.state == ClientState::Sending {
                for _ in 0..ROUNDS_MAX {
                    if r.bytes_sent >= r.bytes_total || !s.can_send() {
                        break;
                    }
                    let left = r.bytes_total - r.bytes_sent;
                    let (seed, offset) = (c.seed, r.bytes_sent);
                    let n = s
                        .send(|b| {
                            let n = b.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                            fill_pattern(seed, offset, &mut b[..n]);
                            (n, n)
                        })
                        .unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    r.bytes_sent += n as u64;
                    progress = true;
                }
                if r.bytes_sent >= r.bytes_total {
                    s.close();
                    r.state = ClientState::Closing;
                    progress = true;
                }
            } else if r.state == ClientState::Closing
                && matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait)
            {
                r.state = ClientState::Done;
                progress = true;
            }
        }
        progress
    }
}

/// One TCP service slot's work for one pass.
fn serve_tcp(
    kind: ServiceKind,
    listen: IpListenEndpoint,
    host: Ipv4Addr,
    s: &mut tcp::Socket<'static>,
    slot: &mut Slot,
    reports: &mut Vec<SinkReport>,
    reports_dropped: &mut u64,
) -> bool {
    if s.state() == tcp::State::Closed {
        slot.report = None;
        slot.request.clear();
        slot.response.clear();
        slot.response_sent = 0;
        let _ = s.listen(listen);
        return false;
    }
    match kind {
        ServiceKind::Echo => serve_echo(s),
        ServiceKind::Sink => serve_sink(listen, host, s, slot, reports, reports_dropped),
        ServiceKind::Http => serve_http(s, slot),
    }
}

fn serve_echo(s: &mut tcp::Socket<'static>) -> bool {
    let mut progress = false;
    let mut buf = [0u8; CHUNK_BYTES];
    for _ in 0..ROUNDS_MAX {
        let free = s.send_capacity() - s.send_queue();
        if !s.can_recv() || free == 0 {
            break;
        }
        let n = s.recv_slice(&mut buf[..free.min(CHUNK_BYTES)]).unwrap_or(0);
        if n == 0 {
            break;
        }
        let _ = s.send_slice(&buf[..n]);
        progress = true;
    }
    if s.state() == tcp::State::CloseWait && !s.can_recv() && s.send_queue() == 0 {
        s.close();
        progress = true;
    }
    progress
}

fn serve_sink(
    listen: IpListenEndpoint,
    host: Ipv4Addr,
    s: &mut tcp::Socket<'static>,
    slot: &mut Slot,
    reports: &mut Vec<SinkReport>,
    reports_dropped: &mut u64,
) -> bool {
    let mut progress = false;
    if slot.report.is_none() && s.is_active() && s.state() != tcp::State::SynReceived {
        if let Some(IpEndpoint {
            addr: IpAddress::Ipv4(peer),
            port,
        }) = s.remote_endpoint()
        {
            if reports.len() < SINK_REPORTS_MAX {
                let local = match s.local_endpoint() {
                    Some(IpEndpoint {
                        addr: IpAddress::Ipv4(a),
                        ..
                    }) => a,
                    _ => host,
                };
                reports.push(SinkReport {
                    host: local,
                    port: listen.port,
                    peer: SocketAddrV4::new(peer, port),
                    bytes: 0,
                    digest: Digest::new(),
                    closed: false,
                });
                slot.report = Some(reports.len() - 1);
            } else {
                *reports_dropped += 1;
                slot.report = Some(usize::MAX);
            }
        }
    }
    for _ in 0..ROUNDS_MAX {
        let report = slot.report.and_then(|i| reports.get_mut(i));
        let n = s
            .recv(|b| {
                if let Some(r) = report {
                    r.digest.update(b);
                    r.bytes += b.len() as u64;
                }
                (b.len(), b.len())
            })
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        progress = true;
    }
    if s.state() == tcp::State::CloseWait && !s.can_recv() {
        if let Some(r) = slot.report.and_then(|i| reports.get_mut(i)) {
            r.closed = true;
        }
        s.close();
        progress = true;
    }
    progress
}

fn serve_http(s: &mut tcp::Socket<'static>, slot: &mut Slot) -> bool {
    let mut progress = false;
    let mut buf = [0u8; CHUNK_BYTES];
    for _ in 0..ROUNDS_MAX {
        let room = HTTP_REQUEST_BYTES_MAX.saturating_sub(slot.request.len());
        if !s.can_recv() || room == 0 || !slot.response.is_empty() {
            break;
        }
        let n = s.recv_slice(&mut buf[..room.min(CHUNK_BYTES)]).unwrap_or(0);
        if n == 0 {
            break;
        }
        slot.request.extend_from_slice(&buf[..n]);
        progress = true;
    }
    let head_done = slot.request.windows(4).any(|w| w == b"\r\n\r\n");
    let full = slot.request.len() >= HTTP_REQUEST_BYTES_MAX;
    if slot.response.is_empty() && (head_done || full) {
        slot.response = http_response(&slot.request);
    }
    if !slot.response.is_empty() && slot.response_sent < slot.response.len() {
        let n = s
            .send_slice(&slot.response[slot.response_sent..])
            .unwrap_or(0);
        slot.response_sent += n;
        progress |= n > 0;
        if slot.response_sent == slot.response.len() {
            s.close();
        }
    }
    progress
}

/// The HTTP/1.0 response to a request head.
fn http_response(request: &[u8]) -> Vec<u8> {
    let (status, body) = if request.starts_with(b"GET / ") {
        ("200 OK", OUTSIDE_WEB_BODY)
    } else {
        ("404 Not Found", "not found\n")
    };
    format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
