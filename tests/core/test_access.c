/* core/access.c: who may use the bot. The rule on plain invocations; the
 * daemon tests (tests/bot/test_daemon_access.c) run it through the router. */
#include "tests/test.h"

#include "base/error.h"
#include "core/access.h"

#include <stdio.h>
#include <string.h>

static struct invocation inv_make(enum command_platform p, const char *user, const char *group)
{
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = p;
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", user);
    if (group != NULL) {
        inv.scope = COMMAND_SCOPE_GROUP;
        snprintf(inv.scope_id, sizeof(inv.scope_id), "%s", group);
    }
    return inv;
}

static struct access_rules *rules_make(const struct access_settings *s)
{
    char err[256] = "";
    struct access_rules *r = access_rules_new(s, err, sizeof(err));
    if (r == NULL)
        fail_msg("rules refused: %s", err);
    return r;
}

static void test_no_rules_allow_everyone(void **state)
{
    (void)state;
    struct access_settings s = {.dms = true};
    struct access_rules *r = rules_make(&s);
    struct invocation a = inv_make(COMMAND_PLATFORM_DISCORD, "1", "77");
    struct invocation b = inv_make(COMMAND_PLATFORM_TELEGRAM, "2", NULL);
    assert_int_equal(access_check(r, &a), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &b), ACCESS_ALLOWED);
    assert_int_equal(access_check(NULL, &a), ACCESS_ALLOWED);
    assert_int_equal(access_reply_mode(r), ACCESS_REPLY_MESSAGE);
    access_rules_free(r);
}

/* An allow list lets in only the members it names, on the platform it
 * names; the same number on another platform is someone else. */
static void test_allow_users_per_platform(void **state)
{
    (void)state;
    struct access_settings s = {.allow_users = "discord:111, discord:222", .dms = true};
    struct access_rules *r = rules_make(&s);
    struct invocation listed = inv_make(COMMAND_PLATFORM_DISCORD, "111", "77");
    struct invocation other = inv_make(COMMAND_PLATFORM_DISCORD, "333", "77");
    struct invocation other_dm = inv_make(COMMAND_PLATFORM_DISCORD, "333", NULL);
    struct invocation same_number_tg = inv_make(COMMAND_PLATFORM_TELEGRAM, "111", "-100");
    struct invocation tg = inv_make(COMMAND_PLATFORM_TELEGRAM, "999", NULL);
    assert_int_equal(access_check(r, &listed), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &other), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &other_dm), ACCESS_BLOCKED);
    /* The list names no Telegram member: Telegram is not restricted. */
    assert_int_equal(access_check(r, &same_number_tg), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &tg), ACCESS_ALLOWED);
    access_rules_free(r);

    struct access_settings t = {.allow_users = "telegram:42", .dms = true};
    r = rules_make(&t);
    struct invocation tg42 = inv_make(COMMAND_PLATFORM_TELEGRAM, "42", "-1001");
    struct invocation tg43 = inv_make(COMMAND_PLATFORM_TELEGRAM, "43", "-1001");
    struct invocation dc42 = inv_make(COMMAND_PLATFORM_DISCORD, "42", "77");
    assert_int_equal(access_check(r, &tg42), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &tg43), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &dc42), ACCESS_ALLOWED);
    access_rules_free(r);
}

/* A role list lets in members holding a listed role; a member listed by
 * id needs no role. */
static void test_roles(void **state)
{
    (void)state;
    struct access_settings s = {.allow_roles = "discord:900",
                                .block_roles = "discord:666",
                                .allow_users = "discord:5",
                                .dms = true};
    struct access_rules *r = rules_make(&s);
    struct invocation with = inv_make(COMMAND_PLATFORM_DISCORD, "1", "77");
    with.roles[0] = 12;
    with.roles[1] = 900;
    with.nroles = 2;
    struct invocation without = inv_make(COMMAND_PLATFORM_DISCORD, "2", "77");
    without.roles[0] = 12;
    without.nroles = 1;
    struct invocation named = inv_make(COMMAND_PLATFORM_DISCORD, "5", "77");
    struct invocation banned = with;
    banned.roles[2] = 666;
    banned.nroles = 3;
    assert_int_equal(access_check(r, &with), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &without), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &named), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &banned), ACCESS_BLOCKED);
    /* Roles exist in a server only: in a DM the role does not count. */
    struct invocation with_dm = with;
    with_dm.scope = COMMAND_SCOPE_DM;
    with_dm.scope_id[0] = '\0';
    assert_int_equal(access_check(r, &with_dm), ACCESS_BLOCKED);
    access_rules_free(r);
}

