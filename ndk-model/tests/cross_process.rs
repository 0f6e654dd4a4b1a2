//! The shared-memory ABI across a real process boundary, against the C++ side.
//!
//! * `abi_header_matches_the_rust_layout` compiles `dext-shim/host-tests/abi_check.cpp` (C++17,
//!   no exceptions, no RTTI) and `abi_check.c` (C11) against `dext-shim/include/vnic/abi.h`, so
//!   the header's static asserts run, runs both (in-process self-tests of the inline ring and
//!   ownership functions), and compares every size, offset, alignment and constant the C++
//!   program prints with the Rust structs (`offset_of!`, `size_of`, the constants).
//! * `packets_move_both_ways_through_a_cpp_driver_process` compiles
//!   `dext-shim/host-tests/vnic_peer.cpp`, creates a memfd-backed [`SharedArea`] and starts the
//!   peer with the memfd as its standard input (std's `Stdio::from(OwnedFd)` `dup2`s it onto fd 0
//!   with close-on-exec clear, so no `unsafe` is needed to pass it). The peer is the driver
//!   (dext); this test is the system side and moves [`packet_count`] packets each way: Tx frames
//!   it writes and the peer verifies byte for byte, Rx frames the peer writes and this test
//!   verifies byte for byte, both in sequence order. Rings of 256 slots make the slot positions
//!   wrap thousands of times, and the rings are re-created so their free-running `u32` indices
//!   start `packet_count / 2` below 2^32 and cross the wrap mid-run (the area itself starts
//!   rings at index 0). At the end the peer must exit 0, both counts must be reached, the indices
//!   the peer reports must equal ours, and both pools' leak reports must be clean.
//!
//! The compiler is `$CXX` (or `g++`) and `$CC` (or `gcc`). Without one the tests fail with a
//! message saying so; they never skip, since CI installs g++.

#![cfg(all(target_os = "linux", not(miri), not(loom)))]
#![allow(
    clippy::disallowed_methods,
    reason = "a test supervising a child process needs deadlines and short sleeps"
)]

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndk_model::area::{AreaConfig, AreaHeader, SharedArea, AREA_MAGIC, AREA_VERSION};
use ndk_model::error::IoReturn;
use ndk_model::packet::{Packet, PacketDirection};
use ndk_model::pool::{
    AllocateError, Owner, OwnerState, PacketBufferPool, PacketState, PoolConfig, PoolHeader,
    PoolInfo, PoolOptions, NIL_INDEX, OWNER_STATE_MASK, OWNER_TOKEN_BIT, POOL_BUFFER_BYTES_MAX,
    POOL_MAGIC, POOL_PACKETS_MAX,
};
use ndk_model::queue::{
    EnqueueRefusal, QueueKind, SystemRxCompletion, SystemRxSubmission, SystemTxCompletion,
    SystemTxSubmission,
};
use ndk_model::ring::{
    Ring, RingConfig, RingControl, RingHeader, RING_CAPACITY_MAX, RING_MAGIC, WAKE_CONSUMER,
    WAKE_PRODUCER,
};

/// Packets each way, in debug and in release builds alike: about 15 s in a debug build and 5 s
/// in a release build on a 2-vCPU machine (the C++ peer is always built with -O2).
const PACKETS: u32 = 1_000_000;
/// Slots per ring: small, so slot positions wrap many times.
const RING_CAPACITY: u32 = 256;
/// Packets per pool.
const POOL_PACKETS: u32 = 512;
/// Bytes per buffer: the largest frame (1514) at the largest data offset (48) fits.
const BUFFER_BYTES: u32 = 2048;
/// Packets per enqueue or dequeue call.
const BATCH: usize = 32;
/// How long either side may go without moving a packet before the test gives up.
const IDLE_TIMEOUT: Duration = Duration::from_mins(2);

// ---- Frame spec, mirrored in dext-shim/host-tests/vnic_peer.cpp ----------------------------
//
// A frame for sequence number `seq` in direction `salt`: length 60 + splitmix64(seq ^ salt) %
// 1455 (60..=1514), data offset (splitmix64(seq ^ salt) >> 32) % 4 * 16, bytes 0..8 = seq
// (little-endian), then the little-endian bytes of w_k = seed + k * GOLDEN for k = 0, 1, ...
// (truncated at the end), seed = splitmix64(seq ^ salt ^ PATTERN_SALT).

