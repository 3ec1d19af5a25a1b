#include "bot/payments.h"

#include "adapters/paddle/paddle.h"
#include "adapters/stripe/stripe.h"
#include "net/server.h"
#include "base/error.h"
#include "core/audit.h"
#include "core/deposit.h"
#include "core/ledger.h"
#include "base/log.h"
#include "base/text.h"
#include "base/metrics.h"
#include "core/notify.h"
#include "core/payment.h"
#include "core/payref.h"
#include "core/state.h"
#include "core/webhook_sig.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAYMENTS_NS DEPOSIT_NS_PAYMENT_LINKS       /* provider:payment -> the credit */
#define PAYMENTS_NS_UNMATCHED DEPOSIT_NS_UNMATCHED /* for the operator */

enum payments_provider { PAY_STRIPE = 0, PAY_PADDLE = 1, PAY_PROVIDERS = 2 };

/* A card provider: its route, its signature scheme, its event reader. */
struct pay_provider {
    const char *route;
    const struct webhook_sig_scheme *scheme; /* the header, its name, its default tolerance */
    int (*parse)(const char *body, size_t len, struct payment_event *out);
};

static const struct pay_provider pay_providers[PAY_PROVIDERS] = {
    [PAY_STRIPE] = {"/webhooks/stripe", &stripe_sig_scheme, stripe_event_parse},
    [PAY_PADDLE] = {"/webhooks/paddle", &paddle_sig_scheme, paddle_event_parse},
};

static const char *payments_provider_name(enum payments_provider provider)
{
    return pay_providers[provider].scheme->name;
}

struct payments {
    struct ledger **ledger;
    char *key;
    char currency[8];
    struct deposit_package packages[PAYMENTS_PACKAGES_MAX];
    size_t npackages;
    int64_t welcome_bonus;
    char *secrets[PAY_PROVIDERS];
    int64_t tolerance[PAY_PROVIDERS];
    enum payments_match match_on[PAY_PROVIDERS]; /* which amount picks the package */
    size_t pending;
    int (*notify)(void *data, const struct notify_target *to, const char *text); /* may be NULL */
    void *notify_data;
};

/* One webhook on its way through the ledger. */
struct pay_job {
    struct payments *p;
    struct server_request *req;
    enum payments_provider provider;
    struct payment_event ev;
    char transfer_id[LEDGER_ID_LEN_MAX + 1]; /* "<provider>:<payment object>" */
    char link_key[160];                      /* "<provider>:<payment id>" */
    char account[PAYREF_ACCOUNT_MAX + 1];
    char channel[COMMAND_ID_MAX];         /* where the deposit was started, or "" */
    char original[LEDGER_ID_LEN_MAX + 1]; /* refunds: the credit reversed */
    int64_t credits;                      /* credits moved by this event */
    int64_t paid_amount;                  /* refunds: what the credit cost */
    int64_t paid_credits;                 /* refunds: what the credit bought */
    int64_t reversed;                     /* refunds: credits reversed before, by the ledger */
    const char *outcome;                  /* for the metric and the answer */
};

/* ---- packages ---------------------------------------------------------------- */

int payments_packages_parse(const char *text, struct deposit_package *out, size_t max)
{
    struct text_pair pairs[64];
    int n = text_pairs_parse(text, pairs, max < 64 ? max : 64);
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        long long price = strtoll(pairs[i].key, &end, 10);
        if (*end != '\0' || price <= 0 || pairs[i].value > 1000000000000LL)
            return HB_EINVAL;
        for (int k = 0; k < i; k++) {
            if (out[k].price == price)
                return HB_EINVAL; /* two packages at one price: ambiguous */
        }
        out[i].price = price;
        out[i].credits = pairs[i].value;
    }
    return n < 0 ? HB_EINVAL : n;
}

/* ---- answering ---------------------------------------------------------------- */

static void pay__count(enum payments_provider provider, const char *outcome)
{
    const char *labels[] = {payments_provider_name(provider), outcome};
    metrics_counter_add(metrics_std()->webhooks, labels, 1);
}

