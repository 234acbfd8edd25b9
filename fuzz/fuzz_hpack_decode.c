/* Fuzz target: the HPACK decoder on arbitrary bytes.
 * Input: [table size /32][list limit /16, 0 = none] then blocks, each [len][flags][len bytes];
 * flags bit 0 lowers our table setting before the block (forcing a size update), bit 1 raises it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rill/hpack.h"

static int touch_field(const rill_header *h, void *user)
{
    /* Read every byte so that ASan sees any pointer outside live memory. */
    unsigned *sum = user;
    for (size_t i = 0; i < h->name_len; i++)
        *sum += h->name[i];
    for (size_t i = 0; i < h->value_len; i++)
        *sum += h->value[i];
    if (h->flags & ~RILL_HEADER_NEVER_INDEX)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t table = (uint32_t)data[0] * 32u;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(table);
    if (!dec)
        return 0;
    rill_hpack_decoder_set_max_header_list_size(dec, (uint32_t)data[1] * 16u);
    data += 2;
    size -= 2;
    unsigned sum = 0;
    while (size >= 2) {
        size_t len = data[0] < size - 2 ? data[0] : size - 2;
        uint8_t flags = data[1];
        if (flags & 1)
            rill_hpack_decoder_set_max_table_size(dec, table / 2);
        if (flags & 2)
            rill_hpack_decoder_set_max_table_size(dec, table);
        /* An exact-size copy, so a read past the block is caught. */
        uint8_t *block = malloc(len ? len : 1);
        memcpy(block, data + 2, len);
        int rc = rill_hpack_decode_block(dec, block, len, touch_field, &sum);
        free(block);
        if (rc != RILL_OK && rc != RILL_ERR_HEADER_LIST_TOO_LARGE && rc != RILL_ERR_COMPRESSION)
            abort();
        if (rill_hpack_decoder_table_size(dec) > table)
            abort();
        if (rc == RILL_ERR_COMPRESSION)
            break; /* the context is unusable after a compression error */
        data += 2 + len;
        size -= 2 + len;
    }
    rill_hpack_decoder_free(dec);
    return 0;
}
