#include "core/chart.h"

#include "base/error.h"
#include "core/format.h"

#include <cairo.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHART_BUCKETS_MAX 62 /* bars; longer periods draw one bar a week */
#define CHART_LEFT 100.0     /* plot area margins, pixels */
#define CHART_RIGHT 250.0
#define CHART_TOP 70.0
#define CHART_BOTTOM 100.0
#define CHART_FONT 18.0
#define CHART_OTHER "other"

/* Okabe-Ito: told apart with every common colour blindness. */
static const double chart_colors[CHART_SERIES_MAX + 1][3] = {
    {0.000, 0.447, 0.698}, {0.902, 0.624, 0.000}, {0.000, 0.620, 0.451}, {0.800, 0.475, 0.655},
    {0.337, 0.706, 0.914}, {0.835, 0.369, 0.000}, {0.941, 0.894, 0.259}, {0.500, 0.500, 0.500},
};

struct chart_series {
    char name[STORE_TAG_SIZE];
    int64_t total; /* credits over the period */
};

struct chart_data {
    struct chart_series series[CHART_SERIES_MAX + 1]; /* the last one is "other" when used */
    size_t nseries;
    bool other;      /* the last series gathers the smaller models */
    int64_t buckets; /* bars */
    int64_t per;     /* days per bar */
    int64_t from_day;
    int64_t *amount; /* [bucket * (CHART_SERIES_MAX + 1) + series] */
    int64_t top;     /* the tallest bar */
};

struct chart_png {
    unsigned char *buf;
    size_t len, cap;
};

static cairo_status_t chart__png_write(void *closure, const unsigned char *data, unsigned int len)
{
    struct chart_png *p = closure;
    if (p->len + len > p->cap) {
        size_t cap = p->cap > 0 ? p->cap * 2 : 64 * 1024;
        while (cap < p->len + len)
            cap *= 2;
        unsigned char *grown = realloc(p->buf, cap);
        if (grown == NULL)
            return CAIRO_STATUS_NO_MEMORY;
        p->buf = grown;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return CAIRO_STATUS_SUCCESS;
}

int chart_surface_png(cairo_surface_t *s, unsigned char **png, size_t *len)
{
    struct chart_png out = {0};
    if (cairo_surface_write_to_png_stream(s, chart__png_write, &out) != CAIRO_STATUS_SUCCESS) {
        free(out.buf);
        return HB_EIO;
    }
    *png = out.buf;
    *len = out.len;
    return 0;
}

/* Every model's total over the period; the CHART_SERIES_MAX - 1 largest
 * keep their own colour when there are more than CHART_SERIES_MAX. */
static int chart__series(struct chart_data *d, const struct store_usage *rows, size_t n,
                         int64_t days)
{
    struct chart_series *all = calloc(n > 0 ? n : 1, sizeof(*all));
    if (all == NULL)
        return HB_ENOMEM;
    size_t nall = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].day < d->from_day || rows[i].day >= d->from_day + days || rows[i].amount <= 0)
            continue;
        const char *tag = rows[i].tag[0] != '\0' ? rows[i].tag : "(model)";
        size_t k = 0;
        while (k < nall && strcmp(all[k].name, tag) != 0)
            k++;
        if (k == nall)
            snprintf(all[nall++].name, sizeof(all[0].name), "%s", tag);
        all[k].total += rows[i].amount;
    }
    /* Largest first, then by name, so colours are stable for equal data. */
    for (size_t i = 1; i < nall; i++)
        for (size_t j = i; j > 0; j--) {
            struct chart_series *a = &all[j - 1], *b = &all[j];
            if (a->total > b->total || (a->total == b->total && strcmp(a->name, b->name) <= 0))
                break;
            struct chart_series t = *a;
            *a = *b;
            *b = t;
        }
    size_t keep = nall <= CHART_SERIES_MAX ? nall : CHART_SERIES_MAX - 1;
    memcpy(d->series, all, keep * sizeof(*all));
    d->nseries = keep;
    if (nall > keep) {
        struct chart_series *o = &d->series[d->nseries++];
        d->other = true;
        snprintf(o->name, sizeof(o->name), CHART_OTHER);
        for (size_t i = keep; i < nall; i++)
            o->total += all[i].total;
    }
    free(all);
    return 0;
}

