/* Server lifecycle: options, routes, one event loop per worker thread with its own SO_REUSEPORT
 * listeners, signals (SIGTERM/SIGINT: graceful shutdown; SIGHUP: certificate reload). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/api_struct.h"
#include "server/file_cache.h"
#include "server/server_internal.h"

void rill_server_options_init(rill_server_options *o)
{
    *o = (rill_server_options){
        .size = sizeof *o,
        .listen = "127.0.0.1:8080",
        .tls_listen = "127.0.0.1:8443",
        .max_connections = 10000,
        .max_concurrent_streams = 100,
        .initial_window_size = 256 * 1024,
        .connection_window_size = 1024 * 1024,
        .max_header_list_size = 64 * 1024,
        .idle_timeout_ms = 120000,
        .header_timeout_ms = 10000,
        .shutdown_timeout_ms = 10000,
        .enable_connect_protocol = true,
    };
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int rill_server_new(const rill_server_options *o, rill_server **out, char *err, size_t errlen)
{
    rill_server_options defaults;
    rill_server_options_init(&defaults);
    if (o && rill_struct_copy(&defaults, sizeof defaults, o) != RILL_OK) {
        snprintf(err, errlen, "bad options: size %zu (rill_server_options_init sets it)", o->size);
        return RILL_ERR_INVALID_ARG;
    }
    o = &defaults;
    if (!o->listen && !o->tls_listen) {
        snprintf(err, errlen, "nothing to listen on");
        return RILL_ERR_INVALID_ARG;
    }
    if ((o->cert_file == NULL) != (o->key_file == NULL)) {
        snprintf(err, errlen, "--cert and --key go together");
        return RILL_ERR_INVALID_ARG;
    }
    if (o->initial_window_size > RILL_H2_MAX_WINDOW || o->connection_window_size > RILL_H2_MAX_WINDOW ||
        o->connection_window_size < RILL_H2_DEFAULT_WINDOW) {
        snprintf(err, errlen, "window sizes must be between 65535 and 2147483647");
        return RILL_ERR_INVALID_ARG;
    }
    if (o->max_concurrent_streams == 0 || o->max_connections == 0) {
        snprintf(err, errlen, "limits must be at least 1");
        return RILL_ERR_INVALID_ARG;
    }
    rill_server *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ERR_NOMEM;
    s->opt = *o;
    s->listen = dup_or_null(o->listen);
    s->tls_listen = dup_or_null(o->tls_listen);
    s->cert_file = dup_or_null(o->cert_file);
    s->key_file = dup_or_null(o->key_file);
    s->state_dir = dup_or_null(o->state_dir);
    s->access_log_path = dup_or_null(o->access_log);
    s->opt.listen = s->listen;
    s->opt.tls_listen = s->tls_listen;
    s->opt.cert_file = s->cert_file;
    s->opt.key_file = s->key_file;
    s->opt.state_dir = s->state_dir;
    s->opt.access_log = s->access_log_path;
    if (s->opt.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->opt.threads = n > 0 ? (unsigned)n : 1;
    }
    s->access_log_fd = -1;
    *out = s;
    return RILL_OK;
}

void rill_server_free(rill_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].prefix);
        if (s->routes[i].free_user)
            s->routes[i].free_user(s->routes[i].user);
    }
    for (size_t i = 0; i < s->nws_origins; i++)
        free(s->ws_origins[i]);
    free(s->ws_origins);
    while (s->tunnels) {
        struct tunnel *t = s->tunnels;
        s->tunnels = t->next;
        free(t->protocol);
        free(t);
    }
    free(s->routes);
    static_mounts_free(s);
    if (s->tls)
        rill_tls_ctx_free(s->tls);
    if (s->access_log_fd > 2)
        close(s->access_log_fd);
    free(s->listen);
    free(s->tls_listen);
    free(s->cert_file);
    free(s->key_file);
    free(s->state_dir);
    free(s->access_log_path);
    free(s->workers);
    rill_h2_profile_free(s->h2_profile); /* after the loops: their sessions reference it */
    free(s);
}

int rill_server_route(rill_server *s, const char *prefix, rill_server_handler_fn fn, void *user)
{
    return server_add_route(s, prefix, fn, user, false, NULL);
}

