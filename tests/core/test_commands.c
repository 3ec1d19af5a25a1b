#include "tests/test.h"

#include "bot/router.h"
#include "core/button.h"
#include "core/commands.h"
#include "core/core.h"
#include "base/error.h"
#include "base/text.h"
#include "tests/fake/reply_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A spec with every option type, to exercise the parser without depending
 * on the real table's contents. */
static const char *const sizes[] = {"256x256", "512x512", NULL};
static const struct command_option_spec demo_opts[] = {
    {.name = "count",
     .description = "how many",
     .type = COMMAND_OPT_INTEGER,
     .required = true,
     .min = 1,
     .max = 10},
    {.name = "size", .description = "image size", .type = COMMAND_OPT_STRING, .choices = sizes},
    {.name = "loud", .description = "shout", .type = COMMAND_OPT_BOOLEAN},
    {.name = "who", .description = "a member", .type = COMMAND_OPT_USER},
    {.name = "prompt",
     .description = "what to say",
     .type = COMMAND_OPT_STRING,
     .min = 2,
     .max = 20,
     .rest = true},
};
static const struct command_spec demo = {.name = "demo",
                                         .description = "d",
                                         .example = "/demo 2 hi",
                                         .options = demo_opts,
                                         .noptions = 5};

static int parse(const char *args, struct invocation *inv, char *err)
{
    memset(inv, 0, sizeof(*inv));
    return command_args_parse(&demo, args, inv, err, 256);
}

static void test_parse_positional_and_rest(void **state)
{
    (void)state;
    struct invocation inv;
    char err[256];
    assert_int_equal(parse("3 512x512 yes <@!42> hello there  world", &inv, err), 0);
    assert_int_equal(inv.opts[0].integer, 3);
    assert_string_equal(inv.opts[1].string, "512x512");
    assert_int_equal(inv.opts[2].integer, 1);
    assert_string_equal(inv.opts[3].string, "42");
    assert_string_equal(inv.opts[4].string, "hello there world");
    invocation_clear(&inv);
}

static void test_parse_named_anywhere(void **state)
{
    (void)state;
    struct invocation inv;
    char err[256];
    assert_int_equal(parse("prompt:\"a cat\" count:2 size:256x256", &inv, err), 0);
    assert_int_equal(inv.opts[0].integer, 2);
    assert_string_equal(inv.opts[1].string, "256x256");
    assert_false(inv.opts[2].set);
    assert_string_equal(inv.opts[4].string, "a cat");
    invocation_clear(&inv);
}

/* Member options keep what was written, for core/member.c to resolve: a
 * mention becomes its id; "@name", a bare name and an id stay as they are;
 * a mention of something else is refused. In a reply to a member's message
 * (target_id), the reply names the member unless a word names one itself. */
static void test_parse_member_references(void **state)
{
    (void)state;
    static const struct command_option_spec move_opts[] = {
        {.name = "member", .description = "m", .type = COMMAND_OPT_USER, .required = true},
        {.name = "amount", .description = "a", .type = COMMAND_OPT_INTEGER, .required = true},
        {.name = "reason", .description = "r", .type = COMMAND_OPT_STRING, .rest = true},
    };
    static const struct command_spec move = {.name = "move",
                                             .description = "d",
                                             .example = "/move @a 1",
                                             .options = move_opts,
                                             .noptions = 3};
    struct invocation inv;
    char err[256];
    static const char *const cases[][2] = {
        {"<@123> 5", "123"},  {"<@!123> 5", "123"}, {"@Alice 5", "@Alice"},
        {"alice 5", "alice"}, {"777 5", "777"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&inv, 0, sizeof(inv));
        assert_int_equal(command_args_parse(&move, cases[i][0], &inv, err, sizeof(err)), 0);
        assert_string_equal(inv.opts[0].string, cases[i][1]);
        assert_int_equal(inv.opts[1].integer, 5);
        invocation_clear(&inv);
    }
    static const char *const bad[] = {"<@abc> 5", "@ 5", "<@12x> 5", "a/b 5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&inv, 0, sizeof(inv));
        assert_int_equal(command_args_parse(&move, bad[i], &inv, err, sizeof(err)), HB_EINVAL);
        assert_non_null(strstr(err, "must name a member"));
        invocation_clear(&inv);
    }
    /* A reply: the bare number is the amount, the rest the reason. */
    memset(&inv, 0, sizeof(inv));
    strcpy(inv.target_id, "555");
    assert_int_equal(command_args_parse(&move, "50 thanks a lot", &inv, err, sizeof(err)), 0);
    assert_string_equal(inv.opts[0].string, "555");
    assert_int_equal(inv.opts[1].integer, 50);
    assert_string_equal(inv.opts[2].string, "thanks a lot");
    invocation_clear(&inv);
    /* A reply whose text names someone: the text wins. */
    memset(&inv, 0, sizeof(inv));
    strcpy(inv.target_id, "555");
    assert_int_equal(command_args_parse(&move, "@bob 50", &inv, err, sizeof(err)), 0);
    assert_string_equal(inv.opts[0].string, "@bob");
    assert_int_equal(inv.opts[1].integer, 50);
    invocation_clear(&inv);
    memset(&inv, 0, sizeof(inv));
    strcpy(inv.target_id, "555");
    assert_int_equal(command_args_parse(&move, "amount:7 member:<@9>", &inv, err, sizeof(err)), 0);
    assert_string_equal(inv.opts[0].string, "9");
    invocation_clear(&inv);
    /* No words at all in a reply: the member is named, the amount missing. */
    memset(&inv, 0, sizeof(inv));
    strcpy(inv.target_id, "555");
    assert_int_equal(command_args_parse(&move, "", &inv, err, sizeof(err)), HB_EINVAL);
    assert_non_null(strstr(err, "Missing `amount`"));
    invocation_clear(&inv);
}