static size_t chart__series_of(const struct chart_data *d, const char *tag)
{
    const char *name = tag[0] != '\0' ? tag : "(model)";
    for (size_t k = 0; k < d->nseries; k++)
        if (strcmp(d->series[k].name, name) == 0)
            return k;
    return d->nseries - 1; /* "other" */
}

static int chart__fill(struct chart_data *d, const struct store_usage *rows, size_t n, int64_t days)
{
    d->per = days <= CHART_BUCKETS_MAX ? 1 : 7;
    d->buckets = (days + d->per - 1) / d->per;
    int rc = chart__series(d, rows, n, days);
    if (rc < 0)
        return rc;
    d->amount = calloc((size_t)d->buckets * (CHART_SERIES_MAX + 1), sizeof(int64_t));
    if (d->amount == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; i < n && d->nseries > 0; i++) {
        if (rows[i].day < d->from_day || rows[i].day >= d->from_day + days || rows[i].amount <= 0)
            continue;
        int64_t b = (rows[i].day - d->from_day) / d->per;
        d->amount[b * (CHART_SERIES_MAX + 1) + (int64_t)chart__series_of(d, rows[i].tag)] +=
            rows[i].amount;
    }
    for (int64_t b = 0; b < d->buckets; b++) {
        int64_t sum = 0;
        for (size_t k = 0; k < d->nseries; k++)
            sum += d->amount[b * (CHART_SERIES_MAX + 1) + (int64_t)k];
        if (sum > d->top)
            d->top = sum;
    }
    return 0;
}

/* A round step for about five gridlines up to top: 1, 2 or 5 times 10^k. */
static int64_t chart__step(int64_t top)
{
    int64_t step = 1;
    while (step * 5 < top) {
        if (step * 2 * 5 >= top)
            return step * 2;
        if (step * 5 * 5 >= top)
            return step * 5;
        step *= 10;
    }
    return step;
}

static void chart__text(cairo_t *cr, double x, double y, const char *text, double align)
{
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    cairo_move_to(cr, x - ext.x_advance * align, y);
    cairo_show_text(cr, text);
}

static void chart__axes(cairo_t *cr, const struct chart_data *d, double pw, double ph, int64_t top,
                        int64_t step)
{
    char label[32];
    cairo_set_font_size(cr, CHART_FONT);
    for (int64_t v = 0; v <= top; v += step) {
        double y = CHART_TOP + ph - ph * (double)v / (double)top;
        cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
        cairo_set_line_width(cr, 1.0);
        cairo_move_to(cr, CHART_LEFT, floor(y) + 0.5);
        cairo_line_to(cr, CHART_LEFT + pw, floor(y) + 0.5);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        chart__text(cr, CHART_LEFT - 10, y + CHART_FONT / 3,
                    format_credits(label, sizeof(label), v), 1.0);
    }
    /* The axes themselves. */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 2.0);
    cairo_move_to(cr, CHART_LEFT, CHART_TOP);
    cairo_line_to(cr, CHART_LEFT, CHART_TOP + ph);
    cairo_line_to(cr, CHART_LEFT + pw, CHART_TOP + ph);
    cairo_stroke(cr);
    /* Day labels, as many as fit side by side. */
    double slot = pw / (double)d->buckets;
    int64_t every = 1;
    while (slot * (double)every < 70.0)
        every++;
    for (int64_t b = 0; b < d->buckets; b += every) {
        char day[16];
        format_day(day, sizeof(day), d->from_day + b * d->per);
        chart__text(cr, CHART_LEFT + slot * ((double)b + 0.5), CHART_TOP + ph + CHART_FONT + 8,
                    day + 5, 0.5); /* MM-DD */
    }
    cairo_set_font_size(cr, CHART_FONT + 2);
    chart__text(cr, CHART_LEFT + pw / 2, CHART_TOP + ph + 2 * CHART_FONT + 30,
                d->per == 1 ? "day (UTC)" : "week starting (UTC)", 0.5);
    cairo_save(cr);
    cairo_translate(cr, 28, CHART_TOP + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    chart__text(cr, 0, 0, "credits spent", 0.5);
    cairo_restore(cr);
}

