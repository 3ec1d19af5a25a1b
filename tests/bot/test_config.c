/* The config module: parsing, every kind of problem with its line, the
 * environment indirection, hostile files, defaults, diff, and the example
 * file staying true to the schema. */
#include "tests/test.h"

#include "bot/config.h"
#include "bot/generation.h"
#include "core/catalog.h"
#include "base/error.h"
#include "base/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define EXAMPLE "bot.conf.example"

struct fixture {
    char *dir;
    char *path;
    struct config *cfg;
    struct config_problems problems;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir_new();
    assert_true(asprintf(&f->path, "%s/bot.conf", f->dir) > 0);
    config_problems_init(&f->problems);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    config_free(f->cfg);
    config_problems_free(&f->problems);
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* Write text as the config file (private mode, so no warning) and load it. */
static int load_text(struct fixture *f, const char *text)
{
    config_free(f->cfg);
    f->cfg = NULL;
    test_file_write(f->path, text, (size_t)-1);
    chmod(f->path, 0600);
    return config_load(f->path, &f->cfg, &f->problems);
}

/* Print the problems as check-config would, into a heap string. */
static char *problems_text(const struct config_problems *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    config_problems_print(p, mem);
    fclose(mem);
    return buf;
}

/* Assert that a problem on `line` mentions every needle given. */
static void assert_problem(const struct config_problems *p, int line, const char *needle,
                           const char *needle2)
{
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].line != line)
            continue;
        if (strstr(p->items[i].message, needle) == NULL)
            continue;
        if (needle2 != NULL && strstr(p->items[i].message, needle2) == NULL)
            continue;
        return;
    }
    char *all = problems_text(p);
    print_error("no problem on line %d with \"%s\"%s%s; got:\n%s", line, needle,
                needle2 != NULL ? " and " : "", needle2 != NULL ? needle2 : "", all);
    free(all);
    fail();
}

static void assert_loads(struct fixture *f, const char *text)
{
    int rc = load_text(f, text);
    if (rc != 0) {
        char *all = problems_text(&f->problems);
        print_error("load failed (%d):\n%s", rc, all);
        free(all);
        fail();
    }
    assert_non_null(f->cfg);
    assert_int_equal(f->problems.count, 0);
}

/* A relative storage path names a file in the config file's folder, made
 * absolute. */
static void assert_storage_beside_config(struct fixture *f, const struct config *c,
                                         const char *name)
{
    char dir[PATH_MAX];
    assert_non_null(realpath(f->dir, dir));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/%s", dir, name);
    assert_string_equal(c->storage.path, want);
}

static void test_example_loads(void **state)
{
    struct fixture *f = *state;
    char *text = test_file_read(EXAMPLE, NULL);
    assert_non_null(text);
    assert_loads(f, text);
    free(text);
    const struct config *c = f->cfg;
    assert_true(c->console.enabled);
    assert_false(c->discord.enabled);
    assert_false(c->telegram.enabled);
    assert_storage_beside_config(f, c, "haibot.db");
    assert_int_equal(c->nproviders, 1);
    assert_string_equal(c->providers[0].name, "demo");
    assert_int_equal(c->providers[0].kind, CONFIG_PROVIDER_DEMO);
    const struct config_model *chat = config_model_find(c, "demo-chat");
    const struct config_model *image = config_model_find(c, "demo-image");
    assert_non_null(chat);
    assert_non_null(image);
    assert_int_equal(chat->modality, CONFIG_MODALITY_TEXT);
    assert_int_equal(image->modality, CONFIG_MODALITY_IMAGE);
    assert_string_equal(image->provider, "demo");
    assert_string_equal(image->upstream, "demo-image");
}

/* The example documents every key of the schema as "# key: ..." inside its
 * section (single sections) or in the comment block of a repeatable one. */
static void test_example_documents_every_key(void **state)
{
    (void)state;
    char *text = test_file_read(EXAMPLE, NULL);
    assert_non_null(text);
    size_t nsec = 0;
    const struct config_section_schema *schema = config_schema_get(&nsec);
    assert_true(nsec >= 8);
    size_t missing = 0;
    for (size_t i = 0; i < nsec; i++) {
        const struct config_section_schema *s = &schema[i];
        char header[64];
        snprintf(header, sizeof(header), s->repeatable ? "\n[%s \"" : "\n[%s]\n", s->name);
        char *at = strstr(text, header);
        if (at == NULL) {
            print_error("bot.conf.example has no section %s\n", header + 1);
            missing++;
            continue;
        }
        for (size_t k = 0; k < s->nkeys; k++) {
            char doc[96];
            bool found;
            if (s->repeatable) {
                /* Documented once, in the comment block before the section. */
                snprintf(doc, sizeof(doc), "#   %s:", s->keys[k].name);
                char *hit = strstr(text, doc);
                found = hit != NULL && hit < at;
            } else {
                snprintf(doc, sizeof(doc), "\n# %s:", s->keys[k].name);
                char *end = strstr(at + 1, "\n[");
                char *hit = strstr(at, doc);
                found = hit != NULL && (end == NULL || hit < end);
            }
            if (!found) {
                print_error("bot.conf.example does not document [%s] %s\n", s->name,
                            s->keys[k].name);
                missing++;
            }
        }
    }
    free(text);
    assert_int_equal(missing, 0);
}

