#ifndef CSSH2_SHIM_H
#define CSSH2_SHIM_H
#include <libssh2.h>
#include <libssh2_sftp.h>

// libssh2's short names are macros Swift does not import; wrappers live here as they are needed.
static inline const char *cssh2_version(void) {
    return libssh2_version(0);
}

// libssh2_session_init() is a macro over the _ex form with default allocators.
static inline LIBSSH2_SESSION *cssh2_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

// LIBSSH2_SFTP_S_ISDIR is a function-like macro.
static inline int cssh2_is_directory(unsigned long permissions) {
    return LIBSSH2_SFTP_S_ISDIR(permissions) ? 1 : 0;
}

// libssh2_session_last_error's message, borrowed from the session (valid until the next call on it).
static inline const char *cssh2_last_error_message(LIBSSH2_SESSION *session, int *code) {
    char *message = NULL;
    int length = 0;
    *code = libssh2_session_last_error(session, &message, &length, 0);
    return message;
}

// The signature of libssh2_sftp_posix_rename_ex (libssh2 >= 1.11), looked up at run time so the
// same source builds against Debian's 1.10, which lacks it.
typedef int (*cssh2_posix_rename_fn)(LIBSSH2_SFTP *sftp, const char *source, size_t source_len,
                                     const char *dest, size_t dest_len);
#endif
