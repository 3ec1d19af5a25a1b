/* The rules under the generation limits, without the engine: the price of
 * reported usage is never above the configured price, and the store's
 * durable counters follow an in-memory model under thousands of random
 * moves, across reopening the database, with the invariants checked after
 * every step. */
#include "tests/test.h"

#include "core/catalog.h"
#include "core/ledger.h"
#include "tests/core/ledger_helpers.h"
#include "base/error.h"
#include "storage/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- item: the price is never rounded up -------------------------------- */

static void test_price_never_above_configured(void **state)
{
    (void)state;
    /* 1 credit a request and 1 credit per 1,000 tokens each way: 10 in and
     * 20 out cost 1.03 credits, so the member pays 1, not 3. */
    struct catalog_model m = {.price_request = 1, .price_input_1k = 1, .price_output_1k = 1};
    assert_int_equal(catalog_cost(&m, 10, 20), 1);
    assert_int_equal(catalog_cost(&m, 999, 1), 2);
    assert_int_equal(catalog_cost(&m, 0, 0), 1);
    /* The parts add up before rounding: 600 + 600 thousandths is 1 credit. */
    struct catalog_model half = {.price_input_1k = 1, .price_output_1k = 1};
    assert_int_equal(catalog_cost(&half, 600, 600), 1);

    /* Random prices and usage: the charge is the exact price rounded
     * down, and never above the reservation's upper bound. */
    srand(1213);
    for (int i = 0; i < 20000; i++) {
        struct catalog_model r = {.price_request = rand() % 5,
                                  .price_input_1k = rand() % 300,
                                  .price_output_1k = rand() % 300,
                                  .max_output_tokens = 1 + rand() % 4000};
        long in = rand() % 5000;
        long out = rand() % (r.max_output_tokens + 1);
        int64_t exact_milli =
            r.price_request * 1000 + in * r.price_input_1k + out * r.price_output_1k;
        int64_t cost = catalog_cost(&r, in, out);
        assert_true(cost * 1000 <= exact_milli);
        assert_true(exact_milli - cost * 1000 < 1000);
        assert_true(cost <= catalog_estimate(&r, (size_t)in));
    }
}

/* ---- the counters against a model ------------------------------------------ */

#define CM_NAMES 3
#define CM_WINS 4

struct cm {
    int64_t used[CM_NAMES][CM_WINS]; /* the model; windows before floor are gone */
    int64_t floor[CM_NAMES];         /* lowest window still stored per name */
};

static const char *const cm_names[CM_NAMES] = {"gen.user:console:a", "gen.group:console:g",
                                               "gen.tokens"};

static void cm_check(struct store *s, const struct cm *m)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, false, &txn), 0);
    for (int n = 0; n < CM_NAMES; n++) {
        for (int w = 0; w < CM_WINS; w++) {
            int64_t used = -1;
            assert_int_equal(store_txn_counter_get(txn, cm_names[n], w, &used), 0);
            int64_t want = w < m->floor[n] ? 0 : m->used[n][w];
            assert_int_equal(used, want);
            assert_true(used >= 0);
        }
    }
    assert_int_equal(store_txn_end(txn, true), 0);
}

/* One move on the model: the store's rule, stated plainly. */
static int cm_apply(struct cm *m, int n, int w, int64_t delta, int64_t limit, int64_t *used)
{
    if (w > m->floor[n]) {
        for (int k = m->floor[n]; k < w; k++)
            m->used[n][k] = 0;
        m->floor[n] = w;
    }
    int64_t cur = w < m->floor[n] ? 0 : m->used[n][w];
    if (delta > 0 && limit > 0 && cur + delta > limit) {
        *used = cur;
        return HB_ELIMIT;
    }
    cur += delta;
    if (cur < 0)
        cur = 0;
    m->used[n][w] = cur;
    *used = cur;
    return 0;
}

