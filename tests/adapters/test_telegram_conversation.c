/* Conversations through the Telegram adapter, the router and the real
 * generation engine (on the demo provider): two reply chains in one group
 * are two conversations, a reply to any of the bot's answers continues its
 * chain, and a forum topic is a conversation of its own. What each
 * conversation holds is read from the database. */
#include "tests/adapters/test_telegram.h"

#include "adapters/demo/demo.h"
#include "core/catalog.h"
#include "core/generate.h"
#include "base/util.h"

#define TC_CHAT -100500
#define TC_USER 88

struct tc {
    struct fx fx;
    int closed;
};

static void tc_closed(void *data)
{
    ((struct tc *)data)->closed++;
}

static void tc_init(struct tc *t)
{
    memset(t, 0, sizeof(*t));
    fx_init(&t->fx, NULL);
    struct catalog_provider_spec ps[] = {
        {.name = "demo",
         .provider = demo_provider_new(&t->fx.lt.loop, 0),
         .timeout_ms = 5000,
         .max_concurrent = 4},
    };
    struct catalog_model_spec ms[] = {
        {.name = "demo-chat",
         .provider = "demo",
         .modality = PROVIDER_TEXT,
         .max_output_tokens = 100,
         .enabled = true},
    };
    struct catalog_spec spec = {.providers = ps, .nproviders = 1, .models = ms, .nmodels = 1};
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    t->fx.core.generate = generate_new(&t->fx.lt.loop, &t->fx.core, cat, NULL);
    catalog_unref(cat);
    assert_non_null(t->fx.core.generate);
    fx_start(&t->fx);
}

static void tc_done(struct tc *t)
{
    generate_close(t->fx.core.generate, tc_closed, t);
    t->fx.core.generate = NULL;
    while (t->closed < 1)
        uv_run(&t->fx.lt.loop, UV_RUN_ONCE);
    fx_done(&t->fx);
}

static long long tc_count(struct tc *t, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(t->fx.lt.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The bot's messages known as answers of a conversation reach n. */
static bool tc_landed(struct fx *fx, void *arg)
{
    struct tc *t = container_of(fx, struct tc, fx);
    return tc_count(t, "SELECT COUNT(*) FROM conversation_messages") >= (long long)(intptr_t)arg;
}

/* The id of the bot's answer in the n-th sendMessage (the progress message
 * that the answer then replaces): the fake numbers its messages from 1. */
static int64_t tc_sent_id(struct tc *t, size_t n)
{
    int64_t id = (int64_t)n + 1;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM conversation_messages WHERE message = 'telegram|%d|%" PRId64 "'",
             TC_CHAT, id);
    assert_int_equal(tc_count(t, sql), 1);
    return id;
}

/* One chat turn: a group message from the member, replying to reply_to
 * (a JSON message object, or NULL), with extra fields; waits until the
 * answer is known as the bot's message number `landed`. */
static void tc_say(struct tc *t, int64_t msg_id, const char *text, const char *reply_to,
                   const char *extra, long landed)
{
    fx_group_from(&t->fx, TC_CHAT, TC_USER, "ann", msg_id, text, reply_to, extra);
    fx_until(&t->fx, tc_landed, (void *)(intptr_t)landed);
}

/* Which conversation a user turn went to, as the count of user turns in
 * the conversation holding the turn that says `like`. */
static long long tc_turns_with(struct tc *t, const char *like)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM conversation_turns WHERE role = 'user' AND conv ="
             " (SELECT conv FROM conversation_turns WHERE text LIKE '%s')",
             like);
    return tc_count(t, sql);
}

static long long tc_same_conv(struct tc *t, const char *a, const char *b)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT conv FROM conversation_turns WHERE text LIKE '%s') ="
             " (SELECT conv FROM conversation_turns WHERE text LIKE '%s')",
             a, b);
    return tc_count(t, sql);
}

