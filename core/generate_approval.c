/* The approval queue: jobs held for an admin's decision after their
 * reservation and before their provider call (core/approval.h says by
 * which rules).
 *
 * A held job keeps its reservation, whose ledger timeout was stretched by
 * the hold's timeout when it was made, and its record in the state table
 * says "held" with what it needs to run after a restart
 * (generate_held.c); the record is removed once the job is decided.
 * Recovery (generate_recover.c) leaves such records alone and brings the
 * jobs back held. Once held, a job answers its member
 * through the host's notices (where they asked), not its reply handle.
 *
 * Admins are told in the configured Discord channel and Telegram chat and
 * on the console, with buttons where the platform's notices carry them.
 * The buttons are signed like every other (core/button.h) but bound to the
 * chat they were posted in rather than to a member, since any admin there
 * may press them; the command's admin access and generate__may_decide()
 * say who decides. Each decision is logged as approval.decided with the id,
 * the actor and the outcome (never the prompt), counted in
 * haibot_approvals_total{outcome}, and remembered for a while so a second
 * press hears who decided. */
#include "core/audit.h"
#include "core/feature.h"
#include "core/generate_internal.h"

#include "core/button.h"
#include "core/cluster.h"
#include "core/core.h"
#include "core/messages.h"
#include "core/notify.h"
#include "core/state.h"
#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/metrics.h"

#include <cjson/cJSON.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_HOLD_TIMER_MAX_MS GEN_HOUR_MS    /* a held job's timer looks at the clock hourly */
#define GEN_FENCED_RETRY_MS 1000             /* a held job's timeout waits this long while fenced */
#define GEN_DECIDED_KEEP_MS (7 * GEN_DAY_MS) /* how long a decision is remembered */

static struct metrics_family *approval__metric(void)
{
    static const char *const labels[] = {"outcome"};
    return metrics_family_new("haibot_approvals_total", "Held generations decided, by outcome.",
                              METRICS_COUNTER, labels, 1, NULL, 0);
}

void generate_approval_configure(struct generate *g, const struct approval_rules *rules)
{
    g->approval = *rules;
    approval__metric(); /* declared at once, so /metrics shows the family before a decision */
}

void generate_approval_rules(const struct generate *g, struct approval_rules *out)
{
    *out = g->approval;
}

int64_t job__hold_extra_ms(const struct job *job)
{
    /* The hold's timeout, and an hour so the timer voids it before the
     * ledger's own expiry would. */
    return job->g->approval.timeout_ms + GEN_HOUR_MS;
}

/* The short id admins type: a digest of the job id, the same after a
 * restart. */
void generate__appr_id(const char *job_id, char out[APPROVAL_ID_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)job_id, strlen(job_id), md);
    hex_encode(md, APPROVAL_ID_LEN / 2, out);
}

void job__appr_id(struct job *job)
{
    generate__appr_id(job->id, job->appr_id);
}

void generate__actor(const struct invocation *by, char *buf, size_t cap)
{
    /* No longer than a decision keeps of it (struct gen_decided), the name
     * cut between characters: a cut inside one would make every answer
     * that names the actor invalid UTF-8, which Telegram refuses. */
    if (cap > GEN_ACTOR_KEPT)
        cap = GEN_ACTOR_KEPT;
    int n = snprintf(buf, cap, "%s:%s", command_platform_name(by->platform), by->user_id);
    if (by->user_name[0] == '\0' || n < 0 || (size_t)n + 4 >= cap)
        return;
    const char *name = by->user_name;
    size_t len = strlen(name), room = cap - (size_t)n - 4; /* " (", ")" and the NUL */
    if (len > room) {
        len = room;
        while (len > 0 && ((unsigned char)name[len] & 0xc0) == 0x80)
            len--;
    }
    snprintf(buf + n, cap - (size_t)n, " (%.*s)", (int)len, name);
}

/* ---- replies through notices ------------------------------------------------ */

/* A reply handle that speaks through the host's notices, for a held job
 * (its member's own handle is released when it is held). Progress and
 * asides are left out; finals go to where the member asked. */
struct gen_notice_reply {
    struct reply r;
    struct core *core;
    struct notify_target to;
};

