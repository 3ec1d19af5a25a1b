/* The [approval] section of bot.conf: its defaults, its models checked
 * against the [model] sections and its destinations checked, each problem
 * on its own line; a filter rule may say review; and the daemon's copy of
 * it as core's rules. */
#include "tests/test.h"

#include "bot/config.h"
#include "bot/generation.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ca {
    char *dir;
    char *path;
    struct config *cfg;
    struct config_problems problems;
};

static int ca_load(struct ca *ca, const char *text)
{
    config_free(ca->cfg);
    ca->cfg = NULL;
    test_file_write(ca->path, text, (size_t)-1);
    chmod(ca->path, 0600);
    return config_load(ca->path, &ca->cfg, &ca->problems);
}

static void ca_problem(const struct ca *ca, int line, const char *needle)
{
    for (size_t i = 0; i < ca->problems.count; i++) {
        if (ca->problems.items[i].line == line &&
            strstr(ca->problems.items[i].message, needle) != NULL)
            return;
    }
    for (size_t i = 0; i < ca->problems.count; i++)
        print_error("line %d: %s\n", ca->problems.items[i].line, ca->problems.items[i].message);
    fail_msg("no problem on line %d with \"%s\"", line, needle);
}

static void test_approval_section(void **state)
{
    (void)state;
    struct ca ca = {0};
    ca.dir = test_tmpdir_new();
    assert_true(asprintf(&ca.path, "%s/bot.conf", ca.dir) > 0);
    config_problems_init(&ca.problems);

    assert_int_equal(ca_load(&ca, "[provider \"p\"]\n"
                                  "kind = demo\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"
                                  "[filter \"f\"]\n"
                                  "kind = words\n"
                                  "words = secret\n"
                                  "action = review\n"
                                  "[approval]\n"
                                  "enabled = true\n"
                                  "above = 50\n"
                                  "models = m\n"
                                  "telegram_chat = -1001234\n"
                                  "discord_channel = 123456789012345678\n"),
                     0);
    const struct config_approval *a = &ca.cfg->approval;
    assert_true(a->enabled);
    assert_int_equal(a->above, 50);
    assert_int_equal(a->timeout, 86400); /* 24h by default */
    assert_int_equal(ca.cfg->filters[0].action, CONFIG_FILTER_REVIEW);
    struct approval_rules r;
    generation_approval_rules(ca.cfg, &r);
    assert_true(r.enabled);
    assert_int_equal(r.timeout_ms, 86400000);
    assert_true(approval_list_has(r.models, "m"));
    assert_string_equal(r.telegram_chat, "-1001234");
    assert_string_equal(r.discord_channel, "123456789012345678");
    char reason[64];
    assert_true(approval_list_at(r.reasons, 1, reason, sizeof(reason)));
    assert_string_equal(reason, "Too expensive");

    assert_int_equal(ca_load(&ca, "[provider \"p\"]\n"
                                  "kind = demo\n"
                                  "[model \"m\"]\n"
                                  "provider = p\n"
                                  "[approval]\n"
                                  "enabled = true\n"
                                  "models = m, nosuch\n"
                                  "timeout = 5\n"
                                  "discord_channel = #general\n"
                                  "telegram_chat = group\n"),
                     HB_ECONFIG);
    ca_problem(&ca, 7, "\"nosuch\", which is not a [model] section");
    ca_problem(&ca, 8, "timeout");
    ca_problem(&ca, 9, "discord_channel must be a channel id");
    ca_problem(&ca, 10, "telegram_chat must be a chat id");

    config_free(ca.cfg);
    config_problems_free(&ca.problems);
    test_tmpdir_remove(ca.dir);
    free(ca.dir);
    free(ca.path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_approval_section),
};

TEST_GROUP_DEFINE(config_approval, tests, NULL, NULL)