static void test_counters_follow_model(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/c.db", dir);
    struct store_options o = {.path = path, .relaxed_sync = true};
    int rc = 0;
    struct store *s = store_new(&o, &rc);
    assert_non_null(s);
    struct cm m;
    memset(&m, 0, sizeof(m));
    srand(4242);
    for (int step = 0; step < 4000; step++) {
        int op = rand() % 100;
        if (op < 2) {
            /* A restart: the counters are whatever the file holds. */
            store_free(s);
            s = store_new(&o, &rc);
            assert_non_null(s);
        } else if (op < 20) {
            /* A job's take: several counters, all or none (the savepoint
             * the store gives each job, made by hand here). */
            struct cm before = m;
            struct store_txn *txn = NULL;
            assert_int_equal(store_txn_begin(s, true, &txn), 0);
            int w = m.floor[0] + rand() % 2;
            if (w >= CM_WINS)
                w = CM_WINS - 1;
            bool ok = true;
            for (int n = 0; n < CM_NAMES && ok; n++) {
                int wn = w < m.floor[n] ? m.floor[n] : w;
                int64_t delta = 1 + rand() % 4, limit = 1 + rand() % 12, got = 0, want = 0;
                int r = store_txn_counter_add(txn, cm_names[n], wn, delta, limit, &got);
                int mr = cm_apply(&m, n, wn, delta, limit, &want);
                assert_int_equal(r, mr);
                assert_int_equal(got, want);
                assert_true(got <= limit || r == HB_ELIMIT);
                ok = r == 0;
            }
            assert_int_equal(store_txn_end(txn, ok), 0);
            if (!ok)
                m = before;
        } else {
            int n = rand() % CM_NAMES;
            int w = m.floor[n] + rand() % 2;
            if (w >= CM_WINS)
                w = CM_WINS - 1;
            int64_t delta = (rand() % 9) - 3;
            int64_t limit = rand() % 3 == 0 ? 0 : rand() % 15;
            int64_t before = w < m.floor[n] ? 0 : m.used[n][w];
            int64_t got = -1, want = -1;
            struct store_txn *txn = NULL;
            assert_int_equal(store_txn_begin(s, true, &txn), 0);
            int r = store_txn_counter_add(txn, cm_names[n], w, delta, limit, &got);
            assert_int_equal(store_txn_end(txn, true), 0);
            int mr = cm_apply(&m, n, w, delta, limit, &want);
            assert_int_equal(r, mr);
            assert_int_equal(got, want);
            /* A positive move never takes a bounded counter past its bound
             * unless it already was past it (a bound lowered later). */
            if (r == 0 && delta > 0 && limit > 0)
                assert_true(got <= limit);
            if (r == HB_ELIMIT)
                assert_int_equal(got, before);
        }
        cm_check(s, &m);
    }
    store_free(s);
    test_tmpdir_remove(dir);
    free(dir);
}

/* ---- counts taken with a reservation --------------------------------------- */

struct guard_ctx {
    int64_t limit;
    int runs;
    int64_t used;
};

static int guard_take(struct store_txn *txn, void *data)
{
    struct guard_ctx *g = data;
    g->runs++;
    return store_txn_counter_add(txn, "test.count", 1, 1, g->limit, &g->used);
}

static int64_t counter_of(struct lt *t)
{
    /* The ledger is closed: read the file directly. */
    struct store_options o = {.path = t->path};
    int rc = 0;
    struct store *s = store_new(&o, &rc);
    assert_non_null(s);
    struct store_txn *txn = NULL;
    int64_t used = -1;
    assert_int_equal(store_txn_begin(s, false, &txn), 0);
    assert_int_equal(store_txn_counter_get(txn, "test.count", 1, &used), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);
    return used;
}

/* A reservation's guard moves in its transaction: a guard that refuses
 * fails the reservation and leaves nothing behind; one that passes commits
 * with it; a reservation the ledger refuses (funds) or a replay never runs
 * it. */
static void test_reservation_guard(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct lt_res res;
    assert_int_equal(lt_open(&t, "w", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    struct guard_ctx g = {.limit = 2};
    struct ledger_transfer tr = {.id = "r1",
                                 .debit = "w",
                                 .credit = LEDGER_SYSTEM_REVENUE,
                                 .amount = 10,
                                 .kind = LEDGER_KIND_GENERATION,
                                 .flags = LEDGER_TRANSFER_PENDING,
                                 .timeout_ms = 60000,
                                 .guard = guard_take,
                                 .guard_data = &g};
    assert_int_equal(lt_transfer(&t, &tr, &res), 0);
    assert_int_equal(g.used, 1);
    assert_int_equal(lt_transfer(&t, &tr, &res), HB_EEXISTS); /* a replay */
    assert_int_equal(g.runs, 1);
    tr.id = "r2";
    tr.amount = 1000; /* more than the wallet holds */
    assert_int_equal(lt_transfer(&t, &tr, &res), HB_EFUNDS);
    tr.amount = 10;
    assert_int_equal(lt_transfer(&t, &tr, &res), 0);
    tr.id = "r3";
    assert_int_equal(lt_transfer(&t, &tr, &res), HB_ELIMIT);
    assert_int_equal(lt_balance(&t, "w").pending_debits, 20);
    /* A post carries a guard only through ledger_transfer_post_split. */
    struct ledger_transfer post = {.id = "p1",
                                   .pending_id = "r1",
                                   .amount = 5,
                                   .flags = LEDGER_TRANSFER_POST,
                                   .guard = guard_take,
                                   .guard_data = &g};
    assert_int_equal(lt_transfer(&t, &post, &res), HB_EINVAL);
    assert_int_equal(g.runs, 3); /* r1, r2, r3: never for the replay or the funds refusal */
    lt_ledger_close(&t);
    assert_int_equal(counter_of(&t), 2);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_price_never_above_configured),
    cmocka_unit_test(test_counters_follow_model),
    cmocka_unit_test(test_reservation_guard),
};

TEST_GROUP_DEFINE(limits, tests, NULL, NULL)
