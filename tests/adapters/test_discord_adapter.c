/* The Discord adapter end to end: the fake gateway delivers
 * INTERACTION_CREATE and MESSAGE_CREATE, the fake REST records what the
 * adapter answers. Each test waits for what it expects at the fake REST
 * (a predicate checked after every request), guarded by a timer, then
 * closes the adapter and everything else; the loop must close clean. */
#include "tests/test.h"

#include "adapters/discord/discord.h"
#include "adapters/discord/gateway.h"
#include "net/http.h"
#include "base/error.h"
#include "core/core.h"
#include "core/feature.h"
#include "tests/fake/discord_gateway.h"
#include "tests/fake/discord_rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_TOKEN "adapter-test-token.ZZZ-123456"
#define AT_APP "4242"
#define AT_GUARD_MS 15000
#define AT_MAX_REPLIES 256
#define DC_TEST_LATE_MS 1400 /* after the adapter's personal hold (1 s) has run out */

struct at;
typedef void (*at_handler_fn)(struct at *t, struct invocation *inv);
typedef bool (*at_done_fn)(struct at *t);

struct at {
    uv_loop_t loop;
    struct fake_gateway *gw;
    struct fake_rest *rest;
    struct http_client *http;
    struct adapter *adapter;
    uv_timer_t guard;
    uv_timer_t later;
    bool timed_out;
    bool closing;
    bool identified;
    bool shard_seen; /* discord_adapter_shard reported shard 0 identified */
    at_handler_fn handler;
    at_done_fn done;
    void (*script)(struct at *t);
    struct reply *held[AT_MAX_REPLIES];
    size_t nheld;
    struct invocation last;
    char last_args[256];
    size_t dispatched;
    uint64_t first_ms;
    uint64_t acked_ms;
    struct discord_adapter_stats stats;
    const char *app_id; /* NULL: AT_APP */
};

static double at_jitter(void *data)
{
    (void)data;
    return 0.0;
}

static void at_closed_noop(void *data)
{
    (void)data;
}

static void at_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void at_adapter_closed(void *data)
{
    struct at *t = data;
    fake_gateway_close(t->gw);
    fake_rest_close(t->rest, at_closed_noop, NULL);
    http_client_close(t->http, at_closed_noop, NULL);
}

static void at_finish(struct at *t)
{
    if (t->closing)
        return;
    t->closing = true;
    discord_adapter_stats(t->adapter, &t->stats);
    uv_close((uv_handle_t *)&t->guard, at_handle_closed);
    uv_close((uv_handle_t *)&t->later, at_handle_closed);
    /* Replies a test still holds are finished first: the adapter waits
     * for them. */
    for (size_t i = 0; i < t->nheld; i++) {
        if (t->held[i] != NULL)
            reply_finish(t->held[i]);
        t->held[i] = NULL;
    }
    t->adapter->ops->close(t->adapter, at_adapter_closed, t);
}

static void at_guard(uv_timer_t *timer)
{
    struct at *t = timer->data;
    t->timed_out = true;
    at_finish(t);
}

static void at_on_request(struct fake_rest *f, const struct fake_rest_request *req, void *data)
{
    struct at *t = data;
    (void)f;
    (void)req;
    if (!t->closing && t->done != NULL && t->done(t))
        at_finish(t);
}

static void at_on_seen(struct fake_gateway *f, enum fake_gateway_seen what, void *data)
{
    struct at *t = data;
    (void)f;
    if (what == FAKE_SEEN_IDENTIFY && !t->identified) {
        t->identified = true;
        t->first_ms = test_now_ms();
        if (t->script != NULL)
            t->script(t);
    }
}

