/* The console for a person: buttons pressed by number (through a pipe, as
 * a script would), and on a terminal a banner, a prompt, and a typed line
 * that runs. Each test starts the real daemon. */
#include "tests/pty.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void person_conf(const struct test_daemon_dir *f)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Person Bot\n"
             "[storage]\npath = %s\n"
             "[console]\nuser = tester\nadmin = true\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n"
             "[persona \"pirate\"]\ndescription = Arr\nsystem_prompt = Talk like a pirate.\n",
             f->db, f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

/* /press N presses button N of the last reply that had buttons; a bare
 * number does too while those buttons are the newest reply; a number with
 * no button behind it is said so. The pipe shows no prompt and no banner. */
static void test_press_through_pipe(void **state)
{
    struct test_daemon_dir *f = *state;
    person_conf(f);
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv,
                  "/press 1\n"
                  "/persona\n"
                  "/press 1\n"
                  "/persona\n"
                  "2\n"
                  "/press 7\n",
                  60000, &p);
    if (p.status != 0)
        fprintf(stderr, "%s\n%s\n", p.out, p.err);
    assert_int_equal(p.status, 0);
    const char *o = p.out;
    /* Before any buttons: nothing to press. */
    const char *none = strstr(o, "No buttons to press");
    assert_non_null(none);
    const char *listed = strstr(none, "buttons: [1] pirate [2] None");
    assert_non_null(listed);
    const char *pressed = strstr(listed, "[pressed pirate]");
    assert_non_null(pressed);
    const char *chosen = strstr(pressed, "From now on your /chat uses the persona pirate.");
    assert_non_null(chosen);
    /* The bare number 2 presses None on the next listing. */
    const char *bare = strstr(chosen, "[pressed None]");
    assert_non_null(bare);
    assert_non_null(strstr(bare, "You no longer choose a persona"));
    assert_non_null(strstr(bare, "Press a button by its number, 1 to 2"));
    assert_null(strstr(o, "haibot> "));
    assert_null(strstr(o, "HAI Bot console."));
    test_proc_free(&p);
}

/* A bare number with no buttons just shown is a chat turn, not a press. */
static void test_bare_number_is_chat(void **state)
{
    struct test_daemon_dir *f = *state;
    person_conf(f);
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "/persona\n/balance\n1\n", 60000, &p);
    assert_int_equal(p.status, 0);
    assert_null(strstr(p.out, "[pressed"));
    assert_non_null(strstr(p.out, "[demo]"));
    test_proc_free(&p);
}

/* The daemon on a terminal, with HOME at home: the console keeps its
 * history there by default, never in the home of whoever runs the tests. */
static void pty_start_home(struct test_pty *t, const struct test_daemon_dir *f, const char *home)
{
    const char *old = getenv("HOME");
    char *saved = old != NULL ? strdup(old) : NULL;
    setenv("HOME", home, 1);
    char *argv[] = {(char *)test_haibot_bin(), "-c", (char *)f->conf, NULL};
    test_pty_start(t, argv);
    if (saved != NULL)
        setenv("HOME", saved, 1);
    else
        unsetenv("HOME");
    free(saved);
}

/* On a terminal: the banner says how to get help and how to quit, the
 * prompt shows, a typed line runs, history recalls it, Ctrl-D ends. */
static void test_terminal_prompt(void **state)
{
    struct test_daemon_dir *f = *state;
    person_conf(f);
    struct test_pty t;
    pty_start_home(&t, f, f->dir);
    assert_true(test_pty_wait_for(&t, "/help lists the commands", 30000));
    assert_true(test_pty_wait_for(&t, "Ctrl-D leaves the console", 5000));
    assert_true(test_pty_wait_for(&t, "haibot> ", 10000));
    test_pty_type(&t, "/bal");
    test_pty_type(&t, "ance\r");
    assert_true(test_pty_wait_for(&t, "Your wallet: 100 credits available", 15000));
    assert_true(test_pty_wait_for(&t, "haibot> ", 10000));
    /* Up arrow recalls /balance; Enter runs it again. */
    test_pty_type(&t, "\033[A\r");
    assert_true(test_pty_wait_for(&t, "Your wallet: 100 credits available", 15000));
    assert_true(test_pty_wait_for(&t, "haibot> ", 10000));
    test_pty_type(&t, "\004");
    assert_true(test_pty_wait_for(&t, "console.end_of_input", 15000));
    assert_int_equal(test_pty_finish(&t, 20000), 0);
    test_pty_free(&t);
}

/* Run the daemon on a terminal with HOME at home, type each line of
 * `lines` (each waits for `expect` after it), then leave with Ctrl-D.
 * Returns what the terminal showed (heap). */
