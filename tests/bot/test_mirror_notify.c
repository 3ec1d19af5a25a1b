/* A Hedera deposit credited by the poller is told to its member, after
 * the credit is committed, with the new balance; a page read again
 * credits nothing and tells nobody twice. */
#include "net/http.h"
#include "bot/mirror.h"
#include "core/notify.h"
#include "core/payref.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/httpd.h"
#include "tests/test.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define KEY "mirror-test-key-0123456789"
#define TREASURY "0.0.900"

struct mnx {
    struct lt lt;
    struct httpd *fake;
    struct http_client *http;
    struct mirror *mirror;
    char memo[160]; /* base64 */
    unsigned polls;
    int last_rc;
    int calls;
    struct notify_target to;
    char text[512];
};

static int mnx_notify(void *data, const struct notify_target *to, const char *text)
{
    struct mnx *fx = data;
    fx->calls++;
    fx->to = *to;
    snprintf(fx->text, sizeof(fx->text), "%s", text);
    return 0;
}

/* One page, one deposit of 2.5 HBAR, every time it is asked. */
static void mnx_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct mnx *fx = data;
    (void)req;
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"transactions\":["
             "{\"consensus_timestamp\":\"1700000001.000000001\","
             "\"transaction_id\":\"0.0.5001-1700000000-000000001\",\"name\":\"CRYPTOTRANSFER\","
             "\"result\":\"SUCCESS\",\"memo_base64\":\"%s\","
             "\"transfers\":[{\"account\":\"0.0.5001\",\"amount\":-250000000},"
             "{\"account\":\"" TREASURY "\",\"amount\":250000000}],\"token_transfers\":[]}"
             "],\"links\":{\"next\":null}}",
             fx->memo);
    httpd_response_send(res, 200, "application/json", body, strlen(body));
}

static void mnx_polled(void *data, int rc)
{
    struct mnx *fx = data;
    fx->polls++;
    fx->last_rc = rc;
}

static void mnx_stopped(void *data)
{
    *(bool *)data = true;
}

static void test_mirror_credit_notifies_member(void **state)
{
    (void)state;
    struct mnx fx;
    memset(&fx, 0, sizeof(fx));
    lt_init(&fx.lt, true, false);
    char memo[PAYREF_MEMO_MAX + 1];
    assert_int_equal(payref_memo_make(memo, sizeof(memo), KEY, strlen(KEY), "telegram:31"), 0);
    EVP_EncodeBlock((unsigned char *)fx.memo, (const unsigned char *)memo, (int)strlen(memo));
    fx.fake = httpd_new(&fx.lt.loop, mnx_handler, &fx);
    assert_non_null(fx.fake);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx.lt.loop, NULL, &fx.http), 0);
    struct mirror_options o = {.http = fx.http,
                               .ledger = &fx.lt.ledger,
                               .mirror_url = httpd_base_url(fx.fake),
                               .treasury = TREASURY,
                               .reference_key = KEY,
                               .tinybars_per_credit = 1000000,
                               .welcome_bonus = 100,
                               .interval_ms = 3600 * 1000, /* polled by hand */
                               .on_poll = mnx_polled,
                               .data = &fx,
                               .notify = mnx_notify,
                               .notify_data = &fx};
    fx.mirror = mirror_new(&fx.lt.loop, &o);
    assert_non_null(fx.mirror);
    assert_int_equal(mirror_start(fx.mirror), 0);
    while (fx.polls < 1)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(fx.last_rc, 0);
    /* 250 credits on a new wallet with its 100 bonus: told 350. */
    assert_int_equal(lt_balance(&fx.lt, "telegram:31").posted, 350);
    assert_int_equal(fx.calls, 1);
    assert_int_equal(fx.to.platform, COMMAND_PLATFORM_TELEGRAM);
    assert_int_equal(fx.to.scope, COMMAND_SCOPE_DM);
    assert_string_equal(fx.to.user_id, "31");
    assert_string_equal(fx.text, "Your Hedera payment arrived: 250 credits. Your wallet now has "
                                 "350 credits available.");
    /* The same deposit read again: no second credit, no second notice. */
    mirror_poll_now(fx.mirror);
    while (fx.polls < 2)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(lt_balance(&fx.lt, "telegram:31").posted, 350);
    assert_int_equal(fx.calls, 1);
    bool done = false;
    mirror_stop(fx.mirror, mnx_stopped, &done);
    while (!done)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    http_client_close(fx.http, NULL, NULL);
    httpd_close(fx.fake, NULL, NULL);
    lt_done(&fx.lt); /* asserts uv_loop_close == 0 */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mirror_credit_notifies_member),
};

TEST_GROUP_DEFINE(mirror_notify, tests, lt_group_setup, lt_group_teardown)
