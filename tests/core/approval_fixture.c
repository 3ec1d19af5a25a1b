#include "tests/core/approval_fixture.h"

#include "core/filter.h"
#include "base/error.h"
#include "base/metrics.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a host that records notices --------------------------------------- */

static int ah_notify_msg(void *host, const struct notify_target *to, const struct reply_msg *msg)
{
    struct ah *h = host;
    if (h->count >= AH_MAX)
        return HB_ENOMEM;
    struct ah_notice *n = &h->n[h->count++];
    n->to = *to;
    snprintf(n->text, sizeof(n->text), "%s", msg->text != NULL ? msg->text : "");
    if (h->probe_on != NULL && strstr(n->text, h->probe_on) != NULL)
        h->probed = test_sql_int(h->db_path, h->probe_sql);
    n->nbuttons = msg->nbuttons < 8 ? msg->nbuttons : 8;
    for (size_t i = 0; i < n->nbuttons; i++) {
        n->buttons[i] = msg->buttons[i];
        snprintf(n->labels[i], sizeof(n->labels[i]), "%s", msg->buttons[i].label);
        n->buttons[i].label = n->labels[i];
    }
    return 0;
}

static int ah_notify(void *host, const struct notify_target *to, const char *text)
{
    struct reply_msg msg = {.stage = REPLY_FINAL, .text = text};
    return ah_notify_msg(host, to, &msg);
}

static const struct core_host_ops ah_ops = {.notify = ah_notify, .notify_msg = ah_notify_msg};

/* ---- the fixture ---------------------------------------------------------- */

static const char *const review_words[] = {"launch codes"};
static const struct filter_rule review_rule = {.name = "sensitive",
                                               .kind = FILTER_KIND_WORDS,
                                               .action = FILTER_ACTION_REVIEW,
                                               .words = review_words,
                                               .nwords = 1};

void at_rules(struct approval_rules *r)
{
    memset(r, 0, sizeof(*r));
    r->enabled = true;
    snprintf(r->models, sizeof(r->models), "h, img-b64, hfree");
    r->timeout_ms = 3600000;
    snprintf(r->telegram_chat, sizeof(r->telegram_chat), "-100500");
    snprintf(r->reasons, sizeof(r->reasons), "Too expensive, Off topic");
}

void at_init_with(struct at *at, const struct catalog_limits *limits)
{
    memset(at, 0, sizeof(*at));
    gt_init(&at->gt, limits, &review_rule, 1, 0);
    at->gt.core.host_ops = &ah_ops;
    at->gt.core.host = &at->host;
    at->gt.core.bot_name = "HAI Bot";
    struct approval_rules r;
    at_rules(&r);
    generate_approval_configure(at->gt.g, &r);
    at->router = router_new(&at->gt.core);
    assert_non_null(at->router);
}

void at_init(struct at *at)
{
    at_init_with(at, NULL);
}

void at_done(struct at *at)
{
    router_free(at->router);
    gt_done(&at->gt);
}

/* A typed line through the router, as the console's operator (an admin)
 * or another console member. */
void at_line(struct at *at, const char *user, bool admin, const char *line,
             struct reply_capture *cap)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    inv.admin = admin;
    router_dispatch(at->router, &inv, line);
    invocation_clear(&inv);
}

/* A button press on Telegram in `chat` by `user`. */
void at_press(struct at *at, const char *user, bool admin, const char *chat, const char *ref,
              struct reply_capture *cap)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, chat);
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    inv.admin = admin;
    snprintf(inv.channel_id, sizeof(inv.channel_id), "%s", chat);
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", ref);
    router_dispatch(at->router, &inv, NULL);
    invocation_clear(&inv);
}

/* The admins' notice on `platform` for the latest hold, and its id. */
const struct ah_notice *at_notice(struct at *at, enum command_platform platform,
                                  char id[APPROVAL_ID_LEN + 1])
{
    for (int i = at->host.count - 1; i >= 0; i--) {
        const struct ah_notice *n = &at->host.n[i];
        if (n->to.platform != platform || strncmp(n->text, "Approval needed [", 17) != 0)
            continue;
        snprintf(id, APPROVAL_ID_LEN + 1, "%s", n->text + 17);
        return n;
    }
    fail_msg("no admins' notice on %s", command_platform_name(platform));
    return NULL;
}

const char *at_button(const struct ah_notice *n, const char *label)
{
    for (size_t i = 0; i < n->nbuttons; i++) {
        if (strcmp(n->buttons[i].label, label) == 0)
            return n->buttons[i].ref;
    }
    fail_msg("no button %s", label);
    return NULL;
}

double at_outcomes(const char *outcome)
{
    static const char *const labels[] = {"outcome"};
    struct metrics_family *f =
        metrics_family_new("haibot_approvals_total", "Held generations decided, by outcome.",
                           METRICS_COUNTER, labels, 1, NULL, 0);
    return metrics_value(f, (const char *[]){outcome});
}

int64_t at_pending(struct at *at, const char *user)
{
    char acct[64];
    snprintf(acct, sizeof(acct), "console:%s", user);
    return lt_balance(&at->gt.lt, acct).pending_debits;
}

/* Wait until the job submitted after `before` notices is held. */
void at_held(struct at *at, struct reply_capture *cap, int before, char id[APPROVAL_ID_LEN + 1])
{
    at_held_at(at, cap, before, 1, id);
}

void at_held_at(struct at *at, struct reply_capture *cap, int before, int place,
                char id[APPROVAL_ID_LEN + 1])
{
    while (at->host.count < before + 2 && !at->gt.guard_fired)
        uv_run(&at->gt.lt.loop, UV_RUN_ONCE);
    assert_false(at->gt.guard_fired);
    char want[96];
    snprintf(want, sizeof(want), "waits for an admin's review: place %d in the review queue",
             place);
    assert_has(cap, want);
    /* The member's reply is released at once: the outcome comes as a notice. */
    assert_int_equal(cap->finished, 1);
    reply_capture_close(cap);
    at_notice(at, COMMAND_PLATFORM_CONSOLE, id);
    gt_settle(&at->gt, 5);
}

/* Submit on the held model "h" and wait until it is held. */
void at_hold(struct at *at, struct reply_capture *cap, const char *user, const char *model,
             const char *prompt, char id[APPROVAL_ID_LEN + 1])
{
    at_hold_at(at, cap, user, model, prompt, 1, id);
}

void at_hold_at(struct at *at, struct reply_capture *cap, const char *user, const char *model,
                const char *prompt, int place, char id[APPROVAL_ID_LEN + 1])
{
    int before = at->host.count;
    gt_submit(&at->gt, cap, user, PROVIDER_TEXT, model, prompt);
    at_held_at(at, cap, before, place, id);
}

/* Wait for a notice to console member `user` holding needle; return its text. */
const char *at_told(struct at *at, const char *user, const char *needle)
{
    for (int seen = 0;; seen = 0) {
        for (; seen < at->host.count; seen++) {
            const struct ah_notice *n = &at->host.n[seen];
            if (strcmp(n->to.user_id, user) == 0 && strstr(n->text, needle) != NULL)
                return n->text;
        }
        if (at->gt.guard_fired)
            fail_msg("%s was never told \"%s\"", user, needle);
        uv_run(&at->gt.lt.loop, UV_RUN_ONCE);
    }
}
