/* The WebSocket client's connection handling (rill_websocket_client on the loop): a name resolved
 * by c-ares with every address tried in turn, a name that does not resolve, and an HTTP/2 server
 * without extended CONNECT (the client falls back to the HTTP/1.1 Upgrade on a new connection,
 * deciding so inside the engine's SETTINGS callback), and an address that never answers giving way
 * to the next after the connect timeout. The server is a thread speaking RFC 6455 by hand on
 * 127.0.0.1; names come from the test's own hosts file ($CARES_HOSTS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "client/client_dns.h"
#include "rill/client.h"
#include "rill/ws.h"
#include "test_io_util.h"

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2_PREFACE_LEN 24

/* ---- the server ---------------------------------------------------------------------------- */

struct server {
    int lfd;
    uint16_t port;
    pthread_t thread;
    int connections; /* accepted */
    bool saw_h2;     /* a connection opened with the HTTP/2 preface */
    bool ok;         /* the WebSocket went through: request, 101, greeting, the client's Close */
};

/* Reads until "\r\n\r\n"; the head (NUL-terminated) in buf; false on EOF or a too long head. */
static bool read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            return false;
        buf[++n] = '\0';
        if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
            return true;
    }
    return false;
}

/* The value of a field in a head, copied into out. */
static bool head_field(const char *head, const char *name, char *out, size_t cap)
{
    const char *p = strcasestr(head, name);
    if (!p)
        return false;
    p += strlen(name);
    while (*p == ' ' || *p == ':')
        p++;
    size_t n = strcspn(p, "\r\n");
    if (n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* An HTTP/2 server that does not offer extended CONNECT: our SETTINGS (empty), then silence
 * until the client goes. */
static void serve_h2_without_connect(struct server *s, int fd)
{
    uint8_t rest[H2_PREFACE_LEN - 1];
    s->saw_h2 = read_exact(fd, rest, sizeof rest); /* the preface's first byte was peeked */
    static const uint8_t settings[9] = {0, 0, 0, 0x4, 0, 0, 0, 0, 0};
    write_all(fd, settings, sizeof settings);
    uint8_t buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
}

static void serve_h1(struct server *s, int fd, char first)
{
    char head[8192];
    head[0] = first;
    if (!read_head(fd, head + 1, sizeof head - 1))
        return;
    char key[64], accept[RILL_WS_ACCEPT_LEN + 1];
    if (strncmp(head, "GET /chat HTTP/1.1\r\n", 20) != 0 ||
        !head_field(head, "\r\nSec-WebSocket-Key", key, sizeof key) ||
        rill_ws_accept_key(key, strlen(key), accept) != RILL_OK)
        return;
    char answer[512];
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                     "\x81\x02hi",
                     accept);
    if (!write_all(fd, answer, (size_t)n))
        return;
    /* The client answers the greeting with its Close (1000): masked, 2 + 4 + 2 bytes. */
    uint8_t close_frame[8];
    if (!read_exact(fd, close_frame, sizeof close_frame) || close_frame[0] != 0x88 ||
        close_frame[1] != (0x80 | 2))
        return;
    uint8_t code[2] = {close_frame[6] ^ close_frame[2], close_frame[7] ^ close_frame[3]};
    uint8_t reply[4] = {0x88, 2, code[0], code[1]};
    write_all(fd, reply, sizeof reply);
    s->ok = code[0] == 0x03 && code[1] == 0xe8;
}

static void *server_run(void *arg)
{
    struct server *s = arg;
    while (!s->ok) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, TEST_TIMEOUT_MS) <= 0)
            return NULL;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        s->connections++;
        set_timeouts(fd, TEST_TIMEOUT_MS);
        char first;
        if (recv(fd, &first, 1, 0) == 1) {
            if (first == 'P')
                serve_h2_without_connect(s, fd);
            else
                serve_h1(s, fd, first);
        }
        close(fd);
    }
    return NULL;
}

static void server_start(struct server *s)
{
    memset(s, 0, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, server_run, s);
}

