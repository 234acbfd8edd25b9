/* HPACK encoder (RFC 7541 sections 4, 6, 7).
 *
 * Lookups never scan: static names go through a generated perfect hash, dynamic entries through
 * two hash chains (name+value and name) threaded through a side array parallel to the table's
 * descriptor ring. Chains run newest to oldest, so eviction needs no unlinking: a walk stops at the
 * first sequence number that is no longer live. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes_hash.h"
#include "common/small_copy.h"
#include "hpack/encoder_internal.h"
#include "hpack/hpack_int.h"
#include "hpack/hpack_tables.h"
#include "hpack/huffman.h"
#include "hpack/table.h"
#include "rill/hpack.h"

struct link {
    uint32_t nv_hash;
    uint32_t name_hash;
    uint32_t next_nv; /* older entry in the same name+value bucket */
    uint32_t next_name;
};

struct enc_state {
    hpack_table table;
    struct link *links; /* table.ent_cap entries, slot = seq & (ent_cap - 1) */
    uint32_t links_cap;
    uint32_t *nv_buckets; /* links_cap heads each, holding sequence numbers */
    uint32_t *name_buckets;
    uint32_t bucket_mask;
};

/* How often a name's values repeat, to spot names whose values are one-offs (request ids, sizes,
 * timestamps) and keep them out of the table. Direct-mapped by name hash; a collision just restarts
 * the statistics. */
#define NAME_STATS 128
#define RECENT_VALUES 4
struct name_stat {
    uint32_t name_hash;
    uint8_t seen;    /* occurrences (decayed) */
    uint8_t repeats; /* of which repeated a recent value */
    uint8_t next;    /* slot in recent to overwrite */
    uint16_t recent[RECENT_VALUES]; /* hashes (low bits) of the last distinct values */
};

/* How the field at each position of the previous block was written, when it was written as an
 * index: a server sends the same fields in the same order block after block, and an equal field
 * (checked byte by byte against the table entry itself) is written as the same entry again without
 * hashing or looking it up. Only sequence numbers are kept: a live entry is the one recorded. */
#define MEMO_FIELDS 16
enum { MEMO_NONE, MEMO_STATIC, MEMO_DYNAMIC };
struct memo_field {
    uint32_t seq;   /* MEMO_DYNAMIC: the entry's sequence number; MEMO_STATIC: its index */
    uint32_t flags; /* the field's RILL_HEADER_* flags then */
    uint8_t kind;
};

/* The previous block whole, when every field of it was written as an index: a block of the same
 * fields against the same table is those bytes again (a server answering the same resource, an
 * API's replies), checked field by field against a copy of their bytes, without a lookup or an
 * index computation per field. Same output as the per-field path: blocks with literals are never
 * replayed, so the indexing statistics still see every field that could enter the table. */
#define BLOCK_MEMO_BYTES 512
#define BLOCK_MEMO_OUT 64
struct block_memo {
    /* What a replay by token reads, together in front (in the cache line that learned starts) */
    uint64_t token[2]; /* the caller's name for these fields ({0, 0}: none); see encoder_internal.h */
    uint32_t first_seq, count, max_size; /* the table after the block: indices unchanged while equal */
    uint8_t nfields;                     /* 0: nothing recorded */
    uint8_t out_len;
    uint8_t out[BLOCK_MEMO_OUT];
    struct {
        uint16_t name_len, value_len;
        uint32_t flags;
    } f[MEMO_FIELDS];
    uint8_t bytes[BLOCK_MEMO_BYTES]; /* names and values, one after another */
};

/* What an encoder learns from its traffic; given back while the connection idles. */
struct learned {
    struct block_memo block; /* first: a replay touches only its front */
    struct name_stat stats[NAME_STATS];
    struct memo_field memo[MEMO_FIELDS];
};

