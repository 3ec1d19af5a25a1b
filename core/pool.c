#include "core/pool.h"

#include "core/core.h"
#include "base/error.h"
#include "core/ledger.h"
#include "core/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const pool_policy_names[] = {"pool_first", "wallet_first"};

const char *pool_policy_name(enum pool_policy p)
{
    return (unsigned)p < 2 ? pool_policy_names[p] : "pool_first";
}

int pool_policy_parse(const char *name, enum pool_policy *out)
{
    for (int i = 0; i < 2; i++) {
        if (strcmp(name, pool_policy_names[i]) == 0) {
            *out = (enum pool_policy)i;
            return 0;
        }
    }
    return HB_EINVAL;
}

struct pool_op {
    struct pool_settings s;
    pool_settings_cb cb;
    void *data;
};

/* Stored as "policy=<name> cap=<n>". */
static void pool__parse(const char *value, struct pool_settings *s)
{
    char name[32];
    long long cap = 0;
    if (sscanf(value, "policy=%31s cap=%lld", name, &cap) == 2) {
        pool_policy_parse(name, &s->policy);
        s->daily_cap = cap >= 0 ? cap : 0;
    }
}

static void pool__got(int rc, const char *value, void *data)
{
    struct pool_op *op = data;
    if (rc == 0 && value != NULL)
        pool__parse(value, &op->s);
    if (rc == HB_ENOTFOUND)
        rc = 0;
    op->cb(rc, &op->s, op->data);
    free(op);
}

int pool_settings_get(struct core *core, const char *pool, pool_settings_cb cb, void *data)
{
    if (core->ledger == NULL)
        return HB_ECANCELED;
    struct pool_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->cb = cb;
    op->data = data;
    int rc = state_get(ledger_store(core->ledger), "pool", pool, pool__got, op);
    if (rc < 0)
        free(op);
    return rc;
}

static void pool__put_done(int rc, const char *value, void *data)
{
    struct pool_op *op = data;
    (void)value;
    if (op->cb != NULL)
        op->cb(rc, &op->s, op->data);
    free(op);
}

int pool_settings_put(struct core *core, const char *pool, const struct pool_settings *s,
                      pool_settings_cb cb, void *data)
{
    if (core->ledger == NULL)
        return HB_ECANCELED;
    struct pool_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->s = *s;
    op->cb = cb;
    op->data = data;
    char value[96];
    snprintf(value, sizeof(value), "policy=%s cap=%lld", pool_policy_name(s->policy),
             (long long)s->daily_cap);
    int rc = state_put(ledger_store(core->ledger), "pool", pool, value, pool__put_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- a pool that moves to a new scope id ------------------------------ */

struct pool_move {
    struct core *core;
    char from[STORE_ID_SIZE];
    char to[STORE_ID_SIZE];
    char id[STORE_ID_SIZE];
    char ref[STORE_REF_SIZE];
    int64_t credits;
    pool_migrate_cb cb;
    void *data;
};

static void pool__moved(int rc, const struct ledger_result *res, void *data)
{
    struct pool_move *mv = data;
    (void)res;
    struct pool_migrate_result r = {
        .rc = rc, .credits = mv->credits, .from = mv->from, .to = mv->to};
    mv->cb(&r, mv->data);
    free(mv);
}

static void pool__move_opened(int rc, const struct ledger_result *res, void *data)
{
    struct pool_move *mv = data;
    (void)res;
    struct ledger *l = mv->core->ledger;
    struct ledger_transfer t = {.id = mv->id,
                                .debit = mv->from,
                                .credit = mv->to,
                                .amount = mv->credits,
                                .kind = LEDGER_KIND_TRANSFER,
                                .ref = mv->ref};
    if ((rc < 0 && rc != HB_EEXISTS && rc != HB_ECONFLICT) || l == NULL ||
        ledger_transfer_create(l, &t, pool__moved, mv) < 0)
        pool__moved(rc < 0 ? rc : HB_ECANCELED, NULL, mv);
}

static void pool__move_balance(int rc, const struct ledger_result *res, void *data)
{
    struct pool_move *mv = data;
    struct ledger *l = mv->core->ledger;
    if (rc < 0 || res->balance.available <= 0 || l == NULL) {
        /* no pool, or nothing in it */
        pool__moved(rc < 0 ? rc : l == NULL ? HB_ECANCELED : 0, NULL, mv);
        return;
    }
    mv->credits = res->balance.available;
    if (ledger_account_open(l, mv->to, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, pool__move_opened, mv) < 0)
        pool__moved(HB_ECANCELED, NULL, mv);
}

int pool_migrate(struct core *core, const struct pool_migration *m, pool_migrate_cb cb, void *data)
{
    if (core->ledger == NULL)
        return HB_ECANCELED;
    if (m->id == NULL || m->id[0] == '\0' || strlen(m->id) >= STORE_ID_SIZE ||
        (m->ref != NULL && strlen(m->ref) >= STORE_REF_SIZE) || cb == NULL)
        return HB_EINVAL;
    struct pool_move *mv = calloc(1, sizeof(*mv));
    if (mv == NULL)
        return HB_ENOMEM;
    mv->core = core;
    mv->cb = cb;
    mv->data = data;
    snprintf(mv->id, sizeof(mv->id), "%s", m->id);
    snprintf(mv->ref, sizeof(mv->ref), "%s", m->ref != NULL ? m->ref : "");
    int rc = ledger_pool_name(mv->from, sizeof(mv->from), m->platform, m->from);
    if (rc == 0)
        rc = ledger_pool_name(mv->to, sizeof(mv->to), m->platform, m->to);
    if (rc == 0 && strcmp(mv->from, mv->to) == 0)
        rc = HB_EINVAL;
    if (rc == 0)
        rc = ledger_balance_get(core->ledger, mv->from, pool__move_balance, mv);
    if (rc < 0)
        free(mv);
    return rc;
}
