#include "core/filter.h"
#include "core/filter_internal.h"

#include "base/metrics.h"
#include "base/error.h"
#include "base/util.h"

#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILTER_CARD_MIN 13       /* digits in the shortest payment card number */
#define FILTER_CARD_MAX 19       /* digits in the longest */
#define FILTER_PHONE_MIN 7       /* digits in the shortest phone number */
#define FILTER_PHONE_MAX 15      /* E.164 allows no more */
#define FILTER_PHONE_GROUP_MAX 8 /* longest digit group in a grouped number */

/* A compiled rule. Words are stored folded (see filter_fold). */
struct filter_compiled {
    char *name;
    enum filter_kind kind;
    enum filter_action action;
    char **words;
    size_t *word_lens;
    size_t nwords;
    bool leet;
    bool has_regex;
    regex_t regex;
    char *replacement;
};

struct filter {
    struct filter_compiled *rules;
    size_t nrules;
    bool any_leet;  /* some rule needs the leet-folded text */
    bool any_plain; /* some rule needs the plainly folded text */
};

/* A match of one rule: bytes [start, end) of the original text. */
struct filter_span {
    size_t start;
    size_t end;
    size_t rule;
};

struct filter_spans {
    struct filter_span *items;
    size_t len;
    size_t cap;
};

void filter__err(char *err, size_t errcap, const char *fmt, ...)
{
    if (err == NULL || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

int filter_kind_parse(const char *name, enum filter_kind *out)
{
    static const char *const names[] = {"words", "pattern", "email", "phone", "card"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum filter_kind)i;
            return 0;
        }
    }
    return HB_EINVAL;
}

int filter_action_parse(const char *name, enum filter_action *out)
{
    if (strcmp(name, "block") == 0) {
        *out = FILTER_ACTION_BLOCK;
        return 0;
    }
    if (strcmp(name, "redact") == 0) {
        *out = FILTER_ACTION_REDACT;
        return 0;
    }
    if (strcmp(name, "review") == 0) {
        *out = FILTER_ACTION_REVIEW;
        return 0;
    }
    return HB_EINVAL;
}

/* ---- Character classes ------------------------------------------------- */

static bool filter_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool filter_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool filter_is_alnum(unsigned char c)
{
    return filter_is_digit(c) || filter_is_alpha(c);
}

/* Bytes that continue a word: ASCII letters and digits, and every byte of
 * a multi-byte UTF-8 character (so letters like "é" join words too). */
static bool filter_is_wordch(unsigned char c)
{
    return filter_is_alnum(c) || c >= 0x80;
}

static bool filter_is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* Fold one byte for word matching: ASCII lower case, and with leet the
 * usual digit and symbol stand-ins. Multi-byte characters are untouched,
 * so folding keeps every offset. */
static unsigned char filter_fold(unsigned char c, bool leet)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A' + 'a');
    if (!leet)
        return c;
    switch (c) {
    case '0':
        return 'o';
    case '1':
        return 'i';
    case '3':
        return 'e';
    case '4':
        return 'a';
    case '5':
        return 's';
    case '7':
        return 't';
    case '8':
        return 'b';
    case '@':
        return 'a';
    case '$':
        return 's';
    default:
        return c;
    }
}

static bool filter_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (len == 0 || (len == 2 && c < 0xc2) || i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if (!filter_is_cont(s[i + k]))
                return false;
        }
        i += len;
    }
    return true;
}

/* ---- Building ------------------------------------------------------------ */

static void filter_compiled_close(struct filter_compiled *r)
{
    free(r->name);
    for (size_t i = 0; i < r->nwords; i++)
        free(r->words[i]);
    free(r->words);
    free(r->word_lens);
    if (r->has_regex)
        regfree(&r->regex);
    free(r->replacement);
}

void filter_free(struct filter *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nrules; i++)
        filter_compiled_close(&f->rules[i]);
    free(f->rules);
    free(f);
}

