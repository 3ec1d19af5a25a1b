/* Rendering on Telegram against the fake Bot API: model Markdown as
 * Telegram HTML (the fake reads it as Telegram does and refuses anything
 * unbalanced or too long), the plain-text retry when Telegram refuses the
 * markup, and the typing indicator while a generation runs. */
#include "tests/test.h"

#include "adapters/telegram/telegram.h"
#include "net/http.h"
#include "core/core.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/telegram_api.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "123456:TEST-token-abcdef"
#define GUARD_MS 10000

struct fx {
    struct lt lt;
    struct http_client *http;
    struct tgapi *api;
    struct core core;
    struct adapter *tg;
    struct telegram_options opts;
    int closed;
    struct reply *stream_reply; /* a reply the test or the stream timer finishes */
    uv_timer_t stream_timer;
    size_t stream_cut; /* bytes of the answer shown so far */
};

static const char fx_answer[] = "**Bold** and _it_ `a<b` [x](https://e.x/?a=1&b=2) 5 < 6";
static const char fx_footer[] = "\n\n-- gpt_x <free> *";

/* The final answer: model output, then the bot's plain footer. */
static void fx_final(struct reply *r)
{
    char text[256];
    snprintf(text, sizeof(text), "%s%s", fx_answer, fx_footer);
    struct reply_msg m = {.stage = REPLY_FINAL, .text = text, .markdown_len = strlen(fx_answer)};
    reply_send(r, &m);
    reply_finish(r);
}

/* The answer growing, cut anywhere (mid-span too), then the final. */
static void fx_stream_tick(uv_timer_t *t)
{
    struct fx *fx = t->data;
    fx->stream_cut += 9;
    if (fx->stream_cut < sizeof(fx_answer) - 1) {
        char part[128];
        snprintf(part, sizeof(part), "%.*s…", (int)fx->stream_cut, fx_answer);
        struct reply_msg m = {
            .stage = REPLY_PROGRESS, .text = part, .markdown_len = fx->stream_cut};
        reply_send(fx->stream_reply, &m);
        return;
    }
    uv_timer_stop(t);
    fx_final(fx->stream_reply);
    fx->stream_reply = NULL;
}

/* The handler standing in for generation: model output with a footer. */
static void fx_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct fx *fx = data;
    args = args != NULL ? args : "";
    if (strncmp(args, "mdlong", 6) == 0) {
        /* Model Markdown longer than a message: a bold span and a code
         * block across the cuts, a plain footer. */
        size_t cap = 12000, n = 0;
        char *big = malloc(cap);
        n += (size_t)snprintf(big + n, cap - n, "**");
        for (int i = 0; i < 500; i++)
            n += (size_t)snprintf(big + n, cap - n, "bold <%d> ", i % 10);
        n += (size_t)snprintf(big + n, cap - n, "end**\n```c\n");
        for (int i = 0; i < 400; i++)
            n += (size_t)snprintf(big + n, cap - n, "x = a & b;\n");
        size_t md = n + (size_t)snprintf(big + n, cap - n, "```");
        snprintf(big + md, cap - md, "\n\n-- footer_with_underscores_ *");
        struct reply_msg m = {.stage = REPLY_FINAL, .text = big, .markdown_len = md};
        reply_send(inv->reply, &m);
        free(big);
    } else if (strncmp(args, "md", 2) == 0) {
        if (strstr(args, "stream") != NULL) {
            fx->stream_reply = inv->reply;
            fx->stream_cut = 3;
            char part[64];
            snprintf(part, sizeof(part), "%.3s…", fx_answer);
            struct reply_msg m = {.stage = REPLY_PROGRESS, .text = part, .markdown_len = 3};
            reply_send(inv->reply, &m);
            uv_timer_start(&fx->stream_timer, fx_stream_tick, 40, 40);
            return;
        }
        if (strstr(args, "wait") != NULL) {
            struct reply_msg m = {.stage = REPLY_PROGRESS, .text = "**Gen**…", .markdown_len = 7};
            reply_send(inv->reply, &m);
            fx->stream_reply = inv->reply; /* the test finishes it */
            return;
        }
        fx_final(inv->reply);
        return;
    } else {
        reply_text(inv->reply, false, "ok %s", args);
    }
    reply_finish(inv->reply);
}