/* Each row's default must itself be valid, and a near-empty file gets them. */
static void test_defaults_applied(void **state)
{
    struct fixture *f = *state;
    assert_loads(f, "[bot]\nname = Test\n");
    const struct config *c = f->cfg;
    assert_string_equal(c->bot.name, "Test");
    assert_int_equal(c->bot.log_level, LOG_INFO);
    assert_int_equal(c->bot.log_format, CONFIG_LOG_TEXT);
    assert_int_equal(c->bot.shutdown_grace, 10);
    assert_int_equal(c->storage.backend, CONFIG_STORAGE_SQLITE);
    assert_storage_beside_config(f, c, "haibot.db");
    assert_int_equal(c->storage.reservation_timeout, 600);
    assert_int_equal(c->ledger.welcome_bonus, 100);
    assert_true(c->console.enabled);
    assert_string_equal(c->console.user, "operator");
    assert_true(c->console.admin);
    assert_false(c->discord.enabled);
    assert_null(c->discord.token);
    assert_false(c->telegram.enabled);
    assert_string_equal(c->telegram.api_base, "https://api.telegram.org");
    assert_int_equal(c->nproviders, 0);
    assert_int_equal(c->nmodels, 0);
    assert_string_equal(c->path, f->path);
}

static void test_values_parsed(void **state)
{
    struct fixture *f = *state;
    assert_loads(f, "[bot]\n"
                    "name = \"  Spaced Bot  \"   ; trailing comment\n"
                    "log_level = DEBUG\n"
                    "log_format = json # another comment\n"
                    "shutdown_grace = 2m\n"
                    "  [storage]\n"
                    "    reservation_timeout = 1h\n"
                    "[console]\n"
                    "enabled = off\n"
                    "admin = no\n");
    assert_string_equal(f->cfg->bot.name, "  Spaced Bot  ");
    assert_int_equal(f->cfg->bot.log_level, LOG_DEBUG);
    assert_int_equal(f->cfg->bot.log_format, CONFIG_LOG_JSON);
    assert_int_equal(f->cfg->bot.shutdown_grace, 120);
    assert_int_equal(f->cfg->storage.reservation_timeout, 3600);
    assert_false(f->cfg->console.enabled);
    assert_false(f->cfg->console.admin);
}

static void test_repeatable_sections(void **state)
{
    struct fixture *f = *state;
    assert_loads(f, "[provider \"openai\"]\n"
                    "kind = openai\n"
                    "base_url = https://api.openai.com/v1\n"
                    "api_key = sk-test-0123456789\n"
                    "[provider \"local\"]\n"
                    "kind = openai\n"
                    "base_url = http://127.0.0.1:11434/v1\n"
                    "timeout = 600\n"
                    "max_concurrent = 1\n"
                    "[model \"gpt-4o-mini\"]\n"
                    "provider = openai\n"
                    "price_input_1k = 3\n"
                    "price_output_1k = 12\n"
                    "[model \"llama\"]\n"
                    "provider = local\n"
                    "upstream = llama3.1:8b\n"
                    "enabled = false\n"
                    "max_output_tokens = 4096\n");
    const struct config *c = f->cfg;
    assert_int_equal(c->nproviders, 2);
    assert_string_equal(c->providers[0].name, "openai");
    assert_string_equal(c->providers[0].api_key, "sk-test-0123456789");
    assert_int_equal(c->providers[0].timeout, 120);
    assert_int_equal(c->providers[0].max_concurrent, 4);
    assert_string_equal(c->providers[1].name, "local");
    assert_null(c->providers[1].api_key);
    assert_int_equal(c->providers[1].timeout, 600);
    assert_int_equal(c->providers[1].max_concurrent, 1);
    assert_int_equal(c->nmodels, 2);
    assert_string_equal(c->models[0].upstream, "gpt-4o-mini");
    assert_int_equal(c->models[0].price_request, 0);
    assert_int_equal(c->models[0].price_input_1k, 3);
    assert_int_equal(c->models[0].price_output_1k, 12);
    assert_int_equal(c->models[0].max_output_tokens, 1024);
    assert_true(c->models[0].enabled);
    assert_string_equal(c->models[1].upstream, "llama3.1:8b");
    assert_false(c->models[1].enabled);
    assert_int_equal(c->models[1].max_output_tokens, 4096);
    assert_ptr_equal(config_provider_find(c, "local"), &c->providers[1]);
    assert_null(config_provider_find(c, "nope"));
    log_secret_clear();
}

