/*
 * vnic/abi.h: the shared-memory ABI between the vnic dext (C++) and the Rust helper.
 *
 * This is the ring-facing half of the dext shim. It describes, byte for byte, the area that
 * `ndk-model` lays out (ndk-model/src/area.rs, pool.rs, ring/mod.rs): the area header, the
 * packet pools (free-list head, pool info, one 64-byte packet state per packet, buffers) and
 * the four SPSC rings of u32 packet indices. It also implements the driver's side of the ring
 * protocol and of the packet-ownership protocol as small inline functions.
 *
 * Rules for this file (style.md §4.10):
 *   - Plain C11 and C++17: it builds in a DriverKit C++ target and on Linux for the host tests
 *     (dext-shim/host-tests/, run by ndk-model/tests/cross_process.rs).
 *   - No exceptions, no allocation, no STL, no libc calls: only <stdint.h>, <stddef.h> and the
 *     GCC/Clang __atomic builtins on plain integer fields, which have the same meaning in C and
 *     C++ and match Rust's atomics (same size and representation as the plain integer).
 *   - Every size and offset is checked at compile time, mirroring the static_assertions on the
 *     Rust side. A change to a shared struct bumps VNIC_AREA_VERSION on both sides.
 *   - The peer is not trusted: indices read from a ring are range-checked before use, ring
 *     indices that would put more than `capacity` entries in a ring are reported as
 *     VNIC_ERR_CORRUPTED, and ownership moves by compare-and-swap so a duplicated index can
 *     never make two owners. Shared fields are read with atomic loads so the compiler cannot
 *     re-read a value after it was checked.
 *
 * Memory-order recipe (rings.md §1.6, same as ring/mod.rs):
 *   producer: Acquire-load the consumer index, write slots, Release-store the producer index.
 *   consumer: Acquire-load the producer index, read slots, Release-store the consumer index.
 *   need-wakeup: flag store -> SeqCst fence -> re-check (and publish -> SeqCst fence -> test).
 * Packet state fields and buffer bytes are plain data owned by whoever holds the packet; the
 * ring index stores above order them, so they are accessed Relaxed (fields) or plainly (bytes).
 */
#ifndef VNIC_ABI_H
#define VNIC_ABI_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__GNUC__) && !defined(__clang__)
#error "vnic/abi.h needs the GCC/Clang __atomic builtins"
#endif

