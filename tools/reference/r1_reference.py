#!/usr/bin/python3
"""
PyTorch reference of BitMar "R1" (the authors' Sept-2025 code), written from
../shared/docs/bitmar-reference-spec.md (§1–§4, §6.1, §7; §12 wins where it disagrees).

Module names and registration order reproduce the authors' state_dict exactly: with the default
(paper) config, `BitMarModel().state_dict()` has the 383 keys, shapes and dtypes of
bitmar-r1-state-dict-keys.tsv, in that order (`check-keys` verifies it).

Numerics (eval mode, fp32):
- BitLinear: s_w = clamp(mean|W|, 1e-5, 1e3) with the mean accumulated in fp64 and rounded to fp32
  once (§12.2, the converter stores exactly this); t = +1 if W/s_w > 2/3, −1 if < −2/3, else 0
  (fp32 compare); activations: per-tensor asymmetric uint8 over the whole input tensor of the call
  (clamp ±1e6; pass-through when max−min < 1e-8; s=(max−min)/255, zp=clamp(round(−min/s),0,255),
  q=clamp(round(x/s+zp),0,255), x̂=s·(q−zp); torch.round = half to even); y = x̂·(s_w t)ᵀ + b.
- GELU is the exact erf form, evaluated in fp64 and rounded to fp32 (CPU torch's fp32 GELU uses a
  1.5e-7 erf approximation; the authors' GPUs use an accurate erff).
- Everything else is plain fp32 torch.

Subcommands:
  check-keys  --tsv PATH               compare the paper-size state_dict with the key TSV
  fixtures    --out test/fixtures/r1   golden fixtures (random weights, small dims), then convert the
                                       reference's pytorch_model.bin with `bitmar-node convert`
  full-size   --out DIR [--new 16]     a paper-size random model (pytorch_model.bin, config.json) and the
                                       reference's greedy caption (reference.json), for a manual check
  save-checkpoint --safetensors F --out X [--training]
                                       re-save a safetensors state_dict as torch.save(state_dict)
                                       (pytorch_model.bin) or as a training checkpoint dict (.pt)
Requires Debian's python3-torch (/usr/bin/python3) and numpy.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EOS_PAPER = 50256
TWO_THIRDS = torch.tensor(2.0 / 3.0, dtype=torch.float32)


# ---- quantisation -------------------------------------------------------------------------------

def act_quant_u8(x):
    """R1 activation quantisation over the whole tensor (spec §4, §12.11)."""
    x = torch.clamp(x, -1e6, 1e6)
    mn = x.min()
    mx = x.max()
    if (mx - mn) < 1e-8:
        return x
    s = (mx - mn) / 255.0
    zp = torch.clamp(torch.round(-mn / s), 0, 255)
    q = torch.clamp(torch.round(x / s + zp), 0, 255)
    return s * (q - zp)


def weight_scale_fp64(w):
    """mean|W| accumulated in fp64, rounded once to fp32, clamped (spec §12.2)."""
    s = w.detach().abs().double().mean().float()
    return torch.clamp(s, 1e-5, 1e3)


def ternarize(w):
    s = weight_scale_fp64(w)
    ws = w.detach() / s
    t = (ws > TWO_THIRDS).float() - (ws < -TWO_THIRDS).float()
    return s, t


def gelu_exact(x):
    return F.gelu(x.double()).to(x.dtype)


class ExactGELU(nn.Module):
    def forward(self, x):
        return gelu_exact(x)


class BitLinear(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            self.register_parameter('bias', None)
        self.register_buffer('weight_scale', torch.ones(1))
        self.register_buffer('input_scale', torch.ones(1))

    def forward(self, x):
        s, t = ternarize(self.weight)
        return F.linear(act_quant_u8(x), s * t, self.bias)


# ---- blocks -------------------------------------------------------------------------------------

class MultiHeadAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = BitLinear(dim, dim)
        self.k_proj = BitLinear(dim, dim)
        self.v_proj = BitLinear(dim, dim)
        self.out_proj = BitLinear(dim, dim)

    def forward(self, q_in, kv_in, mask=None):
        B, Tq, d = q_in.shape
        Tk = kv_in.shape[1]
        h, hd = self.heads, self.head_dim
        q = self.q_proj(q_in).view(B, Tq, h, hd).transpose(1, 2)
        k = self.k_proj(kv_in).view(B, Tk, h, hd).transpose(1, 2)
        v = self.v_proj(kv_in).view(B, Tk, h, hd).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float('-inf'))
        attn = F.softmax(scores, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).contiguous().view(B, Tq, d)
        return self.out_proj(out)


class MLP(nn.Module):
    """fc1 → GELU → fc2, plus its own input, then its own LayerNorm (spec §3.2)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = BitLinear(dim, hidden)
        self.fc2 = BitLinear(hidden, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, u):
        return self.norm(self.fc2(gelu_exact(self.fc1(u))) + u)


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = MLP(dim, hidden)

    def forward(self, h, mask):
        x = self.norm1(h)
        h = h + self.attn(x, x, mask)
        return h + self.mlp(self.norm2(h))


