/* The Telegram adapter against the fake Bot API on loopback: commands to
 * replies, buttons to edits, paced streaming edits, restarts, 429 storms,
 * Stars payments, a refused token. Waits are for events, bounded by a
 * guard timer; pacing is asserted against the configured intervals. */
#include "tests/test.h"

#include "adapters/telegram/telegram.h"
#include "net/http.h"
#include "bot/config.h"
#include "bot/router.h"
#include "core/core.h"
#include "base/error.h"
#include "core/ledger.h"
#include "core/member.h"
#include "base/log.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/telegram_api.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "123456:TEST-token-abcdef"
#define GUARD_MS 10000

enum fx_mode { FX_ROUTER, FX_CUSTOM };

struct fx {
    struct lt lt;
    struct http_client *http;
    struct tgapi *api;
    struct core core;
    struct router *router;
    struct adapter *tg;
    struct telegram_options opts;
    enum fx_mode mode;
    int ended;
    int closed;
    /* what the host saw */
    int64_t events[256];
    size_t nevents;
    char last_args[512];
    char last_ref[80];
    bool last_admin;
    /* the streaming handler */
    uv_timer_t stream_timer;
    struct reply *stream_reply;
    int stream_step;
};

static void fx_stream_tick(uv_timer_t *t)
{
    struct fx *fx = t->data;
    char text[64];
    if (++fx->stream_step <= 20) {
        snprintf(text, sizeof(text), "part %d", fx->stream_step);
        struct reply_msg m = {.stage = REPLY_PROGRESS, .text = text};
        reply_send(fx->stream_reply, &m);
        return;
    }
    uv_timer_stop(t);
    struct reply_msg m = {.stage = REPLY_FINAL, .text = "done streaming"};
    reply_send(fx->stream_reply, &m);
    reply_finish(fx->stream_reply);
    fx->stream_reply = NULL;
}

/* Test handlers, standing in for core commands. */
static void fx_custom(struct fx *fx, struct invocation *inv, const char *args)
{
    if (inv->button_ref[0] != '\0') {
        reply_text(inv->reply, false, "pressed %s", inv->button_ref);
        reply_finish(inv->reply);
        return;
    }
    if (args != NULL && strncmp(args, "menu", 4) == 0) {
        struct reply_button b[2] = {{.label = "One"}, {.label = "Two"}};
        snprintf(b[0].ref, sizeof(b[0].ref), "t:1:abc");
        snprintf(b[1].ref, sizeof(b[1].ref), "t:2:abc");
        struct reply_msg m = {.stage = REPLY_FINAL, .text = "pick", .buttons = b, .nbuttons = 2};
        reply_send(inv->reply, &m);
    } else if (args != NULL && strncmp(args, "burst", 5) == 0) {
        for (int i = 1; i <= 8; i++)
            reply_text(inv->reply, false, "m%d", i);
    } else if (args != NULL && strncmp(args, "stream", 6) == 0) {
        fx->stream_reply = inv->reply;
        fx->stream_step = 0;
        uv_timer_start(&fx->stream_timer, fx_stream_tick, 5, 5);
        return;
    } else if (args != NULL && strncmp(args, "image", 5) == 0) {
        static const unsigned char png[] = {0x89, 'P', 'N', 'G', 1, 2, 3, 4, 5};
        struct reply_image img = {
            .data = png, .len = sizeof(png), .mime = "image/png", .filename = "image.png"};
        struct reply_msg m = {.stage = REPLY_FINAL, .text = "a cat", .image = &img};
        reply_send(inv->reply, &m);
    } else if (args != NULL && strncmp(args, "long", 4) == 0) {
        char *big = malloc(9001);
        memset(big, 'x', 9000);
        big[9000] = '\0';
        reply_text(inv->reply, false, "%s", big);
        free(big);
    } else {
        reply_text(inv->reply, false, "ok %s", args != NULL ? args : "");
    }
    reply_finish(inv->reply);
}

static void fx_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct fx *fx = data;
    const char *colon = strchr(inv->event_id, ':');
    if (fx->nevents < 256 && colon != NULL)
        fx->events[fx->nevents++] = strtoll(colon + 1, NULL, 10);
    snprintf(fx->last_args, sizeof(fx->last_args), "%s", args != NULL ? args : "");
    snprintf(fx->last_ref, sizeof(fx->last_ref), "%s", inv->button_ref);
    fx->last_admin = inv->admin;
    if (fx->mode == FX_ROUTER)
        router_dispatch(fx->router, inv, args);
    else
        fx_custom(fx, inv, args);
}

static void fx_ended(void *data, struct adapter *a)
{
    struct fx *fx = data;
    (void)a;
    fx->ended++;
}

static void fx_closed(void *data)
{
    int *n = data;
    (*n)++;
}

