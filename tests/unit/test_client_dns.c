/* The client's name resolution (c-ares on the loop) and its connection attempts: a name from a
 * hosts file, localhost, every address of a name tried, and Happy Eyeballs (RFC 8305) against
 * real sockets: a silent IPv6 address (a full accept queue on ::1 drops the SYNs) losing to
 * IPv4, a working IPv6 one winning alone, the connect timeout over the race; the Resolution
 * Delay against a DNS server of the test's own (UDP on 127.0.0.1, client_dns_servers) that
 * answers A and AAAA at chosen moments. The hosts file is the test's own ($CARES_HOSTS, read
 * because the test sets client_dns_env_hosts), so no system file changes and no DNS server is
 * asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>

#include <cmocka.h>

#include "client/client_dns.h"
#include "rill/client.h"
#include "test_io_util.h"

/* ---- a one-answer HTTP/1.1 server on 127.0.0.1 ------------------------------------------------
 */

struct once {
    int lfd;
    uint16_t port;
    pthread_t thread;
};

static void *once_run(void *arg)
{
    struct once *s = arg;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return NULL;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    set_timeouts(fd, 10000);
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n")) {
            static const char ok[] =
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            send(fd, ok, sizeof ok - 1, MSG_NOSIGNAL);
            break;
        }
    }
    close(fd);
    return NULL;
}

/* Binds a TCP socket to 127.0.0.1 or ::1 (family) at port (0: any), listening with backlog;
 * -1 when it cannot (no IPv6 on this machine, the port taken). */
static int listen_at(int family, uint16_t port, int backlog)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(port);
        len = sizeof *a;
    } else {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons(port);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* The one-answer server on family's loopback address at port (0: any); false when it cannot
 * listen there. */
static bool once_start_at(struct once *s, int family, uint16_t port)
{
    s->lfd = listen_at(family, port, 8);
    if (s->lfd < 0)
        return false;
    s->port = port_of(s->lfd);
    pthread_create(&s->thread, NULL, once_run, s);
    return true;
}

static void once_start(struct once *s)
{
    assert_true(once_start_at(s, AF_INET, 0));
}

static void once_stop(struct once *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* Writes text to a fresh hosts file and points c-ares at it. */
static void use_hosts(const char *text)
{
    static char path[] = "/tmp/rill-hosts-XXXXXX";
    static int fd = -1;
    if (fd < 0)
        fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    setenv("CARES_HOSTS", path, 1);
    client_dns_env_hosts = true;
}

static int fetch(const char *host, uint16_t port, rill_client_result *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%u/", host, port);
    rill_client_options co;
    rill_client_options_init(&co);
    co.connect_timeout_ms = 5000;
    rill_client_fetch_options fo;
    rill_client_fetch_options_init(&fo);
    fo.client = &co;
    return rill_client_fetch(url, &fo, r);
}

/* ---- tests -------------------------------------------------------------------------------------
 */

static void a_name_from_the_hosts_file(void **state)
{
    (void)state;
    use_hosts("127.0.0.1 rill-one.invalid\n");
    struct once s;
    once_start(&s);
    rill_client_result r;
    assert_int_equal(fetch("rill-one.invalid", s.port, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "ok");
    rill_client_result_free(&r);
    once_stop(&s);
}

static void localhost_resolves(void **state)
{
    (void)state;
    client_dns_env_hosts = false; /* the system's /etc/hosts */
    struct once s;
    once_start(&s);
    rill_client_result r;
    assert_int_equal(fetch("localhost", s.port, &r), RILL_OK);
    assert_int_equal(r.status, 200);
    rill_client_result_free(&r);
    once_stop(&s);
}

/* ---- every address in turn ---------------------------------------------------------------------
 */

struct run {
    rill_io_loop *loop;
    int err;
    int status;
    unsigned ends;
    char why[512];
    char trace[4096];
    /* IPv6 sockets of ours (the client's attempts) other than v6_keep[]: when the IPv4 attempt
     * starts, and at the end */
    int v6_keep[2];
    int v6_at_v4_attempt, v6_at_end;
};

/* Open IPv6 sockets of the process other than keep[0..1]. */
static int v6_sockets(const int keep[2])
{
    int n = 0;
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(dir) || fd == keep[0] || fd == keep[1])
            continue;
        int domain = 0;
        socklen_t len = sizeof domain;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_INET6)
            n++;
    }
    closedir(dir);
    return n;
}