#ifdef __cplusplus
#define VNIC_ALIGNAS(n) alignas(n)
#define VNIC_ALIGNOF(t) alignof(t)
#define VNIC_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
extern "C" {
#else
#include <stdbool.h>
#define VNIC_ALIGNAS(n) _Alignas(n)
#define VNIC_ALIGNOF(t) _Alignof(t)
#define VNIC_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* ---------------------------------------------------------------------------------------- */
/* Constants (ndk-model: area.rs, ring/mod.rs, pool.rs, queue/mod.rs, packet.rs)             */
/* ---------------------------------------------------------------------------------------- */

/* "VNIC" read as a little-endian u32: marks an initialised area header (AREA_MAGIC). */
#define VNIC_AREA_MAGIC UINT32_C(0x43494E56)
/* Layout version (AREA_VERSION); bumped on any change to a shared struct. */
#define VNIC_AREA_VERSION UINT32_C(1)

/* "VRNG": marks an initialised ring header (RING_MAGIC). */
#define VNIC_RING_MAGIC UINT32_C(0x474E5256)
/* Largest ring capacity in slots (RING_CAPACITY_MAX). */
#define VNIC_RING_CAPACITY_MAX (UINT32_C(1) << 24)
/* Need-wakeup flag bits in vnic_ring_control.flags (WAKE_CONSUMER, WAKE_PRODUCER). */
#define VNIC_RING_WAKE_CONSUMER UINT32_C(0x1)
#define VNIC_RING_WAKE_PRODUCER UINT32_C(0x2)
/* Ring headers sit at multiples of this in the area. */
#define VNIC_RING_ALIGN_BYTES 128u

/* "VPOL": marks an initialised pool header (POOL_MAGIC). */
#define VNIC_POOL_MAGIC UINT32_C(0x4C4F5056)
/* The free-list "no packet" index (NIL_INDEX). */
#define VNIC_POOL_NIL_INDEX UINT32_C(0xFFFFFFFF)
/* Most packets one pool may hold (POOL_PACKETS_MAX). */
#define VNIC_POOL_PACKETS_MAX (UINT32_C(1) << 24)
/* Largest buffer in bytes (POOL_BUFFER_BYTES_MAX). */
#define VNIC_POOL_BUFFER_BYTES_MAX (UINT32_C(1) << 20)
/* Pools sit at page-aligned offsets; their buffers start page-aligned inside the pool. */
#define VNIC_POOL_ALIGN_BYTES 4096u

/* Pool option bits (PoolOptions). */
#define VNIC_POOL_OPTION_SINGLE_MEMORY_SEGMENT UINT32_C(0x2)
#define VNIC_POOL_OPTION_PERSISTENT_MEMORY UINT32_C(0x4)
#define VNIC_POOL_OPTION_MAP_TO_DEXT UINT32_C(0x10000000)
#define VNIC_POOL_OPTION_MAP_TO_DEVICE UINT32_C(0x20000000)
#define VNIC_POOL_OPTIONS_KNOWN                                                                    \
    (VNIC_POOL_OPTION_SINGLE_MEMORY_SEGMENT | VNIC_POOL_OPTION_PERSISTENT_MEMORY |                 \
     VNIC_POOL_OPTION_MAP_TO_DEXT | VNIC_POOL_OPTION_MAP_TO_DEVICE)

/* Owner word of a packet state: the low byte is a vnic_owner_state; bit 8 is set while a Rust
 * `Packet` token exists (OWNER_TOKEN_BIT). The C++ side never sets or clears bit 8: a word with
 * it set is simply not in the state the driver expects. */
#define VNIC_OWNER_TOKEN_BIT UINT32_C(0x100)
#define VNIC_OWNER_STATE_MASK UINT32_C(0xFF)

/* OwnerState: free -> system -> in submission -> driver -> in completion -> system. */
enum vnic_owner_state {
    VNIC_OWNER_FREE = 0,
    VNIC_OWNER_SYSTEM = 1,
    VNIC_OWNER_IN_SUBMISSION = 2,
    VNIC_OWNER_DRIVER = 3,
    VNIC_OWNER_IN_COMPLETION = 4
};

/* QueueKind: the order of vnic_area_header.ring_offsets_bytes and vnic_ring_control.kind. */
enum vnic_queue_kind {
    VNIC_QUEUE_RX_SUBMISSION = 0,
    VNIC_QUEUE_RX_COMPLETION = 1,
    VNIC_QUEUE_TX_SUBMISSION = 2,
    VNIC_QUEUE_TX_COMPLETION = 3,
    VNIC_QUEUE_KIND_COUNT = 4
};

/* Index of the Tx and the Rx pool in vnic_area_header.pool_offsets_bytes. */
enum vnic_pool_slot { VNIC_POOL_TX = 0, VNIC_POOL_RX = 1, VNIC_POOL_SLOT_COUNT = 2 };

/* PacketDirection (vnic_packet_state.direction). */
enum vnic_packet_direction {
    VNIC_DIRECTION_NONE = 0,
    VNIC_DIRECTION_TX = 1,
    VNIC_DIRECTION_RX = 2
};

/* Results of the functions below. Flow control (an empty or full ring) is not an error. */
enum vnic_status {
    VNIC_OK = 0,
    VNIC_ERR_BAD_MAGIC = 1,   /* no initialised header at that offset */
    VNIC_ERR_BAD_VERSION = 2, /* area layout version differs */
    VNIC_ERR_BAD_LAYOUT = 3,  /* sizes, offsets or counts inconsistent, or out of the area */
    VNIC_ERR_CORRUPTED = 4,   /* ring indices put more than `capacity` entries in the ring */
    VNIC_ERR_RANGE = 5,       /* caller bug: past a reservation or a peeked chunk */
    VNIC_ERR_DISABLED = 6,    /* the queue is disabled */
    VNIC_ERR_FULL = 7,        /* the ring has no free slot */
    VNIC_ERR_WRONG_OWNER = 8  /* the packet is not owned by the side that tried to move it */
};

/* ---------------------------------------------------------------------------------------- */
/* Shared structs                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* AreaHeader: offset 0 of the area, 128 bytes. The creator writes everything, then stores
 * `magic` last with Release; a reader Acquire-loads `magic` first. */
typedef struct vnic_area_header {
    VNIC_ALIGNAS(128) uint32_t magic;                   /*  0 */
    uint32_t version;                                   /*  4 */
    uint64_t total_bytes;                               /*  8 */
    uint64_t pool_offsets_bytes[VNIC_POOL_SLOT_COUNT];  /* 16: [tx, rx], equal for one pool */
    uint64_t ring_offsets_bytes[VNIC_QUEUE_KIND_COUNT]; /* 32: vnic_queue_kind order */
    uint8_t padding[64];                                /* 64 */
} vnic_area_header;

/* RingControl: creation-time facts plus the enable and need-wakeup words. */
typedef struct vnic_ring_control {
    uint32_t flags;              /*  0: VNIC_RING_WAKE_* bits */
    uint32_t enabled;            /*  4: 1 when the queue is enabled (queues start disabled) */
    uint32_t magic;              /*  8: VNIC_RING_MAGIC */
    uint32_t capacity;           /* 12: slots, a power of two */
    uint32_t element_size_bytes; /* 16: 4 (u32 packet indices) for the queue rings */
    uint32_t queue_id;           /* 20 */
    uint32_t kind;               /* 24: vnic_queue_kind */
    uint32_t reserved;           /* 28 */
} vnic_ring_control;

/* RingHeader: three 128-byte blocks (producer index, consumer index, control); the slots
 * follow at +384. Indices are free-running u32 counters; slot = index & (capacity - 1). */
typedef struct vnic_ring_header {
    VNIC_ALIGNAS(128) uint32_t producer; /*   0: written only by the producer */
    uint8_t producer_padding[124];
    VNIC_ALIGNAS(128) uint32_t consumer; /* 128: written only by the consumer */
    uint8_t consumer_padding[124];
    VNIC_ALIGNAS(128) vnic_ring_control control; /* 256 */
    uint8_t control_padding[96];
} vnic_ring_header;

/* PoolInfo: written once at creation. Offsets are relative to the pool start. */
typedef struct vnic_pool_info {
    uint32_t magic;                /*  0: VNIC_POOL_MAGIC */
    uint32_t name;                 /*  4: four ASCII characters, little-endian */
    uint32_t packet_count;         /*  8 */
    uint32_t buffer_count;         /* 12: >= packet_count */
    uint32_t buffer_size_bytes;    /* 16: usable bytes per buffer */
    uint32_t stride_bytes;         /* 20: distance between buffer starts */
    uint32_t options;              /* 24: VNIC_POOL_OPTION_* */
    uint32_t tag_bits;             /* 28: ABA tag bits in free_head (32 in production) */
    uint32_t links_offset_bytes;   /* 32: u32 free-list link per packet */
    uint32_t states_offset_bytes;  /* 36: vnic_packet_state per packet */
    uint64_t buffers_offset_bytes; /* 40: first buffer, page-aligned */
    uint64_t total_bytes;          /* 48: whole pool section, a multiple of 4096 */
} vnic_pool_info;

/* PoolHeader: the Treiber-stack head on its own block, then the info block. The free list is
 * run by the Rust side; the driver only moves packets through the rings. */
typedef struct vnic_pool_header {
    VNIC_ALIGNAS(128) uint64_t free_head; /*   0: (tag << 32) | index; NIL index when empty */
    uint8_t free_head_padding[120];
    VNIC_ALIGNAS(128) vnic_pool_info info; /* 128 */
    uint8_t info_padding[72];
} vnic_pool_header;

/* PacketState: one per packet, 64 bytes, the IOUserNetworkPacketState fields plus metadata. */
typedef struct vnic_packet_state {
    VNIC_ALIGNAS(64) uint32_t owner; /*  0: vnic_owner_state | VNIC_OWNER_TOKEN_BIT */
    uint32_t data_length;            /*  4 */
    uint16_t data_offset;            /*  8: from the buffer start */
    uint8_t link_header_length;      /* 10 */
    uint8_t direction;               /* 11: vnic_packet_direction */
    uint32_t completion_status;      /* 12: IOReturn */
    uint64_t timestamp_ns;           /* 16: 0 = none */
    uint32_t tx_checksum_flags;      /* 24 */
    uint32_t rx_checksum_flags;      /* 28 */
    uint16_t checksum_start;         /* 32 */
    uint16_t checksum_stuff;         /* 34 */
    uint16_t rx_checksum_value;      /* 36 */
    uint16_t tso_segment_size;       /* 38: 0 = not TSO */
    uint32_t tso_flags;              /* 40 */
    uint32_t lro_flags;              /* 44 */
    uint8_t lro_segment_count;       /* 48 */
    uint8_t reserved[15];            /* 49 */
} vnic_packet_state;

/* Layout checks: the same numbers as the static_assertions in area.rs, ring/mod.rs, pool.rs. */
VNIC_STATIC_ASSERT(sizeof(vnic_area_header) == 128, "AreaHeader is 128 bytes");
VNIC_STATIC_ASSERT(VNIC_ALIGNOF(vnic_area_header) == 128, "AreaHeader is 128-aligned");
VNIC_STATIC_ASSERT(offsetof(vnic_area_header, magic) == 0, "AreaHeader.magic");
VNIC_STATIC_ASSERT(offsetof(vnic_area_header, version) == 4, "AreaHeader.version");
VNIC_STATIC_ASSERT(offsetof(vnic_area_header, total_bytes) == 8, "AreaHeader.total_bytes");
VNIC_STATIC_ASSERT(offsetof(vnic_area_header, pool_offsets_bytes) == 16, "AreaHeader pools");
VNIC_STATIC_ASSERT(offsetof(vnic_area_header, ring_offsets_bytes) == 32, "AreaHeader rings");

VNIC_STATIC_ASSERT(sizeof(vnic_ring_control) == 32, "RingControl is 32 bytes");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, flags) == 0, "RingControl.flags");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, enabled) == 4, "RingControl.enabled");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, magic) == 8, "RingControl.magic");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, capacity) == 12, "RingControl.capacity");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, element_size_bytes) == 16, "RingControl.element");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, queue_id) == 20, "RingControl.queue_id");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, kind) == 24, "RingControl.kind");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_control, reserved) == 28, "RingControl.reserved");
VNIC_STATIC_ASSERT(sizeof(vnic_ring_header) == 384, "RingHeader is 3 x 128 bytes");
VNIC_STATIC_ASSERT(VNIC_ALIGNOF(vnic_ring_header) == 128, "RingHeader is 128-aligned");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_header, producer) == 0, "RingHeader.producer");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_header, consumer) == 128, "RingHeader.consumer");
VNIC_STATIC_ASSERT(offsetof(vnic_ring_header, control) == 256, "RingHeader.control");

