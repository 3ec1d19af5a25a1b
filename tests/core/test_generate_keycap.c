/* Spending caps of credits hold in the store: an API key's (per day and in
 * total) and a group pool's daily cap. Each reservation counts what it
 * holds against them in its own commit, refused when that would pass a
 * cap, so jobs in flight together never spend past one (as several
 * daemons over one ledger do not); the charge settles the count, and a
 * failure gives it back. A pool that reached its cap leaves the job to the
 * member's wallet when the policy allows. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "core/ledger.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/error.h"

#include <stdio.h>
#include <string.h>

/* A counter as the database has it now (read beside the store, as WAL
 * lets a second connection read). */
static int64_t counter(struct gt *gt, const char *name, int64_t win)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE((SELECT used FROM counters WHERE name = '%s' AND win = %lld), 0)",
             name, (long long)win);
    int64_t v = test_sql_int(gt->lt.path, sql);
    assert_true(v >= 0);
    return v;
}

/* Wait until the counter reads want. */
static void counter_wait(struct gt *gt, const char *name, int64_t win, int64_t want)
{
    while (counter(gt, name, win) != want && !gt->guard_fired)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    assert_int_equal(counter(gt, name, win), want);
}

/* A request through key "k1" with these caps, as the HTTP API makes it. */
static void key_submit_model(struct gt *gt, struct reply_capture *cap, const char *user,
                             const char *model, int64_t cap_day, int64_t cap_total)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    char payer[64];
    snprintf(payer, sizeof(payer), "console:%s", user);
    struct generate_request req = {.modality = PROVIDER_TEXT,
                                   .prompt = "four",
                                   .model = model,
                                   .payer = payer,
                                   .key_id = "k1",
                                   .key_cap_day = cap_day,
                                   .key_cap_total = cap_total};
    generate_submit(gt->g, &inv, &req);
}

static void key_submit(struct gt *gt, struct reply_capture *cap, const char *user, int64_t cap_day,
                       int64_t cap_total)
{
    key_submit_model(gt, cap, user, "h", cap_day, cap_total);
}

/* ... and wait for its final reply. */
static void key_run(struct gt *gt, struct reply_capture *cap, const char *user, int64_t cap_day,
                    int64_t cap_total)
{
    key_submit(gt, cap, user, cap_day, cap_total);
    gt_wait(gt, &cap->finished, 1);
}

static int64_t today(const struct gt *gt)
{
    return gt->wall / 86400000;
}

/* Reservations in flight count against the cap together; the charges
 * settle it; a request that would pass it is refused, saying what is left. */
static void test_key_cap_counts_reservations(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture a, b, c;
    key_submit(&gt, &a, "u1", 0, 30);
    struct provider_call *ca = held_wait_call(&gt, 0);
    int64_t est = counter(&gt, "gen.key:k1", 0); /* what one request holds */
    assert_true(est > 10 && est * 2 <= 30 && est * 3 > 30);
    /* The second waits in the queue (one call at a time), its hold taken. */
    key_submit(&gt, &b, "u2", 0, 30);
    counter_wait(&gt, "gen.key:k1", 0, 2 * est);
    key_run(&gt, &c, "u3", 0, 30);
    char want[256];
    snprintf(want, sizeof(want), MSG_GEN_KEY_TOTAL_CAP, (long long)est, 30LL,
             (long long)(30 - 2 * est));
    assert_has(&c, want);
    reply_capture_close(&c);
    assert_int_equal(gt.held.ncalls, 1);
    assert_int_equal(counter(&gt, "gen.key:k1", 0), 2 * est);
    held_finish(ca, 0, "one", 20, 29);
    gt_wait(&gt, &a.finished, 1);
    held_finish(held_wait_call(&gt, 1), 0, "two", 20, 29);
    gt_wait(&gt, &b.finished, 1);
    int64_t charged = (100 - gt_balance(&gt, "u1")) + (100 - gt_balance(&gt, "u2"));
    assert_true(charged > 0 && charged < 2 * est);
    counter_wait(&gt, "gen.key:k1", 0, charged);
    reply_capture_close(&a);
    reply_capture_close(&b);
    gt_done(&gt);
}

/* The daily cap counts by the UTC day: refused today, room tomorrow. A
 * failed request gives its hold back. */