static void fx_init(struct fx *fx, const char *api_token)
{
    memset(fx, 0, sizeof(*fx));
    lt_init(&fx->lt, true, true);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->http), 0);
    fx->api = tgapi_new(&fx->lt.loop, api_token != NULL ? api_token : TOKEN);
    assert_non_null(fx->api);
    fx->core.bot_name = "HAI Bot";
    fx->core.ledger = fx->lt.ledger;
    fx->core.welcome_bonus = 100;
    fx->router = router_new(&fx->core);
    uv_timer_init(&fx->lt.loop, &fx->stream_timer);
    fx->stream_timer.data = fx;
    fx->opts.token = TOKEN;
    fx->opts.api_base = tgapi_base(fx->api);
    fx->opts.poll_timeout_s = 30;
    fx->opts.chat_interval_ms = 20;
    fx->opts.group_interval_ms = 30;
    fx->opts.global_per_s = 1000;
    fx->opts.retry_after_unit_ms = 20;
    fx->opts.backoff_min_ms = 20;
    fx->opts.backoff_max_ms = 100;
}

static void fx_start(struct fx *fx)
{
    struct adapter_host host = {.dispatch = fx_dispatch, .ended = fx_ended, .data = fx};
    fx->tg = telegram_new(&fx->lt.loop, fx->http, &fx->core, &fx->opts, &host);
    assert_non_null(fx->tg);
    assert_int_equal(fx->tg->ops->start(fx->tg), 0);
}

static void fx_guard(uv_timer_t *t)
{
    bool *fired = t->data;
    *fired = true;
}

/* Run the loop until cond(fx) holds; fail after GUARD_MS. */
static void fx_until(struct fx *fx, bool (*cond)(struct fx *fx, void *arg), void *arg)
{
    uv_timer_t guard;
    bool fired = false;
    uv_timer_init(&fx->lt.loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, fx_guard, GUARD_MS, 0);
    while (!cond(fx, arg) && !fired)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&fx->lt.loop, UV_RUN_NOWAIT);
    assert_false(fired);
}

/* Run the loop for ms (only where time itself is what is tested). */
static bool fx_never(struct fx *fx, void *arg)
{
    (void)fx;
    return *(bool *)arg;
}

static void fx_run_for(struct fx *fx, uint64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(&fx->lt.loop, &t);
    t.data = &done;
    uv_timer_start(&t, fx_guard, ms, 0);
    fx_until(fx, fx_never, &done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->lt.loop, UV_RUN_NOWAIT);
}

static bool fx_has_count(struct fx *fx, void *arg)
{
    const char *spec = arg; /* "method=N" */
    char method[40];
    size_t n = strcspn(spec, "=");
    snprintf(method, sizeof(method), "%.*s", (int)n, spec);
    return tgapi_count(fx->api, method) >= (size_t)atoi(spec + n + 1);
}

static void fx_wait_count(struct fx *fx, const char *method, size_t n)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "%s=%zu", method, n);
    fx_until(fx, fx_has_count, spec);
}

static bool fx_is_closed(struct fx *fx, void *arg)
{
    (void)arg;
    return fx->closed > 0;
}

static void fx_adapter_close(struct fx *fx)
{
    if (fx->tg == NULL)
        return;
    fx->closed = 0;
    fx->tg->ops->close(fx->tg, fx_closed, &fx->closed);
    fx_until(fx, fx_is_closed, NULL);
    fx->tg = NULL;
}

static void fx_done(struct fx *fx)
{
    fx_adapter_close(fx);
    int closed = 0;
    http_client_close(fx->http, fx_closed, &closed);
    tgapi_close(fx->api, fx_closed, &closed);
    uv_close((uv_handle_t *)&fx->stream_timer, NULL);
    while (closed < 2)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
    router_free(fx->router);
    lt_done(&fx->lt); /* asserts uv_loop_close == 0 */
}

/* The n-th recorded call of method (0-based), or NULL. */
static const struct tgapi_call *fx_call(struct fx *fx, const char *method, size_t n)
{
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, method) == 0 && n-- == 0)
            return c;
    }
    return NULL;
}

static void fx_dm(struct fx *fx, int64_t user, const char *text)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":7,\"date\":1700000000,\"chat\":{\"id\":%" PRId64
             ",\"type\":\"private\",\"first_name\":\"Ann\"},\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"Ann\",\"username\":\"ann\",\"language_code\":"
             "\"en\"},\"text\":\"%s\",\"future_field\":{\"x\":1}}",
             user, user, text);
    tgapi_push(fx->api, buf);
}

static void fx_group(struct fx *fx, int64_t chat, int64_t user, const char *text)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":9,\"date\":1700000000,\"chat\":{\"id\":%" PRId64
             ",\"type\":\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"Bob\"},\"text\":\"%s\"}",
             chat, user, text);
    tgapi_push(fx->api, buf);
}

/* ---- tests ---------------------------------------------------------- */

static void test_text_helpers(void **state)
{
    (void)state;
    int64_t ids[4];
    assert_int_equal(telegram_ids_parse("123, 456", ids, 4), 2);
    assert_int_equal(ids[1], 456);
    assert_int_equal(telegram_ids_parse("", ids, 4), 0);
    assert_int_equal(telegram_ids_parse("12x", ids, 4), HB_EINVAL);
    struct telegram_package pk[4];
    assert_int_equal(telegram_packages_parse("50:500, 100:1100", pk, 4), 2);
    assert_int_equal(pk[1].credits, 1100);
    assert_int_equal(telegram_packages_parse("50", pk, 4), HB_EINVAL);
    /* Cutting counts UTF-16 units and never splits a character. */
    const char *s = "ab\xF0\x9F\x98\x80"
                    "cd"; /* an emoji is two units */
    assert_int_equal(telegram_text_cut(s, strlen(s), 3), 2);
    assert_int_equal(telegram_text_cut(s, strlen(s), 4), 6);
    assert_int_equal(telegram_text_cut("hello world", 11, 8), 6);
}

