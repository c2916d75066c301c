/* cli.h — what every `lq` subcommand shares: exit codes, error printing, option parsing. */
#ifndef LQ_CLI_H
#define LQ_CLI_H

#include "libquant.h"

#include <stdio.h>

/* Exit codes (documented in `lq --help`). */
enum {
    LQ_EXIT_OK = 0,
    LQ_EXIT_FAILURE = 1,     /* any other failure */
    LQ_EXIT_USAGE = 2,       /* bad command line */
    LQ_EXIT_BAD_INPUT = 3,   /* malformed input file */
    LQ_EXIT_UNSUPPORTED = 4, /* valid input we do not support */
    LQ_EXIT_IO = 5,          /* cannot read/write a file */
    LQ_EXIT_NOMEM = 6,
    LQ_EXIT_NUMERIC = 7,     /* NaN/Inf in data */
    LQ_EXIT_INTERRUPTED = 130,
};

#define LQ_EXIT_CODES_HELP                                                                   \
    "Exit codes: 0 success, 1 failure, 2 usage error, 3 malformed input, 4 unsupported input,\n" \
    "            5 I/O error, 6 out of memory, 7 NaN/Inf in data, 130 interrupted.\n"

int lq_cli_exit_code(lq_status s);
/* Fills err (one line) and returns code: the library's lq_fail for the tools' own checks. */
lq_status lq_cli_fail(lq_error *err, lq_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints "lq <cmd>: <message>" on stderr and returns the exit code for err. */
int lq_cli_report(const char *cmd, const lq_error *err);
/* Prints "lq <cmd>: <message>" on stderr, a hint to --help, returns LQ_EXIT_USAGE. */
int lq_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when argv[i] matches name; *value gets the next argument or the part after '='. */
int lq_cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* Installs SIGINT/SIGTERM handlers that set lq_interrupted; ignores SIGXFSZ (a file-size limit
 * then gives an I/O error). */
void lq_cli_install_signal_handlers(void);

/* --device for the tools that compute: resolves spec ("auto", "cpu", "cuda", "cuda:N"; NULL =
 * auto) with lq_device_select, prints the choice and its reason (dev->note, e.g. "device: cpu
 * (auto: no CUDA driver (...))") on stderr when --device was given or a GPU was picked (never
 * when quiet; a default CPU run prints nothing), and, when ctx is not NULL, opens the
 * device for the library calls (*ctx = NULL on the CPU; close with lq_device_close). Returns
 * LQ_EXIT_OK, LQ_EXIT_USAGE for a malformed spec, LQ_EXIT_UNSUPPORTED (4) for a device that is
 * not there (one line: "lq <cmd>: --device cuda: <why>"). */
#define LQ_CLI_DEVICE_HELP                                                                   \
    "  --device D        auto (default): CUDA device 0 when present, else the CPU; the choice\n" \
    "                    goes to stderr when a GPU is picked or --device is given. cpu, cuda,\n" \
    "                    cuda:N: exactly that (exit 4 when absent)\n"
int lq_cli_device(const char *cmd, const char *spec, bool quiet, lq_device *dev,
                  lq_device_ctx **ctx);

typedef int (*lq_cmd_fn)(int argc, char **argv);
int lq_cmd_inspect(int argc, char **argv);
int lq_cmd_tokenize(int argc, char **argv);
int lq_cmd_ppl(int argc, char **argv);
int lq_cmd_bench(int argc, char **argv);
int lq_cmd_synth(int argc, char **argv);
int lq_cmd_codec(int argc, char **argv);
int lq_cmd_calibrate(int argc, char **argv);
int lq_cmd_quantize(int argc, char **argv);

#endif
