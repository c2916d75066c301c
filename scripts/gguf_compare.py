#!/usr/bin/env python3
"""gguf_compare.py A.gguf B.gguf — compares two GGUF files tensor by tensor (names, types,
shapes, data bytes) and lists metadata keys that differ. Exit 0 when all tensor bytes agree.
Standalone reader of GGUF v2/v3 (no dependencies)."""
import struct
import sys

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type id -> (block elements, block bytes)
TYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
         20: (32, 18), 23: (256, 136), 30: (1, 2)}
NAMES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 10: "q2_K",
         11: "q3_K", 12: "q4_K", 13: "q5_K", 14: "q6_K", 20: "iq4_nl", 23: "iq4_xs", 30: "bf16"}


class Reader:
    def __init__(self, path):
        self.buf = open(path, "rb").read()
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.buf[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8", "replace")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<i"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(SCALAR[t])


def load(path):
    r = Reader(path)
    assert r.buf[:4] == b"GGUF", path + ": not a GGUF file"
    r.pos = 4
    r.take("<I")
    n_t, n_kv = r.take("<q"), r.take("<q")
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        kv[k] = r.value(r.take("<i"))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<q") for _ in range(nd)]
        t, off = r.take("<i"), r.take("<Q")
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    data = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        be, bb = TYPES[t]
        rows = 1
        for d in ne[1:]:
            rows *= d
        nbytes = ne[0] // be * bb * rows
        tensors[name] = (ne, t, r.buf[data + off:data + off + nbytes])
    return kv, [i[0] for i in infos], tensors


def main():
    a_kv, a_order, a = load(sys.argv[1])
    b_kv, b_order, b = load(sys.argv[2])
    same = diff = 0
    for name in a_order:
        if name not in b:
            print(f"only in A: {name}")
            diff += 1
            continue
        (ne1, t1, d1), (ne2, t2, d2) = a[name], b[name]
        if ne1 != ne2 or t1 != t2 or d1 != d2:
            nd = sum(x != y for x, y in zip(d1, d2)) + abs(len(d1) - len(d2))
            print(f"DIFF {name}: {NAMES.get(t1, t1)} {ne1} vs {NAMES.get(t2, t2)} {ne2}, {nd} of {len(d1)} bytes differ")
            diff += 1
        else:
            same += 1
    for name in b_order:
        if name not in a:
            print(f"only in B: {name}")
            diff += 1
    print(f"tensors: {same} identical, {diff} different; order {'same' if a_order == b_order else 'differs'}")
    for k in sorted(set(a_kv) | set(b_kv)):
        va, vb = a_kv.get(k, "<absent>"), b_kv.get(k, "<absent>")
        if va != vb:
            short = lambda v: (str(v)[:60] + "...") if len(str(v)) > 60 else str(v)
            print(f"key {k}: {short(va)} | {short(vb)}")
    return 0 if diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
