/* Several daemons over one ledger (core/cluster.h): a lease has one holder
 * until it runs out, and the heartbeat voids the jobs of a run that died,
 * never those of a live one. Two clusters on one store stand for two
 * daemons: what a lease decides is a store job either way. */
#include "core/cluster.h"
#include "core/generate.h"
#include "core/ledger.h"
#include "core/state.h"
#include "base/error.h"
#include "tests/core/ledger_helpers.h"
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

#define LEASE_MS 300

/* The engine's manual clock (gt->wall), which the tests move. */
static struct clock gt_wall(struct gt *gt)
{
    struct clock c = {.now_ms = gt_clock, .data = gt};
    return c;
}

/* Time passes: by the engine's manual clock, and on PostgreSQL, whose
 * server's clock judges leases, by the real one too (the loop runs
 * meanwhile). */
static void advance(struct gt *gt, int ms)
{
    gt->wall += ms;
    if (lt_backend == STORE_BACKEND_POSTGRES)
        test_run_for(&gt->lt.loop, (uint64_t)ms);
}

struct took {
    int done;
    int rc;
    int64_t until;
    char holder[CLUSTER_RUN_MAX];
};

static void took_cb(int rc, const char *holder, int64_t until, void *data)
{
    struct took *t = data;
    t->rc = rc;
    t->until = until;
    snprintf(t->holder, sizeof(t->holder), "%s", holder != NULL ? holder : "");
    t->done++;
}

static int take_until(struct gt *gt, struct cluster *c, const char *name, char *holder,
                      int64_t *until)
{
    struct took t = {0};
    assert_int_equal(cluster_lease_take(c, name, took_cb, &t), 0);
    gt_wait(gt, &t.done, 1);
    if (holder != NULL)
        strcpy(holder, t.holder);
    if (until != NULL)
        *until = t.until;
    return t.rc;
}

static int take(struct gt *gt, struct cluster *c, const char *name, char *holder)
{
    return take_until(gt, c, name, holder, NULL);
}

