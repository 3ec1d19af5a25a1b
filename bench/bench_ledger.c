/* Durable transfers per second: with group commit under concurrent load,
 * and with one transaction per transfer, on the real durable settings (WAL,
 * synchronous=FULL) in $TMPDIR. */
#include "bench/bench.h"

#include "base/error.h"
#include "core/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static double bench__measure(const char *dir, bool single, uint64_t total, unsigned inflight,
                             unsigned run)
{
    uv_loop_t loop;
    char path[512];
    int rc = 0;
    double rate = -1;
    snprintf(path, sizeof(path), "%s/ledger-%u.db", dir, run);
    if (uv_loop_init(&loop) != 0)
        return -1;
    struct ledger_options opts = {.path = path, .single_commit = single};
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