class TextEncoder(nn.Module):
    def __init__(self, vocab, dim, layers, heads, hidden, ctx):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(ctx, dim)
        self.layers = nn.ModuleList([TransformerBlock(dim, heads, hidden) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, ids, attention_mask):
        T = ids.shape[1]
        h = self.token_embedding(ids) + self.position_embedding(torch.arange(T))
        mask = attention_mask[:, None, None, :]
        for b in self.layers:
            h = b(h, mask)
        return self.norm(h)


class TextDecoder(nn.Module):
    def __init__(self, vocab, dim, layers, heads, hidden, ctx):
        super().__init__()
        self.register_buffer('causal_mask', torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx))
        self.token_embedding = nn.Embedding(vocab, dim)  # stored, never used (spec §1)
        self.position_embedding = nn.Embedding(ctx, dim)
        self.layers = nn.ModuleList([TransformerBlock(dim, heads, hidden) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.lm_head = BitLinear(dim, vocab, bias=False)

    def forward(self, inputs_embeds, attention_mask):
        T = inputs_embeds.shape[1]
        h = inputs_embeds + self.position_embedding(torch.arange(T))
        mask = self.causal_mask[:, :, :T, :T] * attention_mask[:, None, None, :]
        for b in self.layers:
            h = b(h, mask)
        return self.lm_head(self.norm(h))


class VisionEncoder(nn.Module):
    def __init__(self, in_dim, hidden, latent, layers=2):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.layers = nn.ModuleList([BitLinear(dims[i], dims[i + 1]) for i in range(layers)])
        self.output_proj = BitLinear(hidden, latent)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(hidden, eps=1e-5) for _ in range(layers)])

    def forward(self, x):
        for lin, ln in zip(self.layers, self.layer_norms):
            x = gelu_exact(ln(lin(x)))
        return self.output_proj(x)


class CrossModalFusion(nn.Module):
    def __init__(self, text_dim, vision_dim, hidden, heads, layers):
        super().__init__()
        self.text_proj = BitLinear(text_dim, hidden)
        self.vision_proj = BitLinear(vision_dim, hidden)
        self.cross_attention_layers = nn.ModuleList([MultiHeadAttention(hidden, heads) for _ in range(layers)])
        self.layer_norms = nn.ModuleList([nn.LayerNorm(hidden, eps=1e-5) for _ in range(layers)])
        self.output_proj = BitLinear(hidden, hidden)

    def forward(self, Z, vis):
        f = self.text_proj(Z)
        p = self.vision_proj(vis).unsqueeze(1)  # the single vision token: the only key/value
        for attn, ln in zip(self.cross_attention_layers, self.layer_norms):
            f = ln(f + attn(f, p))
        return self.output_proj(f)


