/* lq.c — the single command-line front end: dispatches to one file per subcommand. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct lq_command {
    const char *name;
    lq_cmd_fn fn;
    const char *summary;
} lq_command;

static const lq_command commands[] = {
    {"inspect", lq_cmd_inspect, "show a checkpoint's architecture, tensors and metadata"},
    {"tokenize", lq_cmd_tokenize, "token ids of a text (GGUF or tokenizer.json tokenizer)"},
    {"ppl", lq_cmd_ppl, "perplexity and KL divergence over a text (llama-perplexity's method)"},
    {"bench", lq_cmd_bench, "prompt/generation speed of a model ('bench codecs': kernels)"},
    {"synth", lq_cmd_synth, "write a random Llama-shaped checkpoint (HF or GGUF)"},
    {"quantize", lq_cmd_quantize, "quantize a model to a llama.cpp GGUF (llama-quantize's presets and rules)"},
    {"calibrate", lq_cmd_calibrate, "importance matrix and activation statistics over a text (llama-imatrix's method)"},
    {"codec", lq_cmd_codec, "quantize/dequantize raw float32 rows with one block codec"},
};

static void print_help(FILE *f) {
    fprintf(f, "usage: lq <command> [options]\n\n"
               "libquant %s: calibrated LLM quantization to llama.cpp's GGUF formats.\n\n"
               "Commands:\n",
            lq_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOptions:\n  --help      this text ('lq <command> --help' for a command)\n"
               "  --version   version and compiled-in features\n\n" LQ_EXIT_CODES_HELP);
}

/* OpenBLAS picks its kernels when it is loaded, before main, and Debian 12's 0.3.21 falls back to
 * generic SSE3 ones ("Prescott") on x86 CPUs newer than it knows: GEMMs ~3x slower for the
 * passes and the runtime's float products. It reads OPENBLAS_CORETYPE only at load time, so lq
 * runs itself again, once, with the matching kernel set. A set OPENBLAS_CORETYPE (also ours,
 * after the exec) is left alone; a failed exec goes on with the generic kernels. */
static void use_native_blas_kernels(char **argv) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE") || strcmp(lq_passes_blas_core(), "Prescott") != 0) return;
    const char *core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                         : NULL;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (!core || n <= 0 || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    self[n] = '\0';
    fflush(NULL);
    execv(self, argv);
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    use_native_blas_kernels(argv);
    if (argc < 2) {
        print_help(stderr);
        return LQ_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_help(stdout);
        return LQ_EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("lq %s\n%s\n", lq_version(), lq_build_features());
        int n_dev = lq_cuda_device_count();
        for (int i = 0; i < n_dev; i++) printf("cuda device %d: %s\n", i, lq_cuda_device_name(i));
        return LQ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lq: unknown command '%s' (see 'lq --help')\n", cmd);
    return LQ_EXIT_USAGE;
}
