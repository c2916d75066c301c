/* file_map.c — a regular file mapped whole, read-only (KLD base files, file checksums). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

lq_status lq_map_file(const char *path, void **map, size_t *size, lq_error *err) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_fail(err, LQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (n > 0) {
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lq_fail(err, LQ_ERR_IO, "%s: cannot map %zu bytes: %s", path, n, strerror(e));
        }
        *map = m;
    }
    close(fd);
    *size = n;
    return LQ_OK;
}