static void test_unknown_key_suggests(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[bot]\n"
                                  "name = x\n"
                                  "log_levle = info\n"
                                  "colour = blue\n"
                                  "token_env = DISCORD_TOKEN\n"
                                  "welcome_bonus = 5\n"),
                     HB_ECONFIG);
    assert_null(f->cfg);
    assert_int_equal(f->problems.count, 4);
    assert_problem(&f->problems, 5, "unknown key \"token_env\" in [bot]",
                   "it belongs under [discord] or [telegram]");
    assert_problem(&f->problems, 6, "unknown key \"welcome_bonus\" in [bot]",
                   "it belongs under [ledger]");
    assert_problem(&f->problems, 3, "unknown key \"log_levle\" in [bot]",
                   "did you mean \"log_level\"?");
    assert_problem(&f->problems, 4, "unknown key \"colour\"", NULL);
    assert_null(strstr(f->problems.items[1].message, "did you mean"));
}

static void test_wrong_types(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[console]\n"
                                  "enabled = maybe\n"
                                  "[ledger]\n"
                                  "welcome_bonus = lots\n"
                                  "[bot]\n"
                                  "shutdown_grace = 10x\n"
                                  "[telegram]\n"
                                  "api_base = api.telegram.org\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 4);
    assert_problem(&f->problems, 2, "console.enabled", "expected true or false");
    assert_problem(&f->problems, 4, "ledger.welcome_bonus", "expected a whole number");
    assert_problem(&f->problems, 6, "bot.shutdown_grace", "expected a duration in seconds");
    assert_problem(&f->problems, 8, "telegram.api_base", "is not a URL");
}

static void test_out_of_range(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[bot]\n"
                                  "shutdown_grace = 601\n"
                                  "[storage]\n"
                                  "reservation_timeout = 9\n"
                                  "[ledger]\n"
                                  "welcome_bonus = -1\n"
                                  "[provider \"p\"]\n"
                                  "kind = demo\n"
                                  "max_concurrent = 99999999999999999999999\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 4);
    assert_problem(&f->problems, 2, "bot.shutdown_grace: 601 is out of range", "0 to 600");
    assert_problem(&f->problems, 4, "storage.reservation_timeout", "10 to 86400");
    assert_problem(&f->problems, 6, "ledger.welcome_bonus: -1 is out of range", "at least 0");
    assert_problem(&f->problems, 9, "max_concurrent", "out of range");
}

/* [gallery]: the retention of stored images, by default and as written;
 * a value out of range stops the load on its own line. */