struct rill_hpack_encoder {
    struct enc_state s;
    struct learned *learned; /* from the first block; trimmed when idle */
    void *(*pool_get)(size_t size, void *ctx); /* the learning's memory, or NULL: malloc */
    void (*pool_put)(void *p, size_t size, void *ctx);
    void *pool_ctx;
    uint32_t local_cap;
    uint32_t options;
    uint32_t signalled;     /* the table size the peer's decoder believes in (4096 at first) */
    bool update_pending;
    uint32_t update_min;    /* smallest size since the last block, signalled first ... */
    uint32_t update_target; /* ... then this one, if larger */
};

enum policy { P_INDEX, P_NO_INDEX, P_NEVER, P_COOKIE, P_PATH };

/* Per static name: values of date, content-length, etag... rarely repeat, so they start out not
 * indexed (indexing them would push useful entries out) until their values are seen to repeat;
 * credentials must never enter a table (RFC 7541 7.1.3). */
static uint8_t static_policy(unsigned idx)
{
    switch (idx) {
    case 4: case 5: return P_PATH;
    case 21: /* age */
    case 28: /* content-length */
    case 30: /* content-range */
    case 33: /* date */
    case 34: /* etag */
    case 36: /* expires */
    case 39: case 40: case 41: case 42: case 43: /* if-* */
    case 44: /* last-modified */
    case 46: /* location */
    case 50: /* range */
        return P_NO_INDEX;
    case 23: /* authorization */
    case 49: /* proxy-authorization */
    case 55: /* set-cookie */
        return P_NEVER;
    case 32:
        return P_COOKIE;
    default:
        return P_INDEX;
    }
}

/* Records one occurrence of (name, value) and says whether values of this name repeat often enough
 * (about one in five) to be worth a table entry. Names presumed one-off (P_NO_INDEX) start out
 * not indexed and need that evidence (timestamps such as date do repeat within a burst of
 * responses); other names are indexed until six occurrences show otherwise (request ids...).
 * Thresholds tuned on the hpack-test-case raw-data stories. */
static bool worth_indexing(struct name_stat *stats, uint8_t policy, uint32_t name_hash, uint32_t nv_hash,
                           bool known_repeat)
{
    if (!stats) /* out of memory for them: index, as a new encoder would */
        return true;
    struct name_stat *st = &stats[(name_hash ^ (name_hash >> 16)) & (NAME_STATS - 1)];
    if (st->name_hash != name_hash || st->seen == 0) {
        memset(st, 0, sizeof *st);
        st->name_hash = name_hash;
    }
    bool repeat = known_repeat;
    for (unsigned i = 0; i < RECENT_VALUES && !repeat; i++)
        repeat = st->recent[i] == (uint16_t)nv_hash && i < st->seen;
    if (!repeat) {
        st->recent[st->next] = (uint16_t)nv_hash;
        st->next = (uint8_t)((st->next + 1) % RECENT_VALUES);
    }
    if (st->seen == 64) { /* decay: follow changes in the traffic */
        st->seen /= 2;
        st->repeats /= 2;
    }
    st->seen++;
    st->repeats += repeat;
    if (policy == P_NO_INDEX)
        return st->seen >= 2 && st->repeats * 5 >= st->seen;
    return st->seen < 6 || st->repeats * 5 > st->seen;
}

rill_hpack_encoder *rill_hpack_encoder_new(uint32_t max_table_size)
{
    rill_hpack_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return NULL;
    enc->local_cap = max_table_size;
    /* Until the peer's SETTINGS arrive both ends assume the protocol default of 4096; using less
     * than the decoder allows needs no signal (indices count from the newest entry). */
    uint32_t initial = max_table_size < RILL_HPACK_DEFAULT_TABLE_SIZE ? max_table_size
                                                                       : RILL_HPACK_DEFAULT_TABLE_SIZE;
    hpack_table_init(&enc->s.table, initial);
    enc->signalled = RILL_HPACK_DEFAULT_TABLE_SIZE;
    return enc;
}

