/* [persona "NAME"] and [bot] persona in bot.conf: what loads, every
 * problem with its line (bad keys and values, a prompt file that cannot be
 * read, a model that is not a text model), the prompt file read relative
 * to bot.conf and again on reload, and the catalog the daemon builds. */
#include "tests/test.h"

#include "bot/config.h"
#include "bot/generation.h"
#include "core/catalog.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

struct pfx {
    char *dir;
    char *path;
    struct config *cfg;
    struct config_problems problems;
};

static int pfx_setup(void **state)
{
    struct pfx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir_new();
    assert_true(asprintf(&f->path, "%s/bot.conf", f->dir) > 0);
    config_problems_init(&f->problems);
    *state = f;
    return 0;
}

static int pfx_teardown(void **state)
{
    struct pfx *f = *state;
    config_free(f->cfg);
    config_problems_free(&f->problems);
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static int pfx_load(struct pfx *f, const char *text)
{
    config_free(f->cfg);
    f->cfg = NULL;
    test_file_write(f->path, text, (size_t)-1);
    chmod(f->path, 0600);
    return config_load(f->path, &f->cfg, &f->problems);
}

static void pfx_file(struct pfx *f, const char *name, const char *text)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", f->dir, name) > 0);
    test_file_write(p, text, (size_t)-1);
    free(p);
}

/* A problem on line mentions needle. */
static void pfx_problem(const struct pfx *f, int line, const char *needle)
{
    for (size_t i = 0; i < f->problems.count; i++) {
        if (f->problems.items[i].line == line &&
            strstr(f->problems.items[i].message, needle) != NULL)
            return;
    }
    for (size_t i = 0; i < f->problems.count; i++)
        print_error("  line %d: %s\n", f->problems.items[i].line, f->problems.items[i].message);
    fail_msg("no problem on line %d with \"%s\"", line, needle);
}

#define PFX_MODELS                                                                                 \
    "[provider \"p\"]\n"        /* 1 */                                                            \
    "kind = demo\n"             /* 2 */                                                            \
    "[model \"m\"]\n"           /* 3 */                                                            \
    "provider = p\n"            /* 4 */                                                            \
    "extra_body = {\"a\": 1}\n" /* 5 */                                                            \
    "[model \"img\"]\n"         /* 6 */                                                            \
    "provider = p\n"            /* 7 */                                                            \
    "modality = image\n"        /* 8 */

