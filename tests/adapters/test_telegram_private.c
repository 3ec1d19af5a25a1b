/* Answers that are one member's own, through the Telegram adapter and the
 * fake Bot API: a group never reads a member's balance. Personal answers go
 * to the member's private chat (or the group hears how to open it); an
 * admin's grant and a Stars payment for a wallet say what moved, not what
 * the wallet holds. */
#include "tests/test.h"
#include "tests/adapters/test_telegram.h"

#include "core/ledger.h"
#include "core/member.h"

#include <stdint.h>
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

/* An admin grants in a group: the group reads that the credits went to the
 * member, never what the member's wallet now holds (Telegram cannot show a
 * group message to the admin alone, so that part is left out there). In
 * the admin's private chat the answer is whole. */
static void test_group_grant_keeps_balance_private(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.admins = "1";
    fx.core.members = member_dir_new();
    assert_non_null(fx.core.members);
    fx_start(&fx);
    fx_group_from(&fx, -100, 1, "op", 50, "/admin grant 555 50", NULL, "");
    fx_until(&fx, fx_handled, (void *)(intptr_t)1);
    fx_wait_count(&fx, "sendMessage", 1);
    fx_run_for(&fx, 100); /* anything else it would send */
    assert_int_equal(lt_balance(&fx.lt, "telegram:555").posted, 150);
    const char *group[8], *dm[8];
    assert_int_equal(fx_sends_to(&fx, -100, group, 8), 1);
    assert_non_null(strstr(group[0], "Granted 50 credits to 555."));
    assert_null(strstr(group[0], "150"));
    assert_null(strstr(group[0], "available"));
    assert_int_equal(fx_sends_to(&fx, 1, dm, 8), 0);
    fx_group_from(&fx, -100, 1, "op", 51, "/admin revoke 555 20", NULL, "");
    fx_until(&fx, fx_handled, (void *)(intptr_t)2);
    fx_wait_count(&fx, "sendMessage", 2);
    fx_run_for(&fx, 100);
    assert_int_equal(fx_sends_to(&fx, -100, group, 8), 2);
    assert_non_null(strstr(group[1], "Revoked 20 credits from 555."));
    assert_null(strstr(group[1], "130"));
    fx_dm(&fx, 1, "/admin grant 555 10");
    fx_wait_count(&fx, "sendMessage", 3);
    assert_int_equal(fx_sends_to(&fx, 1, dm, 8), 1);
    assert_non_null(
        strstr(dm[0], "Granted 10 credits to 555. Their wallet now has 140 available."));
    fx_done(&fx);
    member_dir_free(fx.core.members);
}

/* A member pays for their own wallet in a group: the group never reads the
 * wallet's balance; the receipt with it goes to the member's private chat.
 * A payment for the group's pool is the group's, and is answered there. */
static void test_group_stars_payment_keeps_balance_private(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.stars_packages = "50:500";
    fx_start(&fx);
    tgapi_push(
        fx.api,
        "\"message\":{\"message_id\":30,\"date\":1,\"chat\":{\"id\":-100,\"type\":"
        "\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":77,\"is_bot\":false,"
        "\"first_name\":\"Ann\"},\"successful_payment\":{\"currency\":\"XTR\","
        "\"total_amount\":50,\"invoice_payload\":\"dep:50:500:w\","
        "\"telegram_payment_charge_id\":\"stxGROUP1\",\"provider_payment_charge_id\":\"\"}}");
    fx_wait_count(&fx, "sendMessage", 2);
    fx_run_for(&fx, 100);
    assert_int_equal(lt_balance(&fx.lt, "telegram:77").posted, 600);
    const char *group[8], *dm[8];
    assert_int_equal(fx_sends_to(&fx, 77, dm, 8), 1);
    assert_non_null(strstr(dm[0], "Balance of your wallet: 600"));
    assert_int_equal(fx_sends_to(&fx, -100, group, 8), 1);
    assert_non_null(strstr(group[0], "private message"));
    assert_null(strstr(group[0], "600"));
    assert_null(strstr(group[0], "Balance"));
    /* The pool's balance is the group's own. */
    tgapi_push(
        fx.api,
        "\"message\":{\"message_id\":31,\"date\":1,\"chat\":{\"id\":-100,\"type\":"
        "\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":77,\"is_bot\":false,"
        "\"first_name\":\"Ann\"},\"successful_payment\":{\"currency\":\"XTR\","
        "\"total_amount\":50,\"invoice_payload\":\"dep:50:500:g-100\","
        "\"telegram_payment_charge_id\":\"stxGROUP2\",\"provider_payment_charge_id\":\"\"}}");
    fx_wait_count(&fx, "sendMessage", 3);
    assert_int_equal(fx_sends_to(&fx, -100, group, 8), 2);
    assert_non_null(strstr(group[1], "Balance of this group's pool: 500"));
    assert_int_equal(fx_sends_to(&fx, 77, dm, 8), 1);
    fx_done(&fx);
}

/* An admin refunds a member's Stars payment from a group: the group reads
 * what was refunded and taken back, never how much of it the member had
 * already spent (the debt their wallet owes now). */
static void test_group_refund_keeps_debt_private(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.stars_packages = "50:500";
    fx.opts.admins = "1";
    fx_start(&fx);
    tgapi_push(fx.api,
               "\"message\":{\"message_id\":30,\"date\":1,\"chat\":{\"id\":77,\"type\":"
               "\"private\"},\"from\":{\"id\":77,\"is_bot\":false,\"first_name\":\"Ann\"},"
               "\"successful_payment\":{\"currency\":\"XTR\",\"total_amount\":50,"
               "\"invoice_payload\":\"dep:50:500:w\",\"telegram_payment_charge_id\":\"stxR1\","
               "\"provider_payment_charge_id\":\"\"}}");
    fx_wait_count(&fx, "sendMessage", 1);
    struct lt_res r;
    assert_int_equal(lt_plain(&fx.lt, "spend-1", "telegram:77", LEDGER_SYSTEM_REVENUE, 550,
                              LEDGER_KIND_GENERATION, &r),
                     0);
    fx_group_from(&fx, -100, 1, "op", 60, "/admin refund stxR1", NULL, "");
    fx_wait_count(&fx, "refundStarPayment", 1);
    fx_until(&fx, fx_some_call_says, "Refunded 50 Stars");
    fx_run_for(&fx, 100);
    assert_int_equal(lt_balance(&fx.lt, "debt:telegram:77").posted, -450);
    const char *group[8];
    assert_int_equal(fx_sends_to(&fx, -100, group, 8), 1);
    assert_non_null(strstr(group[0], "Refunded 50 Stars to user 77; 500 credits taken back"));
    assert_null(strstr(group[0], "450"));
    assert_null(strstr(group[0], "debt"));
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_group_personal_answers_go_by_dm),
    cmocka_unit_test(test_group_personal_answer_dm_closed),
    cmocka_unit_test(test_group_grant_keeps_balance_private),
    cmocka_unit_test(test_group_stars_payment_keeps_balance_private),
    cmocka_unit_test(test_group_refund_keeps_debt_private),
};

TEST_GROUP_DEFINE(telegram_private, tests, lt_group_setup, lt_group_teardown)