static void pay__answer(struct payments *p, struct server_request *req,
                        enum payments_provider provider, int status, const char *outcome)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"result\":\"%s\"}\n", outcome);
    pay__count(provider, outcome);
    server_respond(req, status, "application/json", body, (size_t)n, NULL);
    (void)p;
}

static void pay__finish(struct pay_job *job, int status, const char *outcome)
{
    struct payments *p = job->p;
    p->pending--;
    pay__answer(p, job->req, job->provider, status, outcome);
    free(job);
}

static void pay__fail(struct pay_job *job, const char *step, int rc)
{
    log_error("payment.failed", "provider=%s event=%s step=%s error=%s note=%s",
              payments_provider_name(job->provider), job->ev.event_id, step, hb_strerror(rc),
              "answered 500; the provider retries");
    pay__finish(job, 500, "error");
}

static struct store *pay__store(struct pay_job *job)
{
    struct ledger *l = *job->p->ledger;
    return l != NULL ? ledger_store(l) : NULL;
}

/* The credits the payment's price buys, or 0 when no package has it. Tax
 * is the state's, not the bot's: a package is its pre-tax price unless the
 * operator matches on the total. */
static int64_t pay__package_credits(const struct pay_job *job)
{
    const struct payments *p = job->p;
    int64_t price = p->match_on[job->provider] == PAYMENTS_MATCH_SUBTOTAL && job->ev.subtotal >= 0
                        ? job->ev.subtotal
                        : job->ev.amount;
    int64_t credits = 0;
    for (size_t i = 0; i < p->npackages; i++) {
        if (p->packages[i].price == price)
            credits = p->packages[i].credits;
    }
    return credits;
}

/* ---- the operator's notes ---------------------------------------------------------- */

static void pay__unmatched_stored(int rc, const char *value, void *data)
{
    struct pay_job *job = data;
    (void)value;
    if (rc < 0) {
        pay__fail(job, "record unmatched", rc);
        return;
    }
    pay__finish(job, 200, job->outcome);
}

/* Keep what a payment we cannot book said, for the operator; answer 200
 * once it is durable (a retry would not help). */
static void pay__unmatched(struct pay_job *job, const char *why)
{
    char key[200];
    char value[512];
    snprintf(key, sizeof(key), "%s:%s", payments_provider_name(job->provider), job->ev.event_id);
    /* What the price would buy, so that /admin payments assign needs no
     * figure from the admin. */
    int64_t credits = strcmp(why, "currency") != 0 ? pay__package_credits(job) : 0;
    snprintf(value, sizeof(value),
             "type=%s payment=%s amount=%" PRId64 " currency=%s reason=%s credits=%" PRId64,
             job->ev.type, job->ev.payment_id, job->ev.amount, job->ev.currency, why, credits);
    log_warn("payment.unmatched", "provider=%s event=%s payment=%s amount=%" PRId64 " reason=%s",
             payments_provider_name(job->provider), job->ev.event_id, job->ev.payment_id,
             job->ev.amount, why);
    job->outcome = "unmatched";
    struct store *st = pay__store(job);
    if (st != NULL) {
        /* In the audit trail too, without what a sender typed. */
        cJSON *detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "reason", why);
        cJSON_AddStringToObject(detail, "payment", job->ev.payment_id);
        cJSON_AddNumberToObject(detail, "amount", (double)job->ev.amount);
        cJSON_AddStringToObject(detail, "currency", job->ev.currency);
        audit_note(st, AUDIT_ACTOR_SYSTEM, "payment.unmatched", key, detail);
    }
    int rc = st != NULL
                 ? state_put(st, PAYMENTS_NS_UNMATCHED, key, value, pay__unmatched_stored, job)
                 : HB_ECANCELED;
    if (rc < 0)
        pay__fail(job, "record unmatched", rc);
}

/* ---- credits ---------------------------------------------------------------------- */

