#include "core/wallet.h"

#include "core/core.h"
#include "base/error.h"
#include "core/ledger.h"
#include "core/link.h"
#include "base/log.h"

#include <stdlib.h>
#include <time.h>

struct wallet_open_op {
    wallet_open_cb cb;
    void *data;
};

int wallet_account(const struct core *core, const struct invocation *inv, char *buf, size_t cap)
{
    return link_wallet_name(core, command_platform_name(inv->platform), inv->user_id, buf, cap);
}

int wallet_pool_account(const struct invocation *inv, char *buf, size_t cap)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0')
        return HB_ENOTFOUND;
    return ledger_pool_name(buf, cap, command_platform_name(inv->platform), inv->scope_id);
}

static void wallet__opened(int rc, const struct ledger_result *result, void *data)
{
    struct wallet_open_op *op = data;
    (void)result;
    bool created = rc == 0;
    if (rc == HB_EEXISTS)
        rc = 0;
    if (rc < 0)
        log_warn("wallet.open_failed", "error=%s", hb_strerror(rc));
    op->cb(rc, created, op->data);
    free(op);
}

int wallet_open(struct core *core, const struct invocation *inv, wallet_open_cb cb, void *data)
{
    char account[WALLET_ACCOUNT_MAX];
    int rc = wallet_account(core, inv, account, sizeof(account));
    if (rc < 0)
        return rc;
    if (core->ledger == NULL)
        return HB_ECANCELED;
    struct wallet_open_op *op = malloc(sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->cb = cb;
    op->data = data;
    rc = ledger_account_open(core->ledger, account, LEDGER_ACCOUNT_NO_OVERDRAFT,
                             core->welcome_bonus, wallet__opened, op);
    if (rc < 0)
        free(op);
    return rc;
}

int64_t core_now_ms(const struct core *core)
{
    return clock_now_ms(&core->clock);
}
