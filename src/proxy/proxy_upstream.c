/* A tunnel's backend connection: the backend's name resolved and its addresses raced as the
 * backend clients do (client_dns.c on the loop, client_race.c's Happy Eyeballs: nothing blocks
 * the worker, every address is tried), the Upgrade request head, the answer parsed (1xx other
 * than 101 skipped; 101 switches to raw bytes; anything else is a refusal with a body), then the
 * tunnel's bytes both ways on rill/io.h directly. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_dns.h"
#include "client/client_race.h"
#include "proxy/proxy_internal.h"
#include "proxy/proxy_upstream.h"
#include "rill/tls.h"

/* Output above this many queued bytes says "wait" (as the server's exchanges do). */
#define UPSTREAM_HIGH_WATER (256u * 1024)

/* What connecting needs, freed once the race is over (an open tunnel does not keep it). */
struct upstream_setup {
    struct client_dns *dns;
    struct client_race *race;
    bool unresolved;     /* the name gave no address: why says so */
    char host[256];      /* without brackets or port: what is resolved, SNI */
    char authority[300]; /* host:port, in messages */
    char why[400];
    size_t head_len;
    uint8_t head[];      /* the request head, written once connected */
};

struct upstream {
    rill_io_conn *io;             /* NULL until the race is won */
    struct upstream_setup *setup; /* until the race is over */
    const struct upstream_events *ev;
    void *user;
    rill_h1_parser *parser; /* until the answer's end (a 101's head, or a refusal's body) */
    bool switched;          /* after the 101: bytes are the tunnel's */
    bool got_head;
    bool ended;             /* on_end called, or closed by the owner: no more events */
    bool blocked;           /* a write said wait: on_drain is owed */
    bool opened;            /* connected (and TLS done): the request may have gone */
    bool gone;              /* the connection closed: freed once no call of ours is under way */
    bool peer_ended;        /* after the 101, the backend's FIN came (on_eof) */
    unsigned busy;          /* inside our io callbacks: the owner may close (on_close runs at once) */
    char why[160];
};

/* Each TLS context is made once, whichever worker needs it first. */
static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;

/* One TLS context per certificate setting: reloads rarely change it, so the list stays short. */
struct tunnel_tls {
    bool insecure;
    char *ca_file; /* NULL: the system store */
    rill_tls_ctx *ctx;
    struct tunnel_tls *next;
};

static rill_tls_ctx *tunnel_tls(rill_proxy *p, const struct proxy_config *cfg, char *err,
                                size_t errlen)
{
    pthread_mutex_lock(&setup_lock);
    struct tunnel_tls *t = p->tunnel_tls;
    while (t && !(t->insecure == cfg->insecure &&
                  (t->ca_file && cfg->ca_file ? strcmp(t->ca_file, cfg->ca_file) == 0
                                              : t->ca_file == cfg->ca_file)))
        t = t->next;
    if (!t && (t = calloc(1, sizeof *t))) {
        unsigned flags = RILL_TLS_CLIENT_HTTP11 | (cfg->insecure ? RILL_TLS_CLIENT_NO_VERIFY : 0);
        t->insecure = cfg->insecure;
        if ((cfg->ca_file && !(t->ca_file = strdup(cfg->ca_file))) ||
            rill_tls_client_new(flags, cfg->ca_file, &t->ctx, err, errlen) < 0) {
            if (!err[0])
                snprintf(err, errlen, "out of memory");
            free(t->ca_file);
            free(t);
            t = NULL;
        } else {
            t->next = p->tunnel_tls;
            p->tunnel_tls = t;
        }
    } else if (!t) {
        snprintf(err, errlen, "out of memory");
    }
    rill_tls_ctx *ctx = t ? t->ctx : NULL;
    pthread_mutex_unlock(&setup_lock);
    return ctx;
}

