/* /usage chart through the Telegram adapter and the fake Bot API: the
 * chart is uploaded as a photo (sendPhoto, a PNG) with the totals as its
 * caption; asked for in a group it goes to the member's private chat. */
#include "tests/test.h"
#include "tests/adapters/test_telegram.h"

#include "core/ledger.h"

#include <string.h>

static void fx_spend(struct fx *fx, const char *id, const char *who, int64_t amount)
{
    struct lt_res res;
    struct ledger_transfer tr = {.id = id,
                                 .debit = who,
                                 .credit = LEDGER_SYSTEM_REVENUE,
                                 .amount = amount,
                                 .kind = LEDGER_KIND_GENERATION,
                                 .tag = "demo-chat"};
    assert_int_equal(lt_transfer(&fx->lt, &tr, &res), 0);
}

static void test_usage_chart_is_a_photo(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    fx_dm(&fx, 77, "/balance"); /* opens the wallet */
    fx_wait_count(&fx, "sendMessage", 1);
    fx_spend(&fx, "gen-77", "telegram:77", 9);
    fx_dm(&fx, 77, "/usage chart");
    fx_wait_count(&fx, "sendPhoto", 1);
    const struct tgapi_call *c = fx_call(&fx, "sendPhoto", 0);
    assert_string_equal(c->photo_type, "image/png");
    assert_true(c->photo_len > 1000);
    assert_non_null(strstr(c->body, "\"chat_id\":\"77\""));
    assert_non_null(strstr(c->body, "Total: 1 generation, 9 credits."));

    /* From a group: the photo goes to the member's private chat, and the
     * group hears only where it went. */
    fx_group(&fx, -100600, 77, "/usage chart month");
    fx_wait_count(&fx, "sendPhoto", 2);
    c = fx_call(&fx, "sendPhoto", 1);
    assert_non_null(strstr(c->body, "\"chat_id\":\"77\""));
    assert_non_null(strstr(c->body, "last 30 days"));
    fx_wait_count(&fx, "sendMessage", 2);
    const char *group[4];
    assert_int_equal(fx_sends_to(&fx, -100600, group, 4), 1);
    assert_non_null(strstr(group[0], "private message"));
    assert_null(strstr(group[0], "9 credits"));
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_usage_chart_is_a_photo),
};

TEST_GROUP_DEFINE(telegram_chart, tests, NULL, NULL)
