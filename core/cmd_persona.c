/* Persona commands: /persona (list, or choose one), its buttons, and the
 * admins' /admin persona set|clear and /admin plaintalk. The choices live
 * in core/persona.h; the personas themselves in the catalog. */
#include "core/audit.h"
#include "core/catalog.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/messages.h"
#include "core/persona.h"
#include "base/error.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PERSONA_BUTTONS_MAX 24 /* Discord shows 25 buttons; one is "None" */

static const char *cmd_persona__opt(const struct invocation *inv, const char *name)
{
    if (inv->spec == NULL)
        return NULL;
    int i = command_option_index(inv->spec, name);
    if (i < 0 || !inv->opts[i].set)
        return NULL;
    return inv->opts[i].string;
}

static struct catalog *cmd_persona__catalog(struct core *core, struct invocation *inv)
{
    struct catalog *cat = core->generate != NULL ? generate_catalog(core->generate) : NULL;
    if (cat == NULL) {
        reply_text(inv->reply, true, MSG_GEN_UNAVAILABLE);
        reply_finish(inv->reply);
    }
    return cat;
}

/* The list of the personas this member may use here, with buttons. */
static void cmd_persona__list(struct core *core, struct invocation *inv, struct catalog *cat)
{
    enum persona_level level = PERSONA_LEVEL_NONE;
    const struct catalog_persona *cur = persona_resolve(core, cat, inv, &level);
    struct text_buf lines = {0};
    struct reply_button buttons[PERSONA_BUTTONS_MAX + 1];
    size_t nb = 0, shown = 0;
    for (size_t i = 0; i < catalog_persona_count(cat); i++) {
        const struct catalog_persona *p = catalog_persona_at(cat, i);
        if (!catalog_persona_allowed(p, inv))
            continue;
        char desc[512] = "";
        if (p->description[0] != '\0')
            snprintf(desc, sizeof(desc), ": %s", p->description);
        text_buf_add(&lines, MSG_PERSONA_LINE, p->name, desc, p == cur ? MSG_PERSONA_IN_USE : "");
        shown++;
        char payload[48];
        snprintf(payload, sizeof(payload), "s.%s", p->name);
        if (nb < PERSONA_BUTTONS_MAX &&
            button_ref_make(buttons[nb].ref, core->button_key, "psn", payload, inv) == 0)
            buttons[nb++].label = p->name;
    }
    struct text_buf out = {0};
    if (shown == 0) {
        text_buf_add(&out, MSG_PERSONA_NONE);
        nb = 0;
    } else {
        text_buf_add(&out, MSG_PERSONA_LIST, text_buf_str(&lines));
        if (cur == NULL) {
            text_buf_add(&out, MSG_PERSONA_CURRENT_NONE);
        } else {
            char from[160];
            switch (level) {
            case PERSONA_LEVEL_MEMBER:
                snprintf(from, sizeof(from), MSG_PERSONA_FROM_MEMBER, cur->name);
                break;
            case PERSONA_LEVEL_CHANNEL:
                snprintf(from, sizeof(from), MSG_PERSONA_FROM_CHANNEL, cur->name);
                break;
            case PERSONA_LEVEL_GROUP:
                snprintf(from, sizeof(from), MSG_PERSONA_FROM_GROUP, cur->name);
                break;
            default:
                snprintf(from, sizeof(from), MSG_PERSONA_FROM_BOT, cur->name);
                break;
            }
            text_buf_add(&out, MSG_PERSONA_CURRENT, from);
        }
        if (button_ref_make(buttons[nb].ref, core->button_key, "psn", "none", inv) == 0)
            buttons[nb++].label = MSG_PERSONA_BUTTON_NONE;
    }
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .ephemeral = true,
                            .text = text_buf_str(&out),
                            .buttons = buttons,
                            .nbuttons = nb};
    reply_send(inv->reply, &msg);
    free(lines.buf);
    free(out.buf);
    reply_finish(inv->reply);
}