static int notice_reply_send(struct reply *r, const struct reply_msg *msg)
{
    struct gen_notice_reply *nr = r->data;
    const struct core_host_ops *ops = nr->core->host_ops;
    if (msg->stage == REPLY_PROGRESS || msg->aside || ops == NULL ||
        (msg->text == NULL && msg->image == NULL))
        return 0;
    if (ops->notify_msg != NULL)
        return ops->notify_msg(nr->core->host, &nr->to, msg);
    if (ops->notify != NULL && msg->text != NULL)
        return ops->notify(nr->core->host, &nr->to, msg->text);
    return HB_ENOTFOUND;
}

static void notice_reply_finish(struct reply *r)
{
    free(r->data);
}

static const struct reply_ops notice_reply_ops = {.send = notice_reply_send,
                                                  .finish = notice_reply_finish};

struct reply *generate__notice_reply(struct core *core, const struct invocation *who)
{
    struct gen_notice_reply *nr = calloc(1, sizeof(*nr));
    if (nr == NULL)
        return NULL;
    nr->r.ops = &notice_reply_ops;
    nr->r.data = nr;
    nr->core = core;
    nr->to.platform = who->platform;
    nr->to.scope = who->scope;
    snprintf(nr->to.user_id, sizeof(nr->to.user_id), "%s", who->user_id);
    snprintf(nr->to.scope_id, sizeof(nr->to.scope_id), "%s", who->scope_id);
    snprintf(nr->to.channel_id, sizeof(nr->to.channel_id), "%s", who->channel_id);
    return &nr->r;
}

/* From now on the job answers through notices. */
static void job__reply_to_notices(struct job *job)
{
    struct reply *nr = generate__notice_reply(job->g->core, &job->who);
    if (nr == NULL)
        return;
    if (job->reply != NULL)
        reply_finish(job->reply);
    job->reply = nr;
}

/* ---- the rules ---------------------------------------------------------------- */

/* Personas are not here yet: when they come, a persona that requires
 * approval holds the job here, as a listed model does. */
/* [persona] approval = true: its generations are held. */
static bool job__persona_needs_approval(const struct job *job)
{
    return job->persona != NULL && job->persona->approval;
}

/* The rules decided: reserve, or for a free job (nothing to reserve) take
 * the limits' counts alone; then the job is held or runs. */
static void job__approval_next(struct job *job, int64_t amount)
{
    if (amount > 0)
        job__reserve(job, amount);
    else
        job__quota_take_alone(job);
}

static void job__member_read(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    const struct approval_rules *r = &g->approval;
    if (rc == 0 && !job->hold) {
        int64_t now = generate__now(g);
        if (r->new_member_days > 0 &&
            res->balance.created_at > now - r->new_member_days * GEN_DAY_MS) {
            job->hold = true;
            snprintf(job->hold_why, sizeof(job->hold_why),
                     "new member (joined under %lld days ago)", (long long)r->new_member_days);
        } else if (r->new_member_spent > 0 && res->balance.debits_posted < r->new_member_spent) {
            job->hold = true;
            snprintf(job->hold_why, sizeof(job->hold_why), "new member (spent under %lld credits)",
                     (long long)r->new_member_spent);
        }
    }
    job__approval_next(job, job->reserved);
    job__unref(job);
}

bool job__approvals_on(const struct job *job)
{
    const struct generate *g = job->g;
    /* [features] approvals (globally, or in this group) can switch the
     * queue off where [approval] would hold. */
    return g->approval.enabled &&
           features_on(g->core->features, FEATURE_APPROVALS, job->who.platform, job->who.scope_id);
}