static void test_command_to_reply(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.admins = "77";
    fx_start(&fx);
    fx_dm(&fx, 77, "/help");
    fx_wait_count(&fx, "sendMessage", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendMessage", 0);
    assert_non_null(strstr(c->body, "\"chat_id\":77"));
    assert_non_null(strstr(c->body, "/help"));
    assert_true(fx.last_admin);
    /* The poll asked for what the bot handles, and waits long. */
    const struct tgapi_call *p = fx_call(&fx, "getUpdates", 0);
    assert_non_null(strstr(p->body, "\"allowed_updates\":[\"message\",\"callback_query\","
                                    "\"pre_checkout_query\"]"));
    assert_non_null(strstr(p->body, "\"timeout\":30"));
    /* setMyCommands rendered the table once. */
    fx_wait_count(&fx, "setMyCommands", 1);
    assert_non_null(strstr(fx_call(&fx, "setMyCommands", 0)->body, "\"command\":\"help\""));

    /* Groups: addressed commands, mentions and replies only. */
    fx_group(&fx, -100500, 88, "/help@other_bot");
    fx_group(&fx, -100500, 88, "just talking");
    fx_group(&fx, -100500, 88, "/help@" TGAPI_BOT_USERNAME " help");
    fx_wait_count(&fx, "sendMessage", 2);
    c = fx_call(&fx, "sendMessage", 1);
    assert_non_null(strstr(c->body, "\"chat_id\":-100500"));
    assert_non_null(strstr(c->body, "\"reply_parameters\":{\"message_id\":9"));
    assert_string_equal(fx.last_args, "help help");
    assert_false(fx.last_admin);
    fx_group(&fx, -100500, 88, "hey @" TGAPI_BOT_USERNAME " what is up");
    fx_wait_count(&fx, "sendMessage", 3);
    assert_string_equal(fx.last_args, "chat hey  what is up");
    /* A DM's plain text is a chat turn; a malformed update is skipped. */
    tgapi_push_raw(fx.api, 100, "{\"update_id\":100,\"message\":{\"chat\":\"broken\"}}");
    fx_dm(&fx, 77, "hello there");
    fx_wait_count(&fx, "sendMessage", 4);
    assert_string_equal(fx.last_args, "chat hello there");
    assert_int_equal(fx.nevents, 4);
    fx_done(&fx);
}

/* A group message ending in "@" and a name shorter than the bot's own
 * (tests/corpus/telegram/telegram-group-mention.json): the mention check
 * read past the end of the text. The update is skipped as not addressed,
 * and the adapter goes on answering. */
static void test_group_mention_near_end(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    char *json = test_file_read("tests/corpus/telegram/telegram-group-mention.json", NULL);
    assert_non_null(json);
    tgapi_push_raw(fx.api, 1, json);
    free(json);
    fx_group(&fx, -100500, 88, "a @" TGAPI_BOT_USERNAME);
    fx_wait_count(&fx, "sendMessage", 1);
    assert_string_equal(fx.last_args, "chat a ");
    fx_dm(&fx, 77, "/help");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_int_equal(fx.nevents, 2);
    fx_done(&fx);
}

static void test_setmycommands_skipped_when_unchanged(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    fx_wait_count(&fx, "setMyCommands", 1);
    fx_wait_count(&fx, "getUpdates", 1);
    fx_adapter_close(&fx);
    fx_start(&fx);
    fx_dm(&fx, 5, "/help");
    fx_wait_count(&fx, "sendMessage", 1);
    assert_int_equal(tgapi_count(fx.api, "setMyCommands"), 1);
    fx_done(&fx);
}

static void test_button_press_to_edit(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx_start(&fx);
    fx_dm(&fx, 77, "/menu");
    fx_wait_count(&fx, "sendMessage", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendMessage", 0);
    assert_non_null(strstr(c->body, "\"inline_keyboard\":[[{\"text\":\"One\",\"callback_data\":"
                                    "\"t:1:abc\"}"));
    tgapi_push(fx.api,
               "\"callback_query\":{\"id\":\"cb1\",\"from\":{\"id\":77,\"is_bot\":false,"
               "\"first_name\":\"Ann\"},\"message\":{\"message_id\":1,\"date\":1,\"chat\":"
               "{\"id\":77,\"type\":\"private\"}},\"chat_instance\":\"x\",\"data\":\"t:2:abc\"}");
    fx_wait_count(&fx, "editMessageText", 1);
    fx_wait_count(&fx, "answerCallbackQuery", 1);
    c = fx_call(&fx, "editMessageText", 0);
    assert_non_null(strstr(c->body, "\"text\":\"pressed t:2:abc\""));
    assert_non_null(strstr(c->body, "\"message_id\":1"));
    assert_string_equal(fx.last_ref, "t:2:abc");
    assert_non_null(strstr(fx_call(&fx, "answerCallbackQuery", 0)->body, "\"cb1\""));

    /* Through the router a stale button is answered politely, as a toast. */
    fx.mode = FX_ROUTER;
    tgapi_push(fx.api,
               "\"callback_query\":{\"id\":\"cb2\",\"from\":{\"id\":77,\"is_bot\":false,"
               "\"first_name\":\"Ann\"},\"message\":{\"message_id\":1,\"date\":1,\"chat\":"
               "{\"id\":77,\"type\":\"private\"}},\"chat_instance\":\"x\",\"data\":\"zz:1:q\"}");
    /* And one without a message (inline mode) is answered too. */
    tgapi_push(fx.api, "\"callback_query\":{\"id\":\"cb3\",\"from\":{\"id\":77,\"is_bot\":false,"
                       "\"first_name\":\"Ann\"},\"chat_instance\":\"x\",\"data\":\"zz:1:q\"}");
    fx_wait_count(&fx, "answerCallbackQuery", 3);
    assert_non_null(strstr(fx_call(&fx, "answerCallbackQuery", 1)->body, "no longer active"));
    assert_non_null(strstr(fx_call(&fx, "answerCallbackQuery", 2)->body, "no longer active"));
    assert_int_equal(tgapi_count(fx.api, "editMessageText"), 1);
    fx_done(&fx);
}

static bool fx_final_seen(struct fx *fx, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        if (strstr(tgapi_call_at(fx->api, i)->body, "done streaming") != NULL)
            return true;
    }
    return false;
}

static void test_streaming_edits_paced(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx.opts.chat_interval_ms = 40;
    fx_start(&fx);
    fx_dm(&fx, 31, "/stream");
    fx_until(&fx, fx_final_seen, NULL);
    /* One message, then edits of it; the last edit is the final text. */
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 1);
    size_t edits = tgapi_count(fx.api, "editMessageText");
    assert_true(edits >= 1);
    assert_true(edits < 20); /* edits behind the pace collapsed into the newest */
    const struct tgapi_call *last = fx_call(&fx, "editMessageText", edits - 1);
    assert_non_null(strstr(last->body, "done streaming"));
    assert_non_null(strstr(last->body, "\"message_id\":1"));
    uint64_t prev = 0;
    for (size_t i = 0; i < tgapi_ncalls(fx.api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx.api, i);
        if (strcmp(c->method, "sendMessage") != 0 && strcmp(c->method, "editMessageText") != 0)
            continue;
        if (prev != 0)
            assert_true(c->at_ms + 2 >= prev + 40);
        prev = c->at_ms;
    }
    fx_done(&fx);
}

