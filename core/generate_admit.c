/* Admission: the checks before a job may queue (model, access, size,
 * prompt length, the content filter, quotas), who pays, and the
 * reservation of the estimated cost. */
#include "core/generate_internal.h"

#include "core/commands.h"
#include "core/core.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int generate_payer_choose(const struct core *core, const struct invocation *inv,
                          const struct pool_settings *s, bool pool_usable, char *buf, size_t cap,
                          char *alt, size_t altcap)
{
    char wallet[WALLET_ACCOUNT_MAX];
    char pool[WALLET_ACCOUNT_MAX];
    int rc = wallet_account(core, inv, wallet, sizeof(wallet));
    if (rc < 0)
        return rc;
    alt[0] = '\0';
    if (!pool_usable || s == NULL || wallet_pool_account(inv, pool, sizeof(pool)) != 0) {
        snprintf(buf, cap, "%s", wallet);
        return 0;
    }
    bool pool_first = s->policy == POOL_POLICY_POOL_FIRST;
    snprintf(buf, cap, "%s", pool_first ? pool : wallet);
    snprintf(alt, altcap, "%s", pool_first ? wallet : pool);
    return 0;
}

/* Count an outcome per UTC day in the state table, for /admin stats. */
void generate__count(struct generate *g, const char *what, const char *name)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL)
        return;
    char key[160];
    snprintf(key, sizeof(key), "%lld/%s/%s", (long long)(generate__now(g) / 86400000), what, name);
    state_incr(ledger_store(ledger), GENERATE_NS_STATS, key, 1, NULL, NULL);
}

/* The refusal, then (when aside is not NULL) a personal aside after it,
 * then the end. */