static void state_free(struct enc_state *s)
{
    hpack_table_free(&s->table);
    free(s->links);
    free(s->nv_buckets);
    free(s->name_buckets);
}

void rill_hpack_encoder_trim(rill_hpack_encoder *enc)
{
    if (enc->learned && enc->pool_get)
        enc->pool_put(enc->learned, sizeof *enc->learned, enc->pool_ctx);
    else
        free(enc->learned);
    enc->learned = NULL;
}

void rill_hpack_encoder_free(rill_hpack_encoder *enc)
{
    if (!enc)
        return;
    state_free(&enc->s);
    rill_hpack_encoder_trim(enc);
    free(enc);
}

void rill_hpack_encoder_set_pool(rill_hpack_encoder *enc, void *(*get)(size_t size, void *ctx),
                                 void (*put)(void *p, size_t size, void *ctx), void *ctx)
{
    if (enc->learned) /* given back to where it came from before the source changes */
        rill_hpack_encoder_trim(enc);
    enc->pool_get = get && put ? get : NULL;
    enc->pool_put = put;
    enc->pool_ctx = ctx;
}

static struct learned *learned_new(rill_hpack_encoder *enc)
{
    if (!enc->pool_get)
        return calloc(1, sizeof(struct learned));
    struct learned *l = enc->pool_get(sizeof *l, enc->pool_ctx);
    if (l)
        memset(l, 0, sizeof *l);
    return l;
}

void rill_hpack_encoder_set_flags(rill_hpack_encoder *enc, uint32_t options)
{
    enc->options = options;
}

size_t rill_hpack_encoder_table_size(const rill_hpack_encoder *enc)
{
    return enc->s.table.size;
}

void rill_hpack_encoder_set_peer_max_table_size(rill_hpack_encoder *enc, uint32_t size)
{
    uint32_t target = size < enc->local_cap ? size : enc->local_cap;
    /* Compared with what the decoder believes, not with our table: a decoder whose setting went
     * below its current size insists on an update even if our table is already that small. */
    if (!enc->update_pending) {
        if (target == enc->signalled)
            return;
        enc->update_min = target;
        enc->update_pending = true;
    } else if (target < enc->update_min) {
        enc->update_min = target;
    }
    enc->update_target = target;
}

/* ---- dynamic table index ---------------------------------------------------------------------- */

/* Re-threads the chains after the descriptor ring grew (a handful of times per connection). */
static int rebuild_links(struct enc_state *s)
{
    hpack_table *t = &s->table;
    uint32_t cap = t->ent_cap, nb = cap;
    struct link *links = malloc((size_t)cap * sizeof *links);
    uint32_t *nvb = malloc((size_t)nb * sizeof *nvb);
    uint32_t *nameb = malloc((size_t)nb * sizeof *nameb);
    if (!links || !nvb || !nameb) {
        free(links);
        free(nvb);
        free(nameb);
        return RILL_ERR_NOMEM;
    }
    uint32_t none = t->first_seq - 1; /* never live */
    for (uint32_t i = 0; i < nb; i++)
        nvb[i] = nameb[i] = none;
    for (uint32_t i = 0; i < t->count; i++) {
        uint32_t seq = t->first_seq + i;
        struct link l = s->links[seq & (s->links_cap - 1)];
        l.next_nv = nvb[l.nv_hash & (nb - 1)];
        l.next_name = nameb[l.name_hash & (nb - 1)];
        nvb[l.nv_hash & (nb - 1)] = seq;
        nameb[l.name_hash & (nb - 1)] = seq;
        links[seq & (cap - 1)] = l;
    }
    free(s->links);
    free(s->nv_buckets);
    free(s->name_buckets);
    s->links = links;
    s->links_cap = cap;
    s->nv_buckets = nvb;
    s->name_buckets = nameb;
    s->bucket_mask = nb - 1;
    return RILL_OK;
}

/* Takes every allocation indexing f needs, so that index_field() cannot fail. On failure nothing
 * changed and the caller sends the field without indexing instead. */
