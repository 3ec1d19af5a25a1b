/* `haibot init`: the file it writes passes check-config and is private, it
 * never overwrites by accident, it refuses malformed tokens, it checks
 * tokens against (fake) Telegram and Discord, and a person can answer its
 * questions on a terminal. Each test runs the real binary. */
#include "bot/init.h"
#include "tests/fake/discord_rest.h"
#include "tests/fake/telegram_api.h"
#include "tests/pty.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_TOKEN "123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"
/* base64url("123456789012345678"), a timestamp part, an hmac part. */
#define DC_TOKEN "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz01234"

struct init_fixture {
    char *dir;
    char conf[512];
};

static int setup(void **state)
{
    struct init_fixture *f = calloc(1, sizeof(*f));
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct init_fixture *f = *state;
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int check_config(const char *conf)
{
    char *argv[] = {(char *)test_haibot_bin(), "check-config", "-c", (char *)conf, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 20000, &p);
    if (p.status != 0)
        fprintf(stderr, "check-config: %s%s", p.out, p.err);
    int status = p.status;
    test_proc_free(&p);
    return status;
}

static void test_token_shapes(void **state)
{
    (void)state;
    assert_true(init_telegram_token_ok(TG_TOKEN));
    assert_false(init_telegram_token_ok("123456789:short"));
    assert_false(init_telegram_token_ok(":ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"));
    assert_false(init_telegram_token_ok("12a:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"));
    assert_false(init_telegram_token_ok(TG_TOKEN "x"));
    char id[32] = "";
    assert_true(init_discord_token_ok(DC_TOKEN, id, sizeof(id)));
    assert_string_equal(id, "123456789012345678");
    assert_false(init_discord_token_ok("MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe", NULL, 0));
    assert_false(init_discord_token_ok(
        "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abc+efghijklmnopqrstuvwxyz0", NULL, 0));
    /* The first part must name a numeric id: "hello world, hi!" does not. */
    assert_false(init_discord_token_ok(
        "aGVsbG8gd29ybGQsIGhpIQ.GaBcDe.abcdefghijklmnopqrstuvwxyz01234", NULL, 0));
    assert_true(init_env_name_ok("TELEGRAM_TOKEN"));
    assert_false(init_env_name_ok("1TOKEN"));
    assert_false(init_env_name_ok("A-B"));
    /* Every preset names its models, and the list ends. */
    size_t n = 0;
    for (const struct init_preset *p = init_presets; p->name != NULL; p++, n++)
        assert_non_null(p->models[0].name);
    assert_int_equal(n, 8);
    assert_non_null(init_preset_find("lmstudio"));
    assert_null(init_preset_find("nosuch"));
}

/* Every platform and every preset: the file passes check-config, is 0600,
 * holds a token only where asked and names the variables otherwise. */
static void test_noninteractive_every_preset(void **state)
{
    struct init_fixture *f = *state;
    setenv("HB_TEST_TG", TG_TOKEN, 1);
    setenv("HB_TEST_KEY", "sk-test", 1);
    for (const struct init_preset *p = init_presets; p->name != NULL; p++) {
        unlink(f->conf);
        char *argv[] = {(char *)test_haibot_bin(),
                        "init",
                        "--non-interactive",
                        "-c",
                        f->conf,
                        "--platforms",
                        "console,telegram,discord",
                        "--telegram-token",
                        TG_TOKEN,
                        "--telegram-token-env",
                        "HB_TEST_TG",
                        "--telegram-admins",
                        "42, 43",
                        "--discord-token=" DC_TOKEN,
                        "--provider",
                        (char *)p->name,
                        "--api-key-env",
                        "HB_TEST_KEY",
                        "--welcome-bonus",
                        "250",
                        NULL};
        struct test_proc proc;
        test_proc_run(argv, NULL, 20000, &proc);
        if (proc.status != 0)
            fprintf(stderr, "init %s: %s%s", p->name, proc.out, proc.err);
        assert_int_equal(proc.status, 0);
        assert_non_null(strstr(proc.out, "Wrote "));
        /* No token reaches the screen. */
        assert_null(strstr(proc.out, TG_TOKEN));
        assert_null(strstr(proc.err, TG_TOKEN));
        test_proc_free(&proc);

        struct stat st;
        assert_int_equal(stat(f->conf, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        char *text = test_file_read(f->conf, NULL);
        assert_non_null(text);
        assert_null(strstr(text, TG_TOKEN)); /* only the variable is written */
        assert_non_null(strstr(text, "token_env = HB_TEST_TG"));
        assert_non_null(strstr(text, "token = " DC_TOKEN)); /* the operator chose the file */
        assert_non_null(strstr(text, "application_id = 123456789012345678"));
        assert_non_null(strstr(text, "welcome_bonus = 250"));
        assert_non_null(strstr(text, "admins = 42, 43"));
        char want[128];
        snprintf(want, sizeof(want), "[provider \"%s\"]", p->name);
        assert_non_null(strstr(text, want));
        free(text);
        assert_int_equal(check_config(f->conf), 0);
    }
    unsetenv("HB_TEST_TG");
    unsetenv("HB_TEST_KEY");
}

static void test_never_overwrites(void **state)
{
    struct init_fixture *f = *state;
    test_file_write(f->conf, "# mine\n", (size_t)-1);
    char *argv[] = {(char *)test_haibot_bin(), "init", "--non-interactive", "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 20000, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "--force"));
    test_proc_free(&p);
    char *text = test_file_read(f->conf, NULL);
    assert_string_equal(text, "# mine\n");
    free(text);

    char *forced[] = {
        (char *)test_haibot_bin(), "init", "--non-interactive", "--force", "-c", f->conf, NULL};
    test_proc_run(forced, NULL, 20000, &p);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
    struct stat st;
    assert_int_equal(stat(f->conf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(check_config(f->conf), 0);
}

static void test_bad_token_refused(void **state)
{
    struct init_fixture *f = *state;
    char *argv[] = {(char *)test_haibot_bin(),
                    "init",
                    "--non-interactive",
                    "-c",
                    f->conf,
                    "--platforms",
                    "telegram",
                    "--telegram-token",
                    "12345:tooshort",
                    NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 20000, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "Telegram token does not look like"));
    assert_null(strstr(p.err, "tooshort"));
    test_proc_free(&p);
    assert_int_equal(access(f->conf, F_OK), -1);

    char *name[] = {(char *)test_haibot_bin(), "init", "--non-interactive", "-c", f->conf, "--name",
                    "Bot ; not a comment",     NULL};
    test_proc_run(name, NULL, 20000, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "name may not"));
    test_proc_free(&p);
    assert_int_equal(access(f->conf, F_OK), -1);

    char *dc[] = {(char *)test_haibot_bin(),
                  "init",
                  "--non-interactive",
                  "-c",
                  f->conf,
                  "--platforms",
                  "discord",
                  "--discord-token",
                  "not.a-token",
                  NULL};
    test_proc_run(dc, NULL, 20000, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "Discord token does not look like"));
    test_proc_free(&p);
    assert_int_equal(access(f->conf, F_OK), -1);
}

/* --check-tokens asks the (fake) Telegram getMe and Discord /users/@me; a
 * refused token writes nothing. */
static void test_check_tokens(void **state)
{
    struct init_fixture *f = *state;
    struct tgapi *tg = tgapi_thread_new(TG_TOKEN);
    assert_non_null(tg);
    struct fake_rest_options opt = {0};
    struct fake_rest *dc = fake_rest_start_thread(&opt);
    assert_non_null(dc);
    char tg_base[256], dc_base[256];
    snprintf(tg_base, sizeof(tg_base), "%s", tgapi_base(tg));
    snprintf(dc_base, sizeof(dc_base), "%s", fake_rest_api_base(dc));

    char *argv[] = {(char *)test_haibot_bin(),
                    "init",
                    "--non-interactive",
                    "--check-tokens",
                    "-c",
                    f->conf,
                    "--platforms",
                    "telegram,discord",
                    "--telegram-token",
                    TG_TOKEN,
                    "--telegram-api",
                    tg_base,
                    "--discord-token",
                    DC_TOKEN,
                    "--discord-api",
                    dc_base,
                    NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 30000, &p);
    if (p.status != 0)
        fprintf(stderr, "init: %s%s", p.out, p.err);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "Telegram: the token works, the bot is @" TGAPI_BOT_USERNAME));
    assert_non_null(strstr(p.out, "Discord: the token works, the bot is fakebot"));
    test_proc_free(&p);
    assert_int_equal(fake_rest_matching(dc, "GET", "/users/@me"), 1);
    struct fake_rest_request *req = fake_rest_get(dc, fake_rest_count(dc) - 1);
    assert_string_equal(req->auth, "Bot " DC_TOKEN);
    fake_rest_request_free(req);
    char *text = test_file_read(f->conf, NULL);
    assert_non_null(strstr(text, "api_base = ")); /* the bases chosen are kept */
    free(text);

    /* Telegram answers 401 to another token: nothing is written. */
    unlink(f->conf);
    argv[9] = "987654321:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi";
    test_proc_run(argv, NULL, 30000, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "Telegram refused the token (HTTP 401)"));
    assert_null(strstr(p.err, "987654321:"));
    test_proc_free(&p);
    assert_int_equal(access(f->conf, F_OK), -1);

    tgapi_close(tg, NULL, NULL);
    fake_rest_close(dc, NULL, NULL);
    fake_rest_free(dc);
}