/* Booked (core/deposit.h), and the member told. */
static void pay__credited(int rc, const struct deposit_result *r, void *data)
{
    struct pay_job *job = data;
    if (rc < 0) {
        pay__fail(job, r->step, rc);
        return;
    }
    if (!r->existed) {
        log_info("payment.credited", "provider=%s event=%s account=%s credits=%" PRId64,
                 payments_provider_name(job->provider), job->ev.event_id, job->account,
                 job->credits);
    }
    pay__finish(job, 200, r->existed ? "duplicate" : "credited");
}

/* The payment's note is durable: now its credit. */
static void pay__credit_linked(int rc, const char *value, void *data)
{
    struct pay_job *job = data;
    (void)value;
    if (rc < 0) {
        pay__fail(job, "link payment", rc);
        return;
    }
    struct payments *p = job->p;
    char ref[200];
    snprintf(ref, sizeof(ref), "%s %s", payments_provider_name(job->provider), job->ev.payment_id);
    struct deposit_credit c = {.id = job->transfer_id,
                               .account = job->account,
                               .channel = job->channel,
                               .credits = job->credits,
                               .welcome_bonus = p->welcome_bonus,
                               .ref = ref,
                               .method = payments_provider_name(job->provider),
                               .via = "card",
                               .notify = p->notify,
                               .notify_data = p->notify_data};
    rc = deposit_credit(*p->ledger, &c, pay__credited, job);
    if (rc < 0)
        pay__fail(job, "open account", rc);
}

static void pay__credit(struct pay_job *job)
{
    struct payments *p = job->p;
    int rc = payref_reference_check(job->ev.reference, p->key, strlen(p->key), job->account,
                                    sizeof(job->account));
    if (rc < 0) {
        pay__unmatched(job, rc == HB_EPERM ? "reference_forged" : "no_reference");
        return;
    }
    notify_account_split(job->account, job->channel, sizeof(job->channel));
    if (p->currency[0] != '\0' && job->ev.currency[0] != '\0' &&
        strcmp(p->currency, job->ev.currency) != 0) {
        pay__unmatched(job, "currency");
        return;
    }
    job->credits = pay__package_credits(job);
    if (job->credits == 0) {
        pay__unmatched(job, "no_package");
        return;
    }
    /* The note first, then the credit: a refund that finds the note before
     * the credit is answered 500 and comes back, where a credit without
     * its note (a stop between the two) would leave that refund unmatched
     * for ever. A note without its credit is credited by the next report. */
    char value[400];
    snprintf(value, sizeof(value), "%s %s %" PRId64 " %" PRId64 " 0", job->transfer_id,
             job->account, job->credits, job->ev.amount);
    struct store *st = pay__store(job);
    rc = st != NULL ? state_put(st, PAYMENTS_NS, job->link_key, value, pay__credit_linked, job)
                    : HB_ECANCELED;
    if (rc < 0)
        pay__fail(job, "link payment", rc);
}

/* ---- refunds and chargebacks --------------------------------------------------------- */

static void pay__reverse_linked(int rc, const char *value, void *data)
{
    struct pay_job *job = data;
    (void)value;
    if (rc < 0) {
        pay__fail(job, "link reversal", rc);
        return;
    }
    pay__finish(job, 200, job->outcome);
}

static void pay__reversed(int rc, const struct deposit_result *r, void *data)
{
    struct pay_job *job = data;
    if (rc < 0) {
        pay__fail(job, r->step, rc);
        return;
    }
    bool chargeback = job->ev.action == PAYMENT_CHARGEBACK;
    if (!r->existed) {
        log_info("payment.reversed",
                 "provider=%s event=%s account=%s credits=%" PRId64 " debt=%" PRId64 " kind=%s",
                 payments_provider_name(job->provider), job->ev.event_id, job->account,
                 job->credits, r->debt, chargeback ? "chargeback" : "refund");
    }
    job->outcome = r->existed ? "duplicate" : "reversed";
    char value[400];
    snprintf(value, sizeof(value), "%s %s %" PRId64 " %" PRId64 " %" PRId64, job->original,
             job->account, job->paid_credits, job->paid_amount, job->reversed + job->credits);
    struct store *st = pay__store(job);
    rc = st != NULL ? state_put(st, PAYMENTS_NS, job->link_key, value, pay__reverse_linked, job)
                    : HB_ECANCELED;
    if (rc < 0)
        pay__fail(job, "link reversal", rc);
}

