/* The manual pages, written from the schema table that checks the config
 * (config_schema.c), so the documentation and the checks never disagree:
 * haibot(1), the command, and bot.conf(5), every section and key with its
 * type, default, range and whether a change applies live. `make man`
 * writes them with `haibot --man 1` and `haibot --man 5`. */
#ifndef HB_CONFIG_MAN_H
#define HB_CONFIG_MAN_H

#include <stdio.h>

/** Write manual page section 1 (haibot) or 5 (bot.conf) as roff to out.
 *  Returns 0, or -1 for another section or a failed write. */
int config_man_write(int section, FILE *out);

#endif
