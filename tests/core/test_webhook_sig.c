/* The one webhook signature check, row by row of the scheme table: the
 * Stripe and Paddle rows each take a good signature and refuse a wrong
 * secret, a stale timestamp and malformed headers with the same codes; a
 * row's header never verifies under the other row. */
#include "adapters/paddle/paddle.h"
#include "adapters/stripe/stripe.h"
#include "base/error.h"
#include "core/webhook_sig.h"
#include "tests/test.h"

#include <stdio.h>
#include <string.h>

#define SECRET "whsec_table_secret"
#define NOW 1700000000
#define BODY "{\"id\":\"evt_table\",\"amount\":500}"

static const struct webhook_sig_scheme *const schemes[] = {&stripe_sig_scheme, &paddle_sig_scheme};

static int verify(const struct webhook_sig_scheme *s, const char *header, const char *secret,
                  int64_t now)
{
    return webhook_sig_verify(s, header, secret, BODY, strlen(BODY), now, 300);
}

/* The row's header for BODY at t, made by the row under secret. */
static void header_make(const struct webhook_sig_scheme *s, char *out, size_t cap,
                        const char *secret, int64_t t)
{
    assert_int_equal(webhook_sig_make(s, out, cap, secret, BODY, strlen(BODY), t), 0);
}

static void test_rows_describe_the_providers(void **state)
{
    (void)state;
    assert_string_equal(stripe_sig_scheme.name, "stripe");
    assert_string_equal(stripe_sig_scheme.header, "Stripe-Signature");
    assert_string_equal(paddle_sig_scheme.name, "paddle");
    assert_string_equal(paddle_sig_scheme.header, "Paddle-Signature");
    for (size_t i = 0; i < TEST_ARRAY_SIZE(schemes); i++)
        assert_int_equal(schemes[i]->tolerance_default, 300);
    char h[256];
    header_make(&stripe_sig_scheme, h, sizeof(h), SECRET, NOW);
    assert_int_equal(strncmp(h, "t=1700000000,v1=", 16), 0);
    header_make(&paddle_sig_scheme, h, sizeof(h), SECRET, NOW);
    assert_int_equal(strncmp(h, "ts=1700000000;h1=", 17), 0);
}

static void test_good_signature(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(schemes); i++) {
        const struct webhook_sig_scheme *s = schemes[i];
        char h[256];
        header_make(s, h, sizeof(h), SECRET, NOW);
        assert_int_equal(verify(s, h, SECRET, NOW), 0);
        /* At either edge of the tolerance. */
        assert_int_equal(verify(s, h, SECRET, NOW + 300), 0);
        assert_int_equal(verify(s, h, SECRET, NOW - 300), 0);
        /* A rolled secret: an unknown signature first, the right one after,
         * in upper-case hex. */
        char rolled[400];
        const char *sig = strstr(h, s->sig_key) + strlen(s->sig_key);
        char upper[128];
        snprintf(upper, sizeof(upper), "%s", sig);
        for (char *c = upper; *c != '\0'; c++)
            *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 'a' + 'A' : *c);
        snprintf(rolled, sizeof(rolled), "%s%lld%c%s%064d%c%s%s", s->stamp_key, (long long)NOW,
                 s->field_sep, s->sig_key, 0, s->field_sep, s->sig_key, upper);
        assert_int_equal(verify(s, rolled, SECRET, NOW), 0);
    }
}

static void test_wrong_secret(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(schemes); i++) {
        const struct webhook_sig_scheme *s = schemes[i];
        char h[256];
        header_make(s, h, sizeof(h), "whsec_someone_else", NOW);
        assert_int_equal(verify(s, h, SECRET, NOW), HB_EPERM);
        /* A right signature over another body. */
        header_make(s, h, sizeof(h), SECRET, NOW);
        assert_int_equal(webhook_sig_verify(s, h, SECRET, "{}", 2, NOW, 300), HB_EPERM);
        /* No secret configured is not a match. */
        assert_int_equal(verify(s, h, "", NOW), HB_EINVAL);
        assert_int_equal(verify(s, h, NULL, NOW), HB_EINVAL);
    }
}

