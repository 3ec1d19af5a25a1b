/* PostgreSQL restarted under load (part of the group `ledger_multi_pg`,
 * tests/core/test_ledger_multi.c): one ledger submits transfers
 * continuously while the test cluster is restarted (pg_ctl restart -m fast,
 * run as tools/pg-cluster.sh runs it). Every callback fires, each with
 * success or HB_ESTORAGE, never a silent drop; transfers succeed again
 * after the restart (the store reconnects with backoff); the pool's reader,
 * idle meanwhile, answers its first page after it; every acknowledged
 * transfer is there; a retry under the same id of each failed one applies
 * it exactly once (HB_EEXISTS for one that committed although its caller
 * heard an error); balances match; verify passes. */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include "base/error.h"

#include <glob.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESTART_OPS_MAX 40000
#define RESTART_INFLIGHT 16
#define RESTART_BEFORE 200 /* successes before the restart */
#define RESTART_AFTER 300  /* successes after it, then stop */
#define RESTART_WALLET "console:restart"
#define RESTART_FUND 1000000

struct rop {
    struct rrun *run;
    char id[32];
    bool spend; /* wallet -> revenue, else deposits -> wallet */
    int64_t amount;
    bool done;
    int rc;
    bool same;
    int found_rc;
    bool retried;
};

struct rrun {
    struct lt t;
    uv_timer_t timer;
    uv_process_t proc;
    struct rop *ops;
    size_t n;
    unsigned inflight;
    size_t ok_before;
    size_t ok_after;
    size_t errors;
    int phase; /* 0 before the restart, 1 while pg_ctl runs, 2 after, 3 stopped */
    int64_t exit_status;
    uint64_t restart_started;
    uint64_t restart_done;
    uint64_t first_ok_after; /* the first success submitted after pg_ctl returned */
    uint64_t last_error;
    uint64_t pause_until; /* a caller backs off after an error */
};

static void restart__cb(int rc, const struct ledger_result *r, void *data)
{
    struct rop *op = data;
    struct rrun *run = op->run;
    op->done = true;
    op->rc = rc;
    if (rc == 0 || rc == HB_EEXISTS) {
        op->same = strcmp(r->transfer.id, op->id) == 0 && r->transfer.amount == op->amount;
    }
    run->inflight--;
    if (rc == 0) {
        if (run->phase == 0)
            run->ok_before++;
        if (run->phase == 2) {
            if (run->ok_after++ == 0)
                run->first_ok_after = test_now_ms();
        }
    } else {
        run->errors++;
        run->last_error = test_now_ms();
        run->pause_until = run->last_error + 20;
    }
}

static int restart__submit(struct rrun *run, struct rop *op)
{
    struct ledger_transfer t = {.id = op->id,
                                .debit = op->spend ? RESTART_WALLET : LEDGER_SYSTEM_DEPOSITS,
                                .credit = op->spend ? LEDGER_SYSTEM_REVENUE : RESTART_WALLET,
                                .amount = op->amount,
                                .kind = op->spend ? LEDGER_KIND_GENERATION : LEDGER_KIND_DEPOSIT};
    op->done = false;
    int rc = ledger_transfer_create(run->t.ledger, &t, restart__cb, op);
    if (rc == 0)
        run->inflight++;
    return rc;
}

static void restart__exited(uv_process_t *p, int64_t status, int sig)
{
    struct rrun *run = p->data;
    run->exit_status = sig != 0 ? -sig : status;
    run->restart_done = test_now_ms();
    run->phase = 2;
    uv_close((uv_handle_t *)p, NULL);
}

/* pg_ctl of the test cluster's server: PG_BIN as tools/pg-cluster.sh takes
 * it, else the newest installed. */
static void restart__pg_ctl(char *out, size_t cap)
{
    const char *bin = getenv("PG_BIN");
    if (bin != NULL && bin[0] != '\0') {
        snprintf(out, cap, "%s/pg_ctl", bin);
        return;
    }
    if (access("/usr/lib/postgresql/15/bin/pg_ctl", X_OK) == 0) {
        snprintf(out, cap, "/usr/lib/postgresql/15/bin/pg_ctl");
        return;
    }
    glob_t g;
    assert_int_equal(glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g), 0);
    assert_true(g.gl_pathc > 0);
    snprintf(out, cap, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
}

/* The cluster's directory: the host= of the server's connection string. */
static void restart__cluster(char *out, size_t cap)
{
    const char *base = getenv("HAIBOT_TEST_PG_URL");
    assert_non_null(base);
    PQconninfoOption *opts = PQconninfoParse(base, NULL);
    assert_non_null(opts);
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0 && o->val != NULL)
            snprintf(out, cap, "%s", o->val);
    }
    PQconninfoFree(opts);
    assert_true(out[0] == '/');
}

