/* Usage charts: the renderer writes a PNG of the promised size with bars
 * in it, and /usage chart and /admin stats chart answer with one. */
#include "tests/test.h"

#include "bot/router.h"
#include "base/error.h"
#include "core/chart.h"
#include "core/core.h"
#include "core/ledger.h"
#include "tests/core/ledger_helpers.h"
#include "tests/core/router_fixture.h"
#include "tests/fake/reply_capture.h"

#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The signature, then the IHDR chunk first with the width and height. */
static void assert_png_header(const unsigned char *png, size_t len, uint32_t w, uint32_t h)
{
    assert_true(len > 33);
    assert_memory_equal(png, png_signature, sizeof(png_signature));
    assert_int_equal(be32(png + 8), 13);
    assert_memory_equal(png + 12, "IHDR", 4);
    assert_int_equal(be32(png + 16), w);
    assert_int_equal(be32(png + 20), h);
}

struct png_read {
    const unsigned char *data;
    size_t len, off;
};

static cairo_status_t png_read(void *closure, unsigned char *out, unsigned int len)
{
    struct png_read *r = closure;
    if (r->off + len > r->len)
        return CAIRO_STATUS_READ_ERROR;
    memcpy(out, r->data + r->off, len);
    r->off += len;
    return CAIRO_STATUS_SUCCESS;
}

/* Decode the PNG; count the pixels that are not the white background, and
 * those of exactly the colour (r, g, b in 0..255). */
static void png_count(const unsigned char *png, size_t len, size_t *ink, size_t *of_color,
                      unsigned r, unsigned g, unsigned b)
{
    struct png_read rd = {png, len, 0};
    cairo_surface_t *s = cairo_image_surface_create_from_png_stream(png_read, &rd);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(s), CHART_WIDTH);
    assert_int_equal(cairo_image_surface_get_height(s), CHART_HEIGHT);
    cairo_surface_flush(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    *ink = 0;
    *of_color = 0;
    for (int y = 0; y < CHART_HEIGHT; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(data + (size_t)y * (size_t)stride);
        for (int x = 0; x < CHART_WIDTH; x++) {
            uint32_t px = row[x] & 0xffffff;
            if (px != 0xffffff)
                (*ink)++;
            if (px == (r << 16 | g << 8 | b))
                (*of_color)++;
        }
    }
    cairo_surface_destroy(s);
}

static void row(struct store_usage *u, int64_t day, const char *tag, int64_t amount)
{
    memset(u, 0, sizeof(*u));
    u->day = day;
    snprintf(u->tag, sizeof(u->tag), "%s", tag);
    u->amount = amount;
    u->count = 1;
}

static void test_render_png(void **state)
{
    (void)state;
    int64_t from = 20400; /* 2025-11-08 */
    struct store_usage rows[40];
    size_t n = 0;
    /* Nine models over a month: seven keep a colour, the rest are "other". */
    const char *models[] = {"gpt-4o",        "gpt-4o-mini", "claude-haiku",
                            "claude-sonnet", "llama",       "mistral",
                            "qwen",          "gemma",       "phi"};
    for (size_t m = 0; m < 9; m++)
        for (int64_t d = 0; d < 4; d++)
            row(&rows[n++], from + (int64_t)m * 3 + d, models[m], (int64_t)(100 - m * 10));
    row(&rows[n++], from - 5, "gpt-4o", 100000); /* before the period: left out */
    unsigned char *png = NULL;
    size_t len = 0;
    assert_int_equal(chart_usage_png(rows, n, from, 30, "Spending, last 30 days", &png, &len), 0);
    assert_png_header(png, len, CHART_WIDTH, CHART_HEIGHT);
    size_t ink = 0, first = 0;
    /* The largest model is drawn in the first colour (0, 114, 178). */
    png_count(png, len, &ink, &first, 0, 114, 178);
    assert_true(ink > (size_t)CHART_WIDTH * CHART_HEIGHT / 50); /* bars, axes, text */
    assert_true(first > 1000);                                  /* gpt-4o's bars and its key */
    /* Not a solid fill either. */
    assert_true(ink < (size_t)CHART_WIDTH * CHART_HEIGHT / 2);
    free(png);

    /* A year is drawn a week a bar; nothing spent is still a chart. */
    assert_int_equal(chart_usage_png(rows, n, from - 300, 365, "A year", &png, &len), 0);
    assert_png_header(png, len, CHART_WIDTH, CHART_HEIGHT);
    free(png);
    assert_int_equal(chart_usage_png(NULL, 0, from, 7, "Nothing", &png, &len), 0);
    assert_png_header(png, len, CHART_WIDTH, CHART_HEIGHT);
    png_count(png, len, &ink, &first, 0, 114, 178);
    assert_true(ink > 0);
    assert_int_equal(first, 0);
    free(png);
    assert_int_equal(chart_usage_png(rows, n, from, 0, "x", &png, &len), HB_EINVAL);
    assert_null(png);
}

