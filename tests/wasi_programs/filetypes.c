/* What the runtime reports for descriptors 0-2: the filetype from
 * fd_fdstat_get and from fd_filestat_get, on stdout and on stderr. */
#include <stdio.h>
#include <wasi/api.h>

int main(void) {
    char buf[128];
    int n = 0;
    for (int fd = 0; fd < 3; fd++) {
        __wasi_fdstat_t s;
        __wasi_filestat_t f;
        int a = __wasi_fd_fdstat_get(fd, &s) ? -1 : s.fs_filetype;
        int b = __wasi_fd_filestat_get(fd, &f) ? -1 : f.filetype;
        n += snprintf(buf + n, sizeof buf - n, "fd%d %d %d\n", fd, a, b);
    }
    for (int fd = 1; fd < 3; fd++) {
        __wasi_ciovec_t v = {(const uint8_t *)buf, (size_t)n};
        size_t written;
        if (__wasi_fd_write(fd, &v, 1, &written)) return 1;
    }
    return 0;
}
