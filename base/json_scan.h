/* Raw JSON scanning without a tree.
 *
 * Most JSON a daemon takes in is read for a few members: a gateway payload
 * for its op, type and sequence, a stream's chunk for its text. These
 * calls find members and values in the raw text, borrowing pointers into
 * it, with no allocation. The scan checks an object's structure (strings,
 * brackets, commas); a value it passes over whole (a nested container) is
 * checked for balanced brackets and quotes only, and json_scan_string and
 * json_scan_literal check the grammar of the values a caller reads. */
#ifndef HB_JSON_SCAN_H
#define HB_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** p past JSON whitespace (space, tab, line feed, carriage return). */
const char *json_scan_ws(const char *p, const char *end);

/** p at an object's opening brace (after any space): past it and any
 *  space. NULL if not one. */
const char *json_scan_open(const char *p, const char *end);

/** One member of an object: *pp is at its key (or at the closing brace).
 *  Returns 1 with the raw key (between its quotes, escapes as written) and
 *  the raw value [*v, *vend), *pp past the member, its comma and any space;
 *  0 at the closing brace (*pp past it); HB_EPROTO when malformed. */
int json_scan_next(const char **pp, const char *end, const char **key, size_t *klen, const char **v,
                   const char **vend);

/** Whether a raw key (as json_scan_next gives it) is name. */
bool json_scan_key(const char *k, size_t klen, const char *name);

/** A raw value [p, end) that is a non-negative integer, or -1 for null or
 *  anything else. */
int64_t json_scan_int(const char *p, const char *end);

/** A member's raw value, or v NULL when the object has none. */
struct json_member {
    const char *v;
    size_t len;
};

/** Several top-level members of the object `obj` (len bytes) in one pass:
 *  out[i] for names[i] (n of each), never one inside a nested value.
 *  Returns how many were found, or HB_EPROTO when the object is malformed
 *  before the last of them. The scan stops once all are found. */
int json_scan_members(const char *obj, size_t len, const char *const *names, size_t n,
                      struct json_member *out);

/** The raw value of the member `name` at the top level of `obj`: 0 with
 *  *v and *vlen set (borrowed), HB_ENOTFOUND when the object has none,
 *  HB_EPROTO when it is malformed (as far as the scan checks). */
int json_scan_member(const char *obj, size_t len, const char *name, const char **v, size_t *vlen);

/** The one element of the raw array `arr` (len bytes, nothing after it
 *  but space): 0 with its raw value, HB_ENOTFOUND when the array is empty,
 *  HB_EPROTO when it is malformed or has more than one element. */
int json_scan_only(const char *arr, size_t len, const char **v, size_t *vlen);

/** Check, and decode when out is not NULL, the raw string value v (len
 *  bytes, quotes included) into out, which must hold len bytes; NUL-ended,
 *  its length in *outlen (may be NULL). Escapes become what they mean (a
 *  surrogate pair one UTF-8 character); other bytes are copied as they
 *  are. Returns 0, or HB_EPROTO for what RFC 8259 does not allow (a bad
 *  escape, a control character) and for what a C string cannot carry
 *  faithfully (a lone surrogate escape, U+0000). */
int json_scan_string(const char *v, size_t len, char *out, size_t *outlen);

/** The value of the four hex digits at p (p holds at least four bytes), or
 *  -1 when one is not a hex digit: a \u escape's code unit. */
int json_scan_hex4(const char *p);

/** Whether the raw value v (len bytes) is true, false, null or a number as
 *  RFC 8259 writes one. */
bool json_scan_literal(const char *v, size_t len);

/** Whether the raw value v (len bytes, no space around it) is JSON as
 *  RFC 8259 writes it, nested at most 64 deep, with no string that
 *  json_scan_string refuses. */
bool json_scan_valid(const char *v, size_t len);

#endif
