#ifndef CSSH2_SHIM_H
#define CSSH2_SHIM_H
#include <libssh2.h>
#include <libssh2_sftp.h>

// libssh2's short names are macros Swift does not import; wrappers live here as they are needed.
static inline const char *cssh2_version(void) {
    return libssh2_version(0);
}
#endif
