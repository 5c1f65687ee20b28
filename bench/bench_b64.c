/*
 * bench_b64.c — strict RFC 4648 base64 decoder (standard alphabet, '='
 * padding, canonical trailing bits) used by hftp-bench to check sampled
 * slice payloads against the file's bytes.
 */
#include "bench.h"

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

long bench_b64_decode(unsigned char *dst, const char *src, size_t n)
{
    size_t i;
    long out = 0;

    if (n % 4 != 0)
        return -1;
    for (i = 0; i < n; i += 4) {
        const unsigned char *s = (const unsigned char *)src + i;
        int last = (i + 4 == n);
        int a = b64_value(s[0]);
        int b = b64_value(s[1]);
        int c;
        int d;

        if (a < 0 || b < 0)
            return -1;
        if (s[2] == '=') {
            /* "xx==": one byte, the low 4 bits of b must be zero */
            if (!last || s[3] != '=' || (b & 0x0f) != 0)
                return -1;
            dst[out++] = (unsigned char)(a << 2 | b >> 4);
            break;
        }
        c = b64_value(s[2]);
        if (c < 0)
            return -1;
        if (s[3] == '=') {
            /* "xxx=": two bytes, the low 2 bits of c must be zero */
            if (!last || (c & 0x03) != 0)
                return -1;
            dst[out++] = (unsigned char)(a << 2 | b >> 4);
            dst[out++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
            break;
        }
        d = b64_value(s[3]);
        if (d < 0)
            return -1;
        dst[out++] = (unsigned char)(a << 2 | b >> 4);
        dst[out++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
        dst[out++] = (unsigned char)((c & 0x03) << 6 | d);
    }
    return out;
}
