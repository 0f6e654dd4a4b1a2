//! The applications an [`super::OsStack`] runs: ping, TCP sender/sink/echo, UDP echo/probe.
//!
//! Each one is a small state machine over one smoltcp socket, driven by
//! [`super::OsStack::poll`]. Payloads come from [`crate::pattern`], so a receiver checks its
//! bytes with a [`Digest`] and nothing else has to carry them.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress, IpEndpoint};
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::pattern::{fill_pattern, pattern_byte, Digest};

/// How long a ping waits for the last reply, and a UDP probe for the last echo.
pub const REPLY_TIMEOUT_NS: u64 = 1_000_000_000;
/// Gap between two UDP probe datagrams.
pub const UDP_PROBE_INTERVAL_NS: u64 = 1_000_000;
/// Bytes of pattern in each echo request.
pub const PING_PAYLOAD_BYTES: usize = 32;
/// Per-drive cap on the send/receive turns an app makes (bounded work per poll).
const TURNS_PER_DRIVE_MAX: usize = 64;
/// Bytes a TCP echo server moves per turn.
pub(crate) const ECHO_CHUNK_BYTES: usize = 16 * 1024;

/// Which application an [`AppId`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// ICMP echo requests to one address.
    Ping,
    /// TCP client streaming a pattern, then closing.
    TcpSend,
    /// TCP server digesting one connection.
    TcpSink,
    /// TCP echo server.
    TcpEcho,
    /// UDP echo server.
    UdpEcho,
    /// UDP client counting matching echoes.
    UdpProbe,
}

/// Why an application failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppFailure {
    /// The stack already runs [`super::APPS_MAX`] applications.
    #[error("too many applications on this stack")]
    TooManyApps,
    /// The socket could not be bound / could not listen (port in use or unaddressable).
    #[error("could not bind or listen")]
    BindFailed,
    /// `connect` was refused locally (bad endpoint).
    #[error("connect refused locally")]
    ConnectFailed,
    /// The connection closed before the transfer finished (reset, or smoltcp's timeout).
    #[error("connection lost (reset or timed out)")]
    ConnectionLost,
    /// The datagram is larger than the socket can carry.
    #[error("datagram larger than the MTU allows")]
    DatagramTooBig,
    /// [`super::OsStack::app`] was given an id this stack never issued.
    #[error("unknown application id")]
    UnknownApp,
}

/// Where an application is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    /// Waiting for something outside it (an IPv4 address, a peer to connect).
    Pending,
    /// Working.
    Running,
    /// Finished (a ping or probe also finishes when its last reply times out: compare the
    /// sent and received counts).
    Done,
    /// Gave up; the reason is [`AppFailure`]'s message ([`AppReport::failure`] has the
    /// value).
    Failed(String),
}

/// An application, as handed out by the `OsStack` starters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(pub u32);

impl AppId {
    /// The id returned when the stack has no room for another application.
    pub const NONE: AppId = AppId(u32::MAX);
}

/// What an application did so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppReport {
    /// Which application.
    pub kind: AppKind,
    /// Where it is.
    pub state: AppState,
    /// Why it failed, when [`AppState::Failed`].
    pub failure: Option<AppFailure>,
    /// Payload bytes sent (TCP: acknowledged by the peer; UDP: datagram payloads queued).
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Digest of every payload byte received, in order (TCP sink/echo).
    pub digest: Digest,
    /// Echo requests sent.
    pub pings_sent: u64,
    /// Matching echo replies received.
    pub pings_received: u64,
    /// Fastest reply, in simulated ns (request queued → reply seen).
    pub rtt_ns_min: Option<u64>,
    /// Slowest reply, in simulated ns.
    pub rtt_ns_max: Option<u64>,
    /// Datagrams sent (probe) or echoed (echo server).
    pub datagrams_sent: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Probe echoes whose payload matched a datagram sent and not yet echoed.
    pub echoes_received: u64,
    /// Datagrams the echo server could not send back (its send buffer was full).
    pub datagrams_dropped: u64,
    /// Connections accepted (TCP servers).
    pub connections: u32,
}

