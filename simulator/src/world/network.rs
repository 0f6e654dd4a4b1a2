//! The network side of the world: vmnet, the gateway on its host side, and one wire actor per
//! NIC that carries frames between the NIC's [`WireEnd`] and its vmnet interface through two
//! faulty links.
//!
//! ```text
//!  NIC (driver) ─SimPort═╗                       ╔═ FaultyLink (from NIC) ═► vmnet_write ─┐
//!                        ╚═ WireEnd ═ WireActor ═╣                                         switch ─ host side ─ Gateway
//!                                                ╚═ FaultyLink (to NIC) ◄══ vmnet_read ◄─┘
//! ```
//!
//! Every frame a wire actor takes is delivered onward or counted as a drop with a reason
//! ([`WireActorCounters`]).

use std::net::Ipv4Addr;

use ndk_model::ethernet::MacAddress;

use crate::checkers::OrderChecker;
use crate::faults::FaultyLink;
use crate::gateway::Gateway;
use crate::pattern::Digest;
use crate::port::WireEnd;
use crate::vmnet::{
    InterfaceEvent, InterfaceHandle, NetworkKey, Notification, RxDesc, SimVmnet, TxDesc, WriteError,
};

use super::script::HostStep;

/// Frames one wire actor moves per direction per step.
const FRAMES_PER_STEP_MAX: usize = 256;

/// What a wire actor did with the frames it carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireActorCounters {
    /// Frames taken from the NIC's port (into the from-NIC link).
    pub from_port_frames: u64,
    /// Frames the from-NIC link delivered to the actor.
    pub to_vmnet_offered_frames: u64,
    /// Frames `vmnet_write` accepted.
    pub to_vmnet_frames: u64,
    /// Frames vmnet refused for good (not BUFFER_EXHAUSTED, which is retried).
    pub to_vmnet_refused_frames: u64,
    /// `vmnet_write` calls refused with BUFFER_EXHAUSTED (the frame waits and is retried).
    pub to_vmnet_busy: u64,
    /// Frames read from vmnet (into the to-NIC link).
    pub from_vmnet_frames: u64,
    /// Frames the to-NIC link delivered to the actor.
    pub to_port_offered_frames: u64,
    /// Frames pushed into the NIC's port.
    pub to_port_frames: u64,
    /// "Packets available" events seen.
    pub events: u64,
    /// Frames from the port dropped while a [`FlapTrigger`] held the link down.
    pub dropped_link_down_tx_frames: u64,
    /// Frames from vmnet dropped while a [`FlapTrigger`] held the link down.
    pub dropped_link_down_rx_frames: u64,
    /// Injected frames the port refused as too big (counted by the port too).
    pub injected_refused_frames: u64,
    /// Link-down periods forced by [`FlapTrigger`]s.
    pub forced_flaps: u64,
}

/// A link flap triggered by progress: once node `node` has sent `after_tx_bytes`, its link
/// goes down for `down_ns` (frames both ways are dropped and counted), then comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapTrigger {
    /// Which node's link.
    pub node: usize,
    /// Stack bytes sent before the link drops.
    pub after_tx_bytes: u64,
    /// How long it stays down.
    pub down_ns: u64,
}

/// Carries one NIC's frames between its [`WireEnd`] and its vmnet interface.
#[derive(Debug)]
pub struct WireActor {
    /// The network side of the NIC's port.
    pub wire: WireEnd,
    /// The vmnet interface.
    pub handle: InterfaceHandle,
    /// The NIC's MAC.
    pub mac: MacAddress,
    /// Frames leaving the NIC.
    pub from_nic: FaultyLink,
    /// Frames going to the NIC.
    pub to_nic: FaultyLink,
    write_pending: Option<Vec<u8>>,
    rx_pending: Option<Vec<u8>>,
    scratch: Vec<u8>,
    read_bufs: Vec<Vec<u8>>,
    readable: bool,
    link_up: bool,
    forced_down_until_ns: Option<u64>,
    scheduled_up: bool,
    counters: WireActorCounters,
    gateway_mac: MacAddress,
    /// The NIC → gateway path: sent where frames leave the NIC's port, received where the
    /// host side gets them.
    pub order_out: OrderChecker,
    /// The gateway → NIC path: sent where the gateway emits a frame to this NIC's MAC,
    /// received where frames from the gateway enter the NIC's port.
    pub order_in: OrderChecker,
}

fn digest(frame: &[u8]) -> u64 {
    let mut d = Digest::new();
    d.update(frame);
    d.value()
}