static void test_lease_one_holder(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct store *store = ledger_store(gt.lt.ledger);
    struct clock clock = gt_wall(&gt);
    struct cluster *a = cluster_new(&gt.lt.loop, store, "run-a", LEASE_MS, &clock, NULL, NULL);
    struct cluster *b = cluster_new(&gt.lt.loop, store, "run-b", LEASE_MS, &clock, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    char holder[CLUSTER_RUN_MAX];
    assert_int_equal(take(&gt, a, "telegram:1", holder), 0);
    assert_int_equal(take(&gt, b, "telegram:1", holder), HB_EBUSY);
    assert_string_equal(holder, "run-a");
    /* Renewed by its holder, still refused to the other. */
    advance(&gt, LEASE_MS / 2);
    assert_int_equal(take(&gt, a, "telegram:1", holder), 0);
    advance(&gt, LEASE_MS / 2 + 1);
    assert_int_equal(take(&gt, b, "telegram:1", holder), HB_EBUSY);
    /* Run out: the other takes it, and the first one is refused now. */
    advance(&gt, LEASE_MS);
    assert_int_equal(take(&gt, b, "telegram:1", holder), 0);
    assert_int_equal(take(&gt, a, "telegram:1", holder), HB_EBUSY);
    assert_string_equal(holder, "run-b");
    /* Given up on a clean stop: taken at once. */
    struct took dropped = {0};
    assert_int_equal(cluster_lease_drop(b, "telegram:1", took_cb, &dropped), 0);
    gt_wait(&gt, &dropped.done, 1);
    assert_int_equal(take(&gt, a, "telegram:1", holder), 0);
    cluster_free(a);
    cluster_free(b);
    gt_done(&gt);
}

struct passes {
    struct gt *gt;
    int ticks;
    int done;
    size_t voided;
};

static void passes_done(int rc, size_t voided, void *data)
{
    struct passes *p = data;
    assert_int_equal(rc, 0);
    p->voided += voided;
    p->done++;
}

static void passes_tick(void *data)
{
    struct passes *p = data;
    p->ticks++;
    generate_recover_orphans(p->gt->g, passes_done, p);
}

/* This daemon's cluster, its passes counted in p; attached to gt's core. */
static struct cluster *passes_cluster(struct gt *gt, struct passes *p, const struct clock *clock)
{
    struct cluster *c = cluster_new(&gt->lt.loop, ledger_store(gt->lt.ledger), generate_run(gt->g),
                                    LEASE_MS, clock, passes_tick, p);
    assert_non_null(c);
    gt->core.cluster = c;
    return c;
}

static void stored_cb(int rc, const char *value, void *data)
{
    (void)value;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

/* A job of run-other, running: its record and its open reservation of 12
 * credits of console:u1's 100. */
static void other_job_open(struct gt *gt)
{
    struct lt_res res;
    assert_int_equal(lt_open(&gt->lt, "console:u1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(lt_reserve(&gt->lt, "gen:other:1:r1", "console:u1", LEDGER_SYSTEM_REVENUE, 12,
                                600000, &res),
                     0);
    int stored = 0;
    assert_int_equal(state_put(ledger_store(gt->lt.ledger), "gen.job", "gen:other:1",
                               "console:u1 1 run-other", stored_cb, &stored),
                     0);
    gt_wait(gt, &stored, 1);
}

/* Time passes a beat at a time, steps of them, while the daemon beats. */
static void beat_on(struct gt *gt, struct passes *p, int steps)
{
    for (int i = 0; i < steps; i++) {
        advance(gt, LEASE_MS / 3);
        int next = p->done + 1;
        gt_wait(gt, &p->done, next);
    }
}

/* A job of another daemon is left alone while that daemon beats, and
 * voided once (its reservation refunded) when its heartbeat runs out. */
static void test_orphans_of_dead_runs_only(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct store *store = ledger_store(gt.lt.ledger);
    other_job_open(&gt);

    struct clock clock = gt_wall(&gt);
    struct cluster *other =
        cluster_new(&gt.lt.loop, store, "run-other", LEASE_MS, &clock, NULL, NULL);
    struct passes p = {.gt = &gt};
    passes_cluster(&gt, &p, &clock);
    assert_non_null(other);
    /* Beats while the other daemon beats too: nothing is voided. */
    gt_wait(&gt, &p.done, 4);
    assert_int_equal(p.voided, 0);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 12);
    assert_true(cluster_run_alive(gt.core.cluster, "run-other"));

    /* The other daemon dies: once its lease ran out, its job is voided.
     * Time passes a beat at a time while this daemon goes on beating (a
     * jump of two leases at once would be a lapse of its own lease too,
     * after which it waits a lease before judging: test_judging_waits_after_an_outage). */
    cluster_free(other);
    beat_on(&gt, &p, 6);
    int want = p.done + 3;
    gt_wait(&gt, &p.done, want);
    gt_settle(&gt, 10);
    assert_false(cluster_run_alive(gt.core.cluster, "run-other"));
    assert_int_equal(p.voided, 1);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 0);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    cluster_free(gt.core.cluster);
    gt.core.cluster = NULL;
    gt_done(&gt);
}

/* A lease row that ran out, as a live daemon's does while the database
 * is away: "run-other" beat last long ago and has a job open. */
static int outage_rows(struct store_txn *txn, void *data)
{
    const int64_t *until = data;
    char value[64];
    snprintf(value, sizeof(value), "run-other %lld", (long long)*until);
    return store_txn_state_put(txn, CLUSTER_LEASE_NS, "run:run-other", value, 1);
}

/* After a gap in its own beats longer than its lease (the database away,
 * the host stalled), a daemon gives the others a whole lease to beat again
 * before it judges any of them gone: the others' leases ran out in the
 * same outage. Before, its first beat back voided the job of a daemon that
 * was only slower to come back. Its own lease having run out, it is fenced
 * until a beat renews it, and counts the lapse. */