static int prepare_index(struct enc_state *s, const rill_header *f)
{
    int rc = hpack_table_reserve(&s->table, (uint64_t)f->name_len + f->value_len + HPACK_ENTRY_OVERHEAD);
    if (rc == RILL_OK && s->table.ent_cap != s->links_cap)
        rc = rebuild_links(s);
    return rc;
}

static void index_field(struct enc_state *s, const rill_header *f, uint32_t name_hash, uint32_t nv_hash)
{
    hpack_table *t = &s->table;
    hpack_table_insert(t, f->name, (uint32_t)f->name_len, f->value, (uint32_t)f->value_len);
    if ((uint64_t)f->name_len + f->value_len + HPACK_ENTRY_OVERHEAD > t->max_size)
        return; /* not stored: the table was emptied */
    uint32_t seq = t->first_seq + t->count - 1;
    struct link *l = &s->links[seq & (s->links_cap - 1)];
    l->nv_hash = nv_hash;
    l->name_hash = name_hash;
    l->next_nv = s->nv_buckets[nv_hash & s->bucket_mask];
    l->next_name = s->name_buckets[name_hash & s->bucket_mask];
    s->nv_buckets[nv_hash & s->bucket_mask] = seq;
    s->name_buckets[name_hash & s->bucket_mask] = seq;
}

static inline uint32_t dyn_index(const hpack_table *t, uint32_t seq)
{
    return HPACK_STATIC_COUNT + (t->first_seq + t->count - seq);
}

/* Dynamic index of an entry equal to f (0 if none); when want_name, *name_idx gets the newest
 * entry with the same name. */
static uint32_t dyn_find(const struct enc_state *s, const rill_header *f, uint32_t name_hash,
                         uint32_t nv_hash, bool want_name, uint32_t *name_idx)
{
    const hpack_table *t = &s->table;
    for (uint32_t seq = s->nv_buckets[nv_hash & s->bucket_mask]; hpack_table_live(t, seq);) {
        const struct link *l = &s->links[seq & (s->links_cap - 1)];
        if (l->nv_hash == nv_hash) {
            const hpack_entry *e = hpack_table_by_seq(t, seq);
            if (e->name_len == f->name_len && e->value_len == f->value_len &&
                hpack_ring_equal(t, e->off, f->name, e->name_len) &&
                hpack_ring_equal(t, hpack_entry_value_off(t, e), f->value, e->value_len))
                return dyn_index(t, seq);
        }
        seq = l->next_nv;
    }
    if (!want_name)
        return 0;
    for (uint32_t seq = s->name_buckets[name_hash & s->bucket_mask]; hpack_table_live(t, seq);) {
        const struct link *l = &s->links[seq & (s->links_cap - 1)];
        if (l->name_hash == name_hash) {
            const hpack_entry *e = hpack_table_by_seq(t, seq);
            if (e->name_len == f->name_len && hpack_ring_equal(t, e->off, f->name, e->name_len)) {
                *name_idx = dyn_index(t, seq);
                return 0;
            }
        }
        seq = l->next_name;
    }
    return 0;
}

/* Static index of the name (0 if none); *exact gets the index of an entry equal to the field. */
static inline unsigned static_find(const rill_header *f, unsigned *exact)
{
    *exact = 0;
    if (f->name_len == 0 || f->name_len > 27)
        return 0; /* "access-control-allow-origin" is the longest static name */
    unsigned idx = hpack_static_name_slots[hpack_static_name_hash(f->name, f->name_len)];
    if (!idx)
        return 0;
    const hpack_static_entry *se = &hpack_static_table[idx];
    if (se->name_len != f->name_len || !hpack_bytes_equal(se->name, f->name, f->name_len))
        return 0;
    for (unsigned i = idx; i < idx + hpack_static_name_run[idx]; i++) {
        se = &hpack_static_table[i];
        if (se->value_len == f->value_len && hpack_bytes_equal(se->value, f->value, f->value_len)) {
            *exact = i;
            break;
        }
    }
    return idx;
}