static void job__refuse_v(struct job *job, enum generate_refusal why, const char *aside,
                          const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void job__refuse_v(struct job *job, enum generate_refusal why, const char *aside,
                          const char *fmt, va_list ap)
{
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    job->refused = true;
    job->refusal = why;
    if (n >= 0)
        snprintf(job->message, sizeof(job->message), "%s", text);
    if (n >= 0) {
        struct reply_msg msg = {.stage = REPLY_FINAL, .ephemeral = true, .text = text};
        reply_send(job->reply, &msg);
        free(text);
    }
    if (aside != NULL) {
        struct reply_msg msg = {.stage = REPLY_FINAL,
                                .ephemeral = true,
                                .personal = true,
                                .aside = true,
                                .text = aside};
        reply_send(job->reply, &msg);
    }
    job->g->stats.refused++;
    metrics_counter_add(metrics_std()->generations,
                        (const char *[]){job->model != NULL ? job->model->name : "-", "refused"},
                        1);
    generate__count(job->g, "refused", generate_refusal_name(why));
    job__end(job, HB_EPERM);
}

void job__refuse(struct job *job, enum generate_refusal why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    job__refuse_v(job, why, NULL, fmt, ap);
    va_end(ap);
}

static void job__refuse_aside(struct job *job, enum generate_refusal why, const char *aside,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void job__refuse_aside(struct job *job, enum generate_refusal why, const char *aside,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    job__refuse_v(job, why, aside, fmt, ap);
    va_end(ap);
}

/* ---- reservations --------------------------------------------------------- */

/* What the member is told before the work runs: the reservation is the
 * most it may cost, and the charge is what it uses. */
const char *job__price(const struct job *job, char *buf, size_t cap)
{
    snprintf(buf, cap, MSG_GEN_PRICE, (long long)job->reserved, job->reserved == 1 ? "" : "s");
    return buf;
}

int64_t job__estimate(const struct job *job, const struct catalog_model *m)
{
    /* The system prompt (the persona's, filled in) and the output cap (a
     * persona may lower it) are counted as the request will carry them. */
    int64_t e = catalog_estimate_with(m, job->input_bytes, job__system_bytes(job, m),
                                      job__max_tokens(job, m));
    if (job->attached != NULL && m->price_image > 0)
        e += m->price_image;
    return e;
}

static void job__reserved(int rc, const struct ledger_result *res, void *data);

void job__reserve(struct job *job, int64_t amount)
{
    struct generate *g = job->g;
    struct ledger *ledger = g->core->ledger;
    job->nres++;
    snprintf(job->res_id, sizeof(job->res_id), "%s:r%u", job->id, job->nres);
    job->reserved = amount;
    int64_t timeout = g->core->reservation_timeout_ms;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    if (timeout < l->job_timeout_ms + 60000)
        timeout = l->job_timeout_ms + 60000;
    if (job->hold)
        timeout += job__hold_extra_ms(job); /* it may wait for an admin that long */
    struct ledger_transfer t = {
        .id = job->res_id,
        .debit = job->payer,
        .credit = LEDGER_SYSTEM_REVENUE,
        .amount = amount,
        .kind = LEDGER_KIND_GENERATION,
        .flags = LEDGER_TRANSFER_PENDING,
        .timeout_ms = timeout,
        .ref = job->id,
        .tag = job->model->name,
    };
    /* The limits' counts are taken in the reservation's own transaction,
     * and the job's record (which reservations may be open, what the
     * counts hold) is written in it too: one commit, never one without
     * the other. */
    job->refs++;
    int rc = job__quota_guard(job, amount, &t);
    char record[GEN_RECORD_MAX];
    struct ledger_note note = {
        .ns = GEN_NS_JOB, .key = job->id, .value = job__record(job, record, sizeof(record))};
    if (rc == 0)
        rc = ledger != NULL ? ledger_transfer_create_noted(ledger, &t, &note, job__reserved, job)
                            : HB_ECANCELED;
    if (rc < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__reserved(rc, &none, job);
    }
}

/* Refused for funds, with the member's wallet read: in a DM the refusal
 * says what the wallet holds; in a group (where a Telegram group reads even
 * an ephemeral note) it names the price only, and the member hears their
 * wallet's balance alone, as an aside, as after a generation (a pool's
 * balance is the group's: /pool shows it). */
static void job__funds_balance(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    bool group = job->who.scope == COMMAND_SCOPE_GROUP;
    char aside[96];
    if (rc == 0 && group)
        snprintf(aside, sizeof(aside), MSG_GEN_ASIDE_AVAILABLE, (long long)res->balance.available);
    if (rc == 0 && !group)
        job__refuse(job, GEN_REFUSE_FUNDS, MSG_GEN_FUNDS_SHORT_BALANCE, job->model->name,
                    job__label(job->model), (long long)job->reserved,
                    (long long)res->balance.available);
    else
        job__refuse_aside(job, GEN_REFUSE_FUNDS, rc == 0 ? aside : NULL, MSG_GEN_FUNDS_SHORT,
                          job->model->name, job__label(job->model), (long long)job->reserved);
    job__unref(job);
}

/* Reserve again on the other payer, when there is one (the reservation's
 * reference moves on); false when there is none. */
static bool job__payer_switch(struct job *job, const char *event)
{
    if (job->payer_alt[0] == '\0' || job->g->closing)
        return false;
    log_debug(event, "job=%s from=%s to=%s", job->id, job->payer, job->payer_alt);
    snprintf(job->payer, sizeof(job->payer), "%s", job->payer_alt);
    job->payer_alt[0] = '\0';
    job__reserve(job, job->reserved);
    job__unref(job);
    return true;
}

static void job__reserved(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    (void)res;
    /* The pool spent its daily cap: the member's wallet may cover it (the
     * store undid every count with the refusal). */
    if (job__quota_pool_refused(job, rc) && job__payer_switch(job, "generate.pool_capped"))
        return;
    /* A replay (HB_EEXISTS) took no counts: its first run did. */
    if (job__quota_reserved(job, rc == HB_EEXISTS ? 1 : rc)) {
        job__persist(job, false);
        job__unref(job);
        return; /* a limit refused it */
    }
    if (rc == HB_EEXISTS) {
        job__persist(job, true); /* a replay wrote no record with it */
        rc = 0;
    }
    if (rc == 0) {
        job->res_open = true;
        if (job->state == JOB_ENDED || g->closing || job->gone) {
            if (job->gone)
                snprintf(job->error, sizeof(job->error), MSG_GEN_CALLER_GONE);
            else
                snprintf(job->error, sizeof(job->error), MSG_GEN_STOPPING);
            job->end_rc = HB_ECANCELED;
            job__fail(job);
        } else if (job->state == JOB_ADMIT && job->hold) {
            job__hold(job); /* an admin decides first (generate_approval.c) */
        } else if (job->state == JOB_ADMIT) {
            job__enqueue(job);
        } else {
            /* A fallback's new reservation. */
            job__enqueue(job);
        }
        job__unref(job);
        return;
    }
    /* The first choice cannot cover it: the other account may. */
    if ((rc == HB_EFUNDS || rc == HB_ENOTFOUND) && job__payer_switch(job, "generate.payer_switch"))
        return;
    job__persist(job, false);
    /* A fallback's reservation (a payer switch reserves again too, and is
     * not one). */
    if (job->fb_next > 0) {
        /* A fallback needed more than the first reservation held. */
        snprintf(job->error, sizeof(job->error), MSG_GEN_FALLBACK_NOT_RESERVED, job->model->name,
                 hb_strerror(rc));
        job->end_rc = rc;
        job__fail(job);
        job__unref(job);
        return;
    }
    /* Short of funds: the wallet is, and so is the pool when one was tried
     * (a pool nobody funded yet has no account). */
    bool funds = rc == HB_EFUNDS || (rc == HB_ENOTFOUND && strcmp(job->payer, job->wallet) != 0);
    if (funds && g->core->ledger != NULL &&
        ledger_balance_get(g->core->ledger, job->wallet, job__funds_balance, job) == 0)
        return; /* the reference moves to the balance callback */
    if (funds)
        job__refuse(job, GEN_REFUSE_FUNDS, MSG_GEN_FUNDS_SHORT_FOR, job->model->name);
    else
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_NOT_RESERVED, hb_strerror(rc));
    job__unref(job);
}

/* The conversation is known: the provider messages; then the rate limits
 * and the token cap, counted in the store; then the price, the
 * reservation, and the queue. */
static void job__admit_remembered(struct job *job)
{
    if (job->g->closing) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    if (job__messages_build(job) < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    /* An image is input too: counted at the most a provider bills for one. */
    if (job->attached != NULL)
        job->input_bytes += CATALOG_IMAGE_TOKENS;
    job__quota_prepare(job, job__tokens_bound(job, job->model));
}

void job__admit(struct job *job)
{
    struct generate *g = job->g;
    struct catalog *cat = job->cat;
    const struct catalog_limits *l = catalog_limits_get(cat);
    const char *kind = job->modality == PROVIDER_TEXT ? "text" : "image";
    if (g->closing) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    if (job->api_payer[0] != '\0') {
        /* An API key spends one account, with no other to fall back on. */
        snprintf(job->payer, sizeof(job->payer), "%s", job->api_payer);
        job->payer_alt[0] = '\0';
    }
    job__notice_deliver(job);

    /* The persona, and the model: asked for, the member's own, the
     * persona's, or the first enabled. */
    job__persona_resolve(job);
    if (job->want_model[0] == '\0' && job->persona != NULL && job->persona->model != NULL)
        snprintf(job->want_model, sizeof(job->want_model), "%s", job->persona->model);
    const struct catalog_model *m = NULL;
    if (job->want_model[0] != '\0') {
        m = catalog_model_find(cat, job->want_model);
        if (m == NULL) {
            job__refuse(job, GEN_REFUSE_MODEL, MSG_COMMON_NO_SUCH_MODEL, job->want_model);
            return;
        }
    } else {
        m = catalog_model_default(cat, job->modality);
        if (m == NULL) {
            job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_NO_MODEL, kind);
            return;
        }
    }
    if (!m->enabled) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_MODEL_OFF, m->name);
        return;
    }
    if (job__scope_off(job, m->name)) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_MODEL_OFF_HERE, m->name);
        return;
    }
    if (m->modality != job->modality) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_WRONG_COMMAND, m->name,
                    m->modality == PROVIDER_TEXT ? MSG_GEN_MAKES_TEXT : MSG_GEN_MAKES_IMAGES,
                    m->modality == PROVIDER_TEXT ? "/chat" : "/imagine");
        return;
    }
    if (!catalog_model_allowed(m, &job->who)) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_MODEL_NOT_ALLOWED, m->name);
        return;
    }
    if (job->attached != NULL && !m->vision) {
        /* Never silently answer without the image: name a model that sees. */
        const struct catalog_model *v = NULL;
        for (size_t i = 0; i < catalog_model_count(cat) && v == NULL; i++) {
            const struct catalog_model *c = catalog_model_at(cat, i);
            if (c->enabled && c->vision && catalog_model_allowed(c, &job->who) &&
                !job__scope_off(job, c->name))
                v = c;
        }
        if (v != NULL)
            job__refuse(job, GEN_REFUSE_MODEL, MSG_ATTACH_NO_VISION, m->name, v->name, v->name);
        else
            job__refuse(job, GEN_REFUSE_MODEL, MSG_ATTACH_NO_VISION_ANYWHERE, m->name);
        return;
    }
    job->first = job->model = m;
    if (job->modality == PROVIDER_IMAGE && !catalog_model_size(m, job->want_size, &job->size)) {
        char sizes[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < m->nsizes && off < sizeof(sizes); i++)
            off += (size_t)snprintf(sizes + off, sizeof(sizes) - off, "%s%ux%u", i ? ", " : "",
                                    m->sizes[i].width, m->sizes[i].height);
        job__refuse(job, GEN_REFUSE_INPUT, MSG_GEN_BAD_SIZE, m->name, job->want_size, sizes);
        return;
    }

    /* The prompt: length and the content filter. */
    size_t chars = command_utf8_len(job->prompt);
    if ((int64_t)chars > l->prompt_max) {
        job__refuse(job, GEN_REFUSE_INPUT, MSG_GEN_PROMPT_TOO_LONG, chars,
                    (long long)l->prompt_max);
        return;
    }
    const struct filter *f = catalog_filter(cat);
    struct filter_result fr = {0};
    if (filter_apply(f, job->prompt, &fr) < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    generate__hit(g, f, &fr);
    if (fr.blocked) {
        g->stats.filtered_prompts++;
        log_info("generate.prompt_blocked", "rule=%s", fr.blocked_by);
        job__refuse(job, GEN_REFUSE_FILTER, MSG_GEN_PROMPT_FILTERED, fr.blocked_by);
        filter_result_clear(&fr);
        return;
    }
    const char *persona_rule = NULL;
    if (job__persona_blocks(job, fr.text, &persona_rule)) {
        g->stats.filtered_prompts++;
        log_info("generate.prompt_blocked", "rule=%s", persona_rule);
        job__refuse(job, GEN_REFUSE_FILTER, MSG_GEN_PROMPT_FILTERED, persona_rule);
        filter_result_clear(&fr);
        return;
    }
    if (fr.review_by != NULL && !job__approvals_on(job)) {
        /* Nobody reviews while the approval queue is off (or switched off
         * here by [features]): refused, as by block. */
        g->stats.filtered_prompts++;
        log_info("generate.prompt_blocked", "rule=%s action=review", fr.review_by);
        job__refuse(job, GEN_REFUSE_FILTER, MSG_GEN_PROMPT_FILTERED, fr.review_by);
        filter_result_clear(&fr);
        return;
    }
    if (fr.review_by != NULL) {
        job->hold = true;
        snprintf(job->hold_why, sizeof(job->hold_why), "filter rule %s", fr.review_by);
    }
    if (fr.redactions > 0) {
        g->stats.redactions++;
        free(job->prompt);
        job->prompt = fr.text;
        fr.text = NULL;
    }
    filter_result_clear(&fr);

    /* The queue bounds. */
    if (!job__quota_admit(job))
        return;

    /* The conversation the prompt continues (its lookup was queued with
     * the submission), then the rest. */
    job__conversation_then(job, job__admit_remembered);
}