static int filter_words_compile(struct filter_compiled *c, const struct filter_rule *r, char *err,
                                size_t errcap)
{
    if (r->words == NULL || r->nwords == 0) {
        filter__err(err, errcap, "filter rule \"%s\": no words", r->name);
        return HB_EINVAL;
    }
    c->words = calloc(r->nwords, sizeof(*c->words));
    c->word_lens = calloc(r->nwords, sizeof(*c->word_lens));
    if (c->words == NULL || c->word_lens == NULL)
        goto nomem;
    for (size_t i = 0; i < r->nwords; i++) {
        const char *w = r->words[i];
        size_t len = w ? strlen(w) : 0;
        if (len == 0) {
            filter__err(err, errcap, "filter rule \"%s\": word %zu is empty", r->name, i + 1);
            return HB_EINVAL;
        }
        if (!filter_utf8_valid((const unsigned char *)w, len)) {
            filter__err(err, errcap, "filter rule \"%s\": word %zu is not valid UTF-8", r->name,
                        i + 1);
            return HB_EINVAL;
        }
        c->words[i] = malloc(len + 1);
        if (c->words[i] == NULL)
            goto nomem;
        c->nwords = i + 1;
        for (size_t k = 0; k <= len; k++)
            c->words[i][k] = (char)filter_fold((unsigned char)w[k], r->leet);
        c->word_lens[i] = len;
    }
    return 0;
nomem:
    filter__err(err, errcap, "filter rule \"%s\": out of memory", r->name);
    return HB_ENOMEM;
}

static int filter_pattern_compile(struct filter_compiled *c, const struct filter_rule *r, char *err,
                                  size_t errcap)
{
    if (r->pattern == NULL || r->pattern[0] == '\0') {
        filter__err(err, errcap, "filter rule \"%s\": no pattern", r->name);
        return HB_EINVAL;
    }
    char why_not[160];
    if (filter_pattern_check(r->pattern, why_not, sizeof(why_not)) < 0) {
        filter__err(err, errcap, "filter rule \"%s\": pattern refused: %s", r->name, why_not);
        return HB_EINVAL;
    }
    int rrc = regcomp(&c->regex, r->pattern, REG_EXTENDED | REG_ICASE);
    if (rrc != 0) {
        char why[128];
        regerror(rrc, &c->regex, why, sizeof(why));
        filter__err(err, errcap, "filter rule \"%s\": bad pattern: %s", r->name, why);
        return HB_EINVAL;
    }
    c->has_regex = true;
    regmatch_t m;
    if (regexec(&c->regex, "", 1, &m, 0) == 0) {
        filter__err(err, errcap, "filter rule \"%s\": pattern matches empty text", r->name);
        return HB_EINVAL;
    }
    return 0;
}

static const char *filter_default_replacement(enum filter_kind kind)
{
    switch (kind) {
    case FILTER_KIND_EMAIL:
        return "[email removed]";
    case FILTER_KIND_PHONE:
        return "[phone removed]";
    case FILTER_KIND_CARD:
        return "[card removed]";
    case FILTER_KIND_WORDS:
    case FILTER_KIND_PATTERN:
        break;
    }
    return "[removed]";
}

static int filter_rule_compile(struct filter *f, size_t i, const struct filter_rule *r, char *err,
                               size_t errcap)
{
    struct filter_compiled *c = &f->rules[i];
    if (r->name == NULL || r->name[0] == '\0') {
        filter__err(err, errcap, "filter rule %zu has no name", i + 1);
        return HB_EINVAL;
    }
    for (size_t k = 0; k < i; k++) {
        if (strcmp(f->rules[k].name, r->name) == 0) {
            filter__err(err, errcap, "filter rule \"%s\": name used twice", r->name);
            return HB_EINVAL;
        }
    }
    if (r->action != FILTER_ACTION_BLOCK && r->action != FILTER_ACTION_REDACT &&
        r->action != FILTER_ACTION_REVIEW) {
        filter__err(err, errcap, "filter rule \"%s\": unknown action", r->name);
        return HB_EINVAL;
    }
    c->name = strdup(r->name);
    const char *rep = r->replacement ? r->replacement : filter_default_replacement(r->kind);
    c->replacement = strdup(rep);
    if (c->name == NULL || c->replacement == NULL) {
        filter__err(err, errcap, "filter rule \"%s\": out of memory", r->name);
        return HB_ENOMEM;
    }
    c->kind = r->kind;
    c->action = r->action;
    switch (r->kind) {
    case FILTER_KIND_WORDS:
        c->leet = r->leet;
        if (r->leet)
            f->any_leet = true;
        else
            f->any_plain = true;
        return filter_words_compile(c, r, err, errcap);
    case FILTER_KIND_PATTERN:
        return filter_pattern_compile(c, r, err, errcap);
    case FILTER_KIND_EMAIL:
    case FILTER_KIND_PHONE:
    case FILTER_KIND_CARD:
        return 0;
    }
    filter__err(err, errcap, "filter rule \"%s\": unknown kind", r->name);
    return HB_EINVAL;
}

