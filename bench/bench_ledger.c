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
    /* Wallets with enough credits, set up in one batch per wallet. */
    for (int w = 0; w < BENCH_WALLETS; w++) {
        char wallet[32];
        char id[48];
        snprintf(wallet, sizeof(wallet), "console:w%d", w);
        snprintf(id, sizeof(id), "fund:%d", w);
        ledger_account_open(b.ledger, wallet, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, bench__setup_done,
                            &b);
        struct ledger_transfer t = {.id = id,
                                    .debit = LEDGER_SYSTEM_DEPOSITS,
                                    .credit = wallet,
                                    .amount = 1000000000,
                                    .kind = LEDGER_KIND_DEPOSIT};
        ledger_transfer_create(b.ledger, &t, bench__setup_done, &b);
    }
    while (b.completed < 2 * BENCH_WALLETS)
        uv_run(&loop, UV_RUN_ONCE);
    if (b.failed != 0)
        goto close;
    b.completed = 0;
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
close:;
    bool closed = false;
    ledger_close(b.ledger, bench__closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
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

int bench_ledger(void)
{
    char *dir = bench_tmpdir_new();
    if (dir == NULL)
        return -1;
    double group = bench__measure(dir, false, 200000, 8192, 1);
    double single = bench__measure(dir, true, 3000, 64, 2);
    bench_tmpdir_remove(dir);
    free(dir);
    if (group <= 0 || single <= 0)
        return -1;
    bench_report("ledger_group_commit_transfers_per_sec", group, "transfers/s");
    bench_report("ledger_single_commit_transfers_per_sec", single, "transfers/s");
    bench_report("ledger_group_commit_ratio", group / single, "x");
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

/* Durable transfers/s on PostgreSQL (synchronous_commit = on): one daemon
 * with group commit, one transaction per transfer, and three daemons at
 * once. HAIBOT_BENCH_PG_URL names the server (`make bench` starts one). */
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
    if (group <= 0 || single <= 0 || three <= 0)
        return -1;
    bench_report("ledger_pg_group_commit_transfers_per_sec", group, "transfers/s");
    bench_report("ledger_pg_single_commit_transfers_per_sec", single, "transfers/s");
    bench_report("ledger_pg_group_commit_ratio", group / single, "x");
    bench_report("ledger_pg_three_daemons_transfers_per_sec", three, "transfers/s");
    return 0;
}
