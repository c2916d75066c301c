/* cli.c — shared plumbing of the `lq` subcommands (no quantization logic here). */
#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

extern volatile int lq_interrupted;

int lq_cli_exit_code(lq_status s) {
    switch (s) {
    case LQ_OK: return LQ_EXIT_OK;
    case LQ_ERR_INVALID: return LQ_EXIT_USAGE;
    case LQ_ERR_FORMAT: return LQ_EXIT_BAD_INPUT;
    case LQ_ERR_UNSUPPORTED: return LQ_EXIT_UNSUPPORTED;
    case LQ_ERR_IO: return LQ_EXIT_IO;
    case LQ_ERR_NOMEM: return LQ_EXIT_NOMEM;
    case LQ_ERR_NUMERIC: return LQ_EXIT_NUMERIC;
    case LQ_ERR_INTERRUPTED: return LQ_EXIT_INTERRUPTED;
    }
    return LQ_EXIT_FAILURE;
}

lq_status lq_cli_fail(lq_error *err, lq_status code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    for (char *c = err->msg; *c; c++) /* one line, whatever the arguments hold */
        if (*c == '\n' || *c == '\r') *c = ' ';
    err->code = code;
    return code;
}

int lq_cli_report(const char *cmd, const lq_error *err) {
    fprintf(stderr, "lq %s: %s\n", cmd, err->msg[0] ? err->msg : lq_status_name(err->code));
    return lq_cli_exit_code(err->code);
}

int lq_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lq %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'lq %s --help')\n", cmd);
    return LQ_EXIT_USAGE;
}

int lq_cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        *value = NULL; /* caller reports the missing value */
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

/* First signal: ask the long loops to stop (they clean up and exit 130). A second one ends the
 * process at once with the default action (temporary files may then stay beside the output),
 * for a loop that does not poll. Only async-signal-safe calls here. */
static void on_signal(int sig) {
    if (lq_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    lq_interrupted = 1;
}

void lq_cli_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Past a file-size limit (ulimit -f) write() then fails with EFBIG, which the writers report
     * and clean up after, instead of the process dying with a temporary file left behind. */
    signal(SIGXFSZ, SIG_IGN);
}

int lq_cli_device(const char *cmd, const char *spec, bool quiet, lq_device *dev,
                  lq_device_ctx **ctx) {
    lq_error err;
    lq_error_clear(&err);
    if (ctx) *ctx = NULL;
    if (lq_device_select(spec, dev, &err) != LQ_OK) return lq_cli_report(cmd, &err);
    /* said when asked (--device given) or when a GPU was picked: a plain CPU run stays quiet */
    if (!quiet && (spec || dev->kind == LQ_DEVICE_CUDA)) fprintf(stderr, "lq %s: %s\n", cmd, dev->note);
    if (ctx && lq_device_open(dev, ctx, &err) != LQ_OK) return lq_cli_report(cmd, &err);
    return LQ_EXIT_OK;
}
