/* Settlement: the job's durable record of open reservations, posting the
 * actual cost of a delivered result (never more than reserved) or voiding
 * the reservation, and the final reply with the new balance. */
#include "core/notice.h"
#include "core/generate_internal.h"

#include "core/button.h"
#include "core/core.h"
#include "core/messages.h"
#include "core/revenue.h"
#include "core/standing.h"
#include "core/state.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- persistence -------------------------------------------------------- */

static void job__state_done(int rc, const char *value, void *data)
{
    struct job *job = data;
    (void)value;
    if (rc < 0)
        log_warn("generate.persist_failed", "job=%s error=%s", job->id, hb_strerror(rc));
    job__unref(job);
}

/* The record says which reservations may be open, so a restart can void
 * them, the run that wrote it, and what the limits counted, so it can give
 * that back: "<wallet> <number of reservations> <run id> <job__quota_record>". */
const char *job__record(struct job *job, char *buf, size_t cap)
{
    char quota[GEN_QUOTA_RECORD_MAX];
    job__quota_record(job, quota, sizeof(quota));
    snprintf(buf, cap, "%s %u %s %s", job->wallet, job->nres, generate__run(job->g), quota);
    return buf;
}

/* The job's record written (keep) or deleted, in a store job of its own. */
void job__persist(struct job *job, bool keep)
{
    struct ledger *ledger = job->g->core->ledger;
    if (ledger == NULL)
        return;
    char value[GEN_RECORD_MAX];
    job->refs++;
    if (state_put(ledger_store(ledger), GEN_NS_JOB, job->id,
                  keep ? job__record(job, value, sizeof(value)) : NULL, job__state_done, job) < 0)
        job->refs--;
}

/* ---- settlement ---------------------------------------------------------- */

/* In a group the answer is public: its footer shows the cost, never a
 * wallet's balance. The member hears their wallet's balance alone, as an
 * aside where the platform can show it to them in place (a pool's balance
 * is the group's, and /pool shows it). */
static bool job__footer_private(const struct job *job)
{
    return job->who.scope == COMMAND_SCOPE_DM;
}

static void job__balance_aside(struct job *job, int rc, const struct ledger_result *res)
{
    if (rc < 0 || job__footer_private(job) || strcmp(job->payer, job->wallet) != 0)
        return;
    char text[160];
    if (res->balance.pending_debits > 0)
        snprintf(text, sizeof(text), MSG_GEN_ASIDE_BALANCE_HELD, (long long)res->balance.posted,
                 (long long)res->balance.pending_debits);
    else
        snprintf(text, sizeof(text), MSG_GEN_ASIDE_BALANCE, (long long)res->balance.posted);
    struct reply_msg msg = {
        .stage = REPLY_FINAL, .ephemeral = true, .personal = true, .aside = true, .text = text};
    reply_send(job->reply, &msg);
}

static void job__noticed(void *data)
{
    struct job *job = data;
    job__end(job, job->end_rc);
    job__unref(job);
}

static void job__final_balance(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    char balance[96] = "";
    bool shown = rc == 0 && job__footer_private(job); /* else the cost only */
    if (shown && res->balance.pending_debits > 0)
        snprintf(balance, sizeof(balance), MSG_GEN_FOOTER_BALANCE_HELD,
                 (long long)res->balance.posted, (long long)res->balance.pending_debits);
    else if (shown)
        snprintf(balance, sizeof(balance), MSG_GEN_FOOTER_BALANCE, (long long)res->balance.posted);
    const struct catalog_model *m = job->model;
    char footer[512];
    snprintf(footer, sizeof(footer), MSG_GEN_FOOTER, m->name, job__label(m),
             (long long)job->charged, job->charged == 1 ? "" : "s", balance);
    if (job->end_rc == 0 && job->modality == PROVIDER_IMAGE) {
        struct reply_button buttons[2];
        size_t nb = 0;
        if (job->gid[0] != '\0') {
            char payload[32];
            snprintf(payload, sizeof(payload), "r.%s", job->gid);
            if (button_ref_make(buttons[nb].ref, g->core->button_key, "gen", payload, &job->who) ==
                0)
                buttons[nb++].label = MSG_GEN_BUTTON_REGENERATE;
            snprintf(payload, sizeof(payload), "u.%s", job->gid);
            if (button_ref_make(buttons[nb].ref, g->core->button_key, "gen", payload, &job->who) ==
                0)
                buttons[nb++].label = MSG_GEN_BUTTON_UPVOTE;
        }
        struct reply_image image = {.data = job->image,
                                    .len = job->image_len,
                                    .mime = job->mime,
                                    .filename = strcmp(job->mime, "image/png") == 0 ? "image.png"
                                                                                    : "image.jpg"};
        struct reply_msg msg = {.stage = REPLY_FINAL,
                                .text = footer,
                                .image = &image,
                                .buttons = buttons,
                                .nbuttons = nb};
        reply_send(job->reply, &msg);
    } else if (job->end_rc == 0) {
        char tail[sizeof(footer) + 2];
        snprintf(tail, sizeof(tail), MSG_GEN_ANSWER, "", footer);
        job__say_model(job, REPLY_FINAL, job->text != NULL ? job->text : "", tail);
    }
    if (job->end_rc == 0)
        job__balance_aside(job, rc, res);
    /* A low-balance notice owed now is handed on before the job ends, so a
     * daemon draining its work does not stop before it is queued. */
    if (rc == 0 && notices_balance(g->core->notices, job->payer, res->balance.available,
                                   job->who.channel_id, job__noticed, job) == 1)
        return;
    job__noticed(job);
}

