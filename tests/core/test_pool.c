/* A pool that moves to a new scope id (core/pool.h): the old pool's
 * balance reaches the new pool once, however often the move is reported. */
#include "tests/test.h"

#include "base/error.h"
#include "core/core.h"
#include "core/pool.h"
#include "tests/core/ledger_helpers.h"

#include <string.h>

struct moved {
    bool done;
    int rc;
    int64_t credits;
    char from[STORE_ID_SIZE];
    char to[STORE_ID_SIZE];
};

static void moved_cb(const struct pool_migrate_result *res, void *data)
{
    struct moved *m = data;
    assert_false(m->done); /* once */
    m->done = true;
    m->rc = res->rc;
    m->credits = res->credits;
    snprintf(m->from, sizeof(m->from), "%s", res->from);
    snprintf(m->to, sizeof(m->to), "%s", res->to);
}

static const struct pool_migration move_42 = {.platform = "telegram",
                                              .from = "-42",
                                              .to = "-1001234",
                                              .id = "tg:migrate:-42:-1001234",
                                              .ref = "group became a supergroup"};

static struct moved migrate(struct lt *t, struct core *core, const struct pool_migration *m)
{
    struct moved mv = {0};
    assert_int_equal(pool_migrate(core, m, moved_cb, &mv), 0);
    while (!mv.done)
        uv_run(&t->loop, UV_RUN_ONCE);
    return mv;
}

static void fund(struct lt *t, const char *id, const char *pool, int64_t amount)
{
    struct lt_res r;
    lt_open(t, pool, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &r);
    assert_true(r.rc == 0 || r.rc == HB_EEXISTS);
    lt_plain(t, id, LEDGER_SYSTEM_GRANTS, pool, amount, LEDGER_KIND_GRANT, &r);
    assert_int_equal(r.rc, 0);
}

static void test_pool_migrate_moves_once(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct core core = {.ledger = t.ledger};
    fund(&t, "grant-1", "pool:telegram:-42", 300);

    struct moved mv = migrate(&t, &core, &move_42);
    assert_int_equal(mv.rc, 0);
    assert_int_equal(mv.credits, 300);
    assert_string_equal(mv.from, "pool:telegram:-42");
    assert_string_equal(mv.to, "pool:telegram:-1001234");
    assert_int_equal(lt_balance(&t, "pool:telegram:-42").posted, 0);
    assert_int_equal(lt_balance(&t, "pool:telegram:-1001234").posted, 300);

    /* The transfer carries the caller's id and ref. */
    struct lt_res got = {0};
    assert_int_equal(ledger_transfer_get(t.ledger, move_42.id, lt_cb, &got), 0);
    lt_wait(&t, &got);
    assert_int_equal(got.rc, 0);
    assert_string_equal(got.r.transfer.debit, "pool:telegram:-42");
    assert_string_equal(got.r.transfer.credit, "pool:telegram:-1001234");
    assert_int_equal(got.r.transfer.amount, 300);
    assert_int_equal(got.r.transfer.kind, LEDGER_KIND_TRANSFER);
    assert_string_equal(got.r.transfer.ref, "group became a supergroup");

    /* Reported again: the old pool is empty, nothing moves. */
    mv = migrate(&t, &core, &move_42);
    assert_int_equal(mv.rc, 0);
    assert_int_equal(mv.credits, 0);
    assert_int_equal(lt_balance(&t, "pool:telegram:-42").posted, 0);
    assert_int_equal(lt_balance(&t, "pool:telegram:-1001234").posted, 300);

    /* Credits that reach the old pool later are not moved by the same
     * migration: its one transfer exists with another amount. */
    fund(&t, "grant-2", "pool:telegram:-42", 50);
    mv = migrate(&t, &core, &move_42);
    assert_int_equal(mv.rc, HB_ECONFLICT);
    assert_int_equal(mv.credits, 50);
    assert_int_equal(lt_balance(&t, "pool:telegram:-42").posted, 50);
    assert_int_equal(lt_balance(&t, "pool:telegram:-1001234").posted, 300);
    lt_done(&t);
}

static void test_pool_migrate_reported_twice_at_once(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct core core = {.ledger = t.ledger};
    fund(&t, "grant-1", "pool:telegram:-42", 300);
    /* The update and a send's answer both report the move. */
    struct moved a = {0}, b = {0};
    assert_int_equal(pool_migrate(&core, &move_42, moved_cb, &a), 0);
    assert_int_equal(pool_migrate(&core, &move_42, moved_cb, &b), 0);
    while (!a.done || !b.done)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_true(a.rc == 0 || a.rc == HB_EEXISTS);
    assert_true(b.rc == 0 || b.rc == HB_EEXISTS);
    assert_true(a.rc == 0 || b.rc == 0);
    assert_int_equal(lt_balance(&t, "pool:telegram:-42").posted, 0);
    assert_int_equal(lt_balance(&t, "pool:telegram:-1001234").posted, 300);
    lt_done(&t);
}

static void test_pool_migrate_without_pool(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct core core = {.ledger = t.ledger};
    struct moved mv = migrate(&t, &core, &move_42);
    assert_int_equal(mv.rc, HB_ENOTFOUND);
    assert_int_equal(mv.credits, 0);
    /* No new pool was opened for nothing. */
    struct lt_res got = {0};
    assert_int_equal(ledger_balance_get(t.ledger, "pool:telegram:-1001234", lt_cb, &got), 0);
    lt_wait(&t, &got);
    assert_int_equal(got.rc, HB_ENOTFOUND);

    /* An empty pool: nothing to move, nothing opened either. */
    struct lt_res r;
    lt_open(&t, "pool:telegram:-42", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &r);
    mv = migrate(&t, &core, &move_42);
    assert_int_equal(mv.rc, 0);
    assert_int_equal(mv.credits, 0);
    memset(&got, 0, sizeof(got));
    assert_int_equal(ledger_balance_get(t.ledger, "pool:telegram:-1001234", lt_cb, &got), 0);
    lt_wait(&t, &got);
    assert_int_equal(got.rc, HB_ENOTFOUND);
    lt_done(&t);
}

static void test_pool_migrate_refuses_bad_requests(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct core core = {.ledger = t.ledger};
    struct moved mv = {0};
    struct pool_migration same = move_42;
    same.to = same.from;
    assert_int_equal(pool_migrate(&core, &same, moved_cb, &mv), HB_EINVAL);
    struct pool_migration noid = move_42;
    noid.id = "";
    assert_int_equal(pool_migrate(&core, &noid, moved_cb, &mv), HB_EINVAL);
    struct pool_migration noscope = move_42;
    noscope.from = "";
    assert_int_equal(pool_migrate(&core, &noscope, moved_cb, &mv), HB_EINVAL);
    struct core stopping = {.ledger = NULL};
    assert_int_equal(pool_migrate(&stopping, &move_42, moved_cb, &mv), HB_ECANCELED);
    assert_false(mv.done);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pool_migrate_moves_once),
    cmocka_unit_test(test_pool_migrate_reported_twice_at_once),
    cmocka_unit_test(test_pool_migrate_without_pool),
    cmocka_unit_test(test_pool_migrate_refuses_bad_requests),
};

TEST_GROUP_DEFINE(pool, tests, lt_group_setup, lt_group_teardown)
