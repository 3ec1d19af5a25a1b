#include "bot/mirror.h"

#include "adapters/hedera/hedera.h"
#include "net/http.h"
#include "base/error.h"
#include "core/audit.h"
#include "core/deposit.h"
#include "core/ledger.h"
#include "base/log.h"
#include "base/text.h"
#include "base/metrics.h"
#include "core/notify.h"
#include "core/payref.h"
#include "core/state.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIRROR_NS "hedera"
#define MIRROR_NS_UNMATCHED DEPOSIT_NS_UNMATCHED_HEDERA
#define MIRROR_PAGE_LIMIT 100
#define MIRROR_PAGES_PER_POLL 50 /* a poll stops there and goes on at the next */

struct mirror {
    uv_loop_t *loop;
    uv_timer_t timer;
    struct http_client *http;
    struct ledger **ledger;
    char *base; /* mirror URL without a trailing slash */
    char treasury[32];
    char *key;
    int64_t tinybars_per_credit;
    struct deposit_token tokens[MIRROR_TOKENS_MAX];
    size_t ntokens;
    int64_t welcome_bonus;
    uint64_t interval_ms;
    void (*on_poll)(void *data, int rc);
    void *data;
    int (*notify)(void *data, const struct notify_target *to, const char *text); /* may be NULL */
    void *notify_data;

    char cursor[32]; /* last consensus timestamp handled; "" none yet */
    bool started;
    bool polling;                         /* a poll is under way */
    bool busy;                            /* a request or a store operation is in flight */
    struct http_request *req;             /* the request in flight */
    struct hedera_page page;              /* the page being booked */
    size_t at;                            /* next deposit of page to book */
    unsigned pages;                       /* pages read in this poll */
    char account[PAYREF_ACCOUNT_MAX + 1]; /* of the deposit being booked */
    char channel[COMMAND_ID_MAX];         /* where it was started, or "" */
    char transfer_id[LEDGER_ID_LEN_MAX + 1];
    int64_t credits;
    bool stopping;
    void (*stop_cb)(void *data);
    void *stop_data;
    struct mirror_stats stats;
};

static void mirror__book_next(struct mirror *m);
static void mirror__fetch(struct mirror *m, const char *next);

int mirror_tokens_parse(const char *text, struct deposit_token *out, size_t max)
{
    struct text_pair pairs[64];
    int n = text_pairs_parse(text, pairs, max < 64 ? max : 64);
    for (int i = 0; i < n; i++) {
        if (strlen(pairs[i].key) >= sizeof(out[0].id))
            return HB_EINVAL;
        snprintf(out[i].id, sizeof(out[i].id), "%s", pairs[i].key);
        out[i].units_per_credit = pairs[i].value;
    }
    return n < 0 ? HB_EINVAL : n;
}

/* ---- stopping ---------------------------------------------------------------- */

static void mirror__closed(uv_handle_t *h)
{
    struct mirror *m = h->data;
    void (*cb)(void *) = m->stop_cb;
    void *data = m->stop_data;
    hedera_page_free(&m->page);
    free(m->base);
    if (m->key != NULL)
        OPENSSL_cleanse(m->key, strlen(m->key));
    free(m->key);
    free(m);
    if (cb != NULL)
        cb(data);
}

/* Once nothing is in flight, close the timer; the poller dies with it. */
static bool mirror__stop_if_idle(struct mirror *m)
{
    if (!m->stopping)
        return false;
    if (!m->busy && !uv_is_closing((uv_handle_t *)&m->timer))
        uv_close((uv_handle_t *)&m->timer, mirror__closed);
    return true;
}

void mirror_stop(struct mirror *m, void (*cb)(void *data), void *data)
{
    if (m == NULL || m->stopping)
        return;
    m->stopping = true;
    m->stop_cb = cb;
    m->stop_data = data;
    uv_timer_stop(&m->timer);
    if (m->req != NULL)
        http_request_cancel(m->req);
    mirror__stop_if_idle(m);
}

/* ---- a poll's end -------------------------------------------------------------- */

static void mirror__timer(uv_timer_t *t)
{
    mirror_poll_now(t->data);
}

static void mirror__poll_done(struct mirror *m, int rc)
{
    m->polling = false;
    hedera_page_free(&m->page);
    m->stats.polls++;
    if (rc < 0) {
        m->stats.failures++;
        metrics_counter_add(metrics_std()->deposits, (const char *[]){"hedera", "poll_failed"}, 1);
    }
    if (mirror__stop_if_idle(m))
        return;
    uv_timer_start(&m->timer, mirror__timer, m->interval_ms, 0);
    if (m->on_poll != NULL)
        m->on_poll(m->data, rc);
}

/* ---- booking a page ----------------------------------------------------------------- */

