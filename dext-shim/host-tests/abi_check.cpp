// abi_check: host test of dext-shim/include/vnic/abi.h.
//
// Compiling this file runs every static_assert in abi.h (sizes, offsets, alignments). Running
// it does two more things:
//   1. self-tests the inline ring and ownership functions in one process (indices crossing
//      the u32 wrap, the "more than capacity entries = corrupted" check, reservation misuse,
//      the owner-word compare-and-swap);
//   2. prints the layout as `key value` lines, which ndk-model/tests/cross_process.rs compares
//      with the Rust structs (offset_of!, size_of, the constants), so the two descriptions of
//      the shared memory cannot drift apart silently.
// Exit status 0 when every self-test passed. Built with -fno-exceptions -fno-rtti, like the dext.

#include "vnic/abi.h"

#include <cinttypes>
#include <cstdio>

namespace {

int g_failures = 0;

void check(bool ok, const char *what, int line)
{
    if (!ok) {
        std::fprintf(stderr, "abi_check: FAIL line %d: %s\n", line, what);
        g_failures++;
    }
}

#define CHECK(cond) check((cond), #cond, __LINE__)

void put(const char *key, uint64_t value)
{
    std::printf("%s %" PRIu64 "\n", key, value);
}

#define PUT_SIZE(type) put("size." #type, sizeof(type))
#define PUT_ALIGN(type) put("align." #type, alignof(type))
#define PUT_OFFSET(type, field) put("offset." #type "." #field, offsetof(type, field))
#define PUT_CONST(name) put("const." #name, static_cast<uint64_t>(name))

void print_layout()
{
    PUT_SIZE(vnic_area_header);
    PUT_ALIGN(vnic_area_header);
    PUT_OFFSET(vnic_area_header, magic);
    PUT_OFFSET(vnic_area_header, version);
    PUT_OFFSET(vnic_area_header, total_bytes);
    PUT_OFFSET(vnic_area_header, pool_offsets_bytes);
    PUT_OFFSET(vnic_area_header, ring_offsets_bytes);

    PUT_SIZE(vnic_ring_control);
    PUT_OFFSET(vnic_ring_control, flags);
    PUT_OFFSET(vnic_ring_control, enabled);
    PUT_OFFSET(vnic_ring_control, magic);
    PUT_OFFSET(vnic_ring_control, capacity);
    PUT_OFFSET(vnic_ring_control, element_size_bytes);
    PUT_OFFSET(vnic_ring_control, queue_id);
    PUT_OFFSET(vnic_ring_control, kind);
    PUT_OFFSET(vnic_ring_control, reserved);
    PUT_SIZE(vnic_ring_header);
    PUT_ALIGN(vnic_ring_header);
    PUT_OFFSET(vnic_ring_header, producer);
    PUT_OFFSET(vnic_ring_header, consumer);
    PUT_OFFSET(vnic_ring_header, control);

    PUT_SIZE(vnic_pool_info);
    PUT_OFFSET(vnic_pool_info, magic);
    PUT_OFFSET(vnic_pool_info, name);
    PUT_OFFSET(vnic_pool_info, packet_count);
    PUT_OFFSET(vnic_pool_info, buffer_count);
    PUT_OFFSET(vnic_pool_info, buffer_size_bytes);
    PUT_OFFSET(vnic_pool_info, stride_bytes);
    PUT_OFFSET(vnic_pool_info, options);
    PUT_OFFSET(vnic_pool_info, tag_bits);
    PUT_OFFSET(vnic_pool_info, links_offset_bytes);
    PUT_OFFSET(vnic_pool_info, states_offset_bytes);
    PUT_OFFSET(vnic_pool_info, buffers_offset_bytes);
    PUT_OFFSET(vnic_pool_info, total_bytes);
    PUT_SIZE(vnic_pool_header);
    PUT_ALIGN(vnic_pool_header);
    PUT_OFFSET(vnic_pool_header, free_head);
    PUT_OFFSET(vnic_pool_header, info);

    PUT_SIZE(vnic_packet_state);
    PUT_ALIGN(vnic_packet_state);
    PUT_OFFSET(vnic_packet_state, owner);
    PUT_OFFSET(vnic_packet_state, data_length);
    PUT_OFFSET(vnic_packet_state, data_offset);
    PUT_OFFSET(vnic_packet_state, link_header_length);
    PUT_OFFSET(vnic_packet_state, direction);
    PUT_OFFSET(vnic_packet_state, completion_status);
    PUT_OFFSET(vnic_packet_state, timestamp_ns);
    PUT_OFFSET(vnic_packet_state, tx_checksum_flags);
    PUT_OFFSET(vnic_packet_state, rx_checksum_flags);
    PUT_OFFSET(vnic_packet_state, checksum_start);
    PUT_OFFSET(vnic_packet_state, checksum_stuff);
    PUT_OFFSET(vnic_packet_state, rx_checksum_value);
    PUT_OFFSET(vnic_packet_state, tso_segment_size);
    PUT_OFFSET(vnic_packet_state, tso_flags);
    PUT_OFFSET(vnic_packet_state, lro_flags);
    PUT_OFFSET(vnic_packet_state, lro_segment_count);
    PUT_OFFSET(vnic_packet_state, reserved);

    PUT_CONST(VNIC_AREA_MAGIC);
    PUT_CONST(VNIC_AREA_VERSION);
    PUT_CONST(VNIC_RING_MAGIC);
    PUT_CONST(VNIC_RING_CAPACITY_MAX);
    PUT_CONST(VNIC_RING_WAKE_CONSUMER);
    PUT_CONST(VNIC_RING_WAKE_PRODUCER);
    PUT_CONST(VNIC_POOL_MAGIC);
    PUT_CONST(VNIC_POOL_NIL_INDEX);
    PUT_CONST(VNIC_POOL_PACKETS_MAX);
    PUT_CONST(VNIC_POOL_BUFFER_BYTES_MAX);
    PUT_CONST(VNIC_POOL_OPTION_SINGLE_MEMORY_SEGMENT);
    PUT_CONST(VNIC_POOL_OPTION_PERSISTENT_MEMORY);
    PUT_CONST(VNIC_POOL_OPTION_MAP_TO_DEXT);
    PUT_CONST(VNIC_POOL_OPTION_MAP_TO_DEVICE);
    PUT_CONST(VNIC_OWNER_TOKEN_BIT);
    PUT_CONST(VNIC_OWNER_STATE_MASK);
    PUT_CONST(VNIC_OWNER_FREE);
    PUT_CONST(VNIC_OWNER_SYSTEM);
    PUT_CONST(VNIC_OWNER_IN_SUBMISSION);
    PUT_CONST(VNIC_OWNER_DRIVER);
    PUT_CONST(VNIC_OWNER_IN_COMPLETION);
    PUT_CONST(VNIC_QUEUE_RX_SUBMISSION);
    PUT_CONST(VNIC_QUEUE_RX_COMPLETION);
    PUT_CONST(VNIC_QUEUE_TX_SUBMISSION);
    PUT_CONST(VNIC_QUEUE_TX_COMPLETION);
    PUT_CONST(VNIC_DIRECTION_NONE);
    PUT_CONST(VNIC_DIRECTION_TX);
    PUT_CONST(VNIC_DIRECTION_RX);

    // PoolConfig::stride_bytes, recomputed in C for a few buffer sizes.
    static const uint32_t kSizes[] = {1, 60, 64, 128, 1514, 2048, 4096, 9000, 65536};
    for (uint32_t size : kSizes) {
        char key[32];
        std::snprintf(key, sizeof key, "stride.%" PRIu32, size);
        put(key, vnic_pool_stride_for(size));
    }
}

// A ring of 8 u32 slots in a local, suitably aligned buffer, as Ring::create_in makes it.
struct LocalRing {
    alignas(128) unsigned char bytes[sizeof(vnic_ring_header) + 8 * sizeof(uint32_t)];
};

vnic_ring_header *init_ring(LocalRing *local, uint32_t start_index, uint32_t kind)
{
    auto *header = reinterpret_cast<vnic_ring_header *>(local->bytes);
    *header = vnic_ring_header{};
    header->producer = start_index;
    header->consumer = start_index;
    header->control.magic = VNIC_RING_MAGIC;
    header->control.capacity = 8;
    header->control.element_size_bytes = sizeof(uint32_t);
    header->control.kind = kind;
    return header;
}

void test_ring_wrap_and_corruption()
{
    LocalRing local;
    const uint32_t start = UINT32_MAX - 5; // crosses 2^32 after 6 entries
    vnic_ring_header *header = init_ring(&local, start, VNIC_QUEUE_TX_SUBMISSION);
    vnic_ring ring;
    CHECK(vnic_ring_attach(&ring, local.bytes, sizeof local.bytes, 0, VNIC_QUEUE_RX_SUBMISSION) ==
          VNIC_ERR_BAD_LAYOUT);
    CHECK(vnic_ring_attach(&ring, local.bytes, sizeof local.bytes - 1, 0,
                           VNIC_QUEUE_TX_SUBMISSION) == VNIC_ERR_BAD_LAYOUT);
    CHECK(vnic_ring_attach(&ring, local.bytes, sizeof local.bytes, 0, VNIC_QUEUE_TX_SUBMISSION) ==
          VNIC_OK);
    vnic_ring_producer p;
    vnic_ring_consumer c;
    CHECK(vnic_ring_producer_init(&p, &ring) == VNIC_OK);
    CHECK(vnic_ring_consumer_init(&c, &ring) == VNIC_OK);

    uint32_t next_in = 0, next_out = 0;
    for (int round = 0; round < 20; round++) {
        uint32_t granted = 0;
        CHECK(vnic_ring_producer_reserve(&p, 5, &granted) == VNIC_OK);
        CHECK(vnic_ring_producer_write(&p, granted, 0) == VNIC_ERR_RANGE);
        for (uint32_t i = 0; i < granted; i++) {
            CHECK(vnic_ring_producer_write(&p, i, next_in++) == VNIC_OK);
        }
        CHECK(vnic_ring_producer_submit(&p, granted + 1) == VNIC_ERR_RANGE);
        CHECK(vnic_ring_producer_submit(&p, granted) == VNIC_OK);
        uint32_t len = 0;
        CHECK(vnic_ring_consumer_peek(&c, 3, &len) == VNIC_OK);
        for (uint32_t i = 0; i < len; i++) {
            uint32_t value = 0;
            CHECK(vnic_ring_consumer_get(&c, i, &value) == VNIC_OK);
            CHECK(value == next_out);
            next_out++;
        }
        CHECK(vnic_ring_consumer_release(&c, len + 1) == VNIC_ERR_RANGE);
        CHECK(vnic_ring_consumer_release(&c, len) == VNIC_OK);
    }
    CHECK(next_in > 8 && next_out > 8);
    CHECK(header->producer == start + next_in); // wrapped past 2^32
    CHECK(header->producer < start);
    CHECK(header->consumer == start + next_out);

    // A full ring grants nothing; more than `capacity` entries is corruption, on both sides.
    uint32_t granted = 0;
    CHECK(vnic_ring_producer_reserve(&p, 100, &granted) == VNIC_OK);
    CHECK(granted == 8 - (next_in - next_out));
    const uint32_t saved = header->consumer;
    header->consumer = header->producer - 9;
    CHECK(vnic_ring_producer_reserve(&p, 100, &granted) == VNIC_ERR_CORRUPTED);
    header->consumer = saved;
    header->producer = header->consumer + 9;
    uint32_t len = 0;
    CHECK(vnic_ring_consumer_peek(&c, 100, &len) == VNIC_ERR_CORRUPTED);
    header->producer = header->consumer - 1; // consumer "ahead" of producer: 2^32 - 1 entries
    CHECK(vnic_ring_consumer_peek(&c, 100, &len) == VNIC_ERR_CORRUPTED);
    CHECK(vnic_ring_attach(&ring, local.bytes, sizeof local.bytes, 0, VNIC_QUEUE_TX_SUBMISSION) ==
          VNIC_ERR_CORRUPTED);

    // Need-wakeup handshake: an empty ring lets the consumer sleep; a publish wakes it.
    header->producer = header->consumer;
    CHECK(vnic_ring_consumer_init(&c, &ring) == VNIC_OK);
    CHECK(vnic_ring_producer_init(&p, &ring) == VNIC_OK);
    bool may_sleep = false;
    CHECK(vnic_ring_consumer_prepare_to_sleep(&c, &may_sleep) == VNIC_OK && may_sleep);
    CHECK((header->control.flags & VNIC_RING_WAKE_CONSUMER) != 0);
    CHECK(vnic_ring_producer_reserve(&p, 1, &granted) == VNIC_OK && granted == 1);
    CHECK(vnic_ring_producer_write(&p, 0, 42) == VNIC_OK);
    CHECK(vnic_ring_producer_submit(&p, 1) == VNIC_OK);
    CHECK(vnic_ring_producer_take_consumer_wakeup(&p));
    CHECK(!vnic_ring_producer_take_consumer_wakeup(&p));
    CHECK(vnic_ring_consumer_prepare_to_sleep(&c, &may_sleep) == VNIC_OK && !may_sleep);
    CHECK(header->control.flags == 0);
}

void test_owner_transitions()
{
    vnic_packet_state state{};
    uint32_t found = 0;
    state.owner = VNIC_OWNER_IN_SUBMISSION;
    CHECK(vnic_owner_take_submitted(&state, &found));
    CHECK(state.owner == VNIC_OWNER_DRIVER);
    CHECK(!vnic_owner_take_submitted(&state, &found)); // a duplicate index gets no second owner
    CHECK(found == VNIC_OWNER_DRIVER);
    CHECK(vnic_owner_give_completed(&state, &found));
    CHECK(state.owner == VNIC_OWNER_IN_COMPLETION);
    CHECK(!vnic_owner_give_completed(&state, &found));
    CHECK(found == VNIC_OWNER_IN_COMPLETION);
    // A live Rust token (bit 8) never matches, even with the right state byte.
    state.owner = VNIC_OWNER_IN_SUBMISSION | VNIC_OWNER_TOKEN_BIT;
    CHECK(!vnic_owner_take_submitted(&state, &found));
    CHECK(found == (VNIC_OWNER_IN_SUBMISSION | VNIC_OWNER_TOKEN_BIT));
    state.owner = VNIC_OWNER_DRIVER | VNIC_OWNER_TOKEN_BIT;
    CHECK(!vnic_owner_give_completed(&state, &found));
    CHECK(state.owner == (VNIC_OWNER_DRIVER | VNIC_OWNER_TOKEN_BIT));
}

void test_driver_queue_ops()
{
    // A two-packet "pool" (only the states matter here) and two rings.
    alignas(64) vnic_packet_state states[2] = {};
    vnic_pool pool{};
    pool.states = states;
    pool.packet_count = 2;
    LocalRing sub_bytes, comp_bytes;
    init_ring(&sub_bytes, 0, VNIC_QUEUE_TX_SUBMISSION);
    init_ring(&comp_bytes, UINT32_MAX, VNIC_QUEUE_TX_COMPLETION);
    vnic_ring sub, comp;
    CHECK(vnic_ring_attach(&sub, sub_bytes.bytes, sizeof sub_bytes.bytes, 0,
                           VNIC_QUEUE_TX_SUBMISSION) == VNIC_OK);
    CHECK(vnic_ring_attach(&comp, comp_bytes.bytes, sizeof comp_bytes.bytes, 0,
                           VNIC_QUEUE_TX_COMPLETION) == VNIC_OK);
    vnic_ring_producer system_sub;
    vnic_ring_consumer driver_sub, system_comp;
    vnic_ring_producer driver_comp;
    CHECK(vnic_ring_producer_init(&system_sub, &sub) == VNIC_OK);
    CHECK(vnic_ring_consumer_init(&driver_sub, &sub) == VNIC_OK);
    CHECK(vnic_ring_producer_init(&driver_comp, &comp) == VNIC_OK);
    CHECK(vnic_ring_consumer_init(&system_comp, &comp) == VNIC_OK);

    // The system submits 0, 1, 1 (a duplicate) and 7 (out of range).
    states[0].owner = VNIC_OWNER_IN_SUBMISSION;
    states[1].owner = VNIC_OWNER_IN_SUBMISSION;
    const uint32_t submitted[] = {0, 1, 1, 7};
    uint32_t granted = 0;
    CHECK(vnic_ring_producer_reserve(&system_sub, 4, &granted) == VNIC_OK && granted == 4);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK(vnic_ring_producer_write(&system_sub, i, submitted[i]) == VNIC_OK);
    }
    CHECK(vnic_ring_producer_submit(&system_sub, 4) == VNIC_OK);

