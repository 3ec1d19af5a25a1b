/* The content filter: forbidden words and patterns, and detectors for
 * personal information, applied to prompts and to outputs.
 *
 * A filter is built once from a list of rules (from the configuration) and
 * is then read-only: filter_apply() on the same filter is safe from several
 * threads at once.
 *
 * Rule kinds:
 * - FILTER_KIND_WORDS: forbidden words or phrases, matched whole-word and
 *   case-insensitively. "Whole word" means the bytes around a match are not
 *   ASCII letters or digits and not part of a multi-byte character, so a
 *   match never splits a UTF-8 character and "class" does not match "ass".
 *   Case folding covers ASCII letters only; other letters match exactly.
 *   With `leet` set, the characters 0 1 3 4 5 7 8 @ $ are also read as
 *   o i e a s t b a s ("h4t3" matches "hate"). Spacing or punctuation
 *   inside a word ("h.a.t.e") is not undone; use a pattern for that.
 * - FILTER_KIND_PATTERN: a POSIX extended regular expression, matched
 *   case-insensitively on the bytes of the text. A pattern that matches
 *   the empty text is refused (it would match everywhere).
 * - FILTER_KIND_EMAIL: addresses like name.tag+x@example.co.uk.
 * - FILTER_KIND_PHONE: 7 to 15 digits, optionally with a leading +, groups
 *   in parentheses and single spaces, dashes or dots between groups. A
 *   heuristic: dates (2024-01-15), dotted quads, decimals (3.14159) and
 *   numbers that pass as payment cards are left out, but a plain run of 7+
 *   digits (an order number) counts as a phone number.
 * - FILTER_KIND_CARD: 13 to 19 digits, optionally grouped with single
 *   spaces or dashes, that pass the Luhn check. A random number that fails
 *   the check is not flagged.
 *
 * Each rule blocks the text, redacts its matches, or asks for review (the
 * text passes unchanged and the result names the rule: a prompt is then
 * held for an admin, core/generate.h). Matches of all
 * rules are found on the original text; overlapping redactions merge into
 * one replacement, that of the match starting first (the longer on a
 * tie). Results carry per-rule hit counts, never the text, so statistics
 * can record them. */
#ifndef HB_FILTER_H
#define HB_FILTER_H

#include <stdbool.h>
#include <stddef.h>

enum filter_kind {
    FILTER_KIND_WORDS = 0,
    FILTER_KIND_PATTERN = 1,
    FILTER_KIND_EMAIL = 2,
    FILTER_KIND_PHONE = 3,
    FILTER_KIND_CARD = 4,
};

enum filter_action {
    FILTER_ACTION_BLOCK = 0,  /* refuse the whole text */
    FILTER_ACTION_REDACT = 1, /* replace each match */
    FILTER_ACTION_REVIEW = 2, /* let the text through, but hold a prompt for an admin's review */
};

/** One rule as configured. Everything is borrowed during filter_new(),
 *  which copies what it keeps. */
struct filter_rule {
    const char *name; /* unique, non-empty; shown in statistics and refusals */
    enum filter_kind kind;
    enum filter_action action;
    const char *const *words; /* WORDS: the words or phrases (valid UTF-8) */
    size_t nwords;            /* WORDS: how many */
    bool leet;                /* WORDS: also read digits and @ $ as letters */
    const char *pattern;      /* PATTERN: POSIX extended regex */
    const char *replacement;  /* REDACT: put in place of a match; NULL: "[removed]",
                                 "[email removed]", "[phone removed]" or "[card removed]" */
};

/** The outcome of filtering one text. Initialise with {0} or let
 *  filter_apply() fill it; release with filter_result_clear(). */
struct filter_result {
    bool blocked;           /* a blocking rule matched */
    const char *review_by;  /* name of the first review rule that matched (borrowed like
                               blocked_by); NULL when none did */
    const char *blocked_by; /* name of the first such rule in rule order (borrowed from the
                               filter, valid while it lives); NULL when not blocked */
    char *text;             /* not blocked: the text with redactions applied (heap, owned
                               here, NUL-terminated); NULL when blocked */
    size_t text_len;        /* bytes in text */
    size_t redactions;      /* replacements made in text */
    unsigned *hits;         /* matches per rule, in rule order (heap, owned here) */
    size_t nhits;           /* entries in hits: the number of rules */
};

struct filter;

/** Parse a kind name: "words", "pattern", "email", "phone" or "card".
 *  Returns 0 or HB_EINVAL. */
int filter_kind_parse(const char *name, enum filter_kind *out);

/** Parse an action name: "block", "redact" or "review". Returns 0 or
 *  HB_EINVAL. */
int filter_action_parse(const char *name, enum filter_action *out);

#define FILTER_PATTERN_MAX 256 /* bytes in one pattern */
#define FILTER_PATTERN_REPEAT_MAX                                                                  \
    256 /* the largest counts of a pattern's {n,m} bounds, added up                                \
         */

/** Refuse a pattern the regex compiler would spend exponential time or
 *  memory on, before it gets there: longer than FILTER_PATTERN_MAX bytes;
 *  a quantifier right after another (`a**`, `b+{2}`); a group repeated
 *  with *, + or {} that itself holds a quantifier (`(a*)*`, `(ab+)+`;
 *  `(a+)?` is fine); {n,m} bounds whose largest counts add up to more
 *  than FILTER_PATTERN_REPEAT_MAX (each copies its item that often); a
 *  back-reference (`\1`); a quantifier with nothing before it. Other syntax
 *  errors are left to regcomp, which reports them quickly. Returns 0, or
 *  HB_EINVAL with a one-line reason in err (errcap bytes, may be NULL).
 *  filter_new() runs this on every pattern before compiling it. */
int filter_pattern_check(const char *pattern, char *err, size_t errcap);

/** Build a filter from n rules (borrowed; n may be 0). Returns the filter,
 *  freed with filter_free(); or NULL with a message naming the rule in err
 *  (errcap bytes, may be NULL) for a missing or duplicate name, an empty
 *  word list, a word that is empty or not UTF-8, a bad or empty-matching
 *  pattern, an unknown kind or action, or when out of memory. */
struct filter *filter_new(const struct filter_rule *rules, size_t n, char *err, size_t errcap);

/** Free a filter (NULL is allowed). No filter_apply() may be running. */
void filter_free(struct filter *f);

/** Number of rules, and the name of rule i (borrowed), to label hits. */
size_t filter_rule_count(const struct filter *f);
const char *filter_rule_name(const struct filter *f, size_t i);

/** Filter a NUL-terminated text (borrowed) into *out, which is overwritten
 *  (clear an earlier result first). Returns 0 (blocked or not) or
 *  HB_ENOMEM, in which case *out holds nothing to free. Safe to call from
 *  several threads on the same filter. */
int filter_apply(const struct filter *f, const char *text, struct filter_result *out);

/** Free what a result owns and reset it to empty. */
void filter_result_clear(struct filter_result *r);

#endif
