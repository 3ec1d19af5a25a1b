/* The gateway connection under a flood from the fake gateway on its own
 * thread: MESSAGE_CREATE events of about 1 KiB through zlib-stream, then
 * 10,000 GUILD_CREATE of about 19 KiB, to see that the connection keeps
 * none of them. */
#include "bench/bench.h"

#include "adapters/discord/gateway.h"
#include "base/log.h"
#include "tests/fake/discord_gateway.h"

#include <stdio.h>
#include <string.h>

#define BENCH_MESSAGES 500000
#define BENCH_MESSAGE_BYTES 1000
#define BENCH_GUILDS 10000
#define BENCH_GUILD_BYTES (19 * 1024)

struct bench_gw {
    uv_loop_t loop;
    struct discord_ws *ws;
    struct discord_gateway *gw;
    struct fake_gateway *fake;
    size_t messages;
    size_t guilds;
    size_t bytes;
    size_t message_bytes; /* d bytes delivered during the flood */
    double t0;
    double t1;
    long rss_before_kib;
    long rss_after_kib;
    bool failed;
    uv_timer_t guard;
};

static void bench_gw_stopped(struct discord_gateway *gw, void *data)
{
    (void)gw;
    struct bench_gw *b = data;
    discord_ws_stop(b->ws);
}

static void bench_gw_finish(struct bench_gw *b)
{
    uv_close((uv_handle_t *)&b->guard, NULL);
    discord_gateway_stop(b->gw, bench_gw_stopped, b);
}

static void bench_gw_event(struct discord_gateway *gw, const char *type, int64_t seq, const char *d,
                           size_t d_len, void *data)
{
    (void)gw;
    (void)seq;
    (void)d;
    struct bench_gw *b = data;
    b->bytes += d_len;
    if (strcmp(type, "READY") == 0) {
        b->t0 = bench_now();
        fake_gateway_flood(b->fake, "MESSAGE_CREATE", BENCH_MESSAGES, BENCH_MESSAGE_BYTES);
    } else if (strcmp(type, "MESSAGE_CREATE") == 0) {
        if (++b->messages == BENCH_MESSAGES) {
            b->t1 = bench_now();
            /* From the first frame: the fake compresses its cycle first. */
            struct fake_gateway_stats gs;
            fake_gateway_stats(b->fake, &gs);
            if (gs.flood_ready_at > b->t0)
                b->t0 = gs.flood_ready_at;
            b->message_bytes = b->bytes;
            b->rss_before_kib = bench_rss_kib();
            fake_gateway_flood(b->fake, "GUILD_CREATE", BENCH_GUILDS, BENCH_GUILD_BYTES);
        }
    } else if (strcmp(type, "GUILD_CREATE") == 0) {
        if (++b->guilds == BENCH_GUILDS) {
            b->rss_after_kib = bench_rss_kib();
            bench_gw_finish(b);
        }
    }
}

static void bench_gw_guard(uv_timer_t *t)
{
    struct bench_gw *b = t->data;
    fprintf(stderr, "discord_gateway: stuck after %zu messages, %zu guilds\n", b->messages,
            b->guilds);
    b->failed = true;
    bench_gw_finish(b);
}

int bench_discord_gateway(void)
{
    static const char *const events[] = {"READY", "MESSAGE_CREATE", "GUILD_CREATE", NULL};
    struct bench_gw b;
    memset(&b, 0, sizeof(b));
    log_configure(LOG_WARN, false, NULL);
    struct fake_gateway_options fo = {.heartbeat_ms = 41250};
    b.fake = fake_gateway_start_thread(&fo);
    if (b.fake == NULL || uv_loop_init(&b.loop) != 0)
        return -1;
    b.ws = discord_ws_new(&b.loop);
    struct discord_gateway_options o = {
        .url = fake_gateway_url(b.fake),
        .token = "bench-token-0123456789",
        .intents = 1 << 9,
        .shard_count = 1,
        .events = events,
        .on_event = bench_gw_event,
        .data = &b,
    };
    b.gw = b.ws != NULL ? discord_gateway_new(b.ws, &o) : NULL;
    if (b.gw == NULL || discord_gateway_start(b.gw) != 0)
        return -1;
    uv_timer_init(&b.loop, &b.guard);
    b.guard.data = &b;
    uv_timer_start(&b.guard, bench_gw_guard, 120000, 0);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    discord_ws_free(b.ws);
    int closed = uv_loop_close(&b.loop);
    fake_gateway_free(b.fake);
    if (b.failed || closed != 0 || b.t1 <= b.t0)
        return -1;
    bench_report("discord_gateway_events_per_sec", (double)b.messages / (b.t1 - b.t0), "events/s");
    bench_report("discord_gateway_inflated_mib_per_sec",
                 (double)b.message_bytes / (b.t1 - b.t0) / (1024.0 * 1024.0), "MiB/s");
    bench_report("discord_guild_create_rss_mib", (double)b.rss_after_kib / 1024.0, "MiB");
    bench_report("discord_guild_create_rss_growth_mib",
                 (double)(b.rss_after_kib - b.rss_before_kib) / 1024.0, "MiB");
    return 0;
}
