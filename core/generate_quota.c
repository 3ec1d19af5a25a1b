/* Quotas: the member's hourly limit, the group's daily limit, the global
 * daily token cap, and the bounds on what one member may have queued. */
#include "core/generate_internal.h"

#include "core/messages.h"

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

/* The entry under key in a map of counters of `size` bytes, made zeroed
 * when absent; NULL when out of memory. */
static void *generate__counter(struct map *m, const char *key, size_t size)
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
    char when[64];
    job->user = generate__counter(g->users, job->wallet, sizeof(*job->user));
    if (job->user == NULL) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return false;
    }
    job->user->jobs++;
    job->user->last_used = now;
    if (job->user->hour != now / GEN_HOUR_MS) {
        job->user->hour = now / GEN_HOUR_MS;
        job->user->count = 0;
    }
    if (l->user_per_hour > 0 && job->user->count >= l->user_per_hour) {
        generate__until(when, sizeof(when), (job->user->hour + 1) * GEN_HOUR_MS - now);
        job__refuse(job, GEN_REFUSE_USER_LIMIT, MSG_GEN_USER_LIMIT, (long long)l->user_per_hour,
                    when);
        return false;
    }
    if (job->who.scope == COMMAND_SCOPE_GROUP) {
        char pkey[GEN_KEY_MAX];
        snprintf(pkey, sizeof(pkey), "%s:%s", command_platform_name(job->who.platform),
                 job->who.scope_id);
        job->pool = generate__counter(g->pools, pkey, sizeof(*job->pool));
        if (job->pool != NULL) {
            job->pool->jobs++;
            job->pool->last_used = now;
        }
        if (job->pool != NULL && job->pool->day != now / GEN_DAY_MS) {
            job->pool->day = now / GEN_DAY_MS;
            job->pool->count = 0;
        }
        if (job->pool != NULL && l->pool_per_day > 0 && job->pool->count >= l->pool_per_day) {
            generate__until(when, sizeof(when), (job->pool->day + 1) * GEN_DAY_MS - now);
            job__refuse(job, GEN_REFUSE_GROUP_LIMIT, MSG_GEN_GROUP_LIMIT,
                        (long long)l->pool_per_day, when);
            return false;
        }
    }
    if (g->token_day != now / GEN_DAY_MS) {
        g->token_day = now / GEN_DAY_MS;
        g->tokens_today = 0;
    }
    if (l->tokens_per_day > 0 && g->tokens_today >= l->tokens_per_day) {
        generate__until(when, sizeof(when), (g->token_day + 1) * GEN_DAY_MS - now);
        job__refuse(job, GEN_REFUSE_TOKEN_CAP, MSG_GEN_TOKEN_CAP, (long long)l->tokens_per_day,
                    when);
        return false;
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

void job__quota_count(struct job *job)
{
    job->user->count++;
    if (job->pool != NULL)
        job->pool->count++;
    job->counted = true;
}

void job__quota_release(struct job *job)
{
    if (!job->counted)
        return;
    /* Nothing was delivered: the attempt does not count against the
     * member's or the scope's allowance. */
    if (job->user != NULL && job->user->count > 0)
        job->user->count--;
    if (job->pool != NULL && job->pool->count > 0)
        job->pool->count--;
}

void generate__tokens_add(struct generate *g, long tokens)
{
    int64_t day = generate__now(g) / GEN_DAY_MS;
    if (day != g->token_day) {
        g->token_day = day;
        g->tokens_today = 0;
    }
    g->tokens_today += tokens;
}

void job__quota_detach(struct job *job)
{
    int64_t now = generate__now(job->g);
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
    /* An idle member's hour and an idle group's day have long passed, so
     * forgetting their counters changes no limit. */
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