struct filter *filter_new(const struct filter_rule *rules, size_t n, char *err, size_t errcap)
{
    struct filter *f = NULL;
    int rc = 0;
    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (rules == NULL && n > 0) {
        filter__err(err, errcap, "filter rules missing");
        rc = HB_EINVAL;
        goto out;
    }
    f = calloc(1, sizeof(*f));
    if (f != NULL && n > 0)
        f->rules = calloc(n, sizeof(*f->rules));
    if (f == NULL || (n > 0 && f->rules == NULL)) {
        filter__err(err, errcap, "out of memory");
        rc = HB_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        f->nrules = i + 1; /* so filter_free undoes a half-built rule too */
        rc = filter_rule_compile(f, i, &rules[i], err, errcap);
        if (rc < 0)
            goto out;
    }
out:
    if (rc < 0) {
        filter_free(f);
        f = NULL;
    }
    return f;
}

size_t filter_rule_count(const struct filter *f)
{
    return f->nrules;
}

const char *filter_rule_name(const struct filter *f, size_t i)
{
    return i < f->nrules ? f->rules[i].name : NULL;
}

/* ---- Matching ------------------------------------------------------------ */

static int filter_span_add(struct filter_spans *s, size_t start, size_t end, size_t rule)
{
    if (s->len == s->cap) {
        struct filter_span *grown = hb_grow(s->items, &s->cap, 16, sizeof(*grown));
        if (grown == NULL)
            return HB_ENOMEM;
        s->items = grown;
    }
    s->items[s->len++] = (struct filter_span){start, end, rule};
    return 0;
}

static int filter_words_match(const struct filter_compiled *c, size_t rule, const char *folded,
                              size_t n, struct filter_spans *spans, unsigned *hits)
{
    const unsigned char *t = (const unsigned char *)folded;
    for (size_t w = 0; w < c->nwords; w++) {
        const char *word = c->words[w];
        size_t m = c->word_lens[w];
        /* A word that begins or ends with punctuation ("$$$") needs no
         * boundary on that side. */
        bool left = filter_is_wordch((unsigned char)word[0]);
        bool right = filter_is_wordch((unsigned char)word[m - 1]);
        size_t pos = 0;
        while (pos + m <= n) {
            const char *hit = memmem(folded + pos, n - pos, word, m);
            if (hit == NULL)
                break;
            size_t h = (size_t)(hit - folded);
            bool ok = (!left || h == 0 || !filter_is_wordch(t[h - 1])) &&
                      (!right || h + m == n || !filter_is_wordch(t[h + m]));
            if (!ok) {
                pos = h + 1;
                continue;
            }
            if (filter_span_add(spans, h, h + m, rule) < 0)
                return HB_ENOMEM;
            hits[rule]++;
            pos = h + m;
        }
    }
    return 0;
}

static int filter_pattern_match(const struct filter_compiled *c, size_t rule, const char *text,
                                size_t n, struct filter_spans *spans, unsigned *hits)
{
    size_t pos = 0;
    while (pos <= n) {
        /* REG_STARTEND searches [pos, n) while letting the pattern see the
         * bytes before pos, so ^, \< and \b keep their meaning after the
         * first match. */
        regmatch_t m = {.rm_so = (regoff_t)pos, .rm_eo = (regoff_t)n};
        if (regexec(&c->regex, text, 1, &m, REG_STARTEND) != 0)
            break;
        size_t so = (size_t)m.rm_so;
        size_t eo = (size_t)m.rm_eo;
        if (eo == so) {
            /* An empty match in context ("\b"): step over one character. */
            pos = so + 1;
            while (pos < n && filter_is_cont((unsigned char)text[pos]))
                pos++;
            continue;
        }
        if (filter_span_add(spans, so, eo, rule) < 0)
            return HB_ENOMEM;
        hits[rule]++;
        pos = eo;
    }
    return 0;
}