static void test_gallery_section(void **state)
{
    struct fixture *f = *state;
    assert_loads(f, "[bot]\nname = Test\n");
    assert_int_equal(f->cfg->gallery.retention, 30 * 86400);
    assert_int_equal(f->cfg->gallery.max_images, 10000);
    config_free(f->cfg);
    f->cfg = NULL;
    assert_loads(f, "[gallery]\nretention = 90d\nmax_images = 0\n");
    assert_int_equal(f->cfg->gallery.retention, 90 * 86400);
    assert_int_equal(f->cfg->gallery.max_images, 0);
    config_free(f->cfg);
    f->cfg = NULL;
    assert_int_equal(load_text(f, "[gallery]\n"
                                  "retention = 1h\n"
                                  "max_images = -1\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 2);
    assert_problem(&f->problems, 2, "gallery.retention: 1h is out of range",
                   "86400 to 315360000 seconds");
    assert_problem(&f->problems, 3, "gallery.max_images: -1 is out of range", "0 to 100000000");
}

/* Generation parameters: good values land in the model; each bad one is a
 * problem on its own line, and the JSON's text is never echoed. */
static void test_model_params(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[provider \"p\"]\n"
                                  "kind = openai\n"
                                  "base_url = http://127.0.0.1:1/v1\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"
                                  "system_prompt = Be brief.\n"
                                  "temperature = 0.25\n"
                                  "top_p = 1\n"
                                  "stop = [\"END\", \"STOP\"]\n"
                                  "extra_body = {\"reasoning_effort\": \"low\"}\n"
                                  "max_tokens_field = max_completion_tokens\n"),
                     0);
    const struct config_model *m = config_model_find(f->cfg, "m");
    assert_non_null(m);
    assert_string_equal(m->system_prompt, "Be brief.");
    assert_string_equal(m->temperature, "0.25");
    assert_string_equal(m->stop, "[\"END\", \"STOP\"]");
    assert_string_equal(m->extra_body, "{\"reasoning_effort\": \"low\"}");
    assert_int_equal(m->max_tokens_field, CONFIG_MAX_COMPLETION_TOKENS);

    /* The catalog the daemon builds carries them, parsed. */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256] = "";
    struct catalog *cat = generation_catalog_build(f->cfg, &loop, NULL, err, sizeof(err));
    assert_non_null(cat);
    const struct catalog_model *cm = catalog_model_find(cat, "m");
    assert_non_null(cm);
    assert_string_equal(cm->system_prompt, "Be brief.");
    assert_int_equal(cm->system_bytes, 9);
    assert_true(cm->temperature_set && cm->temperature == 0.25);
    assert_true(cm->top_p_set && cm->top_p == 1.0);
    assert_int_equal(cm->nstop, 2);
    assert_string_equal(cm->stop[0], "END");
    assert_string_equal(cm->stop[1], "STOP");
    assert_string_equal(cm->extra_body, "{\"reasoning_effort\": \"low\"}");
    assert_int_equal(cm->max_tokens_field, PROVIDER_MAX_COMPLETION_TOKENS);
    catalog_unref(cat);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* Unset, nothing is sent. */
    assert_int_equal(load_text(f, "[provider \"p\"]\n"
                                  "kind = anthropic\n"
                                  "base_url = http://127.0.0.1:1/v1\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"),
                     0);
    assert_int_equal(uv_loop_init(&loop), 0);
    cat = generation_catalog_build(f->cfg, &loop, NULL, err, sizeof(err));
    assert_non_null(cat);
    cm = catalog_model_find(cat, "m");
    assert_null(cm->system_prompt);
    assert_false(cm->temperature_set || cm->top_p_set);
    assert_int_equal(cm->nstop, 0);
    assert_null(cm->extra_body);
    assert_int_equal(cm->max_tokens_field, PROVIDER_MAX_TOKENS_AUTO);
    catalog_unref(cat);
    assert_int_equal(uv_loop_close(&loop), 0);

    assert_int_equal(load_text(f,
                               "[provider \"p\"]\n"
                               "kind = openai\n"
                               "base_url = http://127.0.0.1:1/v1\n"
                               "[provider \"a\"]\n"
                               "kind = anthropic\n"
                               "base_url = http://127.0.0.1:1/v1\n"
                               "[model \"m\"]\n"
                               "provider = p\n"
                               "temperature = 2.5\n"
                               "top_p = x\n"
                               "stop = [\"END\", 3]\n"
                               "extra_body = {\"secret_thing\": tru}\n"
                               "max_tokens_field = max_token\n"
                               "[model \"n\"]\n"
                               "provider = a\n"
                               "temperature = 1.5\n"
                               "stop = \"END\"\n"
                               "extra_body = [1]\n"
                               "[model \"o\"]\n"
                               "provider = p\n"
                               "stop = []\n"
                               "extra_body = {\"top_k\": 5, \"model\": \"x\", \"messages\": []}\n"),
                     HB_ECONFIG);
    char *text = problems_text(&f->problems);
    assert_null(strstr(text, "secret_thing"));
    free(text);
    assert_problem(&f->problems, 13, "max_tokens_field", "max_completion_tokens");
    assert_problem(&f->problems, 9, "[model \"m\"]: temperature must be a number from 0 to 2", "");
    assert_problem(&f->problems, 10, "[model \"m\"]: top_p must be a number from 0 to 1", "");
    assert_problem(&f->problems, 11, "[model \"m\"]: stop must be a JSON array of 1 to 16",
                   "non-empty strings");
    assert_problem(&f->problems, 12, "[model \"m\"]: extra_body is not valid JSON",
                   "broken at character 18");
    assert_problem(&f->problems, 16, "[model \"n\"]: temperature must be a number from 0 to 1", "");
    assert_problem(&f->problems, 17, "[model \"n\"]: stop is not valid JSON", "");
    assert_problem(&f->problems, 18, "[model \"n\"]: extra_body must be a JSON object", "");
    assert_problem(&f->problems, 21, "[model \"o\"]: stop must be a JSON array", "");
    assert_problem(&f->problems, 22, "extra_body cannot set \"model\"", "");
    assert_problem(&f->problems, 22, "extra_body cannot set \"messages\"", "");
    assert_int_equal(f->problems.count, 11);
}

/* Vision: vision and price_per_image reach the catalog, [limits]
 * image_max_bytes too; vision on an image model and a price per image
 * without vision are problems on their lines. */