static bool fx_events_at_least(struct fx *fx, void *arg)
{
    return fx->nevents >= (size_t)(intptr_t)arg;
}

static void test_restart_loses_none_repeats_none(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.poll_limit = 3;
    for (int i = 0; i < 20; i++)
        fx_dm(&fx, 1000 + i, "/help help");
    fx_start(&fx);
    fx_until(&fx, fx_events_at_least, (void *)(intptr_t)7);
    fx_adapter_close(&fx); /* mid-stream: a poll or a write may be in flight */
    size_t before = fx.nevents;
    assert_true(before < 20);
    fx_start(&fx);
    fx_until(&fx, fx_events_at_least, (void *)(intptr_t)20);
    /* A late duplicate of an old update changes nothing. */
    tgapi_push_raw(fx.api, 3,
                   "{\"update_id\":3,\"message\":{\"message_id\":1,\"date\":1,\"chat\":"
                   "{\"id\":1,\"type\":\"private\"},\"from\":{\"id\":1,\"is_bot\":"
                   "false,\"first_name\":\"x\"},\"text\":\"/help\"}}");
    fx_dm(&fx, 5, "/help");
    fx_until(&fx, fx_events_at_least, (void *)(intptr_t)21);
    fx_wait_count(&fx, "sendMessage", 21);
    assert_int_equal(fx.nevents, 21);
    for (size_t i = 0; i < fx.nevents; i++)
        assert_int_equal(fx.events[i], (int64_t)i + 1);
    fx_done(&fx);
}

static bool fx_sends_at_least(struct fx *fx, void *arg)
{
    return tgapi_sends(fx->api) >= (uint64_t)(intptr_t)arg;
}

static void test_429_storm_keeps_order(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx.opts.chat_interval_ms = 5;
    fx_start(&fx);
    tgapi_fail(fx.api, "sendMessage", 9, 429,
               "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after "
               "2\",\"parameters\":{\"retry_after\":2}}");
    fx_dm(&fx, 11, "/burst");
    fx_dm(&fx, 12, "/burst");
    fx_dm(&fx, 13, "/burst");
    fx_until(&fx, fx_sends_at_least, (void *)(intptr_t)24);
    for (int64_t chat = 11; chat <= 13; chat++) {
        int want = 1;
        uint64_t limited_at = 0;
        char needle[32];
        snprintf(needle, sizeof(needle), "\"chat_id\":%" PRId64, chat);
        for (size_t i = 0; i < tgapi_ncalls(fx.api); i++) {
            const struct tgapi_call *c = tgapi_call_at(fx.api, i);
            if (strcmp(c->method, "sendMessage") != 0 || strstr(c->body, needle) == NULL)
                continue;
            if (limited_at != 0)
                assert_true(c->at_ms + 2 >= limited_at + 2 * 20); /* retry_after honoured */
            limited_at = 0;
            if (c->status == 429) {
                limited_at = c->at_ms;
                continue;
            }
            char m[16];
            snprintf(m, sizeof(m), "\"text\":\"m%d\"", want++);
            assert_non_null(strstr(c->body, m)); /* nothing lost, nothing reordered */
        }
        assert_int_equal(want, 9);
    }
    fx_done(&fx);
}

