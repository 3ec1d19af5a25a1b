/* Kept images: every image is stored (core/gallery.h) for Regenerate,
 * /gallery and contests, the recent ones also in memory; retention prunes
 * the stored ones; and upvotes of an image by other members, counted
 * durably for the leaderboards (core/votes.c). */
#include "core/notice.h"
#include "core/generate_internal.h"

#include "core/button.h"
#include "core/contest.h"
#include "core/core.h"
#include "core/gallery.h"
#include "core/messages.h"
#include "core/state.h"
#include "core/votes.h"
#include "core/wallet.h"
#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* gallery_keep: the store once the thumbnail is made (none once the daemon
 * let its ledger go), and the end of the wait. */
static struct store *generate__image_store(void *data)
{
    struct generate *g = data;
    return g->core->ledger != NULL ? ledger_store(g->core->ledger) : NULL;
}

static void generate__image_kept(void *data)
{
    struct generate *g = data;
    g->njobs--;
    generate__maybe_free(g);
}

void job__image_remember(struct job *job)
{
    struct generate *g = job->g;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)job->id, strlen(job->id), md);
    struct gen_image *img = &g->images[g->image_next];
    g->image_next = (g->image_next + 1) % GEN_IMAGES_KEPT;
    free(img->prompt);
    memset(img, 0, sizeof(*img));
    hex_encode(md, 6, img->gid);
    snprintf(job->gid, sizeof(job->gid), "%s", img->gid);
    img->owner = job->who;
    snprintf(img->model, sizeof(img->model), "%s", job->first->name);
    snprintf(img->size, sizeof(img->size), "%ux%u", job->size.width, job->size.height);
    img->prompt = strdup(job->prompt);
    /* The owner and model survive a restart (for upvotes); so does the
     * image with its prompt, for the owner's Regenerate (erased by
     * /forget, pruned by retention, never shown to anyone else). */
    struct ledger *ledger = g->core->ledger;
    if (ledger != NULL) {
        char value[COMMAND_ID_MAX * 3 + 160];
        snprintf(value, sizeof(value), "%d|%s|%d|%s|%s", (int)job->who.platform, job->who.user_id,
                 (int)job->who.scope, job->who.scope_id, img->model);
        state_put(ledger_store(ledger), GEN_NS_IMAGE, img->gid, value, NULL, NULL);
        struct store_image kept = {.platform = (int)job->who.platform,
                                   .created_at = generate__now(g),
                                   .prompt = job->prompt,
                                   .data = job->image,
                                   .len = job->image_len};
        snprintf(kept.id, sizeof(kept.id), "%s", img->gid);
        gallery_scope(&job->who, kept.scope, sizeof(kept.scope));
        invocation_wallet(&job->who, kept.owner, sizeof(kept.owner));
        snprintf(kept.user_id, sizeof(kept.user_id), "%s", job->who.user_id);
        snprintf(kept.scope_id, sizeof(kept.scope_id), "%s",
                 job->who.scope == COMMAND_SCOPE_GROUP ? job->who.scope_id : "");
        snprintf(kept.model, sizeof(kept.model), "%s", img->model);
        snprintf(kept.size, sizeof(kept.size), "%s", img->size);
        snprintf(kept.mime, sizeof(kept.mime), "%s",
                 job->mime[0] != '\0' ? job->mime : "image/png");
        int rc = job->image != NULL && job->image_len > 0
                     ? gallery_keep(g->loop, &kept, generate__image_store, generate__image_kept, g)
                     : HB_EINVAL;
        if (rc == 0)
            g->njobs++; /* the engine (and the ledger it reads) lives until it is kept */
        else
            log_warn("generate.image_not_kept", "image=%s error=%s", img->gid, hb_strerror(rc));
    }
}

static struct gen_image *generate__image_find(struct generate *g, const char *gid)
{
    for (size_t i = 0; i < GEN_IMAGES_KEPT; i++) {
        if (g->images[i].prompt != NULL && strcmp(g->images[i].gid, gid) == 0)
            return &g->images[i];
    }
    return NULL;
}

static void regenerate__refuse(struct invocation *inv, const char *text)
{
    reply_text(inv->reply, true, "%s", text);
    reply_finish(inv->reply);
    inv->reply = NULL;
}

