#!/usr/bin/env python3
"""quality_report.py OUT_DIR — turns the runs of quality_report.sh (OUT_DIR/runs/*.json) into
report.md (Markdown table), report.json and a gnuplot script for KLD vs bits per weight."""
import argparse
import json
import os


def load(path):
    with open(path) as f:
        return json.load(f)


def row(out, type_, mode):
    q = os.path.join(out, "runs", f"{type_}.{mode}.quant.json")
    p = os.path.join(out, "runs", f"{type_}.{mode}.ppl.json")
    if not (os.path.exists(q) and os.path.exists(p)):
        return None
    qj, pj = load(q), load(p)
    kl = pj.get("kl_divergence", {})
    return {
        "type": type_, "mode": mode,
        "file_mib": qj["file_bytes"] / 1048576.0, "bpw": qj["bpw"],
        "ppl": pj["ppl"], "ppl_stderr": pj["ppl_stderr"],
        "ppl_ratio": kl["mean_ppl_ratio"]["mean"],
        "kld": kl["kld"]["mean"], "kld_uncertainty": kl["kld"]["uncertainty"],
        "same_top": kl["same_top_p"]["mean"],
        "quantize_seconds": qj["seconds"], "tensors_per_type": qj["tensors_per_type"],
        "n_imatrix_used": qj["n_imatrix_used"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--model", default="")
    ap.add_argument("--ctx", type=int, default=0)
    ap.add_argument("--chunks", type=int, default=0)
    ap.add_argument("--calib-chunks", type=int, default=0)
    ap.add_argument("--types", default="")
    a = ap.parse_args()
    out = a.out
    base_q = load(os.path.join(out, "runs", "F16.quant.json"))
    base_p = load(os.path.join(out, "runs", "F16.ppl.json"))
    rows = []
    for t in a.types.split():
        for mode in ("rtn", "imatrix"):
            r = row(out, t, mode)
            if r:
                rows.append(r)
    report = {
        "model": a.model, "eval_text": "tinystories-valid.txt", "ctx": a.ctx, "chunks": a.chunks,
        "n_scored": base_p.get("n_scored"), "calibration": "tinystories-train-sample.txt",
        "calib_chunks": a.calib_chunks, "libquant": base_p.get("libquant"),
        "f16": {"file_mib": base_q["file_bytes"] / 1048576.0, "bpw": base_q["bpw"],
                "ppl": base_p["ppl"], "ppl_stderr": base_p["ppl_stderr"]},
        "rows": rows,
    }
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)

    lines = [
        f"Model `{os.path.basename(a.model.rstrip('/'))}`; PPL and KLD vs F16 on tinystories-valid.txt "
        f"(ctx {a.ctx}, {a.chunks} chunks, {base_p.get('n_scored')} scored tokens); imatrix from "
        f"`lq calibrate` on tinystories-train-sample.txt ({a.calib_chunks} chunks of {a.ctx}). "
        "bpw = tensor bits / weights (all tensors, F32 norms included).", "",
        "| type | imatrix | size MiB | bpw | PPL | ΔPPL % | KLD | same top % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        f"| F16 | – | {base_q['file_bytes'] / 1048576.0:.3f} | {base_q['bpw']:.3f} | "
        f"{base_p['ppl']:.4f} ± {base_p['ppl_stderr']:.4f} | 0 | 0 | 100 |",
    ]
    for r in rows:
        dppl = 100.0 * (r["ppl"] / base_p["ppl"] - 1)
        lines.append(f"| {r['type']} | {'yes' if r['mode'] == 'imatrix' else 'no'} | {r['file_mib']:.3f} | "
                     f"{r['bpw']:.3f} | {r['ppl']:.4f} | {dppl:+.2f} | {r['kld']:.5f} | {100 * r['same_top']:.2f} |")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    for mode in ("rtn", "imatrix"):
        with open(os.path.join(out, f"kld_{mode}.dat"), "w") as f:
            for r in sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["bpw"]):
                f.write(f"{r['bpw']:.4f} {r['kld']:.6g} {r['type']}\n")
    gp = f"""set terminal pngcairo size 1000,650 font ',10' noenhanced
set output '{out}/kld_vs_bpw.png'
set title 'KL divergence vs F16 by bits per weight ({os.path.basename(a.model.rstrip('/'))})'
set xlabel 'bits per weight (all tensors)'
set ylabel 'mean KLD (nats/token)'
set logscale y
set grid
set key top right
plot '{out}/kld_rtn.dat' using 1:2 with points pt 7 ps 1.2 title 'RTN', \\
     '' using 1:2:3 with labels offset 0,1 font ',8' notitle, \\
     '{out}/kld_imatrix.dat' using 1:2 with points pt 5 ps 1.2 title 'imatrix'
"""
    with open(os.path.join(out, "kld_vs_bpw.gp"), "w") as f:
        f.write(gp)


if __name__ == "__main__":
    main()
