/* HPACK speed and memory, rill against libnghttp2, in the same run.
 *
 * Every hpack-test-case raw-data story is encoded (and, pre-encoded, decoded) many times, one fresh
 * context per story per round, as a connection would. Prints headers/s for both libraries, the
 * ratio, total wire bytes of both encoders, and the heap held by live contexts after a story.
 *
 * usage: bench_hpack [HPACK_TEST_CASE_DIR] [ROUNDS] [decode|encode]  (the last for profiling one side)
 * (default dir: $RILL_SHARED/hpack-test-case, else ../shared/hpack-test-case) */
#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <nghttp2/nghttp2.h>

#include "rill/hpack.h"

struct block {
    rill_header *fields;
    nghttp2_nv *nva;
    size_t count;
    uint8_t *wire; /* our encoding, input of both decoders */
    size_t wire_len;
};

struct story {
    cJSON *json;
    struct block *blocks;
    size_t count;
};

static struct story stories[64];
static size_t nstories, total_headers;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load(const char *dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/raw-data", dir);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (strstr(e->d_name, ".json"))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/raw-data/%s", dir, names[i]);
        free(names[i]);
        char *text = slurp(path);
        cJSON *json = text ? cJSON_Parse(text) : NULL;
        free(text);
        const cJSON *cases = cJSON_GetObjectItemCaseSensitive(json, "cases");
        if (!cJSON_IsArray(cases))
            return -1;
        struct story *s = &stories[nstories++];
        s->json = json;
        s->count = (size_t)cJSON_GetArraySize(cases);
        s->blocks = calloc(s->count, sizeof *s->blocks);
        size_t b = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cases)
        {
            const cJSON *headers = cJSON_GetObjectItemCaseSensitive(c, "headers");
            struct block *blk = &s->blocks[b++];
            size_t k = (size_t)cJSON_GetArraySize(headers);
            blk->fields = calloc(k ? k : 1, sizeof *blk->fields);
            blk->nva = calloc(k ? k : 1, sizeof *blk->nva);
            const cJSON *h;
            cJSON_ArrayForEach(h, headers)
            {
                const cJSON *kv = h->child;
                size_t nl = strlen(kv->string), vl = strlen(kv->valuestring);
                blk->fields[blk->count] = (rill_header){(const uint8_t *)kv->string, nl,
                                                        (const uint8_t *)kv->valuestring, vl, 0};
                blk->nva[blk->count] = (nghttp2_nv){(uint8_t *)kv->string, (uint8_t *)kv->valuestring,
                                                    nl, vl, NGHTTP2_NV_FLAG_NONE};
                blk->count++;
            }
            total_headers += blk->count;
        }
    }
    return nstories ? 0 : -1;
}

static uint8_t outbuf[1 << 20];

/* ---- encoders --------------------------------------------------------------------------------- */

static size_t rill_encode_all(int keep_wire)
{
    size_t total = 0;
    for (size_t i = 0; i < nstories; i++) {
        rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
        for (size_t b = 0; b < stories[i].count; b++) {
            struct block *blk = &stories[i].blocks[b];
            size_t len;
            if (rill_hpack_encode(enc, blk->fields, blk->count, outbuf, sizeof outbuf, &len) != RILL_OK)
                abort();
            total += len;
            if (keep_wire) {
                blk->wire = malloc(len ? len : 1);
                memcpy(blk->wire, outbuf, len);
                blk->wire_len = len;
            }
        }
        rill_hpack_encoder_free(enc);
    }
    return total;
}

static size_t nghttp2_encode_all(void)
{
    size_t total = 0;
    for (size_t i = 0; i < nstories; i++) {
        nghttp2_hd_deflater *def;
        if (nghttp2_hd_deflate_new(&def, 4096) != 0)
            abort();
        for (size_t b = 0; b < stories[i].count; b++) {
            struct block *blk = &stories[i].blocks[b];
            ssize_t len = nghttp2_hd_deflate_hd(def, outbuf, sizeof outbuf, blk->nva, blk->count);
            if (len < 0)
                abort();
            total += (size_t)len;
        }
        nghttp2_hd_deflate_del(def);
    }
    return total;
}

/* ---- decoders --------------------------------------------------------------------------------- */

static size_t sink;

static int count_field(const rill_header *h, void *user)
{
    (void)user;
    sink += h->name_len + h->value_len;
    return 0;
}

static void rill_decode_story(rill_hpack_decoder *dec, const struct story *s)
{
    for (size_t b = 0; b < s->count; b++)
        if (rill_hpack_decode_block(dec, s->blocks[b].wire, s->blocks[b].wire_len, count_field, NULL) != RILL_OK)
            abort();
}

static void rill_decode_all(void)
{
    for (size_t i = 0; i < nstories; i++) {
        rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
        rill_decode_story(dec, &stories[i]);
        rill_hpack_decoder_free(dec);
    }
}

static void nghttp2_decode_story(nghttp2_hd_inflater *inf, const struct story *s)
{
    for (size_t b = 0; b < s->count; b++) {
        const uint8_t *in = s->blocks[b].wire;
        size_t left = s->blocks[b].wire_len;
        for (;;) {
            nghttp2_nv nv;
            int flags = 0;
            ssize_t rv = nghttp2_hd_inflate_hd2(inf, &nv, &flags, in, left, 1);
            if (rv < 0)
                abort();
            in += rv;
            left -= (size_t)rv;
            if (flags & NGHTTP2_HD_INFLATE_EMIT)
                sink += nv.namelen + nv.valuelen;
            if (flags & NGHTTP2_HD_INFLATE_FINAL) {
                nghttp2_hd_inflate_end_headers(inf);
                break;
            }
            if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && left == 0)
                break;
        }
    }
}