/* ---- the commands ------------------------------------------------------ */

static const char *run(struct rfx *f, const char *user, bool admin, const char *line)
{
    struct invocation inv;
    rfx_inv(&inv, COMMAND_PLATFORM_TELEGRAM, user, NULL);
    inv.admin = admin;
    return rfx_run(f, &inv, line);
}

static void spend(struct rfx *f, const char *id, const char *who, int64_t amount, const char *tag)
{
    struct lt_res res;
    struct ledger_transfer tr = {.id = id,
                                 .debit = who,
                                 .credit = LEDGER_SYSTEM_REVENUE,
                                 .amount = amount,
                                 .kind = LEDGER_KIND_GENERATION,
                                 .tag = tag};
    assert_int_equal(lt_transfer(&f->lt, &tr, &res), 0);
}

static void test_usage_chart_command(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, "501", false, "usage chart");
    assert_non_null(strstr(t, "No generations in the last 7 days."));
    assert_int_equal(f->cap.image_bytes, 0);
    spend(f, "gen-1", "telegram:501", 12, "demo-chat");
    spend(f, "gen-2", "telegram:501", 30, "demo-image");
    /* "chart" before or after the period, or as chart:yes. */
    const char *lines[] = {"usage chart", "usage chart month", "usage day chart",
                           "usage period:year chart:yes"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        t = run(f, "501", false, lines[i]);
        assert_non_null(strstr(t, "Total: 2 generations, 42 credits."));
        assert_true(f->cap.image_bytes > 1000);
        assert_true(f->cap.last_personal); /* the member's own figures */
        assert_png_header(f->cap.image_head, f->cap.image_bytes, CHART_WIDTH, CHART_HEIGHT);
    }
    /* Without the word, the text answer as before, and no image. */
    t = run(f, "501", false, "usage week");
    assert_non_null(strstr(t, "demo-chat: 1 generation, 12 credits"));
    assert_int_equal(f->cap.image_bytes, 0);
    t = run(f, "501", false, "usage chart:perhaps");
    assert_int_equal(f->cap.image_bytes, 0);
    assert_non_null(strstr(t, "chart"));
}

static void test_admin_stats_chart_command(void **state)
{
    struct rfx *f = *state;
    run(f, "601", false, "balance");
    spend(f, "gen-1", "telegram:601", 7, "demo-chat");
    const char *t = run(f, "601", true, "admin stats chart month");
    assert_non_null(strstr(t, "The whole bot, last 30 days"));
    assert_non_null(strstr(t, "credits spent: 7"));
    assert_png_header(f->cap.image_head, f->cap.image_bytes, CHART_WIDTH, CHART_HEIGHT);
    /* Members are refused before anything is drawn. */
    run(f, "601", false, "admin stats chart");
    assert_int_equal(f->cap.image_bytes, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_render_png),
    cmocka_unit_test_setup_teardown(test_usage_chart_command, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_admin_stats_chart_command, rfx_setup, rfx_teardown),
};

TEST_GROUP_DEFINE(chart, tests, NULL, NULL)
