// vnic_peer: the DRIVER (dext) side of a vnic shared area, in a separate process, on Linux.
//
//   vnic_peer --fd N --size BYTES --tx COUNT --rx COUNT [--parent-pid PID] [--idle-timeout-s S]
//
// It maps an inherited memfd that holds an area made by ndk-model's SharedArea, checks every
// header with vnic/abi.h, enables the four queues (NDK SetEnable is the driver's call) and then,
// single-threaded, until it has moved COUNT packets each way:
//   Tx: dequeue from TxSubmission (InSubmission -> Driver), verify the frame byte for byte,
//       set completion status and timestamp, enqueue on TxCompletion (Driver -> InCompletion);
//   Rx: dequeue empty buffers from RxSubmission, write a frame, set the packet fields, enqueue
//       on RxCompletion.
// Frames follow the spec shared with ndk-model/tests/cross_process.rs (see "Frame spec" below),
// which checks the Rx frames and the order of everything the other way.
//
// On success it prints one line of `key=value` counters and exits 0. Any mismatch, protocol
// violation or corrupted ring prints "vnic_peer: FAIL ..." on stderr and exits 2; bad arguments
// exit 64, a bad area exits 3. It gives up (exit 4) after --idle-timeout-s seconds (default 120)
// without progress, and dies with its parent (PR_SET_PDEATHSIG).
//
// Like the dext, it uses no exceptions and allocates nothing in the data path.

#include "vnic/abi.h"

#include <cerrno>
#include <cstdarg>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "frames carry little-endian words");

namespace {

// ---- Frame spec (mirrored in ndk-model/tests/cross_process.rs) ------------------------------
//
// A frame for sequence number `seq` in direction `salt` (kTxSalt or kRxSalt):
//   length  = 60 + splitmix64(seq ^ salt) % 1455                  (60..=1514 bytes)
//   offset  = (splitmix64(seq ^ salt) >> 32) % 4 * 16             (data offset in the buffer)
//   bytes 0..8      = seq, little-endian
//   bytes 8+8k..    = the little-endian bytes of w_k = seed + k * kGolden (truncated at the end),
//                     seed = splitmix64(seq ^ salt ^ kPatternSalt)
constexpr uint64_t kTxSalt = 0x5458000000000000ull;      // "TX"
constexpr uint64_t kRxSalt = 0x5258000000000000ull;      // "RX"
constexpr uint64_t kPatternSalt = 0x0000504154000000ull; // "PAT"
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr uint32_t kMinFrame = 60;
constexpr uint32_t kMaxFrame = 1514;
constexpr uint16_t kLinkHeaderLength = 14;
constexpr uint32_t kIoReturnSuccess = 0;

constexpr uint32_t kBatch = 32;   // packets per dequeue
constexpr uint32_t kPending = 64; // packets held between dequeue and a completion enqueue

uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + kGolden;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t frame_length(uint64_t seq, uint64_t salt)
{
    return kMinFrame + static_cast<uint32_t>(splitmix64(seq ^ salt) % (kMaxFrame - kMinFrame + 1));
}

uint16_t frame_offset(uint64_t seq, uint64_t salt)
{
    return static_cast<uint16_t>((splitmix64(seq ^ salt) >> 32) % 4 * 16);
}

void fill_frame(uint8_t *frame, uint32_t length, uint64_t seq, uint64_t salt)
{
    std::memcpy(frame, &seq, 8);
    uint64_t word = splitmix64(seq ^ salt ^ kPatternSalt);
    for (uint32_t at = 8; at < length; at += 8, word += kGolden) {
        uint32_t n = length - at < 8 ? length - at : 8;
        std::memcpy(frame + at, &word, n);
    }
}

// Returns the first byte position that differs from the spec, or `length` if none does.
uint32_t check_frame(const uint8_t *frame, uint32_t length, uint64_t seq, uint64_t salt)
{
    uint64_t got;
    std::memcpy(&got, frame, 8);
    if (got != seq) {
        return 0;
    }
    uint64_t word = splitmix64(seq ^ salt ^ kPatternSalt);
    for (uint32_t at = 8; at < length; at += 8, word += kGolden) {
        uint32_t n = length - at < 8 ? length - at : 8;
        if (std::memcmp(frame + at, &word, n) != 0) {
            for (uint32_t i = 0; i < n; i++) {
                if (frame[at + i] != static_cast<uint8_t>(word >> (8 * i))) {
                    return at + i;
                }
            }
        }
    }
    return length;
}

// ---- Process plumbing ------------------------------------------------------------------------

[[noreturn]] void fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void fail(int code, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    std::fputs("vnic_peer: FAIL ", stderr);
    std::vfprintf(stderr, fmt, args);
    std::fputc('\n', stderr);
    va_end(args);
    std::exit(code);
}

constexpr int kExitMismatch = 2;
constexpr int kExitBadArea = 3;
constexpr int kExitIdle = 4;
constexpr int kExitUsage = 64;

uint64_t parse_u64(const char *name, const char *text)
{
    char *end = nullptr;
    errno = 0;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fail(kExitUsage, "%s: not a number: '%s'", name, text);
    }
    return value;
}

