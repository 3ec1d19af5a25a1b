/* Erasing conversations: /forget deletes a member's stored conversations at
 * once, and the hourly pass (generate_conversation.c's timer) deletes what
 * is past the retention period and vacuums after erasures, so that deleted
 * text stays in neither the database nor its WAL (storage/sqlite_conv.c). */
#include "core/generate_internal.h"

#include "storage/store.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "core/link.h"

#include <stdlib.h>
#include <string.h>

struct conv_forget {
    struct store_job job;
    struct generate *g;
    char owner[WALLET_ACCOUNT_MAX];
    char linked[WALLET_ACCOUNT_MAX]; /* the wallet owner is linked to (core/link.h), or "" */
    int64_t turns;
    void (*cb)(int rc, int64_t turns, void *data);
    void *data;
};

static int conv__forget_run(struct store_txn *txn, struct store_job *sj)
{
    struct conv_forget *op = container_of(sj, struct conv_forget, job);
    int rc = store_txn_conv_forget(txn, op->owner, &op->turns);
    int64_t more = 0;
    if (rc == 0 && op->linked[0] != '\0')
        rc = store_txn_conv_forget(txn, op->linked, &more);
    op->turns += more;
    /* The prompts kept with the member's images (for Regenerate) go too;
     * a database older than the images table has none. */
    int64_t prompts = 0;
    int irc = rc == 0 ? store_txn_image_forget(txn, op->owner, &prompts) : 0;
    if (irc == 0 && op->linked[0] != '\0')
        irc = store_txn_image_forget(txn, op->linked, &prompts);
    return rc == 0 && irc != HB_ESCHEMA ? irc : rc;
}

static void conv__forget_done(struct store_job *sj, int rc)
{
    struct conv_forget *op = container_of(sj, struct conv_forget, job);
    struct generate *g = op->g;
    if (rc == 0)
        g->vacuum_due = true;
    else
        log_warn("generate.conversation_forget_failed", "error=%s", hb_strerror(rc));
    if (op->cb != NULL)
        op->cb(rc, op->turns, op->data);
    free(op);
    g->njobs--;
    generate__maybe_free(g);
}

/* Drop the cache entries of owner from a pointer map. */
static void conv__ptrs_drop(struct map *m, const char *owner)
{
    struct map_iter it;
    void *v;
    map_iter_init(&it, m);
    while (map_iter_next(&it, NULL, &v)) {
        if (strcmp(((const struct gen_conv_ptr *)v)->owner, owner) == 0)
            map_iter_remove(&it);
    }
}

int generate_conversation_forget(struct generate *g, const struct invocation *inv,
                                 void (*cb)(int rc, int64_t turns, void *data), void *data)
{
    struct store *store = generate__conv_store(g);
    if (store == NULL || g->closing)
        return HB_ECANCELED;
    struct conv_forget *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    invocation_wallet(inv, op->owner, sizeof(op->owner));
    /* A linked account's conversations since the link are the shared
     * wallet's: they are the member's too. */
    const char *linked = link_wallet(g->core, op->owner);
    snprintf(op->linked, sizeof(op->linked), "%s", linked != NULL ? linked : "");
    struct map_iter it;
    void *v;
    map_iter_init(&it, g->convs);
    while (map_iter_next(&it, NULL, &v)) {
        const char *owner = ((const struct gen_conv *)v)->owner;
        if (strcmp(owner, op->owner) == 0 || strcmp(owner, op->linked) == 0)
            map_iter_remove(&it);
    }
    conv__ptrs_drop(g->conv_places, op->owner);
    conv__ptrs_drop(g->conv_msgs, op->owner);
    generate__images_forget(g, op->owner);
    if (op->linked[0] != '\0')
        generate__images_forget(g, op->linked);
    if (op->linked[0] != '\0') {
        conv__ptrs_drop(g->conv_places, op->linked);
        conv__ptrs_drop(g->conv_msgs, op->linked);
    }
    op->g = g;
    op->cb = cb;
    op->data = data;
    op->job.run = conv__forget_run;
    op->job.done = conv__forget_done;
    g->njobs++;
    generate__conv_flush(g); /* what was said before the erasure goes first */
    int rc = store_submit(store, &op->job);
    if (rc < 0) {
        g->njobs--;
        free(op);
    }
    return rc;
}

struct conv_maintain {
    struct store_job job;
    struct generate *g;
    int64_t before; /* rows last touched before this (ms) go */
    bool vacuum;    /* erasures since the last vacuum */
    int64_t rows;
    void (*cb)(int rc, int64_t rows, void *data);
    void *data;
};

static int conv__maintain_run(struct store_txn *txn, struct store_job *sj)
{
    struct conv_maintain *op = container_of(sj, struct conv_maintain, job);
    int rc = store_txn_conv_expire(txn, op->before, &op->rows);
    if (rc == 0 && (op->vacuum || op->rows > 0))
        store_txn_vacuum_after(txn);
    return rc;
}

static void conv__maintain_done(struct store_job *sj, int rc)
{
    struct conv_maintain *op = container_of(sj, struct conv_maintain, job);
    struct generate *g = op->g;
    if (rc < 0) {
        if (op->vacuum)
            g->vacuum_due = true; /* the next pass tries again */
        log_warn("generate.conversation_retention_failed", "error=%s", hb_strerror(rc));
    } else if (op->rows > 0) {
        log_info("generate.conversations_expired", "rows=%lld", (long long)op->rows);
    }
    if (op->cb != NULL)
        op->cb(rc, op->rows, op->data);
    free(op);
    g->njobs--;
    generate__maybe_free(g);
}

int generate_conversation_maintain(struct generate *g, void (*cb)(int rc, int64_t rows, void *data),
                                   void *data)
{
    struct store *store = generate__conv_store(g);
    if (store == NULL)
        return HB_ECANCELED;
    struct conv_maintain *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    const struct catalog_limits *l = catalog_limits_get(g->cat);
    op->g = g;
    op->before = generate__now(g) - l->conversation_retention_ms;
    op->vacuum = g->vacuum_due;
    op->cb = cb;
    op->data = data;
    op->job.run = conv__maintain_run;
    op->job.done = conv__maintain_done;
    g->vacuum_due = false;
    g->njobs++;
    int rc = store_submit(store, &op->job);
    if (rc < 0) {
        g->vacuum_due = g->vacuum_due || op->vacuum;
        g->njobs--;
        free(op);
    }
    return rc;
}
