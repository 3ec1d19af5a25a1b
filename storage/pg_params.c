/* The PostgreSQL store's statement parameters (text, or binary for bytea)
 * and the typed reads of result cells, shared by every storage/pg*.c. */
#include "storage/pg_internal.h"

#include "base/hex.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pg__params_init(struct pg_params *p)
{
    p->n = 0;
}

static void pg__param(struct pg_params *p, const char *v, int len, int format)
{
    if (p->n >= PG_PARAMS_MAX)
        abort(); /* a statement of this file with too many parameters */
    p->value[p->n] = v;
    p->length[p->n] = len;
    p->format[p->n] = format;
    p->n++;
}

void pg__text(struct pg_params *p, const char *v)
{
    pg__param(p, v != NULL ? v : "", 0, 0);
}

void pg__opt(struct pg_params *p, const char *v)
{
    pg__param(p, v != NULL && v[0] != '\0' ? v : NULL, 0, 0);
}

void pg__int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_PARAMS_MAX)
        abort();
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
    pg__param(p, p->num[p->n], 0, 0);
}

void pg__bin(struct pg_params *p, const void *v, size_t len)
{
    pg__param(p, v != NULL ? (const char *)v : "", (int)len, 1);
}

int64_t pg__int_at(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void pg__text_at(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    const char *v = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

size_t pg__bytea_len(const char *v)
{
    /* bytea_output = hex, the server's default: "\\x" and two digits a byte. */
    size_t n = strlen(v);
    if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2 != 0)
        return 0;
    return (n - 2) / 2;
}

void pg__bytes_at(const PGresult *r, int row, int col, uint8_t *dst, size_t cap)
{
    memset(dst, 0, cap);
    const char *v = PQgetvalue(r, row, col);
    size_t len = pg__bytea_len(v);
    if (hex_decode(v + 2, dst, len < cap ? len : cap) < 0)
        memset(dst, 0, cap);
}
