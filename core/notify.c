#include "core/messages.h"
#include "core/notify.h"

#include "base/error.h"
#include "core/format.h"

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

const char *notify_payment(notify_fn fn, void *data, const char *account, const char *channel,
                           const char *method, int64_t credits, int64_t balance)
{
    struct notify_target to;
    int rc = notify_target_from_account(&to, account);
    if (rc == 0 && to.scope == COMMAND_SCOPE_GROUP && channel != NULL && channel[0] != '\0')
        snprintf(to.channel_id, sizeof(to.channel_id), "%s", channel);
    if (rc == 0 && fn != NULL) {
        char text[256];
        notify_credit_text(text, sizeof(text), &to, method, credits, balance);
        rc = fn(data, &to, text);
    } else if (rc == 0) {
        rc = HB_ENOTFOUND;
    }
    if (rc == 0)
        return "delivered to the adapter";
    if (rc == HB_ENOTFOUND)
        return "not delivered: no adapter for this platform";
    if (rc == HB_EINVAL)
        return "not delivered: no chat to reach this account in";
    return "not delivered: the adapter refused it";
}
