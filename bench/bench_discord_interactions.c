/* Interaction acknowledgement latency under a burst: the fake gateway (own
 * thread) sends 200 INTERACTION_CREATE at once, the adapter (this loop)
 * defers each, and the fake REST (own thread) notes when each callback
 * arrives. Latency is from the dispatch call to the callback's arrival,
 * so it includes the gateway's zstd-stream (the default transport),
 * parsing, dispatch and the REST request over loopback. A first burst
 * warms the connections; the next three are measured, and the median of
 * their figures is reported beside the worst burst's p99 (this machine's
 * speed swings within seconds). Every request takes turns on the
 * adapter's REST pool (8 connections by default): the connections the
 * fake accepted are reported too. */
#include "bench/bench.h"

#include "adapters/discord/discord.h"
#include "adapters/discord/gateway.h"
#include "net/http.h"
#include "base/log.h"
#include "tests/fake/discord_gateway.h"
#include "tests/fake/discord_rest.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BI_BURST 200
#define BI_ROUNDS 4 /* a warm-up, then three measured (bi_median3) */

struct bench_ia {
    uv_loop_t loop;
    struct http_client *http;
    struct fake_gateway *gw;
    struct fake_rest *rest;
    struct adapter *adapter;
    uv_timer_t poll;
    atomic_bool identified;
    atomic_uint acked; /* callbacks seen this round */
    int round;         /* -1 before the first burst */
    double sent_at[BI_ROUNDS][BI_BURST];
    double acked_at[BI_ROUNDS][BI_BURST];
    struct reply *held[BI_ROUNDS * BI_BURST];
    size_t nheld;
    bool closing;
    bool failed;
    uint64_t started_ms;
};

static void bi_on_seen(struct fake_gateway *f, enum fake_gateway_seen what, void *data)
{
    struct bench_ia *b = data;
    (void)f;
    if (what == FAKE_SEEN_IDENTIFY)
        atomic_store(&b->identified, true);
}

static void bi_on_request(struct fake_rest *f, const struct fake_rest_request *req, void *data)
{
    struct bench_ia *b = data;
    (void)f;
    const char *p = strstr(req->target, "/interactions/");
    if (p == NULL)
        return;
    unsigned id = (unsigned)strtoul(p + 14, NULL, 10) - 1000000u;
    unsigned round = id / 100000u, n = id % 100000u;
    if (round < BI_ROUNDS && n < BI_BURST) {
        b->acked_at[round][n] = bench_now();
        atomic_fetch_add(&b->acked, 1);
    }
}

static void bi_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct bench_ia *b = data;
    (void)args;
    if (b->nheld < BI_ROUNDS * BI_BURST)
        b->held[b->nheld++] = inv->reply;
    else
        reply_finish(inv->reply);
    invocation_clear(inv);
}

static void bi_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void bi_noop(void *data)
{
    (void)data;
}

static void bi_adapter_closed(void *data)
{
    struct bench_ia *b = data;
    http_client_close(b->http, bi_noop, NULL);
}

static void bi_close(struct bench_ia *b)
{
    b->closing = true;
    uv_close((uv_handle_t *)&b->poll, NULL);
    for (size_t i = 0; i < b->nheld; i++)
        reply_finish(b->held[i]);
    b->nheld = 0;
    b->adapter->ops->close(b->adapter, bi_adapter_closed, b);
}

static void bi_burst(struct bench_ia *b)
{
    char d[512];
    atomic_store(&b->acked, 0);
    for (unsigned i = 0; i < BI_BURST; i++) {
        unsigned id = (unsigned)b->round * 100000u + i;
        snprintf(d, sizeof(d),
                 "{\"id\":\"%u\",\"application_id\":\"42\",\"type\":2,\"token\":\"tok%u\","
                 "\"guild_id\":\"77\",\"channel_id\":\"88\",\"member\":{\"permissions\":\"0\","
                 "\"user\":{\"id\":\"555\",\"username\":\"ann\"}},\"data\":{\"name\":\"help\","
                 "\"type\":1},\"version\":1}",
                 id + 1000000u, id);
        b->sent_at[b->round][i] = bench_now();
        fake_gateway_dispatch(b->gw, "INTERACTION_CREATE", d);
    }
}

