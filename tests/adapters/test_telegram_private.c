/* Answers that are one member's own, through the Telegram adapter and the
 * fake Bot API: a group never reads a member's balance. Personal answers go
 * to the member's private chat (or the group hears how to open it). */
#include "tests/test.h"
#include "tests/adapters/telegram_fixture.h"

#include <string.h>

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
    cmocka_unit_test(test_group_personal_answers_go_by_dm),
    cmocka_unit_test(test_group_personal_answer_dm_closed),
};

TEST_GROUP_DEFINE(telegram_private, tests, lt_group_setup, lt_group_teardown)