uint64_t now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

const char *status_name(int rc)
{
    switch (rc) {
    case VNIC_OK: return "ok";
    case VNIC_ERR_BAD_MAGIC: return "bad magic";
    case VNIC_ERR_BAD_VERSION: return "bad version";
    case VNIC_ERR_BAD_LAYOUT: return "bad layout";
    case VNIC_ERR_CORRUPTED: return "ring corrupted";
    case VNIC_ERR_RANGE: return "range";
    case VNIC_ERR_DISABLED: return "disabled";
    case VNIC_ERR_FULL: return "full";
    case VNIC_ERR_WRONG_OWNER: return "wrong owner";
    default: return "?";
    }
}

// ---- The driver --------------------------------------------------------------------------------

struct Args {
    int fd = -1;
    uint64_t size = 0;
    uint64_t tx = 0;
    uint64_t rx = 0;
    uint64_t parent_pid = 0;
    uint64_t idle_timeout_s = 120;
};

// Indices the driver holds between dequeue and a successful completion enqueue, in order.
struct Pending {
    uint32_t index[kPending];
    uint32_t len = 0;

    uint32_t room() const { return kPending - len; }

    void drop_front(uint32_t n)
    {
        std::memmove(index, index + n, (len - n) * sizeof index[0]);
        len -= n;
    }
};

struct Driver {
    vnic_pool tx_pool{};
    vnic_pool rx_pool{};
    vnic_ring rings[VNIC_QUEUE_KIND_COUNT]{};
    vnic_ring_consumer tx_sub{};
    vnic_ring_producer tx_comp{};
    vnic_ring_consumer rx_sub{};
    vnic_ring_producer rx_comp{};
    Pending tx_pending;
    Pending rx_pending;

    uint64_t tx_target = 0;
    uint64_t rx_target = 0;
    uint64_t tx_verified = 0; // also the next expected Tx sequence number
    uint64_t tx_completed = 0;
    uint64_t rx_filled = 0; // also the next Rx sequence number
    uint64_t rx_completed = 0;
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
    uint32_t violations = 0;

    bool done() const { return tx_completed == tx_target && rx_completed == rx_target; }

