/* `rill ws URL`: a WebSocket client. Each stdin line is sent as a text message; each message
 * received is printed on its own line. End of input closes the socket (1000) and exits. The
 * WebSocket is opened on a rill_client for the URL's origin (rill_client_websocket): an HTTP/2
 * stream when the server allows, else the HTTP/1.1 Upgrade. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "rill/client.h"
#include "rill/ws.h"

static const char usage[] =
    "usage: rill ws [options] URL\n\n"
    "Open a WebSocket (ws:// or wss://): over an HTTP/2 stream (RFC 8441) when the server\n"
    "advertises extended CONNECT, else over an HTTP/1.1 Upgrade. Sends each line of standard\n"
    "input as a text message and prints each message received.\n\n"
    "  --http1.1            use the HTTP/1.1 Upgrade only\n"
    "  -k, --insecure       wss: do not verify the server certificate\n"
    "  --cacert FILE        wss: trust this CA certificate (PEM)\n"
    "  --origin ORIGIN      send this Origin\n"
    "  --protocol NAME      offer this sub-protocol\n"
    "  --no-deflate         do not offer permessage-deflate\n"
    "  --happy-eyeballs-timeout-ms MS  try the next address (IPv6 and IPv4 in turn) beside one\n"
    "                       that has not answered after MS (default 250; 0: one at a time)\n"
    "  -v, --verbose        say on stderr how the socket was opened (the addresses tried for a\n"
    "                       connection of its own) and closed\n";

struct line {
    char *text; /* NULL: end of input */
    size_t len;
    struct line *next;
};

struct ws_cli {
    rill_io_loop *loop;
    rill_client *session; /* the origin's rill_client, which the WebSocket goes on */
    rill_websocket_client *client;
    bool verbose;
    bool open;
    int exit_code;
    struct line *waiting, **waiting_tail; /* lines read before the socket opened */
};

/* Lines from the reader thread to the loop. Static, not on rill_cmd_ws's stack: the detached
 * reader may still be blocked in getline, and then post, after rill_cmd_ws has returned. */
static struct {
    pthread_mutex_t lock;
    struct line *head, **tail;
    bool loop_gone; /* set once the loop stops taking lines: the reader frees its own */
    struct ws_cli *cli;
} inbox = {.lock = PTHREAD_MUTEX_INITIALIZER, .tail = &inbox.head};

static void free_lines(struct line *l)
{
    while (l) {
        struct line *next = l->next;
        free(l->text);
        free(l);
        l = next;
    }
}

/* Sends a line, or closes at the end of input. Takes ownership of l. */
static void deliver(struct ws_cli *cli, struct line *l)
{
    if (l->text)
        rill_websocket_client_send(cli->client, RILL_WS_OP_TEXT, l->text, l->len);
    else
        rill_websocket_client_close(cli->client, RILL_WS_CLOSE_NORMAL, NULL);
    free(l->text);
    free(l);
}

/* On the loop's thread: takes every line queued so far, in order. */
static void on_lines(rill_io_loop *loop, void *arg)
{
    (void)loop, (void)arg;
    pthread_mutex_lock(&inbox.lock);
    struct line *l = inbox.head;
    inbox.head = NULL;
    inbox.tail = &inbox.head;
    struct ws_cli *cli = inbox.cli;
    pthread_mutex_unlock(&inbox.lock);
    while (l) {
        struct line *next = l->next;
        if (cli->open && cli->client) {
            deliver(cli, l);
        } else { /* keep order: sent once the socket is open */
            l->next = NULL;
            *cli->waiting_tail = l;
            cli->waiting_tail = &l->next;
        }
        l = next;
    }
}