static void job__balance_then_end(struct job *job)
{
    struct ledger *ledger = job->g->core->ledger;
    job->refs++;
    if (ledger == NULL || ledger_balance_get(ledger, job->payer, job__final_balance, job) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__final_balance(HB_ECANCELED, &none, job);
    }
}

/* What moves with a charge, in its transaction: the group's standing
 * boards, and what the job gives back of its limits' holds. */
static int job__post_guard(struct store_txn *txn, void *data)
{
    struct job *job = data;
    int rc = job->tally_on ? standing_tally_guard(txn, &job->tally) : 0;
    return rc < 0 ? rc : job__quota_back_run(txn, job);
}

/* What moves with a void, in its transaction. */
static int job__back_guard(struct store_txn *txn, void *data)
{
    return job__quota_back_run(txn, data);
}

/* The charge's outcome, known: rc 0 (charged), HB_EEXISTS (charged by an
 * earlier run of the same job), or the failure that took nothing. */
static void job__posted_known(struct job *job, int rc, const struct ledger_result *res)
{
    job->res_open = false;
    job__quota_settled(job, rc);
    if (rc == HB_EEXISTS)
        job->replayed = true; /* the same job id was charged before: not again */
    if (rc < 0 && rc != HB_EEXISTS) {
        /* The reservation expired or the ledger failed: nothing was taken. */
        log_error("generate.post_failed", "job=%s error=%s", job->id, hb_strerror(rc));
        job->charged = 0;
    }
    job->g->stats.completed++;
    job->g->stats.credits += job->charged;
    metrics_counter_add(metrics_std()->credits_moved, (const char *[]){"generation"},
                        (double)job->charged);
    metrics_counter_add(metrics_std()->generations, (const char *[]){job->model->name, "completed"},
                        1);
    /* Applied now, the post (or void) deleted the record in its own
     * transaction; a replay or a failure did not. */
    if (rc != 0)
        job__persist(job, false);
    log_info("generate.done", "job=%s model=%s charged=%lld in=%ld out=%ld", job->id,
             job->model->name, (long long)job->charged, job->in_tokens, job->out_tokens);
    if (rc == 0 && res->debit_balance && strcmp(res->transfer.debit, job->payer) == 0) {
        /* The charge's own transaction said the payer's balance after it:
         * no second trip to the store (behind the next batch's commit). */
        job->refs++;
        job__final_balance(0, res, job);
    } else {
        job__balance_then_end(job);
    }
    job__unref(job);
}

/* A charge whose commit failed as a whole is read back (job__posted);
 * while the database cannot be reached (the store asked the server what
 * became of the commit for 2 s in vain), the read is tried again every
 * GEN_POST_READ_WAIT_MS, GEN_POST_READS times in all, before the job
 * takes the charge for not made. */
#define GEN_POST_READS 20
#define GEN_POST_READ_WAIT_MS 500

static void job__post_read(int rc, const struct ledger_result *res, void *data);

/* Read the charge back; false when the ledger would not take the read. */
static bool job__post_read_start(struct job *job)
{
    struct ledger *ledger = job->g->core->ledger;
    char post_id[GEN_TRANSFER_ID_MAX];
    job__post_id(job, post_id, sizeof(post_id));
    job->post_reads++;
    return ledger != NULL && ledger_transfer_get(ledger, post_id, job__post_read, job) == 0;
}

static void job__post_read_fail(struct job *job)
{
    struct ledger_result none;
    memset(&none, 0, sizeof(none));
    job__posted_known(job, HB_ESTORAGE, &none);
}