static void test_key_day_cap(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture a, b;
    key_submit(&gt, &a, "u1", 20, 0);
    struct provider_call *ca = held_wait_call(&gt, 0);
    int64_t est = counter(&gt, "gen.key.day:k1", today(&gt));
    assert_true(est > 10 && est <= 20);
    assert_int_equal(counter(&gt, "gen.key:k1", 0), 0); /* no total cap: no count */
    key_run(&gt, &b, "u2", 20, 0);
    char want[256];
    snprintf(want, sizeof(want), MSG_GEN_KEY_DAY_CAP, (long long)est, 20LL, (long long)(20 - est));
    assert_has(&b, want);
    reply_capture_close(&b);
    /* The first fails: nothing charged, its hold given back. */
    held_finish(ca, HB_EPROTO, NULL, -1, -1);
    gt_wait(&gt, &a.finished, 1);
    reply_capture_close(&a);
    counter_wait(&gt, "gen.key.day:k1", today(&gt), 0);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    /* A day's whole cap spent on one request (settled at its charge). */
    key_submit(&gt, &a, "u1", 20, 0);
    held_finish(held_wait_call(&gt, 1), 0, "fine", 20, 29);
    gt_wait(&gt, &a.finished, 1);
    reply_capture_close(&a);
    int64_t charged = 100 - gt_balance(&gt, "u1");
    counter_wait(&gt, "gen.key.day:k1", today(&gt), charged);
    /* Tomorrow the day's count starts again. */
    gt.wall += 86400000;
    key_submit(&gt, &a, "u1", 20, 0);
    held_wait_call(&gt, 2);
    assert_int_equal(counter(&gt, "gen.key.day:k1", today(&gt)), est);
    held_finish(held_wait_call(&gt, 2), 0, "again", 1, 1);
    gt_wait(&gt, &a.finished, 1);
    reply_capture_close(&a);
    gt_done(&gt);
}

/* The charge is refused (its reservation ran out while the answer was
 * being made): nothing is charged, so nothing counts against the key's
 * caps, and the day's count gives its hold back too. The give-back of a
 * settled job moves in its charge's transaction, so it cannot keep a
 * charge that never happened. */
static void test_key_cap_charge_refused(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture a;
    key_submit(&gt, &a, "u1", 25, 30);
    struct provider_call *ca = held_wait_call(&gt, 0);
    int64_t est = counter(&gt, "gen.key:k1", 0);
    assert_true(est > 0);
    assert_int_equal(counter(&gt, "gen.key.day:k1", today(&gt)), est);
    gt.lt.now += 3600000; /* the ledger's clock: past the reservation's 10 minutes */
    held_finish(ca, 0, "late", 20, 29);
    gt_wait(&gt, &a.finished, 1);
    reply_capture_close(&a);
    struct lt_res ex;
    assert_int_equal(lt_expire(&gt.lt, &ex), 0); /* what the ledger's timer does */
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    counter_wait(&gt, "gen.key:k1", 0, 0);
    counter_wait(&gt, "gen.key.day:k1", today(&gt), 0);
    gt_done(&gt);
}

/* A fallback dearer than the first model holds the difference against
 * the cap; when that does not fit, the request ends refused, nothing
 * charged and its hold given back. */
static void test_key_cap_fallback(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.welcome_bonus = 1000;
    struct reply_capture a;
    key_submit_model(&gt, &a, "u1", "hcheap", 0, 1000);
    struct provider_call *c0 = held_wait_call(&gt, 0);
    int64_t first = counter(&gt, "gen.key:k1", 0);
    held_finish(c0, HB_EPROTO, NULL, -1, -1);
    struct provider_call *c1 = held_wait_call(&gt, 1);
    assert_string_equal(c1->model, "hdear");
    int64_t dearer = counter(&gt, "gen.key:k1", 0);
    assert_true(dearer > first);
    held_finish(c1, 0, "big", 5, 5);
    gt_wait(&gt, &a.finished, 1);
    assert_has(&a, "big");
    reply_capture_close(&a);
    int64_t charged = 1000 - gt_balance(&gt, "u1");
    counter_wait(&gt, "gen.key:k1", 0, charged);

    /* Room for the first model's hold and one credit more. */
    int64_t cap = charged + first + 1;
    key_submit_model(&gt, &a, "u2", "hcheap", 0, cap);
    held_finish(held_wait_call(&gt, 2), HB_EPROTO, NULL, -1, -1);
    gt_wait(&gt, &a.finished, 1);
    char want[256];
    snprintf(want, sizeof(want), MSG_GEN_KEY_TOTAL_CAP, (long long)dearer, (long long)cap, 1LL);
    assert_has(&a, want);
    reply_capture_close(&a);
    assert_int_equal(gt.held.ncalls, 3);
    counter_wait(&gt, "gen.key:k1", 0, charged);
    assert_int_equal(gt_balance(&gt, "u2"), 1000);
    gt_done(&gt);
}

/* A crash leaves a job with record, and the restart's recovery voids it. */
static void crash_recover(struct gt *gt, const char *record)
{
    gt_crashed(gt, record);
    struct gt_recovered rec = {0};
    assert_int_equal(generate_recover(gt->g, gt_recovered_cb, &rec), 0);
    gt_wait(gt, &rec.done, 1);
    assert_int_equal(rec.voided, 1);
}

static int counters_take(struct store_txn *txn, void *data)
{
    const int64_t *day = data;
    int rc = store_txn_counter_add(txn, "gen.key:k1", 0, 12, 0, NULL);
    if (rc == 0)
        rc = store_txn_counter_add(txn, "gen.key.day:k1", *day, 12, 0, NULL);
    return rc;
}