void job__admit_counted(struct job *job)
{
    struct generate *g = job->g;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    const struct catalog_model *m = job->model;
    if (g->closing) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    job->deadline = uv_now(g->loop) + (uint64_t)l->job_timeout_ms;
    int64_t estimate = job__estimate(job, m);
    if (estimate <= 0) {
        job->reserved = 0;
        estimate = 0; /* free: nothing to reserve, but it may still be held */
    }
    job__approval_check(job, estimate); /* then job__reserve, or the counts alone */
}

/* The pool's spending today is known: choose who pays by the policy. A
 * pool that reached its daily cap is left out. This read covers what the
 * pool spent before the day's first job under a cap; the reservations hold
 * the cap exactly (core/generate_quota.c), with jobs in flight counted. */
static void job__pool_usage(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    bool usable = true;
    if (rc == 0 && res != NULL && job->pool_settings.daily_cap > 0) {
        int64_t spent = 0;
        for (size_t i = 0; i < res->usage_count; i++)
            spent += res->usage[i].amount;
        usable = spent < job->pool_settings.daily_cap;
        if (!usable)
            log_info("generate.pool_capped", "job=%s pool=%s spent=%lld cap=%lld", job->id,
                     job->pool_account, (long long)spent, (long long)job->pool_settings.daily_cap);
    }
    generate_payer_choose(job->g->core, &job->who, &job->pool_settings, usable, job->payer,
                          sizeof(job->payer), job->payer_alt, sizeof(job->payer_alt));
    job__preference_then_admit(job);
    job__unref(job);
}