class EpisodicMemory(nn.Module):
    def __init__(self, slots, dim, alpha=0.2):
        super().__init__()
        self.alpha = alpha
        self.attention_temperature = nn.Parameter(torch.ones(()))
        self.register_buffer('memory', torch.randn(slots, dim) * 0.02)
        self.register_buffer('memory_age', torch.zeros(slots))
        self.register_buffer('memory_usage', torch.zeros(slots))
        self.register_buffer('memory_quality', torch.zeros(slots))
        self.register_buffer('memory_importance', torch.ones(slots))
        self.register_buffer('memory_mean', torch.zeros(dim))
        self.register_buffer('memory_std', torch.ones(dim))
        self.register_buffer('update_count', torch.tensor(0, dtype=torch.long))

        def net():
            return nn.Sequential(BitLinear(dim, dim), nn.LayerNorm(dim, eps=1e-5), ExactGELU(), BitLinear(dim, dim))

        self.query_net = net()
        self.key_net = net()
        self.value_net = net()
        self.consolidation_net = nn.Sequential(
            BitLinear(dim, 2 * dim), nn.LayerNorm(2 * dim, eps=1e-5), ExactGELU(), nn.Dropout(0.0),
            BitLinear(2 * dim, dim), nn.LayerNorm(dim, eps=1e-5))

    def read(self, e, update=True):
        """mode="read" (spec §3.7, §12.9): returns r [B,C] and the weights w [B,K]."""
        if int(self.update_count) > 10:
            e = (e - self.memory_mean) / (self.memory_std + 1e-8)
        q = self.query_net(e) + e
        M = self.memory
        Km = self.key_net(M) + M
        Vm = self.value_net(M) + M
        tau = torch.clamp(self.attention_temperature, 0.1, 10.0)
        scores = torch.matmul(q, Km.t()) / (math.sqrt(M.shape[1]) * tau)
        scores = scores + torch.log(self.memory_importance + 1e-8)
        w = F.softmax(scores, dim=-1)
        r = torch.matmul(w, Vm)
        if update:
            ws = w.sum(0)
            self.memory_usage.add_(ws)
            self.memory_importance.copy_(0.9 * self.memory_importance + 0.1 * (ws + 1e-8))
        return r, w


class BitMarModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = dict(DEFAULT_CONFIG)
        c.update(cfg or {})
        self.cfg = c
        d = c['text_encoder_dim']
        self.text_encoder = TextEncoder(c['vocab_size'], d, c['text_encoder_layers'], c['text_encoder_heads'], 4 * d, c['max_seq_len'])
        self.text_decoder = TextDecoder(c['vocab_size'], c['text_decoder_dim'], c['text_decoder_layers'], c['text_decoder_heads'], 4 * c['text_decoder_dim'], c['max_seq_len'])
        self.vision_encoder = VisionEncoder(c['vision_encoder_dim'], c['vision_hidden_size'], c['vision_latent_size'])
        self.fusion = CrossModalFusion(d, c['vision_latent_size'], c['fusion_hidden_size'], c['fusion_num_heads'], c['fusion_num_layers'])
        self.memory = EpisodicMemory(c['memory_size'], c['episode_dim'], c['memory_alpha'])
        self.text_to_episode = BitLinear(d, c['episode_dim'])
        self.vision_to_episode = BitLinear(c['vision_latent_size'], c['episode_dim'])
        self.memory_to_decoder = BitLinear(c['episode_dim'], c['fusion_hidden_size'])
        self.decoder_input_proj = BitLinear(c['fusion_hidden_size'], c['text_decoder_dim'])

    @torch.no_grad()
    def forward(self, input_ids, attention_mask=None, vision_features=None, has_vision=None, memory_update=True):
        B, T = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(B, T)
        attention_mask = attention_mask.float()
        if vision_features is None:
            vision_features = torch.zeros(B, self.cfg['vision_encoder_dim'])
        if has_vision is None:
            has_vision = torch.ones(B, dtype=torch.bool)
        Z = self.text_encoder(input_ids, attention_mask)
        vis = self.vision_encoder(vision_features)
        vis = vis * has_vision[:, None].float()  # text-only rows: vis := 0 (spec §3.4)
        fused = self.fusion(Z, vis)
        e = self.text_to_episode(Z.mean(dim=1))
        if bool(has_vision.any()):
            e = torch.where(has_vision[:, None], e + self.vision_to_episode(vis), e)
        r, w = self.memory.read(e, update=memory_update)
        c = self.memory_to_decoder(r)
        x = self.decoder_input_proj(fused + c[:, None, :])
        logits = self.text_decoder(x, attention_mask)
        return {'logits': logits, 'Z': Z, 'vis': vis, 'fused': fused, 'episode': e, 'r': r, 'w': w, 'c': c, 'dec_in': x}

    @torch.no_grad()
    def generate(self, input_ids, vision_features=None, has_vision=None, max_length=100, temperature=0.0,
                 top_p=1.0, memory_update=True, eos=None, generator=None):
        """Spec §6.1 with §12.4's forward counting: forward on the prompt; per step sample, append,
        stop on EOS, else forward on the extended sequence. Returns tokens, step logits, forwards."""
        eos = self.cfg['vocab_size'] - 1 if eos is None else eos
        ids = input_ids.clone()
        out = self.forward(ids, None, vision_features, has_vision, memory_update)
        forwards = 1
        tokens, step_logits = [], []
        for _ in range(max_length - input_ids.shape[1]):
            logits = out['logits'][:, -1, :]
            step_logits.append(logits[0].clone())
            if temperature == 0:
                tok = int(torch.argmax(logits[0]))
            else:
                lg = logits[0] / temperature
                if top_p < 1.0:
                    sl, si = torch.sort(lg, descending=True)
                    cum = torch.cumsum(F.softmax(sl, dim=-1), dim=-1)
                    remove = cum > top_p
                    remove[1:] = remove[:-1].clone()
                    remove[0] = False
                    lg = lg.clone()
                    lg[si[remove]] = float('-inf')
                tok = int(torch.multinomial(F.softmax(lg, dim=-1), 1, generator=generator))
            tokens.append(tok)
            ids = torch.cat([ids, torch.tensor([[tok]])], dim=1)
            if tok == eos:
                break
            out = self.forward(ids, None, vision_features, has_vision, memory_update)
            forwards += 1
        return tokens, step_logits, forwards


DEFAULT_CONFIG = {
    'vocab_size': 50257, 'text_encoder_dim': 128, 'text_encoder_layers': 4, 'text_encoder_heads': 4,
    'text_decoder_dim': 128, 'text_decoder_layers': 4, 'text_decoder_heads': 4,
    'vision_encoder_dim': 768, 'vision_latent_size': 128, 'vision_hidden_size': 64,
    'fusion_hidden_size': 128, 'fusion_num_heads': 4, 'fusion_num_layers': 2,
    'memory_size': 32, 'episode_dim': 128, 'memory_alpha': 0.2, 'max_seq_len': 256,
}

# The fixture model: small widths, a 512-token vocabulary (the first 511 GPT-2 tokens + <|endoftext|>).
TINY_CONFIG = {
    'vocab_size': 512, 'text_encoder_dim': 32, 'text_encoder_layers': 2, 'text_encoder_heads': 4,
    'text_decoder_dim': 32, 'text_decoder_layers': 2, 'text_decoder_heads': 4,
    'vision_encoder_dim': 768, 'vision_latent_size': 32, 'vision_hidden_size': 16,
    'fusion_hidden_size': 32, 'fusion_num_heads': 4, 'fusion_num_layers': 2,
    'memory_size': 8, 'episode_dim': 32, 'memory_alpha': 0.2, 'max_seq_len': 64,
}