const TX_SALT: u64 = 0x5458_0000_0000_0000;
const RX_SALT: u64 = 0x5258_0000_0000_0000;
const PATTERN_SALT: u64 = 0x0000_5041_5400_0000;
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const MIN_FRAME: u32 = 60;
const MAX_FRAME: u32 = 1514;
const LINK_HEADER_LENGTH: u8 = 14;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn frame_length(seq: u64, salt: u64) -> u32 {
    MIN_FRAME + (splitmix64(seq ^ salt) % u64::from(MAX_FRAME - MIN_FRAME + 1)) as u32
}

fn frame_offset(seq: u64, salt: u64) -> u16 {
    ((splitmix64(seq ^ salt) >> 32) % 4 * 16) as u16
}

fn fill_frame(frame: &mut [u8], seq: u64, salt: u64) {
    frame[..8].copy_from_slice(&seq.to_le_bytes());
    let mut word = splitmix64(seq ^ salt ^ PATTERN_SALT);
    for chunk in frame[8..].chunks_mut(8) {
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        word = word.wrapping_add(GOLDEN);
    }
}

/// The first byte of `frame` that differs from the spec, if any.
fn first_mismatch(frame: &[u8], seq: u64, salt: u64) -> Option<usize> {
    if frame.len() < 8 || frame[..8] != seq.to_le_bytes() {
        return Some(0);
    }
    let mut word = splitmix64(seq ^ salt ^ PATTERN_SALT);
    for (k, chunk) in frame[8..].chunks(8).enumerate() {
        let want = word.to_le_bytes();
        if chunk != &want[..chunk.len()] {
            let i = chunk
                .iter()
                .zip(want)
                .position(|(a, b)| *a != b)
                .unwrap_or(0);
            return Some(8 + 8 * k + i);
        }
        word = word.wrapping_add(GOLDEN);
    }
    None
}

fn frame_seq(frame: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(frame.get(..8)?.try_into().ok()?))
}

/// Packets each way: [`PACKETS`], or `VNIC_CROSS_PROCESS_PACKETS` when set (for a quick run
/// while editing the peer).
fn packet_count() -> u32 {
    std::env::var("VNIC_CROSS_PROCESS_PACKETS").map_or(PACKETS, |text| {
        text.parse()
            .expect("VNIC_CROSS_PROCESS_PACKETS is a packet count")
    })
}

// ---- Building the C and C++ host programs ---------------------------------------------------

const CXX_FLAGS: &[&str] = &[
    "-std=c++17",
    "-fno-exceptions",
    "-fno-rtti",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wpedantic",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wshadow",
];

const C_FLAGS: &[&str] = &[
    "-std=c11",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wpedantic",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wshadow",
];

fn shim_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dext-shim")
}

/// An executable built for this test run; deleted when dropped.
struct Built(PathBuf);

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Compiles `dext-shim/host-tests/<source>` with `$<compiler_var>` (default `default`).
fn build(compiler_var: &str, default: &str, flags: &[&str], source: &str) -> Built {
    let command_line = std::env::var(compiler_var)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let mut words = command_line.split_whitespace();
    let program = words.next().expect("compiler command is not empty");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vnic-host-tests");
    std::fs::create_dir_all(&out_dir).expect("create the host-test output directory");
    let stem = source.replace('.', "_");
    let exe = Built(out_dir.join(format!("{stem}-{}", std::process::id())));
    let shim = shim_dir();
    let output = Command::new(program)
        .args(words)
        .args(flags)
        .arg("-I")
        .arg(shim.join("include"))
        .arg(shim.join("host-tests").join(source))
        .arg("-o")
        .arg(&exe.0)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run the compiler `{program}` ({e}). These tests need a C/C++ compiler: \
             install g++ (for example `apt-get install g++`) or set {compiler_var}. They fail \
             instead of skipping so that a CI without one cannot pass silently."
        ),
    };
    assert!(
        output.status.success(),
        "`{command_line}` failed to compile {source} ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn build_cxx(source: &str) -> Built {
    build("CXX", "g++", CXX_FLAGS, source)
}

fn build_c(source: &str) -> Built {
    build("CC", "gcc", C_FLAGS, source)
}

fn run(exe: &Built) -> Output {
    let output = Command::new(&exe.0)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.0.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}",
        exe.0.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

// ---- Test 1: the header describes the same bytes as the Rust structs -----------------------

