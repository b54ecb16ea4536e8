"""PyTorch fp32 CPU baseline for `npm run bench` (bench/run.ts): the bitmar-stream decoder of a GGUF,
built from its dequantised weights (W = t·s_w as fp32, activations fake-quantised to int8 per token as
the model defines them, docs/bitmar-stream.md §2), decoding greedily with the same sink + window KV
cache (keys cached before RoPE, positions = slot order, the window re-rotated every step) — what a
user running this model in PyTorch on the CPU would write. One thread (torch.set_num_threads(1)).

The conditioning (cross-attention memory X and the vector c) is random: per-token cost does not
depend on the values, and the encoders are not part of a decode step.

Protocol (so bench/run.ts can interleave A-B-B-A with its own runs in one warm process):
  /usr/bin/python3 bench/torch-decode.py --gguf MODEL.gguf
  -> prints {"ready": true, "torch": "...", "threads": 1, "vocab": V, ...}
  stdin "decode N\n" -> N greedy tokens from a fresh cache; prints {"tokens": N, "cpu_s": ..., "wall_s": ...}
  stdin "quit\n" or EOF -> exit
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "train"))
import gguf_writer as gw  # noqa: E402

ARCH = "bitmar-stream"


class Decoder:
    def __init__(self, path, seed=0):
        meta, ts = gw.read(path)
        g = lambda k: meta[f"{ARCH}.{k}"]  # noqa: E731
        self.d, self.h, self.f = g("embedding_length"), g("head_count"), g("feed_forward_length")
        self.hd = self.d // self.h
        self.nd = g("decoder.block_count")
        self.S, self.W = g("attention.sink_count"), g("attention.window_length")
        self.eps = float(np.float32(g("layer_norm_epsilon")))
        base = float(g("rope.freq_base"))
        self.vocab = len(meta["tokenizer.ggml.tokens"])
        self.bos = meta["tokenizer.ggml.bos_token_id"]
        n_x = (g("image_size") // g("patch_size")) ** 2 + 1 + g("text.context_length")

        def f32(name):
            return torch.from_numpy(np.asarray(ts[name][0], np.float32).copy())

        def ternary(name, n_in):
            t = gw.unpack_t2(ts[name + ".weight"][0].view(np.uint8), n_in).astype(np.float32)
            s = np.float32(ts[name + ".scale"][0].reshape(-1)[0])
            b = ts.get(name + ".bias")
            return torch.from_numpy(t * s), (torch.from_numpy(np.asarray(b[0], np.float32).copy()) if b is not None else None)

        d, f = self.d, self.f
        self.tok_emb = f32("d.tok_emb")
        self.lnf = (f32("d.ln_f.weight"), f32("d.ln_f.bias"))
        self.lm_head = ternary("d.lm_head", d)
        rng = torch.Generator().manual_seed(seed)
        X = torch.randn(n_x, d, generator=rng)
        c = torch.randn(1, d, generator=rng)
        self.layers = []
        for i in range(self.nd):
            p = f"d.blk.{i}"
            L = {k: ternary(f"{p}.{k}", d) for k in ("attn_q", "attn_k", "attn_v", "attn_o", "xattn_q", "xattn_k", "xattn_v", "xattn_o", "cond")}
            L["ffn_up"] = ternary(f"{p}.ffn_up", d)
            L["ffn_down"] = ternary(f"{p}.ffn_down", f)
            for n in ("ln1", "ln2", "ln3"):
                L[n] = (f32(f"{p}.{n}.weight"), f32(f"{p}.{n}.bias"))
            with torch.inference_mode():
                L["xk"] = self.heads(self.bl(X, L["xattn_k"]))
                L["xv"] = self.heads(self.bl(X, L["xattn_v"]))
                L["cond_vec"] = self.bl(c, L["cond"])
            self.layers.append(L)
        half = self.hd // 2
        inv = base ** (-2.0 * np.arange(half) / self.hd)
        ang = (np.arange(self.S + self.W, dtype=np.float64)[:, None] * inv[None, :]).astype(np.float32)
        self.cos = torch.from_numpy(np.cos(ang))  # (S+W, hd/2)
        self.sin = torch.from_numpy(np.sin(ang))

    @staticmethod
    def bl(x, wb):
        """BitLinear: int8 per-token fake quantisation, then the dequantised fp32 matmul."""
        w, b = wb
        s = x.abs().amax(-1, keepdim=True).clamp_min(1e-5) / 127.0
        return F.linear(torch.clamp(torch.round(x / s), -127, 127) * s, w, b)

    def heads(self, x):  # (n, d) -> (h, n, hd)
        return x.view(x.shape[0], self.h, self.hd).transpose(0, 1)

    def rope(self, x, cos, sin):  # x (h, n, hd), cos/sin (n, hd/2)
        half = self.hd // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    @staticmethod
    def attend(q, k, v):  # (h, 1, hd), (h, n, hd) -> (1, d)
        s = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        o = torch.matmul(torch.softmax(s, -1), v)
        return o.transpose(0, 1).reshape(1, -1)

    def new_cache(self):
        cap = self.S + self.W
        return {"fed": 0, "k": [torch.zeros(cap, self.d) for _ in self.layers], "v": [torch.zeros(cap, self.d) for _ in self.layers]}

    def step(self, cache, tok):
        cap = self.S + self.W
        n = min(cache["fed"] + 1, cap)
        evict = cache["fed"] >= cap
        h = self.tok_emb[tok].view(1, -1)
        for i, L in enumerate(self.layers):
            h = h + L["cond_vec"]
            x = F.layer_norm(h, (self.d,), *L["ln1"], eps=self.eps)
            q, k, v = self.bl(x, L["attn_q"]), self.bl(x, L["attn_k"]), self.bl(x, L["attn_v"])
            K, Vv = cache["k"][i], cache["v"][i]  # logical order
            if evict:  # drop the oldest window entry: the window shifts by one slot
                K[self.S:cap - 1] = K[self.S + 1:cap].clone()
                Vv[self.S:cap - 1] = Vv[self.S + 1:cap].clone()
            K[n - 1] = k[0]
            Vv[n - 1] = v[0]
            kr = self.rope(self.heads(K[:n]), self.cos[:n], self.sin[:n])
            qr = self.rope(self.heads(q), self.cos[n - 1:n], self.sin[n - 1:n])
            h = h + self.bl(self.attend(qr, kr, self.heads(Vv[:n])), L["attn_o"])
            x = F.layer_norm(h, (self.d,), *L["ln2"], eps=self.eps)
            h = h + self.bl(self.attend(self.heads(self.bl(x, L["xattn_q"])), L["xk"], L["xv"]), L["xattn_o"])
            x = F.layer_norm(h, (self.d,), *L["ln3"], eps=self.eps)
            h = h + self.bl(F.gelu(self.bl(x, L["ffn_up"]), approximate="tanh"), L["ffn_down"])
        cache["fed"] += 1
        logits = self.bl(F.layer_norm(h, (self.d,), *self.lnf, eps=self.eps), self.lm_head)
        return int(torch.argmax(logits[0]))

    def decode(self, n):
        cache = self.new_cache()
        tok = self.bos
        for _ in range(n):
            tok = self.step(cache, tok)
        return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dec = Decoder(a.gguf)
    with torch.inference_mode():
        dec.decode(8)  # warm-up
        print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "vocab": dec.vocab,
                          "dim": dec.d, "layers": dec.nd, "sinks": dec.S, "window": dec.W}), flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            if cmd[0] == "decode":
                n = int(cmd[1])
                c0, t0 = time.process_time(), time.perf_counter()
                dec.decode(n)
                print(json.dumps({"tokens": n, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
