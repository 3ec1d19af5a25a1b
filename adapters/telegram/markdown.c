/* Model Markdown into Telegram HTML. See markdown.h.
 *
 * The parser works on one block of text at a time (the text between fenced
 * code blocks). An opening marker looks ahead for its closer; the content
 * between them is parsed again with the style added, up to a small depth.
 * A marker whose closer is missing stays literal. Each failed look-ahead
 * is remembered for the rest of its range, so a text full of unmatched
 * markers costs linear time, not quadratic. */
#include "adapters/telegram/markdown.h"

#include "base/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MD_DEPTH_MAX 6   /* nested emphasis and links beyond this are literal */
#define MD_TICKS_MAX 16  /* longer backtick runs are literal */
#define MD_LANG_MAX 32   /* a fence's language, bytes */
#define MD_NONE SIZE_MAX /* no position */

/* ---- growing buffers ------------------------------------------------ */

static int md__reserve(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap > 0 ? *cap : 64;
    while (n < need)
        n *= 2;
    char *q = realloc(*p, n);
    if (q == NULL)
        return HB_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

void tg_md_init(struct tg_md *doc)
{
    memset(doc, 0, sizeof(*doc));
}

void tg_md_close(struct tg_md *doc)
{
    free(doc->vis);
    free(doc->spans);
    free(doc->attrs);
    memset(doc, 0, sizeof(*doc));
}

/* Append visible text in a style; a run continuing the last span's style
 * extends it. */
static void md__emit(struct tg_md *doc, const char *text, size_t len, unsigned style, size_t attr,
                     size_t attr_len)
{
    if (len == 0 || doc->failed)
        return;
    if (style & (TG_MD_CODE | TG_MD_PRE)) {
        /* Telegram lets no entity contain code or pre, nor code or pre
         * contain one: a code span inside bold or a link shows as code. */
        bool pre = (style & TG_MD_PRE) != 0;
        style = pre ? TG_MD_PRE : TG_MD_CODE;
        if (!pre)
            attr = attr_len = 0;
    } else if (!(style & TG_MD_LINK)) {
        attr = attr_len = 0;
    }
    if (md__reserve(&doc->vis, &doc->cap, doc->len + len + 1) < 0) {
        doc->failed = true;
        return;
    }
    memcpy(doc->vis + doc->len, text, len);
    struct tg_md_span *last = doc->nspans > 0 ? &doc->spans[doc->nspans - 1] : NULL;
    if (last != NULL && last->style == style && last->attr == attr && last->attr_len == attr_len &&
        last->end == doc->len) {
        last->end += len;
    } else {
        if (doc->nspans == doc->capspans) {
            size_t n = doc->capspans > 0 ? doc->capspans * 2 : 16;
            struct tg_md_span *s = realloc(doc->spans, n * sizeof(*s));
            if (s == NULL) {
                doc->failed = true;
                return;
            }
            doc->spans = s;
            doc->capspans = n;
        }
        doc->spans[doc->nspans++] = (struct tg_md_span){.start = doc->len,
                                                        .end = doc->len + len,
                                                        .style = style,
                                                        .attr = attr,
                                                        .attr_len = attr_len};
    }
    doc->len += len;
    doc->vis[doc->len] = '\0';
}

/* Store a URL or a language; returns its offset in attrs. */
static size_t md__attr(struct tg_md *doc, const char *s, size_t len)
{
    if (md__reserve(&doc->attrs, &doc->attrs_cap, doc->attrs_len + len + 1) < 0) {
        doc->failed = true;
        return 0;
    }
    size_t at = doc->attrs_len;
    memcpy(doc->attrs + at, s, len);
    doc->attrs_len += len;
    doc->attrs[doc->attrs_len] = '\0';
    return at;
}

int tg_md_plain_append(struct tg_md *doc, const char *text, size_t len)
{
    md__emit(doc, text, len, 0, 0, 0);
    return doc->failed ? HB_ENOMEM : 0;
}

/* ---- inline markup -------------------------------------------------- */

static bool md__space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool md__alnum(char c)
{
    unsigned char u = (unsigned char)c;
    /* Bytes of multibyte characters count as letters: "naïve_word" stays
     * one word. */
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}

static bool md__punct(char c)
{
    return c != '\0' && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) != NULL;
}

/* One call's memory of failed look-aheads, valid for its range. */
struct md_memo {
    size_t ticks_fail[MD_TICKS_MAX + 1]; /* a run of n backticks from here on has no match */
    size_t close_fail[4];                /* *, **, _, __: no closer before this position */
    size_t rbracket;                     /* the first ']' at or after the last search, or MD_NONE */
    size_t rbracket_from;
    size_t url_stop; /* the first ')' or space at or after the last search */
    size_t url_from;
};