static bool filter_is_local(unsigned char c)
{
    return filter_is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool filter_is_domain(unsigned char c)
{
    return filter_is_alnum(c) || c == '.' || c == '-';
}

/* Check the domain part [s, e): labels of letters, digits and inner
 * hyphens, at least two labels, and a top-level label of 2+ letters. */
static bool filter_domain_valid(const unsigned char *t, size_t s, size_t e)
{
    size_t labels = 0;
    size_t i = s;
    size_t last = s;
    while (i < e) {
        size_t j = i;
        while (j < e && t[j] != '.')
            j++;
        if (j == i || t[i] == '-' || t[j - 1] == '-')
            return false;
        labels++;
        last = i;
        i = j + 1;
        if (j == e)
            break;
        if (i == e)
            return false; /* trailing dot */
    }
    if (labels < 2 || e - last < 2)
        return false;
    for (size_t k = last; k < e; k++) {
        if (!filter_is_alpha(t[k]))
            return false;
    }
    return true;
}

static int filter_email_match(size_t rule, const char *text, size_t n, struct filter_spans *spans,
                              unsigned *hits)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t pos = 0;
    size_t floor = 0; /* the left scan never goes back past an earlier match */
    while (pos < n) {
        const char *at_p = memchr(text + pos, '@', n - pos);
        if (at_p == NULL)
            break;
        size_t at = (size_t)(at_p - text);
        size_t l = at;
        while (l > floor && filter_is_local(t[l - 1]))
            l--;
        while (l < at && t[l] == '.')
            l++; /* a local part does not start with a dot */
        size_t r = at + 1;
        while (r < n && filter_is_domain(t[r]))
            r++;
        /* Sentence punctuation after an address is not part of it. */
        while (r > at + 1 && (t[r - 1] == '.' || t[r - 1] == '-'))
            r--;
        if (l < at && filter_domain_valid(t, at + 1, r)) {
            if (filter_span_add(spans, l, r, rule) < 0)
                return HB_ENOMEM;
            hits[rule]++;
            floor = r;
            pos = r;
        } else {
            pos = at + 1;
        }
    }
    return 0;
}

static bool filter_luhn_valid(const char *digits, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(digits[n - 1 - i] - '0');
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

/* Whether a number may start at i: not glued to a word or to a number
 * before it (a decimal point, a comma, another digit). */
static bool filter_number_starts(const unsigned char *t, size_t i)
{
    if (i == 0)
        return true;
    unsigned char p = t[i - 1];
    return !filter_is_wordch(p) && p != '.' && p != ',' && p != '_' && p != '-' && p != '+' &&
           p != '/';
}

/* Cards: digit groups joined by single spaces or dashes. From each group
 * start, try the longest run of whole groups with 13-19 digits that passes
 * Luhn, so "4111 1111 1111 1111 12/27" still finds the card. Each start
 * looks at no more than 19 groups: linear in the text. */
static int filter_card_match(size_t rule, const char *text, size_t n, struct filter_spans *spans,
                             unsigned *hits)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
    bool inside = false; /* i is the next group of a run already begun */
    while (i < n) {
        if (!filter_is_digit(t[i]) || (!inside && !filter_number_starts(t, i))) {
            i++;
            continue;
        }
        inside = false;
        /* Walk groups from i, remembering each group's end. */
        size_t ends[FILTER_CARD_MAX];
        size_t counts[FILTER_CARD_MAX];
        char digits[FILTER_CARD_MAX];
        size_t ngroups = 0;
        size_t ndigits = 0;
        size_t p = i;
        bool glued = false;
        while (ngroups < FILTER_CARD_MAX) {
            size_t g = p;
            while (g < n && filter_is_digit(t[g]) && ndigits + (g - p) < FILTER_CARD_MAX)
                g++;
            if (g < n && filter_is_digit(t[g])) {
                glued = ngroups == 0; /* a first group longer than any card */
                break;
            }
            memcpy(digits + ndigits, text + p, g - p);
            ndigits += g - p;
            ends[ngroups] = g;
            counts[ngroups] = ndigits;
            ngroups++;
            if (g + 1 < n && (t[g] == ' ' || t[g] == '-') && filter_is_digit(t[g + 1]))
                p = g + 1;
            else
                break;
        }
        size_t first_end = ngroups > 0 ? ends[0] : i + 1;
        bool found = false;
        for (size_t k = ngroups; k-- > 0 && !glued;) {
            size_t e = ends[k];
            if (counts[k] < FILTER_CARD_MIN)
                break;
            if (e < n && filter_is_wordch(t[e]))
                continue;
            if (!filter_luhn_valid(digits, counts[k]))
                continue;
            if (filter_span_add(spans, i, e, rule) < 0)
                return HB_ENOMEM;
            hits[rule]++;
            i = e;
            found = true;
            break;
        }
        if (!found) {
            /* Go on with the next group of the same run. */
            i = first_end;
            while (i < n && filter_is_digit(t[i]))
                i++;
            if (i + 1 < n && (t[i] == ' ' || t[i] == '-') && filter_is_digit(t[i + 1])) {
                i++;
                inside = true;
            }
        }
    }
    return 0;
}

