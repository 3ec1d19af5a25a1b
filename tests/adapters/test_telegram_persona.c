/* Personas and plain talk through the Telegram adapter and the router,
 * against the fake Bot API: /persona lists the personas as inline buttons
 * and a press chooses one; a forum topic's message carries its topic; and
 * /admin plaintalk on|off decides whether a group's plain messages are
 * chat turns. */
#include "tests/adapters/test_telegram.h"

#include "adapters/demo/demo.h"
#include "core/access.h"
#include "core/catalog.h"
#include "core/generate.h"
#include "core/persona.h"

#define TP_GROUP -100500
#define TP_ADMIN 99

static void tp_closed(void *data)
{
    (*(int *)data)++;
}

/* The fixture with a catalog (a demo model and two personas), the engine
 * and the chat settings, and 99 as an admin. */
static void tp_init(struct fx *fx)
{
    fx_init(fx, NULL);
    fx->opts.admins = "99";
    memset(fx->core.button_key, 3, sizeof(fx->core.button_key));
    fx->core.personas = persona_dir_new();
    assert_non_null(fx->core.personas);
    struct catalog_provider_spec ps[] = {
        {.name = "demo", .provider = demo_provider_new(&fx->lt.loop, 1), .max_concurrent = 4}};
    struct catalog_model_spec ms[] = {{.name = "demo-chat",
                                       .provider = "demo",
                                       .modality = PROVIDER_TEXT,
                                       .max_output_tokens = 100,
                                       .enabled = true}};
    struct catalog_persona_spec pe[] = {
        {.name = "pirate", .description = "Talks like a pirate", .system_prompt = "Arr."},
        {.name = "quiet", .description = "Says little", .system_prompt = "Hush."},
    };
    struct catalog_spec spec = {.providers = ps,
                                .nproviders = 1,
                                .models = ms,
                                .nmodels = 1,
                                .personas = pe,
                                .npersonas = 2};
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    fx->core.generate = generate_new(&fx->lt.loop, &fx->core, cat, NULL);
    catalog_unref(cat);
    assert_non_null(fx->core.generate);
    fx_start(fx);
}

static void tp_done(struct fx *fx)
{
    fx_adapter_close(fx);
    int closed = 0;
    generate_close(fx->core.generate, tp_closed, &closed);
    while (closed < 1)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
    fx->core.generate = NULL;
    struct persona_dir *d = fx->core.personas;
    fx_done(fx);
    persona_dir_free(d);
}

/* The value of "callback_data" of the button labelled label in body. */
static void tp_button_data(const char *body, const char *label, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "{\"text\":\"%s\",\"callback_data\":\"", label);
    const char *at = strstr(body, key);
    if (at == NULL)
        fail_msg("no button %s in %s", label, body);
    at += strlen(key);
    size_t n = strcspn(at, "\"");
    assert_true(n < cap);
    snprintf(out, cap, "%.*s", (int)n, at);
}

