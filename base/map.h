/* A string-keyed hash map, in the manner of Redis's dict and curl's hash.
 *
 * Ownership: the map copies every key; it owns every value it holds and
 * releases it with the free function given to map_new() when the value is
 * replaced, removed, or when the map is freed (never twice, never for a
 * value handed back by map_take()). Values are borrowed by callers of
 * map_get() until the entry is replaced or removed.
 *
 * The table grows as entries are added (it never moves entries otherwise),
 * so while iterating, removing the entry just returned (map_iter_remove(),
 * or map_remove() with its key) is safe; adding entries is not.
 *
 * Not thread safe: one map belongs to one thread. */
#ifndef HB_MAP_H
#define HB_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct map;
struct map_entry;

/** Releases a value the map owns (may be NULL: values are not released). */
typedef void map_free_fn(void *value);

/** An empty map whose values free_value releases. Returns NULL when out of
 *  memory. */
struct map *map_new(map_free_fn *free_value);

/** Release every value, every key and the map. m may be NULL. */
void map_free(struct map *m);

/** Set key to value. A value already under key is released first (unless
 *  it is the same pointer). Returns 0, or HB_ENOMEM (value not taken: the
 *  caller still owns it). */
int map_set(struct map *m, const char *key, void *value);

/** The value under key (borrowed), or NULL. */
void *map_get(const struct map *m, const char *key);

/** Remove key and release its value. Returns 0, or HB_ENOTFOUND. */
int map_remove(struct map *m, const char *key);

/** Remove key and hand its value back to the caller, who now owns it;
 *  NULL when absent. */
void *map_take(struct map *m, const char *key);

/** How many entries the map holds. */
size_t map_count(const struct map *m);

/** A position in an iteration. Transparent so it can live on the stack;
 *  its fields are private to map.c. */
struct map_iter {
    struct map *map;
    size_t bucket;          /* next bucket to look in */
    struct map_entry *cur;  /* the entry last returned, or NULL */
    struct map_entry *next; /* the entry after it, read before it is returned */
};

/** Start an iteration over m, in no particular order. */
void map_iter_init(struct map_iter *it, struct map *m);

/** The next entry: its key and value (borrowed; key and value may be NULL
 *  when not wanted). Returns false when there are no more. */
bool map_iter_next(struct map_iter *it, const char **key, void **value);

/** Remove the entry map_iter_next() returned last and release its value.
 *  Iteration carries on with the entries after it. */
void map_iter_remove(struct map_iter *it);

#endif