void job__approval_check(struct job *job, int64_t amount)
{
    struct generate *g = job->g;
    const struct approval_rules *r = &g->approval;
    if (!job__approvals_on(job)) {
        job->hold = false;
        job__approval_next(job, amount);
        return;
    }
    if (!job->hold && r->above > 0 && amount > r->above) {
        job->hold = true;
        snprintf(job->hold_why, sizeof(job->hold_why), "cost above %lld credits",
                 (long long)r->above);
    }
    if (!job->hold && approval_list_has(r->models, job->model->name)) {
        job->hold = true;
        snprintf(job->hold_why, sizeof(job->hold_why), "model %s", job->model->name);
    }
    if (!job->hold && job__persona_needs_approval(job)) {
        job->hold = true;
        snprintf(job->hold_why, sizeof(job->hold_why), "persona %s", job->persona->name);
    }
    struct ledger *ledger = g->core->ledger;
    if (!job->hold && (r->new_member_days > 0 || r->new_member_spent > 0) && ledger != NULL) {
        job->reserved = amount;
        job->refs++;
        if (ledger_balance_get(ledger, job->wallet, job__member_read, job) == 0)
            return;
        job->refs--;
    }
    job__approval_next(job, amount);
}

/* ---- holding -------------------------------------------------------------------- */

static size_t job__hold_place(const struct job *job)
{
    size_t place = 1;
    for (const struct job *j = job->g->all; j != NULL; j = j->all_next) {
        if (j != job && j->state == JOB_HELD &&
            (j->held_at < job->held_at || (j->held_at == job->held_at && j < job)))
            place++;
    }
    return place;
}

void job__decided(struct job *job, enum approval_outcome outcome, const char *actor,
                  const char *text);

static void job__hold_timer(uv_timer_t *t)
{
    struct job *job = t->data;
    if (job->state != JOB_HELD)
        return;
    if (generate__fenced(job->g))
        uv_timer_start(&job->timer, job__hold_timer, GEN_FENCED_RETRY_MS, 0);
    else if (generate__now(job->g) >= job->hold_until)
        job__decided(job, APPROVAL_TIMED_OUT, "timeout", NULL);
    else
        job__hold_arm(job);
}

void job__hold_arm(struct job *job)
{
    if (!job->timer_open)
        return;
    int64_t left = job->hold_until - generate__now(job->g);
    if (left < 0)
        left = 0;
    if (left > GEN_HOLD_TIMER_MAX_MS)
        left = GEN_HOLD_TIMER_MAX_MS;
    uv_timer_start(&job->timer, job__hold_timer, (uint64_t)left, 0);
}

/* The platform's admins' chat for approvals, or "" when none. */
static const char *approval__chat(const struct approval_rules *r, enum command_platform p)
{
    if (p == COMMAND_PLATFORM_DISCORD)
        return r->discord_channel;
    if (p == COMMAND_PLATFORM_TELEGRAM)
        return r->telegram_chat;
    return "";
}

/* Approval buttons are bound to the chat they are posted in. */
static void approval__button_owner(struct invocation *owner, enum command_platform p,
                                   const char *chat)
{
    memset(owner, 0, sizeof(*owner));
    owner->platform = p;
    snprintf(owner->scope_id, sizeof(owner->scope_id), "%s", chat);
}