static void bi_poll(uv_timer_t *t)
{
    struct bench_ia *b = t->data;
    if (b->closing)
        return;
    if (uv_now(&b->loop) - b->started_ms > 30000) {
        fprintf(stderr, "bench discord_interactions: timed out\n");
        b->failed = true;
        bi_close(b);
        return;
    }
    if (b->round < 0) {
        if (!atomic_load(&b->identified))
            return;
        b->round = 0;
        bi_burst(b);
        return;
    }
    if (atomic_load(&b->acked) < BI_BURST)
        return;
    if (++b->round < BI_ROUNDS) {
        bi_burst(b);
        return;
    }
    bi_close(b);
}

static int bi_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bi_median3(double *v)
{
    qsort(v, 3, sizeof(v[0]), bi_cmp);
    return v[1];
}

int bench_discord_interactions(void)
{
    struct bench_ia *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return 1;
    b->round = -1;
    log_configure(LOG_ERROR, false, NULL);
    http_global_init();
    uv_loop_init(&b->loop);
    struct fake_gateway_options go = {.heartbeat_ms = 20000, .on_seen = bi_on_seen, .data = b};
    b->gw = fake_gateway_start_thread(&go);
    struct fake_rest_options ro = {.on_request = bi_on_request, .data = b};
    ro.gateway_url = b->gw != NULL ? fake_gateway_url(b->gw) : NULL;
    b->rest = fake_rest_start_thread(&ro);
    if (b->gw == NULL || b->rest == NULL || http_client_new(&b->loop, NULL, &b->http) < 0) {
        fprintf(stderr, "bench discord_interactions: fakes did not start\n");
        return 1;
    }
    struct discord_options o = {.token = "bench-token.abcdef",
                                .application_id = "42",
                                .api_base = fake_rest_api_base(b->rest),
                                .shard_last = -1,
                                .http = b->http,
                                .compress = DISCORD_COMPRESS_ZSTD,
                                .identify_spacing_ms = 10,
                                .global_per_s = 100000};
    struct adapter_host host = {.dispatch = bi_dispatch, .ended = bi_ended, .data = b};
    b->adapter = discord_new(&b->loop, &o, &host);
    if (b->adapter == NULL || b->adapter->ops->start(b->adapter) < 0) {
        fprintf(stderr, "bench discord_interactions: adapter did not start\n");
        return 1;
    }
    b->started_ms = uv_now(&b->loop);
    uv_timer_init(&b->loop, &b->poll);
    b->poll.data = b;
    uv_timer_start(&b->poll, bi_poll, 1, 1);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    b->adapter->ops->free(b->adapter);
    uv_loop_close(&b->loop);
    unsigned conns = fake_rest_connections(b->rest);
    fake_rest_free(b->rest);
    fake_gateway_free(b->gw);
    int rc = b->failed ? 1 : 0;
    if (!b->failed) {
        double p50[3], p99[3], max[3], total[3], worst_p99 = 0;
        for (int r = 1; r < BI_ROUNDS; r++) {
            double lat[BI_BURST], all = 0;
            for (int i = 0; i < BI_BURST; i++) {
                lat[i] = (b->acked_at[r][i] - b->sent_at[r][i]) * 1000.0;
                double since_first = (b->acked_at[r][i] - b->sent_at[r][0]) * 1000.0;
                all = since_first > all ? since_first : all;
            }
            qsort(lat, BI_BURST, sizeof(lat[0]), bi_cmp);
            p50[r - 1] = lat[BI_BURST / 2];
            p99[r - 1] = lat[(BI_BURST * 99) / 100 - 1];
            max[r - 1] = lat[BI_BURST - 1];
            total[r - 1] = all;
            worst_p99 = p99[r - 1] > worst_p99 ? p99[r - 1] : worst_p99;
        }
        bench_report("discord_ack_latency_p50", bi_median3(p50), "ms");
        bench_report("discord_ack_latency_p99", bi_median3(p99), "ms");
        bench_report("discord_ack_latency_p99_worst_burst", worst_p99, "ms");
        bench_report("discord_ack_latency_max", bi_median3(max), "ms");
        bench_report("discord_ack_burst_200_all_acked", bi_median3(total), "ms");
        /* Four bursts of 200 on the adapter's pool (8 by default). */
        bench_report("discord_ack_connections", (double)conns, "connections");
    }
    free(b);
    return rc;
}