/* The payment's credit as the ledger has it: what its reversals add up to
 * is read from the ledger, not from the payment's note, which a stop
 * between the reversal and the note leaves behind by one refund (the next
 * refund would then ask for more than is left, and be refused on every
 * retry). */
static void pay__original_read(int rc, const struct ledger_result *r, void *data)
{
    struct pay_job *job = data;
    if (rc < 0) {
        pay__fail(job, "read payment", rc);
        return;
    }
    job->reversed = r->reversed;
    /* Credits in proportion to the money returned, never more than bought. */
    int64_t amount = job->paid_amount;
    int64_t credits = job->paid_credits;
    int64_t returned = job->ev.amount < amount ? job->ev.amount : amount;
    int64_t target =
        returned == amount
            ? credits
            : (int64_t)ceill((long double)returned * (long double)credits / (long double)amount);
    int64_t delta = job->ev.amount_cumulative ? target - job->reversed : target;
    if (delta > credits - job->reversed)
        delta = credits - job->reversed;
    if (delta <= 0) {
        pay__finish(job, 200, "nothing_to_reverse");
        return;
    }
    job->credits = delta;
    char ref[200];
    snprintf(ref, sizeof(ref), "%s %.60s %.120s", payments_provider_name(job->provider),
             job->ev.type, job->ev.payment_id);
    struct deposit_reversal rev = {.id = job->transfer_id,
                                   .original = job->original,
                                   .credits = delta,
                                   .chargeback = job->ev.action == PAYMENT_CHARGEBACK,
                                   .ref = ref};
    rc = deposit_reverse(*job->p->ledger, &rev, pay__reversed, job);
    if (rc < 0)
        pay__fail(job, "reverse", rc);
}

static void pay__link_read(int rc, const char *value, void *data)
{
    struct pay_job *job = data;
    if (rc == HB_ENOTFOUND) {
        pay__unmatched(job, "unknown_payment");
        return;
    }
    if (rc < 0) {
        pay__fail(job, "read payment", rc);
        return;
    }
    char original[LEDGER_ID_LEN_MAX + 1];
    char account[PAYREF_ACCOUNT_MAX + 1];
    long long credits = 0, amount = 0, reversed = 0;
    if (sscanf(value, "%120s %120s %lld %lld %lld", original, account, &credits, &amount,
               &reversed) != 5 ||
        credits <= 0 || amount <= 0) {
        pay__unmatched(job, "payment_record_unreadable");
        return;
    }
    snprintf(job->original, sizeof(job->original), "%s", original);
    snprintf(job->account, sizeof(job->account), "%s", account);
    job->paid_credits = credits;
    job->paid_amount = amount;
    struct ledger *l = *job->p->ledger;
    rc = l != NULL ? ledger_transfer_get(l, job->original, pay__original_read, job) : HB_ECANCELED;
    if (rc < 0)
        pay__fail(job, "read payment", rc);
}

/* ---- the event ------------------------------------------------------------------------ */

/* The credit a payment's note names exists: the payment was credited. */
static void pay__credit_noted(int rc, const struct ledger_result *r, void *data)
{
    struct pay_job *job = data;
    (void)r;
    if (rc == HB_ENOTFOUND) {
        /* A stop between the note and its credit: credit it now. */
        pay__credit(job);
        return;
    }
    if (rc < 0) {
        pay__fail(job, "read payment", rc);
        return;
    }
    if (strcmp(job->original, job->transfer_id) == 0) {
        /* Credited under this id: the deposit path finds the credit and
         * answers "duplicate", but first makes sure of what a stop may
         * have cut off after it (the debt's repayment, named after the
         * credit, so it happens once). */
        pay__credit(job);
        return;
    }
    if (strcmp(job->original, job->transfer_id) != 0)
        log_info("payment.duplicate", "provider=%s event=%s payment=%s credited_as=%s note=%s",
                 payments_provider_name(job->provider), job->ev.event_id, job->ev.payment_id,
                 job->original, "credited before under another id; not credited again");
    else
        log_info("payment.duplicate", "provider=%s event=%s payment=%s",
                 payments_provider_name(job->provider), job->ev.event_id, job->ev.payment_id);
    pay__finish(job, 200, "duplicate");
}