impl WireActor {
    /// An actor for `handle` (the NIC at `mac`, the gateway at `gateway_mac`), carrying
    /// frames of at most `max_packet_size_bytes` through `(from_nic, to_nic)` links, reading
    /// vmnet `read_batch` frames per call.
    pub fn new(
        wire: WireEnd,
        handle: InterfaceHandle,
        (mac, gateway_mac): (MacAddress, MacAddress),
        (from_nic, to_nic): (FaultyLink, FaultyLink),
        max_packet_size_bytes: usize,
        read_batch: usize,
    ) -> Self {
        let name = format!("{mac}");
        Self {
            wire,
            handle,
            mac,
            from_nic,
            to_nic,
            write_pending: None,
            rx_pending: None,
            scratch: Vec::with_capacity(max_packet_size_bytes),
            read_bufs: (0..read_batch.max(1))
                .map(|_| vec![0u8; max_packet_size_bytes])
                .collect(),
            readable: true,
            link_up: true,
            forced_down_until_ns: None,
            scheduled_up: true,
            counters: WireActorCounters::default(),
            gateway_mac,
            order_out: OrderChecker::with_window(format!("{name} out"), 1 << 15),
            order_in: OrderChecker::with_window(format!("{name} in"), 1 << 15),
        }
    }

    /// The counters.
    pub fn counters(&self) -> WireActorCounters {
        self.counters
    }

    /// Frames held by the actor itself (waiting to be written or pushed).
    pub fn held_frames(&self) -> u64 {
        u64::from(self.write_pending.is_some()) + u64::from(self.rx_pending.is_some())
    }

    /// A frame taken from the from-NIC link that vmnet refused as busy, waiting (0 or 1).
    pub fn write_pending_frames(&self) -> u64 {
        u64::from(self.write_pending.is_some())
    }

    /// A frame taken from the to-NIC link that the port had no room for, waiting (0 or 1).
    pub fn rx_pending_frames(&self) -> u64 {
        u64::from(self.rx_pending.is_some())
    }

    /// The earliest time a link has a frame due or changes state.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        [
            self.from_nic.next_deadline_ns(),
            self.to_nic.next_deadline_ns(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes the link down until `now_ns + down_ns` (a [`FlapTrigger`] fired).
    pub fn force_down(&mut self, now_ns: u64, down_ns: u64) {
        self.forced_down_until_ns = Some(now_ns.saturating_add(down_ns));
        self.counters.forced_flaps += 1;
    }

    fn forced_down(&mut self, now_ns: u64) -> bool {
        match self.forced_down_until_ns {
            Some(t) if now_ns < t => true,
            Some(_) => {
                self.forced_down_until_ns = None;
                false
            }
            None => false,
        }
    }

    /// Moves what can move now, in both directions; returns whether anything moved.
    pub fn step(&mut self, vmnet: &mut SimVmnet, now_ns: u64) -> bool {
        let mut moved = false;
        let forced = self.forced_down(now_ns);
        // The fault plan's flaps (the to-NIC link's schedule carries them; a window that
        // opened and closed between two steps still shows as a down/up pair).
        if let Some(u) = self.to_nic.link_changes(now_ns) {
            self.scheduled_up = u;
        }
        let up = !forced && self.scheduled_up;
        if up != self.link_up {
            self.link_up = up;
            self.wire.set_link(up);
            moved = true;
        }
        // NIC → from-NIC link (dropped, counted, while a flap holds the link down).
        for _ in 0..FRAMES_PER_STEP_MAX {
            if !self.wire.pop_tx(&mut self.scratch) {
                break;
            }
            self.counters.from_port_frames += 1;
            moved = true;
            if forced {
                self.counters.dropped_link_down_tx_frames += 1;
                continue;
            }
            self.order_out.sent(digest(&self.scratch));
            self.from_nic.push(now_ns, &self.scratch);
        }
        // from-NIC link → vmnet_write (a refused-busy frame waits here and is retried).
        for _ in 0..FRAMES_PER_STEP_MAX {
            let frame = if let Some(f) = self.write_pending.take() {
                f
            } else {
                let mut f = Vec::new();
                if !self.from_nic.pop(now_ns, &mut f) {
                    break;
                }
                self.counters.to_vmnet_offered_frames += 1;
                f
            };
            match vmnet.write(self.handle, &[TxDesc::frame(&frame)]) {
                Ok(_) => {
                    self.counters.to_vmnet_frames += 1;
                    moved = true;
                }
                Err(WriteError::BufferExhausted { .. }) => {
                    self.counters.to_vmnet_busy += 1;
                    self.write_pending = Some(frame);
                    break;
                }
                Err(_) => {
                    self.counters.to_vmnet_refused_frames += 1;
                    moved = true;
                }
            }
        }
        moved | self.receive(vmnet, now_ns, forced)
    }

    /// Marks the interface readable (a "packets available" event).
    pub fn on_packets_available(&mut self) {
        self.counters.events += 1;
        self.readable = true;
    }

    fn receive(&mut self, vmnet: &mut SimVmnet, now_ns: u64, forced: bool) -> bool {
        let mut moved = false;
        // vmnet_read → to-NIC link, until a read returns 0 (the estimate may be wrong).
        if self.readable {
            let mut any = false;
            for _ in 0..=(FRAMES_PER_STEP_MAX / self.read_bufs.len().max(1)) {
                let mut descs: Vec<RxDesc<'_>> =
                    self.read_bufs.iter_mut().map(|b| RxDesc::new(b)).collect();
                let n = vmnet.read(self.handle, &mut descs).unwrap_or(0);
                for d in &descs[..n] {
                    self.counters.from_vmnet_frames += 1;
                    if forced {
                        self.counters.dropped_link_down_rx_frames += 1;
                    } else {
                        self.to_nic.push(now_ns, d.frame());
                    }
                }
                if n == 0 {
                    self.readable = false;
                    break;
                }
                any = true;
            }
            moved |= any;
        }
        // to-NIC link → the NIC's port (a frame the port has no room for waits here).
        for _ in 0..FRAMES_PER_STEP_MAX {
            let frame = if let Some(f) = self.rx_pending.take() {
                f
            } else {
                let mut f = Vec::new();
                if !self.to_nic.pop(now_ns, &mut f) {
                    break;
                }
                self.counters.to_port_offered_frames += 1;
                f
            };
            if self.wire.push_rx(&frame).is_ok() {
                self.counters.to_port_frames += 1;
                if frame.len() >= 12 && frame[6..12] == self.gateway_mac.0 {
                    self.order_in.received(digest(&frame));
                }
                moved = true;
            } else {
                self.rx_pending = Some(frame);
                break;
            }
        }
        moved
    }
}

/// What the network side did beyond the wire actors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkCounters {
    /// Frames the host side received from the switch (given to the gateway).
    pub host_rx_frames: u64,
    /// Frames the gateway emitted.
    pub host_tx_frames: u64,
    /// Gateway frames the host side's buffer refused.
    pub host_tx_dropped_full: u64,
    /// Lease updates given to vmnet's source-IP rule.
    pub lease_updates: u64,
}