int server_add_route(rill_server *s, const char *prefix, rill_server_handler_fn fn, void *user, bool exact,
                     void (*free_user)(void *))
{
    if (!prefix || prefix[0] != '/' || !fn)
        return RILL_ERR_INVALID_ARG;
    struct route *grown = realloc(s->routes, (s->nroutes + 1) * sizeof *grown);
    if (!grown)
        return RILL_ERR_NOMEM;
    s->routes = grown;
    struct route r = {strdup(prefix), strlen(prefix), exact, fn, user, free_user};
    if (!r.prefix)
        return RILL_ERR_NOMEM;
    /* keep longest prefixes first so the first match is the best one */
    size_t i = s->nroutes;
    while (i > 0 && s->routes[i - 1].prefix_len < r.prefix_len) {
        s->routes[i] = s->routes[i - 1];
        i--;
    }
    s->routes[i] = r;
    s->nroutes++;
    return RILL_OK;
}

int rill_server_tunnel(rill_server *s, const char *protocol, rill_server_handler_fn fn, void *user)
{
    if (!protocol || !protocol[0] || !fn)
        return RILL_ERR_INVALID_ARG;
    struct tunnel *t = malloc(sizeof *t);
    if (!t || !(t->protocol = strdup(protocol))) {
        free(t);
        return RILL_ERR_NOMEM;
    }
    t->fn = fn;
    t->user = user;
    t->next = s->tunnels;
    s->tunnels = t;
    return RILL_OK;
}

void rill_server_on_session(rill_server *s, rill_server_session_fn fn, void *user)
{
    s->on_session = fn;
    s->on_session_user = user;
}

int rill_server_on_session_events(rill_server *s, const rill_server_session_events *events, void *user)
{
    rill_server_session_events e = {.size = sizeof e};
    if (events && rill_struct_copy(&e, sizeof e, events) != RILL_OK)
        return RILL_ERR_INVALID_ARG;
    s->events = e;
    s->events_user = user;
    return RILL_OK;
}

void rill_server_on_stream(rill_server *s, rill_server_stream_fn fn, void *user)
{
    s->on_stream = fn;
    s->on_stream_user = user;
}

uint16_t rill_server_port(const rill_server *s, bool tls)
{
    return tls ? s->tls_port : s->port;
}

void rill_server_get_stats(const rill_server *s, rill_server_stats *out)
{
    *out = (rill_server_stats){0};
    for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
        const struct worker_stats *w = &s->workers[i].stats;
        out->connections += atomic_load_explicit(&w->connections, memory_order_relaxed);
        out->streams += atomic_load_explicit(&w->streams, memory_order_relaxed);
        out->requests += atomic_load_explicit(&w->requests, memory_order_relaxed);
    }
}

struct each_worker {
    void (*fn)(void *arg);
    void (*done)(void *arg);
    void *arg;
    _Atomic unsigned remaining;
};

static void each_worker_run(rill_io_loop *loop, void *p)
{
    struct each_worker *e = p;
    (void)loop;
    e->fn(e->arg);
    if (atomic_fetch_sub(&e->remaining, 1) == 1) {
        if (e->done)
            e->done(e->arg);
        free(e);
    }
}

int rill_server_each_worker(rill_server *s, void (*fn)(void *arg), void (*done)(void *arg), void *arg)
{
    struct each_worker *e = malloc(sizeof *e);
    if (!e)
        return RILL_ERR_NOMEM;
    *e = (struct each_worker){fn, done, arg, s->nworkers};
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (rill_io_loop_post(s->workers[i].loop, each_worker_run, e) < 0)
            each_worker_run(NULL, e); /* cannot reach it: count it as done */
    }
    return RILL_OK;
}

struct adoption {
    struct worker *w;
    int fd;
};

static void adopt_on_loop(rill_io_loop *loop, void *arg)
{
    struct adoption *a = arg;
    rill_io_adopt(loop, a->fd, &session_callbacks, a->w); /* closes fd itself on failure */
    free(a);
}

