/* Upvote counts for leaderboards (core/votes.c, the store's votes table):
 * calendar periods in UTC with ISO weeks, one count per voter even when two
 * presses share a group commit, the top-N read through its index, and the
 * migration that counts the votes an older database stored one per row. */
#include "tests/test.h"

#include "base/error.h"
#include "core/state.h"
#include "core/votes.h"
#include "storage/store.h"
#include "tests/core/ledger_helpers.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

static int64_t day_ms(int y, int m, int d)
{
    /* Days from civil (proleptic Gregorian), as in H. Hinnant's algorithm. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * DAY_MS;
}

static void test_votes_periods(void **state)
{
    (void)state;
    static const struct {
        int y, m, d;
        const char *day, *week, *month;
    } cases[] = {
        {2026, 1, 1, "d2026-01-01", "w2026-W01", "m2026-01"},   /* a Thursday */
        {2024, 12, 30, "d2024-12-30", "w2025-W01", "m2024-12"}, /* Monday of next year's W01 */
        {2021, 1, 3, "d2021-01-03", "w2020-W53", "m2021-01"},   /* Sunday of last year's W53 */
        {2027, 1, 1, "d2027-01-01", "w2026-W53", "m2027-01"},
        {2026, 12, 5, "d2026-12-05", "w2026-W49", "m2026-12"},
        {2026, 11, 30, "d2026-11-30", "w2026-W49", "m2026-11"}, /* the Monday of that week */
        {2026, 12, 6, "d2026-12-06", "w2026-W49", "m2026-12"},  /* its Sunday */
        {2026, 12, 7, "d2026-12-07", "w2026-W50", "m2026-12"},
        {1970, 1, 1, "d1970-01-01", "w1970-W01", "m1970-01"},
    };
    for (size_t i = 0; i < TEST_ARRAY_SIZE(cases); i++) {
        char buf[VOTES_PERIOD_MAX];
        int64_t at[] = {day_ms(cases[i].y, cases[i].m, cases[i].d),
                        day_ms(cases[i].y, cases[i].m, cases[i].d) + DAY_MS - 1};
        for (size_t k = 0; k < 2; k++) {
            assert_int_equal(votes_period(VOTES_DAY, at[k], buf, sizeof(buf)), 0);
            assert_string_equal(buf, cases[i].day);
            assert_int_equal(votes_period(VOTES_WEEK, at[k], buf, sizeof(buf)), 0);
            assert_string_equal(buf, cases[i].week);
            assert_int_equal(votes_period(VOTES_MONTH, at[k], buf, sizeof(buf)), 0);
            assert_string_equal(buf, cases[i].month);
            assert_int_equal(votes_period(VOTES_ALL, at[k], buf, sizeof(buf)), 0);
            assert_string_equal(buf, "all");
        }
    }
    char small[4];
    assert_int_equal(votes_period(VOTES_DAY, 0, small, sizeof(small)), HB_EINVAL);
}

/* ---- casting and reading through the store's thread ---------------------- */

struct vt_res {
    bool done;
    int rc;
    size_t n;
    struct store_vote rows[16];
};

static void vt_cast_cb(int rc, void *data)
{
    struct vt_res *r = data;
    r->done = true;
    r->rc = rc;
}

static void vt_top_cb(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct vt_res *r = data;
    r->done = true;
    r->rc = rc;
    r->n = n;
    for (size_t i = 0; i < n && i < TEST_ARRAY_SIZE(r->rows); i++)
        r->rows[i] = rows[i];
}