/* What a crash leaves of a request through a capped key: its open
 * reservation, its record (which names the key and what it holds) and the
 * counts. The restart's recovery voids the reservation and gives the
 * counts back. */
static void test_key_cap_crash(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    int64_t day = today(&gt);
    assert_int_equal(lt_store_run(&gt.lt, counters_take, &day), 0);
    char record[256];
    snprintf(record, sizeof(record), "console:u1 1 run-old 0 0 0 0 - k k1 12 %lld 50 50",
             (long long)day);
    crash_recover(&gt, record);
    counter_wait(&gt, "gen.key:k1", 0, 0);
    counter_wait(&gt, "gen.key.day:k1", day, 0);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    gt_done(&gt);
}

static int pool_take(struct store_txn *txn, void *data)
{
    const int64_t *day = data;
    return store_txn_counter_add(txn, "gen.pool.day:pool:console:g1", *day, 12, 0, NULL);
}

/* A crash's record of a job the pool paid (" p <pool> <held> <day>"): the
 * restart gives the pool's count back with the reservation it voids. */
static void test_pool_cap_crash(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    int64_t day = today(&gt);
    assert_int_equal(lt_store_run(&gt.lt, pool_take, &day), 0);
    char record[256];
    snprintf(record, sizeof(record), "console:u1 1 run-old 0 0 0 0 - p pool:console:g1 12 %lld",
             (long long)day);
    crash_recover(&gt, record);
    counter_wait(&gt, "gen.pool.day:pool:console:g1", day, 0);
    gt_done(&gt);
}

/* A job of member `user` in group g1, answering into cap. */
static void group_submit(struct gt *gt, struct reply_capture *cap, const char *user)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, "g1");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "four", .model = "h"};
    generate_submit(gt->g, &inv, &req);
}

/* Jobs in flight together on a pool with a daily cap: the ones whose
 * holds fit are the pool's, the next goes to its member's wallet (pool
 * first), or is refused when the pool is the only payer left (wallet first
 * with an empty wallet). Before, each read the day's spend before it ran
 * (nothing yet) and all three spent the pool. */
static void test_pool_cap_counts_reservations(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt_pool_fund(&gt, "pool:console:g1", 1000);
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_POOL_FIRST, 30); /* two holds of 12 */
    struct reply_capture a, b, c;
    group_submit(&gt, &a, "m1");
    struct provider_call *ca = held_wait_call(&gt, 0);
    group_submit(&gt, &b, "m2");
    counter_wait(&gt, "gen.pool.day:pool:console:g1", today(&gt), 24);
    group_submit(&gt, &c, "m3");
    /* The third's hold went to m3's wallet: the pool's count is unchanged. */
    while (lt_balance(&gt.lt, "console:m3").pending_debits == 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(lt_balance(&gt.lt, "console:m3").pending_debits, 12);
    assert_int_equal(counter(&gt, "gen.pool.day:pool:console:g1", today(&gt)), 24);
    held_finish(ca, 0, "one", 20, 29);
    gt_wait(&gt, &a.finished, 1);
    held_finish(held_wait_call(&gt, 1), 0, "two", 20, 29);
    gt_wait(&gt, &b.finished, 1);
    held_finish(held_wait_call(&gt, 2), 0, "three", 20, 29);
    gt_wait(&gt, &c.finished, 1);
    int64_t pool_spent = 1000 - lt_balance(&gt.lt, "pool:console:g1").posted;
    int64_t charged = 100 - gt_balance(&gt, "m3");
    assert_true(charged > 0);
    assert_int_equal(pool_spent, 2 * charged); /* a and b, each charged as c was */
    assert_int_equal(gt_balance(&gt, "m1"), 100);
    counter_wait(&gt, "gen.pool.day:pool:console:g1", today(&gt), pool_spent);
    reply_capture_close(&a);
    reply_capture_close(&b);
    reply_capture_close(&c);

    /* Wallet first with an empty wallet: the pool is the only payer, and
     * its cap refuses what does not fit. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_WALLET_FIRST, pool_spent + 5);
    gt.core.welcome_bonus = 0;
    group_submit(&gt, &a, "empty");
    gt_wait(&gt, &a.finished, 1);
    char want[256];
    snprintf(want, sizeof(want), MSG_GEN_POOL_CAP, 12LL, (long long)(pool_spent + 5), 5LL,
             "in 23 h 50 min");
    assert_has(&a, want);
    reply_capture_close(&a);
    assert_int_equal(counter(&gt, "gen.pool.day:pool:console:g1", today(&gt)), pool_spent);
    gt_done(&gt);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_key_cap_counts_reservations),
    cmocka_unit_test(test_key_day_cap),
    cmocka_unit_test(test_key_cap_charge_refused),
    cmocka_unit_test(test_key_cap_fallback),
    cmocka_unit_test(test_key_cap_crash),
    cmocka_unit_test(test_pool_cap_counts_reservations),
    cmocka_unit_test(test_pool_cap_crash),
};

TEST_GROUP_DEFINE(generate_keycap, tests, gt_group_setup, lt_group_teardown)