/// Pushes `size.<c>` and `offset.<c>.<field>` for fields named the same in Rust and C.
macro_rules! layout_of {
    ($out:ident, $c:literal, $rust:ty, [$($field:ident),* $(,)?]) => {
        $out.push((concat!("size.", $c).to_owned(), size_of::<$rust>() as u64));
        $(
            $out.push((
                concat!("offset.", $c, ".", stringify!($field)).to_owned(),
                offset_of!($rust, $field) as u64,
            ));
        )*
    };
}

/// Buffer sizes whose stride abi_check.cpp recomputes (its list must match).
const STRIDE_SAMPLES: [u32; 9] = [1, 60, 64, 128, 1514, 2048, 4096, 9000, 65536];

/// `size.*`, `offset.*` and `align.*` of the shared Rust structs, keyed by their C names.
fn struct_layout() -> Vec<(String, u64)> {
    let mut v = Vec::new();
    layout_of!(
        v,
        "vnic_area_header",
        AreaHeader,
        [
            magic,
            version,
            total_bytes,
            pool_offsets_bytes,
            ring_offsets_bytes,
        ]
    );
    layout_of!(
        v,
        "vnic_ring_control",
        RingControl,
        [
            flags,
            enabled,
            magic,
            capacity,
            element_size_bytes,
            queue_id,
            kind,
            reserved,
        ]
    );
    layout_of!(
        v,
        "vnic_ring_header",
        RingHeader,
        [producer, consumer, control]
    );
    layout_of!(
        v,
        "vnic_pool_info",
        PoolInfo,
        [
            magic,
            name,
            packet_count,
            buffer_count,
            buffer_size_bytes,
            stride_bytes,
            options,
            tag_bits,
            links_offset_bytes,
            states_offset_bytes,
            buffers_offset_bytes,
            total_bytes,
        ]
    );
    layout_of!(v, "vnic_pool_header", PoolHeader, [free_head, info]);
    layout_of!(
        v,
        "vnic_packet_state",
        PacketState,
        [
            owner,
            data_length,
            data_offset,
            link_header_length,
            direction,
            completion_status,
            timestamp_ns,
            tx_checksum_flags,
            rx_checksum_flags,
            checksum_start,
            checksum_stuff,
            rx_checksum_value,
            tso_segment_size,
            tso_flags,
            lro_flags,
            lro_segment_count,
            reserved,
        ]
    );
    for (c, align) in [
        ("vnic_area_header", align_of::<AreaHeader>()),
        ("vnic_ring_header", align_of::<RingHeader>()),
        ("vnic_pool_header", align_of::<PoolHeader>()),
        ("vnic_packet_state", align_of::<PacketState>()),
    ] {
        v.push((format!("align.{c}"), align as u64));
    }
    v
}

/// The shared constants (`const.*`) and pool strides (`stride.*`), keyed by their C names.
fn constants() -> Vec<(String, u64)> {
    let mut v = Vec::new();
    let constants: [(&str, u64); 28] = [
        ("VNIC_AREA_MAGIC", AREA_MAGIC.into()),
        ("VNIC_AREA_VERSION", AREA_VERSION.into()),
        ("VNIC_RING_MAGIC", RING_MAGIC.into()),
        ("VNIC_RING_CAPACITY_MAX", RING_CAPACITY_MAX.into()),
        ("VNIC_RING_WAKE_CONSUMER", WAKE_CONSUMER.into()),
        ("VNIC_RING_WAKE_PRODUCER", WAKE_PRODUCER.into()),
        ("VNIC_POOL_MAGIC", POOL_MAGIC.into()),
        ("VNIC_POOL_NIL_INDEX", NIL_INDEX.into()),
        ("VNIC_POOL_PACKETS_MAX", POOL_PACKETS_MAX.into()),
        ("VNIC_POOL_BUFFER_BYTES_MAX", POOL_BUFFER_BYTES_MAX.into()),
        (
            "VNIC_POOL_OPTION_SINGLE_MEMORY_SEGMENT",
            PoolOptions::SINGLE_MEMORY_SEGMENT.bits().into(),
        ),
        (
            "VNIC_POOL_OPTION_PERSISTENT_MEMORY",
            PoolOptions::PERSISTENT_MEMORY.bits().into(),
        ),
        (
            "VNIC_POOL_OPTION_MAP_TO_DEXT",
            PoolOptions::MAP_TO_DEXT.bits().into(),
        ),
        (
            "VNIC_POOL_OPTION_MAP_TO_DEVICE",
            PoolOptions::MAP_TO_DEVICE.bits().into(),
        ),
        ("VNIC_OWNER_TOKEN_BIT", OWNER_TOKEN_BIT.into()),
        ("VNIC_OWNER_STATE_MASK", OWNER_STATE_MASK.into()),
        ("VNIC_OWNER_FREE", OwnerState::Free as u64),
        ("VNIC_OWNER_SYSTEM", OwnerState::System as u64),
        ("VNIC_OWNER_IN_SUBMISSION", OwnerState::InSubmission as u64),
        ("VNIC_OWNER_DRIVER", OwnerState::Driver as u64),
        ("VNIC_OWNER_IN_COMPLETION", OwnerState::InCompletion as u64),
        ("VNIC_QUEUE_RX_SUBMISSION", QueueKind::RxSubmission as u64),
        ("VNIC_QUEUE_RX_COMPLETION", QueueKind::RxCompletion as u64),
        ("VNIC_QUEUE_TX_SUBMISSION", QueueKind::TxSubmission as u64),
        ("VNIC_QUEUE_TX_COMPLETION", QueueKind::TxCompletion as u64),
        ("VNIC_DIRECTION_NONE", PacketDirection::None as u64),
        ("VNIC_DIRECTION_TX", PacketDirection::Tx as u64),
        ("VNIC_DIRECTION_RX", PacketDirection::Rx as u64),
    ];
    for (name, value) in constants {
        v.push((format!("const.{name}"), value));
    }
    for size in STRIDE_SAMPLES {
        let stride = PoolConfig::new(*b"test", 1, size).stride_bytes();
        v.push((format!("stride.{size}"), stride.into()));
    }
    v
}