/* ---- output ----------------------------------------------------------------------------------- */

static size_t put_string(uint8_t *out, const uint8_t *s, size_t len, uint32_t options)
{
    if (!(options & RILL_HPACK_ENC_HUFFMAN_NEVER)) {
        size_t hl = hpack_huff_encoded_len(s, len);
        if (hl < len || (options & RILL_HPACK_ENC_HUFFMAN_ALWAYS)) {
            size_t n = hpack_encode_int(out, 0x80, 7, (uint32_t)hl);
            hpack_huff_encode(s, len, out + n);
            return n + hl;
        }
    }
    size_t n = hpack_encode_int(out, 0x00, 7, (uint32_t)len);
    if (len)
        memcpy(out + n, s, len);
    return n + len;
}

/* Bytes the fields can take at most, or 0 when one string is too long: each field a literal with a
 * new name (1 byte and at most 6 for each length), both strings sent as is (Huffman is used only
 * when shorter, or when forced: then at most 30/8 of the input, rounded up per string). One pass
 * of additions: the server calls this for every header block. */
static size_t fields_bound(const rill_header *fields, size_t count, uint32_t options)
{
    size_t sum = 0, longest = 0;
    for (size_t i = 0; i < count; i++) {
        sum += fields[i].name_len + fields[i].value_len;
        longest |= fields[i].name_len | fields[i].value_len;
    }
    if (longest > UINT32_MAX / 4)
        return 0;
    if (options & RILL_HPACK_ENC_HUFFMAN_ALWAYS)
        sum = sum / 8 * 30 + (sum % 8) * 30 / 8 + 2 * count;
    return 2 * 6 + 13 * count + sum; /* two table size updates first */
}

size_t rill_hpack_encode_bound(const rill_hpack_encoder *enc, const rill_header *fields, size_t count)
{
    size_t bound = fields_bound(fields, count, enc->options);
    return bound ? bound : SIZE_MAX;
}

/* Decides the representation of one field and writes it; out has room for field_bound(). */
static size_t encode_field(rill_hpack_encoder *enc, const rill_header *f, uint8_t *out,
                           struct memo_field *rec)
{
    struct enc_state *s = &enc->s;
    unsigned exact_static;
    unsigned name_idx = static_find(f, &exact_static);
    bool index_all = enc->options & RILL_HPACK_ENC_INDEX_ALL;
    uint8_t policy = name_idx && !index_all ? static_policy(name_idx) : P_INDEX;
    bool never = (f->flags & RILL_HEADER_NEVER_INDEX) || policy == P_NEVER ||
                 (policy == P_COOKIE && f->value_len < 20);
    rec->kind = MEMO_NONE;
    rec->flags = f->flags;
    if (exact_static && !never) {
        *rec = (struct memo_field){exact_static, f->flags, MEMO_STATIC};
        return hpack_encode_int(out, 0x80, 7, exact_static);
    }

    uint32_t name_hash = bytes_hash32(f->name, f->name_len, 0x5bd1e995u);
    uint32_t nv_hash = bytes_hash32(f->value, f->value_len, name_hash);
    uint32_t exact = 0;
    if (s->table.count) {
        uint32_t dyn_name = 0;
        exact = dyn_find(s, f, name_hash, nv_hash, name_idx == 0, &dyn_name);
        if (!name_idx)
            name_idx = dyn_name;
    }
    bool indexing = !never && !(f->flags & RILL_HEADER_NO_INDEX) && s->table.max_size >= HPACK_ENTRY_OVERHEAD;
    if (indexing && !index_all) {
        if (policy == P_PATH && memchr(f->value, '?', f->value_len))
            indexing = false;
        else if ((uint64_t)f->name_len + f->value_len + HPACK_ENTRY_OVERHEAD > s->table.max_size / 4 * 3)
            indexing = false; /* would flush most of the table for one field */
        else
            indexing = worth_indexing(enc->learned ? enc->learned->stats : NULL, policy, name_hash,
                                      nv_hash, exact != 0);
    }
    if (exact && !never) {
        uint32_t seq = s->table.first_seq + s->table.count - (exact - HPACK_STATIC_COUNT);
        *rec = (struct memo_field){seq, f->flags, MEMO_DYNAMIC};
        return hpack_encode_int(out, 0x80, 7, exact);
    }
    if (indexing && prepare_index(s, f) != RILL_OK)
        indexing = false;

