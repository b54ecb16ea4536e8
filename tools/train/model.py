"""bitmar-stream (docs/bitmar-stream.md) in PyTorch with quantisation-aware training.

Every BitLinear fake-quantises exactly as the engine computes:
  weights  s_w = max(mean|W|, 1e-5), t = clamp(round_half_even(W/s_w), -1, 1)   (STE)
  inputs   s_x = max(max|x_row|, 1e-5)/127, q = clamp(round_half_even(x/s_x), -127, 127)  (STE)
Module/parameter names map 1:1 onto the GGUF tensor names (see export_gguf.py).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
PAD, BOS, EOS, UNK = 0, 1, 2, 3


@dataclass
class Config:
    image_size: int = 64
    patch_size: int = 8
    d: int = 128
    heads: int = 4
    ff: int = 256
    n_vision: int = 3
    n_text: int = 1
    n_fusion: int = 1
    n_decoder: int = 3
    text_ctx: int = 16
    max_caption_tokens: int = 24
    sink_count: int = 4
    window_length: int = 60
    rope_base: float = 10000.0
    ln_eps: float = 1e-5
    vocab_size: int = 64
    stem_channels: tuple = ()  # () = linear patch stem; (C1, C2) = conv stem (docs/bitmar-stream.md §3)

    @property
    def n_patches(self):
        return (self.image_size // self.patch_size) ** 2

    @property
    def patch_dim(self):
        if self.stem_channels:
            return self.stem_channels[1] * (self.patch_size // 2) ** 2
        return 3 * self.patch_size ** 2

    def to_dict(self):
        return asdict(self)


class _QAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        s = x.abs().amax(dim=-1, keepdim=True).clamp_(min=1e-5).div_(127.0)
        return torch.round(x / s).clamp_(-127, 127).mul_(s)

    @staticmethod
    def backward(ctx, g):
        return g


class _Tern(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        s = w.abs().mean().clamp(min=1e-5)
        return torch.round(w / s).clamp_(-1, 1).mul_(s)

    @staticmethod
    def backward(ctx, g):
        return g


def quant_act(x):
    """Per-row symmetric int8 fake quant with STE (returns dequantised values)."""
    return _QAct.apply(x)


def ternary(w):
    """Per-tensor ternary fake quant with STE."""
    return _Tern.apply(w)


class BitLinear(nn.Module):
    def __init__(self, i, o, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) * (1.0 / math.sqrt(i)))
        self.bias = nn.Parameter(torch.zeros(o)) if bias else None

    def forward(self, x):
        return F.linear(quant_act(x), ternary(self.weight), self.bias)


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def rope(x, pos, base):
    """x [..., L, hd] NeoX half split; pos [L] float."""
    hd = x.shape[-1]
    half = hd // 2
    inv = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / hd)
    ang = (pos.double()[:, None] * inv[None, :]).float()
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attn(nn.Module):
    """Projections named attn_{q,k,v,o} or xattn_{q,k,v,o} by the owner."""

    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.q, self.k, self.v, self.o = (BitLinear(d, d) for _ in range(4))

    def heads(self, x):
        B, L, d = x.shape
        return x.view(B, L, self.h, d // self.h).transpose(1, 2)

    def core(self, q, k, v, mask):
        """q [B,h,Lq,hd] k,v [B,h,Lk,hd]; mask bool broadcastable to [B,1|h,Lq,Lk] (True=attend)."""
        hd = q.shape[-1]
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        o = p @ v
        B, h, L, _ = o.shape
        return self.o(o.transpose(1, 2).reshape(B, L, h * hd))

    def forward(self, xq, xkv, mask=None, rope_pos=None, base=10000.0):
        q, k, v = self.heads(self.q(xq)), self.heads(self.k(xkv)), self.heads(self.v(xkv))
        if rope_pos is not None:
            q, k = rope(q, rope_pos, base), rope(k, rope_pos, base)
        return self.core(q, k, v, mask)


class FFN(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.up, self.down = BitLinear(d, f), BitLinear(f, d)

    def forward(self, x):
        return self.down(gelu(self.up(x)))


class EncBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d, eps=c.ln_eps), nn.LayerNorm(c.d, eps=c.ln_eps)
        self.attn, self.ffn = Attn(c.d, c.heads), FFN(c.d, c.ff)

    def forward(self, h, mask=None):
        x = self.ln1(h)
        h = h + self.attn(x, x, mask)
        return h + self.ffn(self.ln2(h))


class FusionBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d, eps=c.ln_eps), nn.LayerNorm(c.d, eps=c.ln_eps)
        self.xattn, self.ffn = Attn(c.d, c.heads), FFN(c.d, c.ff)

    def forward(self, f, V):
        f = f + self.xattn(self.ln1(f), V)
        return f + self.ffn(self.ln2(f))


class DecBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cond = BitLinear(c.d, c.d)
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(c.d, eps=c.ln_eps) for _ in range(3))
        self.attn, self.xattn, self.ffn = Attn(c.d, c.heads), Attn(c.d, c.heads), FFN(c.d, c.ff)
        self.base = c.rope_base

    def stream_attn(self, x, stream):
        """Causal self-attention exactly as the sink + window KV cache sees it (docs §3) for one
        sequence per row (G = 1): query p attends to keys a <= p; once p >= S+W only to the sinks
        a < S and the window a > p-W, with the query at position S+W-1 and sinks at 0..S-1
        (window keys keep their relative distance, so absolute RoPE is exact for them)."""
        S, W = stream
        at = self.attn
        L = x.shape[1]
        q, k, v = at.heads(at.q(x)), at.heads(at.k(x)), at.heads(at.v(x))
        pos = torch.arange(L, dtype=torch.float32)
        qa, ka = rope(q, pos, self.base), rope(k, pos, self.base)
        hd = q.shape[-1]
        sc = qa @ ka.transpose(-1, -2) / math.sqrt(hd)
        p = torch.arange(L)[:, None]
        a = torch.arange(L)[None, :]
        full = p >= S + W
        allowed = (a <= p) & (~full | (a < S) | (a > p - W))
        if L > S + W:
            qs = rope(q, torch.full((L,), float(S + W - 1)), self.base)
            ss = qs @ ka[:, :, :S].transpose(-1, -2) / math.sqrt(hd)
            sc = torch.cat([torch.where(full, ss, sc[..., :S]), sc[..., S:]], -1)
        sc = sc.masked_fill(~allowed, float("-inf"))
        o = torch.softmax(sc, -1) @ v
        B, h, L, _ = o.shape
        return at.o(o.transpose(1, 2).reshape(B, L, h * hd))

    def forward(self, h, c, xk, xv, xmask, smask, pos, stream=None):
        """h [D,G*L,d] (G groups of L tokens sharing the cross-attention keys of one image);
        c [D,G,d] (one context per group) or [D,G,L,d] (per token); xk/xv [D,h,S,hd];
        xmask [D,1,G*L|1,S]; smask [1,1,G*L,G*L] (block-diagonal causal); pos [G*L]."""
        D, GL, d = h.shape
        cc = self.cond(c)
        if cc.dim() == 3:
            G = cc.shape[1]
            h = (h.view(D, G, GL // G, d) + cc[:, :, None]).view(D, GL, d)
        else:
            h = h + cc.reshape(D, GL, d)
        x = self.ln1(h)
        if stream is None:
            h = h + self.attn(x, x, smask, rope_pos=pos, base=self.base)
        else:
            h = h + self.stream_attn(x, stream)
        xa = self.xattn
        q = xa.heads(xa.q(self.ln2(h)))
        h = h + xa.core(q, xk, xv, xmask)
        return h + self.ffn(self.ln3(h))


class Vision(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c.stem_channels:
            c1, c2 = c.stem_channels
            self.stem1 = nn.Conv2d(3, c1, 3, stride=1, padding=1)
            self.stem2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.patch_embed = nn.Linear(c.patch_dim, c.d)
        self.cls = nn.Parameter(torch.randn(c.d) * 0.02)
        self.pos_emb = nn.Parameter(torch.randn(c.n_patches + 1, c.d) * 0.02)
        self.blk = nn.ModuleList(EncBlock(c) for _ in range(c.n_vision))
        self.ln_f = nn.LayerNorm(c.d, eps=c.ln_eps)
        self.img_proj = BitLinear(c.d, c.d)


class Text(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.tok_emb = nn.Parameter(torch.randn(c.vocab_size, c.d) * 0.02)
        self.pos_emb = nn.Parameter(torch.randn(c.text_ctx, c.d) * 0.02)
        self.blk = nn.ModuleList(EncBlock(c) for _ in range(c.n_text))
        self.ln_f = nn.LayerNorm(c.d, eps=c.ln_eps)
        self.txt_proj = BitLinear(c.d, c.d)


class Fusion(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.blk = nn.ModuleList(FusionBlock(c) for _ in range(c.n_fusion))
        self.ln_f = nn.LayerNorm(c.d, eps=c.ln_eps)


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.tok_emb = nn.Parameter(torch.randn(c.vocab_size, c.d) * 0.02)
        self.blk = nn.ModuleList(DecBlock(c) for _ in range(c.n_decoder))
        self.ln_f = nn.LayerNorm(c.d, eps=c.ln_eps)
        self.lm_head = BitLinear(c.d, c.vocab_size, bias=False)


class Memory(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = BitLinear(c.d, c.d)
        self.scale = nn.Parameter(torch.tensor([10.0]))


def preprocess(images_u8, P):
    """images [B,S,S,3] uint8 (already area-resized) -> patches [B,N,3P^2] in (dy,dx,c) order."""
    return patchify(images_u8.float() / 127.5 - 1.0, P)


def conv_stem(v, x):
    """x [B,S,S,3] normalised -> [B,S/2,S/2,C2]: GELU(conv3x3 s1) then GELU(conv3x3 s2), zero padding 1."""
    y = x.permute(0, 3, 1, 2)
    y = gelu(v.stem2(gelu(v.stem1(y))))
    return y.permute(0, 2, 3, 1)


def patchify(x, P):
    """x [B,S,S,C] -> [B,(S/P)^2,P*P*C] in row-major patch order, each patch in (dy,dx,c) order."""
    B, S, _, C = x.shape
    g = S // P
    x = x.view(B, g, P, g, P, C).permute(0, 1, 3, 2, 4, 5).reshape(B, g * g, P * P * C)
    return x


class BitMarStream(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.v, self.t, self.f, self.dec, self.mem = Vision(c), Text(c), Fusion(c), Decoder(c), Memory(c)
        with torch.no_grad():  # 2D sin-cos init of the patch position embeddings (x and y halves)
            self.v.pos_emb[1:] = sincos_2d(c.image_size // c.patch_size, c.d) * 0.5

    # ---- encoders -------------------------------------------------------------------------
    def encode_image(self, images_u8):
        c, v = self.c, self.v
        if c.stem_channels:
            x = v.patch_embed(patchify(conv_stem(v, images_u8.float() / 127.5 - 1.0), c.patch_size // 2))
        else:
            x = v.patch_embed(preprocess(images_u8, c.patch_size))
        B = x.shape[0]
        h = torch.cat([v.cls.expand(B, 1, c.d), x], 1) + v.pos_emb
        for b in v.blk:
            h = b(h)
        V = v.ln_f(h)
        e = F.normalize(v.img_proj(V[:, 0]), dim=-1)
        return V, e

    def encode_text(self, ids, tmask):
        """ids [P,T] right-padded, tmask [P,T] bool."""
        t = self.t
        T = ids.shape[1]
        h = t.tok_emb[ids] + t.pos_emb[:T]
        am = tmask[:, None, None, :]
        for b in t.blk:
            h = b(h, am)
        Z = t.ln_f(h)
        u = F.normalize(t.txt_proj(masked_mean(Z, tmask)), dim=-1)
        return Z, u

    def fuse(self, Z, V_per_prompt):
        f = Z
        for b in self.f.blk:
            f = b(f, V_per_prompt)
        return self.f.ln_f(f)

    def memory_read(self, e, M, mmask):
        """e [P,d]; M [P,K,d]; mmask [P,K] bool -> m [P,d]."""
        if M is None or M.shape[1] == 0:
            r = torch.zeros_like(e)
        else:
            s = self.mem.scale * torch.einsum("pkd,pd->pk", M, e)
            s = s.masked_fill(~mmask, float("-inf"))
            w = torch.softmax(s, dim=-1)
            w = torch.nan_to_num(w, nan=0.0)  # rows with no live slot -> r = 0
            r = torch.einsum("pk,pkd->pd", w, M)
        return self.mem.proj(r)

    # ---- decoder ----------------------------------------------------------------------------
    def xkv(self, X):
        """Per decoder layer, the cross-attention keys/values of X [D,S,d] -> list of (k, v) [D,h,S,hd]."""
        return [(b.xattn.heads(b.xattn.k(X)), b.xattn.heads(b.xattn.v(X))) for b in self.dec.blk]

    def decode(self, ids, c, layer_kv, xmask, stream=None):
        """ids [D,G,L]; c [D,G,d] or [D,G,L,d]; layer_kv list of (xk, xv) [D,h,S,hd];
        xmask [D,1,G*L|1,S]. Groups are independent sequences (block-diagonal causal attention,
        positions restart at 0 in every group). Returns logits [D,G,L,V]."""
        D, G, L = ids.shape
        h = self.dec.tok_emb[ids].reshape(D, G * L, -1)
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        mask = torch.block_diag(*([causal] * G)) if G > 1 else causal
        pos = torch.arange(L, dtype=torch.float32).repeat(G)
        for b, (xk, xv) in zip(self.dec.blk, layer_kv):
            h = b(h, c, xk, xv, xmask, mask[None, None], pos, stream)
        return self.dec.lm_head(self.dec.ln_f(h)).view(D, G, L, -1)


def sincos_2d(g, d):
    """[g*g, d] 2D sin-cos position table (first half encodes x, second half y), row-major grid."""
    q = d // 4
    om = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float64) / max(1, q - 1)))
    ys, xs = torch.meshgrid(torch.arange(g, dtype=torch.float64), torch.arange(g, dtype=torch.float64), indexing="ij")
    def enc(p):
        a = p.reshape(-1, 1) * om[None] * (math.pi / g)
        return torch.cat([a.sin(), a.cos()], 1)
    return torch.cat([enc(xs), enc(ys)], 1).float()


def masked_mean(Z, mask):
    m = mask.float()[..., None]
    return (Z * m).sum(1) / m.sum(1).clamp(min=1.0)


def count_params(model):
    return sum(p.numel() for p in model.parameters())
