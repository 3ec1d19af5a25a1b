/* The approval queue on Telegram, against the fake Bot API: a member's
 * /chat on a model that needs approval is held; the admins' chat gets the
 * notice with inline buttons; a member who is not an admin presses and is
 * refused; an admin presses Approve and the demo model answers the member;
 * a second press hears who decided. Through the real adapter, router and
 * engine. */
#include "tests/adapters/test_telegram.h"

#include "adapters/demo/demo.h"
#include "core/approval.h"
#include "core/generate.h"

#define ADMIN_CHAT "-100500"

static int ta_notify_msg(void *host, const struct notify_target *to, const struct reply_msg *msg)
{
    struct fx *fx = host;
    if (fx->tg == NULL || to->platform != COMMAND_PLATFORM_TELEGRAM)
        return HB_ENOTFOUND;
    return fx->tg->ops->notify(fx->tg, to, msg);
}

static int ta_notify(void *host, const struct notify_target *to, const char *text)
{
    struct reply_msg msg = {.stage = REPLY_FINAL, .text = text};
    return ta_notify_msg(host, to, &msg);
}

static const struct core_host_ops ta_ops = {.notify = ta_notify, .notify_msg = ta_notify_msg};

static void ta_closed(void *data)
{
    (*(int *)data)++;
}

/* The callback_data of the button labelled `label` on the n-th admins'
 * notice. */
static bool ta_nth_button(struct fx *fx, size_t n, const char *label, char *out, size_t cap)
{
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, "sendMessage") != 0 || strstr(c->body, "Approval needed") == NULL)
            continue;
        if (n-- > 0)
            continue;
        cJSON *body = cJSON_Parse(c->body);
        cJSON *rows =
            cJSON_GetObjectItem(cJSON_GetObjectItem(body, "reply_markup"), "inline_keyboard");
        bool found = false;
        cJSON *row;
        cJSON_ArrayForEach(row, rows)
        {
            cJSON *b;
            cJSON_ArrayForEach(b, row)
            {
                const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(b, "text"));
                const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(b, "callback_data"));
                if (!found && t != NULL && d != NULL && strcmp(t, label) == 0) {
                    snprintf(out, cap, "%s", d);
                    found = true;
                }
            }
        }
        cJSON_Delete(body);
        return found;
    }
    return false;
}

static bool ta_notice_button(struct fx *fx, const char *label, char *out, size_t cap)
{
    return ta_nth_button(fx, 0, label, out, cap);
}

static bool ta_notice_seen(struct fx *fx, void *arg)
{
    char ref[80];
    return ta_notice_button(fx, arg, ref, sizeof(ref));
}

static bool ta_second_notice_seen(struct fx *fx, void *arg)
{
    char ref[80];
    return ta_nth_button(fx, 1, arg, ref, sizeof(ref));
}

/* A photo went to the member's chat (77), captioned with its footer. */
static bool ta_photo_to_member(struct fx *fx, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, "sendPhoto") == 0 && c->photo_len > 0 &&
            (strstr(c->body, "\"chat_id\":77") != NULL ||
             strstr(c->body, "\"chat_id\":\"77\"") != NULL) &&
            strstr(c->body, "demo-image") != NULL)
            return true;
    }
    return false;
}

static void ta_press(struct fx *fx, const char *cb, int64_t user, const char *data)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "\"callback_query\":{\"id\":\"%s\",\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"Ad\"},\"message\":{\"message_id\":3,\"date\":1,"
             "\"chat\":{\"id\":" ADMIN_CHAT ",\"type\":\"supergroup\",\"title\":\"Admins\"}},"
             "\"chat_instance\":\"x\",\"data\":\"%s\"}",
             cb, user, data);
    tgapi_push(fx->api, buf);
}