impl AppReport {
    pub(crate) fn new(kind: AppKind) -> Self {
        Self {
            kind,
            state: AppState::Pending,
            failure: None,
            bytes_sent: 0,
            bytes_received: 0,
            digest: Digest::new(),
            pings_sent: 0,
            pings_received: 0,
            rtt_ns_min: None,
            rtt_ns_max: None,
            datagrams_sent: 0,
            datagrams_received: 0,
            echoes_received: 0,
            datagrams_dropped: 0,
            connections: 0,
        }
    }

    /// A report for an id the stack could not honour.
    pub(crate) fn failed(kind: AppKind, failure: AppFailure) -> Self {
        let mut r = Self::new(kind);
        r.fail(failure);
        r
    }

    /// Marks the application failed.
    pub(crate) fn fail(&mut self, failure: AppFailure) {
        self.state = AppState::Failed(failure.to_string());
        self.failure = Some(failure);
    }

    fn finished(&self) -> bool {
        matches!(self.state, AppState::Done | AppState::Failed(_))
    }

    fn record_rtt(&mut self, rtt_ns: u64) {
        self.rtt_ns_min = Some(self.rtt_ns_min.map_or(rtt_ns, |m| m.min(rtt_ns)));
        self.rtt_ns_max = Some(self.rtt_ns_max.map_or(rtt_ns, |m| m.max(rtt_ns)));
    }
}

/// One application: its report, its socket and its state machine.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) report: AppReport,
    pub(crate) handle: SocketHandle,
    pub(crate) detail: Detail,
}

#[derive(Debug)]
pub(crate) enum Detail {
    Ping(Ping),
    TcpSend(TcpSend),
    TcpSink,
    TcpEcho(TcpEcho),
    UdpEcho(UdpEcho),
    UdpProbe(UdpProbe),
}

#[derive(Debug)]
pub(crate) struct Ping {
    pub(crate) dst: Ipv4Addr,
    pub(crate) count: u16,
    pub(crate) interval_ns: u64,
    pub(crate) ident: u16,
    pub(crate) next_send_ns: Option<u64>,
    pub(crate) last_send_ns: u64,
    /// When each request was queued (`u64::MAX`: not yet), and whether it was answered.
    pub(crate) sent_at_ns: Vec<u64>,
    pub(crate) answered: Vec<bool>,
}

#[derive(Debug)]
pub(crate) struct TcpSend {
    pub(crate) dst: SocketAddrV4,
    pub(crate) local_port: u16,
    pub(crate) total_bytes: u64,
    pub(crate) seed: u64,
    pub(crate) offset: u64,
    pub(crate) connected: bool,
    pub(crate) closed: bool,
}

#[derive(Debug)]
pub(crate) struct TcpEcho {
    pub(crate) port: u16,
    pub(crate) scratch: Vec<u8>,
    pub(crate) in_connection: bool,
    pub(crate) closed: bool,
}

#[derive(Debug)]
pub(crate) struct UdpEcho {
    pub(crate) scratch: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct UdpProbe {
    pub(crate) dst: SocketAddrV4,
    pub(crate) count: u16,
    pub(crate) len_bytes: usize,
    pub(crate) seed: u64,
    pub(crate) interval_ns: u64,
    pub(crate) next_send_ns: Option<u64>,
    pub(crate) last_send_ns: u64,
    pub(crate) sent: u16,
    pub(crate) matched: Vec<bool>,
    pub(crate) scratch: Vec<u8>,
}

/// The payload of probe datagram `index`: its index (big-endian, when it fits) then pattern.
pub(crate) fn probe_payload(seed: u64, index: u16, buf: &mut [u8]) {
    let base = u64::from(index) * buf.len() as u64;
    fill_pattern(seed, base, buf);
    let idx = index.to_be_bytes();
    for (b, i) in buf.iter_mut().zip(idx) {
        *b = i;
    }
}

fn ping_payload(ident: u16, seq: u16, buf: &mut [u8]) {
    fill_pattern(u64::from(ident), u64::from(seq) * buf.len() as u64, buf);
}

impl App {
    /// Runs one bounded step; returns whether anything moved.
    pub(crate) fn drive(
        &mut self,
        sockets: &mut SocketSet<'_>,
        iface: &mut Interface,
        now_ns: u64,
    ) -> bool {
        if self.report.finished()
            && !matches!(
                self.detail,
                Detail::TcpEcho(_) | Detail::UdpEcho(_) | Detail::TcpSend(_)
            )
        {
            return false;
        }
        let has_ip = iface.ipv4_addr().is_some();
        let report = &mut self.report;
        match &mut self.detail {
            Detail::Ping(p) => drive_ping(p, report, sockets.get_mut(self.handle), has_ip, now_ns),
            Detail::TcpSend(t) => {
                drive_tcp_send(t, report, sockets.get_mut(self.handle), iface, has_ip)
            }
            Detail::TcpSink => drive_tcp_sink(report, sockets.get_mut(self.handle)),
            Detail::TcpEcho(e) => drive_tcp_echo(e, report, sockets.get_mut(self.handle)),
            Detail::UdpEcho(e) => drive_udp_echo(e, report, sockets.get_mut(self.handle)),
            Detail::UdpProbe(p) => {
                drive_udp_probe(p, report, sockets.get_mut(self.handle), has_ip, now_ns)
            }
        }
    }