static void server_stop(struct server *s)
{
    shutdown(s->lfd, SHUT_RDWR); /* a thread still in poll() wakes up */
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* Writes text to a fresh hosts file and points c-ares at it. */
static void use_hosts(const char *text)
{
    static char path[] = "/tmp/rill-ws-hosts-XXXXXX";
    static int fd = -1;
    if (fd < 0)
        fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    setenv("CARES_HOSTS", path, 1);
    client_dns_env_hosts = true;
}

/* ---- the client ---------------------------------------------------------------------------- */

struct run {
    rill_io_loop *loop;
    rill_io_timer *guard;
    char transport[16];
    char message[64];
    unsigned code;
    char why[512];
    bool closed;
    char trace[2048]; /* rill_websocket_client_set_trace's lines, each ending in '\n' */
};

static void on_trace(rill_websocket_client *c, const char *line, void *user)
{
    (void)c;
    struct run *r = user;
    size_t used = strlen(r->trace);
    snprintf(r->trace + used, sizeof r->trace - used, "%s\n", line);
}

static void on_open(rill_websocket_client *c, const char *transport, bool compressed, void *user)
{
    (void)c, (void)compressed;
    struct run *r = user;
    snprintf(r->transport, sizeof r->transport, "%s", transport);
}

static void on_message(rill_websocket_client *c, unsigned opcode, const uint8_t *data, size_t len,
                       void *user)
{
    struct run *r = user;
    snprintf(r->message, sizeof r->message, "%.*s", (int)len, (const char *)data);
    rill_websocket_client_close(c, RILL_WS_CLOSE_NORMAL, NULL);
}

static void on_close(rill_websocket_client *c, unsigned code, const char *why, void *user)
{
    (void)c;
    struct run *r = user;
    r->closed = true;
    r->code = code;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    rill_io_loop_stop(r->loop);
}

static void on_guard(rill_io_timer *t, void *arg)
{
    (void)t;
    rill_io_loop_stop(((struct run *)arg)->loop);
}

/* Runs one WebSocket to url until on_close (or the guard's minute). */
static void run_client(const char *url, bool http1, struct run *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(rill_io_loop_new(NULL, &r->loop), RILL_OK);
    r->guard = rill_io_timer_new(r->loop, on_guard, r);
    rill_io_timer_arm(r->guard, TEST_TIMEOUT_MS);
    rill_websocket_client_options o;
    rill_websocket_client_options_init(&o);
    o.url = url;
    o.force_http1 = http1;
    o.no_deflate = true;
    static const rill_websocket_client_callbacks cb = {
        .size = sizeof cb, .on_open = on_open, .on_message = on_message, .on_close = on_close};
    rill_websocket_client *c = NULL;
    char err[256] = "";
    assert_int_equal(rill_websocket_client_new(r->loop, &o, &cb, r, &c, err, sizeof err), RILL_OK);
    rill_websocket_client_set_trace(c, on_trace, r); /* before the loop runs: nothing missed */
    rill_io_loop_run(r->loop);
    rill_websocket_client_free(c);
    rill_io_timer_free(r->guard);
    rill_io_loop_free(r->loop);
    assert_true(r->closed);
}

/* ---- tests --------------------------------------------------------------------------------- */

/* 127.0.0.2 is loopback too, but the server is bound to 127.0.0.1 only: refused, the next one. */
static void every_address_in_turn(void **state)
{
    (void)state;
    use_hosts("127.0.0.2 rill-ws.invalid\n127.0.0.1 rill-ws.invalid\n");
    static struct server s; /* outlives a failed assertion: the thread may still use it */
    server_start(&s);
    char url[128];
    snprintf(url, sizeof url, "ws://rill-ws.invalid:%u/chat", s.port);
    struct run r;
    run_client(url, true, &r);
    server_stop(&s);
    assert_string_equal(r.why, "");
    assert_int_equal(r.code, RILL_WS_CLOSE_NORMAL);
    assert_string_equal(r.transport, "HTTP/1.1");
    assert_string_equal(r.message, "hi");
    assert_true(s.ok);
    assert_int_equal(s.connections, 1);
    char want[160];
    snprintf(want, sizeof want,
             "trying 127.0.0.2:%u\ncannot connect to 127.0.0.2:%u: Connection refused\n"
             "trying 127.0.0.1:%u\n",
             s.port, s.port, s.port);
    assert_string_equal(r.trace, want); /* the failure gave way at once: nothing was raced */
}

static void a_name_that_does_not_resolve(void **state)
{
    (void)state;
    use_hosts("127.0.0.1 rill-other.invalid\n");
    struct run r;
    run_client("ws://rill-nowhere.invalid:1/chat", true, &r);
    assert_int_equal(r.code, RILL_WS_CLOSE_ABNORMAL);
    assert_non_null(strstr(r.why, "cannot resolve rill-nowhere.invalid"));
    assert_string_equal(r.transport, "");
}

/* ws:// tries HTTP/2 first; this server's SETTINGS lack ENABLE_CONNECT_PROTOCOL, so the client
 * ends that connection from inside the engine's callback and upgrades on a new one. */
static void h2_without_extended_connect_falls_back(void **state)
{
    (void)state;
    static struct server s; /* outlives a failed assertion: the thread may still use it */
    server_start(&s);
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/chat", s.port);
    struct run r;
    run_client(url, false, &r);
    server_stop(&s);
    assert_string_equal(r.why, "");
    assert_int_equal(r.code, RILL_WS_CLOSE_NORMAL);
    assert_true(s.saw_h2);
    assert_int_equal(s.connections, 2);
    assert_string_equal(r.transport, "HTTP/1.1");
    assert_string_equal(r.message, "hi");
    assert_true(s.ok);
    char want[96]; /* the Upgrade went to the address that answered, without a race */
    snprintf(want, sizeof want, "trying 127.0.0.1:%u\ntrying 127.0.0.1:%u\n", s.port, s.port);
    assert_string_equal(r.trace, want);
}

/* A listener whose accept queue is full drops SYNs: its address never answers. The client races
 * (Happy Eyeballs, as the request client): the next address joins after the attempt delay, wins,
 * and the silent attempt is closed, long before the connect timeout. */
static void an_address_that_never_answers_gives_way(void **state)
{
    (void)state;
    static struct server s; /* outlives a failed assertion: the thread may still use it */
    server_start(&s);
    int hole = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s.port)};
    a.sin_addr.s_addr = htonl(0x7f000003); /* 127.0.0.3, the server's port */
    assert_int_equal(bind(hole, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(hole, 0), 0);
    int fillers[3];
    for (int i = 0; i < 3; i++) { /* never accepted: the queue stays full */
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    use_hosts("127.0.0.3 rill-slow.invalid\n127.0.0.1 rill-slow.invalid\n");
    char url[128];
    snprintf(url, sizeof url, "ws://rill-slow.invalid:%u/chat", s.port);
    struct run r;
    run_client(url, true, &r);
    server_stop(&s);
    for (int i = 0; i < 3; i++)
        close(fillers[i]);
    close(hole);
    assert_string_equal(r.why, "");
    assert_int_equal(r.code, RILL_WS_CLOSE_NORMAL);
    assert_string_equal(r.message, "hi");
    assert_true(s.ok);
    assert_int_equal(s.connections, 1);
    char want[160];
    snprintf(want, sizeof want,
             "trying 127.0.0.3:%u\ntrying 127.0.0.1:%u\n"
             "127.0.0.1:%u answered first; 1 other attempt closed\n",
             s.port, s.port, s.port);
    assert_string_equal(r.trace, want); /* the silent attempt was under way, then closed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_address_in_turn),
        cmocka_unit_test(a_name_that_does_not_resolve),
        cmocka_unit_test(h2_without_extended_connect_falls_back),
        cmocka_unit_test(an_address_that_never_answers_gives_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
