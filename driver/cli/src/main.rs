//! The `vnic` command.
//!
//! - `vnic run`: the main job. The vnic driver (`VirtualEthernet`) with the OS-stack model on a
//!   simulated shared-mode vmnet network: it leases an address, pings the gateway and moves a
//!   TCP transfer to an outside host through NAT, with a live stats line, then prints the
//!   lease, throughput, drops by reason and whether the pool came back whole.
//! - `vnic sim --seed N`: the seed runner; draws a world and its faults from the seed, runs it
//!   deterministically and runs every checker. Stops at the first violation, seed printed.
//! - `vnic demo`: the ndk-model loopback demo (two threads over the four NDK queues).
#![allow(
    clippy::disallowed_methods,
    reason = "the command reports wall-clock throughput to a person"
)]

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use vnic_driver::demo::{self, DemoConfig};
use vnic_sim::checkers;
use vnic_sim::vmnet::OperatingMode;
use vnic_sim::world::script::{lease_ping_send, Step, Target};
use vnic_sim::world::seeds;
use vnic_sim::world::{World, WorldConfig};

/// vnic: a virtual Ethernet NIC on a model of Apple's NetworkingDriverKit, over vmnet.
#[derive(Debug, Parser)]
#[command(name = "vnic", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NetMode {
    Shared,
    Host,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the driver and the OS-stack model on a simulated vmnet network.
    Run {
        /// Bytes to move over TCP (to the outside host in shared mode, to the host in host mode).
        #[arg(long, default_value_t = 128 * 1024 * 1024)]
        bytes: u64,
        /// vmnet mode.
        #[arg(long, value_enum, default_value_t = NetMode::Shared)]
        mode: NetMode,
        /// Run on one thread with a simulated clock (reproducible) instead of on threads.
        #[arg(long)]
        deterministic: bool,
        /// The seed (MACs, ports, scheduling order).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Give up after this many wall-clock seconds (threaded run).
        #[arg(long, default_value_t = 300)]
        timeout_s: u64,
    },
    /// Run seeds through the fault-injecting simulator and every checker.
    Sim {
        /// The first seed.
        #[arg(long)]
        seed: u64,
        /// How many seeds, from `seed` on.
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// The ndk-model loopback demo: two threads over the four NDK queues.
    Demo {
        /// Frames to move through the loopback.
        #[arg(long, default_value_t = 2_000_000)]
        frames: u64,
        /// Packets in the pool.
        #[arg(long, default_value_t = 1024)]
        pool_packets: u32,
        /// Slots per queue (a power of two).
        #[arg(long, default_value_t = 256)]
        queue_capacity: u32,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            bytes,
            mode,
            deterministic,
            seed,
            timeout_s,
        } => run(bytes, mode, deterministic, seed, timeout_s),
        Command::Sim { seed, count } => sim(seed, count),
        Command::Demo {
            frames,
            pool_packets,
            queue_capacity,
        } => run_demo(DemoConfig {
            frames,
            pool_packets,
            queue_capacity,
        }),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run(bytes: u64, mode: NetMode, deterministic: bool, seed: u64, timeout_s: u64) -> ExitCode {
    let (op_mode, target, label) = match mode {
        NetMode::Shared => (
            OperatingMode::Shared,
            Target::Outside,
            "an outside host through NAT",
        ),
        NetMode::Host => (OperatingMode::Host, Target::Gateway, "the host"),
    };
    let config = WorldConfig::new(seed, op_mode, 1, &lease_ping_send(target, bytes, seed));
    println!(
        "vnic run: the vnic driver on a simulated {}-mode vmnet network ({}), seed {seed}",
        match mode {
            NetMode::Shared => "shared",
            NetMode::Host => "host",
        },
        if deterministic {
            "deterministic: one thread, simulated clock"
        } else {
            "threaded: stack, driver and network threads over the NDK rings"
        }
    );
    println!(
        "  plan: DHCP lease, ping the gateway, {:.1} MiB over TCP to {label}",
        mib(bytes)
    );
    let world = match World::build(config) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("vnic run: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "  nic: MAC {}, MTU {}, {} packets per vmnet call",
        world.drivers[0].nic.mac(),
        world.drivers[0].nic.mtu_bytes(),
        world.drivers[0].nic.port_info().max_packets_per_call
    );
    let started = Instant::now();
    let (mut world, result) = if deterministic {
        let mut world = world;
        let r = world.run_deterministic();
        (world, r)
    } else {
        world.run_threaded_with_progress(timeout_s * 1_000_000_000, &mut |board, elapsed_ns| {
            let (tx, rx) = board.progress(0);
            let secs = elapsed_ns as f64 / 1e9;
            eprint!(
                "\r  progress: tx {:>8.1} MiB  rx {:>6.1} MiB  {:>6.1} s  {:>8.1} Mbit/s ",
                mib(tx),
                mib(rx),
                secs,
                tx as f64 * 8.0 / secs.max(1e-9) / 1e6
            );
            let _ = std::io::stderr().flush();
        })
    };
    let elapsed_s = started.elapsed().as_secs_f64();
    if !deterministic {
        eprintln!();
    }
    let quiesced = result.is_ok() && world.quiesce().is_ok();
    summary(&world, bytes, elapsed_s);
    let checks = world.check();
    println!(
        "  checks:   {} run, {} violations",
        checks.checks_run,
        checks.violations.len()
    );
    for v in &checks.violations {
        println!("    {v}");
    }
    match result {
        Ok(()) if quiesced && checks.violations.is_empty() => ExitCode::SUCCESS,
        Ok(()) => {
            println!("vnic run: FAILED: checks");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("vnic run: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn summary(world: &World, bytes: u64, elapsed_s: f64) {
    let stack = &world.stacks[0].stack;
    match stack.lease() {
        Some(l) => println!(
            "  lease:    {} router {} dns {:?} ({} s)",
            l.address,
            l.router.map_or("-".to_owned(), |r| r.to_string()),
            l.dns_servers,
            l.lease_duration_s.map_or("-".to_owned(), |s| s.to_string())
        ),
        None => println!("  lease:    none"),
    }
    for o in world.stacks[0].script.outcomes() {
        match &o.step {
            Step::Ping { target, count, .. } => {
                let got = o.report.as_ref().map_or(0, |r| r.pings_received);
                println!("  ping:     {target:?}: {got}/{count} replies");
            }
            Step::TcpSend { total_bytes, .. } => {
                let secs = if world.config.nodes.is_empty() {
                    0.0
                } else {
                    elapsed_s
                };
                println!(
                    "  transfer: {total_bytes} B in {:.2} s (wall, whole run) = {:.1} Mbit/s; {:.3} s simulated",
                    secs,
                    *total_bytes as f64 * 8.0 / secs.max(1e-9) / 1e6,
                    o.elapsed_ns as f64 / 1e9
                );
            }
            _ => {}
        }
    }
    for (expected, got) in world.transfers() {
        match got {
            Ok((name, d)) if d == expected => {
                println!(
                    "  integrity: {name}: receiver digest matches ({} B)",
                    d.len_bytes()
                );
            }
            Ok((name, d)) => println!(
                "  integrity: {name}: MISMATCH: got {} B digest {:x}",
                d.len_bytes(),
                d.value()
            ),
            Err(name) => println!("  integrity: {name}: no receiver report"),
        }
    }
    let _ = bytes;
    let d = world.drivers[0].nic.counters();
    println!(
        "  driver:   tx {} frames {} B, rx {} frames {} B",
        d.tx.frames, d.tx.bytes, d.rx.frames, d.rx.bytes
    );
    println!(
        "  drops:    tx: too big {}, port busy {}, port error {}, disabled {}; rx: runt {}, filtered {}, too big {}",
        d.tx.dropped_packet_too_big,
        d.tx.dropped_busy,
        d.tx.dropped_port_error,
        d.tx.dropped_disabled,
        d.rx.dropped_runt,
        d.rx.dropped_filtered,
        d.rx.dropped_too_big
    );
    for l in world.ledgers() {
        let dropped: Vec<String> = l
            .drops
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !dropped.is_empty() {
            println!("            {}: {}", l.name, dropped.join(", "));
        }
    }
    let pool = &world.stacks[0].pool;
    match checkers::check_pool_full("pool", pool) {
        Ok(()) => println!(
            "  pool:     returned whole ({} of {} packets free)",
            pool.packet_count() - pool.in_use(),
            pool.packet_count()
        ),
        Err(v) => println!("  pool:     NOT returned: {v}"),
    }
}

fn sim(seed: u64, count: u64) -> ExitCode {
    // Written with `writeln!`, not `println!`: a closed pipe (`vnic sim … | head`) ends the
    // run quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    let mut passed = 0u64;
    for s in seed..seed.saturating_add(count) {
        let line = match seeds::run_seed(s) {
            Ok(o) => {
                passed += 1;
                format!(
                    "seed {s}: ok ({} checks, {} rounds, {:.3} s simulated) [faults: {}]",
                    o.checks.checks_run,
                    o.world.rounds,
                    o.world.now_ns as f64 / 1e9,
                    o.world.config.faults.describe()
                )
            }
            Err(f) => {
                let _ = writeln!(out, "{f}\n{passed} passed, 1 failed");
                return ExitCode::FAILURE;
            }
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    let _ = writeln!(out, "{passed} passed, 0 failed");
    ExitCode::SUCCESS
}

fn run_demo(config: DemoConfig) -> ExitCode {
    println!(
        "vnic demo: ndk-model loopback: {} frames, pool {} x 2048 B, queues of {}",
        config.frames, config.pool_packets, config.queue_capacity
    );
    let started = Instant::now();
    let result = demo::run(config, |r| {
        eprint!(
            "\r  tx {:>10}  rx {:>10}  completed {:>10}",
            r.tx_frames, r.rx_frames, r.tx_completed
        );
    });
    eprintln!();
    let elapsed_s = started.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            println!("  frames sent        {}", r.tx_frames);
            println!(
                "  frames received    {} ({} bytes)",
                r.rx_frames, r.rx_bytes
            );
            println!("  tx completions     {}", r.tx_completed);
            println!("  drops: no rx buffer {}", r.dropped_no_rx_buffer);
            println!("  corrupted frames   {}", r.corrupted);
            println!("  lost completions   {}", r.lost_completions);
            println!(
                "  throughput         {:.2} Mframes/s",
                r.rx_frames as f64 / elapsed_s / 1e6
            );
            let whole = r.pool_in_use_at_end == 0;
            println!("  pool returned      {}", if whole { "yes" } else { "NO" });
            if whole
                && r.corrupted == 0
                && r.lost_completions == 0
                && r.rx_frames + r.dropped_no_rx_buffer == r.tx_frames
                && r.tx_completed == r.tx_frames
            {
                ExitCode::SUCCESS
            } else {
                println!("vnic demo: FAILED: frames lost, damaged or leaked");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("vnic demo: {e}");
            ExitCode::FAILURE
        }
    }
}
