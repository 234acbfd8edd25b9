/* The server's slabs (src/server/slab.c): objects are aligned, distinct and keep their bytes;
 * emptied slabs are reused before any new one is mapped and go back to the system on
 * slab_cache_release_empty; a full slab takes objects again once one is freed; destroy unmaps
 * everything, objects still out included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/slab.h"

#define OBJ 1500 /* an exchange-like size: rounded to 1504, 43 to a 64 KiB slab */

static void objects_are_aligned_distinct_and_keep_their_bytes(void **state)
{
    (void)state;
    struct slab_cache c;
    slab_cache_init(&c, OBJ);
    assert_int_equal(c.obj_size % 16, 0);
    enum { N = 500 };
    static uint8_t *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = slab_alloc(&c);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], (uint8_t)i, OBJ);
    }
    size_t per_slab = (c.slab_bytes - 64) / c.obj_size;
    assert_true(c.slabs >= (N + per_slab - 1) / per_slab);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < OBJ; k += 97)
            assert_int_equal(p[i][k], (uint8_t)i); /* nothing overlapped */
    for (int i = 0; i < N; i += 2) /* every other one: no slab empties */
        slab_free(p[i], OBJ);
    size_t mapped = c.slabs;
    for (int i = 0; i < N; i += 2) { /* the holes are reused before any new slab */
        p[i] = slab_alloc(&c);
        memset(p[i], 0xEE, OBJ);
    }
    assert_int_equal(c.slabs, mapped);
    for (int i = 1; i < N; i += 2)
        for (int k = 0; k < OBJ; k += 97)
            assert_int_equal(p[i][k], (uint8_t)i);
    for (int i = 0; i < N; i++)
        slab_free(p[i], OBJ);
    assert_int_equal(c.slabs, mapped); /* every slab empty, kept while the load may come back */
    for (int i = 0; i < N; i++) /* ... and it does: no new slab */
        assert_non_null(p[i] = slab_alloc(&c));
    assert_int_equal(c.slabs, mapped);
    for (int i = 0; i < N; i++)
        slab_free(p[i], OBJ);
    slab_cache_release_empty(&c); /* a quiet moment: all back to the system */
    assert_int_equal(c.slabs, 0);
    assert_null(c.partial);
    assert_null(c.full);
    assert_non_null(p[0] = slab_alloc(&c)); /* and usable again */
    slab_free(p[0], OBJ);
    slab_cache_destroy(&c);
    assert_int_equal(c.slabs, 0);
}

static void a_full_slab_takes_objects_again(void **state)
{
    (void)state;
    struct slab_cache c;
    slab_cache_init(&c, 16 * 1024 + 64); /* a big class: slabs of 512 KiB, 31 objects */
    size_t per_slab = (c.slab_bytes - 64) / c.obj_size;
    void *p[64];
    for (size_t i = 0; i < per_slab; i++)
        assert_non_null(p[i] = slab_alloc(&c));
    assert_int_equal(c.slabs, 1); /* exactly full */
    slab_free(p[3], 16 * 1024 + 64);
    void *again = slab_alloc(&c);
    assert_ptr_equal(again, p[3]); /* from the slab that was full, not a new one */
    assert_int_equal(c.slabs, 1);
    void *next = slab_alloc(&c); /* now a second slab */
    assert_int_equal(c.slabs, 2);
    slab_free(next, 16 * 1024 + 64);
    assert_int_equal(c.slabs, 2); /* empty: kept */
    slab_cache_release_empty(&c);
    assert_int_equal(c.slabs, 1); /* only the empty one went: the full one is in use */
    slab_cache_destroy(&c); /* with per_slab objects still out: all unmapped */
    assert_int_equal(c.slabs, 0);
    assert_null(c.partial);
    assert_null(c.full);
}

static void a_slab_hovering_at_its_edge_is_not_remapped(void **state)
{
    (void)state;
    struct slab_cache c;
    slab_cache_init(&c, OBJ);
    size_t per_slab = (c.slab_bytes - 64) / c.obj_size;
    void *p[64];
    for (size_t i = 0; i < per_slab; i++)
        p[i] = slab_alloc(&c);
    for (int round = 0; round < 100; round++) { /* one object over the edge, again and again */
        void *extra = slab_alloc(&c);
        assert_int_equal(c.slabs, 2);
        slab_free(extra, OBJ);
        assert_int_equal(c.slabs, 2); /* the emptied slab stays mapped */
    }
    for (size_t i = 0; i < per_slab; i++)
        slab_free(p[i], OBJ);
    assert_int_equal(c.slabs, 2);
    slab_cache_release_empty(&c);
    assert_int_equal(c.slabs, 0);
    slab_cache_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(objects_are_aligned_distinct_and_keep_their_bytes),
        cmocka_unit_test(a_full_slab_takes_objects_again),
        cmocka_unit_test(a_slab_hovering_at_its_edge_is_not_remapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