    /// The next time this app wants to run without any frame arriving.
    pub(crate) fn deadline_ns(&self) -> Option<u64> {
        if self.report.finished() {
            return None;
        }
        match &self.detail {
            Detail::Ping(p) => p.next_send_ns.or_else(|| {
                p.sent_at_ns
                    .iter()
                    .all(|&t| t != u64::MAX)
                    .then_some(p.last_send_ns.saturating_add(REPLY_TIMEOUT_NS))
            }),
            Detail::UdpProbe(p) => p.next_send_ns.or_else(|| {
                (p.sent == p.count).then_some(p.last_send_ns.saturating_add(REPLY_TIMEOUT_NS))
            }),
            _ => None,
        }
    }
}

fn drive_ping(
    p: &mut Ping,
    report: &mut AppReport,
    socket: &mut icmp::Socket<'_>,
    has_ip: bool,
    now_ns: u64,
) -> bool {
    let mut moved = false;
    if report.state == AppState::Pending {
        if !has_ip {
            return false;
        }
        report.state = AppState::Running;
        p.next_send_ns = Some(now_ns);
        moved = true;
    }
    // Replies first, so a reply and the timeout at the same instant counts the reply.
    for _ in 0..TURNS_PER_DRIVE_MAX {
        let Ok((bytes, _from)) = socket.recv() else {
            break;
        };
        moved = true;
        let Ok(packet) = Icmpv4Packet::new_checked(bytes) else {
            continue;
        };
        let Ok(Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data,
        }) = Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default())
        else {
            continue;
        };
        let seq = usize::from(seq_no);
        if ident != p.ident || seq >= p.sent_at_ns.len() || p.sent_at_ns[seq] == u64::MAX {
            continue;
        }
        let mut expected = [0u8; PING_PAYLOAD_BYTES];
        ping_payload(p.ident, seq_no, &mut expected);
        if p.answered[seq] || data != expected {
            continue;
        }
        p.answered[seq] = true;
        report.pings_received += 1;
        report.bytes_received += data.len() as u64;
        report.record_rtt(now_ns.saturating_sub(p.sent_at_ns[seq]));
    }
    for _ in 0..TURNS_PER_DRIVE_MAX {
        let Some(at) = p.next_send_ns else { break };
        if now_ns < at || !socket.can_send() {
            break;
        }
        let seq = report.pings_sent as u16;
        let mut data = [0u8; PING_PAYLOAD_BYTES];
        ping_payload(p.ident, seq, &mut data);
        let repr = Icmpv4Repr::EchoRequest {
            ident: p.ident,
            seq_no: seq,
            data: &data,
        };
        let Ok(buf) = socket.send(repr.buffer_len(), IpAddress::Ipv4(p.dst)) else {
            break;
        };
        let mut packet = Icmpv4Packet::new_unchecked(buf);
        repr.emit(&mut packet, &ChecksumCapabilities::default());
        p.sent_at_ns[usize::from(seq)] = now_ns;
        p.last_send_ns = now_ns;
        report.pings_sent += 1;
        report.bytes_sent += PING_PAYLOAD_BYTES as u64;
        p.next_send_ns =
            (report.pings_sent < u64::from(p.count)).then(|| at.saturating_add(p.interval_ns));
        moved = true;
    }
    let all_sent = report.pings_sent == u64::from(p.count);
    if report.pings_received == u64::from(p.count)
        || (all_sent && now_ns >= p.last_send_ns.saturating_add(REPLY_TIMEOUT_NS))
    {
        report.state = AppState::Done;
        moved = true;
    }
    moved
}

