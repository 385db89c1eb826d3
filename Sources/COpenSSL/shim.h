#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/evp.h>

// One call for the sandbox's signature check: MD5 of `length` bytes into `out` (16 bytes).
// Returns 1 on success, 0 on failure (EVP_Digest's convention).
static inline int copenssl_md5(const void *data, size_t length, unsigned char *out) {
    unsigned int written = 0;
    return EVP_Digest(data, length, out, &written, EVP_md5(), NULL);
}
#endif
