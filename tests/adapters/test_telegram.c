/* The Telegram adapter against the fake Bot API on loopback: commands to
 * replies, buttons to edits, paced streaming edits, restarts, 429 storms,
 * Stars payments, a refused token. Waits are for events, bounded by a
 * guard timer; pacing is asserted against the configured intervals. */
#include "tests/adapters/test_telegram.h"

#include "bot/config.h"
#include "core/audit.h"
#include "core/feature.h"

#include <sqlite3.h>

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
    assert_non_null(strstr(fx_call(&fx, "setMyCommands", 0)->body, "\"command\":\"trending\""));
    assert_non_null(strstr(fx_call(&fx, "setMyCommands", 0)->body, "\"command\":\"profile\""));

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

/* [features]: a feature off for the whole bot leaves the command menu
 * (and /deposit's Stars fallback with payments), a reload sets the menu
 * again, and a feature off in one group answers there that it is off. */
static void test_setmycommands_leaves_out_switched_off(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    struct features *fs = features_new();
    assert_non_null(fs);
    features_global_set(fs, FEATURE_IMAGES, false);
    features_global_set(fs, FEATURE_PAYMENTS, false);
    fx.core.features = fs;
    fx.opts.stars_packages = "50:500";
    fx_start(&fx);
    fx_wait_count(&fx, "setMyCommands", 1);
    const char *body = fx_call(&fx, "setMyCommands", 0)->body;
    assert_non_null(strstr(body, "\"command\":\"chat\""));
    assert_null(strstr(body, "\"command\":\"imagine\""));
    assert_null(strstr(body, "\"command\":\"deposit\""));

    assert_int_equal(features_group_set(fs, ledger_store(fx.lt.ledger), COMMAND_PLATFORM_TELEGRAM,
                                        "-100500", FEATURE_CHAT, false, NULL, NULL),
                     0);
    fx_group(&fx, -100500, 88, "/chat hello");
    fx_wait_count(&fx, "sendMessage", 1);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 0)->body, "Chat is switched off here."));
    /* /deposit with payments off sends no invoice: the router answers. */
    fx_dm(&fx, 88, "/deposit");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_non_null(
        strstr(fx_call(&fx, "sendMessage", 1)->body, "Payments is switched off on this bot."));
    assert_int_equal(tgapi_count(fx.api, "sendInvoice"), 0);

    /* Live: images on again, the reload sets the menu with /imagine. */
    features_global_set(fs, FEATURE_IMAGES, true);
    assert_int_equal(fx.tg->ops->reload(fx.tg, &fx.opts), 0);
    fx_wait_count(&fx, "setMyCommands", 2);
    assert_non_null(strstr(fx_call(&fx, "setMyCommands", 1)->body, "\"command\":\"imagine\""));
    fx_done(&fx);
    features_free(fs);
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

/* The progress message does not stay once the image arrived; a button
 * pressed under a photo (Regenerate) is answered with a new message when
 * Telegram refuses to edit the photo's text. */
static void test_image_replaces_progress_and_photo_edit_refused(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx_start(&fx);
    fx_dm(&fx, 22, "/progimage");
    fx_wait_count(&fx, "deleteMessage", 1);
    const struct tgapi_call *prog = fx_call(&fx, "sendMessage", 0);
    assert_non_null(strstr(prog->body, "Generating with demo-image"));
    const struct tgapi_call *del = fx_call(&fx, "deleteMessage", 0);
    assert_non_null(strstr(del->body, "\"message_id\":1")); /* the progress message */
    assert_int_equal(tgapi_count(fx.api, "sendPhoto"), 1);
    tgapi_fail(fx.api, "editMessageText", 1, 400,
               "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: there is no "
               "text in the message to edit\"}");
    tgapi_push(fx.api, "\"callback_query\":{\"id\":\"cb9\",\"from\":{\"id\":22,\"is_bot\":false,"
                       "\"first_name\":\"Ann\"},\"message\":{\"message_id\":2,\"date\":1,\"chat\":"
                       "{\"id\":22,\"type\":\"private\"},\"photo\":[]},\"chat_instance\":\"x\","
                       "\"data\":\"t:1:abc\"}");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_int_equal(tgapi_count(fx.api, "editMessageText"), 1);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 1)->body, "pressed t:1:abc"));
    fx_done(&fx);
}

