/* The gateway connection against the fake gateway, on a real loop. Every
 * test is driven by what happens (an event arrives, the fake sees a resume)
 * and guarded by a timer that fails it when nothing more happens. */
#include "tests/test.h"

#include "adapters/discord/gateway.h"
#include "base/error.h"
#include "base/log.h"
#include "tests/fake/discord_gateway.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GT_TOKEN "fake-bot-token-ABCDEFGH.123456"
#define GT_GUARD_MS 10000
#define GT_MAX_EVENTS 64

struct gt;
typedef void (*gt_event_fn)(struct gt *t, const char *type, int64_t seq, const char *d,
                            size_t d_len);

struct gt {
    uv_loop_t loop;
    struct discord_ws *ws;
    struct fake_gateway *fake;
    struct discord_gateway *gw;
    struct discord_identify_gate gate;
    uv_timer_t guard;
    uv_timer_t later;
    bool later_used;
    bool timed_out;
    bool finished;
    int step;
    char types[GT_MAX_EVENTS][32];
    int64_t seqs[GT_MAX_EVENTS];
    size_t nev;
    gt_event_fn on_event;
    enum discord_compress compress; /* the transport asked for */
    enum fake_gateway_send send;    /* what the fake sends */
    void (*on_seen)(struct gt *t, enum fake_gateway_seen what);
    void (*on_state)(struct gt *t, enum discord_gateway_state state, int code);
    struct fake_gateway_stats fst;     /* the fake's, at the end */
    struct discord_gateway_status gst; /* the gateway's, when it was stopped */
    char *logbuf;
    size_t loglen;
    FILE *logf;
};

static double gt_jitter(void *data)
{
    (void)data;
    return 0.0;
}

static void gt_guard_closed(uv_handle_t *h)
{
    (void)h;
}

static void gt_stopped(struct discord_gateway *gw, void *data)
{
    (void)gw;
    struct gt *t = data;
    t->gw = NULL;
    fake_gateway_close(t->fake);
    discord_ws_stop(t->ws);
}

static void gt_finish(struct gt *t)
{
    if (t->finished)
        return;
    t->finished = true;
    discord_gateway_status(t->gw, &t->gst);
    uv_close((uv_handle_t *)&t->guard, gt_guard_closed);
    if (t->later_used)
        uv_close((uv_handle_t *)&t->later, gt_guard_closed);
    discord_gateway_stop(t->gw, gt_stopped, t);
}

static void gt_guard_fired(uv_timer_t *timer)
{
    struct gt *t = timer->data;
    t->timed_out = true;
    gt_finish(t);
}

static void gt_event(struct discord_gateway *gw, const char *type, int64_t seq, const char *d,
                     size_t d_len, void *data)
{
    (void)gw;
    struct gt *t = data;
    assert_int_equal(strlen(d), d_len);
    if (t->nev < GT_MAX_EVENTS) {
        snprintf(t->types[t->nev], sizeof(t->types[0]), "%s", type);
        t->seqs[t->nev] = seq;
        t->nev++;
    }
    if (t->on_event != NULL && !t->finished)
        t->on_event(t, type, seq, d, d_len);
}

static void gt_state(struct discord_gateway *gw, enum discord_gateway_state state, int code,
                     void *data)
{
    (void)gw;
    struct gt *t = data;
    if (t->on_state != NULL && !t->finished)
        t->on_state(t, state, code);
}

static void gt_seen(struct fake_gateway *f, enum fake_gateway_seen what, void *data)
{
    (void)f;
    struct gt *t = data;
    if (t->on_seen != NULL && !t->finished)
        t->on_seen(t, what);
}

static void gt_start_url(struct gt *t, const char *const *events, size_t max_payload,
                         const char *host);

static void gt_start(struct gt *t, const char *const *events, size_t max_payload)
{
    gt_start_url(t, events, max_payload, NULL);
}

