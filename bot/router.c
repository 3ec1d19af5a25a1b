#include "bot/router.h"

#include "bot/config.h"
#include "core/access.h"
#include "core/commands.h"
#include "core/core.h"
#include "core/feature.h"
#include "core/holders.h"
#include "base/error.h"
#include "base/log.h"
#include "core/messages.h"
#include "base/metrics.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct router {
    struct core *core;
    size_t in_flight; /* calls whose reply is not finished */
    bool draining;    /* refuse new calls */
    void (*drained_cb)(void *data);
    void *drained_data;
    struct access_rules *access; /* who may use the bot; NULL: everyone */
};

/* One routed call: the handler's reply handle wraps the adapter's, so the
 * router sees the handler finish. */
struct router_call {
    struct reply reply;  /* handed to the handler */
    struct reply *inner; /* the adapter's handle */
    struct router *router;
    struct invocation inv;
    bool answered; /* the handler sent a final message */
};

/* Count a command by outcome: "answered" or "silent" for a handler's call,
 * or why the router refused it. */
static void router__count(const char *command, const char *outcome)
{
    const char *labels[] = {command != NULL && command[0] != '\0' ? command : "unknown", outcome};
    metrics_counter_add(metrics_std()->commands, labels, 1);
}

static int router__send(struct reply *r, const struct reply_msg *msg)
{
    struct router_call *call = r->data;
    if (msg != NULL && msg->stage == REPLY_FINAL)
        call->answered = true;
    reply_landed_forward(r, call->inner);
    return reply_send(call->inner, msg);
}

static void router__finish(struct reply *r)
{
    struct router_call *call = r->data;
    struct router *router = call->router;
    router__count(call->inv.spec != NULL ? call->inv.spec->name : NULL,
                  call->answered ? "answered" : "silent");
    reply_finish(call->inner);
    invocation_clear(&call->inv);
    free(call);
    router->in_flight--;
    if (router->draining && router->in_flight == 0 && router->drained_cb != NULL) {
        void (*cb)(void *) = router->drained_cb;
        router->drained_cb = NULL;
        cb(router->drained_data);
    }
}

static const struct reply_ops router_reply_ops = {.send = router__send, .finish = router__finish};

struct router *router_new(struct core *core)
{
    struct router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->core = core;
    return r;
}

void router_free(struct router *r)
{
    if (r == NULL)
        return;
    if (r->core != NULL && r->core->access == r->access)
        r->core->access = NULL;
    access_rules_free(r->access);
    free(r);
}

int router_access_configure(struct router *r, const struct config *cfg)
{
    const struct config_access *a = &cfg->access;
    struct access_settings s = {.allow_users = a->allow_users,
                                .block_users = a->block_users,
                                .allow_roles = a->allow_roles,
                                .block_roles = a->block_roles,
                                .allow_groups = a->allow_groups,
                                .block_groups = a->block_groups,
                                .dms = a->dms,
                                .reply = (enum access_reply)a->blocked_reply};
    char err[256] = "";
    struct access_rules *rules = access_rules_new(&s, err, sizeof(err));
    if (rules == NULL) {
        /* The config was validated: only memory can fail here. */
        log_error("access.not_applied", "problem=%s action=keeping the previous rules", err);
        return HB_ENOMEM;
    }
    if (r->core != NULL)
        r->core->access = rules; /* what adapters check on paths that skip the router */
    access_rules_free(r->access);
    r->access = rules;
    return 0;
}

size_t router_in_flight(const struct router *r)
{
    return r->in_flight;
}

void router_drain(struct router *r, void (*cb)(void *data), void *data)
{
    r->draining = true;
    if (r->in_flight == 0) {
        cb(data);
        return;
    }
    r->drained_cb = cb;
    r->drained_data = data;
}

static void router__unknown(struct invocation *inv, const char *name)
{
    size_t n;
    const struct command_spec *table = commands_table(&n);
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        if (table[i].access == COMMAND_ACCESS_ADMIN && !inv->admin)
            continue;
        char first[32];
        snprintf(first, sizeof(first), "%.*s", (int)strcspn(table[i].name, " "), table[i].name);
        size_t d = text_distance(name, first);
        if (d < best_d) {
            best_d = d;
            best = table[i].name;
        }
    }
    if (best != NULL)
        reply_text(inv->reply, true, MSG_ROUTER_UNKNOWN_SUGGEST, name, best);
    else
        reply_text(inv->reply, true, MSG_ROUTER_UNKNOWN, name);
}

/* Answer and end an invocation the router refuses itself. */
static void router__refuse_done(struct invocation *inv, const char *command, const char *outcome)
{
    router__count(command, outcome);
    reply_finish(inv->reply);
    invocation_clear(inv);
}