    void attach(void *area, uint64_t size)
    {
        int rc = vnic_area_check(area, size);
        if (rc != VNIC_OK) {
            fail(kExitBadArea, "area header: %s", status_name(rc));
        }
        rc = vnic_pool_attach(&tx_pool, area, size, vnic_area_pool_offset(area, VNIC_POOL_TX));
        if (rc != VNIC_OK) {
            fail(kExitBadArea, "tx pool: %s", status_name(rc));
        }
        rc = vnic_pool_attach(&rx_pool, area, size, vnic_area_pool_offset(area, VNIC_POOL_RX));
        if (rc != VNIC_OK) {
            fail(kExitBadArea, "rx pool: %s", status_name(rc));
        }
        if (rx_pool.buffer_size_bytes < 48 + kMaxFrame) {
            fail(kExitBadArea, "rx buffers of %" PRIu32 " bytes are too small for the frames",
                 rx_pool.buffer_size_bytes);
        }
        for (int kind = 0; kind < VNIC_QUEUE_KIND_COUNT; kind++) {
            auto k = static_cast<vnic_queue_kind>(kind);
            rc = vnic_ring_attach(&rings[kind], area, size, vnic_area_ring_offset(area, k), k);
            if (rc != VNIC_OK) {
                fail(kExitBadArea, "ring %d: %s", kind, status_name(rc));
            }
        }
        if (vnic_ring_consumer_init(&tx_sub, &rings[VNIC_QUEUE_TX_SUBMISSION]) != VNIC_OK ||
            vnic_ring_producer_init(&tx_comp, &rings[VNIC_QUEUE_TX_COMPLETION]) != VNIC_OK ||
            vnic_ring_consumer_init(&rx_sub, &rings[VNIC_QUEUE_RX_SUBMISSION]) != VNIC_OK ||
            vnic_ring_producer_init(&rx_comp, &rings[VNIC_QUEUE_RX_COMPLETION]) != VNIC_OK) {
            fail(kExitBadArea, "ring indices corrupted at start");
        }
        // SetEnable(true) on all four queues: the system side waits for this.
        for (const vnic_ring &ring : rings) {
            vnic_ring_set_enabled(&ring, true);
        }
    }

    void verify_tx(uint32_t index)
    {
        vnic_packet_state *state = vnic_pool_state(&tx_pool, index);
        const uint64_t seq = tx_verified;
        if (seq >= tx_target) {
            fail(kExitMismatch, "tx: packet %" PRIu32 " beyond the %" PRIu64 " expected", index,
                 tx_target);
        }
        const uint32_t length = VNIC_LOAD_RELAXED(&state->data_length);
        const uint16_t offset = VNIC_LOAD_RELAXED(&state->data_offset);
        const uint8_t direction = VNIC_LOAD_RELAXED(&state->direction);
        const uint8_t link_header = VNIC_LOAD_RELAXED(&state->link_header_length);
        if (length != frame_length(seq, kTxSalt) || offset != frame_offset(seq, kTxSalt) ||
            static_cast<uint64_t>(offset) + length > tx_pool.buffer_size_bytes) {
            fail(kExitMismatch,
                 "tx seq %" PRIu64 " (packet %" PRIu32 "): offset %u length %" PRIu32
                 ", expected offset %u length %" PRIu32,
                 seq, index, offset, length, frame_offset(seq, kTxSalt),
                 frame_length(seq, kTxSalt));
        }
        if (direction != VNIC_DIRECTION_TX || link_header != kLinkHeaderLength) {
            fail(kExitMismatch, "tx seq %" PRIu64 ": direction %u link header %u", seq, direction,
                 link_header);
        }
        const uint8_t *frame = vnic_pool_buffer(&tx_pool, index) + offset;
        const uint32_t bad = check_frame(frame, length, seq, kTxSalt);
        if (bad != length) {
            uint64_t got_seq;
            std::memcpy(&got_seq, frame, 8);
            fail(kExitMismatch,
                 "tx seq %" PRIu64 " (packet %" PRIu32 ", frame seq %" PRIu64 "): byte %" PRIu32
                 " of %" PRIu32 " is %#04x",
                 seq, index, got_seq, bad, length, frame[bad]);
        }
        VNIC_STORE_RELAXED(&state->completion_status, kIoReturnSuccess);
        VNIC_STORE_RELAXED(&state->timestamp_ns, seq + 1);
        tx_verified++;
        tx_bytes += length;
    }

