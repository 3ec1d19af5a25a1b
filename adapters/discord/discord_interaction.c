/* The Discord adapter's interactions: slash commands, button presses and
 * autocomplete, from the gateway or the HTTP interactions endpoint. */
#include "adapters/discord/discord_internal.h"

#include "adapters/discord/appcmd.h"
#include "adapters/discord/rest.h"
#include "core/attach.h"
#include "base/error.h"
#include "core/messages.h"
#include "base/log.h"
#include "base/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <inttypes.h>

/* ---- interactions --------------------------------------------------------- */

void dc__identity(const cJSON *d, struct invocation *inv)
{
    const cJSON *member = cJSON_GetObjectItemCaseSensitive(d, "member");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(member != NULL ? member : d, "user");
    if (user == NULL)
        user = cJSON_GetObjectItemCaseSensitive(d, "user");
    if (user == NULL)
        user = cJSON_GetObjectItemCaseSensitive(d, "author");
    dc__copy(inv->user_id, sizeof(inv->user_id), dc__str(user, "id"));
    const char *name = dc__str(user, "global_name");
    dc__copy(inv->user_name, sizeof(inv->user_name),
             name != NULL ? name : dc__str(user, "username"));
    const char *guild = dc__str(d, "guild_id");
    inv->platform = COMMAND_PLATFORM_DISCORD;
    inv->scope = guild != NULL ? COMMAND_SCOPE_GROUP : COMMAND_SCOPE_DM;
    dc__copy(inv->scope_id, sizeof(inv->scope_id), guild);
    const char *channel = dc__str(d, "channel_id");
    if (channel == NULL)
        channel = dc__str(cJSON_GetObjectItemCaseSensitive(d, "channel"), "id");
    dc__copy(inv->channel_id, sizeof(inv->channel_id), channel);
    /* A thread (types 10, 11, 12) belongs to a channel, whose persona it
     * takes when it has none of its own (core/persona.h). Interactions
     * carry the channel object; messages do not. */
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(d, "channel");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ch, "type");
    if (cJSON_IsNumber(type) && type->valueint >= 10 && type->valueint <= 12)
        dc__copy(inv->parent_channel_id, sizeof(inv->parent_channel_id), dc__str(ch, "parent_id"));
    /* The member's roles, for [access] role lists (core/access.h). */
    const cJSON *role;
    inv->nroles = 0;
    cJSON_ArrayForEach(role, cJSON_GetObjectItemCaseSensitive(member, "roles"))
    {
        if (inv->nroles == COMMAND_ROLES_MAX)
            break;
        if (!cJSON_IsString(role) || role->valuestring[0] < '0' || role->valuestring[0] > '9')
            continue;
        uint64_t id = strtoull(role->valuestring, NULL, 10);
        if (id != 0)
            inv->roles[inv->nroles++] = id;
    }
    const char *perms = dc__str(member, "permissions");
    uint64_t bits = perms != NULL ? strtoull(perms, NULL, 10) : 0;
    inv->admin = (bits & (DISCORD_PERM_MANAGE_GUILD | DISCORD_PERM_ADMINISTRATOR)) != 0;
}

