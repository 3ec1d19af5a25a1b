/* Payment webhooks (the schemes themselves: test_payment_schemes.c): the
 * whole path from a signed POST to a
 * committed credit: replays, forgeries, stale timestamps, wrong secrets,
 * oversized and malformed bodies, refunds and chargebacks. */
#include "adapters/paddle/paddle.h"
#include "adapters/stripe/stripe.h"
#include "bot/payments.h"
#include "net/server.h"
#include "base/error.h"
#include "core/audit.h"
#include "core/notify.h"
#include "core/payref.h"
#include "core/state.h"
#include "tests/bot/tcall.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "ref-key-0123456789abcdef"
#define STRIPE_SECRET "whsec_test_secret"
#define PADDLE_SECRET "pdl_ntfset_secret"

/* ---- the webhooks, end to end -------------------------------------------------------- */

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

struct pfx {
    struct lt lt;
    struct server *srv;
    struct payments *pay;
    struct http_client *client;
    char base[64];
    struct fake_notifier notifier; /* what members would be told */
};

static void pfx_open_with(struct pfx *fx, enum payments_match paddle_match_on)
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
                                 .paddle_secret = PADDLE_SECRET,
                                 .paddle_match_on = paddle_match_on,
                                 .notify = fake_notify,
                                 .notify_data = &fx->notifier};
    fx->pay = payments_new(fx->srv, &o);
    assert_non_null(fx->pay);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->client), 0);
}

static void pfx_open(struct pfx *fx)
{
    pfx_open_with(fx, PAYMENTS_MATCH_SUBTOTAL);
}

static void pfx_close(struct pfx *fx)
{
    assert_int_equal(payments_pending(fx->pay), 0);
    if (fx->lt.ledger != NULL)
        lt_ledger_close(&fx->lt);
    http_client_close(fx->client, NULL, NULL);
    server_stop(fx->srv);
    uv_run(&fx->lt.loop, UV_RUN_DEFAULT);
    server_free(fx->srv);
    payments_free(fx->pay);
    assert_int_equal(uv_loop_close(&fx->lt.loop), 0);
    test_tmpdir_remove(fx->lt.dir);
    free(fx->lt.dir);
}

/* POST body to /webhooks/<provider> with the given signature header. */
static int pfx_post(struct pfx *fx, const char *provider, const char *body, size_t len,
                    const char *sig, char *result, size_t cap)
{
    char u[128];
    snprintf(u, sizeof(u), "%s/webhooks/%s", fx->base, provider);
    const char *h[] = {strcmp(provider, "stripe") == 0 ? "Stripe-Signature" : "Paddle-Signature",
                       sig, NULL};
    struct tcall c;
    tcall_do(&fx->lt.loop, fx->client, "POST", u, sig != NULL ? h : NULL, body, len, &c);
    assert_int_equal(c.rc, 0);
    int status = c.status;
    if (result != NULL)
        snprintf(result, cap, "%s", c.body != NULL ? c.body : "");
    tcall_clear(&c);
    return status;
}

static int pfx_stripe(struct pfx *fx, const char *body, char *result, size_t cap)
{
    char sig[256];
    assert_int_equal(
        stripe_signature_make(sig, sizeof(sig), STRIPE_SECRET, body, strlen(body), time(NULL)), 0);
    return pfx_post(fx, "stripe", body, strlen(body), sig, result, cap);
}

static int pfx_paddle(struct pfx *fx, const char *body, char *result, size_t cap)
{
    char sig[256];
    assert_int_equal(
        paddle_signature_make(sig, sizeof(sig), PADDLE_SECRET, body, strlen(body), time(NULL)), 0);
    return pfx_post(fx, "paddle", body, strlen(body), sig, result, cap);
}

/* A Checkout Session event in Stripe's documented shape: type, the
 * session's id and its payment_status ("paid", "unpaid"). */
static void stripe_session(char *out, size_t cap, const char *evt, const char *type,
                           const char *session, const char *ref, long amount, const char *pi,
                           const char *status)
{
    snprintf(
        out, cap,
        "{\"id\":\"%s\",\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":1700000000,"
        "\"type\":\"%s\",\"livemode\":false,\"data\":{\"object\":{"
        "\"id\":\"%s\",\"object\":\"checkout.session\",\"amount_subtotal\":%ld,"
        "\"amount_total\":%ld,\"client_reference_id\":\"%s\",\"currency\":\"usd\","
        "\"mode\":\"payment\",\"payment_intent\":\"%s\",\"payment_status\":\"%s\","
        "\"status\":\"complete\"}}}",
        evt, type, session, amount, amount, ref, pi, status);
}

/* A paid checkout.session.completed; each payment intent has its own
 * session ("cs_test_<pi>"), as each purchase does. */
