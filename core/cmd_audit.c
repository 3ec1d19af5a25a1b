/* Admin commands for support and oversight: /admin audit (the audit trail,
 * page by page), /admin member (a member's figures, never prompt text),
 * /admin payments unmatched and /admin payments assign (payments that
 * named no member, credited once by hand). Their answers hold members'
 * figures, so only the admin sees them. */
#include "core/core.h"

#include "base/error.h"
#include "base/log.h"
#include "base/text.h"
#include "core/audit.h"
#include "core/deposit.h"
#include "core/format.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/member.h"
#include "core/messages.h"
#include "core/state.h"
#include "core/wallet.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PAGE 10
#define AUDIT_PAGES 50
#define AUDIT_DETAIL_SHOWN 160                /* bytes of an entry's detail a page shows */
#define MEMBER_HISTORY 50                     /* transfers read for /admin member */
#define MEMBER_RECENT 5                       /* of which shown */
#define MEMBER_USAGE_MS (30LL * 24 * 3600000) /* generations counted over 30 days */
#define UNMATCHED_MAX 20                      /* entries listed per kind */

/* The answer: the admin's alone (it holds members' figures). */
static void audit__answer(struct invocation *inv, const char *text,
                          const struct reply_button *buttons, size_t nbuttons)
{
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .ephemeral = true,
                            .personal = true,
                            .text = text,
                            .buttons = buttons,
                            .nbuttons = nbuttons};
    reply_send(inv->reply, &msg);
}

/* ---- /admin audit --------------------------------------------------------- */

struct audit_view {
    struct core *core;
    struct invocation *inv;
    char match[STORE_ID_SIZE]; /* "" for every entry */
    int64_t page;              /* from 0 */
    uint64_t anchor;           /* entries with seq < anchor (0: newest) */
};

static void audit__view_done(struct audit_view *v)
{
    reply_finish(v->inv->reply);
    free(v);
}

static int audit__button(struct audit_view *v, struct reply_button *b, int64_t page,
                         uint64_t anchor, const char *label)
{
    char payload[COMMAND_BUTTON_REF_MAX + 1];
    int n = snprintf(payload, sizeof(payload), "%lld.%llu.%s", (long long)page,
                     (unsigned long long)anchor, v->match);
    if (n < 0 || (size_t)n >= sizeof(payload))
        return HB_EINVAL;
    for (char *c = payload; *c != '\0'; c++) {
        if (*c == ':')
            *c = '~'; /* a ref's payload holds no ':' */
    }
    b->label = label;
    return button_ref_make(b->ref, v->core->button_key, "aud", payload, v->inv);
}

static void audit__page_got(int rc, const struct store_audit *e, size_t n, void *data)
{
    struct audit_view *v = data;
    if (rc < 0) {
        log_warn("command.failed", "command=%s step=audit error=%s", v->inv->name, hb_strerror(rc));
        reply_text(v->inv->reply, true, MSG_AUDIT_FAILED, hb_strerror(rc));
        audit__view_done(v);
        return;
    }
    struct text_buf t = {0};
    if (n == 0) {
        text_buf_add(&t, v->page == 0 ? MSG_AUDIT_NONE : MSG_AUDIT_NO_OLDER);
    } else {
        if (v->match[0] != '\0')
            text_buf_add(&t, MSG_AUDIT_HEADER_FOR, v->match, (long long)v->page + 1);
        else
            text_buf_add(&t, MSG_AUDIT_HEADER, (long long)v->page + 1);
        for (size_t i = 0; i < n && i < AUDIT_PAGE; i++) {
            char when[32], seq[24];
            format_time(when, sizeof(when), e[i].ts);
            snprintf(seq, sizeof(seq), "%" PRIu64, e[i].seq);
            text_buf_add(&t, MSG_AUDIT_ENTRY, seq, when, e[i].actor, e[i].action,
                         e[i].subject[0] != '\0' ? e[i].subject : "-");
            if (e[i].detail[0] != '\0')
                text_buf_add(&t, " %.*s%s", AUDIT_DETAIL_SHOWN, e[i].detail,
                             strlen(e[i].detail) > AUDIT_DETAIL_SHOWN ? "..." : "");
            text_buf_add(&t, "\n");
        }
    }
    /* Pages are anchored at the newest entry of the first view, so entries
     * written meanwhile do not shift the pages being read. */
    uint64_t anchor = v->anchor;
    if (anchor == 0 && n > 0)
        anchor = e[0].seq + 1;
    struct reply_button buttons[2];
    size_t nb = 0;
    if (v->page > 0 &&
        audit__button(v, &buttons[nb], v->page - 1, anchor, MSG_AUDIT_BUTTON_NEWER) == 0)
        nb++;
    if (n > AUDIT_PAGE && v->page + 1 < AUDIT_PAGES &&
        audit__button(v, &buttons[nb], v->page + 1, anchor, MSG_AUDIT_BUTTON_OLDER) == 0)
        nb++;
    text_buf_trim(&t);
    audit__answer(v->inv, text_buf_str(&t), buttons, nb);
    free(t.buf);
    audit__view_done(v);
}