static void vt_wait(struct lt *t, struct vt_res *r)
{
    while (!r->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static int vt_cast(struct lt *t, const char *scope, const char *image, const char *voter,
                   int64_t now_ms)
{
    struct votes_cast v = {.scope = scope,
                           .image = image,
                           .voter = voter,
                           .creator = "maker",
                           .model = "img-model",
                           .now_ms = now_ms};
    struct vt_res r = {0};
    assert_int_equal(votes_cast(ledger_store(t->ledger), &v, vt_cast_cb, &r), 0);
    vt_wait(t, &r);
    return r.rc;
}

static struct vt_res vt_top(struct lt *t, const char *scope, enum votes_span span, int64_t now_ms)
{
    struct vt_res r = {0};
    assert_int_equal(votes_top(ledger_store(t->ledger), scope, span, now_ms, 10, vt_top_cb, &r), 0);
    vt_wait(t, &r);
    assert_int_equal(r.rc, 0);
    return r;
}

static void test_votes_cast_once_per_period(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    int64_t mon = day_ms(2026, 11, 30) + 3600000; /* Monday 01:00 UTC */
    int64_t sun = day_ms(2026, 12, 6) + 82800000; /* Sunday 23:00, same week */
    int64_t next = day_ms(2026, 12, 7) + 60000;   /* the next Monday */
    assert_int_equal(vt_cast(&t, "console:g", "img-a", "console:v1", mon), 0);
    assert_int_equal(vt_cast(&t, "console:g", "img-a", "console:v2", sun), 0);
    assert_int_equal(vt_cast(&t, "console:g", "img-b", "console:v1", sun), 0);
    assert_int_equal(vt_cast(&t, "console:g", "img-b", "console:v3", next), 0);
    assert_int_equal(vt_cast(&t, "console:g", "img-b", "console:v4", next), 0);
    /* Again: refused, nothing counted. */
    assert_int_equal(vt_cast(&t, "console:g", "img-a", "console:v1", next), HB_EEXISTS);
    /* A DM image: marked once, on no board. */
    assert_int_equal(vt_cast(&t, NULL, "img-dm", "console:v1", next), 0);
    assert_int_equal(vt_cast(&t, NULL, "img-dm", "console:v1", next), HB_EEXISTS);

    struct vt_res r = vt_top(&t, "console:g", VOTES_WEEK, sun);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0].image, "img-a");
    assert_int_equal(r.rows[0].count, 2);
    assert_string_equal(r.rows[0].creator, "maker");
    assert_string_equal(r.rows[0].model, "img-model");
    assert_string_equal(r.rows[1].image, "img-b");
    assert_int_equal(r.rows[1].count, 1);
    r = vt_top(&t, "console:g", VOTES_WEEK, next);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.rows[0].image, "img-b");
    assert_int_equal(r.rows[0].count, 2);
    r = vt_top(&t, "console:g", VOTES_DAY, sun);
    assert_int_equal(r.n, 2); /* a tie at 1, by image id */
    assert_string_equal(r.rows[0].image, "img-a");
    assert_string_equal(r.rows[1].image, "img-b");
    r = vt_top(&t, "console:g", VOTES_MONTH, next); /* December */
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0].image, "img-b");
    assert_int_equal(r.rows[0].count, 3);
    assert_int_equal(r.rows[1].count, 1);
    r = vt_top(&t, "console:g", VOTES_MONTH, mon); /* November: the Monday's vote */
    assert_int_equal(r.n, 1);
    assert_string_equal(r.rows[0].image, "img-a");
    assert_int_equal(r.rows[0].count, 1);
    r = vt_top(&t, "console:g", VOTES_ALL, next);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0].image, "img-b");
    assert_int_equal(r.rows[0].count, 3);
    assert_int_equal(r.rows[1].count, 2);
    assert_int_equal(vt_top(&t, "console:other", VOTES_ALL, next).n, 0);
    assert_int_equal(vt_top(&t, "console:g", VOTES_WEEK, day_ms(2026, 11, 29)).n, 0);

    /* The counts survive a restart. */
    lt_ledger_close(&t);
    lt_ledger_open(&t);
    r = vt_top(&t, "console:g", VOTES_ALL, next);
    assert_int_equal(r.rows[0].count, 3);
    assert_int_equal(vt_cast(&t, "console:g", "img-b", "console:v4", next), HB_EEXISTS);
    lt_done(&t);
}