static void test_telegram_approval_buttons(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.admins = "99";
    fx.core.host_ops = &ta_ops;
    fx.core.host = &fx;
    fx.core.reservation_timeout_ms = 600000;
    memset(fx.core.button_key, 3, sizeof(fx.core.button_key));
    struct catalog_provider_spec ps[] = {{.name = "demo",
                                          .provider = demo_provider_new(&fx.lt.loop, 5),
                                          .timeout_ms = 5000,
                                          .max_concurrent = 2}};
    struct catalog_model_spec ms[] = {{.name = "demo-chat",
                                       .provider = "demo",
                                       .modality = PROVIDER_TEXT,
                                       .price_request = 3,
                                       .max_output_tokens = 100,
                                       .enabled = true},
                                      {.name = "demo-image",
                                       .provider = "demo",
                                       .modality = PROVIDER_IMAGE,
                                       .price_request = 5,
                                       .sizes = "256x256",
                                       .enabled = true}};
    struct catalog_spec spec = {.providers = ps, .nproviders = 1, .models = ms, .nmodels = 2};
    spec.limits.job_timeout_ms = 8000;
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    fx.core.generate = generate_new(&fx.lt.loop, &fx.core, cat, NULL);
    catalog_unref(cat);
    assert_non_null(fx.core.generate);
    struct approval_rules rules = {.enabled = true, .timeout_ms = 3600000};
    snprintf(rules.models, sizeof(rules.models), "demo-chat, demo-image");
    snprintf(rules.telegram_chat, sizeof(rules.telegram_chat), ADMIN_CHAT);
    snprintf(rules.reasons, sizeof(rules.reasons), "Off topic");
    generate_approval_configure(fx.core.generate, &rules);
    fx_start(&fx);

    /* The member asks; the job is held and the admins' chat is told. */
    fx_dm(&fx, 77, "/chat tell me a joke");
    fx_until(&fx, ta_notice_seen, "Approve");
    fx_until(&fx, fx_some_call_says, "waits for an admin's review");
    char approve[80], reject[80];
    assert_true(ta_notice_button(&fx, "Approve", approve, sizeof(approve)));
    assert_true(ta_notice_button(&fx, "Reject: Off topic", reject, sizeof(reject)));
    assert_true(fx_some_call_says(&fx, "tell me a joke")); /* the prompt, for the admins */
    assert_true(fx_some_call_says(&fx, "\"chat_id\":" ADMIN_CHAT));

    /* A member of the chat who is not an admin: refused, nothing runs. */
    ta_press(&fx, "cb1", 55, approve);
    fx_wait_count(&fx, "answerCallbackQuery", 1);
    const char *answer = fx_call(&fx, "answerCallbackQuery", 0)->body;
    assert_non_null(strstr(answer, "\"cb1\""));
    assert_non_null(strstr(answer, "no longer active"));
    fx_run_for(&fx, 50);
    assert_false(fx_some_call_says(&fx, "[demo]"));
    assert_false(fx_some_call_says(&fx, "approved your request"));

    /* An admin approves: the demo model answers the member. */
    ta_press(&fx, "cb2", 99, approve);
    fx_until(&fx, fx_some_call_says, "[demo]");
    fx_until(&fx, fx_some_call_says, "Request ");

    /* A second press hears who decided. */
    ta_press(&fx, "cb3", 99, reject);
    fx_until(&fx, fx_some_call_says, "already decided: approved by telegram:99");

    /* An image, approved: the picture reaches the member's chat. */
    fx_dm(&fx, 77, "/imagine a red cat");
    fx_until(&fx, ta_second_notice_seen, "Approve");
    assert_true(ta_nth_button(&fx, 1, "Approve", approve, sizeof(approve)));
    ta_press(&fx, "cb4", 99, approve);
    fx_until(&fx, ta_photo_to_member, NULL);

    int closed = 0;
    generate_close(fx.core.generate, ta_closed, &closed);
    while (closed < 1)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    fx.core.generate = NULL;
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_telegram_approval_buttons),
};

TEST_GROUP_DEFINE(telegram_approval, tests, lt_group_setup, lt_group_teardown)