static void audit__read(struct audit_view *v)
{
    /* One more than a page tells whether an older page exists. */
    int rc = v->core->ledger != NULL
                 ? audit_list(ledger_store(v->core->ledger), v->match[0] != '\0' ? v->match : NULL,
                              v->anchor, (size_t)v->page * AUDIT_PAGE, AUDIT_PAGE + 1,
                              audit__page_got, v)
                 : HB_ECANCELED;
    if (rc < 0)
        audit__page_got(rc, NULL, 0, v);
}

static void audit__filter_resolved(int rc, const char *user_id, void *data)
{
    struct audit_view *v = data;
    if (rc == 0)
        snprintf(v->match, sizeof(v->match), "%s:%s", command_platform_name(v->inv->platform),
                 user_id);
    audit__read(v);
}

static bool audit__digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
    }
    return true;
}

void cmd_admin_audit(struct core *core, struct invocation *inv)
{
    struct audit_view *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    v->core = core;
    v->inv = inv;
    v->page = inv->opts[1].set ? inv->opts[1].integer - 1 : 0;
    const char *filter = inv->opts[0].set ? inv->opts[0].string : "";
    /* "/admin audit 2" asks for a page, not for member 2. */
    if (!inv->opts[1].set && audit__digits(filter) && strlen(filter) <= 2 && atoi(filter) >= 1 &&
        atoi(filter) <= AUDIT_PAGES) {
        v->page = atoi(filter) - 1;
        filter = "";
    }
    /* A mention, an id or an @name is a member of this platform; anything
     * else (an action, "discord:123", a pool) is matched as written. */
    char ref[STORE_ID_SIZE];
    size_t len = strlen(filter);
    if (len > 3 && strncmp(filter, "<@", 2) == 0 && filter[len - 1] == '>') {
        const char *d = filter[2] == '!' ? filter + 3 : filter + 2;
        snprintf(ref, sizeof(ref), "%.*s", (int)(filter + len - 1 - d), d);
    } else {
        snprintf(ref, sizeof(ref), "%s", filter);
    }
    if (audit__digits(ref) || (ref[0] == '@' && ref[1] != '\0')) {
        member_resolve(core, inv, ref, audit__filter_resolved, v);
        return;
    }
    snprintf(v->match, sizeof(v->match), "%s", filter);
    audit__read(v);
}

