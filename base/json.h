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
#include <stddef.h>

/** The compact JSON text of item (malloc'd, NUL-terminated; free()), its
 *  length in *len when len is not NULL. NULL when out of memory or when
 *  item is NULL or of an invalid type. */
char *json_print(const cJSON *item, size_t *len);

#endif