static void test_persona_buttons_in_a_group(void **state)
{
    (void)state;
    struct fx fx;
    tp_init(&fx);
    fx_group(&fx, TP_GROUP, 88, "/persona");
    fx_wait_count(&fx, "sendMessage", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendMessage", 0);
    assert_non_null(strstr(c->body, "pirate: Talks like a pirate"));
    assert_non_null(strstr(c->body, "quiet: Says little"));
    assert_non_null(strstr(c->body, "\"inline_keyboard\":[[{\"text\":\"pirate\""));
    char data[80];
    tp_button_data(c->body, "quiet", data, sizeof(data));
    assert_int_equal(strncmp(data, "psn:s.quiet:", 12), 0);
    char none[80];
    tp_button_data(c->body, "None", none, sizeof(none));

    char update[512];
    snprintf(update, sizeof(update),
             "\"callback_query\":{\"id\":\"cb1\",\"from\":{\"id\":88,\"is_bot\":false,"
             "\"first_name\":\"Bob\"},\"message\":{\"message_id\":1,\"date\":1,\"chat\":"
             "{\"id\":%d,\"type\":\"supergroup\",\"title\":\"G\"}},\"chat_instance\":\"x\","
             "\"data\":\"%s\"}",
             TP_GROUP, data);
    tgapi_push(fx.api, update);
    fx_until(&fx, fx_some_call_says, "your /chat uses the persona quiet");
    struct invocation who;
    memset(&who, 0, sizeof(who));
    who.platform = COMMAND_PLATFORM_TELEGRAM;
    snprintf(who.user_id, sizeof(who.user_id), "88");
    assert_string_equal(persona_chosen(&fx.core, &who, PERSONA_LEVEL_MEMBER), "quiet");

    /* Another member's press of Bob's button chooses nothing. */
    snprintf(update, sizeof(update),
             "\"callback_query\":{\"id\":\"cb2\",\"from\":{\"id\":89,\"is_bot\":false,"
             "\"first_name\":\"Cy\"},\"message\":{\"message_id\":1,\"date\":1,\"chat\":"
             "{\"id\":%d,\"type\":\"supergroup\",\"title\":\"G\"}},\"chat_instance\":\"x\","
             "\"data\":\"%s\"}",
             TP_GROUP, none);
    tgapi_push(fx.api, update);
    fx_until(&fx, fx_some_call_says, "belongs to someone else");
    assert_string_equal(persona_chosen(&fx.core, &who, PERSONA_LEVEL_MEMBER), "quiet");
    tp_done(&fx);
}

/* An admin's /admin persona set NAME channel in a forum topic sets the
 * topic's persona; the group's other topics keep theirs. */
static void test_topic_persona(void **state)
{
    (void)state;
    struct fx fx;
    tp_init(&fx);
    fx_group_from(&fx, TP_GROUP, TP_ADMIN, "boss", 30, "/admin persona set pirate channel", NULL,
                  ",\"message_thread_id\":12,\"is_topic_message\":true");
    fx_until(&fx, fx_some_call_says, "pirate is now the persona of this topic.");
    struct invocation in_topic;
    memset(&in_topic, 0, sizeof(in_topic));
    in_topic.platform = COMMAND_PLATFORM_TELEGRAM;
    in_topic.scope = COMMAND_SCOPE_GROUP;
    snprintf(in_topic.scope_id, sizeof(in_topic.scope_id), "%d", TP_GROUP);
    snprintf(in_topic.channel_id, sizeof(in_topic.channel_id), "%d", TP_GROUP);
    snprintf(in_topic.user_id, sizeof(in_topic.user_id), "5");
    snprintf(in_topic.thread_id, sizeof(in_topic.thread_id), "12");
    struct invocation other = in_topic;
    snprintf(other.thread_id, sizeof(other.thread_id), "13");
    struct catalog *cat = generate_catalog(fx.core.generate);
    enum persona_level level;
    const struct catalog_persona *p = persona_resolve(&fx.core, cat, &in_topic, &level);
    assert_non_null(p);
    assert_string_equal(p->name, "pirate");
    assert_int_equal(level, PERSONA_LEVEL_CHANNEL);
    assert_null(persona_resolve(&fx.core, cat, &other, &level));
    tp_done(&fx);
}

static bool tp_args_are(struct fx *fx, void *arg)
{
    return strcmp(fx->last_args, arg) == 0 && router_in_flight(fx->router) == 0;
}

/* Plain talk is ignored until an admin turns it on, then every plain
 * message is a chat turn, until it is turned off again. */
static void test_plaintalk_on_and_off(void **state)
{
    (void)state;
    struct fx fx;
    tp_init(&fx);
    fx_group(&fx, TP_GROUP, 88, "just talking");
    fx_group(&fx, TP_GROUP, TP_ADMIN, "/admin plaintalk on");
    fx_until(&fx, fx_some_call_says, "Plain messages in this group are now chat turns");
    assert_int_equal(fx.nevents, 1); /* the talk before was not dispatched */
    assert_true(persona_plaintalk(&fx.core, COMMAND_PLATFORM_TELEGRAM, "-100500"));
    assert_false(persona_plaintalk(&fx.core, COMMAND_PLATFORM_TELEGRAM, "-100501"));

    fx_group(&fx, TP_GROUP, 88, "just talking");
    fx_until(&fx, tp_args_are, "chat just talking");
    assert_int_equal(fx.nevents, 2);
    fx_until(&fx, fx_some_call_says, "offline demo model");

    /* A member the access lists refuse is passed over in silence: no
     * refusal for every word said in the group. */
    char err[128] = "";
    struct access_settings as = {.block_users = "telegram:66", .dms = true};
    struct access_rules *rules = access_rules_new(&as, err, sizeof(err));
    assert_non_null(rules);
    fx.core.access = rules;
    size_t sends = tgapi_count(fx.api, "sendMessage");
    fx_group(&fx, TP_GROUP, 66, "let me in");
    fx_group(&fx, TP_GROUP, 88, "and me");
    fx_until(&fx, tp_args_are, "chat and me");
    assert_int_equal(fx.nevents, 3);
    fx_until(&fx, fx_some_call_says, "beginning \\\"and me\\\"");
    for (size_t i = 0; i < tgapi_ncalls(fx.api); i++)
        assert_null(strstr(tgapi_call_at(fx.api, i)->body, "may not use this bot"));
    assert_true(tgapi_count(fx.api, "sendMessage") > sends);
    fx.core.access = NULL;
    access_rules_free(rules);

    /* Members cannot switch it. */
    fx_group(&fx, TP_GROUP, 88, "/admin plaintalk off");
    fx_until(&fx, tp_args_are, "admin plaintalk off");
    assert_true(persona_plaintalk(&fx.core, COMMAND_PLATFORM_TELEGRAM, "-100500"));

    fx_group(&fx, TP_GROUP, TP_ADMIN, "/admin plaintalk off");
    fx_until(&fx, fx_some_call_says, "Plain messages in this group are ignored again");
    assert_false(persona_plaintalk(&fx.core, COMMAND_PLATFORM_TELEGRAM, "-100500"));
    size_t before = fx.nevents;
    fx_group(&fx, TP_GROUP, 88, "still talking");
    fx_group(&fx, TP_GROUP, 88, "/help");
    fx_until(&fx, tp_args_are, "help ");
    assert_int_equal(fx.nevents, before + 1);

    /* Only in a group: a private chat's plain text is a chat turn anyway. */
    fx_dm(&fx, 77, "/admin plaintalk on");
    fx_until(&fx, tp_args_are, "admin plaintalk on");
    tp_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_persona_buttons_in_a_group),
    cmocka_unit_test(test_topic_persona),
    cmocka_unit_test(test_plaintalk_on_and_off),
};

TEST_GROUP_DEFINE(telegram_persona, tests, lt_group_setup, lt_group_teardown)