static void test_image_and_long_text(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx_start(&fx);
    fx_dm(&fx, 21, "/image");
    fx_wait_count(&fx, "sendPhoto", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendPhoto", 0);
    assert_int_equal(c->photo_len, 9);
    assert_string_equal(c->photo_type, "image/png");
    assert_non_null(strstr(c->body, "\"caption\":\"a cat\""));
    assert_non_null(strstr(c->body, "\"chat_id\":\"21\""));
    fx_dm(&fx, 21, "/long");
    fx_wait_count(&fx, "sendMessage", 3);
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 3); /* 9000 = 4096 + 4096 + 808 */
    fx_done(&fx);
}

static bool fx_has_ended(struct fx *fx, void *arg)
{
    (void)arg;
    return fx->ended > 0;
}

static void test_bad_token_stops_cleanly(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, "999:other");
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logbuf, &loglen);
    log_configure(LOG_INFO, false, log);
    fx_start(&fx);
    fx_until(&fx, fx_has_ended, NULL);
    fflush(log);
    log_configure(LOG_WARN, false, NULL);
    assert_int_equal(fx.ended, 1);
    assert_int_equal(tgapi_count(fx.api, "getUpdates"), 0);
    assert_non_null(strstr(logbuf, "telegram.unauthorized"));
    assert_null(strstr(logbuf, "TEST-token"));
    fclose(log);
    free(logbuf);
    fx_done(&fx);
}

static void test_conflict_and_empty_answers_back_off(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.backoff_min_ms = 40;
    fx.opts.backoff_max_ms = 80;
    tgapi_empty_fast(fx.api, true);
    fx_start(&fx);
    fx_run_for(&fx, 400);
    size_t polls = tgapi_count(fx.api, "getUpdates");
    assert_true(polls >= 2);
    assert_true(polls <= 20); /* not a spin */
    tgapi_empty_fast(fx.api, false);
    tgapi_fail(fx.api, "getUpdates", 2, 409,
               "{\"ok\":false,\"error_code\":409,\"description\":\"Conflict: can't use getUpdates "
               "method while webhook is active\"}");
    tgapi_fail(fx.api, "getUpdates", 1, 502, "{\"ok\":false,\"error_code\":502}");
    fx_dm(&fx, 8, "/help");
    fx_wait_count(&fx, "sendMessage", 1);
    fx_done(&fx);
}

/* Wait for a line in a log captured in memory. */
struct fx_log_wait {
    FILE *log;
    char **buf;
    const char *needle;
};

static bool fx_log_has(struct fx *fx, void *arg)
{
    (void)fx;
    struct fx_log_wait *w = arg;
    fflush(w->log);
    return *w->buf != NULL && strstr(*w->buf, w->needle) != NULL;
}

/* [access]: a blocked member's /deposit gets the refusal, never a Stars
 * invoice (paying one would open a wallet); an allowed member's gets one. */
static void test_access_blocked_member_gets_no_invoice(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.stars_packages = "50:500";
    struct config cfg = {.access = {.block_users = (char *)"telegram:66", .dms = true}};
    assert_int_equal(router_access_configure(fx.router, &cfg), 0);
    fx_start(&fx);
    fx_dm(&fx, 66, "/deposit");
    fx_wait_count(&fx, "sendMessage", 1);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 0)->body, "Your id is telegram:66."));
    fx_dm(&fx, 77, "/deposit");
    fx_wait_count(&fx, "sendInvoice", 1);
    assert_non_null(strstr(fx_call(&fx, "sendInvoice", 0)->body, "\"chat_id\":77"));
    fx_done(&fx);
}

