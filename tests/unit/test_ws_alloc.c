/* The codec does not allocate per frame: after a warm-up, receiving and sending thousands of
 * frames (fragmented, masked, control, compressed with context takeover) calls malloc zero times.
 * malloc is interposed to count calls; sanitizer builds own malloc, so there the test is skipped. */
#include "test_ws_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RILL_ASAN 1
#endif
#endif

#ifndef RILL_ASAN
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static volatile long allocations;

void *malloc(size_t n)
{
    allocations++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    allocations++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    allocations++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

static rec R;
static uint8_t wire[1 << 20], msg[70000];

/* One round: a client sends a mix of messages to a server, which echoes them back. */
static void round_trip(rill_ws *cli, rill_ws *srv)
{
    static const size_t sizes[] = {0, 3, 125, 126, 1000, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(rill_ws_send(cli, RILL_WS_OP_BINARY, msg, sizes[i]), 0);
        assert_int_equal(rill_ws_send_ping(cli, "p", 1), 0);
        assert_int_equal(rill_ws_send_fragment(cli, RILL_WS_OP_TEXT, "abc", 3, false), 0);
        assert_int_equal(rill_ws_send_fragment(cli, 0, "def", 3, true), 0);
        size_t n = drain(cli, wire, sizeof wire);
        for (size_t off = 0; off < n; off += 1000) /* frames split across reads */
            assert_int_equal(rill_ws_recv(srv, wire + off, n - off < 1000 ? n - off : 1000), 0);
        assert_int_equal(R.opcode, RILL_WS_OP_TEXT);
        assert_int_equal(rill_ws_send(srv, RILL_WS_OP_BINARY, msg, sizes[i]), 0);
        n = drain(srv, wire, sizeof wire);
        assert_int_equal(rill_ws_recv(cli, wire, n), 0);
        assert_int_equal(R.len, sizes[i]);
    }
}
#endif

static void steady_state_does_not_allocate(void **state)
{
    (void)state;
#ifdef RILL_ASAN
    skip();
#else
    rec_init(&R);
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)("websocket"[i % 9] + (i % 251 == 0));
    static const rill_ws_pmd_params pmd = {0};
    for (int deflate = 0; deflate < 2; deflate++) {
        ws_setup cfg = ws_cfg(RILL_WS_SERVER, &R);
        cfg.opt.pmd = deflate ? &pmd : NULL;
        rill_ws *srv = ws_setup_new(&cfg);
        cfg = ws_cfg(RILL_WS_CLIENT, &R);
        cfg.opt.pmd = deflate ? &pmd : NULL;
        cfg.opt.max_frame_size = 4096;
        rill_ws *cli = ws_setup_new(&cfg);
        round_trip(cli, srv); /* warm-up: buffers and zlib states reach their size */
        long before = allocations;
        for (int i = 0; i < 20; i++)
            round_trip(cli, srv);
        assert_int_equal(allocations - before, 0);
        rill_ws_free(srv);
        rill_ws_free(cli);
    }
    rec_free(&R);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(steady_state_does_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