static void job__post_reread(uv_timer_t *t)
{
    struct job *job = t->data;
    if (!job__post_read_start(job))
        job__post_read_fail(job);
}

/* What the ledger holds under the charge's id, read after its commit
 * failed as a whole: there, the charge was made. */
static void job__post_read(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    if (rc == 0) {
        log_warn("generate.post_committed", "job=%s hint=%s", job->id,
                 "the database's answer to the charge's commit was lost; the charge was made");
        job__posted_known(job, 0, res);
        return;
    }
    if (rc != HB_ENOTFOUND && job->post_reads < GEN_POST_READS && job->timer_open &&
        !job->g->closing) {
        /* Not known yet: the database is out of reach. */
        if (job->post_reads == 1)
            log_warn("generate.post_unknown", "job=%s error=%s hint=%s", job->id, hb_strerror(rc),
                     "the charge's commit may have been made; reading it again until the "
                     "database answers");
        uv_timer_start(&job->timer, job__post_reread, GEN_POST_READ_WAIT_MS, 0);
        return;
    }
    job__post_read_fail(job);
}

static void job__posted(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    /* The commit failed as a whole. On a shared ledger its answer may have
     * been lost after the server committed: the ledger says. */
    if (rc == HB_ESTORAGE && job__post_read_start(job))
        return;
    job__posted_known(job, rc, res);
}

static void job__voided_final(int rc, const struct ledger_result *res, void *data);

void job__post_id(const struct job *job, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:post", job->id);
}

void job__void_id(const char *job_id, unsigned nres, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:void%u", job_id, nres);
}

/* Post the actual cost of a delivered result. */
void job__settle(struct job *job)
{
    struct generate *g = job->g;
    const struct catalog_model *m = job->model;
    job->state = JOB_SETTLE;
    if (job->modality == PROVIDER_TEXT) {
        const struct filter *f = catalog_filter(job->cat);
        struct filter_result fr = {0};
        if (filter_apply(f, job->text != NULL ? job->text : "", &fr) == 0) {
            generate__hit(g, f, &fr);
            if (fr.blocked) {
                g->stats.filtered_outputs++;
                log_info("generate.output_blocked", "job=%s rule=%s", job->id, fr.blocked_by);
                snprintf(job->error, sizeof(job->error), MSG_GEN_OUTPUT_FILTERED, fr.blocked_by);
                filter_result_clear(&fr);
                job->end_rc = HB_EPERM;
                job__fail(job);
                return;
            }
            const char *rule = NULL;
            if (job__persona_blocks(job, fr.text, &rule)) {
                g->stats.filtered_outputs++;
                log_info("generate.output_blocked", "job=%s rule=%s", job->id, rule);
                snprintf(job->error, sizeof(job->error), MSG_GEN_OUTPUT_FILTERED, rule);
                filter_result_clear(&fr);
                job->end_rc = HB_EPERM;
                job__fail(job);
                return;
            }
            if (fr.redactions > 0)
                g->stats.redactions++;
            free(job->text);
            job->text = fr.text;
            job->text_len = fr.text_len;
            job->text_cap = fr.text_len + 1;
            fr.text = NULL;
            filter_result_clear(&fr);
        }
    }
    long in = job->in_tokens, out = job->out_tokens;
    if (job->modality == PROVIDER_TEXT) {
        /* Without reported usage, estimate at four bytes a token. */
        if (in < 0)
            in = (long)(job->input_bytes / 4 + 1);
        if (out < 0)
            out = (long)(job->text_len / 4 + 1);
        job->in_tokens = in;
        job->out_tokens = out;
    } else {
        in = out = 0;
        job__image_remember(job);
    }
    int64_t cost = catalog_cost(m, in, out);
    if (job->attached != NULL && m->price_image > 0)
        cost += m->price_image;
    if (cost > job->reserved)
        cost = job->reserved;
    job->charged = cost;
    job->end_rc = 0;
    if (job->modality == PROVIDER_TEXT) {
        job__remember_turn(job);
        /* The turn goes to the store now, just before the charge, so that
         * both share a commit; left for the next turn of the loop it would
         * take a commit of its own, which the member's next job could
         * then wait behind. */
        generate__conv_flush(g);
    }
    struct ledger *ledger = g->core->ledger;
    int64_t tokens = job->modality == PROVIDER_TEXT ? (int64_t)in + out : 0;
    if (!job->res_open) {
        job->charged = 0;
        job__quota_settle(job, tokens, 0);
        job__quota_settled(job, HB_ECANCELED); /* no charge to carry them */
        g->stats.completed++;
        job__persist(job, false);
        job__balance_then_end(job);
        return;
    }
    /* The unused tokens go back, and the key's and the pool's caps count
     * the charge, no longer the reservation: in the charge's transaction. */
    job__quota_settle(job, tokens, cost);
    char post_id[GEN_TRANSFER_ID_MAX];
    job__post_id(job, post_id, sizeof(post_id));
    job->refs++;
    /* The job's record goes in the same transaction as the charge: one
     * commit where there were two, and no record left behind a charge. */
    struct ledger_note forget = {.ns = GEN_NS_JOB, .key = job->id, .value = NULL};
    int rc;
    if (cost > 0) {
        /* [revenue]: the charge's shares go in its own transaction, as
         * transfers out of system:revenue (none without a split). */
        struct revenue_part parts[REVENUE_SHARES_MAX + 1];
        struct ledger_share shares[REVENUE_SHARES_MAX + 1];
        const char *scope = job->who.scope == COMMAND_SCOPE_GROUP ? job->who.scope_id : NULL;
        size_t n = revenue_shares(g->core->revenue, job->who.platform, scope, cost, parts);
        for (size_t i = 0; i < n; i++)
            shares[i] =
                (struct ledger_share){.account = parts[i].account, .amount = parts[i].amount};
        /* In a group the charge also counts on its standing boards
         * (core/standing.h), in the same transaction. */
        struct ledger_transfer post = {.id = post_id,
                                       .pending_id = job->res_id,
                                       .amount = cost,
                                       .guard = job__post_guard,
                                       .guard_data = job};
        job->tally_on = standing_tally_init(&job->tally, job->who.platform, scope, job->who.user_id,
                                            m->name, generate__now(g)) == 0;
        rc = ledger != NULL
                 ? ledger_transfer_post_split(ledger, &post, shares, n, &forget, job__posted, job)
                 : HB_ECANCELED;
    } else {
        struct ledger_transfer nothing = {.id = post_id,
                                          .pending_id = job->res_id,
                                          .flags = LEDGER_TRANSFER_VOID,
                                          .guard = job__back_guard,
                                          .guard_data = job};
        rc = ledger != NULL
                 ? ledger_transfer_create_noted(ledger, &nothing, &forget, job__posted, job)
                 : HB_ECANCELED;
    }
    if (rc < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__posted(rc, &none, job);
    }
}

