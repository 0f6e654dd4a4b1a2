//! Fault injection: what can go wrong on the wire, at the port and in the OS stack, drawn
//! deterministically from a seed (TigerBeetle VOPR style, style.md §2.5).
//!
//! - [`WireFaults`] and [`FaultyLink`]: one direction of a wire that loses, duplicates,
//!   reorders, corrupts and delays frames, and flaps its link on a schedule. Every frame that
//!   enters is delivered, counted as a drop with a reason, or still in flight
//!   ([`FaultCounters::is_conserved`]).
//! - [`PortFaults`]: faults a simulated hardware port injects into the driver's calls.
//! - [`StackFaults`]: faults of the OS stack (a small packet pool, a window in which it stops
//!   reposting receive buffers).
//! - [`FaultPlan`]: all of the above for one run, drawn from a seed ([`FaultPlan::draw`]).
//!
//! Nothing here reads a clock or an unseeded random source: time is `now_ns`, randomness comes
//! from the [`SimRng`] each link is given.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::rng::SimRng;

/// Faults a simulated hardware port injects into the driver's calls, in parts per million of
/// calls. Each injected fault is counted by the port that injects it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortFaults {
    /// A write refused as `VMNET_BUFFER_EXHAUSTED` (the driver retries, then drops).
    pub busy_ppm: u32,
    /// A write refused as `VMNET_PACKET_TOO_BIG` although the frame fits (a port that lies).
    pub too_big_ppm: u32,
    /// A read or write that fails as `VMNET_FAILURE`.
    pub failure_ppm: u32,
}

impl PortFaults {
    /// No faults.
    pub const NONE: Self = Self {
        busy_ppm: 0,
        too_big_ppm: 0,
        failure_ppm: 0,
    };
}

/// Bytes of Ethernet header a corruption never touches, so a corrupted frame still reaches its
/// port and the checksum layers above must catch it.
pub const CORRUPT_SKIP_BYTES: usize = 14;

/// Frames one [`FaultyLink`] holds in flight; a frame pushed beyond it is dropped and counted
/// ([`FaultCounters::dropped_full`]).
pub const LINK_FRAMES_MAX: usize = 8192;

/// Extra delay given to a held-back (reordered) frame when no later frame overtakes it first,
/// on top of the largest ordinary delay.
pub const REORDER_HOLD_NS: u64 = 1_000_000;

/// A link that goes down and comes back up on a schedule.
///
/// Down windows are `[first_down_ns + k·period_ns, first_down_ns + k·period_ns + down_ns)` for
/// `k = 0, 1, …` (only `k = 0` when `period_ns` is 0). A period not longer than `down_ns`
/// keeps the link down for good after `first_down_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flap {
    /// When the first down window starts.
    pub first_down_ns: u64,
    /// How long each down window lasts.
    pub down_ns: u64,
    /// Time from one down window's start to the next; 0: the link goes down once.
    pub period_ns: u64,
}

impl Flap {
    /// Whether the link is down at `now_ns`.
    pub fn is_down(&self, now_ns: u64) -> bool {
        let Some(since_ns) = now_ns.checked_sub(self.first_down_ns) else {
            return false;
        };
        match self.period_ns {
            0 => since_ns < self.down_ns,
            period_ns => since_ns % period_ns < self.down_ns,
        }
    }

    /// How many down windows have started by `now_ns` (inclusive).
    fn windows_started(&self, now_ns: u64) -> u64 {
        let Some(since_ns) = now_ns.checked_sub(self.first_down_ns) else {
            return 0;
        };
        match self.period_ns {
            0 => 1,
            period_ns => since_ns / period_ns + 1,
        }
    }

