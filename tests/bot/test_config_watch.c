/* Live reload on a real libuv loop in a temporary directory. Every wait has
 * a generous upper bound (a guard timer) and ends as soon as the awaited
 * result arrives; nothing sleeps and hopes. */
#include "tests/test.h"

#include "bot/config_watch.h"
#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define GUARD_MS 10000

struct harness {
    uv_loop_t loop;
    uv_timer_t guard;
    bool timed_out;
    char *dir;
    char *path;
    struct config *cur; /* the config in use, as a daemon would hold it */
    struct config_watch *w;
    size_t results; /* main callback calls */
    int status;     /* of the last result */
    bool requested;
    bool restart_required;
    size_t nchanges;
    char changes[2048];  /* "section[ "inst"][ key] live|restart" lines */
    char problems[2048]; /* FILE:LINE: message lines */
    size_t done_calls;   /* config_watch_reload callbacks */
    int done_status;
    bool done_had_config;
    FILE *devnull; /* log output during the test */
};

static void guard_fire(uv_timer_t *t)
{
    struct harness *h = t->data;
    h->timed_out = true;
}

static void write_private(const char *path, const char *text)
{
    test_file_write(path, text, (size_t)-1);
    chmod(path, 0600);
}

static void on_result(struct config_watch *w, const struct config_watch_result *r, void *data)
{
    struct harness *h = data;
    (void)w;
    h->results++;
    h->status = r->status;
    h->requested = r->requested;
    h->restart_required = r->restart_required;
    h->nchanges = r->nchanges;
    h->changes[0] = '\0';
    h->problems[0] = '\0';
    for (size_t i = 0; i < r->nchanges; i++) {
        const struct config_change *ch = &r->changes[i];
        size_t used = strlen(h->changes);
        snprintf(h->changes + used, sizeof(h->changes) - used, "%s%s%s%s%s%s %s\n", ch->section,
                 ch->instance != NULL ? " \"" : "", ch->instance != NULL ? ch->instance : "",
                 ch->instance != NULL ? "\"" : "", ch->key != NULL ? " " : "",
                 ch->key != NULL ? ch->key : "", ch->live ? "live" : "restart");
    }
    if (r->problems != NULL) {
        FILE *mem = fmemopen(h->problems, sizeof(h->problems) - 1, "w");
        assert_non_null(mem);
        config_problems_print(r->problems, mem);
        fclose(mem);
    }
    if (r->status == 0) {
        /* Take the new config; the watcher no longer needs the old one. */
        assert_non_null(r->config);
        config_free(h->cur);
        h->cur = r->config;
    } else {
        assert_null(r->config);
    }
}

static void on_done(struct config_watch *w, const struct config_watch_result *r, void *data)
{
    struct harness *h = data;
    (void)w;
    h->done_calls++;
    h->done_status = r->status;
    h->done_had_config = r->config != NULL;
}

static const char *const base_conf = "[bot]\n"
                                     "log_level = info\n"
                                     "[storage]\n"
                                     "path = one.db\n"
                                     "[provider \"demo\"]\n"
                                     "kind = demo\n"
                                     "[model \"demo-chat\"]\n"
                                     "provider = demo\n";

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->guard), 0);
    h->guard.data = h;
    h->dir = test_tmpdir_new();
    assert_true(asprintf(&h->path, "%s/bot.conf", h->dir) > 0);
    write_private(h->path, base_conf);
    struct config_problems p;
    config_problems_init(&p);
    assert_int_equal(config_load(h->path, &h->cur, &p), 0);
    config_problems_free(&p);
    h->w = config_watch_new(&h->loop, h->path, h->cur, on_result, h);
    assert_non_null(h->w);
    config_watch_debounce_set(h->w, 50);
    /* Reload lines would clutter the test output; tests that read them
     * capture them themselves. */
    h->devnull = fopen("/dev/null", "w");
    assert_non_null(h->devnull);
    log_configure(LOG_INFO, false, h->devnull);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    config_watch_free(h->w);
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&h->loop);
    log_configure(LOG_INFO, false, NULL);
    fclose(h->devnull);
    config_free(h->cur);
    test_tmpdir_remove(h->dir);
    free(h->dir);
    free(h->path);
    free(h);
    log_secret_clear();
    assert_int_equal(closed, 0);
    return 0;
}