static void on_trace(rill_client *c, const char *line, void *user)
{
    struct run *r = user;
    size_t n = strlen(r->trace);
    snprintf(r->trace + n, sizeof r->trace - n, "%s\n", line);
    if (strncmp(line, "trying 127.0.0.1:", 17) == 0)
        r->v6_at_v4_attempt = v6_sockets(r->v6_keep);
}

static void on_response(rill_client_stream *st, int status, const rill_header *f, size_t n,
                        void *user)
{
    ((struct run *)user)->status = status;
}

static void on_end(rill_client_stream *st, int err, const char *why, void *user)
{
    struct run *r = user;
    r->err = err;
    r->ends++;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    r->v6_at_end = v6_sockets(r->v6_keep);
    rill_io_loop_stop(r->loop);
}

static const rill_client_callbacks run_cb = {
    .size = sizeof run_cb, .on_response = on_response, .on_end = on_end};

/* One GET of http://host:port/ on a client with these options (attempt_delay_ms, timeouts). */
static void get_with(const char *host, uint16_t port, struct run *r, uint32_t attempt_delay_ms,
                     uint32_t connect_timeout_ms, uint32_t request_timeout_ms, const int keep[2])
{
    memset(r, 0, sizeof *r);
    r->err = -1000;
    r->v6_keep[0] = keep ? keep[0] : -1;
    r->v6_keep[1] = keep ? keep[1] : -1;
    r->v6_at_v4_attempt = -1;
    assert_int_equal(rill_io_loop_new(NULL, &r->loop), RILL_OK);
    char url[128];
    snprintf(url, sizeof url, "http://%s:%u/", host, port);
    rill_client_options o;
    rill_client_options_init(&o);
    o.url = url;
    o.attempt_delay_ms = attempt_delay_ms;
    o.connect_timeout_ms = connect_timeout_ms;
    o.request_timeout_ms = request_timeout_ms; /* bounded even if something hangs */
    rill_client *c;
    assert_int_equal(rill_client_new(r->loop, &o, &c, NULL, 0), RILL_OK);
    rill_client_set_trace(c, on_trace, r);
    assert_int_equal(rill_client_request(c, "GET", "/", NULL, 0, NULL, 0, &run_cb, r, NULL),
                     RILL_OK);
    rill_io_loop_run(r->loop);
    rill_client_free(c);
    rill_io_loop_free(r->loop);
}

static void get(const char *host, uint16_t port, struct run *r)
{
    get_with(host, port, r, 250, 5000, 20000, NULL);
}

/* Nothing listens on [::1]:port (the server is IPv4 only; without IPv6 the connect fails too):
 * the client goes on to 127.0.0.1. */
static void every_address_in_turn(void **state)
{
    (void)state;
    struct once s;
    once_start(&s);
    const char *orders[] = {"::1 rill-two.invalid\n127.0.0.1 rill-two.invalid\n",
                            "127.0.0.2 rill-two.invalid\n127.0.0.1 rill-two.invalid\n"};
    for (size_t i = 0; i < 2; i++) {
        use_hosts(orders[i]);
        if (i == 1) { /* the server takes one connection: a second one */
            once_stop(&s);
            once_start(&s);
        }
        struct run r;
        /* 127.0.0.2 is loopback too, but the server is bound to 127.0.0.1 only: refused. */
        get("rill-two.invalid", s.port, &r);
        assert_int_equal(r.err, RILL_OK);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.trace, "resolved to 2 addresses"));
        /* IPv6 goes first; the IPv4 pair keeps the file's order: the refused one first */
        const char *first = strstr(r.trace, i == 0 ? "trying [::1]:" : "trying 127.0.0.2:");
        const char *second = strstr(r.trace, "trying 127.0.0.1:");
        assert_true(first && second && first < second);
        assert_non_null(
            strstr(r.trace, i == 0 ? "cannot connect to [::1]:" : "cannot connect to 127.0.0.2:"));
    }
    once_stop(&s);
}