    /// The first time after `now_ns` at which the link's state changes, if it ever does.
    pub fn next_change_ns(&self, now_ns: u64) -> Option<u64> {
        if now_ns < self.first_down_ns {
            return Some(self.first_down_ns);
        }
        let since_ns = now_ns - self.first_down_ns;
        match self.period_ns {
            0 => (since_ns < self.down_ns).then(|| self.first_down_ns + self.down_ns),
            period_ns if period_ns <= self.down_ns => None,
            period_ns => {
                let window_start_ns = now_ns - since_ns % period_ns;
                let up_at_ns = window_start_ns.saturating_add(self.down_ns);
                Some(if now_ns < up_at_ns {
                    up_at_ns
                } else {
                    window_start_ns.saturating_add(period_ns)
                })
            }
        }
    }
}

/// What one direction of a wire does to the frames it carries. Rates are parts per million of
/// frames; each is drawn independently per frame (per copy, for corruption and delay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireFaults {
    /// A frame vanishes.
    pub loss_ppm: u32,
    /// A frame is delivered twice.
    pub duplicate_ppm: u32,
    /// A frame is held back behind the next one (or by an extra [`REORDER_HOLD_NS`]).
    pub reorder_ppm: u32,
    /// One byte after the Ethernet header of an IPv4 frame is flipped (other frames are never
    /// corrupted: nothing above could detect it).
    pub corrupt_ppm: u32,
    /// Each copy is delayed by a uniform `0..=delay_ns_max`.
    pub delay_ns_max: u64,
    /// The link's down/up schedule; `None`: always up.
    pub flap: Option<Flap>,
}

impl WireFaults {
    /// A perfect wire.
    pub const NONE: Self = Self {
        loss_ppm: 0,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        corrupt_ppm: 0,
        delay_ns_max: 0,
        flap: None,
    };

    /// Whether this wire does anything at all.
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }
}

/// What a [`FaultyLink`] did. `entered + duplicated` frames are accounted for as
/// `delivered + lost + dropped_link_down + dropped_full + in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Frames pushed.
    pub entered: u64,
    /// Frames (copies included) popped.
    pub delivered: u64,
    /// Frames dropped by `loss_ppm`.
    pub lost: u64,
    /// Extra copies made by `duplicate_ppm`.
    pub duplicated: u64,
    /// Frames held back by `reorder_ppm`.
    pub reordered: u64,
    /// Copies with a flipped byte.
    pub corrupted: u64,
    /// Frames pushed while the link was down, dropped.
    pub dropped_link_down: u64,
    /// Copies dropped because [`LINK_FRAMES_MAX`] were in flight.
    pub dropped_full: u64,
    /// Copies scheduled but not yet popped (a held-back frame included).
    pub in_flight_frames: u64,
}

impl FaultCounters {
    /// Copies scheduled but not yet popped.
    pub const fn in_flight(&self) -> u64 {
        self.in_flight_frames
    }

    /// Every frame dropped, whatever the reason.
    pub const fn dropped_total(&self) -> u64 {
        self.lost + self.dropped_link_down + self.dropped_full
    }

    /// `entered + duplicated == delivered + lost + dropped_link_down + dropped_full + in_flight`.
    pub const fn is_conserved(&self) -> bool {
        self.entered + self.duplicated
            == self.delivered + self.dropped_total() + self.in_flight_frames
    }
}

/// A frame held back for reordering: released behind the next frame pushed, or at
/// `release_at_ns`, whichever comes first.
#[derive(Debug)]
struct Held {
    frame: Vec<u8>,
    deliver_at_ns: u64,
    release_at_ns: u64,
}

/// One direction of a faulty wire: frames go in with [`FaultyLink::push`] and come out, in
/// delivery-time order (ties in push order), with [`FaultyLink::pop`].
///
/// Frames already in flight when the link goes down are still delivered (they are past the
/// point of failure); only frames pushed while it is down are dropped.
#[derive(Debug)]
pub struct FaultyLink {
    faults: WireFaults,
    rng: SimRng,
    /// (delivery time, sequence) → frame.
    queue: BTreeMap<(u64, u64), Vec<u8>>,
    seq: u64,
    held: Option<Held>,
    counters: FaultCounters,
    /// The state last reported by [`FaultyLink::link_changes`].
    reported_up: bool,
    /// Down windows [`FaultyLink::link_changes`] has accounted for.
    windows_reported: u64,
}

