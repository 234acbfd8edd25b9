/* client_ws: a WebSocket and ordinary requests on one rill_client (rill_client_websocket), for the
 * integration tests: a GET, then the WebSocket (each message sent once it is open, echoes
 * counted), a GET while it is open, then the close.
 *
 * usage: client_ws ORIGIN WS_PATH GET_PATH [--h2] [--insecure] [--http1-ws] [--msg TEXT]...
 *   --h2        http://: HTTP/2 by prior knowledge   --insecure  https: no certificate check
 *   --http1-ws  the WebSocket's force_http1           --msg       a text message (default "hi")
 * Prints "get N status=S conn=C proto=P bytes=B", "open TRANSPORT", "message TEXT",
 * "close CODE WHY", then "connections N". Exit status 0 once everything ended, 2 for bad
 * arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/client.h"
#include "rill/ws.h"

#define MAX_MSG 16

static struct {
    rill_io_loop *loop;
    rill_client *client;
    rill_websocket_client *ws;
    const char *get_path;
    const char *msgs[MAX_MSG];
    int nmsg, echoed, gets_left;
    bool closed;
    size_t bytes[2];
    int status[2];
} g;

static void get_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                         void *user)
{
    g.status[(intptr_t)user] = status;
}

static void get_data(rill_client_stream *st, const uint8_t *d, size_t len, void *user)
{
    g.bytes[(intptr_t)user] += len;
}

static void maybe_stop(void)
{
    if (g.closed && g.gets_left == 0)
        rill_io_loop_stop(g.loop);
}

static void get_end(rill_client_stream *st, int err, const char *why, void *user)
{
    int i = (int)(intptr_t)user;
    const char *proto = rill_client_stream_protocol(st);
    printf("get %d err=%d status=%d conn=%u proto=%s bytes=%zu\n", i, err, g.status[i],
           rill_client_stream_connection(st), proto ? proto : "-", g.bytes[i]);
    fflush(stdout);
    g.gets_left--;
    maybe_stop();
}

static const rill_client_callbacks get_cb = {
    .size = sizeof get_cb, .on_response = get_response, .on_data = get_data, .on_end = get_end};

static void start_get(int i)
{
    g.gets_left++;
    if (rill_client_request(g.client, "GET", g.get_path, NULL, 0, NULL, 0, &get_cb,
                            (void *)(intptr_t)i, NULL) < 0)
        exit(1);
}

static void on_open(rill_websocket_client *ws, const char *transport, bool compressed, void *user)
{
    printf("open %s\n", transport);
    fflush(stdout);
    start_get(1); /* beside the open WebSocket */
    for (int i = 0; i < g.nmsg; i++)
        rill_websocket_client_send(ws, RILL_WS_OP_TEXT, g.msgs[i], strlen(g.msgs[i]));
}

static void on_message(rill_websocket_client *ws, unsigned opcode, const uint8_t *data, size_t len,
                       void *user)
{
    printf("message %.*s\n", (int)len, (const char *)data);
    fflush(stdout);
    if (++g.echoed == g.nmsg)
        rill_websocket_client_close(ws, RILL_WS_CLOSE_NORMAL, NULL);
}

static void on_close(rill_websocket_client *ws, unsigned code, const char *why, void *user)
{
    printf("close %u %s\n", code, why ? why : "-");
    fflush(stdout);
    g.closed = true;
    maybe_stop();
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = argv[1];
    g.get_path = argv[3];
    rill_websocket_client_options wo;
    rill_websocket_client_options_init(&wo);
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--h2"))
            o.h2_prior_knowledge = true;
        else if (!strcmp(argv[i], "--insecure"))
            o.insecure = true;
        else if (!strcmp(argv[i], "--http1-ws"))
            wo.force_http1 = true;
        else if (!strcmp(argv[i], "--msg") && i + 1 < argc && g.nmsg < MAX_MSG)
            g.msgs[g.nmsg++] = argv[++i];
        else
            return 2;
    }
    if (!g.nmsg)
        g.msgs[g.nmsg++] = "hi";
    char err[256] = "";
    if (rill_io_loop_new(NULL, &g.loop) < 0 ||
        rill_client_new(g.loop, &o, &g.client, err, sizeof err) < 0) {
        fprintf(stderr, "cannot start: %s\n", err);
        return 2;
    }
    start_get(0);
    static const rill_websocket_client_callbacks cb = {
        .size = sizeof cb, .on_open = on_open, .on_message = on_message, .on_close = on_close};
    if (rill_client_websocket(g.client, argv[2], &wo, &cb, NULL, &g.ws, err, sizeof err) < 0) {
        fprintf(stderr, "rill_client_websocket: %s\n", err);
        return 2;
    }
    rill_io_loop_run(g.loop);
    printf("connections %u\n", rill_client_connections(g.client));
    rill_websocket_client_free(g.ws);
    rill_client_free(g.client);
    rill_io_loop_free(g.loop);
    return 0;
}
