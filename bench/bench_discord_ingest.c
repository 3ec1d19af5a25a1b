/* The Discord adapter taking a flood, end to end: the fake gateway (own
 * thread) sends 200,000 guild MESSAGE_CREATE of about 1 KiB through
 * zlib-stream, none of them for the bot (members talking among
 * themselves, as most of a big server's traffic is), then 10,000
 * GUILD_CREATE of about 19 KiB. The adapter scans, filters and takes in
 * each as it would in the daemon.
 *
 * The message flood runs four ways in one process: over zlib-stream as
 * the adapter took it in before (every message parsed whole, the stream
 * inflated on the loop), over zlib-stream with the raw check that passes
 * over the messages that cannot concern the bot but still inflated on the
 * loop (what the previous figure was), over zlib-stream as shipped (the
 * raw check, and the stream inflated on a thread of its own while the loop
 * takes payloads in), and over zstd-stream (the default transport) as
 * shipped; the four are interleaved three times, and the medians and the
 * speedups against the first are reported. Each flood runs in a process
 * of its own. Figures: messages and guilds per second, and the process's
 * resident memory after each flood (fakes included). */
#include "bench/bench.h"

#include "adapters/discord/discord.h"
#include "net/http.h"
#include "base/log.h"
#include "tests/fake/discord_gateway.h"
#include "tests/fake/discord_rest.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BD_MESSAGES 200000
#define BD_MESSAGE_BYTES 1000
#define BD_GUILDS 10000
#define BD_GUILD_BYTES (19 * 1024)
#define BD_REPS 3 /* bench_median3 */

struct bench_dc {
    uv_loop_t loop;
    struct http_client *http;
    struct fake_gateway *gw;
    struct fake_rest *rest;
    struct adapter *adapter;
    uv_timer_t poll;
    atomic_bool identified;
    int phase; /* 0 waiting for READY, 1 messages, 2 guilds */
    bool guilds;
    uint64_t ready_at;
    double t0, t_messages, t_guilds0, t_guilds;
    long rss_messages, rss_guilds;
    bool failed;
};

static void bd_on_seen(struct fake_gateway *f, enum fake_gateway_seen what, void *data)
{
    (void)f;
    if (what == FAKE_SEEN_IDENTIFY)
        atomic_store(&((struct bench_dc *)data)->identified, true);
}

static void bd_dispatch(void *data, struct invocation *inv, const char *args)
{
    (void)data;
    (void)args;
    reply_finish(inv->reply);
    invocation_clear(inv);
}

static void bd_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void bd_noop(void *data)
{
    (void)data;
}

static void bd_closed(void *data)
{
    struct bench_dc *b = data;
    http_client_close(b->http, bd_noop, NULL);
}

static void bd_close(struct bench_dc *b)
{
    uv_close((uv_handle_t *)&b->poll, NULL);
    b->adapter->ops->close(b->adapter, bd_closed, b);
}

/* When the flood just sent really began: the fake compresses its cycle of
 * payloads first, on its own thread, and that is not the adapter's time. */
static double bd_flood_began(struct bench_dc *b, double asked_at)
{
    struct fake_gateway_stats gs;
    fake_gateway_stats(b->gw, &gs);
    return gs.flood_ready_at > asked_at ? gs.flood_ready_at : asked_at;
}

