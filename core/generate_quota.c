/* Quotas: the member's hourly limit, the group's daily limit, the global
 * daily token cap, an API key's spending caps, and the bounds on what one
 * member may have queued.
 *
 * The limits are durable counters in the store (storage/store.h), one per
 * member and hour, per group and day, and one for the day's tokens. A job
 * takes its counts and its token upper bound inside the transaction of its
 * credit reservation (the ledger transfer's guard), where each counter
 * moves by one conditional update that refuses to pass its bound: all or
 * none with the reservation, in the same commit (no fsync of its own),
 * exact across restarts, and across several daemons sharing the ledger.
 * Giving back moves in the same way with the job's last ledger transfer:
 * a failure's counts with its void, the unused tokens and the credits held
 * beyond the charge with its post (the guards of those transfers), so a
 * crash never splits them. What is in flight (queued and running jobs)
 * stays in this daemon's memory.
 *
 * An API key's caps are counters of credits, per key and UTC day and per
 * key in total: each reservation counts what it holds (a fallback's dearer
 * one the difference), refused when that would pass a cap, and the charge
 * settles the count to what was charged. So concurrent requests, and
 * several daemons over one ledger, never spend past a cap together. A
 * pool's daily cap is counted the same way by the reservations the pool
 * pays (its counter starts with the day's first one under a cap; the
 * day's spend read before a job covers what came before, as on the day a
 * cap is set), and a reservation it refuses goes to the member's wallet
 * when the policy allows. */
#include "core/generate_internal.h"
#include "core/generate_quota_internal.h"

#include "core/core.h"
#include "core/messages.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "in 23 min" / "in 2 h 5 min" until a window's end. */
static void generate__until(char *buf, size_t cap, int64_t ms)
{
    int64_t min = (ms + 59999) / 60000;
    if (min < 60)
        snprintf(buf, cap, MSG_GEN_UNTIL_MIN, (long long)(min < 1 ? 1 : min));
    else
        snprintf(buf, cap, MSG_GEN_UNTIL_H_MIN, (long long)(min / 60), (long long)(min % 60));
}

/* The entry under key in a map of `size` bytes, made zeroed when absent;
 * NULL when out of memory. */