static void md__memo_init(struct md_memo *m)
{
    for (size_t i = 0; i <= MD_TICKS_MAX; i++)
        m->ticks_fail[i] = MD_NONE;
    for (size_t i = 0; i < 4; i++)
        m->close_fail[i] = 0;
    m->rbracket = m->rbracket_from = MD_NONE;
    m->url_stop = m->url_from = MD_NONE;
}

static size_t md__run(const char *s, size_t i, size_t b, char c)
{
    size_t n = 0;
    while (i + n < b && s[i + n] == c)
        n++;
    return n;
}

/* The start of the next run of exactly n backticks in [i, b), or MD_NONE. */
static size_t md__ticks_match(const char *s, size_t i, size_t b, size_t n, struct md_memo *m)
{
    if (n > MD_TICKS_MAX || (m->ticks_fail[n] != MD_NONE && i >= m->ticks_fail[n]))
        return MD_NONE;
    size_t j = i;
    while (j < b) {
        if (s[j] != '`') {
            j++;
            continue;
        }
        size_t r = md__run(s, j, b, '`');
        if (r == n)
            return j;
        j += r;
    }
    if (m->ticks_fail[n] == MD_NONE || i < m->ticks_fail[n])
        m->ticks_fail[n] = i;
    return MD_NONE;
}

/* The closer of an emphasis opened with c (doubled or not) whose content
 * starts at from, or MD_NONE. Code spans are skipped; a blank line ends
 * the search (emphasis stays within a paragraph). */
static size_t md__closer(const char *s, size_t from, size_t b, char c, bool dbl, size_t *stop,
                         struct md_memo *m)
{
    size_t j = from;
    while (j < b) {
        char ch = s[j];
        if (ch == '\\' && j + 1 < b) {
            j += 2;
            continue;
        }
        if (ch == '\n' && j + 1 < b && s[j + 1] == '\n')
            break;
        if (ch == '`') {
            size_t r = md__run(s, j, b, '`');
            size_t k = md__ticks_match(s, j + r, b, r, m);
            j = k != MD_NONE ? k + r : j + r;
            continue;
        }
        if (ch != c) {
            j++;
            continue;
        }
        size_t r = md__run(s, j, b, c);
        bool after_ok = c != '_' || j + r >= b || !md__alnum(s[j + r]);
        if (j > from && !md__space(s[j - 1]) && after_ok) {
            if (dbl && r >= 2 && j + r - 2 > from)
                return j + r - 2;
            if (!dbl && r != 2)
                return j + r - 1;
        }
        j += r;
    }
    *stop = j;
    return MD_NONE;
}

static bool md__url_ok(const char *u, size_t len)
{
    static const char *const schemes[] = {"http://", "https://", "tg://"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i]);
        if (len > n && strncasecmp(u, schemes[i], n) == 0) {
            for (size_t k = 0; k < len; k++) {
                if ((unsigned char)u[k] < 0x20 || u[k] == 0x7f)
                    return false;
            }
            return true;
        }
    }
    return false;
}

