/* The Telegram outbox shared by two pollers of one ledger: a daemon that
 * lost its lease and the one that took it over both write rows for what
 * they still owe. The group `telegram_outbox`. */
#include "tests/adapters/test_telegram.h"

#include "core/notify.h"

static void tob_notice(struct adapter *a, const char *user, const char *text)
{
    struct notify_target to = {.platform = COMMAND_PLATFORM_TELEGRAM, .scope = COMMAND_SCOPE_DM};
    snprintf(to.user_id, sizeof(to.user_id), "%s", user);
    struct reply_msg m = {.text = text};
    assert_int_equal(a->ops->notify(a, &to, &m), 0);
}

/* Two pollers that read the outbox at the same time, each with a notice
 * the Bot API will not take yet, keep both notices. Before, each numbered
 * its rows on from the highest row it had read, so both wrote row 1, and
 * the second write took the first one's place: that notice was lost to a
 * restart. */
static void test_two_pollers_keep_both_rows(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    struct adapter *other = fx_adapter_open(&fx);
    fx_wait_count(&fx, "getUpdates", 2); /* each read the outbox, then polled */
    tgapi_fail(fx.api, "sendMessage", 1000, 502, "{\"ok\":false,\"error_code\":502}");
    tob_notice(fx.tg, "556", "Your deposit arrived.");
    tob_notice(other, "557", "Your key was revoked.");
    fx_wait_count(&fx, "sendMessage", 2); /* each row is written before its send */
    fx_adapter_close_one(&fx, other);
    fx_adapter_close(&fx);
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0"),
                     2);
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 556 AND "
                                              "body LIKE '%Your deposit arrived.%'"),
                     1);
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 557 AND "
                                              "body LIKE '%Your key was revoked.%'"),
                     1);
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_two_pollers_keep_both_rows),
};

TEST_GROUP_DEFINE(telegram_outbox, tests, NULL, NULL)
