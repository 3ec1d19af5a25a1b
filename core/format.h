/* Formatting shared by every reply: credits, dates, transfer kinds. One
 * place, so wording and number style stay the same everywhere. */
#ifndef HB_FORMAT_H
#define HB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/** "1,250" (with a minus sign when negative). Returns buf. */
char *format_credits(char *buf, size_t cap, int64_t amount);

/** "2026-11-24 08:00" UTC from ms since the epoch. Returns buf. */
char *format_time(char *buf, size_t cap, int64_t ms);

/** "2026-11-24" from days since the epoch. Returns buf. */
char *format_day(char *buf, size_t cap, int64_t day);

/** A member-facing word for a ledger transfer kind ("generation", "grant"). */
const char *format_kind(uint32_t kind);

#endif
