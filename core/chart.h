/* Usage charts: spending per day and model as a PNG bar chart, for
 * /usage chart and /admin stats chart.
 *
 * Drawn with cairo, a rendering library with no I/O of its own: the chart
 * is bytes in memory that the handler sends as a reply image, so core stays
 * platform-neutral and testable offline, and each adapter delivers the
 * image as it delivers a generated one (an upload on Discord and Telegram,
 * a file on the console). */
#ifndef HB_CHART_H
#define HB_CHART_H

#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

#define CHART_WIDTH 1000 /* pixels: legible on a phone, whole on a desktop */
#define CHART_HEIGHT 600
#define CHART_SERIES_MAX 7 /* models drawn apart; the rest are stacked as "other" */

/** Render the usage rows (days since the epoch, model tag, credits, count;
 *  any order) of the `days` days from from_day on as a stacked bar chart,
 *  one bar per day (per week beyond 62 days), one colour per model, with
 *  a title, labelled axes and a legend. Rows outside the range are left
 *  out. On success *png is a heap buffer of *len bytes the caller frees.
 *  Returns 0, HB_EINVAL (days < 1), HB_ENOMEM or HB_EIO. */
int chart_usage_png(const struct store_usage *rows, size_t n, int64_t from_day, int64_t days,
                    const char *title, unsigned char **png, size_t *len);

struct _cairo_surface;

/** A cairo surface (flushed) as PNG bytes: *png is a heap buffer of *len
 *  bytes the caller frees. Returns 0 or HB_EIO (cairo could not write it,
 *  memory included). Also for the thumbnails (core/thumb.c). */
int chart_surface_png(struct _cairo_surface *s, unsigned char **png, size_t *len);

#endif
