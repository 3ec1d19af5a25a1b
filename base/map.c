/* A chained hash table with a power-of-two bucket count. See map.h.
 *
 * Keys hash with 64-bit FNV-1a. The table doubles when it holds more
 * entries than buckets, rehashing every entry at once: maps here hold at
 * most a few thousand entries, so an incremental rehash (as Redis does)
 * would buy nothing but complexity. */
#include "base/map.h"

#include "base/error.h"
#include "base/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAP_BUCKETS_MIN 8

struct map_entry {
    struct map_entry *next; /* next in the same bucket */
    uint64_t hash;          /* of key, kept so growth need not hash again */
    void *value;            /* owned by the map */
    char key[];             /* NUL-terminated copy */
};

struct map {
    struct map_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;    /* entries held */
    map_free_fn *free_value;
};

static uint64_t map__hash(const char *key)
{
    return hash_fnv1a64_str(key);
}

static void map__release(struct map *m, struct map_entry *e)
{
    if (m->free_value != NULL && e->value != NULL)
        m->free_value(e->value);
    free(e);
}

struct map *map_new(map_free_fn *free_value)
{
    struct map *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->buckets = calloc(MAP_BUCKETS_MIN, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        free(m);
        return NULL;
    }
    m->nbuckets = MAP_BUCKETS_MIN;
    m->free_value = free_value;
    return m;
}

void map_free(struct map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *e = m->buckets[i];
        while (e != NULL) {
            struct map_entry *next = e->next;
            map__release(m, e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

/* The link that points at key's entry (or the bucket's terminating NULL). */
static struct map_entry **map__slot(const struct map *m, const char *key, uint64_t hash)
{
    struct map_entry **pp = &m->buckets[hash & (m->nbuckets - 1)];
    while (*pp != NULL && ((*pp)->hash != hash || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

/* Double the bucket array. On failure the map stays as it was, only more
 * crowded. */
static void map__grow(struct map *m)
{
    size_t n = m->nbuckets * 2;
    struct map_entry **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *e = m->buckets[i];
        while (e != NULL) {
            struct map_entry *next = e->next;
            struct map_entry **head = &b[e->hash & (n - 1)];
            e->next = *head;
            *head = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int map_set(struct map *m, const char *key, void *value)
{
    uint64_t hash = map__hash(key);
    struct map_entry **pp = map__slot(m, key, hash);
    if (*pp != NULL) {
        struct map_entry *e = *pp;
        if (e->value != value && m->free_value != NULL && e->value != NULL)
            m->free_value(e->value);
        e->value = value;
        return 0;
    }
    size_t len = strlen(key);
    struct map_entry *e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return HB_ENOMEM;
    memcpy(e->key, key, len + 1);
    e->hash = hash;
    e->value = value;
    e->next = NULL;
    *pp = e;
    m->count++;
    if (m->count > m->nbuckets)
        map__grow(m);
    return 0;
}

void *map_get(const struct map *m, const char *key)
{
    struct map_entry *e = *map__slot(m, key, map__hash(key));
    return e != NULL ? e->value : NULL;
}

void *map_take(struct map *m, const char *key)
{
    struct map_entry **pp = map__slot(m, key, map__hash(key));
    struct map_entry *e = *pp;
    if (e == NULL)
        return NULL;
    *pp = e->next;
    m->count--;
    void *value = e->value;
    free(e);
    return value;
}

int map_remove(struct map *m, const char *key)
{
    struct map_entry **pp = map__slot(m, key, map__hash(key));
    struct map_entry *e = *pp;
    if (e == NULL)
        return HB_ENOTFOUND;
    *pp = e->next;
    m->count--;
    map__release(m, e);
    return 0;
}

size_t map_count(const struct map *m)
{
    return m->count;
}

void map_iter_init(struct map_iter *it, struct map *m)
{
    it->map = m;
    it->bucket = 0;
    it->cur = NULL;
    it->next = NULL;
}

bool map_iter_next(struct map_iter *it, const char **key, void **value)
{
    struct map *m = it->map;
    struct map_entry *e = it->next;
    while (e == NULL && it->bucket < m->nbuckets)
        e = m->buckets[it->bucket++];
    it->cur = e;
    if (e == NULL)
        return false;
    /* Read the successor now, so the caller may remove this entry. */
    it->next = e->next;
    if (key != NULL)
        *key = e->key;
    if (value != NULL)
        *value = e->value;
    return true;
}

void map_iter_remove(struct map_iter *it)
{
    struct map_entry *e = it->cur;
    if (e == NULL)
        return;
    struct map *m = it->map;
    struct map_entry **pp = &m->buckets[e->hash & (m->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    m->count--;
    it->cur = NULL;
    map__release(m, e);
}
