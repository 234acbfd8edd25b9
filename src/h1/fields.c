/* Field helpers: case-insensitive names, comma-separated token lists, lookups over a head. */
#include <string.h>

#include "h1/h1_chars.h"
#include "h1/h1_internal.h"

bool rill_h1_name_eq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return n == alen && h1_ieq(a, lit, n);
}

bool rill_h1_list_has_token(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (start < end && (value[start] == ' ' || value[start] == '\t'))
            start++;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tlen && h1_ieq(value + start, token, tlen))
            return true;
        i++;
    }
    return false;
}

const rill_h1_field *rill_h1_find_field(const rill_h1_field *fields, size_t n, const char *name,
                                        size_t *pos)
{
    size_t nlen = strlen(name);
    for (size_t i = pos ? *pos : 0; i < n; i++) {
        if (fields[i].name_len == nlen && h1_ieq(fields[i].name, name, nlen)) {
            if (pos)
                *pos = i + 1;
            return &fields[i];
        }
    }
    if (pos)
        *pos = n;
    return NULL;
}

bool rill_h1_head_has_token(const rill_h1_head *head, const char *name, const char *token)
{
    size_t pos = 0;
    const rill_h1_field *f;
    while ((f = rill_h1_find_field(head->fields, head->nfields, name, &pos)))
        if (rill_h1_list_has_token(f->value, f->value_len, token))
            return true;
    return false;
}
