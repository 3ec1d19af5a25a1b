/* Telegram Stars deposits and refunds.
 *
 * /deposit sends one invoice (currency XTR) per package in bot.conf; the
 * invoice payload names the package and where the credits go:
 * "dep:<stars>:<credits>:w" for the payer's wallet, "...:g<chat>" for a
 * group's pool. A pre-checkout query is answered at once: yes while the
 * package is still offered. A successful payment becomes the ledger
 * transfer "tg:stars:<charge id>", so a payment reported twice credits
 * once, and is answered once: a repeated successful_payment for a charge
 * already credited is only logged. The transfer's ref keeps the payer,
 * which a refund needs. A refund is core/deposit.h's deposit_reverse, as
 * every other method's. */
#include "adapters/telegram/telegram_internal.h"

#include "core/messages.h"
#include "core/core.h"
#include "core/audit.h"
#include "core/deposit.h"
#include "base/error.h"
#include "core/ledger.h"
#include "core/link.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One asynchronous chain of ledger and API steps. */
struct tg_pay {
    struct tg *tg;
    struct tg_reply *r; /* holds a reference, or NULL */
    char account[STORE_ID_SIZE];
    char id[STORE_ID_SIZE];
    char charge[128];
    int64_t stars, credits, payer;
    int64_t debt;
    char admin[STORE_ID_SIZE]; /* refunds: the admin who asked, as the audit trail names them */
    bool finish;               /* the handle is this payment's own: finish it when done */
};

static struct tg_pay *pay__new(struct tg *tg, struct tg_reply *r)
{
    struct tg_pay *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->tg = tg;
    p->r = r;
    if (r != NULL)
        r->refs++;
    tg_ref(tg);
    return p;
}

static void pay__free(struct tg_pay *p)
{
    struct tg *tg = p->tg;
    if (p->r != NULL && p->finish)
        reply_finish(&p->r->reply); /* drops this chain's reference, and any private chat's */
    else if (p->r != NULL)
        tg_reply_unref(p->r);
    free(p);
    tg_unref(tg);
}

static struct ledger *pay__ledger(const struct tg *tg)
{
    return tg->core != NULL ? tg->core->ledger : NULL;
}

/* "dep:<stars>:<credits>:w" or "dep:<stars>:<credits>:g<chat>". */
static int pay__payload_parse(const char *s, int64_t *stars, int64_t *credits, int64_t *group)
{
    long long a, b, g = 0;
    char kind = 0;
    int used = 0;
    if (s == NULL || sscanf(s, "dep:%lld:%lld:%c%n", &a, &b, &kind, &used) != 3)
        return HB_EINVAL;
    if (kind == 'g' && sscanf(s + used, "%lld", &g) != 1)
        return HB_EINVAL;
    if ((kind != 'w' && kind != 'g') || a <= 0 || b <= 0)
        return HB_EINVAL;
    *stars = a;
    *credits = b;
    *group = kind == 'g' ? g : 0;
    return 0;
}

static bool pay__offered(const struct tg *tg, int64_t stars, int64_t credits)
{
    for (size_t i = 0; i < tg->npackages; i++) {
        if (tg->packages[i].stars == stars && tg->packages[i].credits == credits)
            return true;
    }
    return false;
}

void tg_stars_offer(struct tg *tg, struct tg_reply *r, int64_t chat_id, bool group)
{
    for (size_t i = 0; i < tg->npackages; i++) {
        const struct telegram_package *pk = &tg->packages[i];
        char title[64], desc[160], payload[96], label[64];
        snprintf(title, sizeof(title), MSG_TG_STARS_TITLE, (long long)pk->credits);
        snprintf(label, sizeof(label), MSG_TG_STARS_TITLE, (long long)pk->credits);
        snprintf(desc, sizeof(desc), MSG_TG_STARS_DESCRIPTION, (long long)pk->credits,
                 group ? MSG_TG_STARS_FOR_POOL : MSG_TG_STARS_FOR_WALLET, (long long)pk->stars);
        if (group)
            snprintf(payload, sizeof(payload), "dep:%" PRId64 ":%" PRId64 ":g%" PRId64, pk->stars,
                     pk->credits, chat_id);
        else
            snprintf(payload, sizeof(payload), "dep:%" PRId64 ":%" PRId64 ":w", pk->stars,
                     pk->credits);
        cJSON *body = cJSON_CreateObject();
        if (body == NULL)
            return;
        cJSON_AddStringToObject(body, "title", title);
        cJSON_AddStringToObject(body, "description", desc);
        cJSON_AddStringToObject(body, "payload", payload);
        cJSON_AddStringToObject(body, "currency", "XTR");
        cJSON *prices = cJSON_AddArrayToObject(body, "prices");
        cJSON *price = cJSON_CreateObject();
        cJSON_AddStringToObject(price, "label", label);
        cJSON_AddNumberToObject(price, "amount", (double)pk->stars);
        cJSON_AddItemToArray(prices, price);
        tg_sendq_json(tg, chat_id, group, r, "sendInvoice", body, false, false, false);
    }
}