/* Run the loop until the main callback has been called `results` times (or
 * the guard passes, which fails the test). */
static void wait_results(struct harness *h, size_t results)
{
    h->timed_out = false;
    uv_timer_start(&h->guard, guard_fire, GUARD_MS, 0);
    while (h->results < results && !h->timed_out)
        uv_run(&h->loop, UV_RUN_ONCE);
    uv_timer_stop(&h->guard);
    if (h->results < results)
        fail_msg("waited %d ms for result %zu, have %zu", GUARD_MS, results, h->results);
}

/* Run the loop until cond holds. An in-place save is not atomic: a reload
 * may see the file between truncation and the write and refuse it, so tests
 * of in-place writes wait for the state they expect rather than for a count
 * of results. */
static void wait_until(struct harness *h, bool (*cond)(const struct harness *), const char *what)
{
    h->timed_out = false;
    uv_timer_start(&h->guard, guard_fire, GUARD_MS, 0);
    while (!cond(h) && !h->timed_out)
        uv_run(&h->loop, UV_RUN_ONCE);
    uv_timer_stop(&h->guard);
    if (!cond(h))
        fail_msg("waited %d ms for %s; last status %d, problems:\n%s", GUARD_MS, what, h->status,
                 h->problems);
}

static bool level_is_debug(const struct harness *h)
{
    return h->cur->bot.log_level == LOG_DEBUG;
}

static bool level_is_warn(const struct harness *h)
{
    return h->cur->bot.log_level == LOG_WARN;
}

static bool typo_reported(const struct harness *h)
{
    return h->status == HB_ECONFIG && strstr(h->problems, "log_levl") != NULL;
}

/* Whether the storage path names `name` in the config file's folder (a
 * relative path is resolved against it). */
static bool storage_is(const struct harness *h, const char *name)
{
    const char *p = h->cur->storage.path;
    size_t n = strlen(name), len = strlen(p);
    return len > n && p[0] == '/' && p[len - n - 1] == '/' && strcmp(p + len - n, name) == 0;
}

static bool path_is_two(const struct harness *h)
{
    return storage_is(h, "two.db");
}

static void wait_done(struct harness *h, size_t calls)
{
    h->timed_out = false;
    uv_timer_start(&h->guard, guard_fire, GUARD_MS, 0);
    while (h->done_calls < calls && !h->timed_out)
        uv_run(&h->loop, UV_RUN_ONCE);
    uv_timer_stop(&h->guard);
    if (h->done_calls < calls)
        fail_msg("waited %d ms for reload answer %zu", GUARD_MS, calls);
}

/* Closing the watcher must leave nothing on the loop. */
static void finish(struct harness *h)
{
    config_watch_free(h->w);
    h->w = NULL;
}

static void test_reload_after_in_place_write(void **state)
{
    struct harness *h = *state;
    assert_int_equal(config_watch_start(h->w), 0);
    FILE *f = fopen(h->path, "r+");
    assert_non_null(f);
    /* Rewrite in place: same inode, truncated and written again. */
    assert_int_equal(ftruncate(fileno(f), 0), 0);
    fputs("[bot]\nlog_level = debug\n[storage]\npath = one.db\n"
          "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\nprovider = demo\n",
          f);
    assert_int_equal(fclose(f), 0);
    wait_until(h, level_is_debug, "log_level = debug");
    assert_int_equal(h->status, 0);
    assert_false(h->requested);
    assert_int_equal(h->cur->bot.log_level, LOG_DEBUG);
    assert_string_equal(h->changes, "bot log_level live\n");
    assert_false(h->restart_required);
    finish(h);
}

