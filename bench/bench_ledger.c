/* Durable transfers per second: with group commit under concurrent load,
 * and with one transaction per transfer, on the real durable settings (WAL,
 * synchronous=FULL) in $TMPDIR. */
#include "bench/bench.h"

#include "base/error.h"
#include "core/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_WALLETS 64

struct bench_run {
    uv_loop_t *loop;
    struct ledger *ledger;
    uint64_t total; /* transfers to make */
    uint64_t submitted;
    uint64_t completed;
    uint64_t failed;
    unsigned run; /* distinguishes the two runs' ids */
    bool setup_done;
};

static void bench__submit(struct bench_run *b);

static void bench__done(int rc, const struct ledger_result *r, void *data)
{
    (void)r;
    struct bench_run *b = data;
    b->completed++;
    if (rc < 0)
        b->failed++;
    if (b->submitted < b->total)
        bench__submit(b);
}

static void bench__submit(struct bench_run *b)
{
    char id[64];
    char wallet[32];
    uint64_t i = b->submitted++;
    snprintf(id, sizeof(id), "bench:%u:%llu", b->run, (unsigned long long)i);
    snprintf(wallet, sizeof(wallet), "console:w%llu", (unsigned long long)(i % BENCH_WALLETS));
    struct ledger_transfer t = {.id = id,
                                .debit = wallet,
                                .credit = LEDGER_SYSTEM_REVENUE,
                                .amount = 1,
                                .kind = LEDGER_KIND_GENERATION,
                                .tag = "bench-model"};
    if (ledger_transfer_create(b->ledger, &t, bench__done, b) < 0) {
        b->completed++;
        b->failed++;
    }
}

static void bench__setup_done(int rc, const struct ledger_result *r, void *data)
{
    (void)r;
    struct bench_run *b = data;
    if (rc < 0 && rc != HB_EEXISTS)
        b->failed++;
    b->completed++;
}

static void bench__closed(void *data)
{
    *(bool *)data = true;
}

/* Wallets with enough credits, set up in one batch per wallet; false when
 * a step failed. */
static bool bench__wallets_fund(struct bench_run *b)
{
    for (int w = 0; w < BENCH_WALLETS; w++) {
        char wallet[32];
        char id[48];
        snprintf(wallet, sizeof(wallet), "console:w%d", w);
        snprintf(id, sizeof(id), "fund:%d", w);
        ledger_account_open(b->ledger, wallet, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, bench__setup_done,
                            b);
        struct ledger_transfer t = {.id = id,
                                    .debit = LEDGER_SYSTEM_DEPOSITS,
                                    .credit = wallet,
                                    .amount = 1000000000,
                                    .kind = LEDGER_KIND_DEPOSIT};
        ledger_transfer_create(b->ledger, &t, bench__setup_done, b);
    }
    while (b->completed < 2 * BENCH_WALLETS)
        uv_run(b->loop, UV_RUN_ONCE);
    b->completed = 0;
    return b->failed == 0;
}

/* Close the run's ledger and wait until it is. */
static void bench__ledger_close(struct bench_run *b)
{
    bool closed = false;
    ledger_close(b->ledger, bench__closed, &closed);
    while (!closed)
        uv_run(b->loop, UV_RUN_ONCE);
}

/* Run `total` transfers with up to `inflight` outstanding; returns
 * transfers per second, or a negative number on failure. */
static double bench__measure_on(const struct ledger_options *where, bool single, uint64_t total,
                                unsigned inflight, unsigned run)
{
    uv_loop_t loop;
    int rc = 0;
    double rate = -1;
    if (uv_loop_init(&loop) != 0)
        return -1;
    struct ledger_options opts = *where;
    opts.single_commit = single;
    struct bench_run b = {.loop = &loop, .run = run};
    b.ledger = ledger_new(&loop, &opts, &rc);
    if (b.ledger == NULL)
        goto out;
    if (!bench__wallets_fund(&b))
        goto close;
    b.total = total;
    double t0 = bench_now();
    for (unsigned i = 0; i < inflight && b.submitted < total; i++)
        bench__submit(&b);
    while (b.completed < total)
        uv_run(&loop, UV_RUN_ONCE);
    double dt = bench_now() - t0;
    if (b.failed == 0)
        rate = (double)total / dt;
    else
        fprintf(stderr, "bench ledger: %llu transfers failed\n", (unsigned long long)b.failed);
close:
    bench__ledger_close(&b);
out:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rate;
}

