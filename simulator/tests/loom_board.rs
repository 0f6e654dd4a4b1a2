//! Loom models of the world's cross-thread board: what one node's stack thread publishes is
//! what another thread sees, in order.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p vnic-sim
//! --target-dir target/loom --test loom_board`.
#![cfg(loom)]

use std::net::Ipv4Addr;

use loom::thread;
use vnic_sim::world::script::Board;

const ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 2);

#[test]
fn a_ready_node_has_its_address_visible() {
    loom::model(|| {
        let board = Board::new(2);
        let writer = {
            let board = board.clone();
            thread::spawn(move || {
                board.publish_address(0, ADDR);
                board.set_ready(0);
            })
        };
        // The reader (another node's script): ready implies the address is there.
        if board.is_ready(0) {
            assert_eq!(board.address(0), Some(ADDR));
        }
        writer.join().unwrap();
        assert!(board.is_ready(0));
        assert_eq!(board.address(0), Some(ADDR));
    });
}

#[test]
fn all_done_only_after_every_node_is_done() {
    loom::model(|| {
        let board = Board::new(2);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let board = board.clone();
                thread::spawn(move || {
                    board.publish_progress(i, 10 * i as u64, 1);
                    board.set_done(i);
                })
            })
            .collect();
        if board.all_done() {
            assert!(board.is_done(0) && board.is_done(1));
            // Progress was published before done, so it is visible now.
            assert_eq!(board.progress(1).0, 10);
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(board.all_done());
    });
}
