#include "adapters/hedera/hedera.h"

#include "base/error.h"
#include "base/json.h"
#include "base/text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool hedera_timestamp_ok(const char *ts)
{
    if (ts == NULL || ts[0] == '\0' || strlen(ts) >= 32)
        return false;
    const char *dot = strchr(ts, '.');
    for (const char *p = ts; *p != '\0'; p++) {
        if (p != dot && (*p < '0' || *p > '9'))
            return false;
    }
    return dot != NULL && dot != ts && dot[1] != '\0';
}

static const char *hedera__str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool hedera__amount(const cJSON *o, int64_t *out)
{
    return json_int64_get(cJSON_GetObjectItemCaseSensitive(o, "amount"), -HEDERA_AMOUNT_MAX,
                          HEDERA_AMOUNT_MAX, out) == 0;
}

static int hedera__push(struct hedera_page *page, size_t *cap, const struct hedera_deposit *d)
{
    if (page->n == *cap) {
        size_t ncap = *cap == 0 ? 8 : *cap * 2;
        struct hedera_deposit *items = realloc(page->items, ncap * sizeof(*items));
        if (items == NULL)
            return HB_ENOMEM;
        page->items = items;
        *cap = ncap;
    }
    page->items[page->n++] = *d;
    return 0;
}

static size_t hedera__hash(const char *s)
{
    size_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* One transaction's token transfers to the treasury, one deposit per token
 * (in the order tokens first appear), each summed once. A table from token
 * id to deposit index makes this one pass: linear in the transfers, where
 * summing per transfer (the old way) was quadratic. *count grows by the
 * transfers seen, and stops the page at HEDERA_PAGE_TRANSFERS_MAX. */
static int hedera__tokens(struct hedera_page *out, size_t *cap, const cJSON *tts,
                          const char *treasury, struct hedera_deposit *d, size_t *count)
{
    size_t n = (size_t)cJSON_GetArraySize(tts);
    if (n > HEDERA_PAGE_TRANSFERS_MAX - *count)
        return HB_ELIMIT;
    size_t tcap = 16;
    while (tcap < 2 * n)
        tcap *= 2;
    size_t *slots = calloc(tcap, sizeof(*slots)); /* deposit index + 1; 0: free */
    if (slots == NULL)
        return HB_ENOMEM;
    size_t first = out->n;
    int rc = 0;
    const cJSON *tt;
    cJSON_ArrayForEach(tt, tts)
    {
        (*count)++;
        const char *tok = hedera__str(tt, "token_id");
        const char *acc = hedera__str(tt, "account");
        if (tok == NULL || acc == NULL || strlen(tok) >= sizeof(d->token)) {
            rc = HB_EPROTO;
            goto out;
        }
        if (strcmp(acc, treasury) != 0)
            continue;
        int64_t a = 0;
        if (!hedera__amount(tt, &a)) {
            rc = HB_EPROTO;
            goto out;
        }
        size_t i = hedera__hash(tok) & (tcap - 1);
        while (slots[i] != 0 && strcmp(out->items[slots[i] - 1].token, tok) != 0)
            i = (i + 1) & (tcap - 1);
        if (slots[i] != 0) {
            struct hedera_deposit *seen = &out->items[slots[i] - 1];
            if (__builtin_add_overflow(seen->amount, a, &seen->amount)) {
                rc = HB_EOVERFLOW;
                goto out;
            }
            continue;
        }
        snprintf(d->token, sizeof(d->token), "%s", tok);
        d->amount = a;
        rc = hedera__push(out, cap, d);
        if (rc < 0)
            goto out;
        slots[i] = out->n;
    }
    /* Only what the treasury received on balance is a deposit. */
    size_t kept = first;
    for (size_t i = first; i < out->n; i++) {
        if (out->items[i].amount > 0)
            out->items[kept++] = out->items[i];
    }
    out->n = kept;
out:
    free(slots);
    return rc;
}

int hedera_page_parse(const char *body, size_t len, const char *treasury, struct hedera_page *out)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    size_t count = 0; /* transfers seen, page-wide */
    if (len > HEDERA_PAGE_MAX_BYTES)
        return HB_ELIMIT;
    int rc = HB_EPROTO;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *txs = cJSON_GetObjectItemCaseSensitive(root, "transactions");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(txs))
        goto out;
    const cJSON *next =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "links"), "next");
    if (cJSON_IsString(next)) {
        if (strlen(next->valuestring) >= sizeof(out->next) || next->valuestring[0] != '/')
            goto out;
        snprintf(out->next, sizeof(out->next), "%s", next->valuestring);
    } else if (next != NULL && !cJSON_IsNull(next)) {
        goto out;
    }
    const cJSON *tx;
    cJSON_ArrayForEach(tx, txs)
    {
        rc = HB_EPROTO;
        const char *ts = hedera__str(tx, "consensus_timestamp");
        const char *id = hedera__str(tx, "transaction_id");
        const char *result = hedera__str(tx, "result");
        if (!hedera_timestamp_ok(ts) || id == NULL || id[0] == '\0' ||
            strlen(id) >= sizeof(out->items[0].tx_id) || result == NULL)
            goto out;
        snprintf(out->last_timestamp, sizeof(out->last_timestamp), "%s", ts);
        out->transactions++;
        if (strcmp(result, "SUCCESS") != 0)
            continue;
        struct hedera_deposit d;
        memset(&d, 0, sizeof(d));
        snprintf(d.tx_id, sizeof(d.tx_id), "%s", id);
        snprintf(d.timestamp, sizeof(d.timestamp), "%s", ts);
        const char *memo64 = hedera__str(tx, "memo_base64");
        long mlen = memo64 != NULL
                        ? text_base64_decode(memo64, strlen(memo64), (unsigned char *)d.memo,
                                             sizeof(d.memo) - 1, false)
                        : 0;
        d.memo[mlen >= 0 ? mlen : 0] = '\0'; /* a memo that is not base64 is no memo */
        if (strlen(d.memo) !=
            strcspn(d.memo, "\r\n\t")) /* control characters: not a memo of ours */
            d.memo[strcspn(d.memo, "\r\n\t")] = '\0';
        const cJSON *transfers = cJSON_GetObjectItemCaseSensitive(tx, "transfers");
        if (transfers != NULL && !cJSON_IsArray(transfers))
            goto out;
        int64_t sum = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, transfers)
        {
            if (++count > HEDERA_PAGE_TRANSFERS_MAX) {
                rc = HB_ELIMIT;
                goto out;
            }
            const char *acc = hedera__str(t, "account");
            int64_t a = 0;
            if (acc == NULL || !hedera__amount(t, &a))
                goto out;
            if (strcmp(acc, treasury) == 0 && __builtin_add_overflow(sum, a, &sum)) {
                rc = HB_EOVERFLOW;
                goto out;
            }
        }
        if (sum > 0) {
            d.amount = sum;
            d.token[0] = '\0';
            if (hedera__push(out, &cap, &d) < 0) {
                rc = HB_ENOMEM;
                goto out;
            }
        }
        const cJSON *tts = cJSON_GetObjectItemCaseSensitive(tx, "token_transfers");
        if (tts != NULL && !cJSON_IsArray(tts))
            goto out;
        rc = hedera__tokens(out, &cap, tts, treasury, &d, &count);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc < 0)
        hedera_page_free(out);
    return rc;
}

void hedera_page_free(struct hedera_page *page)
{
    if (page == NULL)
        return;
    free(page->items);
    page->items = NULL;
    page->n = 0;
}