static void pay__precheckout_answered(struct tg *tg, void *data, const struct tg_result *res)
{
    (void)tg;
    (void)data;
    if (res->rc != HB_ECANCELED && (res->rc != 0 || !res->ok))
        log_error("telegram.precheckout_answer_failed", "status=%d description=%s error=%s",
                  res->status, res->description, hb_strerror(res->rc));
}

void tg_stars_precheckout(struct tg *tg, const cJSON *q)
{
    const char *id = tg_json_str(q, "id");
    if (id == NULL) {
        log_warn("telegram.update_malformed", "problem=pre_checkout_query without id");
        return;
    }
    const char *currency = tg_json_str(q, "currency");
    int64_t total = tg_json_int(q, "total_amount", 0);
    int64_t stars = 0, credits = 0, group = 0;
    int rc = pay__payload_parse(tg_json_str(q, "invoice_payload"), &stars, &credits, &group);
    bool ok = rc == 0 && currency != NULL && strcmp(currency, "XTR") == 0 && total == stars &&
              pay__offered(tg, stars, credits) && pay__ledger(tg) != NULL;
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return;
    cJSON_AddStringToObject(body, "pre_checkout_query_id", id);
    cJSON_AddBoolToObject(body, "ok", ok);
    if (!ok)
        cJSON_AddStringToObject(body, "error_message",
                                pay__ledger(tg) == NULL ? MSG_TG_STARS_UNAVAILABLE
                                                        : MSG_TG_STARS_NOT_OFFERED);
    log_info("telegram.precheckout", "ok=%d stars=%" PRId64 " credits=%" PRId64, ok ? 1 : 0, stars,
             credits);
    if (tg_call_json(tg, "answerPreCheckoutQuery", body, pay__precheckout_answered, NULL) < 0)
        log_error("telegram.precheckout_answer_failed", "error=cannot send");
    cJSON_Delete(body);
}

/* Booked (core/deposit.h): answer the payer with the new balance. A
 * wallet's balance is the member's own: the answer is personal, so paid
 * from a group it goes to the member's private chat and the group hears
 * only where it went. A pool's balance is the group's, answered there. */
static void pay__credited(int rc, const struct deposit_result *res, void *data)
{
    struct tg_pay *p = data;
    if (rc < 0) {
        log_error("telegram.payment_not_credited", "charge=%s account=%s error=%s", p->charge,
                  p->account, hb_strerror(rc));
        if (p->r != NULL)
            reply_text(&p->r->reply, false, MSG_TG_STARS_NOT_CREDITED, p->charge);
        pay__free(p);
        return;
    }
    log_info("telegram.payment_credited", "charge=%s account=%s credits=%" PRId64 " replay=%d",
             p->charge, p->account, p->credits, res->existed ? 1 : 0);
    /* The first report of this charge was answered: one payment, one
     * answer. */
    if (p->r != NULL && !res->existed) {
        bool pool = strncmp(p->account, "pool:", 5) == 0;
        const char *whose = pool ? MSG_TG_STARS_FOR_POOL : MSG_TG_STARS_FOR_WALLET;
        char text[512];
        /* A balance lower than the credits says why: debt was repaid. */
        if (res->balance >= 0 && res->repaid > 0)
            snprintf(text, sizeof(text), MSG_TG_STARS_CREDITED MSG_TG_STARS_REPAID,
                     MSG_TG_STARS_THANKS, (long long)p->credits, (long long)p->stars, whose,
                     (long long)res->balance, (long long)res->repaid);
        else if (res->balance >= 0)
            snprintf(text, sizeof(text), MSG_TG_STARS_CREDITED, MSG_TG_STARS_THANKS,
                     (long long)p->credits, (long long)p->stars, whose, (long long)res->balance);
        else
            snprintf(text, sizeof(text), MSG_TG_STARS_ADDED, (long long)p->credits);
        if (pool)
            reply_text(&p->r->reply, false, "%s", text);
        else
            reply_personal(&p->r->reply, text);
    }
    pay__free(p);
}