/* From the reader thread: queues l for the loop, or frees it once the loop is gone. */
static void post_line(struct line *l)
{
    pthread_mutex_lock(&inbox.lock);
    if (inbox.loop_gone) {
        pthread_mutex_unlock(&inbox.lock);
        free_lines(l);
        return;
    }
    bool was_empty = inbox.head == NULL;
    *inbox.tail = l;
    inbox.tail = &l->next;
    /* one wake-up per batch; if it cannot be queued the line waits for the next one */
    if (was_empty)
        rill_io_loop_post(inbox.cli->loop, on_lines, NULL);
    pthread_mutex_unlock(&inbox.lock);
}

static void *read_stdin(void *arg)
{
    (void)arg;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, stdin)) >= 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        struct line *l = malloc(sizeof *l);
        if (!l)
            break;
        *l = (struct line){malloc((size_t)n + 1), (size_t)n, NULL};
        if (l->text)
            memcpy(l->text, buf, (size_t)n);
        post_line(l);
    }
    free(buf);
    struct line *end = calloc(1, sizeof *end);
    if (end)
        post_line(end);
    return NULL;
}

static void on_open(rill_websocket_client *c, const char *transport, bool compressed, void *user)
{
    struct ws_cli *cli = user;
    if (cli->verbose)
        fprintf(stderr, "rill ws: connected over %s%s\n",
                strcmp(transport, "h2") == 0 ? "an HTTP/2 stream (RFC 8441)" : "HTTP/1.1",
                compressed ? ", permessage-deflate" : "");
    cli->open = true;
    while (cli->waiting) {
        struct line *l = cli->waiting;
        cli->waiting = l->next;
        deliver(cli, l);
    }
    cli->waiting_tail = &cli->waiting;
}

static void on_message(rill_websocket_client *c, unsigned opcode, const uint8_t *data, size_t len,
                       void *user)
{
    if (opcode == RILL_WS_OP_TEXT) {
        fwrite(data, 1, len, stdout);
    } else {
        printf("[binary %zu bytes]", len);
    }
    putchar('\n');
    fflush(stdout);
}

static void on_trace(rill_websocket_client *c, const char *line, void *user)
{
    (void)c, (void)user;
    fprintf(stderr, "rill ws: %s\n", line);
}

static void on_close(rill_websocket_client *c, unsigned code, const char *why, void *user)
{
    struct ws_cli *cli = user;
    if (why)
        fprintf(stderr, "rill ws: %s\n", why);
    else if (cli->verbose)
        fprintf(stderr, "rill ws: closed (%u)\n", code);
    cli->exit_code = (code == RILL_WS_CLOSE_NORMAL || code == RILL_WS_CLOSE_NO_STATUS) && !why ? 0 : 1;
    /* The client's connections end politely (HTTP/2: GOAWAY), then the loop returns */
    rill_io_loop_shutdown(cli->loop, 1000);
}