static void test_stale_timestamp(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(schemes); i++) {
        const struct webhook_sig_scheme *s = schemes[i];
        char h[256];
        header_make(s, h, sizeof(h), SECRET, NOW);
        assert_int_equal(verify(s, h, SECRET, NOW + 301), HB_ETIMEOUT);
        assert_int_equal(verify(s, h, SECRET, NOW - 301), HB_ETIMEOUT);
        /* A stale header with a wrong signature says it is forged, not old. */
        header_make(s, h, sizeof(h), "whsec_someone_else", NOW);
        assert_int_equal(verify(s, h, SECRET, NOW + 301), HB_EPERM);
    }
}

static void test_malformed_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(schemes); i++) {
        const struct webhook_sig_scheme *s = schemes[i];
        char good[256];
        header_make(s, good, sizeof(good), SECRET, NOW);
        const char *sig = strstr(good, s->sig_key) + strlen(s->sig_key);
        char bad[8][400];
        snprintf(bad[0], sizeof(bad[0]), "%s", "");
        snprintf(bad[1], sizeof(bad[1]), "%s%s", s->sig_key, sig);                /* no timestamp */
        snprintf(bad[2], sizeof(bad[2]), "%s%lld", s->stamp_key, (long long)NOW); /* no signature */
        snprintf(bad[3], sizeof(bad[3]), "%s%c%s%s", s->stamp_key, s->field_sep, s->sig_key, sig);
        snprintf(bad[4], sizeof(bad[4]), "%s17x%c%s%s", s->stamp_key, s->field_sep, s->sig_key,
                 sig);
        snprintf(bad[5], sizeof(bad[5]), "%s1%c%s2%c%s%s", s->stamp_key, s->field_sep, s->stamp_key,
                 s->field_sep, s->sig_key, sig); /* two timestamps */
        snprintf(bad[6], sizeof(bad[6]), "%s1234567890123%c%s%s", s->stamp_key, s->field_sep,
                 s->sig_key, sig); /* too long */
        snprintf(bad[7], sizeof(bad[7]), "%s%lld%cv0=%s", s->stamp_key, (long long)NOW,
                 s->field_sep, sig); /* no known version */
        for (size_t k = 0; k < TEST_ARRAY_SIZE(bad); k++)
            assert_int_equal(verify(s, bad[k], SECRET, NOW), HB_EINVAL);
        assert_int_equal(verify(s, NULL, SECRET, NOW), HB_EINVAL);
        /* A short signature is a mismatch, not a crash. */
        char shorter[256];
        snprintf(shorter, sizeof(shorter), "%s%lld%c%s00ff", s->stamp_key, (long long)NOW,
                 s->field_sep, s->sig_key);
        assert_int_equal(verify(s, shorter, SECRET, NOW), HB_EPERM);
    }
}

/* Each row reads only its own header: the other row's, even signed with
 * the same secret, has no timestamp field it knows. */
static void test_rows_do_not_cross(void **state)
{
    (void)state;
    char h[256];
    header_make(&stripe_sig_scheme, h, sizeof(h), SECRET, NOW);
    assert_int_equal(verify(&paddle_sig_scheme, h, SECRET, NOW), HB_EINVAL);
    header_make(&paddle_sig_scheme, h, sizeof(h), SECRET, NOW);
    assert_int_equal(verify(&stripe_sig_scheme, h, SECRET, NOW), HB_EINVAL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rows_describe_the_providers),
    cmocka_unit_test(test_good_signature),
    cmocka_unit_test(test_wrong_secret),
    cmocka_unit_test(test_stale_timestamp),
    cmocka_unit_test(test_malformed_header),
    cmocka_unit_test(test_rows_do_not_cross),
};

TEST_GROUP_DEFINE(webhook_sig, tests, NULL, NULL)
