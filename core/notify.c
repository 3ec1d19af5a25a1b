#include "core/messages.h"
#include "core/notify.h"

#include "base/error.h"
#include "base/log.h"
#include "core/format.h"
#include "core/state.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>

static int notify__platform(const char *name, size_t len, enum command_platform *out)
{
    static const enum command_platform all[] = {COMMAND_PLATFORM_CONSOLE, COMMAND_PLATFORM_DISCORD,
                                                COMMAND_PLATFORM_TELEGRAM};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *n = command_platform_name(all[i]);
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return HB_EINVAL;
}

static int notify__copy(char *dst, const char *src)
{
    size_t len = strlen(src);
    if (len == 0 || len >= COMMAND_ID_MAX)
        return HB_EINVAL;
    memcpy(dst, src, len + 1);
    return 0;
}

int notify_target_from_account(struct notify_target *to, const char *account)
{
    memset(to, 0, sizeof(*to));
    if (account == NULL)
        return HB_EINVAL;
    bool pool = strncmp(account, "pool:", 5) == 0;
    const char *p = pool ? account + 5 : account;
    const char *colon = strchr(p, ':');
    if (colon == NULL || notify__platform(p, (size_t)(colon - p), &to->platform) < 0)
        return HB_EINVAL;
    if (!pool) {
        to->scope = COMMAND_SCOPE_DM;
        return notify__copy(to->user_id, colon + 1);
    }
    to->scope = COMMAND_SCOPE_GROUP;
    int rc = notify__copy(to->scope_id, colon + 1);
    /* A Telegram group's id is its chat id; a Discord guild has no single
     * channel, so the adapter is left to refuse it. */
    if (rc == 0 && to->platform == COMMAND_PLATFORM_TELEGRAM)
        rc = notify__copy(to->channel_id, colon + 1);
    return rc;
}

char *notify_credit_text(char *buf, size_t cap, const struct notify_target *to, const char *via,
                         int64_t credits, int64_t balance)
{
    char amount[32], total[32];
    format_credits(amount, sizeof(amount), credits);
    format_credits(total, sizeof(total), balance);
    bool pool = to->scope == COMMAND_SCOPE_GROUP;
    int n = snprintf(buf, cap, MSG_NOTIFY_PAYMENT, pool ? MSG_NOTIFY_A : MSG_NOTIFY_YOUR,
                     via != NULL ? via : "", amount);
    if (n >= 0 && (size_t)n < cap && balance >= 0)
        snprintf(buf + n, cap - (size_t)n, " " MSG_NOTIFY_BALANCE,
                 pool ? MSG_NOTIFY_POOL : MSG_NOTIFY_WALLET, total);
    return buf;
}

void notify_account_split(char *account, char *channel, size_t cap)
{
    char *hash = strchr(account, '#');
    if (cap > 0)
        channel[0] = '\0';
    if (hash == NULL)
        return;
    *hash = '\0';
    snprintf(channel, cap, "%s", hash + 1);
}

/* Send a payment notice (text NULL: made from method, credits and
 * balance) or a notice's own text to the owner of account: by DM for a
 * wallet, in channel for a pool. */
static int notify__send(notify_fn fn, void *data, const char *account, const char *channel,
                        const char *text, const char *method, int64_t credits, int64_t balance)
{
    struct notify_target to;
    int rc = notify_target_from_account(&to, account);
    if (rc == 0 && to.scope == COMMAND_SCOPE_GROUP && channel != NULL && channel[0] != '\0')
        snprintf(to.channel_id, sizeof(to.channel_id), "%s", channel);
    if (rc == 0 && fn != NULL) {
        char made[256];
        if (text == NULL)
            text = notify_credit_text(made, sizeof(made), &to, method, credits, balance);
        rc = fn(data, &to, text);
    } else if (rc == 0) {
        rc = HB_ENOTFOUND;
    }
    return rc;
}

static const char *notify__note(int rc)
{
    if (rc == 0)
        return "delivered to the adapter";
    if (rc == HB_ENOTFOUND)
        return "not delivered: no adapter for this platform";
    if (rc == HB_EINVAL)
        return "not delivered: no chat to reach this account in";
    return "not delivered: the adapter refused it";
}

bool notify_note_final(const char *note)
{
    return note == notify__note(0) || note == notify__note(HB_EINVAL);
}

const char *notify_payment(notify_fn fn, void *data, const char *account, const char *channel,
                           const char *method, int64_t credits, int64_t balance)
{
    return notify__note(notify__send(fn, data, account, channel, NULL, method, credits, balance));
}

/* A row of the notices owed: the account and channel, then a payment's
 * method and credits (text NULL) or a notice's own text, and when it was
 * written. */