void cmd_admin_audit_button(struct core *core, struct invocation *inv)
{
    char payload[COMMAND_BUTTON_REF_MAX + 1];
    long long page = 0;
    unsigned long long anchor = 0;
    int used = 0;
    int rc = button_ref_check(inv, core->button_key, payload, sizeof(payload));
    if (rc == 0 && (sscanf(payload, "%lld.%llu.%n", &page, &anchor, &used) != 2 || used == 0 ||
                    page < 0 || page >= AUDIT_PAGES))
        rc = HB_EINVAL;
    if (rc < 0) {
        reply_text(inv->reply, true, MSG_AUDIT_BUTTON_EXPIRED);
        reply_finish(inv->reply);
        return;
    }
    struct audit_view *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_finish(inv->reply);
        return;
    }
    v->core = core;
    v->inv = inv;
    v->page = page;
    v->anchor = anchor;
    snprintf(v->match, sizeof(v->match), "%s", payload + used);
    for (char *c = v->match; *c != '\0'; c++) {
        if (*c == '~')
            *c = ':';
    }
    audit__read(v);
}

/* ---- /admin member ----------------------------------------------------------- */

struct member_view {
    struct core *core;
    struct invocation *inv;
    char wallet[WALLET_ACCOUNT_MAX];
    char shown[COMMAND_ID_MAX];
    struct ledger_balance balance;
    struct text_buf t;
};

static void member__done(struct member_view *v, int rc, const char *step)
{
    if (rc < 0) {
        log_warn("command.failed", "command=%s step=%s error=%s", v->inv->name, step,
                 hb_strerror(rc));
        reply_text(v->inv->reply, true, MSG_MEMBER_FAILED, hb_strerror(rc));
    }
    free(v->t.buf);
    reply_finish(v->inv->reply);
    free(v);
}

/* Generations per model over the last 30 days: counts and credits only. */
static void member__usage_got(int rc, const struct ledger_result *r, void *data)
{
    struct member_view *v = data;
    if (rc < 0) {
        member__done(v, rc, "usage");
        return;
    }
    struct {
        const char *tag;
        int64_t count, amount;
    } models[64];
    size_t nm = 0;
    int64_t count = 0, amount = 0;
    for (size_t i = 0; i < r->usage_count; i++) {
        const struct store_usage *u = &r->usage[i];
        size_t j = 0;
        while (j < nm && strcmp(models[j].tag, u->tag) != 0)
            j++;
        if (j == nm && nm < sizeof(models) / sizeof(models[0])) {
            models[nm].tag = u->tag;
            models[nm].count = 0;
            models[nm].amount = 0;
            nm++;
        }
        if (j < nm) {
            models[j].count += u->count;
            models[j].amount += u->amount;
        }
        count += u->count;
        amount += u->amount;
    }
    char credits[32];
    text_buf_add(&v->t, MSG_MEMBER_GENERATIONS, (long long)count,
                 format_credits(credits, sizeof(credits), amount));
    for (size_t j = 0; j < nm; j++)
        text_buf_add(&v->t, MSG_MEMBER_MODEL, models[j].tag[0] != '\0' ? models[j].tag : "-",
                     (long long)models[j].count,
                     format_credits(credits, sizeof(credits), models[j].amount));
    text_buf_trim(&v->t);
    audit__answer(v->inv, text_buf_str(&v->t), NULL, 0);
    member__done(v, 0, NULL);
}

static void member__line(struct text_buf *t, const struct store_transfer *tr, const char *wallet)
{
    char when[32], amount[32];
    bool in = strcmp(tr->credit, wallet) == 0;
    format_time(when, sizeof(when), tr->ts);
    format_credits(amount, sizeof(amount), tr->amount);
    const char *what = format_kind(tr->kind);
    text_buf_add(t, "  ");
    if (tr->flags & LEDGER_TRANSFER_PENDING)
        text_buf_add(t, MSG_HISTORY_RESERVED, when, amount, what);
    else if (tr->flags & LEDGER_TRANSFER_VOID)
        text_buf_add(t, MSG_HISTORY_RELEASED, when, what,
                     tr->flags & LEDGER_TRANSFER_EXPIRED ? MSG_HISTORY_EXPIRED : "");
    else
        text_buf_add(t, MSG_HISTORY_ENTRY, when, in ? "+" : "-", amount, what);
    if (tr->tag[0] != '\0')
        text_buf_add(t, MSG_HISTORY_TAG, tr->tag);
    text_buf_add(t, "\n");
}

