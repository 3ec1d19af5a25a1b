/* The Telegram adapter taking a backlog: 100,000 updates from 1,000 private
 * chats on the fake Bot API (its own thread), each routed through the
 * command table to /help and answered with one sendMessage. Pacing is off
 * (a bench setting); the rest is as shipped (100 sends in flight, a poll's
 * worth), and the offset is written durably after each batch.
 * Reports updates per second end to end, the daemon side's CPU seconds
 * (the process's, minus the fake's thread), resident memory (the
 * process's, fake included), the connections the fake accepted, and the
 * fake's own ceiling (its single thread's CPU time per update).
 *
 * The backlog runs three times: as the adapter was before the outbox (no
 * rows; the offset written after each poll, the next poll waiting for the
 * write), without the outbox and without that wait (no reply safe across a
 * kill), then as shipped. The outbox's cost is reported against both:
 * telegram_outbox_slowdown against the adapter it replaced, and
 * telegram_outbox_slowdown_vs_nowait.
 *
 * Then the same backlog paced as shipped (Telegram's limits: 30 sends a
 * second, one a second per chat) for BENCH_TG_PACED_S seconds, with the
 * process's memory sampled: polling holds back at the queue's bound, so
 * the peak stays flat (target under 32 MiB) and the confirmed offset never
 * runs more than the bound (plus one poll) ahead of the replies. */
#include "bench/bench.h"

#include "adapters/telegram/telegram.h"
#include "net/http.h"
#include "bot/router.h"
#include "core/core.h"
#include "core/ledger.h"
#include "base/log.h"
#include "tests/fake/telegram_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define BENCH_TG_UPDATES 100000
#define BENCH_TG_CHATS 1000
#define BENCH_TG_TOKEN "123456:BENCH-token-abcdef"
#define BENCH_TG_PACED_S 8.0
#define BENCH_TG_QUEUE_MAX 1000

struct bench_tg {
    uv_loop_t loop;
    struct tgapi *api;
    struct http_client *http;
    struct ledger *ledger;
    struct core core;
    struct router *router;
    struct adapter *tg;
    uv_timer_t check;
    double t_end;
    bool done;
    bool paced; /* the paced phase: stop after BENCH_TG_PACED_S */
    double t_start;
    long rss_peak;    /* KiB */
    int64_t lead_max; /* updates confirmed beyond those answered */
};

static void bench_tg_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct bench_tg *b = data;
    router_dispatch(b->router, inv, args);
}

static void bench_tg_ended(void *data, struct adapter *a)
{
    struct bench_tg *b = data;
    (void)a;
    b->done = true;
}

static void bench_tg_closed(void *data)
{
    (void)data;
}

static void bench_tg_check(uv_timer_t *t)
{
    struct bench_tg *b = t->data;
    if (b->paced) {
        long rss = bench_rss_kib();
        if (rss > b->rss_peak)
            b->rss_peak = rss;
        int64_t lead = tgapi_confirmed(b->api) - 1 - (int64_t)tgapi_sends(b->api);
        if (lead > b->lead_max)
            b->lead_max = lead;
    }
    if (b->paced && !b->done && bench_now() - b->t_start < BENCH_TG_PACED_S)
        return;
    if (!b->paced && !b->done && tgapi_sends(b->api) < BENCH_TG_UPDATES)
        return;
    b->t_end = bench_now();
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    b->tg->ops->close(b->tg, bench_tg_closed, NULL);
    http_client_close(b->http, bench_tg_closed, NULL);
    ledger_close(b->ledger, bench_tg_closed, NULL);
}

static int bench_tg_paced(void);