/* The bound at which polling pauses and the current depths are in /metrics. */
static void test_queue_depth_in_metrics(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx.opts.queue_max = 77;
    fx_start(&fx);
    fx_dm(&fx, 23, "/hello");
    fx_wait_count(&fx, "sendMessage", 1);
    fx_run_for(&fx, 50);
    size_t len = 0;
    char *text = metrics_render(&len);
    assert_non_null(text);
    assert_non_null(strstr(text, "haibot_send_queue_bound{platform=\"telegram\"} 77"));
    assert_non_null(strstr(text, "haibot_send_queue_depth{platform=\"telegram\"}"));
    assert_non_null(strstr(text, "haibot_outbox_depth{platform=\"telegram\"}"));
    free(text);
    fx_done(&fx);
}

static double fx_gauge(const char *name)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    assert_non_null(text);
    const char *at = strstr(text, name);
    assert_non_null(at);
    double v = strtod(at + strlen(name), NULL);
    free(text);
    return v;
}

/* A chat whose sends are done is let go once its pacing no longer
 * matters: the queue does not keep an entry for every chat it ever saw. */
static void test_idle_chats_let_go(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.mode = FX_CUSTOM;
    fx.opts.chat_interval_ms = 20;
    fx_start(&fx);
    for (int64_t chat = 300; chat < 340; chat++)
        fx_dm(&fx, chat, "/hello");
    fx_wait_count(&fx, "sendMessage", 40);
    fx_run_for(&fx, 100);      /* past every chat's pacing */
    fx_dm(&fx, 400, "/hello"); /* the queue's next turn lets them go */
    fx_wait_count(&fx, "sendMessage", 41);
    fx_run_for(&fx, 50);
    double chats = fx_gauge("haibot_send_queue_chats{platform=\"telegram\"} ");
    assert_true(chats <= 1.0);
    /* A chat let go is made again when it is written to. */
    fx_dm(&fx, 300, "/hello");
    fx_wait_count(&fx, "sendMessage", 42);
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

/* /start in a private chat tells the member their numeric id, the one an
 * operator writes in bot.conf to make them an admin; in a group it does
 * not (everyone there would read it). */
static void test_start_dm_tells_numeric_id(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    fx_dm(&fx, 987654321, "/start");
    fx_wait_count(&fx, "sendMessage", 1);
    const char *body = fx_call(&fx, "sendMessage", 0)->body;
    assert_non_null(strstr(body, "\"chat_id\":987654321"));
    assert_non_null(strstr(body, "Your telegram user id is 987654321"));
    fx_group(&fx, -100123, 987654321, "/start");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_null(strstr(fx_call(&fx, "sendMessage", 1)->body, "user id is"));
    fx_done(&fx);
}

struct refund_audit {
    bool done;
    size_t n;
    char actor[STORE_ID_SIZE];
    char subject[STORE_ID_SIZE];
    char detail[STORE_AUDIT_DETAIL_SIZE];
};

static void refund_audit_cb(int rc, const struct store_audit *e, size_t n, void *data)
{
    struct refund_audit *ra = data;
    ra->n = rc == 0 ? n : 0;
    if (ra->n > 0) {
        snprintf(ra->actor, sizeof(ra->actor), "%s", e[0].actor);
        snprintf(ra->subject, sizeof(ra->subject), "%s", e[0].subject);
        snprintf(ra->detail, sizeof(ra->detail), "%s", e[0].detail);
    }
    ra->done = true;
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
    /* The refund is in the audit trail, by the admin who asked. */
    struct refund_audit ra = {0};
    assert_int_equal(
        audit_list(ledger_store(fx.lt.ledger), "refund", 0, 0, 4, refund_audit_cb, &ra), 0);
    while (!ra.done)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(ra.n, 1);
    assert_string_equal(ra.actor, "telegram:1");
    assert_string_equal(ra.subject, "tg:stars:stxCHARGE1");
    assert_non_null(strstr(ra.detail, "\"debt\":450"));

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
    /* (Answers still owed before the restart come first, from the
     * outbox; the revoke's answer follows them.) */
    fx_dm(&fx, 1, "/admin revoke @ALICE 5");
    fx_until(&fx, fx_some_call_says, "Revoked 5 credits from @ALICE");
    assert_int_equal(lt_balance(&fx.lt, "telegram:555").posted, 170);
    fx_done(&fx);
    member_dir_free(fx.core.members);
}

/* One number from the test's database (the store's thread has committed
 * what the adapter waited for; WAL lets this second connection read). */
static int64_t fx_sql_int(struct fx *fx, const char *sql)
{
    return test_sql_int(fx->lt.path, sql);
}

static void fx_notice(struct fx *fx, const char *user, const char *text)
{
    struct notify_target to = {.platform = COMMAND_PLATFORM_TELEGRAM, .scope = COMMAND_SCOPE_DM};
    snprintf(to.user_id, sizeof(to.user_id), "%s", user);
    struct reply_msg m = {.text = text};
    assert_int_equal(fx->tg->ops->notify(fx->tg, &to, &m), 0);
}

/* Two answers to one update in one private chat: the second waits for
 * the chat's pace. */
static void fx_two_answers(struct fx *fx, struct invocation *inv, const char *args)
{
    (void)fx;
    (void)args;
    reply_text(inv->reply, false, "first");
    reply_text(inv->reply, false, "second");
    reply_finish(inv->reply);
}

/* A poll's replies go at once and the next poll waits for their answers:
 * those answered need no outbox row; only a reply still held back by
 * pacing gets one, in the write that stores the offset, before the next
 * poll confirms the update. Its row is the first the adapter numbered
 * (the first of the first epoch's range, 1 << 32: outbox.c): the first
 * reply never had one. */
static void test_answered_replies_need_no_row(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.chat_interval_ms = 1500;
    fx.handler = fx_two_answers;
    fx_start(&fx);
    fx_wait_count(&fx, "getUpdates", 1);
    fx_dm(&fx, 71, "/two");
    fx_wait_count(&fx, "getUpdates", 2); /* the update was confirmed */
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 1);
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox"), 1);
    assert_int_equal(fx_sql_int(&fx, "SELECT id FROM outbox"), INT64_C(1) << 32);
    fx_wait_count(&fx, "sendMessage", 2);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 1)->body, "second"));
    fx_run_for(&fx, 200); /* the sent row's removal */
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox"), 0);
    fx_done(&fx);
}

