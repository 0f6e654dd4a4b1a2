//! Invariant checkers, kept apart from the world they watch (TigerBeetle's `*_checker.zig`,
//! style.md §2.5): they read counters, pools and digests and never mutate anything.
//!
//! Each checker returns `Result<(), Violation>`; a [`CheckReport`] collects many results.
//!
//! - [`check_conservation`]: every frame entering a stage is delivered, dropped with a reason or
//!   still in flight ([`Ledger`]).
//! - [`check_pool_full`]: every packet is back in its pool.
//! - [`OrderChecker`]: what arrives on a path is what was sent, in order, without duplicates
//!   (unless the fault plan allows them).
//! - [`check_driver_counters`]: the driver's transmit counters agree with its completions.
//! - [`check_transfer`]: a transfer's bytes arrived intact (pattern digests).

use std::collections::VecDeque;
use std::fmt;

use ndk_model::pool::PacketBufferPool;
use vnic_driver::counters::Counters;

use crate::pattern::Digest;

/// A broken invariant: which checker saw it, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{checker}: {detail}")]
pub struct Violation {
    /// The checker's name (e.g. `"conservation"`).
    pub checker: &'static str,
    /// What was wrong, with the numbers.
    pub detail: String,
}

impl Violation {
    fn new(checker: &'static str, detail: String) -> Self {
        Self { checker, detail }
    }
}

/// Frame accounting of one stage (a link, a port, a queue): `entered` frames must equal
/// `delivered + Σ drops + in_flight`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ledger {
    /// The stage's name, for the report.
    pub name: String,
    /// Frames that entered.
    pub entered: u64,
    /// Frames that left normally.
    pub delivered: u64,
    /// Frames dropped, by reason.
    pub drops: Vec<(&'static str, u64)>,
    /// Frames still inside.
    pub in_flight: u64,
}

impl Ledger {
    /// The sum of every drop reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().map(|&(_, n)| n).sum()
    }
}

/// `entered == delivered + Σ drops + in_flight`.
///
/// # Errors
/// The two sides differ (a frame vanished without a reason, or appeared from nowhere).
pub fn check_conservation(l: &Ledger) -> Result<(), Violation> {
    let accounted = l.delivered + l.dropped_total() + l.in_flight;
    if l.entered == accounted {
        return Ok(());
    }
    let drops: Vec<String> = l.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
    Err(Violation::new(
        "conservation",
        format!(
            "{}: entered {} != delivered {} + drops [{}] + in flight {} = {accounted}",
            l.name,
            l.entered,
            l.delivered,
            drops.join(" "),
            l.in_flight
        ),
    ))
}

/// Every packet of `pool` is free: `in_use() == 0` and the leak report is clean.
///
/// # Errors
/// A packet is still owned by someone (a leak), with the owners and a sample of indices.
pub fn check_pool_full(name: &str, pool: &PacketBufferPool) -> Result<(), Violation> {
    let report = pool.leak_report();
    let in_use = pool.in_use();
    if in_use == 0 && report.is_clean() {
        return Ok(());
    }
    Err(Violation::new(
        "pool_full",
        format!(
            "{name}: {} of {} packets not free (system {}, in submission {}, driver {}, in \
             completion {}, invalid {}); first indices {:?}",
            report.in_use.max(in_use),
            report.packet_count,
            report.system,
            report.in_submission,
            report.driver,
            report.in_completion,
            report.invalid,
            report.sample.as_slice()
        ),
    ))
}

/// Sent digests an [`OrderChecker`] remembers by default.
pub const ORDER_WINDOW_FRAMES_DEFAULT: usize = 4096;

/// What an [`OrderChecker`] has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderStats {
    /// Digests fed at the send point.
    pub sent: u64,
    /// Digests fed at the receive point.
    pub received: u64,
    /// Received digests matched to a sent one, in order.
    pub in_order: u64,
    /// Received digests of frames already received (a duplicate).
    pub duplicates: u64,
    /// Received digests of frames overtaken by a later one (a reorder).
    pub reordered: u64,
    /// Received digests never sent (corruption that got through, or a stray frame).
    pub never_sent: u64,
    /// Sent digests forgotten because the window was full.
    pub evicted: u64,
    /// Received digests not in the window after evictions: cannot be judged, only counted.
    pub unresolved: u64,
}

/// Checks one path: the frames received must be a subsequence of the frames sent (losses are
/// fine; no duplicates; order kept), unless the fault plan allows duplicates or reorders.
///
/// Fed 64-bit frame digests. Memory is bounded: at most `window_frames` sent digests are kept;
/// older ones are evicted (counted), and a received digest that may have been evicted is
/// counted as unresolved rather than judged.
#[derive(Debug, Clone)]
pub struct OrderChecker {
    name: String,
    window_frames: usize,
    /// Sent digests still remembered, with whether each was received.
    sent: VecDeque<(u64, bool)>,
    /// Index into `sent` after the last in-order match.
    cursor: usize,
    stats: OrderStats,
    /// The first anomaly of each kind, for the report: (received index, digest).
    first_duplicate: Option<(u64, u64)>,
    first_reorder: Option<(u64, u64)>,
    first_never_sent: Option<(u64, u64)>,
}