int rill_cmd_ws(int argc, char **argv)
{
    rill_websocket_client_options opt;
    rill_websocket_client_options_init(&opt);
    struct ws_cli cli = {.exit_code = 1};
    uint32_t attempt_delay_ms = opt.attempt_delay_ms;
    cli.waiting_tail = &cli.waiting;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--http1.1") == 0) {
            opt.force_http1 = true;
        } else if (strcmp(a, "-k") == 0 || strcmp(a, "--insecure") == 0) {
            opt.insecure = true;
        } else if (strcmp(a, "--no-deflate") == 0) {
            opt.no_deflate = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            cli.verbose = true;
        } else if (strcmp(a, "--happy-eyeballs-timeout-ms") == 0) {
            char *end = NULL;
            const char *v = i + 1 < argc ? argv[++i] : "";
            errno = 0;
            long ms = strtol(v, &end, 10);
            if (!*v || *end || errno || ms < 0 || ms > 600000)
                return cli_usage_error("ws",
                                       "--happy-eyeballs-timeout-ms takes milliseconds from 0 to "
                                       "600000, not '%s'",
                                       v);
            attempt_delay_ms = (uint32_t)ms;
        } else if (strcmp(a, "--cacert") == 0 || strcmp(a, "--origin") == 0 ||
                   strcmp(a, "--protocol") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("ws", "%s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'c')
                opt.ca_file = v;
            else if (a[2] == 'o')
                opt.origin = v;
            else
                opt.subprotocol = v;
        } else if (a[0] == '-') {
            return cli_usage_error("ws", "unknown option '%s'", a);
        } else if (opt.url) {
            return cli_usage_error("ws", "one URL only");
        } else {
            opt.url = a;
        }
    }
    if (!opt.url)
        return cli_usage_error("ws", "a ws:// or wss:// URL is needed");
    if (strncmp(opt.url, "ws://", 5) != 0 && strncmp(opt.url, "wss://", 6) != 0)
        return cli_usage_error("ws", "the URL must start with ws:// or wss://");

    if (rill_io_loop_new(NULL, &cli.loop) < 0) {
        fprintf(stderr, "rill ws: cannot create an event loop\n");
        return 1;
    }
    static const rill_websocket_client_callbacks cb = {
        .size = sizeof cb, .on_open = on_open, .on_message = on_message, .on_close = on_close};
    char err[512] = "";
    /* The origin's client: ws:// -> http:// with HTTP/2 by prior knowledge (a server that turns
     * out to speak only HTTP/1.1 gets the Upgrade), wss:// -> https:// with ALPN */
    bool tls = strncmp(opt.url, "wss://", 6) == 0;
    size_t origin_len = strlen(opt.url) + 3; /* "ws" -> "http": two more bytes, and the NUL */
    char *origin_url = malloc(origin_len);
    if (!origin_url) {
        rill_io_loop_free(cli.loop);
        return 1;
    }
    snprintf(origin_url, origin_len, "%s%s", tls ? "https" : "http", opt.url + (tls ? 3 : 2));
    rill_client_options co;
    rill_client_options_init(&co);
    co.url = origin_url;
    co.insecure = opt.insecure;
    co.ca_file = opt.ca_file;
    co.http1_only = opt.force_http1;
    co.h2_prior_knowledge = !tls && !opt.force_http1;
    co.attempt_delay_ms = attempt_delay_ms; /* the WebSocket's own connection takes the client's */
    int rc = rill_client_new(cli.loop, &co, &cli.session, err, sizeof err);
    free(origin_url);
    if (rc == RILL_OK)
        rc = rill_client_websocket(cli.session, opt.url, &opt, &cb, &cli, &cli.client, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "rill ws: %s\n", err[0] ? err : rill_strerror(rc));
        rill_client_free(cli.session);
        rill_io_loop_free(cli.loop);
        return rc == RILL_ERR_INVALID_ARG ? RILL_EXIT_USAGE : 1;
    }
    if (cli.verbose) /* before the loop runs: nothing has connected yet */
        rill_websocket_client_set_trace(cli.client, on_trace, NULL);
    pthread_mutex_lock(&inbox.lock);
    inbox.cli = &cli;
    pthread_mutex_unlock(&inbox.lock);
    pthread_t reader;
    pthread_create(&reader, NULL, read_stdin, NULL);
    pthread_detach(reader); /* blocked in getline at exit is fine: the process ends */
    rill_io_loop_run(cli.loop);
    rill_websocket_client_free(cli.client);
    cli.client = NULL;
    rill_client_free(cli.session);
    fflush(stdout);
    /* The reader may be blocked in getline until the process ends: it queues no more from here. */
    pthread_mutex_lock(&inbox.lock);
    inbox.loop_gone = true;
    inbox.cli = NULL;
    struct line *unread = inbox.head;
    inbox.head = NULL;
    inbox.tail = &inbox.head;
    pthread_mutex_unlock(&inbox.lock);
    free_lines(unread);
    free_lines(cli.waiting);
    rill_io_loop_free(cli.loop); /* drops a queued on_lines wake-up: it owns nothing */
    return cli.exit_code;
}
