/* HPACK decoder (RFC 7541 sections 3, 4, 6).
 *
 * Field strings are handed to the callback in place whenever possible: literal strings point into
 * the input block, table entries into the dynamic table's ring. Only Huffman-decoded strings and the
 * rare table entry that wraps around the ring's end are copied, into a scratch buffer owned by the
 * decoder that is reused for every field and grows only when a longer string shows up. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_chars.h"
#include "hpack/hpack_int.h"
#include "hpack/hpack_tables.h"
#include "hpack/huffman.h"
#include "hpack/table.h"
#include "rill/hpack.h"

struct rill_hpack_decoder {
    hpack_table table;
    uint32_t setting;       /* our acknowledged SETTINGS_HEADER_TABLE_SIZE */
    uint32_t required_max;  /* the next block must start with an update <= this ... */
    bool update_required;   /* ... when set */
    uint32_t max_list;      /* SETTINGS_MAX_HEADER_LIST_SIZE, 0 = unlimited */
    bool mark_h2_valid;     /* fields already known to pass http2_field_valid carry RILL_HEADER_VALID */
    uint8_t *scratch;
    size_t scratch_cap;
};

rill_hpack_decoder *rill_hpack_decoder_new(uint32_t max_table_size)
{
    rill_hpack_decoder *dec = calloc(1, sizeof *dec);
    if (!dec)
        return NULL;
    hpack_table_init(&dec->table, max_table_size);
    dec->setting = max_table_size;
    return dec;
}

void rill_hpack_decoder_free(rill_hpack_decoder *dec)
{
    if (!dec)
        return;
    hpack_table_free(&dec->table);
    free(dec->scratch);
    free(dec);
}

void rill_hpack_decoder_set_max_table_size(rill_hpack_decoder *dec, uint32_t max_table_size)
{
    dec->setting = max_table_size;
    if (max_table_size < dec->table.max_size) {
        /* Several changes before the next block: the update must reach the smallest of them. */
        if (!dec->update_required || max_table_size < dec->required_max)
            dec->required_max = max_table_size;
        dec->update_required = true;
    }
}

void rill_hpack_decoder_set_max_header_list_size(rill_hpack_decoder *dec, uint32_t limit)
{
    dec->max_list = limit;
}

size_t rill_hpack_decoder_table_size(const rill_hpack_decoder *dec)
{
    return dec->table.size;
}

/* Makes the scratch buffer hold at least need bytes; at most a few times per connection. */
static int scratch_reserve(rill_hpack_decoder *dec, size_t need)
{
    if (HPACK_LIKELY(need <= dec->scratch_cap && dec->scratch))
        return RILL_OK;
    size_t cap = dec->scratch_cap ? dec->scratch_cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(dec->scratch, cap);
    if (!p)
        return RILL_ERR_NOMEM;
    dec->scratch = p;
    dec->scratch_cap = cap;
    return RILL_OK;
}

/* A decoded string: either in place (ptr) or at scratch offset (when in_scratch), since the
 * scratch buffer may move while the second string of a field is decoded. */
struct str {
    const uint8_t *ptr;
    size_t off;
    uint32_t len;
    bool in_scratch;
};

/* Reads a string literal (5.2) at *pp. A Huffman string is decoded to scratch at *scratch_used,
 * unless even its shortest possible decoding exceeds budget (what the field may still use to be
 * delivered or indexed): then it is only validated, and s keeps its decoded length but points at the
 * encoded bytes. That bounds the scratch buffer by the configured limits, whatever the input. */
static int read_string(rill_hpack_decoder *dec, const uint8_t **pp, const uint8_t *end,
                       size_t *scratch_used, uint64_t budget, struct str *s)
{
    if (*pp == end)
        return RILL_ERR_COMPRESSION;
    bool huffman = **pp & 0x80u;
    uint32_t len;
    if (hpack_decode_int(pp, end, 7, &len) != 0 || len > (size_t)(end - *pp))
        return RILL_ERR_COMPRESSION;
    const uint8_t *src = *pp;
    *pp += len;
    s->ptr = src;
    s->in_scratch = false;
    if (!huffman) {
        s->len = len;
        return RILL_OK;
    }
    uint64_t shortest = len ? ((uint64_t)len * 8 - 7) / 30 : 0; /* codes are at most 30 bits */
    ptrdiff_t n;
    if (shortest <= budget) {
        int rc = scratch_reserve(dec, *scratch_used + hpack_huff_decoded_max(len) + 1);
        if (rc)
            return rc;
        n = hpack_huff_decode(src, len, dec->scratch + *scratch_used);
        if (n >= 0) {
            s->off = *scratch_used;
            s->in_scratch = true;
            *scratch_used += (size_t)n;
        }
    } else {
        n = hpack_huff_validate(src, len);
    }
    if (n < 0)
        return RILL_ERR_COMPRESSION;
    s->len = (uint32_t)n;
    return RILL_OK;
}