static void nghttp2_decode_all(void)
{
    for (size_t i = 0; i < nstories; i++) {
        nghttp2_hd_inflater *inf;
        if (nghttp2_hd_inflate_new(&inf) != 0)
            abort();
        nghttp2_decode_story(inf, &stories[i]);
        nghttp2_hd_inflate_del(inf);
    }
}

/* ---- measuring -------------------------------------------------------------------------------- */

/* Headers/s of both, rounds interleaved so that load from other processes hits both alike. */
static void rates(void (*ours)(void), void (*theirs)(void), int rounds, double *r_ours, double *r_theirs)
{
    ours(); /* warm up */
    theirs();
    double t_ours = 0, t_theirs = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        ours();
        double t1 = now();
        theirs();
        t_theirs += now() - t1;
        t_ours += t1 - t0;
    }
    *r_ours = (double)total_headers * rounds / t_ours;
    *r_theirs = (double)total_headers * rounds / t_theirs;
}

static void rill_encode_round(void)
{
    rill_encode_all(0);
}

static void nghttp2_encode_round(void)
{
    nghttp2_encode_all();
}

/* Heap held per context once each story has gone through a live context. */
static size_t held_per_context(int use_rill)
{
    void *ctx[64];
    size_t before = mallinfo2().uordblks;
    for (size_t i = 0; i < nstories; i++) {
        if (use_rill) {
            rill_hpack_decoder *dec = rill_hpack_decoder_new(4096);
            rill_decode_story(dec, &stories[i]);
            ctx[i] = dec;
        } else {
            nghttp2_hd_inflater *inf;
            nghttp2_hd_inflate_new(&inf);
            nghttp2_decode_story(inf, &stories[i]);
            ctx[i] = inf;
        }
    }
    size_t after = mallinfo2().uordblks;
    for (size_t i = 0; i < nstories; i++) {
        if (use_rill)
            rill_hpack_decoder_free(ctx[i]);
        else
            nghttp2_hd_inflate_del(ctx[i]);
    }
    return (after - before) / nstories;
}

/* Heap held per encoder once each story has gone through a live encoder. */
static size_t held_per_encoder(int use_rill)
{
    void *ctx[64];
    size_t before = mallinfo2().uordblks;
    for (size_t i = 0; i < nstories; i++) {
        if (use_rill) {
            rill_hpack_encoder *enc = rill_hpack_encoder_new(4096);
            for (size_t b = 0; b < stories[i].count; b++) {
                size_t len;
                rill_hpack_encode(enc, stories[i].blocks[b].fields, stories[i].blocks[b].count, outbuf,
                                  sizeof outbuf, &len);
            }
            ctx[i] = enc;
        } else {
            nghttp2_hd_deflater *def;
            nghttp2_hd_deflate_new(&def, 4096);
            for (size_t b = 0; b < stories[i].count; b++)
                nghttp2_hd_deflate_hd(def, outbuf, sizeof outbuf, stories[i].blocks[b].nva,
                                      stories[i].blocks[b].count);
            ctx[i] = def;
        }
    }
    size_t after = mallinfo2().uordblks;
    for (size_t i = 0; i < nstories; i++) {
        if (use_rill)
            rill_hpack_encoder_free(ctx[i]);
        else
            nghttp2_hd_deflate_del(ctx[i]);
    }
    return (after - before) / nstories;
}

int main(int argc, char **argv)
{
    char dir[4096];
    const char *shared = getenv("RILL_SHARED");
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else
        snprintf(dir, sizeof dir, "%s/hpack-test-case", shared ? shared : "../shared");
    int rounds = argc > 2 ? atoi(argv[2]) : 100;
    if (load(dir) != 0) {
        fprintf(stderr, "bench_hpack: cannot load stories from %s/raw-data\n", dir);
        return 1;
    }
    size_t ours_wire = rill_encode_all(1), theirs_wire = nghttp2_encode_all();
    printf("hpack: %zu stories, %zu headers per round, %d rounds\n", nstories, total_headers, rounds);

    const char *only = argc > 3 ? argv[3] : "";
    double de_r = 0, de_n = 1, en_r = 0, en_n = 1;
    if (strcmp(only, "encode") != 0)
        rates(rill_decode_all, nghttp2_decode_all, rounds, &de_r, &de_n);
    if (strcmp(only, "decode") != 0)
        rates(rill_encode_round, nghttp2_encode_round, rounds, &en_r, &en_n);
    printf("%-8s %16s %16s %8s\n", "", "rill", "nghttp2", "ratio");
    printf("%-8s %13.2f M/s %13.2f M/s %7.2fx   headers/s (same input: rill's encoding)\n", "decode",
           de_r / 1e6, de_n / 1e6, de_r / de_n);
    printf("%-8s %13.2f M/s %13.2f M/s %7.2fx   headers/s\n", "encode", en_r / 1e6, en_n / 1e6, en_r / en_n);
    printf("%-8s %16zu %16zu %7.3fx   total wire bytes (smaller is better)\n", "wire", ours_wire,
           theirs_wire, (double)ours_wire / (double)theirs_wire);
    printf("%-8s %16zu %16zu %8s   heap bytes per live decoder after a story\n", "memory",
           held_per_context(1), held_per_context(0), "");
    printf("%-8s %16zu %16zu %8s   heap bytes per live encoder after a story\n", "memory",
           held_per_encoder(1), held_per_encoder(0), "");
    if (sink == 42)
        puts("");
    for (size_t i = 0; i < nstories; i++) {
        for (size_t b = 0; b < stories[i].count; b++) {
            free(stories[i].blocks[b].fields);
            free(stories[i].blocks[b].nva);
            free(stories[i].blocks[b].wire);
        }
        free(stories[i].blocks);
        cJSON_Delete(stories[i].json);
    }
    return 0;
}