static void test_parse_errors_are_specific(void **state)
{
    (void)state;
    struct invocation inv;
    char err[256];
    assert_int_equal(parse("", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "Missing `count`"));
    invocation_clear(&inv);
    assert_int_equal(parse("abc", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "`count` must be a whole number"));
    invocation_clear(&inv);
    assert_int_equal(parse("11", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "between 1 and 10 (got 11)"));
    invocation_clear(&inv);
    assert_int_equal(parse("1 size:huge", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "one of: 256x256, 512x512"));
    invocation_clear(&inv);
    assert_int_equal(parse("1 loud:maybe", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "yes or no"));
    invocation_clear(&inv);
    assert_int_equal(parse("1 who:<#12>", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "must name a member"));
    invocation_clear(&inv);
    /* A wallet's account is not a member's name: the error says how to
     * name one. */
    assert_int_equal(parse("1 who:console:operator", &inv, err), HB_EINVAL);
    assert_string_equal(err, "Option `who` must name a member: a mention, @username, a numeric "
                             "user id or a user name, without a platform in front (got "
                             "\"console:operator\").");
    invocation_clear(&inv);
    assert_int_equal(parse("1 prompt:x", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "at least 2 characters"));
    invocation_clear(&inv);
    /* Length counts characters, not bytes: 20 two-byte letters fit. */
    assert_int_equal(parse("1 prompt:ééééééééééééééééééééé", &inv, err), HB_EINVAL);
    assert_non_null(strstr(err, "21 characters long; the limit is 20"));
    invocation_clear(&inv);
    assert_int_equal(parse("1 prompt:éééééééééééééééééééé", &inv, err), 0);
    invocation_clear(&inv);
}

static void test_match_longest_name(void **state)
{
    (void)state;
    char name[32];
    const char *args;
    const struct command_spec *c = commands_match("admin   reload now", name, sizeof(name), &args);
    assert_non_null(c);
    assert_string_equal(c->name, "admin reload");
    assert_string_equal(args, "now");
    assert_null(commands_match("halp me", name, sizeof(name), &args));
    assert_string_equal(name, "halp");
}

static void test_table_is_well_formed(void **state)
{
    (void)state;
    size_t n;
    const struct command_spec *t = commands_table(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(t[i].handler);
        assert_true(strlen(t[i].description) <= 100);
        assert_non_null(t[i].example);
        assert_true(t[i].noptions <= COMMAND_MAX_OPTIONS);
        bool seen_optional = false;
        for (size_t j = 0; j < t[i].noptions; j++) {
            const struct command_option_spec *o = &t[i].options[j];
            assert_true(strlen(o->name) <= 32);
            for (const char *p = o->name; *p; p++)
                assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
            /* Discord requires required options before optional ones. */
            if (!o->required)
                seen_optional = true;
            else
                assert_false(seen_optional);
        }
        for (size_t k = i + 1; k < n; k++)
            assert_string_not_equal(t[i].name, t[k].name);
    }
}

/* ---- router ----------------------------------------------------------- */