int job__void(struct job *job, ledger_cb cb)
{
    struct ledger *ledger = job->g->core->ledger;
    if (!job->res_open || ledger == NULL)
        return HB_ECANCELED;
    char void_id[GEN_TRANSFER_ID_MAX];
    job__void_id(job->id, job->nres, void_id, sizeof(void_id));
    struct ledger_note forget = {.ns = GEN_NS_JOB, .key = job->id, .value = NULL};
    /* Nothing was delivered: its counts go back with the void. */
    job__quota_void_prepare(job);
    struct ledger_transfer v = {.id = void_id,
                                .pending_id = job->res_id,
                                .flags = LEDGER_TRANSFER_VOID,
                                .guard = job__back_guard,
                                .guard_data = job};
    return ledger_transfer_create_noted(ledger, &v, &forget, cb, job);
}

static void job__voided_final(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    (void)res;
    job__quota_settled(job, rc);
    if (rc < 0 && rc != HB_EEXISTS)
        log_error("generate.void_failed", "job=%s error=%s", job->id, hb_strerror(rc));
    job->res_open = false;
    if (rc != 0)
        job__persist(job, false); /* else the void deleted it */
    job__say(job, REPLY_FINAL, MSG_GEN_FAILED, job->error);
    job__end(job, job->end_rc < 0 ? job->end_rc : HB_EIO);
    job__unref(job);
}

/* Every model failed (or the job was stopped): void and say so. */
void job__fail(struct job *job)
{
    struct generate *g = job->g;
    job->state = JOB_SETTLE;
    g->stats.failed++;
    metrics_counter_add(metrics_std()->generations,
                        (const char *[]){job->model != NULL ? job->model->name : "-", "failed"}, 1);
    if (job->end_rc == 0)
        job->end_rc = HB_EIO;
    if (job->end_rc != HB_ECANCELED)
        generate__count(g, "failed", job->model != NULL ? job->model->provider->name : "none");
    log_info("generate.failed", "job=%s model=%s", job->id,
             job->model != NULL ? job->model->name : "-");
    job->refs++;
    if (job__void(job, job__voided_final) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__voided_final(job->res_open ? HB_ECANCELED : 0, &none, job);
    }
}
