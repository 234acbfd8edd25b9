/* Fuzzes the HTTP/1.1 request parser (server side): memory safety, split-independence, the
 * upgrade helpers on every parsed head, and a serialise -> parse round trip of each head.
 * The first input byte picks the cut schedule of the split runs (fuzz_h1_run.h). */
#include "fuzz_h1_run.h"

static void reparse_request(const rill_h1_head *h)
{
    if (h->version_minor < 1)
        return; /* we always write HTTP/1.1, which needs what 1.0 did not */
    static uint8_t wire[65536];
    size_t n;
    if (rill_h1_write_request_head(wire, sizeof wire, &n, h->method, h->method_len, h->target,
                                   h->target_len, h->fields, h->nfields) != 0)
        abort(); /* everything the parser accepts must be writable */
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_REQUEST, NULL);
    rill_h1_event ev;
    size_t used;
    if (!p || rill_h1_parse(p, wire, n, &used, &ev) != 0 || ev.type != RILL_H1_EV_HEAD ||
        used != n)
        abort();
    const rill_h1_head *g = ev.head;
    if (g->method_len != h->method_len || memcmp(g->method, h->method, h->method_len) ||
        g->target_len != h->target_len || memcmp(g->target, h->target, h->target_len) ||
        g->nfields != h->nfields || g->body != h->body || g->content_length != h->content_length)
        abort();
    for (size_t i = 0; i < g->nfields; i++)
        if (g->fields[i].name_len != h->fields[i].name_len ||
            g->fields[i].value_len != h->fields[i].value_len ||
            memcmp(g->fields[i].value, h->fields[i].value, h->fields[i].value_len))
            abort();
    rill_h1_parser_free(p);
}

static void on_head(const rill_h1_head *h)
{
    uint8_t settings[4096];
    size_t n;
    int r = rill_h1_h2c_upgrade(h, settings, sizeof settings, &n);
    if (r == 1 && n % 6 != 0)
        abort();
    rill_h1_ws_upgrade ws;
    if (rill_h1_websocket_upgrade(h, &ws) == 1) {
        char accept[29];
        if (ws.key_len != 24 || rill_h1_websocket_accept(ws.key, ws.key_len, accept) != 0 ||
            strlen(accept) != 28)
            abort();
    }
    (void)rill_h1_head_has_token(h, "connection", "close");
    reparse_request(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    check_split_independence(RILL_H1_REQUEST, NULL, data + 1, size - 1, data[0], on_head);
    (void)rill_h1_preface_check(data + 1, size - 1);
    return 0;
}
