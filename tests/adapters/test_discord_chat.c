/* The Discord adapter in channels and in what the operator set, on the
 * fixture of test_discord.h: a reply chain's ids, personas in threads and
 * the /persona buttons, and [features] in the command registration. */
#include "tests/adapters/test_discord.h"

/* ---- a reply to the bot's answer ------------------------------------------ */

static char at_landed[128];

static void at_landed_cb(void *data, const char *ref, const char *chat_id, const char *message_id)
{
    struct at *t = data;
    snprintf(at_landed, sizeof(at_landed), "%s %s %s", ref, chat_id, message_id);
    if (!t->closing && t->done(t))
        at_finish(t);
}

/* Stands in for the engine: asks where its answer lands, then answers. */
static void at_reply_chain_handler(struct at *t, struct invocation *inv)
{
    inv->reply->landed = at_landed_cb;
    inv->reply->landed_data = t;
    snprintf(inv->reply->landed_ref, sizeof(inv->reply->landed_ref), "chain-a");
    reply_text(inv->reply, false, "more jokes");
    reply_finish(inv->reply);
}

static void at_reply_chain_script(struct at *t)
{
    fake_gateway_dispatch(
        t->gw, "MESSAGE_CREATE",
        "{\"id\":\"702\",\"channel_id\":\"88\",\"guild_id\":\"77\",\"author\":{"
        "\"id\":\"555\",\"username\":\"ann\"},\"content\":\"another one\",\"mentions\":[],"
        "\"message_reference\":{\"message_id\":\"650\",\"channel_id\":\"88\"},"
        "\"referenced_message\":{\"id\":\"650\",\"author\":{\"id\":\"1100000000000000099\"}}}");
}

static bool at_reply_chain_done(struct at *t)
{
    return fake_rest_matching(t->rest, "POST", "/channels/88/messages") == 1 &&
           at_landed[0] != '\0';
}

/* A reply to the bot's message carries the message it replies to, and the
 * id of the answer sent is reported where the handler asked: what lets a
 * reply chain be a conversation of its own. */