static void stripe_checkout(char *out, size_t cap, const char *evt, const char *ref, long amount,
                            const char *pi)
{
    char session[96];
    snprintf(session, sizeof(session), "cs_test_%s", pi);
    stripe_session(out, cap, evt, "checkout.session.completed", session, ref, amount, pi, "paid");
}

/* A charge.refunded event in Stripe's documented shape, posted signed. */
static int pfx_refund(struct pfx *fx, const char *evt, const char *charge, long amount,
                      const char *pi, char *result, size_t cap)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"type\":\"charge.refunded\",\"data\":{\"object\":{\"id\":\"%s\","
             "\"amount_refunded\":%ld,\"currency\":\"usd\",\"payment_intent\":\"%s\"}}}",
             evt, charge, amount, pi);
    return pfx_stripe(fx, body, result, cap);
}

static int64_t balance_of(struct pfx *fx, const char *account)
{
    return lt_balance(&fx->lt, account).posted;
}

static void test_stripe_webhook_credits_once(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:42"), 0);
    char body[2048];
    char result[256];
    stripe_checkout(body, sizeof(body), "evt_1A", ref, 1000, "pi_1");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    /* A new wallet: the welcome bonus, then the package. */
    assert_int_equal(balance_of(&fx, "discord:42"), 100 + 2200);
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    /* Named by the payment (its Checkout Session), not by the event. */
    assert_int_equal(ledger_transfer_get(fx.lt.ledger, "stripe:cs_test_pi_1", lt_cb, &res), 0);
    lt_wait(&fx.lt, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.r.transfer.amount, 2200);
    /* Stripe retries: 200, nothing twice; even re-signed later. */
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:42"), 2300);
    /* A second purchase is a second event. */
    stripe_checkout(body, sizeof(body), "evt_1B", ref, 500, "pi_2");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_int_equal(balance_of(&fx, "discord:42"), 3300);
    /* A pool reference credits the pool. */
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "pool:discord:9"),
                     0);
    stripe_checkout(body, sizeof(body), "evt_1C", ref, 500, "pi_3");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_int_equal(balance_of(&fx, "pool:discord:9"), 1000);
    pfx_close(&fx);
}

static void test_stripe_webhook_refusals(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:7"), 0);
    char body[2048];
    char sig[256];
    char result[256];
    stripe_checkout(body, sizeof(body), "evt_2A", ref, 1000, "pi_9");
    /* No signature, a wrong secret, a stale timestamp, a changed body. */
    assert_int_equal(pfx_post(&fx, "stripe", body, strlen(body), NULL, result, sizeof(result)),
                     401);
    assert_int_equal(
        stripe_signature_make(sig, sizeof(sig), "whsec_wrong", body, strlen(body), time(NULL)), 0);
    assert_int_equal(pfx_post(&fx, "stripe", body, strlen(body), sig, result, sizeof(result)), 401);
    assert_int_equal(stripe_signature_make(sig, sizeof(sig), STRIPE_SECRET, body, strlen(body),
                                           time(NULL) - 301),
                     0);
    assert_int_equal(pfx_post(&fx, "stripe", body, strlen(body), sig, result, sizeof(result)), 401);
    assert_int_equal(
        stripe_signature_make(sig, sizeof(sig), STRIPE_SECRET, body, strlen(body), time(NULL)), 0);
    char *changed = strdup(body);
    *strstr(changed, "1000") = '9';
    assert_int_equal(pfx_post(&fx, "stripe", changed, strlen(changed), sig, result, sizeof(result)),
                     401);
    free(changed);
    /* Signed but not an event: 400. */
    assert_int_equal(pfx_stripe(&fx, "{\"id\":\"evt_x\",", result, sizeof(result)), 400);
    assert_int_equal(pfx_stripe(&fx, "[]", result, sizeof(result)), 400);
    assert_int_equal(pfx_stripe(&fx,
                                "{\"id\":\"evt_x\",\"type\":\"checkout.session.completed\","
                                "\"data\":{\"object\":{\"payment_status\":\"paid\"}}}",
                                result, sizeof(result)),
                     400);
    /* Too large: 413 before any handler. */
    size_t n = 9000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_int_equal(pfx_stripe(&fx, big, result, sizeof(result)), 413);
    free(big);
    /* Events the bot does not act on are acknowledged. */
    assert_int_equal(
        pfx_stripe(&fx, "{\"id\":\"evt_y\",\"type\":\"customer.created\",\"data\":{\"object\":{}}}",
                   result, sizeof(result)),
        200);
    assert_string_equal(result, "{\"result\":\"ignored\"}\n");
    /* Nothing was credited by any of it. */
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_balance_get(fx.lt.ledger, "discord:7", lt_cb, &res), 0);
    lt_wait(&fx.lt, &res);
    assert_int_equal(res.rc, HB_ENOTFOUND);
    pfx_close(&fx);
}

static void got_state(int rc, const char *value, void *data)
{
    char *out = data;
    snprintf(out, 512, "%d %s", rc, value != NULL ? value : "-");
}

