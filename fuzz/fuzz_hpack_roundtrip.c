/* Fuzz target: fields built from the input are encoded, decoded, and must come back equal.
 * Input: [table size /16][options][peer size /16] then fields, each
 * [flags][name len][value len][name bytes][value bytes]; a flags byte of 0xff ends a block. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rill/hpack.h"

#define MAX_FIELDS 32

struct expect {
    const rill_header *fields;
    size_t count, seen;
};

static int check_field(const rill_header *h, void *user)
{
    struct expect *e = user;
    if (e->seen >= e->count)
        abort();
    const rill_header *want = &e->fields[e->seen++];
    if (h->name_len != want->name_len || h->value_len != want->value_len ||
        memcmp(h->name, want->name, h->name_len) != 0 || memcmp(h->value, want->value, h->value_len) != 0)
        abort();
    if ((want->flags & RILL_HEADER_NEVER_INDEX) && !(h->flags & RILL_HEADER_NEVER_INDEX))
        abort();
    return 0;
}

static void round_trip(rill_hpack_encoder *enc, rill_hpack_decoder *dec, const rill_header *f, size_t n,
                       int small_buffer)
{
    size_t bound = rill_hpack_encode_bound(enc, f, n), len = 0;
    uint8_t *out = malloc(bound);
    if (!out)
        abort();
    if (small_buffer && bound > 16 &&
        rill_hpack_encode(enc, f, n, out, 16, &len) == RILL_OK) {
        /* It fit in 16 bytes: fine, decode that. */
    } else if (rill_hpack_encode(enc, f, n, out, bound, &len) != RILL_OK) {
        abort();
    }
    if (len > bound)
        abort();
    struct expect e = {f, n, 0};
    if (rill_hpack_decode_block(dec, out, len, check_field, &e) != RILL_OK || e.seen != n)
        abort();
    if (rill_hpack_decoder_table_size(dec) != rill_hpack_encoder_table_size(enc))
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint32_t table = (uint32_t)data[0] * 16u, peer = (uint32_t)data[2] * 16u;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(table);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(table);
    if (!enc || !dec)
        abort();
    rill_hpack_encoder_set_flags(enc, data[1] & 7u);
    int small_buffer = data[1] & 8u;
    if (data[1] & 16u) {
        /* The peer (our decoder) announces a new size and it is acknowledged. */
        rill_hpack_encoder_set_peer_max_table_size(enc, peer);
        rill_hpack_decoder_set_max_table_size(dec, peer);
    }
    const uint8_t *p = data + 3, *end = data + size;
    rill_header fields[MAX_FIELDS];
    size_t n = 0;
    while (p < end) {
        uint8_t flags = *p++;
        if (flags == 0xff || n == MAX_FIELDS) {
            round_trip(enc, dec, fields, n, small_buffer);
            n = 0;
            continue;
        }
        if (end - p < 2)
            break;
        size_t nl = p[0] % 40u, vl = p[1];
        p += 2;
        if ((size_t)(end - p) < nl + vl)
            break;
        fields[n++] = (rill_header){p, nl, p + nl, vl, flags & (RILL_HEADER_NEVER_INDEX | RILL_HEADER_NO_INDEX)};
        p += nl + vl;
    }
    round_trip(enc, dec, fields, n, small_buffer);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
    return 0;
}