static void test_reply_chains_through_telegram(void **state)
{
    (void)state;
    struct tc t;
    tc_init(&t);
    char bot_msg[256];

    /* Chain A: a mention, answered as the bot's first message. */
    tc_say(&t, 10, "@" TGAPI_BOT_USERNAME " about cats", NULL, "", 1);
    int64_t a1 = tc_sent_id(&t, 0);
    /* Chain B: a mention replying to another member's message. */
    tc_say(&t, 11, "@" TGAPI_BOT_USERNAME " about ships",
           "{\"message_id\":5,\"date\":1700000000,\"chat\":{\"id\":-100500,\"type\":"
           "\"supergroup\"},\"from\":{\"id\":99,\"is_bot\":false,\"first_name\":\"bo\"},"
           "\"text\":\"ships?\"}",
           "", 2);
    int64_t b1 = tc_sent_id(&t, 1);
    assert_int_equal(tc_same_conv(&t, "%about cats%", "%about ships%"), 0);

    /* Replies to the bot's answers continue their own chains. */
    snprintf(bot_msg, sizeof(bot_msg),
             "{\"message_id\":%" PRId64 ",\"date\":1700000000,\"chat\":{\"id\":-100500,\"type\":"
             "\"supergroup\"},\"from\":{\"id\":%d,\"is_bot\":true,\"first_name\":\"HAI\"},"
             "\"text\":\"answer\"}",
             a1, TGAPI_BOT_ID);
    tc_say(&t, 12, "and kittens?", bot_msg, "", 3);
    snprintf(bot_msg, sizeof(bot_msg),
             "{\"message_id\":%" PRId64 ",\"date\":1700000000,\"chat\":{\"id\":-100500,\"type\":"
             "\"supergroup\"},\"from\":{\"id\":%d,\"is_bot\":true,\"first_name\":\"HAI\"},"
             "\"text\":\"answer\"}",
             b1, TGAPI_BOT_ID);
    tc_say(&t, 13, "and boats?", bot_msg, "", 4);
    assert_int_equal(tc_same_conv(&t, "%about cats%", "%kittens%"), 1);
    assert_int_equal(tc_same_conv(&t, "%about ships%", "%boats%"), 1);
    assert_int_equal(tc_turns_with(&t, "%about cats%"), 2);
    assert_int_equal(tc_turns_with(&t, "%about ships%"), 2);

    /* A forum topic is its own conversation: its messages "reply" to the
     * topic's first message, which is no chain. */
    const char *topic_root = "{\"message_id\":77,\"date\":1700000000,\"chat\":{\"id\":-100500,"
                             "\"type\":\"supergroup\"},\"from\":{\"id\":99,\"is_bot\":false,"
                             "\"first_name\":\"bo\"},\"forum_topic_created\":{\"name\":\"T\"}}";
    const char *in_topic = ",\"is_topic_message\":true,\"message_thread_id\":77";
    tc_say(&t, 14, "@" TGAPI_BOT_USERNAME " topic talk", topic_root, in_topic, 5);
    tc_say(&t, 15, "@" TGAPI_BOT_USERNAME " topic again", topic_root, in_topic, 6);
    assert_int_equal(tc_same_conv(&t, "%topic talk%", "%topic again%"), 1);
    assert_int_equal(tc_same_conv(&t, "%topic talk%", "%about cats%"), 0);
    assert_int_equal(tc_same_conv(&t, "%topic talk%", "%about ships%"), 0);
    /* A plain mention in the group continues the group's current one: A. */
    tc_say(&t, 16, "@" TGAPI_BOT_USERNAME " plain again", NULL, "", 7);
    assert_int_equal(tc_same_conv(&t, "%plain again%", "%about cats%"), 1);
    assert_int_equal(tc_count(&t, "SELECT COUNT(*) FROM conversations WHERE owner = 'telegram:88'"),
                     3);
    tc_done(&t);
}

static const struct CMUnitTest telegram_conversation_tests[] = {
    cmocka_unit_test(test_reply_chains_through_telegram),
};

TEST_GROUP_DEFINE(telegram_conversation, telegram_conversation_tests, lt_group_setup,
                  lt_group_teardown)