struct unmatched_audit {
    bool done;
    size_t n;
    char actor[STORE_ID_SIZE];
    char subject[STORE_ID_SIZE];
    char detail[STORE_AUDIT_DETAIL_SIZE];
};

/* The newest entry of a listing, and how many there were. */
static void unmatched_audit_cb(int rc, const struct store_audit *e, size_t n, void *data)
{
    struct unmatched_audit *ua = data;
    ua->n = rc == 0 ? n : 0;
    if (ua->n > 0) {
        snprintf(ua->actor, sizeof(ua->actor), "%s", e[0].actor);
        snprintf(ua->subject, sizeof(ua->subject), "%s", e[0].subject);
        snprintf(ua->detail, sizeof(ua->detail), "%s", e[0].detail);
    }
    ua->done = true;
}

static void test_stripe_unmatched_is_recorded(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char result[256];
    /* A price no package has. */
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:5"), 0);
    stripe_checkout(body, sizeof(body), "evt_3A", ref, 777, "pi_7");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"unmatched\"}\n");
    /* A reference made with another key. */
    assert_int_equal(payref_reference_make(ref, sizeof(ref), "not-the-key", 11, "discord:5"), 0);
    stripe_checkout(body, sizeof(body), "evt_3B", ref, 500, "pi_8");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    char got[512] = "";
    assert_int_equal(state_get(ledger_store(fx.lt.ledger), "payments.unmatched", "stripe:evt_3A",
                               got_state, got),
                     0);
    while (got[0] == '\0')
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_non_null(strstr(got, "amount=777"));
    assert_non_null(strstr(got, "reason=no_package"));
    assert_non_null(strstr(got, "credits=0")); /* no package has its price */
    got[0] = '\0';
    assert_int_equal(state_get(ledger_store(fx.lt.ledger), "payments.unmatched", "stripe:evt_3B",
                               got_state, got),
                     0);
    while (got[0] == '\0')
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_non_null(strstr(got, "reason=reference_forged"));
    /* Both are in the audit trail, found by the daemon itself. */
    struct unmatched_audit ua = {0};
    assert_int_equal(audit_list(ledger_store(fx.lt.ledger), "payment.unmatched", 0, 0, 4,
                                unmatched_audit_cb, &ua),
                     0);
    while (!ua.done)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(ua.n, 2);
    assert_string_equal(ua.actor, "system");
    assert_string_equal(ua.subject, "stripe:evt_3B");
    assert_non_null(strstr(ua.detail, "\"reason\":\"reference_forged\""));
    pfx_close(&fx);
}

static void test_stripe_refund_and_dispute(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char result[256];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "telegram:8"), 0);
    stripe_checkout(body, sizeof(body), "evt_4A", ref, 1000, "pi_r");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_int_equal(balance_of(&fx, "telegram:8"), 2300);
    /* Half refunded (amount_refunded is the running total). */
    const char *refund1 =
        "{\"id\":\"evt_4B\",\"type\":\"charge.refunded\",\"data\":{\"object\":{\"id\":\"ch_1\","
        "\"object\":\"charge\",\"amount\":1000,\"amount_refunded\":500,\"currency\":\"usd\","
        "\"payment_intent\":\"pi_r\",\"refunded\":false}}}";
    assert_int_equal(pfx_stripe(&fx, refund1, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "telegram:8"), 2300 - 1100);
    assert_int_equal(pfx_stripe(&fx, refund1, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "telegram:8"), 1200);
    /* Spend some, then a dispute takes back the rest: the spent part
     * becomes debt. */
    struct lt_res res;
    lt_plain(&fx.lt, "spend-1", "telegram:8", LEDGER_SYSTEM_REVENUE, 1000, LEDGER_KIND_GENERATION,
             &res);
    assert_int_equal(res.rc, 0);
    const char *dispute =
        "{\"id\":\"evt_4C\",\"type\":\"charge.dispute.created\",\"data\":{\"object\":{\"id\":\"dp_"
        "1\","
        "\"object\":\"dispute\",\"amount\":1000,\"currency\":\"usd\",\"payment_intent\":\"pi_r\","
        "\"status\":\"needs_response\"}}}";
    assert_int_equal(pfx_stripe(&fx, dispute, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "telegram:8"), 0);
    assert_int_equal(balance_of(&fx, "debt:telegram:8"), -900);
    /* The full refund after it has nothing left to reverse. */
    assert_int_equal(pfx_refund(&fx, "evt_4D", "ch_1", 1000, "pi_r", result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"nothing_to_reverse\"}\n");
    /* A refund of a payment the bot never credited is recorded. */
    assert_int_equal(pfx_refund(&fx, "evt_4E", "ch_2", 100, "pi_unknown", result, sizeof(result)),
                     200);
    assert_string_equal(result, "{\"result\":\"unmatched\"}\n");
    pfx_close(&fx);
}

static int pfx_checkout(struct pfx *fx, const char *evt, const char *account, long amount);