/* A port nothing listens on, on 127.0.0.1 (and most likely on ::1): one we bound and closed. */
static uint16_t closed_port(void)
{
    int fd = listen_at(AF_INET, 0, 1);
    assert_true(fd >= 0);
    uint16_t port = port_of(fd);
    close(fd);
    return port;
}

/* Every address refuses: every one is tried, then one error, the last address's, naming the
 * origin. */
static void all_addresses_refuse(void **state)
{
    (void)state;
    uint16_t port = closed_port();
    use_hosts("::1 rill-none.invalid\n127.0.0.2 rill-none.invalid\n127.0.0.3 rill-none.invalid\n");
    struct run r;
    get("rill-none.invalid", port, &r);
    assert_int_equal(r.err, RILL_ERR_IO);
    assert_int_equal(r.ends, 1);
    char want[128];
    snprintf(want, sizeof want, "cannot connect to rill-none.invalid:%u: ", port);
    assert_non_null(strstr(r.why, want));
    /* IPv6 first, then the IPv4 ones in the file's order */
    const char *a = strstr(r.trace, "cannot connect to [::1]:");
    const char *b = strstr(r.trace, "cannot connect to 127.0.0.2:");
    const char *c = strstr(r.trace, "cannot connect to 127.0.0.3:");
    assert_true(a && b && c && a < b && b < c);
}

/* ---- Happy Eyeballs ----------------------------------------------------------------------------
 */

/* [::1]:port where connect() hangs: a listener whose accept queue is full (backlog 0 holds one
 * connection, ours, never accepted), so the kernel drops every further SYN and the client sees
 * no answer at all, as from an IPv6 path that loses packets. */
struct blackhole {
    int lfd, filler;
};

/* false (the test skips) without IPv6 on loopback, or with the port taken there */
static bool blackhole_start(struct blackhole *b, uint16_t port)
{
    b->lfd = listen_at(AF_INET6, port, 0);
    if (b->lfd < 0)
        return false;
    struct sockaddr_in6 a = {
        .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback, .sin6_port = htons(port)};
    b->filler = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(b->filler, (struct sockaddr *)&a, sizeof a), 0);
    /* Check that it really is one: a connect that gets no answer in 300 ms */
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = connect(probe, (struct sockaddr *)&a, sizeof a);
    assert_true(rc != 0 && errno == EINPROGRESS);
    struct pollfd p = {.fd = probe, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 300), 0);
    close(probe);
    return true;
}

static void blackhole_stop(struct blackhole *b)
{
    close(b->filler);
    close(b->lfd);
}

/* The name's IPv6 address never answers, its IPv4 address does: the IPv4 attempt starts after the
 * attempt delay beside the hanging one, wins, and the IPv6 attempt is closed at once. The request
 * timeout (5 s) is below both the connect timeout (60 s) and the loop's own connect deadline
 * (10 s): trying the addresses one after the other would end it with RILL_ERR_TIMEOUT. */
static void a_silent_ipv6_address_loses_to_ipv4(void **state)
{
    (void)state;
    struct once s;
    struct blackhole b;
    bool ok = false;
    for (int i = 0; i < 20 && !ok; i++) { /* the same port free on both */
        once_start(&s);
        ok = blackhole_start(&b, s.port);
        if (!ok) {
            int fd = tcp_connect(s.port); /* lets the server thread end */
            close(fd);
            once_stop(&s);
        }
    }
    if (!ok)
        skip(); /* no IPv6 loopback here */
    use_hosts("::1 rill-he.invalid\n127.0.0.1 rill-he.invalid\n");
    struct run r;
    int keep[2] = {b.lfd, b.filler};
    get_with("rill-he.invalid", s.port, &r, 250, 60000, 5000, keep);
    assert_int_equal(r.err, RILL_OK);
    assert_int_equal(r.status, 200);
    const char *v6 = strstr(r.trace, "trying [::1]:");
    const char *v4 = strstr(r.trace, "trying 127.0.0.1:");
    assert_true(v6 && v4 && v6 < v4);
    assert_null(strstr(r.trace, "cannot connect")); /* the IPv6 attempt was still under way */
    assert_non_null(strstr(r.trace, "answered first; 1 other attempt closed"));
    assert_int_equal(r.v6_at_v4_attempt, 1); /* the hanging attempt's socket, counted */
    assert_int_equal(r.v6_at_end, 0);        /* ... and closed when IPv4 won */
    blackhole_stop(&b);
    once_stop(&s);
}

