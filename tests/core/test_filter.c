#include "tests/test.h"

#include "base/error.h"
#include "core/filter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Build a filter from rules, failing the test on error. */
static struct filter *filter_build(const struct filter_rule *rules, size_t n)
{
    char err[256] = "";
    struct filter *f = filter_new(rules, n, err, sizeof(err));
    if (f == NULL)
        fail_msg("filter_new: %s", err);
    return f;
}

/* With leet folding "$$$" reads as "sss", so the fixtures below avoid
 * phone numbers with 555 when leet is on. */

/* Apply and return the redacted text (heap); asserts it was not blocked. */
static char *filter_text(const struct filter *f, const char *in)
{
    struct filter_result r;
    assert_int_equal(filter_apply(f, in, &r), 0);
    assert_false(r.blocked);
    assert_null(r.blocked_by);
    assert_non_null(r.text);
    assert_int_equal(strlen(r.text), r.text_len);
    char *out = strdup(r.text);
    filter_result_clear(&r);
    return out;
}

static void expect_text(const struct filter *f, const char *in, const char *want)
{
    char *got = filter_text(f, in);
    assert_string_equal(got, want);
    free(got);
}

static const char *const bad_words[] = {"ass", "Hate", "kill yourself", "caf\xC3\xA9", "$$$"};

static void test_filter_words(void **state)
{
    (void)state;
    const struct filter_rule rules[] = {
        {.name = "words",
         .kind = FILTER_KIND_WORDS,
         .action = FILTER_ACTION_REDACT,
         .words = bad_words,
         .nwords = TEST_ARRAY_SIZE(bad_words)},
    };
    struct filter *f = filter_build(rules, 1);
    expect_text(f, "I HATE this, hate it.", "I [removed] this, [removed] it.");
    /* Whole words only: no match inside "class", "hated" or "asses". */
    expect_text(f, "a class act, hated asses", "a class act, hated asses");
    expect_text(f, "ass", "[removed]");
    expect_text(f, "Please KILL YOURSELF now", "Please [removed] now");
    expect_text(f, "kill  yourself", "kill  yourself"); /* documented: spacing is not undone */
    /* ASCII case folds, the multi-byte letter must match exactly. */
    expect_text(f, "CAF\xC3\xA9 au lait", "[removed] au lait");
    expect_text(f, "caf\xC3\x89", "caf\xC3\x89");
    /* A multi-byte letter glued to a word makes it a different word. */
    expect_text(f,
                "\xC3\xA9"
                "ass",
                "\xC3\xA9"
                "ass");
    expect_text(f, "ass\xC3\xA9 cafe", "ass\xC3\xA9 cafe");
    /* Punctuation-only words need no boundaries. */
    expect_text(f, "win$$$now", "win[removed]now");
    /* Without leet, digits stay digits. */
    expect_text(f, "h4t3", "h4t3");

    struct filter_result r;
    assert_int_equal(filter_apply(f, "ass hate ass class", &r), 0);
    assert_int_equal(r.nhits, 1);
    assert_int_equal(r.hits[0], 3);
    assert_int_equal(r.redactions, 3);
    filter_result_clear(&r);
    assert_null(r.text);
    assert_null(r.hits);
    filter_free(f);
}

static void test_filter_leet(void **state)
{
    (void)state;
    const char *const words[] = {"hate", "bass"};
    const struct filter_rule rules[] = {
        {.name = "leet",
         .kind = FILTER_KIND_WORDS,
         .action = FILTER_ACTION_REDACT,
         .words = words,
         .nwords = 2,
         .leet = true,
         .replacement = "***"},
    };
    struct filter *f = filter_build(rules, 1);
    expect_text(f, "I h4t3 you, H@TE, b@$5", "I *** you, ***, ***");
    expect_text(f, "hat3d", "hat3d");
    filter_free(f);
}

static void test_filter_pattern(void **state)
{
    (void)state;
    const struct filter_rule rules[] = {
        {.name = "codes",
         .kind = FILTER_KIND_PATTERN,
         .action = FILTER_ACTION_REDACT,
         .pattern = "secret-[0-9]+"},
        {.name = "starts",
         .kind = FILTER_KIND_PATTERN,
         .action = FILTER_ACTION_REDACT,
         .pattern = "^hello",
         .replacement = "[greeting]"},
        {.name = "bytes",
         .kind = FILTER_KIND_PATTERN,
         .action = FILTER_ACTION_REDACT,
         .pattern = "zz."},
    };
    struct filter *f = filter_build(rules, TEST_ARRAY_SIZE(rules));
    expect_text(f, "SECRET-42 and secret-7, secret-x", "[removed] and [removed], secret-x");
    /* ^ anchors at the start of the text only, also after a first match. */
    expect_text(f, "hello hello", "[greeting] hello");
    /* A pattern that stops inside a multi-byte character removes all of it. */
    expect_text(f, "zz\xC3\xA9!", "[removed]!");

    struct filter_result r;
    assert_int_equal(filter_apply(f, "secret-1 secret-2 hello", &r), 0);
    assert_int_equal(r.hits[0], 2);
    assert_int_equal(r.hits[1], 0);
    assert_int_equal(r.hits[2], 0);
    filter_result_clear(&r);
    filter_free(f);
}