    /* The name index refers to the table as it is before this field's insertion (4.4). */
    size_t n = indexing ? hpack_encode_int(out, 0x40, 6, name_idx)
                        : hpack_encode_int(out, never ? 0x10 : 0x00, 4, name_idx);
    if (!name_idx)
        n += put_string(out + n, f->name, f->name_len, enc->options);
    n += put_string(out + n, f->value, f->value_len, enc->options);
    if (indexing) {
        index_field(s, f, name_hash, nv_hash);
        /* the newest entry: an equal field in the next block is an index to it */
        *rec = (struct memo_field){s->table.first_seq + s->table.count - 1, f->flags, MEMO_DYNAMIC};
    }
    return n;
}

/* The field at this position of the previous block, if f is equal to it and its entry is still in
 * the table: written as that index (*n bytes). */
static bool memo_hit(const rill_hpack_encoder *enc, const struct memo_field *m, const rill_header *f,
                     uint8_t *out, size_t *n)
{
    if (m->kind == MEMO_NONE || m->flags != f->flags)
        return false;
    if (m->kind == MEMO_STATIC) {
        const hpack_static_entry *se = &hpack_static_table[m->seq];
        if (se->name_len != f->name_len || se->value_len != f->value_len ||
            !hpack_bytes_equal(se->name, f->name, f->name_len) ||
            !hpack_bytes_equal(se->value, f->value, f->value_len))
            return false;
        *n = hpack_encode_int(out, 0x80, 7, m->seq);
        return true;
    }
    const hpack_table *t = &enc->s.table;
    if (!hpack_table_live(t, m->seq))
        return false;
    const hpack_entry *e = hpack_table_by_seq(t, m->seq);
    if (e->name_len != f->name_len || e->value_len != f->value_len ||
        !hpack_ring_equal(t, e->off, f->name, e->name_len) ||
        !hpack_ring_equal(t, hpack_entry_value_off(t, e), f->value, e->value_len))
        return false;
    *n = hpack_encode_int(out, 0x80, 7, dyn_index(t, m->seq));
    return true;
}

static bool block_replay(const struct block_memo *b, const hpack_table *t, const rill_header *fields,
                         size_t count)
{
    if (count == 0 || b->nfields != count || b->first_seq != t->first_seq || b->count != t->count ||
        b->max_size != t->max_size)
        return false;
    const uint8_t *p = b->bytes;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = &fields[i];
        if (f->name_len != b->f[i].name_len || f->value_len != b->f[i].value_len || f->flags != b->f[i].flags ||
            !hpack_bytes_equal(p, f->name, f->name_len) ||
            !hpack_bytes_equal(p + f->name_len, f->value, f->value_len))
            return false;
        p += f->name_len + f->value_len;
    }
    return true;
}