/// Everything abi_check.cpp reports, as the Rust side has it.
fn rust_layout() -> Vec<(String, u64)> {
    let mut v = struct_layout();
    v.extend(constants());
    v
}

#[test]
fn abi_header_matches_the_rust_layout() {
    // C11: compiling runs the header's _Static_asserts; running checks a wrapping ring.
    run(&build_c("abi_check.c"));

    // C++17: static_asserts at compile time, self-tests and the layout report at run time.
    let output = run(&build_cxx("abi_check.cpp"));
    let stdout = String::from_utf8(output.stdout).expect("abi_check prints ASCII");
    let mut reported = BTreeMap::new();
    for line in stdout.lines() {
        let (key, value) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("abi_check printed a malformed line: {line:?}"));
        let value: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            reported.insert(key.to_owned(), value).is_none(),
            "{key} printed twice"
        );
    }

    let expected = rust_layout();
    let mut problems = Vec::new();
    for (key, want) in &expected {
        match reported.remove(key) {
            Some(got) if got == *want => {}
            Some(got) => problems.push(format!("{key}: abi.h says {got}, Rust says {want}")),
            None => problems.push(format!("{key}: not reported by abi_check.cpp")),
        }
    }
    for key in reported.keys() {
        problems.push(format!(
            "{key}: reported by abi_check.cpp but not checked here"
        ));
    }
    assert!(
        problems.is_empty(),
        "abi.h and the Rust layout disagree:\n  {}",
        problems.join("\n  ")
    );
    println!(
        "abi.h: {} sizes, offsets and constants match the Rust layout",
        expected.len()
    );
}

// ---- Test 2: a million packets each way through the C++ driver ------------------------------

/// The peer process; killed and reaped if the test panics.
struct Peer(Option<Child>);

