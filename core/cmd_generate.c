/* Generation commands: /chat, /imagine, /new, /models, /model, and the
 * Regenerate and Upvote buttons under images. The work is the engine's
 * (core/generate.h); these only read options and answer. */
#include "core/catalog.h"
#include "core/core.h"
#include "core/error.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cmd_generate__opt(const struct invocation *inv, const char *name)
{
    if (inv->spec == NULL)
        return NULL;
    int i = command_option_index(inv->spec, name);
    if (i < 0 || !inv->opts[i].set)
        return NULL;
    return inv->opts[i].string;
}

static bool cmd_generate__ready(struct core *core, struct invocation *inv)
{
    if (core->generate != NULL)
        return true;
    reply_text(inv->reply, true, "Generation is not available here.");
    reply_finish(inv->reply);
    return false;
}

void cmd_chat(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    struct generate_request req = {.modality = PROVIDER_TEXT,
                                   .prompt = cmd_generate__opt(inv, "prompt"),
                                   .model = cmd_generate__opt(inv, "model")};
    generate_submit(core->generate, inv, &req);
}

void cmd_imagine(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    struct generate_request req = {.modality = PROVIDER_IMAGE,
                                   .prompt = cmd_generate__opt(inv, "prompt"),
                                   .model = cmd_generate__opt(inv, "model"),
                                   .size = cmd_generate__opt(inv, "size")};
    generate_submit(core->generate, inv, &req);
}

void cmd_new(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    generate_conversation_reset(core->generate, inv);
    reply_text(inv->reply, true, "Started a new conversation: /chat forgets what came before.");
    reply_finish(inv->reply);
}

static void cmd_models__price(char *buf, size_t cap, const struct catalog_model *m)
{
    size_t off = 0;
    buf[0] = '\0';
    if (m->price_request > 0)
        off += (size_t)snprintf(buf + off, cap - off, "%lld per request",
                                (long long)m->price_request);
    if (m->price_input_1k > 0 && off < cap)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld per 1k input tokens",
                                off ? ", " : "", (long long)m->price_input_1k);
    if (m->price_output_1k > 0 && off < cap)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld per 1k output tokens",
                                off ? ", " : "", (long long)m->price_output_1k);
    if (off == 0)
        snprintf(buf, cap, "free");
}

#define MODELS_PAGE 6

struct models_ctx {
    struct core *core;
    struct invocation *inv;
    char modality[8]; /* "", "text" or "image" */
    long page;        /* from 0 */
};

/* Render one page of the models this member may use here. off lists the
 * models this group's admins turned off ("\n<name>\n..."), or is NULL. */
static void models__render(struct models_ctx *ctx, const char *off)
{
    struct core *core = ctx->core;
    struct invocation *inv = ctx->inv;
    struct catalog *cat = generate_catalog(core->generate);
    const char *mine = generate_preference_cached(core->generate, inv);
    struct text_buf t = {0};
    size_t shown = 0, usable = 0;
    size_t first = (size_t)ctx->page * MODELS_PAGE;
    for (size_t i = 0; i < catalog_model_count(cat); i++) {
        const struct catalog_model *m = catalog_model_at(cat, i);
        const char *kind = m->modality == PROVIDER_TEXT ? "text" : "image";
        if (!m->enabled || !catalog_model_allowed(m, inv) || generate_scope_off_has(off, m->name))
            continue;
        if (ctx->modality[0] != '\0' && strcmp(ctx->modality, kind) != 0)
            continue;
        if (usable++ < first || shown >= MODELS_PAGE)
            continue;
        char price[160];
        cmd_models__price(price, sizeof(price), m);
        text_buf_add(&t, "\n  %s%s (%s): %s; up to %lld credits a request%s", m->name,
                     m->provider->provider->demo ? " [demo: offline sample answers]" : "", kind,
                     price, (long long)catalog_estimate(m, 0),
                     strcmp(mine, m->name) == 0 ? " — your choice" : "");
        if (m->modality == PROVIDER_IMAGE) {
            text_buf_add(&t, "; sizes");
            for (size_t sz = 0; sz < m->nsizes; sz++)
                text_buf_add(&t, " %ux%u", m->sizes[sz].width, m->sizes[sz].height);
        }
        shown++;
    }
    struct text_buf out = {0};
    if (usable == 0)
        text_buf_add(&out, "Models: none available to you right now.");
    else if (shown == 0)
        text_buf_add(&out, "Models: no more pages.");
    else
        text_buf_add(&out, "Models%s:%s\nPick one with /model <name>, or name it: /chat hello model:<name>.",
                     usable > MODELS_PAGE ? " (a page of them)" : "", text_buf_str(&t));
    struct reply_button buttons[2];
    size_t nb = 0;
    char payload[32];
    if (ctx->page > 0) {
        snprintf(payload, sizeof(payload), "%ld.%s", ctx->page - 1, ctx->modality);
        if (button_ref_make(buttons[nb].ref, core->button_key, "mdl", payload, inv) == 0)
            buttons[nb++].label = "Previous";
    }
    if (usable > first + MODELS_PAGE) {
        snprintf(payload, sizeof(payload), "%ld.%s", ctx->page + 1, ctx->modality);
        if (button_ref_make(buttons[nb].ref, core->button_key, "mdl", payload, inv) == 0)
            buttons[nb++].label = "Next";
    }
    struct reply_msg msg = {.stage = REPLY_FINAL, .ephemeral = true, .text = text_buf_str(&out),
                            .buttons = buttons, .nbuttons = nb};
    reply_send(inv->reply, &msg);
    free(t.buf);
    free(out.buf);
    reply_finish(inv->reply);
    free(ctx);
}