/* attempt_delay_ms 0: one attempt at a time, so the silent IPv6 address holds the connection
 * until the request's own timeout; IPv4 is never tried. */
static void no_racing_with_attempt_delay_0(void **state)
{
    (void)state;
    uint16_t port = closed_port();
    struct blackhole b;
    if (!blackhole_start(&b, port))
        skip();
    use_hosts("::1 rill-seq.invalid\n127.0.0.1 rill-seq.invalid\n");
    struct run r;
    get_with("rill-seq.invalid", port, &r, 0, 60000, 1500, NULL);
    assert_int_equal(r.err, RILL_ERR_TIMEOUT);
    assert_non_null(strstr(r.trace, "trying [::1]:"));
    assert_null(strstr(r.trace, "trying 127.0.0.1:"));
    blackhole_stop(&b);
}

/* Both addresses silent: the connect timeout bounds the whole race, one error naming the origin. */
static void the_connect_timeout_bounds_the_race(void **state)
{
    (void)state;
    uint16_t port = closed_port();
    struct blackhole b;
    if (!blackhole_start(&b, port))
        skip();
    int v4 = listen_at(AF_INET, port, 0); /* an IPv4 blackhole too */
    assert_true(v4 >= 0);
    int filler = tcp_connect(port);
    assert_true(filler >= 0);
    use_hosts("::1 rill-slow.invalid\n127.0.0.1 rill-slow.invalid\n");
    struct run r;
    get_with("rill-slow.invalid", port, &r, 100, 700, 20000, NULL);
    assert_int_equal(r.err, RILL_ERR_TIMEOUT);
    assert_int_equal(r.ends, 1);
    char want[128];
    snprintf(want, sizeof want, "connecting to rill-slow.invalid:%u timed out after 700 ms", port);
    assert_string_equal(r.why, want);
    assert_non_null(strstr(r.trace, "trying [::1]:"));
    assert_non_null(strstr(r.trace, "trying 127.0.0.1:"));
    close(filler);
    close(v4);
    blackhole_stop(&b);
}

/* An IPv6 server, and an IPv4 listener that must get nothing: IPv6 goes first and answers at
 * once, so IPv4 is not tried. (A delay of 1 s instead of 250 ms: a loopback connect answers in
 * microseconds, but the suite runs on a loaded machine.) */
static void a_working_ipv6_address_wins_alone(void **state)
{
    (void)state;
    struct once s;
    int v4 = -1;
    for (int i = 0; i < 20 && v4 < 0; i++) {
        if (!once_start_at(&s, AF_INET6, 0))
            skip(); /* no IPv6 loopback here */
        v4 = listen_at(AF_INET, s.port, 8);
        if (v4 < 0) {
            close(s.lfd); /* the thread ends on its poll's timeout: wait for it */
            pthread_join(s.thread, NULL);
        }
    }
    assert_true(v4 >= 0);
    use_hosts("127.0.0.1 rill-v6.invalid\n::1 rill-v6.invalid\n");
    struct run r;
    get_with("rill-v6.invalid", s.port, &r, 1000, 5000, 20000, NULL);
    assert_int_equal(r.err, RILL_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.trace, "trying [::1]:"));
    assert_null(strstr(r.trace, "trying 127.0.0.1:"));
    /* nothing reached the IPv4 listener */
    struct pollfd p = {.fd = v4, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    close(v4);
    once_stop(&s);
}

/* ---- the Resolution Delay, against a DNS server of the test's own ------------------------------
 */

