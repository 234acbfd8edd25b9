/* `rill hpack`: hpack-test-case stories through our HPACK codec, like nghttp2's inflatehd and
 * deflatehd. `inflate` decodes encoded stories and checks every case against its header list;
 * `deflate` encodes a raw-data story into a story that any decoder can check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "common/http_chars.h"
#include "rill/hpack.h"

static const char usage[] =
    "usage: rill hpack inflate STORY.json...\n"
    "       rill hpack deflate [--table-size N] [--index-all] [--no-huffman] RAW.json\n\n"
    "inflate  decode hpack-test-case stories (the cases of a file share one decoder) and check\n"
    "         each case's \"wire\" against its \"headers\"; exit 1 at the first mismatch\n"
    "deflate  encode a raw-data story; print the story JSON (seqno, wire, headers) to stdout\n\n"
    "  --table-size N   dynamic table size for deflate (default 4096)\n"
    "  --index-all      index every field (no indexing policy)\n"
    "  --no-huffman     send every string without Huffman coding\n";

/* Reads a whole file (NUL-terminated); NULL with errno set on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (len < cap - 1)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        free(buf);
        errno = failed ? EIO : ENOMEM;
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static cJSON *load_story(const char *path)
{
    char *text = read_file(path);
    if (!text) {
        fprintf(stderr, "rill hpack: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "cases"))) {
        fprintf(stderr, "rill hpack: %s: not a story (JSON with a \"cases\" array)\n", path);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Decodes a hex string into a fresh buffer; NULL if malformed. */
static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2)
        return NULL;
    uint8_t *out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = http_hex_value((uint8_t)hex[2 * i]), lo = http_hex_value((uint8_t)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

/* ---- inflate ---------------------------------------------------------------------------------- */

struct check {
    const cJSON *expected; /* the case's "headers" array */
    const cJSON *next;     /* next expected field */
    size_t seen;
    char why[256];
};

static int check_field(const rill_header *h, void *user)
{
    struct check *c = user;
    const cJSON *want = c->next;
    const cJSON *kv = want ? want->child : NULL;
    c->seen++;
    if (!kv || !cJSON_IsString(kv) || !kv->string) {
        snprintf(c->why, sizeof c->why, "decoded an extra field %zu (%.*s)", c->seen,
                 (int)(h->name_len > 60 ? 60 : h->name_len), (const char *)h->name);
        return RILL_ERR_PROTOCOL;
    }
    size_t nl = strlen(kv->string), vl = strlen(kv->valuestring);
    if (nl != h->name_len || memcmp(kv->string, h->name, nl) != 0 || vl != h->value_len ||
        memcmp(kv->valuestring, h->value, vl) != 0) {
        snprintf(c->why, sizeof c->why, "field %zu: got \"%.*s: %.*s\", want \"%.60s: %.60s\"", c->seen,
                 (int)(h->name_len > 60 ? 60 : h->name_len), (const char *)h->name,
                 (int)(h->value_len > 60 ? 60 : h->value_len), (const char *)h->value, kv->string,
                 kv->valuestring);
        return RILL_ERR_PROTOCOL;
    }
    c->next = want->next;
    return 0;
}

/* Returns 0 if every case of the story decodes to its header list. */
static int inflate_story(const char *path, size_t *cases_out, size_t *fields_out)
{
    cJSON *root = load_story(path);
    if (!root)
        return 1;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    rill_hpack_decoder *dec = NULL;
    int status = 0;
    size_t ncases = 0, nfields = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cases)
    {
        const cJSON *seqno = cJSON_GetObjectItemCaseSensitive(cs, "seqno");
        const cJSON *wire = cJSON_GetObjectItemCaseSensitive(cs, "wire");
        const cJSON *headers = cJSON_GetObjectItemCaseSensitive(cs, "headers");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(cs, "header_table_size");
        long seq = cJSON_IsNumber(seqno) ? (long)seqno->valuedouble : (long)ncases;
        if (!cJSON_IsString(wire) || !cJSON_IsArray(headers)) {
            fprintf(stderr, "rill hpack inflate: %s seqno %ld: case without \"wire\" or \"headers\"\n",
                    path, seq);
            status = 1;
            break;
        }
        /* header_table_size: our setting, acknowledged just before this case (absent or null:
         * unchanged, 4096 at the start). */
        bool has_size = cJSON_IsNumber(size) && size->valuedouble >= 0 && size->valuedouble <= UINT32_MAX;
        if (!dec) {
            dec = rill_hpack_decoder_new(has_size ? (uint32_t)size->valuedouble : RILL_HPACK_DEFAULT_TABLE_SIZE);
            if (!dec) {
                fprintf(stderr, "rill hpack inflate: out of memory\n");
                status = 1;
                break;
            }
        } else if (has_size) {
            rill_hpack_decoder_set_max_table_size(dec, (uint32_t)size->valuedouble);
        }
        size_t len = 0;
        uint8_t *block = unhex(wire->valuestring, &len);
        if (!block) {
            fprintf(stderr, "rill hpack inflate: %s seqno %ld: \"wire\" is not hex\n", path, seq);
            status = 1;
            break;
        }
        struct check c = {.expected = headers, .next = headers->child};
        int rc = rill_hpack_decode_block(dec, block, len, check_field, &c);
        free(block);
        if (rc == RILL_OK && c.next) {
            snprintf(c.why, sizeof c.why, "decoded %zu fields, want %d", c.seen, cJSON_GetArraySize(headers));
            rc = RILL_ERR_PROTOCOL;
        }
        if (rc != RILL_OK) {
            fprintf(stderr, "rill hpack inflate: %s seqno %ld: %s\n", path, seq,
                    c.why[0] ? c.why : rill_strerror(rc));
            status = 1;
            break;
        }
        ncases++;
        nfields += c.seen;
    }
    rill_hpack_decoder_free(dec);
    cJSON_Delete(root);
    *cases_out = ncases;
    *fields_out = nfields;
    return status;
}

