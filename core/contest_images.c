/* The images of contests (core/contest_images.h). */
#include "core/contest_images.h"

#include "base/error.h"
#include "base/log.h"
#include "core/core.h"
#include "core/gallery.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/notify.h"
#include "core/votes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- /contest: the entries' thumbnails ----------------------------------------- */

struct contest_show {
    struct reply *reply;
    struct store_vote rows[STORE_IMAGE_PAGE_MAX];
    size_t n;
    void (*done)(void *data);
    void *data;
};

static void contest__thumbs(int rc, const struct store_image *imgs, size_t n, void *data)
{
    struct contest_show *op = data;
    if (rc < 0)
        log_warn("contest.thumbnails_failed", "error=%s", hb_strerror(rc));
    for (size_t i = 0; i < n; i++) {
        size_t place = 0;
        while (place < op->n && strcmp(op->rows[place].image, imgs[i].id) != 0)
            place++;
        if (place == op->n)
            continue;
        const struct store_vote *v = &op->rows[place];
        char caption[256];
        snprintf(caption, sizeof(caption), MSG_CONTEST_THUMB, place + 1,
                 v->creator[0] != '\0' ? v->creator : "-", (long long)v->count,
                 v->count == 1 ? "" : "s");
        struct reply_image image = {
            .data = imgs[i].data,
            .len = imgs[i].len,
            .mime = imgs[i].mime,
            .filename = strcmp(imgs[i].mime, "image/png") == 0 ? "entry.png" : "entry.jpg"};
        struct reply_msg msg = {.stage = REPLY_FINAL, .text = caption, .image = &image};
        reply_send(op->reply, &msg);
    }
    op->done(op->data);
    free(op);
}

int contest_images_show(struct core *core, struct reply *reply, const struct store_vote *rows,
                        size_t n, void (*done)(void *data), void *data)
{
    if (core->ledger == NULL || n == 0 || n > STORE_IMAGE_PAGE_MAX || done == NULL)
        return HB_EINVAL;
    struct contest_show *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    const char *ids[STORE_IMAGE_PAGE_MAX];
    memcpy(op->rows, rows, n * sizeof(rows[0]));
    for (size_t i = 0; i < n; i++)
        ids[i] = op->rows[i].image;
    op->reply = reply;
    op->n = n;
    op->done = done;
    op->data = data;
    int rc = gallery_get_many(ledger_store(core->ledger), ids, n, STORE_IMAGE_THUMB,
                              contest__thumbs, op);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- the results: the winning images ---------------------------------------- */

struct contest_post {
    struct core *core;
    struct contest c;
    struct contest_payment pay[CONTEST_WINNERS_MAX];
    size_t npay;
    char ids[CONTEST_WINNERS_MAX][STORE_TAG_SIZE]; /* each winner's best entry, "" unknown */
};

static void contest__winners_read(int rc, const struct store_image *imgs, size_t n, void *data)
{
    struct contest_post *op = data;
    const struct core_host_ops *h = op->core->host_ops;
    if (rc < 0)
        log_warn("contest.images_not_read", "error=%s", hb_strerror(rc));
    struct notify_target to;
    contest_results_target(&op->c, &to);
    for (size_t i = 0; i < n && h != NULL && h->notify_msg != NULL; i++) {
        size_t place = 0;
        while (place < op->npay && strcmp(op->ids[place], imgs[i].id) != 0)
            place++;
        if (place == op->npay)
            continue;
        const struct contest_payment *p = &op->pay[place];
        char caption[256];
        bool discord = op->c.platform == COMMAND_PLATFORM_DISCORD; /* a mention shows the name */
        char who[STORE_ID_SIZE + 8];
        snprintf(who, sizeof(who), "%s%s%s", discord ? "<@" : "", p->creator, discord ? ">" : "");
        snprintf(caption, sizeof(caption), MSG_CONTEST_WINNER_IMAGE, place + 1, who,
                 (long long)p->upvotes, p->upvotes == 1 ? "" : "s");
        struct reply_image image = {
            .data = imgs[i].data,
            .len = imgs[i].len,
            .mime = imgs[i].mime,
            .filename = strcmp(imgs[i].mime, "image/png") == 0 ? "winner.png" : "winner.jpg"};
        struct reply_msg msg = {.stage = REPLY_FINAL, .text = caption, .image = &image};
        int sent = h->notify_msg(op->core->host, &to, &msg);
        if (sent < 0)
            log_warn("contest.image_not_posted", "contest=%lld place=%zu error=%s",
                     (long long)op->c.id, place + 1, hb_strerror(sent));
    }
    free(op);
}

static void contest__board_read(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct contest_post *op = data;
    const char *ids[CONTEST_WINNERS_MAX];
    size_t nids = 0;
    /* A winner places with their best entry: the first of theirs on the
     * board, as contest_payout chose it. */
    for (size_t i = 0; rc == 0 && i < op->npay; i++) {
        for (size_t j = 0; j < n; j++) {
            if (strcmp(rows[j].creator, op->pay[i].creator) == 0) {
                snprintf(op->ids[i], sizeof(op->ids[i]), "%s", rows[j].image);
                ids[nids++] = op->ids[i];
                break;
            }
        }
    }
    if (rc < 0 || nids == 0 || op->core->ledger == NULL ||
        gallery_get_many(ledger_store(op->core->ledger), ids, nids, STORE_IMAGE_FULL,
                         contest__winners_read, op) < 0) {
        if (rc < 0)
            log_warn("contest.images_not_read", "error=%s", hb_strerror(rc));
        free(op);
    }
}

void contest_images_post(struct core *core, const struct contest *c,
                         const struct contest_payment *pay, size_t npay)
{
    const struct core_host_ops *h = core->host_ops;
    if (h == NULL || h->notify_msg == NULL || npay == 0 || core->ledger == NULL)
        return;
    struct contest_post *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->core = core;
    op->c = *c;
    op->npay = npay < CONTEST_WINNERS_MAX ? npay : CONTEST_WINNERS_MAX;
    memcpy(op->pay, pay, op->npay * sizeof(pay[0]));
    if (contest_board(ledger_store(core->ledger), &op->c, VOTES_TOP_MAX, contest__board_read, op) <
        0)
        free(op);
}