enum dns_mode {
    AAAA_LATE,   /* A answered at once, AAAA 300 ms later */
    A_LATE,      /* AAAA answered at once, A 300 ms later */
    A_THEN_AAAA, /* both queries awaited, then A answered and AAAA right after it */
};

struct dns_server {
    int fd;
    uint16_t port;
    enum dns_mode mode;
    pthread_t thread;
    int answered;
};

/* One answer to the query q (qlen bytes): its question, and one record for it. */
static void dns_answer(int fd, const uint8_t *q, size_t qlen, size_t qend, uint16_t type,
                       const struct sockaddr_storage *to, socklen_t tolen)
{
    uint8_t out[512];
    memcpy(out, q, qend);
    out[2] = 0x81, out[3] = 0x80;            /* a response, recursion available, no error */
    out[6] = 0, out[7] = 1;                  /* one answer */
    out[8] = out[9] = out[10] = out[11] = 0; /* no authority, no additional (EDNS dropped) */
    size_t n = qend;
    static const uint8_t v4[4] = {127, 0, 0, 1};
    static const uint8_t v6[16] = {[15] = 1};
    uint16_t rdlen = type == 1 ? 4 : 16;
    uint8_t rr[] = {0xc0, 12, 0, (uint8_t)type, 0, 1, 0, 0, 0, 60, 0, (uint8_t)rdlen};
    memcpy(out + n, rr, sizeof rr);
    n += sizeof rr;
    memcpy(out + n, type == 1 ? v4 : v6, rdlen);
    n += rdlen;
    (void)qlen;
    sendto(fd, out, n, 0, (const struct sockaddr *)to, tolen);
}

struct dns_query_held {
    uint8_t q[512];
    size_t len, qend;
    uint16_t type;
    struct sockaddr_storage from;
    socklen_t fromlen;
};

static void *dns_run(void *arg)
{
    struct dns_server *s = arg;
    struct dns_query_held held[2], *late = NULL;
    int nheld = 0;
    uint64_t late_at = 0;
    while (s->answered < 2) { /* one A, one AAAA */
        int wait = 5000;
        if (late) {
            uint64_t now = rill_io_now_ms();
            wait = late_at > now ? (int)(late_at - now) : 0;
        }
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int r = poll(&p, 1, wait);
        if (r < 0)
            return NULL;
        if (r == 0) {
            if (!late)
                return NULL; /* nothing more asked */
            dns_answer(s->fd, late->q, late->len, late->qend, late->type, &late->from,
                       late->fromlen);
            s->answered++;
            late = NULL;
            continue;
        }
        struct dns_query_held *h = &held[nheld % 2];
        h->fromlen = sizeof h->from;
        ssize_t len =
            recvfrom(s->fd, h->q, sizeof h->q, 0, (struct sockaddr *)&h->from, &h->fromlen);
        if (len < 17)
            continue;
        size_t i = 12;
        while (i < (size_t)len && h->q[i])
            i += h->q[i] + 1u;
        if (i + 5 > (size_t)len)
            continue;
        h->len = (size_t)len;
        h->type = (uint16_t)(h->q[i + 1] << 8 | h->q[i + 2]);
        h->qend = i + 5;
        if (h->type != 1 && h->type != 28)
            continue;
        nheld++;
        bool is_a = h->type == 1;
        if (s->mode == A_THEN_AAAA) {
            if (nheld < 2)
                continue;
            struct dns_query_held *a = held[0].type == 1 ? &held[0] : &held[1];
            struct dns_query_held *aaaa = a == &held[0] ? &held[1] : &held[0];
            dns_answer(s->fd, a->q, a->len, a->qend, 1, &a->from, a->fromlen);
            dns_answer(s->fd, aaaa->q, aaaa->len, aaaa->qend, 28, &aaaa->from, aaaa->fromlen);
            s->answered += 2;
            nheld = 0;
        } else if (is_a == (s->mode == AAAA_LATE)) { /* the one answered at once */
            dns_answer(s->fd, h->q, h->len, h->qend, h->type, &h->from, h->fromlen);
            s->answered++;
        } else {
            late = h;
            late_at = rill_io_now_ms() + 300;
        }
    }
    return NULL;
}

