/* Generation on a shared ledger (PostgreSQL) when the server's answer to a
 * COMMIT is lost on the way (tests/fake/pg_proxy.h): the server committed,
 * the daemon's connection broke first. The charge or the void went into
 * the ledger with the limits' settlement in its transaction; the daemon
 * must not give those limits back a second time, nor tell the member that
 * nothing was charged. Below generation, the store itself asks the server
 * what became of such a commit (storage/pg_commit.c). */
#include "tests/core/test_generate.h"
#include "tests/fake/pg_proxy.h"
#include "tests/test.h"

#include "base/error.h"
#include "core/ledger.h"
#include "storage/store.h"

#include <stdio.h>
#include <string.h>

static int gt_group_setup_pg(void **state)
{
    gt_group_setup(state);
    return lt_group_setup_pg(state);
}

struct counter_read {
    const char *name;
    int64_t win, used;
};

static int counter_read_run(struct store_txn *txn, void *data)
{
    struct counter_read *r = data;
    return store_txn_counter_get(txn, r->name, r->win, &r->used);
}

/* A counter as the store has it, once the jobs queued before have run. */
static int64_t counter(struct gt *gt, const char *name, int64_t win)
{
    struct counter_read r = {.name = name, .win = win};
    assert_int_equal(lt_store_run(&gt->lt, counter_read_run, &r), 0);
    return r.used;
}

/* The engine's ledger reached through a relay that can lose an answer. */
static struct pg_proxy *gt_proxied(struct gt *gt)
{
    char proxied[sizeof(gt->lt.url)];
    struct pg_proxy *px = pg_proxy_start(gt->lt.url, proxied, sizeof(proxied));
    assert_non_null(px);
    memcpy(gt->lt.url, proxied, sizeof(proxied));
    gt_restart(gt);
    return px;
}

/* The engine with limits, through a relay (*px), then two jobs of u1's
 * (40 + 58 tokens each), then a third whose charge (marker ":post": its
 * provider answers 2 + 3 tokens) or void (":void": its provider fails)
 * commits with the answer lost; its final reply is in cap. Returns u1's
 * balance before the third. */
static int64_t lost_answer_run_refusing(struct gt *gt, struct pg_proxy **px,
                                        struct reply_capture *cap, const char *marker,
                                        unsigned refuse_ms)
{
    struct catalog_limits l = {.user_per_hour = 10, .tokens_per_day = 100000};
    gt_init(gt, &l, NULL, 0, 0);
    *px = gt_proxied(gt);
    for (size_t i = 0; i < 2; i++) {
        gt_submit(gt, cap, "u1", PROVIDER_TEXT, "h", "four");
        held_finish(held_wait_call(gt, i), 0, "fine", 40, 58);
        gt_wait(gt, &cap->finished, 1);
        reply_capture_close(cap);
    }
    assert_int_equal(counter(gt, "gen.tokens", gt->wall / 86400000), 196);
    assert_int_equal(counter(gt, "gen.user:console:u1", gt->wall / 3600000), 2);
    int64_t balance = gt_balance(gt, "u1");
    bool fail = strcmp(marker, ":void") == 0;
    gt_submit(gt, cap, "u1", PROVIDER_TEXT, "h", "four");
    struct provider_call *c = held_wait_call(gt, 2);
    pg_proxy_refuse_after_loss(*px, refuse_ms);
    pg_proxy_lose_commit_after(*px, marker);
    held_finish(c, fail ? HB_EPROTO : 0, fail ? NULL : "fine", fail ? -1 : 2, fail ? -1 : 3);
    gt_wait(gt, &cap->finished, 1);
    assert_int_equal(pg_proxy_lost(*px), 1);
    while (pg_proxy_refusing(*px)) /* the server back, for the reads below */
        uv_sleep(20);
    gt_settle(gt, 4);
    return balance;
}

static int64_t lost_answer_run(struct gt *gt, struct pg_proxy **px, struct reply_capture *cap,
                               const char *marker)
{
    return lost_answer_run_refusing(gt, px, cap, marker, 0);
}