static void mirror__cursor_stored(int rc, const char *value, void *data)
{
    struct mirror *m = data;
    (void)value;
    m->busy = false;
    if (rc < 0) {
        log_error("hedera.cursor", "error=%s", hb_strerror(rc));
        mirror__poll_done(m, rc);
        return;
    }
    snprintf(m->cursor, sizeof(m->cursor), "%s", m->page.last_timestamp);
    snprintf(m->stats.cursor, sizeof(m->stats.cursor), "%s", m->cursor);
    if (m->stopping) {
        mirror__poll_done(m, HB_ECANCELED);
        return;
    }
    char next[sizeof(m->page.next)];
    snprintf(next, sizeof(next), "%s", m->page.next);
    hedera_page_free(&m->page);
    if (next[0] != '\0' && m->pages < MIRROR_PAGES_PER_POLL) {
        mirror__fetch(m, next);
        return;
    }
    mirror__poll_done(m, 0);
}

static struct store *mirror__store(struct mirror *m)
{
    return *m->ledger != NULL ? ledger_store(*m->ledger) : NULL;
}

/* Compare consensus timestamps "s.n" numerically: <0, 0, >0. */
static int mirror__ts_cmp(const char *a, const char *b)
{
    unsigned long long as = strtoull(a, NULL, 10), bs = strtoull(b, NULL, 10);
    const char *ad = strchr(a, '.'), *bd = strchr(b, '.');
    unsigned long long an = ad != NULL ? strtoull(ad + 1, NULL, 10) : 0;
    unsigned long long bn = bd != NULL ? strtoull(bd + 1, NULL, 10) : 0;
    if (as != bs)
        return as < bs ? -1 : 1;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

/* Every deposit of the page is committed: remember where we are (never
 * further back than we were: a mirror may send an old page again). */
static void mirror__page_booked(struct mirror *m)
{
    if (m->page.last_timestamp[0] == '\0' ||
        (m->cursor[0] != '\0' && mirror__ts_cmp(m->page.last_timestamp, m->cursor) <= 0)) {
        if (m->page.next[0] != '\0' && m->pages < MIRROR_PAGES_PER_POLL) {
            char next[sizeof(m->page.next)];
            snprintf(next, sizeof(next), "%s", m->page.next);
            hedera_page_free(&m->page);
            mirror__fetch(m, next);
            return;
        }
        mirror__poll_done(m, 0);
        return;
    }
    struct store *st = mirror__store(m);
    int rc = st != NULL ? state_put(st, MIRROR_NS, "cursor", m->page.last_timestamp,
                                    mirror__cursor_stored, m)
                        : HB_ECANCELED;
    if (rc < 0) {
        mirror__poll_done(m, rc);
        return;
    }
    m->busy = true;
}

static void mirror__step_done(struct mirror *m, int rc, const char *step)
{
    m->busy = false;
    if (rc < 0) {
        log_error("hedera.book", "tx=%s step=%s error=%s", m->page.items[m->at].tx_id, step,
                  hb_strerror(rc));
        mirror__poll_done(m, rc);
        return;
    }
    if (m->stopping) {
        mirror__poll_done(m, HB_ECANCELED);
        return;
    }
    m->at++;
    mirror__book_next(m);
}

static void mirror__unmatched_stored(int rc, const char *value, void *data)
{
    (void)value;
    mirror__step_done(data, rc, "record unmatched");
}

static void mirror__unmatched(struct mirror *m, const struct hedera_deposit *d, const char *why)
{
    char key[160];
    char value[400];
    snprintf(key, sizeof(key), "%s%s%s", d->tx_id, d->token[0] != '\0' ? ":" : "", d->token);
    /* The memo is what the sender typed: kept for the operator, logged
     * only by length. */
    /* What it would buy at the configured rate, so that /admin payments
     * assign needs no figure from the admin; memo= last, it takes the
     * rest of the note. */
    int64_t per_credit = d->token[0] == '\0' ? m->tinybars_per_credit : 0;
    for (size_t i = 0; i < m->ntokens && d->token[0] != '\0'; i++) {
        if (strcmp(m->tokens[i].id, d->token) == 0)
            per_credit = m->tokens[i].units_per_credit;
    }
    int64_t credits = per_credit > 0 ? d->amount / per_credit : 0;
    snprintf(value, sizeof(value),
             "amount=%" PRId64 " token=%s timestamp=%s reason=%s credits=%" PRId64 " memo=%s",
             d->amount, d->token[0] != '\0' ? d->token : "hbar", d->timestamp, why, credits,
             d->memo);
    log_warn("hedera.unmatched", "tx=%s amount=%" PRId64 " token=%s reason=%s memo_bytes=%zu",
             d->tx_id, d->amount, d->token[0] != '\0' ? d->token : "hbar", why, strlen(d->memo));
    m->stats.unmatched++;
    metrics_counter_add(metrics_std()->deposits, (const char *[]){"hedera", "unmatched"}, 1);
    struct store *st = mirror__store(m);
    if (st != NULL) {
        /* In the audit trail too, without the memo (what a sender typed). */
        char subject[sizeof(key) + 8];
        snprintf(subject, sizeof(subject), "hedera:%s", key);
        cJSON *detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "reason", why);
        cJSON_AddNumberToObject(detail, "amount", (double)d->amount);
        cJSON_AddStringToObject(detail, "token", d->token[0] != '\0' ? d->token : "hbar");
        audit_note(st, AUDIT_ACTOR_SYSTEM, "payment.unmatched", subject, detail);
    }
    int rc = st != NULL
                 ? state_put(st, MIRROR_NS_UNMATCHED, key, value, mirror__unmatched_stored, m)
                 : HB_ECANCELED;
    if (rc < 0) {
        mirror__poll_done(m, rc);
        return;
    }
    m->busy = true;
}