void tg_stars_paid(struct tg *tg, struct tg_reply *r, int64_t chat_id, int64_t user_id,
                   const cJSON *sp)
{
    const char *charge = tg_json_str(sp, "telegram_payment_charge_id");
    const char *currency = tg_json_str(sp, "currency");
    int64_t stars = 0, credits = 0, group = 0;
    int rc = pay__payload_parse(tg_json_str(sp, "invoice_payload"), &stars, &credits, &group);
    if (charge == NULL || charge[0] == '\0' || strlen(charge) > 100) {
        log_error("telegram.payment_malformed", "problem=no charge id chat=%" PRId64, chat_id);
        return;
    }
    if (rc < 0 || currency == NULL || strcmp(currency, "XTR") != 0) {
        log_error("telegram.payment_unknown",
                  "charge=%s chat=%" PRId64
                  " hint=not a package this bot offered; refund it with /admin refund",
                  charge, chat_id);
        reply_text(&r->reply, false, MSG_TG_STARS_UNKNOWN, charge);
        return;
    }
    /* The payer's private chat is where a personal answer goes from a
     * group; this handle is the payment's alone, finished when answered. */
    if (r->user_id == 0)
        r->user_id = user_id;
    struct tg_pay *p = pay__new(tg, r);
    if (p == NULL)
        return;
    p->finish = true;
    p->stars = stars;
    p->credits = credits;
    p->payer = user_id;
    snprintf(p->charge, sizeof(p->charge), "%s", charge);
    snprintf(p->id, sizeof(p->id), "tg:stars:%s", charge);
    char who[32];
    snprintf(who, sizeof(who), "%" PRId64, group != 0 ? group : user_id);
    if (group != 0)
        rc = ledger_pool_name(p->account, sizeof(p->account), "telegram", who);
    else
        rc = link_wallet_name(tg->core, "telegram", who, p->account, sizeof(p->account));
    char ref[STORE_REF_SIZE];
    snprintf(ref, sizeof(ref), "telegram stars=%" PRId64 " payer=%" PRId64 " charge=%s", p->stars,
             p->payer, p->charge);
    struct deposit_credit c = {.id = p->id,
                               .account = p->account,
                               .credits = p->credits,
                               .welcome_bonus = tg->core != NULL ? tg->core->welcome_bonus : 0,
                               .ref = ref,
                               .method = "telegram"};
    if (rc == 0)
        rc = deposit_credit(pay__ledger(tg), &c, pay__credited, p);
    if (rc < 0)
        pay__credited(rc, &(struct deposit_result){.balance = -1, .step = "open account"}, p);
}

/* ---- refunds -------------------------------------------------------- */

static void pay__reversed(int rc, const struct deposit_result *res, void *data)
{
    struct tg_pay *p = data;
    if (rc == 0) {
        p->debt = res != NULL ? res->debt : 0;
        log_info("telegram.refunded", "charge=%s account=%s credits=%" PRId64 " debt=%" PRId64,
                 p->charge, p->account, p->credits, p->debt);
        if (res != NULL && !res->existed) {
            cJSON *detail = cJSON_CreateObject();
            cJSON_AddStringToObject(detail, "account", p->account);
            cJSON_AddNumberToObject(detail, "credits", (double)p->credits);
            cJSON_AddNumberToObject(detail, "stars", (double)p->stars);
            cJSON_AddNumberToObject(detail, "debt", (double)p->debt);
            struct ledger *l = pay__ledger(p->tg);
            if (l != NULL)
                audit_note(ledger_store(l), p->admin, "refund", p->id, detail);
            else
                cJSON_Delete(detail);
        }
        /* What a member's wallet owes is theirs: a group reads that the
         * credits were taken back, and the debt is an aside for the admin
         * (left out in a group). A pool's debt is the group's. */
        bool hide = p->r->group && strncmp(p->account, "pool:", 5) != 0;
        if (!hide) {
            reply_text(&p->r->reply, true, MSG_TG_REFUND_DONE, (long long)p->stars,
                       (long long)p->payer, (long long)p->credits, p->account, (long long)p->debt);
        } else {
            reply_text(&p->r->reply, true, MSG_TG_REFUND_DONE_HERE, (long long)p->stars,
                       (long long)p->payer, (long long)p->credits, p->account);
            char text[STORE_ID_SIZE + 96];
            snprintf(text, sizeof(text), MSG_TG_REFUND_DEBT, (long long)p->debt, p->account);
            struct reply_msg msg = {.stage = REPLY_FINAL,
                                    .ephemeral = true,
                                    .personal = true,
                                    .aside = true,
                                    .text = text};
            if (p->debt > 0)
                reply_send(&p->r->reply, &msg);
        }
    } else {
        log_error("telegram.refund_not_recorded", "charge=%s error=%s", p->charge, hb_strerror(rc));
        reply_text(&p->r->reply, true, MSG_TG_REFUND_UNRECORDED, hb_strerror(rc));
    }
    pay__free(p);
}