impl Peer {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("peer still held")
    }

    /// Panics with the peer's output if it has exited (it only exits early on failure).
    fn check_running(&mut self, what: &str) {
        if let Some(status) = self.child().try_wait().expect("try_wait on the peer") {
            let output = self
                .0
                .take()
                .expect("peer")
                .wait_with_output()
                .expect("peer output");
            panic!(
                "the C++ peer exited ({status}) while {what}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Waits (bounded) for the peer to exit and returns its output.
    fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        while self
            .child()
            .try_wait()
            .expect("try_wait on the peer")
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "the C++ peer did not exit after finishing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.0
            .take()
            .expect("peer")
            .wait_with_output()
            .expect("peer output")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The system side (OS stack / helper) of all four queues, on one thread.
struct System {
    tx_pool: PacketBufferPool,
    rx_pool: PacketBufferPool,
    tx_submission: SystemTxSubmission,
    tx_completion: SystemTxCompletion,
    rx_submission: SystemRxSubmission,
    rx_completion: SystemRxCompletion,
    tx_batch: heapless::Vec<Packet, BATCH>,
    rx_batch: heapless::Vec<Packet, BATCH>,
    target: u64,
    /// Tx frames written; also the next Tx sequence number.
    tx_written: u64,
    /// Tx packets back from the driver, checked in order.
    tx_completed: u64,
    /// Empty Rx buffers allocated for posting.
    rx_allocated: u64,
    /// Rx frames received and verified; also the next expected Rx sequence number.
    rx_received: u64,
    tx_bytes: u64,
    rx_bytes: u64,
}

impl System {
    fn attach(area: &SharedArea, rings: &[Arc<Ring<u32>>; 4], target: u64) -> Self {
        let ring = |kind: QueueKind| &rings[kind as usize];
        Self {
            tx_pool: area.tx_pool.clone(),
            rx_pool: area.rx_pool.clone(),
            tx_submission: SystemTxSubmission::attach(ring(QueueKind::TxSubmission), &area.tx_pool)
                .expect("tx submission half"),
            tx_completion: SystemTxCompletion::attach(ring(QueueKind::TxCompletion), &area.tx_pool)
                .expect("tx completion half"),
            rx_submission: SystemRxSubmission::attach(ring(QueueKind::RxSubmission), &area.rx_pool)
                .expect("rx submission half"),
            rx_completion: SystemRxCompletion::attach(ring(QueueKind::RxCompletion), &area.rx_pool)
                .expect("rx completion half"),
            tx_batch: heapless::Vec::new(),
            rx_batch: heapless::Vec::new(),
            target,
            tx_written: 0,
            tx_completed: 0,
            rx_allocated: 0,
            rx_received: 0,
            tx_bytes: 0,
            rx_bytes: 0,
        }
    }

    fn done(&self) -> bool {
        self.tx_completed == self.target && self.rx_received == self.target
    }

    /// One pass over all four queues; returns whether anything moved.
    fn step(&mut self) -> bool {
        let moved = self.submit_tx() + self.complete_tx() + self.post_rx() + self.receive_rx();
        moved > 0
    }

    fn submit_tx(&mut self) -> u32 {
        while self.tx_batch.len() < BATCH && self.tx_written < self.target {
            let Some(mut packet) = allocate(&self.tx_pool, "tx") else {
                break;
            };
            let seq = self.tx_written;
            let mut view = self
                .tx_pool
                .packet_mut(&mut packet)
                .expect("tx pool packet");
            view.set_data_offset_and_length(frame_offset(seq, TX_SALT), frame_length(seq, TX_SALT))
                .expect("frame fits the buffer");
            fill_frame(view.data_mut(), seq, TX_SALT);
            view.set_direction(PacketDirection::Tx);
            view.set_link_header_length(LINK_HEADER_LENGTH);
            // The driver must overwrite this with kIOReturnSuccess.
            view.set_completion_status(IoReturn::NotReady);
            self.tx_batch.push(packet).expect("batch has room");
            self.tx_written += 1;
            self.tx_bytes += u64::from(frame_length(seq, TX_SALT));
        }
        enqueue(
            &mut self.tx_submission.enqueue_packets(&mut self.tx_batch),
            "tx submission",
        )
    }

    fn complete_tx(&mut self) -> u32 {
        let mut done: heapless::Vec<Packet, BATCH> = heapless::Vec::new();
        let n = self
            .tx_completion
            .dequeue_packets(&mut done, BATCH as u32)
            .expect("tx completion ring intact");
        for packet in done {
            let seq = self.tx_completed;
            let view = self.tx_pool.packet(&packet).expect("tx pool packet");
            assert_eq!(
                frame_seq(view.data()),
                Some(seq),
                "tx completions out of order"
            );
            assert_eq!(
                view.data_length(),
                frame_length(seq, TX_SALT),
                "tx seq {seq} length"
            );
            assert_eq!(
                view.completion_status(),
                IoReturn::Success.code(),
                "tx seq {seq} status"
            );
            assert_eq!(view.timestamp_ns(), Some(seq + 1), "tx seq {seq} timestamp");
            self.tx_pool
                .system_free(packet)
                .expect("completed packet is system-owned");
            self.tx_completed += 1;
        }
        n
    }

    fn post_rx(&mut self) -> u32 {
        while self.rx_batch.len() < BATCH && self.rx_allocated < self.target {
            let Some(packet) = allocate(&self.rx_pool, "rx") else {
                break;
            };
            self.rx_batch.push(packet).expect("batch has room");
            self.rx_allocated += 1;
        }
        enqueue(
            &mut self.rx_submission.enqueue_packets(&mut self.rx_batch),
            "rx submission",
        )
    }

    fn receive_rx(&mut self) -> u32 {
        let mut got: heapless::Vec<Packet, BATCH> = heapless::Vec::new();
        let n = self
            .rx_completion
            .dequeue_packets(&mut got, BATCH as u32)
            .expect("rx completion ring intact");
        for packet in got {
            let seq = self.rx_received;
            let view = self.rx_pool.packet(&packet).expect("rx pool packet");
            let (offset, length) = (view.data_offset(), view.data_length());
            assert_eq!(
                (offset, length),
                (frame_offset(seq, RX_SALT), frame_length(seq, RX_SALT)),
                "rx seq {seq} (packet {}): data offset and length",
                packet.index()
            );
            assert_eq!(
                view.direction(),
                Some(PacketDirection::Rx),
                "rx seq {seq} direction"
            );
            assert_eq!(
                view.link_header_length(),
                LINK_HEADER_LENGTH,
                "rx seq {seq} link header"
            );
            assert_eq!(
                view.completion_status(),
                IoReturn::Success.code(),
                "rx seq {seq} status"
            );
            assert_eq!(view.timestamp_ns(), Some(seq + 1), "rx seq {seq} timestamp");
            if let Some(at) = first_mismatch(view.data(), seq, RX_SALT) {
                panic!(
                    "rx seq {seq} (packet {}, frame seq {:?}): byte {at} of {length} differs",
                    packet.index(),
                    frame_seq(view.data())
                );
            }
            self.rx_pool
                .system_free(packet)
                .expect("received packet is system-owned");
            self.rx_received += 1;
            self.rx_bytes += u64::from(length);
        }
        n
    }
}

/// Allocates a system-owned packet; `None` while the pool is exhausted (flow control).
fn allocate(pool: &PacketBufferPool, what: &str) -> Option<Packet> {
    match pool.allocate(Owner::System) {
        Ok(packet) => Some(packet),
        Err(AllocateError::Exhausted { .. }) => None,
        Err(e) => panic!("{what} allocate: {e}"),
    }
}

/// Checks an enqueue outcome: only a full ring may refuse; returns how many went in.
fn enqueue(outcome: &mut ndk_model::queue::EnqueueOutcome, what: &str) -> u32 {
    match outcome.refusal {
        None | Some(EnqueueRefusal::Full) => outcome.accepted,
        Some(refusal) => panic!("{what} refused a packet: {refusal}"),
    }
}

/// Re-creates the area's four rings in place with indices starting at `start_index`, before
/// anyone uses them (SharedArea always starts rings at index 0).
fn rings_starting_at(
    area: &SharedArea,
    config: &AreaConfig,
    start_index: u32,
) -> [Arc<Ring<u32>>; 4] {
    let layout = config.layout();
    QueueKind::ALL.map(|kind| {
        let i = kind as usize;
        Ring::create_in(
            Arc::clone(area.region()),
            layout.ring_offsets_bytes[i],
            RingConfig {
                capacity: config.capacities[i],
                start_index,
                queue_id: config.queue_ids[i],
                kind: kind as u32,
            },
        )
        .expect("ring fits where the area put it")
    })
}

fn spawn_peer(peer: &Built, area: &SharedArea, count: u32) -> Peer {
    let fd = area
        .region()
        .fd()
        .expect("a memfd-backed area")
        .as_fd()
        .try_clone_to_owned()
        .expect("dup the memfd");
    let child = Command::new(&peer.0)
        .args(["--fd", "0", "--size"])
        .arg(area.region().len_bytes().to_string())
        .args(["--tx", &count.to_string(), "--rx", &count.to_string()])
        .args(["--parent-pid", &std::process::id().to_string()])
        .args(["--idle-timeout-s", &IDLE_TIMEOUT.as_secs().to_string()])
        // The memfd becomes the peer's fd 0 (close-on-exec clear after dup2).
        .stdin(Stdio::from(fd))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", peer.0.display()));
    Peer(Some(child))
}

/// Runs the system side until both counts are reached; panics on a stall or a dead peer.
fn drive(system: &mut System, peer: &mut Peer) {
    let mut idle_passes = 0u32;
    let mut idle_since = Instant::now();
    while !system.done() {
        if system.step() {
            idle_passes = 0;
            continue;
        }
        idle_passes += 1;
        if idle_passes < 64 {
            std::hint::spin_loop();
            continue;
        }
        std::thread::yield_now();
        if idle_passes == 64 {
            idle_since = Instant::now();
        } else if idle_passes.is_multiple_of(256) {
            peer.check_running("packets were still in flight");
            assert!(
                idle_since.elapsed() < IDLE_TIMEOUT,
                "no progress for {IDLE_TIMEOUT:?}: tx written {} completed {}, rx posted {} \
                 received {}, of {}",
                system.tx_written,
                system.tx_completed,
                system.rx_allocated,
                system.rx_received,
                system.target
            );
        }
    }
}

fn parse_counters(stdout: &str) -> BTreeMap<&str, u64> {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("vnic_peer ok "))
        .unwrap_or_else(|| panic!("no summary line from the peer in {stdout:?}"));
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| (key, value.parse().expect("numeric counter")))
        .collect()
}

#[test]
fn packets_move_both_ways_through_a_cpp_driver_process() {
    let count = packet_count();
    let started = Instant::now();
    let peer_exe = build_cxx("vnic_peer.cpp");
    let build_time = started.elapsed();

    let config = AreaConfig {
        tx_pool: PoolConfig::new(*b"vtx ", POOL_PACKETS, BUFFER_BYTES),
        rx_pool: Some(PoolConfig::new(*b"vrx ", POOL_PACKETS, BUFFER_BYTES)),
        capacities: [RING_CAPACITY; 4],
        queue_ids: [10, 11, 12, 13],
    };
    let area = SharedArea::create(&config, true).expect("memfd-backed area");
    let start_index = 0u32.wrapping_sub(count / 2);
    let rings = rings_starting_at(&area, &config, start_index);
    let mut system = System::attach(&area, &rings, u64::from(count));

    let mut peer = spawn_peer(&peer_exe, &area, count);
    // SetEnable belongs to the driver: wait for the peer to enable all four queues.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rings.iter().all(|ring| ring.is_enabled()) {
        peer.check_running("waiting for it to enable the queues");
        assert!(
            Instant::now() < deadline,
            "the peer did not enable the queues"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    let moving = Instant::now();
    drive(&mut system, &mut peer);
    let move_time = moving.elapsed();

    let output = peer.finish(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the C++ peer failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let counters = parse_counters(&stdout);
    let end_index = u64::from(start_index.wrapping_add(count));
    for (key, want) in [
        ("tx_verified", u64::from(count)),
        ("tx_completed", u64::from(count)),
        ("rx_filled", u64::from(count)),
        ("rx_completed", u64::from(count)),
        ("tx_bytes", system.tx_bytes),
        ("rx_bytes", system.rx_bytes),
        ("violations", 0),
        ("tx_sub_head", end_index),
        ("tx_comp_tail", end_index),
        ("rx_sub_head", end_index),
        ("rx_comp_tail", end_index),
    ] {
        assert_eq!(
            counters.get(key),
            Some(&want),
            "peer counter {key} in {stdout:?}"
        );
    }
    assert!(
        count < 2 || start_index.wrapping_add(count) < start_index,
        "indices crossed 2^32"
    );

    // Every packet is back on its free list, and nothing was skipped as an ownership violation.
    for (name, pool) in [("tx", &system.tx_pool), ("rx", &system.rx_pool)] {
        let report = pool.leak_report();
        assert!(report.is_clean(), "{name} pool leaked packets: {report:?}");
    }
    assert_eq!(system.tx_completion.stats().ownership_violations, 0);
    assert_eq!(system.rx_completion.stats().ownership_violations, 0);
    assert!(rings.iter().all(|ring| ring.is_empty()), "rings drained");

    let seconds = move_time.as_secs_f64();
    println!(
        "cross-process ({} build): {count} packets each way ({} MB Tx, {} MB Rx) in {seconds:.2} s \
         ({:.0} k packets/s each way); peer build {:.2} s; ring indices {start_index:#x} -> \
         {end_index:#x}; peer: {}",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        system.tx_bytes / 1_000_000,
        system.rx_bytes / 1_000_000,
        f64::from(count) / seconds / 1e3,
        build_time.as_secs_f64(),
        stdout.trim()
    );
}