/* Tell the admins: the console always, and the configured chats. */
static void job__admins_tell(struct job *job)
{
    struct generate *g = job->g;
    const struct core_host_ops *ops = g->core->host_ops;
    if (ops == NULL || (ops->notify == NULL && ops->notify_msg == NULL))
        return;
    char member[COMMAND_ID_MAX + WALLET_ACCOUNT_MAX + 8];
    if (job->who.user_name[0] != '\0')
        snprintf(member, sizeof(member), "%s (%s)", job->who.user_name, job->wallet);
    else
        snprintf(member, sizeof(member), "%s", job->wallet);
    char where[COMMAND_ID_MAX + 32];
    if (job->who.scope == COMMAND_SCOPE_GROUP)
        snprintf(where, sizeof(where), "in %s:%s", command_platform_name(job->who.platform),
                 job->who.scope_id);
    else
        snprintf(where, sizeof(where), "in a private chat");
    const char *id = job->appr_id;
    char head[1024], how[512];
    if (job->reserved > 0)
        snprintf(head, sizeof(head), MSG_APPR_NOTICE, id, member, where, job->first->name,
                 (long long)job->reserved, job->hold_why);
    else
        snprintf(head, sizeof(head), MSG_APPR_NOTICE_FREE, id, member, where, job->first->name,
                 job->hold_why);
    snprintf(how, sizeof(how), MSG_APPR_NOTICE_HOW, id, id, id);
    char *text = NULL;
    if (asprintf(&text, "%s" MSG_APPR_NOTICE_PROMPT "%s", head, job->prompt, how) < 0)
        return;
    static const enum command_platform platforms[] = {
        COMMAND_PLATFORM_CONSOLE, COMMAND_PLATFORM_DISCORD, COMMAND_PLATFORM_TELEGRAM};
    for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++) {
        enum command_platform p = platforms[i];
        const char *chat = approval__chat(&g->approval, p);
        if (p != COMMAND_PLATFORM_CONSOLE && chat[0] == '\0')
            continue;
        struct notify_target to;
        memset(&to, 0, sizeof(to));
        to.platform = p;
        to.scope = p == COMMAND_PLATFORM_CONSOLE ? COMMAND_SCOPE_DM : COMMAND_SCOPE_GROUP;
        snprintf(to.channel_id, sizeof(to.channel_id), "%s", chat);
        struct reply_button buttons[3 + APPROVAL_REASONS_SHOWN];
        char labels[APPROVAL_REASONS_SHOWN][96];
        size_t nb = 0;
        if (p != COMMAND_PLATFORM_CONSOLE) {
            struct invocation owner;
            approval__button_owner(&owner, p, chat);
            const uint8_t *key = g->core->button_key;
            char payload[32];
            snprintf(payload, sizeof(payload), "a.%s", id);
            if (button_ref_make(buttons[nb].ref, key, "appr", payload, &owner) == 0)
                buttons[nb++].label = MSG_APPR_BUTTON_APPROVE;
            snprintf(payload, sizeof(payload), "e.%s", id);
            if (button_ref_make(buttons[nb].ref, key, "appr", payload, &owner) == 0)
                buttons[nb++].label = MSG_APPR_BUTTON_EDIT;
            snprintf(payload, sizeof(payload), "r.%s", id);
            if (button_ref_make(buttons[nb].ref, key, "appr", payload, &owner) == 0)
                buttons[nb++].label = MSG_APPR_BUTTON_REJECT;
            char reason[64];
            for (size_t k = 0; k < APPROVAL_REASONS_SHOWN &&
                               approval_list_at(g->approval.reasons, k, reason, sizeof(reason));
                 k++) {
                snprintf(payload, sizeof(payload), "r%zu.%s", k, id);
                if (button_ref_make(buttons[nb].ref, key, "appr", payload, &owner) != 0)
                    continue;
                snprintf(labels[k], sizeof(labels[k]), MSG_APPR_BUTTON_REJECT_WITH, reason);
                buttons[nb++].label = labels[k];
            }
        }
        struct reply_msg msg = {
            .stage = REPLY_FINAL, .text = text, .buttons = buttons, .nbuttons = nb};
        int rc = ops->notify_msg != NULL ? ops->notify_msg(g->core->host, &to, &msg)
                                         : ops->notify(g->core->host, &to, text);
        if (rc < 0 && p != COMMAND_PLATFORM_CONSOLE)
            log_warn("approval.notice_failed", "id=%s platform=%s error=%s", id,
                     command_platform_name(p), hb_strerror(rc));
    }
    free(text);
}

void job__hold(struct job *job)
{
    struct generate *g = job->g;
    job->state = JOB_HELD;
    job->held_at = generate__now(g);
    job->hold_until = job->held_at + g->approval.timeout_ms;
    job__appr_id(job);
    job__held_persist(job);
    log_info("approval.held", "id=%s job=%s model=%s reserved=%lld why=%s", job->appr_id, job->id,
             job->first->name, (long long)job->reserved, job->hold_why);
    char price[128];
    if (job->reserved > 0)
        job__say(job, REPLY_FINAL, MSG_APPR_WAITING, job__hold_place(job),
                 job__price(job, price, sizeof(price)));
    else
        job__say(job, REPLY_FINAL, MSG_APPR_WAITING_FREE, job__hold_place(job));
    /* The member's reply handle is released now: a hold may last hours,
     * longer than some handles live (a Discord interaction token: 15 min),
     * and an open handle keeps the console's next line (and a Telegram
     * webhook's answer) waiting. The outcome comes as a notice. */
    job__reply_to_notices(job);
    job__admins_tell(job);
    job__hold_arm(job);
}