/* Two presses by the same member in one group commit count once. */
static void test_votes_concurrent_presses_count_once(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    int64_t now = day_ms(2026, 12, 5);
    struct votes_cast v = {.scope = "console:g",
                           .image = "img-a",
                           .voter = "console:v1",
                           .creator = "maker",
                           .model = "m",
                           .now_ms = now};
    struct vt_res r[8];
    memset(r, 0, sizeof(r));
    for (size_t i = 0; i < TEST_ARRAY_SIZE(r); i++)
        assert_int_equal(votes_cast(ledger_store(t.ledger), &v, vt_cast_cb, &r[i]), 0);
    size_t counted = 0;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(r); i++) {
        vt_wait(&t, &r[i]);
        if (r[i].rc == 0)
            counted++;
        else
            assert_int_equal(r[i].rc, HB_EEXISTS);
    }
    assert_int_equal(counted, 1);
    struct vt_res top = vt_top(&t, "console:g", VOTES_WEEK, now);
    assert_int_equal(top.n, 1);
    assert_int_equal(top.rows[0].count, 1);
    /* Bad arguments are refused before anything is queued. */
    struct votes_cast bad = v;
    bad.image = "";
    assert_int_equal(votes_cast(ledger_store(t.ledger), &bad, NULL, NULL), HB_EINVAL);
    assert_int_equal(votes_top(ledger_store(t.ledger), "", VOTES_ALL, now, 10, vt_top_cb, &top),
                     HB_EINVAL);
    assert_int_equal(votes_top(ledger_store(t.ledger), "console:g", VOTES_ALL, now,
                               VOTES_TOP_MAX + 1, vt_top_cb, &top),
                     HB_EINVAL);
    lt_done(&t);
}

/* ---- the migration of votes stored one per state row ----------------------- */

static int sql_int(const char *path, const char *sql)
{
    int64_t v = test_sql_int(path, sql);
    assert_true(v >= 0);
    return (int)v;
}

/* The query plan of the top-N read: its index, and no sort. */
static char *sql_plan(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char plan[1024] = "";
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char q[512];
    snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        size_t len = strlen(plan);
        snprintf(plan + len, sizeof(plan) - len, "%s\n", d != NULL ? d : "");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return strdup(plan);
}

/* The old form: "<scope>/<day>/<image>/<voter>" = "<creator>|<model>". */
static void old_vote(struct store_txn *txn, const char *scope, int64_t day, const char *image,
                     const char *voter, const char *value)
{
    char key[256];
    snprintf(key, sizeof(key), "%s/%lld/%s/%s", scope, (long long)day, image, voter);
    assert_int_equal(store_txn_state_put(txn, "gen.vote", key, value, 0), 0);
}

static int64_t top_count(struct store *s, const char *scope, const char *period, const char *image)
{
    struct store_txn *txn = NULL;
    struct store_vote rows[VOTES_TOP_MAX];
    size_t n = 0;
    assert_int_equal(store_txn_begin(s, false, &txn), 0);
    assert_int_equal(store_txn_vote_top(txn, scope, period, rows, VOTES_TOP_MAX, &n), 0);
    assert_int_equal(store_txn_end(txn, false), 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].image, image) == 0)
            return rows[i].count;
    }
    return 0;
}