static void test_judging_waits_after_an_outage(void **state)
{
    (void)state;
    if (lt_backend == STORE_BACKEND_POSTGRES)
        skip(); /* the lease rows below are written by this daemon's clock */
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    other_job_open(&gt);
    int64_t until = gt.wall + 100 * LEASE_MS; /* the other beats, as far as the rows say */
    assert_int_equal(lt_store_run(&gt.lt, outage_rows, &until), 0);
    struct clock clock = gt_wall(&gt);
    struct passes p = {.gt = &gt};
    struct cluster *c = passes_cluster(&gt, &p, &clock);
    gt_wait(&gt, &p.done, 2);
    assert_false(cluster_fenced(c));
    assert_int_equal(cluster_lapses(c), 0);
    /* The outage: no beat for two leases. The other's row ran out in it. */
    advance(&gt, 2 * LEASE_MS);
    assert_true(cluster_fenced(c));
    assert_int_equal(p.voided, 0);
    until = gt.wall - 1;
    assert_int_equal(lt_store_run(&gt.lt, outage_rows, &until), 0);
    int want = p.done + 2;
    gt_wait(&gt, &p.done, want);
    assert_false(cluster_fenced(c));
    assert_int_equal(cluster_lapses(c), 1);
    assert_false(cluster_judging(c));
    assert_int_equal(p.voided, 0);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 12);
    /* A lease later, beating all along: the other never came back. */
    beat_on(&gt, &p, 4);
    want = p.done + 2;
    gt_wait(&gt, &p.done, want);
    assert_true(cluster_judging(c));
    gt_settle(&gt, 10);
    assert_int_equal(p.voided, 1);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 0);
    cluster_free(c);
    gt.core.cluster = NULL;
    gt_done(&gt);
}

/* 1,000 heartbeat rows of runs gone two days, then a live run's. */
static int many_runs(struct store_txn *txn, void *data)
{
    const int64_t *now = data;
    char key[32], value[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "run:a%04d", i);
        snprintf(value, sizeof(value), "a%04d %lld", i, (long long)(*now - 2 * 86400000LL));
        int rc = store_txn_state_put(txn, CLUSTER_LEASE_NS, key, value, 1);
        if (rc < 0)
            return rc;
    }
    snprintf(value, sizeof(value), "zz-live %lld", (long long)(*now + 100 * LEASE_MS));
    return store_txn_state_put(txn, CLUSTER_LEASE_NS, "run:zz-live", value, 1);
}

/* The heartbeat reads every run's row, not the first 1,000: a live run
 * whose row sorts after a thousand others is alive (before, it was taken
 * for dead once that many runs had ever started, and its jobs voided).
 * Rows of runs gone a day are removed. */
static void test_every_run_read_old_ones_removed(void **state)
{
    (void)state;
    if (lt_backend == STORE_BACKEND_POSTGRES)
        skip(); /* the rows below are written by this daemon's clock */
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    int64_t now = gt.wall;
    assert_int_equal(lt_store_run(&gt.lt, many_runs, &now), 0);
    struct clock clock = gt_wall(&gt);
    struct passes p = {.gt = &gt};
    struct cluster *c = passes_cluster(&gt, &p, &clock);
    gt_wait(&gt, &p.done, 1); /* the first read, before any row was removed */
    assert_true(cluster_run_alive(c, "zz-live"));
    assert_false(cluster_run_alive(c, "a0001"));
    gt_settle(&gt, 10);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM state WHERE ns = 'lease' AND "
                                              "key LIKE 'run:a%'"),
                     0);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM state WHERE ns = 'lease' AND key = 'run:%s'",
             generate_run(gt.g));
    assert_int_equal(test_sql_int(gt.lt.path, sql), 1);
    cluster_free(c);
    gt.core.cluster = NULL;
    gt_done(&gt);
}

