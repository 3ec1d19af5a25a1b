/* Model preferences: each member's model of choice (/model), durable in
 * the state table and cached here. */
#include "core/generate_internal.h"

#include "core/core.h"
#include "core/state.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void job__pref_loaded(int rc, const char *value, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    /* Cache what the store said, unless /model set one meanwhile. */
    if (map_get(g->prefs, job->wallet) == NULL) {
        struct gen_pref *p = calloc(1, sizeof(*p));
        if (p != NULL) {
            snprintf(p->model, sizeof(p->model), "%s", rc == 0 && value != NULL ? value : "");
            p->last_used = generate__now(g);
            if (map_set(g->prefs, job->wallet, p) < 0)
                free(p);
        }
    }
    if (rc == 0 && value != NULL && job->want_model[0] == '\0') {
        const struct catalog_model *m = catalog_model_find(job->cat, value);
        if (m != NULL && m->modality == job->modality && m->enabled)
            snprintf(job->want_model, sizeof(job->want_model), "%s", value);
    }
    job__admit(job);
    job__unref(job);
}

void job__preference_then_admit(struct job *job)
{
    struct generate *g = job->g;
    if (job->want_model[0] != '\0') {
        job__admit(job);
        return;
    }
    struct gen_pref *p = map_get(g->prefs, job->wallet);
    if (p != NULL) {
        p->last_used = generate__now(g);
        const struct catalog_model *m =
            p->model[0] != '\0' ? catalog_model_find(job->cat, p->model) : NULL;
        if (m != NULL && m->modality == job->modality && m->enabled)
            snprintf(job->want_model, sizeof(job->want_model), "%s", p->model);
        job__admit(job);
        return;
    }
    struct ledger *ledger = g->core->ledger;
    job->refs++;
    if (ledger == NULL ||
        state_get(ledger_store(ledger), GEN_NS_PREF, job->wallet, job__pref_loaded, job) < 0)
        job__pref_loaded(HB_ECANCELED, NULL, job);
}

struct pref_op {
    void (*cb)(int rc, void *data);
    void *data;
};

static void pref__stored(int rc, const char *value, void *data)
{
    struct pref_op *op = data;
    (void)value;
    op->cb(rc, op->data);
    free(op);
}

int generate_preference_set(struct generate *g, const struct invocation *inv, const char *model,
                            void (*cb)(int rc, void *data), void *data)
{
    char wallet[WALLET_ACCOUNT_MAX];
    int rc = wallet_account(g->core, inv, wallet, sizeof(wallet));
    if (rc < 0)
        return rc;
    if (g->core->ledger == NULL)
        return HB_ECANCELED;
    struct gen_pref *p = map_get(g->prefs, wallet);
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return HB_ENOMEM;
        if (map_set(g->prefs, wallet, p) < 0) {
            free(p);
            return HB_ENOMEM;
        }
    }
    snprintf(p->model, sizeof(p->model), "%s", model);
    p->last_used = generate__now(g);
    struct pref_op *op = malloc(sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->cb = cb;
    op->data = data;
    rc = state_put(ledger_store(g->core->ledger), GEN_NS_PREF, wallet, model, pref__stored, op);
    if (rc < 0)
        free(op);
    return rc;
}

const char *generate_preference_cached(struct generate *g, const struct invocation *inv)
{
    char wallet[WALLET_ACCOUNT_MAX];
    if (wallet_account(g->core, inv, wallet, sizeof(wallet)) < 0)
        return "";
    const struct gen_pref *p = map_get(g->prefs, wallet);
    return p != NULL ? p->model : "";
}

void generate__prefs_prune(struct generate *g, int64_t before)
{
    struct map_iter it;
    void *v;
    map_iter_init(&it, g->prefs);
    while (map_iter_next(&it, NULL, &v)) {
        if (((const struct gen_pref *)v)->last_used < before)
            map_iter_remove(&it);
    }
}
