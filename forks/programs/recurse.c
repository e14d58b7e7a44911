/* Deep recursion with values on the native (shadow) stack and in locals,
 * so checkpoints catch many frames.  argv[1]: problem size. */
#include <stdio.h>
#include <stdlib.h>

static long long ack(long long m, long long n) {
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static int queens(int n, int row, int *cols) {
    if (row == n) return 1;
    int count = 0;
    for (int c = 0; c < n; c++) {
        int ok = 1;
        for (int r = 0; r < row && ok; r++)
            if (cols[r] == c || abs(cols[r] - c) == row - r) ok = 0;
        if (ok) { cols[row] = c; count += queens(n, row + 1, cols); }
    }
    return count;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 7;
    int cols[16];
    for (int k = 4; k <= n; k++)
        printf("queens(%d) = %d\n", k, queens(k, 0, cols));
    printf("ack(2, %d) = %lld\n", n * 20, ack(2, n * 20));
    return 0;
}