struct persona_ctx {
    struct core *core;
    struct invocation *inv;
    const char *action; /* an admin's setting: its audit entry's action, else NULL */
    char subject[COMMAND_ID_MAX * 2 + 16];
    char value[COMMAND_ID_MAX];      /* the persona set, "on"/"off", or "" */
    char text[COMMAND_ID_MAX + 512]; /* the answer once the store has it */
    char *prompt;                    /* shown after it when the persona allows */
    bool public_answer;              /* an admin's setting: the channel reads it */
};

/* An admin's setting is audited once saved: the group (and the channel
 * when it is the channel's) as subject. */
static void cmd_persona__audit(struct persona_ctx *ctx, struct core *core, const char *action,
                               bool channel, const char *value)
{
    const struct invocation *inv = ctx->inv;
    ctx->core = core;
    ctx->action = action;
    snprintf(ctx->subject, sizeof(ctx->subject), "%s:%s%s%s", command_platform_name(inv->platform),
             inv->scope_id, channel ? "#" : "", channel ? inv->channel_id : "");
    snprintf(ctx->value, sizeof(ctx->value), "%s", value);
}

static void cmd_persona__saved(int rc, void *data)
{
    struct persona_ctx *ctx = data;
    if (rc == 0 && ctx->action != NULL) {
        cJSON *detail = cJSON_CreateObject();
        if (detail != NULL && ctx->value[0] != '\0')
            cJSON_AddStringToObject(detail, "value", ctx->value);
        audit_note_inv(ctx->core, ctx->inv, ctx->action, ctx->subject, detail);
    }
    if (rc < 0) {
        reply_text(ctx->inv->reply, true, MSG_PERSONA_NOT_SAVED, hb_strerror(rc));
    } else {
        struct text_buf t = {0};
        text_buf_add(&t, "%s", ctx->text);
        if (ctx->prompt != NULL)
            text_buf_add(&t, MSG_PERSONA_PROMPT, ctx->prompt);
        reply_text(ctx->inv->reply, !ctx->public_answer, "%s", text_buf_str(&t));
        free(t.buf);
    }
    reply_finish(ctx->inv->reply);
    free(ctx->prompt);
    free(ctx);
}

/* The member's own choice: a persona's name, or "none" to clear it. */
static void cmd_persona__choose(struct core *core, struct invocation *inv, struct catalog *cat,
                                const char *name)
{
    bool clear = strcasecmp(name, "none") == 0;
    const struct catalog_persona *p = clear ? NULL : catalog_persona_find(cat, name);
    if (!clear && (p == NULL || !catalog_persona_allowed(p, inv))) {
        reply_text(inv->reply, true, MSG_PERSONA_UNKNOWN, name);
        reply_finish(inv->reply);
        return;
    }
    struct persona_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->inv = inv;
    if (clear)
        snprintf(ctx->text, sizeof(ctx->text), MSG_PERSONA_CLEARED);
    else
        snprintf(ctx->text, sizeof(ctx->text), MSG_PERSONA_CHOSEN, p->name);
    /* The prompt is shown only where the operator said it may be. */
    if (p != NULL && p->show_prompt && p->system_prompt != NULL)
        ctx->prompt = strdup(p->system_prompt);
    int rc = persona_choose(core, inv, PERSONA_LEVEL_MEMBER, p != NULL ? p->name : NULL,
                            cmd_persona__saved, ctx);
    if (rc < 0)
        cmd_persona__saved(rc, ctx);
}

void cmd_persona(struct core *core, struct invocation *inv)
{
    struct catalog *cat = cmd_persona__catalog(core, inv);
    if (cat == NULL)
        return;
    const char *name = cmd_persona__opt(inv, "name");
    if (name == NULL || name[0] == '\0')
        cmd_persona__list(core, inv, cat);
    else
        cmd_persona__choose(core, inv, cat, name);
}

/* A persona button ("s.<name>" or "none"), pressed by the member it was
 * made for. */