void *generate__entry(struct map *m, const char *key, size_t size)
{
    void *c = map_get(m, key);
    if (c != NULL)
        return c;
    c = calloc(1, size);
    if (c == NULL || map_set(m, key, c) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

bool job__quota_admit(struct job *job)
{
    struct generate *g = job->g;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    int64_t now = generate__now(g);
    job->user = generate__entry(g->users, job->wallet, sizeof(*job->user));
    if (job->user == NULL) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return false;
    }
    job->user->jobs++;
    job->user->last_used = now;
    if (job->who.scope == COMMAND_SCOPE_GROUP) {
        char pkey[GEN_KEY_MAX];
        snprintf(pkey, sizeof(pkey), "%s:%s", command_platform_name(job->who.platform),
                 job->who.scope_id);
        job->pool = generate__entry(g->pools, pkey, sizeof(*job->pool));
        if (job->pool != NULL) {
            job->pool->jobs++;
            job->pool->last_used = now;
        }
    }
    if (job->user->queued + job->user->running >= (unsigned)(l->user_queue + l->user_in_flight)) {
        job__refuse(job, GEN_REFUSE_BUSY, MSG_GEN_USER_BUSY, job->user->queued + job->user->running,
                    job->user->queued + job->user->running == 1 ? "" : "s");
        return false;
    }
    if ((int64_t)g->nqueued >= l->queue_max) {
        job__refuse(job, GEN_REFUSE_BUSY, MSG_GEN_BOT_BUSY, g->nqueued);
        return false;
    }
    return true;
}

int64_t job__tokens_bound(const struct job *job, const struct catalog_model *m)
{
    if (job->modality != PROVIDER_TEXT || m == NULL)
        return 0;
    return (int64_t)job->input_bytes + (int64_t)job__system_bytes(job, m) + job__max_tokens(job, m);
}

/* ---- the store job -------------------------------------------------------- */

int gen_quota_run(struct store_txn *txn, struct store_job *sj)
{
    struct gen_quota_op *op = container_of(sj, struct gen_quota_op, sj);
    if (op->unless[0] != '\0') {
        struct store_transfer t;
        int rc = store_txn_transfer_get(txn, op->unless, &t);
        if (rc == 0) {
            op->skipped = true;
            return 0;
        }
        if (rc != HB_ENOTFOUND)
            return rc;
    }
    for (size_t i = 0; i < op->n; i++) {
        int rc = store_txn_counter_add(txn, op->c[i].name, op->c[i].win, op->c[i].delta,
                                       op->c[i].limit, &op->c[i].used);
        if (rc < 0) {
            /* The store rolls back this job's savepoint: the counters
             * moved before this one move back. */
            op->failed = i;
            return rc;
        }
    }
    return 0;
}

/* Keep the statistics' copy of today's token count as the store said. */
static void gen_quota_seen(const struct gen_quota_op *op, int rc)
{
    struct generate *g = op->g;
    for (size_t i = 0; i < op->n; i++) {
        bool seen = rc == 0 || (rc == HB_ELIMIT && i == op->failed);
        if (op->c[i].what == GEN_C_TOKENS && seen && op->c[i].win >= g->token_day) {
            g->token_day = op->c[i].win;
            g->tokens_today = op->c[i].used;
        }
    }
}

void gen_quota_done(struct store_job *sj, int rc)
{
    struct gen_quota_op *op = container_of(sj, struct gen_quota_op, sj);
    struct job *job = op->job;
    struct generate *g = op->g;
    if (!op->skipped)
        gen_quota_seen(op, rc);
    if (rc < 0 && rc != HB_ELIMIT)
        log_warn("generate.quota_failed", "job=%s error=%s", job != NULL ? job->id : "-",
                 hb_strerror(rc));
    if (op->then != NULL)
        op->then(op, rc);
    free(op);
    if (job != NULL) {
        job__unref(job);
    } else {
        g->njobs--;
        generate__maybe_free(g);
    }
}

struct gen_quota_op *gen_quota_op_new(struct job *job)
{
    struct gen_quota_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->job = job;
    op->g = job->g;
    op->sj.run = gen_quota_run;
    op->sj.done = gen_quota_done;
    op->sj.grouped = true; /* run sets each count it reports, and failed */
    return op;
}

void gen_quota_add(struct gen_quota_op *op, enum gen_counter what, const char *prefix,
                   const char *key, int64_t win, int64_t delta, int64_t limit)
{
    op->c[op->n].what = what;
    snprintf(op->c[op->n].name, sizeof(op->c[op->n].name), "%s%s", prefix, key);
    op->c[op->n].win = win;
    op->c[op->n].delta = delta;
    op->c[op->n].limit = limit;
    op->n++;
}

/* Submit op (which holds a new job reference). Returns 0, or a negative
 * code after freeing op and dropping the reference (no callback). */
static int gen_quota_submit(struct gen_quota_op *op)
{
    struct job *job = op->job;
    struct ledger *ledger = job->g->core->ledger;
    job->refs++;
    int rc = ledger != NULL ? store_submit(ledger_store(ledger), &op->sj) : HB_ECANCELED;
    if (rc < 0) {
        free(op);
        job->refs--;
    }
    return rc;
}

void job__group_key(const struct job *job, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:%s", command_platform_name(job->who.platform), job->who.scope_id);
}

/* ---- admission ---------------------------------------------------------- */

/* The counts were taken: remember what to give back. */
static void job__quota_counted(struct job *job, const struct gen_quota_op *op)
{
    job->counted = true;
    int64_t key = 0;
    for (size_t i = 0; i < op->n; i++) {
        switch (op->c[i].what) {
        case GEN_C_USER:
            job->count_user = true;
            break;
        case GEN_C_GROUP:
            job->count_group = true;
            break;
        case GEN_C_TOKENS:
            job->tokens_held = op->c[i].delta;
            break;
        case GEN_C_KEY_DAY:
            job->key_day = op->c[i].win;
            key = op->c[i].delta;
            break;
        case GEN_C_KEY:
            key = op->c[i].delta;
            break;
        case GEN_C_POOL:
            job->pool_day = op->c[i].win;
            job->pool_held += op->c[i].delta;
            break;
        }
    }
    job->key_held += key;
}

/* A limit refused the job: say which, and when it resets. */
static void job__quota_refuse(struct job *job, const struct gen_quota_op *op)
{
    int64_t now = generate__now(job->g);
    char when[64];
    const struct gen_counter_move *c = &op->c[op->failed];
    switch (c->what) {
    case GEN_C_USER:
        generate__until(when, sizeof(when), (c->win + 1) * GEN_HOUR_MS - now);
        job__refuse(job, GEN_REFUSE_USER_LIMIT, MSG_GEN_USER_LIMIT, (long long)c->limit, when);
        break;
    case GEN_C_GROUP:
        generate__until(when, sizeof(when), (c->win + 1) * GEN_DAY_MS - now);
        job__refuse(job, GEN_REFUSE_GROUP_LIMIT, MSG_GEN_GROUP_LIMIT, (long long)c->limit, when);
        break;
    case GEN_C_TOKENS:
        generate__until(when, sizeof(when), (c->win + 1) * GEN_DAY_MS - now);
        if (c->used >= c->limit)
            job__refuse(job, GEN_REFUSE_TOKEN_CAP, MSG_GEN_TOKEN_CAP, (long long)c->limit, when);
        else
            job__refuse(job, GEN_REFUSE_TOKEN_CAP, MSG_GEN_TOKEN_CAP_SHORT, (long long)c->delta,
                        (long long)c->limit, (long long)(c->limit - c->used), when);
        break;
    case GEN_C_KEY_DAY:
    case GEN_C_KEY: {
        int64_t left = c->limit - c->used > 0 ? c->limit - c->used : 0;
        if (c->what == GEN_C_KEY_DAY)
            job__refuse(job, GEN_REFUSE_KEY_DAY, MSG_GEN_KEY_DAY_CAP, (long long)job->reserved,
                        (long long)c->limit, (long long)left);
        else
            job__refuse(job, GEN_REFUSE_KEY_TOTAL, MSG_GEN_KEY_TOTAL_CAP, (long long)job->reserved,
                        (long long)c->limit, (long long)left);
        break;
    }
    case GEN_C_POOL:
        generate__until(when, sizeof(when), (c->win + 1) * GEN_DAY_MS - now);
        job__refuse(job, GEN_REFUSE_GROUP_LIMIT, MSG_GEN_POOL_CAP, (long long)job->reserved,
                    (long long)c->limit,
                    (long long)(c->limit - c->used > 0 ? c->limit - c->used : 0), when);
        break;
    }
}

void job__quota_prepare(struct job *job, int64_t tokens)
{
    struct generate *g = job->g;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    int64_t now = generate__now(g);
    job->q_hour = now / GEN_HOUR_MS;
    job->q_day = now / GEN_DAY_MS;
    struct gen_quota_op *op = gen_quota_op_new(job);
    if (op == NULL) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    /* A limit of 0 means none: nothing to count (a limit set later starts
     * counting from then). */
    if (l->user_per_hour > 0)
        gen_quota_add(op, GEN_C_USER, GEN_COUNTER_USER, job->wallet, job->q_hour, 1,
                      l->user_per_hour);
    if (l->pool_per_day > 0 && job->who.scope == COMMAND_SCOPE_GROUP) {
        char gkey[GEN_KEY_MAX];
        job__group_key(job, gkey, sizeof(gkey));
        gen_quota_add(op, GEN_C_GROUP, GEN_COUNTER_GROUP, gkey, job->q_day, 1, l->pool_per_day);
    }
    if (l->tokens_per_day > 0 && tokens > 0)
        gen_quota_add(op, GEN_C_TOKENS, GEN_COUNTER_TOKENS, "", job->q_day, tokens,
                      l->tokens_per_day);
    if (op->n == 0) {
        /* Nothing to count; tokens still add up for the statistics. */
        free(op);
        job->counted = true;
    } else {
        job->quota = op;
    }
    job__admit_counted(job);
}

static int gen_quota_guard(struct store_txn *txn, void *data)
{
    struct gen_quota_op *op = data;
    return gen_quota_run(txn, &op->sj);
}

/* The counts of credits for a reservation of `amount` (its API key's caps,
 * and the pool's daily cap when the pool pays) into job->quota (made when
 * there is none), in place of any put there for an earlier try: what it
 * holds beyond what the job holds already. Returns 0 or HB_ENOMEM. */
static int job__quota_credit_moves(struct job *job, int64_t amount)
{
    bool pool = strcmp(job->payer, job->pool_account) == 0 && job->pool_settings.daily_cap > 0;
    if (job->key_id[0] == '\0' && !pool && (job->quota == NULL || job->quota->n == 0))
        return 0;
    struct gen_quota_op *op = job->quota;
    if (op == NULL) {
        op = gen_quota_op_new(job);
        if (op == NULL)
            return HB_ENOMEM;
        job->quota = op;
    }
    size_t kept = 0;
    for (size_t i = 0; i < op->n; i++)
        if (op->c[i].what != GEN_C_KEY_DAY && op->c[i].what != GEN_C_KEY &&
            op->c[i].what != GEN_C_POOL)
            op->c[kept++] = op->c[i];
    op->n = kept;
    if (pool) {
        int64_t more = amount - job->pool_held;
        if (more > 0)
            gen_quota_add(op, GEN_C_POOL, GEN_COUNTER_POOL, job->pool_account,
                          job->pool_held > 0 ? job->pool_day : generate__now(job->g) / GEN_DAY_MS,
                          more, job->pool_settings.daily_cap);
    }
    if (job->key_id[0] == '\0')
        return 0;
    int64_t delta = amount - job->key_held;
    if (delta > 0 && job->key_cap_day > 0)
        gen_quota_add(op, GEN_C_KEY_DAY, GEN_COUNTER_KEY_DAY, job->key_id,
                      job->key_held > 0 ? job->key_day : generate__now(job->g) / GEN_DAY_MS, delta,
                      job->key_cap_day);
    if (delta > 0 && job->key_cap_total > 0)
        gen_quota_add(op, GEN_C_KEY, GEN_COUNTER_KEY, job->key_id, 0, delta, job->key_cap_total);
    return 0;
}

int job__quota_guard(struct job *job, int64_t amount, struct ledger_transfer *t)
{
    if (job__quota_credit_moves(job, amount) < 0)
        return HB_ENOMEM;
    if (job->quota == NULL)
        return 0;
    if (job->quota->n == 0) {
        free(job->quota); /* nothing to count */
        job->quota = NULL;
        return 0;
    }
    t->guard = gen_quota_guard;
    t->guard_data = job->quota;
    return 0;
}

bool job__quota_pool_refused(const struct job *job, int rc)
{
    const struct gen_quota_op *op = job->quota;
    return rc == HB_ELIMIT && op != NULL && op->failed < op->n &&
           op->c[op->failed].what == GEN_C_POOL;
}

bool job__quota_reserved(struct job *job, int rc)
{
    struct gen_quota_op *op = job->quota;
    if (op == NULL)
        return false;
    if (rc == 0) {
        /* Taken in the reservation's commit. */
        gen_quota_seen(op, rc);
        job__quota_counted(job, op);
    } else if (rc == HB_ELIMIT) {
        gen_quota_seen(op, rc);
    } else {
        return false; /* the store undid the counts; a retry takes them again */
    }
    job->quota = NULL;
    if (rc == HB_ELIMIT)
        job__quota_refuse(job, op);
    free(op);
    return rc == HB_ELIMIT;
}

static void job__quota_alone_done(struct gen_quota_op *op, int rc)
{
    struct job *job = op->job;
    if (rc == 0)
        job__quota_counted(job, op);
    if (rc == HB_ELIMIT)
        job__quota_refuse(job, op);
    else if (rc < 0)
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_NOT_RESERVED, hb_strerror(rc));
    else if (job->g->closing)
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
    else if (job->hold)
        job__hold(job); /* a free job an admin decides first (generate_approval.c) */
    else
        job__enqueue(job);
}