static void regenerate__run(struct generate *g, struct invocation *inv, const char *prompt,
                            const char *model, const char *size)
{
    char *p = strdup(prompt);
    char m[128], sz[24];
    snprintf(m, sizeof(m), "%s", model);
    snprintf(sz, sizeof(sz), "%s", size);
    if (p == NULL) {
        regenerate__refuse(inv, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    struct generate_request req = {.modality = PROVIDER_IMAGE, .prompt = p, .model = m, .size = sz};
    generate_submit(g, inv, &req);
    free(p);
}

struct regenerate_op {
    struct generate *g;
    struct invocation *inv; /* the router's, alive until its reply finishes */
};

/* An image no longer in memory (a restart, or more than GEN_IMAGES_KEPT
 * since): its stored row, unless pruned or its prompt erased. */
static void regenerate__loaded(int rc, const struct store_image *img, void *data)
{
    struct regenerate_op *op = data;
    struct generate *g = op->g;
    g->njobs--;
    if (g->closing)
        regenerate__refuse(op->inv, MSG_GEN_TOO_OLD);
    else if (rc < 0 || img->prompt == NULL)
        regenerate__refuse(op->inv, MSG_GEN_TOO_OLD);
    else
        regenerate__run(g, op->inv, img->prompt, img->model, img->size);
    free(op);
    generate__maybe_free(g);
}

void generate_regenerate(struct generate *g, struct invocation *inv, const char *gid)
{
    struct gen_image *img = generate__image_find(g, gid);
    if (img != NULL) {
        regenerate__run(g, inv, img->prompt, img->model, img->size);
        return;
    }
    struct store *store = generate__conv_store(g);
    struct regenerate_op *op = store != NULL && !g->closing ? calloc(1, sizeof(*op)) : NULL;
    if (op == NULL) {
        regenerate__refuse(inv, MSG_GEN_TOO_OLD);
        return;
    }
    op->g = g;
    op->inv = inv;
    g->njobs++;
    if (gallery_get(store, gid, false, regenerate__loaded, op) < 0) {
        g->njobs--;
        free(op);
        regenerate__refuse(inv, MSG_GEN_TOO_OLD);
    }
}

static void images__pruned(int rc, int64_t removed, void *data)
{
    struct generate *g = data;
    (void)rc;
    (void)removed;
    g->njobs--;
    generate__maybe_free(g);
}

int generate_images_maintain(struct generate *g, void (*cb)(int rc, int64_t removed, void *data),
                             void *data)
{
    struct store *store = generate__conv_store(g);
    if (store == NULL || g->closing)
        return HB_ECANCELED;
    const struct catalog_limits *l = catalog_limits_get(g->cat);
    int64_t before = generate__now(g) - l->image_retention_ms;
    if (cb == NULL) {
        g->njobs++;
        int rc = gallery_prune(store, before, l->images_max, GEN_NS_IMAGE, images__pruned, g);
        if (rc < 0)
            g->njobs--;
        return rc;
    }
    return gallery_prune(store, before, l->images_max, GEN_NS_IMAGE, cb, data);
}

void generate__images_forget(struct generate *g, const char *owner)
{
    char wallet[WALLET_ACCOUNT_MAX];
    for (size_t i = 0; i < GEN_IMAGES_KEPT; i++) {
        struct gen_image *img = &g->images[i];
        if (img->prompt == NULL)
            continue;
        invocation_wallet(&img->owner, wallet, sizeof(wallet));
        if (strcmp(wallet, owner) == 0) {
            free(img->prompt);
            img->prompt = NULL;
        }
    }
}

struct upvote_op {
    struct generate *g;
    struct reply *reply;
    char gid[16];
    char voter[WALLET_ACCOUNT_MAX];
    char ref[COMMAND_BUTTON_REF_MAX + 1];
    struct invocation presser;
    char owner_user[COMMAND_ID_MAX];     /* who made the image */
    char model[64];                      /* which model made it */
    char scope_key[COMMAND_ID_MAX + 16]; /* "<platform>:<group>", or "" for a DM image */
};

static void upvote__end(struct upvote_op *op, const char *text)
{
    reply_text(op->reply, true, "%s", text);
    reply_finish(op->reply);
    free(op);
}

/* The vote is counted, or was already, or could not be stored. */
static void upvote__cast(int rc, void *data)
{
    struct upvote_op *op = data;
    if (rc == 0)
        notices_upvote(op->g->core->notices, op->presser.platform, op->owner_user);
    upvote__end(op, rc == 0            ? MSG_UPVOTE_DONE
                    : rc == HB_EEXISTS ? MSG_UPVOTE_AGAIN
                                       : MSG_UPVOTE_FAILED);
}

static void upvote__owner_loaded(int rc, const char *value, void *data)
{
    struct upvote_op *op = data;
    if (rc < 0 || value == NULL) {
        upvote__end(op, MSG_UPVOTE_UNKNOWN);
        return;
    }
    /* "<platform>|<user>|<scope>|<scope id>|<model>" */
    struct invocation owner;
    memset(&owner, 0, sizeof(owner));
    int platform = 0, scope = 0;
    char user[COMMAND_ID_MAX] = "", scope_id[COMMAND_ID_MAX] = "";
    const char *p = value;
    platform = atoi(p);
    p = strchr(p, '|');
    if (p != NULL) {
        size_t n = strcspn(++p, "|");
        snprintf(user, sizeof(user), "%.*s", (int)n, p);
        p = strchr(p, '|');
    }
    if (p != NULL) {
        scope = atoi(++p);
        p = strchr(p, '|');
    }
    if (p != NULL) {
        size_t n = strcspn(++p, "|");
        snprintf(scope_id, sizeof(scope_id), "%.*s", (int)n, p);
    }
    owner.platform = (enum command_platform)platform;
    owner.scope = (enum command_scope)scope;
    snprintf(op->owner_user, sizeof(op->owner_user), "%s", user);
    const char *model = strrchr(value, '|');
    snprintf(op->model, sizeof(op->model), "%s", model != NULL ? model + 1 : "");
    if (owner.scope == COMMAND_SCOPE_GROUP && scope_id[0] != '\0')
        snprintf(op->scope_key, sizeof(op->scope_key), "%s:%s",
                 command_platform_name(owner.platform), scope_id);
    snprintf(owner.user_id, sizeof(owner.user_id), "%s", user);
    snprintf(owner.scope_id, sizeof(owner.scope_id), "%s", scope_id);
    snprintf(owner.button_ref, sizeof(owner.button_ref), "%s", op->ref);
    char payload[32];
    if (button_ref_check(&owner, op->g->core->button_key, payload, sizeof(payload)) != 0) {
        upvote__end(op, MSG_UPVOTE_INVALID);
        return;
    }
    /* Never one's own: neither the maker nor an identity linked to the
     * maker's wallet (core/link.h) upvotes it. */
    char owner_wallet[WALLET_ACCOUNT_MAX];
    if ((owner.platform == op->presser.platform &&
         strcmp(owner.user_id, op->presser.user_id) == 0) ||
        (wallet_account(op->g->core, &owner, owner_wallet, sizeof(owner_wallet)) == 0 &&
         strcmp(owner_wallet, op->voter) == 0)) {
        upvote__end(op, MSG_UPVOTE_OWN);
        return;
    }
    /* One store job checks the voter's mark and counts the vote in the
     * group's boards (a DM image is on none): two presses at once count
     * once, and a failed commit leaves no half-recorded vote. */
    struct ledger *ledger = op->g->core->ledger;
    int64_t now = generate__now(op->g);
    char contest[CONTEST_PERIOD_MAX]; /* a contest running here counts it too */
    bool in_contest =
        op->scope_key[0] != '\0' &&
        contests_vote_period(op->g->core->contests, op->scope_key, now, contest, sizeof(contest));
    struct votes_cast vote = {
        .scope = op->scope_key,
        .image = op->gid,
        .voter = op->voter,
        .creator = op->owner_user,
        .model = op->model,
        .now_ms = now,
        .contest = in_contest ? contest : NULL,
        .contest_weight =
            in_contest ? contests_vote_weight(op->g->core->contests, &op->presser) : 1};
    if (ledger == NULL || votes_cast(ledger_store(ledger), &vote, upvote__cast, op) < 0)
        upvote__end(op, MSG_UPVOTE_FAILED);
}

void generate_upvote(struct generate *g, struct invocation *inv, const char *gid,
                     const char *button_ref)
{
    struct upvote_op *op = calloc(1, sizeof(*op));
    struct ledger *ledger = g->core->ledger;
    if (op == NULL || ledger == NULL) {
        free(op);
        reply_text(inv->reply, true, MSG_UPVOTE_FAILED);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    op->g = g;
    op->reply = inv->reply;
    inv->reply = NULL;
    snprintf(op->gid, sizeof(op->gid), "%s", gid);
    snprintf(op->ref, sizeof(op->ref), "%s", button_ref);
    op->presser = *inv;
    memset(op->presser.opts, 0, sizeof(op->presser.opts));
    wallet_account(g->core, inv, op->voter, sizeof(op->voter));
    if (state_get(ledger_store(ledger), GEN_NS_IMAGE, gid, upvote__owner_loaded, op) < 0)
        upvote__end(op, MSG_UPVOTE_FAILED);
}

void generate__images_free(struct generate *g)
{
    for (size_t i = 0; i < GEN_IMAGES_KEPT; i++)
        free(g->images[i].prompt);
}
