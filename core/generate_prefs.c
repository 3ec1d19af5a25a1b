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
    struct gen_pref *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        snprintf(p->key, sizeof(p->key), "%s", job->wallet);
        snprintf(p->model, sizeof(p->model), "%s", rc == 0 && value != NULL ? value : "");
        p->next = g->prefs;
        g->prefs = p;
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
    for (struct gen_pref *p = g->prefs; p != NULL; p = p->next) {
        if (strcmp(p->key, job->wallet) == 0) {
            const struct catalog_model *m =
                p->model[0] != '\0' ? catalog_model_find(job->cat, p->model) : NULL;
            if (m != NULL && m->modality == job->modality && m->enabled)
                snprintf(job->want_model, sizeof(job->want_model), "%s", p->model);
            job__admit(job);
            return;
        }
    }
    struct ledger *ledger = g->core->ledger;
    job->refs++;
    if (ledger == NULL ||
        state_get(ledger_store(ledger), GEN_NS_PREF, job->wallet, job__pref_loaded, job) < 0)
        job__pref_loaded(HB_ECANCELED, NULL, job);
}

/* The pool's spending today is known: choose who pays by the policy. A
 * pool that reached its daily cap is left out (the cap is checked before a
 * job, so one job may take the pool slightly past it). */
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
    int rc = wallet_account(inv, wallet, sizeof(wallet));
    if (rc < 0)
        return rc;
    if (g->core->ledger == NULL)
        return HB_ECANCELED;
    struct gen_pref *p = g->prefs;
    while (p != NULL && strcmp(p->key, wallet) != 0)
        p = p->next;
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return HB_ENOMEM;
        snprintf(p->key, sizeof(p->key), "%s", wallet);
        p->next = g->prefs;
        g->prefs = p;
    }
    snprintf(p->model, sizeof(p->model), "%s", model);
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
    if (wallet_account(inv, wallet, sizeof(wallet)) < 0)
        return "";
    for (struct gen_pref *p = g->prefs; p != NULL; p = p->next) {
        if (strcmp(p->key, wallet) == 0)
            return p->model;
    }
    return "";
}

void generate__prefs_free(struct generate *g)
{
    while (g->prefs != NULL) {
        struct gen_pref *n = g->prefs->next;
        free(g->prefs);
        g->prefs = n;
    }
}