static void test_reply_chain_ids(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    at_landed[0] = '\0';
    t.handler = at_reply_chain_handler;
    t.script = at_reply_chain_script;
    t.done = at_reply_chain_done;
    struct discord_options o = {.models = at_models, .guild_id = "77"};
    at_run(&t, &o);
    assert_string_equal(t.last_args, "chat another one");
    assert_string_equal(t.last.reply_to_id, "650");
    assert_true(strncmp(at_landed, "chain-a 88 ", 11) == 0);
    assert_true(strlen(at_landed) > 11); /* the answer's own id */
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

/* ---- personas: threads and the /persona buttons ----------------------------- */

static struct core at_core; /* a catalog with personas, for the real /persona */
static char at_parents[4][COMMAND_ID_MAX];
static char at_names[4][COMMAND_ID_MAX];
static size_t at_nparents;

static void at_persona_handler(struct at *t, struct invocation *inv)
{
    (void)t;
    if (at_nparents < 4) {
        snprintf(at_names[at_nparents], sizeof(at_names[0]), "%s", inv->scope_name);
        snprintf(at_parents[at_nparents++], sizeof(at_parents[0]), "%s", inv->parent_channel_id);
    }
    if (strcmp(inv->name, "persona") == 0) {
        cmd_persona(&at_core, inv);
        return;
    }
    reply_finish(inv->reply);
}

static void at_persona_script(struct at *t)
{
    /* The guild, with a thread of channel 87 already open. */
    fake_gateway_dispatch(t->gw, "GUILD_CREATE",
                          "{\"id\":\"77\",\"name\":\"The Deck\",\"channels\":[],"
                          "\"threads\":[{\"id\":\"902\",\"parent_id\":\"87\",\"type\":11}]}");
    fake_gateway_dispatch(
        t->gw, "MESSAGE_CREATE",
        "{\"id\":\"709\",\"channel_id\":\"902\",\"guild_id\":\"77\",\"author\":{"
        "\"id\":\"555\",\"username\":\"ann\"},\"content\":\"<@1100000000000000099> "
        "hello\",\"mentions\":[{\"id\":\"1100000000000000099\"}]}");
    /* A thread of channel 88 is made, then the bot is mentioned in it. */
    fake_gateway_dispatch(t->gw, "THREAD_CREATE",
                          "{\"id\":\"900\",\"guild_id\":\"77\",\"parent_id\":\"88\",\"type\":11,"
                          "\"name\":\"t\"}");
    fake_gateway_dispatch(
        t->gw, "MESSAGE_CREATE",
        "{\"id\":\"710\",\"channel_id\":\"900\",\"guild_id\":\"77\",\"author\":{"
        "\"id\":\"555\",\"username\":\"ann\"},\"content\":\"<@1100000000000000099> "
        "ahoy\",\"mentions\":[{\"id\":\"1100000000000000099\"}]}");
    /* /persona in another thread: the interaction names its parent. */
    fake_gateway_dispatch(
        t->gw, "INTERACTION_CREATE",
        "{\"id\":\"1050\",\"application_id\":\"" AT_APP "\",\"type\":2,\"token\":\"tok50\","
        "\"guild_id\":\"77\",\"channel_id\":\"901\",\"channel\":{\"id\":\"901\",\"type\":11,"
        "\"parent_id\":\"89\"},\"member\":{\"permissions\":\"0\",\"roles\":[],"
        "\"user\":{\"id\":\"555\",\"username\":\"ann\"}},\"data\":{\"id\":\"9\",\"name\":"
        "\"persona\",\"type\":1},\"version\":1}");
}

static bool at_persona_done(struct at *t)
{
    return fake_rest_matching(t->rest, "POST", "/channels/900/messages") == 0 &&
           at_count(t, "POST", "/interactions/1050/", "Talks like a pirate") == 1 &&
           t->dispatched == 3;
}

/* A mention in a thread carries the thread's parent channel (learned from
 * GUILD_CREATE or THREAD_CREATE), as an interaction in a thread does (from
 * its channel object), and the guild's name; /persona answers with one
 * button per persona and None. */
static void test_persona_threads_and_buttons(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    memset(&at_core, 0, sizeof(at_core));
    at_nparents = 0;
    memset(at_core.button_key, 5, sizeof(at_core.button_key));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct catalog_provider_spec ps[] = {
        {.name = "demo", .provider = demo_provider_new(&loop, 1), .max_concurrent = 1}};
    struct catalog_model_spec ms[] = {
        {.name = "d", .provider = "demo", .modality = PROVIDER_TEXT, .enabled = true}};
    struct catalog_persona_spec pe[] = {
        {.name = "pirate", .description = "Talks like a pirate"},
        {.name = "quiet", .description = "Says little"},
    };
    struct catalog_spec spec = {.providers = ps,
                                .nproviders = 1,
                                .models = ms,
                                .nmodels = 1,
                                .personas = pe,
                                .npersonas = 2};
    char err[128] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    assert_non_null(cat);
    at_core.generate = generate_new(&loop, &at_core, cat, NULL);
    catalog_unref(cat);
    assert_non_null(at_core.generate);

    t.handler = at_persona_handler;
    t.script = at_persona_script;
    t.done = at_persona_done;
    at_run(&t, NULL);
    assert_int_equal(at_nparents, 3);
    assert_string_equal(at_parents[0], "87");
    assert_string_equal(at_parents[1], "88");
    assert_string_equal(at_parents[2], "89");
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(at_names[i], "The Deck");
    static const char *const want[] = {"\"flags\":64", "\"label\":\"pirate\"",
                                       "\"custom_id\":\"psn:s.pirate:", "\"label\":\"quiet\"",
                                       "\"label\":\"None\""};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(at_count(&t, "POST", "/interactions/1050/", want[i]), 1);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
    generate_close(at_core.generate, NULL, NULL); /* nothing runs: freed at once */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- guild messages passed over unparsed ----------------------------------- */

#define AT_BOT "1100000000000000099"

static void at_prefilter_handler(struct at *t, struct invocation *inv)
{
    (void)t;
    reply_text(inv->reply, false, "heard");
    reply_finish(inv->reply);
}

static void at_msg(struct at *t, const char *id, const char *channel, const char *rest)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"channel_id\":\"%s\",\"author\":{\"id\":\"555\",\"username\":"
             "\"ann\"}%s}",
             id, channel, rest);
    fake_gateway_dispatch(t->gw, "MESSAGE_CREATE", json);
}

