#include "adapters/paddle/paddle.h"

#include "base/error.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct webhook_sig_scheme paddle_sig_scheme = {.name = "paddle",
                                                     .header = "Paddle-Signature",
                                                     .field_sep = ';',
                                                     .stamp_key = "ts=",
                                                     .sig_key = "h1=",
                                                     .signed_sep = ':',
                                                     .tolerance_default = 300};

int paddle_signature_verify(const char *header, const char *secret, const void *body, size_t len,
                            int64_t now, int64_t tolerance)
{
    return webhook_sig_verify(&paddle_sig_scheme, header, secret, body, len, now, tolerance);
}

int paddle_signature_make(char *out, size_t cap, const char *secret, const void *body, size_t len,
                          int64_t ts)
{
    return webhook_sig_make(&paddle_sig_scheme, out, cap, secret, body, len, ts);
}

static const char *paddle__str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Paddle writes amounts as strings of minor units ("1050"). */
static bool paddle__amount(const cJSON *obj, const char *name, int64_t *out)
{
    const char *s = paddle__str(obj, name);
    if (s == NULL || s[0] == '\0' || strlen(s) > 15)
        return false;
    int64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

static void paddle__copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

int paddle_event_parse(const char *body, size_t len, struct payment_event *out)
{
    memset(out, 0, sizeof(*out));
    out->subtotal = -1;
    int rc = HB_EPROTO;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const char *id = paddle__str(root, "event_id");
    const char *type = paddle__str(root, "event_type");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(data) || id == NULL || type == NULL ||
        id[0] == '\0' || strlen(id) >= sizeof(out->event_id))
        goto out;
    paddle__copy(out->event_id, sizeof(out->event_id), id);
    paddle__copy(out->type, sizeof(out->type), type);
    const char *currency = paddle__str(data, "currency_code");
    if (currency != NULL) {
        char lower[8];
        paddle__copy(lower, sizeof(lower), currency);
        for (char *c = lower; *c != '\0'; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        paddle__copy(out->currency, sizeof(out->currency), lower);
    }
    if (strcmp(type, "transaction.completed") == 0) {
        const char *txn = paddle__str(data, "id");
        const cJSON *totals = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(data, "details"), "totals");
        if (txn == NULL || txn[0] == '\0' || strlen(txn) >= sizeof(out->payment_id) ||
            (!paddle__amount(totals, "grand_total", &out->amount) &&
             !paddle__amount(totals, "total", &out->amount)))
            goto out;
        /* What the buyer paid before tax: the subtotal less any discount. */
        int64_t subtotal = 0, discount = 0;
        if (paddle__amount(totals, "subtotal", &subtotal)) {
            if (cJSON_GetObjectItemCaseSensitive(totals, "discount") != NULL &&
                !paddle__amount(totals, "discount", &discount))
                goto out;
            out->subtotal = subtotal >= discount ? subtotal - discount : 0;
        }
        paddle__copy(out->payment_id, sizeof(out->payment_id), txn);
        paddle__copy(out->object_id, sizeof(out->object_id), txn);
        paddle__copy(
            out->reference, sizeof(out->reference),
            paddle__str(cJSON_GetObjectItemCaseSensitive(data, "custom_data"), "reference"));
        out->action = PAYMENT_CREDIT;
    } else if (strcmp(type, "adjustment.created") == 0 || strcmp(type, "adjustment.updated") == 0) {
        const char *action = paddle__str(data, "action");
        const char *status = paddle__str(data, "status");
        if (action == NULL || status == NULL || strcmp(status, "approved") != 0 ||
            (strcmp(action, "refund") != 0 && strcmp(action, "chargeback") != 0)) {
            rc = 0;
            goto out;
        }
        const char *txn = paddle__str(data, "transaction_id");
        const char *adj = paddle__str(data, "id");
        if (txn == NULL || adj == NULL ||
            !paddle__amount(cJSON_GetObjectItemCaseSensitive(data, "totals"), "total",
                            &out->amount))
            goto out;
        paddle__copy(out->payment_id, sizeof(out->payment_id), txn);
        /* Created and updated may both say approved: the adjustment, not
         * the event, is what must be reversed once. */
        paddle__copy(out->object_id, sizeof(out->object_id), adj);
        out->action = strcmp(action, "refund") == 0 ? PAYMENT_REFUND : PAYMENT_CHARGEBACK;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