/// `chance_ppm` that draws nothing when the rate is 0 (so a fault-free plan costs no draws).
fn chance(rng: &mut SimRng, ppm: u32) -> bool {
    ppm > 0 && rng.chance_ppm(ppm)
}

impl FaultyLink {
    /// A link applying `faults`, drawing every decision from `rng`.
    pub fn new(faults: WireFaults, rng: SimRng) -> Self {
        Self {
            faults,
            rng,
            queue: BTreeMap::new(),
            seq: 0,
            held: None,
            counters: FaultCounters::default(),
            reported_up: true,
            windows_reported: 0,
        }
    }

    /// The faults this link applies.
    pub const fn faults(&self) -> &WireFaults {
        &self.faults
    }

    /// Whether the link is up at `now_ns` (the flap schedule).
    pub fn is_up(&self, now_ns: u64) -> bool {
        !self.faults.flap.is_some_and(|f| f.is_down(now_ns))
    }

    /// The first time after `now_ns` at which the link goes down or up, if it ever does.
    pub fn next_link_change_ns(&self, now_ns: u64) -> Option<u64> {
        self.faults.flap.and_then(|f| f.next_change_ns(now_ns))
    }

    /// `Some(up)` once per transition not yet reported, so the world can report link events.
    ///
    /// A down window that started and ended between two calls is still reported: as
    /// `Some(false)` now and `Some(true)` on the next call.
    pub fn link_changes(&mut self, now_ns: u64) -> Option<bool> {
        let flap = self.faults.flap?;
        let started = flap.windows_started(now_ns);
        if self.reported_up && started > self.windows_reported {
            self.reported_up = false;
            self.windows_reported = started;
            return Some(false);
        }
        if !self.reported_up && !flap.is_down(now_ns) {
            self.reported_up = true;
            return Some(true);
        }
        None
    }