/* A person answers the questions on a terminal; the token is typed
 * without echo and never shown. */
static void test_interactive_pty(void **state)
{
    struct init_fixture *f = *state;
    /* Flags given with the questions are their defaults. */
    char *argv[] = {(char *)test_haibot_bin(), "init", "-c", f->conf,
                    "--welcome-bonus",         "60",   NULL};
    struct test_pty t;
    test_pty_start(&t, argv);
    assert_true(test_pty_wait_for(&t, "Bot name [HAI Bot]: ", 20000));
    test_pty_type(&t, "Pty Bot\n");
    assert_true(test_pty_wait_for(&t, "Platforms (console, telegram, discord) [console]: ", 5000));
    test_pty_type(&t, "console, telegram\n");
    assert_true(test_pty_wait_for(&t, "env/file [env]: ", 5000));
    test_pty_type(&t, "file\n");
    assert_true(test_pty_wait_for(&t, "Telegram bot token: ", 5000));
    test_pty_type(&t, "123:bad\n"); /* the wrong shape is asked again */
    assert_true(test_pty_wait_for(&t, "does not look like a Telegram bot token", 5000));
    assert_true(test_pty_wait_for(&t, "Telegram bot token: ", 5000));
    test_pty_type(&t, TG_TOKEN "\n");
    assert_true(test_pty_wait_for(&t, "Telegram admins", 5000));
    test_pty_type(&t, "4242\n");
    assert_true(test_pty_wait_for(&t, "Provider [demo]: ", 5000));
    test_pty_type(&t, "ollama\n");
    assert_true(test_pty_wait_for(&t, "Provider base URL [http://127.0.0.1:11434/v1]: ", 5000));
    test_pty_type(&t, "\n");
    assert_true(test_pty_wait_for(&t, "Welcome bonus (credits for each new member) [60]: ", 5000));
    test_pty_type(&t, "\n");
    assert_true(test_pty_wait_for(&t, "May the console user run admin commands? [Y/n]: ", 5000));
    test_pty_type(&t, "n\n");
    assert_true(test_pty_wait_for(&t, "needs the network)? [y/N]: ", 5000));
    test_pty_type(&t, "\n");
    assert_true(test_pty_wait_for(&t, "Wrote ", 10000));
    assert_int_equal(test_pty_finish(&t, 10000), 0);
    assert_null(strstr(t.out, TG_TOKEN)); /* typed without echo */
    test_pty_free(&t);

    struct stat st;
    assert_int_equal(stat(f->conf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = test_file_read(f->conf, NULL);
    assert_non_null(strstr(text, "name = Pty Bot"));
    assert_non_null(strstr(text, "token = " TG_TOKEN));
    assert_non_null(strstr(text, "admins = 4242"));
    assert_non_null(strstr(text, "welcome_bonus = 60"));
    assert_non_null(strstr(text, "admin = false"));
    assert_non_null(strstr(text, "base_url = http://127.0.0.1:11434/v1"));
    free(text);
    assert_int_equal(check_config(f->conf), 0);
}

static void test_needs_terminal(void **state)
{
    struct init_fixture *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "init", "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "console\n", 20000, &p);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "--non-interactive"));
    test_proc_free(&p);
    assert_int_equal(access(f->conf, F_OK), -1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_token_shapes),
    cmocka_unit_test_setup_teardown(test_noninteractive_every_preset, setup, teardown),
    cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_token_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_check_tokens, setup, teardown),
    cmocka_unit_test_setup_teardown(test_interactive_pty, setup, teardown),
    cmocka_unit_test_setup_teardown(test_needs_terminal, setup, teardown),
};

TEST_GROUP_DEFINE(init, tests, NULL, NULL)