static void fx_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void fx_closed(void *data)
{
    int *n = data;
    (*n)++;
}

static void fx_init(struct fx *fx)
{
    memset(fx, 0, sizeof(*fx));
    lt_init(&fx->lt, true, true);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->http), 0);
    fx->api = tgapi_new(&fx->lt.loop, TOKEN);
    assert_non_null(fx->api);
    uv_timer_init(&fx->lt.loop, &fx->stream_timer);
    fx->stream_timer.data = fx;
    fx->core.bot_name = "HAI Bot";
    fx->core.ledger = fx->lt.ledger;
    fx->opts.token = TOKEN;
    fx->opts.api_base = tgapi_base(fx->api);
    fx->opts.poll_timeout_s = 30;
    fx->opts.chat_interval_ms = 20;
    fx->opts.group_interval_ms = 30;
    fx->opts.global_per_s = 1000;
    fx->opts.retry_after_unit_ms = 20;
    fx->opts.backoff_min_ms = 20;
    fx->opts.backoff_max_ms = 100;
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

static void fx_done(struct fx *fx)
{
    fx->tg->ops->close(fx->tg, fx_closed, &fx->closed);
    fx_until(fx, fx_is_closed, NULL);
    int closed = 0;
    http_client_close(fx->http, fx_closed, &closed);
    tgapi_close(fx->api, fx_closed, &closed);
    uv_close((uv_handle_t *)&fx->stream_timer, NULL);
    while (closed < 2)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
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
             ",\"is_bot\":false,\"first_name\":\"Ann\"},\"text\":\"%s\"}",
             user, user, text);
    tgapi_push(fx->api, buf);
}

/* ---- tests ---------------------------------------------------------- */

/* Model Markdown goes as Telegram HTML; the bot's own text after it is
 * escaped, not read as Markdown. The fake reads the HTML as Telegram does
 * and refuses anything unbalanced. */
static void test_markdown_rendered_as_html(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx);
    fx_dm(&fx, 31, "/md");
    fx_wait_count(&fx, "sendMessage", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendMessage", 0);
    assert_int_equal(c->status, 200);
    cJSON *body = cJSON_Parse(c->body);
    assert_string_equal(cJSON_GetObjectItem(body, "parse_mode")->valuestring, "HTML");
    assert_string_equal(cJSON_GetObjectItem(body, "text")->valuestring,
                        "<b>Bold</b> and <i>it</i> <code>a&lt;b</code> "
                        "<a href=\"https://e.x/?a=1&amp;b=2\">x</a> 5 &lt; 6"
                        "\n\n-- gpt_x &lt;free&gt; *");
    cJSON_Delete(body);

    /* Streaming: every edit of the growing text is valid HTML (an
     * unfinished span shows as its literal text), then the final answer. */
    fx_dm(&fx, 31, "/md stream");
    fx_wait_count(&fx, "sendMessage", 2);
    bool final_seen = false;
    for (size_t i = 0; !final_seen; i++) {
        fx_wait_count(&fx, "editMessageText", i + 1);
        c = fx_call(&fx, "editMessageText", i);
        assert_int_equal(c->status, 200);
        final_seen = strstr(c->body, "gpt_x") != NULL;
    }
    c = fx_call(&fx, "sendMessage", 1);
    assert_int_equal(c->status, 200);
    assert_non_null(strstr(c->body, "\"text\":\"**B…\""));
    for (size_t i = 0; i < tgapi_ncalls(fx.api); i++)
        assert_int_not_equal(tgapi_call_at(fx.api, i)->status, 400);

    /* Longer than a message: each piece holds at most 4096 visible units
     * and is balanced on its own (the fake would refuse it otherwise); a
     * span cut in two is reopened in the next piece. */
    fx_dm(&fx, 31, "/mdlong");
    fx_wait_count(&fx, "sendMessage", 5);
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 5);
    const struct tgapi_call *p1 = fx_call(&fx, "sendMessage", 2);
    const struct tgapi_call *p2 = fx_call(&fx, "sendMessage", 3);
    const struct tgapi_call *p3 = fx_call(&fx, "sendMessage", 4);
    assert_int_equal(p1->status, 200);
    assert_int_equal(p2->status, 200);
    assert_int_equal(p3->status, 200);
    assert_non_null(strstr(p1->body, "\"text\":\"<b>bold &lt;0&gt; "));
    assert_non_null(strstr(p2->body, "\"text\":\"<b>"));
    assert_non_null(
        strstr(p2->body, "end</b>\\n<pre><code class=\\\"language-c\\\">x = a &amp; b;"));
    assert_non_null(strstr(p3->body, "<pre><code class=\\\"language-c\\\">"));
    assert_non_null(strstr(p3->body, "footer_with_underscores_ *\""));
    fx_done(&fx);
}