static void at_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct at *t = data;
    t->dispatched++;
    invocation_clear(&t->last);
    t->last = *inv;
    for (size_t i = 0; i < COMMAND_MAX_OPTIONS; i++) {
        if (inv->opts[i].string != NULL)
            t->last.opts[i].string = strdup(inv->opts[i].string);
    }
    snprintf(t->last_args, sizeof(t->last_args), "%s", args != NULL ? args : "");
    /* Events flow, so the shard reports itself identified (for /healthz). */
    struct discord_gateway_status gs;
    unsigned shard = 99;
    t->shard_seen = discord_adapter_shard(t->adapter, 0, &shard, &gs) && shard == 0 &&
                    gs.state == DISCORD_GW_IDENTIFIED &&
                    !discord_adapter_shard(t->adapter, 1, &shard, &gs);
    if (t->handler != NULL)
        t->handler(t, inv);
    else
        reply_finish(inv->reply);
    invocation_clear(inv);
}

static void at_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void at_run(struct at *t, const struct discord_options *extra)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(http_client_new(&t->loop, NULL, &t->http), 0);
    struct fake_gateway_options go = {.heartbeat_ms = 5000, .on_seen = at_on_seen, .data = t};
    t->gw = fake_gateway_new(&t->loop, &go);
    assert_non_null(t->gw);
    struct fake_rest_options ro = {
        .gateway_url = fake_gateway_url(t->gw), .on_request = at_on_request, .data = t};
    t->rest = fake_rest_new(&t->loop, &ro);
    assert_non_null(t->rest);
    struct discord_options o;
    memset(&o, 0, sizeof(o));
    if (extra != NULL)
        o = *extra;
    o.token = AT_TOKEN;
    o.application_id = t->app_id != NULL ? t->app_id : AT_APP;
    o.api_base = fake_rest_api_base(t->rest);
    o.shard_last = -1;
    o.http = t->http;
    o.jitter = at_jitter;
    o.identify_spacing_ms = 10;
    if (o.edit_interval_ms == 0)
        o.edit_interval_ms = 100;
    struct adapter_host host = {.dispatch = at_dispatch, .ended = at_ended, .data = t};
    t->adapter = discord_new(&t->loop, &o, &host);
    assert_non_null(t->adapter);
    uv_timer_init(&t->loop, &t->guard);
    uv_timer_init(&t->loop, &t->later);
    t->guard.data = t;
    t->later.data = t;
    uv_timer_start(&t->guard, at_guard, AT_GUARD_MS, 0);
    assert_int_equal(t->adapter->ops->start(t->adapter), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->adapter->ops->free(t->adapter);
    fake_gateway_free(t->gw);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    assert_false(t->timed_out);
}

/* An INTERACTION_CREATE for /help from a member with Manage Server. */
static void at_interaction(struct at *t, unsigned n, const char *data_json, int type)
{
    char d[1024];
    snprintf(d, sizeof(d),
             "{\"id\":\"%u\",\"application_id\":\"" AT_APP "\",\"type\":%d,\"token\":\"tok%u\","
             "\"guild_id\":\"77\",\"channel_id\":\"88\",\"member\":{\"permissions\":\"32\","
             "\"roles\":[\"901\",\"18446744073709551615\"],"
             "\"user\":{\"id\":\"555\",\"username\":\"ann\"}},\"data\":%s,\"version\":1}",
             1000u + n, type, n, data_json);
    fake_gateway_dispatch(t->gw, "INTERACTION_CREATE", d);
}

/* Count recorded requests whose target contains substr and whose body
 * contains needle (NULL: any). */
static size_t at_count(struct at *t, const char *method, const char *substr, const char *needle)
{
    size_t n = 0, total = fake_rest_count(t->rest);
    for (size_t i = 0; i < total; i++) {
        struct fake_rest_request *q = fake_rest_get(t->rest, i);
        if (q == NULL)
            continue;
        if ((method == NULL || strcmp(q->method, method) == 0) &&
            strstr(q->target, substr) != NULL &&
            (needle == NULL || strstr(q->json, needle) != NULL))
            n++;
        fake_rest_request_free(q);
    }
    return n;
}

/* ---- a slash command to its result edit ------------------------------------ */

static void at_slow_step(uv_timer_t *timer)
{
    struct at *t = timer->data;
    struct reply *r = t->held[0];
    struct reply_msg m = {.stage = REPLY_PROGRESS, .text = "working 1"};
    reply_send(r, &m);
    m.text = "working 2";
    reply_send(r, &m);
    m.text = "working 3";
    reply_send(r, &m);
    m.stage = REPLY_FINAL;
    m.text = "result: 42";
    reply_send(r, &m);
    reply_finish(r);
    t->held[0] = NULL;
}

