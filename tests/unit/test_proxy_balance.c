/* The proxy's choice of backend (src/proxy/proxy_balance.c) with health: backends that failed to
 * connect (passive) are passed over but tried when nothing else is left; backends that failed
 * their health checks (active) are never given, so a route with none left gets NULL (its
 * requests get 503). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "proxy/proxy_internal.h"

struct fixture {
    struct proxy_target t[3];
    struct proxy_target *list[3];
    struct proxy_route r;
};

static void setup(struct fixture *f, size_t n, enum proxy_balance balance)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        f->t[i].index = (unsigned)i;
        f->list[i] = &f->t[i];
    }
    f->r.backends = f->list;
    f->r.nbackends = n;
    f->r.s.balance = balance;
}

static unsigned pick_index(struct fixture *f)
{
    unsigned at = 99;
    struct proxy_target *t = proxy_pick(&f->r, NULL, &at);
    if (!t)
        return 99;
    assert_ptr_equal(t, f->list[at]);
    return at;
}

static void round_robin_skips_checked_down(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 3, BALANCE_ROUND_ROBIN);
    atomic_store(&f.t[1].check_down, true);
    for (int i = 0; i < 12; i++)
        assert_int_not_equal(pick_index(&f), 1);
    /* the passive kind too, while others are up */
    proxy_mark_down(&f.t[0], 60000);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pick_index(&f), 2);
}

static void least_connections_skips_checked_down(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 3, BALANCE_LEAST_CONNECTIONS);
    atomic_store(&f.t[0].check_down, true);
    atomic_store(&f.t[2].check_down, true);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pick_index(&f), 1);
}

static void all_down_passive_still_tried_active_never(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 3, BALANCE_ROUND_ROBIN);
    for (int i = 0; i < 3; i++)
        proxy_mark_down(&f.t[i], 60000);
    unsigned seen = 0;
    for (int i = 0; i < 6; i++)
        seen |= 1u << pick_index(&f); /* all passively down: each tried in turn */
    assert_int_equal(seen, 7);
    atomic_store(&f.t[0].check_down, true);
    atomic_store(&f.t[2].check_down, true);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pick_index(&f), 1); /* the only one not out by its checks */
    atomic_store(&f.t[1].check_down, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pick_index(&f), 99); /* none: NULL */
}

static void single_backend(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 1, BALANCE_ROUND_ROBIN);
    proxy_mark_down(&f.t[0], 60000);
    assert_int_equal(pick_index(&f), 0); /* only passively down: tried */
    atomic_store(&f.t[0].check_down, true);
    assert_int_equal(pick_index(&f), 99);
}

static void next_never_gives_checked_down(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 3, BALANCE_ROUND_ROBIN);
    unsigned at = 0;
    atomic_store(&f.t[1].check_down, true);
    assert_ptr_equal(proxy_pick_next(&f.r, &at), &f.t[2]);
    assert_int_equal(at, 2);
    /* the one left only failed to connect: tried anyway */
    proxy_mark_down(&f.t[0], 60000);
    assert_ptr_equal(proxy_pick_next(&f.r, &at), &f.t[0]);
    assert_int_equal(at, 0);
    /* the others out by their checks: none, and the position stays */
    atomic_store(&f.t[2].check_down, true);
    assert_null(proxy_pick_next(&f.r, &at));
    assert_int_equal(at, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_robin_skips_checked_down),
        cmocka_unit_test(least_connections_skips_checked_down),
        cmocka_unit_test(all_down_passive_still_tried_active_never),
        cmocka_unit_test(single_backend),
        cmocka_unit_test(next_never_gives_checked_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