/* Booked (core/deposit.h), and the member told; the next deposit waits
 * for every step of this one. */
static void mirror__credited(int rc, const struct deposit_result *r, void *data)
{
    struct mirror *m = data;
    if (rc == 0 && !r->existed) {
        const struct hedera_deposit *d = &m->page.items[m->at];
        m->stats.credited++;
        metrics_counter_add(metrics_std()->deposits, (const char *[]){"hedera", "credited"}, 1);
        log_info("hedera.credited",
                 "tx=%s account=%s credits=%" PRId64 " amount=%" PRId64 " token=%s", d->tx_id,
                 m->account, m->credits, d->amount, d->token[0] != '\0' ? d->token : "hbar");
    }
    mirror__step_done(m, rc, rc < 0 ? r->step : "credit");
}

static void mirror__book_next(struct mirror *m)
{
    if (m->at == m->page.n) {
        mirror__page_booked(m);
        return;
    }
    const struct hedera_deposit *d = &m->page.items[m->at];
    int rc = payref_memo_check(d->memo, m->key, strlen(m->key), m->account, sizeof(m->account));
    if (rc < 0) {
        mirror__unmatched(m, d, d->memo[0] == '\0' ? "no_memo" : "unknown_memo");
        return;
    }
    notify_account_split(m->account, m->channel, sizeof(m->channel));
    int64_t per_credit = m->tinybars_per_credit;
    if (d->token[0] != '\0') {
        per_credit = 0;
        for (size_t i = 0; i < m->ntokens; i++) {
            if (strcmp(m->tokens[i].id, d->token) == 0)
                per_credit = m->tokens[i].units_per_credit;
        }
        if (per_credit == 0) {
            mirror__unmatched(m, d, "unknown_token");
            return;
        }
    }
    m->credits = d->amount / per_credit;
    if (m->credits <= 0) {
        mirror__unmatched(m, d, "below_one_credit");
        return;
    }
    if (deposit_id_make(m->transfer_id, sizeof(m->transfer_id), "hedera", d->tx_id, d->token) < 0) {
        mirror__unmatched(m, d, "id_too_long");
        return;
    }
    char ref[160];
    snprintf(ref, sizeof(ref), "hedera %s", d->tx_id);
    struct deposit_credit c = {.id = m->transfer_id,
                               .account = m->account,
                               .channel = m->channel,
                               .credits = m->credits,
                               .welcome_bonus = m->welcome_bonus,
                               .ref = ref,
                               .method = "hedera",
                               .via = "Hedera",
                               .notify = m->notify,
                               .notify_data = m->notify_data};
    rc = deposit_credit(*m->ledger, &c, mirror__credited, m);
    if (rc < 0) {
        mirror__poll_done(m, rc);
        return;
    }
    m->busy = true;
}

/* ---- reading pages ------------------------------------------------------------------ */

static void mirror__fetched(struct http_request *req, int rc, void *data)
{
    struct mirror *m = data;
    m->req = NULL;
    m->busy = false;
    if (m->stopping) {
        mirror__poll_done(m, HB_ECANCELED);
        return;
    }
    if (rc < 0) {
        log_warn("hedera.mirror_unreachable", "error=%s detail=%s", hb_strerror(rc),
                 http_request_error(req));
        mirror__poll_done(m, rc);
        return;
    }
    int status = http_request_status(req);
    if (status != 200) {
        log_warn("hedera.mirror_error", "status=%d", status);
        mirror__poll_done(m, HB_EHTTP);
        return;
    }
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    rc = hedera_page_parse(body, len, m->treasury, &m->page);
    if (rc < 0) {
        log_warn("hedera.page_malformed", "bytes=%zu cursor=%s error=%s", len,
                 m->cursor[0] != '\0' ? m->cursor : "-", hb_strerror(rc));
        mirror__poll_done(m, rc);
        return;
    }
    m->pages++;
    m->at = 0;
    mirror__book_next(m);
}

