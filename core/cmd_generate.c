/* Generation commands: /chat, /imagine, /new, /forget, /models, /model, and the
 * Regenerate and Upvote buttons under images. The work is the engine's
 * (core/generate.h); these only read options and answer. */
#include "core/catalog.h"
#include "core/core.h"
#include "base/error.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/messages.h"
#include "base/text.h"

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
    reply_text(inv->reply, true, MSG_GEN_UNAVAILABLE);
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
    reply_text(inv->reply, true, MSG_GEN_NEW_CONVERSATION);
    reply_finish(inv->reply);
}

static void cmd_forget__done(int rc, int64_t turns, void *data)
{
    struct reply *r = data;
    if (rc == 0)
        reply_text(r, true, MSG_GEN_FORGOTTEN, (long long)turns);
    else
        reply_text(r, true, MSG_GEN_FORGET_FAILED);
    reply_finish(r);
}

void cmd_forget(struct core *core, struct invocation *inv)
{
    if (!cmd_generate__ready(core, inv))
        return;
    struct reply *r = inv->reply;
    int rc = generate_conversation_forget(core->generate, inv, cmd_forget__done, r);
    if (rc < 0)
        cmd_forget__done(rc, 0, r);
}

static void cmd_models__price(char *buf, size_t cap, const struct catalog_model *m)
{
    size_t off = 0;
    buf[0] = '\0';
    if (m->price_request > 0)
        off += (size_t)snprintf(buf + off, cap - off, MSG_MODELS_PRICE_REQUEST,
                                (long long)m->price_request);
    if (m->price_input_1k > 0 && off < cap)
        off += (size_t)snprintf(buf + off, cap - off, MSG_MODELS_PRICE_INPUT, off ? ", " : "",
                                (long long)m->price_input_1k);
    if (m->price_output_1k > 0 && off < cap)
        off += (size_t)snprintf(buf + off, cap - off, MSG_MODELS_PRICE_OUTPUT, off ? ", " : "",
                                (long long)m->price_output_1k);
    if (off == 0)
        snprintf(buf, cap, MSG_MODELS_PRICE_FREE);
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
        text_buf_add(&t, MSG_MODELS_LINE, m->name,
                     m->provider->provider->demo ? MSG_MODELS_DEMO : "", kind, price,
                     (long long)catalog_estimate(m, 0),
                     strcmp(mine, m->name) == 0 ? MSG_MODELS_YOUR_CHOICE : "");
        if (m->modality == PROVIDER_IMAGE) {
            text_buf_add(&t, MSG_MODELS_SIZES);
            for (size_t sz = 0; sz < m->nsizes; sz++)
                text_buf_add(&t, " %ux%u", m->sizes[sz].width, m->sizes[sz].height);
        }
        shown++;
    }
    struct text_buf out = {0};
    if (usable == 0)
        text_buf_add(&out, MSG_MODELS_NONE);
    else if (shown == 0)
        text_buf_add(&out, MSG_MODELS_NO_MORE);
    else
        text_buf_add(&out, MSG_MODELS_LIST, usable > MODELS_PAGE ? MSG_MODELS_A_PAGE : "",
                     text_buf_str(&t));
    struct reply_button buttons[2];
    size_t nb = 0;
    char payload[32];
    if (ctx->page > 0) {
        snprintf(payload, sizeof(payload), "%ld.%s", ctx->page - 1, ctx->modality);
        if (button_ref_make(buttons[nb].ref, core->button_key, "mdl", payload, inv) == 0)
            buttons[nb++].label = MSG_MODELS_BUTTON_PREVIOUS;
    }
    if (usable > first + MODELS_PAGE) {
        snprintf(payload, sizeof(payload), "%ld.%s", ctx->page + 1, ctx->modality);
        if (button_ref_make(buttons[nb].ref, core->button_key, "mdl", payload, inv) == 0)
            buttons[nb++].label = MSG_MODELS_BUTTON_NEXT;
    }
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .ephemeral = true,
                            .text = text_buf_str(&out),
                            .buttons = buttons,
                            .nbuttons = nb};
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

static void models__start(struct core *core, struct invocation *inv, const char *modality,
                          long page)
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
            reply_text(inv->reply, true,
                       rc == HB_EPERM ? MSG_MODELS_BUTTON_NOT_YOURS : MSG_MODELS_BUTTON_EXPIRED);
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
        reply_text(inv->reply, true, MSG_MODEL_UNKNOWN, name != NULL ? name : "");
        reply_finish(inv->reply);
        return;
    }
    /* The write is durable before the next generation reads it: both go
     * through the store's thread in order. */
    int rc = generate_preference_set(core->generate, inv, m->name, cmd_model__stored, NULL);
    if (rc < 0)
        reply_text(inv->reply, true, MSG_MODEL_NOT_SAVED, hb_strerror(rc));
    else
        reply_text(inv->reply, true, MSG_MODEL_CHOSEN,
                   m->modality == PROVIDER_TEXT ? "/chat" : "/imagine", m->name,
                   m->provider->provider->demo ? MSG_GEN_DEMO : "");
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
        reply_text(inv->reply, true, MSG_GEN_BUTTON_NOT_YOURS);
        reply_finish(inv->reply);
        return;
    }
    generate_regenerate(core->generate, inv, checked + 2);
}