    uint32_t out[8], taken = 0, violations = 0, accepted = 0;
    CHECK(vnic_driver_dequeue(&driver_sub, &pool, out, 8, &taken, &violations) == VNIC_OK);
    CHECK(taken == 0); // disabled: nothing
    vnic_ring_set_enabled(&sub, true);
    vnic_ring_set_enabled(&comp, true);
    CHECK(vnic_driver_dequeue(&driver_sub, &pool, out, 8, &taken, &violations) == VNIC_OK);
    CHECK(taken == 2 && out[0] == 0 && out[1] == 1 && violations == 2);
    CHECK(states[0].owner == VNIC_OWNER_DRIVER && states[1].owner == VNIC_OWNER_DRIVER);

    // Enqueue stops at a packet the driver does not own and leaves it, and the rest, alone.
    const uint32_t completed[] = {1, 7, 0};
    CHECK(vnic_driver_enqueue(&driver_comp, &pool, completed, 3, &accepted) ==
          VNIC_ERR_WRONG_OWNER);
    CHECK(accepted == 1 && states[1].owner == VNIC_OWNER_IN_COMPLETION);
    CHECK(states[0].owner == VNIC_OWNER_DRIVER);
    CHECK(vnic_driver_enqueue(&driver_comp, &pool, completed + 2, 1, &accepted) == VNIC_OK);
    CHECK(accepted == 1 && states[0].owner == VNIC_OWNER_IN_COMPLETION);
    uint32_t len = 0, value = 0;
    CHECK(vnic_ring_consumer_peek(&system_comp, 8, &len) == VNIC_OK && len == 2);
    CHECK(vnic_ring_consumer_get(&system_comp, 0, &value) == VNIC_OK && value == 1);
    CHECK(vnic_ring_consumer_get(&system_comp, 1, &value) == VNIC_OK && value == 0);

    // Disabled completion queue: refused, ownership untouched.
    vnic_ring_set_enabled(&comp, false);
    states[0].owner = VNIC_OWNER_DRIVER;
    CHECK(vnic_driver_enqueue(&driver_comp, &pool, completed + 2, 1, &accepted) ==
          VNIC_ERR_DISABLED);
    CHECK(accepted == 0 && states[0].owner == VNIC_OWNER_DRIVER);
}

} // namespace

int main()
{
    test_ring_wrap_and_corruption();
    test_owner_transitions();
    test_driver_queue_ops();
    print_layout();
    if (g_failures != 0) {
        std::fprintf(stderr, "abi_check: %d self-test failure(s)\n", g_failures);
        return 1;
    }
    return 0;
}