static void test_model_vision(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[provider \"p\"]\n"
                                  "kind = openai\n"
                                  "base_url = http://127.0.0.1:1/v1\n"
                                  "[model \"eyes\"]\n"
                                  "provider = p\n"
                                  "vision = true\n"
                                  "price_per_image = 3\n"
                                  "[model \"plain\"]\n"
                                  "provider = p\n"
                                  "[limits]\n"
                                  "image_max_bytes = 100000\n"),
                     0);
    const struct config_model *m = config_model_find(f->cfg, "eyes");
    assert_non_null(m);
    assert_true(m->vision);
    assert_int_equal(m->price_per_image, 3);
    assert_int_equal(f->cfg->limits.image_max_bytes, 100000);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256] = "";
    struct catalog *cat = generation_catalog_build(f->cfg, &loop, NULL, err, sizeof(err));
    assert_non_null(cat);
    const struct catalog_model *cm = catalog_model_find(cat, "eyes");
    assert_true(cm->vision);
    assert_int_equal(cm->price_image, 3);
    cm = catalog_model_find(cat, "plain");
    assert_false(cm->vision);
    assert_int_equal(cm->price_image, 0);
    assert_int_equal(catalog_limits_get(cat)->image_max_bytes, 100000);
    catalog_unref(cat);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* The default cap: 5 MiB. */
    assert_int_equal(load_text(f, "[provider \"p\"]\n"
                                  "kind = openai\n"
                                  "base_url = http://127.0.0.1:1/v1\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"),
                     0);
    assert_int_equal(f->cfg->limits.image_max_bytes, 5 * 1024 * 1024);

    assert_int_equal(load_text(f, "[provider \"p\"]\n"
                                  "kind = openai\n"
                                  "base_url = http://127.0.0.1:1/v1\n"
                                  "[model \"pic\"]\n"
                                  "provider = p\n"
                                  "modality = image\n"
                                  "vision = true\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"
                                  "price_per_image = 2\n"
                                  "[limits]\n"
                                  "image_max_bytes = 999999999\n"),
                     HB_ECONFIG);
    assert_problem(&f->problems, 7, "[model \"pic\"]: vision is for text models", "");
    assert_problem(&f->problems, 10, "[model \"m\"]: price_per_image needs vision = true", "");
    assert_problem(&f->problems, 12, "image_max_bytes", "out of range");
    assert_int_equal(f->problems.count, 3);
}

static void test_duplicates(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[bot]\n"
                                  "name = a\n"
                                  "name = b\n"
                                  "[storage]\n"
                                  "[bot]\n"
                                  "log_level = debug\n"
                                  "[provider \"x\"]\n"
                                  "kind = demo\n"
                                  "kind_env = HOME\n"
                                  "[provider \"x\"]\n"
                                  "kind = demo\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 4);
    assert_problem(&f->problems, 3, "duplicate key \"name\"", "first set on line 2");
    assert_problem(&f->problems, 5, "duplicate section [bot]", "first on line 1");
    assert_problem(&f->problems, 9, "duplicate key \"kind\"", "line 8");
    assert_problem(&f->problems, 10, "duplicate section [provider \"x\"]", "first on line 7");
}

static void test_required_when_enabled(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[bot]\n"
                                  "name = x\n"
                                  "\n"
                                  "[discord]\n"
                                  "enabled = true\n"
                                  "[telegram]\n"
                                  "enabled = false\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 2);
    assert_problem(&f->problems, 4, "[discord] is enabled but token is not set", NULL);
    assert_problem(&f->problems, 4, "[discord] is enabled but application_id is not set", NULL);

    /* Always-required keys, and base_url unless the kind is demo. */
    assert_int_equal(load_text(f, "[provider \"a\"]\n"
                                  "timeout = 5\n"
                                  "[provider \"b\"]\n"
                                  "kind = anthropic\n"
                                  "[model \"m\"]\n"
                                  "enabled = false\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 3);
    assert_problem(&f->problems, 1, "[provider \"a\"] needs kind", NULL);
    assert_problem(&f->problems, 3, "[provider \"b\"] needs base_url", "kind = demo");
    assert_problem(&f->problems, 5, "[model \"m\"] needs provider", NULL);
}

static void test_undefined_provider(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[provider \"openai\"]\n"
                                  "kind = openai\n"
                                  "base_url = https://api.openai.com/v1\n"
                                  "[model \"a\"]\n"
                                  "provider = opnai\n"
                                  "[model \"b\"]\n"
                                  "modality = text\n"
                                  "provider = elsewhere\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 2);
    assert_problem(&f->problems, 5, "provider \"opnai\" is not defined",
                   "did you mean \"openai\"?");
    assert_problem(&f->problems, 8, "provider \"elsewhere\" is not defined",
                   "[provider \"elsewhere\"]");
}

static void test_bad_enum_suggests(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[bot]\n"
                                  "log_level = inf\n"
                                  "log_format = yaml\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"
                                  "modality = imagr\n"
                                  "[provider \"p\"]\n"
                                  "kind = demo\n"),
                     HB_ECONFIG);
    assert_int_equal(f->problems.count, 3);
    assert_problem(&f->problems, 2, "\"inf\" is not one of debug, info, warn, error",
                   "did you mean \"info\"?");
    assert_problem(&f->problems, 3, "\"yaml\" is not one of text, json", NULL);
    assert_problem(&f->problems, 6, "modality: \"imagr\"", "did you mean \"image\"?");
}

static void test_bad_sections_and_lines(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "name = early\n"
                                  "[discrod]\n"
                                  "token = ignored\n"
                                  "[bot\n"
                                  "[provider]\n"
                                  "[bot \"x\"]\n"
                                  "[model openai]\n"
                                  "[console]\n"
                                  "just some words\n"
                                  "  indented = line\n"
                                  "= value\n"),
                     HB_ECONFIG);
    assert_problem(&f->problems, 1, "\"name\" is outside any section", NULL);
    assert_problem(&f->problems, 2, "unknown section [discrod]", "did you mean [discord]?");
    assert_problem(&f->problems, 4, "unterminated section header", NULL);
    assert_problem(&f->problems, 5, "section [provider] needs a name", NULL);
    assert_problem(&f->problems, 6, "section [bot] takes no name", NULL);
    assert_problem(&f->problems, 7, "double quotes", NULL);
    assert_problem(&f->problems, 9, "expected KEY = VALUE", NULL);
    assert_problem(&f->problems, 10, "unknown key \"indented\" in [console]", NULL);
    assert_problem(&f->problems, 11, "a key is missing", NULL);
    /* Keys under a broken header are not each reported again. */
    assert_int_equal(f->problems.count, 9);
}