static void dns_start(struct dns_server *s, enum dns_mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    s->port = port_of(s->fd);
    pthread_create(&s->thread, NULL, dns_run, s);
}

static void dns_stop(struct dns_server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* What client_dns handed over, call by call. */
struct batches {
    rill_io_loop *loop;
    int n;
    int err[4];
    bool final[4];
    int v4[4], v6[4]; /* addresses of each family in each call */
};

static void on_batch(int err, const char *why, const struct rill_io_addr *addrs, size_t n,
                     bool final, void *user)
{
    struct batches *b = user;
    assert_true(b->n < 4);
    b->err[b->n] = err;
    b->final[b->n] = final;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rill_io_addr_port(&addrs[i]), 8080);
        if (addrs[i].ss.ss_family == AF_INET)
            b->v4[b->n]++;
        else
            b->v6[b->n]++;
    }
    b->n++;
    if (final)
        rill_io_loop_stop(b->loop);
}

static void resolve_with(enum dns_mode mode, struct batches *b)
{
    struct dns_server s;
    dns_start(&s, mode);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%u", s.port);
    client_dns_servers = servers;
    use_hosts("127.0.0.1 unrelated.invalid\n"); /* the name is not in the file: DNS is asked */
    memset(b, 0, sizeof *b);
    assert_int_equal(rill_io_loop_new(NULL, &b->loop), RILL_OK);
    struct client_dns *d = client_dns_new(b->loop);
    assert_non_null(d);
    assert_int_equal(client_dns_resolve(d, "rill-dns.test", 8080, on_batch, b), RILL_OK);
    rill_io_loop_run(b->loop);
    client_dns_free(d);
    rill_io_loop_free(b->loop);
    client_dns_servers = NULL;
    dns_stop(&s);
    assert_int_equal(s.answered, 2);
}

/* The IPv6 answer is handed over at once, without waiting for the IPv4 one. */
static void the_ipv6_answer_goes_at_once(void **state)
{
    (void)state;
    struct batches b;
    resolve_with(A_LATE, &b);
    assert_int_equal(b.n, 2);
    assert_true(b.err[0] == 0 && b.v6[0] == 1 && b.v4[0] == 0 && !b.final[0]);
    assert_true(b.err[1] == 0 && b.v6[1] == 0 && b.v4[1] == 1 && b.final[1]);
}

/* The IPv4 answer waits for the IPv6 one (up to the 50 ms Resolution Delay): when the IPv6 answer
 * comes right after it, both go together. */
static void the_ipv4_answer_waits_for_ipv6(void **state)
{
    (void)state;
    struct batches b;
    resolve_with(A_THEN_AAAA, &b);
    assert_int_equal(b.n, 1);
    assert_true(b.err[0] == 0 && b.v6[0] == 1 && b.v4[0] == 1 && b.final[0]);
}

/* ... but not longer: with the IPv6 answer 300 ms late, the IPv4 address goes first and the IPv6
 * one follows in a second call. */
static void the_ipv4_answer_goes_after_the_resolution_delay(void **state)
{
    (void)state;
    struct batches b;
    resolve_with(AAAA_LATE, &b);
    assert_int_equal(b.n, 2);
    assert_true(b.err[0] == 0 && b.v6[0] == 0 && b.v4[0] == 1 && !b.final[0]);
    assert_true(b.err[1] == 0 && b.v6[1] == 1 && b.v4[1] == 0 && b.final[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_name_from_the_hosts_file),
        cmocka_unit_test(localhost_resolves),
        cmocka_unit_test(every_address_in_turn),
        cmocka_unit_test(all_addresses_refuse),
        cmocka_unit_test(a_silent_ipv6_address_loses_to_ipv4),
        cmocka_unit_test(no_racing_with_attempt_delay_0),
        cmocka_unit_test(the_connect_timeout_bounds_the_race),
        cmocka_unit_test(a_working_ipv6_address_wins_alone),
        cmocka_unit_test(the_ipv6_answer_goes_at_once),
        cmocka_unit_test(the_ipv4_answer_waits_for_ipv6),
        cmocka_unit_test(the_ipv4_answer_goes_after_the_resolution_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
