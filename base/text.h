/* Small text helpers shared across layers: a growing buffer for building
 * replies, the edit distance behind every "did you mean", and the one
 * spelling of yes and no that config files and command options accept. */
#ifndef HB_TEXT_H
#define HB_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A growing NUL-terminated string. Zero-initialise; free(buf) when done. */
struct text_buf {
    char *buf; /* NULL until something is added */
    size_t len;
    size_t cap;
};

/** Append formatted text. On allocation failure the buffer keeps what it had. */
void text_buf_add(struct text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Append n bytes of s as they are (no format). On allocation failure the
 *  buffer keeps what it had. */
void text_buf_put(struct text_buf *t, const char *s, size_t n);

/** Drop trailing newlines. */
void text_buf_trim(struct text_buf *t);

/** The buffer's text, or "" when empty. */
const char *text_buf_str(const struct text_buf *t);

#define TEXT_DISTANCE_MAX_LEN 64

/** Edit distance, ignoring case, where swapping two adjacent letters counts
 *  as one edit. SIZE_MAX when either string is longer than
 *  TEXT_DISTANCE_MAX_LEN. */
size_t text_distance(const char *a, const char *b);

/** Parse true/yes/on/1 or false/no/off/0 (any case). Returns 0 or -1. */
int text_bool_parse(const char *s, bool *out);

/** Decode n characters of base64 (url: the "-_" alphabet, else "+/");
 *  trailing '=' padding is allowed. Strict: a character outside the
 *  alphabet or leftover bits that are not zero fail, so every value has one
 *  encoding. Returns the byte count, or -1 (malformed, or more than cap). */
long text_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap, bool url);

/** Split a comma-separated list in place (copy is modified; NULL gives 0):
 *  words lose their surrounding blanks, empty ones are skipped. Returns how
 *  many of at most max went into words, which point into copy. */
size_t text_words_split(char *copy, const char **words, size_t max);

/** The next word of a list separated by blanks and/or commas, from *p
 *  (moved past it). *len is the word's length; buf gets it NUL-terminated
 *  when it fits in cap, else "" (the caller tells a word too long by len).
 *  Returns false when no word is left. */
bool text_word_next(const char **p, char *buf, size_t cap, size_t *len);

/** One "key:value" of a setting list ("100:500, 250:1500"). */
struct text_pair {
    char key[64];
    long long value; /* a positive whole number */
};

/** Parse a list of key:value pairs separated by commas and/or spaces, each
 *  value a positive whole number. Returns the count (0 for NULL or empty),
 *  or -1 when the text is malformed or holds more than max pairs. */
int text_pairs_parse(const char *text, struct text_pair *out, size_t max);

/** A non-negative decimal number from an HTTP header (Retry-After's
 *  seconds, Discord's "64.57" reset-after, a count): digits, optionally a
 *  '.' and more digits, blanks around; no sign, exponent, "inf" or "nan".
 *  The value times unit (1..1000: 1000 turns seconds into milliseconds),
 *  rounded up to a whole number, goes to *out. Parsed digit by digit, so no
 *  value of any length can overflow. Returns 0; HB_EINVAL when the text is
 *  not such a number (or unit is out of its range); HB_EOVERFLOW when the
 *  result would exceed max. *out is left alone on failure. */
int text_header_decimal(const char *value, int64_t unit, int64_t max, int64_t *out);

#endif