static double bench__measure(const char *dir, bool single, uint64_t total, unsigned inflight,
                             unsigned run)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/ledger-%u.db", dir, run);
    struct ledger_options opts = {.path = path};
    return bench__measure_on(&opts, single, total, inflight, run);
}

static double bench__reads(const struct ledger_options *where, unsigned readers, unsigned round);

/* Durable transfers/s on SQLite, with group commit and one transaction per
 * transfer; and a history page's latency while the daemon writes at full
 * speed, with the reader beside the writer and without. */
int bench_ledger(void)
{
    char *dir = bench_tmpdir_new();
    if (dir == NULL)
        return -1;
    double group = bench__measure(dir, false, 200000, 8192, 1);
    double single = bench__measure(dir, true, 3000, 64, 2);
    char path[512];
    snprintf(path, sizeof(path), "%s/ledger-reads.db", dir);
    struct ledger_options ro = {.path = path};
    double read = bench__reads(&ro, 1, 3);
    snprintf(path, sizeof(path), "%s/ledger-reads-writer.db", dir);
    double unread = bench__reads(&ro, 0, 4);
    bench_tmpdir_remove(dir);
    free(dir);
    if (group <= 0 || single <= 0 || read < 0 || unread < 0)
        return -1;
    bench_report("ledger_group_commit_transfers_per_sec", group, "transfers/s");
    bench_report("ledger_single_commit_transfers_per_sec", single, "transfers/s");
    bench_report("ledger_group_commit_ratio", group / single, "x");
    bench_report("ledger_history_under_writes_p99", read, "ms");
    bench_report("ledger_history_under_writes_p99_through_writer", unread, "ms");
    return 0;
}

/* ---- PostgreSQL -------------------------------------------------------------- */

/* Each daemon its own process and connection on the same database, the
 * runs' ids apart; the rate is every transfer over the wall time of all. */