/// A host-side client started by a [`HostStep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRun {
    /// The step.
    pub step: HostStep,
    /// The gateway's client id, once started.
    pub client: Option<crate::gateway::ClientId>,
}

/// vmnet, its gateway and the wire actors: everything on the far side of the NICs' ports.
#[derive(Debug)]
pub struct NetworkSide {
    /// The vmnet model.
    pub vmnet: SimVmnet,
    /// The network the NICs are on.
    pub key: NetworkKey,
    /// The gateway on its host side.
    pub gateway: Gateway,
    /// One per NIC, in node order.
    pub actors: Vec<WireActor>,
    /// The host's script.
    pub host: Vec<HostRun>,
    /// Raw frames to push into node `.0`'s port once it has an address (then removed).
    pub inject: Vec<(usize, Vec<u8>)>,
    /// Progress-triggered flaps not yet fired.
    pub flaps: Vec<FlapTrigger>,
    /// Injected frames pushed so far.
    pub injected_frames: u64,
    counters: NetworkCounters,
    leases: Vec<(MacAddress, Ipv4Addr)>,
}

impl NetworkSide {
    /// A network side over a started vmnet.
    pub fn new(
        vmnet: SimVmnet,
        key: NetworkKey,
        gateway: Gateway,
        actors: Vec<WireActor>,
        host: Vec<HostStep>,
    ) -> Self {
        Self {
            vmnet,
            key,
            gateway,
            actors,
            host: host
                .into_iter()
                .map(|step| HostRun { step, client: None })
                .collect(),
            inject: Vec::new(),
            flaps: Vec::new(),
            injected_frames: 0,
            counters: NetworkCounters::default(),
            leases: Vec::new(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> NetworkCounters {
        self.counters
    }

    /// The earliest time something here has work.
    pub fn next_deadline_ns(&mut self, now_ns: u64) -> Option<u64> {
        let mut t = [
            self.vmnet.next_deadline_ns(),
            self.gateway.next_deadline_ns(now_ns),
        ]
        .into_iter()
        .flatten()
        .min();
        for a in &self.actors {
            t = [t, a.next_deadline_ns()].into_iter().flatten().min();
        }
        t
    }

    /// Whether every host step's client finished.
    pub fn host_done(&self) -> bool {
        self.host.iter().all(|h| {
            h.client.is_some_and(|id| {
                matches!(
                    self.gateway.host_client(id).state,
                    crate::gateway::ClientState::Done | crate::gateway::ClientState::Failed
                )
            })
        })
    }

    /// One bounded pass at `now_ns`; returns whether anything moved.
    pub fn step(&mut self, now_ns: u64, board: &super::script::Board) -> bool {
        let mut moved = false;
        for a in &mut self.actors {
            moved |= a.step(&mut self.vmnet, now_ns);
        }
        self.vmnet.advance(now_ns);
        while let Some(n) = self.vmnet.poll_notification() {
            if let Notification::PacketsAvailable { handle, .. } = n {
                if let Some(a) = self.actors.iter_mut().find(|a| a.handle == handle) {
                    a.on_packets_available();
                }
            }
        }
        // Host side ⇄ gateway.
        for _ in 0..4096 {
            let Some(frame) = self.vmnet.host_recv(&self.key) else {
                break;
            };
            self.counters.host_rx_frames += 1;
            if frame.len() >= 12 {
                if let Some(a) = self.actors.iter_mut().find(|a| frame[6..12] == a.mac.0) {
                    a.order_out.received(digest(&frame));
                }
            }
            self.gateway.receive(now_ns, &frame);
            moved = true;
        }
        moved |= self.fire_triggers(now_ns, board);
        for h in &mut self.host {
            if h.client.is_none() {
                let HostStep::TcpSend {
                    after_node,
                    dst,
                    total_bytes,
                    seed,
                } = h.step;
                if board.is_ready(after_node) {
                    h.client = Some(self.gateway.host_tcp_send(now_ns, dst, total_bytes, seed));
                    moved = true;
                }
            }
        }
        let (vmnet, key, counters, actors) = (
            &mut self.vmnet,
            &self.key,
            &mut self.counters,
            &mut self.actors,
        );
        self.gateway.poll(now_ns, &mut |frame: &[u8]| {
            counters.host_tx_frames += 1;
            if frame.len() >= 6 {
                if let Some(a) = actors.iter_mut().find(|a| frame[..6] == a.mac.0) {
                    a.order_in.sent(digest(frame));
                }
            }
            if vmnet.host_send(key, frame).is_err() {
                counters.host_tx_dropped_full += 1;
            }
        });
        self.sync_leases();
        self.vmnet.advance(now_ns);
        for a in &mut self.actors {
            moved |= a.step(&mut self.vmnet, now_ns);
        }
        moved
    }

    /// Pushes due injected frames and fires due progress-triggered flaps.
    fn fire_triggers(&mut self, now_ns: u64, board: &super::script::Board) -> bool {
        let mut moved = false;
        let mut k = 0;
        while k < self.inject.len() {
            let node = self.inject[k].0;
            if board.address(node).is_some() {
                let (node, frame) = self.inject.remove(k);
                if let Some(a) = self.actors.get_mut(node) {
                    match a.wire.push_rx(&frame) {
                        Ok(()) => {
                            a.counters.to_port_frames += 1;
                            self.injected_frames += 1;
                            moved = true;
                            continue;
                        }
                        Err(crate::port::RxFull::TooBig { .. }) => {
                            // The port refuses (and counts) a frame over its packet size.
                            a.counters.injected_refused_frames += 1;
                            self.injected_frames += 1;
                            moved = true;
                            continue;
                        }
                        Err(crate::port::RxFull::Full) => {}
                    }
                }
                self.inject.insert(k, (node, frame));
            }
            k += 1;
        }
        let mut k = 0;
        while k < self.flaps.len() {
            let f = self.flaps[k];
            if board.progress(f.node).0 >= f.after_tx_bytes {
                if let Some(a) = self.actors.get_mut(f.node) {
                    a.force_down(now_ns, f.down_ns);
                }
                self.flaps.remove(k);
                moved = true;
            } else {
                k += 1;
            }
        }
        moved
    }

    /// Gives the gateway's current leases to vmnet's source-IP rule (and forgets ended ones).
    fn sync_leases(&mut self) {
        let leases = self.gateway.leases();
        if leases != self.leases {
            for (mac, ip) in &leases {
                self.vmnet.set_lease(&self.key, *mac, Some(*ip));
            }
            for (mac, _) in &self.leases {
                if !leases.iter().any(|(m, _)| m == mac) {
                    self.vmnet.set_lease(&self.key, *mac, None);
                }
            }
            self.counters.lease_updates += 1;
            self.leases = leases;
        }
    }

    /// Enables "packets available" events on every actor's interface.
    pub fn enable_events(&mut self) {
        for a in &self.actors {
            let _ = self
                .vmnet
                .set_event_callback(a.handle, InterfaceEvent::PACKETS_AVAILABLE);
        }
    }
}