fn drive_tcp_send(
    t: &mut TcpSend,
    report: &mut AppReport,
    socket: &mut tcp::Socket<'_>,
    iface: &mut Interface,
    has_ip: bool,
) -> bool {
    if !t.connected {
        if !has_ip {
            return false;
        }
        let remote = IpEndpoint::new(IpAddress::Ipv4(*t.dst.ip()), t.dst.port());
        if socket
            .connect(iface.context(), remote, t.local_port)
            .is_err()
        {
            report.fail(AppFailure::ConnectFailed);
            return true;
        }
        t.connected = true;
        report.state = AppState::Running;
        return true;
    }
    // Whatever the peer sends back (an echo server) is read and digested, so it never stalls
    // on our receive window, even after we are done.
    let n = digest_all(socket, &mut report.digest);
    report.bytes_received += n;
    let mut moved = n > 0;
    if report.finished() {
        return moved;
    }
    for _ in 0..TURNS_PER_DRIVE_MAX {
        if t.offset >= t.total_bytes || !socket.can_send() {
            break;
        }
        let (seed, offset, left) = (t.seed, t.offset, t.total_bytes - t.offset);
        let n = socket
            .send(|buf| {
                let n = (buf.len() as u64).min(left) as usize;
                fill_pattern(seed, offset, &mut buf[..n]);
                (n, n)
            })
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        t.offset += n as u64;
        moved = true;
    }
    let acked = t.offset - socket.send_queue() as u64;
    if acked != report.bytes_sent {
        report.bytes_sent = acked;
        moved = true;
    }
    if t.offset == t.total_bytes && !t.closed && socket.may_send() {
        socket.close();
        t.closed = true;
        moved = true;
    }
    match socket.state() {
        tcp::State::FinWait2 | tcp::State::TimeWait | tcp::State::Closed
            if t.closed && socket.send_queue() == 0 =>
        {
            report.state = AppState::Done;
            moved = true;
        }
        tcp::State::Closed => {
            report.fail(AppFailure::ConnectionLost);
            moved = true;
        }
        _ => {}
    }
    moved
}