impl OrderChecker {
    /// A checker for the path `name`, remembering [`ORDER_WINDOW_FRAMES_DEFAULT`] sent frames.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_window(name, ORDER_WINDOW_FRAMES_DEFAULT)
    }

    /// A checker remembering `window_frames` sent frames.
    ///
    /// # Panics
    /// If `window_frames` is 0.
    pub fn with_window(name: impl Into<String>, window_frames: usize) -> Self {
        assert!(window_frames > 0, "an order window needs room");
        Self {
            name: name.into(),
            window_frames,
            sent: VecDeque::with_capacity(window_frames.min(ORDER_WINDOW_FRAMES_DEFAULT)),
            cursor: 0,
            stats: OrderStats::default(),
            first_duplicate: None,
            first_reorder: None,
            first_never_sent: None,
        }
    }

    /// A frame with digest `d` left the send point.
    pub fn sent(&mut self, d: u64) {
        if self.sent.len() == self.window_frames {
            self.sent.pop_front();
            self.cursor = self.cursor.saturating_sub(1);
            self.stats.evicted += 1;
        }
        self.sent.push_back((d, false));
        self.stats.sent += 1;
    }

    /// A frame with digest `d` reached the receive point.
    pub fn received(&mut self, d: u64) {
        let index = self.stats.received;
        self.stats.received += 1;
        if let Some(offset) = self.sent.range(self.cursor..).position(|&(s, _)| s == d) {
            let i = self.cursor + offset;
            self.sent[i].1 = true;
            self.cursor = i + 1;
            self.stats.in_order += 1;
            return;
        }
        let earlier = self.sent.range(..self.cursor).rposition(|&(s, _)| s == d);
        // Prefer an earlier copy not yet received: that is a reorder, not a duplicate.
        let unreceived = self
            .sent
            .range(..self.cursor)
            .rposition(|&(s, got)| s == d && !got);
        match (unreceived, earlier) {
            (Some(i), _) => {
                self.sent[i].1 = true;
                self.stats.reordered += 1;
                self.first_reorder.get_or_insert((index, d));
            }
            (None, Some(_)) => {
                self.stats.duplicates += 1;
                self.first_duplicate.get_or_insert((index, d));
            }
            (None, None) if self.stats.evicted > 0 => self.stats.unresolved += 1,
            (None, None) => {
                self.stats.never_sent += 1;
                self.first_never_sent.get_or_insert((index, d));
            }
        }
    }

    /// What the checker has seen.
    pub const fn stats(&self) -> OrderStats {
        self.stats
    }

    /// Judges what was seen. A frame never sent is always a violation.
    ///
    /// # Errors
    /// A frame never sent; a duplicate unless `duplicates_allowed`; a reorder unless
    /// `reorder_allowed`.
    pub fn check(&self, duplicates_allowed: bool, reorder_allowed: bool) -> Result<(), Violation> {
        let s = &self.stats;
        let fail = |what: &str, count: u64, first: Option<(u64, u64)>| {
            let (at, d) = first.unwrap_or_default();
            Err(Violation::new(
                "order",
                format!(
                    "{}: {count} {what} (first: received frame #{at}, digest {d:#018x}); \
                     sent {}, received {}",
                    self.name, s.sent, s.received
                ),
            ))
        };
        if s.never_sent > 0 {
            return fail("frames never sent", s.never_sent, self.first_never_sent);
        }
        if s.duplicates > 0 && !duplicates_allowed {
            return fail("duplicates", s.duplicates, self.first_duplicate);
        }
        if s.reordered > 0 && !reorder_allowed {
            return fail("reordered frames", s.reordered, self.first_reorder);
        }
        Ok(())
    }
}

/// The driver's counters agree with what the system side saw: every completed transmit is
/// counted as sent or as a drop (`tx.frames + tx.dropped_total() == tx_completed`), no more
/// completions than submissions, and no completion lost in either direction.
///
/// # Errors
/// The first rule broken.
pub fn check_driver_counters(
    c: &Counters,
    tx_submitted: u64,
    tx_completed: u64,
) -> Result<(), Violation> {
    let fail = |detail: String| Err(Violation::new("driver_counters", detail));
    if tx_completed > tx_submitted {
        return fail(format!(
            "{tx_completed} transmit completions for {tx_submitted} submissions"
        ));
    }
    let accounted = c.tx.frames + c.tx.dropped_total();
    if accounted != tx_completed {
        return fail(format!(
            "tx frames {} + dropped {} = {accounted} != {tx_completed} completions ({:?})",
            c.tx.frames,
            c.tx.dropped_total(),
            c.tx
        ));
    }
    if c.tx.completions_lost != 0 || c.rx.completions_lost != 0 {
        return fail(format!(
            "completions lost: tx {}, rx {}",
            c.tx.completions_lost, c.rx.completions_lost
        ));
    }
    Ok(())
}

/// A transfer's received bytes have the digest of what was sent (length and hash).
///
/// # Errors
/// The digests differ.
pub fn check_transfer(name: &str, expected: Digest, got: Digest) -> Result<(), Violation> {
    if expected == got {
        return Ok(());
    }
    Err(Violation::new(
        "transfer",
        format!(
            "{name}: expected {} bytes with digest {:#018x}, got {} bytes with digest {:#018x}",
            expected.len_bytes(),
            expected.value(),
            got.len_bytes(),
            got.value()
        ),
    ))
}

/// The outcome of a batch of checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// Checks run.
    pub checks_run: u32,
    /// The violations found, in the order checked.
    pub violations: Vec<Violation>,
}

impl CheckReport {
    /// An empty report.
    pub const fn new() -> Self {
        Self {
            checks_run: 0,
            violations: Vec::new(),
        }
    }

    /// Records one check's result.
    pub fn add(&mut self, result: Result<(), Violation>) {
        self.checks_run += 1;
        if let Err(v) = result {
            self.violations.push(v);
        }
    }

    /// Whether every check passed.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// `Ok` if clean, else the report itself.
    ///
    /// # Errors
    /// Some check failed.
    pub fn into_result(self) -> Result<Self, Self> {
        if self.is_clean() {
            Ok(self)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} checks, {} violations",
            self.checks_run,
            self.violations.len()
        )?;
        for v in &self.violations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}
