#!/usr/bin/env python3
"""Cross-check of `lq codec` against gguf-py (llama.cpp's Python package, `pip install gguf`;
scripts/test.sh installs 0.17.1): its numpy reference quantizers for Q4_0, Q4_1, Q5_0, Q5_1,
Q8_0 must give the same bytes, and its dequantizers the same float32 bits for the seven
legacy/IQ4 types and the five K-quants (gguf-py has no K-quant or IQ4 quantizer), with and
without an importance vector. Skips (exit 77) when numpy or gguf is not installed."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from gguf import quants, GGMLQuantizationType as T
except ImportError as e:
    print(f"SKIP: {e} (pip install gguf to run this cross-check)", file=sys.stderr)
    sys.exit(77)

LQ = os.environ.get("LQ_BIN")
if not LQ or not os.access(LQ, os.X_OK):
    print("SKIP: LQ_BIN is not set", file=sys.stderr)
    sys.exit(77)

ROWS, COLS = 64, 2048
ENCODE = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0}
DECODE = dict(ENCODE, iq4_nl=T.IQ4_NL, iq4_xs=T.IQ4_XS, q2_K=T.Q2_K, q3_K=T.Q3_K, q4_K=T.Q4_K, q5_K=T.Q5_K,
              q6_K=T.Q6_K)


def make_rows(rng):
    """Gaussian rows over six decades with rare x25 outliers, plus special rows."""
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    x *= (10.0 ** rng.uniform(-4, 2, size=(ROWS, 1))).astype(np.float32)
    x[rng.random((ROWS, COLS)) < 0.003] *= 25
    x[0] = 0
    x[1] = 0.37
    x[2] = -2.5
    x[3] = np.abs(x[3])
    x[4] = -np.abs(x[4])
    x[5] = x[5].astype(np.float16).astype(np.float32)
    x[6, ::7] = 0
    return x


def lq(*args):
    subprocess.run([LQ, "codec", *args], check=True)


def main():
    rng = np.random.default_rng(1)
    failures = 0
    with tempfile.TemporaryDirectory(dir=os.environ.get("LQ_TEST_TMPDIR")) as tmp:
        path = lambda name: os.path.join(tmp, name)
        x = make_rows(rng)
        x.tofile(path("in.f32"))
        imp = np.exp(rng.uniform(-2, 2, COLS)).astype(np.float32)
        imp[::50] = 0
        imp.tofile(path("imp.f32"))
        for name, qtype in DECODE.items():
            for variant in ("ref", "imatrix"):
                extra = ["--imatrix", path("imp.f32")] if variant == "imatrix" else []
                lq("quantize", "--type", name, "--cols", str(COLS), *extra, path("in.f32"), path("q.bin"))
                q = np.fromfile(path("q.bin"), dtype=np.uint8).reshape(ROWS, -1)
                if variant == "ref" and name in ENCODE:
                    rows = np.nonzero((quants.quantize(x, qtype) != q).any(axis=1))[0]
                    print(f"{name} encode: {len(rows)} of {ROWS} rows differ from gguf-py {rows[:5]}")
                    failures += len(rows) > 0
                lq("dequantize", "--type", name, "--cols", str(COLS), path("q.bin"), path("d.f32"))
                ours = np.fromfile(path("d.f32"), dtype=np.float32).reshape(ROWS, COLS)
                theirs = quants.dequantize(q, qtype).astype(np.float32)
                n = np.count_nonzero(ours.view(np.uint32) != theirs.view(np.uint32))
                print(f"{name} {variant} decode: {n} of {ROWS * COLS} values differ from gguf-py")
                failures += n > 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