static void models__listed(char *off, void *data)
{
    models__render(data, off);
    free(off);
}

static void models__start(struct core *core, struct invocation *inv, const char *modality, long page)
{
    struct models_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->page = page;
    snprintf(ctx->modality, sizeof(ctx->modality), "%s", modality != NULL ? modality : "");
    /* In a group, leave out the models its admins turned off. */
    if (generate_scope_off_load(core, inv, models__listed, ctx) == 0)
        return;
    models__render(ctx, NULL);
}

void cmd_models(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    models__start(core, inv, cmd_generate__opt(inv, "modality"), 0);
}

void cmd_models_button(struct core *core, struct invocation *inv)
{
    char payload[32];
    long page = 0;
    char modality[8] = "";
    int rc = button_ref_check(inv, core->button_key, payload, sizeof(payload));
    if (rc == 0 && (sscanf(payload, "%ld.%7s", &page, modality) < 1 || page < 0 || page > 1000))
        rc = HB_EINVAL;
    if (rc < 0 || !cmd_generate__ready(core, inv)) {
        if (rc < 0) {
            reply_text(inv->reply, true, rc == HB_EPERM ? "That button belongs to someone else's /models."
                                                        : "This button is no longer active. Try /models.");
            reply_finish(inv->reply);
        }
        return;
    }
    models__start(core, inv, modality, page);
}

static void cmd_model__stored(int rc, void *data)
{
    struct invocation *inv = data; /* only the reply is used after return */
    (void)inv;
    (void)rc;
}

void cmd_model(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    const char *name = cmd_generate__opt(inv, "name");
    struct catalog *cat = generate_catalog(core->generate);
    const struct catalog_model *m = name != NULL ? catalog_model_find(cat, name) : NULL;
    if (m == NULL || !m->enabled || !catalog_model_allowed(m, inv)) {
        reply_text(inv->reply, true, "There is no model called \"%s\" that you can use. See /models.",
                   name != NULL ? name : "");
        reply_finish(inv->reply);
        return;
    }
    /* The write is durable before the next generation reads it: both go
     * through the store's thread in order. */
    int rc = generate_preference_set(core->generate, inv, m->name, cmd_model__stored, NULL);
    if (rc < 0)
        reply_text(inv->reply, true, "Your choice could not be saved (%s).", hb_strerror(rc));
    else
        reply_text(inv->reply, true, "From now on your %s generations use %s%s.",
                   m->modality == PROVIDER_TEXT ? "/chat" : "/imagine", m->name,
                   m->provider->provider->demo ? " (demo)" : "");
    reply_finish(inv->reply);
}

/* Regenerate ("r.<gid>"): only the owner may press it, and pays again.
 * Upvote ("u.<gid>"): anyone but the owner, once; the engine checks the
 * ref against the owner it was made for. */
void cmd_generate_button(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    const char *ref = inv->button_ref;
    const char *c1 = strchr(ref, ':');
    const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    char payload[32] = "";
    if (c2 != NULL && (size_t)(c2 - c1 - 1) < sizeof(payload))
        snprintf(payload, sizeof(payload), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    if (strncmp(payload, "u.", 2) == 0) {
        char ref_copy[COMMAND_BUTTON_REF_MAX + 1];
        snprintf(ref_copy, sizeof(ref_copy), "%s", ref);
        generate_upvote(core->generate, inv, payload + 2, ref_copy);
        return;
    }
    char checked[32];
    if (strncmp(payload, "r.", 2) != 0 ||
        button_ref_check(inv, core->button_key, checked, sizeof(checked)) != 0) {
        reply_text(inv->reply, true, "This button is not yours to press.");
        reply_finish(inv->reply);
        return;
    }
    generate_regenerate(core->generate, inv, checked + 2);
}
