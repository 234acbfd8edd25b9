/* HPACK decoder and encoder: RFC 7541 Appendix C byte for byte, and every bad-input rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack/encoder_internal.h"
#include "hpack/hpack_tables.h"
#include "hpack/huffman.h"
#include "hpack/table.h"
#include "rill/hpack.h"

/* ---- helpers: hex, field collection ----------------------------------------------------------- */

#define MAX_FIELDS 64

typedef struct collected {
    size_t count;
    char name[MAX_FIELDS][512];
    char value[MAX_FIELDS][512];
    uint32_t flags[MAX_FIELDS];
} collected;

static inline int collect_cb(const rill_header *h, void *user)
{
    collected *c = user;
    if (c->count >= MAX_FIELDS || h->name_len >= 512 || h->value_len >= 512)
        return RILL_ERR_LIMIT;
    memcpy(c->name[c->count], h->name, h->name_len);
    c->name[c->count][h->name_len] = '\0';
    memcpy(c->value[c->count], h->value, h->value_len);
    c->value[c->count][h->value_len] = '\0';
    c->flags[c->count] = h->flags;
    c->count++;
    return 0;
}

/* Parses hex (whitespace ignored) into out; returns the byte count. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= cap)
                abort();
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

static inline rill_header hdr(const char *name, const char *value, uint32_t flags)
{
    rill_header h = {(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), flags};
    return h;
}


/* ---- RFC 7541 Appendix C ---------------------------------------------------------------------- */

typedef struct example {
    const char *wire;
    size_t nfields;
    const char *fields[6][2];
    size_t table_size; /* after the block */
} example;

static const example c2[] = {
    {"400a637573746f6d2d6b65790d637573746f6d2d686561646572", 1, {{"custom-key", "custom-header"}}, 55},
};

static const example c3[] = {
    {"828684410f7777772e6578616d706c652e636f6d", 4,
     {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}}, 57},
    {"828684be58086e6f2d6361636865", 5,
     {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"},
      {"cache-control", "no-cache"}},
     110},
    {"828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", 5,
     {{":method", "GET"}, {":scheme", "https"}, {":path", "/index.html"},
      {":authority", "www.example.com"}, {"custom-key", "custom-value"}},
     164},
};

static const example c4[] = {
    {"828684418cf1e3c2e5f23a6ba0ab90f4ff", 4,
     {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}}, 57},
    {"828684be5886a8eb10649cbf", 5,
     {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"},
      {"cache-control", "no-cache"}},
     110},
    {"828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf", 5,
     {{":method", "GET"}, {":scheme", "https"}, {":path", "/index.html"},
      {":authority", "www.example.com"}, {"custom-key", "custom-value"}},
     164},
};

#define DATE1 "Mon, 21 Oct 2013 20:13:21 GMT"
#define DATE2 "Mon, 21 Oct 2013 20:13:22 GMT"
#define COOKIE "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"

static const example c5[] = {
    {"4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54"
     "6e1768747470733a2f2f7777772e6578616d706c652e636f6d",
     4,
     {{":status", "302"}, {"cache-control", "private"}, {"date", DATE1},
      {"location", "https://www.example.com"}},
     222},
    {"4803333037c1c0bf", 4,
     {{":status", "307"}, {"cache-control", "private"}, {"date", DATE1},
      {"location", "https://www.example.com"}},
     222},
    {"88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d"
     "4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b20766572"
     "73696f6e3d31",
     6,
     {{":status", "200"}, {"cache-control", "private"}, {"date", DATE2},
      {"location", "https://www.example.com"}, {"content-encoding", "gzip"}, {"set-cookie", COOKIE}},
     215},
};

static const example c6[] = {
    {"488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b"
     "97c8e9ae82ae43d3",
     4,
     {{":status", "302"}, {"cache-control", "private"}, {"date", DATE1},
      {"location", "https://www.example.com"}},
     222},
    {"4883640effc1c0bf", 4,
     {{":status", "307"}, {"cache-control", "private"}, {"date", DATE1},
      {"location", "https://www.example.com"}},
     222},
    {"88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdf"
     "cd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
     6,
     {{":status", "200"}, {"cache-control", "private"}, {"date", DATE2},
      {"location", "https://www.example.com"}, {"content-encoding", "gzip"}, {"set-cookie", COOKIE}},
     215},
};

static void decode_examples(const example *ex, size_t n, uint32_t table_size)
{
    rill_hpack_decoder *dec = rill_hpack_decoder_new(table_size);
    assert_non_null(dec);
    for (size_t i = 0; i < n; i++) {
        uint8_t wire[256];
        size_t len = unhex(ex[i].wire, wire, sizeof wire);
        collected c = {0};
        assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
        assert_int_equal(c.count, ex[i].nfields);
        for (size_t f = 0; f < c.count; f++) {
            assert_string_equal(c.name[f], ex[i].fields[f][0]);
            assert_string_equal(c.value[f], ex[i].fields[f][1]);
            assert_int_equal(c.flags[f], 0);
        }
        assert_int_equal(rill_hpack_decoder_table_size(dec), ex[i].table_size);
    }
    rill_hpack_decoder_free(dec);
}

static void decode_c2_field_representations(void **state)
{
    (void)state;
    decode_examples(c2, 1, 4096);

    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    uint8_t wire[64];
    collected c = {0};
    size_t len = unhex("040c2f73616d706c652f70617468", wire, sizeof wire); /* C.2.2 */
    assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.name[0], ":path");
    assert_string_equal(c.value[0], "/sample/path");
    assert_int_equal(c.flags[0], 0);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 0);

    memset(&c, 0, sizeof c);
    len = unhex("100870617373776f726406736563726574", wire, sizeof wire); /* C.2.3 */
    assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.name[0], "password");
    assert_string_equal(c.value[0], "secret");
    assert_int_equal(c.flags[0], RILL_HEADER_NEVER_INDEX);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 0);

    memset(&c, 0, sizeof c);
    len = unhex("82", wire, sizeof wire); /* C.2.4 */
    assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.name[0], ":method");
    assert_string_equal(c.value[0], "GET");
    rill_hpack_decoder_free(dec);
}

static void decode_c3_requests(void **state)
{
    (void)state;
    decode_examples(c3, 3, 4096);
}

static void decode_c4_requests_huffman(void **state)
{
    (void)state;
    decode_examples(c4, 3, 4096);
}

static void decode_c5_responses_with_eviction(void **state)
{
    (void)state;
    decode_examples(c5, 3, 256);
}

static void decode_c6_responses_huffman_with_eviction(void **state)
{
    (void)state;
    decode_examples(c6, 3, 256);
}

/* ---- decoder: bad input ----------------------------------------------------------------------- */

static int decode_hex(rill_hpack_decoder *dec, const char *hex, collected *c)
{
    uint8_t wire[512];
    size_t len = unhex(hex, wire, sizeof wire);
    collected local = {0};
    /* A heap copy sized exactly, so ASan catches any read past the block. */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, wire, len);
    int rc = rill_hpack_decode_block(dec, exact, len, collect_cb, c ? c : &local);
    free(exact);
    return rc;
}

static int decode_fresh(const char *hex)
{
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    int rc = decode_hex(dec, hex, NULL);
    rill_hpack_decoder_free(dec);
    return rc;
}

/* An idle connection's encoder gives its learning back (rill_hpack_encoder_trim); what it encodes
 * afterwards still decodes to the same fields, against the same table. */
