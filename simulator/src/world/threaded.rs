//! The threaded run: the same parts as the deterministic run, each on its own thread.
//!
//! - one **network** thread: vmnet, the gateway and every wire actor; it sleeps on a doorbell
//!   the NICs' ports ring when they queue Tx frames;
//! - per node, a **driver** thread: [`vnic_driver::nic::VirtualEthernet::run`], sleeping on
//!   port readiness and the stack's Tx doorbell;
//! - per node, a **stack** thread: the OS stack and its script.
//!
//! Threads meet only through the lock-free ndk-model rings (the NDK queues and the port's
//! wire hand-off), doorbells, and atomics on the [`super::script::Board`]. Time is a wall
//! clock ([`vnic_driver::clock::WallClock`]), so a threaded run is not reproducible; its
//! checkers are the same.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use ndk_model::notify::{FakeNotifier, Notifier};
use vnic_driver::clock::{Clock, WallClock};
use vnic_driver::nic::RunMode;

use super::{RunError, World};

/// The longest a thread sleeps before looking again, in milliseconds.
const WAIT_MS: u32 = 1;

impl World {
    /// Runs the scripts on threads until they finish, one fails, or `wall_ns_max` passes;
    /// then joins every thread and hands the world back together (ready for
    /// [`World::quiesce`] and [`World::check`]) with the outcome.
    ///
    /// # Errors
    /// [`RunError`]: a script failed, a driver pass failed, or time ran out.
    ///
    /// # Panics
    /// If a thread of the run panicked (a bug, reported with its message).
    pub fn run_threaded(self, wall_ns_max: u64) -> (Self, Result<(), RunError>) {
        self.run_threaded_with_progress(wall_ns_max, &mut |_, _| {})
    }

    /// As [`World::run_threaded`], calling `progress(board, elapsed_ns)` about every 200 ms
    /// from the calling thread (for a live stats line).
    #[expect(
        clippy::too_many_lines,
        reason = "one thread scope owns every thread of the run, from spawn to join"
    )]
    pub fn run_threaded_with_progress(
        self,
        wall_ns_max: u64,
        progress: &mut dyn FnMut(&super::script::Board, u64),
    ) -> (Self, Result<(), RunError>) {
        let World {
            config,
            mut net,
            drivers,
            stacks,
            board,
            now_ns: origin_ns,
            rng,
            rounds,
        } = self;
        let clock = WallClock::new();
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let host_done = Arc::new(AtomicBool::new(false));
        let net_bell: Arc<dyn Notifier> = Arc::new(FakeNotifier::new());
        for a in &mut net.actors {
            a.wire.set_doorbell(Arc::clone(&net_bell));
        }
        let result = thread::scope(|scope| {
            let net_thread = {
                let (stop, board, host_done, bell) = (
                    Arc::clone(&stop),
                    Arc::clone(&board),
                    Arc::clone(&host_done),
                    Arc::clone(&net_bell),
                );
                thread::Builder::new()
                    .name("vnic-network".into())
                    .spawn_scoped(scope, move || {
                        while !stop.load(Ordering::Acquire) {
                            let now_ns = origin_ns + clock.now_ns();
                            let moved = net.step(now_ns, &board);
                            if net.host_done() {
                                host_done.store(true, Ordering::Release);
                            }
                            if !moved {
                                bell.wait(WAIT_MS);
                            }
                        }
                        net
                    })
                    .expect("spawn network thread")
            };
            let driver_threads: Vec<_> = drivers
                .into_iter()
                .enumerate()
                .map(|(i, mut d)| {
                    let stop = Arc::clone(&stop);
                    thread::Builder::new()
                        .name(format!("vnic-driver{i}"))
                        .spawn_scoped(scope, move || {
                            let waker = Arc::clone(&d.waker);
                            let r = d.nic.run(
                                d.service.link_mut(),
                                &waker,
                                &stop,
                                RunMode::Wait {
                                    timeout_ms: WAIT_MS,
                                },
                                u64::MAX,
                            );
                            (d, r)
                        })
                        .expect("spawn driver thread")
                })
                .collect();
            let stack_threads: Vec<_> = stacks
                .into_iter()
                .enumerate()
                .map(|(i, mut s)| {
                    let (stop, failed, board) =
                        (Arc::clone(&stop), Arc::clone(&failed), Arc::clone(&board));
                    thread::Builder::new()
                        .name(format!("vnic-stack{i}"))
                        .spawn_scoped(scope, move || {
                            let bell = FakeNotifier::new();
                            while !stop.load(Ordering::Acquire) {
                                let now_ns = origin_ns + clock.now_ns();
                                let mut moved = s.stack.poll(now_ns);
                                moved |= s.script.step(&mut s.stack, now_ns, &board);
                                if s.script.error().is_some() {
                                    failed.store(true, Ordering::Release);
                                }
                                if !moved {
                                    bell.wait(WAIT_MS);
                                }
                            }
                            s
                        })
                        .expect("spawn stack thread")
                })
                .collect();
            let waiter = FakeNotifier::new();
            let started_ns = clock.now_ns();
            let mut last_progress_ns = 0;
            let outcome = loop {
                let elapsed_ns = clock.now_ns() - started_ns;
                if elapsed_ns - last_progress_ns >= 200_000_000 {
                    last_progress_ns = elapsed_ns;
                    progress(&board, elapsed_ns);
                }
                if failed.load(Ordering::Acquire) {
                    break Ok(());
                }
                if board.all_done() && host_done.load(Ordering::Acquire) {
                    break Ok(());
                }
                if clock.now_ns() - started_ns > wall_ns_max {
                    break Err(());
                }
                waiter.wait(5);
            };
            stop.store(true, Ordering::Release);
            net_bell.notify();
            let net = net_thread.join().expect("network thread panicked");
            let mut driver_error = None;
            let drivers: Vec<_> = driver_threads
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let (d, r) = t.join().expect("driver thread panicked");
                    if let Err(e) = r {
                        driver_error.get_or_insert(RunError::Driver {
                            node: i,
                            detail: e.to_string(),
                        });
                    }
                    d
                })
                .collect();
            let stacks: Vec<_> = stack_threads
                .into_iter()
                .map(|t| t.join().expect("stack thread panicked"))
                .collect();
            (net, drivers, stacks, outcome, driver_error)
        });
        let (net, drivers, stacks, outcome, driver_error) = result;
        let world = World {
            config,
            net,
            drivers,
            stacks,
            board,
            now_ns: origin_ns + clock.now_ns(),
            rng,
            rounds,
        };
        let result = if let Some(e) = driver_error {
            Err(e)
        } else if let Some(e) = world.script_error() {
            Err(e)
        } else if outcome.is_err() || !world.scripts_done() {
            Err(world.stalled())
        } else {
            Ok(())
        };
        (world, result)
    }
}