void job__quota_take_alone(struct job *job)
{
    struct gen_quota_op *op = job->quota;
    job->quota = NULL;
    if (op == NULL) {
        if (job->hold)
            job__hold(job);
        else
            job__enqueue(job);
        return;
    }
    op->then = job__quota_alone_done;
    int rc = gen_quota_submit(op);
    if (rc < 0)
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_NOT_RESERVED, hb_strerror(rc));
}

/* ---- a fallback's larger bound -------------------------------------------- */

static void job__quota_more_done(struct gen_quota_op *op, int rc)
{
    struct job *job = op->job;
    if (rc == 0) {
        job->tokens_held += op->c[0].delta;
        if (job->res_open)
            job__persist(job, true); /* a restart gives these back too */
    } else if (rc == HB_ELIMIT)
        snprintf(job->error, sizeof(job->error), MSG_GEN_TOKEN_CAP_FALLBACK, job->model->name,
                 (long long)op->c[0].limit);
    else
        snprintf(job->error, sizeof(job->error), MSG_GEN_NOT_RESERVED, hb_strerror(rc));
    op->more_cb(job, rc);
}

void job__quota_tokens_more(struct job *job, int64_t tokens, void (*cb)(struct job *job, int rc))
{
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    int64_t more = tokens - job->tokens_held;
    if (l->tokens_per_day <= 0 || more <= 0 || !job->counted) {
        cb(job, 0);
        return;
    }
    struct gen_quota_op *op = gen_quota_op_new(job);
    if (op == NULL) {
        snprintf(job->error, sizeof(job->error), MSG_COMMON_OUT_OF_MEMORY);
        cb(job, HB_ENOMEM);
        return;
    }
    op->then = job__quota_more_done;
    op->more_cb = cb;
    gen_quota_add(op, GEN_C_TOKENS, GEN_COUNTER_TOKENS, "", job->q_day, more, l->tokens_per_day);
    int rc = gen_quota_submit(op);
    if (rc < 0) {
        snprintf(job->error, sizeof(job->error), MSG_GEN_NOT_RESERVED, hb_strerror(rc));
        cb(job, rc);
    }
}

