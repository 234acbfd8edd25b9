/* io_echo [--listen HOST:PORT] [--tls STATE_DIR] [--threads N]: an echo server on the I/O runtime,
 * for trying real clients (openssl s_client, curl, python ssl) against the loop and the TLS
 * profile. With --tls, a self-signed localhost certificate is made (or reused) in STATE_DIR and
 * every connection first receives one line "alpn=<protocol|none>\n". Prints "listening on
 * HOST:PORT" when ready. SIGINT/SIGTERM: graceful shutdown (1 s); SIGHUP: reload the certificate. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/io.h"
#include "rill/tls.h"

#define MAX_THREADS 16

static rill_io_loop *loops[MAX_THREADS];
static int nloops = 1;
static rill_tls_ctx *tls;
static char cert[4096], key[4096];

static void on_open(rill_io_conn *conn, const char *alpn)
{
    if (tls) {
        char line[64];
        int n = snprintf(line, sizeof line, "alpn=%s\n", alpn ? alpn : "none");
        rill_io_conn_write(conn, line, (size_t)n);
    }
}

static void on_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    rill_io_conn_write(conn, data, len);
    if (rill_io_conn_queued(conn) > (1u << 20))
        rill_io_conn_pause_read(conn, true); /* the peer reads slower than it writes */
}

static void on_drain(rill_io_conn *conn)
{
    rill_io_conn_pause_read(conn, false);
}

static const struct rill_io_conn_callbacks echo = {.size = sizeof echo, .on_open = on_open, .on_data = on_data, .on_drain = on_drain};

static void shutdown_post(rill_io_loop *loop, void *arg)
{
    (void)arg;
    rill_io_loop_shutdown(loop, 1000);
}

static void on_signal(rill_io_loop *loop, int signo, void *arg)
{
    (void)loop;
    (void)arg;
    if (signo == SIGHUP) {
        char err[512];
        if (tls && rill_tls_ctx_reload(tls, cert, key, err, sizeof err) != RILL_OK)
            fprintf(stderr, "io_echo: reload failed: %s\n", err);
        else if (tls)
            fprintf(stderr, "io_echo: reloaded (generation %u)\n", rill_tls_ctx_generation(tls));
        return;
    }
    for (int i = 0; i < nloops; i++)
        rill_io_loop_post(loops[i], shutdown_post, NULL);
}

static void *run(void *arg)
{
    rill_io_loop_run(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:0", *tls_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_spec = argv[++i];
        else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc)
            tls_dir = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nloops = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: io_echo [--listen HOST:PORT] [--tls STATE_DIR] [--threads N]\n");
            return 2;
        }
    }
    if (nloops < 1 || nloops > MAX_THREADS)
        nloops = 1;
    char err[512];
    struct rill_io_addr addr;
    if (rill_io_addr_parse(listen_spec, &addr, err, sizeof err) != RILL_OK) {
        fprintf(stderr, "io_echo: %s\n", err);
        return 2;
    }
    if (tls_dir && (rill_tls_self_signed(tls_dir, cert, key, sizeof cert, NULL, err, sizeof err) != RILL_OK ||
                    rill_tls_server_new(cert, key, RILL_TLS_ALPN_H2_HTTP11, &tls, err, sizeof err) != RILL_OK)) {
        fprintf(stderr, "io_echo: %s\n", err);
        return 1;
    }
    for (int i = 0; i < nloops; i++) {
        rill_io_listener *l;
        if (rill_io_loop_new(NULL, &loops[i]) != RILL_OK ||
            rill_io_listen(loops[i], &addr, tls, &echo, NULL, &l) != RILL_OK) {
            fprintf(stderr, "io_echo: %s\n", loops[i] ? rill_io_loop_last_error(loops[i]) : "no memory");
            return 1;
        }
        addr = rill_io_listener_addr(l); /* later loops share the (possibly ephemeral) port */
    }
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    rill_io_loop_watch_signals(loops[0], sigs, 3, on_signal, NULL); /* before the threads start */
    char where[80];
    rill_io_addr_format(&addr, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
    pthread_t th[MAX_THREADS];
    for (int i = 1; i < nloops; i++)
        pthread_create(&th[i], NULL, run, loops[i]);
    run(loops[0]);
    for (int i = 1; i < nloops; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < nloops; i++)
        rill_io_loop_free(loops[i]);
    rill_tls_ctx_free(tls);
    return 0;
}
