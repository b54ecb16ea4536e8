"""Plain fp32 numpy reference forward of bitmar-stream (docs/bitmar-stream.md) that reads a GGUF.

Independent of the training code path (model.py): it sees only the GGUF (ternary codes + scales).
Numerics follow docs §2 literally (int8 per-row activations, exact integer accumulation, the
s_x·s_w product rounded to fp32, one fp32 multiply and one fp32 add).

Usage:
  # golden fixtures for the TS engine's parity tests (random tiny model)
  /usr/bin/python3 tools/reference/stream_reference.py fixtures --out test/fixtures/stream
  # run a GGUF on BMDS samples and score it (checks an export end to end)
  /usr/bin/python3 tools/reference/stream_reference.py eval --gguf models/bitmar-stream-shapes.gguf \
      --data tools/train/data/ts_train-heldout.bin --n 100
  # caption one image (PNG/JPEG via PIL if available, any size; area resize like src/model/preprocess.ts)
  /usr/bin/python3 tools/reference/stream_reference.py caption --gguf models/... --image x.png --prompt "describe the scene"
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
import gguf_writer as gw  # noqa: E402

f32 = np.float32
ARCH = "bitmar-stream"


# ---- preprocessing (src/model/preprocess.ts) ----------------------------------------------------

def _axis_weights(src, dst):
    W = np.zeros((dst, src), np.float64)
    for o in range(dst):
        lo, hi = o * src, (o + 1) * src
        for i in range(lo // dst, -(-hi // dst)):
            W[o, i] = (min((i + 1) * dst, hi) - max(i * dst, lo)) / src
    return W


def resize_area_u8(rgb, size):
    """rgb uint8 [H,W,3] -> uint8 [size,size,3] (exact box filter, float64, round halves up)."""
    H, W, _ = rgb.shape
    wx, wy = _axis_weights(W, size), _axis_weights(H, size)
    src = rgb.astype(np.float64)
    tmp = np.zeros((H, size, 3))
    for o in range(size):
        for i in np.nonzero(wx[o])[0]:
            tmp[:, o] += wx[o, i] * src[:, i]
    out = np.zeros((size, size, 3))
    for o in range(size):
        for j in np.nonzero(wy[o])[0]:
            out[o] += wy[o, j] * tmp[j]
    return np.floor(out + 0.5).astype(np.uint8)


def patchify(img_u8, P):
    """uint8 [S,S,3] -> fp32 [N, 3P^2]: v/127.5-1 (computed in float64, stored fp32), (dy,dx,c) order."""
    S = img_u8.shape[0]
    g = S // P
    x = (img_u8.astype(np.float64) / 127.5 - 1.0).astype(f32)
    return np.ascontiguousarray(x.reshape(g, P, g, P, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, P * P * 3))


def normalize_u8(img_u8):
    """uint8 [S,S,3] -> fp32 HWC image v/127.5-1 (computed in float64, stored fp32): preprocess steps 1-3."""
    return (img_u8.astype(np.float64) / 127.5 - 1.0).astype(f32)


def patchify_map(x, P):
    """fp32 HWC map [S,S,C] -> [(S/P)^2, P*P*C]: row-major patches, each in (dy,dx,c) order (step 4)."""
    S, _, C = x.shape
    g = S // P
    return np.ascontiguousarray(np.asarray(x, f32).reshape(g, P, g, P, C).transpose(0, 2, 1, 3, 4).reshape(g * g, P * P * C))


def normalize_prompt(s):
    s = re.sub(r"[?.!,]", "", s.strip().lower()).strip()
    return s if s else "describe the scene"


# ---- model ----------------------------------------------------------------------------------------

class Model:
    def __init__(self, path):
        self.meta, ts = gw.read(path)
        m = self.meta
        assert m["general.architecture"] == ARCH
        g = lambda k: m[f"{ARCH}.{k}"]  # noqa: E731
        self.S, self.P, self.d, self.h, self.ff = g("image_size"), g("patch_size"), g("embedding_length"), g("head_count"), g("feed_forward_length")
        self.nv, self.nt, self.nf, self.nd = g("vision.block_count"), g("text.block_count"), g("fusion.block_count"), g("decoder.block_count")
        self.tctx, self.maxcap = g("text.context_length"), g("decoder.max_caption_tokens")
        self.sinks, self.window = g("attention.sink_count"), g("attention.window_length")
        self.base, self.eps = float(g("rope.freq_base")), f32(g("layer_norm_epsilon"))
        sc = m.get(f"{ARCH}.vision.stem_channels")
        self.stem = None if sc is None else [int(x) for x in sc]
        self.vocab = m["tokenizer.ggml.tokens"]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.bos, self.eos, self.unk = m["tokenizer.ggml.bos_token_id"], m["tokenizer.ggml.eos_token_id"], m["tokenizer.ggml.unknown_token_id"]
        self.F = {}
        self.T = {}
        for name, (a, gt, ne) in ts.items():
            if gt == gw.GGML_I8:
                base = name[:-len(".weight")]
                n_in = self.ff if base.endswith("ffn_down") else self.d
                assert ne[0] == (n_in + 3) // 4, (name, ne)
                self.T[base] = gw.unpack_t2(a.view(np.uint8), n_in).astype(np.int64)
            else:
                self.F[name] = np.asarray(a, f32)
        self.rec = None  # optional recorder: dict name -> list
        if self.stem is not None:
            assert len(self.stem) == 2 and self.P % 2 == 0, (self.stem, self.P)
            C1, C2 = self.stem
            assert self.F["v.stem1.weight"].shape == (C1, 27) and self.F["v.stem1.bias"].shape == (C1,)
            assert self.F["v.stem2.weight"].shape == (C2, 9 * C1) and self.F["v.stem2.bias"].shape == (C2,)
            self.patch_dim = C2 * (self.P // 2) ** 2
        else:
            assert "v.stem1.weight" not in self.F
            self.patch_dim = 3 * self.P * self.P
        assert self.F["v.patch_embed.weight"].shape == (self.d, self.patch_dim)

    # -- primitives
    def record(self, key, x):
        if self.rec is not None:
            self.rec.setdefault(key, []).append(tuple(None if a is None else np.array(a, f32) for a in x))

    def bl(self, name, x):
        """BitLinear, docs §2 stream scheme. x fp32 [rows, in]."""
        x = np.asarray(x, f32)
        t = self.T[name]
        s_w = self.F[name + ".scale"][0]
        a = np.abs(x).max(axis=1)
        s_x = (np.maximum(a, f32(1e-5)) / f32(127)).astype(f32)
        q = np.clip(np.rint(x / s_x[:, None]), -127, 127).astype(np.int64)
        acc = (q @ t.T).astype(f32)  # exact (|acc| < 2^24)
        y = acc * (s_x * s_w).astype(f32)[:, None]
        b = self.F.get(name + ".bias")
        if b is not None:
            y = y + b
        y = y.astype(f32)
        self.record("bl/" + name, (x, y))
        return y

    def ln(self, name, x):
        x = np.asarray(x, f32)
        mu = x.mean(-1, keepdims=True, dtype=f32)
        var = ((x - mu) ** 2).mean(-1, keepdims=True, dtype=f32)
        return ((x - mu) / np.sqrt(var + self.eps) * self.F[name + ".weight"] + self.F[name + ".bias"]).astype(f32)

    @staticmethod
    def gelu(x):
        c = f32(math.sqrt(2.0 / math.pi))
        return (f32(0.5) * x * (f32(1) + np.tanh(c * (x + f32(0.044715) * x * x * x)))).astype(f32)

    @staticmethod
    def softmax(s):
        s = s - s.max(-1, keepdims=True)
        e = np.exp(s)
        return (e / e.sum(-1, keepdims=True)).astype(f32)

    def rope(self, x, pos):
        """x [L, h, hd] (pre-RoPE), pos [L] ints -> rotated (NeoX half split)."""
        hd = x.shape[-1]
        half = hd // 2
        inv = self.base ** (-2.0 * np.arange(half) / hd)
        ang = (np.asarray(pos, np.float64)[:, None] * inv[None, :]).astype(f32)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(f32)

    def heads(self, x):
        return x.reshape(x.shape[0], self.h, self.d // self.h)

    def attend(self, q, k, v, mask=None):
        """q [Lq,h,hd], k/v [Lk,h,hd]; mask [Lq,Lk] bool (True = attend) -> [Lq, d]."""
        hd = q.shape[-1]
        s = np.einsum("qhd,khd->hqk", q, k).astype(f32) / f32(math.sqrt(hd))
        if mask is not None:
            s = np.where(mask[None], s, f32(-np.inf))
        p = self.softmax(s)
        o = np.einsum("hqk,khd->qhd", p, v).astype(f32)
        return o.reshape(o.shape[0], -1)

    def attn(self, pfx, kind, xq, xkv, mask=None):
        q = self.heads(self.bl(f"{pfx}.{kind}_q", xq))
        k = self.heads(self.bl(f"{pfx}.{kind}_k", xkv))
        v = self.heads(self.bl(f"{pfx}.{kind}_v", xkv))
        return self.bl(f"{pfx}.{kind}_o", self.attend(q, k, v, mask))

    def ffn(self, pfx, x):
        return self.bl(f"{pfx}.ffn_down", self.gelu(self.bl(f"{pfx}.ffn_up", x)))

    def enc_block(self, pfx, h):
        self.record("blk/" + pfx, (h, None))
        x = self.ln(pfx + ".ln1", h)
        h = (h + self.attn(pfx, "attn", x, x)).astype(f32)
        h = (h + self.ffn(pfx, self.ln(pfx + ".ln2", h))).astype(f32)
        self.rec_out("blk/" + pfx, h)
        return h

    def rec_out(self, key, y):
        if self.rec is not None:
            x, _ = self.rec[key][-1]
            self.rec[key][-1] = (x, np.array(y, f32))

    # -- convolutional stem (docs §3), fp32
    def conv3x3(self, X, name, stride):
        """X fp32 HWC [H,W,Cin] -> [Ho,Wo,Cout]: out[oy,ox,o] = b_o + sum_{ky,kx,c} w[o][(ky*3+kx)*Cin+c] *
        X[stride*oy+ky-1][stride*ox+kx-1][c], zero outside the image (im2col rows in (ky,kx,c) order)."""
        X = np.asarray(X, f32)
        H, W_, Cin = X.shape
        w, b = self.F[name + ".weight"], self.F[name + ".bias"]
        assert w.shape[1] == 9 * Cin, (name, w.shape, Cin)
        Ho, Wo = (H - 1) // stride + 1, (W_ - 1) // stride + 1
        Xp = np.zeros((H + 2, W_ + 2, Cin), f32)
        Xp[1:H + 1, 1:W_ + 1] = X
        cols = np.empty((Ho, Wo, 3, 3, Cin), f32)
        for ky in range(3):
            for kx in range(3):
                cols[:, :, ky, kx] = Xp[ky:ky + stride * (Ho - 1) + 1:stride, kx:kx + stride * (Wo - 1) + 1:stride]
        y = (cols.reshape(Ho * Wo, 9 * Cin) @ w.T + b).astype(f32)
        return y.reshape(Ho, Wo, -1)

    def image_patches(self, img_u8, trace=None):
        """Area-resized uint8 image [S,S,3] -> the [N, patch_dim] matrix fed to v.patch_embed: preprocess
        step 4 on the image (linear stem) or on the conv stem's output map with side P/2. trace (a dict),
        if given, receives x0 [S,S,C], and with the stem conv1 [S,S,C1], conv2 [S/2,S/2,C2]."""
        x0 = normalize_u8(img_u8)
        if trace is not None:
            trace["x0"] = x0
        if self.stem is None:
            return patchify_map(x0, self.P)
        c1 = self.gelu(self.conv3x3(x0, "v.stem1", 1))
        c2 = self.gelu(self.conv3x3(c1, "v.stem2", 2))
        if trace is not None:
            trace["conv1"], trace["conv2"] = c1, c2
        return patchify_map(c2, self.P // 2)

    # -- encoders
    def encode_image(self, patches):
        """patches: [N, patch_dim] (image_patches)."""
        x = (patches @ self.F["v.patch_embed.weight"].T + self.F["v.patch_embed.bias"]).astype(f32)
        h = (np.concatenate([self.F["v.cls"][None], x], 0) + self.F["v.pos_emb"]).astype(f32)
        for i in range(self.nv):
            h = self.enc_block(f"v.blk.{i}", h)
        V = self.ln("v.ln_f", h)
        y = self.bl("v.img_proj", V[:1])[0]
        e = (y / max(np.sqrt((y.astype(np.float64) ** 2).sum()), 1e-12)).astype(f32)
        return V, e

    def tokenize(self, prompt):
        return [self.index.get(w, self.unk) for w in normalize_prompt(prompt).split()]

    def encode_text(self, ids):
        h = (self.F["t.tok_emb"][ids] + self.F["t.pos_emb"][:len(ids)]).astype(f32)
        for i in range(self.nt):
            h = self.enc_block(f"t.blk.{i}", h)
        Z = self.ln("t.ln_f", h)
        y = self.bl("t.txt_proj", Z.mean(0, dtype=f32)[None])[0]
        u = (y / max(np.sqrt((y.astype(np.float64) ** 2).sum()), 1e-12)).astype(f32)
        return Z, u

    def fuse(self, Z, V):
        F_ = Z
        for i in range(self.nf):
            p = f"f.blk.{i}"
            self.record("blk/" + p, (F_, None))
            F_ = (F_ + self.attn(p, "xattn", self.ln(p + ".ln1", F_), V)).astype(f32)
            F_ = (F_ + self.ffn(p, self.ln(p + ".ln2", F_))).astype(f32)
            self.rec_out("blk/" + p, F_)
        return self.ln("f.ln_f", F_)

    def context(self, e, M, Fused):
        if M is None or len(M) == 0:
            r = np.zeros(self.d, f32)
        else:
            M = np.asarray(M, f32)
            w = self.softmax((self.F["mem.scale"][0] * (M @ e)).astype(f32))
            r = (w @ M).astype(f32)
        m = self.bl("mem.proj", r[None])[0]
        return (m + Fused.mean(0, dtype=f32)).astype(f32)

    def frame(self, patches, ids, M):
        """Encode one frame + prompt: returns dict with V, e, Z, u, Fused, c, and per-layer X K/V."""
        V, e = self.encode_image(patches)
        Z, u = self.encode_text(ids)
        Fused = self.fuse(Z, V)
        c = self.context(e, M, Fused)
        X = np.concatenate([V, Fused], 0)
        xkv = [(self.heads(self.bl(f"d.blk.{i}.xattn_k", X)), self.heads(self.bl(f"d.blk.{i}.xattn_v", X)))
               for i in range(self.nd)]
        cond = [self.bl(f"d.blk.{i}.cond", c[None])[0] for i in range(self.nd)]
        return dict(V=V, e=e, Z=Z, u=u, Fused=Fused, c=c, xkv=xkv, cond=cond)

    # -- decoder: one implementation, incremental, with the sink + window cache of docs §3
    def new_cache(self, sinks=None, window=None):
        return dict(S=self.sinks if sinks is None else sinks, W=self.window if window is None else window,
                    layers=[dict(sk=[], sv=[], wk=[], wv=[]) for _ in range(self.nd)], fed=0)

    def step(self, cache, fr, tok, record_positions=None):
        """Feed one token; returns logits [V]. Keys cached before RoPE; positions = slot order."""
        h = self.F["d.tok_emb"][tok][None].astype(f32)
        for i in range(self.nd):
            p = f"d.blk.{i}"
            L = cache["layers"][i]
            self.record("blk/" + p, (h, None))
            h = (h + fr["cond"][i]).astype(f32)
            x = self.ln(p + ".ln1", h)
            q = self.heads(self.bl(p + ".attn_q", x))
            k = self.heads(self.bl(p + ".attn_k", x))
            v = self.heads(self.bl(p + ".attn_v", x))
            if cache["fed"] < cache["S"]:
                L["sk"].append(k[0]); L["sv"].append(v[0])
            else:
                L["wk"].append(k[0]); L["wv"].append(v[0])
                if len(L["wk"]) > cache["W"]:
                    L["wk"].pop(0); L["wv"].pop(0)
            K = np.stack(L["sk"] + L["wk"])
            Vv = np.stack(L["sv"] + L["wv"])
            n = len(K)
            if record_positions is not None and i == 0:
                record_positions.append(n)
            Kr = self.rope(K, np.arange(n))
            qr = self.rope(q, [n - 1])
            o = self.attend(qr, Kr, Vv)
            h = (h + self.bl(p + ".attn_o", o)).astype(f32)
            xk, xv = fr["xkv"][i]
            o = self.attend(self.heads(self.bl(p + ".xattn_q", self.ln(p + ".ln2", h))), xk, xv)
            h = (h + self.bl(p + ".xattn_o", o)).astype(f32)
            h = (h + self.ffn(p, self.ln(p + ".ln3", h))).astype(f32)
            self.rec_out("blk/" + p, h)
        cache["fed"] += 1
        return self.bl("d.lm_head", self.ln("d.ln_f", h))[0]

    def decode_full(self, fr, ids):
        """Teacher-forced decoder over ids (plain causal attention, absolute positions): logits [n, V]."""
        h = self.F["d.tok_emb"][ids].astype(f32)
        n = len(ids)
        causal = np.tril(np.ones((n, n), bool))
        for i in range(self.nd):
            p = f"d.blk.{i}"
            self.record("blk/" + p, (h, None))
            h = (h + fr["cond"][i]).astype(f32)
            x = self.ln(p + ".ln1", h)
            q = self.rope(self.heads(self.bl(p + ".attn_q", x)), np.arange(n))
            k = self.rope(self.heads(self.bl(p + ".attn_k", x)), np.arange(n))
            v = self.heads(self.bl(p + ".attn_v", x))
            h = (h + self.bl(p + ".attn_o", self.attend(q, k, v, causal))).astype(f32)
            xk, xv = fr["xkv"][i]
            o = self.attend(self.heads(self.bl(p + ".xattn_q", self.ln(p + ".ln2", h))), xk, xv)
            h = (h + self.bl(p + ".xattn_o", o)).astype(f32)
            h = (h + self.ffn(p, self.ln(p + ".ln3", h))).astype(f32)
            self.rec_out("blk/" + p, h)
        return self.bl("d.lm_head", self.ln("d.ln_f", h))

    def greedy(self, fr, steps, stop_at_eos=True, sinks=None, window=None, positions=None, logits_out=None):
        cache = self.new_cache(sinks, window)
        tok, out = self.bos, []
        for _ in range(steps):
            lg = self.step(cache, fr, tok, positions)
            if logits_out is not None:
                logits_out.append(lg)
            tok = int(np.argmax(lg))
            out.append(tok)
            if stop_at_eos and tok == self.eos:
                break
        return out

    def detok(self, ids):
        w = []
        for i in ids:
            if i == self.eos:
                break
            w.append(self.vocab[i])
        return " ".join(w)

    def answer(self, img_u8, prompt, M=None):
        if img_u8.shape[0] != self.S or img_u8.shape[1] != self.S:
            img_u8 = resize_area_u8(img_u8, self.S)
        patches = self.image_patches(img_u8)
        fr = self.frame(patches, self.tokenize(prompt), M)
        if M is None:
            fr2 = self.frame(patches, self.tokenize(prompt), [fr["e"]])  # own episode live
            fr = fr2
        return self.detok(self.greedy(fr, self.maxcap))


# ---- random tiny model for fixtures ----------------------------------------------------------------

def random_model_gguf(path, seed=1234, stem=None):
    """stem=None: the linear-stem model random-tiny. stem=(C1, C2): the same model (every tensor drawn
    identically) except v.patch_embed.weight [d, C2*(P/2)^2] and v.stem1/v.stem2, drawn from seed+1."""
    sys.path.insert(0, os.path.join(HERE, "..", "train"))
    import export_gguf as eg
    rng = np.random.default_rng(seed)
    cfg = dict(image_size=16, patch_size=4, d=32, heads=2, ff=64, n_vision=2, n_text=1, n_fusion=1,
               n_decoder=2, text_ctx=8, max_caption_tokens=12, sink_count=2, window_length=4,
               rope_base=10000.0, ln_eps=1e-5)
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>"] + "a red blue circle square on the left right is there describe scene".split()
    V, d, ff, P = len(vocab), cfg["d"], cfg["ff"], cfg["patch_size"]
    N = (cfg["image_size"] // P) ** 2
    st = {}
    rn = lambda *s, sc=1.0: (rng.standard_normal(s) * sc).astype(f32)  # noqa: E731

    def lin(name, i, o, bias=True):
        st[name + ".weight"] = rn(o, i, sc=1 / math.sqrt(i))
        if bias:
            st[name + ".bias"] = rn(o, sc=0.05)

    def ln(name):
        st[name + ".weight"] = (1 + rn(d, sc=0.1)).astype(f32)
        st[name + ".bias"] = rn(d, sc=0.05)

    def enc(pfx, kind="attn", lns=("ln1", "ln2")):
        for l in lns:
            ln(f"{pfx}.{l}")
        for p in "qkvo":
            lin(f"{pfx}.{kind}.{p}", d, d)
        lin(f"{pfx}.ffn.up", d, ff)
        lin(f"{pfx}.ffn.down", ff, d)

    st["v.patch_embed.weight"] = rn(d, 3 * P * P, sc=1 / math.sqrt(3 * P * P))
    st["v.patch_embed.bias"] = rn(d, sc=0.05)
    if stem is not None:
        C1, C2 = stem
        cfg["stem_channels"] = [C1, C2]
        r2 = np.random.default_rng(seed + 1)
        rs = lambda *s, sc=1.0: (r2.standard_normal(s) * sc).astype(f32)  # noqa: E731
        # PyTorch Conv2d layout [out, in, ky, kx] (export_gguf permutes to (ky, kx, c) rows)
        st["v.stem1.weight"] = rs(C1, 3, 3, 3, sc=2 / math.sqrt(27))
        st["v.stem1.bias"] = rs(C1, sc=0.1)
        st["v.stem2.weight"] = rs(C2, C1, 3, 3, sc=2 / math.sqrt(9 * C1))
        st["v.stem2.bias"] = rs(C2, sc=0.1)
        pd = C2 * (P // 2) ** 2
        st["v.patch_embed.weight"] = rs(d, pd, sc=1 / math.sqrt(pd))
    st["v.cls"] = rn(d, sc=0.5)
    st["v.pos_emb"] = rn(N + 1, d, sc=0.5)
    for i in range(cfg["n_vision"]):
        enc(f"v.blk.{i}")
    ln("v.ln_f"); lin("v.img_proj", d, d)
    st["t.tok_emb"] = rn(V, d, sc=1.0)
    st["t.pos_emb"] = rn(cfg["text_ctx"], d, sc=0.5)
    for i in range(cfg["n_text"]):
        enc(f"t.blk.{i}")
    ln("t.ln_f"); lin("t.txt_proj", d, d)
    for i in range(cfg["n_fusion"]):
        enc(f"f.blk.{i}", "xattn")
    ln("f.ln_f")
    lin("mem.proj", d, d)
    st["mem.scale"] = np.array([5.0], f32)
    st["dec.tok_emb"] = rn(V, d, sc=1.0)
    for i in range(cfg["n_decoder"]):
        p = f"dec.blk.{i}"
        for l in ("ln1", "ln2", "ln3"):
            ln(f"{p}.{l}")
        for a in ("attn", "xattn"):
            for q in "qkvo":
                lin(f"{p}.{a}.{q}", d, d)
        lin(f"{p}.ffn.up", d, ff); lin(f"{p}.ffn.down", ff, d); lin(f"{p}.cond", d, d)
    ln("dec.ln_f")
    lin("dec.lm_head", d, V, bias=False)
    eg.export(st, cfg, vocab, path, name="bitmar-stream-fixture-random" + ("" if stem is None else "-conv"))
    return cfg, vocab, st


class Blob:
    """Float32/int32 arrays concatenated into one little-endian .bin with a JSON index."""

    def __init__(self):
        self.parts, self.index, self.off = [], {}, 0

    def add(self, key, arr, dtype="f32"):
        a = np.ascontiguousarray(np.asarray(arr, {"f32": "<f4", "i32": "<i4", "u8": "u1"}[dtype]))
        self.index[key] = dict(offset=self.off, shape=list(a.shape), dtype=dtype)
        b = a.tobytes()
        b += b"\0" * ((-len(b)) % 4)
        self.parts.append(b)
        self.off += len(b)

    def write(self, path):
        with open(path, "wb") as f:
            for b in self.parts:
                f.write(b)


def make_fixtures(out):
    """Writes random-tiny.{gguf,bin,json} (linear stem) and random-tiny-conv.{gguf,bin,json}.

    random-tiny-conv: the same random model and inputs, but with the convolutional stem
    (vision.stem_channels [4, 8]; image 16, patch 4 -> patch_dim 8*2*2 = 32). Same schema
    ("bitmar-stream-fixture-v1", every key of random-tiny, with the same meaning), config gains
    "stem_channels": [4, 8], plus these .bin keys (f32, row-major HWC maps):
      v.stem/x      [16,16,3]  X0: input/image normalised (v/127.5-1), the stem input
      v.stem/conv1  [16,16,4]  C1o = GELU(conv3x3(X0; v.stem1, stride 1, pad 1))
      v.stem/conv2  [8,8,8]    C2o = GELU(conv3x3(C1o; v.stem2, stride 2, pad 1))
      v.stem/y      [16,32]    C2o cut into 2x2 patches, (dy,dx,c) order: the matrix fed to
                               v.patch_embed (what encodes to out/V)
    input/patches stays preprocess step 4 on the image itself ([16,48], preprocessFrame's output),
    NOT the patch_embed input.
    """
    os.makedirs(out, exist_ok=True)
    g12, g16 = _fixture(out, "random-tiny", None)
    _fixture(out, "random-tiny-conv", (4, 8))
    tot = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"fixtures in {out}: {sorted(os.listdir(out))} total {tot} bytes; greedy12 {g12} kv {g16}")


def _fixture(out, stem_name, stem):
    gpath = os.path.join(out, stem_name + ".gguf")
    cfg, vocab, _st = random_model_gguf(gpath, stem=stem)
    m = Model(gpath)
    rng = np.random.default_rng(7)
    # inputs: a 24x18 raw frame (exercises the area resize) with two coloured blocks
    raw = rng.integers(0, 60, (18, 24, 3)).astype(np.uint8)
    raw[3:9, 2:8] = [220, 40, 40]
    raw[10:16, 14:21] = [50, 90, 230]
    img = resize_area_u8(raw, m.S)
    pixel_patches = patchify(img, m.P)
    trace = {}
    patches = m.image_patches(img, trace)
    if stem is None:
        assert np.array_equal(patches, pixel_patches)
    prompt = "Is there a red circle?"
    ids = m.tokenize(prompt)
    # memory: 3 slots, unit vectors (slot 1 = this frame's own episode, filled in after encoding)
    m.rec = None
    V0, e0 = m.encode_image(patches)
    M = rng.standard_normal((3, m.d)).astype(f32)
    M /= np.linalg.norm(M, axis=1, keepdims=True)
    M[1] = e0
    M = M.astype(f32)
    blob = Blob()
    blob.add("input/raw_frame", raw, "u8")
    blob.add("input/image", img, "u8")
    blob.add("input/patches", pixel_patches)
    if stem is not None:
        blob.add("v.stem/x", trace["x0"])
        blob.add("v.stem/conv1", trace["conv1"])
        blob.add("v.stem/conv2", trace["conv2"])
        blob.add("v.stem/y", patches)
    blob.add("input/prompt_ids", ids, "i32")
    blob.add("input/memory", M)
    # 1) frame encode + teacher-forced decoder, everything recorded
    m.rec = {}
    fr = m.frame(patches, ids, M)
    tf = [m.bos] + [m.index[w] for w in "a red circle on the left".split()]
    logits = m.decode_full(fr, tf)
    rec = m.rec
    m.rec = None
    for k in ("V", "e", "Z", "u", "Fused", "c"):
        blob.add("out/" + k, fr[k])
    blob.add("input/teacher_ids", tf, "i32")
    blob.add("out/teacher_logits", logits)
    bl_names, blk_names = [], []
    for key, calls in rec.items():
        assert len(calls) == 1, key
        x, y = calls[0]
        blob.add(key + "/x", x)
        blob.add(key + "/y", y)
        (bl_names if key.startswith("bl/") else blk_names).append(key[key.index("/") + 1:])
    # incremental decoding with a big cache must equal the teacher-forced logits
    cache = m.new_cache(sinks=2, window=64)
    inc = np.stack([m.step(cache, fr, t) for t in tf])
    assert np.abs(inc - logits).max() <= 1e-3 * max(1.0, np.abs(logits).max()), np.abs(inc - logits).max()
    # 2) greedy 12 steps (no eos stop) and until eos, default cache (S=2, W=4 from metadata)
    big = dict(sinks=2, window=64)
    gl = []
    g12 = m.greedy(fr, 12, stop_at_eos=False, logits_out=gl, **big)
    blob.add("out/greedy12_tokens", g12, "i32")
    blob.add("out/greedy12_logits", np.stack(gl))
    ge = m.greedy(fr, 12, stop_at_eos=True, **big)
    blob.add("out/greedy_until_eos_tokens", ge, "i32")
    # 3) sink + window cache S=2, W=4, 16 steps greedy without eos stop
    pos, kl = [], []
    g16 = m.greedy(fr, 16, stop_at_eos=False, sinks=2, window=4, positions=pos, logits_out=kl)
    blob.add("out/kv_s2_w4_tokens", g16, "i32")
    blob.add("out/kv_s2_w4_logits", np.stack(kl))
    blob.add("out/kv_s2_w4_cache_len", pos, "i32")
    # 4) empty memory (r = 0) variant: context and first-step logits
    fr0 = m.frame(patches, ids, None)
    blob.add("out/empty_memory/c", fr0["c"])
    blob.add("out/empty_memory/teacher_logits", m.decode_full(fr0, tf))
    blob.write(os.path.join(out, stem_name + ".bin"))
    doc = dict(
        schema="bitmar-stream-fixture-v1",
        generator="tools/reference/stream_reference.py fixtures",
        gguf=stem_name + ".gguf", bin=stem_name + ".bin",
        config=cfg, vocab=vocab, prompt=prompt,
        teacher_text="a red circle on the left",
        notes=[
            "bin: little-endian arrays at index[key].offset (bytes), dtype f32|i32|u8, row-major shape.",
            "input/raw_frame [18,24,3] u8 -> input/image = area resize to 16x16 (src/model/preprocess.ts) -> input/patches [16,48].",
            "input/memory [3,d]: live memory slots (unit vectors; slot 1 is this frame's own episode e).",
            "bl/NAME/x and bl/NAME/y: input and output of BitLinear NAME (GGUF tensor base name) in the "
            "frame encode + teacher-forced decode of input/teacher_ids; d.blk.i.xattn_k/v run on X=concat(V,Fused); "
            "d.blk.i.cond on c [1,d].",
            "blk/NAME/x and blk/NAME/y: a block's residual stream in and out (v.blk.i, t.blk.i, f.blk.i, d.blk.i;"
            " for d.blk.i the input is before the conditioning add).",
            "out/V [N+1,d], out/e [d], out/Z [T,d], out/u [d], out/Fused [T,d], out/c [d].",
            "out/teacher_logits [n,V]: decoder logits at every position for input/teacher_ids (plain causal, absolute positions).",
            "out/greedy12_*: 12 greedy steps from <bos>, NOT stopping at <eos>, cache large enough (S=2,W=64);"
            " logits[i] is the distribution that produced tokens[i]. out/greedy_until_eos_tokens stops after <eos> (inclusive).",
            "out/kv_s2_w4_*: 16 greedy steps (no eos stop) with the sink+window cache S=2, W=4: keys cached "
            "before RoPE, positions = slot order, query at the last position; cache_len[i] = cache entries at step i.",
            "out/empty_memory/*: same frame with no live memory slot (r = 0).",
        ] + ([] if stem is None else [
            f"convolutional stem (docs §3), vision.stem_channels {list(stem)}: input/patches is still preprocess step 4 "
            "on the image (pixels); the stem's output, fed to v.patch_embed, is v.stem/y.",
            "v.stem/x [S,S,3]: input/image normalised (v/127.5-1, HWC). v.stem/conv1 [S,S,C1] = GELU(conv3x3(x; v.stem1, "
            "stride 1, zero pad 1)); v.stem/conv2 [S/2,S/2,C2] = GELU(conv3x3(conv1; v.stem2, stride 2, zero pad 1)).",
            "v.stem/y [N, C2*(P/2)^2]: conv2 cut into (P/2)x(P/2) patches, row-major, each in (dy,dx,c) order; "
            "out/V = the vision encoder on v.stem/y.",
        ]),
        bitlinears=bl_names, blocks=blk_names, index=blob.index,
    )
    with open(os.path.join(out, stem_name + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
    return g12, g16


def eval_bmds(gguf, data, n, kinds=None):
    from dataset import read_bmds, kind_of  # tools/train/dataset.py (format reader only)
    m = Model(gguf)
    ims, metas, _v, _s = read_bmds(data)
    ok, tot = {}, {}
    for i in range(min(n, len(ims))):
        img = ims[i]
        if img.shape[0] != m.S:  # e.g. 64x64 BMDS for a 32x32 model: area resize like the trainer
            img = resize_area_u8(img, m.S)
        patches = m.image_patches(img)
        for p, a in metas[i]["qa"]:
            k = kind_of(p)
            fr = m.frame(patches, m.tokenize(p), None)  # memory none, as `bitmar-node eval`
            got = m.detok(m.greedy(fr, m.maxcap))
            ok[k] = ok.get(k, 0) + (got == " ".join(a.split()))
            tot[k] = tot.get(k, 0) + 1
    res = {k: ok[k] / tot[k] for k in tot}
    res["overall"] = sum(ok.values()) / sum(tot.values())
    print(json.dumps(res))
    return res


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a1 = sub.add_parser("fixtures")
    a1.add_argument("--out", default="test/fixtures/stream")
    a2 = sub.add_parser("eval")
    a2.add_argument("--gguf", required=True)
    a2.add_argument("--data", required=True)
    a2.add_argument("--n", type=int, default=100)
    a3 = sub.add_parser("caption")
    a3.add_argument("--gguf", required=True)
    a3.add_argument("--image", required=True)
    a3.add_argument("--prompt", default="describe the scene")
    a = ap.parse_args()
    if a.cmd == "fixtures":
        make_fixtures(a.out)
    elif a.cmd == "eval":
        eval_bmds(a.gguf, a.data, a.n)
    else:
        from PIL import Image
        img = np.asarray(Image.open(a.image).convert("RGB"), np.uint8)
        print(Model(a.gguf).answer(img, a.prompt))


if __name__ == "__main__":
    main()
