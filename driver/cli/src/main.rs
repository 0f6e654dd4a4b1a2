//! The `vnic` command.
//!
//! `vnic run` runs the main job. Until the simulated vmnet network lands (issue 3) it runs the
//! ndk-model loopback demo: the four NDK queues and the pool, a system thread and a driver
//! thread, every frame checked, and the pool checked whole at the end.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use vnic_driver::demo::{self, DemoConfig};

/// vnic: a virtual Ethernet NIC on a model of Apple's NetworkingDriverKit.
#[derive(Debug, Parser)]
#[command(name = "vnic", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the driver (for now: the ndk-model loopback demo).
    Run {
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
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            frames,
            pool_packets,
            queue_capacity,
        } => run(DemoConfig {
            frames,
            pool_packets,
            queue_capacity,
        }),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the command's one wall clock: it reports throughput to a person"
)]
fn run(config: DemoConfig) -> ExitCode {
    println!(
        "vnic run: ndk-model loopback demo: {} frames, pool {} x 2048 B, queues of {}",
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
                "  throughput         {:.2} Mframes/s, {:.2} Gbit/s of payload",
                r.rx_frames as f64 / elapsed_s / 1e6,
                r.rx_bytes as f64 * 8.0 / elapsed_s / 1e9
            );
            let whole = r.pool_in_use_at_end == 0;
            println!(
                "  pool returned      {}",
                if whole {
                    "yes, every packet".to_string()
                } else {
                    format!("NO: {} packets leaked", r.pool_in_use_at_end)
                }
            );
            let ok = whole
                && r.corrupted == 0
                && r.lost_completions == 0
                && r.rx_frames + r.dropped_no_rx_buffer == r.tx_frames
                && r.tx_completed == r.tx_frames;
            if ok {
                ExitCode::SUCCESS
            } else {
                println!("vnic run: FAILED: frames lost, damaged or leaked");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("vnic run: {e}");
            ExitCode::FAILURE
        }
    }
}