/* Typed options from the interaction into inv, in the spec's order. */
static int dc__options(const struct command_spec *spec, const cJSON *opts, struct invocation *inv,
                       char *err, size_t errcap)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, opts)
    {
        const char *name = dc__str(o, "name");
        int idx = name != NULL ? command_option_index(spec, name) : -1;
        if (idx < 0)
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        char text[64];
        const char *value = NULL;
        if (cJSON_IsString(v)) {
            value = v->valuestring;
        } else if (cJSON_IsBool(v)) {
            value = cJSON_IsTrue(v) ? "yes" : "no";
        } else if (cJSON_IsNumber(v)) {
            /* Discord's integers lie within +-2^53. Anything else keeps its
             * own spelling, which the option parser refuses by name. */
            int64_t n = 0;
            if (json_int64_get(v, -JSON_INT_EXACT, JSON_INT_EXACT, &n) == 0)
                snprintf(text, sizeof(text), "%" PRId64, n);
            else
                snprintf(text, sizeof(text), "%g", v->valuedouble);
            value = text;
        }
        if (value == NULL)
            continue;
        int rc = command_option_set_text(spec, (size_t)idx, value, inv, err, errcap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void dc__refuse(struct dc_reply *r, const char *text)
{
    reply_text(&r->reply, true, "%s", text);
    reply_finish(&r->reply);
    dc__reply_dispatched(r);
}

static void dc__command(struct discord *dc, const cJSON *d, struct dc_reply *r)
{
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    dc__identity(d, &inv);
    dc__place(dc, &inv);
    snprintf(inv.event_id, sizeof(inv.event_id), "discord:interaction:%s", r->id);
    inv.reply = &r->reply;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(d, "data");
    const char *name = dc__str(data, "name");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(data, "options");
    char full[64];
    dc__copy(full, sizeof(full), name);
    /* Subcommands (type 1) and groups (type 2) nest their options. */
    for (int depth = 0; depth < 2; depth++) {
        const cJSON *first = cJSON_IsArray(opts) ? opts->child : NULL;
        const cJSON *t = first != NULL ? cJSON_GetObjectItemCaseSensitive(first, "type") : NULL;
        if (!cJSON_IsNumber(t) || (t->valueint != 1 && t->valueint != 2))
            break;
        size_t n = strlen(full);
        snprintf(full + n, sizeof(full) - n, " %s",
                 dc__str(first, "name") != NULL ? dc__str(first, "name") : "");
        opts = cJSON_GetObjectItemCaseSensitive(first, "options");
    }
    dc__copy(inv.name, sizeof(inv.name), full);
    const struct command_spec *spec = commands_find(inv.name);
    r->personal = spec != NULL && spec->personal;
    if (spec != NULL) {
        char err[256];
        if (dc__options(spec, opts, &inv, err, sizeof(err)) < 0) {
            invocation_clear(&inv);
            dc__refuse(r, err);
            return;
        }
    }
    /* /chat with an image: fetched first (the interaction is deferred
     * meanwhile), then dispatched with it. */
    const char *url = NULL;
    size_t max = dc__image_max(dc);
    int img = spec != NULL && strcmp(spec->name, "chat") == 0
                  ? dc__attachment_option(dc, data, opts, max, &url)
                  : HB_ENOTFOUND;
    if (img == 0) {
        dc__image_dispatch(dc, r, &inv, NULL, url);
        dc__reply_dispatched(r);
        return;
    }
    if (img != HB_ENOTFOUND) {
        invocation_clear(&inv);
        char text[256];
        attach_refusal(img, max, text, sizeof(text));
        dc__refuse(r, text);
        return;
    }
    dc->host.dispatch(dc->host.data, &inv, NULL);
    dc__reply_dispatched(r);
}

static void dc__component(struct discord *dc, const cJSON *d, struct dc_reply *r)
{
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    dc__identity(d, &inv);
    dc__place(dc, &inv);
    snprintf(inv.event_id, sizeof(inv.event_id), "discord:interaction:%s", r->id);
    inv.reply = &r->reply;
    const char *ref = dc__str(cJSON_GetObjectItemCaseSensitive(d, "data"), "custom_id");
    if (ref == NULL || strlen(ref) > COMMAND_BUTTON_REF_MAX) {
        dc__refuse(r, MSG_ROUTER_BUTTON_INACTIVE);
        return;
    }
    dc__copy(inv.button_ref, sizeof(inv.button_ref), ref);
    dc->host.dispatch(dc->host.data, &inv, NULL);
    dc__reply_dispatched(r);
}

static void dc__autocomplete_done(const struct discord_rest_result *res, void *data)
{
    struct discord *dc = data;
    if (res->rc == 0 && res->status >= 200 && res->status < 300)
        dc->stats.acks++;
    else
        dc->stats.ack_failures++;
    dc->refs--;
    dc__maybe_closed(dc);
}

static const cJSON *dc__focused(const cJSON *opts)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, opts)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "focused")))
            return o;
        const cJSON *inner = dc__focused(cJSON_GetObjectItemCaseSensitive(o, "options"));
        if (inner != NULL)
            return inner;
    }
    return NULL;
}

