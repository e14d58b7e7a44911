/* Tries to leave the preopened directory /data every way a path can:
 * '..', absolute paths, symbolic links pointing out (made by the guest and
 * by the host).  Prints the errno of each attempt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void try_open(const char *path) {
    int fd = open(path, O_RDONLY);
    printf("open %s: %s\n", path, fd >= 0 ? "OPENED" : strerror(errno));
    if (fd >= 0) close(fd);
}

int main(void) {
    try_open("/data/inside.txt");
    try_open("/data/../outside.txt");
    try_open("/data/sub/../../outside.txt");
    try_open("/data/sub/../inside.txt");
    try_open("/outside.txt");
    try_open("/etc/passwd");
    try_open("../outside.txt");
    try_open("/data/host_link_out");          /* made by the host: ../outside.txt */
    try_open("/data/host_link_abs");          /* made by the host: absolute path */
    try_open("/data/host_link_in");           /* made by the host: inside.txt */
    printf("symlink out: %d\n", symlink("../outside.txt", "/data/guest_link"));
    try_open("/data/guest_link");
    struct stat st;
    printf("stat through link out: %s\n", stat("/data/guest_link", &st) ? strerror(errno) : "OK");
    printf("lstat link itself: %s\n", lstat("/data/guest_link", &st) ? strerror(errno) : "OK");
    printf("mkdir ..: %s\n", mkdir("/data/../made", 0755) ? strerror(errno) : "MADE");
    printf("unlink ..: %s\n", unlink("/data/../outside.txt") ? strerror(errno) : "REMOVED");
    printf("rename out: %s\n", rename("/data/inside.txt", "/data/../moved.txt") ? strerror(errno) : "MOVED");
    int fd = open("/data/../outside.txt", O_WRONLY | O_CREAT, 0644);
    printf("create out: %s\n", fd >= 0 ? "CREATED" : strerror(errno));
    return 0;
}