    /// A frame enters the wire at `now_ns`.
    pub fn push(&mut self, now_ns: u64, frame: &[u8]) {
        self.counters.entered += 1;
        if !self.is_up(now_ns) {
            self.counters.dropped_link_down += 1;
            return;
        }
        if chance(&mut self.rng, self.faults.loss_ppm) {
            self.counters.lost += 1;
            return;
        }
        let copies = if chance(&mut self.rng, self.faults.duplicate_ppm) {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        let hold = chance(&mut self.rng, self.faults.reorder_ppm);
        for copy in 0..copies {
            let mut bytes = frame.to_vec();
            self.maybe_corrupt(&mut bytes);
            let deliver_at_ns = now_ns.saturating_add(self.draw_delay_ns());
            if hold && copy == 0 && self.held.is_none() {
                self.counters.reordered += 1;
                self.counters.in_flight_frames += 1;
                self.held = Some(Held {
                    frame: bytes,
                    deliver_at_ns,
                    release_at_ns: now_ns
                        .saturating_add(self.faults.delay_ns_max)
                        .saturating_add(REORDER_HOLD_NS),
                });
                continue;
            }
            self.schedule(deliver_at_ns, bytes);
            // The frame just scheduled is "the next one": a held frame goes behind it.
            if let Some(held) = self.held.take() {
                self.counters.in_flight_frames -= 1;
                self.schedule(held.deliver_at_ns.max(deliver_at_ns), held.frame);
            }
        }
    }

    fn draw_delay_ns(&mut self) -> u64 {
        match self.faults.delay_ns_max {
            0 => 0,
            max => self.rng.range_inclusive(0, max),
        }
    }

    fn maybe_corrupt(&mut self, bytes: &mut [u8]) {
        // Only IPv4 frames: their IPv4, ICMP, UDP and TCP checksums are what corruption tests.
        // vmnet frames carry no FCS and ARP has no checksum, so a corrupted ARP reply would
        // poison a neighbour cache with nothing in any stack able to notice (a seed found
        // exactly that); no real vmnet path corrupts bytes at all.
        if bytes.len() <= CORRUPT_SKIP_BYTES
            || bytes[12..14] != [0x08, 0x00]
            || !chance(&mut self.rng, self.faults.corrupt_ppm)
        {
            return;
        }
        let span = (bytes.len() - CORRUPT_SKIP_BYTES) as u64;
        let index = CORRUPT_SKIP_BYTES + self.rng.below(span) as usize;
        let flip = 1 + self.rng.below(255) as u8; // never 0: the byte really changes
        bytes[index] ^= flip;
        self.counters.corrupted += 1;
    }

    fn schedule(&mut self, deliver_at_ns: u64, bytes: Vec<u8>) {
        if self.queue.len() >= LINK_FRAMES_MAX {
            self.counters.dropped_full += 1;
            return;
        }
        self.queue.insert((deliver_at_ns, self.seq), bytes);
        self.seq += 1;
        self.counters.in_flight_frames += 1;
    }

    /// Releases a held frame whose hold expired by `now_ns`.
    fn release_held(&mut self, now_ns: u64) {
        if self
            .held
            .as_ref()
            .is_some_and(|h| h.release_at_ns <= now_ns)
        {
            let held = self.held.take().expect("checked");
            self.counters.in_flight_frames -= 1;
            self.schedule(held.release_at_ns, held.frame);
        }
    }

    /// The next frame due at `now_ns`, in delivery order, copied into `out` (replacing its
    /// contents). `false` if none is due.
    pub fn pop(&mut self, now_ns: u64, out: &mut Vec<u8>) -> bool {
        self.release_held(now_ns);
        let Some(entry) = self.queue.first_entry() else {
            return false;
        };
        if entry.key().0 > now_ns {
            return false;
        }
        let frame = entry.remove();
        out.clear();
        out.extend_from_slice(&frame);
        self.counters.delivered += 1;
        self.counters.in_flight_frames -= 1;
        true
    }

    /// When the next frame is due (a held frame's release included); `None` when empty.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let queued = self.queue.keys().next().map(|&(t, _)| t);
        let held = self.held.as_ref().map(|h| h.release_at_ns);
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the link did so far.
    pub const fn counters(&self) -> FaultCounters {
        self.counters
    }
}

/// Faults of the simulated OS network stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackFaults {
    /// A packet pool this small (exhaustion); `None`: the stack's normal size.
    pub pool_packets: Option<u32>,
    /// From this time the stack stops reposting receive buffers.
    pub stop_reposting_at_ns: Option<u64>,
    /// From this time it reposts again (only meaningful with `stop_reposting_at_ns`).
    pub resume_reposting_at_ns: Option<u64>,
}

impl StackFaults {
    /// No faults.
    pub const NONE: Self = Self {
        pool_packets: None,
        stop_reposting_at_ns: None,
        resume_reposting_at_ns: None,
    };

    /// Whether the stack withholds receive buffers at `now_ns`: inside
    /// `[stop_reposting_at_ns, resume_reposting_at_ns)` (forever if there is no resume).
    pub fn reposting_stopped(&self, now_ns: u64) -> bool {
        match (self.stop_reposting_at_ns, self.resume_reposting_at_ns) {
            (Some(stop), Some(resume)) => (stop..resume).contains(&now_ns),
            (Some(stop), None) => now_ns >= stop,
            (None, _) => false,
        }
    }
}

/// Every fault of one run: both directions of the wire between the NIC's port and vmnet, the
/// port's call faults, and the stack's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Frames travelling from vmnet to the NIC (the NIC's receive side).
    pub to_nic: WireFaults,
    /// Frames travelling from the NIC to vmnet (the NIC's transmit side).
    pub from_nic: WireFaults,
    /// Faults of the port's calls.
    pub port: PortFaults,
    /// Faults of the OS stack.
    pub stack: StackFaults,
}