/* A payment with a note was credited: under this id, or, in a ledger
 * written before credits were named by the payment object, under the id
 * of the event that first reported it. Either way it is not credited
 * again, once the ledger confirms the credit the note names. */
static void pay__credit_link_read(int rc, const char *value, void *data)
{
    struct pay_job *job = data;
    if (rc == HB_ENOTFOUND) {
        pay__credit(job);
        return;
    }
    if (rc < 0) {
        pay__fail(job, "read payment", rc);
        return;
    }
    char original[LEDGER_ID_LEN_MAX + 1] = "";
    if (sscanf(value, "%120s", original) != 1) {
        pay__credit(job);
        return;
    }
    snprintf(job->original, sizeof(job->original), "%s", original);
    struct ledger *l = *job->p->ledger;
    rc = l != NULL ? ledger_transfer_get(l, job->original, pay__credit_noted, job) : HB_ECANCELED;
    if (rc < 0)
        pay__fail(job, "read payment", rc);
}

/* A retry of a handled event finds its transfer: answer at once. */
static void pay__seen(int rc, const struct ledger_result *r, void *data)
{
    struct pay_job *job = data;
    (void)r;
    /* A credit that exists may lack its link (a stop between the two
     * commits): the credit path finds the credit and writes the link. */
    if (rc == 0 && job->ev.action != PAYMENT_CREDIT) {
        log_info("payment.duplicate", "provider=%s event=%s", payments_provider_name(job->provider),
                 job->ev.event_id);
        pay__finish(job, 200, "duplicate");
        return;
    }
    if (rc < 0 && rc != HB_ENOTFOUND) {
        pay__fail(job, "look up event", rc);
        return;
    }
    struct store *st = pay__store(job);
    rc = st != NULL
             ? state_get(st, PAYMENTS_NS, job->link_key,
                         job->ev.action == PAYMENT_CREDIT ? pay__credit_link_read : pay__link_read,
                         job)
             : HB_ECANCELED;
    if (rc < 0)
        pay__fail(job, "read payment", rc);
}

static void pay__webhook(struct payments *p, struct server_request *req,
                         enum payments_provider provider)
{
    const struct pay_provider *pv = &pay_providers[provider];
    const char *name = payments_provider_name(provider);
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    const char *sig = server_request_header(req, pv->scheme->header);
    int64_t now = (int64_t)time(NULL);
    int rc = webhook_sig_verify(pv->scheme, sig, p->secrets[provider], body, len, now,
                                p->tolerance[provider]);
    if (rc < 0) {
        /* Never the body: it may hold personal data, and it is not trusted. */
        log_warn("webhook.refused", "provider=%s reason=%s bytes=%zu", name,
                 sig == NULL         ? "no_signature"
                 : rc == HB_ETIMEOUT ? "stale_timestamp"
                 : rc == HB_EPERM    ? "bad_signature"
                                     : "malformed_signature",
                 len);
        pay__answer(p, req, provider, 401, "unauthorized");
        return;
    }
    struct pay_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        pay__answer(p, req, provider, 500, "error");
        return;
    }
    job->p = p;
    job->req = req;
    job->provider = provider;
    rc = pv->parse(body, len, &job->ev);
    if (rc < 0) {
        log_warn("webhook.malformed", "provider=%s bytes=%zu", name, len);
        free(job);
        pay__answer(p, req, provider, 400, "malformed");
        return;
    }
    if (job->ev.action == PAYMENT_IGNORE) {
        log_debug("webhook.ignored", "provider=%s event=%s type=%s", name, job->ev.event_id,
                  job->ev.type);
        free(job);
        pay__answer(p, req, provider, 200, "ignored");
        return;
    }
    int n1 = snprintf(job->transfer_id, sizeof(job->transfer_id), "%s:%s", name, job->ev.object_id);
    int n2 = snprintf(job->link_key, sizeof(job->link_key), "%s:%s", name, job->ev.payment_id);
    if (job->ev.object_id[0] == '\0' || n1 < 0 || (size_t)n1 >= sizeof(job->transfer_id) ||
        n2 < 0 || (size_t)n2 >= sizeof(job->link_key)) {
        free(job);
        pay__answer(p, req, provider, 400, "malformed");
        return;
    }
    p->pending++;
    struct ledger *l = *p->ledger;
    rc = l != NULL ? ledger_transfer_get(l, job->transfer_id, pay__seen, job) : HB_ECANCELED;
    if (rc < 0) {
        log_warn("webhook.unavailable", "provider=%s event=%s error=%s", name, job->ev.event_id,
                 hb_strerror(rc));
        pay__finish(job, 503, "unavailable");
    }
}

