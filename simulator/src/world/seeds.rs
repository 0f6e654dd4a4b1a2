//! The seed runner (VOPR-style): a seed draws a world and its faults, the world runs to the
//! end, and every checker judges it. The first violation stops the run with the seed printed,
//! so `vnic sim --seed N` reproduces it exactly.

use std::fmt;

use crate::checkers::CheckReport;
use crate::faults::FaultPlan;
use crate::rng::SimRng;
use crate::vmnet::{
    Estimate, EventTrigger, OperatingMode, OverLimit, PACKETS_PER_CALL_MAX_DOCUMENTED,
};

use super::script::{Script, Step, Target};
use super::{World, WorldConfig};

/// How to run a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One thread, seeded order, simulated clock: reproducible.
    Deterministic,
    /// Stack, driver and network on their own threads, wall clock; give up after this long.
    Threaded {
        /// The wall-clock budget, in nanoseconds.
        wall_ns_max: u64,
    },
}

/// A finished, checked run.
#[derive(Debug)]
pub struct Outcome {
    /// The world after quiescence (counters, reports).
    pub world: World,
    /// What the checkers said (no violations).
    pub checks: CheckReport,
}

/// A run that failed: the seed, what was injected, and why.
#[derive(Debug)]
pub struct Failure {
    /// The seed to reproduce it with.
    pub seed: u64,
    /// The fault plan, described.
    pub plan: String,
    /// What went wrong.
    pub reason: String,
    /// The world as it was left, when there is one.
    pub world: Option<Box<World>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} [faults: {}] (reproduce: vnic sim --seed {})",
            self.seed, self.reason, self.plan, self.seed
        )
    }
}

impl std::error::Error for Failure {}

/// Builds `config`, runs it in `mode`, quiesces it and runs every checker.
///
/// # Errors
/// [`Failure`] with the seed: the world could not be built, a script failed, the run stalled,
/// or a checker found a violation.
pub fn run_world(config: WorldConfig, mode: Mode) -> Result<Outcome, Failure> {
    let seed = config.seed;
    let plan = config.faults.describe();
    let fail = |reason: String, world: Option<World>| Failure {
        seed,
        plan: plan.clone(),
        reason,
        world: world.map(Box::new),
    };
    let world = World::build(config).map_err(|e| fail(e.to_string(), None))?;
    let (mut world, result) = match mode {
        Mode::Deterministic => {
            let mut world = world;
            let r = world.run_deterministic();
            (world, r)
        }
        Mode::Threaded { wall_ns_max } => world.run_threaded(wall_ns_max),
    };
    if let Err(e) = result {
        return Err(fail(e.to_string(), Some(world)));
    }
    if let Err(e) = world.quiesce() {
        return Err(fail(e.to_string(), Some(world)));
    }
    let checks = world.check();
    if let Some(v) = checks.violations.first() {
        let reason = format!(
            "{} of {} checks failed; first: {v}",
            checks.violations.len(),
            checks.checks_run
        );
        return Err(fail(reason, Some(world)));
    }
    Ok(Outcome { world, checks })
}

/// The world a seed draws: shared (most seeds) or host mode, one to three nodes, vmnet's
/// unsettled behaviours (event trigger, estimate accuracy, 200 or 256 packets per call, what
/// an over-limit call does) and the seed's fault plan. Each node leases, pings the gateway,
/// streams 16 KiB to 1 MiB of TCP (to the outside sink through NAT in shared mode, to the
/// host's sink in host mode) and probes UDP echo.
pub fn seed_config(seed: u64) -> WorldConfig {
    let mut rng = SimRng::new(seed).fork("seed-runner");
    let faults = FaultPlan::draw(&mut rng);
    let mode = if rng.chance_ppm(300_000) {
        OperatingMode::Host
    } else {
        OperatingMode::Shared
    };
    let target = match mode {
        OperatingMode::Shared => Target::Outside,
        _ => Target::Gateway,
    };
    let nodes = 1 + rng.below(3) as usize;
    let total_bytes = 16 * 1024 + rng.below(1024 * 1024 - 16 * 1024);
    let mut script: Script = vec![Step::AwaitLease];
    if let (Some(stop_ns), resume) = (
        faults.stack.stop_reposting_at_ns,
        faults.stack.resume_reposting_at_ns,
    ) {
        script.push(Step::Sleep {
            duration_ns: stop_ns,
        });
        script.push(Step::SetReposting(false));
        script.push(Step::Sleep {
            duration_ns: resume.map_or(50_000_000, |r| r.saturating_sub(stop_ns).max(1)),
        });
        script.push(Step::SetReposting(true));
    }
    script.extend([
        Step::Ping {
            target: Target::Gateway,
            count: 8,
            replies_min: 1,
            interval_ns: 20_000_000,
        },
        Step::TcpSend {
            target,
            port: 9,
            total_bytes,
            seed: seed ^ 0x5eed,
        },
        Step::UdpProbe {
            target,
            port: 7,
            count: 16,
            echoes_min: 1,
            len_bytes: 200,
            // Spread over 160 ms, longer than any drawn link flap.
            interval_ns: 10_000_000,
        },
    ]);
    let mut config = WorldConfig::new(seed, mode, nodes, &script);
    for (i, n) in config.nodes.iter_mut().enumerate() {
        let k = n.script.len() - 2;
        if let Step::TcpSend { seed: s, .. } = &mut n.script[k] {
            *s ^= (i as u64) << 40;
        }
    }
    let knobs = &mut config.knobs;
    knobs.event_trigger = if rng.chance_ppm(500_000) {
        EventTrigger::Edge
    } else {
        EventTrigger::Level
    };
    knobs.estimate = match rng.below(4) {
        0 => Estimate::Exact,
        1 => Estimate::Capped {
            packets_max: 1 + rng.below(32),
        },
        2 => Estimate::ArrivalsOnly,
        _ => Estimate::Jitter {
            error_max: 1 + rng.below(16),
        },
    };
    if rng.chance_ppm(500_000) {
        knobs.read_packets_max = PACKETS_PER_CALL_MAX_DOCUMENTED;
        knobs.write_packets_max = PACKETS_PER_CALL_MAX_DOCUMENTED;
    }
    if rng.chance_ppm(250_000) {
        knobs.over_limit = OverLimit::Clamp;
    }
    config.faults = faults;
    config
}

/// Runs the world `seed` draws, deterministically.
///
/// # Errors
/// [`Failure`], with the seed printed in its `Display`.
pub fn run_seed(seed: u64) -> Result<Outcome, Failure> {
    run_world(seed_config(seed), Mode::Deterministic)
}
