/* Arguments, environment, stdin to stdout/stderr, exit status. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++) printf("env %s\n", *e);
    printf("getenv GREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "(null)");
    int c; long n = 0;
    while ((c = getchar()) != EOF) { putchar(toupper(c)); n++; }
    fprintf(stderr, "%ld bytes from stdin\n", n);
    return argc > 1 ? atoi(argv[1]) : 0;
}