static void rename_over(struct harness *h, const char *text)
{
    char *tmp = NULL;
    assert_true(asprintf(&tmp, "%s/.bot.conf.swp", h->dir) > 0);
    write_private(tmp, text);
    assert_int_equal(rename(tmp, h->path), 0);
    free(tmp);
}

static void test_reload_after_rename(void **state)
{
    struct harness *h = *state;
    assert_int_equal(config_watch_start(h->w), 0);
    struct stat before;
    assert_int_equal(stat(h->path, &before), 0);
    rename_over(h, "[bot]\nname = Renamed\n[storage]\npath = one.db\n"
                   "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\nprovider = demo\n");
    wait_results(h, 1);
    struct stat after;
    assert_int_equal(stat(h->path, &after), 0);
    assert_true(before.st_ino != after.st_ino);
    assert_int_equal(h->status, 0);
    assert_string_equal(h->cur->bot.name, "Renamed");
    assert_string_equal(h->changes, "bot name live\n");

    /* The directory watch survives the inode change: a second save works. */
    rename_over(h, "[bot]\nname = Again\n[storage]\npath = one.db\n"
                   "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\nprovider = demo\n"
                   "[model \"demo-image\"]\nprovider = demo\nmodality = image\n");
    wait_results(h, 2);
    assert_int_equal(h->status, 0);
    assert_string_equal(h->cur->bot.name, "Again");
    assert_string_equal(h->changes, "bot name live\nmodel \"demo-image\" live\n");
    finish(h);
}

static void test_invalid_edit_keeps_config(void **state)
{
    struct harness *h = *state;
    const struct config *before = h->cur;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    assert_non_null(mem);
    log_configure(LOG_DEBUG, false, mem);
    assert_int_equal(config_watch_start(h->w), 0);
    /* A save cut short in the middle of a value, plus a typo. */
    write_private(h->path, "[bot]\nlog_levl = debug\n[storage]\npath = two.db\n"
                           "[provider \"demo\"]\nkind = de");
    wait_until(h, typo_reported, "the refusal");
    log_configure(LOG_INFO, false, h->devnull);
    fclose(mem);
    assert_int_equal(h->status, HB_ECONFIG);
    assert_ptr_equal(h->cur, before);
    assert_int_equal(h->cur->bot.log_level, LOG_INFO);
    assert_true(storage_is(h, "one.db"));
    assert_non_null(strstr(h->problems, "bot.conf:2: unknown key \"log_levl\" in [bot]; did you "
                                        "mean \"log_level\"?\n"));
    assert_non_null(strstr(h->problems, "bot.conf:6: provider \"demo\".kind: \"de\""));
    /* Every problem is logged with its line, and the refusal is explained. */
    assert_non_null(strstr(logbuf, "error config.problem"));
    assert_non_null(strstr(logbuf, "line=2"));
    assert_non_null(strstr(logbuf, "line=6"));
    assert_non_null(strstr(logbuf, "config.reload"));
    assert_non_null(strstr(logbuf, "ok=0"));
    free(logbuf);

    /* Fixing the file applies it, compared with the config still in use. */
    write_private(h->path, "[bot]\nlog_level = warn\n[storage]\npath = one.db\n"
                           "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\n"
                           "provider = demo\n");
    wait_until(h, level_is_warn, "log_level = warn");
    assert_int_equal(h->status, 0);
    assert_string_equal(h->changes, "bot log_level live\n");
    finish(h);
}

static void test_diff_marks_restart_keys(void **state)
{
    struct harness *h = *state;
    assert_int_equal(config_watch_start(h->w), 0);
    write_private(h->path, "[bot]\nlog_level = info\n[storage]\npath = two.db\n"
                           "reservation_timeout = 60\n"
                           "[discord]\nenabled = true\ntoken = discord-token-abcdef\n"
                           "application_id = 42\n"
                           "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\n"
                           "provider = demo\n");
    wait_until(h, path_is_two, "path = two.db");
    assert_int_equal(h->status, 0);
    assert_true(h->restart_required);
    assert_string_equal(h->changes, "storage path restart\n"
                                    "storage reservation_timeout live\n"
                                    "discord enabled restart\n"
                                    "discord token restart\n"
                                    "discord application_id restart\n");
    finish(h);
}