/* ---- deciding ---------------------------------------------------------------------- */

static void job__held_voided(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    (void)res;
    if (rc < 0 && rc != HB_EEXISTS)
        log_error("approval.void_failed", "id=%s job=%s error=%s", job->appr_id, job->id,
                  hb_strerror(rc));
    job__quota_settled(job, rc);
    job->res_open = false;
    if (rc != 0)
        job__persist(job, false); /* else the void deleted it */
    /* Why, then what became of its credits: a free job held none. */
    char text[sizeof(job->error) + 64];
    snprintf(text, sizeof(text), "%s %s", job->error,
             job->reserved > 0 ? MSG_APPR_RELEASED : MSG_APPR_FREE_ENDED);
    struct reply_msg msg = {.stage = REPLY_FINAL, .text = text};
    reply_send(job->reply, &msg);
    /* Nothing ran: the limits gave its counts back with the void (or, with
     * none, give them back in job__end). */
    job__end(job, HB_EPERM);
    job__unref(job);
}

/* Reject or time out: void the reservation and tell the member why. */
void job__held_void(struct job *job)
{
    job->state = JOB_SETTLE;
    job->refs++;
    if (job__void(job, job__held_voided) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__held_voided(job->res_open ? HB_ECANCELED : 0, &none, job);
    }
}

/* Run it as if it had just been admitted. */
static void job__held_run(struct job *job)
{
    struct generate *g = job->g;
    if (job->model == NULL || job->user == NULL) {
        snprintf(job->error, sizeof(job->error), MSG_APPR_REJECTED,
                 "the model is no longer offered");
        job__held_void(job);
        return;
    }
    if (job->msgs == NULL) {
        job->input_bytes = 0;
        if (job__messages_build(job) < 0) {
            snprintf(job->error, sizeof(job->error), MSG_APPR_REJECTED, MSG_COMMON_OUT_OF_MEMORY);
            job__held_void(job);
            return;
        }
    }
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    job->deadline = uv_now(g->loop) + (uint64_t)l->job_timeout_ms;
    job->state = JOB_ADMIT;
    /* The record turns back into a running job's: a crash from here voids it. */
    job__persist(job, true);
    job__enqueue(job);
}

static void generate__decided_remember(struct generate *g, const char *id, const char *by,
                                       enum approval_outcome outcome)
{
    for (size_t i = 0; i < GEN_DECIDED_KEPT; i++) {
        if (strcmp(g->decided[i].id, id) == 0)
            return;
    }
    struct gen_decided *d = &g->decided[g->decided_next];
    g->decided_next = (g->decided_next + 1) % GEN_DECIDED_KEPT;
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->by, sizeof(d->by), "%s", by);
    d->outcome = outcome;
}

void job__decided(struct job *job, enum approval_outcome outcome, const char *actor,
                  const char *text)
{
    struct generate *g = job->g;
    if (job->timer_open)
        uv_timer_stop(&job->timer);
    job->hold = false;
    generate__decided_remember(g, job->appr_id, actor, outcome);
    /* Remembered durably too, so a press on an old notice after a restart
     * still hears who decided (generate__decided_load). */
    struct ledger *ledger = g->core->ledger;
    char rec[sizeof(g->decided[0].by) + 48];
    snprintf(rec, sizeof(rec), "%lld %d %s", (long long)generate__now(g), (int)outcome, actor);
    if (ledger != NULL)
        state_put(ledger_store(ledger), GEN_NS_DECIDED, job->appr_id, rec, NULL, NULL);
    metrics_counter_add(approval__metric(), (const char *[]){approval_outcome_name(outcome)}, 1);
    /* In the audit trail: one decision, who made it (the timer is
     * "system"), on whose request, what it cost; never the prompt. */
    log_info("approval.decided", "id=%s job=%s actor=%s outcome=%s", job->appr_id, job->id, actor,
             approval_outcome_name(outcome));
    if (ledger != NULL) {
        cJSON *detail = cJSON_CreateObject();
        if (detail != NULL) {
            cJSON_AddStringToObject(detail, "outcome", approval_outcome_name(outcome));
            cJSON_AddStringToObject(detail, "job", job->id);
            cJSON_AddStringToObject(detail, "model", job->model != NULL ? job->model->name : "");
            cJSON_AddNumberToObject(detail, "reserved", (double)job->reserved);
        }
        audit_note(ledger_store(ledger), actor, "approval", job->appr_id, detail);
    }
    switch (outcome) {
    case APPROVAL_EDITED: {
        char *p = strdup(text != NULL ? text : "");
        if (p != NULL) {
            free(job->prompt);
            job->prompt = p;
            job__messages_clear(job);
        }
        struct reply_msg msg = {.stage = REPLY_FINAL, .text = MSG_APPR_EDITED};
        reply_send(job->reply, &msg);
        job__held_run(job);
        return;
    }
    case APPROVAL_APPROVED:
        job__say(job, REPLY_PROGRESS, MSG_APPR_APPROVED);
        job__held_run(job);
        return;
    case APPROVAL_REJECTED:
        snprintf(job->error, sizeof(job->error), MSG_APPR_REJECTED,
                 text != NULL && text[0] != '\0' ? text : MSG_APPR_REASON_DEFAULT);
        job__held_void(job);
        return;
    case APPROVAL_TIMED_OUT:
        snprintf(job->error, sizeof(job->error), MSG_APPR_TIMED_OUT);
        job__held_void(job);
        return;
    }
}

