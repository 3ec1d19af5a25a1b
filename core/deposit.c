#include "core/deposit.h"

#include "core/messages.h"
#include "core/format.h"
#include "core/payref.h"
#include "base/text.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "5.00 USD": prices are in minor units; two decimals, as most currencies. */
static void deposit__price(char *buf, size_t cap, int64_t minor, const char *currency)
{
    char cur[8] = "";
    for (size_t i = 0; currency != NULL && currency[i] != '\0' && i + 1 < sizeof(cur); i++)
        cur[i] = (char)(currency[i] >= 'a' && currency[i] <= 'z' ? currency[i] - 'a' + 'A'
                                                                   : currency[i]);
    snprintf(buf, cap, "%lld.%02lld %s", (long long)(minor / 100), (long long)(minor % 100), cur);
}

static void deposit__link(struct text_buf *t, const char *name, const char *url, const char *param,
                          const char *key, const char *account, const char *label)
{
    char ref[PAYREF_REFERENCE_MAX + 1];
    if (key == NULL || account == NULL ||
        payref_reference_make(ref, sizeof(ref), key, strlen(key), account) < 0)
        return;
    text_buf_add(t, "  %s for %s: %s%s%s=%s\n", name, label, url, strchr(url, '?') ? "&" : "?",
                 param, ref);
}

char *deposit_text_make(const struct deposit_methods *m, const char *wallet, const char *pool)
{
    bool card = m->stripe_url != NULL || m->paddle_url != NULL;
    if (!card && m->treasury == NULL)
        return NULL;
    struct text_buf t = {0};
    char a[64], b[64];
    if (card) {
        text_buf_add(&t, MSG_DEPOSIT_CARD);
        if (m->npackages > 0) {
            text_buf_add(&t, " (");
            for (size_t i = 0; i < m->npackages; i++) {
                deposit__price(a, sizeof(a), m->packages[i].price, m->currency);
                text_buf_add(&t, "%s" MSG_DEPOSIT_PACKAGE, i > 0 ? ", " : "", a,
                             format_credits(b, sizeof(b), m->packages[i].credits));
            }
            text_buf_add(&t, ")");
        }
        text_buf_add(&t, ":\n");
        bool personal = m->key != NULL && (wallet != NULL || pool != NULL);
        if (personal) {
            if (m->stripe_url != NULL) {
                deposit__link(&t, "Stripe", m->stripe_url, "client_reference_id", m->key, wallet,
                              MSG_DEPOSIT_FOR_WALLET);
                deposit__link(&t, "Stripe", m->stripe_url, "client_reference_id", m->key, pool,
                              MSG_DEPOSIT_FOR_POOL);
            }
            if (m->paddle_url != NULL) {
                deposit__link(&t, "Paddle", m->paddle_url, "reference", m->key, wallet,
                              MSG_DEPOSIT_FOR_WALLET);
                deposit__link(&t, "Paddle", m->paddle_url, "reference", m->key, pool,
                              MSG_DEPOSIT_FOR_POOL);
            }
            text_buf_add(&t, "  " MSG_DEPOSIT_LINKS_YOURS "\n");
        } else {
            if (m->stripe_url != NULL)
                text_buf_add(&t, "  Stripe: %s\n", m->stripe_url);
            if (m->paddle_url != NULL)
                text_buf_add(&t, "  Paddle: %s\n", m->paddle_url);
        }
    }
    if (m->treasury != NULL) {
        text_buf_add(&t, MSG_DEPOSIT_HBAR, m->treasury);
        if (m->tinybars_per_credit > 0) {
            /* 1 HBAR is 100,000,000 tinybars. */
            int64_t per_hbar = 100000000 / m->tinybars_per_credit;
            if (per_hbar > 0)
                text_buf_add(&t, " (" MSG_DEPOSIT_HBAR_RATE ")", format_credits(a, sizeof(a), per_hbar));
        }
        for (size_t i = 0; i < m->ntokens; i++)
            text_buf_add(&t, "%s " MSG_DEPOSIT_TOKEN, i == 0 ? "; " MSG_DEPOSIT_ALSO : ",",
                         m->tokens[i].id, (long long)m->tokens[i].units_per_credit);
        text_buf_add(&t, ".\n");
        char memo[PAYREF_MEMO_MAX + 1];
        bool any = false;
        if (m->key != NULL && wallet != NULL &&
            payref_memo_make(memo, sizeof(memo), m->key, strlen(m->key), wallet) == 0) {
            text_buf_add(&t, "  " MSG_DEPOSIT_MEMO_WALLET "\n", memo);
            any = true;
        }
        if (m->key != NULL && pool != NULL &&
            payref_memo_make(memo, sizeof(memo), m->key, strlen(m->key), pool) == 0) {
            text_buf_add(&t, "  " MSG_DEPOSIT_MEMO_POOL "\n", memo);
            any = true;
        }
        text_buf_add(&t, any ? "  " MSG_DEPOSIT_MEMO_EXACT "\n" : "  " MSG_DEPOSIT_MEMO_PERSONAL "\n");
    }
    text_buf_trim(&t);
    if (t.buf == NULL)
        return NULL;
    return t.buf;
}
