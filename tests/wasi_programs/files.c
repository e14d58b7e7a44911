/* Writes, rereads, seeks, appends, truncates, renames and lists files in
 * the preopened directory /data; prints what it sees, so the output can be
 * compared with another WASI host byte for byte. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { printf("opendir %s: %s\n", dir, strerror(errno)); return; }
    char *names[64]; int n = 0; struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("%s:", dir);
    for (int i = 0; i < n; i++) { printf(" %s", names[i]); free(names[i]); }
    printf("\n");
}

int main(void) {
    FILE *f = fopen("/data/a.txt", "w");
    if (!f) { printf("fopen: %s\n", strerror(errno)); return 1; }
    for (int i = 0; i < 5; i++) fprintf(f, "line %d: %d\n", i, i * i);
    fclose(f);

    char buf[128];
    f = fopen("/data/a.txt", "r");
    while (fgets(buf, sizeof buf, f)) printf("read %s", buf);
    fseek(f, 7, SEEK_SET);
    printf("at 7: %c, tell %ld\n", fgetc(f), ftell(f));
    fseek(f, -4, SEEK_END);
    printf("tail: %s", fgets(buf, sizeof buf, f));
    fclose(f);

    f = fopen("/data/a.txt", "a");
    fputs("appended\n", f);
    fclose(f);
    struct stat st;
    stat("/data/a.txt", &st);
    printf("size after append %lld, regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));

    int fd = open("/data/b.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("pwrite %zd\n", pwrite(fd, "0123456789", 10, 0));
    printf("pwrite %zd\n", pwrite(fd, "XY", 2, 4));
    memset(buf, 0, sizeof buf);
    printf("pread %zd: %s\n", pread(fd, buf, 6, 2), buf);
    printf("lseek %lld\n", (long long)lseek(fd, 0, SEEK_END));
    ftruncate(fd, 3);
    fstat(fd, &st);
    printf("truncated %lld\n", (long long)st.st_size);
    close(fd);

    printf("mkdir %d\n", mkdir("/data/sub", 0755));
    printf("mkdir again %d %s\n", mkdir("/data/sub", 0755), strerror(errno));
    printf("rename %d\n", rename("/data/b.bin", "/data/sub/c.bin"));
    f = fopen("/data/sub/d.txt", "w"); fputs("d\n", f); fclose(f);
    list("/data");
    list("/data/sub");
    printf("rmdir nonempty %d %s\n", rmdir("/data/sub"), strerror(errno));
    printf("unlink %d\n", unlink("/data/sub/d.txt"));
    printf("unlink missing %d %s\n", unlink("/data/sub/d.txt"), strerror(errno));
    printf("unlink dir %d %s\n", unlink("/data/sub"), strerror(errno));
    printf("symlink %d\n", symlink("a.txt", "/data/ln"));
    ssize_t n = readlink("/data/ln", buf, sizeof buf);
    printf("readlink %zd %.*s\n", n, (int)n, buf);
    f = fopen("/data/ln", "r");
    printf("through link: %s", fgets(buf, sizeof buf, f));
    fclose(f);
    lstat("/data/ln", &st);
    printf("lstat link %d\n", S_ISLNK(st.st_mode));
    printf("open missing %d %s\n", open("/data/nope", O_RDONLY), strerror(errno));
    printf("excl %d %s\n", open("/data/a.txt", O_CREAT | O_EXCL | O_WRONLY, 0644), strerror(errno));
    printf("dir as file %d %s\n", open("/data/sub", O_WRONLY), strerror(errno));
    printf("file as dir %d %s\n", open("/data/a.txt/x", O_RDONLY), strerror(errno));
    list("/data");
    return 0;
}