static void at_slow_handler(struct at *t, struct invocation *inv)
{
    t->held[t->nheld++] = inv->reply;
    uv_timer_start(&t->later, at_slow_step, 20, 0);
}

static void at_slow_script(struct at *t)
{
    at_interaction(t, 1,
                   "{\"id\":\"9\",\"name\":\"help\",\"type\":1,\"options\":[{\"name\":\"command\","
                   "\"type\":3,\"value\":\"admin\"}]}",
                   2);
}

static bool at_slow_done(struct at *t)
{
    return at_count(t, "PATCH", "/messages/@original", "result: 42") == 1 &&
           fake_rest_matching(t->rest, "PUT", "/commands") == 1;
}

static void test_slash_command_to_result_edit(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_slow_handler;
    t.script = at_slow_script;
    t.done = at_slow_done;
    struct discord_options o = {.edit_interval_ms = 200};
    at_run(&t, &o);
    /* The invocation: typed option, admin from the permissions. */
    assert_string_equal(t.last.name, "help");
    assert_true(t.last.opts[0].set);
    assert_string_equal(t.last.opts[0].string, "admin");
    assert_true(t.last.admin);
    assert_string_equal(t.last.user_id, "555");
    assert_string_equal(t.last.scope_id, "77");
    assert_int_equal(t.last.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(t.last.event_id, "discord:interaction:1001");
    /* The member's roles, for [access] role lists. */
    assert_int_equal(t.last.nroles, 2);
    assert_true(t.last.roles[0] == 901);
    assert_true(t.last.roles[1] == UINT64_MAX);
    assert_true(t.shard_seen);
    /* Deferred at once, then edits: the first progress, the coalesced
     * latest progress, the result; paced. */
    struct fake_rest_request *q;
    size_t total = fake_rest_count(t.rest);
    size_t callbacks = 0, edits = 0;
    uint64_t edit_at[8] = {0};
    for (size_t i = 0; i < total; i++) {
        q = fake_rest_get(t.rest, i);
        if (strstr(q->target, "/interactions/1001/tok1/callback") != NULL) {
            callbacks++;
            assert_non_null(strstr(q->json, "\"type\":5"));
        }
        if (strstr(q->target, "/webhooks/" AT_APP "/tok1/messages/@original") != NULL &&
            strcmp(q->method, "PATCH") == 0) {
            if (edits < 8)
                edit_at[edits] = q->at_ms;
            edits++;
            assert_null(strstr(q->json, "working 2"));
            assert_string_equal(q->auth, "Bot " AT_TOKEN);
        }
        fake_rest_request_free(q);
    }
    assert_int_equal(callbacks, 1);
    assert_int_equal(edits, 3);
    assert_true(edit_at[1] - edit_at[0] >= 150);
    assert_true(edit_at[2] - edit_at[1] >= 150);
    assert_int_equal(t.stats.acks, 1);
    assert_int_equal(t.stats.commands_put, 1);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- a fast answer, a long one, an image, a button ------------------------ */

static char at_long_text[4600];

static void at_fast_handler(struct at *t, struct invocation *inv)
{
    if (strcmp(inv->name, "help") == 0 && inv->opts[0].set) {
        /* /help long: a text in three pieces, answered during dispatch. */
        reply_text(inv->reply, false, "%s", at_long_text);
        reply_finish(inv->reply);
        return;
    }
    if (inv->button_ref[0] != '\0') {
        reply_text(inv->reply, false, "pressed %s", inv->button_ref);
        reply_finish(inv->reply);
        return;
    }
    if (strcmp(inv->name, "help") == 0) {
        /* An ephemeral balance-like answer, at once. */
        static const struct reply_button buttons[] = {{.label = "Again", .ref = "help:again"}};
        struct reply_msg m = {.stage = REPLY_FINAL,
                              .ephemeral = true,
                              .text = "balance: 5",
                              .buttons = buttons,
                              .nbuttons = 1};
        reply_send(inv->reply, &m);
        reply_finish(inv->reply);
        return;
    }
    /* admin reload: an image later. */
    t->held[t->nheld++] = inv->reply;
}

static void at_image_step(uv_timer_t *timer)
{
    struct at *t = timer->data;
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 1, 2, 3};
    struct reply_image img = {
        .data = png, .len = sizeof(png), .mime = "image/png", .filename = "cat.png"};
    struct reply_msg m = {.stage = REPLY_FINAL, .text = "a cat", .image = &img};
    reply_send(t->held[0], &m);
    reply_finish(t->held[0]);
    t->held[0] = NULL;
}

static void at_fast_script(struct at *t)
{
    at_interaction(t, 1, "{\"name\":\"help\",\"type\":1}", 2);
    at_interaction(t, 2,
                   "{\"name\":\"help\",\"type\":1,\"options\":[{\"name\":\"command\",\"type\":3,"
                   "\"value\":\"long\"}]}",
                   2);
    at_interaction(t, 3,
                   "{\"name\":\"admin\",\"type\":1,\"options\":[{\"name\":\"reload\",\"type\":1,"
                   "\"options\":[]}]}",
                   2);
    at_interaction(t, 4, "{\"custom_id\":\"help:again\",\"component_type\":2}", 3);
    /* A replayed event (same id) is dropped. */
    at_interaction(t, 1, "{\"name\":\"help\",\"type\":1}", 2);
    uv_timer_start(&t->later, at_image_step, 50, 0);
}

static bool at_fast_done(struct at *t)
{
    return fake_rest_matching(t->rest, "POST", "/webhooks/" AT_APP "/tok2") == 2 &&
           at_count(t, "PATCH", "/tok3/messages/@original", "a cat") == 1 &&
           fake_rest_matching(t->rest, "POST", "/interactions/1004/") == 1;
}

static void test_fast_long_image_button(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(at_long_text) - 1; i++)
        at_long_text[i] = (char)(i % 100 == 99 ? '\n' : 'a' + (char)(i % 26));
    at_long_text[sizeof(at_long_text) - 1] = '\0';
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_fast_handler;
    t.script = at_fast_script;
    t.done = at_fast_done;
    at_run(&t, NULL);
    size_t total = fake_rest_count(t.rest);
    for (size_t i = 0; i < total; i++) {
        struct fake_rest_request *q = fake_rest_get(t.rest, i);
        if (strstr(q->target, "/interactions/1001/") != NULL) {
            /* Type 4 with the answer, ephemeral, with its button. */
            assert_non_null(strstr(q->json, "\"type\":4"));
            assert_non_null(strstr(q->json, "\"flags\":64"));
            assert_non_null(strstr(q->json, "balance: 5"));
            assert_non_null(strstr(q->json, "\"custom_id\":\"help:again\""));
        }
        if (strstr(q->target, "/interactions/1002/") != NULL)
            assert_non_null(strstr(q->json, "\"type\":4"));
        if (strstr(q->target, "/interactions/1003/") != NULL)
            assert_non_null(strstr(q->json, "\"type\":5"));
        if (strstr(q->target, "/interactions/1004/") != NULL) {
            /* A button answered at once updates its message. */
            assert_non_null(strstr(q->json, "\"type\":7"));
            assert_non_null(strstr(q->json, "pressed help:again"));
        }
        if (strstr(q->target, "/tok3/messages/@original") != NULL) {
            assert_int_equal(q->nfiles, 1);
            assert_int_equal(q->file_len, 11);
            assert_string_equal(q->file_name, "cat.png");
            assert_non_null(strstr(q->json, "\"attachments\":[{\"id\":0"));
        }
        fake_rest_request_free(q);
    }
    assert_int_equal(fake_rest_matching(t.rest, "POST", "/interactions/1001/"), 1);
    assert_int_equal(t.stats.duplicates, 1);
    assert_int_equal(t.stats.interactions, 4);
    assert_int_equal(t.dispatched, 4);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- a burst of 200 --------------------------------------------------------- */

#define AT_BURST 200

static void at_burst_handler(struct at *t, struct invocation *inv)
{
    /* Slow work: every command is deferred. */
    if (t->nheld < AT_MAX_REPLIES)
        t->held[t->nheld++] = inv->reply;
    else
        reply_finish(inv->reply);
}

static void at_burst_script(struct at *t)
{
    for (unsigned i = 0; i < AT_BURST; i++)
        at_interaction(t, 10 + i, "{\"name\":\"help\",\"type\":1}", 2);
}

static bool at_burst_done(struct at *t)
{
    if (t->acked_ms == 0 && fake_rest_matching(t->rest, "POST", "/callback") == AT_BURST)
        t->acked_ms = test_now_ms();
    if (t->acked_ms == 0)
        return false;
    /* Then every reply answers; the results flow as edits. */
    for (size_t i = 0; i < t->nheld; i++) {
        if (t->held[i] == NULL)
            continue;
        reply_text(t->held[i], false, "done %zu", i);
        reply_finish(t->held[i]);
        t->held[i] = NULL;
    }
    return fake_rest_matching(t->rest, "PATCH", "/messages/@original") == AT_BURST;
}

static void test_burst_of_200_acknowledged(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_burst_handler;
    t.script = at_burst_script;
    t.done = at_burst_done;
    struct discord_options o = {.global_per_s = 1000};
    at_run(&t, &o);
    assert_true(t.acked_ms != 0);
    assert_true(t.acked_ms - t.first_ms < 3000);
    assert_int_equal(t.stats.acks, AT_BURST);
    assert_int_equal(t.stats.ack_failures, 0);
    assert_int_equal(fake_rest_violations(t.rest), 0);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- autocomplete and a mention ---------------------------------------------- */

static size_t at_models(void *data, const char **names, size_t max)
{
    (void)data;
    static const char *const all[] = {"gpt-4o-mini", "claude-haiku", "gpt-image"};
    size_t n = 0;
    for (; n < 3 && n < max; n++)
        names[n] = all[n];
    return n;
}

static void at_chat_handler(struct at *t, struct invocation *inv)
{
    (void)t;
    reply_text(inv->reply, false, "hello there");
    reply_finish(inv->reply);
}

static void at_chat_script(struct at *t)
{
    at_interaction(t, 1,
                   "{\"name\":\"imagine\",\"type\":1,\"options\":[{\"name\":\"model\",\"type\":3,"
                   "\"value\":\"gpt\",\"focused\":true}]}",
                   4);
    /* A mention of the bot (its id comes with READY) and a message that is
     * not for the bot. */
    fake_gateway_dispatch(
        t->gw, "MESSAGE_CREATE",
        "{\"id\":\"700\",\"channel_id\":\"88\",\"guild_id\":\"77\",\"author\":{"
        "\"id\":\"555\",\"username\":\"ann\"},\"content\":\"<@1100000000000000099> "
        "tell me a joke\",\"mentions\":[{\"id\":\"1100000000000000099\"}]}");
    fake_gateway_dispatch(t->gw, "MESSAGE_CREATE",
                          "{\"id\":\"701\",\"channel_id\":\"88\",\"guild_id\":\"77\",\"author\":{"
                          "\"id\":\"556\",\"username\":\"bob\"},\"content\":\"\",\"mentions\":[]}");
}

static bool at_chat_done(struct at *t)
{
    return fake_rest_matching(t->rest, "POST", "/interactions/1001/") == 1 &&
           fake_rest_matching(t->rest, "POST", "/channels/88/messages") == 1;
}

static void test_autocomplete_and_mention(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_chat_handler;
    t.script = at_chat_script;
    t.done = at_chat_done;
    struct discord_options o = {.models = at_models, .guild_id = "77"};
    at_run(&t, &o);
    assert_int_equal(at_count(&t, "POST", "/interactions/1001/", "\"type\":8"), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1001/", "gpt-4o-mini"), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1001/", "claude-haiku"), 0);
    assert_int_equal(at_count(&t, "POST", "/channels/88/messages", "\"message_id\":\"700\""), 1);
    assert_string_equal(t.last_args, "chat tell me a joke");
    assert_int_equal(t.dispatched, 1);
    /* Guild registration. */
    assert_int_equal(
        fake_rest_matching(t.rest, "PUT", "/applications/" AT_APP "/guilds/77/commands"), 1);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- [features] in the registration --------------------------------------- */

static struct core *at_feature_core;

/* Images on again, then a reload: the commands are registered again. */
static void at_feature_script(struct at *t)
{
    features_global_set(at_feature_core->features, FEATURE_IMAGES, true);
    assert_int_equal(t->adapter->ops->reload(t->adapter, NULL), 0);
}

static bool at_feature_done(struct at *t)
{
    return fake_rest_matching(t->rest, "PUT", "/commands") == 2;
}

/* A feature switched off for the whole bot is not registered; a reload
 * after it is on again registers it. */
static void test_registration_leaves_out_switched_off(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_slow_handler;
    t.script = at_feature_script;
    t.done = at_feature_done;
    struct core core;
    memset(&core, 0, sizeof(core));
    core.features = features_new();
    assert_non_null(core.features);
    features_global_set(core.features, FEATURE_IMAGES, false);
    at_feature_core = &core;
    struct discord_options o = {.edit_interval_ms = 200, .core = &core};
    at_run(&t, &o);
    assert_int_equal(at_count(&t, "PUT", "/commands", "\"name\":\"chat\""), 2);
    assert_int_equal(at_count(&t, "PUT", "/commands", "\"name\":\"imagine\""), 1);
    /* The first registration, made while images were off, left it out. */
    size_t total = fake_rest_count(t.rest);
    for (size_t i = 0; i < total; i++) {
        struct fake_rest_request *q = fake_rest_get(t.rest, i);
        bool put = q != NULL && strcmp(q->method, "PUT") == 0;
        if (put)
            assert_null(strstr(q->json, "\"name\":\"imagine\""));
        fake_rest_request_free(q);
        if (put)
            break;
    }
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
    features_free(core.features);
}

/* ---- a number option from outside ----------------------------------------- */

/* A gateway payload whose integer option is 1e300 (tests/corpus/discord/),
 * then the same command with a sane page. */
static void at_bignum_script(struct at *t)
{
    char *payload = test_file_read("tests/corpus/discord/discord-option-1e300.json", NULL);
    assert_non_null(payload);
    fake_gateway_send_text(t->gw, payload);
    free(payload);
    at_interaction(t, 8,
                   "{\"id\":\"9\",\"name\":\"history\",\"type\":1,\"options\":[{\"name\":"
                   "\"page\",\"type\":4,\"value\":2}]}",
                   2);
}

static bool at_bignum_done(struct at *t)
{
    return fake_rest_matching(t->rest, "POST", "/interactions/1007/") == 1 && t->dispatched == 1;
}

/* An integer option of 1e300 is refused to the member as not a whole
 * number (it never becomes an integer); the next command runs. */
static void test_option_out_of_range(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.script = at_bignum_script;
    t.done = at_bignum_done;
    at_run(&t, NULL);
    assert_int_equal(at_count(&t, "POST", "/interactions/1007/", "must be a whole number"), 1);
    assert_int_equal(t.dispatched, 1);
    assert_string_equal(t.last.name, "history");
    assert_true(t.last.opts[0].set);
    assert_int_equal(t.last.opts[0].integer, 2);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- a long interaction token --------------------------------------------- */

#define AT_APP_REAL "1234567890123456789" /* 19 digits, as Discord's ids are */

/* The hostile gateway payload (tests/corpus/discord/): an interaction with
 * a 250-byte token; then an ordinary command. */
static void at_longtoken_script(struct at *t)
{
    char *payload =
        test_file_read("tests/corpus/discord/discord-interaction-long-token.json", NULL);
    assert_non_null(payload);
    fake_gateway_send_text(t->gw, payload);
    free(payload);
    at_interaction(t, 9, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}", 2);
}

/* Every held reply gets its final answer. */
static void at_later_step(uv_timer_t *timer)
{
    struct at *t = timer->data;
    for (size_t i = 0; i < t->nheld; i++) {
        struct reply_msg m = {.stage = REPLY_FINAL, .text = "done"};
        reply_send(t->held[i], &m);
        reply_finish(t->held[i]);
        t->held[i] = NULL;
    }
    t->nheld = 0;
}

/* Answer after the deferral, so the reply goes out as an edit of
 * @original: the webhooks/<app>/<token> route whose key overflowed. */
static void at_later_handler(struct at *t, struct invocation *inv)
{
    if (t->nheld < AT_MAX_REPLIES)
        t->held[t->nheld++] = inv->reply;
    uv_timer_start(&t->later, at_later_step, 30, 0);
}

static bool at_longtoken_done(struct at *t)
{
    return t->dispatched == 2 && fake_rest_matching(t->rest, "PATCH", "/webhooks/") >= 2;
}

/* A route key that does not fit made the REST client refuse the op at
 * once, and the reply was completed from inside its own pump: freed while
 * still in use, then freed again. The key now fits the longest token the
 * adapter keeps, and a refused op completes later, from the loop. */
static void test_long_token_reply(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.app_id = AT_APP_REAL;
    t.script = at_longtoken_script;
    t.handler = at_later_handler;
    t.done = at_longtoken_done;
    at_run(&t, NULL);
    assert_int_equal(t.dispatched, 2);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

static bool at_silent_done(struct at *t)
{
    return t->dispatched == 2 && fake_rest_matching(t->rest, "DELETE", "/webhooks/") >= 2;
}

/* Handlers that finish without a word: the deferral is deleted through
 * webhooks/<app>/<token>, queued behind the callback, and pumped from the
 * callback's completion. The refused delete completed inside that pump
 * freed the reply under its caller (use after free, then double free). */
static void test_long_token_silent_finish(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.app_id = AT_APP_REAL;
    t.script = at_longtoken_script;
    t.done = at_silent_done;
    at_run(&t, NULL);
    assert_int_equal(t.dispatched, 2);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- personal answers ------------------------------------------------------ */

/* Interactions 1 (/balance), 2 (/history) and 3 (/chat) are held; a timer
 * ticking every 50 ms answers /balance and /chat on its first tick and
 * /history well after the personal hold (its deferral) has gone out. */
static void at_personal_tick(uv_timer_t *timer)
{
    struct at *t = timer->data;
    static unsigned ticks;
    if (t->nheld < 3)
        return;
    ticks++;
    if (t->held[0] != NULL) {
        reply_personal(t->held[0], "Your wallet: 5 credits available");
        reply_finish(t->held[0]);
        t->held[0] = NULL;
        /* A generation in a guild: a public answer whose footer shows the
         * cost, then the wallet's balance as a personal aside. */
        reply_text(t->held[2], false, "a joke\n\n— demo-chat · cost 2 credits");
        struct reply_msg aside = {.stage = REPLY_FINAL,
                                  .ephemeral = true,
                                  .personal = true,
                                  .aside = true,
                                  .text = "Your wallet: 98 credits."};
        reply_send(t->held[2], &aside);
        reply_finish(t->held[2]);
        t->held[2] = NULL;
    }
    if (ticks * 50 >= DC_TEST_LATE_MS && t->held[1] != NULL) {
        reply_personal(t->held[1], "Your transfers, newest first (page 1)");
        reply_finish(t->held[1]);
        t->held[1] = NULL;
        ticks = 0;
        uv_timer_stop(timer);
    }
}

static void at_personal_handler(struct at *t, struct invocation *inv)
{
    t->held[t->nheld++] = inv->reply;
    if (t->nheld == 3)
        uv_timer_start(&t->later, at_personal_tick, 50, 50);
}

static void at_personal_script(struct at *t)
{
    at_interaction(t, 1, "{\"id\":\"9\",\"name\":\"balance\",\"type\":1}", 2);
    at_interaction(t, 2, "{\"id\":\"9\",\"name\":\"history\",\"type\":1}", 2);
    at_interaction(t, 3,
                   "{\"id\":\"9\",\"name\":\"chat\",\"type\":1,\"options\":[{\"name\":"
                   "\"prompt\",\"type\":3,\"value\":\"a joke\"}]}",
                   2);
}

static bool at_personal_done(struct at *t)
{
    return at_count(t, "POST", "/interactions/1001/tok1/callback", NULL) == 1 &&
           at_count(t, "PATCH", "/tok2/messages/@original", "page 1") == 1 &&
           at_count(t, "POST", "/webhooks/" AT_APP "/tok3", "98 credits") == 1;
}

/* A personal command is never announced to the channel: answered within
 * the hold it is one ephemeral callback; answered later, the deferral
 * itself is ephemeral (flags 64) and the answer edits it, with no delete
 * and no follow-up. A public answer never carries the wallet's balance;
 * the balance goes as an ephemeral follow-up. */
static void test_personal_commands_stay_ephemeral(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_personal_handler;
    t.script = at_personal_script;
    t.done = at_personal_done;
    at_run(&t, NULL);
    /* /balance: one call, the ephemeral answer itself. */
    assert_int_equal(at_count(&t, NULL, "/tok1", NULL), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1001/tok1/callback", "\"type\":4"), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1001/tok1/callback", "\"flags\":64"), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1001/tok1/callback", "Your wallet: 5"), 1);
    /* /history, answered late: an ephemeral deferral, then its edit. */
    assert_int_equal(at_count(&t, "POST", "/interactions/1002/tok2/callback", NULL), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1002/tok2/callback", "\"type\":5"), 1);
    assert_int_equal(at_count(&t, "POST", "/interactions/1002/tok2/callback", "{\"flags\":64}"), 1);
    assert_int_equal(at_count(&t, "DELETE", "/tok2", NULL), 0);
    assert_int_equal(at_count(&t, "POST", "/webhooks/" AT_APP "/tok2", NULL), 0);
    /* /chat: public, the balance only in the ephemeral follow-up. */
    assert_int_equal(at_count(&t, "POST", "/interactions/1003/tok3/callback", "flags"), 0);
    assert_int_equal(at_count(&t, "PATCH", "/tok3/messages/@original", "cost 2 credits"), 1);
    assert_int_equal(at_count(&t, "POST", "/webhooks/" AT_APP "/tok3", "\"flags\":64"), 1);
    size_t total = fake_rest_count(t.rest);
    for (size_t i = 0; i < total; i++) {
        struct fake_rest_request *q = fake_rest_get(t.rest, i);
        bool mine =
            strstr(q->json, "Your wallet") != NULL || strstr(q->json, "Your transfers") != NULL;
        /* Ephemeral itself, or an edit of the ephemeral deferral. */
        bool hidden = strstr(q->json, "\"flags\":64") != NULL ||
                      strstr(q->target, "/tok2/messages/@original") != NULL;
        if (mine && !hidden)
            fail_msg("a member's own figures in a public message: %s %s", q->target, q->json);
        fake_rest_request_free(q);
    }
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

static void test_text_cut(void **state)
{
    (void)state;
    assert_int_equal(discord_text_cut("short", 2000), 5);
    /* Cut after the last space near the limit. */
    assert_int_equal(discord_text_cut("aaaaaaaaa bbbbbbbbbbbb", 11), 10);
    /* Never inside a UTF-8 sequence: 3 characters of 2 bytes each. */
    assert_int_equal(discord_text_cut("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3), 6);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_text_cut),
    cmocka_unit_test(test_slash_command_to_result_edit),
    cmocka_unit_test(test_fast_long_image_button),
    cmocka_unit_test(test_burst_of_200_acknowledged),
    cmocka_unit_test(test_autocomplete_and_mention),
    cmocka_unit_test(test_registration_leaves_out_switched_off),
    cmocka_unit_test(test_option_out_of_range),
    cmocka_unit_test(test_personal_commands_stay_ephemeral),
    cmocka_unit_test(test_long_token_reply),
    cmocka_unit_test(test_long_token_silent_finish),
};

TEST_GROUP_DEFINE(discord_adapter, tests, NULL, NULL)
