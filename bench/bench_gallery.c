/* /gallery and /contest of a group with 100,000 generations: every image
 * kept in the store (small bytes: a page reads only its own rows' bytes,
 * so their size does not change what the query walks), each upvoted in
 * this week's, all time's and a running contest's period, then the
 * answers timed through the command handlers as the router runs them,
 * from the call to the reply's finish (the trip to the store's thread
 * included, the platform's upload not): this week's newest and most
 * upvoted first pages, a page deep into all time, and /contest with its
 * standings, prize pool and five thumbnails. Durable settings (WAL,
 * synchronous=FULL) in $TMPDIR. The target: under 5 ms an answer. */
#include "bench/bench.h"

#include "base/error.h"
#include "core/button.h"
#include "core/contest.h"
#include "core/core.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/votes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GALLERY_IMAGES 100000
#define GALLERY_READS 500
#define GALLERY_NOW_MS 1796457600000LL /* 2026-12-05T08:00:00Z, a Saturday */
#define GALLERY_SCOPE "discord:1000"
#define GALLERY_CONTEST_ID (GALLERY_NOW_MS - 4 * 86400000LL) /* since Tuesday */

/* A reply handle that counts what a handler sends and sees it finish. */
struct gallery_reply {
    struct reply reply;
    size_t msgs;
    size_t images;
    bool finished;
};

static int gallery__send(struct reply *r, const struct reply_msg *msg)
{
    struct gallery_reply *g = r->data;
    g->msgs++;
    if (msg->image != NULL)
        g->images++;
    return 0;
}

static void gallery__finish(struct reply *r)
{
    ((struct gallery_reply *)r->data)->finished = true;
}

static const struct reply_ops gallery_reply_ops = {.send = gallery__send,
                                                   .finish = gallery__finish};

static int64_t gallery__clock(void *data)
{
    (void)data;
    return GALLERY_NOW_MS;
}

/* Fill the database: the images, and their votes in three periods. */
static int gallery__fill(const char *path, const struct contest *c)
{
    int rc = 0;
    struct store_options o = {.path = path};
    struct store *s = store_new(&o, &rc);
    if (s == NULL)
        return rc;
    char week[VOTES_PERIOD_MAX], all[VOTES_PERIOD_MAX], contest[CONTEST_PERIOD_MAX];
    votes_period(VOTES_WEEK, GALLERY_NOW_MS, week, sizeof(week));
    votes_period(VOTES_ALL, GALLERY_NOW_MS, all, sizeof(all));
    contest_period(c, contest, sizeof(contest));
    static unsigned char data[256], thumb[64];
    memset(data, 0xa5, sizeof(data));
    memset(thumb, 0x5a, sizeof(thumb));
    struct store_txn *txn = NULL;
    rc = store_txn_begin(s, true, &txn);
    for (unsigned i = 0; rc == 0 && i < GALLERY_IMAGES; i++) {
        struct store_image img = {.platform = COMMAND_PLATFORM_DISCORD,
                                  /* the whole week so far, a few seconds apart */
                                  .created_at = GALLERY_NOW_MS - (int64_t)(i + 1) * 4000,
                                  .prompt = "a prompt",
                                  .data = data,
                                  .len = sizeof(data),
                                  .thumb = thumb,
                                  .thumb_len = sizeof(thumb)};
        snprintf(img.id, sizeof(img.id), "img%06u", i);
        snprintf(img.scope, sizeof(img.scope), GALLERY_SCOPE);
        snprintf(img.user_id, sizeof(img.user_id), "%u", 100000 + i % 5000);
        snprintf(img.owner, sizeof(img.owner), "discord:%u", 100000 + i % 5000);
        snprintf(img.scope_id, sizeof(img.scope_id), "1000");
        snprintf(img.model, sizeof(img.model), "bench-image");
        snprintf(img.size, sizeof(img.size), "1024x1024");
        snprintf(img.mime, sizeof(img.mime), "image/png");
        rc = store_txn_image_put(txn, &img);
        /* Upvotes: a few images many, most one or two. */
        struct store_vote v = {.count = i % 1000 == 0 ? 50 + i / 1000 : 1 + i % 3};
        memcpy(v.image, img.id, sizeof(v.image));
        memcpy(v.creator, img.user_id, sizeof(v.creator));
        memcpy(v.model, img.model, sizeof(v.model));
        if (rc == 0)
            rc = store_txn_vote_add(txn, GALLERY_SCOPE, week, &v);
        if (rc == 0)
            rc = store_txn_vote_add(txn, GALLERY_SCOPE, all, &v);
        if (rc == 0)
            rc = store_txn_vote_add(txn, GALLERY_SCOPE, contest, &v);
    }
    if (txn != NULL) {
        int end = store_txn_end(txn, rc == 0);
        rc = rc < 0 ? rc : end;
    }
    store_free(s);
    return rc;
}

