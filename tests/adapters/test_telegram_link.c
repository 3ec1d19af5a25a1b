/* One wallet across platforms through the Telegram adapter and the fake
 * Bot API: a link code goes to the member's private chat and never to a
 * group (a code typed in a group is void), and a Stars payment of a linked
 * member lands in the one wallet. */
#include "tests/test.h"
#include "tests/adapters/test_telegram.h"

#include "core/ledger.h"
#include "core/link.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct taken {
    bool done;
    int rc;
    enum link_code_result r;
};

static void took(int rc, enum link_code_result r, const char *creator, int64_t retry_ms, void *data)
{
    struct taken *t = data;
    (void)creator;
    (void)retry_ms;
    *t = (struct taken){.done = true, .rc = rc, .r = r};
}

static bool took_set(struct fx *fx, void *arg)
{
    (void)fx;
    return ((struct taken *)arg)->done;
}

/* /link in a private chat answers with a code there; in a group the group
 * hears only to ask in private, and a code typed there stops working. */
static void test_code_only_in_private(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.core.links = link_dir_new();
    assert_non_null(fx.core.links);
    fx_start(&fx);
    fx_dm(&fx, 77, "/link");
    fx_wait_count(&fx, "sendMessage", 1);
    const char *dm[8], *group[8];
    assert_int_equal(fx_sends_to(&fx, 77, dm, 8), 1);
    const char *p = strstr(dm[0], "Your link code: ");
    assert_non_null(p);
    char code[LINK_CODE_LEN + 1];
    memcpy(code, p + strlen("Your link code: "), LINK_CODE_LEN);
    code[LINK_CODE_LEN] = '\0';

    fx_group(&fx, -100500, 88, "/link");
    fx_wait_count(&fx, "sendMessage", 2);
    assert_int_equal(fx_sends_to(&fx, -100500, group, 8), 1);
    assert_non_null(strstr(group[0], "send /link to me in a private chat"));
    assert_null(strstr(group[0], "Your link code"));
    assert_int_equal(fx_sends_to(&fx, 88, dm, 8), 0);

    char text[64];
    snprintf(text, sizeof(text), "/link %s", code);
    fx_group(&fx, -100500, 88, text);
    fx_wait_count(&fx, "sendMessage", 3);
    assert_int_equal(fx_sends_to(&fx, -100500, group, 8), 2);
    assert_non_null(strstr(group[1], "no longer works"));
    /* Voided: the code's creator cannot be joined with it any more. */
    struct taken t = {0};
    assert_int_equal(link_code_take(&fx.core, "console:op", code, took, &t), 0);
    fx_until(&fx, took_set, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.r, LINK_CODE_WRONG);
    fx_done(&fx);
    link_dir_free(fx.core.links);
}

/* A reply still held back by the chat's pace when its update is confirmed
 * is written to the outbox; a link code's never is: the store holds only
 * a slow hash of a code. */
static void test_code_never_in_outbox(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.core.links = link_dir_new();
    assert_non_null(fx.core.links);
    fx.opts.chat_interval_ms = 1500;
    fx_start(&fx);
    fx_wait_count(&fx, "getUpdates", 1);
    fx_dm(&fx, 77, "/help");
    fx_wait_count(&fx, "sendMessage", 1);
    fx_dm(&fx, 77, "/link");
    fx_wait_count(&fx, "getUpdates", 3);                     /* the /link update was confirmed */
    assert_int_equal(tgapi_count(fx.api, "sendMessage"), 1); /* its reply waits */
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE "
                                              "CAST(body AS TEXT) LIKE '%link code%'"),
                     0);
    fx_wait_count(&fx, "sendMessage", 2);
    const char *dm[8];
    assert_int_equal(fx_sends_to(&fx, 77, dm, 8), 2);
    assert_non_null(strstr(dm[1], "Your link code: "));
    fx_done(&fx);
    link_dir_free(fx.core.links);
}

static void joined(int rc, int64_t moved, int64_t held, void *data)
{
    int *out = data;
    (void)moved;
    (void)held;
    *out = rc == 0 ? 1 : -1;
}

static bool flag_set(struct fx *fx, void *arg)
{
    (void)fx;
    return *(int *)arg != 0;
}

/* A member whose Telegram account is linked to a Discord wallet buys
 * credits with Stars: they land in the Discord wallet. */
static void test_stars_land_in_linked_wallet(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.stars_packages = "50:500";
    fx.core.links = link_dir_new();
    assert_non_null(fx.core.links);
    fx_start(&fx);
    struct lt_res r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(lt_open(&fx.lt, "discord:5", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &r), 0);
    assert_int_equal(r.rc, 0);
    int done = 0;
    assert_int_equal(link_join(&fx.core, "telegram:77", "discord:5", "ev-1", joined, &done), 0);
    fx_until(&fx, flag_set, &done);
    assert_int_equal(done, 1);

    fx_dm(&fx, 77, "/deposit");
    fx_wait_count(&fx, "sendInvoice", 1);
    tgapi_push(fx.api, "\"pre_checkout_query\":{\"id\":\"pq1\",\"from\":{\"id\":77,\"is_bot\":"
                       "false,\"first_name\":\"Ann\"},\"currency\":\"XTR\",\"total_amount\":50,"
                       "\"invoice_payload\":\"dep:50:500:w\"}");
    fx_wait_count(&fx, "answerPreCheckoutQuery", 1);
    tgapi_push(
        fx.api,
        "\"message\":{\"message_id\":30,\"date\":1,\"chat\":{\"id\":77,\"type\":\"private\"},"
        "\"from\":{\"id\":77,\"is_bot\":false,\"first_name\":\"Ann\"},\"successful_payment\":{"
        "\"currency\":\"XTR\",\"total_amount\":50,\"invoice_payload\":\"dep:50:500:w\","
        "\"telegram_payment_charge_id\":\"stxLINK1\",\"provider_payment_charge_id\":\"\"}}");
    fx_wait_count(&fx, "sendMessage", 1);
    assert_non_null(strstr(fx_call(&fx, "sendMessage", 0)->body, "600"));
    assert_int_equal(lt_balance(&fx.lt, "discord:5").posted, 600);
    assert_int_equal(lt_balance(&fx.lt, "telegram:77").posted, 0);
    fx_done(&fx);
    link_dir_free(fx.core.links);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_code_only_in_private),
    cmocka_unit_test(test_code_never_in_outbox),
    cmocka_unit_test(test_stars_land_in_linked_wallet),
};

TEST_GROUP_DEFINE(telegram_link, tests, lt_group_setup, lt_group_teardown)
