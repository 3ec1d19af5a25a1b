/* A cheap first look at a gateway payload.
 *
 * A gateway payload is one JSON object {"op":..,"d":..,"s":..,"t":..}. Most
 * dispatches are events a bot does not want (typing, presence, member
 * updates), so the connection finds op, t and s without parsing the whole
 * object, and stops as soon as it knows the event is unwanted. For a wanted
 * event it finds where the raw JSON of `d` begins and ends; whoever wants
 * the fields parses that. The scan checks the object's structure (strings,
 * brackets, commas), not the grammar inside `d`. */
#ifndef HB_DISCORD_PAYLOAD_H
#define HB_DISCORD_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct discord_payload {
    int op;           /* -1 when absent */
    int64_t seq;      /* "s"; -1 when absent or null */
    const char *type; /* "t", pointing into the payload (not NUL-terminated); NULL when null */
    size_t type_len;
    const char *d; /* raw JSON of "d", pointing into the payload; NULL when absent */
    size_t d_len;
    bool skipped; /* a dispatch the caller does not want: the scan stopped early */
};

/** Does the caller want dispatches of this type? */
typedef bool (*discord_payload_want_fn)(const char *type, size_t len, void *data);

/** Scan `json` (len bytes). When want is not NULL and says no to a
 *  dispatch's type, the scan stops once op, t and s are known and sets
 *  `skipped` (d stays NULL). Returns 0, or HB_EPROTO when the object is
 *  malformed. Pointers in *out borrow from json. */
int discord_payload_scan(const char *json, size_t len, discord_payload_want_fn want, void *data,
                         struct discord_payload *out);

#endif