void upstream_tls_free(rill_proxy *p)
{
    while (p->tunnel_tls) {
        struct tunnel_tls *t = p->tunnel_tls;
        p->tunnel_tls = t->next;
        rill_tls_ctx_free(t->ctx);
        free(t->ca_file);
        free(t);
    }
}

static void hold(struct upstream *u) { u->busy++; }

/* The resolution and the attempts under way dropped (never from inside their calls). */
static void setup_free(struct upstream *u)
{
    if (!u->setup)
        return;
    client_race_free(u->setup->race);
    client_dns_free(u->setup->dns);
    free(u->setup);
    u->setup = NULL;
}

/* Everything of u's but its connection (closed already, or never made). */
static void upstream_free(struct upstream *u)
{
    setup_free(u);
    rill_h1_parser_free(u->parser);
    free(u);
}

static void release(struct upstream *u)
{
    if (--u->busy == 0 && u->gone)
        upstream_free(u);
}

static void finish(struct upstream *u, int err, const char *why)
{
    if (u->ended)
        return;
    u->ended = true;
    u->ev->on_end(err, why, u->user);
}

/* Bytes of the answer: its head (and a refusal's body) through the parser, what follows a 101 raw. */
static void read_answer(struct upstream *u, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (!u->ended && u->parser) {
        size_t used = 0;
        rill_h1_event ev;
        if (rill_h1_parse(u->parser, data + off, len - off, &used, &ev) < 0) {
            snprintf(u->why, sizeof u->why, "bad HTTP response: %s",
                     rill_h1_error_text(rill_h1_parser_error(u->parser)));
            finish(u, RILL_ERR_PROTOCOL, u->why);
            rill_io_conn_close(u->io, false);
            return;
        }
        off += used;
        if (ev.type == RILL_H1_EV_NONE)
            return;
        if (ev.type == RILL_H1_EV_HEAD && (ev.head->status == 101 || ev.head->status >= 200)) {
            u->got_head = true;
            u->ev->on_head(ev.head, u->user);
        } else if (ev.type == RILL_H1_EV_BODY) {
            u->ev->on_data(ev.data, ev.len, u->user);
        } else if (ev.type == RILL_H1_EV_END && u->got_head) {
            rill_h1_parser_free(u->parser);
            u->parser = NULL;
            if (!ev.upgraded) { /* a refusal is over; the connection is not kept */
                finish(u, 0, NULL);
                rill_io_conn_close(u->io, false);
                return;
            }
            u->switched = true;
            if (off < len && !u->ended)
                u->ev->on_data(data + off, len - off, u->user);
            return;
        }
    }
}

static void on_data(rill_io_conn *io, const uint8_t *data, size_t len)
{
    struct upstream *u = rill_io_conn_user(io);
    if (!u || u->ended)
        return;
    hold(u);
    if (u->switched)
        u->ev->on_data(data, len, u->user);
    else
        read_answer(u, data, len);
    release(u);
}

static void on_open(rill_io_conn *io, const char *alpn)
{
    (void)alpn;
    struct upstream *u = rill_io_conn_user(io);
    if (u)
        u->opened = true;
}

static void on_drain(rill_io_conn *io)
{
    struct upstream *u = rill_io_conn_user(io);
    if (u && u->blocked && !u->ended) {
        hold(u);
        u->blocked = false;
        u->ev->on_drain(u->user);
        release(u);
    }
}

static void on_close(rill_io_conn *io, int err)
{
    struct upstream *u = rill_io_conn_user(io);
    if (!u)
        return;
    if (!u->ended) {
        rill_h1_event ev;
        if (u->switched && err == 0 && u->peer_ended)
            finish(u, 0, NULL); /* both ends went in order (the backend's FIN, then ours) */
        else if (u->got_head && u->parser && rill_h1_parse_eof(u->parser, &ev) == RILL_OK &&
                 ev.type == RILL_H1_EV_END)
            finish(u, 0, NULL); /* a refusal's body that ran to the close */
        else if (!u->got_head && err == RILL_ERR_EOF)
            finish(u, RILL_ERR_EOF, "the backend closed the connection before answering");
        else if (u->switched)
            finish(u, err ? err : RILL_ERR_IO, "the backend's connection failed (reset)");
        else if (!u->opened) /* nothing was sent: the caller may try another backend */
            finish(u, err == RILL_ERR_TLS ? RILL_ERR_TLS : RILL_ERR_IO,
                   err == RILL_ERR_TLS ? "TLS failed" : "cannot connect");
        else
            finish(u, RILL_ERR_EOF, u->got_head ? "the answer was cut short"
                                                : "the connection failed before the answer");
    }
    u->gone = true;
    hold(u);
    release(u); /* frees u now, or when the outermost call of ours returns */
}