/// Bounds of [`FaultPlan::draw`], chosen so TCP transfers still finish in bounded simulated
/// time.
pub mod draw_bounds {
    /// Largest loss rate drawn (2 %).
    pub const LOSS_PPM_MAX: u32 = 20_000;
    /// Largest duplication rate drawn (1 %).
    pub const DUPLICATE_PPM_MAX: u32 = 10_000;
    /// Largest reorder rate drawn (2 %).
    pub const REORDER_PPM_MAX: u32 = 20_000;
    /// Largest corruption rate drawn (0.5 %).
    pub const CORRUPT_PPM_MAX: u32 = 5_000;
    /// Largest per-frame delay drawn (2 ms).
    pub const DELAY_NS_MAX: u64 = 2_000_000;
    /// Largest down window of a flap (50 ms).
    pub const FLAP_DOWN_NS_MAX: u64 = 50_000_000;
    /// Smallest flap period (200 ms: the link is up at least 3/4 of the time).
    pub const FLAP_PERIOD_NS_MIN: u64 = 200_000_000;
    /// Largest port busy rate drawn.
    pub const PORT_BUSY_PPM_MAX: u32 = 5_000;
    /// Largest port "too big" lie rate drawn.
    pub const PORT_TOO_BIG_PPM_MAX: u32 = 500;
    /// Largest port failure rate drawn.
    pub const PORT_FAILURE_PPM_MAX: u32 = 1_000;
    /// Smallest stack pool drawn.
    pub const POOL_PACKETS_MIN: u32 = 8;
    /// Largest "small" stack pool drawn.
    pub const POOL_PACKETS_MAX: u32 = 64;
    /// Longest window without reposting (100 ms).
    pub const STOP_REPOSTING_NS_MAX: u64 = 100_000_000;
}

impl FaultPlan {
    /// No faults anywhere.
    pub const fn none() -> Self {
        Self {
            to_nic: WireFaults::NONE,
            from_nic: WireFaults::NONE,
            port: PortFaults::NONE,
            stack: StackFaults::NONE,
        }
    }

    /// A moderate plan drawn from `rng` ("swarm" style: each fault is on or off per seed, so
    /// different seeds explore different mixes). One seed in five draws [`FaultPlan::none`].
    /// Bounds: [`draw_bounds`].
    pub fn draw(rng: &mut SimRng) -> Self {
        if rng.below(5) == 0 {
            return Self::none();
        }
        Self {
            to_nic: draw_wire(rng),
            from_nic: draw_wire(rng),
            port: draw_port(rng),
            stack: draw_stack(rng),
        }
    }

    /// Whether any wire can deliver frames out of order or twice, so order checkers must allow
    /// it: duplication, reordering, or a random delay (two frames with different delays can
    /// swap).
    pub fn injects_reorder_or_duplicate(&self) -> bool {
        [self.to_nic, self.from_nic]
            .iter()
            .any(|w| w.reorder_ppm > 0 || w.duplicate_ppm > 0 || w.delay_ns_max > 0)
    }

    /// A one-line summary for logs and failure reports: `"none"`, or every fault that is on.
    pub fn describe(&self) -> String {
        if *self == Self::none() {
            return "none".to_owned();
        }
        let mut out = String::new();
        describe_wire(&mut out, "to_nic", &self.to_nic);
        describe_wire(&mut out, "from_nic", &self.from_nic);
        let p = self.port;
        if p != PortFaults::NONE {
            let _ = write!(
                out,
                "port{{busy={}ppm too_big={}ppm failure={}ppm}} ",
                p.busy_ppm, p.too_big_ppm, p.failure_ppm
            );
        }
        let s = self.stack;
        if s != StackFaults::NONE {
            out.push_str("stack{");
            if let Some(n) = s.pool_packets {
                let _ = write!(out, "pool={n} ");
            }
            if let Some(t) = s.stop_reposting_at_ns {
                let _ = write!(out, "stop_reposting_at={t}ns ");
            }
            if let Some(t) = s.resume_reposting_at_ns {
                let _ = write!(out, "resume_reposting_at={t}ns ");
            }
            out.truncate(out.trim_end().len());
            out.push_str("} ");
        }
        out.truncate(out.trim_end().len());
        out
    }
}