int rill_server_adopt(rill_server *s, int fd)
{
    if (!s->workers || atomic_load(&s->stopping)) {
        close(fd);
        return RILL_ERR_STATE;
    }
    struct adoption *a = malloc(sizeof *a);
    if (!a) {
        close(fd);
        return RILL_ERR_NOMEM;
    }
    /* Spread by descriptor number: no shared counter to contend on. */
    a->w = &s->workers[(unsigned)fd % s->nworkers];
    a->fd = fd;
    int rc = rill_io_loop_post(a->w->loop, adopt_on_loop, a);
    if (rc < 0) {
        close(fd);
        free(a);
    }
    return rc;
}

/* ---- running ----------------------------------------------------------------------------------- */

static void shutdown_loop(rill_io_loop *loop, void *arg)
{
    struct worker *w = arg;
    rill_io_loop_shutdown(loop, w->srv->opt.shutdown_timeout_ms);
}

void rill_server_on_worker_exit(rill_server *s, rill_server_worker_fn fn, void *user)
{
    s->on_worker_exit = fn;
    s->on_worker_exit_user = user;
}

void rill_server_on_worker_start(rill_server *s, rill_server_worker_fn fn, void *user)
{
    s->on_worker_start = fn;
    s->on_worker_start_user = user;
}

void rill_server_on_reload(rill_server *s, rill_server_reload_fn fn, void *user)
{
    s->on_reload = fn;
    s->on_reload_user = user;
}

/* On a worker's thread before its loop runs: the application starts what lives on the loop. */
static void worker_start(struct worker *w)
{
    worker_enter(w);
    if (w->srv->on_worker_start)
        w->srv->on_worker_start(w->loop, w->srv->on_worker_start_user);
}

/* After a worker's loop stopped, on its thread: the application frees what lives on the loop. */
static void worker_exit(struct worker *w)
{
    if (w->srv->on_worker_exit)
        w->srv->on_worker_exit(w->loop, w->srv->on_worker_exit_user);
}

void rill_server_stop(rill_server *s)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&s->stopping, &expected, true))
        return;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].loop)
            rill_io_loop_post(s->workers[i].loop, shutdown_loop, &s->workers[i]);
}

static void on_signal(rill_io_loop *loop, int signo, void *arg)
{
    rill_server *s = arg;
    (void)loop;
    if (signo == SIGHUP) {
        if (s->tls) {
            char err[256] = "";
            const char *cert = s->cert_file ? s->cert_file : s->self_signed_cert;
            const char *key = s->key_file ? s->key_file : s->self_signed_key;
            if (rill_tls_ctx_reload(s->tls, cert, key, err, sizeof err) < 0)
                fprintf(stderr, "rill serve: reload failed, keeping the old certificate: %s\n", err);
            else
                fprintf(stderr, "rill serve: certificate reloaded\n");
        }
        if (s->on_reload)
            s->on_reload(s->on_reload_user);
        return;
    }
    fprintf(stderr, "rill serve: shutting down\n");
    rill_server_stop(s);
}