/* The member who asks, in the group (Discord server 1000, channel 2000). */
static void gallery__asker(struct invocation *inv)
{
    memset(inv, 0, sizeof(*inv));
    inv->platform = COMMAND_PLATFORM_DISCORD;
    inv->scope = COMMAND_SCOPE_GROUP;
    snprintf(inv->user_id, sizeof(inv->user_id), "42");
    snprintf(inv->scope_id, sizeof(inv->scope_id), "1000");
    snprintf(inv->channel_id, sizeof(inv->channel_id), "2000");
}

/* Run the handler GALLERY_READS times as the router would (args: the
 * period and order options, or NULL); report the mean and the 99th
 * percentile in ms as name_mean and name_p99. */
static int gallery__answers(uv_loop_t *loop, struct core *core,
                            void (*handler)(struct core *, struct invocation *), const char *period,
                            const char *order, const char *button, size_t want_images,
                            const char *name)
{
    static double ms[GALLERY_READS];
    for (int r = 0; r < GALLERY_READS; r++) {
        struct gallery_reply rep = {.reply = {.ops = &gallery_reply_ops}};
        rep.reply.data = &rep;
        struct invocation inv;
        gallery__asker(&inv);
        inv.opts[0] = (struct command_value){
            .set = period != NULL, .type = COMMAND_OPT_STRING, .string = (char *)period};
        inv.opts[1] = (struct command_value){
            .set = order != NULL, .type = COMMAND_OPT_STRING, .string = (char *)order};
        if (button != NULL)
            snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", button);
        inv.reply = &rep.reply;
        double t0 = bench_now();
        handler(core, &inv);
        while (!rep.finished)
            uv_run(loop, UV_RUN_ONCE);
        ms[r] = (bench_now() - t0) * 1000;
        if (rep.images != want_images) {
            fprintf(stderr, "bench gallery: %s answered with %zu images, not %zu\n", name,
                    rep.images, want_images);
            return -1;
        }
    }
    bench_report_ms(name, ms, GALLERY_READS);
    return 0;
}

static void gallery__started(int rc, void *data)
{
    *(int *)data = rc == 0 ? 1 : -1;
}

static void gallery__closed(void *data)
{
    *(bool *)data = true;
}

/* A Next button of /gallery all new, for the asker, to page 50. */
static int gallery__deep_button(struct core *core, char *ref)
{
    struct invocation asker;
    gallery__asker(&asker);
    return button_ref_make(ref, core->button_key, "gal", "an.50", &asker);
}

int bench_gallery(void)
{
    int rc = -1;
    char *dir = bench_tmpdir_new();
    if (dir == NULL)
        return -1;
    char path[512];
    snprintf(path, sizeof(path), "%s/gallery.db", dir);
    struct contest c = {.platform = COMMAND_PLATFORM_DISCORD,
                        .scope_id = "1000",
                        .channel_id = "2000",
                        .id = GALLERY_CONTEST_ID,
                        .end_ms = GALLERY_NOW_MS + 2 * 86400000LL};
    double t0 = bench_now();
    if (gallery__fill(path, &c) < 0) {
        fprintf(stderr, "bench gallery: the images could not be written\n");
        goto out;
    }
    bench_report("gallery_fill_100k_images_sec", bench_now() - t0, "s");
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        goto out;
    int lrc = 0;
    struct ledger_options opts = {.path = path};
    struct ledger *ledger = ledger_new(&loop, &opts, &lrc);
    if (ledger == NULL)
        goto loop;
    struct core core;
    memset(&core, 0, sizeof(core));
    core.ledger = ledger;
    core.clock = (struct clock){.now_ms = gallery__clock};
    memset(core.button_key, 7, sizeof(core.button_key));
    core.contests = contests_new(&core);
    int started = 0;
    char deep[COMMAND_BUTTON_REF_MAX + 1];
    if (core.contests == NULL || contests_start(core.contests, &c, gallery__started, &started) < 0)
        goto close;
    while (started == 0)
        uv_run(&loop, UV_RUN_ONCE);
    if (started < 0 || gallery__deep_button(&core, deep) < 0)
        goto close;
    if (gallery__answers(&loop, &core, cmd_gallery, "week", "new", NULL, 4,
                         "gallery_week_new_100k_images") < 0 ||
        gallery__answers(&loop, &core, cmd_gallery, "week", "top", NULL, 4,
                         "gallery_week_top_100k_images") < 0 ||
        gallery__answers(&loop, &core, cmd_gallery_button, NULL, NULL, deep, 4,
                         "gallery_all_new_page50_100k_images") < 0 ||
        gallery__answers(&loop, &core, cmd_contest, NULL, NULL, NULL, 5, "contest_100k_entries") <
            0)
        goto close;
    rc = 0;
close:;
    if (core.contests != NULL)
        contests_free(core.contests);
    bool closed = false;
    ledger_close(ledger, gallery__closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
loop:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
out:
    bench_tmpdir_remove(dir);
    free(dir);
    return rc;
}
