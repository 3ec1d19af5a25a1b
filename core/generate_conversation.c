/* Conversation memory: the turns /chat remembers per member and channel,
 * within the catalog's memory budget. Never stored durably. */
#include "core/generate_internal.h"

#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The conversation under key, made when absent and create is set; its
 * use is noted for pruning. */
static struct gen_conv *generate__conv(struct generate *g, const char *key, bool create)
{
    struct gen_conv *c = map_get(g->convs, key);
    if (c == NULL && create) {
        c = calloc(1, sizeof(*c));
        if (c == NULL || map_set(g->convs, key, c) < 0) {
            free(c);
            return NULL;
        }
    }
    if (c != NULL)
        c->last_used = generate__now(g);
    return c;
}

static void generate__conv_clear(struct gen_conv *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->turns[i].text);
    c->n = 0;
}

void generate__conv_key(const struct invocation *inv, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s|%s|%s|%s", command_platform_name(inv->platform),
             inv->scope == COMMAND_SCOPE_DM ? "dm" : inv->scope_id, inv->channel_id, inv->user_id);
}

void job__remember_turn(struct job *job)
{
    struct generate *g = job->g;
    struct gen_conv *c = generate__conv(g, job->conv_key, true);
    if (c == NULL)
        return;
    if (c->n + 2 > c->cap) {
        size_t cap = c->cap == 0 ? 8 : c->cap * 2;
        struct gen_turn *grown = realloc(c->turns, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        c->turns = grown;
        c->cap = cap;
    }
    char *q = strdup(job->prompt);
    char *a = strdup(job->text != NULL ? job->text : "");
    if (q == NULL || a == NULL) {
        free(q);
        free(a);
        return;
    }
    c->turns[c->n++] = (struct gen_turn){.role = "user", .text = q};
    c->turns[c->n++] = (struct gen_turn){.role = "assistant", .text = a};
    /* Keep within the budget (about four bytes a token), oldest first out. */
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    size_t bytes = 0;
    for (size_t i = 0; i < c->n; i++)
        bytes += strlen(c->turns[i].text);
    size_t drop = 0;
    while (drop + 2 <= c->n && bytes / 4 > (size_t)l->memory_tokens) {
        bytes -= strlen(c->turns[drop].text) + strlen(c->turns[drop + 1].text);
        free(c->turns[drop].text);
        free(c->turns[drop + 1].text);
        drop += 2;
    }
    if (drop > 0) {
        memmove(c->turns, c->turns + drop, (c->n - drop) * sizeof(*c->turns));
        c->n -= drop;
    }
}

int job__messages_build(struct job *job)
{
    struct gen_conv *c =
        job->modality == PROVIDER_TEXT ? generate__conv(job->g, job->conv_key, false) : NULL;
    size_t n = (c != NULL ? c->n : 0) + 1;
    job->msgs = calloc(n, sizeof(*job->msgs));
    if (job->msgs == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        char *t = strdup(c->turns[i].text);
        if (t == NULL)
            return HB_ENOMEM;
        job->msgs[job->nmsgs].role = c->turns[i].role;
        job->msgs[job->nmsgs++].content = t;
        job->input_bytes += strlen(t);
    }
    char *p = strdup(job->prompt);
    if (p == NULL)
        return HB_ENOMEM;
    job->msgs[job->nmsgs].role = "user";
    job->msgs[job->nmsgs++].content = p;
    job->input_bytes += strlen(p);
    return 0;
}

void generate_conversation_reset(struct generate *g, const struct invocation *inv)
{
    char key[GEN_KEY_MAX];
    generate__conv_key(inv, key, sizeof(key));
    map_remove(g->convs, key);
}

void generate__conv_free(void *conv)
{
    struct gen_conv *c = conv;
    generate__conv_clear(c);
    free(c->turns);
    free(c);
}

void generate__conv_prune(struct generate *g, int64_t before)
{
    struct map_iter it;
    void *v;
    map_iter_init(&it, g->convs);
    while (map_iter_next(&it, NULL, &v)) {
        if (((const struct gen_conv *)v)->last_used < before)
            map_iter_remove(&it);
    }
}