static void test_stars_purchase_credits_once(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.stars_packages = "50:500";
    fx.opts.admins = "1";
    fx_start(&fx);
    fx_dm(&fx, 77, "/deposit");
    fx_wait_count(&fx, "sendInvoice", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendInvoice", 0);
    assert_non_null(strstr(c->body, "\"currency\":\"XTR\""));
    assert_non_null(strstr(c->body, "\"payload\":\"dep:50:500:w\""));
    assert_non_null(strstr(c->body, "\"amount\":50"));
    tgapi_push(fx.api, "\"pre_checkout_query\":{\"id\":\"pq1\",\"from\":{\"id\":77,\"is_bot\":"
                       "false,\"first_name\":\"Ann\"},\"currency\":\"XTR\",\"total_amount\":50,"
                       "\"invoice_payload\":\"dep:50:500:w\"}");
    tgapi_push(fx.api, "\"pre_checkout_query\":{\"id\":\"pq2\",\"from\":{\"id\":77,\"is_bot\":"
                       "false,\"first_name\":\"Ann\"},\"currency\":\"XTR\",\"total_amount\":60,"
                       "\"invoice_payload\":\"dep:60:600:w\"}");
    fx_wait_count(&fx, "answerPreCheckoutQuery", 2);
    assert_non_null(strstr(fx_call(&fx, "answerPreCheckoutQuery", 0)->body, "\"ok\":true"));
    const char *no = fx_call(&fx, "answerPreCheckoutQuery", 1)->body;
    assert_non_null(strstr(no, "\"ok\":false"));
    assert_non_null(strstr(no, "no longer offered"));
    const char *paid =
        "\"message\":{\"message_id\":30,\"date\":1,\"chat\":{\"id\":77,\"type\":\"private\"},"
        "\"from\":{\"id\":77,\"is_bot\":false,\"first_name\":\"Ann\"},\"successful_payment\":{"
        "\"currency\":\"XTR\",\"total_amount\":50,\"invoice_payload\":\"dep:50:500:w\","
        "\"telegram_payment_charge_id\":\"stxCHARGE1\",\"provider_payment_charge_id\":\"\"}}";
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logbuf, &loglen);
    log_configure(LOG_INFO, false, log);
    tgapi_push(fx.api, paid);
    tgapi_push(fx.api, paid); /* Telegram delivers it twice */
    fx_wait_count(&fx, "sendMessage", 1);
    struct fx_log_wait lw = {log, &logbuf, "replay=1"};
    fx_until(&fx, fx_log_has, &lw);
    log_configure(LOG_WARN, false, NULL);
    fclose(log);
    free(logbuf);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 0)->body, "Balance of your wallet: 600"));
    /* One payment, one answer: the repeat is only logged. */
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 1);
    assert_int_equal(lt_balance(&fx.lt, "telegram:77").posted, 600);

    /* Spend most of it, then refund: what was spent becomes debt. */
    struct lt_res r;
    assert_int_equal(lt_plain(&fx.lt, "spend-1", "telegram:77", LEDGER_SYSTEM_REVENUE, 550,
                              LEDGER_KIND_GENERATION, &r),
                     0);
    assert_int_equal(r.rc, 0);
    fx_dm(&fx, 77, "/admin refund stxCHARGE1"); /* not an admin */
    fx_wait_count(&fx, "sendMessage", 2);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 1)->body, "Only admins"));
    char msg[512];
    snprintf(msg, sizeof(msg),
             "\"message\":{\"message_id\":31,\"date\":1,\"chat\":{\"id\":1,\"type\":\"private\"},"
             "\"from\":{\"id\":1,\"is_bot\":false,\"first_name\":\"Op\"},\"text\":\"/admin refund "
             "stxCHARGE1\"}");
    tgapi_push(fx.api, msg);
    fx_wait_count(&fx, "sendMessage", 3);
    assert_int_equal(tgapi_count(fx.api, "refundStarPayment"), 1);
    const char *rf = fx_call(&fx, "refundStarPayment", 0)->body;
    assert_non_null(strstr(rf, "\"user_id\":77"));
    assert_non_null(strstr(rf, "\"telegram_payment_charge_id\":\"stxCHARGE1\""));
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 2)->body, "450 of them booked as debt"));
    assert_int_equal(lt_balance(&fx.lt, "telegram:77").posted, 0);
    assert_int_equal(lt_balance(&fx.lt, "debt:telegram:77").posted, -450);

    /* The next payment repays the debt first: 500 in, 450 repaid. */
    const char *paid2 =
        "\"message\":{\"message_id\":32,\"date\":1,\"chat\":{\"id\":77,\"type\":\"private\"},"
        "\"from\":{\"id\":77,\"is_bot\":false,\"first_name\":\"Ann\"},\"successful_payment\":{"
        "\"currency\":\"XTR\",\"total_amount\":50,\"invoice_payload\":\"dep:50:500:w\","
        "\"telegram_payment_charge_id\":\"stxCHARGE2\",\"provider_payment_charge_id\":\"\"}}";
    tgapi_push(fx.api, paid2);
    fx_wait_count(&fx, "sendMessage", 4);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 3)->body, "Balance of your wallet: 50"));
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 3)->body, "450 of them repaid"));
    assert_int_equal(lt_balance(&fx.lt, "telegram:77").posted, 50);
    assert_int_equal(lt_balance(&fx.lt, "debt:telegram:77").posted, 0);
    fx_done(&fx);
}

static bool fx_pool_moved(struct fx *fx, void *arg)
{
    (void)arg;
    (void)fx;
    return tgapi_count(fx->api, "getUpdates") >= 3;
}

static void test_group_migration_moves_pool(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    struct lt_res r;
    lt_open(&fx.lt, "pool:telegram:-42", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &r);
    lt_plain(&fx.lt, "grant-1", LEDGER_SYSTEM_GRANTS, "pool:telegram:-42", 300, LEDGER_KIND_GRANT,
             &r);
    assert_int_equal(r.rc, 0);
    fx_start(&fx);
    tgapi_push(fx.api, "\"message\":{\"message_id\":3,\"date\":1,\"chat\":{\"id\":-42,\"type\":"
                       "\"group\"},\"from\":{\"id\":5,\"is_bot\":false,\"first_name\":\"A\"},"
                       "\"migrate_to_chat_id\":-1001234}");
    fx_until(&fx, fx_pool_moved, NULL);
    fx_adapter_close(&fx); /* waits for the ledger steps it started */
    assert_int_equal(lt_balance(&fx.lt, "pool:telegram:-1001234").posted, 300);
    assert_int_equal(lt_balance(&fx.lt, "pool:telegram:-42").posted, 0);
    fx_done(&fx);
}

/* ---- naming members -------------------------------------------------- */