/* One unpaced run over the backlog; prefix names its figures. */
static int bench_tg_backlog(const char *prefix, int outbox_off, double *rate)
{
    struct bench_tg b;
    memset(&b, 0, sizeof(b));
    int rc = 0;
    char *dir = bench_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/tg.db", dir);
    if (uv_loop_init(&b.loop) != 0)
        return 1;
    b.api = tgapi_thread_new(BENCH_TG_TOKEN);
    struct ledger_options lo = {.path = path};
    b.ledger = ledger_new(&b.loop, &lo, &rc);
    if (b.api == NULL || b.ledger == NULL || http_client_new(&b.loop, NULL, &b.http) != 0) {
        fprintf(stderr, "bench telegram: setup failed\n");
        return 1;
    }
    tgapi_backlog(b.api, BENCH_TG_UPDATES, BENCH_TG_CHATS);
    b.core.bot_name = "HAI Bot";
    b.core.ledger = b.ledger;
    b.router = router_new(&b.core);
    struct telegram_options opts = {.token = BENCH_TG_TOKEN,
                                    .api_base = tgapi_base(b.api),
                                    .poll_timeout_s = 1,
                                    .pacing_off = 1,
                                    .outbox_off = outbox_off};
    struct adapter_host host = {.dispatch = bench_tg_dispatch, .ended = bench_tg_ended, .data = &b};
    b.tg = telegram_new(&b.loop, b.http, &b.core, &opts, &host);
    uv_timer_init(&b.loop, &b.check);
    b.check.data = &b;
    double cpu0 = bench_cpu_s(RUSAGE_SELF);
    double fake0 = tgapi_cpu_s(b.api);
    double t0 = bench_now();
    b.tg->ops->start(b.tg);
    uv_timer_start(&b.check, bench_tg_check, 5, 5);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    double cpu = bench_cpu_s(RUSAGE_SELF) - cpu0;
    double fake_cpu = tgapi_cpu_s(b.api) - fake0;
    long rss = bench_rss_kib();
    uint64_t sends = tgapi_sends(b.api);
    size_t polls = tgapi_count(b.api, "getUpdates");
    unsigned conns = tgapi_connections(b.api);
    tgapi_close(b.api, NULL, NULL);
    router_free(b.router);
    int lrc = uv_loop_close(&b.loop);
    bench_tmpdir_remove(dir);
    free(dir);
    if (sends < BENCH_TG_UPDATES || lrc != 0) {
        fprintf(stderr, "bench telegram: %llu replies of %d, loop_close=%d\n",
                (unsigned long long)sends, BENCH_TG_UPDATES, lrc);
        return 1;
    }
    double secs = b.t_end - t0;
    char name[96];
#define BENCH_TG_REPORT(suffix, value, unit)                                                       \
    do {                                                                                           \
        snprintf(name, sizeof(name), "%s_%s", prefix, suffix);                                     \
        bench_report(name, value, unit);                                                           \
    } while (0)
    *rate = (double)BENCH_TG_UPDATES / secs;
    BENCH_TG_REPORT("updates_per_s", *rate, "updates/s");
    BENCH_TG_REPORT("backlog_seconds", secs, "s");
    BENCH_TG_REPORT("polls", (double)polls, "getUpdates");
    BENCH_TG_REPORT("connections", (double)conns, "connections");
    BENCH_TG_REPORT("daemon_cpu_per_100k", (cpu - fake_cpu) * 100000.0 / BENCH_TG_UPDATES, "cpu_s");
    BENCH_TG_REPORT("fake_cpu_per_100k", fake_cpu * 100000.0 / BENCH_TG_UPDATES, "cpu_s");
    /* The fake is one thread: at most this many updates a second, whatever
     * the daemon did. */
    BENCH_TG_REPORT("fake_ceiling_per_s", (double)BENCH_TG_UPDATES / fake_cpu, "updates/s");
    BENCH_TG_REPORT("process_rss", (double)rss / 1024.0, "MiB");
#undef BENCH_TG_REPORT
    return 0;
}

int bench_telegram(void)
{
    log_configure(LOG_WARN, false, NULL);
    http_global_init();
    /* The adapter as it was before the outbox, the same without its wait
     * for the offset, then as shipped: the cost of the outbox is the
     * difference, measured in the same run. */
    double before = 0, nowait = 0, after = 0;
    if (bench_tg_backlog("telegram_before_outbox", TELEGRAM_OUTBOX_BEFORE, &before) != 0 ||
        bench_tg_backlog("telegram_no_outbox", TELEGRAM_OUTBOX_NOWAIT, &nowait) != 0 ||
        bench_tg_backlog("telegram", 0, &after) != 0)
        return 1;
    bench_report("telegram_outbox_slowdown", before > 0 ? (before - after) * 100.0 / before : 0,
                 "%");
    bench_report("telegram_outbox_slowdown_vs_nowait",
                 nowait > 0 ? (nowait - after) * 100.0 / nowait : 0, "%");
    return bench_tg_paced();
}

static int bench_tg_paced(void)
{
    struct bench_tg b;
    memset(&b, 0, sizeof(b));
    int rc = 0;
    char *dir = bench_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/tg.db", dir);
    if (uv_loop_init(&b.loop) != 0)
        return 1;
    b.paced = true;
    b.api = tgapi_thread_new(BENCH_TG_TOKEN);
    struct ledger_options lo = {.path = path};
    b.ledger = ledger_new(&b.loop, &lo, &rc);
    if (b.api == NULL || b.ledger == NULL || http_client_new(&b.loop, NULL, &b.http) != 0) {
        fprintf(stderr, "bench telegram paced: setup failed\n");
        return 1;
    }
    tgapi_backlog(b.api, BENCH_TG_UPDATES, BENCH_TG_CHATS);
    b.core.bot_name = "HAI Bot";
    b.core.ledger = b.ledger;
    b.router = router_new(&b.core);
    struct telegram_options opts = {.token = BENCH_TG_TOKEN,
                                    .api_base = tgapi_base(b.api),
                                    .poll_timeout_s = 1,
                                    .queue_max = BENCH_TG_QUEUE_MAX};
    struct adapter_host host = {.dispatch = bench_tg_dispatch, .ended = bench_tg_ended, .data = &b};
    b.tg = telegram_new(&b.loop, b.http, &b.core, &opts, &host);
    uv_timer_init(&b.loop, &b.check);
    b.check.data = &b;
    b.t_start = bench_now();
    b.tg->ops->start(b.tg);
    uv_timer_start(&b.check, bench_tg_check, 20, 20);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uint64_t sends = tgapi_sends(b.api);
    int64_t confirmed = tgapi_confirmed(b.api);
    tgapi_close(b.api, NULL, NULL);
    router_free(b.router);
    int lrc = uv_loop_close(&b.loop);
    bench_tmpdir_remove(dir);
    free(dir);
    if (lrc != 0) {
        fprintf(stderr, "bench telegram paced: loop_close=%d\n", lrc);
        return 1;
    }
    double secs = b.t_end - b.t_start;
    bench_report("telegram_paced_sends_per_s", (double)sends / secs, "sends/s");
    bench_report("telegram_paced_confirmed", (double)(confirmed > 0 ? confirmed - 1 : 0),
                 "updates");
    bench_report("telegram_paced_offset_lead_max", (double)b.lead_max, "updates");
    bench_report("telegram_paced_rss_peak", (double)b.rss_peak / 1024.0, "MiB");
    return 0;
}
