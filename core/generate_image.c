/* Kept images: the recent images Regenerate can re-run (prompt in memory
 * only), and upvotes of an image by other members, counted durably for the
 * leaderboards (core/votes.c). */
#include "core/notice.h"
#include "core/generate_internal.h"

#include "core/button.h"
#include "core/contest.h"
#include "core/core.h"
#include "core/messages.h"
#include "core/state.h"
#include "core/votes.h"
#include "core/wallet.h"
#include "base/error.h"
#include "base/hex.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* The owner and model survive a restart (for upvotes); the prompt does
     * not leave memory. */
    struct ledger *ledger = g->core->ledger;
    if (ledger != NULL) {
        char value[COMMAND_ID_MAX * 3 + 160];
        snprintf(value, sizeof(value), "%d|%s|%d|%s|%s", (int)job->who.platform, job->who.user_id,
                 (int)job->who.scope, job->who.scope_id, img->model);
        state_put(ledger_store(ledger), GEN_NS_IMAGE, img->gid, value, NULL, NULL);
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

void generate_regenerate(struct generate *g, struct invocation *inv, const char *gid)
{
    struct gen_image *img = generate__image_find(g, gid);
    if (img == NULL) {
        reply_text(inv->reply, true, MSG_GEN_TOO_OLD);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    char *prompt = strdup(img->prompt);
    char model[128], size[24];
    snprintf(model, sizeof(model), "%s", img->model);
    snprintf(size, sizeof(size), "%s", img->size);
    if (prompt == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    struct generate_request req = {
        .modality = PROVIDER_IMAGE, .prompt = prompt, .model = model, .size = size};
    generate_submit(g, inv, &req);
    free(prompt);
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
