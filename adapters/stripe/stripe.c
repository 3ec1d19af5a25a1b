#include "adapters/stripe/stripe.h"

#include "base/error.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const struct webhook_sig_scheme stripe_sig_scheme = {.name = "stripe",
                                                     .header = "Stripe-Signature",
                                                     .field_sep = ',',
                                                     .stamp_key = "t=",
                                                     .sig_key = "v1=",
                                                     .signed_sep = '.',
                                                     .tolerance_default = 300};

int stripe_signature_verify(const char *header, const char *secret, const void *body, size_t len,
                            int64_t now, int64_t tolerance)
{
    return webhook_sig_verify(&stripe_sig_scheme, header, secret, body, len, now, tolerance);
}

int stripe_signature_make(char *out, size_t cap, const char *secret, const void *body, size_t len,
                          int64_t t)
{
    return webhook_sig_make(&stripe_sig_scheme, out, cap, secret, body, len, t);
}

static const char *stripe__str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool stripe__int(const cJSON *obj, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static void stripe__copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

int stripe_event_parse(const char *body, size_t len, struct payment_event *out)
{
    memset(out, 0, sizeof(*out));
    out->subtotal = -1;
    int rc = HB_EPROTO;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *object =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "data"), "object");
    const char *id = stripe__str(root, "id");
    const char *type = stripe__str(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(object) || id == NULL || type == NULL ||
        id[0] == '\0' || strlen(id) >= sizeof(out->event_id))
        goto out;
    stripe__copy(out->event_id, sizeof(out->event_id), id);
    stripe__copy(out->type, sizeof(out->type), type);
    stripe__copy(out->currency, sizeof(out->currency), stripe__str(object, "currency"));
    if (strcmp(type, "checkout.session.completed") == 0 ||
        strcmp(type, "checkout.session.async_payment_succeeded") == 0) {
        const char *status = stripe__str(object, "payment_status");
        if (status == NULL || strcmp(status, "paid") != 0) {
            rc = 0; /* unpaid (a delayed method): the async event follows */
            goto out;
        }
        /* Both events carry the same session: it is the payment object
         * the credit is derived from, so the second one finds it. */
        const char *session = stripe__str(object, "id");
        const char *pi = stripe__str(object, "payment_intent");
        if (pi == NULL)
            pi = session;
        if (session == NULL || session[0] == '\0' || strlen(session) >= sizeof(out->object_id) ||
            pi == NULL || !stripe__int(object, "amount_total", &out->amount))
            goto out;
        stripe__copy(out->reference, sizeof(out->reference),
                     stripe__str(object, "client_reference_id"));
        stripe__copy(out->payment_id, sizeof(out->payment_id), pi);
        stripe__copy(out->object_id, sizeof(out->object_id), session);
        out->action = PAYMENT_CREDIT;
    } else if (strcmp(type, "charge.refunded") == 0) {
        const char *pi = stripe__str(object, "payment_intent");
        if (pi == NULL || !stripe__int(object, "amount_refunded", &out->amount))
            goto out;
        stripe__copy(out->payment_id, sizeof(out->payment_id), pi);
        /* The charge's refunded total is one state of the payment: every
         * event reporting it makes the same reversal. */
        int n = snprintf(out->object_id, sizeof(out->object_id), "%s:refunded:%lld", pi,
                         (long long)out->amount);
        if (n < 0 || (size_t)n >= sizeof(out->object_id))
            goto out;
        out->amount_cumulative = 1;
        out->action = PAYMENT_REFUND;
    } else if (strcmp(type, "charge.dispute.created") == 0) {
        const char *pi = stripe__str(object, "payment_intent");
        if (pi == NULL || !stripe__int(object, "amount", &out->amount))
            goto out;
        stripe__copy(out->payment_id, sizeof(out->payment_id), pi);
        const char *dispute = stripe__str(object, "id");
        if (dispute == NULL || dispute[0] == '\0' || strlen(dispute) >= sizeof(out->object_id))
            goto out;
        stripe__copy(out->object_id, sizeof(out->object_id), dispute);
        out->action = PAYMENT_CHARGEBACK;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