static void run_line(struct router *r, const char *line, bool admin, struct reply_capture *cap)
{
    reply_capture_init(cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_CONSOLE;
    strcpy(inv.user_id, "tester");
    inv.admin = admin;
    inv.reply = &cap->reply;
    router_dispatch(r, &inv, line);
}

static void test_router_help(void **state)
{
    (void)state;
    struct core core = {.bot_name = "Test Bot"};
    struct router *r = router_new(&core);
    struct reply_capture cap;
    run_line(r, "help", false, &cap);
    assert_int_equal(cap.finished, 1);
    assert_non_null(strstr(cap.text, "Test Bot commands:"));
    assert_non_null(strstr(cap.text, "/help"));
    assert_null(strstr(cap.text, "admin reload")); /* not shown to members */
    reply_capture_close(&cap);

    run_line(r, "help", true, &cap);
    assert_non_null(strstr(cap.text, "/admin reload"));
    reply_capture_close(&cap);

    run_line(r, "help /help", false, &cap);
    assert_non_null(strstr(cap.text, "command (text, optional)"));
    reply_capture_close(&cap);
    assert_int_equal(router_in_flight(r), 0);
    router_free(r);
}

static void test_router_unknown_and_admin(void **state)
{
    (void)state;
    struct core core = {.bot_name = "Test Bot"};
    struct router *r = router_new(&core);
    struct reply_capture cap;
    run_line(r, "hepl", false, &cap);
    assert_int_equal(cap.finished, 1);
    assert_non_null(strstr(cap.text, "Unknown command /hepl. Did you mean /help?"));
    reply_capture_close(&cap);

    run_line(r, "admin reload", false, &cap);
    assert_int_equal(cap.finished, 1);
    assert_non_null(strstr(cap.text, "Only admins can use /admin reload."));
    reply_capture_close(&cap);

    /* No host: the admin gets a clear answer, not a crash. */
    run_line(r, "admin reload", true, &cap);
    assert_non_null(strstr(cap.text, "not available"));
    reply_capture_close(&cap);
    router_free(r);
}

struct held {
    struct reply *reply;
};
static struct held held_reply;

static void hold_reload(void *host, struct reply *rp)
{
    (void)host;
    held_reply.reply = rp; /* finished later, as a slow handler would */
}

static void drained(void *data)
{
    (*(int *)data)++;
}

static void test_router_drain_waits_for_work(void **state)
{
    (void)state;
    static const struct core_host_ops ops = {.reload = hold_reload};
    struct core core = {.bot_name = "Test Bot", .host_ops = &ops};
    struct router *r = router_new(&core);
    struct reply_capture cap, late;
    run_line(r, "admin reload", true, &cap);
    assert_int_equal(router_in_flight(r), 1);
    assert_int_equal(cap.finished, 0);
    int ndrained = 0;
    router_drain(r, drained, &ndrained);
    assert_int_equal(ndrained, 0);
    run_line(r, "help", false, &late); /* refused while draining */
    assert_non_null(strstr(late.text, "shutting down"));
    assert_int_equal(late.finished, 1);
    reply_text(held_reply.reply, true, "done");
    reply_finish(held_reply.reply);
    assert_int_equal(ndrained, 1);
    assert_int_equal(cap.finished, 1);
    assert_string_equal(cap.text, "done");
    reply_capture_close(&cap);
    reply_capture_close(&late);
    router_free(r);
}

static void test_button_refs(void **state)
{
    (void)state;
    uint8_t key[BUTTON_KEY_SIZE] = {1, 2, 3};
    struct invocation owner;
    memset(&owner, 0, sizeof(owner));
    owner.platform = COMMAND_PLATFORM_TELEGRAM;
    strcpy(owner.user_id, "123456789");
    strcpy(owner.scope_id, "-100987654321");
    char ref[COMMAND_BUTTON_REF_MAX + 1];
    assert_int_equal(button_ref_make(ref, key, "hist", "p2.s12345", &owner), 0);
    assert_true(strlen(ref) <= 64);

    struct invocation press = owner;
    strcpy(press.button_ref, ref);
    char payload[64];
    assert_int_equal(button_ref_check(&press, key, payload, sizeof(payload)), 0);
    assert_string_equal(payload, "p2.s12345");

    /* Another member, another scope, another key, or an edited payload: refused. */
    strcpy(press.user_id, "111");
    assert_int_equal(button_ref_check(&press, key, payload, sizeof(payload)), HB_EPERM);
    press = owner;
    strcpy(press.button_ref, ref);
    strcpy(press.scope_id, "-100111");
    assert_int_equal(button_ref_check(&press, key, payload, sizeof(payload)), HB_EPERM);
    press = owner;
    strcpy(press.button_ref, ref);
    uint8_t other[BUTTON_KEY_SIZE] = {9};
    assert_int_equal(button_ref_check(&press, other, payload, sizeof(payload)), HB_EPERM);
    snprintf(press.button_ref, sizeof(press.button_ref), "hist:p9.s12345:%s",
             strrchr(ref, ':') + 1);
    assert_int_equal(button_ref_check(&press, key, payload, sizeof(payload)), HB_EPERM);
    strcpy(press.button_ref, "garbage");
    assert_int_equal(button_ref_check(&press, key, payload, sizeof(payload)), HB_EINVAL);

    /* Refs that would not fit Telegram's 64 bytes are refused at creation. */
    assert_int_equal(
        button_ref_make(ref, key, "hist",
                        "a-very-long-payload-that-does-not-fit-in-sixty-four-bytes-at-all", &owner),
        HB_EINVAL);
    assert_int_equal(button_ref_make(ref, key, "Bad!", "1", &owner), HB_EINVAL);
    assert_int_equal(button_ref_make(ref, key, "hist", "a:b", &owner), HB_EINVAL);
}

static void test_router_unknown_button(void **state)
{
    (void)state;
    struct core core = {.bot_name = "Test Bot"};
    struct router *r = router_new(&core);
    struct reply_capture cap;
    reply_capture_init(&cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    strcpy(inv.button_ref, "nosuch:1:AAAAAAAAAAA");
    inv.reply = &cap.reply;
    router_dispatch(r, &inv, NULL);
    assert_int_equal(cap.finished, 1);
    assert_non_null(strstr(cap.text, "no longer active"));
    reply_capture_close(&cap);
    router_free(r);
}

static void test_text_pairs(void **state)
{
    (void)state;
    struct text_pair p[4];
    assert_int_equal(text_pairs_parse("100:500, 250:1500", p, 4), 2);
    assert_string_equal(p[1].key, "250");
    assert_int_equal(p[1].value, 1500);
    assert_int_equal(text_pairs_parse(" 0.0.456858:10 ", p, 4), 1);
    assert_string_equal(p[0].key, "0.0.456858");
    assert_int_equal(text_pairs_parse(NULL, p, 4), 0);
    assert_int_equal(text_pairs_parse("", p, 4), 0);
    const char *bad[] = {"a", "a:0", "a:b", ":5", "a:5x", "a b:5", "1:1,2:2,3:3,4:4,5:5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(text_pairs_parse(bad[i], p, 4), -1);
}

static void test_text_base64_and_words(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(text_base64_decode("aGI6dGVzdA==", 12, out, sizeof(out), false), 7);
    assert_memory_equal(out, "hb:test", 7);
    assert_int_equal(text_base64_decode("-_8", 3, out, sizeof(out), true), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(text_base64_decode("-_8", 3, out, sizeof(out), false), -1); /* not url */
    assert_int_equal(text_base64_decode("aGJ", 3, out, sizeof(out), false), -1); /* stray bits */
    assert_int_equal(text_base64_decode("a", 1, out, sizeof(out), false), -1);
    assert_int_equal(text_base64_decode("aGI6dGVzdA==", 12, out, 3, false), -1); /* too long */
    char list[] = " gpt-4o ,, demo-chat,\tx ";
    const char *w[4];
    assert_int_equal(text_words_split(list, w, 4), 3);
    assert_string_equal(w[0], "gpt-4o");
    assert_string_equal(w[1], "demo-chat");
    assert_string_equal(w[2], "x");
    assert_int_equal(text_words_split(NULL, w, 4), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_text_pairs),
    cmocka_unit_test(test_text_base64_and_words),
    cmocka_unit_test(test_button_refs),
    cmocka_unit_test(test_router_unknown_button),
    cmocka_unit_test(test_parse_positional_and_rest),
    cmocka_unit_test(test_parse_named_anywhere),
    cmocka_unit_test(test_parse_errors_are_specific),
    cmocka_unit_test(test_parse_member_references),
    cmocka_unit_test(test_match_longest_name),
    cmocka_unit_test(test_table_is_well_formed),
    cmocka_unit_test(test_router_help),
    cmocka_unit_test(test_router_unknown_and_admin),
    cmocka_unit_test(test_router_drain_waits_for_work),
};

TEST_GROUP_DEFINE(commands, tests, NULL, NULL)