/* One message of user (with a username) in a group; reply_to: the JSON of
 * reply_to_message, or NULL; extra: more members of the message, or "". */
static void fx_group_from(struct fx *fx, int64_t chat, int64_t user, const char *username,
                          int64_t msg_id, const char *text, const char *reply_to, const char *extra)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":%" PRId64 ",\"date\":1700000000,\"chat\":{\"id\":%" PRId64
             ",\"type\":\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"%s\",\"username\":\"%s\"},\"text\":\"%s\"%s%s%s}",
             msg_id, chat, user, username, username, text,
             reply_to != NULL ? ",\"reply_to_message\":" : "", reply_to != NULL ? reply_to : "",
             extra);
    tgapi_push(fx->api, buf);
}

/* The host dispatched n updates and every command has finished. */
static bool fx_handled(struct fx *fx, void *arg)
{
    return fx->nevents >= (size_t)(intptr_t)arg && router_in_flight(fx->router) == 0;
}

/* Some recorded call's body holds the text arg. */
static bool fx_some_call_says(struct fx *fx, void *arg)
{
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (c->body != NULL && strstr(c->body, arg) != NULL)
            return true;
    }
    return false;
}

/* rc of reading an account's balance: 0, or HB_ENOTFOUND when never opened. */
static int fx_account_rc(struct fx *fx, const char *account)
{
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    int rc = ledger_balance_get(fx->lt.ledger, account, lt_cb, &res);
    if (rc < 0)
        return rc;
    lt_wait(&fx->lt, &res);
    return res.rc;
}

/* "/admin grant @alice 50" grants to the member the bot saw as @alice, or
 * is refused with how to name her; a reply to her message names her; after
 * a restart the name is still known. Nothing is opened for a name nobody
 * has. */
static void test_admin_names_members(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.admins = "1";
    fx.core.members = member_dir_new();
    assert_non_null(fx.core.members);
    fx_start(&fx);

    /* Nobody called alice has been seen: refused, nothing opened. */
    fx_dm(&fx, 1, "/admin grant @alice 50");
    fx_wait_count(&fx, "sendMessage", 1);
    const char *t = fx_call(&fx, "sendMessage", 0)->body;
    assert_non_null(strstr(t, "I don't know @alice yet"));
    assert_non_null(strstr(t, "reply to one of their messages with /admin grant 50"));
    assert_int_equal(fx_account_rc(&fx, "telegram:alice"), HB_ENOTFOUND);
    assert_int_equal(fx_account_rc(&fx, "telegram:555"), HB_ENOTFOUND);

    /* Alice talks in a group (not to the bot): now the name is hers. */
    fx_group_from(&fx, -100, 555, "Alice", 40, "hello all", NULL, "");
    fx_dm(&fx, 1, "/admin grant @alice 50 welcome");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 1)->body, "Granted 50 credits to @alice"));
    assert_int_equal(lt_balance(&fx.lt, "telegram:555").posted, 150);
    assert_int_equal(fx_account_rc(&fx, "telegram:alice"), HB_ENOTFOUND);

    /* An admin replies to her message in the group: the reply names her. */
    fx_group_from(&fx, -100, 1, "op", 41, "/admin grant 25 thanks",
                  "{\"message_id\":40,\"date\":1700000000,\"chat\":{\"id\":-100,\"type\":"
                  "\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":555,\"is_bot\":false,"
                  "\"first_name\":\"Alice\",\"username\":\"Alice\"},\"text\":\"hello all\"}",
                  "");
    fx_until(&fx, fx_handled, (void *)(intptr_t)3);
    assert_int_equal(lt_balance(&fx.lt, "telegram:555").posted, 175);
    fx_until(&fx, fx_some_call_says, "Granted 25 credits to @Alice");

    /* A reply to the bot's own message, or a forum topic's first message
     * (which every topic message replies to), names nobody. */
    fx_group_from(&fx, -100, 1, "op", 42, "/admin grant 30",
                  "{\"message_id\":12,\"date\":1700000000,\"chat\":{\"id\":-100,\"type\":"
                  "\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":4242,\"is_bot\":true,"
                  "\"first_name\":\"HAI\",\"username\":\"hai_test_bot\"},\"text\":\"hi\"}",
                  "");
    fx_group_from(&fx, -100, 1, "op", 43, "/admin grant 30",
                  "{\"message_id\":70,\"date\":1700000000,\"chat\":{\"id\":-100,\"type\":"
                  "\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":555,\"is_bot\":false,"
                  "\"first_name\":\"Alice\"},\"forum_topic_created\":{\"name\":\"t\","
                  "\"icon_color\":1}}",
                  ",\"is_topic_message\":true,\"message_thread_id\":70");
    fx_until(&fx, fx_handled, (void *)(intptr_t)5);
    assert_int_equal(lt_balance(&fx.lt, "telegram:555").posted, 175);
    assert_int_equal(fx_account_rc(&fx, "telegram:30"), HB_ENOTFOUND);

    /* A restart: the cache is empty, the store still knows the name. */
    fx_adapter_close(&fx);
    member_dir_free(fx.core.members);
    fx.core.members = member_dir_new();
    fx_start(&fx);
    size_t sent = tgapi_count(fx.api, "sendMessage");
    fx_dm(&fx, 1, "/admin revoke @ALICE 5");
    fx_wait_count(&fx, "sendMessage", sent + 1);
    assert_non_null(
        strstr(fx_call(&fx, "sendMessage", sent)->body, "Revoked 5 credits from @ALICE"));
    assert_int_equal(lt_balance(&fx.lt, "telegram:555").posted, 170);
    fx_done(&fx);
    member_dir_free(fx.core.members);
}

