/* FNV-1a. See base/hash.h. */
#include "base/hash.h"

#include <string.h>

#define HASH_FNV64_OFFSET 0xcbf29ce484222325ULL
#define HASH_FNV64_PRIME 0x100000001b3ULL

uint64_t hash_fnv1a64(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = HASH_FNV64_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= HASH_FNV64_PRIME;
    }
    return h;
}

uint64_t hash_fnv1a64_str(const char *s)
{
    return hash_fnv1a64(s, strlen(s));
}
