/* The rest of the descriptor and path calls: fd_renumber, hard
 * links, timestamps, fallocate/fadvise/fsync, fcntl append, poll on files,
 * sched_yield, seek past the end, readdir over many long names (several
 * fd_readdir calls with cookies), nested directories and rename over. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

#define SHOW(x) printf("%-28s %d %s\n", #x, (int)(x), errno ? strerror(errno) : ""), errno = 0

int main(void) {
    char name[300], buf[64];
    struct stat st;
    errno = 0;
    int fd = open("/data/f.txt", O_RDWR | O_CREAT, 0644);
    SHOW(write(fd, "hello", 5));
    SHOW(lseek(fd, 10, SEEK_END));
    SHOW(write(fd, "!", 1));
    fstat(fd, &st);
    SHOW(st.st_size);
    SHOW(pread(fd, buf, 16, 0));
    SHOW(buf[5] == 0 && buf[14] == 0 && buf[15] == '!');
    SHOW(posix_fallocate(fd, 0, 100));
    fstat(fd, &st);
    SHOW(st.st_size);
    SHOW(posix_fadvise(fd, 0, 10, POSIX_FADV_SEQUENTIAL));
    SHOW(fsync(fd));
    SHOW(fdatasync(fd));
    SHOW(ftruncate(fd, 4));
    int fl = fcntl(fd, F_GETFL);
    SHOW(fcntl(fd, F_SETFL, fl | O_APPEND));
    SHOW((fcntl(fd, F_GETFL) & O_APPEND) != 0);
    SHOW(lseek(fd, 0, SEEK_SET));
    SHOW(write(fd, "XY", 2));
    SHOW(pread(fd, buf, 16, 0));
    printf("content %.6s\n", buf);

    int fd2 = open("/data/g.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SHOW(__wasi_fd_renumber(fd, fd2));   /* no dup2 in wasi-libc */
    SHOW(write(fd2, "Z", 1));
    SHOW(close(fd));
    SHOW(pread(fd2, buf, 16, 0));
    SHOW(close(fd2));
    SHOW(close(fd2));

    SHOW(link("/data/f.txt", "/data/hard.txt"));
    stat("/data/f.txt", &st);
    SHOW(st.st_nlink);
    struct timespec times[2] = {{1000000000, 5}, {1200000000, 7}};
    SHOW(utimensat(AT_FDCWD, "/data/f.txt", times, 0));
    stat("/data/hard.txt", &st);
    printf("mtime %lld.%09ld atime %lld\n", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
           (long long)st.st_atim.tv_sec);
    fd = open("/data/f.txt", O_RDONLY);
    struct timespec t2[2] = {{UTIME_OMIT, 0}, {1300000000, 0}};
    SHOW(futimens(fd, t2));
    fstat(fd, &st);
    printf("mtime %lld atime %lld\n", (long long)st.st_mtim.tv_sec, (long long)st.st_atim.tv_sec);
    struct pollfd p = {fd, POLLIN, 0};
    SHOW(poll(&p, 1, 1000));   /* a file is ready at once */
    SHOW(p.revents & POLLIN);
    SHOW(write(fd, "no", 2));
    close(fd);
    SHOW(sched_yield());

    SHOW(mkdir("/data/deep", 0755));
    SHOW(mkdir("/data/deep/er", 0755));
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "/data/deep/er/file-with-a-rather-long-name-%03d-%0*d", i, 100, i);
        close(open(name, O_CREAT | O_WRONLY, 0644));
    }
    DIR *d = opendir("/data/deep/er");
    int count = 0, longest = 0;
    struct dirent *e;
    while ((e = readdir(d))) { count++; if ((int)strlen(e->d_name) > longest) longest = strlen(e->d_name); }
    closedir(d);
    printf("entries %d longest %d\n", count, longest);
    int dfd = open("/data/deep", O_RDONLY | O_DIRECTORY);
    SHOW(dfd >= 0);
    SHOW(mkdirat(dfd, "x", 0755));
    SHOW(openat(dfd, "../f.txt", O_RDONLY));
    SHOW(fstatat(dfd, "er", &st, 0));
    SHOW(S_ISDIR(st.st_mode));
    SHOW(unlinkat(dfd, "x", AT_REMOVEDIR));
    close(dfd);
    SHOW(rename("/data/g.txt", "/data/hard.txt"));
    SHOW(rename("/data/deep", "/data/f.txt"));
    SHOW(rmdir("/data/deep"));
    SHOW(access("/data/hard.txt", F_OK));
    SHOW(truncate("/data/hard.txt", 2));
    stat("/data/hard.txt", &st);
    SHOW(st.st_size);
    SHOW(symlink("loop2", "/data/loop1"));
    SHOW(symlink("loop1", "/data/loop2"));
    SHOW(open("/data/loop1", O_RDONLY));
    SHOW(open("/data/loop1", O_RDONLY | O_NOFOLLOW));
    SHOW(symlink("f.txt", "/data/sl"));
    SHOW(open("/data/sl/", O_RDONLY));
    SHOW(readlink("/data/f.txt", buf, 10));
    return 0;
}
