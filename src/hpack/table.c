/* The HPACK dynamic table: a ring of bytes plus a ring of descriptors; see table.h. */
#include "hpack/table.h"

#include <stdlib.h>
#include <string.h>

#include "hpack/hpack_tables.h"
#include "rill/common.h"

void hpack_table_init(hpack_table *t, uint32_t max_size)
{
    memset(t, 0, sizeof *t);
    t->max_size = max_size;
}

void hpack_table_free(hpack_table *t)
{
    free(t->data);
    free(t->ents);
    t->data = NULL;
    t->ents = NULL;
    t->data_cap = t->ent_cap = 0;
}

static void evict_oldest(hpack_table *t)
{
    const hpack_entry *e = hpack_table_by_seq(t, t->first_seq);
    uint32_t bytes = e->name_len + e->value_len;
    t->size -= bytes + HPACK_ENTRY_OVERHEAD;
    t->data_used -= bytes;
    t->data_tail += bytes;
    if (t->data_tail >= t->data_cap)
        t->data_tail -= t->data_cap;
    t->first_seq++;
    if (--t->count == 0)
        t->data_tail = t->data_used = 0; /* restart at offset 0: fewer wrapped entries */
}

static void evict_to(hpack_table *t, uint32_t limit)
{
    while (t->count && t->size > limit)
        evict_oldest(t);
}

void hpack_ring_copy(const hpack_table *t, uint32_t off, uint32_t len, uint8_t *dst)
{
    if (len == 0)
        return;
    uint32_t first = t->data_cap - off;
    if (len <= first) {
        memcpy(dst, t->data + off, len);
    } else {
        memcpy(dst, t->data + off, first);
        memcpy(dst + first, t->data, len - first);
    }
}

static void ring_write(hpack_table *t, uint32_t off, const uint8_t *src, uint32_t len)
{
    if (len == 0)
        return; /* src may be NULL */
    uint32_t first = t->data_cap - off;
    if (len <= first) {
        memcpy(t->data + off, src, len);
    } else {
        memcpy(t->data + off, src, first);
        memcpy(t->data, src + first, len - first);
    }
}

/* Moves the live bytes into a fresh ring of cap bytes, oldest first at offset 0. */
static int reshape_data(hpack_table *t, uint32_t cap)
{
    if (cap == t->data_cap)
        return RILL_OK;
    uint8_t *fresh = NULL;
    if (cap) {
        fresh = malloc(cap);
        if (!fresh)
            return RILL_ERR_NOMEM;
    }
    uint32_t pos = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        hpack_entry *e = &t->ents[(t->first_seq + i) & (t->ent_cap - 1)];
        uint32_t bytes = e->name_len + e->value_len;
        hpack_ring_copy(t, e->off, bytes, fresh + pos);
        e->off = pos;
        pos += bytes;
    }
    free(t->data);
    t->data = fresh;
    t->data_cap = cap;
    t->data_tail = 0;
    t->data_used = pos;
    return RILL_OK;
}

static int grow_ents(hpack_table *t)
{
    uint32_t cap = t->ent_cap ? t->ent_cap * 2 : 8;
    hpack_entry *fresh = malloc((size_t)cap * sizeof *fresh);
    if (!fresh)
        return RILL_ERR_NOMEM;
    for (uint32_t i = 0; i < t->count; i++) {
        uint32_t seq = t->first_seq + i;
        fresh[seq & (cap - 1)] = t->ents[seq & (t->ent_cap - 1)];
    }
    free(t->ents);
    t->ents = fresh;
    t->ent_cap = cap;
    return RILL_OK;
}

int hpack_table_set_max(hpack_table *t, uint32_t max_size)
{
    evict_to(t, max_size);
    t->max_size = max_size;
    if (!t->data)
        return RILL_OK; /* not allocated yet: the first insertion sizes it */
    /* A smaller limit shrinks the ring; a larger one lets later insertions grow it. */
    return reshape_data(t, t->data_cap < max_size ? t->data_cap : max_size);
}

/* Entries left after making room for an entry of esize octets (esize <= max_size), and the bytes
 * of name and value they hold in *bytes_left. */
static uint32_t count_after_eviction(const hpack_table *t, uint32_t esize, uint32_t *bytes_left)
{
    uint32_t size = t->size, count = t->count, seq = t->first_seq, bytes = t->data_used;
    while (count && size + esize > t->max_size) {
        const hpack_entry *e = hpack_table_by_seq(t, seq++);
        size -= e->name_len + e->value_len + HPACK_ENTRY_OVERHEAD;
        bytes -= e->name_len + e->value_len;
        count--;
    }
    *bytes_left = bytes;
    return count;
}

/* The byte ring starts at this size and doubles as entries need it, up to max_size (which always
 * suffices: each entry also counts 32 octets of overhead). A connection whose peer indexes a few
 * header fields keeps a few hundred bytes per table instead of 4 KiB. */
#define HPACK_RING_MIN 256u

int hpack_table_reserve(hpack_table *t, uint64_t esize)
{
    if (esize > t->max_size)
        return RILL_OK; /* will not be stored */
    uint32_t bytes_left;
    uint32_t count = count_after_eviction(t, (uint32_t)esize, &bytes_left);
    uint32_t need = bytes_left + (uint32_t)esize - HPACK_ENTRY_OVERHEAD;
    if (need > t->data_cap || !t->data) { /* even an empty entry gets a ring to point into */
        uint64_t cap = t->data_cap ? t->data_cap : HPACK_RING_MIN;
        while (cap < need)
            cap *= 2;
        if (cap > t->max_size)
            cap = t->max_size;
        int rc = reshape_data(t, (uint32_t)cap);
        if (rc)
            return rc;
    }
    if (count == t->ent_cap)
        return grow_ents(t);
    return RILL_OK;
}

int hpack_table_insert(hpack_table *t, const uint8_t *name, uint32_t name_len, const uint8_t *value,
                       uint32_t value_len)
{
    uint64_t esize = (uint64_t)name_len + value_len + HPACK_ENTRY_OVERHEAD;
    /* Allocate first: a failure must leave the table exactly as it was. */
    int rc = hpack_table_reserve(t, esize);
    if (rc)
        return rc;
    if (esize > t->max_size) {
        evict_to(t, 0);
        return RILL_OK;
    }
    evict_to(t, t->max_size - (uint32_t)esize);
    uint32_t off = t->data_tail + t->data_used;
    if (off >= t->data_cap)
        off -= t->data_cap;
    ring_write(t, off, name, name_len);
    uint32_t voff = off + name_len;
    if (voff >= t->data_cap)
        voff -= t->data_cap;
    ring_write(t, voff, value, value_len);
    hpack_entry *e = &t->ents[(t->first_seq + t->count) & (t->ent_cap - 1)];
    e->off = off;
    e->name_len = name_len;
    e->value_len = value_len;
    e->h2_valid = false;
    t->count++;
    t->data_used += name_len + value_len;
    t->size += (uint32_t)esize;
    return RILL_OK;
}