/* ---- giving back ---------------------------------------------------------- */

void gen_quota_key_back(struct generate *g, struct gen_quota_op *op, const char *id, int64_t day,
                        int64_t cap_day, int64_t cap_total, int64_t back)
{
    if (back <= 0 || id[0] == '\0')
        return;
    if (cap_day > 0 && day == generate__now(g) / GEN_DAY_MS)
        gen_quota_add(op, GEN_C_KEY_DAY, GEN_COUNTER_KEY_DAY, id, day, -back, 0);
    if (cap_total > 0)
        gen_quota_add(op, GEN_C_KEY, GEN_COUNTER_KEY, id, 0, -back, 0);
}

void gen_quota_pool_back(struct generate *g, struct gen_quota_op *op, const char *pool, int64_t day,
                         int64_t back)
{
    if (back > 0 && day == generate__now(g) / GEN_DAY_MS)
        gen_quota_add(op, GEN_C_POOL, GEN_COUNTER_POOL, pool, day, -back, 0);
}

static void job__quota_key_back(struct job *job, struct gen_quota_op *op, int64_t back)
{
    gen_quota_key_back(job->g, op, job->key_id, job->key_day, job->key_cap_day, job->key_cap_total,
                       back);
    if (back > 0 && job->key_id[0] != '\0')
        job->key_held -= back;
}

