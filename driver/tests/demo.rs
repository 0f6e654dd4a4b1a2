//! The loopback demo behind `vnic run` delivers every frame intact and returns the pool.

use vnic_driver::demo::{run, DemoConfig};

#[test]
fn demo_delivers_every_frame_and_returns_the_pool() {
    let frames = if cfg!(miri) { 200 } else { 50_000 };
    let mut progress_calls = 0;
    let r = run(
        DemoConfig {
            frames,
            pool_packets: 128,
            queue_capacity: 32,
        },
        |_| progress_calls += 1,
    )
    .unwrap();
    assert_eq!(r.tx_frames, frames);
    assert_eq!(r.tx_completed, frames);
    assert_eq!(r.rx_frames + r.dropped_no_rx_buffer, frames);
    assert_eq!(r.corrupted, 0);
    assert_eq!(r.lost_completions, 0);
    assert_eq!(r.pool_in_use_at_end, 0);
    assert!(r.rx_bytes >= r.rx_frames * 60);
    assert!(progress_calls > 0);
}
