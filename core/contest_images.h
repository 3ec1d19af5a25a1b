/* The images of contests, from the stored results (core/gallery.h): the
 * entries' thumbnails /contest shows after its standings, and the winning
 * images posted after an ended contest's results. Apart from
 * core/contest.c and core/cmd_contest.c, which only call in here. */
#ifndef HB_CONTEST_IMAGES_H
#define HB_CONTEST_IMAGES_H

#include "core/contest.h"

#include <stddef.h>

struct core;

/** Send the thumbnails of the entries rows (n of them, at most
 *  STORE_IMAGE_PAGE_MAX; standings order) through reply, one upload each
 *  captioned with its place, creator and upvotes; entries whose image is
 *  no longer kept are left out. rows are copied. done(data) follows once
 *  everything is sent (also when nothing could be), so the caller
 *  finishes its reply there. Returns 0 (done follows) or a negative code
 *  (done does not). */
int contest_images_show(struct core *core, struct reply *reply, const struct store_vote *rows,
                        size_t n, void (*done)(void *data), void *data);

/** Post the winning images of the ended contest c after its results, in
 *  the channel the results went to: each winner's best entry (as the
 *  standings rank it) as an upload, captioned with the place, creator and
 *  upvotes. Best effort, like the results' post: nothing waits for it and
 *  a failure is logged. Only with core_host_ops.notify_msg (the
 *  daemon's: Telegram and Discord notices carry the upload). */
void contest_images_post(struct core *core, const struct contest *c,
                         const struct contest_payment *pay, size_t npay);

#endif