/* Stripe documents delayed methods: checkout.session.completed, then
 * checkout.session.async_payment_succeeded for the same session. One
 * payment: credited once, and a full refund takes back all of it. */
static void test_stripe_one_session_two_events(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char result[256];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:61"), 0);
    stripe_session(body, sizeof(body), "evt_6A", "checkout.session.completed", "cs_six", ref, 500,
                   "pi_six", "paid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100 + 1000);
    stripe_session(body, sizeof(body), "evt_6B", "checkout.session.async_payment_succeeded",
                   "cs_six", ref, 500, "pi_six", "paid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100 + 1000);
    assert_int_equal(fx.notifier.calls, 1); /* told once */
    /* The full refund reverses the one credit: only the bonus is left. */
    const char *refund =
        "{\"id\":\"evt_6C\",\"type\":\"charge.refunded\",\"data\":{\"object\":{\"id\":\"ch_6\","
        "\"amount_refunded\":500,\"currency\":\"usd\",\"payment_intent\":\"pi_six\"}}}";
    assert_int_equal(pfx_stripe(&fx, refund, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100);
    /* The same refund under another event id, and a dispute after it:
     * nothing more is taken. */
    assert_int_equal(pfx_refund(&fx, "evt_6D", "ch_6", 500, "pi_six", result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    const char *dispute =
        "{\"id\":\"evt_6E\",\"type\":\"charge.dispute.created\",\"data\":{\"object\":{"
        "\"id\":\"dp_6\",\"amount\":500,\"currency\":\"usd\",\"payment_intent\":\"pi_six\"}}}";
    assert_int_equal(pfx_stripe(&fx, dispute, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"nothing_to_reverse\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100);

    /* A delayed method: completed while unpaid credits nothing; the async
     * success credits; completed redelivered after, paid, does not. */
    stripe_session(body, sizeof(body), "evt_6F", "checkout.session.completed", "cs_late", ref, 1000,
                   "pi_late", "unpaid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"ignored\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100);
    stripe_session(body, sizeof(body), "evt_6G", "checkout.session.async_payment_succeeded",
                   "cs_late", ref, 1000, "pi_late", "paid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100 + 2200);
    stripe_session(body, sizeof(body), "evt_6H", "checkout.session.completed", "cs_late", ref, 1000,
                   "pi_late", "paid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:61"), 100 + 2200);
    pfx_close(&fx);
}

static void state_put_done(int rc, const char *value, void *data)
{
    (void)value;
    *(int *)data = rc == 0 ? 1 : -1;
}

/* A ledger written before credits were named by the payment: the credit
 * is "stripe:<event id>" and the link record names it. The same payment
 * reported again under a new event after the upgrade is recognised by its
 * link and not credited a second time; its refund reverses the old
 * credit. */
static void test_stripe_credit_from_an_older_ledger(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    struct lt_res res;
    assert_int_equal(lt_open(&fx.lt, "discord:71", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(&fx.lt, "stripe:evt_old", LEDGER_SYSTEM_DEPOSITS, "discord:71", 2200,
                              LEDGER_KIND_DEPOSIT, &res),
                     0);
    int done = 0;
    assert_int_equal(state_put(ledger_store(fx.lt.ledger), "payments", "stripe:pi_old",
                               "stripe:evt_old discord:71 2200 1000 0", state_put_done, &done),
                     0);
    while (done == 0)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char result[256];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:71"), 0);
    stripe_session(body, sizeof(body), "evt_new", "checkout.session.async_payment_succeeded",
                   "cs_old", ref, 1000, "pi_old", "paid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:71"), 2200);
    const char *refund =
        "{\"id\":\"evt_oldR\",\"type\":\"charge.refunded\",\"data\":{\"object\":{\"id\":"
        "\"ch_o\",\"amount_refunded\":1000,\"currency\":\"usd\",\"payment_intent\":\"pi_old\"}}}";
    assert_int_equal(pfx_stripe(&fx, refund, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "discord:71"), 0);

    /* A credit committed without its link (a stop between the two): the
     * next report finds the credit, writes the link, and a refund finds
     * the payment. */
    struct ledger_transfer cut = {.id = "stripe:cs_cut",
                                  .debit = LEDGER_SYSTEM_DEPOSITS,
                                  .credit = "discord:71",
                                  .amount = 1000,
                                  .kind = LEDGER_KIND_DEPOSIT,
                                  .ref = "stripe pi_cut"};
    assert_int_equal(lt_transfer(&fx.lt, &cut, &res), 0);
    stripe_session(body, sizeof(body), "evt_cut", "checkout.session.completed", "cs_cut", ref, 500,
                   "pi_cut", "paid");
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:71"), 1000);
    assert_int_equal(pfx_refund(&fx, "evt_cutR", "ch_c", 500, "pi_cut", result, sizeof(result)),
                     200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "discord:71"), 0);
    pfx_close(&fx);
}

/* Credits spent before a refund are owed; the next deposit repays them
 * first, once, however often it is reported. */
static void test_debt_repaid_from_next_deposit(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char result[256];
    assert_int_equal(pfx_checkout(&fx, "evt_d1", "discord:81", 500), 200);
    assert_int_equal(balance_of(&fx, "discord:81"), 1100);
    struct lt_res res;
    assert_int_equal(lt_plain(&fx.lt, "spend-d", "discord:81", LEDGER_SYSTEM_REVENUE, 900,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(pfx_refund(&fx, "evt_dR", "ch_d", 500, "pi_evt_d1", result, sizeof(result)),
                     200);
    assert_int_equal(balance_of(&fx, "discord:81"), 0);
    assert_int_equal(balance_of(&fx, "debt:discord:81"), -800);
    /* 500 buys 1,000: 800 repay the debt, 200 are left to spend. */
    assert_int_equal(pfx_checkout(&fx, "evt_d2", "discord:81", 500), 200);
    assert_int_equal(balance_of(&fx, "discord:81"), 200);
    assert_int_equal(balance_of(&fx, "debt:discord:81"), 0);
    assert_non_null(strstr(fx.notifier.text, "200 credits available"));
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        ledger_transfer_get(fx.lt.ledger, "stripe:cs_test_pi_evt_d2:repay", lt_cb, &res), 0);
    lt_wait(&fx.lt, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.r.transfer.amount, 800);
    assert_string_equal(res.r.transfer.credit, "debt:discord:81");
    /* Redelivered: nothing moves twice. */
    assert_int_equal(pfx_checkout(&fx, "evt_d2", "discord:81", 500), 200);
    assert_int_equal(balance_of(&fx, "discord:81"), 200);
    assert_int_equal(balance_of(&fx, "debt:discord:81"), 0);
    /* A debt larger than a deposit takes all of it, and the next one
     * repays the rest. */
    assert_int_equal(pfx_checkout(&fx, "evt_d3", "discord:81", 1000), 200); /* 2,200 more */
    assert_int_equal(lt_plain(&fx.lt, "spend-d2", "discord:81", LEDGER_SYSTEM_REVENUE, 2400,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(pfx_refund(&fx, "evt_dR3", "ch_d3", 1000, "pi_evt_d3", result, sizeof(result)),
                     200);
    assert_int_equal(balance_of(&fx, "debt:discord:81"), -2200);
    assert_int_equal(pfx_checkout(&fx, "evt_d4", "discord:81", 500), 200);
    assert_int_equal(balance_of(&fx, "discord:81"), 0);
    assert_int_equal(balance_of(&fx, "debt:discord:81"), -1200);
    assert_int_equal(pfx_checkout(&fx, "evt_d5", "discord:81", 1000), 200);
    assert_int_equal(balance_of(&fx, "discord:81"), 1000);
    assert_int_equal(balance_of(&fx, "debt:discord:81"), 0);
    char *report = NULL;
    assert_int_equal(lt_verify(fx.lt.path, &report), 0);
    free(report);
    pfx_close(&fx);
}

/* A deposit reported again after a debt came about later (the provider
 * retrying, a restart delivering it anew) repays none of it: that debt is
 * the next deposit's to repay, under that deposit's name. */
static void test_replay_leaves_later_debt_to_the_next_deposit(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char result[256];
    assert_int_equal(pfx_checkout(&fx, "evt_m1", "discord:83", 500), 200);
    assert_int_equal(pfx_checkout(&fx, "evt_m2", "discord:83", 1000), 200); /* 1100 + 2200 */
    struct lt_res res;
    assert_int_equal(lt_plain(&fx.lt, "spend-m", "discord:83", LEDGER_SYSTEM_REVENUE, 2800,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(pfx_refund(&fx, "evt_mR", "ch_m", 1000, "pi_evt_m2", result, sizeof(result)),
                     200);
    assert_int_equal(balance_of(&fx, "discord:83"), 0);
    assert_int_equal(balance_of(&fx, "debt:discord:83"), -1700);
    /* Credits that are no deposit (a gift from another member)... */
    assert_int_equal(pfx_checkout(&fx, "evt_m9", "discord:84", 500), 200);
    assert_int_equal(
        lt_plain(&fx.lt, "gift-m", "discord:84", "discord:83", 600, LEDGER_KIND_TRANSFER, &res), 0);
    /* ...and the first deposit, reported again: no repayment in its name,
     * the gift stays to spend. */
    assert_int_equal(pfx_checkout(&fx, "evt_m1", "discord:83", 500), 200);
    assert_int_equal(balance_of(&fx, "debt:discord:83"), -1700);
    assert_int_equal(balance_of(&fx, "discord:83"), 600);
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        ledger_transfer_get(fx.lt.ledger, "stripe:cs_test_pi_evt_m1:repay", lt_cb, &res), 0);
    lt_wait(&fx.lt, &res);
    assert_int_equal(res.rc, HB_ENOTFOUND);
    /* The next deposit repays what it can. */
    assert_int_equal(pfx_checkout(&fx, "evt_m3", "discord:83", 500), 200);
    assert_int_equal(balance_of(&fx, "debt:discord:83"), -700);
    assert_int_equal(balance_of(&fx, "discord:83"), 600);
    pfx_close(&fx);
}

/* A stop after a deposit's credit (and its note) but before the debt's
 * repayment: the provider's next report of the payment finds the credit
 * and repays the debt then, once, rather than answering "duplicate" and
 * leaving the debt for ever. */
static void test_repayment_after_a_stop_between_credit_and_repayment(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char result[256];
    assert_int_equal(pfx_checkout(&fx, "evt_k1", "discord:91", 500), 200);
    struct lt_res res;
    assert_int_equal(lt_plain(&fx.lt, "spend-k", "discord:91", LEDGER_SYSTEM_REVENUE, 900,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(pfx_refund(&fx, "evt_kR", "ch_k", 500, "pi_evt_k1", result, sizeof(result)),
                     200);
    assert_int_equal(balance_of(&fx, "debt:discord:91"), -800);
    /* What the stop left: the note, the credit and the marker that commits
     * with it (its repayment still to be looked at), no repayment. */
    int done = 0;
    assert_int_equal(state_put(ledger_store(fx.lt.ledger), "payments", "stripe:pi_evt_k2",
                               "stripe:cs_test_pi_evt_k2 discord:91 1000 500 0", state_put_done,
                               &done),
                     0);
    int marked = 0;
    assert_int_equal(state_put(ledger_store(fx.lt.ledger), "deposit.repay",
                               "stripe:cs_test_pi_evt_k2", "1", state_put_done, &marked),
                     0);
    while (done == 0 || marked == 0)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(done + marked, 2);
    struct ledger_transfer cut = {.id = "stripe:cs_test_pi_evt_k2",
                                  .debit = LEDGER_SYSTEM_DEPOSITS,
                                  .credit = "discord:91",
                                  .amount = 1000,
                                  .kind = LEDGER_KIND_DEPOSIT,
                                  .ref = "stripe pi_evt_k2"};
    assert_int_equal(lt_transfer(&fx.lt, &cut, &res), 0);
    assert_int_equal(balance_of(&fx, "debt:discord:91"), -800);
    /* Reported again: the repayment happens now, and only now. */
    assert_int_equal(pfx_checkout(&fx, "evt_k2", "discord:91", 500), 200);
    assert_int_equal(balance_of(&fx, "debt:discord:91"), 0);
    assert_int_equal(balance_of(&fx, "discord:91"), 200);
    assert_int_equal(pfx_checkout(&fx, "evt_k2", "discord:91", 500), 200);
    assert_int_equal(balance_of(&fx, "discord:91"), 200);
    pfx_close(&fx);
}

/* A transaction.completed notification in Paddle's documented shape. */
static void paddle_completed(char *out, size_t cap, const char *evt, const char *txn,
                             const char *ref, const char *total)
{
    snprintf(out, cap,
             "{\"event_id\":\"%s\",\"event_type\":\"transaction.completed\","
             "\"occurred_at\":\"2024-04-12T10:18:49.621022Z\",\"notification_id\":\"ntf_01\","
             "\"data\":{\"id\":\"%s\",\"status\":\"completed\",\"currency_code\":\"USD\","
             "\"custom_data\":{\"reference\":\"%s\"},\"details\":{\"totals\":{\"subtotal\":\"%s\","
             "\"tax\":\"0\",\"total\":\"%s\",\"grand_total\":\"%s\"}}}}",
             evt, txn, ref, total, total, total);
}

static void test_paddle_webhook(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char sig[256];
    char result[256];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:77"), 0);
    paddle_completed(body, sizeof(body), "evt_01hv", "txn_01hv", ref, "500");
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    assert_int_equal(balance_of(&fx, "discord:77"), 1100);
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:77"), 1100);
    /* Forged, stale, Stripe's scheme on Paddle's route. */
    assert_int_equal(
        paddle_signature_make(sig, sizeof(sig), "pdl_wrong", body, strlen(body), time(NULL)), 0);
    assert_int_equal(pfx_post(&fx, "paddle", body, strlen(body), sig, result, sizeof(result)), 401);
    assert_int_equal(paddle_signature_make(sig, sizeof(sig), PADDLE_SECRET, body, strlen(body),
                                           time(NULL) - 1000),
                     0);
    assert_int_equal(pfx_post(&fx, "paddle", body, strlen(body), sig, result, sizeof(result)), 401);
    assert_int_equal(
        stripe_signature_make(sig, sizeof(sig), PADDLE_SECRET, body, strlen(body), time(NULL)), 0);
    assert_int_equal(pfx_post(&fx, "paddle", body, strlen(body), sig, result, sizeof(result)), 401);
    assert_int_equal(pfx_paddle(&fx, "not json", result, sizeof(result)), 400);
    /* A refund adjustment, approved: reversed once, even when both
     * adjustment.created and adjustment.updated say so. */
    const char *adj =
        "{\"event_id\":\"evt_02a\",\"event_type\":\"adjustment.updated\",\"data\":{\"id\":\"adj_"
        "01\","
        "\"action\":\"refund\",\"status\":\"approved\",\"transaction_id\":\"txn_01hv\","
        "\"currency_code\":\"USD\",\"totals\":{\"subtotal\":\"500\",\"tax\":\"0\",\"total\":"
        "\"500\"}}}";
    assert_int_equal(pfx_paddle(&fx, adj, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "discord:77"), 100);
    const char *adj2 =
        "{\"event_id\":\"evt_02b\",\"event_type\":\"adjustment.created\",\"data\":{\"id\":\"adj_"
        "01\","
        "\"action\":\"refund\",\"status\":\"approved\",\"transaction_id\":\"txn_01hv\","
        "\"totals\":{\"total\":\"500\"}}}";
    assert_int_equal(pfx_paddle(&fx, adj2, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:77"), 100);
    pfx_close(&fx);
}

/* A transaction.completed with tax and discount in its totals. */
static void paddle_taxed(char *out, size_t cap, const char *evt, const char *txn, const char *ref,
                         const char *subtotal, const char *discount, const char *tax,
                         const char *total, const char *grand_total)
{
    snprintf(out, cap,
             "{\"event_id\":\"%s\",\"event_type\":\"transaction.completed\",\"data\":{\"id\":"
             "\"%s\",\"status\":\"completed\",\"currency_code\":\"USD\",\"custom_data\":{"
             "\"reference\":\"%s\"},\"details\":{\"totals\":{\"subtotal\":\"%s\",\"discount\":"
             "\"%s\",\"tax\":\"%s\",\"total\":\"%s\",\"credit\":\"0\",\"balance\":\"0\","
             "\"grand_total\":\"%s\"}}}}",
             evt, txn, ref, subtotal, discount, tax, total, grand_total);
}

/* A buyer who pays tax: 5.00 + 1.00 tax is the 5.00 package (the
 * default, match_on = subtotal); a discount is not a package's price; a
 * refund is proportional to the total paid. */
static void test_paddle_tax_matches_subtotal(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char result[256];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:91"), 0);
    paddle_taxed(body, sizeof(body), "evt_t1", "txn_tax", ref, "500", "0", "100", "600", "600");
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    assert_int_equal(balance_of(&fx, "discord:91"), 100 + 1000);
    /* transaction.completed again under another event: the transaction
     * was credited. */
    paddle_taxed(body, sizeof(body), "evt_t1b", "txn_tax", ref, "500", "0", "100", "600", "600");
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"duplicate\"}\n");
    assert_int_equal(balance_of(&fx, "discord:91"), 1100);
    /* 10.00 less 5.00 discount, plus tax: 5.00 before tax is not the
     * 10.00 package. */
    paddle_taxed(body, sizeof(body), "evt_t2", "txn_disc", ref, "1000", "500", "100", "600", "600");
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    assert_int_equal(balance_of(&fx, "discord:91"), 1100 + 1000);
    /* Half of the 6.00 paid returned: half of the credit. */
    const char *adj =
        "{\"event_id\":\"evt_t3\",\"event_type\":\"adjustment.created\",\"data\":{\"id\":"
        "\"adj_t\",\"action\":\"refund\",\"status\":\"approved\",\"transaction_id\":"
        "\"txn_tax\",\"currency_code\":\"USD\",\"totals\":{\"subtotal\":\"250\",\"tax\":\"50\","
        "\"total\":\"300\"}}}";
    assert_int_equal(pfx_paddle(&fx, adj, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"reversed\"}\n");
    assert_int_equal(balance_of(&fx, "discord:91"), 2100 - 500);
    pfx_close(&fx);

    /* match_on = total: the tax-inclusive 6.00 matches no package. */
    pfx_open_with(&fx, PAYMENTS_MATCH_TOTAL);
    paddle_taxed(body, sizeof(body), "evt_t4", "txn_tax2", ref, "500", "0", "100", "600", "600");
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"unmatched\"}\n");
    paddle_taxed(body, sizeof(body), "evt_t5", "txn_tax3", ref, "400", "0", "100", "500", "500");
    assert_int_equal(pfx_paddle(&fx, body, result, sizeof(result)), 200);
    assert_string_equal(result, "{\"result\":\"credited\"}\n");
    pfx_close(&fx);
}

/* Storage gone (the daemon stopping): 503, so the provider retries. */
static void test_webhook_without_storage(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    char ref[PAYREF_REFERENCE_MAX + 1];
    char body[2048];
    char result[256];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), "discord:1"), 0);
    stripe_checkout(body, sizeof(body), "evt_5A", ref, 500, "pi_5");
    lt_ledger_close(&fx.lt);
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 503);
    lt_ledger_open(&fx.lt);
    assert_int_equal(pfx_stripe(&fx, body, result, sizeof(result)), 200);
    assert_int_equal(balance_of(&fx, "discord:1"), 1100);
    pfx_close(&fx);
}

/* A signed checkout for account (its reference made here), posted; returns
 * the HTTP status. */
static int pfx_checkout(struct pfx *fx, const char *evt, const char *account, long amount)
{
    char ref[PAYREF_REFERENCE_MAX + 1], pi[64], body[2048];
    assert_int_equal(payref_reference_make(ref, sizeof(ref), KEY, strlen(KEY), account), 0);
    snprintf(pi, sizeof(pi), "pi_%s", evt);
    stripe_checkout(body, sizeof(body), evt, ref, amount, pi);
    return pfx_stripe(fx, body, NULL, 0);
}

static void test_stripe_credit_notifies_member(void **state)
{
    (void)state;
    struct pfx fx;
    pfx_open(&fx);
    /* A new wallet: the welcome bonus and the package, 2,300 in all. The
     * 200 comes after the notice, so it has been handed over by now. */
    assert_int_equal(pfx_checkout(&fx, "evt_n1", "telegram:42", 1000), 200);
    assert_int_equal(fx.notifier.calls, 1);
    assert_int_equal(fx.notifier.to.platform, COMMAND_PLATFORM_TELEGRAM);
    assert_int_equal(fx.notifier.to.scope, COMMAND_SCOPE_DM);
    assert_string_equal(fx.notifier.to.user_id, "42");
    assert_string_equal(fx.notifier.to.channel_id, "");
    assert_non_null(strstr(fx.notifier.text, "2,200 credits"));
    assert_non_null(strstr(fx.notifier.text, "Your wallet now has 2,300 credits available"));

    /* Stripe redelivers: credited once, told once. */
    assert_int_equal(pfx_checkout(&fx, "evt_n1", "telegram:42", 1000), 200);
    assert_int_equal(fx.notifier.calls, 1);

    /* A pool on Telegram: the group is told in its chat. */
    assert_int_equal(pfx_checkout(&fx, "evt_n2", "pool:telegram:-100", 500), 200);
    assert_int_equal(fx.notifier.calls, 2);
    assert_int_equal(fx.notifier.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(fx.notifier.to.channel_id, "-100");
    assert_non_null(strstr(fx.notifier.text, "This group's pool now has 1,000 credits available"));

    /* A Discord server's pool, paid from the link /deposit gave in channel
     * 777: the pool is credited and the server told in that channel. */
    assert_int_equal(pfx_checkout(&fx, "evt_n4", "pool:discord:9#777", 500), 200);
    assert_int_equal(fx.notifier.calls, 3);
    assert_int_equal(fx.notifier.to.platform, COMMAND_PLATFORM_DISCORD);
    assert_int_equal(fx.notifier.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(fx.notifier.to.scope_id, "9");
    assert_string_equal(fx.notifier.to.channel_id, "777");
    assert_int_equal(lt_balance(&fx.lt, "pool:discord:9").posted, 1000); /* 500 buys 1,000 */

    /* No adapter for the platform: the credit stands, the answer is 200. */
    fx.notifier.rc = HB_ENOTFOUND;
    assert_int_equal(pfx_checkout(&fx, "evt_n3", "discord:7", 500), 200);
    assert_int_equal(fx.notifier.calls, 4);
    assert_int_equal(lt_balance(&fx.lt, "discord:7").posted, 100 + 1000);
    pfx_close(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stripe_webhook_credits_once),
    cmocka_unit_test(test_stripe_webhook_refusals),
    cmocka_unit_test(test_stripe_unmatched_is_recorded),
    cmocka_unit_test(test_stripe_refund_and_dispute),
    cmocka_unit_test(test_paddle_webhook),
    cmocka_unit_test(test_webhook_without_storage),
    cmocka_unit_test(test_stripe_one_session_two_events),
    cmocka_unit_test(test_stripe_credit_from_an_older_ledger),
    cmocka_unit_test(test_debt_repaid_from_next_deposit),
    cmocka_unit_test(test_repayment_after_a_stop_between_credit_and_repayment),
    cmocka_unit_test(test_replay_leaves_later_debt_to_the_next_deposit),
    cmocka_unit_test(test_paddle_tax_matches_subtotal),
};

TEST_GROUP_DEFINE(payments, tests, lt_group_setup, lt_group_teardown)

static const struct CMUnitTest notify_tests[] = {
    cmocka_unit_test(test_stripe_credit_notifies_member),
};

TEST_GROUP_DEFINE(payments_notify, notify_tests, lt_group_setup, lt_group_teardown)