static void block_record(struct block_memo *b, const hpack_table *t, const rill_header *fields, size_t count,
                         const uint8_t *out, size_t n, const uint64_t *token)
{
    b->nfields = 0;
    b->token[0] = token ? token[0] : 0;
    b->token[1] = token ? token[1] : 0;
    if (count == 0 || count > MEMO_FIELDS || n > BLOCK_MEMO_OUT)
        return;
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const rill_header *f = &fields[i];
        if (f->name_len + f->value_len > BLOCK_MEMO_BYTES - used)
            return;
        small_copy(b->bytes + used, f->name, f->name_len); /* an empty string may be NULL */
        small_copy(b->bytes + used + f->name_len, f->value, f->value_len);
        used += f->name_len + f->value_len;
        b->f[i].name_len = (uint16_t)f->name_len;
        b->f[i].value_len = (uint16_t)f->value_len;
        b->f[i].flags = f->flags;
    }
    memcpy(b->out, out, n);
    b->out_len = (uint8_t)n;
    b->first_seq = t->first_seq;
    b->count = t->count;
    b->max_size = t->max_size;
    b->nfields = (uint8_t)count;
}

/* The encoding of fields when it is the last block's again (every field indexed, the table
 * unchanged), else NULL. */
static const uint8_t *replay_of(const rill_hpack_encoder *enc, const rill_header *fields, size_t count,
                                size_t *len)
{
    const struct block_memo *block = enc->learned ? &enc->learned->block : NULL;
    if (!block || enc->update_pending || !block_replay(block, &enc->s.table, fields, count))
        return NULL;
    *len = block->out_len;
    return block->out;
}

static size_t encode_all(rill_hpack_encoder *enc, const rill_header *fields, size_t count, uint8_t *out,
                         bool replay_tried, const uint64_t *token)
{
    struct block_memo *block = enc->learned ? &enc->learned->block : NULL;
    size_t len;
    const uint8_t *again = replay_tried ? NULL : replay_of(enc, fields, count, &len);
    if (again) {
        memcpy(out, again, len);
        return len;
    }
    size_t n = 0;
    if (enc->update_pending) {
        if (enc->update_min < enc->update_target) {
            n += hpack_encode_int(out + n, 0x20, 5, enc->update_min);
            hpack_table_set_max(&enc->s.table, enc->update_min);
        }
        n += hpack_encode_int(out + n, 0x20, 5, enc->update_target);
        hpack_table_set_max(&enc->s.table, enc->update_target);
        enc->signalled = enc->update_target;
        enc->update_pending = false;
    }
    struct memo_field *memo = enc->learned ? enc->learned->memo : NULL;
    size_t start = n;
    bool all_indexed = true; /* an indexed representation's first byte has the top bit set */
    for (size_t i = 0; i < count; i++) {
        size_t w;
        if (memo && i < MEMO_FIELDS && memo_hit(enc, &memo[i], &fields[i], out + n, &w)) {
            n += w;
            continue;
        }
        struct memo_field rec;
        size_t at = n;
        n += encode_field(enc, &fields[i], out + n, &rec);
        all_indexed &= (out[at] & 0x80u) != 0;
        if (memo && i < MEMO_FIELDS)
            memo[i] = rec;
    }
    if (block) {
        if (all_indexed && start == 0)
            block_record(block, &enc->s.table, fields, count, out, n, token);
        else
            block->nfields = 0;
    }
    return n;
}

/* A deep copy of the state, for the rare call whose buffer is smaller than the bound. */
static int state_clone(struct enc_state *dst, const struct enc_state *src)
{
    *dst = *src;
    dst->table.data = NULL;
    dst->table.ents = NULL;
    dst->links = NULL;
    dst->nv_buckets = dst->name_buckets = NULL;
    size_t nb = src->links ? (size_t)src->bucket_mask + 1 : 0;
    if ((src->table.data && !(dst->table.data = malloc(src->table.data_cap))) ||
        (src->table.ents && !(dst->table.ents = malloc(src->table.ent_cap * sizeof(hpack_entry)))) ||
        (src->links && !(dst->links = malloc(src->links_cap * sizeof(struct link)))) ||
        (nb && !(dst->nv_buckets = malloc(nb * sizeof(uint32_t)))) ||
        (nb && !(dst->name_buckets = malloc(nb * sizeof(uint32_t))))) {
        state_free(dst);
        return RILL_ERR_NOMEM;
    }
    if (dst->table.data)
        memcpy(dst->table.data, src->table.data, src->table.data_cap);
    if (dst->table.ents)
        memcpy(dst->table.ents, src->table.ents, src->table.ent_cap * sizeof(hpack_entry));
    if (dst->links)
        memcpy(dst->links, src->links, src->links_cap * sizeof(struct link));
    if (nb) {
        memcpy(dst->nv_buckets, src->nv_buckets, nb * sizeof(uint32_t));
        memcpy(dst->name_buckets, src->name_buckets, nb * sizeof(uint32_t));
    }
    return RILL_OK;
}

