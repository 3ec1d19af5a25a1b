/* The /deposit text: every configured method, and the member's own links
 * and memos, which read back to their accounts. */
#include "core/deposit.h"
#include "core/payref.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "deposit-key-0123456789"

static struct deposit_methods methods(struct deposit_package *pk, struct deposit_token *tk)
{
    pk[0] = (struct deposit_package){.price = 500, .credits = 1000};
    pk[1] = (struct deposit_package){.price = 1000, .credits = 2200};
    snprintf(tk[0].id, sizeof(tk[0].id), "0.0.777");
    tk[0].units_per_credit = 100;
    return (struct deposit_methods){.key = KEY,
                                    .packages = pk,
                                    .npackages = 2,
                                    .currency = "usd",
                                    .stripe_url = "https://buy.stripe.com/test_1",
                                    .paddle_url = "https://pay.example.com/checkout?lang=en",
                                    .treasury = "0.0.900",
                                    .tinybars_per_credit = 1000000,
                                    .tokens = tk,
                                    .ntokens = 1};
}

/* The value after `marker` up to the end of its line. */
static void after(const char *text, const char *marker, char *out, size_t cap)
{
    const char *p = strstr(text, marker);
    assert_non_null(p);
    p += strlen(marker);
    size_t n = strcspn(p, "\n");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_deposit_text_general(void **state)
{
    (void)state;
    struct deposit_package pk[2];
    struct deposit_token tk[1];
    struct deposit_methods m = methods(pk, tk);
    char *text = deposit_text_make(&m, NULL, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "5.00 USD buys 1,000 credits, 10.00 USD buys 2,200 credits"));
    assert_non_null(strstr(text, "Stripe: https://buy.stripe.com/test_1\n"));
    assert_non_null(
        strstr(text, "send it to account 0.0.900 (1 HBAR buys 100 credits); also token 0.0.777"));
    assert_null(strstr(text, "client_reference_id"));
    free(text);
    struct deposit_methods none = {0};
    assert_null(deposit_text_make(&none, "discord:1", NULL));
}

static void test_deposit_text_personal(void **state)
{
    (void)state;
    struct deposit_package pk[2];
    struct deposit_token tk[1];
    struct deposit_methods m = methods(pk, tk);
    char *text = deposit_text_make(&m, "discord:42", "pool:discord:9");
    assert_non_null(text);
    char ref[256], acc[PAYREF_ACCOUNT_MAX + 1];
    after(text, "Stripe for your wallet: https://buy.stripe.com/test_1?client_reference_id=", ref,
          sizeof(ref));
    assert_int_equal(payref_reference_check(ref, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    assert_string_equal(acc, "discord:42");
    after(text,
          "Stripe for this group's pool: https://buy.stripe.com/test_1?client_reference_id=", ref,
          sizeof(ref));
    assert_int_equal(payref_reference_check(ref, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    assert_string_equal(acc, "pool:discord:9");
    after(text, "Paddle for your wallet: https://pay.example.com/checkout?lang=en&reference=", ref,
          sizeof(ref));
    assert_int_equal(payref_reference_check(ref, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    after(text, "Memo for your wallet: ", ref, sizeof(ref));
    assert_int_equal(payref_memo_check(ref, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    assert_string_equal(acc, "discord:42");
    after(text, "Memo for this group's pool: ", ref, sizeof(ref));
    assert_int_equal(payref_memo_check(ref, KEY, strlen(KEY), acc, sizeof(acc)), 0);
    assert_string_equal(acc, "pool:discord:9");
    free(text);
    /* In a DM there is no pool. */
    text = deposit_text_make(&m, "telegram:5", NULL);
    assert_null(strstr(text, "pool"));
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deposit_text_general),
    cmocka_unit_test(test_deposit_text_personal),
};

TEST_GROUP_DEFINE(deposit, tests, NULL, NULL)