static void test_filter_email(void **state)
{
    (void)state;
    const struct filter_rule rules[] = {
        {.name = "email", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
    };
    struct filter *f = filter_build(rules, 1);
    expect_text(f, "mail John.Doe+tag@Example.co.uk.", "mail [email removed].");
    expect_text(f, "a@b.io, c_d@e-f.com", "[email removed], [email removed]");
    expect_text(f, "(x%y@mail.example)", "([email removed])");
    /* Not addresses: no dot in the domain, a one-letter or numeric TLD,
     * empty labels, a bare handle. */
    const char *no[] = {"user@localhost", "a@b.c",    "a@1.23",   "a@b..com", "@handle",
                        "x@-a.com",       "a@ b.com", "..@x.com", "@@@"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(no); i++)
        expect_text(f, no[i], no[i]);
    filter_free(f);
}

static void test_filter_phone(void **state)
{
    (void)state;
    const struct filter_rule rules[] = {
        {.name = "phone", .kind = FILTER_KIND_PHONE, .action = FILTER_ACTION_REDACT},
    };
    struct filter *f = filter_build(rules, 1);
    const char *yes[] = {"+1 (555) 123-4567", "555-123-4567", "+44 20 7946 0958", "(555)123-4567",
                         "555.123.4567",      "+4930123456",  "0171 1234567",     "1234567"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(yes); i++) {
        char in[64];
        snprintf(in, sizeof(in), "call %s now.", yes[i]);
        expect_text(f, in, "call [phone removed] now.");
    }
    const char *no[] = {
        "2024-01-15",     "15.01.2024",       "192.168.1.10", "3.14159265", "123456",
        "v1234567",       "1234567890123456", "12:30:45",     "-1234567",   "4111 1111 1111 1111",
        "378282246310005" /* a card number (Luhn) is the card rule's */};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(no); i++)
        expect_text(f, no[i], no[i]);
    filter_free(f);
}

static void test_filter_card(void **state)
{
    (void)state;
    const struct filter_rule rules[] = {
        {.name = "card", .kind = FILTER_KIND_CARD, .action = FILTER_ACTION_REDACT},
        {.name = "phone", .kind = FILTER_KIND_PHONE, .action = FILTER_ACTION_REDACT},
    };
    struct filter *f = filter_build(rules, 2);
    expect_text(f, "card 4111 1111 1111 1111 ok", "card [card removed] ok");
    expect_text(f, "4111-1111-1111-1111", "[card removed]");
    expect_text(f, "4111111111111111", "[card removed]");
    expect_text(f, "amex 3782 822463 10005.", "amex [card removed].");
    /* Followed by more digit groups (an expiry): the card is still found. */
    expect_text(f, "4111 1111 1111 1111 12 27", "[card removed] 12 27");
    /* Preceded by unrelated groups. */
    expect_text(f, "ref 99-4111-1111-1111-1111", "ref 99-[card removed]");
    /* A phone number right before a card: both found, neither swallowed. */
    expect_text(f, "call 212-867-5309 4111 1111 1111 1111", "call [phone removed] [card removed]");
    /* Luhn fails: not a card (and too long for a phone). */
    expect_text(f, "4111 1111 1111 1112", "4111 1111 1111 1112");
    expect_text(f, "1234567812345678", "1234567812345678");
    /* Too many digits in one group, glued to letters, or a decimal. */
    expect_text(f, "41111111111111111111", "41111111111111111111");
    expect_text(f, "x4111111111111111", "x4111111111111111");
    expect_text(f, "4111111111111111abc", "4111111111111111abc");
    expect_text(f, "0.4111111111111111", "0.4111111111111111");

    struct filter_result r;
    assert_int_equal(filter_apply(f, "378282246310005", &r), 0);
    assert_int_equal(r.hits[0], 1); /* card */
    assert_int_equal(r.hits[1], 0); /* not also a phone */
    filter_result_clear(&r);
    filter_free(f);
}

