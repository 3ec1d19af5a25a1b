/* The leaderboard of a group with 100,000 votes: every vote recorded through
 * votes_cast (the Upvote button's path: the voter's mark and the four period
 * counts in one job, group-committed), then this week's and all time's top
 * ten read through votes_top as /leaderboard reads them, a round trip to the
 * store's thread included, and the query alone. Durable settings (WAL, synchronous=FULL) in
 * $TMPDIR. All 100,000 votes fall in the week read, on 20,000 images: the
 * most rows a period of this group can hold. */
#include "bench/bench.h"

#include "base/error.h"
#include "core/ledger.h"
#include "core/votes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOARD_VOTES 100000
#define BOARD_IMAGES 20000
#define BOARD_INFLIGHT 8192
#define BOARD_READS 2000
#define BOARD_NOW_MS 1796457600000LL /* 2026-12-05T08:00:00Z, a Saturday */

struct board_run {
    uv_loop_t loop;
    struct store *store;
    uint64_t submitted;
    uint64_t completed;
    uint64_t failed;
    bool read_done;
    int read_rc;
    size_t read_n;
    int64_t top_count;
};

static void board__cast(struct board_run *b);

static void board__cast_done(int rc, void *data)
{
    struct board_run *b = data;
    b->completed++;
    if (rc < 0)
        b->failed++;
    if (b->submitted < BOARD_VOTES)
        board__cast(b);
}

static void board__cast(struct board_run *b)
{
    uint64_t k = b->submitted++;
    char image[32], voter[32];
    /* Half the votes go to 200 popular images, the rest spread over all. */
    uint64_t i = k % 2 == 0 ? (k * 7919) % 200 : (k * 104729) % BOARD_IMAGES;
    snprintf(image, sizeof(image), "img%05llu", (unsigned long long)i);
    snprintf(voter, sizeof(voter), "discord:%llu", (unsigned long long)k);
    struct votes_cast v = {.scope = "discord:1000",
                           .image = image,
                           .voter = voter,
                           .creator = "1234567890",
                           .model = "bench-image",
                           .now_ms = BOARD_NOW_MS - (int64_t)(k % 100000) * 1000};
    if (votes_cast(b->store, &v, board__cast_done, b) < 0) {
        b->completed++;
        b->failed++;
    }
}

static void board__read_done(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct board_run *b = data;
    b->read_done = true;
    b->read_rc = rc;
    b->read_n = n;
    b->top_count = n > 0 ? rows[0].count : 0;
}

/* Read the board of span BOARD_READS times; report the mean and the 99th
 * percentile in ms under names prefixed by `name`. */
static int board__reads(struct board_run *b, enum votes_span span, const char *name)
{
    static double ms[BOARD_READS];
    for (int r = 0; r < BOARD_READS; r++) {
        b->read_done = false;
        double t0 = bench_now();
        if (votes_top(b->store, "discord:1000", span, BOARD_NOW_MS, 10, board__read_done, b) < 0)
            return -1;
        while (!b->read_done)
            uv_run(&b->loop, UV_RUN_ONCE);
        ms[r] = (bench_now() - t0) * 1000;
        if (b->read_rc < 0 || b->read_n != 10)
            return -1;
    }
    bench_report_ms(name, ms, BOARD_READS);
    return 0;
}

/* The same read without the trip to the store's thread: the query alone,
 * in a read transaction on the calling thread. Returns the mean in ms, or a
 * negative number on failure. */
static double board__sql_reads(const char *path)
{
    int rc = 0;
    double mean = -1;
    struct store_options o = {.path = path};
    struct store *s = store_new(&o, &rc);
    if (s == NULL)
        return -1;
    char period[VOTES_PERIOD_MAX];
    struct store_vote rows[10];
    size_t n = 0;
    votes_period(VOTES_WEEK, BOARD_NOW_MS, period, sizeof(period));
    double t0 = bench_now();
    for (int r = 0; r < BOARD_READS; r++) {
        struct store_txn *txn = NULL;
        rc = store_txn_begin(s, false, &txn);
        if (rc == 0)
            rc = store_txn_vote_top(txn, "discord:1000", period, rows, 10, &n);
        if (txn != NULL)
            store_txn_end(txn, false);
        if (rc < 0 || n != 10)
            goto out;
    }
    mean = (bench_now() - t0) * 1000 / BOARD_READS;
out:
    store_free(s);
    return mean;
}

static void board__closed(void *data)
{
    *(bool *)data = true;
}

int bench_board(void)
{
    int rc = -1;
    char *dir = bench_tmpdir_new();
    if (dir == NULL)
        return -1;
    char path[512];
    snprintf(path, sizeof(path), "%s/board.db", dir);
    struct board_run *b = calloc(1, sizeof(*b));
    if (b == NULL || uv_loop_init(&b->loop) != 0)
        goto out;
    int lrc = 0;
    struct ledger_options opts = {.path = path};
    struct ledger *ledger = ledger_new(&b->loop, &opts, &lrc);
    if (ledger == NULL)
        goto loop;
    b->store = ledger_store(ledger);
    double t0 = bench_now();
    for (unsigned i = 0; i < BOARD_INFLIGHT && b->submitted < BOARD_VOTES; i++)
        board__cast(b);
    while (b->completed < BOARD_VOTES)
        uv_run(&b->loop, UV_RUN_ONCE);
    double dt = bench_now() - t0;
    if (b->failed != 0) {
        fprintf(stderr, "bench board: %llu votes failed\n", (unsigned long long)b->failed);
        goto close;
    }
    bench_report("board_votes_cast_per_sec", BOARD_VOTES / dt, "votes/s");
    if (board__reads(b, VOTES_WEEK, "board_week_100k_votes_query") < 0 ||
        board__reads(b, VOTES_ALL, "board_all_100k_votes_query") < 0) {
        fprintf(stderr, "bench board: a board read failed\n");
        goto close;
    }
    rc = 0;
close:;
    bool closed = false;
    ledger_close(ledger, board__closed, &closed);
    while (!closed)
        uv_run(&b->loop, UV_RUN_ONCE);
loop:
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    if (rc == 0) {
        double sql = board__sql_reads(path);
        if (sql < 0)
            rc = -1;
        else
            bench_report("board_week_100k_votes_sql_mean", sql, "ms");
    }
out:
    free(b);
    bench_tmpdir_remove(dir);
    free(dir);
    return rc;
}