VNIC_STATIC_ASSERT(sizeof(vnic_pool_info) == 56, "PoolInfo is 56 bytes");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, magic) == 0, "PoolInfo.magic");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, name) == 4, "PoolInfo.name");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, packet_count) == 8, "PoolInfo.packet_count");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, buffer_count) == 12, "PoolInfo.buffer_count");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, buffer_size_bytes) == 16, "PoolInfo.buffer_size");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, stride_bytes) == 20, "PoolInfo.stride_bytes");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, options) == 24, "PoolInfo.options");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, tag_bits) == 28, "PoolInfo.tag_bits");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, links_offset_bytes) == 32, "PoolInfo.links");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, states_offset_bytes) == 36, "PoolInfo.states");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, buffers_offset_bytes) == 40, "PoolInfo.buffers");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_info, total_bytes) == 48, "PoolInfo.total_bytes");
VNIC_STATIC_ASSERT(sizeof(vnic_pool_header) == 256, "PoolHeader is 2 x 128 bytes");
VNIC_STATIC_ASSERT(VNIC_ALIGNOF(vnic_pool_header) == 128, "PoolHeader is 128-aligned");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_header, free_head) == 0, "PoolHeader.free_head");
VNIC_STATIC_ASSERT(offsetof(vnic_pool_header, info) == 128, "PoolHeader.info");

VNIC_STATIC_ASSERT(sizeof(vnic_packet_state) == 64, "PacketState is 64 bytes");
VNIC_STATIC_ASSERT(VNIC_ALIGNOF(vnic_packet_state) == 64, "PacketState is 64-aligned");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, owner) == 0, "PacketState.owner");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, data_length) == 4, "PacketState.data_length");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, data_offset) == 8, "PacketState.data_offset");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, link_header_length) == 10, "PacketState.lhl");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, direction) == 11, "PacketState.direction");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, completion_status) == 12, "PacketState.status");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, timestamp_ns) == 16, "PacketState.timestamp");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, tx_checksum_flags) == 24, "PacketState.tx_csum");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, rx_checksum_flags) == 28, "PacketState.rx_csum");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, checksum_start) == 32, "PacketState.csum_start");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, checksum_stuff) == 34, "PacketState.csum_stuff");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, rx_checksum_value) == 36, "PacketState.rx_value");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, tso_segment_size) == 38, "PacketState.tso_size");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, tso_flags) == 40, "PacketState.tso_flags");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, lro_flags) == 44, "PacketState.lro_flags");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, lro_segment_count) == 48, "PacketState.lro_count");
VNIC_STATIC_ASSERT(offsetof(vnic_packet_state, reserved) == 49, "PacketState.reserved");

