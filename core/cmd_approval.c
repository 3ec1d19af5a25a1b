/* The approval queue's admin commands and buttons: /admin approvals,
 * /admin approve, /admin reject, /admin edit, and the buttons on the
 * admins' notices (core/generate_approval.c holds the queue). */
#include "core/approval.h"
#include "core/button.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/messages.h"
#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void approval__answer(struct invocation *inv, const char *text)
{
    reply_text(inv->reply, true, "%s", text);
    reply_finish(inv->reply);
}

static void approval__listed(int rc, const char *text, void *data)
{
    (void)rc;
    approval__answer(data, text);
}

void cmd_admin_approvals(struct core *core, struct invocation *inv)
{
    if (core->generate == NULL) {
        approval__answer(inv, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    /* On a shared ledger every daemon's held jobs, from the store. */
    if (generate_approvals_list_shared(core->generate, inv, approval__listed, inv) == 0)
        return;
    char *buf = malloc(8192);
    if (buf == NULL) {
        approval__answer(inv, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    generate_approvals_list(core->generate, inv, buf, 8192);
    approval__answer(inv, buf);
    free(buf);
}

static void approval__forwarded(int rc, const char *msg, void *data)
{
    (void)rc;
    approval__answer(data, msg);
}

static void approval__decide(struct core *core, struct invocation *inv, const char *id,
                             enum approval_outcome outcome, const char *text)
{
    if (core->generate == NULL) {
        approval__answer(inv, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    char msg[512];
    int rc = generate_approval_decide(core->generate, inv, id, outcome, text, msg, sizeof(msg));
    if (rc == HB_ENOTFOUND) {
        /* Not held here: on a shared ledger another daemon may hold it. */
        int frc = generate_approval_forward(core->generate, inv, id, outcome, text,
                                            approval__forwarded, inv);
        if (frc == 0)
            return;
        if (frc != HB_ENOTFOUND) {
            log_warn("approval.forward_failed", "id=%s error=%s", id, hb_strerror(frc));
            snprintf(msg, sizeof(msg), MSG_CREDITS_FAILED, hb_strerror(frc));
        }
    }
    approval__answer(inv, msg);
}

void cmd_admin_approve(struct core *core, struct invocation *inv)
{
    approval__decide(core, inv, inv->opts[0].string, APPROVAL_APPROVED, NULL);
}

void cmd_admin_reject(struct core *core, struct invocation *inv)
{
    approval__decide(core, inv, inv->opts[0].string, APPROVAL_REJECTED,
                     inv->opts[1].set ? inv->opts[1].string : NULL);
}

void cmd_admin_edit(struct core *core, struct invocation *inv)
{
    approval__decide(core, inv, inv->opts[0].string, APPROVAL_EDITED, inv->opts[1].string);
}

/* A press on an admins' notice: "a.<id>" approve, "e.<id>" how to edit,
 * "r.<id>" reject, "r<N>.<id>" reject with the N-th configured reason.
 * The ref is bound to the chat it was posted in (generate_approval.c). */
void cmd_admin_approval_button(struct core *core, struct invocation *inv)
{
    struct invocation chat;
    memset(&chat, 0, sizeof(chat));
    chat.platform = inv->platform;
    snprintf(chat.scope_id, sizeof(chat.scope_id), "%s", inv->channel_id);
    snprintf(chat.button_ref, sizeof(chat.button_ref), "%s", inv->button_ref);
    char payload[COMMAND_BUTTON_REF_MAX + 1];
    const char *dot = NULL;
    if (button_ref_check(&chat, core->button_key, payload, sizeof(payload)) != 0 ||
        (dot = strchr(payload, '.')) == NULL || core->generate == NULL) {
        approval__answer(inv, MSG_APPR_NOT_YOURS);
        return;
    }
    const char *id = dot + 1;
    if (payload[0] == 'a' && dot == payload + 1) {
        approval__decide(core, inv, id, APPROVAL_APPROVED, NULL);
    } else if (payload[0] == 'e' && dot == payload + 1) {
        char msg[256];
        snprintf(msg, sizeof(msg), MSG_APPR_EDIT_HOW, id, id);
        approval__answer(inv, msg);
    } else if (payload[0] == 'r') {
        char reason[APPROVAL_REASON_MAX] = "";
        if (dot > payload + 1) {
            size_t k = strtoul(payload + 1, NULL, 10);
            struct approval_rules rules;
            generate_approval_rules(core->generate, &rules);
            approval_list_at(rules.reasons, k, reason, sizeof(reason));
        }
        approval__decide(core, inv, id, APPROVAL_REJECTED, reason[0] != '\0' ? reason : NULL);
    } else {
        approval__answer(inv, MSG_APPR_NOT_YOURS);
    }
}