static size_t chart__color(const struct chart_data *d, size_t k)
{
    return d->other && k == d->nseries - 1 ? CHART_SERIES_MAX : k;
}

static void chart__bars(cairo_t *cr, const struct chart_data *d, double pw, double ph, int64_t top)
{
    double slot = pw / (double)d->buckets;
    double width = slot * 0.7 > 2.0 ? slot * 0.7 : 2.0;
    for (int64_t b = 0; b < d->buckets; b++) {
        double y = CHART_TOP + ph;
        for (size_t k = 0; k < d->nseries; k++) {
            int64_t v = d->amount[b * (CHART_SERIES_MAX + 1) + (int64_t)k];
            if (v <= 0)
                continue;
            double h = ph * (double)v / (double)top;
            const double *c = chart_colors[chart__color(d, k)];
            cairo_set_source_rgb(cr, c[0], c[1], c[2]);
            cairo_rectangle(cr, CHART_LEFT + slot * (double)b + (slot - width) / 2, y - h, width,
                            h);
            cairo_fill(cr);
            y -= h;
        }
    }
}

static void chart__legend(cairo_t *cr, const struct chart_data *d, double pw)
{
    double x = CHART_LEFT + pw + 30, y = CHART_TOP + 10;
    char line[STORE_TAG_SIZE + 40], credits[32];
    cairo_set_font_size(cr, CHART_FONT);
    for (size_t k = 0; k < d->nseries; k++) {
        const double *c = chart_colors[chart__color(d, k)];
        cairo_set_source_rgb(cr, c[0], c[1], c[2]);
        cairo_rectangle(cr, x, y, 20, 20);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        snprintf(line, sizeof(line), "%.18s", d->series[k].name);
        chart__text(cr, x + 30, y + 16, line, 0.0);
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        snprintf(line, sizeof(line), "%s credits",
                 format_credits(credits, sizeof(credits), d->series[k].total));
        chart__text(cr, x + 30, y + 38, line, 0.0);
        y += 58;
    }
}

int chart_usage_png(const struct store_usage *rows, size_t n, int64_t from_day, int64_t days,
                    const char *title, unsigned char **png, size_t *len)
{
    *png = NULL;
    *len = 0;
    if (days < 1 || days > 3660)
        return HB_EINVAL;
    struct chart_data d;
    memset(&d, 0, sizeof(d));
    d.from_day = from_day;
    int rc = chart__fill(&d, rows, n, days);
    cairo_surface_t *s = NULL;
    cairo_t *cr = NULL;
    if (rc < 0)
        goto done;
    s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, CHART_WIDTH, CHART_HEIGHT);
    cr = cairo_create(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rc = HB_ENOMEM;
        goto done;
    }
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_font_size(cr, CHART_FONT + 8);
    chart__text(cr, CHART_LEFT, 42, title != NULL ? title : "", 0.0);
    double pw = CHART_WIDTH - CHART_LEFT - CHART_RIGHT,
           ph = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    int64_t step = chart__step(d.top > 0 ? d.top : 1);
    int64_t top = ((d.top > 0 ? d.top : 1) + step - 1) / step * step;
    chart__axes(cr, &d, pw, ph, top, step);
    if (d.nseries > 0) {
        chart__bars(cr, &d, pw, ph, top);
        chart__legend(cr, &d, pw);
    } else {
        cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
        cairo_set_font_size(cr, CHART_FONT + 4);
        chart__text(cr, CHART_LEFT + pw / 2, CHART_TOP + ph / 2, "No spending in this period", 0.5);
    }
    cairo_surface_flush(s);
    rc = chart_surface_png(s, png, len);
done:
    if (cr != NULL)
        cairo_destroy(cr);
    if (s != NULL)
        cairo_surface_destroy(s);
    free(d.amount);
    return rc;
}
