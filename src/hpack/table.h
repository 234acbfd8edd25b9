/* The HPACK dynamic table (RFC 7541 section 2.3.2, 4), shared by encoder and decoder.
 *
 * Entry bytes (name then value) live in one ring buffer that starts at 256 bytes and doubles when
 * an insertion needs it, up to max_size: live bytes never exceed max_size - 32 * count, so a ring
 * of max_size cannot overflow, and most connections never need one. Entry descriptors live in a second ring
 * (power-of-two capacity, grown by doubling, at most max_size / 32 + 1 entries). Both are allocated
 * on first insertion, so an idle context costs no table memory. Entries are numbered by a
 * monotonically increasing sequence number; the newest has dynamic index 1. */
#ifndef RILL_HPACK_TABLE_H
#define RILL_HPACK_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hpack/hpack_int.h"

typedef struct hpack_entry {
    uint32_t off; /* start of the name in the byte ring; the value follows it (ring order) */
    uint32_t name_len;
    uint32_t value_len;
    bool h2_valid; /* decoder: the entry passed http2_field_valid when it was inserted */
} hpack_entry;

typedef struct hpack_table {
    uint8_t *data;
    uint32_t data_cap;  /* bytes allocated for data (0 until first insertion; grows to max_size) */
    uint32_t data_tail; /* offset of the oldest entry's bytes */
    uint32_t data_used;
    hpack_entry *ents;
    uint32_t ent_cap; /* power of two, 0 until first insertion */
    uint32_t count;
    uint32_t first_seq; /* sequence number of the oldest entry */
    uint32_t size;      /* HPACK size: sum over entries of name + value + 32 */
    uint32_t max_size;
} hpack_table;

void hpack_table_init(hpack_table *t, uint32_t max_size);
void hpack_table_free(hpack_table *t);

/* Sets the maximum size, evicting as needed and resizing the byte ring. RILL_ERR_NOMEM leaves the
 * table valid (entries may have been evicted). */
int hpack_table_set_max(hpack_table *t, uint32_t max_size);

/* Takes the memory an insertion of an entry of esize octets needs, without changing the entries,
 * so that the insertion itself cannot fail. Returns 0 or RILL_ERR_NOMEM. */
int hpack_table_reserve(hpack_table *t, uint64_t esize);

/* Adds an entry (evicting old ones first). An entry larger than max_size empties the table and is
 * not added (RFC 7541 4.4). name/value must not point into the table's own memory. Returns 0 or
 * RILL_ERR_NOMEM, in which case the table is unchanged. */
int hpack_table_insert(hpack_table *t, const uint8_t *name, uint32_t name_len, const uint8_t *value,
                       uint32_t value_len);

/* Descriptor of the entry with dynamic index i (1 = newest); the caller checks 1 <= i <= count. */
static inline const hpack_entry *hpack_table_at(const hpack_table *t, uint32_t i)
{
    return &t->ents[(t->first_seq + t->count - i) & (t->ent_cap - 1)];
}

static inline const hpack_entry *hpack_table_by_seq(const hpack_table *t, uint32_t seq)
{
    return &t->ents[seq & (t->ent_cap - 1)];
}

/* True if seq names a live entry. */
static inline bool hpack_table_live(const hpack_table *t, uint32_t seq)
{
    return (uint32_t)(seq - t->first_seq) < t->count;
}

/* Position of the value of e in the ring. */
static inline uint32_t hpack_entry_value_off(const hpack_table *t, const hpack_entry *e)
{
    uint32_t off = e->off + e->name_len;
    return off >= t->data_cap ? off - t->data_cap : off;
}

/* True if the len bytes at ring offset off are contiguous in memory. */
static inline bool hpack_ring_contiguous(const hpack_table *t, uint32_t off, uint32_t len)
{
    return off + len <= t->data_cap;
}

/* Copies len bytes at ring offset off to dst (handles the wrap). */
void hpack_ring_copy(const hpack_table *t, uint32_t off, uint32_t len, uint8_t *dst);

/* True if the len bytes at ring offset off equal s (s may be NULL when len is 0). Inline: the
 * encoder calls it for every candidate entry. */
static inline bool hpack_ring_equal(const hpack_table *t, uint32_t off, const uint8_t *s, uint32_t len)
{
    if (len == 0)
        return true;
    uint32_t first = t->data_cap - off;
    if (len <= first)
        return hpack_bytes_equal(t->data + off, s, len);
    return memcmp(t->data + off, s, first) == 0 && memcmp(t->data, s + first, len - first) == 0;
}

#endif
