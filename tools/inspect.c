/* inspect.c — `lq inspect PATH` (not written yet). */
#include "cli.h"

int lq_cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "lq inspect: not implemented yet\n");
    return LQ_EXIT_FAILURE;
}