/* The sendMessage calls to chat (in order), as a NULL-ended list of
 * borrowed bodies in out (at most n-1). Returns how many. */
static size_t fx_sends_to(struct fx *fx, int64_t chat, const char **out, size_t n)
{
    char key[40];
    snprintf(key, sizeof(key), "\"chat_id\":%" PRId64 ",", chat);
    char last[40];
    snprintf(last, sizeof(last), "\"chat_id\":%" PRId64 "}", chat);
    size_t k = 0;
    for (size_t i = 0; i < tgapi_ncalls(fx->api) && k + 1 < n; i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, "sendMessage") == 0 &&
            (strstr(c->body, key) != NULL || strstr(c->body, last) != NULL))
            out[k++] = c->body;
    }
    out[k] = NULL;
    return k;
}

/* /balance and /history asked for in a group: the answers go to the
 * member's private chat, and the group hears only that they went there,
 * never a balance. */
static void test_group_personal_answers_go_by_dm(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    fx_group(&fx, -100500, 88, "/balance");
    fx_wait_count(&fx, "sendMessage", 2);
    const char *dm[8], *group[8];
    assert_int_equal(fx_sends_to(&fx, 88, dm, 8), 1);
    assert_int_equal(fx_sends_to(&fx, -100500, group, 8), 1);
    assert_non_null(strstr(dm[0], "Your wallet: 100 credits available"));
    assert_non_null(strstr(group[0], "private message"));
    assert_null(strstr(group[0], "100 credits"));
    assert_null(strstr(group[0], "wallet"));
    assert_non_null(strstr(group[0], "\"message_id\":9")); /* answers the command */
    /* The group notice comes after Telegram took the private message. */
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 0)->body, "\"chat_id\":88"));
    fx_group(&fx, -100500, 88, "/history");
    fx_wait_count(&fx, "sendMessage", 4);
    assert_int_equal(fx_sends_to(&fx, 88, dm, 8), 2);
    assert_int_equal(fx_sends_to(&fx, -100500, group, 8), 2);
    assert_non_null(strstr(dm[1], "welcome bonus"));
    assert_null(strstr(group[1], "welcome bonus"));
    assert_null(strstr(group[1], "+100"));
    /* In the private chat itself a personal answer is simply the answer. */
    fx_dm(&fx, 88, "/balance");
    fx_wait_count(&fx, "sendMessage", 5);
    assert_int_equal(fx_sends_to(&fx, 88, dm, 8), 3);
    assert_non_null(strstr(dm[2], "Your wallet: 100 credits available"));
    assert_int_equal(fx_sends_to(&fx, -100500, group, 8), 2);
    fx_done(&fx);
}

/* The member never opened the private chat: Telegram refuses the private
 * message with 403, and the group hears how to open it (a t.me link to the
 * bot), never the balance. */
static void test_group_personal_answer_dm_closed(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    fx_wait_count(&fx, "getUpdates", 1); /* getMe answered: the username is known */
    tgapi_fail(fx.api, "sendMessage", 1, 403,
               "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot can't "
               "initiate conversation with a user\"}");
    fx_group(&fx, -100500, 88, "/balance");
    fx_wait_count(&fx, "sendMessage", 2);
    const struct tgapi_call *first = fx_call(&fx, "sendMessage", 0);
    assert_int_equal(first->status, 403);
    assert_non_null(strstr(first->body, "\"chat_id\":88"));
    const char *group[8];
    assert_int_equal(fx_sends_to(&fx, -100500, group, 8), 1);
    assert_non_null(strstr(group[0], "https://t.me/" TGAPI_BOT_USERNAME "?start"));
    assert_null(strstr(group[0], "100 credits"));
    assert_null(strstr(group[0], "available"));
    fx_run_for(&fx, 100);
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 2); /* nothing else, no retry */
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_text_helpers),
    cmocka_unit_test(test_command_to_reply),
    cmocka_unit_test(test_group_mention_near_end),
    cmocka_unit_test(test_setmycommands_skipped_when_unchanged),
    cmocka_unit_test(test_button_press_to_edit),
    cmocka_unit_test(test_streaming_edits_paced),
    cmocka_unit_test(test_restart_loses_none_repeats_none),
    cmocka_unit_test(test_429_storm_keeps_order),
    cmocka_unit_test(test_image_and_long_text),
    cmocka_unit_test(test_bad_token_stops_cleanly),
    cmocka_unit_test(test_conflict_and_empty_answers_back_off),
    cmocka_unit_test(test_access_blocked_member_gets_no_invoice),
    cmocka_unit_test(test_stars_purchase_credits_once),
    cmocka_unit_test(test_group_migration_moves_pool),
    cmocka_unit_test(test_group_personal_answers_go_by_dm),
    cmocka_unit_test(test_group_personal_answer_dm_closed),
    cmocka_unit_test(test_admin_names_members),
};

TEST_GROUP_DEFINE(telegram, tests, lt_group_setup, lt_group_teardown)
