/* fuzz_file.h — hands a fuzz input to readers that take a path: the bytes go into an anonymous
 * in-memory file (memfd, one per process, rewritten for every input) opened through
 * /proc/self/fd/N, so no disk is touched and nothing is left behind. */
#ifndef LQ_FUZZ_FILE_H
#define LQ_FUZZ_FILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Path of a file holding exactly data[0..size); aborts when the memfd cannot be written
 * (a harness problem, not a finding). */
static const char *fuzz_file(const char *tag, const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create(tag, 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
        if (k <= 0) abort();
        done += (size_t)k;
    }
    return path;
}

/* Every error is one line naming the file. */
static void fuzz_check_error(const char *msg, const char *path) {
    if (!strstr(msg, path) || strchr(msg, '\n')) {
        fprintf(stderr, "bad error message: '%s'\n", msg);
        abort();
    }
}

#endif