static void dc__autocomplete(struct discord *dc, const cJSON *d, const char *id, const char *token,
                             struct dc_first *first)
{
    const cJSON *focused = dc__focused(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "data"), "options"));
    cJSON *cb = dc__callback(8, cJSON_CreateObject());
    if (cb == NULL)
        return;
    cJSON *choices =
        cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(cb, "data"), "choices");
    const char *name = dc__str(focused, "name");
    if (choices != NULL && name != NULL && strcmp(name, "model") == 0 && dc->models != NULL) {
        const char *typed = dc__str(focused, "value");
        size_t tlen = typed != NULL ? strlen(typed) : 0;
        const char *names[DC_AUTOCOMPLETE_MAX * 4];
        size_t n = dc->models(dc->models_data, names, sizeof(names) / sizeof(names[0]));
        size_t added = 0;
        for (size_t i = 0; i < n && added < DC_AUTOCOMPLETE_MAX; i++) {
            if (tlen > 0 && strncasecmp(names[i], typed, tlen) != 0 &&
                strcasestr(names[i], typed) == NULL)
                continue;
            cJSON *c = cJSON_CreateObject();
            if (c == NULL)
                break;
            cJSON_AddStringToObject(c, "name", names[i]);
            cJSON_AddStringToObject(c, "value", names[i]);
            cJSON_AddItemToArray(choices, c);
            added++;
        }
    }
    char *json = cJSON_PrintUnformatted(cb);
    cJSON_Delete(cb);
    if (json == NULL)
        return;
    if (first != NULL) {
        first->used = true;
        first->fn(first->data, json, strlen(json));
        dc->stats.acks++;
        free(json);
        return;
    }
    char path[700];
    snprintf(path, sizeof(path), "/interactions/%s/%s/callback", id, token);
    dc->refs++;
    if (discord_rest_request(dc->rest, "POST", path, json, NULL, 0, dc__autocomplete_done, dc) < 0)
        dc->refs--;
    free(json);
}

/* One interaction, from the gateway (first NULL) or over HTTP. */
void dc__interaction(struct discord *dc, const char *json, size_t len, struct dc_first *first)
{
    cJSON *d = cJSON_ParseWithLength(json, len);
    if (d == NULL) {
        log_warn("discord.bad_event", "type=INTERACTION_CREATE reason=%s", "malformed JSON");
        return;
    }
    const char *id = dc__str(d, "id");
    const char *token = dc__str(d, "token");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(d, "type");
    if (id == NULL || token == NULL || !cJSON_IsNumber(type) || strlen(id) >= 32 ||
        strlen(token) >= 512) {
        log_warn("discord.bad_event", "type=INTERACTION_CREATE reason=%s",
                 "missing id, token or type");
        goto out;
    }
    if (dc__seen(dc, id)) {
        dc->stats.duplicates++;
        goto out;
    }
    dc->stats.interactions++;
    if (type->valueint == 4) {
        dc__autocomplete(dc, d, id, token, first);
        goto out;
    }
    if (type->valueint != 2 && type->valueint != 3) {
        log_debug("discord.interaction_ignored", "type=%d", type->valueint);
        goto out;
    }
    struct dc_reply *r =
        dc__reply_new(dc, type->valueint == 2 ? DC_KIND_COMMAND : DC_KIND_COMPONENT);
    if (r == NULL)
        goto out;
    dc__copy(r->id, sizeof(r->id), id);
    dc__copy(r->token, sizeof(r->token), token);
    r->first = first;
    if (type->valueint == 2)
        dc__command(dc, d, r);
    else
        dc__component(dc, d, r);
out:
    cJSON_Delete(d);
}
