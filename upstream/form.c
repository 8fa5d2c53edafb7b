/* form: see form.h. */
#include "upstream/form.h"

#include <stdio.h>
#include <string.h>

void form_escape(pgbuf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            pgbuf_put_byte(out, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            pgbuf_put(out, e, 3);
        }
    }
}

/* key is already escaped */
static void put_pair(pgbuf *out, const char *key, const char *value)
{
    if (out->len > 0)
        pgbuf_put_byte(out, '&');
    pgbuf_put(out, key, strlen(key));
    pgbuf_put_byte(out, '=');
    form_escape(out, value);
}

static void encode_value(pgbuf *out, pgbuf *key, const cJSON *v)
{
    size_t keylen = key->len;
    char num[64];
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int i = 0;
        const cJSON *child;
        cJSON_ArrayForEach(child, v)
        {
            key->len = keylen;
            pgbuf_put(key, "%5B", 3); /* '[' */
            if (cJSON_IsArray(v)) {
                snprintf(num, sizeof num, "%d", i++);
                pgbuf_put(key, num, strlen(num));
            } else {
                form_escape(key, child->string);
            }
            pgbuf_put(key, "%5D", 3); /* ']' */
            encode_value(out, key, child);
        }
        key->len = keylen;
        return;
    }
    pgbuf_put_byte(key, '\0');
    if (cJSON_IsString(v)) {
        put_pair(out, key->data, v->valuestring);
    } else if (cJSON_IsBool(v)) {
        put_pair(out, key->data, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d && d < 9e15 && d > -9e15)
            snprintf(num, sizeof num, "%lld", (long long)d);
        else
            snprintf(num, sizeof num, "%.17g", d);
        put_pair(out, key->data, num);
    } else { /* null: an empty value unsets the field */
        put_pair(out, key->data, "");
    }
    key->len = keylen;
}

int form_encode(pgbuf *out, const cJSON *obj)
{
    if (!cJSON_IsObject(obj))
        return -1;
    pgbuf key;
    pgbuf_init(&key, 4096);
    const cJSON *child;
    cJSON_ArrayForEach(child, obj)
    {
        pgbuf_reset(&key);
        form_escape(&key, child->string);
        encode_value(out, &key, child);
    }
    int rc = key.failed || out->failed ? -1 : 0;
    pgbuf_free(&key);
    return rc;
}