/* Two daemons spending one wallet: each sees the other's spend, however
 * much of the wallet its own store keeps between batches. Without that,
 * the second spend of the first daemon passes on a stale balance and the
 * wallet goes below zero. */
static void test_balance_seen_across_daemons(void **state)
{
    (void)state;
    if (lt_backend != STORE_BACKEND_POSTGRES)
        skip(); /* one daemon per SQLite file */
    struct lt a;
    lt_init(&a, true, false);
    struct lt_res res;
    assert_int_equal(lt_open(&a, "console:x", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(
        lt_plain(&a, "dep:x", LEDGER_SYSTEM_DEPOSITS, "console:x", 10, LEDGER_KIND_DEPOSIT, &res),
        0);
    assert_int_equal(lt_plain(&a, "spend:1", "console:x", LEDGER_SYSTEM_REVENUE, 3,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    /* The other daemon: its own store and connection on the same database
     * (the helpers speak to whichever ledger a.ledger is). */
    int rc = 0;
    struct ledger *first = a.ledger;
    struct ledger *other = ledger_new(&a.loop, &a.opts, &rc);
    assert_non_null(other);
    a.ledger = other;
    assert_int_equal(lt_plain(&a, "spend:2", "console:x", LEDGER_SYSTEM_REVENUE, 5,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    a.ledger = first;
    assert_int_equal(lt_plain(&a, "spend:3", "console:x", LEDGER_SYSTEM_REVENUE, 4,
                              LEDGER_KIND_GENERATION, &res),
                     HB_EFUNDS);
    /* The second writer of an id gets "exists". */
    assert_int_equal(lt_plain(&a, "spend:2", "console:x", LEDGER_SYSTEM_REVENUE, 5,
                              LEDGER_KIND_GENERATION, &res),
                     HB_EEXISTS);
    assert_int_equal(lt_plain(&a, "spend:4", "console:x", LEDGER_SYSTEM_REVENUE, 2,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    a.ledger = other;
    assert_int_equal(lt_balance(&a, "console:x").posted, 0);
    lt_ledger_close(&a);
    a.ledger = first;
    assert_int_equal(lt_balance(&a, "console:x").posted, 0);
    lt_done(&a);
}

/* Hosts whose clocks disagree by a minute, far more than the lease: on
 * PostgreSQL the server's clock judges every lease, so a daemon whose
 * clock runs ahead neither takes a lease still held nor takes a live
 * daemon for dead, and one whose clock runs behind takes a lease once it
 * ran out. By their own clocks, the first took the held lease at once
 * and voided the live daemon's jobs; the second waited a minute. */
static void test_leases_judged_by_one_clock(void **state)
{
    (void)state;
    if (lt_backend != STORE_BACKEND_POSTGRES)
        skip(); /* SQLite: one daemon, one clock */
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct store *store = ledger_store(gt.lt.ledger);
    struct clock real = {0};
    struct clock_manual ahead_ms = {.ms = clock_real_ms() + 60000};
    struct clock_manual behind_ms = {.ms = clock_real_ms() - 60000};
    struct clock ahead = {.now_ms = clock_manual_read, .data = &ahead_ms};
    struct clock behind = {.now_ms = clock_manual_read, .data = &behind_ms};
    struct cluster *a = cluster_new(&gt.lt.loop, store, "run-a", LEASE_MS, &real, NULL, NULL);
    struct cluster *b = cluster_new(&gt.lt.loop, store, "run-b", LEASE_MS, &ahead, NULL, NULL);
    struct cluster *c = cluster_new(&gt.lt.loop, store, "run-c", LEASE_MS, &behind, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    char holder[CLUSTER_RUN_MAX];
    int64_t until = 0;
    assert_int_equal(take(&gt, a, "telegram:1", holder), 0);
    assert_int_equal(take_until(&gt, b, "telegram:1", holder, &until), HB_EBUSY);
    assert_string_equal(holder, "run-a");
    /* The holder's end, told by b's clock: within a lease of b's now, less
     * the tenth a standby needs to take over once it ended (so that a dead
     * holder is replaced within the lease). */
    assert_true(until > ahead_ms.ms && until <= ahead_ms.ms + LEASE_MS - LEASE_MS / 10);
    /* A few beats: everyone is alive to everyone. */
    test_run_for(&gt.lt.loop, LEASE_MS);
    assert_true(cluster_run_alive(b, "run-a"));
    assert_true(cluster_run_alive(b, "run-c"));
    assert_true(cluster_run_alive(c, "run-a"));
    assert_true(cluster_run_alive(c, "run-b"));
    /* a stops renewing telegram:1 (it never asked again): once it ran out
     * by the server's clock, the daemon behind takes it. */
    test_run_for(&gt.lt.loop, LEASE_MS + 50);
    assert_int_equal(take(&gt, c, "telegram:1", holder), 0);
    assert_int_equal(take(&gt, b, "telegram:1", holder), HB_EBUSY);
    assert_string_equal(holder, "run-c");
    /* a dies: the others see its run end within a few leases, by the
     * server's clock, whatever theirs say. */
    cluster_free(a);
    test_run_for(&gt.lt.loop, 3 * LEASE_MS);
    assert_false(cluster_run_alive(b, "run-a"));
    assert_false(cluster_run_alive(c, "run-a"));
    assert_true(cluster_run_alive(b, "run-c"));
    cluster_free(b);
    cluster_free(c);
    gt_done(&gt);
}

/* Whether the run's heartbeat row is in the store (as a check job). */
static int run_row_read(struct store_txn *txn, void *data)
{
    char *value = NULL;
    int rc = store_txn_state_get(txn, CLUSTER_LEASE_NS, "run:run-stopping", &value);
    *(bool *)data = rc == 0;
    free(value);
    return rc == HB_ENOTFOUND ? 0 : rc;
}

static bool run_row(struct lt *t)
{
    bool there = false;
    assert_int_equal(lt_store_run(t, run_row_read, &there), 0);
    return there;
}

/* A clean stop gives the run's heartbeat lease up, as the store's last job:
 * the others take the run for gone at once (and its outbox rows, its held
 * jobs), not a lease later. Until the store stops, jobs of the run may
 * still settle (the ledger closes last of all): the row stays, also for
 * a job queued after the cluster was freed. Before, the row stayed until
 * it ran out. */
static void test_clean_stop_gives_run_up(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, false, true);
    struct cluster *c =
        cluster_new(&t.loop, ledger_store(t.ledger), "run-stopping", 60000, NULL, NULL, NULL);
    assert_non_null(c);
    while (!run_row(&t))
        uv_run(&t.loop, UV_RUN_ONCE);
    cluster_free(c);
    assert_true(run_row(&t));
    lt_ledger_close(&t);
    lt_ledger_open(&t);
    assert_false(run_row(&t));
    lt_done(&t);
}

static const struct CMUnitTest cluster_tests[] = {
    cmocka_unit_test(test_balance_seen_across_daemons),
    cmocka_unit_test(test_lease_one_holder),
    cmocka_unit_test(test_orphans_of_dead_runs_only),
    cmocka_unit_test(test_judging_waits_after_an_outage),
    cmocka_unit_test(test_every_run_read_old_ones_removed),
    cmocka_unit_test(test_leases_judged_by_one_clock),
    cmocka_unit_test(test_clean_stop_gives_run_up),
};

TEST_GROUP_DEFINE(cluster, cluster_tests, gt_group_setup, lt_group_teardown)

/* The same on a PostgreSQL ledger, the backend several daemons share. */
static int cluster_group_setup_pg(void **state)
{
    int rc = gt_group_setup(state);
    lt_backend = STORE_BACKEND_POSTGRES;
    return rc;
}

TEST_GROUP_DEFINE(cluster_pg, cluster_tests, cluster_group_setup_pg, lt_group_teardown)
