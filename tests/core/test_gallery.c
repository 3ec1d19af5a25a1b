/* Stored results and /gallery (core/gallery.h, core/cmd_gallery.c) through
 * the generation engine and its real store: an image outlives a restart of
 * the engine and its store (Regenerate still runs, /gallery still shows
 * it), /forget erases the stored prompt, retention prunes by age and by
 * count, and /gallery pages through a group's images with their Upvote
 * buttons, never showing a prompt. */
#include "core/state.h"
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "base/error.h"
#include "core/chart.h"
#include "core/commands.h"
#include "core/contest.h"
#include "core/gallery.h"
#include "core/handlers.h"
#include "core/notify.h"
#include "core/thumb.h"
#include "core/votes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fixture, with the commands' clock the engine's (gt->wall). */
static void gal_init(struct gt *gt, const struct catalog_limits *limits)
{
    gt_init(gt, limits, NULL, 0, 0);
    gt->core.clock = (struct clock){.now_ms = gt_clock, .data = gt};
}

/* An image made by user in group scope from prompt; its Regenerate and
 * Upvote refs go to regen and up (either may be NULL). */
static void gal_image(struct gt *gt, const char *user, const char *scope, const char *prompt,
                      char *regen, char *up)
{
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, user, scope);
    struct generate_request req = {
        .modality = PROVIDER_IMAGE, .prompt = prompt, .model = "img-b64"};
    generate_submit(gt->g, &inv, &req);
    gt_wait(gt, &cap.finished, 1);
    assert_int_equal(cap.image_bytes, sizeof(png_bytes) - 1);
    assert_int_equal(cap.nbuttons, 2);
    if (regen != NULL)
        snprintf(regen, COMMAND_BUTTON_REF_MAX + 1, "%s", cap.buttons[0].ref);
    if (up != NULL)
        snprintf(up, COMMAND_BUTTON_REF_MAX + 1, "%s", cap.buttons[1].ref);
    reply_capture_close(&cap);
}

/* A button press by user in scope. */
static void gal_press(struct gt *gt, struct reply_capture *cap, const char *user, const char *scope,
                      const char *ref)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, scope);
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", ref);
    if (strncmp(ref, "gal:", 4) == 0)
        cmd_gallery_button(&gt->core, &inv);
    else
        cmd_generate_button(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
}

/* /gallery with its argument text ("" for none) by user in scope (NULL: a
 * DM), parsed as a text platform parses it. */
static const char *gal_show(struct gt *gt, struct reply_capture *cap, const char *user,
                            const char *scope, const char *args)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, scope);
    inv.spec = commands_find("gallery");
    assert_non_null(inv.spec);
    char err[256];
    assert_int_equal(command_args_parse(inv.spec, args, &inv, err, sizeof(err)), 0);
    cmd_gallery(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    invocation_clear(&inv);
    return cap->text != NULL ? cap->text : "";
}

/* Wait until every store job queued so far has committed. */
static void gal_barrier_cb(int rc, const char *value, void *data)
{
    (void)rc;
    (void)value;
    (*(int *)data)++;
}

static void gal_barrier(struct gt *gt)
{
    int done = 0;
    assert_int_equal(
        state_get(ledger_store(gt->lt.ledger), "test", "barrier", gal_barrier_cb, &done), 0);
    gt_wait(gt, &done, 1);
}

