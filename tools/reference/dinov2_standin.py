#!/usr/bin/python3
"""Tiny DINOv2 stand-ins as ONNX files, and their reference outputs (test/fixtures/r1/).

The node's pixel path for bitmar-r1 (src/model/r1/vision-onnx.ts) runs a user-supplied DINOv2 ONNX
file through onnxruntime-node. A real DINOv2-B is 330 MB, so the tests use small modules with the same
interface: input `pixel_values` float [B, 3, 224, 224], outputs `last_hidden_state` [B, 1+256, 768]
and/or `pooler_output` [B, 768]. Written for Debian's /usr/bin/python3 with python3-torch (1.13);
torch.onnx.export needs no `onnx` Python package.

    /usr/bin/python3 tools/reference/dinov2_standin.py --out test/fixtures/r1

Writes (deterministic, seeded; ≈110 KB in all):
  dinov2-standin.onnx      outputs last_hidden_state and pooler_output, dynamic batch. Its pooler is
                           the token MEAN (HF Dinov2Model's pooler is the CLS token, equal to
                           last_hidden_state[:, 0]): different here so a test can tell which one the
                           node picked.
  dinov2-standin-lhs.onnx  only last_hidden_state, batch fixed to 1 (the node takes the CLS token
                           and runs images one at a time).
  dinov2-bad.onnx          one output "logits" [B, 10]: the node must refuse it with a clear message.
  dinov2-standin.json      the two test images (a formula, see `image()`), the preprocessed pixel
                           checksum and the reference vectors: pooled and CLS of each image.

Test images: `image(w, h)`, pixel (x, y) channel c = (x·7 + y·13 + c·50 + (x·y) % 31) mod 256,
sizes 448×448 and 672×224. Their whole-frame area resize to 224×224 is an exact 2×2 / 3×1 box mean
(= avg_pool2d), rounded halves up to uint8, then (v/255 − mean)/std with the ImageNet mean/std.
"""
import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SIZE = 224
HIDDEN = 768


class StandIn(nn.Module):
    """Patch conv (14×14) → CLS + patch tokens → Linear to 768 → LayerNorm."""

    def __init__(self, ch: int = 8, pooler: bool = True):
        super().__init__()
        self.patch = nn.Conv2d(3, ch, 14, 14)
        self.cls = nn.Parameter(torch.randn(1, 1, ch))
        self.proj = nn.Linear(ch, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)
        self.pooler = pooler

    def forward(self, pixel_values):
        x = self.patch(pixel_values).flatten(2).transpose(1, 2)  # [B, 256, ch]
        cls = self.cls.expand(x.shape[0], -1, -1) + torch.tanh(x.mean(1, keepdim=True))
        h = self.norm(self.proj(torch.cat([cls, x], 1)))  # [B, 257, 768]
        if self.pooler:
            return h, h.mean(1)
        return h


class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 10)

    def forward(self, pixel_values):
        return self.head(pixel_values.mean((2, 3)))


def image(w: int, h: int) -> torch.Tensor:
    """uint8-valued [h, w, 3] float64 tensor (the formula in the module docstring)."""
    y = torch.arange(h, dtype=torch.int64).view(h, 1, 1)
    x = torch.arange(w, dtype=torch.int64).view(1, w, 1)
    c = torch.arange(3, dtype=torch.int64).view(1, 1, 3)
    return ((x * 7 + y * 13 + c * 50 + (x * y) % 31) % 256).to(torch.float64)


def preprocess(img: torch.Tensor) -> torch.Tensor:
    """[h, w, 3] → [3, 224, 224] float32: exact box mean (integer factors), round half up, ImageNet."""
    h, w, _ = img.shape
    assert h % SIZE == 0 and w % SIZE == 0
    chw = img.permute(2, 0, 1).unsqueeze(0)
    v = F.avg_pool2d(chw, (h // SIZE, w // SIZE))[0]
    v = torch.floor(v + 0.5)
    mean = torch.tensor(MEAN, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float64).view(3, 1, 1)
    return ((v / 255.0 - mean) / std).to(torch.float32)


def f32list(t: torch.Tensor):
    """float32 values with 9 significant digits (enough to round-trip a float32)."""
    return [float("%.9g" % v) for v in t.tolist()]


def export(module: nn.Module, path: str, outputs, dynamic: bool) -> None:
    dummy = torch.zeros(1, 3, SIZE, SIZE)
    axes = None
    if dynamic:
        axes = {"pixel_values": {0: "batch"}}
        for o in outputs:
            axes[o] = {0: "batch"}
    torch.onnx.export(module, (dummy,), path, input_names=["pixel_values"], output_names=outputs,
                      dynamic_axes=axes, opset_version=14, do_constant_folding=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures/r1")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(20251127)
    full = StandIn(pooler=True).eval()
    lhs = StandIn(pooler=False).eval()
    lhs.load_state_dict(full.state_dict())  # same weights: its CLS equals the full model's
    bad = Bad().eval()
    export(full, os.path.join(args.out, "dinov2-standin.onnx"), ["last_hidden_state", "pooler_output"], True)
    export(lhs, os.path.join(args.out, "dinov2-standin-lhs.onnx"), ["last_hidden_state"], False)
    export(bad, os.path.join(args.out, "dinov2-bad.onnx"), ["logits"], True)

    sizes = [(448, 448), (672, 224)]
    px = torch.stack([preprocess(image(w, h)) for w, h in sizes])
    with torch.no_grad():
        h, pooled = full(px)
    ref = {
        "schema": "dinov2-standin-v1",
        "size": SIZE,
        "mean": MEAN,
        "std": STD,
        "images": [{"width": w, "height": h_} for w, h_ in sizes],
        # sum and a few entries of the preprocessed tensor [B, 3, 224, 224] (float32 values as float64)
        "pixel_sum": [float(px[b].double().sum()) for b in range(len(sizes))],
        "pixel_probe": [[float(px[b, c, y, x]) for c, y, x in [(0, 0, 0), (1, 100, 37), (2, 223, 223)]] for b in range(len(sizes))],
        "pooler_output": [f32list(pooled[b]) for b in range(len(sizes))],
        "cls": [f32list(h[b, 0]) for b in range(len(sizes))],
    }
    with open(os.path.join(args.out, "dinov2-standin.json"), "w") as f:
        json.dump(ref, f)
    for name in ("dinov2-standin.onnx", "dinov2-standin-lhs.onnx", "dinov2-bad.onnx", "dinov2-standin.json"):
        print(name, os.path.getsize(os.path.join(args.out, name)))


if __name__ == "__main__":
    main()