/* Run sql on the test's database from a connection of its own. */
static void fx_sql_exec(struct fx *fx, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(fx->lt.path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The write of a held reply's row fails (the store refused it): the update
 * is not confirmed until the same write, tried again, commits (before, the
 * next checkpoint found nothing more to write and confirmed the update,
 * its reply's row nowhere: a kill then lost the reply). */
static void test_failed_row_write_tried_again(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.chat_interval_ms = 1500;
    fx.handler = fx_two_answers;
    fx_start(&fx);
    fx_wait_count(&fx, "getUpdates", 1);
    fx_sql_exec(&fx, "CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END;");
    fx_dm(&fx, 71, "/two");
    fx_wait_count(&fx, "sendMessage", 1);
    fx_run_for(&fx, 1200);
    assert_int_equal(tgapi_count(fx.api, "getUpdates"), 1); /* not confirmed */
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox"), 0);
    fx_sql_exec(&fx, "DROP TRIGGER refuse;");
    fx_wait_count(&fx, "getUpdates", 2); /* the row is written, then confirmed */
    fx_wait_count(&fx, "sendMessage", 2);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 1)->body, "second"));
    fx_done(&fx);
}

/* A started adapter whose notice to user is answered status (body) every
 * time: it tried it six times, and a moment passed. sql (may be NULL) runs
 * on the database first, once polling began. */
static void fx_notice_refused(struct fx *fx, int status, const char *body, const char *user,
                              const char *sql)
{
    fx_init(fx, NULL);
    fx_start(fx);
    fx_wait_count(fx, "getUpdates", 1); /* the outbox was loaded: polling began */
    if (sql != NULL)
        fx_sql_exec(fx, sql);
    tgapi_fail(fx->api, "sendMessage", 100, status, body);
    fx_notice(fx, user, "Your payment arrived.");
    fx_wait_count(fx, "sendMessage", 6);
    fx_run_for(fx, 200);
}

#define FX_BLOCKED                                                                                 \
    "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was blocked by the "        \
    "user\"}"

/* A member who blocked the bot: the notice is tried again with back-off,
 * then kept in the outbox marked undeliverable, never dropped silently. */
static void test_notice_blocked_recorded_undeliverable(void **state)
{
    (void)state;
    struct fx fx;
    fx_notice_refused(&fx, 403, FX_BLOCKED, "555", NULL);
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 6); /* tried, then given up */
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE failed_at != 0"), 1);
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0"), 0);
    assert_int_equal(fx_sql_int(&fx, "SELECT chat FROM outbox"), 555);
    fx_done(&fx);
}

/* A notice the Bot API cannot take for a while (5xx, network errors: not
 * a refusal) is given up for now, and its row stays as it is, for the next
 * start (before, it was marked undeliverable for good, and a reply's row
 * was removed, after about a minute of the Bot API being out of reach). */