static void encoder_trim_keeps_the_table(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {
        {(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0},
        {(const uint8_t *)"content-type", 12, (const uint8_t *)"text/html", 9, 0},
        {(const uint8_t *)"x-app", 5, (const uint8_t *)"one", 3, 0},
    };
    uint8_t wire[256];
    for (int round = 0; round < 4; round++) {
        size_t len = 0;
        assert_int_equal(rill_hpack_encode(enc, f, 3, wire, sizeof wire, &len), RILL_OK);
        collected c = {0};
        assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
        assert_int_equal(c.count, 3);
        assert_string_equal(c.name[2], "x-app");
        assert_string_equal(c.value[2], "one");
        rill_hpack_encoder_trim(enc); /* between every block, as an idle connection would */
    }
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

/* The learning from a pool (rill_hpack_encoder_set_pool): taken with the first block, given back
 * with the same size on trim and on free, taken again after a trim; encoding is unchanged. */
struct learn_pool {
    int gets, puts;
    size_t out_size;
    void *out;
};

static void *learn_get(size_t size, void *ctx)
{
    struct learn_pool *p = ctx;
    assert_null(p->out); /* one learning at a time */
    p->gets++;
    p->out_size = size;
    p->out = malloc(size);
    memset(p->out, 0xA5, size); /* dirty: the encoder must clear what it takes */
    return p->out;
}

static void learn_put(void *b, size_t size, void *ctx)
{
    struct learn_pool *p = ctx;
    assert_ptr_equal(b, p->out);
    assert_int_equal(size, p->out_size);
    p->puts++;
    p->out = NULL;
    free(b);
}

static void encoder_learning_from_a_pool(void **state)
{
    (void)state;
    struct learn_pool pool = {0};
    rill_hpack_encoder *plain = rill_hpack_encoder_new(4096);
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_encoder_set_pool(enc, learn_get, learn_put, &pool);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {
        {(const uint8_t *)":status", 7, (const uint8_t *)"200", 3, 0},
        {(const uint8_t *)"content-type", 12, (const uint8_t *)"text/html", 9, 0},
        {(const uint8_t *)"x-app", 5, (const uint8_t *)"one", 3, 0},
    };
    for (int round = 0; round < 6; round++) {
        uint8_t wire[256], wire2[256];
        size_t len = 0, len2 = 0;
        assert_int_equal(rill_hpack_encode(enc, f, 3, wire, sizeof wire, &len), RILL_OK);
        assert_int_equal(rill_hpack_encode(plain, f, 3, wire2, sizeof wire2, &len2), RILL_OK);
        assert_int_equal(len, len2); /* the same bytes as an encoder on malloc */
        assert_memory_equal(wire, wire2, len);
        collected c = {0};
        assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
        assert_int_equal(c.count, 3);
        assert_non_null(pool.out);
        if (round % 2) {
            rill_hpack_encoder_trim(enc);
            rill_hpack_encoder_trim(plain);
            assert_null(pool.out);
        }
    }
    assert_int_equal(pool.gets, 3);
    assert_int_equal(pool.puts, 3);
    uint8_t wire[256];
    size_t len = 0;
    assert_int_equal(rill_hpack_encode(enc, f, 3, wire, sizeof wire, &len), RILL_OK);
    rill_hpack_encoder_free(enc); /* the learning goes back to the pool */
    assert_int_equal(pool.gets, pool.puts);
    rill_hpack_encoder_free(plain);
    rill_hpack_decoder_free(dec);
}

/* Encodes fields and checks they decode back (names, values, never-indexed flag). */
static size_t round_trip_block(rill_hpack_encoder *enc, rill_hpack_decoder *dec, const rill_header *f,
                               size_t n, size_t cap)
{
    uint8_t wire[2048];
    size_t len = 0;
    int rc = rill_hpack_encode(enc, f, n, wire, cap, &len);
    if (rc == RILL_ERR_BUFFER_TOO_SMALL)
        return 0;
    assert_int_equal(rc, RILL_OK);
    collected c = {0};
    assert_int_equal(rill_hpack_decode_block(dec, wire, len, collect_cb, &c), RILL_OK);
    assert_int_equal(c.count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(c.name[i]), f[i].name_len);
        assert_memory_equal(c.name[i], f[i].name, f[i].name_len);
        assert_int_equal(strlen(c.value[i]), f[i].value_len);
        assert_memory_equal(c.value[i], f[i].value, f[i].value_len);
        assert_int_equal(c.flags[i] & RILL_HEADER_NEVER_INDEX, f[i].flags & RILL_HEADER_NEVER_INDEX);
    }
    assert_int_equal(rill_hpack_decoder_table_size(dec), rill_hpack_encoder_table_size(enc));
    return len;
}

#define HF(n, v) {(const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), sizeof(v) - 1, 0}

/* The encoder writes a field equal to the one at the same position of the previous block as the
 * same index without looking it up again: every way that could go stale is tried here. */
static void repeated_blocks_stay_exact(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header a[] = {HF(":status", "200"), HF("content-type", "text/plain"),
                       HF("etag", "\"abc-123\""), HF("x-one", "1"), HF("server", "rill")};
    round_trip_block(enc, dec, a, 5, 2048);
    round_trip_block(enc, dec, a, 5, 2048); /* the statistics index the repeating values now */
    assert_int_equal(round_trip_block(enc, dec, a, 5, 2048), 5); /* one byte a field */
    assert_int_equal(round_trip_block(enc, dec, a, 5, 2048), 5);
    /* same names, other values at the same positions */
    rill_header b[] = {HF(":status", "404"), HF("content-type", "text/html"),
                       HF("etag", "\"zzz\""), HF("x-one", "2"), HF("server", "rill")};
    round_trip_block(enc, dec, b, 5, 2048);
    round_trip_block(enc, dec, a, 5, 2048);
    /* the same fields in another order */
    rill_header c[] = {a[4], a[3], a[2], a[1], a[0]};
    round_trip_block(enc, dec, c, 5, 2048);
    round_trip_block(enc, dec, a, 5, 2048);
    /* a field now never-indexed must not come out as an index */
    rill_header d[5];
    memcpy(d, a, sizeof d);
    d[3].flags = RILL_HEADER_NEVER_INDEX;
    round_trip_block(enc, dec, d, 5, 2048);
    /* a buffer too small makes the encoder try and take the attempt back */
    rill_header big[] = {HF("x-big", "0123456789012345678901234567890123456789"), a[0], a[1]};
    assert_int_equal(round_trip_block(enc, dec, big, 3, 8), 0);
    round_trip_block(enc, dec, big, 3, 2048);
    round_trip_block(enc, dec, a, 5, 2048);
    /* a smaller table evicts what the previous block pointed at */
    rill_hpack_encoder_set_peer_max_table_size(enc, 64);
    rill_hpack_decoder_set_max_table_size(dec, 64);
    round_trip_block(enc, dec, a, 5, 2048);
    round_trip_block(enc, dec, a, 5, 2048);
    for (int i = 0; i < 40; i++) { /* entries come and go in a tiny table */
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        rill_header e[] = {a[0], {(const uint8_t *)"x-n", 3, (const uint8_t *)v, strlen(v), 0}, a[3]};
        round_trip_block(enc, dec, e, 3, 2048);
        round_trip_block(enc, dec, e, 3, 2048);
    }
    rill_hpack_encoder_trim(enc);
    round_trip_block(enc, dec, a, 5, 2048);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

/* Encodes fields named by token within their bound; returns the length. */
static size_t encode_named(rill_hpack_encoder *enc, const rill_header *f, size_t n, const uint64_t *token,
                           uint8_t *out)
{
    size_t bound = rill_hpack_encode_bound(enc, f, n);
    assert_true(bound <= 256);
    size_t len;
    const uint8_t *again = hpack_encode_replay(enc, f, n, token, &len);
    if (again) {
        memcpy(out, again, len);
        return len;
    }
    return hpack_encode_within_bound(enc, f, n, out, true, token);
}

/* A token names the last all-indexed block: it is that block's bytes again while the table and the
 * peer's table size stay; another block, another token or a table size change end it. */
static void named_blocks_replay_only_while_unchanged(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header a[] = {HF(":status", "200"), HF("etag", "\"e-1\""), HF("content-length", "5"),
                       HF("server", "rill")};
    rill_header b[] = {HF(":status", "200"), HF("etag", "\"e-2\""), HF("content-length", "7")};
    const uint64_t ta[2] = {1, 100}, tb[2] = {2, 100}, other[2] = {1, 101}, none[2] = {0, 0};
    uint8_t out[256];
    size_t len, n = 0;
    assert_null(hpack_encode_replay_token(enc, ta, &len)); /* nothing sent yet */
    for (int i = 0; i < 4; i++) {
        n = encode_named(enc, a, 4, ta, out);
        collected c = {0};
        assert_int_equal(rill_hpack_decode_block(dec, out, n, collect_cb, &c), RILL_OK);
        assert_int_equal(c.count, 4);
    }
    const uint8_t *r = hpack_encode_replay_token(enc, ta, &len);
    assert_non_null(r);
    assert_int_equal(len, n);
    assert_memory_equal(r, out, n);
    collected c = {0};
    assert_int_equal(rill_hpack_decode_block(dec, r, len, collect_cb, &c), RILL_OK);
    assert_int_equal(c.count, 4);
    assert_null(hpack_encode_replay_token(enc, other, &len));
    assert_null(hpack_encode_replay_token(enc, tb, &len));
    assert_null(hpack_encode_replay_token(enc, none, &len));
    /* another block in between: the token no longer names the last block */
    encode_named(enc, b, 3, tb, out);
    assert_null(hpack_encode_replay_token(enc, ta, &len));
    /* the same fields sent unnamed and then replayed by bytes take the new token */
    for (int i = 0; i < 3; i++)
        encode_named(enc, a, 4, NULL, out);
    assert_null(hpack_encode_replay_token(enc, ta, &len));
    encode_named(enc, a, 4, other, out);
    assert_non_null(hpack_encode_replay_token(enc, other, &len));
    /* the peer lowers its table: the next block must start with the size update */
    rill_hpack_encoder_set_peer_max_table_size(enc, 1024);
    assert_null(hpack_encode_replay_token(enc, other, &len));
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

/* A block equal to the previous one, against an unchanged table, is the previous output again;
 * a block that differs in one byte anywhere, or follows a change of the table, is not. */
static void replayed_blocks_never_go_stale(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    char etag[] = "\"abc-123\"", type[] = "text/plain";
    rill_header a[] = {HF(":status", "200"), {(const uint8_t *)"content-type", 12, (const uint8_t *)type, 10, 0},
                       {(const uint8_t *)"etag", 4, (const uint8_t *)etag, 9, 0}, HF("x-one", "1"),
                       HF("server", "rill")};
    for (int i = 0; i < 3; i++)
        round_trip_block(enc, dec, a, 5, 2048);
    uint8_t first[64], again[64];
    size_t n1, n2;
    assert_int_equal(rill_hpack_encode(enc, a, 5, first, sizeof first, &n1), RILL_OK);
    assert_int_equal(rill_hpack_encode(enc, a, 5, again, sizeof again, &n2), RILL_OK);
    assert_int_equal(n1, 5);
    assert_int_equal(n2, n1);
    assert_memory_equal(first, again, n1);
    collected c = {0};
    assert_int_equal(rill_hpack_decode_block(dec, first, n1, collect_cb, &c), RILL_OK);
    c = (collected){0};
    assert_int_equal(rill_hpack_decode_block(dec, again, n2, collect_cb, &c), RILL_OK);
    /* one byte changed, same lengths: in a value, then in the other values */
    for (size_t k = 0; k < sizeof etag - 1; k++) {
        char was = etag[k];
        etag[k] = was == 'x' ? 'y' : 'x';
        round_trip_block(enc, dec, a, 5, 2048);
        etag[k] = was;
        round_trip_block(enc, dec, a, 5, 2048);
    }
    type[0] = 'T';
    round_trip_block(enc, dec, a, 5, 2048);
    type[0] = 't';
    round_trip_block(enc, dec, a, 5, 2048);
    /* fewer fields, flags, then another block that changes the table in between */
    round_trip_block(enc, dec, a, 4, 2048);
    a[3].flags = RILL_HEADER_NEVER_INDEX;
    round_trip_block(enc, dec, a, 5, 2048);
    a[3].flags = 0;
    round_trip_block(enc, dec, a, 5, 2048);
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "new-%d", i);
        rill_header other[] = {{(const uint8_t *)"x-other", 7, (const uint8_t *)v, strlen(v), 0}};
        round_trip_block(enc, dec, other, 1, 2048);
        round_trip_block(enc, dec, a, 5, 2048);
        round_trip_block(enc, dec, a, 5, 2048);
    }
    /* an empty block after a replayable one is empty, every time (0 fields is also "no record") */
    for (int i = 0; i < 3; i++) {
        uint8_t out[64];
        size_t n = 99;
        assert_int_equal(round_trip_block(enc, dec, a, 5, 2048), 5);
        assert_int_equal(rill_hpack_encode(enc, a, 0, out, sizeof out, &n), RILL_OK);
        assert_int_equal(n, 0);
        assert_int_equal(rill_hpack_encode(enc, a, 0, out, sizeof out, &n), RILL_OK);
        assert_int_equal(n, 0);
    }
    /* a table with room for one entry: the next field takes its place, the count stays the same */
    rill_hpack_encoder *e1 = rill_hpack_encoder_new(64);
    rill_hpack_decoder *d1 = rill_hpack_decoder_new(64);
    rill_header xa[] = {HF("x-a", "1")}, xb[] = {HF("x-b", "2")};
    for (int i = 0; i < 3; i++)
        round_trip_block(e1, d1, xa, 1, 2048);
    round_trip_block(e1, d1, xb, 1, 2048);
    round_trip_block(e1, d1, xa, 1, 2048);
    rill_hpack_encoder_free(e1);
    rill_hpack_decoder_free(d1);
    /* random walks over a few templates, one byte changed now and then, in tables of every size */
    static const uint32_t sizes[] = {0, 64, 150, 4096};
    srand(11);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        rill_hpack_encoder *e2 = rill_hpack_encoder_new(sizes[si]);
        rill_hpack_decoder *d2 = rill_hpack_decoder_new(sizes[si]);
        char vals[3][4][12] = {{"200", "a/b", "x1", "rill"}, {"404", "c/d", "y22", "rill"}, {"200", "a/b", "x2", "nginx"}};
        static const char *names[] = {":status", "content-type", "x-id", "server"};
        for (int block = 0; block < 2000; block++) {
            int t = rand() % 3;
            if (rand() % 8 == 0) {
                char *v = vals[t][rand() % 4];
                v[rand() % strlen(v)] = (char)('a' + rand() % 3);
            }
            rill_header f[4];
            size_t n = 2 + (size_t)rand() % 3;
            for (size_t i = 0; i < n; i++)
                f[i] = hdr(names[i], vals[t][i], 0);
            round_trip_block(e2, d2, f, n, 2048);
            if (rand() % 2)
                round_trip_block(e2, d2, f, n, 2048);
        }
        rill_hpack_encoder_free(e2);
        rill_hpack_decoder_free(d2);
    }
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

/* For HTTP/2 the decoder marks what it knows to be valid: static fields, and dynamic entries that
 * passed the field rule when inserted; never a field that did not, nor a reference to it. */
static void decoder_marks_only_checked_fields(void **state)
{
    (void)state;
    static const uint8_t block1[] = {
        0x40, 5, 'x', '-', 'b', 'a', 'd', 3, 'o', 'k', ' ', /* indexed literal, trailing space */
        0x40, 5, 'x', '-', 'g', 'o', 'd', 2, 'o', 'k',      /* indexed literal, valid */
        0x82,                                               /* :method GET, static */
        0x00, 5, 'x', '-', 'l', 'i', 't', 2, 'o', 'k',      /* literal without indexing */
        0x40, 5, 'X', '-', 'U', 'P', 'P', 1, 'v',           /* an uppercase name */
    };
    static const uint8_t block2[] = {0xbe, 0xbf, 0xc0}; /* X-UPP, x-god, x-bad */
    for (int on = 0; on < 2; on++) {
        rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
        rill_hpack_decoder_mark_valid_fields(dec, on);
        collected c = {0};
        assert_int_equal(rill_hpack_decode_block(dec, block1, sizeof block1, collect_cb, &c), RILL_OK);
        assert_int_equal(c.count, 5);
        uint32_t want1[] = {0, RILL_HEADER_VALID, RILL_HEADER_VALID, 0, 0};
        for (size_t i = 0; i < 5; i++)
            assert_int_equal(c.flags[i] & RILL_HEADER_VALID, on ? want1[i] : 0);
        collected d = {0};
        assert_int_equal(rill_hpack_decode_block(dec, block2, sizeof block2, collect_cb, &d), RILL_OK);
        assert_int_equal(d.count, 3);
        assert_string_equal(d.name[0], "X-UPP");
        assert_string_equal(d.name[1], "x-god");
        assert_string_equal(d.name[2], "x-bad");
        uint32_t want2[] = {0, RILL_HEADER_VALID, 0};
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(d.flags[i] & RILL_HEADER_VALID, on ? want2[i] : 0);
        rill_hpack_decoder_free(dec);
    }
}

static void rejects_index_zero(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("80"), RILL_ERR_COMPRESSION);
}