/* host: connect by this name instead of the fake's 127.0.0.1. */
static void gt_start_url(struct gt *t, const char *const *events, size_t max_payload,
                         const char *host)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->logf = open_memstream(&t->logbuf, &t->loglen);
    assert_non_null(t->logf);
    log_configure(LOG_INFO, false, t->logf);
    struct fake_gateway_options fo = {
        .heartbeat_ms = 200, .send = t->send, .on_seen = gt_seen, .data = t};
    t->fake = fake_gateway_new(&t->loop, &fo);
    assert_non_null(t->fake);
    t->ws = discord_ws_new(&t->loop);
    assert_non_null(t->ws);
    discord_identify_gate_init(&t->gate, 1);
    t->gate.spacing_ms = 50;
    char url[128];
    if (host != NULL)
        snprintf(url, sizeof(url), "ws://%s:%d/", host, fake_gateway_port(t->fake));
    else
        snprintf(url, sizeof(url), "%s", fake_gateway_url(t->fake));
    struct discord_gateway_options o = {
        .url = url,
        .token = GT_TOKEN,
        .intents = 513,
        .shard_id = 0,
        .shard_count = 1,
        .events = events,
        .max_payload = max_payload,
        .compress = t->compress,
        .gate = &t->gate,
        .on_event = gt_event,
        .on_state = gt_state,
        .data = t,
        .jitter = gt_jitter,
    };
    t->gw = discord_gateway_new(t->ws, &o);
    assert_non_null(t->gw);
    uv_timer_init(&t->loop, &t->guard);
    t->guard.data = t;
    uv_timer_start(&t->guard, gt_guard_fired, GT_GUARD_MS, 0);
    assert_int_equal(discord_gateway_start(t->gw), 0);
}

/* Run to the end, tear down, and check nothing was left on the loop. */
static void gt_run(struct gt *t)
{
    uv_run(&t->loop, UV_RUN_DEFAULT);
    fake_gateway_stats(t->fake, &t->fst);
    fake_gateway_free(t->fake);
    discord_ws_free(t->ws);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    log_configure(LOG_WARN, false, NULL);
    fclose(t->logf);
    /* Whatever happened, the token never reached a log line. */
    assert_null(strstr(t->logbuf, GT_TOKEN));
    assert_false(t->timed_out);
}

static void gt_done(struct gt *t)
{
    free(t->logbuf);
    free(t);
}

static struct gt *gt_new(void)
{
    struct gt *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    return t;
}

static void gt_expect(const struct gt *t, size_t i, const char *type, int64_t seq)
{
    assert_true(i < t->nev);
    assert_string_equal(t->types[i], type);
    assert_int_equal(t->seqs[i], seq);
}

static const char *const gt_events[] = {"READY", "RESUMED", "MESSAGE_CREATE", NULL};

/* ---- identify, READY, events in order ------------------------------------ */

static void identify_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)seq;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        assert_non_null(strstr(d, "fake-session-1"));
        for (int i = 0; i < 5; i++) {
            char json[64];
            snprintf(json, sizeof(json), "{\"content\":\"m%d\"}", i);
            fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", json);
        }
        assert_int_equal(discord_gateway_send(t->gw, "{\"op\":3,\"d\":{\"since\":null,"
                                                     "\"activities\":[],\"status\":\"online\","
                                                     "\"afk\":false}}"),
                         0);
        return;
    }
    if (t->nev == 6)
        gt_finish(t);
}

static void identify_ready_events_in_order(enum discord_compress compress)
{
    struct gt *t = gt_new();
    t->compress = compress;
    t->on_event = identify_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    gt_expect(t, 0, "READY", 1);
    for (size_t i = 1; i < 6; i++)
        gt_expect(t, i, "MESSAGE_CREATE", (int64_t)i + 1);
    assert_int_equal(t->fst.identifies, 1);
    assert_string_equal(t->fst.identify_token, GT_TOKEN);
    assert_int_equal(t->fst.identify_intents, 513);
    assert_int_equal(t->fst.identify_shard[0], 0);
    assert_int_equal(t->fst.identify_shard[1], 1);
    assert_non_null(strstr(t->fst.query, compress == DISCORD_COMPRESS_ZSTD
                                             ? "compress=zstd-stream"
                                             : "compress=zlib-stream"));
    assert_non_null(strstr(t->fst.query, "v=10"));
    assert_string_equal(t->fst.host, "127.0.0.1");
    assert_int_equal(t->gst.state, DISCORD_GW_IDENTIFIED);
    assert_int_equal(t->gst.seq, 6);
    assert_int_equal(t->fst.last_client_close, 1000);
    gt_done(t);
}

static void test_identify_ready_events_in_order(void **state)
{
    (void)state;
    identify_ready_events_in_order(DISCORD_COMPRESS_ZLIB);
    identify_ready_events_in_order(DISCORD_COMPRESS_ZSTD);
}

/* A gateway (or a proxy in front of it) that ignores the URL's compress:
 * the stream is read as what its first bytes say, or as text, and the
 * operator is told once. */