#define FILTER_PHONE_GROUPS 16 /* digit groups looked at in one run */

/* What is known about the first k groups of a phone-like run. */
struct filter_phone_prefix {
    size_t end;     /* byte after group k (and its ")") */
    size_t digits;  /* digits in groups 1..k */
    size_t longest; /* longest group so far */
    bool paren;     /* a group in parentheses so far */
    bool dots_only; /* every separator so far is "." */
    bool dashed;    /* some separator so far is "-" or "." */
};

static bool filter_phone_prefix_ok(const unsigned char *t, size_t n, bool plus, size_t k,
                                   const struct filter_phone_prefix *pre, const size_t *lens,
                                   const char *buf)
{
    const struct filter_phone_prefix *p = &pre[k - 1];
    if (p->end < n && filter_is_wordch(t[p->end]))
        return false;
    if (p->digits < FILTER_PHONE_MIN || p->digits > FILTER_PHONE_MAX)
        return false;
    if (k > 1 && p->longest > FILTER_PHONE_GROUP_MAX)
        return false;
    if (!plus && !p->paren && k > 1) {
        bool date = k == 3 && ((lens[0] == 4 && lens[1] == 2 && lens[2] == 2) ||
                               (lens[0] == 2 && lens[1] == 2 && lens[2] == 4));
        bool quad = p->dots_only && k == 4 && p->longest <= 3;
        bool decimal = p->dots_only && k == 2;
        if (date || quad || decimal)
            return false;
    }
    if (p->digits >= FILTER_CARD_MIN && filter_luhn_valid(buf, p->digits))
        return false; /* the card detector's business */
    return true;
}

/* Phones: parse one run of digit groups from i and judge it whole, else
 * look for a phone number at its start, so a number followed by other
 * figures ("212-867-5309 4111 ...") is still found.
 * Returns the end of the run (> i); *match_end is the end of the phone
 * number, or 0 when there is none. */