static void test_notice_kept_when_api_unreachable(void **state)
{
    (void)state;
    struct fx fx;
    fx_notice_refused(&fx, 502, "{\"ok\":false,\"error_code\":502,\"description\":\"Bad Gateway\"}",
                      "556", NULL);
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 6); /* tried, then left for later */
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0"), 1);
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE failed_at != 0"), 0);
    assert_int_equal(fx_sql_int(&fx, "SELECT chat FROM outbox"), 556);
    fx_done(&fx);
}

/* An undeliverable notice keeps its text and reason, not its photo, and
 * marks of more than 30 days ago go with the next one (before, every row
 * of a chat that blocked the bot stayed for ever, photos included). */
static void test_undeliverable_rows_pruned(void **state)
{
    (void)state;
    struct fx fx;
    fx_notice_refused(&fx, 403, FX_BLOCKED, "555",
                      "INSERT INTO outbox (channel, id, chat, body, data, created_at, failed_at, "
                      "error) VALUES ('telegram', 900, 557, '{}', x'89504e47', 1, 1, 'old')");
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE id = 900"), 0);
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE failed_at != 0"), 1);
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE data IS NOT NULL"), 0);
    fx_done(&fx);
}

/* A notice that could not go out before the adapter closed (the Bot API
 * failing) stays in the outbox and goes first at the next start. */
static void test_notice_kept_across_restart(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    fx_wait_count(&fx, "getUpdates", 1);
    tgapi_fail(fx.api, "sendMessage", 2, 502, "{\"ok\":false,\"error_code\":502}");
    fx_notice(&fx, "556", "Your deposit arrived.");
    fx_wait_count(&fx, "sendMessage", 1);
    fx_adapter_close(&fx);
    assert_int_equal(fx_sql_int(&fx, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0"), 1);
    size_t polls = tgapi_count(fx.api, "getUpdates");
    fx_start(&fx);
    fx_wait_count(&fx, "sendMessage", 3); /* the second 502, then sent */
    fx_run_for(&fx, 100);
    const struct tgapi_call *sent = fx_call(&fx, "sendMessage", 2);
    assert_non_null(strstr(sent->body, "Your deposit arrived."));
    assert_non_null(strstr(sent->body, "\"chat_id\":556"));
    /* The outbox went before any new update was taken. */
    size_t i_sent = 0, i_poll = 0;
    for (size_t i = 0, polls_seen = 0; i < tgapi_ncalls(fx.api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx.api, i);
        if (c == sent)
            i_sent = i;
        if (strcmp(c->method, "getUpdates") == 0 && ++polls_seen == polls + 1)
            i_poll = i;
    }
    assert_true(i_poll > i_sent);
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_text_helpers),
    cmocka_unit_test(test_answered_replies_need_no_row),
    cmocka_unit_test(test_command_to_reply),
    cmocka_unit_test(test_group_mention_near_end),
    cmocka_unit_test(test_setmycommands_skipped_when_unchanged),
    cmocka_unit_test(test_setmycommands_leaves_out_switched_off),
    cmocka_unit_test(test_button_press_to_edit),
    cmocka_unit_test(test_streaming_edits_paced),
    cmocka_unit_test(test_restart_loses_none_repeats_none),
    cmocka_unit_test(test_429_storm_keeps_order),
    cmocka_unit_test(test_image_and_long_text),
    cmocka_unit_test(test_queue_depth_in_metrics),
    cmocka_unit_test(test_idle_chats_let_go),
    cmocka_unit_test(test_image_replaces_progress_and_photo_edit_refused),
    cmocka_unit_test(test_bad_token_stops_cleanly),
    cmocka_unit_test(test_conflict_and_empty_answers_back_off),
    cmocka_unit_test(test_access_blocked_member_gets_no_invoice),
    cmocka_unit_test(test_stars_purchase_credits_once),
    cmocka_unit_test(test_group_migration_moves_pool),
    cmocka_unit_test(test_notice_blocked_recorded_undeliverable),
    cmocka_unit_test(test_notice_kept_when_api_unreachable),
    cmocka_unit_test(test_failed_row_write_tried_again),
    cmocka_unit_test(test_undeliverable_rows_pruned),
    cmocka_unit_test(test_notice_kept_across_restart),
    cmocka_unit_test(test_admin_names_members),
    cmocka_unit_test(test_start_dm_tells_numeric_id),
};

TEST_GROUP_DEFINE(telegram, tests, lt_group_setup, lt_group_teardown)