static int notify__pending_row(char *buf, size_t cap, const char *account, const char *channel,
                               const char *text, const char *via, int64_t credits, int64_t at_ms)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL &&
              cJSON_AddStringToObject(o, "account", account != NULL ? account : "") != NULL &&
              cJSON_AddStringToObject(o, "channel", channel != NULL ? channel : "") != NULL;
    if (ok && text != NULL)
        ok = cJSON_AddStringToObject(o, "text", text) != NULL;
    else if (ok)
        ok = cJSON_AddStringToObject(o, "via", via != NULL ? via : "") != NULL &&
             cJSON_AddNumberToObject(o, "credits", (double)credits) != NULL;
    if (!ok || cJSON_AddNumberToObject(o, "at", (double)at_ms) == NULL) {
        cJSON_Delete(o);
        return HB_ENOMEM;
    }
    bool fits = cJSON_PrintPreallocated(o, buf, (int)(cap < 0x7fffffff ? cap : 0x7fffffff), false);
    cJSON_Delete(o);
    return fits ? 0 : HB_EOVERFLOW;
}

int notify_pending_value(char *buf, size_t cap, const char *account, const char *channel,
                         const char *via, int64_t credits, int64_t at_ms)
{
    return notify__pending_row(buf, cap, account, channel, NULL, via, credits, at_ms);
}

int notify_pending_text_value(char *buf, size_t cap, const char *account, const char *channel,
                              const char *text, int64_t at_ms)
{
    return notify__pending_row(buf, cap, account, channel, text != NULL ? text : "", NULL, 0,
                               at_ms);
}

void notify_pending_clear(struct store *store, const char *key)
{
    if (store != NULL && state_put(store, NOTIFY_NS_PENDING, key, NULL, NULL, NULL) < 0)
        log_warn("payment.notice_clear_failed", "key=%s", key);
}

struct notify_pending_op {
    struct store *store;
    notify_fn fn;
    void *data;
    bool some; /* only the rows of platform written before before_ms */
    enum command_platform platform;
    int64_t before_ms;
    void (*done)(void *done_data);
    void *done_data;
};

/* Whether a pass that takes only some rows leaves this one alone. */
static bool notify__pending_skip(const struct notify_pending_op *op, const cJSON *account,
                                 const cJSON *at)
{
    if (!op->some)
        return false;
    struct notify_target to;
    if (!cJSON_IsString(account) || notify_target_from_account(&to, account->valuestring) < 0 ||
        to.platform != op->platform)
        return true;
    return cJSON_IsNumber(at) && at->valuedouble >= (double)op->before_ms;
}

static void notify__pending_listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct notify_pending_op *op = data;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        cJSON *o = cJSON_Parse(e[i].value != NULL ? e[i].value : "");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "account");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "channel");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "via");
        const cJSON *cr = cJSON_GetObjectItemCaseSensitive(o, "credits");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (notify__pending_skip(op, a, cJSON_GetObjectItemCaseSensitive(o, "at"))) {
            cJSON_Delete(o);
            continue;
        }
        int prc = HB_EPROTO;
        if (cJSON_IsString(a) && cJSON_IsString(c) && cJSON_IsString(t) && t->valuestring[0]) {
            prc = notify__send(op->fn, op->data, a->valuestring, c->valuestring, t->valuestring,
                               NULL, 0, -1);
        } else if (cJSON_IsString(a) && cJSON_IsString(c) && cJSON_IsString(v) &&
                   cJSON_IsNumber(cr)) {
            prc = notify__send(op->fn, op->data, a->valuestring, c->valuestring, NULL,
                               v->valuestring, (int64_t)cr->valuedouble, -1);
        }
        log_info("payment.notify_pending", "key=%s note=%s", e[i].key,
                 prc == HB_EPROTO ? "not delivered: unreadable" : notify__note(prc));
        /* Taken by an adapter, or never deliverable: done with. Otherwise
         * (no adapter for it now, or it refused) it waits for the next
         * start, or on a shared ledger for the Telegram poller's next pass. */
        if (prc == 0 || prc == HB_EPROTO || prc == HB_EINVAL)
            notify_pending_clear(op->store, e[i].key);
        cJSON_Delete(o);
    }
    if (rc < 0)
        log_warn("payment.notify_pending", "error=%s", hb_strerror(rc));
    if (op->done != NULL)
        op->done(op->done_data);
    free(op);
}

static int notify__pending_pass(struct store *store, notify_fn fn, void *data,
                                struct notify_pending_op *op)
{
    if (store == NULL || fn == NULL) {
        free(op);
        return HB_EINVAL;
    }
    op->store = store;
    op->fn = fn;
    op->data = data;
    int rc = state_list(store, NOTIFY_NS_PENDING, "", 1000, notify__pending_listed, op);
    if (rc < 0)
        free(op);
    return rc;
}

int notify_pending_send(struct store *store, notify_fn fn, void *data)
{
    struct notify_pending_op *op = calloc(1, sizeof(*op));
    return op != NULL ? notify__pending_pass(store, fn, data, op) : HB_ENOMEM;
}

int notify_pending_retry(struct store *store, enum command_platform platform, int64_t before_ms,
                         notify_fn fn, void *data, void (*done)(void *done_data), void *done_data)
{
    struct notify_pending_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->some = true;
    op->platform = platform;
    op->before_ms = before_ms;
    op->done = done;
    op->done_data = done_data;
    return notify__pending_pass(store, fn, data, op);
}
