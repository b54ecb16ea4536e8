"""Python re-implementation of the Shapes world (../shared/docs/shapes-world.md) used as a
stop-gap / augmentation data source for training while (or in addition to) the TypeScript
exporter (tools/train/export-dataset.ts).  Frames are rendered at their full size (160x120 ..
1280x720), optionally brightness-scaled and JPEG-compressed (q 70..95), then area-resized to the
model's square input (PIL BOX filter == box/area resize).

Also writes the BMDS container described in tools/train/README.md so the trainer reads one format.
"""
import io
import json
import struct

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle", "cross"]
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
    "white": (235, 235, 235),
    "purple": (160, 60, 200),
}
COLOUR_NAMES = list(COLOURS)
WORDS = sorted(set(
    "a small large on the left in middle right to of above describe scene how many shapes are there "
    "what color is yes no one two".split() + SHAPES + COLOUR_NAMES))


def _frame_size(rng):
    r = rng.random()
    if r < 0.35:
        return 320, 240
    if r < 0.45:
        return 640, 480
    if r < 0.55:
        return 1280, 720
    if r < 0.62:
        return 160, 120
    while True:  # any size in range, aspect ratio kept within 0.75 .. 2.4
        w = int(rng.integers(160, 1281))
        h = int(rng.integers(120, 721))
        if 0.75 <= w / h <= 2.4:
            return w, h


def _place_one(rng, W, H):
    for _ in range(1000):
        size = "small" if rng.random() < 0.5 else "large"
        lo, hi = (0.14, 0.22) if size == "small" else (0.32, 0.45)
        s = rng.uniform(lo, hi) * H
        if s > W * 0.95:
            continue
        cx = rng.uniform(s / 2, W - s / 2)
        cy = rng.uniform(s / 2, H - s / 2)
        fx = cx / W
        if abs(fx - 1 / 3) < 0.04 or abs(fx - 2 / 3) < 0.04:
            continue
        return dict(size=size, s=s, cx=cx, cy=cy)
    raise RuntimeError("placement failed")


def _place_two(rng, W, H):
    for _ in range(5000):
        objs = []
        for _k in range(2):
            size = "small" if rng.random() < 0.5 else "large"
            lo, hi = (0.14, 0.22) if size == "small" else (0.32, 0.45)
            s = rng.uniform(lo, hi) * H
            cx = rng.uniform(s / 2, W - s / 2) if s < W else W / 2
            cy = rng.uniform(s / 2, H - s / 2)
            objs.append(dict(size=size, s=s, cx=cx, cy=cy))
        a, b = objs
        dx = (b["cx"] - a["cx"]) / W
        dy = (b["cy"] - a["cy"]) / H
        horiz = abs(dx) >= 1.5 * abs(dy)
        vert = abs(dy) >= 1.5 * abs(dx)
        if not (horiz or vert) or max(abs(dx), abs(dy)) < 0.2:
            continue
        gap = 0.04 * W
        # bounding boxes separated by >= gap along x or y
        sepx = abs(a["cx"] - b["cx"]) - (a["s"] + b["s"]) / 2
        sepy = abs(a["cy"] - b["cy"]) - (a["s"] + b["s"]) / 2
        if max(sepx, sepy) < gap:
            continue
        return objs, ("h" if horiz else "v")
    raise RuntimeError("placement failed")


def _draw(draw, shape, colour, s, cx, cy):
    x0, y0, x1, y1 = cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=colour)
    else:
        t = s / 3
        draw.rectangle([x0, cy - t / 2, x1, cy + t / 2], fill=colour)
        draw.rectangle([cx - t / 2, y0, cx + t / 2, y1], fill=colour)


def random_scene(rng, W=None, H=None):
    if W is None:
        W, H = _frame_size(rng)
    n = 1 if rng.random() < 0.5 else 2
    if n == 1:
        objs = [_place_one(rng, W, H)]
        rel = None
    else:
        objs, rel = _place_two(rng, W, H)
    used = set()
    for o in objs:
        while True:
            sh = SHAPES[rng.integers(4)]
            co = COLOUR_NAMES[rng.integers(6)]
            if (sh, co) not in used:
                break
        used.add((sh, co))
        o["shape"], o["colour"] = sh, co
        base = np.array(COLOURS[co])
        o["rgb"] = tuple(int(v) for v in np.clip(base + rng.integers(-15, 16, 3), 0, 255))
    return dict(W=W, H=H, objs=objs, rel=rel)


def caption(scene):
    objs = scene["objs"]
    if len(objs) == 1:
        o = objs[0]
        fx = o["cx"] / scene["W"]
        place = "on the left" if fx < 1 / 3 else ("in the middle" if fx <= 2 / 3 else "on the right")
        return f"a {o['size']} {o['colour']} {o['shape']} {place}"
    a, b = objs
    if scene["rel"] == "h":
        if b["cx"] < a["cx"]:
            a, b = b, a
        return f"a {a['colour']} {a['shape']} to the left of a {b['colour']} {b['shape']}"
    if b["cy"] < a["cy"]:
        a, b = b, a
    return f"a {a['colour']} {a['shape']} above a {b['colour']} {b['shape']}"


