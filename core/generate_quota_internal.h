/* What the quota's two files share (core/generate_quota.c: counting and
 * giving back; core/generate_quota_record.c: what a job's record says it
 * counted, and what a restart gives back). */
#ifndef HB_GENERATE_QUOTA_INTERNAL_H
#define HB_GENERATE_QUOTA_INTERNAL_H

#include "core/generate_internal.h"

#include <stddef.h>
#include <stdint.h>

#define GEN_COUNTER_USER "gen.user:"       /* + wallet account, per hour */
#define GEN_COUNTER_GROUP "gen.group:"     /* + "<platform>:<group>", per UTC day */
#define GEN_COUNTER_TOKENS "gen.tokens"    /* everyone's tokens, per UTC day */
#define GEN_COUNTER_KEY_DAY "gen.key.day:" /* + API key id: credits, per UTC day */
#define GEN_COUNTER_KEY "gen.key:"         /* + API key id: credits, in one window (0) */
#define GEN_COUNTER_POOL "gen.pool.day:"   /* + pool account: credits, per UTC day */
#define GEN_QUOTA_MAX 6

enum gen_counter { GEN_C_USER, GEN_C_GROUP, GEN_C_TOKENS, GEN_C_KEY_DAY, GEN_C_KEY, GEN_C_POOL };

/* One counter's move. */
struct gen_counter_move {
    enum gen_counter what;
    char name[GEN_KEY_MAX + 16]; /* a prefix above and a key of up to GEN_KEY_MAX */
    int64_t win;                 /* hour or day number */
    int64_t delta;               /* what to add (negative gives back) */
    int64_t limit;               /* bound; 0: none */
    int64_t used;                /* the value after, or the current one when refused */
};

/* One store job that moves up to GEN_QUOTA_MAX counters, all or none. */
struct gen_quota_op {
    struct store_job sj;
    struct generate *g;
    struct job *job; /* holds a reference until done; NULL: g->njobs holds the engine */
    size_t n;
    struct gen_counter_move c[GEN_QUOTA_MAX];
    size_t failed; /* the counter that refused (HB_ELIMIT) */
    /* A transfer id, or "": the moves are made only if the ledger holds no
     * such transfer (then they went in its transaction already), and
     * skipped is set. */
    char unless[GEN_TRANSFER_ID_MAX];
    bool skipped;
    void (*then)(struct gen_quota_op *op, int rc);
    void (*more_cb)(struct job *job, int rc); /* job__quota_tokens_more */
};

/* What a job's record says it holds against an API key's caps or a
 * pool's daily cap (core/generate_quota_record.c). */
struct gen_credit_hold {
    char id[GEN_KEY_MAX]; /* the key's id, or the pool's account */
    int64_t held, day, cap_day, cap_total;
};

/** The entry under key in a map of `size` bytes, made zeroed when absent;
 *  NULL when out of memory. */
void *generate__entry(struct map *m, const char *key, size_t size);
/** The store job's run and done: every move of op, all or none. */
int gen_quota_run(struct store_txn *txn, struct store_job *sj);
void gen_quota_done(struct store_job *sj, int rc);
/** A new op for job (which it does not hold yet); NULL when out of memory. */
struct gen_quota_op *gen_quota_op_new(struct job *job);
/** Add a move of counter prefix+key in window win by delta, bounded by
 *  limit (0: none). */
void gen_quota_add(struct gen_quota_op *op, enum gen_counter what, const char *prefix,
                   const char *key, int64_t win, int64_t delta, int64_t limit);
/** "<platform>:<group>" of the job's scope. */
void job__group_key(const struct job *job, char *buf, size_t cap);
/** Give `back` credits of a hold on API key id's caps back with op (the
 *  day's count only while that day lasts). */
void gen_quota_key_back(struct generate *g, struct gen_quota_op *op, const char *id, int64_t day,
                        int64_t cap_day, int64_t cap_total, int64_t back);
/** Give `back` credits of a hold on a pool's daily cap of `day` back with
 *  op, while that day lasts. */
void gen_quota_pool_back(struct generate *g, struct gen_quota_op *op, const char *pool, int64_t day,
                         int64_t back);

#endif