static void test_reload_now(void **state)
{
    struct harness *h = *state;
    /* Not watching: only the explicit request loads the file. */
    write_private(h->path, "[bot]\nlog_format = json\n[storage]\npath = one.db\n"
                           "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\n"
                           "provider = demo\n");
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    wait_done(h, 1);
    assert_int_equal(h->results, 1);
    assert_true(h->requested);
    assert_int_equal(h->status, 0);
    assert_int_equal(h->done_status, 0);
    assert_false(h->done_had_config);
    assert_int_equal(h->cur->bot.log_format, CONFIG_LOG_JSON);
    assert_string_equal(h->changes, "bot log_format live\n");

    /* Nothing changed: still answered, with no changes. Two requests at
     * once are both answered. */
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    wait_done(h, 3);
    assert_int_equal(h->done_status, 0);
    assert_int_equal(h->nchanges, 0);

    /* A vanished file is reported and the config stays. */
    const struct config *kept = h->cur;
    assert_int_equal(remove(h->path), 0);
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    wait_done(h, 4);
    assert_int_equal(h->done_status, HB_EIO);
    assert_ptr_equal(h->cur, kept);
    assert_non_null(strstr(h->problems, "cannot open"));
    finish(h);
}

/* Freeing with a request outstanding answers it as canceled and still
 * leaves the loop empty (teardown checks uv_loop_close). */
static void test_free_cancels_requests(void **state)
{
    struct harness *h = *state;
    assert_int_equal(config_watch_start(h->w), 0);
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    finish(h);
    assert_int_equal(h->done_calls, 2);
    assert_int_equal(h->done_status, HB_ECANCELED);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(h->results, 0);
}

/* An answer that asks again (an operator repeating /admin reload) is
 * served by a fresh load once the first one is fully delivered. */
static void on_done_again(struct config_watch *w, const struct config_watch_result *r, void *data)
{
    struct harness *h = data;
    on_done(w, r, data);
    if (h->done_calls == 1)
        assert_int_equal(config_watch_reload(w, on_done_again, h), 0);
}

static void test_reload_from_callback(void **state)
{
    struct harness *h = *state;
    assert_int_equal(config_watch_reload(h->w, on_done_again, h), 0);
    wait_done(h, 2);
    assert_int_equal(h->results, 2);
    assert_int_equal(h->done_status, 0);
    finish(h);
}

/* The owner may free the watcher from inside its callback (shutting down
 * on a reload result); the loop still ends empty. */
static void on_result_free(struct config_watch *w, const struct config_watch_result *r, void *data)
{
    struct harness *h = data;
    on_result(w, r, data);
    config_watch_free(h->w);
    h->w = NULL;
}

static void test_free_from_callback(void **state)
{
    struct harness *h = *state;
    config_watch_free(h->w);
    h->w = config_watch_new(&h->loop, h->path, h->cur, on_result_free, h);
    assert_non_null(h->w);
    assert_int_equal(config_watch_start(h->w), 0);
    assert_int_equal(config_watch_reload(h->w, on_done, h), 0);
    wait_results(h, 1);
    assert_null(h->w);
    assert_int_equal(h->done_calls, 1);
    assert_int_equal(h->done_status, HB_ECANCELED);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_reload_after_in_place_write, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reload_after_rename, setup, teardown),
    cmocka_unit_test_setup_teardown(test_invalid_edit_keeps_config, setup, teardown),
    cmocka_unit_test_setup_teardown(test_diff_marks_restart_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reload_now, setup, teardown),
    cmocka_unit_test_setup_teardown(test_free_cancels_requests, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reload_from_callback, setup, teardown),
    cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
};

TEST_GROUP_DEFINE(config_watch, tests, NULL, NULL)