def randomize(model, seed):
    """Random weights at scales that keep every stage lively (not the authors' init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('attention_temperature'):
                p.fill_(0.8)
            elif p.dim() == 2 and 'embedding' in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            elif name.endswith('.bias'):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            else:  # LayerNorm weights
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.1)
        m = model.memory
        K, C = m.memory.shape
        m.memory.copy_(torch.randn(K, C, generator=g))
        m.memory_age.copy_(torch.randint(0, 20, (K,), generator=g).float())
        m.memory_usage.copy_(torch.rand(K, generator=g) * 5)
        m.memory_quality.copy_(torch.rand(K, generator=g) * 3)
        m.memory_importance.copy_(0.2 + torch.rand(K, generator=g) * 1.8)
        m.memory_mean.copy_(torch.randn(C, generator=g) * 0.3)
        m.memory_std.copy_(0.5 + torch.rand(C, generator=g))
        m.update_count.fill_(20)
        # the stored scale buffers are stale on purpose: the engine must ignore them (spec §12.3)
        for mod in model.modules():
            if isinstance(mod, BitLinear):
                mod.weight_scale.fill_(0.123)
                mod.input_scale.fill_(4.56)


# ---- safetensors (minimal, no dependency) -----------------------------------------------------

ST_DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.int64: 'I64', torch.bfloat16: 'BF16', torch.int32: 'I32'}
ST_TORCH = {v: k for k, v in ST_DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {'dtype': ST_DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', {})
    out = {}
    base = 8 + n
    for name, info in header.items():
        a, b = info['data_offsets']
        dt = ST_TORCH[info['dtype']]
        buf = bytearray(data[base + a:base + b])
        if dt == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(buf, dtype=dt) if len(buf) else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info['shape']).clone()
    return out, meta


# ---- fixture writer -----------------------------------------------------------------------------

class FixtureWriter:
    def __init__(self):
        self.index = {}
        self.chunks = []
        self.offset = 0

    def add(self, key, arr):
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        arr = np.asarray(arr)
        if arr.dtype in (np.float64, np.float32):
            arr, dt = arr.astype('<f4'), 'f32'
        elif arr.dtype.kind in 'iu':
            arr, dt = arr.astype('<i4'), 'i32'
        else:
            raise TypeError(f'{key}: dtype {arr.dtype}')
        raw = arr.tobytes()
        self.index[key] = {'offset': self.offset, 'shape': list(arr.shape), 'dtype': dt}
        pad = (4 - len(raw) % 4) % 4
        self.chunks.append(raw + b'\0' * pad)
        self.offset += len(raw) + pad

    def bytes(self):
        return b''.join(self.chunks)


def record_hooks(model, store):
    """Forward hooks recording (x, y) of every BitLinear and every TransformerBlock by name."""
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, (BitLinear, TransformerBlock)):
            def hook(m, inp, out, name=name):
                store.setdefault(name, []).append((inp[0].detach().clone(), out.detach().clone()))
            handles.append(mod.register_forward_hook(hook))
    return handles


def memory_snapshot(model):
    m = model.memory
    return {k: getattr(m, k).detach().clone() for k in
            ['memory', 'memory_age', 'memory_usage', 'memory_quality', 'memory_importance', 'memory_mean', 'memory_std', 'update_count']}


def memory_restore(model, snap):
    m = model.memory
    for k, v in snap.items():
        getattr(m, k).copy_(v)


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def cmd_check_keys(args):
    model = BitMarModel({})
    sd = model.state_dict()
    rows = [l.rstrip('\n').split('\t') for l in open(args.tsv) if l.strip()][1:]
    want = [(r[0], json.loads(r[1]), r[2]) for r in rows]
    got = [(k, list(v.shape), str(v.dtype).replace('torch.', '')) for k, v in sd.items()]
    if got != want:
        gs, ws = set(k for k, _, _ in got), set(k for k, _, _ in want)
        print('missing:', sorted(ws - gs)[:20], 'unexpected:', sorted(gs - ws)[:20])
        for a, b in zip(got, want):
            if a != b:
                print('first difference:', a, b)
                break
        sys.exit(1)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'state_dict matches {args.tsv}: {len(got)} keys in order, {n_params} parameters')


# Prompt ids from the node's gpt2 tokenizer with the fixture's 512-token vocabulary (the first 511
# GPT-2 tokens and merges, then <|endoftext|>); the fixture test re-encodes the texts and checks them.
TEACHER_TEXT = 'the man is in the house and the'
TEACHER_IDS = [83, 258, 285, 272, 318, 287, 262, 289, 280, 325, 290, 262]
PROMPT_TEXT = 'the man is'
PROMPT_IDS = [83, 258, 285, 272, 318]


def cmd_fixtures(args):
    torch.manual_seed(0)
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(TINY_CONFIG)
    model = BitMarModel(cfg).eval()
    randomize(model, seed=1234)
    V = cfg['vocab_size']
    eos = V - 1
    for t in TEACHER_IDS + PROMPT_IDS:
        assert t < eos, 'prompt ids must be in the trimmed vocabulary'
    init_mem = memory_snapshot(model)

    # 1. the checkpoint, as the authors' upload would hold it, and the converted GGUF
    tmp = tempfile.mkdtemp(prefix='r1-fixture-')
    sd = model.state_dict()
    torch.save(sd, os.path.join(tmp, 'pytorch_model.bin'))
    hf_config = {'architectures': ['BitMarModel'], 'model_type': 'bitmar', 'torch_dtype': 'float32', **{k: cfg[k] for k in [
        'vocab_size', 'text_encoder_dim', 'text_encoder_layers', 'text_encoder_heads', 'vision_encoder_dim',
        'vision_latent_size', 'fusion_hidden_size', 'memory_size', 'episode_dim', 'max_seq_len']}, 'dropout': 0.15}
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
        json.dump(hf_config, f, indent=1)
    write_safetensors(os.path.join(out_dir, 'tiny-r1.safetensors'), sd, {'format': 'pt'})
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(hf_config, f, indent=1)
    gguf = os.path.join(out_dir, 'tiny-r1.gguf')
    cli = os.path.join(repo_root(), 'test', 'helpers', 'cli.ts')
    cmd = ['node', '--import', 'tsx', cli, 'convert', os.path.join(tmp, 'pytorch_model.bin'), '--out', gguf, '--name', 'bitmar-r1-tiny-random']
    print('+', ' '.join(cmd))
    subprocess.run(cmd, check=True, cwd=repo_root())

    fx = FixtureWriter()
    g = torch.Generator().manual_seed(99)
    vision = torch.randn(1, cfg['vision_encoder_dim'], generator=g)
    teacher = torch.tensor([TEACHER_IDS])
    fx.add('input/vision', vision[0])
    fx.add('input/teacher_ids', teacher[0])
    fx.add('input/prompt_ids', torch.tensor(PROMPT_IDS))
    scales = {}
    for name, mod in model.named_modules():
        if isinstance(mod, BitLinear):
            scales[name] = float(weight_scale_fp64(mod.weight))

    # 2. scenario A: teacher-forced, with vision, reference memory mode; every layer recorded
    store = {}
    handles = record_hooks(model, store)
    outA = model(teacher, None, vision, None, memory_update=True)
    for h in handles:
        h.remove()
    bitlinears, blocks = [], []
    for name, calls in store.items():
        assert len(calls) == 1, f'{name} ran {len(calls)} times'
        x, y = calls[0]
        x = x.reshape(-1, x.shape[-1])
        y = y.reshape(-1, y.shape[-1])
        kind = 'blk' if isinstance(dict(model.named_modules())[name], TransformerBlock) else 'bl'
        (blocks if kind == 'blk' else bitlinears).append(name)
        fx.add(f'{kind}/{name}/x', x)
        fx.add(f'{kind}/{name}/y', y)
    for k in ['Z', 'vis', 'fused', 'episode', 'r', 'w', 'c', 'dec_in', 'logits']:
        fx.add(f'a/{k}', outA[k][0])
    after = memory_snapshot(model)
    fx.add('a/memory_usage', after['memory_usage'])
    fx.add('a/memory_importance', after['memory_importance'])

    # 3. scenario B: text only (vis := 0, no BL_ve term); C: zero vector without the mask
    memory_restore(model, init_mem)
    outB = model(teacher, None, None, torch.tensor([False]), memory_update=False)
    fx.add('b/logits', outB['logits'][0])
    outC = model(teacher, None, torch.zeros_like(vision), None, memory_update=False)
    fx.add('c/logits', outC['logits'][0])

    # 4. scenario D: a batch of 2, right padding, row 1 text-only; memory updated once with Σ_batch w
    ids2 = torch.tensor([TEACHER_IDS, TEACHER_IDS[:5] + [eos] * (len(TEACHER_IDS) - 5)])
    mask2 = torch.tensor([[1] * len(TEACHER_IDS), [1] * 5 + [0] * (len(TEACHER_IDS) - 5)])
    vis2 = torch.cat([vision, torch.randn(1, cfg['vision_encoder_dim'], generator=g)])
    outD = model(ids2, mask2, vis2, torch.tensor([True, False]), memory_update=True)
    fx.add('d/input_ids', ids2)
    fx.add('d/attention_mask', mask2)
    fx.add('d/vision', vis2)
    fx.add('d/logits', outD['logits'])
    fx.add('d/memory_usage', model.memory.memory_usage)
    fx.add('d/memory_importance', model.memory.memory_importance)

    # 5. scenario E: fresh statistics (update_count 0: the episode is not normalised)
    memory_restore(model, init_mem)
    model.memory.update_count.fill_(0)
    outE = model(teacher, None, vision, None, memory_update=False)
    fx.add('e/logits', outE['logits'][0])
    fx.add('e/r', outE['r'][0])
    memory_restore(model, init_mem)

    # 6. greedy generation, reference memory mode (N+1 forwards) and frozen
    prompt = torch.tensor([PROMPT_IDS])
    n_new = 16
    toks, logits, forwards = model.generate(prompt, vision, None, max_length=len(PROMPT_IDS) + n_new, memory_update=True, eos=eos)
    fx.add('gen/tokens', torch.tensor(toks))
    fx.add('gen/step_logits', torch.stack(logits))
    fx.add('gen/forwards', torch.tensor([forwards]))
    fx.add('gen/memory_usage', model.memory.memory_usage)
    fx.add('gen/memory_importance', model.memory.memory_importance)
    memory_restore(model, init_mem)
    toksF, logitsF, forwardsF = model.generate(prompt, vision, None, max_length=len(PROMPT_IDS) + n_new, memory_update=False, eos=eos)
    fx.add('genf/tokens', torch.tensor(toksF))
    fx.add('genf/step_logits', torch.stack(logitsF))
    # text-only greedy (the reference generate() semantics: zero vector, no mask)
    memory_restore(model, init_mem)
    toksZ, _, _ = model.generate(prompt, torch.zeros_like(vision), None, max_length=len(PROMPT_IDS) + 8, memory_update=False, eos=eos)
    fx.add('genz/tokens', torch.tensor(toksZ))
    memory_restore(model, init_mem)

    meta = {
        'schema': 'bitmar-r1-fixture-v1',
        'gguf': 'tiny-r1.gguf',
        'safetensors': 'tiny-r1.safetensors',
        'bin': 'tiny-r1.bin',
        'config': cfg,
        'teacher_text': TEACHER_TEXT,
        'prompt_text': PROMPT_TEXT,
        'eos': eos,
        'gen_new_tokens': n_new,
        'bitlinears': bitlinears,
        'blocks': blocks,
        'weight_scales': scales,
        'notes': 'tools/reference/r1_reference.py fixtures; torch ' + torch.__version__,
        'index': fx.index,
    }
    with open(os.path.join(out_dir, 'tiny-r1.bin'), 'wb') as f:
        f.write(fx.bytes())
    with open(os.path.join(out_dir, 'tiny-r1.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    print(f'greedy (reference memory): {toks} in {forwards} forwards')
    print(f'greedy (frozen memory):    {toksF}')
    print(f'greedy (zero vision):      {toksZ}')
    sizes = {n: os.path.getsize(os.path.join(out_dir, n)) for n in sorted(os.listdir(out_dir))}
    print('wrote', sizes, 'total', sum(sizes.values()))


FULL_PROMPT_TEXT = 'a man riding a horse on the beach'
FULL_PROMPT_IDS = [64, 582, 10311, 257, 8223, 319, 262, 10481]


def cmd_full_size(args):
    """A paper-size random model (GPT-2 vocabulary, d=128, 4+4 layers, K=32) and the reference's
    greedy caption of FULL_PROMPT_TEXT in reference memory mode (not committed: 86 MB)."""
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    model = BitMarModel({}).eval()
    randomize(model, seed=4321)
    torch.save(model.state_dict(), os.path.join(args.out, 'pytorch_model.bin'))
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump({'architectures': ['BitMarModel'], 'model_type': 'bitmar', **{k: DEFAULT_CONFIG[k] for k in [
            'vocab_size', 'text_encoder_dim', 'text_encoder_layers', 'text_encoder_heads', 'vision_encoder_dim',
            'vision_latent_size', 'fusion_hidden_size', 'memory_size', 'episode_dim', 'max_seq_len']}}, f, indent=1)
    g = torch.Generator().manual_seed(5)
    vision = torch.randn(1, 768, generator=g)
    prompt = torch.tensor([FULL_PROMPT_IDS])
    toks, logits, forwards = model.generate(prompt, vision, None, max_length=len(FULL_PROMPT_IDS) + args.new, memory_update=True, eos=EOS_PAPER)
    ref = {'prompt_text': FULL_PROMPT_TEXT, 'prompt_ids': FULL_PROMPT_IDS, 'vision': vision[0].tolist(), 'tokens': toks,
           'forwards': forwards, 'memory_usage': model.memory.memory_usage.tolist(),
           'memory_importance': model.memory.memory_importance.tolist(),
           'step_top10': [[torch.topk(l, 10).indices.tolist(), torch.topk(l, 10).values.tolist()] for l in logits]}
    with open(os.path.join(args.out, 'reference.json'), 'w') as f:
        json.dump(ref, f)
    print(f'greedy {toks} in {forwards} forwards -> {args.out}')


def cmd_save_checkpoint(args):
    tensors, _ = read_safetensors(args.safetensors)
    from collections import OrderedDict
    sd = OrderedDict(tensors)
    if args.scalar_scales:  # the shapes a post-training save has (spec §12.3)
        for k in list(sd):
            if k.endswith('weight_scale') or k.endswith('input_scale'):
                sd[k] = sd[k].reshape(())
    if args.training:
        obj = {'model_state_dict': sd, 'optimizer_state_dict': {'state': {}, 'param_groups': []},
               'scheduler_state_dict': {}, 'epoch': 3, 'global_step': 1000, 'tokens_processed': 123456,
               'target_tokens': 100000000, 'best_similarity': 0.5,
               'config': {'model': {'text_encoder_heads': args.heads, 'text_decoder_heads': args.heads,
                                    'fusion_num_heads': args.heads, 'memory_alpha': 0.2}}}
    else:
        obj = sd
    torch.save(obj, args.out)
    print(f'wrote {args.out}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('check-keys')
    a.add_argument('--tsv', default=os.path.join(repo_root(), '..', 'shared', 'docs', 'bitmar-r1-state-dict-keys.tsv'))
    a = sub.add_parser('fixtures')
    a.add_argument('--out', default=os.path.join(repo_root(), 'test', 'fixtures', 'r1'))
    a = sub.add_parser('full-size')
    a.add_argument('--out', required=True)
    a.add_argument('--new', type=int, default=16)
    a = sub.add_parser('save-checkpoint')
    a.add_argument('--safetensors', required=True)
    a.add_argument('--out', required=True)
    a.add_argument('--training', action='store_true')
    a.add_argument('--scalar-scales', action='store_true')
    a.add_argument('--heads', type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    {'check-keys': cmd_check_keys, 'fixtures': cmd_fixtures, 'full-size': cmd_full_size, 'save-checkpoint': cmd_save_checkpoint}[args.cmd](args)


if __name__ == '__main__':
    main()