static void test_persona_loads(void **state)
{
    struct pfx *f = *state;
    pfx_file(f, "long.txt", "You are {bot}.\nTalk to {user}.\n\n");
    int rc = pfx_load(f, PFX_MODELS "[bot]\n"
                                    "persona = pirate\n"
                                    "[persona \"pirate\"]\n"
                                    "description = Talks like a pirate\n"
                                    "system_prompt = \"Arr, {user}.\"\n"
                                    "model = m\n"
                                    "temperature = 1.5\n"
                                    "top_p = 0.5\n"
                                    "max_tokens = 64\n"
                                    "stop = [\"ARR\"]\n"
                                    "extra_body = {\"b\": 2}\n"
                                    "forbidden_words = treasure, gold coins\n"
                                    "allow = dm, admins\n"
                                    "show_prompt = yes\n"
                                    "[persona \"long\"]\n"
                                    "system_prompt_file = long.txt\n");
    if (rc != 0)
        for (size_t i = 0; i < f->problems.count; i++)
            print_error("line %d: %s\n", f->problems.items[i].line, f->problems.items[i].message);
    assert_int_equal(rc, 0);
    assert_int_equal(f->cfg->npersonas, 2);
    assert_string_equal(f->cfg->bot.persona, "pirate");
    const struct config_persona *p = config_persona_find(f->cfg, "pirate");
    assert_non_null(p);
    assert_string_equal(p->system_prompt, "Arr, {user}.");
    assert_true(p->show_prompt);
    assert_int_equal(p->max_tokens, 64);
    const struct config_persona *l = config_persona_find(f->cfg, "long");
    /* The file's text, relative to bot.conf's folder, without the final
     * line breaks. */
    assert_string_equal(l->system_prompt, "You are {bot}.\nTalk to {user}.");
    assert_false(l->show_prompt);

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256] = "";
    struct catalog *cat = generation_catalog_build(f->cfg, &loop, NULL, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    const struct catalog_persona *cp = catalog_persona_find(cat, "PIRATE");
    assert_non_null(cp);
    assert_ptr_equal(catalog_persona_default(cat), cp);
    assert_string_equal(cp->description, "Talks like a pirate");
    assert_string_equal(cp->model, "m");
    assert_true(cp->temperature_set && cp->temperature == 1.5);
    assert_true(cp->top_p_set && cp->top_p == 0.5);
    assert_int_equal(cp->max_tokens, 64);
    assert_int_equal(cp->nstop, 1);
    assert_string_equal(cp->stop[0], "ARR");
    assert_string_equal(cp->extra_body, "{\"b\": 2}");
    assert_non_null(cp->filter);
    assert_int_equal(cp->nallow, 2);
    assert_string_equal(catalog_persona_find(cat, "long")->description, "");
    catalog_unref(cat);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_persona_problems_have_lines(void **state)
{
    struct pfx *f = *state;
    int rc = pfx_load(f, PFX_MODELS "[persona \"bad\"]\n"                /* 9 */
                                    "temprature = 0.5\n"                 /* 10 */
                                    "temperature = 3\n"                  /* 11 */
                                    "top_p = -1\n"                       /* 12 */
                                    "stop = [\"A\",\n"                   /* 13 */
                                    "extra_body = {\"model\": \"x\"}\n"  /* 14 */
                                    "model = img\n"                      /* 15 */
                                    "max_tokens = -5\n"                  /* 16 */
                                    "[persona \"nofile\"]\n"             /* 17 */
                                    "system_prompt_file = missing.txt\n" /* 18 */
                                    "[persona \"both\"]\n"               /* 19 */
                                    "system_prompt = hi\n"               /* 20 */
                                    "system_prompt_file = missing.txt\n" /* 21 */
                                    "[persona \"nomodel\"]\n"            /* 22 */
                                    "model = gpt-9\n"                    /* 23 */
                                    "[persona \"bad name!\"]\n"          /* 24 */
                                    "[bot]\n"                            /* 25 */
                                    "persona = ghost\n");                /* 26 */
    assert_int_equal(rc, HB_ECONFIG);
    pfx_problem(f, 10, "unknown key \"temprature\" in [persona]; did you mean \"temperature\"?");
    pfx_problem(f, 11, "[persona \"bad\"]: temperature must be a number from 0 to 2");
    pfx_problem(f, 12, "[persona \"bad\"]: top_p must be a number from 0 to 1");
    pfx_problem(f, 13, "[persona \"bad\"]: stop is not valid JSON");
    pfx_problem(f, 14, "[persona \"bad\"]: extra_body cannot set \"model\"");
    pfx_problem(f, 15, "[persona \"bad\"]: model \"img\" makes images");
    pfx_problem(f, 16, "persona \"bad\".max_tokens");
    pfx_problem(f, 18, "[persona \"nofile\"]: system_prompt_file");
    pfx_problem(f, 18, "missing.txt cannot be read");
    pfx_problem(f, 21, "[persona \"both\"]: set system_prompt or system_prompt_file, not both");
    pfx_problem(f, 23, "[persona \"nomodel\"]: model \"gpt-9\" is not a [model] section");
    pfx_problem(f, 24, "a persona's name is 1 to 32 letters, digits, _ or -");
    pfx_problem(f, 26, "[bot] persona \"ghost\" is not a [persona] section");
    assert_null(f->cfg);

    /* "none" is what /persona none means. */
    rc = pfx_load(f, "[persona \"None\"]\n"
                     "description = x\n");
    assert_int_equal(rc, HB_ECONFIG);
    pfx_problem(f, 1, "\"none\" is what /persona none means");

    /* Forbidden words that build no rule. */
    rc = pfx_load(f, "[persona \"w\"]\n"
                     "forbidden_words = \" , \"\n");
    assert_int_equal(rc, HB_ECONFIG);
    pfx_problem(f, 2, "[persona \"w\"]: forbidden_words:");
}

struct pfx_diff {
    int n;
    bool live;
    char what[96];
};

static void pfx_diff_cb(const struct config_change *c, void *data)
{
    struct pfx_diff *d = data;
    d->n++;
    d->live = c->live;
    snprintf(d->what, sizeof(d->what), "%s %s %s", c->section,
             c->instance != NULL ? c->instance : "-", c->key != NULL ? c->key : "-");
}

/* A prompt file's new text is read on reload, and the reload's comparison
 * names the persona's prompt as a live change. */
static void test_prompt_file_reloaded(void **state)
{
    struct pfx *f = *state;
    const char *text = "[persona \"f\"]\n"
                       "system_prompt_file = p.txt\n";
    pfx_file(f, "p.txt", "First.");
    assert_int_equal(pfx_load(f, text), 0);
    assert_string_equal(config_persona_find(f->cfg, "f")->system_prompt, "First.");
    struct config *old = f->cfg;
    f->cfg = NULL;
    pfx_file(f, "p.txt", "Second.");
    assert_int_equal(pfx_load(f, text), 0);
    assert_string_equal(config_persona_find(f->cfg, "f")->system_prompt, "Second.");
    struct pfx_diff d = {0};
    assert_int_equal(config_diff(old, f->cfg, pfx_diff_cb, &d), 1);
    assert_string_equal(d.what, "persona f system_prompt");
    assert_true(d.live);
    config_free(old);
}

static const struct CMUnitTest config_persona_tests[] = {
    cmocka_unit_test_setup_teardown(test_persona_loads, pfx_setup, pfx_teardown),
    cmocka_unit_test_setup_teardown(test_persona_problems_have_lines, pfx_setup, pfx_teardown),
    cmocka_unit_test_setup_teardown(test_prompt_file_reloaded, pfx_setup, pfx_teardown),
};

TEST_GROUP_DEFINE(config_persona, config_persona_tests, NULL, NULL)