static void other_transport(enum discord_compress asked, enum fake_gateway_send send,
                            const char *got)
{
    struct gt *t = gt_new();
    t->compress = asked;
    t->send = send;
    t->on_event = identify_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    gt_expect(t, 0, "READY", 1);
    for (size_t i = 1; i < 6; i++)
        gt_expect(t, i, "MESSAGE_CREATE", (int64_t)i + 1);
    assert_int_equal(t->fst.connections, 1);
    assert_int_equal(t->gst.reconnects, 0);
    char want[96];
    snprintf(want, sizeof(want), "discord.gateway.transport shard=0 asked=%s got=%s",
             discord_compress_name(asked), got);
    const char *line = strstr(t->logbuf, want);
    assert_non_null(line);
    assert_null(strstr(line + 1, "discord.gateway.transport")); /* once */
    gt_done(t);
}

static void test_other_transport_than_asked(void **state)
{
    (void)state;
    other_transport(DISCORD_COMPRESS_ZSTD, FAKE_SEND_ZLIB, "zlib-stream");
    other_transport(DISCORD_COMPRESS_ZLIB, FAKE_SEND_ZSTD, "zstd-stream");
    other_transport(DISCORD_COMPRESS_ZSTD, FAKE_SEND_TEXT, "uncompressed");
}

/* ---- heartbeats ---------------------------------------------------------- */

static void heartbeat_seen(struct gt *t, enum fake_gateway_seen what)
{
    if (what != FAKE_SEEN_HEARTBEAT)
        return;
    struct fake_gateway_stats st;
    fake_gateway_stats(t->fake, &st);
    /* A heartbeat after an unanswered one would have been a reconnect: the
     * fourth heartbeat on one connection means three ACKs were taken. */
    if (st.heartbeats >= 4)
        gt_finish(t);
}

static void test_heartbeats_sent_and_acked(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_seen = heartbeat_seen;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_true(t->fst.heartbeats >= 4);
    assert_true(t->fst.acks >= 4);
    assert_int_equal(t->fst.connections, 1);
    assert_int_equal(t->gst.reconnects, 0);
    assert_int_equal(t->fst.last_heartbeat_seq, 1); /* READY's seq */
    gt_done(t);
}

/* ---- zombie connection: missed ACK, resume, replay ------------------------ */

static void zombie_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{\"content\":\"a\"}");
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{\"content\":\"b\"}");
    } else if (seq == 3) {
        /* From here the connection is a zombie, and two events are lost on it. */
        fake_gateway_drop_acks(t->fake, true);
        fake_gateway_dispatch_missed(t->fake, "MESSAGE_CREATE", "{\"content\":\"c\"}");
        fake_gateway_dispatch_missed(t->fake, "MESSAGE_CREATE", "{\"content\":\"d\"}");
    } else if (strcmp(type, "RESUMED") == 0) {
        gt_finish(t);
    }
}

static void test_zombie_closes_and_resumes(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = zombie_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->nev, 6);
    gt_expect(t, 0, "READY", 1);
    for (size_t i = 1; i < 5; i++)
        gt_expect(t, i, "MESSAGE_CREATE", (int64_t)i + 1);
    gt_expect(t, 5, "RESUMED", 6);
    assert_int_equal(t->fst.identifies, 1);
    assert_int_equal(t->fst.resumes, 1);
    assert_string_equal(t->fst.last_resume_session, "fake-session-1");
    assert_int_equal(t->fst.last_resume_seq, 3);
    assert_int_equal(t->fst.client_closes, 2); /* the zombie's, then the stop's */
    assert_int_equal(t->gst.resumes, 1);
    assert_int_equal(t->gst.reconnects, 1);
    assert_int_equal(t->gst.last_close_code, DISCORD_CLOSE_RESUMABLE);
    assert_non_null(strstr(t->logbuf, "discord.gateway.zombie"));
    gt_done(t);
}

static void zombie_close_seen(struct gt *t, enum fake_gateway_seen what)
{
    if (what != FAKE_SEEN_CLOSE)
        return;
    struct fake_gateway_stats st;
    fake_gateway_stats(t->fake, &st);
    /* The zombie's close must keep the session: not 1000 or 1001. */
    if (st.client_closes == 1) {
        assert_int_not_equal(st.last_client_close, 1000);
        assert_int_not_equal(st.last_client_close, 1001);
    }
}

