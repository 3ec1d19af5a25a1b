/* Payment webhooks' building blocks: the signature schemes (known-answer
 * vectors computed outside this code, and signatures made by the tests
 * from the documented schemes), payment references and memos, and whom a
 * payment's notice goes to. The whole webhook path: test_payments.c. */
#include "adapters/paddle/paddle.h"
#include "adapters/stripe/stripe.h"
#include "base/error.h"
#include "bot/payments.h"
#include "core/notify.h"
#include "core/payref.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "ref-key-0123456789abcdef"
#define STRIPE_SECRET "whsec_test_secret"
#define PADDLE_SECRET "pdl_ntfset_secret"

/* ---- the schemes ----------------------------------------------------------------- */

static void test_stripe_known_answer(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"evt_1\"}";
    /* HMAC-SHA256("whsec_test_secret", "1700000000." + body), computed with
     * Python's hmac module. */
    const char *h =
        "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
    assert_int_equal(stripe_signature_verify(h, STRIPE_SECRET, body, strlen(body), 1700000100, 300),
                     0);
    char made[256];
    assert_int_equal(
        stripe_signature_make(made, sizeof(made), STRIPE_SECRET, body, strlen(body), 1700000000),
        0);
    assert_string_equal(made, h);
    /* Upper-case hex, several v1 (one right) and a v0 are all fine. */
    const char *multi = "t=1700000000,v1=00ff,v0=abc,v1="
                        "248A374F50F943A28B0F6AB50FAF9A7E7E29B710FA26DF9FB1618B9BF8EA9C9A";
    assert_int_equal(
        stripe_signature_verify(multi, STRIPE_SECRET, body, strlen(body), 1700000000, 300), 0);
    /* Stale and far-future timestamps, with a right signature. */
    assert_int_equal(stripe_signature_verify(h, STRIPE_SECRET, body, strlen(body), 1700000301, 300),
                     HB_ETIMEOUT);
    assert_int_equal(stripe_signature_verify(h, STRIPE_SECRET, body, strlen(body), 1699999000, 300),
                     HB_ETIMEOUT);
    /* A wrong secret, a changed body, a changed timestamp. */
    assert_int_equal(stripe_signature_verify(h, "whsec_other", body, strlen(body), 1700000000, 300),
                     HB_EPERM);
    assert_int_equal(
        stripe_signature_verify(h, STRIPE_SECRET, "{\"id\":\"evt_2\"}", 14, 1700000000, 300),
        HB_EPERM);
    const char *moved =
        "t=1700000001,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
    assert_int_equal(
        stripe_signature_verify(moved, STRIPE_SECRET, body, strlen(body), 1700000000, 300),
        HB_EPERM);
    /* Malformed headers. */
    static const char *const bad[] = {
        "",
        "v1=248a",
        "t=,v1=00",
        "t=17x,v1=00",
        "t=1700000000",
        "t=1700000000,v0=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a",
        "t=1,t=2,v1=00"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(bad); i++)
        assert_int_equal(
            stripe_signature_verify(bad[i], STRIPE_SECRET, body, strlen(body), 1700000000, 300),
            HB_EINVAL);
    assert_int_equal(
        stripe_signature_verify(NULL, STRIPE_SECRET, body, strlen(body), 1700000000, 300),
        HB_EINVAL);
}

static void test_paddle_known_answer(void **state)
{
    (void)state;
    const char *body = "{\"event_id\":\"evt_1\"}";
    /* HMAC-SHA256("pdl_ntfset_secret", "1700000000:" + body), from Python. */
    const char *h =
        "ts=1700000000;h1=05baa29ac78ebc4421d9a808c0ec0ca1ef283a0eeb96996c9055776551f67907";
    assert_int_equal(paddle_signature_verify(h, PADDLE_SECRET, body, strlen(body), 1700000000, 300),
                     0);
    char made[256];
    assert_int_equal(
        paddle_signature_make(made, sizeof(made), PADDLE_SECRET, body, strlen(body), 1700000000),
        0);
    assert_string_equal(made, h);
    const char *rotated = "ts=1700000000;h1=deadbeef;h1="
                          "05baa29ac78ebc4421d9a808c0ec0ca1ef283a0eeb96996c9055776551f67907";
    assert_int_equal(
        paddle_signature_verify(rotated, PADDLE_SECRET, body, strlen(body), 1700000000, 300), 0);
    assert_int_equal(paddle_signature_verify(h, PADDLE_SECRET, body, strlen(body), 1700000400, 300),
                     HB_ETIMEOUT);
    assert_int_equal(paddle_signature_verify(h, "pdl_other", body, strlen(body), 1700000000, 300),
                     HB_EPERM);
    /* Stripe's separator is not Paddle's. */
    char stripe_style[256];
    assert_int_equal(stripe_signature_make(stripe_style, sizeof(stripe_style), PADDLE_SECRET, body,
                                           strlen(body), 1700000000),
                     0);
    char as_paddle[256];
    snprintf(as_paddle, sizeof(as_paddle), "ts=1700000000;h1=%s", strstr(stripe_style, "v1=") + 3);
    assert_int_equal(
        paddle_signature_verify(as_paddle, PADDLE_SECRET, body, strlen(body), 1700000000, 300),
        HB_EPERM);
    assert_int_equal(
        paddle_signature_verify("h1=05ba", PADDLE_SECRET, body, strlen(body), 1700000000, 300),
        HB_EINVAL);
    assert_int_equal(paddle_signature_verify("ts=1700000000", PADDLE_SECRET, body, strlen(body),
                                             1700000000, 300),
                     HB_EINVAL);
}