def qa_pairs(scene, rng):
    objs = scene["objs"]
    qa = [["describe the scene", caption(scene)],
          ["how many shapes are there", "one" if len(objs) == 1 else "two"]]
    shapes = [o["shape"] for o in objs]
    uniq = [s for s in SHAPES if shapes.count(s) == 1]
    for s in uniq:
        o = [o for o in objs if o["shape"] == s][0]
        qa.append([f"what color is the {s}", o["colour"]])
    present = {(o["colour"], o["shape"]) for o in objs}
    # yes questions for every object, plus the same number of (partly hard) negatives
    for o in objs:
        qa.append([f"is there a {o['colour']} {o['shape']}", "yes"])
    for k in range(max(2, len(objs))):
        for _ in range(100):
            r = rng.random()
            o = objs[rng.integers(len(objs))]
            if r < 0.35:
                c, s = COLOUR_NAMES[rng.integers(6)], o["shape"]
            elif r < 0.7:
                c, s = o["colour"], SHAPES[rng.integers(4)]
            else:
                c, s = COLOUR_NAMES[rng.integers(6)], SHAPES[rng.integers(4)]
            if (c, s) not in present:
                qa.append([f"is there a {c} {s}", "no"])
                break
    return qa


def render(scene, rng, image_size=64, augment=True):
    W, H = scene["W"], scene["H"]
    bg = rng.integers(0, 71, 3).astype(np.float32)
    img = np.empty((H, W, 3), np.float32)
    img[:] = bg
    if rng.random() < 0.5:
        g = rng.uniform(-30, 30)
        img += (np.linspace(0, 1, H, dtype=np.float32) * g)[:, None, None]
    pil = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)
    for o in scene["objs"]:
        _draw(d, o["shape"], o["rgb"], o["s"], o["cx"], o["cy"])
    arr = np.asarray(pil).astype(np.float32)
    sigma = rng.uniform(0, 8)
    if sigma > 0.05:
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * sigma
    if augment and rng.random() < 0.6:
        arr *= rng.uniform(0.9, 1.1)
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    pil = Image.fromarray(arr)
    if augment and rng.random() < 0.5:
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(rng.integers(70, 96)))
        buf.seek(0)
        pil = Image.open(buf).convert("RGB")
    pil = pil.resize((image_size, image_size), Image.BOX)
    return np.asarray(pil, dtype=np.uint8)


def patch_labels(scene, grid=8, res=64):
    """Per patch of a grid x grid patch grid (row-major): 1 + shape index of the object covering the
    largest part of the patch when that cover is >= 10% of the patch (and always each object's best patch), else 0 (background); and the
    same for the colour (1 + colour index)."""
    W, H = scene["W"], scene["H"]
    sx, sy = res / W, res / H
    cover = []
    for o in scene["objs"]:
        im = Image.new("L", (res * 4, res * 4), 0)
        d = ImageDraw.Draw(im)
        s4 = 4
        # draw in a 4x supersampled label canvas with per-axis scaling (the frame is squashed)
        so = dict(o)
        pts_scale = (sx * s4, sy * s4)
        _draw_scaled(d, o["shape"], o["s"], o["cx"], o["cy"], pts_scale)
        a = np.asarray(im, np.float32) / 255.0
        b = res * 4 // grid
        cover.append(a.reshape(grid, b, grid, b).mean((1, 3)).reshape(-1))
    cover = np.stack(cover)
    best = cover.argmax(0)
    ok = cover.max(0) >= 0.1
    for k in range(len(cover)):  # every object labels at least its best-covered patch
        j = cover[k].argmax()
        ok[j], best[j] = True, k
    shp = np.where(ok, [1 + SHAPES.index(scene["objs"][k]["shape"]) for k in best], 0)
    col = np.where(ok, [1 + COLOUR_NAMES.index(scene["objs"][k]["colour"]) for k in best], 0)
    return shp.astype(int).tolist(), col.astype(int).tolist()


def _draw_scaled(draw, shape, s, cx, cy, sc):
    kx, ky = sc
    x0, y0, x1, y1 = (cx - s / 2) * kx, (cy - s / 2) * ky, (cx + s / 2) * kx, (cy + s / 2) * ky
    X, Y = cx * kx, cy * ky
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=255)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=255)
    elif shape == "triangle":
        draw.polygon([(X, y0), (x1, y1), (x0, y1)], fill=255)
    else:
        tx, ty = s / 3 * kx, s / 3 * ky
        draw.rectangle([x0, Y - ty / 2, x1, Y + ty / 2], fill=255)
        draw.rectangle([X - tx / 2, y0, X + tx / 2, y1], fill=255)


def sample(rng, image_size=64, augment=True, labels=False):
    sc = random_scene(rng)
    meta = {"caption": caption(sc), "qa": qa_pairs(sc, rng)}
    if labels:
        meta["patch_shape"], meta["patch_colour"] = patch_labels(sc)
    return render(sc, rng, image_size, augment), meta


def write_bmds(path, images, metas, vocab, image_size):
    with open(path, "wb") as f:
        vj = json.dumps(vocab).encode()
        f.write(b"BMDS" + struct.pack("<IIII", 1, len(images), image_size, len(vj)) + vj)
        for im, m in zip(images, metas):
            f.write(im.tobytes())
            j = json.dumps(m).encode()
            f.write(struct.pack("<H", len(j)) + j)


if __name__ == "__main__":
    import argparse
    import time
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--labels", action="store_true", help="store 8x8 per-patch shape/colour labels")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    ims, ms = [], []
    t0 = time.time()
    for i in range(a.count):
        im, m = sample(rng, a.image_size, labels=a.labels)
        ims.append(im)
        ms.append(m)
        if (i + 1) % 5000 == 0:
            print(i + 1, f"{time.time() - t0:.0f}s", flush=True)
    write_bmds(a.out, ims, ms, WORDS, a.image_size)
    print("wrote", a.out, a.count, f"{time.time() - t0:.0f}s")