/* The loop closes its connections, which give their exchanges and buffers back to the slabs. */
static void worker_free_loop(struct worker *w)
{
    worker_pools_stop(w);
    rill_io_loop_free(w->loop);
    w->loop = NULL;
    worker_pools_destroy(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    worker_start(w);
    rill_io_loop_run(w->loop);
    worker_exit(w);
    file_cache_clear();
    access_log_flush_thread();
    h2_pools_clear();
    OPENSSL_thread_stop(); /* the thread's OpenSSL error queue, else leaked at thread exit */
    return NULL;
}

static int setup_tls(rill_server *s, char *err, size_t errlen)
{
    const char *cert = s->cert_file, *key = s->key_file;
    if (!cert) {
        bool created = false;
        int rc = rill_tls_self_signed(s->state_dir, s->self_signed_cert, s->self_signed_key,
                                      sizeof s->self_signed_cert, &created, err, errlen);
        if (rc < 0)
            return rc;
        if (created)
            fprintf(stderr, "rill serve: created a self-signed certificate for localhost: %s\n",
                    s->self_signed_cert);
        cert = s->self_signed_cert;
        key = s->self_signed_key;
    }
    return rill_tls_server_new(cert, key, RILL_TLS_ALPN_H2_HTTP11, &s->tls, err, errlen);
}

static int listen_all(rill_server *s, struct worker *w, char *err, size_t errlen)
{
    struct {
        const char *spec;
        bool tls;
    } listeners[2] = {{s->listen, false}, {s->tls_listen, true}};
    for (int i = 0; i < 2; i++) {
        if (!listeners[i].spec)
            continue;
        struct rill_io_addr addr;
        if (rill_io_addr_parse(listeners[i].spec, &addr, err, errlen) < 0)
            return RILL_ERR_INVALID_ARG;
        uint16_t *port = listeners[i].tls ? &s->tls_port : &s->port;
        if (*port) { /* later workers share the port the first one got (matters for port 0) */
            struct sockaddr_in *in4 = (struct sockaddr_in *)&addr.ss;
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr.ss;
            if (addr.ss.ss_family == AF_INET6)
                in6->sin6_port = htons(*port);
            else
                in4->sin_port = htons(*port);
        }
        rill_io_listener *l;
        if (rill_io_listen(w->loop, &addr, listeners[i].tls ? s->tls : NULL, &session_callbacks, w,
                           &l) < 0) {
            snprintf(err, errlen, "%s", rill_io_loop_last_error(w->loop));
            return RILL_ERR_IO;
        }
        struct rill_io_addr bound = rill_io_listener_addr(l);
        *port = rill_io_addr_port(&bound);
    }
    return RILL_OK;
}

int rill_server_bind(rill_server *s, char *err, size_t errlen)
{
    int rc;
    if (s->workers)
        return RILL_OK;
    if (s->tls_listen && (rc = setup_tls(s, err, errlen)) < 0)
        return rc;
    if (s->access_log_path) {
        s->access_log_fd = strcmp(s->access_log_path, "-") == 0
                               ? STDOUT_FILENO
                               : open(s->access_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->access_log_fd < 0) {
            snprintf(err, errlen, "cannot open access log %s: %s", s->access_log_path, strerror(errno));
            return RILL_ERR_IO;
        }
    }
    if (!s->h2_profile && !(s->h2_profile = h2_profile_new(&s->opt))) {
        snprintf(err, errlen, "invalid HTTP/2 settings (window or frame size out of range)");
        return RILL_ERR_INVALID_ARG;
    }
    s->nworkers = s->opt.threads;
    s->workers = calloc(s->nworkers, sizeof *s->workers);
    if (!s->workers)
        return RILL_ERR_NOMEM;
    rill_io_loop_options lopt;
    rill_io_loop_options_init(&lopt);
    lopt.max_conns = (s->opt.max_connections + s->nworkers - 1) / s->nworkers;
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        worker_pools_init(w);
        if ((rc = rill_io_loop_new(&lopt, &w->loop)) < 0) {
            snprintf(err, errlen, "cannot create an event loop: %s", rill_strerror(rc));
            goto fail;
        }
        rill_io_loop_set_user(w->loop, w); /* session_worker() */
        /* Signals are blocked here before any thread starts, so only worker 0's loop sees them;
         * and before the first listener, so a peer that can connect can also signal (a SIGHUP
         * sent once the port answers must not find the default action, which ends the process). */
        static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
        if (i == 0 && (rc = rill_io_loop_watch_signals(w->loop, signals, 3, on_signal, s)) < 0) {
            snprintf(err, errlen, "cannot watch signals");
            goto fail;
        }
        if ((rc = listen_all(s, w, err, errlen)) < 0)
            goto fail;
    }
    return RILL_OK;
fail:
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].loop)
            worker_free_loop(&s->workers[i]);
    free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
    return rc;
}

int rill_server_run(rill_server *s, char *err, size_t errlen)
{
    int rc = rill_server_bind(s, err, errlen);
    if (rc < 0)
        return rc;
    for (unsigned i = 1; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            rill_server_stop(s);
            s->nworkers = i;
            break;
        }
    }
    worker_start(&s->workers[0]);
    rill_io_loop_run(s->workers[0].loop);
    worker_exit(&s->workers[0]);
    file_cache_clear();
    access_log_flush_thread();
    h2_pools_clear();
    rill_server_stop(s); /* loop 0 ended: make sure the others follow */
    for (unsigned i = 1; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (unsigned i = 0; i < s->nworkers; i++)
        worker_free_loop(&s->workers[i]);
    return RILL_OK;
}