static void job__pool_settings(int rc, const struct pool_settings *ps, void *data)
{
    struct job *job = data;
    if (rc == 0 && ps != NULL)
        job->pool_settings = *ps;
    struct ledger *ledger = job->g->core->ledger;
    if (job->pool_settings.daily_cap > 0 && ledger != NULL) {
        int64_t now = generate__now(job->g);
        if (ledger_usage_exact(ledger, job->pool_account, now / 86400000 * 86400000, now + 1,
                               job__pool_usage, job) == 0)
            return;
    }
    job__pool_usage(0, NULL, job);
}

/* The group's turned-off models are known; next, the pool's settings. */
static void job__scope_models(char *off, void *data)
{
    struct job *job = data;
    job->scope_off = off;
    if (pool_settings_get(job->g->core, job->pool_account, job__pool_settings, job) == 0)
        return;
    job__preference_then_admit(job);
    job__unref(job);
}

static void job__wallet_opened(int rc, bool created, void *data)
{
    struct job *job = data;
    (void)created;
    if (rc < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_WALLET_FAILED, hb_strerror(rc));
        job__unref(job);
        return;
    }
    /* In a group its admins may have turned models off, and the pool may
     * pay by the policy they chose. */
    if (wallet_pool_account(&job->who, job->pool_account, sizeof(job->pool_account)) == 0 &&
        generate_scope_off_load(job->g->core, &job->who, job__scope_models, job) == 0)
        return; /* the reference moves along the chain */
    job__preference_then_admit(job);
    job__unref(job);
}

