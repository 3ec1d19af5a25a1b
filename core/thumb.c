/* Thumbnails scaled with cairo (core/thumb.h). */
#include "core/thumb.h"

#include "base/error.h"
#include "core/chart.h"

#include <cairo.h>
#include <stdlib.h>
#include <string.h>

#define THUMB_SIDE_MAX 16384 /* larger images are refused, not decoded */

/* The PNG being read, from memory. */
struct thumb_in {
    const unsigned char *p;
    size_t left;
};

static cairo_status_t thumb__read(void *closure, unsigned char *data, unsigned int len)
{
    struct thumb_in *in = closure;
    if (len > in->left)
        return CAIRO_STATUS_READ_ERROR;
    memcpy(data, in->p, len);
    in->p += len;
    in->left -= len;
    return CAIRO_STATUS_SUCCESS;
}

/* The width and height of a PNG from its IHDR chunk, before cairo
 * decodes anything: a huge image is refused without its pixels. */
static int thumb__size(const unsigned char *png, size_t len, int *w, int *h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 24 || memcmp(png, sig, sizeof(sig)) != 0 || memcmp(png + 12, "IHDR", 4) != 0)
        return HB_EINVAL;
    unsigned long uw = (unsigned long)png[16] << 24 | (unsigned long)png[17] << 16 |
                       (unsigned long)png[18] << 8 | png[19];
    unsigned long uh = (unsigned long)png[20] << 24 | (unsigned long)png[21] << 16 |
                       (unsigned long)png[22] << 8 | png[23];
    if (uw == 0 || uh == 0 || uw > THUMB_SIDE_MAX || uh > THUMB_SIDE_MAX)
        return HB_EINVAL;
    *w = (int)uw;
    *h = (int)uh;
    return 0;
}

int thumb_png(const unsigned char *png, size_t len, int side, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    int w = 0, h = 0;
    if (png == NULL || side < 1 || thumb__size(png, len, &w, &h) < 0)
        return HB_EINVAL;
    struct thumb_in in = {.p = png, .left = len};
    cairo_surface_t *src = cairo_image_surface_create_from_png_stream(thumb__read, &in);
    cairo_surface_t *dst = NULL;
    cairo_t *cr = NULL;
    int rc = 0;
    if (cairo_surface_status(src) != CAIRO_STATUS_SUCCESS) {
        rc = cairo_surface_status(src) == CAIRO_STATUS_NO_MEMORY ? HB_ENOMEM : HB_EINVAL;
        goto out;
    }
    w = cairo_image_surface_get_width(src);
    h = cairo_image_surface_get_height(src);
    double scale = w > h ? (double)side / w : (double)side / h;
    if (scale > 1.0)
        scale = 1.0;
    int tw = (int)(w * scale + 0.5), th = (int)(h * scale + 0.5);
    dst = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, tw > 0 ? tw : 1, th > 0 ? th : 1);
    cr = cairo_create(dst);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rc = HB_ENOMEM;
        goto out;
    }
    cairo_scale(cr, scale, scale);
    cairo_set_source_surface(cr, src, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_surface_flush(dst);
    rc = chart_surface_png(dst, out, outlen);
out:
    if (cr != NULL)
        cairo_destroy(cr);
    if (dst != NULL)
        cairo_surface_destroy(dst);
    cairo_surface_destroy(src);
    return rc;
}