static void rejects_index_past_tables(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("bd"), RILL_OK); /* 61: last static entry */
    assert_int_equal(decode_fresh("be"), RILL_ERR_COMPRESSION); /* 62 with an empty table */
    assert_int_equal(decode_fresh("7e0161"), RILL_ERR_COMPRESSION); /* name index 62 */
    assert_int_equal(decode_fresh("0f3001"), RILL_ERR_COMPRESSION); /* name index 63, 4-bit prefix */
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK); /* a: b, :authority: A */
    assert_int_equal(decode_hex(dec, "bebf", NULL), RILL_OK);
    assert_int_equal(decode_hex(dec, "c0", NULL), RILL_ERR_COMPRESSION);
    rill_hpack_decoder_free(dec);
}

static void rejects_truncated_integers(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("ff"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("ff80"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("7f"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("3f"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("0f"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("00 7f"), RILL_ERR_COMPRESSION); /* string length */
}

static void rejects_integers_wider_than_32_bits(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("ff ffffffff0f"), RILL_ERR_COMPRESSION); /* 2^32 + 126 */
    assert_int_equal(decode_fresh("ff 8080808080 00"), RILL_ERR_COMPRESSION); /* 6 continuations */
    assert_int_equal(decode_fresh("00 ff ffffffff0f"), RILL_ERR_COMPRESSION);
    /* The largest 32-bit value is a valid integer (and here an index past the tables). */
    assert_int_equal(decode_fresh("ff 80ffffff0f"), RILL_ERR_COMPRESSION);
}

static void rejects_truncated_strings(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("40 05 6162"), RILL_ERR_COMPRESSION); /* name cut short */
    assert_int_equal(decode_fresh("40 01 61"), RILL_ERR_COMPRESSION);   /* value missing */
    assert_int_equal(decode_fresh("04"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("04 03 2f61"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("00"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("10 85 1f"), RILL_ERR_COMPRESSION); /* Huffman, cut short */
}

static void rejects_bad_huffman(void **state)
{
    (void)state;
    collected c = {0};
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "01 81 1f", &c), RILL_OK); /* 'a' + 3 bits of EOS prefix */
    assert_string_equal(c.value[0], "a");
    rill_hpack_decoder_free(dec);
    assert_int_equal(decode_fresh("01 84 ffffffff"), RILL_ERR_COMPRESSION); /* EOS in the string */
    assert_int_equal(decode_fresh("01 84 1fffffff"), RILL_ERR_COMPRESSION); /* 'a' + 27 one bits */
    assert_int_equal(decode_fresh("01 82 1fff"), RILL_ERR_COMPRESSION);     /* 11 bits of padding */
    assert_int_equal(decode_fresh("01 81 18"), RILL_ERR_COMPRESSION);       /* padding not EOS prefix */
    assert_int_equal(decode_fresh("01 81 fe"), RILL_ERR_COMPRESSION);       /* incomplete symbol */
    assert_int_equal(decode_fresh("01 81 ff"), RILL_ERR_COMPRESSION);       /* 8 bits of padding */
    assert_int_equal(decode_fresh("81 80"), RILL_ERR_COMPRESSION); /* not a string: index 1, then 0 */
    assert_int_equal(decode_fresh("0080 0161"), RILL_OK);          /* empty Huffman name */
}

static void huffman_round_trips_every_byte(void **state)
{
    (void)state;
    uint8_t raw[600], enc[2400];
    for (int round = 0; round < 50; round++) {
        size_t len = round < 2 ? 256 : (size_t)(rand() % 600);
        for (size_t i = 0; i < len; i++)
            raw[i] = round == 0 ? (uint8_t)i : round == 1 ? (uint8_t)(255 - i) : (uint8_t)rand();
        size_t elen = hpack_huff_encoded_len(raw, len);
        assert_true(elen <= sizeof enc);
        hpack_huff_encode(raw, len, enc);
        assert_true(hpack_huff_decoded_max(elen) >= len);
        uint8_t *exact = malloc(hpack_huff_decoded_max(elen) + 1); /* the documented room */
        ptrdiff_t n = hpack_huff_decode(enc, elen, exact);
        assert_int_equal(n, (ptrdiff_t)len);
        assert_memory_equal(exact, raw, len);
        free(exact);
        assert_int_equal(hpack_huff_validate(enc, elen), (ptrdiff_t)len);
    }
}

/* A bit-at-a-time reference decoder, straight from RFC 7541 5.2, to check the table-driven one. */
static ptrdiff_t reference_huff_decode(const uint8_t *src, size_t len, uint8_t *dst)
{
    uint32_t code = 0;
    unsigned code_len = 0;
    size_t n = 0;
    for (size_t i = 0; i < len * 8; i++) {
        code = code << 1 | ((src[i / 8] >> (7 - i % 8)) & 1u);
        code_len++;
        for (int sym = 0; sym < 257; sym++) {
            if (hpack_huff_len[sym] == code_len && hpack_huff_code[sym] == code) {
                if (sym == 256)
                    return -1;
                dst[n++] = (uint8_t)sym;
                code = 0;
                code_len = 0;
                break;
            }
        }
        if (code_len > 30)
            return -1;
    }
    if (code_len > 7 || code != (1u << code_len) - 1u)
        return -1;
    return (ptrdiff_t)n;
}

static void huffman_matches_reference_on_random_input(void **state)
{
    (void)state;
    uint8_t in[40], a[80], b[80];
    srand(11);
    int valid = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % 12);
        for (size_t i = 0; i < len; i++) /* mostly ones: long codes, EOS and padding corner cases */
            in[i] = rand() % 3 ? (uint8_t)(0xff ^ (1u << (rand() % 8)) * (rand() % 2)) : (uint8_t)rand();
        ptrdiff_t want = reference_huff_decode(in, len, a);
        uint8_t *room = malloc(hpack_huff_decoded_max(len) + 1);
        ptrdiff_t got = hpack_huff_decode(in, len, room);
        if (got > 0)
            memcpy(b, room, (size_t)got);
        free(room);
        assert_int_equal(got, want);
        assert_int_equal(hpack_huff_validate(in, len), want);
        if (want > 0) {
            assert_memory_equal(a, b, (size_t)want);
            valid++;
        }
    }
    assert_true(valid > 100); /* the generator does reach valid strings */
}

static void rejects_size_update_after_a_field(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("82 20"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("20 82 3fe11f"), RILL_ERR_COMPRESSION);
    assert_int_equal(decode_fresh("20 3fe11f 82"), RILL_OK); /* two updates, both at the start */
}

static void rejects_size_update_above_the_setting(void **state)
{
    (void)state;
    assert_int_equal(decode_fresh("3fe11f"), RILL_OK);                  /* 4096 */
    assert_int_equal(decode_fresh("3fe21f"), RILL_ERR_COMPRESSION);     /* 4097 */
    assert_int_equal(decode_fresh("3fffffffff0f"), RILL_ERR_COMPRESSION); /* huge */
}

static void smaller_setting_forces_an_update(void **state)
{
    (void)state;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 68);
    rill_hpack_decoder_set_max_table_size(dec, 40);
    assert_int_equal(decode_hex(dec, "82", NULL), RILL_ERR_COMPRESSION);

    rill_hpack_decoder_free(dec);
    dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK);
    rill_hpack_decoder_set_max_table_size(dec, 40);
    assert_int_equal(decode_hex(dec, "3f09 be", NULL), RILL_OK); /* update to 40 keeps one entry */
    assert_int_equal(rill_hpack_decoder_table_size(dec), 34);
    assert_int_equal(decode_hex(dec, "bf", NULL), RILL_ERR_COMPRESSION); /* the other one is gone */
    rill_hpack_decoder_free(dec);

    /* Down to 0 then back up to 4096 before the next block: the update must reach 0 first. */
    dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK);
    rill_hpack_decoder_set_max_table_size(dec, 0);
    rill_hpack_decoder_set_max_table_size(dec, 4096);
    assert_int_equal(decode_hex(dec, "3fe11f 82", NULL), RILL_ERR_COMPRESSION);
    rill_hpack_decoder_free(dec);
    dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK);
    rill_hpack_decoder_set_max_table_size(dec, 0);
    rill_hpack_decoder_set_max_table_size(dec, 4096);
    assert_int_equal(decode_hex(dec, "20 3fe11f 82", NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 0);
    /* A larger setting needs no update. */
    rill_hpack_decoder_set_max_table_size(dec, 8192);
    assert_int_equal(decode_hex(dec, "82", NULL), RILL_OK);
    rill_hpack_decoder_free(dec);
}