/* Admins of the job's own server or group, admins in the approval chat of
 * their platform, Telegram's admins (the bot's, by [telegram] admins) in
 * their private chat, and the console's operator. */
bool generate__may_decide(const struct approval_rules *rules, const struct invocation *by,
                          const struct invocation *who)
{
    if (!by->admin)
        return false;
    if (by->platform == COMMAND_PLATFORM_CONSOLE)
        return true;
    const char *chat = approval__chat(rules, by->platform);
    if (chat[0] != '\0' && strcmp(by->channel_id, chat) == 0)
        return true;
    if (by->platform == who->platform && by->scope == COMMAND_SCOPE_GROUP &&
        who->scope == COMMAND_SCOPE_GROUP && strcmp(by->scope_id, who->scope_id) == 0)
        return true;
    return by->platform == COMMAND_PLATFORM_TELEGRAM && by->scope == COMMAND_SCOPE_DM;
}

struct job *generate__held_find(struct generate *g, const char *id)
{
    for (struct job *j = g->all; j != NULL; j = j->all_next) {
        if (j->state == JOB_HELD && strcmp(j->appr_id, id) == 0)
            return j;
    }
    return NULL;
}

int generate_approval_decide(struct generate *g, const struct invocation *by, const char *id,
                             enum approval_outcome outcome, const char *text, char *msg, size_t cap)
{
    struct job *job = generate__held_find(g, id);
    if (job == NULL) {
        for (size_t i = 0; i < GEN_DECIDED_KEPT; i++) {
            const struct gen_decided *d = &g->decided[i];
            if (d->id[0] != '\0' && strcmp(d->id, id) == 0) {
                snprintf(msg, cap, MSG_APPR_ALREADY, id, approval_outcome_name(d->outcome), d->by);
                return HB_ESTATE;
            }
        }
        snprintf(msg, cap, MSG_APPR_NOT_FOUND, id);
        return HB_ENOTFOUND;
    }
    if (!generate__may_decide(&g->approval, by, &job->who)) {
        log_info("approval.refused", "id=%s actor=%s:%s", id, command_platform_name(by->platform),
                 by->user_id);
        snprintf(msg, cap, "%s", MSG_APPR_NOT_YOURS);
        return HB_EPERM;
    }
    if (generate__fenced(g)) {
        /* Another daemon may be taking it over this moment. */
        snprintf(msg, cap, MSG_APPR_FENCED, id);
        return HB_EBUSY;
    }
    char actor[GEN_ACTOR_MAX];
    generate__actor(by, actor, sizeof(actor));
    snprintf(msg, cap, MSG_APPR_DONE, id, approval_outcome_name(outcome));
    job__decided(job, outcome, actor, text);
    return 0;
}