static void md__inline(struct tg_md *doc, const char *s, size_t a, size_t b, unsigned style,
                       size_t attr, size_t attr_len, int depth)
{
    struct md_memo memo;
    md__memo_init(&memo);
    size_t i = a, lit = a;
#define MD_FLUSH()                                                                                 \
    do {                                                                                           \
        md__emit(doc, s + lit, i - lit, style, attr, attr_len);                                    \
    } while (0)
    while (i < b && !doc->failed) {
        char ch = s[i];
        if (ch == '\\' && i + 1 < b && md__punct(s[i + 1])) {
            MD_FLUSH();
            md__emit(doc, s + i + 1, 1, style, attr, attr_len);
            i += 2;
            lit = i;
            continue;
        }
        if (ch == '`') {
            size_t n = md__run(s, i, b, '`');
            size_t k = md__ticks_match(s, i + n, b, n, &memo);
            if (k == MD_NONE) {
                i += n;
                continue;
            }
            MD_FLUSH();
            size_t cs = i + n, ce = k;
            /* One space on each side is padding (so a span can start or
             * end with a backtick), unless the content is all spaces. */
            if (ce - cs >= 2 && s[cs] == ' ' && s[ce - 1] == ' ') {
                size_t q = cs;
                while (q < ce && s[q] == ' ')
                    q++;
                if (q < ce) {
                    cs++;
                    ce--;
                }
            }
            md__emit(doc, s + cs, ce - cs, style | TG_MD_CODE, 0, 0);
            i = k + n;
            lit = i;
            continue;
        }
        if ((ch == '*' || ch == '_') && depth < MD_DEPTH_MAX) {
            size_t r = md__run(s, i, b, ch);
            bool dbl = r == 2;
            size_t olen = dbl ? 2 : 1;
            size_t kind = (ch == '_' ? 2 : 0) + (dbl ? 1 : 0);
            bool before_ok = ch != '_' || i == 0 || !md__alnum(s[i - 1]);
            bool opens = before_ok && i + r < b && !md__space(s[i + r]);
            if (opens && i >= memo.close_fail[kind]) {
                size_t stop = b;
                size_t j = md__closer(s, i + olen, b, ch, dbl, &stop, &memo);
                if (j != MD_NONE) {
                    MD_FLUSH();
                    unsigned add = dbl ? TG_MD_BOLD : TG_MD_ITALIC;
                    md__inline(doc, s, i + olen, j, style | add, attr, attr_len, depth + 1);
                    i = j + olen;
                    lit = i;
                    continue;
                }
                memo.close_fail[kind] = stop;
            }
            i += r;
            continue;
        }
        if (ch == '[' && !(style & TG_MD_LINK) && depth < MD_DEPTH_MAX) {
            if (memo.rbracket_from == MD_NONE || i < memo.rbracket_from ||
                (memo.rbracket != MD_NONE && memo.rbracket <= i)) {
                size_t q = i + 1;
                while (q < b && s[q] != ']')
                    q++;
                memo.rbracket_from = i;
                memo.rbracket = q < b ? q : MD_NONE;
            }
            size_t q = memo.rbracket;
            if (q != MD_NONE && q + 1 < b && s[q + 1] == '(' && q > i + 1) {
                size_t us = q + 2;
                if (memo.url_from == MD_NONE || us < memo.url_from ||
                    (memo.url_stop != MD_NONE && memo.url_stop < us)) {
                    size_t p = us;
                    while (p < b && s[p] != ')' && !md__space(s[p]))
                        p++;
                    memo.url_from = us;
                    memo.url_stop = p < b ? p : MD_NONE;
                }
                size_t p = memo.url_stop;
                if (p != MD_NONE && s[p] == ')' && md__url_ok(s + us, p - us)) {
                    MD_FLUSH();
                    size_t at = md__attr(doc, s + us, p - us);
                    md__inline(doc, s, i + 1, q, style | TG_MD_LINK, at, p - us, depth + 1);
                    i = p + 1;
                    lit = i;
                    continue;
                }
            }
            i++;
            continue;
        }
        i++;
    }
    MD_FLUSH();
#undef MD_FLUSH
}

/* ---- blocks --------------------------------------------------------- */

/* A fence line at i: up to three spaces, then three or more backticks.
 * Returns the backtick count, 0 when the line is no fence; *ticks_at is
 * where they start. */
static size_t md__fence(const char *s, size_t i, size_t len, size_t *ticks_at)
{
    size_t k = i;
    while (k < len && k - i < 3 && s[k] == ' ')
        k++;
    size_t n = md__run(s, k, len, '`');
    *ticks_at = k;
    return n >= 3 ? n : 0;
}

static size_t md__line_end(const char *s, size_t i, size_t len)
{
    const char *nl = memchr(s + i, '\n', len - i);
    return nl != NULL ? (size_t)(nl - s) : len;
}