static double bench__pg_daemons(const char *url, unsigned daemons, uint64_t each, unsigned round)
{
    struct ledger_options opts = {.backend = STORE_BACKEND_POSTGRES, .url = url};
    pid_t pids[8];
    double t0 = bench_now();
    for (unsigned d = 0; d < daemons; d++) {
        pids[d] = fork();
        if (pids[d] == 0)
            _exit(bench__measure_on(&opts, false, each, 8192, round * 10 + d) > 0 ? 0 : 1);
    }
    int failed = 0;
    for (unsigned d = 0; d < daemons; d++) {
        int status = 0;
        if (pids[d] < 0 || waitpid(pids[d], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed++;
    }
    double dt = bench_now() - t0;
    return failed == 0 ? (double)(each * daemons) / dt : -1;
}

/* ---- reads beside the writes (the pool) ---------------------------------------- */

#define READS_TOTAL 200

struct reads_run {
    struct bench_run w; /* this daemon's own write load */
    uv_loop_t loop;
    double *ms; /* each read's latency */
    size_t n;
    double t_asked;
    int failed;
};

static void reads__ask(struct reads_run *r);

static void reads__got(int rc, const struct ledger_result *res, void *data)
{
    (void)res;
    struct reads_run *r = data;
    r->ms[r->n++] = (bench_now() - r->t_asked) * 1000.0;
    if (rc < 0)
        r->failed++;
    if (r->n < READS_TOTAL)
        reads__ask(r);
}

static void reads__ask(struct reads_run *r)
{
    r->t_asked = bench_now();
    if (ledger_history_get(r->w.ledger, "console:w0", 0, 20, reads__got, r) < 0) {
        r->failed++;
        r->n = READS_TOTAL;
    }
}

static int reads__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A member's /history page (20 transfers) asked one after another while
 * this daemon writes at full speed (on PostgreSQL, another daemon too):
 * with `readers` beside the writer, or through the writer (0). The p99 in
 * ms, or a negative number on failure. */
static double bench__reads(const struct ledger_options *where, unsigned readers, unsigned round)
{
    struct ledger_options opts = *where;
    bool pg = opts.backend == STORE_BACKEND_POSTGRES;
    pid_t other = pg ? fork() : 0;
    if (pg && other == 0)
        _exit(bench__measure_on(&opts, false, 200000, 8192, round * 10 + 9) > 0 ? 0 : 1);
    struct reads_run *r = calloc(1, sizeof(*r));
    double p99 = -1;
    int rc = 0;
    if (r == NULL || (r->ms = calloc(READS_TOTAL, sizeof(double))) == NULL ||
        uv_loop_init(&r->loop) != 0)
        goto out;
    opts.readers = readers;
    r->w = (struct bench_run){.loop = &r->loop, .run = round * 10 + 8};
    r->w.ledger = ledger_new(&r->loop, &opts, &rc);
    if (r->w.ledger == NULL)
        goto out;
    if (!bench__wallets_fund(&r->w))
        goto close;
    r->w.total = UINT64_MAX;
    for (unsigned i = 0; i < 1024; i++)
        bench__submit(&r->w);
    reads__ask(r);
    while (r->n < READS_TOTAL)
        uv_run(&r->loop, UV_RUN_ONCE);
    r->w.total = r->w.submitted; /* the writes end */
    while (r->w.completed < r->w.submitted)
        uv_run(&r->loop, UV_RUN_ONCE);
    qsort(r->ms, r->n, sizeof(double), reads__cmp);
    if (r->failed == 0 && r->w.failed == 0)
        p99 = r->ms[r->n * 99 / 100];
close:
    bench__ledger_close(&r->w);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
out:;
    int status = 0;
    if (pg && (other < 0 || waitpid(other, &status, 0) < 0 || !WIFEXITED(status) ||
               WEXITSTATUS(status) != 0))
        p99 = -1;
    if (r != NULL)
        free(r->ms);
    free(r);
    return p99;
}

/* Durable transfers/s on PostgreSQL (synchronous_commit = on): one daemon
 * with group commit, one transaction per transfer, and three daemons at
 * once; and a history page's latency while two daemons write, with the
 * pool's readers and without. HAIBOT_BENCH_PG_URL names the server (`make bench` starts one). */
int bench_ledger_pg(void)
{
    const char *url = getenv("HAIBOT_BENCH_PG_URL");
    if (url == NULL || url[0] == '\0') {
        fprintf(stderr, "bench ledger_pg: HAIBOT_BENCH_PG_URL is not set; skipped\n");
        return 0;
    }
    struct ledger_options opts = {.backend = STORE_BACKEND_POSTGRES, .url = url};
    double group = bench__measure_on(&opts, false, 20000, 8192, 101);
    double single = bench__measure_on(&opts, true, 2000, 64, 102);
    double three = bench__pg_daemons(url, 3, 10000, 11);
    double pooled = bench__reads(&opts, 2, 12);
    double unpooled = bench__reads(&opts, 0, 13);
    if (group <= 0 || single <= 0 || three <= 0 || pooled <= 0 || unpooled <= 0)
        return -1;
    bench_report("ledger_pg_group_commit_transfers_per_sec", group, "transfers/s");
    bench_report("ledger_pg_single_commit_transfers_per_sec", single, "transfers/s");
    bench_report("ledger_pg_group_commit_ratio", group / single, "x");
    bench_report("ledger_pg_three_daemons_transfers_per_sec", three, "transfers/s");
    bench_report("ledger_pg_history_under_writes_p99", pooled, "ms");
    bench_report("ledger_pg_history_under_writes_p99_without_pool", unpooled, "ms");
    return 0;
}
