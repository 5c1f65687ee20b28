/*
 * base64.h — RFC 4648 base64 encoding (standard alphabet, '=' padding).
 * base64_encode() picks the fastest implementation the CPU supports
 * (AVX-512 VBMI, AVX2, SSSE3, scalar) once, at first use.
 */
#ifndef HFTPD_BASE64_H
#define HFTPD_BASE64_H

#include <stddef.h>

/* Encoded length of n input bytes, padding included. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Encodes n bytes of src into dst (at least BASE64_ENCODED_LEN(n) bytes,
 * no NUL written).  Returns the number of bytes written. */
size_t base64_encode(char *dst, const unsigned char *src, size_t n);

/* The portable table encoder; same contract.  Exported for tests. */
size_t base64_encode_scalar(char *dst, const unsigned char *src, size_t n);

/* Name of the implementation base64_encode() uses: "avx512vbmi", "avx2",
 * "ssse3", "scalar". */
const char *base64_impl_name(void);

#endif
