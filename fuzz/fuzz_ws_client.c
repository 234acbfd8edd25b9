/* Fuzz target: a client-role WebSocket codec fed arbitrary bytes as if from a server, and the
 * permessage-deflate negotiation parsers fed the same bytes as header values. */
#include "fuzz_ws_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ws_run(RILL_WS_CLIENT, data, size);
    /* Header-value parsers on the raw input (bounded: header values are short). */
    size_t n = size < 512 ? size : 512;
    rill_ws_pmd_params agreed;
    char resp[160];
    rill_ws_pmd_policy pol = {0};
    if (size > 0) {
        pol.server_no_context_takeover = data[0] & 1;
        pol.client_no_context_takeover = data[0] & 2;
        pol.server_max_window_bits = (data[0] & 4) ? 10 : 0;
        pol.client_max_window_bits = (data[0] & 8) ? 9 : 0;
    }
    if (rill_ws_pmd_server_negotiate((const char *)data, n, &pol, &agreed, resp, sizeof resp) ==
        0) {
        /* Whatever the server answered, a client that made that offer accepts it. */
        rill_ws_pmd_params back;
        rill_ws_pmd_policy none = {0};
        if (rill_ws_pmd_client_accept(resp, strlen(resp), &none, &back) != 0)
            abort();
    }
    (void)rill_ws_pmd_client_accept((const char *)data, n, &pol, &agreed);
    const char *supported[] = {"chat", "superchat"};
    (void)rill_ws_select_subprotocol((const char *)data, n, supported, 2);
    char acc[RILL_WS_ACCEPT_LEN + 1];
    (void)rill_ws_accept_key((const char *)data, n, acc);
    return 0;
}