/* Telegram refusing the markup does not lose the answer: the same text
 * goes again as plain text, the way Telegram would have shown it. */
static void test_markdown_refused_sent_plain(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx);
    tgapi_refuse_markup(fx.api, "Bold");
    fx_dm(&fx, 32, "/md");
    fx_wait_count(&fx, "sendMessage", 2);
    const struct tgapi_call *a = fx_call(&fx, "sendMessage", 0);
    const struct tgapi_call *b = fx_call(&fx, "sendMessage", 1);
    assert_int_equal(a->status, 400);
    assert_non_null(strstr(a->body, "\"parse_mode\":\"HTML\""));
    assert_int_equal(b->status, 200);
    assert_null(strstr(b->body, "parse_mode"));
    cJSON *body = cJSON_Parse(b->body);
    assert_string_equal(cJSON_GetObjectItem(body, "text")->valuestring,
                        "Bold and it a<b x 5 < 6\n\n-- gpt_x <free> *");
    cJSON_Delete(body);
    /* An edit refused the same way is made again plain, as an edit. */
    fx_dm(&fx, 32, "/md stream");
    fx_wait_count(&fx, "sendMessage", 3);
    bool plain_edit = false;
    for (size_t i = 0; !plain_edit; i++) {
        fx_wait_count(&fx, "editMessageText", i + 1);
        const struct tgapi_call *c = fx_call(&fx, "editMessageText", i);
        plain_edit = c->status == 200 && strstr(c->body, "parse_mode") == NULL &&
                     strstr(c->body, "Bold and it a<b") != NULL;
    }
    fx_run_for(&fx, 100);
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 3); /* nothing sent twice */
    fx_done(&fx);
}

/* A generation in progress shows "typing"; its final answer stops it. */
static void test_typing_while_generating(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx);
    fx_dm(&fx, 33, "/md wait");
    fx_wait_count(&fx, "sendMessage", 1);
    assert_int_equal(tgapi_count(fx.api, "sendChatAction"), 0);
    fx_wait_count(&fx, "sendChatAction", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendChatAction", 0);
    assert_non_null(strstr(c->body, "\"chat_id\":33"));
    assert_non_null(strstr(c->body, "\"action\":\"typing\""));
    assert_non_null(fx.stream_reply);
    struct reply_msg m = {.stage = REPLY_FINAL, .text = "done", .markdown_len = 4};
    reply_send(fx.stream_reply, &m);
    reply_finish(fx.stream_reply);
    fx.stream_reply = NULL;
    fx_wait_count(&fx, "editMessageText", 1);
    /* A plain command never shows typing. */
    fx_dm(&fx, 33, "/ping");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_int_equal(tgapi_count(fx.api, "sendChatAction"), 1);
    fx_done(&fx); /* the timer is closed: the loop closes clean */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_markdown_rendered_as_html),
    cmocka_unit_test(test_markdown_refused_sent_plain),
    cmocka_unit_test(test_typing_while_generating),
};

TEST_GROUP_DEFINE(telegram_render, tests, NULL, NULL)