/* All problems come out, in line order, as FILE:LINE: message. */
static void test_print_format(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, "[model \"m\"]\n"
                                  "provider = nowhere\n"
                                  "[bot]\n"
                                  "log_level = loud\n"
                                  "shutdown_grace = -5\n"),
                     HB_ECONFIG);
    char *out = problems_text(&f->problems);
    char *expect = NULL;
    assert_true(asprintf(&expect,
                         "%s:2: [model \"m\"]: provider \"nowhere\" is not defined (add a "
                         "[provider \"nowhere\"] section)\n"
                         "%s:4: bot.log_level: \"loud\" is not one of debug, info, warn, error\n"
                         "%s:5: bot.shutdown_grace: -5 is out of range (0 to 600 seconds)\n",
                         f->path, f->path, f->path) > 0);
    assert_string_equal(out, expect);
    free(out);
    free(expect);
}

static char *redacted_line(const char *secret)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    log_configure(LOG_DEBUG, false, mem);
    log_info("test.secret", "value=%s", secret);
    fclose(mem);
    log_configure(LOG_INFO, false, NULL);
    return buf;
}

static void test_env_indirection(void **state)
{
    struct fixture *f = *state;
    const char *token = "tg-123456:ABCDEF-env-secret";
    log_secret_clear();
    setenv("HAIBOT_TEST_TG_TOKEN", token, 1);
    setenv("HAIBOT_TEST_NAME", "From Env", 1);
    assert_loads(f, "[bot]\n"
                    "name_env = HAIBOT_TEST_NAME\n"
                    "[telegram]\n"
                    "enabled = true\n"
                    "token_env = HAIBOT_TEST_TG_TOKEN\n");
    assert_string_equal(f->cfg->telegram.token, token);
    assert_string_equal(f->cfg->bot.name, "From Env");
    char *line = redacted_line(token);
    assert_null(strstr(line, token));
    assert_non_null(strstr(line, "[redacted]"));
    free(line);
    log_secret_clear();

    unsetenv("HAIBOT_TEST_TG_TOKEN");
    assert_int_equal(load_text(f, "[telegram]\n"
                                  "enabled = true\n"
                                  "\n"
                                  "token_env = HAIBOT_TEST_TG_TOKEN\n"
                                  "[discord]\n"
                                  "tokn_env = X\n"
                                  "token_env = not a name\n"),
                     HB_ECONFIG);
    assert_null(f->cfg);
    assert_int_equal(f->problems.count, 3);
    assert_problem(&f->problems, 4, "environment variable HAIBOT_TEST_TG_TOKEN is not set",
                   "telegram.token");
    assert_problem(&f->problems, 6, "unknown key \"tokn_env\"", "did you mean \"token_env\"?");
    assert_problem(&f->problems, 7, "is not an environment variable name", NULL);
    unsetenv("HAIBOT_TEST_NAME");
}

/* Secrets written in the file are registered too, but only once accepted. */
static void test_secret_registered_on_accept_only(void **state)
{
    struct fixture *f = *state;
    log_secret_clear();
    assert_int_equal(load_text(f, "[discord]\n"
                                  "enabled = true\n"
                                  "token = rejected-token-abcdef\n"),
                     HB_ECONFIG);
    char *line = redacted_line("rejected-token-abcdef");
    assert_non_null(strstr(line, "rejected-token-abcdef"));
    free(line);
    assert_loads(f, "[discord]\n"
                    "enabled = true\n"
                    "token = accepted-token-abcdef\n"
                    "application_id = 1234\n");
    line = redacted_line("accepted-token-abcdef");
    assert_null(strstr(line, "accepted-token-abcdef"));
    free(line);
    log_secret_clear();
}

