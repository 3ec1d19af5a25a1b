/* The member is told when a card payment is credited: a signed Stripe
 * webhook reaches the notifier the daemon passes to payments, once the
 * credit is committed, with the new balance; a redelivery tells nobody
 * twice; an account on a platform with no adapter is only logged. */
#include "adapters/stripe/stripe.h"
#include "bot/payments.h"
#include "bot/server.h"
#include "core/error.h"
#include "core/notify.h"
#include "core/payref.h"
#include "tests/bot/tcall.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "ref-key-0123456789abcdef"
#define STRIPE_SECRET "whsec_test_secret"

/* A fake notifier: what the daemon would hand to an adapter. */
struct fake_notifier {
    int calls;
    int rc; /* what it answers */
    struct notify_target to;
    char text[512];
};

static int fake_notify(void *data, const struct notify_target *to, const char *text)
{
    struct fake_notifier *n = data;
    n->calls++;
    n->to = *to;
    snprintf(n->text, sizeof(n->text), "%s", text);
    return n->rc;
}

struct nfx {
    struct lt lt;
    struct server *srv;
    struct payments *pay;
    struct http_client *client;
    char base[64];
    struct fake_notifier notifier;
};

static void nfx_open(struct nfx *fx)
{
    memset(fx, 0, sizeof(*fx));
    lt_init(&fx->lt, true, false);
    struct server_options so = {.max_body = 8192};
    fx->srv = server_new(&fx->lt.loop, &so);
    assert_non_null(fx->srv);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%d", server_port(fx->srv));
    struct payments_options o = {.ledger = &fx->lt.ledger,
                                 .reference_key = KEY,
                                 .packages = "500:1000, 1000:2200",
                                 .currency = "usd",
                                 .welcome_bonus = 100,
                                 .stripe_secret = STRIPE_SECRET,
                                 .notify = fake_notify,
                                 .notify_data = &fx->notifier};
    fx->pay = payments_new(fx->srv, &o);
    assert_non_null(fx->pay);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->client), 0);
}

static void nfx_close(struct nfx *fx)
{
    assert_int_equal(payments_pending(fx->pay), 0);
    if (fx->lt.ledger != NULL)
        lt_ledger_close(&fx->lt);
    http_client_close(fx->client, NULL, NULL);
    server_close(fx->srv);
    uv_run(&fx->lt.loop, UV_RUN_DEFAULT);
    server_free(fx->srv);
    payments_free(fx->pay);
    assert_int_equal(uv_loop_close(&fx->lt.loop), 0);
    test_tmpdir_remove(fx->lt.dir);
    free(fx->lt.dir);
}

/* A checkout.session.completed event in Stripe's documented shape, signed
 * now and posted; returns the HTTP status. */
static int nfx_checkout(struct nfx *fx, const char *evt, const char *account, long amount)
{
    char ref[PAYREF_REFERENCE_MAX + 1];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), account), 0);
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"checkout.session.completed\","
             "\"data\":{\"object\":{\"id\":\"cs_%s\",\"object\":\"checkout.session\","
             "\"amount_total\":%ld,\"client_reference_id\":\"%s\",\"currency\":\"usd\","
             "\"mode\":\"payment\",\"payment_intent\":\"pi_%s\",\"payment_status\":\"paid\","
             "\"status\":\"complete\"}}}",
             evt, evt, amount, ref, evt);
    char sig[256];
    assert_int_equal(
        stripe_signature_make(sig, sizeof(sig), STRIPE_SECRET, body, strlen(body), time(NULL)), 0);
    char u[128];
    snprintf(u, sizeof(u), "%s/webhooks/stripe", fx->base);
    const char *h[] = {"Stripe-Signature", sig, NULL};
    struct tcall c;
    tcall_do(&fx->lt.loop, fx->client, "POST", u, h, body, strlen(body), &c);
    assert_int_equal(c.rc, 0);
    int status = c.status;
    tcall_clear(&c);
    return status;
}

static void test_stripe_credit_notifies_member(void **state)
{
    (void)state;
    struct nfx fx;
    nfx_open(&fx);
    /* A new wallet: the welcome bonus and the package, 2,300 in all. The
     * 200 comes after the notice, so it has been handed over by now. */
    assert_int_equal(nfx_checkout(&fx, "evt_n1", "telegram:42", 1000), 200);
    assert_int_equal(fx.notifier.calls, 1);
    assert_int_equal(fx.notifier.to.platform, COMMAND_PLATFORM_TELEGRAM);
    assert_int_equal(fx.notifier.to.scope, COMMAND_SCOPE_DM);
    assert_string_equal(fx.notifier.to.user_id, "42");
    assert_string_equal(fx.notifier.to.channel_id, "");
    assert_non_null(strstr(fx.notifier.text, "2,200 credits"));
    assert_non_null(strstr(fx.notifier.text, "Your wallet now has 2,300 credits available"));

    /* Stripe redelivers: credited once, told once. */
    assert_int_equal(nfx_checkout(&fx, "evt_n1", "telegram:42", 1000), 200);
    assert_int_equal(fx.notifier.calls, 1);

    /* A pool on Telegram: the group is told in its chat. */
    assert_int_equal(nfx_checkout(&fx, "evt_n2", "pool:telegram:-100", 500), 200);
    assert_int_equal(fx.notifier.calls, 2);
    assert_int_equal(fx.notifier.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(fx.notifier.to.channel_id, "-100");
    assert_non_null(strstr(fx.notifier.text, "This group's pool now has 1,000 credits available"));

    /* A Discord server's pool, paid from the link /deposit gave in channel
     * 777: the pool is credited and the server told in that channel. */
    assert_int_equal(nfx_checkout(&fx, "evt_n4", "pool:discord:9#777", 500), 200);
    assert_int_equal(fx.notifier.calls, 3);
    assert_int_equal(fx.notifier.to.platform, COMMAND_PLATFORM_DISCORD);
    assert_int_equal(fx.notifier.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(fx.notifier.to.scope_id, "9");
    assert_string_equal(fx.notifier.to.channel_id, "777");
    assert_int_equal(lt_balance(&fx.lt, "pool:discord:9").posted, 1000); /* 500 buys 1,000 */

    /* No adapter for the platform: the credit stands, the answer is 200. */
    fx.notifier.rc = HB_ENOTFOUND;
    assert_int_equal(nfx_checkout(&fx, "evt_n3", "discord:7", 500), 200);
    assert_int_equal(fx.notifier.calls, 4);
    assert_int_equal(lt_balance(&fx.lt, "discord:7").posted, 100 + 1000);
    nfx_close(&fx);
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
    cmocka_unit_test(test_notify_target_from_account),
    cmocka_unit_test(test_stripe_credit_notifies_member),
};

TEST_GROUP_DEFINE(payments_notify, tests, lt_group_setup, lt_group_teardown)
