#!/usr/bin/env bash
# test_numerics.sh — bad numerics through whole models (checkpoints written by gen_ckpt):
#  - one NaN / +Inf / -Inf weight at a chosen flat index of a chosen tensor: `lq quantize` exits 7
#    with one line naming the tensor, the element index, its row and column, and leaves no file;
#    `lq calibrate` exits 7 naming the first linear whose input turned NaN (and the channel);
#    `lq ppl` on such a model should exit 7 (NaN/Inf in data) rather than print a NaN perplexity
#    (known gap, reported as such until the runtime checks it);
#  - rows that are all zero, tiny (1e-30), huge (6e4) and ordinary, in BF16 and F16: every preset
#    quantizes them, and every value of every output tensor decodes finite (check_finite).
source "$(dirname "$0")/lib.sh"
CHECK_FINITE="${LQ_CHECK_FINITE:?LQ_CHECK_FINITE must point at check_finite}"

# ---- NaN/Inf named by tensor and index ------------------------------------------------------
# small shape: hidden 64, ffn 128 → blk.1.ffn_down.weight is 64 rows of 128; index 777 = row 6,
# column 9 (HF [64, 128] row-major = GGUF ne [128, 64]).
declare -A cases=([nan]="model.layers.1.mlp.down_proj.weight:777" [inf]="model.layers.0.self_attn.k_proj.weight:100"
                  [-inf]="model.embed_tokens.weight:5000")
declare -A gguf_name=([nan]="blk.1.ffn_down.weight" [inf]="blk.0.attn_k.weight" [-inf]="token_embd.weight")
declare -A rowcol=([nan]="row 6, column 9" [inf]="row 1, column 36" [-inf]="row 78, column 8")
for v in nan inf -inf; do
    spec=${cases[$v]}
    dir="$TMP/poison$v"
    "$GEN" "$dir" --poison "$spec:$v" >/dev/null || fail "gen_ckpt --poison $spec:$v failed"
    for preset in Q4_0 Q4_K_M F16; do
        name="poison$v-$preset"
        run "$name" 7 quantize "$dir" -o "$TMP/$name.gguf" --type "$preset" -q
        one_line_error "$name" quantize "${gguf_name[$v]}" "element ${spec##*:}" "${rowcol[$v]}"
        no_output "$TMP/$name.gguf"
    done
done
# lq ppl with a real tokenizer: tinystories-656k's (vocab 2048) on a checkpoint of that vocab.
if [ -f "$SHARED/models/tinystories-656k/tokenizer.json" ]; then
    dir="$TMP/poison-ppl"
    "$GEN" "$dir" --vocab 2048 --poison "model.layers.0.mlp.up_proj.weight:4242:nan" >/dev/null
    cp "$SHARED/models/tinystories-656k/tokenizer.json" "$SHARED/models/tinystories-656k/tokenizer_config.json" "$dir/"
    head -c 20000 "$SHARED/text/tinystories-valid.txt" >"$TMP/ppl.txt"
    # the same model without the poison runs (so the failure below is the NaN's)
    "$GEN" "$TMP/clean-ppl" --vocab 2048 >/dev/null
    cp "$dir/tokenizer.json" "$dir/tokenizer_config.json" "$TMP/clean-ppl/"
    run ppl-clean 0 ppl "$TMP/clean-ppl" -f "$TMP/ppl.txt" -c 64 --chunks 1 -t 1
    # calibrate: the NaN of ffn_up row 66 reaches ffn_down's input channel 66 (exit 7, named)
    run calib-nan 7 calibrate "$dir" -f "$TMP/ppl.txt" -c 64 --chunks 2 -t 2 -o "$TMP/nan.imatrix"
    one_line_error calib-nan calibrate "blk.0.ffn_down.weight" "channel 66" nan
    no_output "$TMP/nan.imatrix"
    # ppl: non-finite logits are traced back to the weight (exit 7, tensor and element named)
    run ppl-nan 7 ppl "$dir" -f "$TMP/ppl.txt" -c 64 --chunks 1 -t 1
    one_line_error ppl-nan ppl "blk.0.ffn_up.weight" "row 66"
fi

# ---- zero, tiny and huge rows: finite scales in every preset --------------------------------
for dtype in bf16 f16; do
    "$GEN" "$TMP/extreme-$dtype" --fill extreme --dtype $dtype --hidden 256 --ffn 512 --heads 4 --kv-heads 2 \
        >/dev/null || fail "gen_ckpt --fill extreme failed"
done
for preset in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q4_K_M Q5_K_M Q6_K IQ4_NL IQ4_XS; do
    for dtype in bf16 f16; do
        name="extreme-$dtype-$preset"
        run "$name" 0 quantize "$TMP/extreme-$dtype" -o "$TMP/$name.gguf" --type "$preset" --pure -q -t 2
        check
        "$CHECK_FINITE" "$TMP/$name.gguf" >"$TMP/$name.fin" 2>&1 || fail "$name: $(cat "$TMP/$name.fin")"
        rm -f "$TMP/$name.gguf"
    done
done

finish