fn describe_wire(out: &mut String, name: &str, w: &WireFaults) {
    if w.is_none() {
        return;
    }
    let _ = write!(
        out,
        "{name}{{loss={}ppm dup={}ppm reorder={}ppm corrupt={}ppm delay<={}ns",
        w.loss_ppm, w.duplicate_ppm, w.reorder_ppm, w.corrupt_ppm, w.delay_ns_max
    );
    if let Some(f) = w.flap {
        let _ = write!(
            out,
            " flap(first_down={}ns down={}ns period={}ns)",
            f.first_down_ns, f.down_ns, f.period_ns
        );
    }
    out.push_str("} ");
}

/// With probability one half a uniform value in `1..=max`, else 0 (the fault is off).
fn maybe(rng: &mut SimRng, max: u64) -> u64 {
    if rng.below(2) == 0 {
        0
    } else {
        rng.range_inclusive(1, max)
    }
}

fn draw_wire(rng: &mut SimRng) -> WireFaults {
    use draw_bounds as b;
    let flap = (rng.below(8) == 0).then(|| {
        let down_ns = rng.range_inclusive(1_000_000, b::FLAP_DOWN_NS_MAX);
        let period_ns = if rng.below(2) == 0 {
            0
        } else {
            rng.range_inclusive(b::FLAP_PERIOD_NS_MIN, 5 * b::FLAP_PERIOD_NS_MIN)
        };
        Flap {
            first_down_ns: rng.range_inclusive(10_000_000, 500_000_000),
            down_ns,
            period_ns,
        }
    });
    WireFaults {
        loss_ppm: maybe(rng, u64::from(b::LOSS_PPM_MAX)) as u32,
        duplicate_ppm: maybe(rng, u64::from(b::DUPLICATE_PPM_MAX)) as u32,
        reorder_ppm: maybe(rng, u64::from(b::REORDER_PPM_MAX)) as u32,
        corrupt_ppm: maybe(rng, u64::from(b::CORRUPT_PPM_MAX)) as u32,
        delay_ns_max: maybe(rng, b::DELAY_NS_MAX),
        flap,
    }
}

fn draw_port(rng: &mut SimRng) -> PortFaults {
    use draw_bounds as b;
    if rng.below(3) != 0 {
        return PortFaults::NONE;
    }
    PortFaults {
        busy_ppm: maybe(rng, u64::from(b::PORT_BUSY_PPM_MAX)) as u32,
        too_big_ppm: maybe(rng, u64::from(b::PORT_TOO_BIG_PPM_MAX)) as u32,
        failure_ppm: maybe(rng, u64::from(b::PORT_FAILURE_PPM_MAX)) as u32,
    }
}

fn draw_stack(rng: &mut SimRng) -> StackFaults {
    use draw_bounds as b;
    let pool_packets = (rng.below(6) == 0).then(|| {
        rng.range_inclusive(b::POOL_PACKETS_MIN.into(), b::POOL_PACKETS_MAX.into()) as u32
    });
    let (stop, resume) = if rng.below(6) == 0 {
        let stop_ns = rng.range_inclusive(10_000_000, 200_000_000);
        let resume_ns = stop_ns + rng.range_inclusive(1_000_000, b::STOP_REPOSTING_NS_MAX);
        (Some(stop_ns), Some(resume_ns))
    } else {
        (None, None)
    };
    StackFaults {
        pool_packets,
        stop_reposting_at_ns: stop,
        resume_reposting_at_ns: resume,
    }
}

#[cfg(test)]
mod tests;