int tg_md_markdown_append(struct tg_md *doc, const char *s, size_t len)
{
    size_t block = 0; /* start of the text block before the next fence */
    size_t i = 0;     /* start of the current line */
    while (i < len && !doc->failed) {
        size_t at = 0;
        size_t n = md__fence(s, i, len, &at);
        size_t eol = md__line_end(s, i, len);
        /* An info string holding a backtick makes the line no fence. */
        if (n == 0 || memchr(s + at + n, '`', eol - at - n) != NULL) {
            i = eol < len ? eol + 1 : len;
            continue;
        }
        md__inline(doc, s, block, i, 0, 0, 0, 0);
        /* The language: the first word of the info string, if it is one. */
        size_t ls = at + n;
        while (ls < eol && (s[ls] == ' ' || s[ls] == '\t'))
            ls++;
        size_t le = ls;
        while (le < eol && (md__alnum(s[le]) || strchr("_+#.-", s[le]) != NULL) &&
               (unsigned char)s[le] < 0x80)
            le++;
        size_t lang = 0, lang_len = 0;
        if (le > ls && le - ls <= MD_LANG_MAX && (le == eol || md__space(s[le]))) {
            lang = md__attr(doc, s + ls, le - ls);
            lang_len = le - ls;
        }
        /* The content runs to a closing fence at least as long, or to the
         * end (a stream cut inside a block shows it as a block so far). */
        size_t cs = eol < len ? eol + 1 : len;
        size_t j = cs, ce = len, after = len;
        while (j < len) {
            size_t e = md__line_end(s, j, len);
            size_t t = 0;
            size_t m = md__fence(s, j, len, &t);
            size_t k = t + m;
            while (k < e && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
                k++;
            if (m >= n && k == e) {
                ce = j;
                after = e; /* the line break after the fence stays text */
                break;
            }
            j = e < len ? e + 1 : len;
        }
        if (ce > cs && s[ce - 1] == '\n')
            ce--;
        md__emit(doc, s + cs, ce - cs, TG_MD_PRE, lang, lang_len);
        block = i = after;
    }
    md__inline(doc, s, block, len, 0, 0, 0, 0);
    return doc->failed ? HB_ENOMEM : 0;
}

/* ---- HTML ----------------------------------------------------------- */

struct md_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void md__put(struct md_buf *b, const char *s, size_t n)
{
    if (b->failed || md__reserve(&b->p, &b->cap, b->len + n + 1) < 0) {
        b->failed = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void md__puts(struct md_buf *b, const char *s)
{
    md__put(b, s, strlen(s));
}

static void md__escaped(struct md_buf *b, const char *s, size_t n, bool attr)
{
    size_t lit = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = s[i] == '&'           ? "&amp;"
                        : s[i] == '<'         ? "&lt;"
                        : s[i] == '>'         ? "&gt;"
                        : attr && s[i] == '"' ? "&quot;"
                                              : NULL;
        if (e == NULL)
            continue;
        md__put(b, s + lit, i - lit);
        md__puts(b, e);
        lit = i + 1;
    }
    md__put(b, s + lit, n - lit);
}

char *tg_md_html(const struct tg_md *doc, size_t from, size_t to)
{
    struct md_buf b = {0};
    md__put(&b, "", 0);
    if (to > doc->len)
        to = doc->len;
    for (size_t k = 0; k < doc->nspans && from < to; k++) {
        const struct tg_md_span *sp = &doc->spans[k];
        if (sp->end <= from || sp->start >= to)
            continue;
        size_t a = sp->start > from ? sp->start : from;
        size_t e = sp->end < to ? sp->end : to;
        const char *attr = doc->attrs != NULL ? doc->attrs + sp->attr : "";
        if (sp->style & TG_MD_PRE) {
            md__puts(&b, "<pre>");
            if (sp->attr_len > 0) {
                md__puts(&b, "<code class=\"language-");
                md__escaped(&b, attr, sp->attr_len, true);
                md__puts(&b, "\">");
            }
            md__escaped(&b, doc->vis + a, e - a, false);
            md__puts(&b, sp->attr_len > 0 ? "</code></pre>" : "</pre>");
            continue;
        }
        if (sp->style & TG_MD_LINK) {
            md__puts(&b, "<a href=\"");
            md__escaped(&b, attr, sp->attr_len, true);
            md__puts(&b, "\">");
        }
        if (sp->style & TG_MD_BOLD)
            md__puts(&b, "<b>");
        if (sp->style & TG_MD_ITALIC)
            md__puts(&b, "<i>");
        if (sp->style & TG_MD_CODE)
            md__puts(&b, "<code>");
        md__escaped(&b, doc->vis + a, e - a, false);
        if (sp->style & TG_MD_CODE)
            md__puts(&b, "</code>");
        if (sp->style & TG_MD_ITALIC)
            md__puts(&b, "</i>");
        if (sp->style & TG_MD_BOLD)
            md__puts(&b, "</b>");
        if (sp->style & TG_MD_LINK)
            md__puts(&b, "</a>");
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *tg_html_plain(const char *html)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}};
    size_t n = strlen(html);
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (html[i] == '<') {
            const char *gt = strchr(html + i, '>');
            if (gt != NULL) {
                i = (size_t)(gt - html) + 1;
                continue;
            }
        }
        if (html[i] == '&') {
            bool done = false;
            for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]) && !done; k++) {
                size_t l = strlen(ents[k].name);
                if (strncmp(html + i, ents[k].name, l) == 0) {
                    out[o++] = ents[k].c;
                    i += l;
                    done = true;
                }
            }
            if (done)
                continue;
        }
        out[o++] = html[i++];
    }
    out[o] = '\0';
    return out;
}