void cmd_persona_button(struct core *core, struct invocation *inv)
{
    char payload[64];
    int rc = button_ref_check(inv, core->button_key, payload, sizeof(payload));
    if (rc == 0 && strcmp(payload, "none") != 0 && strncmp(payload, "s.", 2) != 0)
        rc = HB_EINVAL;
    if (rc < 0) {
        reply_text(inv->reply, true,
                   rc == HB_EPERM ? MSG_PERSONA_BUTTON_NOT_YOURS : MSG_PERSONA_BUTTON_EXPIRED);
        reply_finish(inv->reply);
        return;
    }
    struct catalog *cat = cmd_persona__catalog(core, inv);
    if (cat == NULL)
        return;
    cmd_persona__choose(core, inv, cat, strcmp(payload, "none") == 0 ? "none" : payload + 2);
}

/* ---- admins ------------------------------------------------------------- */

/* Where an admin's setting applies: "channel" (the channel, thread or
 * topic it runs in) or the server or group (the default). */
static enum persona_level cmd_persona__where(const struct invocation *inv, const char **label)
{
    const char *where = cmd_persona__opt(inv, "where");
    if (where != NULL && strcmp(where, "channel") == 0) {
        *label = inv->thread_id[0] != '\0' ? MSG_ADMIN_PERSONA_WHERE_TOPIC
                                           : MSG_ADMIN_PERSONA_WHERE_CHANNEL;
        return PERSONA_LEVEL_CHANNEL;
    }
    *label = MSG_ADMIN_PERSONA_WHERE_GROUP;
    return PERSONA_LEVEL_GROUP;
}

static void cmd_admin_persona__set(struct core *core, struct invocation *inv, const char *name)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0') {
        reply_text(inv->reply, true, MSG_ADMIN_PERSONA_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    struct catalog *cat = cmd_persona__catalog(core, inv);
    if (cat == NULL)
        return;
    const struct catalog_persona *p = name != NULL ? catalog_persona_find(cat, name) : NULL;
    if (name != NULL && p == NULL) {
        reply_text(inv->reply, true, MSG_ADMIN_PERSONA_UNKNOWN, name);
        reply_finish(inv->reply);
        return;
    }
    struct persona_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->inv = inv;
    ctx->public_answer = true;
    const char *label = "";
    enum persona_level level = cmd_persona__where(inv, &label);
    cmd_persona__audit(ctx, core, p != NULL ? "persona.set" : "persona.clear",
                       level == PERSONA_LEVEL_CHANNEL, p != NULL ? p->name : "");
    if (p != NULL)
        snprintf(ctx->text, sizeof(ctx->text), MSG_ADMIN_PERSONA_SET, p->name, label);
    else
        snprintf(ctx->text, sizeof(ctx->text), MSG_ADMIN_PERSONA_CLEARED, label);
    int rc = persona_choose(core, inv, level, p != NULL ? p->name : NULL, cmd_persona__saved, ctx);
    if (rc < 0)
        cmd_persona__saved(rc, ctx);
}

void cmd_admin_persona_set(struct core *core, struct invocation *inv)
{
    cmd_admin_persona__set(core, inv, cmd_persona__opt(inv, "name"));
}

void cmd_admin_persona_clear(struct core *core, struct invocation *inv)
{
    cmd_admin_persona__set(core, inv, NULL);
}

void cmd_admin_plaintalk(struct core *core, struct invocation *inv)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->platform != COMMAND_PLATFORM_TELEGRAM) {
        reply_text(inv->reply, true, MSG_ADMIN_PLAINTALK_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    const char *state = cmd_persona__opt(inv, "state");
    bool on = state != NULL && strcmp(state, "on") == 0;
    struct persona_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->inv = inv;
    ctx->public_answer = true;
    cmd_persona__audit(ctx, core, "plaintalk", false, on ? "on" : "off");
    snprintf(ctx->text, sizeof(ctx->text), "%s",
             on ? MSG_ADMIN_PLAINTALK_ON : MSG_ADMIN_PLAINTALK_OFF);
    int rc = persona_plaintalk_set(core, inv, on, cmd_persona__saved, ctx);
    if (rc < 0)
        cmd_persona__saved(rc, ctx);
}