static void test_zombie_close_code_keeps_session(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = zombie_event;
    t->on_seen = zombie_close_seen;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.resumes, 1);
    gt_done(t);
}

/* ---- op 7, op 9 ------------------------------------------------------------ */

static void op7_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)seq;
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0)
        fake_gateway_reconnect(t->fake);
    else if (strcmp(type, "RESUMED") == 0)
        gt_finish(t);
}

static void test_op7_reconnects_and_resumes(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = op7_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.connections, 2);
    assert_int_equal(t->fst.identifies, 1);
    assert_int_equal(t->fst.resumes, 1);
    assert_int_equal(t->fst.last_resume_seq, 1);
    assert_int_equal(t->gst.resumes, 1);
    gt_done(t);
}

static void op9_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)seq;
    (void)len;
    if (strcmp(type, "READY") == 0 && strstr(d, "fake-session-1") != NULL) {
        fake_gateway_invalid_session(t->fake, false);
    } else if (strcmp(type, "READY") == 0) {
        /* A new session, identified anew; now one that may be resumed. */
        assert_non_null(strstr(d, "fake-session-2"));
        fake_gateway_invalid_session(t->fake, true);
    } else if (strcmp(type, "RESUMED") == 0) {
        gt_finish(t);
    }
}

static void test_op9_identifies_anew_or_resumes(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = op9_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.identifies, 2);
    assert_int_equal(t->fst.resumes, 1);
    assert_string_equal(t->fst.last_resume_session, "fake-session-2");
    assert_int_equal(t->fst.connections, 3);
    assert_int_equal(t->gst.identifies, 2);
    assert_int_equal(t->gst.resumes, 1);
    gt_done(t);
}

/* ---- close codes ----------------------------------------------------------- */

static void close4000_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{}");
        fake_gateway_kick(t->fake, 4000);
    } else if (strcmp(type, "RESUMED") == 0) {
        assert_int_equal(seq, 3);
        gt_finish(t);
    }
}

static void test_close_4000_resumes(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = close4000_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.identifies, 1);
    assert_int_equal(t->fst.resumes, 1);
    assert_int_equal(t->fst.last_resume_seq, 2);
    assert_int_equal(t->gst.last_close_code, 4000);
    assert_int_equal(t->gst.reconnects, 1);
    gt_done(t);
}

static void close4004_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)seq;
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0)
        fake_gateway_kick(t->fake, 4004);
}

static void close4004_later(uv_timer_t *timer)
{
    gt_finish(timer->data);
}

static void close4004_state(struct gt *t, enum discord_gateway_state state, int code)
{
    if (state != DISCORD_GW_STOPPED)
        return;
    assert_int_equal(code, 4004);
    /* Give a reconnect, if one were coming, time to show up: the backoff
     * after a close is at least 500 ms here. */
    uv_timer_init(&t->loop, &t->later);
    t->later.data = t;
    t->later_used = true;
    uv_timer_start(&t->later, close4004_later, 1200, 0);
}

static void test_close_4004_stops(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = close4004_event;
    t->on_state = close4004_state;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.connections, 1);
    assert_int_equal(t->fst.identifies, 1);
    assert_int_equal(t->gst.state, DISCORD_GW_STOPPED);
    assert_int_equal(t->gst.reconnects, 0);
    assert_int_equal(t->gst.last_close_code, 4004);
    const char *line = strstr(t->logbuf, "discord.gateway.stopped");
    assert_non_null(line);
    assert_non_null(strstr(line, "code=4004"));
    assert_non_null(strstr(line, "authentication failed"));
    gt_done(t);
}

/* ---- bad input ------------------------------------------------------------- */

/* On a zlib-stream connection every payload comes out of one inflater: a
 * payload that does not scan means the stream can no longer be trusted,
 * so the connection resumes at once (what it missed is replayed), rather
 * than going on until a heartbeat goes unanswered. */
static void malformed_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)len;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{}");
    } else if (seq == 2) {
        fake_gateway_send_text(t->fake, "not json at all");
        fake_gateway_dispatch_missed(t->fake, "MESSAGE_CREATE", "{\"content\":\"after\"}");
    } else if (strcmp(type, "MESSAGE_CREATE") == 0) {
        assert_int_equal(seq, 3);
        assert_non_null(strstr(d, "after"));
    } else if (strcmp(type, "RESUMED") == 0) {
        gt_finish(t);
    }
}