static void pay__stripe(struct server_request *req, void *data)
{
    pay__webhook(data, req, PAY_STRIPE);
}

static void pay__paddle(struct server_request *req, void *data)
{
    pay__webhook(data, req, PAY_PADDLE);
}

/* Serve one provider's route when it has a secret. */
static int pay__route_add(struct payments *p, struct server *srv, enum payments_provider provider,
                          const char *secret, int64_t tolerance, enum payments_match match_on,
                          server_handler_fn handler)
{
    const struct pay_provider *pv = &pay_providers[provider];
    if (secret == NULL)
        return 0;
    p->secrets[provider] = strdup(secret);
    p->tolerance[provider] = tolerance > 0 ? tolerance : pv->scheme->tolerance_default;
    p->match_on[provider] = match_on;
    const char *headers[] = {pv->scheme->header, NULL};
    if (p->secrets[provider] == NULL ||
        server_route_add(srv, "POST", pv->route, headers, handler, p) < 0)
        return HB_ENOMEM;
    return 0;
}

/* ---- life ------------------------------------------------------------------------------ */

struct payments *payments_new(struct server *srv, const struct payments_options *opts)
{
    if (opts == NULL || opts->ledger == NULL || opts->reference_key == NULL ||
        opts->reference_key[0] == '\0') {
        log_error("payments.config", "problem=%s", "[payments] reference_key is required");
        return NULL;
    }
    struct payments *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->ledger = opts->ledger;
    p->welcome_bonus = opts->welcome_bonus;
    p->notify = opts->notify;
    p->notify_data = opts->notify_data;
    snprintf(p->currency, sizeof(p->currency), "%s", opts->currency != NULL ? opts->currency : "");
    int n = payments_packages_parse(opts->packages, p->packages, PAYMENTS_PACKAGES_MAX);
    if (n < 0) {
        log_error("payments.config", "problem=%s",
                  "[payments] packages must be price:credits pairs");
        goto fail;
    }
    p->npackages = (size_t)n;
    p->key = strdup(opts->reference_key);
    if (p->key == NULL)
        goto fail;
    if (pay__route_add(p, srv, PAY_STRIPE, opts->stripe_secret, opts->stripe_tolerance,
                       PAYMENTS_MATCH_TOTAL, pay__stripe) < 0 ||
        pay__route_add(p, srv, PAY_PADDLE, opts->paddle_secret, opts->paddle_tolerance,
                       opts->paddle_match_on, pay__paddle) < 0)
        goto fail;
    return p;
fail:
    payments_free(p);
    return NULL;
}

size_t payments_pending(const struct payments *p)
{
    return p->pending;
}

static void pay__secret_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void payments_free(struct payments *p)
{
    if (p == NULL)
        return;
    if (p->pending > 0)
        log_error("payments.free", "pending=%zu", p->pending);
    pay__secret_free(p->key);
    for (size_t i = 0; i < PAY_PROVIDERS; i++)
        pay__secret_free(p->secrets[i]);
    free(p);
}