static int cmd_inflate(int argc, char **argv)
{
    int first = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            first = i + 1;
            break;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("hpack", "unknown option '%s' for inflate", argv[i]);
    }
    if (first >= argc)
        return cli_usage_error("hpack", "inflate needs at least one STORY.json");
    size_t stories = 0, cases = 0, fields = 0;
    for (int i = first; i < argc; i++) {
        size_t c = 0, f = 0;
        if (inflate_story(argv[i], &c, &f) != 0)
            return 1;
        printf("%s: %zu cases, %zu fields OK\n", argv[i], c, f);
        stories++;
        cases += c;
        fields += f;
    }
    printf("inflate: %zu stories, %zu cases, %zu fields OK\n", stories, cases, fields);
    return 0;
}

/* ---- deflate ---------------------------------------------------------------------------------- */

static int cmd_deflate(int argc, char **argv)
{
    uint32_t table_size = RILL_HPACK_DEFAULT_TABLE_SIZE, options = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--table-size") == 0) {
            char *end;
            if (i + 1 >= argc)
                return cli_usage_error("hpack", "--table-size needs a number");
            errno = 0;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || v > UINT32_MAX || argv[i][0] == '-')
                return cli_usage_error("hpack", "bad --table-size '%s'", argv[i]);
            table_size = (uint32_t)v;
        } else if (strcmp(argv[i], "--index-all") == 0) {
            options |= RILL_HPACK_ENC_INDEX_ALL;
        } else if (strcmp(argv[i], "--no-huffman") == 0) {
            options |= RILL_HPACK_ENC_HUFFMAN_NEVER;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("hpack", "unknown option '%s' for deflate", argv[i]);
        } else if (path) {
            return cli_usage_error("hpack", "deflate takes one RAW.json");
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return cli_usage_error("hpack", "deflate needs a RAW.json");
    cJSON *root = load_story(path);
    if (!root)
        return 1;
    rill_hpack_encoder *enc = rill_hpack_encoder_new(table_size);
    if (enc) {
        rill_hpack_encoder_set_flags(enc, options);
        /* The story's header_table_size is the decoder's setting, acknowledged before case 0: a
         * size other than the default 4096 is announced at the start of the first block. */
        rill_hpack_encoder_set_peer_max_table_size(enc, table_size);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *out_cases = cJSON_AddArrayToObject(out, "cases");
    cJSON_AddStringToObject(out, "description", "rill HPACK encoder, default indexing policy");
    rill_header *fields = NULL;
    uint8_t *wire = NULL;
    char *hex = NULL;
    int status = 0, seqno = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(root, "cases"))
    {
        const cJSON *headers = cJSON_GetObjectItemCaseSensitive(cs, "headers");
        int n = cJSON_GetArraySize(headers);
        rill_header *more = realloc(fields, (size_t)(n ? n : 1) * sizeof *fields);
        if (!more || !enc || !out_cases) {
            free(more);
            fields = NULL;
            fprintf(stderr, "rill hpack deflate: out of memory\n");
            status = 1;
            break;
        }
        fields = more;
        int k = 0;
        const cJSON *h;
        cJSON_ArrayForEach(h, headers)
        {
            const cJSON *kv = h->child;
            if (!kv || !cJSON_IsString(kv) || !kv->string) {
                fprintf(stderr, "rill hpack deflate: %s case %d: a header is not {\"name\": \"value\"}\n",
                        path, seqno);
                status = 1;
                break;
            }
            fields[k++] = (rill_header){(const uint8_t *)kv->string, strlen(kv->string),
                                        (const uint8_t *)kv->valuestring, strlen(kv->valuestring), 0};
        }
        if (status)
            break;
        size_t cap = rill_hpack_encode_bound(enc, fields, (size_t)k), len = 0;
        free(wire);
        free(hex);
        wire = NULL;
        hex = NULL;
        if (cap < SIZE_MAX / 4) { /* SIZE_MAX: a string over 1 GiB */
            wire = malloc(cap);
            hex = malloc(2 * cap + 1);
        }
        if (!wire || !hex || rill_hpack_encode(enc, fields, (size_t)k, wire, cap, &len) != RILL_OK) {
            fprintf(stderr, "rill hpack deflate: %s case %d: encoding failed\n", path, seqno);
            status = 1;
            break;
        }
        for (size_t i = 0; i < len; i++)
            sprintf(hex + 2 * i, "%02x", wire[i]);
        hex[2 * len] = '\0';
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(out_cases, c);
        cJSON_AddNumberToObject(c, "seqno", seqno);
        if (seqno == 0)
            cJSON_AddNumberToObject(c, "header_table_size", table_size);
        cJSON_AddStringToObject(c, "wire", hex);
        cJSON_AddItemToObject(c, "headers", cJSON_Duplicate(headers, 1));
        seqno++;
    }
    if (status == 0) {
        char *text = cJSON_Print(out);
        if (!text) {
            fprintf(stderr, "rill hpack deflate: out of memory\n");
            status = 1;
        } else {
            fputs(text, stdout);
            fputc('\n', stdout);
            free(text);
        }
    }
    free(fields);
    free(wire);
    free(hex);
    cJSON_Delete(out);
    cJSON_Delete(root);
    rill_hpack_encoder_free(enc);
    return status;
}

int rill_cmd_hpack(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("hpack", "missing subcommand (inflate or deflate)");
    if (cli_is_help(argv[1])) {
        fputs(usage, stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
    if (strcmp(argv[1], "inflate") == 0)
        return cmd_inflate(argc - 1, argv + 1);
    if (strcmp(argv[1], "deflate") == 0)
        return cmd_deflate(argc - 1, argv + 1);
    return cli_usage_error("hpack", "unknown subcommand '%s' (want inflate or deflate)", argv[1]);
}