static void job__quota_pool_back(struct job *job, struct gen_quota_op *op, int64_t back)
{
    gen_quota_pool_back(job->g, op, job->pool_account, job->pool_day, back);
    if (back > 0)
        job->pool_held -= back;
}

/* What a job gives back once it used `tokens` and is charged `charged`:
 * the tokens it held beyond what it used, and the credits it held against
 * its API key's caps and its pool's daily cap beyond the charge. NULL when
 * nothing goes back, or out of memory (the holds then stay counted: a cap
 * ends tighter, never looser). The job's holds are left as they are. */
static struct gen_quota_op *job__quota_back_op(struct job *job, int64_t tokens, int64_t charged)
{
    int64_t tokens_back =
        job->tokens_held - (tokens < job->tokens_held ? tokens : job->tokens_held);
    int64_t key_back = job->key_held - (charged < job->key_held ? charged : job->key_held);
    int64_t pool_back = job->pool_held - (charged < job->pool_held ? charged : job->pool_held);
    if (tokens_back <= 0 && key_back <= 0 && pool_back <= 0)
        return NULL;
    struct gen_quota_op *op = gen_quota_op_new(job);
    if (op == NULL)
        return NULL;
    if (tokens_back > 0)
        gen_quota_add(op, GEN_C_TOKENS, GEN_COUNTER_TOKENS, "", job->q_day, -tokens_back, 0);
    gen_quota_key_back(job->g, op, job->key_id, job->key_day, job->key_cap_day, job->key_cap_total,
                       key_back);
    gen_quota_pool_back(job->g, op, job->pool_account, job->pool_day, pool_back);
    if (op->n == 0) {
        free(op);
        return NULL;
    }
    return op;
}

/* Nothing was delivered: the moves that give back the job's counts, its
 * tokens and its credits held, which the job forgets. NULL when none (or
 * out of memory, logged). */
static struct gen_quota_op *job__quota_release_op(struct job *job)
{
    if (!job->counted)
        return NULL;
    job->counted = false;
    /* The attempt does not count against the member's or the scope's
     * allowance, and its tokens go back. */
    struct gen_quota_op *op = gen_quota_op_new(job);
    if (op == NULL) {
        log_warn("generate.quota_release_failed", "job=%s error=%s", job->id,
                 hb_strerror(HB_ENOMEM));
        return NULL;
    }
    if (job->count_user)
        gen_quota_add(op, GEN_C_USER, GEN_COUNTER_USER, job->wallet, job->q_hour, -1, 0);
    if (job->count_group) {
        char gkey[GEN_KEY_MAX];
        job__group_key(job, gkey, sizeof(gkey));
        gen_quota_add(op, GEN_C_GROUP, GEN_COUNTER_GROUP, gkey, job->q_day, -1, 0);
    }
    if (job->tokens_held > 0)
        gen_quota_add(op, GEN_C_TOKENS, GEN_COUNTER_TOKENS, "", job->q_day, -job->tokens_held, 0);
    job__quota_key_back(job, op, job->key_held);
    job__quota_pool_back(job, op, job->pool_held);
    job->count_user = job->count_group = false;
    job->tokens_held = 0;
    if (op->n == 0) {
        free(op);
        return NULL;
    }
    return op;
}