static void restart__spawn(struct rrun *run)
{
    char pg_ctl[512];
    char home[512];
    char data[600];
    char logf[600];
    restart__pg_ctl(pg_ctl, sizeof(pg_ctl));
    restart__cluster(home, sizeof(home));
    snprintf(data, sizeof(data), "%s/data", home);
    snprintf(logf, sizeof(logf), "%s/server.log", home);
    /* As tools/pg-cluster.sh runs it: the server refuses to run as root. */
    char *argv[16];
    int n = 0;
    if (getuid() == 0) {
        argv[n++] = "runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    argv[n++] = pg_ctl;
    argv[n++] = "-D";
    argv[n++] = data;
    argv[n++] = "-l";
    argv[n++] = logf;
    argv[n++] = "-m";
    argv[n++] = "fast";
    argv[n++] = "-w";
    argv[n++] = "-t";
    argv[n++] = "60";
    argv[n++] = "restart";
    argv[n] = NULL;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t po = {.file = argv[0],
                               .args = argv,
                               .exit_cb = restart__exited,
                               .stdio = stdio,
                               .stdio_count = 3};
    run->proc.data = run;
    run->restart_started = test_now_ms();
    fflush(stderr);
    assert_int_equal(uv_spawn(&run->t.loop, &run->proc, &po), 0);
    run->phase = 1;
}

/* Every 2 ms: keep RESTART_INFLIGHT transfers in flight; start the restart
 * and stop as the phases say. */
static void restart__tick(uv_timer_t *timer)
{
    struct rrun *run = timer->data;
    if (run->phase == 0 && run->ok_before >= RESTART_BEFORE)
        restart__spawn(run);
    if (run->phase == 2 && run->ok_after >= RESTART_AFTER)
        run->phase = 3;
    if (run->phase == 3) {
        uv_timer_stop(timer);
        return;
    }
    while (run->inflight < RESTART_INFLIGHT && run->n < RESTART_OPS_MAX &&
           test_now_ms() >= run->pause_until) {
        struct rop *op = &run->ops[run->n];
        op->run = run;
        snprintf(op->id, sizeof(op->id), "restart-%zu", run->n);
        op->spend = run->n % 2 == 1;
        op->amount = op->spend ? 1 : 2;
        run->n++;
        assert_int_equal(restart__submit(run, op), 0);
    }
}

static void restart__got(int rc, const struct ledger_result *r, void *data)
{
    struct rop *op = data;
    op->found_rc = rc;
    op->same = rc != 0 || r->transfer.amount == op->amount;
    op->done = true;
}

/* Read every operation back; returns the wallet's balance as the model
 * says for the transfers found. */
static int64_t restart__read_back(struct rrun *run)
{
    for (size_t i = 0; i < run->n; i++) {
        run->ops[i].done = false;
        assert_int_equal(
            ledger_transfer_get(run->t.ledger, run->ops[i].id, restart__got, &run->ops[i]), 0);
    }
    int64_t model = RESTART_FUND;
    for (size_t i = 0; i < run->n; i++) {
        while (!run->ops[i].done)
            uv_run(&run->t.loop, UV_RUN_ONCE);
        assert_true(run->ops[i].same);
        if (run->ops[i].found_rc == 0)
            model += run->ops[i].spend ? -run->ops[i].amount : run->ops[i].amount;
        else
            assert_int_equal(run->ops[i].found_rc, HB_ENOTFOUND);
    }
    return model;
}

void lt_test_pg_restart(void **state)
{
    (void)state;
    char url[512];
    assert_int_equal(test_pg_db(url, sizeof(url)), 0);
    struct rrun *run = calloc(1, sizeof(*run));
    assert_non_null(run);
    run->ops = calloc(RESTART_OPS_MAX, sizeof(*run->ops));
    assert_non_null(run->ops);
    struct lt *t = &run->t;
    assert_int_equal(uv_loop_init(&t->loop), 0);
    snprintf(t->url, sizeof(t->url), "%s", url);
    t->opts.backend = STORE_BACKEND_POSTGRES;
    t->opts.url = t->url;
    t->opts.readers = 1; /* idle through the restart, read from after it */
    lt_ledger_open(t);
    struct lt_res res;
    assert_int_equal(lt_open(t, RESTART_WALLET, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(t, "restart-fund", LEDGER_SYSTEM_DEPOSITS, RESTART_WALLET,
                              RESTART_FUND, LEDGER_KIND_DEPOSIT, &res),
                     0);

    uint64_t started = test_now_ms();
    assert_int_equal(uv_timer_init(&t->loop, &run->timer), 0);
    run->timer.data = run;
    assert_int_equal(uv_timer_start(&run->timer, restart__tick, 0, 2), 0);
    /* Until the phases are through and every callback has fired. */
    while (run->phase != 3 || run->inflight > 0) {
        if (test_now_ms() > started + 60000) {
            fprintf(stderr, "restart: phase %d, %zu submitted, %u in flight, %zu errors\n",
                    run->phase, run->n, run->inflight, run->errors);
            fail_msg("the load did not finish");
        }
        uv_run(&t->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&run->timer, NULL);
    assert_int_equal(run->exit_status, 0);
    /* The pool's reader sat idle while the server restarted: its first
     * page after it reconnects first and is answered. */
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_history_get(t->ledger, RESTART_WALLET, 0, 10, lt_cb, &res), 0);
    lt_wait(t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.history_count, 10);
    uint64_t load_ms = test_now_ms() - started;

    /* Every callback fired, with success or a clear error. */
    size_t ok = 0;
    for (size_t i = 0; i < run->n; i++) {
        struct rop *op = &run->ops[i];
        assert_true(op->done);
        if (op->rc != 0 && op->rc != HB_ESTORAGE)
            fprintf(stderr, "%s completed with %d\n", op->id, op->rc);
        assert_true(op->rc == 0 || op->rc == HB_ESTORAGE);
        if (op->rc == 0) {
            assert_true(op->same);
            ok++;
        }
    }
    /* The restart was felt, and the ledger came back. */
    assert_true(run->errors > 0);
    assert_true(run->ok_after >= RESTART_AFTER);

    /* Every acknowledged transfer is there. A failed one may have committed
     * all the same (the connection dropped after COMMIT reached the
     * server): then the retry below hears "exists". */
    int64_t model = restart__read_back(run);
    size_t committed_failed = 0;
    for (size_t i = 0; i < run->n; i++) {
        if (run->ops[i].rc == 0)
            assert_int_equal(run->ops[i].found_rc, 0);
        else
            committed_failed += run->ops[i].found_rc == 0;
    }
    assert_int_equal(lt_balance(t, RESTART_WALLET).posted, model);

    /* The caller's retry under the same id applies each failed one once.
     * found_rc keeps whether it was there before. */
    for (size_t i = 0; i < run->n; i++) {
        if (run->ops[i].rc != 0) {
            run->ops[i].retried = true;
            assert_int_equal(restart__submit(run, &run->ops[i]), 0);
        }
    }
    while (run->inflight > 0)
        uv_run(&t->loop, UV_RUN_ONCE);
    for (size_t i = 0; i < run->n; i++) {
        struct rop *op = &run->ops[i];
        assert_true(op->done);
        if (!op->retried)
            continue;
        assert_int_equal(op->rc, op->found_rc == 0 ? HB_EEXISTS : 0);
        assert_true(op->same);
    }
    model = restart__read_back(run);
    int64_t all = RESTART_FUND;
    for (size_t i = 0; i < run->n; i++) {
        assert_int_equal(run->ops[i].found_rc, 0);
        all += run->ops[i].spend ? -run->ops[i].amount : run->ops[i].amount;
    }
    assert_int_equal(model, all);
    assert_int_equal(lt_balance(t, RESTART_WALLET).posted, all);
    lt_ledger_close(t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    char *out = NULL;
    int vrc = lt_verify_ledger(t, &out);
    if (vrc != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(vrc, 0);
    free(out);

    fprintf(stderr,
            "ledger_multi: restart: %zu transfers in %" PRIu64 " ms (%" PRIu64
            " ms with the checks), %zu acknowledged, %zu failed "
            "with HB_ESTORAGE (%zu of them committed all the same), pg_ctl restart took %" PRIu64
            " ms, first success %" PRIu64 " ms after it, last error %" PRId64 " ms after it\n",
            run->n, load_ms, test_now_ms() - started, ok, run->errors, committed_failed,
            run->restart_done - run->restart_started, run->first_ok_after - run->restart_done,
            (int64_t)run->last_error - (int64_t)run->restart_done);
    free(run->ops);
    free(run);
}

int lt_pg_server_up(void **state)
{
    (void)state;
    const char *base = getenv("HAIBOT_TEST_PG_URL");
    for (int i = 0; i < 300; i++) {
        if (base != NULL && test_pg_exec(base, "SELECT 1", true) == 0)
            return 0;
        usleep(100 * 1000);
    }
    return -1;
}
