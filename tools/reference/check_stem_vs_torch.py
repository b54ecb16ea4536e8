"""Self-check: the numpy reference (GGUF only) against the PyTorch trainer on the convolutional stem.

Builds a small model.py BitMarStream with stem_channels (4, 8) (random init, biases and LayerNorms
perturbed so nothing is trivially zero), exports it with export_gguf.export, and compares on random
uint8 images: the stem output patches (the patch_embed input), V and e of the vision encoder.
Quantisation near-ties (activation int8 rounding, s_w rounding) may rarely flip one code; the
max |diff| of V should otherwise be ~1e-5 or below.

  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 nice -n 15 /usr/bin/python3 tools/reference/check_stem_vs_torch.py
"""
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, HERE)
import export_gguf as eg  # noqa: E402
import model as mdl  # noqa: E402
import stream_reference as sr  # noqa: E402


def main(seed=0, n_images=4, stem=(4, 8), image_size=16, patch_size=4):
    torch.manual_seed(seed)
    vocab = mdl.SPECIALS + [f"w{i}" for i in range(12)]
    cfg = mdl.Config(image_size=image_size, patch_size=patch_size, d=32, heads=2, ff=64, n_vision=2, n_text=1,
                     n_fusion=1, n_decoder=1, text_ctx=8, max_caption_tokens=8, sink_count=2, window_length=4,
                     vocab_size=len(vocab), stem_channels=tuple(stem))
    model = mdl.BitMarStream(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or ".ln" in name:
                p.add_(torch.randn_like(p) * 0.1)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "stem.gguf")
        eg.export(state, cfg.to_dict(), vocab, path, name="check-stem")
        ref = sr.Model(path)
    assert ref.stem == list(stem), ref.stem
    rng = np.random.default_rng(seed + 1)
    imgs = rng.integers(0, 256, (n_images, image_size, image_size, 3)).astype(np.uint8)
    imgs[0] = 0  # flat frames exercise the zero padding at the borders
    imgs[1, :, : image_size // 2] = [255, 0, 0]
    with torch.no_grad():
        t_img = torch.from_numpy(imgs)
        t_patches = mdl.patchify(mdl.conv_stem(model.v, t_img.float() / 127.5 - 1.0), patch_size // 2).numpy()
        tV, te = model.encode_image(t_img)
        tV, te = tV.numpy(), te.numpy()
    worst = dict(patches=0.0, V=0.0, e=0.0)
    for i in range(n_images):
        p = ref.image_patches(imgs[i])
        V, e = ref.encode_image(p)
        d = dict(patches=np.abs(p - t_patches[i]).max(), V=np.abs(V - tV[i]).max(), e=np.abs(e - te[i]).max())
        print(f"image {i}: max|diff| stem patches {d['patches']:.2e} (max|x| {np.abs(p).max():.2f})  "
              f"V {d['V']:.2e} (max|V| {np.abs(V).max():.2f})  e {d['e']:.2e}")
        worst = {k: max(worst[k], d[k]) for k in worst}
    print(f"worst over {n_images} images: stem patches {worst['patches']:.2e}  V {worst['V']:.2e}  e {worst['e']:.2e}")
    return worst


if __name__ == "__main__":
    torch.set_num_threads(1)
    w = main()
    ok = w["patches"] < 1e-5 and w["V"] < 1e-3
    print("OK" if ok else "MISMATCH (a large V diff with tiny patch diff may be a quantisation near-tie flip)")
    sys.exit(0 if ok else 1)