static void test_references_and_memos(void **state)
{
    (void)state;
    char ref[PAYREF_REFERENCE_MAX + 1];
    char acc[PAYREF_ACCOUNT_MAX + 1];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:1234"), 0);
    for (const char *c = ref; *c != '\0'; c++)
        assert_true((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_');
    assert_int_equal(payref_reference_check(ref, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    assert_string_equal(acc, "discord:1234");
    /* Another key, or one changed character, is refused. */
    assert_int_equal(payref_reference_check(ref, "other-key", 9, acc, sizeof(acc)), HB_EPERM);
    char forged[PAYREF_REFERENCE_MAX + 1];
    assert_int_equal(
        payref_reference_make(forged, sizeof(forged), KEY, strlen(KEY), "discord:1235"), 0);
    memcpy(forged + strlen(forged) - 22, ref + strlen(ref) - 22, 22); /* 1235 with 1234's mac */
    assert_int_equal(payref_reference_check(forged, KEY, strlen(KEY), acc, sizeof(acc)), HB_EPERM);
    assert_int_equal(payref_reference_check("short", KEY, strlen(KEY), acc, sizeof(acc)),
                     HB_EINVAL);
    assert_int_equal(payref_reference_check("", KEY, strlen(KEY), acc, sizeof(acc)), HB_EINVAL);
    /* Pools work the same; memos are readable and checked the same way. */
    char memo[PAYREF_MEMO_MAX + 1];
    assert_int_equal(payref_memo_make(memo, sizeof(memo), KEY, strlen(KEY), "pool:telegram:-100"),
                     0);
    assert_int_equal(strncmp(memo, "hb:pool:telegram:-100/", 22), 0);
    char spaced[128];
    snprintf(spaced, sizeof(spaced), "  %s \n", memo);
    assert_int_equal(payref_memo_check(spaced, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    assert_string_equal(acc, "pool:telegram:-100");
    memo[strlen(memo) - 1] ^= 1;
    assert_int_equal(payref_memo_check(memo, KEY, strlen(KEY), acc, sizeof(acc)), HB_EPERM);
    assert_int_equal(payref_memo_check("thanks for the coffee", KEY, strlen(KEY), acc, sizeof(acc)),
                     HB_EINVAL);
    /* Packages. */
    struct deposit_package pk[4];
    assert_int_equal(payments_packages_parse("500:1000, 1000:2200", pk, 4), 2);
    assert_int_equal(pk[1].price, 1000);
    assert_int_equal(pk[1].credits, 2200);
    assert_int_equal(payments_packages_parse("500:1000,500:900", pk, 4), HB_EINVAL);
    assert_int_equal(payments_packages_parse("500=1000", pk, 4), HB_EINVAL);
    assert_int_equal(payments_packages_parse("", pk, 4), 0);
}

static void test_notify_target_from_account(void **state)
{
    (void)state;
    struct notify_target t;
    assert_int_equal(notify_target_from_account(&t, "discord:123"), 0);
    assert_int_equal(t.platform, COMMAND_PLATFORM_DISCORD);
    assert_int_equal(t.scope, COMMAND_SCOPE_DM);
    assert_string_equal(t.user_id, "123");
    assert_int_equal(notify_target_from_account(&t, "pool:discord:9"), 0);
    assert_int_equal(t.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(t.scope_id, "9");
    assert_string_equal(t.channel_id, ""); /* a guild has no one channel */
    assert_int_equal(notify_target_from_account(&t, "console:operator"), 0);
    assert_int_equal(t.platform, COMMAND_PLATFORM_CONSOLE);
    assert_int_equal(notify_target_from_account(&t, "system:deposits"), HB_EINVAL);
    assert_int_equal(notify_target_from_account(&t, "debt:discord:1"), HB_EINVAL);
    assert_int_equal(notify_target_from_account(&t, "discord:"), HB_EINVAL);
    assert_int_equal(notify_target_from_account(&t, "pool:irc:1"), HB_EINVAL);
    char acct[64] = "pool:discord:9#777", chan[32];
    notify_account_split(acct, chan, sizeof(chan));
    assert_string_equal(acct, "pool:discord:9");
    assert_string_equal(chan, "777");
    notify_account_split(acct, chan, sizeof(chan));
    assert_string_equal(chan, "");
    char text[256];
    assert_int_equal(notify_target_from_account(&t, "telegram:5"), 0);
    notify_credit_text(text, sizeof(text), &t, "Hedera", 1500, -1);
    assert_string_equal(text, "Your Hedera payment arrived: 1,500 credits.");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stripe_known_answer),
    cmocka_unit_test(test_paddle_known_answer),
    cmocka_unit_test(test_references_and_memos),
    cmocka_unit_test(test_notify_target_from_account),
};

TEST_GROUP_DEFINE(payment_schemes, tests, lt_group_setup, lt_group_teardown)