static void member__history_got(int rc, const struct ledger_result *r, void *data)
{
    struct member_view *v = data;
    if (rc < 0) {
        member__done(v, rc, "history");
        return;
    }
    /* Open reservations: pending entries nothing in the window resolved. */
    size_t open = 0;
    for (size_t i = 0; i < r->history_count; i++) {
        const struct store_transfer *p = &r->history[i];
        if (!(p->flags & LEDGER_TRANSFER_PENDING))
            continue;
        bool resolved = false;
        for (size_t j = 0; j < i && !resolved; j++)
            resolved = strcmp(r->history[j].link, p->id) == 0;
        if (resolved)
            continue;
        if (open++ == 0)
            text_buf_add(&v->t, MSG_MEMBER_RESERVATIONS);
        member__line(&v->t, p, v->wallet);
    }
    if (r->history_count == 0) {
        text_buf_add(&v->t, MSG_MEMBER_NO_TRANSFERS);
    } else {
        text_buf_add(&v->t, MSG_MEMBER_TRANSFERS);
        for (size_t i = 0; i < r->history_count && i < MEMBER_RECENT; i++)
            member__line(&v->t, &r->history[i], v->wallet);
    }
    int64_t now = core_now_ms(v->core);
    rc = ledger_usage_get(v->core->ledger, v->wallet, now - MEMBER_USAGE_MS, now + 1,
                          member__usage_got, v);
    if (rc < 0)
        member__done(v, rc, "usage");
}

static void member__balance_got(int rc, const struct ledger_result *r, void *data)
{
    struct member_view *v = data;
    if (rc == HB_ENOTFOUND) {
        reply_text(v->inv->reply, true, MSG_MEMBER_NO_WALLET, v->shown);
        member__done(v, 0, NULL);
        return;
    }
    if (rc < 0) {
        member__done(v, rc, "balance");
        return;
    }
    char avail[32], posted[32], held[32];
    text_buf_add(&v->t, MSG_MEMBER_HEADER, v->shown, v->wallet);
    text_buf_add(&v->t, MSG_MEMBER_BALANCE,
                 format_credits(avail, sizeof(avail), r->balance.available),
                 format_credits(posted, sizeof(posted), r->balance.posted),
                 format_credits(held, sizeof(held), r->balance.pending_debits));
    rc = ledger_history_get(v->core->ledger, v->wallet, 0, MEMBER_HISTORY, member__history_got, v);
    if (rc < 0)
        member__done(v, rc, "history");
}

static void member__resolved(int rc, const char *user_id, void *data)
{
    struct member_view *v = data;
    if (rc == HB_ENOTFOUND) {
        reply_text(v->inv->reply, true, MSG_MEMBER_UNKNOWN, v->shown);
        member__done(v, 0, NULL);
        return;
    }
    if (rc == 0 && v->core->ledger == NULL)
        rc = HB_ECANCELED;
    if (rc == 0)
        rc = link_wallet_name(v->core, command_platform_name(v->inv->platform), user_id, v->wallet,
                              sizeof(v->wallet));
    if (rc == 0)
        rc = ledger_balance_get(v->core->ledger, v->wallet, member__balance_got, v);
    if (rc < 0)
        member__done(v, rc, "member");
}

void cmd_admin_member(struct core *core, struct invocation *inv)
{
    struct member_view *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    v->core = core;
    v->inv = inv;
    bool by_reply = inv->target_name[0] != '\0' && strcmp(inv->opts[0].string, inv->target_id) == 0;
    snprintf(v->shown, sizeof(v->shown), "%s", by_reply ? inv->target_name : inv->opts[0].string);
    member_resolve(core, inv, inv->opts[0].string, member__resolved, v);
}

/* ---- /admin payments ---------------------------------------------------------- */

/* A field "name=value" of a note (values end at a space; memo= takes the
 * rest). Copies "" when absent. */