/* The __atomic builtins below must be lock-free on these fields, as Rust's atomics are. */
#if __GCC_ATOMIC_SHORT_LOCK_FREE != 2 || __GCC_ATOMIC_INT_LOCK_FREE != 2 ||                        \
    __GCC_ATOMIC_LLONG_LOCK_FREE != 2
#error "vnic/abi.h needs lock-free 16-, 32- and 64-bit atomics"
#endif
VNIC_STATIC_ASSERT(sizeof(int) == 4 && sizeof(long long) == 8, "LP64-style int sizes");

/* ---------------------------------------------------------------------------------------- */
/* Process-local views (never shared; one per process)                                        */
/* ---------------------------------------------------------------------------------------- */

/* A ring inside the mapped area. `capacity` and `kind` are copied at attach time and never
 * re-read from shared memory, so a peer cannot change them under us. */
typedef struct vnic_ring {
    vnic_ring_header *header;
    uint32_t *slots;
    uint32_t capacity;
    uint32_t kind;
} vnic_ring;

/* The producer half of a ring, used by one thread (ring::Producer). `tail` is the ring's
 * producer index, which only this half writes; `cached_head` is a consumer index it has seen,
 * so tail - cached_head <= capacity. `reserved` is what the last reserve granted. */
typedef struct vnic_ring_producer {
    vnic_ring ring;
    uint32_t tail;
    uint32_t cached_head;
    uint32_t reserved;
} vnic_ring_producer;

/* The consumer half of a ring, used by one thread (ring::Consumer). `head` is the ring's
 * consumer index, which only this half writes; `cached_tail` is a producer index it has seen.
 * `peeked` is what the last peek returned. */
typedef struct vnic_ring_consumer {
    vnic_ring ring;
    uint32_t head;
    uint32_t cached_tail;
    uint32_t peeked;
} vnic_ring_consumer;

/* A pool inside the mapped area; the counts are copied (and checked) at attach time. */
typedef struct vnic_pool {
    vnic_pool_header *header;
    uint32_t *links;
    vnic_packet_state *states;
    uint8_t *buffers;
    uint32_t packet_count;
    uint32_t buffer_size_bytes;
    uint32_t stride_bytes;
} vnic_pool;

/* Relaxed access to one field of a shared struct (packet state fields, control words). */
#define VNIC_LOAD_RELAXED(ptr) __atomic_load_n((ptr), __ATOMIC_RELAXED)
#define VNIC_STORE_RELAXED(ptr, value) __atomic_store_n((ptr), (value), __ATOMIC_RELAXED)

/* ---------------------------------------------------------------------------------------- */
/* Area                                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* Checks the area header at the start of a mapping of `area_bytes` bytes (SharedArea::attach):
 * the mapping is page-aligned, the magic (Acquire, stored last by the creator) and the version
 * match, and the area fits in the mapping. */
static inline int vnic_area_check(const void *area, uint64_t area_bytes)
{
    const vnic_area_header *header = (const vnic_area_header *)area;
    if (area == NULL || (uintptr_t)area % VNIC_POOL_ALIGN_BYTES != 0u ||
        area_bytes < sizeof(vnic_area_header)) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    if (__atomic_load_n(&header->magic, __ATOMIC_ACQUIRE) != VNIC_AREA_MAGIC) {
        return VNIC_ERR_BAD_MAGIC;
    }
    if (VNIC_LOAD_RELAXED(&header->version) != VNIC_AREA_VERSION) {
        return VNIC_ERR_BAD_VERSION;
    }
    if (VNIC_LOAD_RELAXED(&header->total_bytes) > area_bytes) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    return VNIC_OK;
}

/* Offset of pool `slot` (VNIC_POOL_TX / VNIC_POOL_RX), after vnic_area_check. */
static inline uint64_t vnic_area_pool_offset(const void *area, enum vnic_pool_slot slot)
{
    return VNIC_LOAD_RELAXED(&((const vnic_area_header *)area)->pool_offsets_bytes[slot]);
}

/* Offset of the ring of `kind`, after vnic_area_check. */
static inline uint64_t vnic_area_ring_offset(const void *area, enum vnic_queue_kind kind)
{
    return VNIC_LOAD_RELAXED(&((const vnic_area_header *)area)->ring_offsets_bytes[kind]);
}

/* ---------------------------------------------------------------------------------------- */
/* Pool                                                                                        */
/* ---------------------------------------------------------------------------------------- */

static inline uint64_t vnic_round_up(uint64_t value, uint64_t to)
{
    return (value + to - 1u) / to * to;
}

/* PoolConfig::stride_bytes: the buffer size rounded up to 64, plus 64 while that is a power
 * of two (so frame starts do not all land in the same cache sets). */
static inline uint32_t vnic_pool_stride_for(uint32_t buffer_size_bytes)
{
    uint32_t stride = (buffer_size_bytes + 63u) & ~UINT32_C(63);
    while (stride != 0u && (stride & (stride - 1u)) == 0u) {
        stride += 64u;
    }
    return stride;
}

/* Attaches to the pool at `offset_bytes` (PacketBufferPool::attach): the magic matches, the
 * configuration passes PoolConfig::validate, and every offset equals what PoolConfig::layout
 * computes, so the arrays below are exactly where the Rust side put them. */