static char *history_session(const struct test_daemon_dir *f, const char *home,
                             const char *const *lines, const char *const *expect)
{
    struct test_pty t;
    pty_start_home(&t, f, home);
    assert_true(test_pty_wait_for(&t, "haibot> ", 30000));
    for (size_t i = 0; lines[i] != NULL; i++) {
        test_pty_type(&t, lines[i]);
        assert_true(test_pty_wait_for(&t, expect[i], 15000));
        assert_true(test_pty_wait_for(&t, "haibot> ", 10000));
    }
    test_pty_type(&t, "\004");
    assert_true(test_pty_wait_for(&t, "console.end_of_input", 15000));
    assert_int_equal(test_pty_finish(&t, 20000), 0);
    char *shown = strdup(t.out);
    assert_non_null(shown);
    test_pty_free(&t);
    return shown;
}

/* The terminal's history is kept between runs, in ~/.haibot_history by
 * default (private to the user), without the lines typed after a space
 * and without prompts (chat turns, commands that take one), which only the
 * store keeps (where /forget erases them); an empty history_file keeps
 * none. */
static void test_terminal_history_kept(void **state)
{
    struct test_daemon_dir *f = *state;
    person_conf(f);
    free(history_session(
        f, f->dir,
        (const char *const[]){"/balance\r", " /persona\r", "hello there\r", "/chat tell me more\r",
                              "/models\r", "hi again\r", "/models\r", NULL},
        (const char *const[]){"Your wallet: 100 credits available", "buttons:", "[demo]", "[demo]",
                              "demo-chat", "[demo]", "demo-chat"}));
    char path[640]; /* room for home[600] and the file name */
    snprintf(path, sizeof(path), "%s/.haibot_history", f->dir);
    size_t len = 0;
    char *kept = test_file_read(path, &len);
    assert_non_null(kept);
    /* Prompts stay off the disk: a chat turn and /chat are not kept; nor
     * /models twice in a row there, a prompt between them or not. */
    assert_string_equal(kept, "/balance\n/models\n");
    free(kept);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The next run recalls it with the up arrow; a file grown past twice
     * the history's 1,000 lines is cut to its newest 1,000 at start. */
    FILE *grow = fopen(path, "w");
    assert_non_null(grow);
    for (int i = 0; i < 2100; i++)
        fprintf(grow, "/chat line %d\n", i);
    fputs("/balance\n", grow);
    fclose(grow);
    chmod(path, 0644); /* made readable by others: it is used, with a warning */
    char *shown = history_session(f, f->dir, (const char *const[]){"\033[A\r", NULL},
                                  (const char *const[]){"Your wallet: 97 credits available"});
    assert_non_null(strstr(shown, "console.history_mode"));
    free(shown);
    kept = test_file_read(path, &len);
    assert_non_null(kept);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += kept[i] == '\n';
    assert_int_equal(lines, 1000); /* the recalled line is not kept twice */
    assert_true(strncmp(kept, "/chat line 1101\n", 16) == 0);
    assert_non_null(strstr(kept, "/chat line 2099\n/balance\n"));
    assert_string_equal(kept + len - 9, "/balance\n");
    free(kept);

    /* Turned off: nothing written in the (other) home. */
    char conf[4096];
    size_t clen = 0;
    char *text = test_file_read(f->conf, &clen);
    assert_non_null(text);
    char *at = strstr(text, "[console]\n");
    assert_non_null(at);
    at += strlen("[console]\n");
    snprintf(conf, sizeof(conf), "%.*shistory_file =\n%s", (int)(at - text), text, at);
    free(text);
    test_file_write(f->conf, conf, (size_t)-1);
    char home[600];
    snprintf(home, sizeof(home), "%s/home2", f->dir);
    assert_int_equal(mkdir(home, 0700), 0);
    free(history_session(f, home, (const char *const[]){"/balance\r", NULL},
                         (const char *const[]){"Your wallet: 97 credits available"}));
    snprintf(path, sizeof(path), "%s/.haibot_history", home);
    assert_int_equal(stat(path, &st), -1);
}

/* /usage chart on the console: the PNG is saved as a file and its path
 * printed, as generated images are. */
static void test_usage_chart_saved(void **state)
{
    struct test_daemon_dir *f = *state;
    person_conf(f);
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "/chat hello\n/usage chart\n", 60000, &p);
    if (p.status != 0)
        fprintf(stderr, "daemon exit %d; its stderr:\n%s\n", p.status, p.err);
    assert_int_equal(p.status, 0);
    const char *caption = strstr(p.out, "Your spending in the last 7 days, per day and model.");
    assert_non_null(caption);
    const char *saved = strstr(caption, "[image saved to ");
    assert_non_null(saved);
    char path[512];
    assert_int_equal(sscanf(saved, "[image saved to %511[^,]", path), 1);
    assert_non_null(strstr(path, ".png"));
    size_t len = 0;
    char *png = test_file_read(path, &len);
    assert_non_null(png);
    assert_true(len > 1000);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    test_proc_free(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_usage_chart_saved, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
    cmocka_unit_test_setup_teardown(test_press_through_pipe, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
    cmocka_unit_test_setup_teardown(test_bare_number_is_chat, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
    cmocka_unit_test_setup_teardown(test_terminal_prompt, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
    cmocka_unit_test_setup_teardown(test_terminal_history_kept, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
};

TEST_GROUP_DEFINE(console_person, tests, NULL, NULL)
