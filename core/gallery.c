/* Stored results (core/gallery.h): the store jobs that keep, read and
 * prune generated images. */
#include "core/gallery.h"

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "core/thumb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gallery_scope(const struct invocation *inv, char *buf, size_t cap)
{
    if (inv->scope == COMMAND_SCOPE_GROUP && inv->scope_id[0] != '\0')
        snprintf(buf, cap, "%s:%s", command_platform_name(inv->platform), inv->scope_id);
    else if (cap > 0)
        buf[0] = '\0';
}

/* Submit job (embedded in op, calloc'd) with run and done; op is freed when
 * the store refuses it. A page to show (read) goes to the store's readers. */
static int gallery__submit(struct store *store, struct store_job *job,
                           int (*run)(struct store_txn *txn, struct store_job *job),
                           void (*done)(struct store_job *job, int rc), void *op, bool read)
{
    job->run = run;
    job->done = done;
    int rc = read ? store_submit_read(store, job) : store_submit(store, job);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- keeping an image -------------------------------------------------------- */

struct gallery_save_op {
    struct store_job job;
    uv_work_t work;
    struct store_image img; /* prompt and data owned */
    unsigned char *thumb;   /* owned; img.thumb points here */
    struct store *(*store_of)(void *data);
    void (*done)(void *data);
    void *data;
};

static void gallery__op_free(struct gallery_save_op *op)
{
    store_image_clear(&op->img);
    free(op->thumb);
    free(op);
}

static int gallery__save_run(struct store_txn *txn, struct store_job *job)
{
    struct gallery_save_op *op = container_of(job, struct gallery_save_op, job);
    return store_txn_image_put(txn, &op->img);
}

static void gallery__save_done(struct store_job *job, int rc)
{
    struct gallery_save_op *op = container_of(job, struct gallery_save_op, job);
    if (rc < 0)
        log_warn("gallery.save_failed", "image=%s error=%s", op->img.id, hb_strerror(rc));
    gallery__op_free(op);
}

/* A copy of img (its thumbnail too, when given), or NULL. */
static struct gallery_save_op *gallery__op_new(const struct store_image *img)
{
    struct gallery_save_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->img = *img;
    op->img.prompt = img->prompt != NULL ? strdup(img->prompt) : NULL;
    op->img.data = malloc(img->len);
    op->img.thumb = NULL;
    op->img.thumb_len = 0;
    if (img->thumb != NULL && img->thumb_len > 0) {
        op->thumb = malloc(img->thumb_len);
        if (op->thumb != NULL) {
            memcpy(op->thumb, img->thumb, img->thumb_len);
            op->img.thumb = op->thumb;
            op->img.thumb_len = img->thumb_len;
        }
    }
    if ((img->prompt != NULL && op->img.prompt == NULL) || op->img.data == NULL ||
        (img->thumb != NULL && img->thumb_len > 0 && op->thumb == NULL)) {
        gallery__op_free(op);
        return NULL;
    }
    memcpy(op->img.data, img->data, img->len);
    op->job.run = gallery__save_run;
    op->job.done = gallery__save_done;
    return op;
}

static bool gallery__valid(const struct store_image *img)
{
    return img != NULL && img->id[0] != '\0' && img->data != NULL && img->len != 0;
}

int gallery_save(struct store *store, const struct store_image *img)
{
    if (store == NULL || !gallery__valid(img))
        return HB_EINVAL;
    struct gallery_save_op *op = gallery__op_new(img);
    if (op == NULL)
        return HB_ENOMEM;
    int rc = store_submit(store, &op->job);
    if (rc < 0)
        gallery__op_free(op);
    return rc;
}

/* On a thread of libuv's pool. */
static void gallery__thumb_work(uv_work_t *w)
{
    struct gallery_save_op *op = container_of(w, struct gallery_save_op, work);
    size_t len = 0;
    if (strcmp(op->img.mime, "image/png") == 0 &&
        thumb_png(op->img.data, op->img.len, THUMB_SIDE, &op->thumb, &len) == 0) {
        op->img.thumb = op->thumb;
        op->img.thumb_len = len;
    }
}

static void gallery__thumb_done(uv_work_t *w, int status)
{
    struct gallery_save_op *op = container_of(w, struct gallery_save_op, work);
    void (*done)(void *) = op->done;
    void *data = op->data;
    struct store *store = status == 0 ? op->store_of(data) : NULL;
    int rc = store != NULL ? store_submit(store, &op->job) : HB_ECANCELED;
    if (rc < 0) {
        log_warn("gallery.save_failed", "image=%s error=%s", op->img.id, hb_strerror(rc));
        gallery__op_free(op);
    }
    if (done != NULL)
        done(data);
}

int gallery_keep(uv_loop_t *loop, const struct store_image *img,
                 struct store *(*store_of)(void *data), void (*done)(void *data), void *data)
{
    if (loop == NULL || store_of == NULL || !gallery__valid(img))
        return HB_EINVAL;
    struct gallery_save_op *op = gallery__op_new(img);
    if (op == NULL)
        return HB_ENOMEM;
    op->store_of = store_of;
    op->done = done;
    op->data = data;
    if (uv_queue_work(loop, &op->work, gallery__thumb_work, gallery__thumb_done) != 0) {
        gallery__op_free(op);
        return HB_ENOMEM;
    }
    return 0;
}

/* ---- reading ----------------------------------------------------------------- */

struct gallery_get_op {
    struct store_job job;
    char id[STORE_TAG_SIZE];
    enum store_image_bytes bytes;
    struct store_image img;
    gallery_get_cb cb;
    void *data;
};

static int gallery__get_run(struct store_txn *txn, struct store_job *job)
{
    struct gallery_get_op *op = container_of(job, struct gallery_get_op, job);
    return store_txn_image_get(txn, op->id, op->bytes, &op->img);
}

static void gallery__get_done(struct store_job *job, int rc)
{
    struct gallery_get_op *op = container_of(job, struct gallery_get_op, job);
    op->cb(rc, rc == 0 ? &op->img : NULL, op->data);
    store_image_clear(&op->img);
    free(op);
}

int gallery_get(struct store *store, const char *id, bool data, gallery_get_cb cb, void *cbdata)
{
    if (store == NULL || id == NULL || cb == NULL || strlen(id) >= STORE_TAG_SIZE)
        return HB_EINVAL;
    struct gallery_get_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    memcpy(op->id, id, strlen(id) + 1);
    op->bytes = data ? STORE_IMAGE_FULL : STORE_IMAGE_NONE;
    op->cb = cb;
    op->data = cbdata;
    return gallery__submit(store, &op->job, gallery__get_run, gallery__get_done, op, false);
}

struct gallery_rows_op {
    struct store_job job;
    char scope[STORE_ID_SIZE];
    char period[STORE_TAG_SIZE];
    bool top;
    int64_t since_ms;
    size_t skip, max;
    char ids[STORE_IMAGE_PAGE_MAX][STORE_TAG_SIZE]; /* gallery_get_many: nids of them */
    size_t nids;
    enum store_image_bytes bytes; /* gallery_get_many */
    size_t n;
    struct store_image rows[STORE_IMAGE_PAGE_MAX];
    gallery_rows_cb cb;
    void *data;
};

static int gallery__page_run(struct store_txn *txn, struct store_job *job)
{
    struct gallery_rows_op *op = container_of(job, struct gallery_rows_op, job);
    return store_txn_image_page(txn, op->scope, op->period, op->top, op->since_ms, op->skip,
                                op->max, STORE_IMAGE_FULL, op->rows, &op->n);
}

static int gallery__many_run(struct store_txn *txn, struct store_job *job)
{
    struct gallery_rows_op *op = container_of(job, struct gallery_rows_op, job);
    for (size_t i = 0; i < op->nids; i++) {
        int rc = store_txn_image_get(txn, op->ids[i], op->bytes, &op->rows[op->n]);
        if (rc == 0)
            op->n++;
        else if (rc != HB_ENOTFOUND)
            return rc;
    }
    return 0;
}

static void gallery__rows_done(struct store_job *job, int rc)
{
    struct gallery_rows_op *op = container_of(job, struct gallery_rows_op, job);
    op->cb(rc, op->rows, rc == 0 ? op->n : 0, op->data);
    for (size_t i = 0; i < op->n; i++)
        store_image_clear(&op->rows[i]);
    free(op);
}

int gallery_page(struct store *store, const char *scope, const char *period, bool top,
                 int64_t since_ms, size_t skip, size_t max, gallery_rows_cb cb, void *cbdata)
{
    if (store == NULL || scope == NULL || period == NULL || cb == NULL || max == 0 ||
        max > STORE_IMAGE_PAGE_MAX || strlen(scope) >= STORE_ID_SIZE ||
        strlen(period) >= STORE_TAG_SIZE)
        return HB_EINVAL;
    struct gallery_rows_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    memcpy(op->scope, scope, strlen(scope) + 1);
    memcpy(op->period, period, strlen(period) + 1);
    op->top = top;
    op->since_ms = since_ms;
    op->skip = skip;
    op->max = max;
    op->cb = cb;
    op->data = cbdata;
    return gallery__submit(store, &op->job, gallery__page_run, gallery__rows_done, op, true);
}

int gallery_get_many(struct store *store, const char *const *ids, size_t n,
                     enum store_image_bytes bytes, gallery_rows_cb cb, void *cbdata)
{
    if (store == NULL || cb == NULL || n > STORE_IMAGE_PAGE_MAX)
        return HB_EINVAL;
    struct gallery_rows_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != NULL && ids[i][0] != '\0' && strlen(ids[i]) < STORE_TAG_SIZE)
            memcpy(op->ids[op->nids++], ids[i], strlen(ids[i]) + 1);
    }
    op->bytes = bytes;
    op->cb = cb;
    op->data = cbdata;
    return gallery__submit(store, &op->job, gallery__many_run, gallery__rows_done, op, true);
}