static void test_malformed_payload_resumes(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = malformed_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.connections, 2);
    assert_int_equal(t->fst.resumes, 1);
    assert_int_equal(t->fst.last_resume_seq, 2);
    gt_expect(t, 2, "MESSAGE_CREATE", 3); /* the one after it, replayed */
    gt_expect(t, 3, "RESUMED", 4);
    assert_non_null(strstr(t->logbuf, "discord.gateway.bad_payload"));
    gt_done(t);
}

static void corrupt_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{}");
    } else if (seq == 2) {
        fake_gateway_send_corrupt(t->fake);
        fake_gateway_dispatch_missed(t->fake, "MESSAGE_CREATE", "{\"content\":\"lost\"}");
    } else if (strcmp(type, "RESUMED") == 0) {
        gt_finish(t);
    }
}

static void corrupt_stream_resumes(enum discord_compress compress)
{
    struct gt *t = gt_new();
    t->compress = compress;
    t->on_event = corrupt_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->fst.connections, 2);
    assert_int_equal(t->fst.resumes, 1);
    assert_int_equal(t->fst.last_resume_seq, 2);
    gt_expect(t, 2, "MESSAGE_CREATE", 3); /* the lost one, replayed */
    gt_expect(t, 3, "RESUMED", 4);
    assert_non_null(strstr(t->logbuf, "discord.gateway.stream"));
    gt_done(t);
}

static void test_corrupt_stream_resumes(void **state)
{
    (void)state;
    corrupt_stream_resumes(DISCORD_COMPRESS_ZLIB);
    corrupt_stream_resumes(DISCORD_COMPRESS_ZSTD);
}

/* ---- floods ---------------------------------------------------------------- */

/* A flood longer than the fake's precompressed cycle (2048 payloads), so
 * the cycle's stream follows the connection's, then itself, and the
 * connection's stream starts again after it; then a second flood. Every
 * payload arrives, in order, and the stream never breaks. */
static void flood_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)seq;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_flood(t->fake, "MESSAGE_CREATE", 2500, 300);
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{\"content\":\"after\"}");
        fake_gateway_flood(t->fake, "MESSAGE_CREATE", 10, 300);
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{\"content\":\"end\"}");
        return;
    }
    t->step++;
    if (strstr(d, "\"after\"") != NULL)
        assert_int_equal(t->step, 2501);
    if (strstr(d, "\"end\"") != NULL) {
        assert_int_equal(t->step, 2512);
        gt_finish(t);
    }
}

static void flood_arrives_whole(enum discord_compress compress)
{
    struct gt *t = gt_new();
    t->compress = compress;
    t->on_event = flood_event;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->step, 2512);
    assert_int_equal(t->fst.connections, 1);
    assert_int_equal(t->gst.reconnects, 0);
    assert_null(strstr(t->logbuf, "discord.gateway.stream"));
    gt_done(t);
}

static void test_flood_arrives_whole(void **state)
{
    (void)state;
    flood_arrives_whole(DISCORD_COMPRESS_ZLIB);
    flood_arrives_whole(DISCORD_COMPRESS_ZSTD);
}

/* ---- filtering and size ---------------------------------------------------- */

static void unwanted_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        for (int i = 0; i < 3; i++)
            fake_gateway_dispatch(t->fake, "TYPING_START", "{\"user_id\":\"1\"}");
        fake_gateway_dispatch(t->fake, "PRESENCE_UPDATE", "{\"user\":{\"id\":\"1\"}}");
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{}");
    } else {
        assert_string_equal(type, "MESSAGE_CREATE");
        assert_int_equal(seq, 6);
        /* The next heartbeat must carry the seq of the skipped events too. */
        t->step = 1;
        fake_gateway_dispatch(t->fake, "TYPING_START", "{\"user_id\":\"2\"}");
        fake_gateway_heartbeat_request(t->fake);
    }
}

static void unwanted_seen(struct gt *t, enum fake_gateway_seen what)
{
    if (what != FAKE_SEEN_HEARTBEAT || t->step != 1)
        return;
    struct fake_gateway_stats st;
    fake_gateway_stats(t->fake, &st);
    if (st.last_heartbeat_seq == 7)
        gt_finish(t);
}

static void test_unwanted_events_skipped_seq_advances(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = unwanted_event;
    t->on_seen = unwanted_seen;
    gt_start(t, gt_events, 0);
    gt_run(t);
    assert_int_equal(t->nev, 2);
    assert_int_equal(t->gst.seq, 7);
    gt_done(t);
}