    void fill_rx(uint32_t index)
    {
        vnic_packet_state *state = vnic_pool_state(&rx_pool, index);
        const uint64_t seq = rx_filled;
        if (seq >= rx_target) {
            fail(kExitMismatch, "rx: buffer %" PRIu32 " beyond the %" PRIu64 " expected", index,
                 rx_target);
        }
        if (VNIC_LOAD_RELAXED(&state->data_length) != 0) {
            fail(kExitMismatch, "rx: posted buffer %" PRIu32 " is not empty", index);
        }
        const uint32_t length = frame_length(seq, kRxSalt);
        const uint16_t offset = frame_offset(seq, kRxSalt);
        fill_frame(vnic_pool_buffer(&rx_pool, index) + offset, length, seq, kRxSalt);
        if (vnic_packet_set_data(&rx_pool, state, offset, length) != VNIC_OK) {
            fail(kExitMismatch, "rx: frame does not fit buffer %" PRIu32, index);
        }
        VNIC_STORE_RELAXED(&state->link_header_length, static_cast<uint8_t>(kLinkHeaderLength));
        VNIC_STORE_RELAXED(&state->direction, static_cast<uint8_t>(VNIC_DIRECTION_RX));
        VNIC_STORE_RELAXED(&state->completion_status, kIoReturnSuccess);
        VNIC_STORE_RELAXED(&state->timestamp_ns, seq + 1);
        rx_filled++;
        rx_bytes += length;
    }

    // Dequeues up to a batch from a submission queue into `pending`; returns how many.
    uint32_t dequeue(vnic_ring_consumer *queue, const vnic_pool *pool, Pending *pending,
                     const char *name)
    {
        uint32_t want = pending->room() < kBatch ? pending->room() : kBatch;
        uint32_t taken = 0;
        if (want == 0) {
            return 0;
        }
        int rc = vnic_driver_dequeue(queue, pool, pending->index + pending->len, want, &taken,
                                     &violations);
        if (rc != VNIC_OK) {
            fail(kExitMismatch, "%s dequeue: %s", name, status_name(rc));
        }
        if (violations != 0) {
            fail(kExitMismatch, "%s dequeue: %" PRIu32 " ownership violation(s)", name, violations);
        }
        pending->len += taken;
        return taken;
    }

    // Enqueues the front of `pending` on a completion queue; returns how many went in.
    uint32_t enqueue(vnic_ring_producer *queue, const vnic_pool *pool, Pending *pending,
                     const char *name)
    {
        uint32_t accepted = 0;
        if (pending->len == 0) {
            return 0;
        }
        int rc = vnic_driver_enqueue(queue, pool, pending->index, pending->len, &accepted);
        if (rc != VNIC_OK && rc != VNIC_ERR_FULL) {
            fail(kExitMismatch, "%s enqueue: %s (packet %" PRIu32 ")", name, status_name(rc),
                 pending->index[accepted]);
        }
        pending->drop_front(accepted);
        return accepted;
    }

    // One pass over both directions; returns whether anything moved.
    bool step()
    {
        uint32_t moved = 0;
        uint32_t start = tx_pending.len;
        uint32_t n = dequeue(&tx_sub, &tx_pool, &tx_pending, "tx submission");
        for (uint32_t i = start; i < start + n; i++) {
            verify_tx(tx_pending.index[i]);
        }
        moved += n;
        n = enqueue(&tx_comp, &tx_pool, &tx_pending, "tx completion");
        tx_completed += n;
        moved += n;

        start = rx_pending.len;
        n = dequeue(&rx_sub, &rx_pool, &rx_pending, "rx submission");
        for (uint32_t i = start; i < start + n; i++) {
            fill_rx(rx_pending.index[i]);
        }
        moved += n;
        n = enqueue(&rx_comp, &rx_pool, &rx_pending, "rx completion");
        rx_completed += n;
        moved += n;
        return moved != 0;
    }
};

Args parse_args(int argc, char **argv)
{
    Args args;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fail(kExitUsage, "%s needs a value", argv[i]);
        }
        const char *name = argv[i];
        uint64_t value = parse_u64(name, argv[i + 1]);
        if (std::strcmp(name, "--fd") == 0 && value <= 1u << 20) {
            args.fd = static_cast<int>(value);
        } else if (std::strcmp(name, "--size") == 0) {
            args.size = value;
        } else if (std::strcmp(name, "--tx") == 0) {
            args.tx = value;
        } else if (std::strcmp(name, "--rx") == 0) {
            args.rx = value;
        } else if (std::strcmp(name, "--parent-pid") == 0) {
            args.parent_pid = value;
        } else if (std::strcmp(name, "--idle-timeout-s") == 0) {
            args.idle_timeout_s = value;
        } else {
            fail(kExitUsage, "unknown argument %s", name);
        }
    }
    if (args.fd < 0 || args.size == 0) {
        fail(kExitUsage, "usage: vnic_peer --fd N --size BYTES --tx COUNT --rx COUNT "
                         "[--parent-pid PID] [--idle-timeout-s S]");
    }
    return args;
}

} // namespace