static size_t filter_phone_run(const unsigned char *t, size_t n, size_t i, size_t *match_end)
{
    struct filter_phone_prefix pre[FILTER_PHONE_GROUPS];
    size_t lens[FILTER_PHONE_GROUPS];
    char buf[FILTER_PHONE_MAX];
    size_t k = 0;
    size_t digits = 0;
    size_t p = i;
    bool plus = false;
    bool dots = true;    /* every separator so far is "." */
    bool dashed = false; /* some separator so far is "-" or "." */

    *match_end = 0;
    if (t[p] == '+') {
        plus = true;
        p++;
    }
    while (k < FILTER_PHONE_GROUPS) {
        bool open = p < n && t[p] == '(';
        size_t q = open ? p + 1 : p;
        size_t g = q;
        while (g < n && filter_is_digit(t[g]))
            g++;
        if (g == q || (open && (g >= n || t[g] != ')')))
            break;
        for (size_t d = q; d < g; d++) {
            if (digits < FILTER_PHONE_MAX)
                buf[digits] = (char)t[d];
            digits++;
        }
        lens[k] = g - q;
        pre[k].end = open ? g + 1 : g;
        pre[k].digits = digits;
        pre[k].longest = k > 0 && pre[k - 1].longest > lens[k] ? pre[k - 1].longest : lens[k];
        pre[k].paren = open || (k > 0 && pre[k - 1].paren);
        pre[k].dots_only = dots;
        pre[k].dashed = dashed;
        k++;
        p = pre[k - 1].end;
        /* After ")" a group may follow directly: "(555)123-4567". */
        if (open && p < n && filter_is_digit(t[p]))
            continue;
        if (p + 1 < n && (t[p] == ' ' || t[p] == '-' || t[p] == '.') &&
            (filter_is_digit(t[p + 1]) || t[p + 1] == '(')) {
            if (t[p] != '.')
                dots = false;
            if (t[p] != ' ')
                dashed = true;
            p++;
            continue;
        }
        break;
    }
    if (k == 0)
        return i + 1;
    if (filter_phone_prefix_ok(t, n, plus, k, pre, lens, buf)) {
        *match_end = pre[k - 1].end;
        return pre[k - 1].end;
    }
    /* The whole run is no phone number; the shortest prefix that is one may
     * be, when it ends at a space and is visibly written as a phone number
     * (+, parentheses, dashes or dots). So "192.168.1" inside
     * "192.168.1.10" and "4111 1111" inside a card number do not count. */
    for (size_t m = 1; m < k; m++) {
        const struct filter_phone_prefix *q = &pre[m - 1];
        if (t[q->end] != ' ' || !(plus || q->paren || q->dashed))
            continue;
        if (filter_phone_prefix_ok(t, n, plus, m, pre, lens, buf)) {
            *match_end = q->end;
            break;
        }
    }
    return pre[k - 1].end;
}

static int filter_phone_match(size_t rule, const char *text, size_t n, struct filter_spans *spans,
                              unsigned *hits)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        bool starts = filter_is_digit(t[i]) || ((t[i] == '+' || t[i] == '(') && i + 1 < n &&
                                                (filter_is_digit(t[i + 1]) || t[i + 1] == '('));
        if (!starts || !filter_number_starts(t, i)) {
            i++;
            continue;
        }
        size_t match_end = 0;
        size_t end = filter_phone_run(t, n, i, &match_end);
        if (match_end > 0) {
            if (filter_span_add(spans, i, match_end, rule) < 0)
                return HB_ENOMEM;
            hits[rule]++;
            end = match_end;
        } else {
            /* Skip the rest of a rejected run, glued letters included, so
             * a tail of it is not judged again on its own. */
            while (end < n && filter_is_wordch(t[end]))
                end++;
        }
        i = end;
    }
    return 0;
}

/* ---- Applying ------------------------------------------------------------ */

static int filter_span_cmp(const void *a, const void *b)
{
    const struct filter_span *x = a;
    const struct filter_span *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1; /* the longer one first */
    return x->rule < y->rule ? -1 : x->rule > y->rule ? 1 : 0;
}

/* Replace the redacting spans. Spans widen to whole UTF-8 characters (a
 * byte pattern may stop inside one); overlapping spans merge and take the
 * replacement of the one that starts first, the longer one on a tie. */