static void job__quota_back_submit(struct job *job, struct gen_quota_op *op)
{
    int rc = op != NULL ? gen_quota_submit(op) : 0;
    if (rc < 0)
        log_warn("generate.quota_back_failed", "job=%s error=%s", job->id, hb_strerror(rc));
}

void job__quota_release(struct job *job)
{
    job__quota_back_submit(job, job__quota_release_op(job));
}

void job__quota_settle(struct job *job, int64_t tokens, int64_t charged)
{
    struct generate *g = job->g;
    if (tokens < 0)
        tokens = 0;
    if (job->tokens_held <= 0) {
        /* No cap is set: count for the statistics only. */
        int64_t day = generate__now(g) / GEN_DAY_MS;
        if (day != g->token_day) {
            g->token_day = day;
            g->tokens_today = 0;
        }
        g->tokens_today += tokens;
    }
    job->settle_tokens = tokens;
    free(job->back);
    job->back = job__quota_back_op(job, tokens, charged);
    job->back_kind = JOB_BACK_SETTLE;
}

void job__quota_void_prepare(struct job *job)
{
    free(job->back);
    job->back = job__quota_release_op(job);
    job->back_kind = JOB_BACK_RELEASE;
}

int job__quota_back_run(struct store_txn *txn, struct job *job)
{
    return job->back != NULL ? gen_quota_run(txn, &job->back->sj) : 0;
}

void job__quota_settled(struct job *job, int rc)
{
    struct gen_quota_op *op = job->back;
    enum job_back kind = job->back_kind;
    job->back = NULL;
    job->back_kind = JOB_BACK_NONE;
    if (kind == JOB_BACK_NONE)
        return;
    if (rc == 0 || rc == HB_EEXISTS) {
        /* Given back in the charge's or the void's own commit (a replay:
         * in the first one's). */
        if (op != NULL && rc == 0)
            gen_quota_seen(op, 0);
        free(op);
        op = NULL;
    } else if (kind == JOB_BACK_SETTLE) {
        /* Nothing was charged: every credit held goes back, with the
         * unused tokens, on their own. */
        free(op);
        op = job__quota_back_op(job, job->settle_tokens, 0);
    }
    if (op != NULL) {
        /* The void or the charge failed, as far as this daemon knows: its
         * commit's answer may have been lost after the server committed
         * (PostgreSQL), and then what it carried moved already. */
        if (kind == JOB_BACK_SETTLE)
            job__post_id(job, op->unless, sizeof(op->unless));
        else
            job__void_id(job->id, job->nres, op->unless, sizeof(op->unless));
        job__quota_back_submit(job, op);
    }
    if (kind == JOB_BACK_SETTLE)
        job->tokens_held = job->key_held = job->pool_held = 0;
}

void job__quota_detach(struct job *job)
{
    int64_t now = generate__now(job->g);
    free(job->quota); /* prepared, never taken */
    job->quota = NULL;
    free(job->back);
    job->back = NULL;
    if (job->user != NULL) {
        job->user->jobs--;
        job->user->last_used = now;
        job->user = NULL;
    }
    if (job->pool != NULL) {
        job->pool->jobs--;
        job->pool->last_used = now;
        job->pool = NULL;
    }
}

void generate__quota_prune(struct generate *g, int64_t before)
{
    /* An idle member or group has nothing in flight here; its counts live
     * in the store. */
    struct map_iter it;
    void *v;
    map_iter_init(&it, g->users);
    while (map_iter_next(&it, NULL, &v)) {
        const struct gen_user *u = v;
        if (u->jobs == 0 && u->last_used < before)
            map_iter_remove(&it);
    }
    map_iter_init(&it, g->pools);
    while (map_iter_next(&it, NULL, &v)) {
        const struct gen_pool *p = v;
        if (p->jobs == 0 && p->last_used < before)
            map_iter_remove(&it);
    }
}
