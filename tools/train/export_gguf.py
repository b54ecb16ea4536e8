"""Export a bitmar-stream training checkpoint to GGUF (docs/bitmar-stream.md §5).

  /usr/bin/python3 tools/train/export_gguf.py --ckpt tools/train/runs/r1/ckpt.pt \
      --out models/bitmar-stream-shapes.gguf
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

ARCH = "bitmar-stream"


def hparams(cfg):
    return [
        ("image_size", cfg["image_size"]), ("patch_size", cfg["patch_size"]),
        ("embedding_length", cfg["d"]), ("head_count", cfg["heads"]), ("feed_forward_length", cfg["ff"]),
        ("vision.block_count", cfg["n_vision"]), ("text.block_count", cfg["n_text"]),
        ("fusion.block_count", cfg["n_fusion"]), ("decoder.block_count", cfg["n_decoder"]),
        ("text.context_length", cfg["text_ctx"]), ("decoder.max_caption_tokens", cfg["max_caption_tokens"]),
        ("attention.sink_count", cfg["sink_count"]), ("attention.window_length", cfg["window_length"]),
    ]


def gguf_name(torch_name):
    """model.py parameter name -> GGUF tensor base name (without .weight/.bias)."""
    n = torch_name
    if n.startswith("dec."):
        n = "d." + n[4:]
    for a in ("attn", "xattn"):
        for p in "qkvo":
            n = n.replace(f".{a}.{p}.", f".{a}_{p}.")
    n = n.replace(".ffn.up.", ".ffn_up.").replace(".ffn.down.", ".ffn_down.")
    return n


def bitlinear_names(cfg):
    """Base names (model.py naming) of every BitLinear."""
    names = ["v.img_proj", "t.txt_proj", "mem.proj", "dec.lm_head"]
    for stack, n in (("v", cfg["n_vision"]), ("t", cfg["n_text"])):
        for i in range(n):
            names += [f"{stack}.blk.{i}.attn.{p}" for p in "qkvo"] + [f"{stack}.blk.{i}.ffn.up", f"{stack}.blk.{i}.ffn.down"]
    for i in range(cfg["n_fusion"]):
        names += [f"f.blk.{i}.xattn.{p}" for p in "qkvo"] + [f"f.blk.{i}.ffn.up", f"f.blk.{i}.ffn.down"]
    for i in range(cfg["n_decoder"]):
        names += [f"dec.blk.{i}.{a}.{p}" for a in ("attn", "xattn") for p in "qkvo"]
        names += [f"dec.blk.{i}.ffn.up", f"dec.blk.{i}.ffn.down", f"dec.blk.{i}.cond"]
    return names


def stem_channels(cfg):
    """[C1, C2] of the convolutional stem, or [] for the linear patch stem (docs §1, §3)."""
    sc = cfg.get("stem_channels") or ()
    assert len(sc) in (0, 2), sc
    if sc:
        assert cfg["patch_size"] % 2 == 0, "the conv stem needs an even patch size"
    return [int(x) for x in sc]


def stem_weight(w):
    """PyTorch Conv2d weight [out, in, ky, kx] -> GGUF row-major [out, 9*in], each row in (ky, kx, c)
    order (GGUF ne [9*in, out]; docs §5 v.stem1/v.stem2)."""
    w = np.asarray(w, np.float32)
    assert w.ndim == 4 and w.shape[2:] == (3, 3), w.shape
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1))


def export(state, cfg, vocab, out, name="bitmar-stream-shapes", ln_eps=None, rope_base=None):
    """state: dict name -> numpy fp32 array (model.py naming); cfg: Config dict; vocab: token list."""
    w = gw.Writer()
    w.string("general.architecture", ARCH)
    w.string("general.name", name)
    w.u32("general.alignment", gw.ALIGN)
    for k, v in hparams(cfg):
        w.u32(f"{ARCH}.{k}", v)
    stem = stem_channels(cfg)
    assert bool(stem) == ("v.stem1.weight" in state), "stem_channels and the v.stem* tensors must agree"
    if stem:  # optional: absent = linear patch stem (and the old byte-identical layout)
        w.u32s(f"{ARCH}.vision.stem_channels", stem)
    w.f32(f"{ARCH}.rope.freq_base", cfg["rope_base"] if rope_base is None else rope_base)
    w.f32(f"{ARCH}.layer_norm_epsilon", cfg["ln_eps"] if ln_eps is None else ln_eps)
    w.string("tokenizer.ggml.model", "word")
    w.strings("tokenizer.ggml.tokens", vocab)
    w.u32("tokenizer.ggml.bos_token_id", vocab.index("<bos>"))
    w.u32("tokenizer.ggml.eos_token_id", vocab.index("<eos>"))
    w.u32("tokenizer.ggml.padding_token_id", vocab.index("<pad>"))
    w.u32("tokenizer.ggml.unknown_token_id", vocab.index("<unk>"))
    bl = set(bitlinear_names(cfg))
    done = set()
    for base in sorted(bl):
        W = np.asarray(state[base + ".weight"], np.float32)
        t, s = gw.ternarize(W)
        g = gguf_name(base + ".")[:-1]
        w.tensor(g + ".weight", gw.pack_t2(t).view(np.int8), gw.GGML_I8)
        w.tensor(g + ".scale", np.array([s], np.float32))
        done.add(base + ".weight")
        if base + ".bias" in state:
            w.tensor(g + ".bias", np.asarray(state[base + ".bias"], np.float32))
            done.add(base + ".bias")
    for k in sorted(state):
        if k in done:
            continue
        g = gguf_name(k)
        a = np.asarray(state[k], np.float32)
        if k in ("v.stem1.weight", "v.stem2.weight"):
            a = stem_weight(a)
        w.tensor(g, a)
    return w.write(out)


def main():
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="bitmar-stream-shapes")
    a = ap.parse_args()
    ck = torch.load(a.ckpt, map_location="cpu")
    state = {k: v.detach().float().numpy() for k, v in ck["model"].items()}
    n = export(state, ck["config"], ck["vocab"], a.out, a.name)
    print(f"wrote {a.out} ({n} bytes) from step {ck['step']}")


if __name__ == "__main__":
    main()