static void test_empty_file(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_text(f, ""), HB_ECONFIG);
    assert_int_equal(f->problems.count, 1);
    assert_problem(&f->problems, 0, "empty", NULL);
    assert_int_equal(load_text(f, "# only a comment\n\n[bot]\n; and another\n"), HB_ECONFIG);
    assert_int_equal(f->problems.count, 1);
    assert_problem(&f->problems, 0, "empty", NULL);
    char *out = problems_text(&f->problems);
    assert_non_null(strstr(out, ": the file is empty"));
    free(out);
}

static void test_binary_file(void **state)
{
    struct fixture *f = *state;
    const char data[] = "[bot]\nname = a\nlog_level = in\0fo\n";
    config_free(f->cfg);
    f->cfg = NULL;
    test_file_write(f->path, data, sizeof(data) - 1);
    assert_int_equal(config_load(f->path, &f->cfg, &f->problems), HB_ECONFIG);
    assert_null(f->cfg);
    assert_int_equal(f->problems.count, 1);
    assert_problem(&f->problems, 3, "binary file", NULL);
}

static void test_huge_file(void **state)
{
    struct fixture *f = *state;
    size_t size = 10u * 1024 * 1024;
    char *big = malloc(size);
    assert_non_null(big);
    for (size_t i = 0; i < size; i++)
        big[i] = (i % 64 == 63) ? '\n' : 'a';
    config_free(f->cfg);
    f->cfg = NULL;
    test_file_write(f->path, big, size);
    free(big);
    uint64_t start = test_now_ms();
    assert_int_equal(config_load(f->path, &f->cfg, &f->problems), HB_ECONFIG);
    assert_true(test_now_ms() - start < 1000);
    assert_null(f->cfg);
    assert_int_equal(f->problems.count, 1);
    assert_problem(&f->problems, 0, "file too large", "10485760 bytes");
}

static void test_missing_file(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config_load(f->path, &f->cfg, &f->problems), HB_EIO);
    assert_null(f->cfg);
    assert_problem(&f->problems, 0, "cannot open", NULL);
}

