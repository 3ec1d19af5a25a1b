/* Discord's 2,000-character split keeps ``` code blocks whole, and closes
 * and reopens (with the language) a block longer than a message. */
#include "tests/test.h"

#include "adapters/discord/discord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t chars(const char *s)
{
    size_t c = 0;
    for (; *s != '\0'; s++)
        c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

static void pieces_free(char **p, int n)
{
    for (int i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

/* Every piece within max and with its blocks closed. */
static void assert_pieces(char **p, int n, size_t max)
{
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        if (chars(p[i]) > max)
            fail_msg("piece %d has %zu characters: %.80s", i, chars(p[i]), p[i]);
        if (discord_fence_open(p[i], strlen(p[i]), NULL))
            fail_msg("piece %d leaves a block open: %s", i, p[i]);
    }
}

static void test_short_and_prose(void **state)
{
    (void)state;
    char **p = NULL;
    int n = discord_text_split("short", 2000, &p);
    assert_int_equal(n, 1);
    assert_string_equal(p[0], "short");
    pieces_free(p, n);
    char *big = malloc(9001);
    for (int i = 0; i < 9000; i++)
        big[i] = i % 10 == 9 ? ' ' : 'a';
    big[9000] = '\0';
    n = discord_text_split(big, 2000, &p);
    assert_int_equal(n, 5);
    assert_pieces(p, n, 2000);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += strlen(p[i]);
    assert_int_equal(total, 9000); /* nothing added outside blocks */
    pieces_free(p, n);
    free(big);
}

/* A block that does not fit in the rest of a message starts the next. */
static void test_block_moves_whole(void **state)
{
    (void)state;
    char text[4000];
    size_t o = 0;
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "line of prose %02d\n", i);
    o += (size_t)snprintf(text + o, sizeof(text) - o, "```python\n");
    for (int i = 0; i < 10; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "print(%d)\n", i);
    snprintf(text + o, sizeof(text) - o, "```\nafter");
    char **p = NULL;
    int n = discord_text_split(text, 600, &p);
    assert_pieces(p, n, 600);
    assert_int_equal(n, 2);
    assert_null(strstr(p[0], "```"));
    assert_true(strncmp(p[1], "```python\nprint(0)\n", 19) == 0);
    assert_non_null(strstr(p[1], "print(9)\n```\nafter"));
    pieces_free(p, n);
}

/* A block longer than a message: closed at each cut, reopened with its
 * language, nothing of the code lost. */
static void test_long_block_reopened(void **state)
{
    (void)state;
    size_t cap = 20000, o = 0;
    char *text = malloc(cap);
    o += (size_t)snprintf(text + o, cap - o, "Here:\n```c\n");
    for (int i = 0; i < 600; i++)
        o += (size_t)snprintf(text + o, cap - o, "x[%d] = %d;\n", i, i);
    snprintf(text + o, cap - o, "```\nThat is all.");
    char **p = NULL;
    int n = discord_text_split(text, 2000, &p);
    assert_true(n >= 4);
    assert_pieces(p, n, 2000);
    assert_string_equal(p[0], "Here:\n");
    for (int i = 1; i < n; i++)
        assert_true(strncmp(p[i], "```c\n", 5) == 0);
    for (int i = 1; i < n - 1; i++)
        assert_true(strcmp(p[i] + strlen(p[i]) - 4, "\n```") == 0 ||
                    strcmp(p[i] + strlen(p[i]) - 3, "```") == 0);
    /* Every line of code is in some piece, whole. */
    for (int i = 0; i < 600; i += 37) {
        char line[32];
        snprintf(line, sizeof(line), "\nx[%d] = %d;\n", i, i);
        bool found = false;
        for (int k = 0; k < n && !found; k++)
            found = strstr(p[k], line) != NULL;
        assert_true(found);
    }
    assert_non_null(strstr(p[n - 1], "```\nThat is all."));
    pieces_free(p, n);
    free(text);
}

/* A single code line longer than a message is cut inside, still closed. */
static void test_block_one_huge_line(void **state)
{
    (void)state;
    char *text = malloc(6000);
    memcpy(text, "```js\n", 6);
    memset(text + 6, 'z', 5000);
    memcpy(text + 5006, "\n```", 5);
    char **p = NULL;
    int n = discord_text_split(text, 2000, &p);
    assert_pieces(p, n, 2000);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++)
        assert_true(strncmp(p[i], "```js\n", 6) == 0);
    pieces_free(p, n);
    free(text);
}

/* Mixed texts at many sizes: every piece fits and closes its blocks. */
static void test_mixed_invariants(void **state)
{
    (void)state;
    const char *parts[] = {"some words here ", "\n",    "```py\n",  "code = 1\n", "```\n",
                           "é🙂 ",          "~~~\n", "`inline` "};
    char *text = malloc(30000);
    unsigned x = 12345;
    for (int round = 0; round < 60; round++) {
        size_t o = 0;
        bool open = false;
        while (o < 25000) {
            x = x * 1103515245u + 12345u;
            const char *s = parts[(x >> 16) % 8];
            if (strncmp(s, "```", 3) == 0) {
                s = open ? "\n```\n" : "\n```py\n";
                open = !open;
            }
            size_t l = strlen(s);
            memcpy(text + o, s, l);
            o += l;
        }
        if (open) {
            memcpy(text + o, "\n```\n", 5);
            o += 5;
        }
        text[o] = '\0';
        assert_false(discord_fence_open(text, o, NULL));
        size_t max = 100 + (size_t)round * 40;
        char **p = NULL;
        int n = discord_text_split(text, max, &p);
        assert_pieces(p, n, max);
        pieces_free(p, n);
    }
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_short_and_prose),     cmocka_unit_test(test_block_moves_whole),
    cmocka_unit_test(test_long_block_reopened), cmocka_unit_test(test_block_one_huge_line),
    cmocka_unit_test(test_mixed_invariants),
};

TEST_GROUP_DEFINE(discord_text, tests, NULL, NULL)