static void payments__field(const char *note, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *p = note; p != NULL && *p != '\0'; p = strchr(p, ' ')) {
        while (*p == ' ')
            p++;
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            p += nlen + 1;
            size_t len = strcmp(name, "memo") == 0 ? strlen(p) : strcspn(p, " ");
            snprintf(out, cap, "%.*s", (int)len, p);
            return;
        }
    }
}

struct payments_view {
    struct core *core;
    struct invocation *inv;
    struct text_buf t;
    size_t n;
    /* assign */
    char id[STATE_KEY_MAX];
    const char *ns, *key;
    bool hedera; /* a Hedera transfer (else a card payment) */
    char note[512];
    char wallet[WALLET_ACCOUNT_MAX];
    char shown[COMMAND_ID_MAX];
    char transfer[DEPOSIT_ID_MAX + 1];
    int64_t credits;
    char actor[STORE_ID_SIZE];
};

/* A listed id names its record: "hedera:<transaction>[:<token>]" in the
 * Hedera poller's notes, "<provider>:<event>" in the card webhooks'. */
static void payments__record(struct payments_view *v)
{
    static const char hedera[] = "hedera:";
    v->hedera = strncmp(v->id, hedera, sizeof(hedera) - 1) == 0;
    v->ns = v->hedera ? DEPOSIT_NS_UNMATCHED_HEDERA : DEPOSIT_NS_UNMATCHED;
    v->key = v->hedera ? v->id + sizeof(hedera) - 1 : v->id;
}

static void payments__done(struct payments_view *v, int rc, const char *step)
{
    if (rc < 0) {
        log_warn("command.failed", "command=%s step=%s error=%s", v->inv->name, step,
                 hb_strerror(rc));
        reply_text(v->inv->reply, true, MSG_PAYMENTS_FAILED, hb_strerror(rc));
    }
    free(v->t.buf);
    reply_finish(v->inv->reply);
    free(v);
}

static struct store *payments__store(struct payments_view *v)
{
    return v->core->ledger != NULL ? ledger_store(v->core->ledger) : NULL;
}

static void payments__list_add(struct payments_view *v, const struct state_entry *e, size_t n,
                               const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (v->n++ == 0)
            text_buf_add(&v->t, MSG_PAYMENTS_UNMATCHED_HEADER);
        text_buf_add(&v->t, MSG_PAYMENTS_UNMATCHED_ENTRY, prefix, e[i].key, e[i].value);
    }
}

static void payments__hedera_listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct payments_view *v = data;
    if (rc < 0) {
        payments__done(v, rc, "list");
        return;
    }
    payments__list_add(v, e, n, "hedera:");
    if (v->n == 0) {
        text_buf_add(&v->t, MSG_PAYMENTS_UNMATCHED_NONE);
    } else {
        text_buf_add(&v->t, "\n");
        text_buf_add(&v->t, MSG_PAYMENTS_UNMATCHED_HINT);
    }
    audit__answer(v->inv, text_buf_str(&v->t), NULL, 0);
    payments__done(v, 0, NULL);
}

static void payments__cards_listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct payments_view *v = data;
    if (rc < 0) {
        payments__done(v, rc, "list");
        return;
    }
    payments__list_add(v, e, n, "");
    rc = state_list(payments__store(v), DEPOSIT_NS_UNMATCHED_HEDERA, "", UNMATCHED_MAX,
                    payments__hedera_listed, v);
    if (rc < 0)
        payments__done(v, rc, "list");
}

static struct payments_view *payments__new(struct core *core, struct invocation *inv)
{
    struct payments_view *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return NULL;
    }
    v->core = core;
    v->inv = inv;
    audit_actor(v->actor, sizeof(v->actor), inv);
    return v;
}

void cmd_admin_payments_unmatched(struct core *core, struct invocation *inv)
{
    struct payments_view *v = payments__new(core, inv);
    if (v == NULL)
        return;
    int rc = payments__store(v) != NULL ? state_list(payments__store(v), DEPOSIT_NS_UNMATCHED, "",
                                                     UNMATCHED_MAX, payments__cards_listed, v)
                                        : HB_ECANCELED;
    if (rc < 0)
        payments__done(v, rc, "list");
}