/* Resolves a table entry's name (and value if want_value) for index idx (>= 1). Strings that wrap
 * around the ring, and a dynamic name about to be re-inserted (copy_name), go to scratch. */
static int lookup(rill_hpack_decoder *dec, uint32_t idx, bool want_value, bool copy_name,
                  size_t *scratch_used, struct str *name, struct str *value)
{
    if (idx <= HPACK_STATIC_COUNT) {
        const hpack_static_entry *se = &hpack_static_table[idx];
        name->ptr = se->name;
        name->len = se->name_len;
        name->in_scratch = false;
        if (want_value) {
            value->ptr = se->value;
            value->len = se->value_len;
            value->in_scratch = false;
        }
        return RILL_OK;
    }
    const hpack_table *t = &dec->table;
    idx -= HPACK_STATIC_COUNT;
    if (idx > t->count)
        return RILL_ERR_COMPRESSION;
    const hpack_entry *e = hpack_table_at(t, idx);
    uint32_t voff = hpack_entry_value_off(t, e);
    name->len = e->name_len;
    if (!copy_name && hpack_ring_contiguous(t, e->off, e->name_len)) {
        name->ptr = t->data + e->off;
        name->in_scratch = false;
    } else {
        int rc = scratch_reserve(dec, *scratch_used + e->name_len);
        if (rc)
            return rc;
        hpack_ring_copy(t, e->off, e->name_len, dec->scratch + *scratch_used);
        name->off = *scratch_used;
        name->in_scratch = true;
        *scratch_used += e->name_len;
    }
    if (!want_value)
        return RILL_OK;
    value->len = e->value_len;
    if (hpack_ring_contiguous(t, voff, e->value_len)) {
        value->ptr = t->data + voff;
        value->in_scratch = false;
    } else {
        int rc = scratch_reserve(dec, *scratch_used + e->value_len);
        if (rc)
            return rc;
        hpack_ring_copy(t, voff, e->value_len, dec->scratch + *scratch_used);
        value->off = *scratch_used;
        value->in_scratch = true;
        *scratch_used += e->value_len;
    }
    return RILL_OK;
}

static inline const uint8_t *str_ptr(const rill_hpack_decoder *dec, const struct str *s)
{
    return s->in_scratch ? dec->scratch + s->off : s->ptr;
}

/* Dynamic table size updates at the start of a block (6.3, 4.2). Evicting to the smallest of
 * them and then taking the last one as the maximum is the same as applying each in turn, and
 * resizes the table at most twice however many updates a hostile peer sends. */
static int read_size_updates(rill_hpack_decoder *dec, const uint8_t **pp, const uint8_t *end)
{
    bool any = false;
    uint32_t smallest = UINT32_MAX, last = 0;
    while (*pp < end && (**pp & 0xe0u) == 0x20u) {
        if (hpack_decode_int(pp, end, 5, &last) != 0 || last > dec->setting)
            return RILL_ERR_COMPRESSION;
        if (last < smallest)
            smallest = last;
        any = true;
    }
    if (dec->update_required && (!any || smallest > dec->required_max))
        return RILL_ERR_COMPRESSION;
    dec->update_required = false;
    if (!any)
        return RILL_OK;
    int rc = RILL_OK;
    if (smallest < last && smallest < dec->table.max_size)
        rc = hpack_table_set_max(&dec->table, smallest);
    if (rc == RILL_OK)
        rc = hpack_table_set_max(&dec->table, last);
    return rc;
}