static void test_filter_block(void **state)
{
    (void)state;
    const char *const words[] = {"forbidden"};
    const struct filter_rule rules[] = {
        {.name = "email", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
        {.name = "cards", .kind = FILTER_KIND_CARD, .action = FILTER_ACTION_BLOCK},
        {.name = "topics",
         .kind = FILTER_KIND_WORDS,
         .action = FILTER_ACTION_BLOCK,
         .words = words,
         .nwords = 1},
    };
    struct filter *f = filter_build(rules, TEST_ARRAY_SIZE(rules));
    assert_int_equal(filter_rule_count(f), 3);
    assert_string_equal(filter_rule_name(f, 1), "cards");
    assert_null(filter_rule_name(f, 3));

    struct filter_result r;
    assert_int_equal(filter_apply(f, "a@b.com forbidden 4111111111111111 forbidden", &r), 0);
    assert_true(r.blocked);
    assert_string_equal(r.blocked_by, "cards"); /* the first blocking rule in order */
    assert_null(r.text);
    assert_int_equal(r.nhits, 3);
    assert_int_equal(r.hits[0], 1);
    assert_int_equal(r.hits[1], 1);
    assert_int_equal(r.hits[2], 2);
    filter_result_clear(&r);

    assert_int_equal(filter_apply(f, "something FORBIDDEN", &r), 0);
    assert_true(r.blocked);
    assert_string_equal(r.blocked_by, "topics");
    filter_result_clear(&r);

    assert_int_equal(filter_apply(f, "just a@b.com", &r), 0);
    assert_false(r.blocked);
    assert_string_equal(r.text, "just [email removed]");
    assert_int_equal(r.redactions, 1);
    filter_result_clear(&r);
    filter_free(f);
}

static void test_filter_overlap(void **state)
{
    (void)state;
    const char *const words[] = {"john"};
    const struct filter_rule rules[] = {
        {.name = "names",
         .kind = FILTER_KIND_WORDS,
         .action = FILTER_ACTION_REDACT,
         .words = words,
         .nwords = 1},
        {.name = "email", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
        {.name = "tail",
         .kind = FILTER_KIND_PATTERN,
         .action = FILTER_ACTION_REDACT,
         .pattern = "com and [a-z]+"},
    };
    struct filter *f = filter_build(rules, TEST_ARRAY_SIZE(rules));
    /* "john" lies inside the address; the address overlaps the pattern:
     * one replacement, from the span that starts first (the longer one on
     * a tie). */
    struct filter_result r;
    assert_int_equal(filter_apply(f, "to john@x.com and more!", &r), 0);
    assert_string_equal(r.text, "to [email removed]!");
    assert_int_equal(r.redactions, 1);
    assert_int_equal(r.hits[0], 1);
    assert_int_equal(r.hits[1], 1);
    assert_int_equal(r.hits[2], 1);
    filter_result_clear(&r);
    filter_free(f);
}

static void test_filter_empty(void **state)
{
    (void)state;
    struct filter *f = filter_build(NULL, 0);
    assert_int_equal(filter_rule_count(f), 0);
    struct filter_result r;
    assert_int_equal(filter_apply(f, "anything a@b.com", &r), 0);
    assert_string_equal(r.text, "anything a@b.com");
    assert_int_equal(r.nhits, 0);
    filter_result_clear(&r);
    filter_result_clear(&r); /* clearing twice is harmless */
    expect_text(f, "", "");
    filter_free(f);
    filter_free(NULL);
}

static void expect_build_error(const struct filter_rule *rules, size_t n, const char *want)
{
    char err[256] = "";
    assert_null(filter_new(rules, n, err, sizeof(err)));
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
    assert_null(filter_new(rules, n, NULL, 0)); /* err is optional */
}

static void test_filter_errors(void **state)
{
    (void)state;
    const char *const words[] = {"ok"};
    const char *const empty_word[] = {"ok", ""};
    const char *const null_word[] = {NULL};
    const char *const bad_utf8[] = {"caf\xC3"};
    const struct filter_rule good = {.name = "good", .kind = FILTER_KIND_EMAIL};

    struct filter_rule r[2] = {good, good};
    r[0].name = NULL;
    expect_build_error(r, 1, "rule 1 has no name");
    r[0].name = "";
    expect_build_error(r, 1, "rule 1 has no name");
    r[0] = good;
    expect_build_error(r, 2, "\"good\": name used twice");

    struct filter_rule w = {.name = "w", .kind = FILTER_KIND_WORDS};
    expect_build_error(&w, 1, "\"w\": no words");
    w.words = empty_word;
    w.nwords = 2;
    expect_build_error(&w, 1, "\"w\": word 2 is empty");
    w.words = null_word;
    w.nwords = 1;
    expect_build_error(&w, 1, "\"w\": word 1 is empty");
    w.words = bad_utf8;
    expect_build_error(&w, 1, "\"w\": word 1 is not valid UTF-8");

    struct filter_rule p = {.name = "pat", .kind = FILTER_KIND_PATTERN};
    expect_build_error(&p, 1, "\"pat\": no pattern");
    p.pattern = "a(b";
    expect_build_error(&p, 1, "\"pat\": bad pattern: ");
    p.pattern = "[z-a]";
    expect_build_error(&p, 1, "\"pat\": bad pattern: ");
    p.pattern = "x*";
    expect_build_error(&p, 1, "\"pat\": pattern matches empty text");

    struct filter_rule k = {.name = "kind", .kind = (enum filter_kind)42};
    expect_build_error(&k, 1, "\"kind\": unknown kind");
    struct filter_rule a = {
        .name = "act", .kind = FILTER_KIND_CARD, .action = (enum filter_action)9};
    expect_build_error(&a, 1, "\"act\": unknown action");
    expect_build_error(NULL, 2, "rules missing");

    /* A later bad rule frees the good ones before it (ASan checks). */
    struct filter_rule mix[2] = {
        {.name = "w", .kind = FILTER_KIND_WORDS, .words = words, .nwords = 1},
        {.name = "p", .kind = FILTER_KIND_PATTERN, .pattern = "("}};
    expect_build_error(mix, 2, "\"p\": bad pattern");
}

/* Patterns regcomp would spend exponential time on are refused before it
 * sees them, with the reason; ordinary ones pass. */
static void test_filter_pattern_check(void **state)
{
    (void)state;
    char err[200];
    static const char *const ok[] = {
        "secret-[0-9]+", "^hello",     "(ab|cd)+",          "(a+)?b",   "colou?r",
        "[*+?{]+x",      "a\\*+",      "x{2,5}y",           "x{,3}y",   "[]a*]+",
        "[[:alpha:]*]+", "(a)(b)(c)+", "a{100}b{100}c{56}", "lit{eral", NULL};
    for (size_t i = 0; ok[i] != NULL; i++) {
        err[0] = '\0';
        assert_int_equal(filter_pattern_check(ok[i], err, sizeof(err)), 0);
    }
    static const struct {
        const char *pattern, *why;
    } bad[] = {
        {"(a*)*b+++++++++++++++++++++++++++++++", "nested quantifier '*' at byte 5"},
        {"ab++", "stacked quantifier '+' at byte 4"},
        {"a*{2}", "stacked quantifier '{'"},
        {"(a|b+)+", "nested quantifier"},
        {"((a)*)*", "nested quantifier"},
        {"(x(a?))+", "nested quantifier"},
        {"(a+){2,3}", "nested quantifier"},
        {"a{257}", "bounds add up to more than 256 (at byte 2)"},
        {"a{1,99999999999999999999}", "more than 256"},
        {".{0,100}.{0,100}.{0,100}", "more than 256 (at byte 18)"},
        {"*a", "repeats nothing"},
        {"(|+)", "repeats nothing"},
        {"(a)\\1", "back-reference at byte 4"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(filter_pattern_check(bad[i].pattern, err, sizeof(err)), HB_EINVAL);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].pattern, err, bad[i].why);
    }
    char longp[FILTER_PATTERN_MAX + 2];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(filter_pattern_check(longp, err, sizeof(err)), HB_EINVAL);
    assert_non_null(strstr(err, "more than 256"));
    longp[FILTER_PATTERN_MAX] = '\0';
    assert_int_equal(filter_pattern_check(longp, err, sizeof(err)), 0);
    /* filter_new() refuses it with the rule's name. */
    struct filter_rule p = {.name = "pat", .kind = FILTER_KIND_PATTERN, .pattern = bad[0].pattern};
    expect_build_error(&p, 1, "\"pat\": pattern refused: nested quantifier");
}

static void test_filter_parse(void **state)
{
    (void)state;
    enum filter_kind k;
    enum filter_action a;
    assert_int_equal(filter_kind_parse("words", &k), 0);
    assert_int_equal(k, FILTER_KIND_WORDS);
    assert_int_equal(filter_kind_parse("card", &k), 0);
    assert_int_equal(k, FILTER_KIND_CARD);
    assert_int_equal(filter_kind_parse("emails", &k), HB_EINVAL);
    assert_int_equal(filter_action_parse("block", &a), 0);
    assert_int_equal(a, FILTER_ACTION_BLOCK);
    assert_int_equal(filter_action_parse("redact", &a), 0);
    assert_int_equal(a, FILTER_ACTION_REDACT);
    assert_int_equal(filter_action_parse("drop", &a), HB_EINVAL);
}

static const struct filter_rule all_rules[] = {
    {.name = "words",
     .kind = FILTER_KIND_WORDS,
     .action = FILTER_ACTION_REDACT,
     .words = bad_words,
     .nwords = TEST_ARRAY_SIZE(bad_words),
     .leet = true},
    {.name = "pattern",
     .kind = FILTER_KIND_PATTERN,
     .action = FILTER_ACTION_REDACT,
     .pattern = "secret-[0-9]+"},
    {.name = "email", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
    {.name = "phone", .kind = FILTER_KIND_PHONE, .action = FILTER_ACTION_REDACT},
    {.name = "card", .kind = FILTER_KIND_CARD, .action = FILTER_ACTION_REDACT},
};

/* Fill a buffer with `unit` repeated up to about len bytes. */
static char *repeat_new(const char *unit, size_t len, size_t *count)
{
    size_t ulen = strlen(unit);
    size_t n = len / ulen;
    char *s = malloc(n * ulen + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ulen, unit, ulen);
    s[n * ulen] = '\0';
    *count = n;
    return s;
}

static void test_filter_long_input(void **state)
{
    (void)state;
    struct filter *f = filter_build(all_rules, TEST_ARRAY_SIZE(all_rules));
    size_t n = 0;
    char *s = repeat_new("hate a@b.com secret-1 212-867-5309 4111 1111 1111 1111 ok ", 100000, &n);
    struct filter_result r;
    assert_int_equal(filter_apply(f, s, &r), 0);
    assert_int_equal(r.hits[0], n);
    assert_int_equal(r.hits[1], n);
    assert_int_equal(r.hits[2], n);
    assert_int_equal(r.hits[3], n);
    assert_int_equal(r.hits[4], n);
    assert_int_equal(r.redactions, 5 * n);
    filter_result_clear(&r);
    free(s);

    /* Inputs shaped to make naive scanners go quadratic. */
    const char *units[] = {"a", "@", "a@", "1 ", "1-", "+(", "$", "a.", "9"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(units); i++) {
        s = repeat_new(units[i], 100000, &n);
        assert_int_equal(filter_apply(f, s, &r), 0);
        assert_false(r.blocked);
        assert_int_equal(r.hits[2] + r.hits[3] + r.hits[4], 0);
        filter_result_clear(&r);
        free(s);
    }
    filter_free(f);
}

struct filter_thread {
    const struct filter *f;
    const char *text;
    const char *want;
    int bad;
};

static void *filter_thread_main(void *arg)
{
    struct filter_thread *t = arg;
    for (int i = 0; i < 200; i++) {
        struct filter_result r;
        if (filter_apply(t->f, t->text, &r) != 0 || r.text == NULL || strcmp(r.text, t->want) != 0)
            t->bad++;
        filter_result_clear(&r);
    }
    return NULL;
}

static void test_filter_threads(void **state)
{
    (void)state;
    struct filter *f = filter_build(all_rules, TEST_ARRAY_SIZE(all_rules));
    const char *text = "I h4te secret-9, write x@y.org or 212-867-5309, card 4111111111111111";
    const char *want = "I [removed] [removed], write [email removed] or [phone removed], "
                       "card [card removed]";
    struct filter_thread t[4];
    pthread_t tid[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct filter_thread){.f = f, .text = text, .want = want};
        assert_int_equal(pthread_create(&tid[i], NULL, filter_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(t[i].bad, 0);
    }
    filter_free(f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_filter_words),      cmocka_unit_test(test_filter_leet),
    cmocka_unit_test(test_filter_pattern),    cmocka_unit_test(test_filter_pattern_check),
    cmocka_unit_test(test_filter_email),      cmocka_unit_test(test_filter_phone),
    cmocka_unit_test(test_filter_card),       cmocka_unit_test(test_filter_block),
    cmocka_unit_test(test_filter_overlap),    cmocka_unit_test(test_filter_empty),
    cmocka_unit_test(test_filter_errors),     cmocka_unit_test(test_filter_parse),
    cmocka_unit_test(test_filter_long_input), cmocka_unit_test(test_filter_threads),
};

TEST_GROUP_DEFINE(filter, tests, NULL, NULL)