void generate_submit(struct generate *g, struct invocation *inv, const struct generate_request *req)
{
    struct job *job = job__new(g, inv);
    if (job == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    inv->reply = NULL;
    g->stats.submitted++;
    job->modality = req->modality;
    if (req->modality == PROVIDER_TEXT) {
        job->attached = inv->image; /* the job owns it now */
        inv->image = NULL;
    }
    const char *prompt = req->prompt != NULL ? req->prompt : "";
    if (job->attached != NULL && prompt[0] == '\0')
        prompt = MSG_ATTACH_DEFAULT_PROMPT;
    job->prompt = strdup(prompt);
    if (req->sink != NULL)
        job->sink = *req->sink;
    if (job__api_take(job, req) < 0) {
        free(job->prompt);
        job->prompt = NULL;
    }
    snprintf(job->want_model, sizeof(job->want_model), "%s", req->model != NULL ? req->model : "");
    snprintf(job->want_size, sizeof(job->want_size), "%s", req->size != NULL ? req->size : "");
    job__id_make(job);
    if (job->prompt == NULL ||
        wallet_account(g->core, &job->who, job->wallet, sizeof(job->wallet)) < 0 ||
        generate_payer_choose(g->core, &job->who, NULL, false, job->payer, sizeof(job->payer),
                              job->payer_alt, sizeof(job->payer_alt)) < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_BAD_REQUEST);
        return;
    }
    if (g->closing || g->core->ledger == NULL) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    /* Queued beside the wallet: done by the time admission needs it. */
    job__conversation_start(job);
    job->refs++;
    int rc = wallet_open(g->core, &job->who, job__wallet_opened, job);
    if (rc < 0)
        job__wallet_opened(rc, false, job);
}

const char *generate_refusal_name(enum generate_refusal why)
{
    switch (why) {
    case GEN_REFUSE_FUNDS:
        return "credits";
    case GEN_REFUSE_FILTER:
        return "filter";
    case GEN_REFUSE_USER_LIMIT:
        return "member_limit";
    case GEN_REFUSE_GROUP_LIMIT:
        return "group_limit";
    case GEN_REFUSE_TOKEN_CAP:
        return "token_cap";
    case GEN_REFUSE_BUSY:
        return "busy";
    case GEN_REFUSE_INPUT:
        return "input";
    case GEN_REFUSE_MODEL:
        return "model";
    case GEN_REFUSE_OTHER:
        return "other";
    case GEN_REFUSE_KEY_DAY:
        return "key_day_cap";
    case GEN_REFUSE_KEY_TOTAL:
        return "key_cap";
    }
    return "other";
}
