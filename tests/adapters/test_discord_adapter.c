/* The Discord adapter end to end, on the fixture of test_discord.h:
 * slash commands, fast and long answers, bursts, autocomplete, options
 * from outside, long tokens and personal answers. Conversations in
 * channels, personas and [features]: test_discord_chat.c. */
#include "tests/adapters/test_discord.h"

/* ---- a slash command to its result edit ------------------------------------ */

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
    /* The burst took turns on the adapter's pool (8 by default), not a
     * connection each. */
    assert_true(t.rest_connections > 0 && t.rest_connections <= 8);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

/* ---- autocomplete and a mention ---------------------------------------------- */

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
    /* The economy's commands come from the one table too. */
    assert_int_equal(at_count(&t, "PUT", "/guilds/77/commands", "\"name\":\"trending\""), 1);
    assert_int_equal(at_count(&t, "PUT", "/guilds/77/commands", "\"name\":\"profile\""), 1);
    assert_int_equal(at_count(&t, "PUT", "/guilds/77/commands", "\"name\":\"revenue\""), 1);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
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
    cmocka_unit_test(test_option_out_of_range),
    cmocka_unit_test(test_personal_commands_stay_ephemeral),
    cmocka_unit_test(test_long_token_reply),
    cmocka_unit_test(test_long_token_silent_finish),
};

TEST_GROUP_DEFINE(discord_adapter, tests, NULL, NULL)