static void bd_poll(uv_timer_t *t)
{
    struct bench_dc *b = t->data;
    struct discord_adapter_stats st;
    discord_adapter_stats(b->adapter, &st);
    if (uv_now(&b->loop) > b->ready_at + 120000) {
        fprintf(stderr, "bench discord_ingest: stuck (phase %d, %llu messages, %llu guilds)\n",
                b->phase, (unsigned long long)st.message_creates,
                (unsigned long long)st.guilds_seen);
        b->failed = true;
        bd_close(b);
        return;
    }
    if (b->phase == 0) {
        /* The READY is in once the shard says it identified. */
        if (!atomic_load(&b->identified) || st.shards_open == 0)
            return;
        b->phase = 1;
        b->t0 = bench_now();
        fake_gateway_flood(b->gw, "MESSAGE_CREATE", BD_MESSAGES, BD_MESSAGE_BYTES);
        return;
    }
    if (b->phase == 1 && st.message_creates >= BD_MESSAGES) {
        b->t_messages = bench_now();
        b->t0 = bd_flood_began(b, b->t0);
        b->rss_messages = bench_rss_kib();
        if (!b->guilds) {
            bd_close(b);
            return;
        }
        b->phase = 2;
        b->t_guilds0 = bench_now();
        fake_gateway_flood(b->gw, "GUILD_CREATE", BD_GUILDS, BD_GUILD_BYTES);
        return;
    }
    if (b->phase == 2 && st.guilds_seen >= BD_GUILDS) {
        b->t_guilds = bench_now();
        b->t_guilds0 = bd_flood_began(b, b->t_guilds0);
        b->rss_guilds = bench_rss_kib();
        bd_close(b);
    }
}

/* One flood; guilds: the GUILD_CREATE flood after the messages. */
static int bd_run(struct bench_dc *b, enum discord_compress compress, bool prefilter_off,
                  bool inflate_inline, bool guilds)
{
    memset(b, 0, sizeof(*b));
    b->guilds = guilds;
    uv_loop_init(&b->loop);
    struct fake_gateway_options go = {.heartbeat_ms = 41250, .on_seen = bd_on_seen, .data = b};
    b->gw = fake_gateway_start_thread(&go);
    struct fake_rest_options ro = {0};
    b->rest = fake_rest_start_thread(&ro);
    if (b->gw == NULL || b->rest == NULL || http_client_new(&b->loop, NULL, &b->http) < 0) {
        fprintf(stderr, "bench discord_ingest: fakes did not start\n");
        return -1;
    }
    struct discord_options o = {.token = "bench-token.abcdef",
                                .application_id = "42",
                                .api_base = fake_rest_api_base(b->rest),
                                .gateway_url = fake_gateway_url(b->gw),
                                .shards = 1,
                                .shard_last = -1,
                                .http = b->http,
                                .compress = compress,
                                .prefilter_off = prefilter_off,
                                .inflate_inline = inflate_inline};
    struct adapter_host host = {.dispatch = bd_dispatch, .ended = bd_ended, .data = b};
    b->adapter = discord_new(&b->loop, &o, &host);
    if (b->adapter == NULL || b->adapter->ops->start(b->adapter) < 0) {
        fprintf(stderr, "bench discord_ingest: adapter did not start\n");
        return -1;
    }
    b->ready_at = uv_now(&b->loop);
    uv_timer_init(&b->loop, &b->poll);
    b->poll.data = b;
    uv_timer_start(&b->poll, bd_poll, 1, 1);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    b->adapter->ops->free(b->adapter);
    uv_loop_close(&b->loop);
    fake_rest_free(b->rest);
    fake_gateway_free(b->gw);
    return b->failed ? -1 : 0;
}

/* One flood in a process of its own, so each resident-memory figure is
 * its path's alone, not what the floods before it left behind. */