/// Reads what the socket has into the digest; returns bytes read.
fn digest_all(socket: &mut tcp::Socket<'_>, digest: &mut Digest) -> u64 {
    let mut total = 0;
    for _ in 0..TURNS_PER_DRIVE_MAX {
        if !socket.can_recv() {
            break;
        }
        let n = socket
            .recv(|buf| {
                digest.update(buf);
                (buf.len(), buf.len())
            })
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}

fn drive_tcp_sink(report: &mut AppReport, socket: &mut tcp::Socket<'_>) -> bool {
    let mut moved = false;
    let state = socket.state();
    if report.state == AppState::Pending && !matches!(state, tcp::State::Listen) {
        report.state = AppState::Running;
        report.connections += 1;
        moved = true;
    }
    let n = digest_all(socket, &mut report.digest);
    report.bytes_received += n;
    moved |= n > 0;
    if report.state != AppState::Running {
        return moved;
    }
    match socket.state() {
        tcp::State::CloseWait if !socket.may_recv() => {
            socket.close();
            report.state = AppState::Done;
            moved = true;
        }
        tcp::State::Closed | tcp::State::TimeWait if !socket.may_recv() => {
            // Closed without the peer's FIN being seen in CloseWait: a reset or a timeout.
            report.fail(AppFailure::ConnectionLost);
            moved = true;
        }
        _ => {}
    }
    moved
}

fn drive_tcp_echo(e: &mut TcpEcho, report: &mut AppReport, socket: &mut tcp::Socket<'_>) -> bool {
    let mut moved = false;
    if report.state == AppState::Pending {
        report.state = AppState::Running;
    }
    let state = socket.state();
    if !e.in_connection && !matches!(state, tcp::State::Listen | tcp::State::Closed) {
        e.in_connection = true;
        e.closed = false;
        report.connections += 1;
        moved = true;
    }
    for _ in 0..TURNS_PER_DRIVE_MAX {
        if !socket.can_recv() || !socket.may_send() {
            break;
        }
        let room = socket.send_capacity() - socket.send_queue();
        let room = room.min(e.scratch.len());
        if room == 0 {
            break;
        }
        let scratch = &mut e.scratch;
        let n = socket
            .recv(|buf| {
                let n = buf.len().min(room);
                scratch[..n].copy_from_slice(&buf[..n]);
                (n, n)
            })
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        report.digest.update(&e.scratch[..n]);
        report.bytes_received += n as u64;
        // Cannot be short: `room` bytes are free in the send buffer.
        let sent = socket.send_slice(&e.scratch[..n]).unwrap_or(0);
        report.bytes_sent += sent as u64;
        moved = true;
    }
    if e.in_connection && !e.closed && socket.state() == tcp::State::CloseWait && !socket.may_recv()
    {
        socket.close();
        e.closed = true;
        moved = true;
    }
    if e.in_connection && socket.state() == tcp::State::Closed {
        e.in_connection = false;
        if socket.listen(e.port).is_err() {
            report.fail(AppFailure::BindFailed);
        }
        moved = true;
    }
    moved
}

fn drive_udp_echo(e: &mut UdpEcho, report: &mut AppReport, socket: &mut udp::Socket<'_>) -> bool {
    let mut moved = false;
    if report.state == AppState::Pending {
        report.state = AppState::Running;
    }
    for _ in 0..TURNS_PER_DRIVE_MAX {
        let Ok((n, meta)) = socket.recv_slice(&mut e.scratch) else {
            break;
        };
        moved = true;
        report.datagrams_received += 1;
        report.bytes_received += n as u64;
        if socket.send_slice(&e.scratch[..n], meta.endpoint).is_ok() {
            report.datagrams_sent += 1;
            report.bytes_sent += n as u64;
        } else {
            report.datagrams_dropped += 1;
        }
    }
    moved
}

fn drive_udp_probe(
    p: &mut UdpProbe,
    report: &mut AppReport,
    socket: &mut udp::Socket<'_>,
    has_ip: bool,
    now_ns: u64,
) -> bool {
    let mut moved = false;
    if report.state == AppState::Pending {
        if !has_ip {
            return false;
        }
        report.state = AppState::Running;
        p.next_send_ns = Some(now_ns);
        moved = true;
    }
    for _ in 0..TURNS_PER_DRIVE_MAX {
        let Ok((n, _meta)) = socket.recv_slice(&mut p.scratch) else {
            break;
        };
        moved = true;
        report.datagrams_received += 1;
        report.bytes_received += n as u64;
        if n != p.len_bytes {
            continue;
        }
        if let Some(i) = match_probe(p, n) {
            p.matched[i] = true;
            report.echoes_received += 1;
        }
    }
    for _ in 0..TURNS_PER_DRIVE_MAX {
        let Some(at) = p.next_send_ns else { break };
        if now_ns < at || !socket.can_send() {
            break;
        }
        let index = p.sent;
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(*p.dst.ip()), p.dst.port());
        let Ok(buf) = socket.send(p.len_bytes, endpoint) else {
            break;
        };
        probe_payload(p.seed, index, buf);
        p.sent += 1;
        p.last_send_ns = now_ns;
        report.datagrams_sent += 1;
        report.bytes_sent += p.len_bytes as u64;
        p.next_send_ns = (p.sent < p.count).then(|| at.saturating_add(p.interval_ns));
        moved = true;
    }
    if report.echoes_received == u64::from(p.count)
        || (p.sent == p.count && now_ns >= p.last_send_ns.saturating_add(REPLY_TIMEOUT_NS))
    {
        report.state = AppState::Done;
        moved = true;
    }
    moved
}

/// Which outstanding probe the `n` bytes in `p.scratch` echo, if any.
fn match_probe(p: &UdpProbe, n: usize) -> Option<usize> {
    let got = &p.scratch[..n];
    let matches = |i: u16| {
        got.iter().enumerate().all(|(pos, &b)| {
            let want = if pos < 2 {
                i.to_be_bytes()[pos]
            } else {
                pattern_byte(p.seed, u64::from(i) * n as u64 + pos as u64)
            };
            b == want
        })
    };
    if n >= 2 {
        let i = u16::from_be_bytes([got[0], got[1]]);
        let idx = usize::from(i);
        return (i < p.sent && !p.matched[idx] && matches(i)).then_some(idx);
    }
    // Too short to carry an index: the first outstanding datagram with these bytes.
    (0..p.sent)
        .find(|&i| !p.matched[usize::from(i)] && matches(i))
        .map(usize::from)
}
