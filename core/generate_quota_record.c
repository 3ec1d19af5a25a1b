/* What a job's durable record says the limits counted for it, and what a
 * restart gives back for a job it voids (core/generate_quota.c counts). */
#include "core/generate_internal.h"
#include "core/generate_quota_internal.h"

#include "core/core.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void job__quota_record(const struct job *job, char *buf, size_t cap)
{
    bool user = job->count_user, group = job->count_group;
    int64_t tokens = job->tokens_held, key = job->key_held, key_day = job->key_day;
    int64_t pool = job->pool_held, pool_day = job->pool_day;
    if (job->quota != NULL) {
        /* Prepared to be taken with the reservation this record goes with:
         * if a restart finds that reservation, the counts were taken. */
        int64_t key_more = 0;
        for (size_t i = 0; i < job->quota->n; i++) {
            const struct gen_counter_move *c = &job->quota->c[i];
            if (c->what == GEN_C_USER) {
                user = true;
            } else if (c->what == GEN_C_GROUP) {
                group = true;
            } else if (c->what == GEN_C_TOKENS) {
                tokens = c->delta;
            } else if (c->what == GEN_C_POOL) {
                pool += c->delta;
                pool_day = c->win;
            } else {
                key_more = c->delta;
            }
            if (c->what == GEN_C_KEY_DAY)
                key_day = c->win;
        }
        key += key_more;
    }
    char gkey[GEN_KEY_MAX] = "-";
    if (group)
        job__group_key(job, gkey, sizeof(gkey));
    int n = snprintf(buf, cap, "%lld %lld %lld %d %s", (long long)job->q_hour,
                     (long long)job->q_day, (long long)tokens, user ? 1 : 0, gkey);
    if (job->key_id[0] != '\0' && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " k %s %lld %lld %lld %lld", job->key_id,
                      (long long)key, (long long)key_day, (long long)job->key_cap_day,
                      (long long)job->key_cap_total);
    if (pool > 0 && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " p %s %lld %lld", job->pool_account, (long long)pool,
                 (long long)pool_day);
}

/* A record's parts after its five first fields: the API key's hold (" k
 * <id> <held> <day> <daily cap> <cap>") and the pool's (" p <account>
 * <held> <day>"), each left zero when the record has none. */
static void gen_quota_holds_parse(const char *record, struct gen_credit_hold *k,
                                  struct gen_credit_hold *pool)
{
    memset(k, 0, sizeof(*k));
    memset(pool, 0, sizeof(*pool));
    int at = 0;
    if (sscanf(record, "%*s %*s %*s %*s %*s%n", &at) != 0 || at == 0)
        return;
    for (const char *p = record + at;;) {
        struct gen_credit_hold h = {0};
        long long held = 0, day = 0, cap_day = 0, cap_total = 0;
        int used = 0;
        struct gen_credit_hold *into = NULL;
        if (sscanf(p, " k %399s %lld %lld %lld %lld%n", h.id, &held, &day, &cap_day, &cap_total,
                   &used) == 5 &&
            used > 0) {
            into = k;
        } else if (sscanf(p, " p %399s %lld %lld%n", h.id, &held, &day, &used) == 3 && used > 0) {
            into = pool;
        } else {
            return;
        }
        h.held = held;
        h.day = day;
        h.cap_day = cap_day;
        h.cap_total = cap_total;
        *into = h;
        p += used;
    }
}

void generate__quota_release_record(struct generate *g, const char *wallet, const char *record)
{
    long long hour = 0, day = 0, tokens = 0;
    int user = 0;
    char gkey[GEN_KEY_MAX];
    struct ledger *ledger = g->core->ledger;
    if (record == NULL || ledger == NULL ||
        sscanf(record, "%lld %lld %lld %d %399s", &hour, &day, &tokens, &user, gkey) != 5)
        return; /* a record of an older version, or none: nothing was counted */
    struct gen_quota_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->g = g;
    op->sj.run = gen_quota_run;
    op->sj.done = gen_quota_done;
    /* Only windows still open matter: a past hour or day no longer limits. */
    int64_t now = generate__now(g);
    if (user == 1 && hour == now / GEN_HOUR_MS)
        gen_quota_add(op, GEN_C_USER, GEN_COUNTER_USER, wallet, hour, -1, 0);
    if (strcmp(gkey, "-") != 0 && day == now / GEN_DAY_MS)
        gen_quota_add(op, GEN_C_GROUP, GEN_COUNTER_GROUP, gkey, day, -1, 0);
    if (tokens > 0 && day == now / GEN_DAY_MS)
        gen_quota_add(op, GEN_C_TOKENS, GEN_COUNTER_TOKENS, "", day, -tokens, 0);
    struct gen_credit_hold key, pool;
    gen_quota_holds_parse(record, &key, &pool);
    gen_quota_key_back(g, op, key.id, key.day, key.cap_day, key.cap_total, key.held);
    gen_quota_pool_back(g, op, pool.id, pool.day, pool.held);
    if (op->n == 0) {
        free(op);
        return;
    }
    g->njobs++;
    if (store_submit(ledger_store(ledger), &op->sj) < 0) {
        free(op);
        g->njobs--;
    }
}

void job__quota_restore(struct job *job, const char *record)
{
    struct generate *g = job->g;
    int64_t now = generate__now(g);
    job->user = generate__entry(g->users, job->wallet, sizeof(*job->user));
    if (job->user != NULL) {
        job->user->jobs++;
        job->user->last_used = now;
    }
    if (job->who.scope == COMMAND_SCOPE_GROUP) {
        char pkey[GEN_KEY_MAX];
        job__group_key(job, pkey, sizeof(pkey));
        job->pool = generate__entry(g->pools, pkey, sizeof(*job->pool));
        if (job->pool != NULL) {
            job->pool->jobs++;
            job->pool->last_used = now;
        }
    }
    long long hour = 0, day = 0, tokens = 0;
    int user = 0;
    char gkey[GEN_KEY_MAX];
    if (record == NULL ||
        sscanf(record, "%lld %lld %lld %d %399s", &hour, &day, &tokens, &user, gkey) != 5)
        return;
    job->q_hour = hour;
    job->q_day = day;
    job->tokens_held = tokens;
    job->count_user = user == 1;
    job->count_group = strcmp(gkey, "-") != 0;
    struct gen_credit_hold key, pool;
    gen_quota_holds_parse(record, &key, &pool);
    if (key.id[0] != '\0') {
        snprintf(job->key_id, sizeof(job->key_id), "%s", key.id);
        job->key_held = key.held;
        job->key_day = key.day;
        job->key_cap_day = key.cap_day;
        job->key_cap_total = key.cap_total;
    }
    job->pool_held = pool.held;
    job->pool_day = pool.day;
    if (pool.held > 0 && job->pool_account[0] == '\0' &&
        strlen(pool.id) < sizeof(job->pool_account))
        memcpy(job->pool_account, pool.id, strlen(pool.id) + 1);
    job->counted = job->count_user || job->count_group || tokens > 0 || job->key_held > 0 ||
                   job->pool_held > 0;
}