static inline int vnic_pool_attach(vnic_pool *pool, void *area, uint64_t area_bytes,
                                   uint64_t offset_bytes)
{
    vnic_pool_header *header;
    const vnic_pool_info *info;
    uint32_t name, packet_count, buffer_count, buffer_size, stride, options, links, states;
    uint64_t buffers, total, want_states, want_buffers, want_total;
    unsigned shift;

    if (offset_bytes % VNIC_POOL_ALIGN_BYTES != 0u || offset_bytes > area_bytes ||
        area_bytes - offset_bytes < sizeof(vnic_pool_header)) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    header = (vnic_pool_header *)((uint8_t *)area + offset_bytes);
    info = &header->info;
    if (__atomic_load_n(&info->magic, __ATOMIC_ACQUIRE) != VNIC_POOL_MAGIC) {
        return VNIC_ERR_BAD_MAGIC;
    }
    name = VNIC_LOAD_RELAXED(&info->name);
    packet_count = VNIC_LOAD_RELAXED(&info->packet_count);
    buffer_count = VNIC_LOAD_RELAXED(&info->buffer_count);
    buffer_size = VNIC_LOAD_RELAXED(&info->buffer_size_bytes);
    stride = VNIC_LOAD_RELAXED(&info->stride_bytes);
    options = VNIC_LOAD_RELAXED(&info->options);
    links = VNIC_LOAD_RELAXED(&info->links_offset_bytes);
    states = VNIC_LOAD_RELAXED(&info->states_offset_bytes);
    buffers = VNIC_LOAD_RELAXED(&info->buffers_offset_bytes);
    total = VNIC_LOAD_RELAXED(&info->total_bytes);

    /* PoolConfig::validate */
    for (shift = 0; shift < 32u; shift += 8u) {
        uint32_t c = (name >> shift) & 0xFFu;
        if (c < 0x20u || c > 0x7Eu) {
            return VNIC_ERR_BAD_LAYOUT;
        }
    }
    if (packet_count == 0u || packet_count > VNIC_POOL_PACKETS_MAX || buffer_count < packet_count ||
        buffer_size == 0u || buffer_size > VNIC_POOL_BUFFER_BYTES_MAX ||
        (options & ~VNIC_POOL_OPTIONS_KNOWN) != 0u) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    /* PoolConfig::layout */
    want_states = vnic_round_up(sizeof(vnic_pool_header) + 4u * (uint64_t)packet_count, 64u);
    want_buffers = vnic_round_up(want_states + sizeof(vnic_packet_state) * packet_count, 4096u);
    want_total = vnic_round_up(want_buffers + (uint64_t)stride * packet_count, 4096u);
    if (stride != vnic_pool_stride_for(buffer_size) || links != sizeof(vnic_pool_header) ||
        states != want_states || buffers != want_buffers || total != want_total ||
        total > area_bytes - offset_bytes) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    pool->header = header;
    pool->links = (uint32_t *)((uint8_t *)header + links);
    pool->states = (vnic_packet_state *)((uint8_t *)header + states);
    pool->buffers = (uint8_t *)header + buffers;
    pool->packet_count = packet_count;
    pool->buffer_size_bytes = buffer_size;
    pool->stride_bytes = stride;
    return VNIC_OK;
}

/* The state of packet `index`, or NULL when the index is not in the pool. */
static inline vnic_packet_state *vnic_pool_state(const vnic_pool *pool, uint32_t index)
{
    return index < pool->packet_count ? &pool->states[index] : NULL;
}

/* The buffer of packet `index` (buffer_size_bytes usable bytes), or NULL when out of range. */
static inline uint8_t *vnic_pool_buffer(const vnic_pool *pool, uint32_t index)
{
    return index < pool->packet_count ? pool->buffers + (size_t)index * pool->stride_bytes : NULL;
}

/* Sets a packet's data offset and length (setDataOffsetAndLength): VNIC_ERR_RANGE unless
 * offset + length <= buffer_size_bytes. Only the packet's owner calls it. */