static void payments__removed(int rc, const char *value, void *data)
{
    struct payments_view *v = data;
    (void)value;
    if (rc < 0) {
        payments__done(v, rc, "remove note");
        return;
    }
    char credits[32];
    reply_text(v->inv->reply, true, MSG_PAYMENTS_ASSIGNED, v->id, v->shown,
               format_credits(credits, sizeof(credits), v->credits));
    payments__done(v, 0, NULL);
}

static void payments__resolved_noted(int rc, const char *value, void *data)
{
    struct payments_view *v = data;
    (void)value;
    if (rc == 0)
        rc = state_put(payments__store(v), v->ns, v->key, NULL, payments__removed, v);
    if (rc < 0)
        payments__done(v, rc, "record assignment");
}

static void payments__credited(int rc, const struct deposit_result *r, void *data)
{
    struct payments_view *v = data;
    if (rc == HB_ECONFLICT) {
        /* Credited to someone else meanwhile: never twice. */
        reply_text(v->inv->reply, true, MSG_PAYMENTS_ALREADY, v->id, MSG_PAYMENTS_ANOTHER_MEMBER);
        payments__done(v, 0, NULL);
        return;
    }
    if (rc < 0) {
        payments__done(v, rc, r != NULL && r->step != NULL ? r->step : "credit");
        return;
    }
    if (!r->existed) {
        cJSON *detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "member", v->wallet);
        cJSON_AddNumberToObject(detail, "credits", (double)v->credits);
        cJSON_AddStringToObject(detail, "transfer", v->transfer);
        audit_note(payments__store(v), v->actor, "payment.assign", v->id, detail);
        log_info("payment.assigned", "payment=%s account=%s credits=%" PRId64 " admin=%s", v->id,
                 v->wallet, v->credits, v->actor);
    }
    char note[600];
    snprintf(note, sizeof(note), "account=%s credits=%" PRId64 " by=%s transfer=%s", v->wallet,
             v->credits, v->actor, v->transfer);
    rc = state_put(payments__store(v), DEPOSIT_NS_ASSIGNED, v->id, note, payments__resolved_noted,
                   v);
    if (rc < 0)
        payments__done(v, rc, "record assignment");
}

static void payments__member_resolved(int rc, const char *user_id, void *data)
{
    struct payments_view *v = data;
    if (rc == HB_ENOTFOUND) {
        reply_text(v->inv->reply, true, MSG_MEMBER_UNKNOWN, v->shown);
        payments__done(v, 0, NULL);
        return;
    }
    if (rc == 0 && v->core->ledger == NULL)
        rc = HB_ECANCELED;
    if (rc == 0)
        rc = link_wallet_name(v->core, command_platform_name(v->inv->platform), user_id, v->wallet,
                              sizeof(v->wallet));
    if (rc < 0) {
        payments__done(v, rc, "member");
        return;
    }
    /* Named by the payment itself (never by a webhook's event), so one
     * payment is credited once however often it is assigned. */
    char payment[STATE_KEY_MAX + 8], field[160];
    payments__field(v->note, "payment", field, sizeof(field));
    if (!v->hedera && field[0] != '\0')
        snprintf(payment, sizeof(payment), "%.*s:%s", (int)strcspn(v->key, ":"), v->key, field);
    else
        snprintf(payment, sizeof(payment), "%s", v->id);
    rc = deposit_id_make(v->transfer, sizeof(v->transfer), "assign", payment, NULL);
    if (rc < 0) {
        payments__done(v, rc, "transfer id");
        return;
    }
    char ref[STORE_REF_SIZE];
    snprintf(ref, sizeof(ref), "assigned by %.100s: %.140s", v->actor, v->id);
    struct deposit_credit c = {.id = v->transfer,
                               .account = v->wallet,
                               .credits = v->credits,
                               .welcome_bonus = v->core->welcome_bonus,
                               .ref = ref,
                               .method = "assign"};
    rc = deposit_credit(v->core->ledger, &c, payments__credited, v);
    if (rc < 0)
        payments__done(v, rc, "credit");
}