static void mirror__fetch(struct mirror *m, const char *next)
{
    char url[1024];
    int n;
    if (next != NULL)
        n = snprintf(url, sizeof(url), "%s%s", m->base, next);
    else
        n = snprintf(url, sizeof(url),
                     "%s/api/v1/transactions?account.id=%s&transactiontype=CRYPTOTRANSFER"
                     "&order=asc&limit=%d%s%s",
                     m->base, m->treasury, MIRROR_PAGE_LIMIT,
                     m->cursor[0] != '\0' ? "&timestamp=gt:" : "", m->cursor);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        mirror__poll_done(m, HB_EINVAL);
        return;
    }
    struct http_request *req = http_request_new(m->http, "GET", url);
    if (req == NULL) {
        mirror__poll_done(m, HB_ENOMEM);
        return;
    }
    http_request_header_add(req, "Accept", "application/json");
    http_request_max_body_set(req, HEDERA_PAGE_MAX_BYTES); /* what one page may cost */
    int rc = http_request_start(req, mirror__fetched, m);
    if (rc < 0) {
        mirror__poll_done(m, rc);
        return;
    }
    m->req = req;
    m->busy = true;
}

void mirror_poll_now(struct mirror *m)
{
    if (m == NULL || m->stopping || m->polling || !m->started)
        return;
    uv_timer_stop(&m->timer);
    m->polling = true;
    m->pages = 0;
    mirror__fetch(m, NULL);
}

/* ---- life ---------------------------------------------------------------------------- */

static void mirror__cursor_loaded(int rc, const char *value, void *data)
{
    struct mirror *m = data;
    m->busy = false;
    if (mirror__stop_if_idle(m))
        return;
    if (rc == 0 && hedera_timestamp_ok(value))
        snprintf(m->cursor, sizeof(m->cursor), "%s", value);
    else if (rc != HB_ENOTFOUND)
        log_warn("hedera.cursor", "problem=%s action=%s", rc < 0 ? hb_strerror(rc) : "malformed",
                 "starting from the beginning; transfers already credited are not credited again");
    snprintf(m->stats.cursor, sizeof(m->stats.cursor), "%s", m->cursor);
    m->started = true;
    log_info("hedera.started", "treasury=%s cursor=%s", m->treasury,
             m->cursor[0] != '\0' ? m->cursor : "-");
    mirror_poll_now(m);
}

int mirror_start(struct mirror *m)
{
    struct store *st = mirror__store(m);
    if (st == NULL)
        return HB_ECANCELED;
    int rc = state_get(st, MIRROR_NS, "cursor", mirror__cursor_loaded, m);
    if (rc == 0)
        m->busy = true;
    return rc;
}

struct mirror *mirror_new(uv_loop_t *loop, const struct mirror_options *o)
{
    if (o == NULL || o->http == NULL || o->ledger == NULL || o->mirror_url == NULL ||
        o->treasury == NULL || o->treasury[0] == '\0' ||
        strlen(o->treasury) >= sizeof(((struct mirror *)0)->treasury) || o->reference_key == NULL ||
        o->reference_key[0] == '\0' || o->tinybars_per_credit <= 0) {
        log_error("hedera.config", "problem=%s",
                  "[hedera] needs mirror_url, treasury and [payments] reference_key");
        return NULL;
    }
    struct mirror *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    int n = mirror_tokens_parse(o->tokens, m->tokens, MIRROR_TOKENS_MAX);
    if (n < 0) {
        log_error("hedera.config", "problem=%s", "[hedera] tokens must be token_id:units pairs");
        free(m);
        return NULL;
    }
    m->ntokens = (size_t)n;
    m->loop = loop;
    m->http = o->http;
    m->ledger = o->ledger;
    m->base = strdup(o->mirror_url);
    m->key = strdup(o->reference_key);
    if (m->base == NULL || m->key == NULL) {
        free(m->base);
        free(m->key);
        free(m);
        return NULL;
    }
    size_t bl = strlen(m->base);
    while (bl > 0 && m->base[bl - 1] == '/')
        m->base[--bl] = '\0';
    snprintf(m->treasury, sizeof(m->treasury), "%s", o->treasury);
    m->tinybars_per_credit = o->tinybars_per_credit;
    m->welcome_bonus = o->welcome_bonus;
    m->interval_ms = o->interval_ms > 0 ? o->interval_ms : 15000;
    m->notify = o->notify;
    m->notify_data = o->notify_data;
    m->on_poll = o->on_poll;
    m->data = o->data;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    return m;
}

void mirror_stats_get(const struct mirror *m, struct mirror_stats *out)
{
    *out = m->stats;
}