static int bd_run_fresh(struct bench_dc *b, enum discord_compress compress, bool prefilter_off,
                        bool inflate_inline, bool guilds)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        int rc = bd_run(b, compress, prefilter_off, inflate_inline, guilds);
        b->failed = rc < 0;
        ssize_t n = write(fds[1], b, sizeof(*b));
        _exit(n == (ssize_t)sizeof(*b) ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    char *dst = (char *)b;
    while (got < sizeof(*b)) {
        ssize_t n = read(fds[0], dst + got, sizeof(*b) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != sizeof(*b))
        return -1;
    return b->failed ? -1 : 0;
}

static double bd_rate(double n, double secs)
{
    return n / (secs > 0 ? secs : 1e-9);
}

int bench_discord_ingest(void)
{
    struct bench_dc *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return 1;
    log_configure(LOG_ERROR, false, NULL);
    http_global_init();
    /* The four floods, interleaved BD_REPS times: this machine's speed
     * swings within seconds, so a ratio is taken between neighbouring runs
     * and the median of BD_REPS reported. Memory is the first round's. */
    double whole[BD_REPS], inl[BD_REPS], zlib[BD_REPS], zstd[BD_REPS], gz[BD_REPS], gzstd[BD_REPS];
    double up_inl[BD_REPS], up_zlib[BD_REPS], up_zstd[BD_REPS];
    long rss_whole = 0, rss_inl = 0, rss_zlib = 0, rss_zstd = 0, rss_gz = 0, rss_gzstd = 0;
    int rc = 0;
    for (int r = 0; r < BD_REPS && rc == 0; r++) {
        rc = bd_run_fresh(b, DISCORD_COMPRESS_ZLIB, true, true, false);
        whole[r] = bd_rate(BD_MESSAGES, b->t_messages - b->t0);
        if (r == 0)
            rss_whole = b->rss_messages;
        if (rc == 0)
            rc = bd_run_fresh(b, DISCORD_COMPRESS_ZLIB, false, true, false);
        inl[r] = bd_rate(BD_MESSAGES, b->t_messages - b->t0);
        if (r == 0)
            rss_inl = b->rss_messages;
        if (rc == 0)
            rc = bd_run_fresh(b, DISCORD_COMPRESS_ZLIB, false, false, true);
        zlib[r] = bd_rate(BD_MESSAGES, b->t_messages - b->t0);
        gz[r] = bd_rate(BD_GUILDS, b->t_guilds - b->t_guilds0);
        if (r == 0) {
            rss_zlib = b->rss_messages;
            rss_gz = b->rss_guilds;
        }
        if (rc == 0)
            rc = bd_run_fresh(b, DISCORD_COMPRESS_ZSTD, false, false, true);
        zstd[r] = bd_rate(BD_MESSAGES, b->t_messages - b->t0);
        gzstd[r] = bd_rate(BD_GUILDS, b->t_guilds - b->t_guilds0);
        if (r == 0) {
            rss_zstd = b->rss_messages;
            rss_gzstd = b->rss_guilds;
        }
        up_inl[r] = inl[r] / whole[r];
        up_zlib[r] = zlib[r] / whole[r];
        up_zstd[r] = zstd[r] / whole[r];
    }
    if (rc == 0) {
        bench_report("discord_ingest_parsed_whole_messages_per_s", bench_median3(whole),
                     "messages/s");
        bench_report("discord_ingest_inflated_on_loop_messages_per_s", bench_median3(inl),
                     "messages/s");
        bench_report("discord_ingest_inflated_on_loop_speedup", bench_median3(up_inl), "x");
        bench_report("discord_ingest_messages_per_s", bench_median3(zlib), "messages/s");
        bench_report("discord_ingest_speedup", bench_median3(up_zlib), "x");
        bench_report("discord_ingest_zstd_messages_per_s", bench_median3(zstd), "messages/s");
        bench_report("discord_ingest_zstd_speedup", bench_median3(up_zstd), "x");
        bench_report("discord_ingest_parsed_whole_rss", (double)rss_whole / 1024.0, "MiB");
        bench_report("discord_ingest_inflated_on_loop_rss", (double)rss_inl / 1024.0, "MiB");
        bench_report("discord_ingest_rss", (double)rss_zlib / 1024.0, "MiB");
        bench_report("discord_ingest_zstd_rss", (double)rss_zstd / 1024.0, "MiB");
        bench_report("discord_guild_create_per_s", bench_median3(gz), "guilds/s");
        bench_report("discord_guild_create_adapter_rss", (double)rss_gz / 1024.0, "MiB");
        bench_report("discord_guild_create_zstd_per_s", bench_median3(gzstd), "guilds/s");
        bench_report("discord_guild_create_zstd_rss", (double)rss_gzstd / 1024.0, "MiB");
    }
    free(b);
    return rc == 0 ? 0 : 1;
}
