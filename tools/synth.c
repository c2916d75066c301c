/* synth.c — `lq synth`: random Llama-shaped checkpoints for reproducible benchmarks. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

static const char *synth_usage =
    "usage: lq synth --out DIR|FILE.gguf [--shape tiny|1.1b] [options]\n\n"
    "Writes a Llama checkpoint with random weights: an HF directory (config.json +\n"
    "model.safetensors) or, for a path ending in .gguf, a GGUF file. The same seed and shape give\n"
    "the same model in both layouts.\n\n"
    "Options:\n"
    "  --shape NAME      tiny (vocab 512, 256 wide, 2 layers) or 1.1b (n_embd 2048, 16 layers,\n"
    "                    ffn 8192, 32/8 heads, vocab 32000); default tiny\n"
    "  --vocab N --embd N --layers N --heads N --kv-heads N --ffn N --ctx N\n"
    "                    override single dimensions of the shape (custom shapes)\n"
    "  --tied            tie the output head to the embedding\n"
    "  --type T          f32 (default), f16, bf16; for GGUF also any codec type (q4_0, q8_0, q4_K,\n"
    "                    ...) and the presets q4_k_m, q5_k_m; quantized files get llama-quantize's\n"
    "                    default mix (output.weight Q6_K) unless --pure\n"
    "  --pure            every matrix in --type\n"
    "  --seed S          random seed (default 1)\n"
    "  -t N              threads for quantizing (default: all cores)\n\n" LQ_EXIT_CODES_HELP;

static int parse_i64(const char *opt, const char *v, int64_t *out) {
    char *end = NULL;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || x < 1 || x > (1LL << 31)) return lq_cli_usage_error("synth", "%s needs a positive integer", opt);
    *out = x;
    return 0;
}

static int parse_type(const char *v, lq_synth_opts *o, bool *mix) {
    if (!v) return lq_cli_usage_error("synth", "--type needs a type name");
    if (!strcasecmp(v, "q4_k_m") || !strcasecmp(v, "q5_k_m")) {
        o->type = tolower((unsigned char)v[1]) == '4' ? LQ_TYPE_Q4_K : LQ_TYPE_Q5_K;
        *mix = true;
        return 0;
    }
    int t = lq_type_from_name(v);
    const lq_type_traits *tr = lq_type_get(t);
    if (!tr || !tr->has_codec || tr->activation_only)
        return lq_cli_usage_error("synth", "unknown or unsupported type '%s'", v);
    o->type = (lq_type)t;
    *mix = tr->is_quantized;
    return 0;
}

int lq_cmd_synth(int argc, char **argv) {
    lq_synth_opts o;
    lq_error err;
    lq_error_clear(&err);
    const char *out = NULL, *shape = "tiny";
    /* the shape comes first so that dimension overrides apply on top of it */
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (lq_cli_opt(argc, argv, &i, "--shape", &v)) {
            if (!(shape = v)) return lq_cli_usage_error("synth", "--shape needs a name");
        }
    }
    if (!strcmp(shape, "custom")) shape = "tiny";
    if (lq_synth_shape(shape, &o, &err)) return lq_cli_usage_error("synth", "%s", err.msg);
    bool mix = false, pure = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int rc = 0;
        uint64_t seed;
        char *end;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(synth_usage, stdout);
            return LQ_EXIT_OK;
        } else if (lq_cli_opt(argc, argv, &i, "--shape", &v)) {
            continue;
        } else if (lq_cli_opt(argc, argv, &i, "--out", &v)) {
            if (!(out = v)) return lq_cli_usage_error("synth", "--out needs a path");
        } else if (lq_cli_opt(argc, argv, &i, "--vocab", &v)) {
            rc = parse_i64("--vocab", v, &o.n_vocab);
        } else if (lq_cli_opt(argc, argv, &i, "--embd", &v)) {
            rc = parse_i64("--embd", v, &o.n_embd);
        } else if (lq_cli_opt(argc, argv, &i, "--layers", &v)) {
            rc = parse_i64("--layers", v, &o.n_layer);
        } else if (lq_cli_opt(argc, argv, &i, "--heads", &v)) {
            rc = parse_i64("--heads", v, &o.n_head);
        } else if (lq_cli_opt(argc, argv, &i, "--kv-heads", &v)) {
            rc = parse_i64("--kv-heads", v, &o.n_head_kv);
        } else if (lq_cli_opt(argc, argv, &i, "--ffn", &v)) {
            rc = parse_i64("--ffn", v, &o.n_ff);
        } else if (lq_cli_opt(argc, argv, &i, "--ctx", &v)) {
            rc = parse_i64("--ctx", v, &o.n_ctx_train);
        } else if (!strcmp(argv[i], "--tied")) {
            o.tie_embeddings = true;
        } else if (!strcmp(argv[i], "--pure")) {
            pure = true;
        } else if (lq_cli_opt(argc, argv, &i, "--type", &v)) {
            rc = parse_type(v, &o, &mix);
        } else if (lq_cli_opt(argc, argv, &i, "--seed", &v)) {
            if (!v || (seed = strtoull(v, &end, 10), *end)) return lq_cli_usage_error("synth", "--seed needs an integer");
            o.seed = seed;
        } else if (lq_cli_opt(argc, argv, &i, "-t", &v)) {
            int64_t t = 0;
            rc = parse_i64("-t", v, &t);
            o.n_threads = (int)t;
        } else {
            return lq_cli_usage_error("synth", "unknown argument '%s'", argv[i]);
        }
        if (rc) return rc;
    }
    if (!out) return lq_cli_usage_error("synth", "no output given (--out DIR|FILE.gguf)");
    o.llama_mix = mix && !pure;
    lq_cli_install_signal_handlers();
    if (lq_synth_write(out, &o, &err)) return lq_cli_report("synth", &err);
    return LQ_EXIT_OK;
}