static void pay__refund_answered(struct tg *tg, void *data, const struct tg_result *res)
{
    struct tg_pay *p = data;
    struct ledger *l = pay__ledger(tg);
    int rc = 0;
    bool again = strstr(res->description, "CHARGE_ALREADY_REFUNDED") != NULL;
    if (res->rc != 0 || !(res->ok || again)) {
        reply_text(&p->r->reply, true, MSG_TG_REFUND_REFUSED,
                   res->rc != 0 ? hb_strerror(res->rc) : res->description);
        pay__free(p);
        return;
    }
    char id[STORE_ID_SIZE];
    snprintf(id, sizeof(id), "tg:refund:%s", p->charge);
    char ref[STORE_REF_SIZE];
    snprintf(ref, sizeof(ref), "telegram refund charge=%s", p->charge);
    struct deposit_reversal rev = {
        .id = id, .original = p->id, .credits = p->credits, .chargeback = false, .ref = ref};
    rc = deposit_reverse(l, &rev, pay__reversed, p);
    if (rc < 0)
        pay__reversed(rc, NULL, p);
}

static void pay__refund_found(int rc, const struct ledger_result *res, void *data)
{
    struct tg_pay *p = data;
    const char *payer = rc == 0 ? strstr(res->transfer.ref, "payer=") : NULL;
    const char *stars = rc == 0 ? strstr(res->transfer.ref, "stars=") : NULL;
    if (payer == NULL || stars == NULL) {
        reply_text(&p->r->reply, true, MSG_TG_REFUND_NO_CHARGE, p->charge);
        pay__free(p);
        return;
    }
    p->payer = strtoll(payer + 6, NULL, 10);
    p->stars = strtoll(stars + 6, NULL, 10);
    p->credits = res->transfer.amount;
    snprintf(p->account, sizeof(p->account), "%s", res->transfer.credit);
    cJSON *body = cJSON_CreateObject();
    if (body != NULL) {
        cJSON_AddNumberToObject(body, "user_id", (double)p->payer);
        cJSON_AddStringToObject(body, "telegram_payment_charge_id", p->charge);
    }
    rc = body == NULL ? HB_ENOMEM
                      : tg_call_json(p->tg, "refundStarPayment", body, pay__refund_answered, p);
    cJSON_Delete(body);
    if (rc < 0) {
        reply_text(&p->r->reply, true, MSG_TG_REFUND_NOT_SENT, hb_strerror(rc));
        pay__free(p);
    }
}

void tg_stars_refund(struct tg *tg, struct tg_reply *r, const char *charge_id, const char *admin_id)
{
    struct ledger *l = pay__ledger(tg);
    size_t n = strcspn(charge_id, " \t\n");
    if (l == NULL || n == 0 || n > 100) {
        reply_text(&r->reply, true, MSG_TG_REFUND_BAD_CHARGE);
        return;
    }
    struct tg_pay *p = pay__new(tg, r);
    if (p == NULL)
        return;
    snprintf(p->charge, sizeof(p->charge), "%.*s", (int)n, charge_id);
    snprintf(p->id, sizeof(p->id), "tg:stars:%s", p->charge);
    snprintf(p->admin, sizeof(p->admin), "telegram:%s", admin_id != NULL ? admin_id : "");
    if (ledger_transfer_get(l, p->id, pay__refund_found, p) < 0)
        pay__refund_found(HB_ECANCELED, NULL, p);
}
