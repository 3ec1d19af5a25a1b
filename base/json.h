/* Writing JSON text from a cJSON tree, quickly.
 *
 * cJSON_PrintUnformatted prints every number with "%1.15g", reads it back
 * with sscanf to check it and prints it again when it did not round-trip:
 * on a chat platform's send path, where every call carries a chat id and a
 * message id, that is most of the cost of building a body. This writer
 * gives the same text for the same tree (compact, keys in order, strings
 * escaped as RFC 8259 asks, NaN and infinities as null) but writes whole
 * numbers, which ids and amounts are, with integer code (exactly, up to
 * 2^53, where cJSON rounds 16 digits to 15), and other numbers with the
 * shorter of "%.15g" and "%.17g" that reads back exactly. */
#ifndef HB_JSON_H
#define HB_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The compact JSON text of item (malloc'd, NUL-terminated; free()), its
 *  length in *len when len is not NULL. NULL when out of memory or when
 *  item is NULL or of an invalid type. */
char *json_print(const cJSON *item, size_t *len);

/** JSON text written piece by piece, for bodies whose bulk (a conversation's
 *  turns) would cost a tree node, two copies and two frees per string as a
 *  cJSON tree. Zero-initialise; a failed allocation sticks (failed) and the
 *  finish returns NULL. */
struct json_text {
    char *buf;
    size_t len, cap;
    bool failed;
};

/** Append n bytes as they are (JSON punctuation, or text already JSON). */
void json_text_put(struct json_text *o, const char *s, size_t n);

/** Append s as a JSON string: quoted and escaped as RFC 8259 asks ("" for
 *  NULL). */
void json_text_string(struct json_text *o, const char *s);

/** Append item's compact JSON text, as json_print writes it. */
void json_text_value(struct json_text *o, const cJSON *item);

/** The text (malloc'd, NUL-terminated; free()) and its length in *len when
 *  len is not NULL; o is empty again after. NULL when anything failed. */
char *json_text_finish(struct json_text *o, size_t *len);

/** 2^53: every whole number up to this magnitude is exact in a double, so
 *  in a JSON number; the usual bound for an id that comes from outside. */
#define JSON_INT_EXACT 9007199254740992LL

/** Read a JSON number from outside as a whole number in [lo, hi]. The check
 *  comes before any conversion, so 1e300, infinities, NaN and fractions
 *  never reach an integer type (converting them is undefined behaviour).
 *  Returns 0 and sets *out; HB_EINVAL when item is not a number, is NaN or
 *  has a fraction; HB_EOVERFLOW when it lies outside [lo, hi] (infinities
 *  included). *out is left alone on failure. */
int json_int64_get(const cJSON *item, int64_t lo, int64_t hi, int64_t *out);

#endif