static void test_votes_migrated_from_state_rows(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    int rc = 0;
    snprintf(path, sizeof(path), "%s/s.db", dir);
    struct store_options o = {.path = path, .schema_version = 3, .relaxed_sync = true};
    struct store *s = store_new(&o, &rc);
    assert_non_null(s);
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    /* One vote a day on image "a" over two year ends (ISO weeks that straddle
     * them), two voters on "b" one day, and a vote in another group. */
    int64_t spans[][2] = {{day_ms(2020, 12, 20) / DAY_MS, day_ms(2021, 1, 12) / DAY_MS},
                          {day_ms(2026, 12, 20) / DAY_MS, day_ms(2027, 1, 12) / DAY_MS}};
    for (size_t k = 0; k < 2; k++) {
        for (int64_t d = spans[k][0]; d <= spans[k][1]; d++)
            old_vote(txn, "telegram:-100", d, "a", "telegram:1", "alice|img-x");
    }
    int64_t bday = day_ms(2026, 12, 31) / DAY_MS;
    old_vote(txn, "telegram:-100", bday, "b", "telegram:2", "bob|img-y");
    old_vote(txn, "telegram:-100", bday, "b", "telegram:3", "bob|img-y");
    old_vote(txn, "discord:7", bday, "c", "discord:9", "carol|");
    assert_int_equal(store_txn_state_put(txn, "gen.upvote", "b/telegram:2", "1", 0), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);

    o.schema_version = 0;
    s = store_new(&o, &rc);
    assert_non_null(s);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    /* Every day, ISO week and month the C side names holds what the old rows
     * said: the SQL of the migration and votes_period agree. */
    for (size_t k = 0; k < 2; k++) {
        for (int64_t d = spans[k][0]; d <= spans[k][1]; d++) {
            char p[VOTES_PERIOD_MAX];
            int64_t want_week = 0, want_month = 0;
            char wk[VOTES_PERIOD_MAX], mo[VOTES_PERIOD_MAX];
            assert_int_equal(votes_period(VOTES_WEEK, d * DAY_MS, wk, sizeof(wk)), 0);
            assert_int_equal(votes_period(VOTES_MONTH, d * DAY_MS, mo, sizeof(mo)), 0);
            for (size_t j = 0; j < 2; j++) {
                for (int64_t e = spans[j][0]; e <= spans[j][1]; e++) {
                    assert_int_equal(votes_period(VOTES_WEEK, e * DAY_MS, p, sizeof(p)), 0);
                    want_week += strcmp(p, wk) == 0;
                    assert_int_equal(votes_period(VOTES_MONTH, e * DAY_MS, p, sizeof(p)), 0);
                    want_month += strcmp(p, mo) == 0;
                }
            }
            assert_int_equal(votes_period(VOTES_DAY, d * DAY_MS, p, sizeof(p)), 0);
            assert_int_equal(top_count(s, "telegram:-100", p, "a"), 1);
            assert_int_equal(top_count(s, "telegram:-100", wk, "a"), want_week);
            assert_int_equal(top_count(s, "telegram:-100", mo, "a"), want_month);
        }
    }
    assert_int_equal(top_count(s, "telegram:-100", "all", "a"),
                     (spans[0][1] - spans[0][0] + 1) + (spans[1][1] - spans[1][0] + 1));
    assert_int_equal(top_count(s, "telegram:-100", "w2026-W53", "b"), 2);
    assert_int_equal(top_count(s, "discord:7", "d2026-12-31", "c"), 1);
    assert_int_equal(top_count(s, "discord:7", "all", "a"), 0);
    struct store_txn *rt = NULL;
    struct store_vote rows[4];
    size_t n = 0;
    assert_int_equal(store_txn_begin(s, false, &rt), 0);
    assert_int_equal(store_txn_vote_top(rt, "telegram:-100", "d2026-12-31", rows, 4, &n), 0);
    assert_int_equal(store_txn_end(rt, false), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].image, "b");
    assert_string_equal(rows[0].creator, "bob");
    assert_string_equal(rows[0].model, "img-y");
    assert_int_equal(rows[0].count, 2);
    store_free(s);
    /* The old rows are gone; the marks that keep votes once stay. */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM state WHERE ns = 'gen.vote'"), 0);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM state WHERE ns = 'gen.upvote'"), 1);
    char *plan = sql_plan(path, "SELECT image, creator, model, count FROM votes"
                                " WHERE scope = 'x' AND period = 'all'"
                                " ORDER BY count DESC, image LIMIT 10");
    if (strstr(plan, "votes_top") == NULL || strstr(plan, "TEMP B-TREE") != NULL)
        fail_msg("the top-N read does not walk its index:\n%s", plan);
    free(plan);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_votes_periods),
    cmocka_unit_test(test_votes_cast_once_per_period),
    cmocka_unit_test(test_votes_concurrent_presses_count_once),
    cmocka_unit_test(test_votes_migrated_from_state_rows),
};

TEST_GROUP_DEFINE(votes, tests, lt_group_setup, lt_group_teardown)