static void large_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)seq;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_burst(t->fake, "GUILD_CREATE", 1, 1u << 20);
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{}");
        return;
    }
    if (strcmp(type, "GUILD_CREATE") == 0) {
        assert_true(len > (1u << 20) - 4096);
        cJSON *g = cJSON_ParseWithLength(d, len);
        assert_non_null(g);
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(g, "channels");
        assert_true(cJSON_GetArraySize(ch) > 1000);
        cJSON_Delete(g);
        return;
    }
    gt_finish(t);
}

static void large_payload_arrives_whole(enum discord_compress compress)
{
    static const char *const events[] = {"READY", "GUILD_CREATE", "MESSAGE_CREATE", NULL};
    struct gt *t = gt_new();
    t->compress = compress;
    t->on_event = large_event;
    gt_start(t, events, 4u << 20);
    gt_run(t);
    assert_int_equal(t->nev, 3);
    gt_expect(t, 1, "GUILD_CREATE", 2);
    gt_expect(t, 2, "MESSAGE_CREATE", 3);
    assert_int_equal(t->gst.reconnects, 0);
    gt_done(t);
}

static void test_large_payload_arrives_whole(void **state)
{
    (void)state;
    large_payload_arrives_whole(DISCORD_COMPRESS_ZLIB);
    large_payload_arrives_whole(DISCORD_COMPRESS_ZSTD);
}

static void oversized_event(struct gt *t, const char *type, int64_t seq, const char *d, size_t len)
{
    (void)d;
    (void)len;
    if (strcmp(type, "READY") == 0) {
        fake_gateway_burst(t->fake, "GUILD_CREATE", 1, 256 * 1024);
        fake_gateway_dispatch(t->fake, "MESSAGE_CREATE", "{}");
    } else if (strcmp(type, "MESSAGE_CREATE") == 0) {
        assert_int_equal(seq, 3);
        gt_finish(t);
    }
}

static void oversized_payload_skipped(enum discord_compress compress)
{
    static const char *const events[] = {"READY", "GUILD_CREATE", "MESSAGE_CREATE", NULL};
    struct gt *t = gt_new();
    t->compress = compress;
    t->on_event = oversized_event;
    gt_start(t, events, 64 * 1024);
    gt_run(t);
    /* Too large to take: skipped, and the stream goes on. */
    assert_int_equal(t->nev, 2);
    gt_expect(t, 1, "MESSAGE_CREATE", 3);
    assert_int_equal(t->fst.connections, 1);
    assert_non_null(strstr(t->logbuf, "discord.gateway.too_large"));
    gt_done(t);
}

static void test_oversized_payload_skipped(void **state)
{
    (void)state;
    oversized_payload_skipped(DISCORD_COMPRESS_ZLIB);
    oversized_payload_skipped(DISCORD_COMPRESS_ZSTD);
}

/* "localhost" is resolved off the loop; it may give ::1 first, where
 * nothing listens, and the next address is tried. Host names the name. */
static void test_resolves_name_keeps_host(void **state)
{
    (void)state;
    struct gt *t = gt_new();
    t->on_event = identify_event;
    gt_start_url(t, gt_events, 0, "localhost");
    gt_run(t);
    assert_int_equal(t->nev, 6);
    assert_int_equal(t->fst.connections, 1);
    assert_string_equal(t->fst.host, "localhost");
    assert_int_equal(t->gst.reconnects, 0);
    gt_done(t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_identify_ready_events_in_order),
    cmocka_unit_test(test_other_transport_than_asked),
    cmocka_unit_test(test_resolves_name_keeps_host),
    cmocka_unit_test(test_heartbeats_sent_and_acked),
    cmocka_unit_test(test_zombie_closes_and_resumes),
    cmocka_unit_test(test_zombie_close_code_keeps_session),
    cmocka_unit_test(test_op7_reconnects_and_resumes),
    cmocka_unit_test(test_op9_identifies_anew_or_resumes),
    cmocka_unit_test(test_close_4000_resumes),
    cmocka_unit_test(test_close_4004_stops),
    cmocka_unit_test(test_malformed_payload_resumes),
    cmocka_unit_test(test_corrupt_stream_resumes),
    cmocka_unit_test(test_unwanted_events_skipped_seq_advances),
    cmocka_unit_test(test_flood_arrives_whole),
    cmocka_unit_test(test_large_payload_arrives_whole),
    cmocka_unit_test(test_oversized_payload_skipped),
};

TEST_GROUP_DEFINE(discord_gateway, tests, NULL, NULL)