static void test_images_outlive_restart(void **state)
{
    (void)state;
    struct gt gt;
    gal_init(&gt, NULL);
    char regen[COMMAND_BUTTON_REF_MAX + 1], up[COMMAND_BUTTON_REF_MAX + 1];
    gal_image(&gt, "u1", "g9", "a secret red cat", regen, up);
    gal_barrier(&gt);
    assert_int_equal(test_sql_int(gt.lt.path,
                                  "SELECT count(*) FROM images WHERE scope = 'console:g9'"
                                  " AND owner = 'console:u1' AND prompt IS NOT NULL"),
                     1);

    gt_restart(&gt);
    gt.wall += 60000; /* the regenerated image is the newer */
    struct reply_capture p;
    /* Not the owner's: refused, as before the restart. */
    gal_press(&gt, &p, "u2", "g9", regen);
    assert_has(&p, "not yours");
    reply_capture_close(&p);
    /* The owner's Regenerate runs from the stored prompt, charged again. */
    gal_press(&gt, &p, "u1", "g9", regen);
    assert_int_equal(p.image_bytes, sizeof(png_bytes) - 1);
    assert_has(&p, "cost 7 credits");
    reply_capture_close(&p);
    gal_barrier(&gt);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM images"), 2);

    /* The gallery shows both, with their upvote buttons, and no prompt. */
    struct reply_capture cap;
    const char *t = gal_show(&gt, &cap, "viewer", "g9", "");
    assert_non_null(strstr(t, "Gallery here this week (since Monday, UTC), newest first, page 1:"));
    assert_non_null(strstr(t, "1. By u1 with img-b64: 0 upvotes"));
    assert_non_null(strstr(t, "2. By u1 with img-b64: 0 upvotes"));
    assert_null(strstr(t, "secret"));
    assert_int_equal(cap.nmsgs, 3); /* the header, then one upload per image */
    assert_int_equal(cap.image_bytes, sizeof(png_bytes) - 1);
    assert_int_equal(cap.nbuttons, 1);
    assert_string_equal(cap.buttons[0].label, "Upvote");
    char gallery_up[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(gallery_up, sizeof(gallery_up), "%s", cap.buttons[0].ref);
    reply_capture_close(&cap);
    /* Its Upvote is the generation's own: the owner cannot, others once. */
    gal_press(&gt, &p, "u1", "g9", gallery_up);
    assert_has(&p, "your own");
    reply_capture_close(&p);
    gal_press(&gt, &p, "u2", "g9", gallery_up);
    assert_has(&p, "Upvoted");
    reply_capture_close(&p);
    gal_press(&gt, &p, "u2", "g9", up); /* the same image's button from its generation */
    assert_has(&p, "already upvoted");
    reply_capture_close(&p);
    gal_press(&gt, &p, "u3", "g9", up);
    assert_has(&p, "Upvoted");
    reply_capture_close(&p);
    t = gal_show(&gt, &cap, "viewer", "g9", "all top");
    assert_non_null(strstr(t, "Gallery here so far, most upvoted first, page 1:"));
    assert_non_null(strstr(t, "1. By u1 with img-b64: 2 upvotes"));
    assert_int_equal(cap.nmsgs, 2); /* the other has no upvote: not on top */
    reply_capture_close(&cap);

    /* /forget erases the stored prompts: no Regenerate after a restart. */
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", "g9");
    cmd_forget(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gal_barrier(&gt);
    assert_int_equal(
        test_sql_int(gt.lt.path, "SELECT count(*) FROM images WHERE prompt IS NOT NULL"), 0);
    gal_press(&gt, &p, "u1", "g9", regen); /* from memory: erased there too */
    assert_has(&p, "too old to regenerate");
    reply_capture_close(&p);
    gt_restart(&gt);
    gal_press(&gt, &p, "u1", "g9", regen);
    assert_has(&p, "too old to regenerate");
    reply_capture_close(&p);
    /* The images stay in the gallery. */
    t = gal_show(&gt, &cap, "viewer", "g9", "");
    assert_non_null(strstr(t, "2. By u1"));
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 86);
    gt_done(&gt);
}

struct gal_pruned {
    int done;
    int rc;
    int64_t removed;
};

static void gal_pruned_cb(int rc, int64_t removed, void *data)
{
    struct gal_pruned *p = data;
    p->rc = rc;
    p->removed = removed;
    p->done++;
}

static int64_t gal_prune(struct gt *gt)
{
    struct gal_pruned p = {0};
    assert_int_equal(generate_images_maintain(gt->g, gal_pruned_cb, &p), 0);
    gt_wait(gt, &p.done, 1);
    assert_int_equal(p.rc, 0);
    return p.removed;
}

/* Retention: past max_images the oldest go, past the retention all; a
 * pruned image is gone from the gallery and from Regenerate after a
 * restart. */
static void test_images_pruned(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits limits = {.image_retention_ms = 2 * 86400000LL, .images_max = 2};
    gal_init(&gt, &limits);
    gt.wall = 1796472000000LL; /* Saturday 2026-12-05 12:00 UTC */
    char regen[COMMAND_BUTTON_REF_MAX + 1];
    gal_image(&gt, "u1", "g9", "first", regen, NULL);
    gt.wall += 3600000;
    gal_image(&gt, "u1", "g9", "second", NULL, NULL);
    gt.wall += 3600000;
    gal_image(&gt, "u2", "g9", "third", NULL, NULL);
    gal_barrier(&gt);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM images"), 3);
    /* Each image's owner and model (its Upvote button reads them) go with
     * it, not stay behind for ever. */
    static const char owners_left[] = "SELECT count(*) FROM state WHERE ns = 'gen.image'"
                                      " AND key NOT IN (SELECT id FROM images)";
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM state WHERE ns = 'gen.image'"),
                     3);
    assert_int_equal(gal_prune(&gt), 1); /* the oldest, past max_images */
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM images WHERE prompt = 'first'"),
                     0);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM state WHERE ns = 'gen.image'"),
                     2);
    assert_int_equal(test_sql_int(gt.lt.path, owners_left), 0);
    assert_int_equal(gal_prune(&gt), 0);
    gt_restart(&gt);
    struct reply_capture p;
    gal_press(&gt, &p, "u1", "g9", regen);
    assert_has(&p, "too old to regenerate");
    reply_capture_close(&p);
    struct reply_capture cap;
    const char *t = gal_show(&gt, &cap, "viewer", "g9", "day");
    assert_non_null(strstr(t, "1. By u2"));
    assert_non_null(strstr(t, "2. By u1"));
    assert_null(strstr(t, "3. By"));
    reply_capture_close(&cap);
    gt.wall += 2 * 86400000LL + 60000; /* past the retention */
    assert_int_equal(gal_prune(&gt), 2);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM images"), 0);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT count(*) FROM state WHERE ns = 'gen.image'"),
                     0);
    t = gal_show(&gt, &cap, "viewer", "g9", "all");
    assert_string_equal(t, "No images were made here so far. Make one with /imagine.");
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* Pages of four with Previous and Next for the asker only; the periods
 * and orders; a DM, an empty top and bad arguments answered clearly. */
