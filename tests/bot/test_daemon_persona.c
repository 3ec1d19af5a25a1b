/* Personas through the real daemon on the console: a member's choice is
 * kept across a restart (read back before the adapters start), the
 * persona's prompt file counts in the price shown before the work, and a
 * reload reads the file again. */
#include "tests/test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void dp_write_conf(const struct test_daemon_dir *f)
{
    char text[2048];
    /* One credit per input token, nothing else: "up to N credits" is the
     * prompt's bytes plus the system prompt's (each /chat starts anew, so
     * no remembered turn adds to it). */
    snprintf(text, sizeof(text),
             "[bot]\nname = Test Bot\n"
             "[storage]\npath = %s\n"
             "[console]\nuser = tester\nadmin = true\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"chat\"]\nprovider = demo\nprice_input_1k = 1000\nmax_output_tokens = 10\n"
             "[persona \"pirate\"]\ndescription = Arr\nsystem_prompt_file = pirate.txt\n",
             f->db, f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

static void dp_prompt(const struct test_daemon_dir *f, const char *text)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/pirate.txt", f->dir);
    test_file_write(path, text, (size_t)-1);
}

static void dp_say(struct test_child *c, const char *line)
{
    size_t n = strlen(line);
    assert_true(write(c->in_fd, line, n) == (ssize_t)n);
}

static void test_choice_survives_restart_and_reload(void **state)
{
    struct test_daemon_dir *f = *state;
    dp_write_conf(f);
    dp_prompt(f, "Be a pirate.\n"); /* 12 bytes once the line break goes */
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};

    struct test_child c;
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
    dp_say(&c, "/new\n/chat hi\n");
    assert_true(test_child_wait_for(&c, "out", "up to 2 credits", 15000));
    dp_say(&c, "/persona pirate\n");
    assert_true(test_child_wait_for(&c, "out", "your /chat uses the persona pirate", 15000));
    dp_say(&c, "/new\n/chat hi\n");
    assert_true(test_child_wait_for(&c, "out", "up to 14 credits", 15000));
    kill(c.pid, SIGTERM);
    assert_int_equal(test_child_finish(&c, 15000), 0);
    test_child_free(&c);

    /* A new run reads the choice back; a reload reads the file again. */
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
    dp_say(&c, "/persona\n");
    assert_true(test_child_wait_for(&c, "out", "In use here: pirate (your choice).", 15000));
    dp_say(&c, "/new\n/chat hi\n");
    assert_true(test_child_wait_for(&c, "out", "up to 14 credits", 15000));
    dp_prompt(f, "Be a pirate captain.\n"); /* 20 bytes */
    dp_say(&c, "/admin reload\n");
    assert_true(test_child_wait_for(&c, "out", "bot.conf reloaded", 15000));
    dp_say(&c, "/new\n/chat hi\n");
    assert_true(test_child_wait_for(&c, "out", "up to 22 credits", 15000));
    kill(c.pid, SIGTERM);
    assert_int_equal(test_child_finish(&c, 15000), 0);
    test_child_free(&c);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_choice_survives_restart_and_reload, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
};

TEST_GROUP_DEFINE(daemon_persona, tests, NULL, NULL)