static void test_long_line(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    char pad[5000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    assert_true(asprintf(&text, "[bot]\nname = %s\nlog_level = nope\n", pad) > 0);
    assert_int_equal(load_text(f, text), HB_ECONFIG);
    free(text);
    assert_int_equal(f->problems.count, 2);
    assert_problem(&f->problems, 2, "line too long", NULL);
    assert_problem(&f->problems, 3, "\"nope\"", NULL);
}

/* Every prefix of a valid file (a save cut short) loads or is refused with
 * problems; never a crash, a leak or a half-filled config. */
static void test_truncated_file(void **state)
{
    struct fixture *f = *state;
    char *text = test_file_read(EXAMPLE, NULL);
    assert_non_null(text);
    size_t len = strlen(text);
    size_t ok = 0;
    size_t refused = 0;
    for (size_t cut = 0; cut < len; cut += 13) {
        config_free(f->cfg);
        f->cfg = NULL;
        test_file_write(f->path, text, cut);
        chmod(f->path, 0600);
        int rc = config_load(f->path, &f->cfg, &f->problems);
        if (rc == 0) {
            assert_non_null(f->cfg);
            ok++;
        } else {
            assert_int_equal(rc, HB_ECONFIG);
            assert_null(f->cfg);
            assert_true(f->problems.count > 0);
            refused++;
        }
    }
    assert_true(ok > 0);
    assert_true(refused > 0);

    /* A cut in the middle of a header or a value names its line. */
    const char *cut_header = "[bot]\nname = a\n[model \"demo-ch";
    assert_int_equal(load_text(f, cut_header), HB_ECONFIG);
    assert_problem(&f->problems, 3, "unterminated section header", NULL);
    assert_int_equal(load_text(f, "[provider \"p\"]\nkind = de"), HB_ECONFIG);
    assert_problem(&f->problems, 2, "\"de\" is not one of", "did you mean \"demo\"?");
    free(text);
}

struct diff_log {
    char text[2048];
    size_t n;
};

static void diff_collect(const struct config_change *ch, void *data)
{
    struct diff_log *d = data;
    static const char *const kinds[] = {"changed", "added", "removed"};
    char inst[64] = "";
    char key[64] = "";
    if (ch->instance != NULL)
        snprintf(inst, sizeof(inst), " \"%s\"", ch->instance);
    if (ch->key != NULL)
        snprintf(key, sizeof(key), " %s", ch->key);
    size_t used = strlen(d->text);
    snprintf(d->text + used, sizeof(d->text) - used, "%s %s%s%s %s\n", kinds[ch->kind], ch->section,
             inst, key, ch->live ? "live" : "restart");
    d->n++;
}

/* [access]: lists load as written, every key is live, and a malformed id
 * is a problem on its own line. */
static void test_access_section(void **state)
{
    struct fixture *f = *state;
    assert_loads(f, "[access]\nallow_users = discord:1, telegram:2\ndms = no\n"
                    "blocked_reply = silent\n");
    assert_string_equal(f->cfg->access.allow_users, "discord:1, telegram:2");
    assert_null(f->cfg->access.block_users);
    assert_false(f->cfg->access.dms);
    assert_int_equal(f->cfg->access.blocked_reply, CONFIG_BLOCKED_SILENT);
    struct config *old_cfg = f->cfg;
    f->cfg = NULL;
    assert_loads(f, "[access]\nallow_users = discord:1\nblock_roles = discord:9\n");
    assert_true(f->cfg->access.dms); /* the default */
    struct diff_log d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(config_diff(old_cfg, f->cfg, diff_collect, &d), 4);
    assert_string_equal(d.text, "changed access allow_users live\n"
                                "changed access block_roles live\n"
                                "changed access dms live\n"
                                "changed access blocked_reply live\n");
    config_free(old_cfg);
    config_free(f->cfg);
    f->cfg = NULL;
    assert_int_equal(load_text(f, "[bot]\nname = x\n[access]\nallow_users = discord:1\n"
                                  "block_groups = discord:1 telegram:x\n"
                                  "allow_roles = telegram:5\n"),
                     HB_ECONFIG);
    assert_problem(&f->problems, 5, "[access] block_groups", "\"telegram:x\"");
    assert_problem(&f->problems, 6, "[access] allow_roles", "Telegram has no roles");
    assert_int_equal(f->problems.count, 2);
}

static void test_diff(void **state)
{
    struct fixture *f = *state;
    assert_loads(f, "[bot]\nlog_level = info\n"
                    "[discord]\nenabled = true\ntoken = token-one-abcdef\napplication_id = 1\n"
                    "[provider \"p\"]\nkind = demo\n"
                    "[model \"a\"]\nprovider = p\n"
                    "[model \"b\"]\nprovider = p\n");
    struct config *old_cfg = f->cfg;
    f->cfg = NULL;
    assert_loads(f, "[bot]\nlog_level = debug\n"
                    "[discord]\nenabled = true\ntoken = token-two-abcdef\napplication_id = 1\n"
                    "[provider \"p\"]\nkind = demo\nmax_concurrent = 8\n"
                    "[model \"b\"]\nprovider = p\n"
                    "[model \"c\"]\nprovider = p\nmodality = image\n");
    struct diff_log d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(config_diff(old_cfg, f->cfg, diff_collect, &d), 5);
    assert_int_equal(d.n, 5);
    assert_string_equal(d.text, "changed bot log_level live\n"
                                "changed discord token restart\n"
                                "changed provider \"p\" max_concurrent live\n"
                                "removed model \"a\" live\n"
                                "added model \"c\" live\n");
    memset(&d, 0, sizeof(d));
    assert_int_equal(config_diff(f->cfg, f->cfg, diff_collect, &d), 0);
    config_free(old_cfg);
    log_secret_clear();
}

static void test_file_mode_warning(void **state)
{
    struct fixture *f = *state;
    test_file_write(f->path, "[bot]\n", (size_t)-1);
    chmod(f->path, 0600);
    assert_int_equal(config_file_check_mode(f->path), 0);
    chmod(f->path, 0644);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    log_configure(LOG_DEBUG, false, mem);
    assert_int_equal(config_file_check_mode(f->path), 1);
    fclose(mem);
    log_configure(LOG_INFO, false, NULL);
    assert_non_null(strstr(buf, "warn config.mode"));
    assert_non_null(strstr(buf, "mode=644"));
    free(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_example_loads, setup, teardown),
    cmocka_unit_test_setup_teardown(test_example_documents_every_key, setup, teardown),
    cmocka_unit_test_setup_teardown(test_defaults_applied, setup, teardown),
    cmocka_unit_test_setup_teardown(test_values_parsed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_repeatable_sections, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unknown_key_suggests, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
    cmocka_unit_test_setup_teardown(test_gallery_section, setup, teardown),
    cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
    cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
    cmocka_unit_test_setup_teardown(test_required_when_enabled, setup, teardown),
    cmocka_unit_test_setup_teardown(test_undefined_provider, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_enum_suggests, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_sections_and_lines, setup, teardown),
    cmocka_unit_test_setup_teardown(test_print_format, setup, teardown),
    cmocka_unit_test_setup_teardown(test_env_indirection, setup, teardown),
    cmocka_unit_test_setup_teardown(test_secret_registered_on_accept_only, setup, teardown),
    cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_binary_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_huge_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_access_section, setup, teardown),
    cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
    cmocka_unit_test_setup_teardown(test_file_mode_warning, setup, teardown),
    cmocka_unit_test_setup_teardown(test_model_params, setup, teardown),
    cmocka_unit_test_setup_teardown(test_model_vision, setup, teardown),
};

TEST_GROUP_DEFINE(config, tests, NULL, NULL)