/* Hand a checked invocation to fn with a reply handle the router watches. */
static void router__run(struct router *r, struct invocation *inv, const struct command_spec *spec,
                        command_handler_fn fn)
{
    struct router_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        router__refuse_done(inv, spec->name, "no_memory");
        return;
    }
    call->router = r;
    call->inner = inv->reply;
    call->inv = *inv;
    call->inv.spec = spec;
    call->inv.reply = &call->reply;
    call->reply.ops = &router_reply_ops;
    call->reply.data = call;
    memset(inv->opts, 0, sizeof(inv->opts)); /* the call owns the strings now */
    inv->image = NULL;                       /* and the image */
    inv->reply = NULL;
    r->in_flight++;
    log_debug("command.run", "command=%s platform=%s event=%s button=%d", spec->name,
              command_platform_name(call->inv.platform), call->inv.event_id,
              call->inv.button_ref[0] != '\0');
    fn(r->core, &call->inv);
}

/* A command of a feature switched off, globally or in this group, is
 * answered with which feature is off and reaches no handler. Returns true
 * when the invocation was refused (and finished). */
static bool router__feature_off(struct router *r, struct invocation *inv,
                                const struct command_spec *spec)
{
    enum feature f = feature_of_command(spec->name);
    const struct features *fs = r->core != NULL ? r->core->features : NULL;
    if (f == FEATURE_COUNT || features_on(fs, f, inv->platform, inv->scope_id))
        return false;
    bool global = !features_global_on(fs, f);
    char name[32];
    snprintf(name, sizeof(name), "%s", feature_name(f));
    name[0] = (char)(name[0] - 'a' + 'A');
    log_info("command.refused", "command=%s platform=%s reason=feature_off feature=%s", spec->name,
             command_platform_name(inv->platform), feature_name(f));
    reply_text(inv->reply, true, global ? MSG_ROUTER_FEATURE_OFF_GLOBAL : MSG_ROUTER_FEATURE_OFF,
               name);
    router__refuse_done(inv, spec->name, "feature_off");
    return true;
}

/* Who may use the bot, checked before anything else: a refused member
 * reaches no handler, so nothing opens a wallet or pays a welcome bonus for
 * them. Returns true when the invocation was refused (and finished). */
static bool router__access_refused(struct router *r, struct invocation *inv)
{
    enum access_verdict v = access_check(r->access, inv);
    if (v == ACCESS_ALLOWED)
        return false;
    const char *why = v == ACCESS_NO_DMS ? "no_dms" : "blocked";
    log_info("command.refused", "platform=%s reason=%s", command_platform_name(inv->platform), why);
    if (access_reply_mode(r->access) == ACCESS_REPLY_MESSAGE)
        reply_text(inv->reply, true, v == ACCESS_NO_DMS ? MSG_ROUTER_NO_DMS : MSG_ROUTER_BLOCKED,
                   command_platform_name(inv->platform), inv->user_id);
    router__refuse_done(inv, NULL, why);
    return true;
}

void router_dispatch(struct router *r, struct invocation *inv, const char *args)
{
    char err[512];
    if (r->draining) {
        reply_text(inv->reply, true, MSG_ROUTER_SHUTTING_DOWN);
        router__refuse_done(inv, NULL, "draining");
        return;
    }
    if (router__access_refused(r, inv))
        return;
    holders_seen(r->core->holders, inv); /* a holder role held or dropped (core/holders.h) */
    const struct command_spec *spec;
    if (inv->button_ref[0] != '\0') {
        /* A button press: route by the ref's prefix; the handler checks
         * that the ref belongs to the member pressing it. */
        spec = commands_find_button(inv->button_ref);
        if (spec == NULL || spec->on_button == NULL ||
            (spec->access == COMMAND_ACCESS_ADMIN && !inv->admin)) {
            reply_text(inv->reply, true, MSG_ROUTER_BUTTON_INACTIVE);
            router__refuse_done(inv, NULL, "inactive_button");
            return;
        }
        if (router__feature_off(r, inv, spec))
            return;
        snprintf(inv->name, sizeof(inv->name), "%s", spec->name);
        router__run(r, inv, spec, spec->on_button);
        return;
    }
    if (inv->name[0] == '\0' && args != NULL) {
        spec = commands_match(args, inv->name, sizeof(inv->name), &args);
    } else {
        spec = commands_find(inv->name);
    }
    if (spec == NULL) {
        router__unknown(inv, inv->name);
        router__refuse_done(inv, NULL, "unknown");
        return;
    }
    if (spec->access == COMMAND_ACCESS_ADMIN && !inv->admin) {
        log_info("command.refused", "command=%s platform=%s reason=not_admin", spec->name,
                 command_platform_name(inv->platform));
        reply_text(inv->reply, true, MSG_ROUTER_ADMINS_ONLY, spec->name);
        router__refuse_done(inv, spec->name, "not_admin");
        return;
    }
    if (router__feature_off(r, inv, spec))
        return;
    int rc = args != NULL ? command_args_parse(spec, args, inv, err, sizeof(err))
                          : command_options_validate(spec, inv, err, sizeof(err));
    if (rc < 0) {
        reply_text(inv->reply, true, "%s", err);
        router__refuse_done(inv, spec->name, "bad_options");
        return;
    }
    router__run(r, inv, spec, spec->handler);
}