static void size_updates_apply_in_order(void **state)
{
    (void)state;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK);
    /* 4096, then 0 (empties the table), then 4096 again: nothing left to reference. */
    assert_int_equal(decode_hex(dec, "3fe11f 20 3fe11f 82", NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 0);
    assert_int_equal(decode_hex(dec, "40016101 62 40016301 64", NULL), RILL_OK);
    /* Down to 40 in the middle keeps only the newest entry; the later 4096 does not bring any back. */
    assert_int_equal(decode_hex(dec, "3fe11f 3f09 3fe11f be", NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 34);
    /* Many updates in one block are fine. */
    assert_int_equal(decode_hex(dec, "3f09 3f09 3f09 3f09 3f09 3f09 3f09 3f09 be", NULL), RILL_OK);
    rill_hpack_decoder_free(dec);
}

static void evicts_oldest_entries(void **state)
{
    (void)state;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(100);
    /* 40-octet entries: "k1: 123456" etc. (2 + 6 + 32). */
    assert_int_equal(decode_hex(dec, "40026b3106313233343536", NULL), RILL_OK);
    assert_int_equal(decode_hex(dec, "40026b3206313233343536", NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 80);
    assert_int_equal(decode_hex(dec, "40026b3306313233343536", NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 80);
    collected c = {0};
    assert_int_equal(decode_hex(dec, "be bf", &c), RILL_OK);
    assert_string_equal(c.name[0], "k3");
    assert_string_equal(c.name[1], "k2");
    assert_int_equal(decode_hex(dec, "c0", NULL), RILL_ERR_COMPRESSION);
    /* An entry bigger than the table empties it (4.4), without error. */
    char big[256] = "4003 6b6b6b 46 "; /* 70 bytes: 3 + 70 + 32 > 100 */
    for (int i = 0; i < 70; i++)
        strcat(big, "61");
    assert_int_equal(decode_hex(dec, big, NULL), RILL_OK);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 0);
    assert_int_equal(decode_hex(dec, "be", NULL), RILL_ERR_COMPRESSION);
    rill_hpack_decoder_free(dec);
}

static void entries_wrapping_the_ring_decode_intact(void **state)
{
    (void)state;
    /* Table of 100: entries of 45 bytes (13 payload) walk around the 100-byte ring. */
    rill_hpack_decoder *dec = rill_hpack_decoder_new(100);
    char hex[64];
    for (int i = 0; i < 40; i++) {
        snprintf(hex, sizeof hex, "4004 6b6b%02x%02x 09 76616c7565%02x%02x%02x%02x", 0x30 + i % 10,
                 0x30 + i / 10, i, i, i, i);
        assert_int_equal(decode_hex(dec, hex, NULL), RILL_OK);
        collected c = {0};
        assert_int_equal(decode_hex(dec, i ? "be bf" : "be", &c), RILL_OK);
        assert_int_equal(c.name[0][2], 0x30 + i % 10);
        assert_int_equal((uint8_t)c.value[0][8], (uint8_t)i);
        if (i) {
            assert_int_equal(c.name[1][2], 0x30 + (i - 1) % 10);
            assert_string_equal(c.value[1], "x"); /* the re-indexed copy of the previous one */
        }
        /* Re-index the newest entry's name under a new value: the name comes from the ring. */
        assert_int_equal(decode_hex(dec, "7e 0178", NULL), RILL_OK);
        memset(&c, 0, sizeof c);
        assert_int_equal(decode_hex(dec, "be", &c), RILL_OK);
        assert_int_equal(c.name[0][2], 0x30 + i % 10);
        assert_string_equal(c.value[0], "x");
    }
    rill_hpack_decoder_free(dec);
}

static int count_cb(const rill_header *h, void *user)
{
    (void)h;
    (*(int *)user)++;
    return 0;
}

static void header_list_limit_keeps_table_in_sync(void **state)
{
    (void)state;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_hpack_decoder_set_max_header_list_size(dec, 100);
    /* :method GET (42), then a: b (34) = 76, then c: 30 bytes (63) -> 139 > 100, then an indexed
     * literal x: y past the limit, then a Huffman literal that must still be validated. */
    int n = 0;
    uint8_t wire[128];
    size_t len = unhex("82 40016101 62 4001631e"
                       "787878787878787878787878787878787878787878787878787878787878"
                       "40017801 79",
                       wire, sizeof wire);
    assert_int_equal(rill_hpack_decode_block(dec, wire, len, count_cb, &n),
                     RILL_ERR_HEADER_LIST_TOO_LARGE);
    assert_int_equal(n, 2);
    /* The table holds a, c and x: the next block resolves all of them. */
    collected c = {0};
    assert_int_equal(decode_hex(dec, "be bf", &c), RILL_OK); /* 34 + 63 octets: within 100 */
    assert_int_equal(decode_hex(dec, "c0", &c), RILL_OK);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.name[0], "x");
    assert_string_equal(c.name[1], "c");
    assert_string_equal(c.name[2], "a");
    /* Bad Huffman past the limit is still a compression error. */
    assert_int_equal(decode_hex(dec, "4001631e787878787878787878787878787878787878787878787878787878"
                                     "787878 01 81 18 82",
                                NULL),
                     RILL_ERR_COMPRESSION);
    rill_hpack_decoder_free(dec);

    dec = rill_hpack_decoder_new(4096);
    rill_hpack_decoder_set_max_header_list_size(dec, 0); /* unlimited */
    n = 0;
    assert_int_equal(rill_hpack_decode_block(dec, wire, len, count_cb, &n), RILL_OK);
    assert_int_equal(n, 4);
    rill_hpack_decoder_free(dec);
}

static int stop_cb(const rill_header *h, void *user)
{
    (void)user;
    (void)h;
    return RILL_ERR_REFUSED;
}

static void callback_error_stops_decoding(void **state)
{
    (void)state;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    uint8_t wire[] = {0x82, 0x84};
    assert_int_equal(rill_hpack_decode_block(dec, wire, 2, stop_cb, NULL), RILL_ERR_REFUSED);
    rill_hpack_decoder_free(dec);
}

static void empty_block_and_zero_table(void **state)
{
    (void)state;
    rill_hpack_decoder *dec = rill_hpack_decoder_new(0);
    int n = 0;
    assert_int_equal(rill_hpack_decode_block(dec, NULL, 0, count_cb, &n), RILL_OK);
    assert_int_equal(decode_hex(dec, "40016101 62 be", NULL), RILL_ERR_COMPRESSION);
    rill_hpack_decoder_free(dec);
    rill_hpack_decoder_free(NULL);
}


/* ---- encoder: Appendix C byte for byte -------------------------------------------------------- */

static void encode_examples(const example *ex, size_t n, uint32_t table_size, uint32_t options)
{
    rill_hpack_encoder *enc = rill_hpack_encoder_new(table_size);
    assert_non_null(enc);
    rill_hpack_encoder_set_flags(enc, options);
    for (size_t i = 0; i < n; i++) {
        rill_header fields[6];
        for (size_t f = 0; f < ex[i].nfields; f++)
            fields[f] = hdr(ex[i].fields[f][0], ex[i].fields[f][1], 0);
        uint8_t want[256], got[1024];
        size_t want_len = unhex(ex[i].wire, want, sizeof want), got_len = 0;
        assert_true(rill_hpack_encode_bound(enc, fields, ex[i].nfields) <= sizeof got);
        assert_int_equal(rill_hpack_encode(enc, fields, ex[i].nfields, got, sizeof got, &got_len), RILL_OK);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        assert_int_equal(rill_hpack_encoder_table_size(enc), ex[i].table_size);
    }
    rill_hpack_encoder_free(enc);
}

static void encode_one(rill_hpack_encoder *enc, rill_header h, const char *want_hex)
{
    uint8_t want[64], got[64];
    size_t want_len = unhex(want_hex, want, sizeof want), got_len;
    assert_int_equal(rill_hpack_encode(enc, &h, 1, got, sizeof got, &got_len), RILL_OK);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

static void encode_c2_field_representations(void **state)
{
    (void)state;
    encode_examples(c2, 1, 4096, RILL_HPACK_ENC_INDEX_ALL | RILL_HPACK_ENC_HUFFMAN_NEVER);
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_encoder_set_flags(enc, RILL_HPACK_ENC_HUFFMAN_NEVER);
    encode_one(enc, hdr(":path", "/sample/path", RILL_HEADER_NO_INDEX), "040c2f73616d706c652f70617468");
    encode_one(enc, hdr("password", "secret", RILL_HEADER_NEVER_INDEX), "100870617373776f726406736563726574");
    encode_one(enc, hdr(":method", "GET", 0), "82");
    assert_int_equal(rill_hpack_encoder_table_size(enc), 0);
    rill_hpack_encoder_free(enc);
}

static void encode_c3_requests(void **state)
{
    (void)state;
    encode_examples(c3, 3, 4096, RILL_HPACK_ENC_INDEX_ALL | RILL_HPACK_ENC_HUFFMAN_NEVER);
}

static void encode_c4_requests_huffman(void **state)
{
    (void)state;
    encode_examples(c4, 3, 4096, RILL_HPACK_ENC_INDEX_ALL); /* Huffman wins on every string */
}

static void encode_c5_responses_with_eviction(void **state)
{
    (void)state;
    encode_examples(c5, 3, 256, RILL_HPACK_ENC_INDEX_ALL | RILL_HPACK_ENC_HUFFMAN_NEVER);
}

static void encode_c6_responses_huffman_with_eviction(void **state)
{
    (void)state;
    /* "307" is as long Huffman-coded as not; the example codes it, so force Huffman. */
    encode_examples(c6, 3, 256, RILL_HPACK_ENC_INDEX_ALL | RILL_HPACK_ENC_HUFFMAN_ALWAYS);
}

/* ---- encoder: behaviour ----------------------------------------------------------------------- */

/* Encodes fields, decodes them with dec and checks they come back equal, flags included. */
static size_t round_trip(rill_hpack_encoder *enc, rill_hpack_decoder *dec, const rill_header *f,
                         size_t n, collected *c)
{
    uint8_t out[4096];
    size_t len;
    assert_true(rill_hpack_encode_bound(enc, f, n) <= sizeof out);
    assert_int_equal(rill_hpack_encode(enc, f, n, out, sizeof out, &len), RILL_OK);
    memset(c, 0, sizeof *c);
    assert_int_equal(rill_hpack_decode_block(dec, out, len, collect_cb, c), RILL_OK);
    assert_int_equal(c->count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(c->name[i]), f[i].name_len);
        assert_memory_equal(c->name[i], f[i].name, f[i].name_len);
        assert_int_equal(strlen(c->value[i]), f[i].value_len);
        assert_memory_equal(c->value[i], f[i].value, f[i].value_len);
    }
    assert_int_equal(rill_hpack_decoder_table_size(dec), rill_hpack_encoder_table_size(enc));
    return len;
}

static void repeated_fields_become_one_byte(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {hdr(":method", "GET", 0), hdr(":authority", "example.org", 0),
                       hdr("user-agent", "rill-test/1.0", 0), hdr("x-custom", "abc", 0)};
    collected c;
    size_t first = round_trip(enc, dec, f, 4, &c);
    size_t second = round_trip(enc, dec, f, 4, &c);
    assert_true(first > 4);
    assert_int_equal(second, 4);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void sensitive_and_one_off_fields_are_not_indexed(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {
        hdr("authorization", "Basic dXNlcjpwYXNz", 0),
        hdr("proxy-authorization", "Basic dXNlcjpwYXNz", 0),
        hdr("cookie", "id=1234", 0),
        hdr("set-cookie", "session=abcdefghijklmnopqrstuvwxyz; Path=/; HttpOnly", 0),
        hdr("x-secret", "s3cr3t", RILL_HEADER_NEVER_INDEX),
        hdr("content-length", "12345", 0),
        hdr("date", "Mon, 21 Oct 2013 20:13:21 GMT", 0),
        hdr("etag", "\"abc\"", 0),
        hdr("last-modified", "Mon, 21 Oct 2013 20:13:21 GMT", 0),
        hdr("if-modified-since", "Mon, 21 Oct 2013 20:13:21 GMT", 0),
        hdr(":path", "/search?q=rill", 0),
        hdr("x-hint", "no", RILL_HEADER_NO_INDEX),
    };
    size_t n = sizeof f / sizeof f[0];
    collected c;
    round_trip(enc, dec, f, n, &c);
    assert_int_equal(rill_hpack_encoder_table_size(enc), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c.flags[i], i < 5 ? RILL_HEADER_NEVER_INDEX : 0);
    /* Never-indexed survives a second pass. (Now that they repeated, the timestamps get indexed.) */
    round_trip(enc, dec, f, n, &c);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c.flags[i], i < 5 ? RILL_HEADER_NEVER_INDEX : 0);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
    enc = rill_hpack_encoder_new(4096);
    dec = rill_hpack_decoder_new(4096);
    /* A long cookie and a plain path are indexed. */
    rill_header g[] = {hdr("cookie", "session=0123456789abcdef0123", 0), hdr(":path", "/a/b.css", 0)};
    round_trip(enc, dec, g, 2, &c);
    assert_int_equal(c.flags[0], 0);
    assert_int_equal(rill_hpack_encoder_table_size(enc), 111);
    /* A field bigger than 3/4 of the table is not indexed; under INDEX_ALL it is. */
    char big[3200];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    rill_header h = hdr("x-big", big, 0);
    uint8_t out[4096];
    size_t len;
    assert_int_equal(rill_hpack_encode(enc, &h, 1, out, sizeof out, &len), RILL_OK);
    assert_int_equal(out[0] & 0xc0, 0x00);
    rill_hpack_encoder_set_flags(enc, RILL_HPACK_ENC_INDEX_ALL);
    assert_int_equal(rill_hpack_encode(enc, &h, 1, out, sizeof out, &len), RILL_OK);
    assert_int_equal(out[0], 0x40);
    assert_int_equal(rill_hpack_encoder_table_size(enc), 111 + 5 + 3199 + 32);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void indexing_adapts_to_repetition(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    collected c;
    /* Unique request ids: indexed at first, then no more once they prove to be one-offs. */
    size_t grown = 0;
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "req-%08d-%d", i * 7919, i);
        rill_header f = hdr("x-request-id", id, 0);
        size_t before = rill_hpack_encoder_table_size(enc);
        round_trip(enc, dec, &f, 1, &c);
        grown += rill_hpack_encoder_table_size(enc) > before;
    }
    assert_true(grown >= 4 && grown <= 8);
    /* A date that repeats (responses within one second) becomes a one-byte reference. */
    rill_header d = hdr("date", "Mon, 21 Oct 2013 20:13:21 GMT", 0);
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = round_trip(enc, dec, &d, 1, &c);
    assert_true(lens[0] > 20);
    assert_int_equal(lens[3], 1);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void static_table_lookup_finds_every_entry(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_encoder_set_flags(enc, RILL_HPACK_ENC_INDEX_ALL);
    for (unsigned i = 1; i <= HPACK_STATIC_COUNT; i++) {
        const hpack_static_entry *se = &hpack_static_table[i];
        rill_header h = {se->name, se->name_len, se->value, se->value_len, RILL_HEADER_NO_INDEX};
        uint8_t out[64];
        size_t len;
        assert_int_equal(rill_hpack_encode(enc, &h, 1, out, sizeof out, &len), RILL_OK);
        assert_int_equal(len, 1);
        assert_int_equal(out[0], 0x80 | i);
        /* Another value: a literal naming the first static entry with this name. */
        h.value = (const uint8_t *)"zz-other";
        h.value_len = 8;
        assert_int_equal(rill_hpack_encode(enc, &h, 1, out, sizeof out, &len), RILL_OK);
        unsigned first = i;
        while (first > 1 && hpack_static_table[first - 1].name_len == se->name_len &&
               memcmp(hpack_static_table[first - 1].name, se->name, se->name_len) == 0)
            first--;
        if (first < 15) {
            assert_int_equal(out[0], first);
        } else {
            assert_int_equal(out[0], 0x0f);
            assert_int_equal(out[1], first - 15);
        }
    }
    /* Names that only look alike are not confused with static ones. */
    rill_header h = hdr("content-lengtx", "1", RILL_HEADER_NO_INDEX);
    uint8_t out[64];
    size_t len;
    assert_int_equal(rill_hpack_encode(enc, &h, 1, out, sizeof out, &len), RILL_OK);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(rill_hpack_encoder_table_size(enc), 0);
    rill_hpack_encoder_free(enc);
}

static void dynamic_names_are_reused_even_when_evicted_by_the_insert(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(80);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(80);
    rill_hpack_encoder_set_flags(enc, RILL_HPACK_ENC_INDEX_ALL | RILL_HPACK_ENC_HUFFMAN_NEVER);
    collected c;
    rill_header a = hdr("x-name", "1", 0); /* 39 octets */
    round_trip(enc, dec, &a, 1, &c);
    /* Same name, new value: the name comes from entry 62, which this insertion evicts (4.4). */
    rill_header b = hdr("x-name", "0123456789abcdef", 0); /* 54 octets: 39 + 54 > 80 */
    uint8_t out[64];
    size_t len;
    assert_int_equal(rill_hpack_encode(enc, &b, 1, out, sizeof out, &len), RILL_OK);
    assert_int_equal(out[0], 0x7e); /* literal with indexing, name index 62 */
    memset(&c, 0, sizeof c);
    assert_int_equal(rill_hpack_decode_block(dec, out, len, collect_cb, &c), RILL_OK);
    assert_string_equal(c.name[0], "x-name");
    assert_string_equal(c.value[0], "0123456789abcdef");
    assert_int_equal(rill_hpack_encoder_table_size(enc), 54);
    assert_int_equal(rill_hpack_decoder_table_size(dec), 54);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void huffman_only_when_shorter(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    /* "www.example.com" is shorter coded (C.4.1); "\x7f{}" is longer coded. */
    encode_one(enc, hdr(":authority", "www.example.com", RILL_HEADER_NO_INDEX), "018cf1e3c2e5f23a6ba0ab90f4ff");
    encode_one(enc, hdr(":authority", "{}", RILL_HEADER_NO_INDEX), "01027b7d");
    rill_hpack_encoder_free(enc);
}

/* The dynamic table's byte ring starts small and doubles only as entries need it, up to the
 * maximum; entries stay intact across growth, wrap-around, eviction and a smaller maximum. A model
 * (the expected entries, newest first) is checked after every step. */
static void check_table(const hpack_table *t, char model[][64], uint32_t n)
{
    assert_int_equal(t->count, n);
    for (uint32_t i = 0; i < n; i++) { /* i = 0 is the newest */
        const hpack_entry *e = hpack_table_by_seq(t, t->first_seq + t->count - 1 - i);
        char got[128];
        hpack_ring_copy(t, e->off, e->name_len + e->value_len, (uint8_t *)got);
        got[e->name_len + e->value_len] = '\0';
        assert_string_equal(got, model[i]);
    }
}

static void table_ring_grows_as_needed(void **state)
{
    (void)state;
    hpack_table t;
    hpack_table_init(&t, 4096);
    /* An empty first entry still gets a ring: its offset must point into memory (fuzz-found). */
    assert_int_equal(hpack_table_insert(&t, NULL, 0, NULL, 0), 0);
    assert_non_null(t.data);
    assert_int_equal(hpack_table_set_max(&t, 0), 0); /* and out again */
    assert_int_equal(hpack_table_set_max(&t, 4096), 0);
    static char model[128][64];
    uint32_t n = 0, size = 0, most_used = 0;
    for (int i = 0; i < 400; i++) {
        char name[16], value[48];
        snprintf(name, sizeof name, "x-n%d", i % 7);
        snprintf(value, sizeof value, "%.*s%d", i % 40, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", i);
        uint32_t esize = (uint32_t)(strlen(name) + strlen(value) + 32);
        assert_int_equal(hpack_table_insert(&t, (const uint8_t *)name, (uint32_t)strlen(name),
                                            (const uint8_t *)value, (uint32_t)strlen(value)), 0);
        memmove(model[1], model[0], sizeof model[0] * 127);
        snprintf(model[0], sizeof model[0], "%s%s", name, value);
        n++, size += esize;
        while (size > 4096) { /* the model evicts the oldest too */
            n--;
            size -= (uint32_t)strlen(model[n]) + 32;
        }
        check_table(&t, model, n);
        assert_true(t.data_cap <= 4096);
        assert_true(t.data_used <= t.data_cap);
        if (t.data_used > most_used)
            most_used = t.data_used;
        if (i == 2)
            assert_int_equal(t.data_cap, 256); /* three small entries: the smallest ring */
    }
    /* Doubled only as far as the bytes needed: a full table of small entries is mostly the
     * 32-octet overheads, so its bytes fit in half the maximum. */
    assert_true(most_used > t.data_cap / 2 - 48 && t.data_cap < 4096);
    /* A smaller maximum evicts and shrinks the ring; a larger one leaves it until needed. */
    assert_int_equal(hpack_table_set_max(&t, 1000), 0);
    while (size > 1000) {
        n--;
        size -= (uint32_t)strlen(model[n]) + 32;
    }
    check_table(&t, model, n);
    assert_int_equal(t.data_cap, 1000);
    assert_int_equal(hpack_table_set_max(&t, 8192), 0);
    assert_int_equal(t.data_cap, 1000);
    check_table(&t, model, n);
    hpack_table_free(&t);
}

static void table_size_updates_follow_peer_setting(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(8192);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {hdr("x-a", "1", 0)};
    collected c;
    round_trip(enc, dec, f, 1, &c);
    /* Down then up before the next block: the minimum, then the final size. */
    rill_hpack_encoder_set_peer_max_table_size(enc, 0);
    rill_hpack_encoder_set_peer_max_table_size(enc, 4096);
    rill_hpack_decoder_set_max_table_size(dec, 0);
    rill_hpack_decoder_set_max_table_size(dec, 4096);
    uint8_t out[64];
    size_t len;
    assert_int_equal(rill_hpack_encode(enc, f, 1, out, sizeof out, &len), RILL_OK);
    assert_memory_equal(out, "\x20\x3f\xe1\x1f", 4);
    memset(&c, 0, sizeof c);
    assert_int_equal(rill_hpack_decode_block(dec, out, len, collect_cb, &c), RILL_OK);
    /* No change, no update. */
    rill_hpack_encoder_set_peer_max_table_size(enc, 4096);
    assert_int_equal(rill_hpack_encode(enc, f, 1, out, sizeof out, &len), RILL_OK);
    assert_memory_equal(out, "\xbe", 1);
    assert_int_equal(len, 1);
    /* Just down: one update. */
    rill_hpack_encoder_set_peer_max_table_size(enc, 1024);
    rill_hpack_decoder_set_max_table_size(dec, 1024);
    assert_int_equal(rill_hpack_encode(enc, f, 1, out, sizeof out, &len), RILL_OK);
    assert_memory_equal(out, "\x3f\xe1\x07\xbe", 4);
    assert_int_equal(rill_hpack_decode_block(dec, out, len, collect_cb, &c), RILL_OK);
    /* Up beyond the local cap: capped at 8192. */
    rill_hpack_encoder_set_peer_max_table_size(enc, 65536);
    assert_int_equal(rill_hpack_encode(enc, f, 1, out, sizeof out, &len), RILL_OK);
    assert_memory_equal(out, "\x3f\xe1\x3f\xbe", 4);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void smaller_local_cap_is_announced_when_the_peer_lowers_its_setting(void **state)
{
    (void)state;
    /* Our cap is 256 from the start; the peer's decoder starts at 4096, then its setting becomes
     * 1024: it now insists on an update, although our table never exceeded 256. */
    rill_hpack_encoder *enc = rill_hpack_encoder_new(256);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {hdr("x-a", "1", 0)};
    collected c;
    round_trip(enc, dec, f, 1, &c);
    rill_hpack_encoder_set_peer_max_table_size(enc, 1024);
    rill_hpack_decoder_set_max_table_size(dec, 1024);
    uint8_t out[64];
    size_t len;
    assert_int_equal(rill_hpack_encode(enc, f, 1, out, sizeof out, &len), RILL_OK);
    assert_memory_equal(out, "\x3f\xe1\x01", 3); /* update to 256 */
    memset(&c, 0, sizeof c);
    assert_int_equal(rill_hpack_decode_block(dec, out, len, collect_cb, &c), RILL_OK);
    assert_int_equal(c.count, 1);
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void small_buffer_leaves_state_unchanged(void **state)
{
    (void)state;
    rill_hpack_encoder *a = rill_hpack_encoder_new(256), *b = rill_hpack_encoder_new(256);
    rill_header f[] = {hdr("x-one", "first value", 0), hdr("x-two", "second value", 0),
                       hdr("x-three", "third value", 0), hdr("x-four", "fourth value", 0)};
    uint8_t out1[256], out2[256];
    size_t len1, len2;
    rill_hpack_encoder_set_peer_max_table_size(a, 128);
    rill_hpack_encoder_set_peer_max_table_size(b, 128);
    assert_int_equal(rill_hpack_encode(a, f, 2, out1, sizeof out1, &len1), RILL_OK);
    assert_int_equal(rill_hpack_encode(b, f, 2, out2, sizeof out2, &len2), RILL_OK);
    /* Too small: refused, and a's state must still match b's. */
    assert_int_equal(rill_hpack_encode(a, f, 4, out1, 10, &len1), RILL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(rill_hpack_encoder_table_size(a), rill_hpack_encoder_table_size(b));
    assert_int_equal(rill_hpack_encode(a, f, 4, out1, sizeof out1, &len1), RILL_OK);
    assert_int_equal(rill_hpack_encode(b, f, 4, out2, sizeof out2, &len2), RILL_OK);
    assert_int_equal(len1, len2);
    assert_memory_equal(out1, out2, len1);
    /* Below the bound but big enough for the actual output: accepted. */
    size_t bound = rill_hpack_encode_bound(a, f, 4);
    assert_int_equal(rill_hpack_encode(b, f, 4, out2, sizeof out2, &len2), RILL_OK);
    assert_true(len2 < bound);
    assert_int_equal(rill_hpack_encode(a, f, 4, out1, len2, &len1), RILL_OK);
    assert_int_equal(len1, len2);
    assert_memory_equal(out1, out2, len1);
    /* Refused attempts in between must not sway later decisions either (indexing statistics). */
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "%d-%d-%d", i * 31337, i, i * 7);
        rill_header g[] = {hdr("x-id", id, 0), hdr("date", id, 0)};
        assert_int_equal(rill_hpack_encode(a, g, 2, out1, 3, &len1), RILL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(rill_hpack_encode(a, g, 2, out1, sizeof out1, &len1), RILL_OK);
        assert_int_equal(rill_hpack_encode(b, g, 2, out2, sizeof out2, &len2), RILL_OK);
        assert_int_equal(len1, len2);
        assert_memory_equal(out1, out2, len1);
    }
    rill_hpack_encoder_free(a);
    rill_hpack_encoder_free(b);
}

static int expect_empty_value(const rill_header *h, void *user)
{
    (*(int *)user)++;
    return h->value_len == 0 ? 0 : RILL_ERR_PROTOCOL;
}

static void empty_values_may_be_null(void **state)
{
    (void)state;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
    rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
    rill_header f[] = {{(const uint8_t *)"x-empty", 7, NULL, 0, 0}, {(const uint8_t *)"x-empty", 7, NULL, 0, 0}};
    uint8_t out[64];
    size_t len;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rill_hpack_encode(enc, f, 2, out, sizeof out, &len), RILL_OK);
        int n = 0;
        assert_int_equal(rill_hpack_decode_block(dec, out, len, expect_empty_value, &n), RILL_OK);
        assert_int_equal(n, 2);
    }
    assert_int_equal(len, 2); /* both indexed by now */
    rill_hpack_encoder_free(enc);
    rill_hpack_decoder_free(dec);
}

static void random_fields_round_trip_with_eviction(void **state)
{
    (void)state;
    static const char *names[] = {":path", "x-a", "x-bb", "cookie", "date", "via", "x-long-name-here"};
    static const uint32_t sizes[] = {0, 64, 100, 256, 4096};
    srand(7);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        rill_hpack_encoder *enc = rill_hpack_encoder_new(sizes[si]);
        rill_hpack_decoder *dec = rill_hpack_decoder_new(sizes[si]);
        for (int block = 0; block < 300; block++) {
            char vals[8][48];
            rill_header f[8];
            size_t n = 1 + (size_t)rand() % 8;
            for (size_t i = 0; i < n; i++) {
                int vl = rand() % 40;
                for (int k = 0; k < vl; k++)
                    vals[i][k] = (char)(rand() % 4 ? 'a' + rand() % 3 : rand() % 255 + 1);
                vals[i][vl] = '\0';
                f[i] = hdr(names[rand() % 7], vals[i], rand() % 10 == 0 ? RILL_HEADER_NEVER_INDEX : 0);
            }
            rill_hpack_encoder_set_flags(enc, (uint32_t)rand() % 3);
            collected c;
            round_trip(enc, dec, f, n, &c);
            for (size_t i = 0; i < n; i++)
                if (f[i].flags)
                    assert_int_equal(c.flags[i], RILL_HEADER_NEVER_INDEX);
        }
        rill_hpack_encoder_free(enc);
        rill_hpack_decoder_free(dec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_c2_field_representations),
        cmocka_unit_test(decode_c3_requests),
        cmocka_unit_test(decode_c4_requests_huffman),
        cmocka_unit_test(decode_c5_responses_with_eviction),
        cmocka_unit_test(decode_c6_responses_huffman_with_eviction),
        cmocka_unit_test(encoder_trim_keeps_the_table),
        cmocka_unit_test(repeated_blocks_stay_exact),
        cmocka_unit_test(replayed_blocks_never_go_stale),
        cmocka_unit_test(named_blocks_replay_only_while_unchanged),
        cmocka_unit_test(decoder_marks_only_checked_fields),
        cmocka_unit_test(rejects_index_zero),
        cmocka_unit_test(rejects_index_past_tables),
        cmocka_unit_test(rejects_truncated_integers),
        cmocka_unit_test(rejects_integers_wider_than_32_bits),
        cmocka_unit_test(rejects_truncated_strings),
        cmocka_unit_test(rejects_bad_huffman),
        cmocka_unit_test(huffman_round_trips_every_byte),
        cmocka_unit_test(huffman_matches_reference_on_random_input),
        cmocka_unit_test(rejects_size_update_after_a_field),
        cmocka_unit_test(rejects_size_update_above_the_setting),
        cmocka_unit_test(smaller_setting_forces_an_update),
        cmocka_unit_test(size_updates_apply_in_order),
        cmocka_unit_test(evicts_oldest_entries),
        cmocka_unit_test(entries_wrapping_the_ring_decode_intact),
        cmocka_unit_test(header_list_limit_keeps_table_in_sync),
        cmocka_unit_test(callback_error_stops_decoding),
        cmocka_unit_test(empty_block_and_zero_table),
        cmocka_unit_test(encode_c2_field_representations),
        cmocka_unit_test(encode_c3_requests),
        cmocka_unit_test(encode_c4_requests_huffman),
        cmocka_unit_test(encode_c5_responses_with_eviction),
        cmocka_unit_test(encode_c6_responses_huffman_with_eviction),
        cmocka_unit_test(repeated_fields_become_one_byte),
        cmocka_unit_test(sensitive_and_one_off_fields_are_not_indexed),
        cmocka_unit_test(indexing_adapts_to_repetition),
        cmocka_unit_test(static_table_lookup_finds_every_entry),
        cmocka_unit_test(dynamic_names_are_reused_even_when_evicted_by_the_insert),
        cmocka_unit_test(huffman_only_when_shorter),
        cmocka_unit_test(table_size_updates_follow_peer_setting),
        cmocka_unit_test(table_ring_grows_as_needed),
        cmocka_unit_test(smaller_local_cap_is_announced_when_the_peer_lowers_its_setting),
        cmocka_unit_test(small_buffer_leaves_state_unchanged),
        cmocka_unit_test(empty_values_may_be_null),
        cmocka_unit_test(encoder_learning_from_a_pool),
        cmocka_unit_test(random_fields_round_trip_with_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
