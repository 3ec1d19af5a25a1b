/* The gateway connection against the fake gateway, on a real loop. Every
 * test is driven by what happens (an event arrives, the fake sees a resume)
 * and guarded by a timer that fails it when nothing more happens. */
#include "tests/test.h"

#include "adapters/discord/gateway.h"
#include "adapters/discord/payload.h"
#include "core/error.h"
#include "core/log.h"
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
    discord_ws_close(t->ws);
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

static void gt_start(struct gt *t, const char *const *events, size_t max_payload)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->logf = open_memstream(&t->logbuf, &t->loglen);
    assert_non_null(t->logf);
    log_configure(LOG_INFO, false, t->logf);
    struct fake_gateway_options fo = {.heartbeat_ms = 200, .on_seen = gt_seen, .data = t};
    t->fake = fake_gateway_new(&t->loop, &fo);
    assert_non_null(t->fake);
    t->ws = discord_ws_new(&t->loop);
    assert_non_null(t->ws);
    discord_identify_gate_init(&t->gate, 1);
    t->gate.spacing_ms = 50;
    struct discord_gateway_options o = {
        .url = fake_gateway_url(t->fake),
        .token = GT_TOKEN,
        .intents = 513,
        .shard_id = 0,
        .shard_count = 1,
        .events = events,
        .max_payload = max_payload,
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

static void test_identify_ready_events_in_order(void **state)
{
    (void)state;
    struct gt *t = gt_new();
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
    assert_non_null(strstr(t->fst.query, "compress=zlib-stream"));
    assert_non_null(strstr(t->fst.query, "v=10"));
    assert_string_equal(t->fst.host, "127.0.0.1");
    assert_int_equal(t->gst.state, DISCORD_GW_IDENTIFIED);
    assert_int_equal(t->gst.seq, 6);
    assert_int_equal(t->fst.last_client_close, 1000);
    gt_done(t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_identify_ready_events_in_order),
};

TEST_GROUP_DEFINE(discord_gateway, tests, NULL, NULL)
