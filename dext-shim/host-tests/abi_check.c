/* abi_check.c: vnic/abi.h must also be plain C11 (compiled with -std=c11 -Wpedantic by
 * ndk-model/tests/cross_process.rs). Compiling runs the header's _Static_asserts; running
 * pushes a few entries through a local ring across the u32 index wrap. */

#include "vnic/abi.h"

#include <stdio.h>

int main(void)
{
    static _Alignas(128) unsigned char bytes[sizeof(vnic_ring_header) + 4 * sizeof(uint32_t)];
    vnic_ring_header *header = (vnic_ring_header *)bytes;
    vnic_ring ring;
    vnic_ring_producer p;
    vnic_ring_consumer c;
    uint32_t i, granted, len, value, expected = 0;

    header->producer = UINT32_MAX - 1u;
    header->consumer = UINT32_MAX - 1u;
    header->control.magic = VNIC_RING_MAGIC;
    header->control.capacity = 4;
    header->control.element_size_bytes = sizeof(uint32_t);
    header->control.kind = VNIC_QUEUE_RX_COMPLETION;
    if (vnic_ring_attach(&ring, bytes, sizeof bytes, 0, VNIC_QUEUE_RX_COMPLETION) != VNIC_OK ||
        vnic_ring_producer_init(&p, &ring) != VNIC_OK ||
        vnic_ring_consumer_init(&c, &ring) != VNIC_OK) {
        fprintf(stderr, "abi_check.c: attach failed\n");
        return 1;
    }
    for (i = 0; i < 10u; i++) {
        if (vnic_ring_producer_reserve(&p, 1, &granted) != VNIC_OK || granted != 1u ||
            vnic_ring_producer_write(&p, 0, i) != VNIC_OK ||
            vnic_ring_producer_submit(&p, 1) != VNIC_OK ||
            vnic_ring_consumer_peek(&c, 4, &len) != VNIC_OK || len != 1u ||
            vnic_ring_consumer_get(&c, 0, &value) != VNIC_OK || value != expected ||
            vnic_ring_consumer_release(&c, 1) != VNIC_OK) {
            fprintf(stderr, "abi_check.c: ring step %u failed\n", i);
            return 1;
        }
        expected++;
    }
    if (header->producer != 8u || header->consumer != 8u) {
        fprintf(stderr, "abi_check.c: indices did not wrap to 8\n");
        return 1;
    }
    return 0;
}
