/* Rendering on Telegram against the fake Bot API: model Markdown as
 * Telegram HTML (the fake reads it as Telegram does and refuses anything
 * unbalanced or too long), the plain-text retry when Telegram refuses the
 * markup, and the typing indicator while a generation runs. */
#include "tests/adapters/test_telegram.h"

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
static void render_dispatch(struct fx *fx, struct invocation *inv, const char *args)
{
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

/* ---- tests ---------------------------------------------------------- */

/* Model Markdown goes as Telegram HTML; the bot's own text after it is
 * escaped, not read as Markdown. The fake reads the HTML as Telegram does
 * and refuses anything unbalanced. */
static void test_markdown_rendered_as_html(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.handler = render_dispatch;
    fx_start(&fx);
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
    fx_init(&fx, NULL);
    fx.handler = render_dispatch;
    fx_start(&fx);
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
    fx_init(&fx, NULL);
    fx.handler = render_dispatch;
    fx_start(&fx);
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