static void test_gallery_pages(void **state)
{
    (void)state;
    struct gt gt;
    gal_init(&gt, NULL);
    gt.wall = 1796472000000LL; /* Saturday 2026-12-05 12:00 UTC */
    gal_image(&gt, "u1", "g1", "last week", NULL, NULL);
    gt.wall += 7 * 86400000LL; /* Saturday 2026-12-12: a new week, the same month */
    for (int i = 0; i < 6; i++) {
        char prompt[32];
        snprintf(prompt, sizeof(prompt), "picture %d", i);
        gal_image(&gt, i % 2 == 0 ? "u1" : "u2", "g1", prompt, NULL, NULL);
        gt.wall += 60000;
    }
    gal_image(&gt, "u3", "g2", "another group", NULL, NULL);
    gal_barrier(&gt);

    struct reply_capture cap;
    const char *t = gal_show(&gt, &cap, "viewer", "g1", "week new");
    assert_non_null(strstr(t, "page 1:"));
    assert_non_null(strstr(t, "4. By u1"));
    assert_null(strstr(t, "5. By"));
    assert_null(strstr(t, "picture"));
    assert_int_equal(cap.nmsgs, 6); /* header, four images, the page buttons */
    assert_non_null(strstr(t, "\nPage 1."));
    assert_int_equal(cap.nbuttons, 1);
    assert_string_equal(cap.buttons[0].label, "Next page");
    char next[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(next, sizeof(next), "%s", cap.buttons[0].ref);
    reply_capture_close(&cap);

    gal_press(&gt, &cap, "intruder", "g1", next);
    assert_string_equal(cap.text, "These buttons belong to whoever asked: run /gallery yourself.");
    reply_capture_close(&cap);
    gal_press(&gt, &cap, "viewer", "g1", next);
    t = cap.text;
    assert_non_null(strstr(t, "page 2:"));
    assert_non_null(strstr(t, "5. By u2"));
    assert_non_null(strstr(t, "6. By u1"));
    assert_null(strstr(t, "7. By"));
    assert_int_equal(cap.nbuttons, 1);
    assert_string_equal(cap.buttons[0].label, "Previous page");
    reply_capture_close(&cap);

    t = gal_show(&gt, &cap, "viewer", "g1", "month");
    assert_non_null(strstr(t, "this month (UTC), newest first"));
    assert_int_equal(cap.nbuttons, 1); /* seven images: a next page */
    reply_capture_close(&cap);
    t = gal_show(&gt, &cap, "viewer", "g2", "day");
    assert_non_null(strstr(t, "1. By u3"));
    assert_int_equal(cap.nmsgs, 2); /* one page: no page buttons */
    reply_capture_close(&cap);
    t = gal_show(&gt, &cap, "viewer", "g1", "week top");
    assert_string_equal(t, "No image made here was upvoted this week (since Monday, UTC). Upvote "
                           "one with its Upvote button, or see /gallery new.");
    reply_capture_close(&cap);
    t = gal_show(&gt, &cap, "viewer", NULL, "");
    assert_string_equal(t, "Galleries belong to servers and groups: use /gallery there.");
    reply_capture_close(&cap);

    /* Bad arguments never reach the handler: the parser says what fits. */
    struct invocation inv;
    gt_inv(&inv, &cap, "viewer", "g1");
    char err[256];
    assert_int_equal(
        command_args_parse(commands_find("gallery"), "fortnight", &inv, err, sizeof(err)),
        HB_EINVAL);
    assert_string_equal(err, "Option `period` must be one of: day, week, month, all.");
    invocation_clear(&inv);
    assert_int_equal(
        command_args_parse(commands_find("gallery"), "week best", &inv, err, sizeof(err)),
        HB_EINVAL);
    assert_string_equal(err, "Option `order` must be one of: new, top.");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* The width and height a PNG's IHDR says. */
static void png_size(const unsigned char *png, size_t len, unsigned *w, unsigned *h)
{
    assert_true(len > 24);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    *w = (unsigned)png[16] << 24 | (unsigned)png[17] << 16 | (unsigned)png[18] << 8 | png[19];
    *h = (unsigned)png[20] << 24 | (unsigned)png[21] << 16 | (unsigned)png[22] << 8 | png[23];
}

struct gal_read {
    int done;
    int rc;
    size_t n;
    bool is_thumb;
    size_t len;
    unsigned w, h;
};

static void gal_read_cb(int rc, const struct store_image *rows, size_t n, void *data)
{
    struct gal_read *r = data;
    r->rc = rc;
    r->n = n;
    if (n > 0) {
        r->is_thumb = rows[0].is_thumb;
        r->len = rows[0].len;
        if (rows[0].is_thumb)
            png_size(rows[0].data, rows[0].len, &r->w, &r->h);
    }
    r->done++;
}

/* Keep img as a generation does (thumbnail on the thread pool), and wait
 * until its write is queued. */
static struct store *gal_store_of(void *data)
{
    struct gt *gt = data;
    return ledger_store(gt->lt.ledger);
}

static int gal_kept_count;

static void gal_kept(void *data)
{
    (void)data;
    gal_kept_count++;
}

static void gal_keep_image(struct gt *gt, const struct store_image *img)
{
    int want = gal_kept_count + 1;
    assert_int_equal(gallery_keep(&gt->lt.loop, img, gal_store_of, gal_kept, gt), 0);
    gt_wait(gt, &gal_kept_count, want);
}

/* A thumbnail keeps the proportions within 256 pixels, is made once when
 * a PNG is kept, and stands in for it where thumbnails are asked for; what
 * is not a PNG gets none. */
static void test_thumbnails(void **state)
{
    (void)state;
    struct store_usage row = {.day = 20000, .tag = "m", .amount = 5, .count = 1};
    unsigned char *png = NULL, *small = NULL;
    size_t len = 0, small_len = 0;
    assert_int_equal(chart_usage_png(&row, 1, 20000, 7, "t", &png, &len), 0);
    assert_int_equal(thumb_png(png, len, THUMB_SIDE, &small, &small_len), 0);
    unsigned w = 0, h = 0;
    png_size(small, small_len, &w, &h);
    assert_int_equal(w, 256);
    assert_int_equal(h, 154); /* 1000x600 */
    assert_true(small_len < len);
    unsigned char *again = NULL;
    size_t again_len = 0;
    assert_int_equal(thumb_png(small, small_len, 1000, &again, &again_len), 0); /* never up */
    png_size(again, again_len, &w, &h);
    assert_int_equal(w, 256);
    free(again);
    assert_int_equal(
        thumb_png((const unsigned char *)png_bytes, sizeof(png_bytes) - 1, 256, &again, &again_len),
        HB_EINVAL);
    assert_null(again);
    unsigned char huge[32];
    memcpy(huge, png, sizeof(huge));
    huge[16] = 0x7f; /* IHDR says 2 billion pixels wide: refused before decoding */
    assert_int_equal(thumb_png(huge, sizeof(huge), 256, &again, &again_len), HB_EINVAL);
    free(small);

    struct gt gt;
    gal_init(&gt, NULL);
    struct store_image img = {
        .platform = COMMAND_PLATFORM_CONSOLE, .created_at = gt.wall, .data = png, .len = len};
    snprintf(img.id, sizeof(img.id), "chart1");
    snprintf(img.scope, sizeof(img.scope), "console:g1");
    snprintf(img.mime, sizeof(img.mime), "image/png");
    gal_keep_image(&gt, &img);
    snprintf(img.id, sizeof(img.id), "fake1");
    img.data = (unsigned char *)png_bytes;
    img.len = sizeof(png_bytes) - 1;
    gal_keep_image(&gt, &img);
    const char *ids[] = {"chart1", "nothing", "fake1"};
    struct gal_read r = {0};
    assert_int_equal(
        gallery_get_many(ledger_store(gt.lt.ledger), ids, 1, STORE_IMAGE_THUMB, gal_read_cb, &r),
        0);
    gt_wait(&gt, &r.done, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 1);
    assert_true(r.is_thumb);
    assert_int_equal(r.w, 256);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gallery_get_many(ledger_store(gt.lt.ledger), ids + 1, 2, STORE_IMAGE_THUMB,
                                      gal_read_cb, &r),
                     0);
    gt_wait(&gt, &r.done, 1);
    assert_int_equal(r.n, 1); /* "nothing" is left out */
    assert_false(r.is_thumb); /* not a PNG: the image itself */
    assert_int_equal(r.len, sizeof(png_bytes) - 1);
    free(png);
    gt_done(&gt);
}

/* What the host was asked to post: results as text, images as messages. */
struct gal_posted {
    int texts;
    int images;
    char text[1024];
    char caption[256];
    size_t image_len;
    unsigned char image_head[24];
};

static int gal_notify(void *host, const struct notify_target *to, const char *text)
{
    struct gal_posted *p = host;
    assert_string_equal(to->scope_id, "g1");
    p->texts++;
    snprintf(p->text, sizeof(p->text), "%s", text);
    return 0;
}

static int gal_notify_msg(void *host, const struct notify_target *to, const struct reply_msg *msg)
{
    struct gal_posted *p = host;
    assert_string_equal(to->channel_id, "c-g1");
    assert_non_null(msg->image);
    p->images++;
    snprintf(p->caption, sizeof(p->caption), "%s", msg->text);
    p->image_len = msg->image->len;
    memcpy(p->image_head, msg->image->data,
           msg->image->len < sizeof(p->image_head) ? msg->image->len : sizeof(p->image_head));
    return 0;
}

static const struct core_host_ops gal_host_ops = {.notify = gal_notify,
                                                  .notify_msg = gal_notify_msg};

static void gal_flag_cb(int rc, void *data)
{
    *(int *)data = rc == 0 ? 1 : -1;
}

static void gal_vote(struct gt *gt, const char *period, const char *image, const char *voter,
                     const char *creator)
{
    struct votes_cast v = {.scope = "console:g1",
                           .image = image,
                           .voter = voter,
                           .creator = creator,
                           .model = "img",
                           .now_ms = gt->wall,
                           .contest = period};
    int done = 0;
    assert_int_equal(votes_cast(ledger_store(gt->lt.ledger), &v, gal_flag_cb, &done), 0);
    gt_wait(gt, &done, 1);
}

static void gal_keep(struct gt *gt, const char *id, const char *creator, const unsigned char *data,
                     size_t len)
{
    struct store_image img = {.platform = COMMAND_PLATFORM_CONSOLE,
                              .created_at = gt->wall,
                              .data = (unsigned char *)data,
                              .len = len};
    snprintf(img.id, sizeof(img.id), "%s", id);
    snprintf(img.scope, sizeof(img.scope), "console:g1");
    snprintf(img.owner, sizeof(img.owner), "console:%s", creator);
    snprintf(img.user_id, sizeof(img.user_id), "%s", creator);
    snprintf(img.scope_id, sizeof(img.scope_id), "g1");
    snprintf(img.mime, sizeof(img.mime), "image/png");
    gal_keep_image(gt, &img);
}

/* /contest shows its entries' thumbnails as uploads after the standings,
 * and the results are followed by the winning images, full size. */
static void test_contest_images(void **state)
{
    (void)state;
    struct gt gt;
    gal_init(&gt, NULL);
    struct gal_posted posted;
    memset(&posted, 0, sizeof(posted));
    gt.core.host_ops = &gal_host_ops;
    gt.core.host = &posted;
    struct contests *cs = contests_new(&gt.core);
    assert_non_null(cs);
    gt.core.contests = cs;
    struct contest c = {.platform = COMMAND_PLATFORM_CONSOLE,
                        .scope_id = "g1",
                        .channel_id = "c-g1",
                        .id = gt.wall,
                        .end_ms = gt.wall + 86400000LL};
    int done = 0;
    assert_int_equal(contests_start(cs, &c, gal_flag_cb, &done), 0);
    gt_wait(&gt, &done, 1);
    char period[CONTEST_PERIOD_MAX];
    assert_int_equal(contest_period(&c, period, sizeof(period)), 0);

    struct store_usage row = {.day = 20000, .tag = "m", .amount = 5, .count = 1};
    unsigned char *png = NULL;
    size_t len = 0;
    assert_int_equal(chart_usage_png(&row, 1, 20000, 7, "t", &png, &len), 0);
    gal_keep(&gt, "imgA", "u1", png, len);
    gal_keep(&gt, "imgB", "u2", png, len);
    gal_keep(&gt, "imgC", "u3", (const unsigned char *)png_bytes, sizeof(png_bytes) - 1);
    for (int i = 0; i < 3; i++) {
        char voter[32];
        snprintf(voter, sizeof(voter), "console:v%d", i);
        gal_vote(&gt, period, "imgC", voter, "u3");
        if (i < 2)
            gal_vote(&gt, period, "imgA", voter, "u1");
    }
    gal_vote(&gt, period, "imgB", "console:v0", "u2");
    gal_vote(&gt, period, "imgGone", "console:v0", "u4"); /* no image kept */

    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "viewer", "g1");
    cmd_contest(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    const char *t = cap.text;
    assert_non_null(strstr(t, "  1. u3: 3 upvotes (image imgC)"));
    assert_non_null(strstr(t, "  4. u4: 1 upvote (image imgGone)"));
    assert_non_null(strstr(t, "\n1. u3: 3 upvotes\n2. u1: 2 upvotes\n3. u2: 1 upvote"));
    assert_null(strstr(t, "\n4. u4"));
    assert_int_equal(cap.nmsgs, 4); /* the standings, then three uploads */
    unsigned w = 0, h = 0;
    png_size(cap.image_head, sizeof(cap.image_head), &w, &h);
    assert_int_equal(w, 256); /* the last, imgB: its thumbnail */
    assert_true(cap.image_bytes < len);
    reply_capture_close(&cap);

    gt.wall += 2 * 86400000LL;
    assert_int_equal(contests_tick(cs), 1);
    gt_wait(&gt, &posted.images, 3);
    assert_int_equal(posted.texts, 1);
    assert_non_null(strstr(posted.text, "The contest has ended. Winners:\n1. u3 with 3 upvotes"));
    assert_string_equal(posted.caption, "Winning image 3: by u2, 1 upvote");
    assert_int_equal(posted.image_len, len); /* the image itself */
    for (int k = 0; k < 100000 && contests_busy(cs) > 0; k++)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    gt.core.contests = NULL;
    contests_free(cs);
    free(png);
    gt_done(&gt);
}

static const struct CMUnitTest gallery_tests[] = {
    cmocka_unit_test(test_images_outlive_restart), cmocka_unit_test(test_images_pruned),
    cmocka_unit_test(test_gallery_pages),          cmocka_unit_test(test_thumbnails),
    cmocka_unit_test(test_contest_images),
};

TEST_GROUP_DEFINE(gallery, gallery_tests, gt_group_setup, lt_group_teardown)
