/* The Markdown to Telegram HTML converter (adapters/telegram/markdown.c):
 * the supported subset, escaping, adversarial input, and cuts that keep
 * every piece balanced. */
#include "tests/test.h"

#include "adapters/telegram/markdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static char *render(const char *md)
{
    struct tg_md doc;
    tg_md_init(&doc);
    assert_int_equal(tg_md_markdown_append(&doc, md, strlen(md)), 0);
    char *html = tg_md_html(&doc, 0, doc.len);
    assert_non_null(html);
    tg_md_close(&doc);
    return html;
}

static void expect(const char *md, const char *want)
{
    char *got = render(md);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "markdown: %s\n     got: %s\n    want: %s\n", md, got, want);
    assert_string_equal(got, want);
    free(got);
}

/* A small check that an HTML text of ours is balanced: every tag closed in
 * order, nothing but the tags we make, no raw '<' '>' or bare '&' in text. */
static void assert_balanced(const char *html)
{
    static const char *const names[] = {"b", "i", "code", "pre", "a"};
    const char *stack[16];
    size_t depth = 0;
    for (const char *p = html; *p != '\0';) {
        if (*p == '>') {
            fail_msg("raw > in %s", html);
        } else if (*p == '&') {
            assert_true(strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0 ||
                        strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&quot;", 6) == 0);
            p++;
            continue;
        } else if (*p != '<') {
            p++;
            continue;
        }
        const char *gt = p;
        while (*gt != '\0' && *gt != '>')
            gt++;
        assert_true(*gt == '>');
        bool closing = p[1] == '/';
        const char *name = p + (closing ? 2 : 1);
        size_t n = 0;
        while (name[n] != '>' && name[n] != ' ')
            n++;
        const char *known = NULL;
        for (size_t k = 0; k < 5; k++) {
            if (strlen(names[k]) == n && strncmp(names[k], name, n) == 0)
                known = names[k];
        }
        assert_non_null(known);
        if (closing) {
            assert_true(depth > 0);
            assert_string_equal(stack[--depth], known);
        } else {
            assert_true(depth < 16);
            stack[depth++] = known;
        }
        p = gt + 1;
    }
    assert_int_equal(depth, 0);
}

static void test_md_subset(void **state)
{
    (void)state;
    expect("plain text", "plain text");
    expect("**bold**", "<b>bold</b>");
    expect("__bold__", "<b>bold</b>");
    expect("*it* and _it_", "<i>it</i> and <i>it</i>");
    expect("a `x < y` b", "a <code>x &lt; y</code> b");
    expect("``a ` b``", "<code>a ` b</code>");
    expect("`` `tick` ``", "<code>`tick`</code>");
    expect("**bold *both* bold**", "<b>bold </b><b><i>both</i></b><b> bold</b>");
    expect("***both***", "<b><i>both</i></b>");
    expect("[site](https://example.com/a?b=1&c=2)",
           "<a href=\"https://example.com/a?b=1&amp;c=2\">site</a>");
    expect("[**bold link**](http://x.y)", "<a href=\"http://x.y\"><b>bold link</b></a>");
    expect("[me](tg://user?id=1)", "<a href=\"tg://user?id=1\">me</a>");
    expect("```python\nif a < b:\n    print(\"&\")\n```\nafter",
           "<pre><code class=\"language-python\">if a &lt; b:\n    print(\"&amp;\")</code></pre>"
           "\nafter");
    expect("before\n```\nno lang\n```", "before\n<pre>no lang</pre>");
    expect("~~~ stays\n# heading stays\n> quote stays",
           "~~~ stays\n# heading stays\n&gt; quote stays");
    expect("\\*not italic\\*", "*not italic*");
    expect("**`code` in bold**", "<code>code</code><b> in bold</b>");
}

static void test_md_escaping_and_strays(void **state)
{
    (void)state;
    expect("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
    expect("AT&T <b>not bold</b> &amp;", "AT&amp;T &lt;b&gt;not bold&lt;/b&gt; &amp;amp;");
    expect("snake_case_name and 2*3*4", "snake_case_name and 2<i>3</i>4");
    expect("a_b_c", "a_b_c");
    expect("x < y > z", "x &lt; y &gt; z");
    expect("**unclosed bold", "**unclosed bold");
    expect("*unclosed", "*unclosed");
    expect("`unclosed code", "`unclosed code");
    expect("[text](javascript:alert(1))", "[text](javascript:alert(1))");
    expect("[text](https://x.y\"onmouseover=\"a)",
           "<a href=\"https://x.y&quot;onmouseover=&quot;a\">text</a>");
    expect("[text] (https://x.y)", "[text] (https://x.y)");
    expect("[](https://x.y)", "[](https://x.y)");
    expect("* list item\n* second", "* list item\n* second");
    expect("**\n\nbold across paragraphs**", "**\n\nbold across paragraphs**");
    expect("```js onclick=\"x\"\ncode\n```", "<pre><code class=\"language-js\">code</code></pre>");
    expect("```<script>\ncode\n```", "<pre>code</pre>");
    expect("\\", "\\");
    expect("", "");
}

/* A stream cut anywhere: the prefix renders balanced, an unfinished span
 * stays literal and an unfinished block shows as a block so far. */
static void test_md_every_prefix_balanced(void **state)
{
    (void)state;
    const char *md = "Here is **bold _and italic_** text, `code <x>`, a [link](https://a.b/c?d&e) "
                     "and a block:\n```c\nint main(void) { return a < b && c > d; }\n```\n"
                     "done *really* done & <gone>";
    size_t n = strlen(md);
    for (size_t cut = 0; cut <= n; cut++) {
        char *prefix = strndup(md, cut);
        char *html = render(prefix);
        assert_balanced(html);
        free(html);
        free(prefix);
    }
    expect("partial **bol", "partial **bol");
    expect("```py\nprint(1)\nprin", "<pre><code class=\"language-py\">print(1)\nprin</code></pre>");
}

/* Any cut of the visible text renders on its own, balanced, and the pieces'
 * visible texts put together are the whole. */
static void test_md_cuts_balanced(void **state)
{
    (void)state;
    const char *md = "**bold text that goes on** then [a link with *it*](https://x.y/\"q) and\n"
                     "```sh\necho \"<&>\"\nls\n```\n_end_";
    struct tg_md doc;
    tg_md_init(&doc);
    assert_int_equal(tg_md_markdown_append(&doc, md, strlen(md)), 0);
    assert_int_equal(tg_md_plain_append(&doc, " <plain & tail>", 15), 0);
    for (size_t cut = 0; cut <= doc.len; cut++) {
        char *a = tg_md_html(&doc, 0, cut);
        char *b = tg_md_html(&doc, cut, doc.len);
        assert_balanced(a);
        assert_balanced(b);
        char *pa = tg_html_plain(a), *pb = tg_html_plain(b);
        char whole[512];
        snprintf(whole, sizeof(whole), "%s%s", pa, pb);
        assert_string_equal(whole, doc.vis);
        free(pa);
        free(pb);
        free(a);
        free(b);
    }
    char *all = tg_md_html(&doc, 0, doc.len);
    assert_non_null(strstr(all, " &lt;plain &amp; tail&gt;"));
    free(all);
    tg_md_close(&doc);
}

static void test_html_plain(void **state)
{
    (void)state;
    char *p = tg_html_plain("<b>a &lt;b&gt; &amp; &quot;c&quot;</b> <a href=\"x\">d</a> &nbsp;");
    assert_string_equal(p, "a <b> & \"c\" d &nbsp;");
    free(p);
}

/* Huge and hostile inputs finish quickly (no quadratic look-aheads) and
 * stay balanced. */
static void test_md_huge_adversarial(void **state)
{
    (void)state;
    const char *units[] = {"*",     "**", "_a ", "`",  "[",  "[a](", "[a](https://",
                           "```\n", "\\", "<&>", "* ", "``", "`` `"};
    size_t n = 1 << 20;
    char *md = malloc(n + 1);
    assert_non_null(md);
    for (size_t u = 0; u < TEST_ARRAY_SIZE(units); u++) {
        size_t l = strlen(units[u]), o = 0;
        while (o + l <= n) {
            memcpy(md + o, units[u], l);
            o += l;
        }
        md[o] = '\0';
        uint64_t t0 = uv_hrtime();
        char *html = render(md);
        uint64_t ms = (uv_hrtime() - t0) / 1000000u;
        assert_true(ms < 5000);
        assert_balanced(html);
        free(html);
    }
    /* Nesting deeper than the parser goes: literal beyond, still balanced. */
    size_t o = 0;
    for (int k = 0; k < 20000; k++)
        o += (size_t)sprintf(md + o, "%s", k % 2 ? "**a " : "_b ");
    for (int k = 0; k < 20000; k++)
        o += (size_t)sprintf(md + o, "%s", k % 2 ? "_" : "**");
    char *html = render(md);
    assert_balanced(html);
    free(html);
    free(md);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_md_subset),
    cmocka_unit_test(test_md_escaping_and_strays),
    cmocka_unit_test(test_md_every_prefix_balanced),
    cmocka_unit_test(test_md_cuts_balanced),
    cmocka_unit_test(test_html_plain),
    cmocka_unit_test(test_md_huge_adversarial),
};

TEST_GROUP_DEFINE(telegram_markdown, tests, NULL, NULL)