/* ---- retention ---------------------------------------------------------------- */

struct gallery_prune_op {
    struct store_job job;
    int64_t before_ms, keep_max, removed;
    const char *with_ns; /* static: the state kept per image */
    void (*cb)(int rc, int64_t removed, void *data);
    void *data;
};

static int gallery__prune_run(struct store_txn *txn, struct store_job *job)
{
    struct gallery_prune_op *op = container_of(job, struct gallery_prune_op, job);
    return store_txn_image_prune(txn, op->before_ms, op->keep_max, op->with_ns, &op->removed);
}

static void gallery__prune_done(struct store_job *job, int rc)
{
    struct gallery_prune_op *op = container_of(job, struct gallery_prune_op, job);
    if (rc < 0)
        log_warn("gallery.prune_failed", "error=%s", hb_strerror(rc));
    else if (op->removed > 0)
        log_info("gallery.pruned", "images=%lld", (long long)op->removed);
    if (op->cb != NULL)
        op->cb(rc, op->removed, op->data);
    free(op);
}

int gallery_prune(struct store *store, int64_t before_ms, int64_t keep_max, const char *with_ns,
                  void (*cb)(int rc, int64_t removed, void *data), void *cbdata)
{
    if (store == NULL)
        return HB_EINVAL;
    struct gallery_prune_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->before_ms = before_ms;
    op->keep_max = keep_max;
    op->with_ns = with_ns;
    op->cb = cb;
    op->data = cbdata;
    return gallery__submit(store, &op->job, gallery__prune_run, gallery__prune_done, op, false);
}