static inline int vnic_packet_set_data(const vnic_pool *pool, vnic_packet_state *state,
                                       uint16_t offset, uint32_t length)
{
    if ((uint64_t)offset + length > pool->buffer_size_bytes) {
        return VNIC_ERR_RANGE;
    }
    VNIC_STORE_RELAXED(&state->data_offset, offset);
    VNIC_STORE_RELAXED(&state->data_length, length);
    return VNIC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Packet ownership: the driver's two transitions (queue/mod.rs roles)                        */
/* ---------------------------------------------------------------------------------------- */

/* Driver dequeue from a submission queue: InSubmission -> Driver (PacketBufferPool::
 * transfer_in). A compare-and-swap, so a packet gets exactly one owner even if a broken peer
 * put its index in a ring twice; a word with the Rust token bit set never matches. Relaxed is
 * enough: the Acquire load of the ring's producer index already ordered everything the system
 * wrote before it published the index. On failure `*found` (if not NULL) gets the word seen. */
static inline bool vnic_owner_take_submitted(vnic_packet_state *state, uint32_t *found)
{
    uint32_t expected = (uint32_t)VNIC_OWNER_IN_SUBMISSION;
    bool ok = __atomic_compare_exchange_n(&state->owner, &expected, (uint32_t)VNIC_OWNER_DRIVER,
                                          false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    if (!ok && found != NULL) {
        *found = expected;
    }
    return ok;
}

/* Driver enqueue to a completion queue: Driver -> InCompletion, stored before the index goes
 * into the ring, whose Release store of the producer index then publishes the new owner word
 * together with the packet's fields and bytes (PacketBufferPool::transfer_out_ref). While the
 * driver owns a packet only the driver writes its word, so a check and a store suffice. On
 * failure `*found` (if not NULL) gets the word seen and nothing is stored. */
static inline bool vnic_owner_give_completed(vnic_packet_state *state, uint32_t *found)
{
    uint32_t word = VNIC_LOAD_RELAXED(&state->owner);
    if (word != (uint32_t)VNIC_OWNER_DRIVER) {
        if (found != NULL) {
            *found = word;
        }
        return false;
    }
    VNIC_STORE_RELAXED(&state->owner, (uint32_t)VNIC_OWNER_IN_COMPLETION);
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Rings (ring/mod.rs)                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Entries between a producer and a consumer index, or VNIC_ERR_CORRUPTED when that would be
 * more than `capacity` (Ring::check). Free-running u32 indices: the difference is right across
 * the 2^32 wrap because it never exceeds the capacity. */
static inline int vnic_ring_used(const vnic_ring *ring, uint32_t producer, uint32_t consumer,
                                 uint32_t *used)
{
    uint32_t n = producer - consumer;
    if (n > ring->capacity) {
        return VNIC_ERR_CORRUPTED;
    }
    *used = n;
    return VNIC_OK;
}

/* Attaches to the ring at `offset_bytes` (Ring::attach): magic (Acquire), u32 slots, a
 * power-of-two capacity, the expected queue kind, room for the slots in the area, and
 * consistent indices. */
static inline int vnic_ring_attach(vnic_ring *ring, void *area, uint64_t area_bytes,
                                   uint64_t offset_bytes, enum vnic_queue_kind expected_kind)
{
    vnic_ring_header *header;
    uint32_t capacity, producer, consumer, used;
    vnic_ring probe;
    int rc;

    if (offset_bytes % VNIC_RING_ALIGN_BYTES != 0u || offset_bytes > area_bytes ||
        area_bytes - offset_bytes < sizeof(vnic_ring_header)) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    header = (vnic_ring_header *)((uint8_t *)area + offset_bytes);
    if (__atomic_load_n(&header->control.magic, __ATOMIC_ACQUIRE) != VNIC_RING_MAGIC) {
        return VNIC_ERR_BAD_MAGIC;
    }
    capacity = VNIC_LOAD_RELAXED(&header->control.capacity);
    if (VNIC_LOAD_RELAXED(&header->control.element_size_bytes) != sizeof(uint32_t) ||
        capacity == 0u || (capacity & (capacity - 1u)) != 0u || capacity > VNIC_RING_CAPACITY_MAX ||
        VNIC_LOAD_RELAXED(&header->control.kind) != (uint32_t)expected_kind ||
        (uint64_t)capacity * sizeof(uint32_t) >
            area_bytes - offset_bytes - sizeof(vnic_ring_header)) {
        return VNIC_ERR_BAD_LAYOUT;
    }
    probe.header = header;
    probe.slots = (uint32_t *)((uint8_t *)header + sizeof(vnic_ring_header));
    probe.capacity = capacity;
    probe.kind = (uint32_t)expected_kind;
    producer = __atomic_load_n(&header->producer, __ATOMIC_ACQUIRE);
    consumer = __atomic_load_n(&header->consumer, __ATOMIC_ACQUIRE);
    rc = vnic_ring_used(&probe, producer, consumer, &used);
    if (rc != VNIC_OK) {
        return rc;
    }
    *ring = probe;
    return VNIC_OK;
}

/* Whether the queue this ring carries is enabled (Acquire, as Ring::is_enabled). */
static inline bool vnic_ring_is_enabled(const vnic_ring *ring)
{
    return __atomic_load_n(&ring->header->control.enabled, __ATOMIC_ACQUIRE) != 0u;
}

/* SetEnable: the driver enables or disables the queue (Release, as Ring::set_enabled). */
static inline void vnic_ring_set_enabled(const vnic_ring *ring, bool enabled)
{
    __atomic_store_n(&ring->header->control.enabled, enabled ? 1u : 0u, __ATOMIC_RELEASE);
}

/* Slot of a free-running index. */
static inline uint32_t *vnic_ring_slot(const vnic_ring *ring, uint32_t index)
{
    return &ring->slots[index & (ring->capacity - 1u)];
}

/* The Dekker half of going to sleep: set `bit`, full fence, re-read the remote index. */
static inline uint32_t vnic_ring_arm(const vnic_ring *ring, uint32_t bit, const uint32_t *remote)
{
    __atomic_fetch_or(&ring->header->control.flags, bit, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(remote, __ATOMIC_ACQUIRE);
}

static inline void vnic_ring_disarm(const vnic_ring *ring, uint32_t bit)
{
    __atomic_fetch_and(&ring->header->control.flags, ~bit, __ATOMIC_RELAXED);
}

/* The other Dekker half, after publishing: full fence, then test and clear `bit`. A `true`
 * result means the caller must ring the peer's doorbell. */
static inline bool vnic_ring_take_flag(const vnic_ring *ring, uint32_t bit)
{
    uint32_t *flags = &ring->header->control.flags;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if ((VNIC_LOAD_RELAXED(flags) & bit) == 0u) {
        return false;
    }
    return (__atomic_fetch_and(flags, ~bit, __ATOMIC_RELAXED) & bit) != 0u;
}

/* --- producer ----------------------------------------------------------------------------- */

/* Takes the producer half of `ring` (Ring::producer). One per ring across both processes. */
static inline int vnic_ring_producer_init(vnic_ring_producer *p, const vnic_ring *ring)
{
    uint32_t used;
    p->ring = *ring;
    p->tail = VNIC_LOAD_RELAXED(&ring->header->producer);
    p->cached_head = __atomic_load_n(&ring->header->consumer, __ATOMIC_ACQUIRE);
    p->reserved = 0;
    return vnic_ring_used(ring, p->tail, p->cached_head, &used);
}

/* Free slots; re-reads the consumer index (Acquire) only if the cached view shows fewer than
 * `wanted` (Producer::free). The Acquire pairs with the consumer's Release store, so slots it
 * released are no longer being read when we overwrite them. */
static inline int vnic_ring_producer_free(vnic_ring_producer *p, uint32_t wanted,
                                          uint32_t *free_slots)
{
    uint32_t capacity = p->ring.capacity;
    uint32_t free_now = capacity - (p->tail - p->cached_head);
    if (free_now < wanted) {
        uint32_t head = __atomic_load_n(&p->ring.header->consumer, __ATOMIC_ACQUIRE);
        uint32_t used;
        int rc = vnic_ring_used(&p->ring, p->tail, head, &used);
        if (rc != VNIC_OK) {
            return rc;
        }
        p->cached_head = head;
        free_now = capacity - used;
    }
    *free_slots = free_now;
    return VNIC_OK;
}

/* Reserves up to `n` slots (burst; Producer::reserve): `*granted` may be less, even 0. A new
 * reserve replaces an unsubmitted one; nothing is visible to the consumer until submit. */
static inline int vnic_ring_producer_reserve(vnic_ring_producer *p, uint32_t n, uint32_t *granted)
{
    uint32_t free_slots;
    int rc = vnic_ring_producer_free(p, n, &free_slots);
    p->reserved = 0;
    if (rc != VNIC_OK) {
        return rc;
    }
    p->reserved = free_slots < n ? free_slots : n;
    *granted = p->reserved;
    return VNIC_OK;
}

/* Writes `value` into reserved slot `i` (WriteChunk::write). */
static inline int vnic_ring_producer_write(vnic_ring_producer *p, uint32_t i, uint32_t value)
{
    if (i >= p->reserved) {
        return VNIC_ERR_RANGE;
    }
    VNIC_STORE_RELAXED(vnic_ring_slot(&p->ring, p->tail + i), value);
    return VNIC_OK;
}

/* Publishes the first `n` reserved slots with one Release store of the producer index
 * (WriteChunk::commit); it orders the slot writes, and everything the producer wrote to the
 * packets before, ahead of the consumer's Acquire load. */
static inline int vnic_ring_producer_submit(vnic_ring_producer *p, uint32_t n)
{
    if (n > p->reserved) {
        return VNIC_ERR_RANGE;
    }
    p->reserved = 0;
    if (n > 0u) {
        p->tail += n;
        __atomic_store_n(&p->ring.header->producer, p->tail, __ATOMIC_RELEASE);
    }
    return VNIC_OK;
}

/* After submitting: whether the consumer asked to be woken; clears the request. */
static inline bool vnic_ring_producer_take_consumer_wakeup(const vnic_ring_producer *p)
{
    return vnic_ring_take_flag(&p->ring, VNIC_RING_WAKE_CONSUMER);
}

/* Before sleeping on a full ring: announce the wait, re-check. `*may_sleep` is true if the
 * ring is still full; the caller then sleeps until woken and calls cancel_sleep. */
static inline int vnic_ring_producer_prepare_to_sleep(vnic_ring_producer *p, bool *may_sleep)
{
    uint32_t head = vnic_ring_arm(&p->ring, VNIC_RING_WAKE_PRODUCER, &p->ring.header->consumer);
    uint32_t used;
    int rc = vnic_ring_used(&p->ring, p->tail, head, &used);
    if (rc != VNIC_OK) {
        return rc;
    }
    p->cached_head = head;
    *may_sleep = used >= p->ring.capacity;
    if (!*may_sleep) {
        vnic_ring_disarm(&p->ring, VNIC_RING_WAKE_PRODUCER);
    }
    return VNIC_OK;
}

static inline void vnic_ring_producer_cancel_sleep(const vnic_ring_producer *p)
{
    vnic_ring_disarm(&p->ring, VNIC_RING_WAKE_PRODUCER);
}

/* --- consumer ----------------------------------------------------------------------------- */

/* Takes the consumer half of `ring` (Ring::consumer). One per ring across both processes. */
static inline int vnic_ring_consumer_init(vnic_ring_consumer *c, const vnic_ring *ring)
{
    uint32_t used;
    c->ring = *ring;
    c->head = VNIC_LOAD_RELAXED(&ring->header->consumer);
    c->cached_tail = __atomic_load_n(&ring->header->producer, __ATOMIC_ACQUIRE);
    c->peeked = 0;
    return vnic_ring_used(ring, c->cached_tail, c->head, &used);
}

/* Entries ready; re-reads the producer index (Acquire) only if the cached view shows fewer
 * than `wanted` (Consumer::available). The Acquire pairs with the producer's Release store, so
 * the slots and the packets they name are visible. */
static inline int vnic_ring_consumer_available(vnic_ring_consumer *c, uint32_t wanted,
                                               uint32_t *ready)
{
    uint32_t ready_now = c->cached_tail - c->head;
    if (ready_now < wanted) {
        uint32_t tail = __atomic_load_n(&c->ring.header->producer, __ATOMIC_ACQUIRE);
        int rc = vnic_ring_used(&c->ring, tail, c->head, &ready_now);
        if (rc != VNIC_OK) {
            return rc;
        }
        c->cached_tail = tail;
    }
    *ready = ready_now;
    return VNIC_OK;
}

/* Looks at up to `n` entries (burst; Consumer::peek): `*len` may be less, even 0. */
static inline int vnic_ring_consumer_peek(vnic_ring_consumer *c, uint32_t n, uint32_t *len)
{
    uint32_t ready;
    int rc = vnic_ring_consumer_available(c, n, &ready);
    c->peeked = 0;
    if (rc != VNIC_OK) {
        return rc;
    }
    c->peeked = ready < n ? ready : n;
    *len = c->peeked;
    return VNIC_OK;
}

/* Entry `i` of the peeked chunk (ReadChunk::get). An atomic load, so the value the caller
 * range-checks is the value it uses even if a broken peer rewrites the slot meanwhile. */
static inline int vnic_ring_consumer_get(const vnic_ring_consumer *c, uint32_t i, uint32_t *value)
{
    if (i >= c->peeked) {
        return VNIC_ERR_RANGE;
    }
    *value = VNIC_LOAD_RELAXED(vnic_ring_slot(&c->ring, c->head + i));
    return VNIC_OK;
}

/* Releases the first `n` peeked entries with one Release store of the consumer index
 * (ReadChunk::release); it orders our slot reads before the producer reuses the slots. */
static inline int vnic_ring_consumer_release(vnic_ring_consumer *c, uint32_t n)
{
    if (n > c->peeked) {
        return VNIC_ERR_RANGE;
    }
    c->peeked = 0;
    if (n > 0u) {
        c->head += n;
        __atomic_store_n(&c->ring.header->consumer, c->head, __ATOMIC_RELEASE);
    }
    return VNIC_OK;
}

/* After releasing: whether the producer asked to be woken; clears the request. */
static inline bool vnic_ring_consumer_take_producer_wakeup(const vnic_ring_consumer *c)
{
    return vnic_ring_take_flag(&c->ring, VNIC_RING_WAKE_PRODUCER);
}

/* Before sleeping on an empty ring: announce the wait, re-check. `*may_sleep` is true if the
 * ring is still empty; the caller then sleeps until woken and calls cancel_sleep. */
static inline int vnic_ring_consumer_prepare_to_sleep(vnic_ring_consumer *c, bool *may_sleep)
{
    uint32_t tail = vnic_ring_arm(&c->ring, VNIC_RING_WAKE_CONSUMER, &c->ring.header->producer);
    uint32_t ready;
    int rc = vnic_ring_used(&c->ring, tail, c->head, &ready);
    if (rc != VNIC_OK) {
        return rc;
    }
    c->cached_tail = tail;
    *may_sleep = ready == 0u;
    if (!*may_sleep) {
        vnic_ring_disarm(&c->ring, VNIC_RING_WAKE_CONSUMER);
    }
    return VNIC_OK;
}

static inline void vnic_ring_consumer_cancel_sleep(const vnic_ring_consumer *c)
{
    vnic_ring_disarm(&c->ring, VNIC_RING_WAKE_CONSUMER);
}

/* ---------------------------------------------------------------------------------------- */
/* The driver's queue operations (queue/half.rs, driver roles)                                */
/* ---------------------------------------------------------------------------------------- */

/* DequeuePackets on a submission queue (QueueSource::dequeue_packets): peeks up to `max`
 * indices, claims each (InSubmission -> Driver) and appends the claimed ones to `out`, then
 * releases every peeked slot. Indices out of range or not InSubmission are skipped and added
 * to `*violations`: they never get a second owner. A disabled queue delivers nothing. */
static inline int vnic_driver_dequeue(vnic_ring_consumer *c, const vnic_pool *pool, uint32_t *out,
                                      uint32_t max, uint32_t *taken, uint32_t *violations)
{
    uint32_t len, i, n = 0;
    int rc;

    *taken = 0;
    if (!vnic_ring_is_enabled(&c->ring)) {
        return VNIC_OK;
    }
    rc = vnic_ring_consumer_peek(c, max, &len);
    if (rc != VNIC_OK) {
        return rc;
    }
    for (i = 0; i < len; i++) {
        vnic_packet_state *state;
        uint32_t index = VNIC_POOL_NIL_INDEX;
        (void)vnic_ring_consumer_get(c, i, &index); /* i < len: cannot fail */
        state = vnic_pool_state(pool, index);
        if (state != NULL && vnic_owner_take_submitted(state, NULL)) {
            out[n++] = index;
        } else {
            *violations += 1u;
        }
    }
    (void)vnic_ring_consumer_release(c, len); /* len == peeked: cannot fail */
    *taken = n;
    return VNIC_OK;
}

/* EnqueuePackets on a completion queue (QueueSink::enqueue_packets): moves indices from the
 * front of `indices` while slots are free and each packet is driver-owned (Driver ->
 * InCompletion, before the slot is written), then publishes them with one Release store.
 * `*accepted` gets how many went in. The result is VNIC_OK when all did, otherwise why the
 * first of the rest was refused: VNIC_ERR_DISABLED, VNIC_ERR_FULL, VNIC_ERR_WRONG_OWNER (also
 * for an index outside the pool) or VNIC_ERR_CORRUPTED. Refused packets stay with the driver. */
static inline int vnic_driver_enqueue(vnic_ring_producer *p, const vnic_pool *pool,
                                      const uint32_t *indices, uint32_t n, uint32_t *accepted)
{
    uint32_t granted, done = 0;
    int rc, refusal = VNIC_OK;

    *accepted = 0;
    if (n == 0u) {
        return VNIC_OK;
    }
    if (!vnic_ring_is_enabled(&p->ring)) {
        return VNIC_ERR_DISABLED;
    }
    rc = vnic_ring_producer_reserve(p, n, &granted);
    if (rc != VNIC_OK) {
        return rc;
    }
    while (done < n) {
        vnic_packet_state *state;
        if (done == granted) {
            refusal = VNIC_ERR_FULL;
            break;
        }
        state = vnic_pool_state(pool, indices[done]);
        if (state == NULL || !vnic_owner_give_completed(state, NULL)) {
            refusal = VNIC_ERR_WRONG_OWNER;
            break;
        }
        (void)vnic_ring_producer_write(p, done, indices[done]); /* done < granted */
        done++;
    }
    (void)vnic_ring_producer_submit(p, done); /* done <= granted: cannot fail */
    *accepted = done;
    return refusal;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* VNIC_ABI_H */
