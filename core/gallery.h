/* Stored results: every generated image is kept in the store (the images
 * table of storage/store.h) with who made it where, the model, its bytes
 * and, for its owner's Regenerate only, the prompt. So Regenerate, /gallery
 * and the contests' thumbnails and results work after a restart, and on
 * every daemon of a shared PostgreSQL ledger.
 *
 * The store rather than files beside the database: both backends hold
 * them the same way, a backup of the database holds them too, and an
 * image, its votes and its deletion by the retention limit are rows that
 * commit together.
 *
 * Retention ([gallery] retention and max_images): images older than the
 * retention go, and then all but the max_images newest, every hour
 * (generate_images_maintain). /forget erases the member's stored prompts;
 * a prompt is never shown in a gallery. */
#ifndef HB_GALLERY_H
#define HB_GALLERY_H

#include "core/command.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GALLERY_SCOPE_MAX (COMMAND_ID_MAX + 24) /* "<platform>:<group>" */

/** The scope key of an invocation's group, "<platform>:<group>" (the key
 *  the votes use), or "" in a DM. */
void gallery_scope(const struct invocation *inv, char *buf, size_t cap);

/** Keep an image: img's fields, data (len bytes) and thumbnail (if any)
 *  are copied, the write goes to the store's next batch. A failure is
 *  logged (never the prompt); nothing waits for it. Returns 0 or a
 *  negative code. */
int gallery_save(struct store *store, const struct store_image *img);

/** Keep a generated image as gallery_save does, with the thumbnail of a PNG
 *  made first on libuv's thread pool: a large PNG takes tens of
 *  milliseconds to decode, which must hold up neither the loop nor the
 *  store's thread (every commit waits behind what that thread does). Once
 *  it is made, store_of(data) is asked for the store (NULL: it closed
 *  meanwhile, and the image is not kept), the write is queued, and
 *  done(data) (may be NULL) runs, on the loop, always: keep whatever
 *  store_of reads alive until then. Returns 0 (done follows) or a negative
 *  code (no callback). */
int gallery_keep(uv_loop_t *loop, const struct store_image *img,
                 struct store *(*store_of)(void *data), void (*done)(void *data), void *data);

/** Completion of gallery_get: img (borrowed for the call) when rc is 0;
 *  HB_ENOTFOUND when the image is not kept (never, or pruned). */
typedef void (*gallery_get_cb)(int rc, const struct store_image *img, void *data);

/** Read image id (with its bytes when data is true). Returns 0 (cb
 *  follows) or a negative code (no callback). */
int gallery_get(struct store *store, const char *id, bool data, gallery_get_cb cb, void *cbdata);

/** Completion of gallery_page and gallery_get_many: rows borrowed for the
 *  call. */
typedef void (*gallery_rows_cb)(int rc, const struct store_image *rows, size_t n, void *data);

/** One page of a scope's images (store_txn_image_page, bytes included).
 *  Returns 0 (cb follows) or a negative code (no callback). */
int gallery_page(struct store *store, const char *scope, const char *period, bool top,
                 int64_t since_ms, size_t skip, size_t max, gallery_rows_cb cb, void *cbdata);

/** Read the images of ids (n <= STORE_IMAGE_PAGE_MAX) with the bytes
 *  `bytes` names in one store job, in the order given; images not kept
 *  are left out. Returns 0 (cb follows) or a negative code (no
 *  callback). */
int gallery_get_many(struct store *store, const char *const *ids, size_t n,
                     enum store_image_bytes bytes, gallery_rows_cb cb, void *cbdata);

/** Delete the images made before before_ms, then all but the keep_max
 *  newest (0: no cap), each with its row in the state namespace with_ns
 *  (static; NULL: none). cb (may be NULL) gets the images deleted. Returns
 *  0 (cb follows) or a negative code. */
int gallery_prune(struct store *store, int64_t before_ms, int64_t keep_max, const char *with_ns,
                  void (*cb)(int rc, int64_t removed, void *data), void *cbdata);

#endif
