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
