/* Images members attach to a chat turn: what an adapter checks before the
 * engine sees one.
 *
 * An adapter fetches a platform's file (a Telegram photo through getFile
 * and the file path, a Discord attachment from Discord's CDN) with
 * attach_fetch(): a GET on the shared HTTP client, the body capped at
 * [limits] image_max_bytes, and the kind decided by the file's first bytes
 * (PNG, JPEG, WebP, GIF), never by a header or a file name. The bytes go
 * to the engine on the invocation (struct invocation_image); a refusal
 * goes to the member with attach_refusal()'s sentence, and costs nothing.
 *
 * URLs here may hold secrets (Telegram's file URL carries the bot token):
 * nothing here logs a URL. */
#ifndef HB_ATTACH_H
#define HB_ATTACH_H

#include "core/command.h"
#include "net/http.h"

#include <stddef.h>
#include <stdint.h>

struct catalog;

/** The kind of an image by its first bytes: "image/png", "image/jpeg",
 *  "image/webp", "image/gif", or NULL for anything else. */
const char *attach_sniff(const unsigned char *data, size_t len);

/** The largest image members may attach under the catalog's limits (the
 *  default when cat is NULL). */
size_t attach_max_bytes(const struct catalog *cat);

/** A fetch's end. rc 0: img is the image (the callee owns it); else img is
 *  NULL and rc says why: HB_EOVERFLOW (larger than the cap), HB_EPROTO
 *  (not an image of a kind the bot takes), HB_EHTTP (the server refused),
 *  HB_ECANCELED, HB_ETIMEOUT or another transport code. */
typedef void (*attach_done_fn)(int rc, struct invocation_image *img, void *data);

/** GET url (borrowed; may hold a secret) on http, at most max_bytes, with
 *  timeout_ms for the whole transfer. Returns 0 and *out (the request, for
 *  http_request_cancel() until done runs; may be NULL), then done exactly
 *  once from the loop; or a negative code and done never runs. */
int attach_fetch(struct http_client *http, const char *url, size_t max_bytes, uint64_t timeout_ms,
                 attach_done_fn done, void *data, struct http_request **out);

/** The member's sentence for a fetch that failed with rc (max_bytes: the
 *  cap it had), written to buf. */
void attach_refusal(int rc, size_t max_bytes, char *buf, size_t cap);

#endif