/* The backend's FIN after the 101 is a half-close: the connection stays for our bytes. Before
 * it, an end is the answer's (on_close judges it). */
static bool on_peer_eof(rill_io_conn *io)
{
    struct upstream *u = rill_io_conn_user(io);
    if (!u || u->ended || !u->switched)
        return false;
    u->peer_ended = true;
    hold(u);
    u->ev->on_eof(u->user);
    release(u);
    return true;
}

static const rill_io_conn_callbacks upstream_callbacks = {
    .size = sizeof upstream_callbacks,
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_peer_eof = on_peer_eof,
};

/* The race is won: the connection is u's, the request head goes (at once, or after TLS). */
static void on_race_won(rill_io_conn *io, const struct rill_io_addr *addr, void *user)
{
    (void)addr;
    struct upstream *u = user;
    u->io = io;
    rill_io_conn_set_callbacks(io, &upstream_callbacks);
    rill_io_conn_set_user(io, u);
    int rc = rill_io_conn_write(io, u->setup->head, u->setup->head_len);
    setup_free(u); /* not inside client_dns' calls (the loop's connect); an answer still out for
                    * the other family is not needed */
    if (rc < 0)
        rill_io_conn_close(io, false); /* on_close: "cannot connect", nothing was sent */
}

/* Every address failed, or the name had none: the end (from a loop timer, never inside
 * client_dns' or client_race's calls into us). */
static void on_race_lost(int err, const char *why, void *user)
{
    struct upstream *u = user;
    struct upstream_setup *set = u->setup;
    if (!set->unresolved)
        snprintf(set->why, sizeof set->why, "%s", why);
    client_race_free(set->race);
    client_dns_free(set->dns);
    set->race = NULL;
    set->dns = NULL;
    u->gone = true; /* no connection: freed below once the owner heard */
    hold(u);
    finish(u, set->unresolved ? RILL_ERR_NOT_FOUND : err == RILL_ERR_NOMEM ? err : RILL_ERR_IO,
           set->why);
    release(u);
}

/* The resolver's addresses go to the race as they come; no address at all ends it (the race
 * then says lost, from its timer). */
static void on_resolved(int err, const char *why, const struct rill_io_addr *addrs, size_t n,
                        bool final, void *user)
{
    struct upstream_setup *set = ((struct upstream *)user)->setup;
    if (err) {
        set->unresolved = err == RILL_ERR_NOT_FOUND;
        snprintf(set->why, sizeof set->why, "%s", why ? why : rill_strerror(err));
    }
    client_race_add(set->race, addrs, n, final);
}

/* host (no brackets) and port of b's origin, and its authority for messages. */
static uint16_t origin_parts(const struct proxy_target *b, struct upstream_setup *set)
{
    const char *h = strstr(b->origin, "://") + 3;
    const char *p;
    if (h[0] == '[') {
        size_t n = strcspn(h + 1, "]");
        snprintf(set->host, sizeof set->host, "%.*s", (int)n, h + 1);
        p = h[1 + n] == ']' && h[2 + n] == ':' ? h + 3 + n : NULL;
    } else {
        size_t n = strcspn(h, ":/");
        snprintf(set->host, sizeof set->host, "%.*s", (int)n, h);
        p = h[n] == ':' ? h + n + 1 : NULL;
    }
    uint16_t port = p ? (uint16_t)strtoul(p, NULL, 10) : b->https ? 443 : 80;
    bool v6 = strchr(set->host, ':') != NULL;
    snprintf(set->authority, sizeof set->authority, "%s%s%s:%u", v6 ? "[" : "", set->host,
             v6 ? "]" : "", (unsigned)port);
    return port;
}