static void payments__assigned_read(int rc, const char *value, void *data)
{
    struct payments_view *v = data;
    if (rc == 0) {
        char account[WALLET_ACCOUNT_MAX];
        payments__field(value, "account", account, sizeof(account));
        reply_text(v->inv->reply, true, MSG_PAYMENTS_ALREADY, v->id, account);
        payments__done(v, 0, NULL);
        return;
    }
    if (rc == HB_ENOTFOUND) {
        reply_text(v->inv->reply, true, MSG_PAYMENTS_UNKNOWN, v->id);
        payments__done(v, 0, NULL);
        return;
    }
    payments__done(v, rc, "read");
}

static void payments__link_read(int rc, const char *value, void *data)
{
    struct payments_view *v = data;
    if (rc == 0) {
        /* "<transfer id> <account> ...": credited by the payment itself. */
        char account[WALLET_ACCOUNT_MAX] = "";
        const char *sp = strchr(value, ' ');
        if (sp != NULL)
            snprintf(account, sizeof(account), "%.*s", (int)strcspn(sp + 1, " "), sp + 1);
        reply_text(v->inv->reply, true, MSG_PAYMENTS_ALREADY, v->id, account);
        payments__done(v, 0, NULL);
        return;
    }
    if (rc != HB_ENOTFOUND) {
        payments__done(v, rc, "read");
        return;
    }
    member_resolve(v->core, v->inv, v->inv->opts[1].string, payments__member_resolved, v);
}

static void payments__note_read(int rc, const char *value, void *data)
{
    struct payments_view *v = data;
    if (rc == HB_ENOTFOUND) {
        rc = state_get(payments__store(v), DEPOSIT_NS_ASSIGNED, v->id, payments__assigned_read, v);
        if (rc < 0)
            payments__done(v, rc, "read");
        return;
    }
    if (rc < 0) {
        payments__done(v, rc, "read");
        return;
    }
    snprintf(v->note, sizeof(v->note), "%s", value);
    if (v->credits == 0) {
        char field[32];
        payments__field(v->note, "credits", field, sizeof(field));
        v->credits = strtoll(field, NULL, 10);
    }
    if (v->credits <= 0) {
        reply_text(v->inv->reply, true, MSG_PAYMENTS_NEED_CREDITS, v->id, v->id);
        payments__done(v, 0, NULL);
        return;
    }
    /* A card payment its own webhook credited since (a later event of the
     * same payment) is not credited a second time by hand. */
    char payment[160], link[STATE_KEY_MAX];
    payments__field(v->note, "payment", payment, sizeof(payment));
    if (!v->hedera && payment[0] != '\0') {
        snprintf(link, sizeof(link), "%.*s:%s", (int)strcspn(v->key, ":"), v->key, payment);
        rc = state_get(payments__store(v), DEPOSIT_NS_PAYMENT_LINKS, link, payments__link_read, v);
        if (rc < 0)
            payments__done(v, rc, "read");
        return;
    }
    member_resolve(v->core, v->inv, v->inv->opts[1].string, payments__member_resolved, v);
}

void cmd_admin_payments_assign(struct core *core, struct invocation *inv)
{
    struct payments_view *v = payments__new(core, inv);
    if (v == NULL)
        return;
    snprintf(v->id, sizeof(v->id), "%s", inv->opts[0].string);
    payments__record(v);
    v->credits = inv->opts[2].set ? inv->opts[2].integer : 0;
    bool by_reply = inv->target_name[0] != '\0' && strcmp(inv->opts[1].string, inv->target_id) == 0;
    snprintf(v->shown, sizeof(v->shown), "%s", by_reply ? inv->target_name : inv->opts[1].string);
    int rc = payments__store(v) != NULL
                 ? state_get(payments__store(v), v->ns, v->key, payments__note_read, v)
                 : HB_ECANCELED;
    if (rc < 0)
        payments__done(v, rc, "read");
}