size_t hpack_encode_within_bound(rill_hpack_encoder *enc, const rill_header *fields, size_t count, uint8_t *out,
                                 bool replay_tried, const uint64_t *token)
{
    if (!enc->learned)
        enc->learned = learned_new(enc); /* NULL is tolerated: see worth_indexing */
    return encode_all(enc, fields, count, out, replay_tried, token);
}

const uint8_t *hpack_encode_replay(rill_hpack_encoder *enc, const rill_header *fields, size_t count,
                                   const uint64_t *token, size_t *len)
{
    const uint8_t *again = replay_of(enc, fields, count, len);
    if (again && token) { /* the same fields: they may be named by this token from now on */
        enc->learned->block.token[0] = token[0];
        enc->learned->block.token[1] = token[1];
    }
    return again;
}

const uint8_t *hpack_encode_replay_token(const rill_hpack_encoder *enc, const uint64_t token[2], size_t *len)
{
    const struct block_memo *b = enc->learned ? &enc->learned->block : NULL;
    const hpack_table *t = &enc->s.table;
    if (!b || b->nfields == 0 || enc->update_pending || (token[0] | token[1]) == 0 ||
        b->token[0] != token[0] || b->token[1] != token[1] || b->first_seq != t->first_seq ||
        b->count != t->count || b->max_size != t->max_size)
        return NULL;
    *len = b->out_len;
    return b->out;
}

int rill_hpack_encode(rill_hpack_encoder *enc, const rill_header *fields, size_t count, uint8_t *out,
                      size_t cap, size_t *out_len)
{
    size_t bound = fields_bound(fields, count, enc->options);
    if (!bound)
        return RILL_ERR_INVALID_ARG;
    if (!enc->learned)
        enc->learned = learned_new(enc); /* NULL is tolerated: see worth_indexing */
    if (HPACK_LIKELY(cap >= bound)) {
        *out_len = encode_all(enc, fields, count, out, false, NULL);
        return RILL_OK;
    }
    /* The output may still fit: encode into a temporary buffer against a copy of the state that is
     * thrown away if it does not. */
    uint8_t *tmp = malloc(bound);
    struct learned *learned = enc->learned ? malloc(sizeof *learned) : NULL;
    struct enc_state saved;
    if (!tmp || (enc->learned && !learned) || state_clone(&saved, &enc->s) != RILL_OK) {
        free(tmp);
        free(learned);
        return RILL_ERR_NOMEM;
    }
    if (learned) {
        memcpy(learned, enc->learned, sizeof *learned);
        /* a discarded attempt's entries may get its sequence numbers again: no memo across it */
        memset(learned->memo, 0, sizeof learned->memo);
        learned->block.nfields = 0;
    }
    bool pending = enc->update_pending;
    uint32_t signalled = enc->signalled;
    size_t n = encode_all(enc, fields, count, tmp, false, NULL);
    if (n <= cap) {
        memcpy(out, tmp, n);
        *out_len = n;
        state_free(&saved);
        free(learned);
        free(tmp);
        return RILL_OK;
    }
    state_free(&enc->s);
    enc->s = saved;
    if (learned)
        memcpy(enc->learned, learned, sizeof *learned);
    enc->update_pending = pending;
    enc->signalled = signalled;
    free(learned);
    free(tmp);
    return RILL_ERR_BUFFER_TOO_SMALL;
}