int rill_hpack_decode_block(rill_hpack_decoder *dec, const uint8_t *block, size_t len,
                            rill_hpack_field_cb cb, void *user)
{
    const uint8_t *p = block, *end = len ? block + len : block; /* block may be NULL when empty */
    int rc = read_size_updates(dec, &p, end);
    if (rc)
        return rc;
    uint64_t list_size = 0;
    bool too_large = false;
    while (p < end) {
        uint8_t b = *p;
        struct str name, value;
        size_t scratch_used = 0;
        rill_header field;
        field.flags = 0;
        if (b & 0x80u) { /* 6.1 indexed */
            uint32_t idx;
            if (hpack_decode_int(&p, end, 7, &idx) != 0 || idx == 0)
                return RILL_ERR_COMPRESSION;
            if (too_large) {
                /* Past the limit a reference changes nothing: only checked, never copied (a
                 * block of one-byte references to a 4 KB entry costs no 4 KB copies). */
                if (idx > HPACK_STATIC_COUNT + dec->table.count)
                    return RILL_ERR_COMPRESSION;
                continue;
            }
            /* The common case, an entry whose strings lie unwrapped in the ring (or a static
             * one), goes straight to the callback. */
            const hpack_entry *e = NULL;
            bool direct = idx <= HPACK_STATIC_COUNT;
            if (!direct && idx - HPACK_STATIC_COUNT <= dec->table.count) {
                e = hpack_table_at(&dec->table, idx - HPACK_STATIC_COUNT);
                direct = e->off + e->name_len + e->value_len <= dec->table.data_cap;
            }
            if (direct) {
                const hpack_static_entry *se = e ? NULL : &hpack_static_table[idx];
                field.name = e ? dec->table.data + e->off : se->name;
                field.name_len = e ? e->name_len : se->name_len;
                field.value = e ? field.name + e->name_len : se->value;
                field.value_len = e ? e->value_len : se->value_len;
                if (dec->mark_h2_valid && (!e || e->h2_valid))
                    field.flags = RILL_HEADER_VALID;
                list_size += (uint64_t)field.name_len + field.value_len + HPACK_ENTRY_OVERHEAD;
                if (dec->max_list && list_size > dec->max_list) {
                    too_large = true;
                    continue;
                }
                rc = cb(&field, user);
                if (rc)
                    return rc;
                continue;
            }
            rc = lookup(dec, idx, true, false, &scratch_used, &name, &value);
            if (rc)
                return rc;
            /* the static table's fields are valid HTTP/2 fields; a dynamic entry was checked once,
             * when it was inserted */
            if (dec->mark_h2_valid &&
                (idx <= HPACK_STATIC_COUNT ||
                 hpack_table_at(&dec->table, idx - HPACK_STATIC_COUNT)->h2_valid))
                field.flags = RILL_HEADER_VALID;
        } else {
            unsigned prefix;
            bool indexing = false;
            if (b & 0x40u) { /* 6.2.1 incremental indexing */
                prefix = 6;
                indexing = true;
            } else if (b & 0x20u) {
                return RILL_ERR_COMPRESSION; /* size update after a field (4.2) */
            } else { /* 6.2.2 without indexing, 6.2.3 never indexed */
                prefix = 4;
                if (b & 0x10u)
                    field.flags = RILL_HEADER_NEVER_INDEX;
            }
            uint32_t idx;
            if (hpack_decode_int(&p, end, prefix, &idx) != 0)
                return RILL_ERR_COMPRESSION;
            /* A field past the list limit is still parsed (and indexed) to keep the table in sync,
             * but strings that can be neither delivered nor stored are only validated. */
            uint64_t budget = 0;
            bool useful = false;
            if (!too_large) {
                useful = true;
                budget = dec->max_list ? (uint64_t)dec->max_list - list_size : UINT64_MAX;
            }
            if (indexing && dec->table.max_size > budget) {
                useful = true;
                budget = dec->table.max_size;
            }
            budget = useful && budget >= HPACK_ENTRY_OVERHEAD ? budget - HPACK_ENTRY_OVERHEAD : 0;
            if (idx == 0)
                rc = read_string(dec, &p, end, &scratch_used, useful ? budget : 0, &name);
            else
                rc = lookup(dec, idx, false, indexing, &scratch_used, &name, NULL);
            if (rc)
                return rc;
            budget = budget > name.len ? budget - name.len : 0;
            rc = read_string(dec, &p, end, &scratch_used, useful ? budget : 0, &value);
            if (rc)
                return rc;
            if (indexing) {
                rc = hpack_table_insert(&dec->table, str_ptr(dec, &name), name.len,
                                        str_ptr(dec, &value), value.len);
                if (rc)
                    return rc;
                /* checked once here, for this field and every later reference to the entry */
                if (dec->mark_h2_valid && dec->table.count && !too_large &&
                    http2_field_valid(str_ptr(dec, &name), name.len, str_ptr(dec, &value),
                                      value.len)) {
                    ((hpack_entry *)hpack_table_at(&dec->table, 1))->h2_valid = true;
                    field.flags = RILL_HEADER_VALID;
                }
            }
        }
        list_size += (uint64_t)name.len + value.len + HPACK_ENTRY_OVERHEAD;
        if (dec->max_list && list_size > dec->max_list)
            too_large = true;
        if (too_large)
            continue;
        field.name = str_ptr(dec, &name);
        field.name_len = name.len;
        field.value = str_ptr(dec, &value);
        field.value_len = value.len;
        rc = cb(&field, user);
        if (rc)
            return rc;
    }
    return too_large ? RILL_ERR_HEADER_LIST_TOO_LARGE : RILL_OK;
}

void rill_hpack_decoder_mark_valid_fields(rill_hpack_decoder *dec, bool on)
{
    dec->mark_h2_valid = on;
}