static void at_prefilter_script(struct at *t)
{
    /* The bot holds role 4400 in guild 77 (its GUILD_CREATE lists it). */
    fake_gateway_dispatch(t->gw, "GUILD_CREATE",
                          "{\"id\":\"77\",\"name\":\"The Deck\",\"channels\":[],\"members\":["
                          "{\"user\":{\"id\":\"555\"},\"roles\":[\"4400\",\"5500\"]},"
                          "{\"user\":{\"id\":\"" AT_BOT "\"},\"roles\":[\"4400\"]}]}");
    /* Talk among members: passed over. */
    at_msg(t, "801", "88", ",\"guild_id\":\"77\",\"content\":\"just chatting\",\"mentions\":[]");
    /* A role the bot does not hold: passed over. */
    at_msg(t, "802", "88",
           ",\"guild_id\":\"77\",\"content\":\"<@&5500> hi\",\"mentions\":[],"
           "\"mention_roles\":[\"5500\"]");
    /* A guild whose roles are not known: a message that mentions a role is
     * read whole (and is not for the bot); one that mentions none is
     * passed over. */
    at_msg(t, "803", "61",
           ",\"guild_id\":\"66\",\"content\":\"elsewhere\",\"mentions\":[],"
           "\"mention_roles\":[\"7700\"]");
    at_msg(t, "804", "61",
           ",\"guild_id\":\"66\",\"content\":\"elsewhere\",\"mentions\":[],"
           "\"mention_roles\":[ ]");
    /* Each of these concerns the bot: a mention, a role it holds, a reply
     * to it, a thread, and a DM that carries a guild_id only inside. */
    at_msg(t, "811", "88",
           ",\"guild_id\":\"77\",\"content\":\"<@" AT_BOT "> one\",\"mentions\":[{\"id\":\"" AT_BOT
           "\"}]");
    at_msg(t, "812", "88",
           ",\"guild_id\":\"77\",\"content\":\"<@&4400> two\",\"mentions\":[],"
           "\"mention_roles\":[\"4400\"]");
    at_msg(t, "813", "88",
           ",\"guild_id\":\"77\",\"content\":\"three\",\"mentions\":[],"
           "\"message_reference\":{\"message_id\":\"650\",\"channel_id\":\"88\",\"guild_id\":"
           "\"77\"},\"referenced_message\":{\"id\":\"650\",\"author\":{\"id\":\"" AT_BOT "\"}}");
    at_msg(t, "814", "902",
           ",\"guild_id\":\"77\",\"content\":\"<@" AT_BOT "> four\",\"mentions\":[{\"id\":\"" AT_BOT
           "\"}]");
    at_msg(t, "815", "33",
           ",\"content\":\"five, with \\\"guild_id\\\":\\\"77\\\" in it\",\"mentions\":[],"
           "\"message_reference\":{\"type\":1,\"message_id\":\"640\",\"channel_id\":\"88\","
           "\"guild_id\":\"77\"}");
}

static bool at_prefilter_done(struct at *t)
{
    return t->dispatched == 5 && fake_rest_matching(t->rest, "POST", "/messages") == 5;
}

/* A guild message whose bytes name neither the bot nor a role it holds is
 * passed over without being parsed; nothing that concerns the bot ever is:
 * a mention, a mention of its role, a reply to it, a thread, a DM. */
static void test_guild_messages_passed_over(void **state)
{
    (void)state;
    struct at t;
    memset(&t, 0, sizeof(t));
    t.handler = at_prefilter_handler;
    t.script = at_prefilter_script;
    t.done = at_prefilter_done;
    struct discord_options o = {.models = at_models, .guild_id = "77"};
    at_run(&t, &o);
    assert_int_equal(t.dispatched, 5);
    assert_int_equal(t.stats.messages, 5);
    assert_int_equal(t.stats.skipped, 3);
    assert_int_equal(fake_rest_matching(t.rest, "POST", "/channels/33/messages"), 1);
    assert_int_equal(fake_rest_matching(t.rest, "POST", "/channels/902/messages"), 1);
    invocation_clear(&t.last);
    fake_rest_free(t.rest);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reply_chain_ids),
    cmocka_unit_test(test_registration_leaves_out_switched_off),
    cmocka_unit_test(test_persona_threads_and_buttons),
    cmocka_unit_test(test_guild_messages_passed_over),
};

TEST_GROUP_DEFINE(discord_chat, tests, NULL, NULL)