/* A block list wins over an allow list; groups are matched by their id. */
static void test_block_wins_and_groups(void **state)
{
    (void)state;
    struct access_settings s = {.allow_users = "telegram:7 telegram:8",
                                .block_users = "telegram:8",
                                .allow_groups = "telegram:-1001, discord:77",
                                .block_groups = "telegram:-1002",
                                .dms = true};
    struct access_rules *r = rules_make(&s);
    struct invocation ok = inv_make(COMMAND_PLATFORM_TELEGRAM, "7", "-1001");
    struct invocation blocked = inv_make(COMMAND_PLATFORM_TELEGRAM, "8", "-1001");
    struct invocation elsewhere = inv_make(COMMAND_PLATFORM_TELEGRAM, "7", "-1003");
    struct invocation banned_group = inv_make(COMMAND_PLATFORM_TELEGRAM, "7", "-1002");
    struct invocation dm = inv_make(COMMAND_PLATFORM_TELEGRAM, "7", NULL);
    struct invocation dc_guild = inv_make(COMMAND_PLATFORM_DISCORD, "1", "77");
    struct invocation dc_other = inv_make(COMMAND_PLATFORM_DISCORD, "1", "78");
    assert_int_equal(access_check(r, &ok), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &blocked), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &elsewhere), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &banned_group), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &dm), ACCESS_ALLOWED); /* a group list says nothing of DMs */
    assert_int_equal(access_check(r, &dc_guild), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &dc_other), ACCESS_BLOCKED);
    access_rules_free(r);
}

/* Admins are always allowed: blocked, unlisted, or in a DM with DMs off. */
static void test_admins_always_allowed(void **state)
{
    (void)state;
    struct access_settings s = {.allow_users = "console:nobody",
                                .block_users = "console:root, discord:1",
                                .block_groups = "discord:77",
                                .dms = false,
                                .reply = ACCESS_REPLY_SILENT};
    struct access_rules *r = rules_make(&s);
    struct invocation root = inv_make(COMMAND_PLATFORM_CONSOLE, "root", NULL);
    struct invocation dc = inv_make(COMMAND_PLATFORM_DISCORD, "1", "77");
    assert_int_equal(access_check(r, &root), ACCESS_BLOCKED);
    assert_int_equal(access_check(r, &dc), ACCESS_BLOCKED);
    root.admin = true;
    dc.admin = true;
    assert_int_equal(access_check(r, &root), ACCESS_ALLOWED);
    assert_int_equal(access_check(r, &dc), ACCESS_ALLOWED);
    assert_int_equal(access_reply_mode(r), ACCESS_REPLY_SILENT);
    access_rules_free(r);
}

static void test_dms_off(void **state)
{
    (void)state;
    struct access_settings s = {.dms = false};
    struct access_rules *r = rules_make(&s);
    struct invocation dm = inv_make(COMMAND_PLATFORM_TELEGRAM, "7", NULL);
    struct invocation console = inv_make(COMMAND_PLATFORM_CONSOLE, "operator", NULL);
    struct invocation group = inv_make(COMMAND_PLATFORM_TELEGRAM, "7", "-1001");
    assert_int_equal(access_check(r, &dm), ACCESS_NO_DMS);
    assert_int_equal(access_check(r, &console), ACCESS_NO_DMS);
    assert_int_equal(access_check(r, &group), ACCESS_ALLOWED);
    access_rules_free(r);
}

/* A malformed entry is refused with the entry and the reason. */
static void test_malformed_entries(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        enum access_list_kind kind;
        const char *needle;
    } bad[] = {
        {"123", ACCESS_LIST_USERS, "names no platform"},
        {"discord:abc", ACCESS_LIST_USERS, "a Discord id is a number"},
        {"discord:0", ACCESS_LIST_USERS, "a Discord id is a number"},
        {"discord:99999999999999999999", ACCESS_LIST_USERS, "a Discord id is a number"},
        {"discord:", ACCESS_LIST_USERS, "no id"},
        {"telegram:-100123", ACCESS_LIST_USERS, "positive number"},
        {"telegram:12x", ACCESS_LIST_GROUPS, "whole number"},
        {"telegram:5", ACCESS_LIST_ROLES, "Telegram has no roles"},
        {"console:x", ACCESS_LIST_GROUPS, "no groups"},
        {"slack:5", ACCESS_LIST_USERS, "unknown platform \"slack\""},
        {"discord:1, discord:x2", ACCESS_LIST_USERS, "\"discord:x2\""},
    };
    for (size_t i = 0; i < TEST_ARRAY_SIZE(bad); i++) {
        char err[256] = "";
        assert_int_equal(access_list_check(bad[i].list, bad[i].kind, err, sizeof(err)), HB_EINVAL);
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].list, err, bad[i].needle);
    }
    char err[256] = "";
    assert_int_equal(access_list_check("discord:80351110224678912, telegram:-1001234567890",
                                       ACCESS_LIST_GROUPS, err, sizeof(err)),
                     0);
    assert_int_equal(access_list_check("console:operator telegram:42 discord:1", ACCESS_LIST_USERS,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(access_list_check(NULL, ACCESS_LIST_ROLES, err, sizeof(err)), 0);
    struct access_settings s = {.block_roles = "discord:1, telegram:2"};
    assert_null(access_rules_new(&s, err, sizeof(err)));
    assert_non_null(strstr(err, "Telegram has no roles"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_no_rules_allow_everyone),
    cmocka_unit_test(test_allow_users_per_platform),
    cmocka_unit_test(test_roles),
    cmocka_unit_test(test_block_wins_and_groups),
    cmocka_unit_test(test_admins_always_allowed),
    cmocka_unit_test(test_dms_off),
    cmocka_unit_test(test_malformed_entries),
};

TEST_GROUP_DEFINE(access, tests, NULL, NULL)