struct upstream *upstream_open(rill_proxy *p, const struct proxy_config *cfg, struct proxy_target *b,
                               rill_io_loop *loop,
                               const char *method, const char *target, const rill_header *fields,
                               size_t nfields, const struct upstream_events *ev, void *user,
                               char *err, size_t errlen)
{
    rill_tls_ctx *tls = NULL;
    if (b->https && !(tls = tunnel_tls(p, cfg, err, errlen)))
        return NULL;
    size_t need = strlen(method) + strlen(target) + 32;
    for (size_t i = 0; i < nfields; i++)
        need += fields[i].name_len + fields[i].value_len + 4;
    struct upstream *u = calloc(1, sizeof *u);
    struct upstream_setup *set = u ? calloc(1, sizeof *set + need) : NULL;
    int rc = RILL_ERR_NOMEM;
    if (set) {
        u->setup = set;
        if ((u->parser = rill_h1_parser_new(RILL_H1_RESPONSE, NULL)))
            rc = rill_h1_write_request_head(set->head, need, &set->head_len, method,
                                            strlen(method), target, strlen(target), fields,
                                            nfields);
    }
    if (rc == RILL_OK) {
        rill_h1_set_request_method(u->parser, method, strlen(method));
        u->ev = ev;
        u->user = user;
        uint16_t port = origin_parts(b, set);
        rill_client_options o; /* as the backend's clients: their attempt delay */
        proxy_client_options(b, cfg, &o);
        struct client_race_target rt = {
            .loop = loop,
            .tls = tls,
            .sni = set->host,
            .authority = set->authority,
            .attempt_delay_ms = o.attempt_delay_ms,
        };
        if (!(set->dns = client_dns_new(loop)) ||
            !(set->race = client_race_new(&rt, on_race_won, on_race_lost, u)) ||
            client_dns_resolve(set->dns, set->host, port, on_resolved, u) < 0)
            rc = RILL_ERR_NOMEM;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", rc == RILL_ERR_INVALID_ARG ? "the request cannot be sent on"
                                                               : rill_strerror(rc));
        if (u)
            upstream_free(u);
        return NULL;
    }
    return u;
}

int upstream_write(struct upstream *u, const void *data, size_t len)
{
    if (!u->io) /* never before the 101, which needs a connection */
        return RILL_ERR_STATE;
    int rc = rill_io_conn_write(u->io, data, len);
    if (rc < 0)
        return rc;
    if (rill_io_conn_queued(u->io) > UPSTREAM_HIGH_WATER) {
        u->blocked = true;
        return RILL_ERR_WOULD_BLOCK;
    }
    return RILL_OK;
}

bool upstream_opened(const struct upstream *u)
{
    return u->opened;
}

void upstream_pause(struct upstream *u, bool paused)
{
    if (u->io)
        rill_io_conn_pause_read(u->io, paused);
}

void upstream_shutdown_write(struct upstream *u)
{
    if (u->io && rill_io_conn_shutdown_write(u->io) < 0) /* no io: never before the 101 */
        rill_io_conn_close(u->io, true); /* closing already: the end is on its way */
}

void upstream_close(struct upstream *u, bool graceful)
{
    u->ended = true;
    if (u->io && graceful)
        rill_io_conn_close(u->io, true);
    else if (u->io) /* an abort passed on (the client reset, a timeout, a failure): a reset */
        rill_io_conn_abort(u->io);
    else if (u->busy) /* inside on_race_lost's finish: it frees u */
        u->gone = true;
    else /* still resolving or racing: nothing of it reached the backend */
        upstream_free(u);
}