/* The charge's commit answer lost (with the server out of reach for
 * refuse_ms after it): the member is told what was charged. */
static void charge_lost_check(unsigned refuse_ms)
{
    struct gt gt;
    struct pg_proxy *px = NULL;
    struct reply_capture cap;
    int64_t balance = lost_answer_run_refusing(&gt, &px, &cap, ":post", refuse_ms);
    assert_int_equal(counter(&gt, "gen.tokens", gt.wall / 86400000), 201);
    int64_t charged = balance - gt_balance(&gt, "u1");
    assert_true(charged > 0);
    char want[64];
    snprintf(want, sizeof(want), "cost %lld credit", (long long)charged);
    assert_has(&cap, want);
    reply_capture_close(&cap);
    gt_done(&gt);
    pg_proxy_stop(px);
}

/* The charge's commit answer is lost: it committed, with the unused
 * tokens given back in it. Before, the daemon took it for failed and gave
 * the unused tokens back again, on their own: the day's count fell by
 * them a second time; and it told the member nothing was charged. */
static void test_charge_commit_answer_lost(void **state)
{
    (void)state;
    charge_lost_check(0);
}

/* The charge's commit answer is lost and the server is out of reach for
 * 3 s, past the store's 2 s of asking what became of it: the job reads
 * the charge back, and waits for the server to do so. Before, the first
 * read failed too, and the member was told the job cost nothing. */
static void test_charge_read_back_waits_for_server(void **state)
{
    (void)state;
    charge_lost_check(3000);
}

/* The void's commit answer is lost: it committed, with the member's count
 * and the tokens held given back in it. Before, they went back a second
 * time on their own: the member's hourly count fell below what they had
 * used. */
static void test_void_commit_answer_lost(void **state)
{
    (void)state;
    struct gt gt;
    struct pg_proxy *px = NULL;
    struct reply_capture cap;
    int64_t balance = lost_answer_run(&gt, &px, &cap, ":void");
    reply_capture_close(&cap);
    assert_int_equal(counter(&gt, "gen.user:console:u1", gt.wall / 3600000), 2);
    assert_int_equal(counter(&gt, "gen.tokens", gt.wall / 86400000), 196);
    assert_int_equal(gt_balance(&gt, "u1"), balance);
    gt_done(&gt);
    pg_proxy_stop(px);
}

/* Any commit whose answer is lost, below generation: a grant, through the
 * ledger. The store asks the server what became of the transaction and
 * tells the caller it committed, where it used to say the batch failed
 * (HB_ESTORAGE) though the credits were granted. */
static void test_store_commit_answer_lost(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct pg_proxy *px = gt_proxied(&gt);
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_open(&gt.lt, "console:lost", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(res.rc, 0);
    pg_proxy_lose_commit_after(px, "grant-lost-answer");
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_plain(&gt.lt, "grant-lost-answer", LEDGER_SYSTEM_GRANTS, "console:lost", 70,
                              LEDGER_KIND_GRANT, &res),
                     0);
    assert_int_equal(pg_proxy_lost(px), 1);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.r.transfer.amount, 70);
    /* Granted once, and the store goes on on its new connection. */
    assert_int_equal(gt_balance(&gt, "lost"), 70);
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_plain(&gt.lt, "grant-after", LEDGER_SYSTEM_GRANTS, "console:lost", 5,
                              LEDGER_KIND_GRANT, &res),
                     0);
    assert_int_equal(res.rc, 0);
    assert_int_equal(gt_balance(&gt, "lost"), 75);
    gt_done(&gt);
    pg_proxy_stop(px);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_charge_commit_answer_lost),
    cmocka_unit_test(test_void_commit_answer_lost),
    cmocka_unit_test(test_charge_read_back_waits_for_server),
    cmocka_unit_test(test_store_commit_answer_lost),
};

TEST_GROUP_DEFINE(generate_pg, tests, gt_group_setup_pg, lt_group_teardown)