static int filter_redact(const struct filter *f, const char *text, size_t n,
                         struct filter_spans *spans, struct filter_result *out)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t keep = 0;
    for (size_t i = 0; i < spans->len; i++) {
        struct filter_span s = spans->items[i];
        if (f->rules[s.rule].action != FILTER_ACTION_REDACT)
            continue;
        while (s.start > 0 && filter_is_cont(t[s.start]))
            s.start--;
        while (s.end < n && filter_is_cont(t[s.end]))
            s.end++;
        spans->items[keep++] = s;
    }
    spans->len = keep;
    if (spans->len > 1)
        qsort(spans->items, spans->len, sizeof(*spans->items), filter_span_cmp);

    /* The output is at most the text plus one replacement per span. */
    size_t cap = n + 1;
    for (size_t i = 0; i < spans->len; i++)
        cap += strlen(f->rules[spans->items[i].rule].replacement);
    char *o = malloc(cap);
    if (o == NULL)
        return HB_ENOMEM;
    size_t olen = 0;
    size_t pos = 0;
    size_t i = 0;
    while (i < spans->len) {
        const struct filter_span *s = &spans->items[i];
        size_t end = s->end;
        size_t j = i + 1;
        while (j < spans->len && spans->items[j].start < end) {
            if (spans->items[j].end > end)
                end = spans->items[j].end;
            j++;
        }
        memcpy(o + olen, text + pos, s->start - pos);
        olen += s->start - pos;
        const char *rep = f->rules[s->rule].replacement;
        size_t rlen = strlen(rep);
        memcpy(o + olen, rep, rlen);
        olen += rlen;
        out->redactions++;
        pos = end;
        i = j;
    }
    memcpy(o + olen, text + pos, n - pos);
    olen += n - pos;
    o[olen] = '\0';
    out->text = o;
    out->text_len = olen;
    return 0;
}

static char *filter_folded_new(const char *text, size_t n, bool leet)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        s[i] = (char)filter_fold((unsigned char)text[i], leet);
    return s;
}

int filter_apply(const struct filter *f, const char *text, struct filter_result *out)
{
    int rc = 0;
    struct filter_spans spans = {0};
    char *plain = NULL;
    char *leet = NULL;
    size_t n = strlen(text);

    memset(out, 0, sizeof(*out));
    out->nhits = f->nrules;
    if (f->nrules > 0) {
        out->hits = calloc(f->nrules, sizeof(*out->hits));
        if (out->hits == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
    }
    if (f->any_plain) {
        plain = filter_folded_new(text, n, false);
        if (plain == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
    }
    if (f->any_leet) {
        leet = filter_folded_new(text, n, true);
        if (leet == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
    }

    for (size_t i = 0; i < f->nrules && rc == 0; i++) {
        const struct filter_compiled *c = &f->rules[i];
        switch (c->kind) {
        case FILTER_KIND_WORDS:
            rc = filter_words_match(c, i, c->leet ? leet : plain, n, &spans, out->hits);
            break;
        case FILTER_KIND_PATTERN:
            rc = filter_pattern_match(c, i, text, n, &spans, out->hits);
            break;
        case FILTER_KIND_EMAIL:
            rc = filter_email_match(i, text, n, &spans, out->hits);
            break;
        case FILTER_KIND_PHONE:
            rc = filter_phone_match(i, text, n, &spans, out->hits);
            break;
        case FILTER_KIND_CARD:
            rc = filter_card_match(i, text, n, &spans, out->hits);
            break;
        }
        if (rc == 0 && c->action == FILTER_ACTION_BLOCK && out->hits[i] > 0 && !out->blocked) {
            out->blocked = true;
            out->blocked_by = c->name;
        }
        if (rc == 0 && c->action == FILTER_ACTION_REVIEW && out->hits[i] > 0 &&
            out->review_by == NULL)
            out->review_by = c->name;
    }
    if (rc < 0)
        goto out;
    if (!out->blocked)
        rc = filter_redact(f, text, n, &spans, out);
    /* What the filter-hit alert reads: checks of a filter with rules, and
     * those that blocked or redacted. */
    if (rc == 0 && f->nrules > 0) {
        metrics_counter_add(metrics_std()->filter_checks, NULL, 1);
        if (out->blocked || out->redactions > 0)
            metrics_counter_add(metrics_std()->filter_hits,
                                (const char *[]){out->blocked ? "blocked" : "redacted"}, 1);
    }
out:
    free(spans.items);
    free(plain);
    free(leet);
    if (rc < 0)
        filter_result_clear(out);
    return rc;
}

void filter_result_clear(struct filter_result *r)
{
    free(r->text);
    free(r->hits);
    memset(r, 0, sizeof(*r));
}
