/* Fuzzes the HTTP/1.1 response parser (client side): memory safety, split-independence and a
 * serialise -> parse round trip of each head. The first byte picks the request method (GET,
 * HEAD, CONNECT, POST: low 2 bits) and the cut schedule (the rest). */
#include "fuzz_h1_run.h"

static void reparse_response(const rill_h1_head *h)
{
    static uint8_t wire[65536];
    size_t n;
    char reason[1024];
    if (h->reason_len >= sizeof reason)
        return;
    memcpy(reason, h->reason, h->reason_len);
    reason[h->reason_len] = '\0';
    if (memchr(reason, '\0', h->reason_len))
        return; /* cannot pass through a C string */
    if (rill_h1_write_response_head(wire, sizeof wire, &n, h->status, reason, h->fields,
                                    h->nfields) != 0)
        abort();
    rill_h1_parser *p = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    rill_h1_event ev;
    size_t used;
    if (!p || rill_h1_parse(p, wire, n, &used, &ev) != 0 || ev.type != RILL_H1_EV_HEAD ||
        used != n)
        abort();
    const rill_h1_head *g = ev.head;
    if (g->status != h->status || g->nfields != h->nfields || g->reason_len != h->reason_len ||
        memcmp(g->reason, h->reason, h->reason_len))
        abort();
    for (size_t i = 0; i < g->nfields; i++)
        if (g->fields[i].name_len != h->fields[i].name_len ||
            g->fields[i].value_len != h->fields[i].value_len ||
            memcmp(g->fields[i].value, h->fields[i].value, h->fields[i].value_len))
            abort();
    rill_h1_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "CONNECT", "POST"};
    if (size < 1)
        return 0;
    const char *method = methods[data[0] & 3];
    check_split_independence(RILL_H1_RESPONSE, method, data + 1, size - 1, data[0] >> 2,
                             reparse_response);
    return 0;
}