int main(int argc, char **argv)
{
    const Args args = parse_args(argc, argv);

    // Die with the test process, so a failed test never leaves a spinning peer behind.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        fail(kExitBadArea, "prctl(PR_SET_PDEATHSIG): %s", std::strerror(errno));
    }
    if (args.parent_pid != 0 && static_cast<uint64_t>(getppid()) != args.parent_pid) {
        fail(kExitBadArea, "parent %" PRIu64 " is gone", args.parent_pid);
    }

    struct stat st {};
    if (fstat(args.fd, &st) != 0) {
        fail(kExitBadArea, "fstat(fd %d): %s", args.fd, std::strerror(errno));
    }
    if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < args.size) {
        fail(kExitBadArea, "fd %d holds %lld bytes, expected at least %" PRIu64, args.fd,
             static_cast<long long>(st.st_size), args.size);
    }
    void *area = mmap(nullptr, args.size, PROT_READ | PROT_WRITE, MAP_SHARED, args.fd, 0);
    if (area == MAP_FAILED) {
        fail(kExitBadArea, "mmap: %s", std::strerror(errno));
    }

    static Driver driver; // static: the pending arrays stay off the stack
    driver.tx_target = args.tx;
    driver.rx_target = args.rx;
    driver.attach(area, args.size);

    const uint64_t started = now_ns();
    const uint64_t idle_limit_ns = args.idle_timeout_s * 1000000000ull;
    uint64_t last_progress = started;
    uint64_t idle_passes = 0;
    uint32_t idle_streak = 0;
    while (!driver.done()) {
        if (driver.step()) {
            idle_streak = 0;
            continue;
        }
        idle_passes++;
        idle_streak++;
        if (idle_streak < 64) {
            cpu_relax();
            continue;
        }
        // Idle for a while: let the other process have the CPU, and watch the clock.
        sched_yield();
        if (idle_streak % 256 == 0) {
            const uint64_t now = now_ns();
            if (idle_streak == 256) {
                last_progress = now; // the streak started about now
            } else if (now - last_progress > idle_limit_ns) {
                fail(kExitIdle,
                     "no progress for %" PRIu64 " s: tx verified %" PRIu64 " completed %" PRIu64
                     " of %" PRIu64 ", rx filled %" PRIu64 " completed %" PRIu64 " of %" PRIu64,
                     args.idle_timeout_s, driver.tx_verified, driver.tx_completed, driver.tx_target,
                     driver.rx_filled, driver.rx_completed, driver.rx_target);
            }
        }
    }
    const uint64_t elapsed_ms = (now_ns() - started) / 1000000u;

    std::printf("vnic_peer ok tx_verified=%" PRIu64 " tx_completed=%" PRIu64 " rx_filled=%" PRIu64
                " rx_completed=%" PRIu64 " tx_bytes=%" PRIu64 " rx_bytes=%" PRIu64
                " violations=%" PRIu32 " idle_passes=%" PRIu64 " elapsed_ms=%" PRIu64
                " tx_sub_head=%" PRIu32 " tx_comp_tail=%" PRIu32 " rx_sub_head=%" PRIu32
                " rx_comp_tail=%" PRIu32 "\n",
                driver.tx_verified, driver.tx_completed, driver.rx_filled, driver.rx_completed,
                driver.tx_bytes, driver.rx_bytes, driver.violations, idle_passes, elapsed_ms,
                driver.tx_sub.head, driver.tx_comp.tail, driver.rx_sub.head, driver.rx_comp.tail);
    std::fflush(stdout);
    munmap(area, args.size);
    return 0;
}