size_t generate_approvals_expire(struct generate *g)
{
    size_t n = 0;
    int64_t now = generate__now(g);
    struct job *next;
    if (generate__fenced(g))
        return 0;
    for (struct job *j = g->all; j != NULL; j = next) {
        next = j->all_next;
        if (j->state == JOB_HELD && now >= j->hold_until) {
            job__decided(j, APPROVAL_TIMED_OUT, "timeout", NULL);
            n++;
        }
    }
    return n;
}

size_t generate_approvals_list(struct generate *g, const struct invocation *by, char *buf,
                               size_t cap)
{
    size_t n = 0, off = 0;
    int64_t now = generate__now(g);
    buf[0] = '\0';
    /* Oldest first: the list is short, so a selection each round will do. */
    int64_t after = INT64_MIN;
    const struct job *last = NULL;
    for (;;) {
        const struct job *best = NULL;
        for (const struct job *j = g->all; j != NULL; j = j->all_next) {
            if (j->state != JOB_HELD ||
                (by != NULL && !generate__may_decide(&g->approval, by, &j->who)))
                continue;
            bool later = j->held_at > after || (j->held_at == after && last != NULL && j > last);
            bool earlier = best == NULL || j->held_at < best->held_at ||
                           (j->held_at == best->held_at && j < best);
            if (later && earlier)
                best = j;
        }
        if (best == NULL)
            break;
        if (n == 0 && off < cap)
            off += (size_t)snprintf(buf + off, cap - off, "%s", MSG_APPR_LIST_HEAD);
        if (off < cap)
            off += (size_t)snprintf(buf + off, cap - off, MSG_APPR_LIST_ITEM, best->appr_id,
                                    best->wallet, best->first != NULL ? best->first->name : "?",
                                    (long long)best->reserved, best->hold_why,
                                    (long long)((now - best->held_at) / 60000));
        n++;
        after = best->held_at;
        last = best;
    }
    if (n == 0)
        snprintf(buf, cap, "%s", MSG_APPR_EMPTY);
    return n;
}

/* ---- stop and restart ---------------------------------------------------------- */

void job__held_close(struct job *job)
{
    if (job->timer_open)
        uv_timer_stop(&job->timer);
    /* The record and the reservation stay for the next start; the member
     * hears the outcome after it. */
    job__end(job, 0);
}

void generate__held_let_go(struct generate *g)
{
    struct job *next;
    for (struct job *j = g->all; j != NULL; j = next) {
        next = j->all_next;
        if (j->state == JOB_HELD) {
            log_info("approval.let_go", "job=%s", j->id);
            job__held_close(j);
        }
    }
}

bool generate__fenced(const struct generate *g)
{
    return g->core->cluster != NULL && cluster_fenced(g->core->cluster);
}

#define GEN_DECIDED_PAGE 1000 /* decisions read per store job; a full page reads on */

static void generate__decided_listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct generate *g = data;
    int64_t now = generate__now(g);
    struct ledger *ledger = g->core->ledger;
    /* A full page: the next one is read too, holding the engine the same. */
    if (rc == 0 && ledger != NULL && n == GEN_DECIDED_PAGE &&
        state_list_after(ledger_store(ledger), GEN_NS_DECIDED, e, n, GEN_DECIDED_PAGE,
                         generate__decided_listed, g) == 0)
        g->njobs++;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        long long at = 0;
        int outcome = 0, used = 0;
        if (sscanf(e[i].value, "%lld %d %n", &at, &outcome, &used) != 2 ||
            now - at > GEN_DECIDED_KEEP_MS || outcome < 0 || outcome > APPROVAL_TIMED_OUT) {
            if (ledger != NULL)
                state_put(ledger_store(ledger), GEN_NS_DECIDED, e[i].key, NULL, NULL, NULL);
            continue;
        }
        generate__decided_remember(g, e[i].key, e[i].value + used, (enum approval_outcome)outcome);
    }
    /* The listing held the engine like a job: closing waits for it. */
    g->njobs--;
    generate__maybe_free(g);
}

void generate__decided_load(struct generate *g)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL)
        return;
    g->njobs++;
    if (state_list(ledger_store(ledger), GEN_NS_DECIDED, "", GEN_DECIDED_PAGE,
                   generate__decided_listed, g) < 0)
        g->njobs--;
}
