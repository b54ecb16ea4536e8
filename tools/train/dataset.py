"""BMDS loader (format written by tools/train/export-dataset.ts and tools/train/shapes.py),
word tokenizer and training-batch builder."""
import json
import re
import struct

import numpy as np

from model import SPECIALS, PAD, BOS, EOS, UNK

KINDS = ["describe", "count", "color", "yesno"]


def read_bmds(path):
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != b"BMDS":
        raise ValueError(f"{path}: bad magic {buf[:4]!r}")
    ver, count, size, vlen = struct.unpack_from("<IIII", buf, 4)
    if ver != 1:
        raise ValueError(f"{path}: unsupported version {ver}")
    off = 20
    vocab = json.loads(buf[off:off + vlen].decode())
    off += vlen
    n = size * size * 3
    images = np.empty((count, size, size, 3), np.uint8)
    metas = []
    for i in range(count):
        images[i] = np.frombuffer(buf, np.uint8, n, off).reshape(size, size, 3)
        off += n
        (ln,) = struct.unpack_from("<H", buf, off)
        off += 2
        metas.append(json.loads(buf[off:off + ln].decode()))
        off += ln
    return images, metas, vocab, size


def normalize_prompt(s):
    s = re.sub(r"[?.!,]", "", s.strip().lower()).strip()
    return s if s else "describe the scene"


class Tokenizer:
    def __init__(self, words):
        self.tokens = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.index = {w: i for i, w in enumerate(self.tokens)}

    def encode(self, s):
        return [self.index.get(w, UNK) for w in normalize_prompt(s).split()]

    def encode_answer(self, s):
        return [self.index.get(w, UNK) for w in s.strip().lower().split()]

    def decode(self, ids):
        out = []
        for i in ids:
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.tokens[i])
        return " ".join(out)


def kind_of(prompt):
    p = normalize_prompt(prompt)
    if p.startswith("describe"):
        return "describe"
    if p.startswith("how many"):
        return "count"
    if p.startswith("what color"):
        return "color"
    if p.startswith("is there"):
        return "yesno"
    return "other"


class Data:
    """All samples in memory; every sample keeps its tokenised prompts/answers grouped by kind."""

    def __init__(self, paths, tok=None, image_size=None):
        ims, metas, words = [], [], []
        for p in paths:
            im, me, vocab, size = read_bmds(p)
            ims.append(im)
            metas += me
            words += [w for w in vocab if w not in words]
            self.size = size
        self.images = np.concatenate(ims) if len(ims) > 1 else ims[0]
        if image_size and image_size != self.size:
            # exact area downscale by an integer factor (box mean of k x k), round halves up like
            # src/model/preprocess.ts; equals a direct area resize up to the first rounding
            k = self.size // image_size
            assert k * image_size == self.size, "only integer downscale factors"
            n = len(self.images)
            out = np.empty((n, image_size, image_size, 3), np.uint8)
            for a in range(0, n, 4096):
                x = self.images[a:a + 4096].astype(np.float32).reshape(-1, image_size, k, image_size, k, 3)
                out[a:a + 4096] = np.floor(x.mean((2, 4)) + 0.5)
            self.images, self.size = out, image_size
        self.tok = tok or Tokenizer(sorted(words))
        self.caption = []
        self.qa = []
        # optional per-patch labels (tools/train/shapes.py --labels): 8x8 grid, -1 = unknown
        self.pshape = np.full((len(metas), 64), -1, np.int64)
        self.pcol = np.full((len(metas), 64), -1, np.int64)
        for i, m in enumerate(metas):
            if "patch_shape" in m:
                self.pshape[i] = m["patch_shape"]
                self.pcol[i] = m["patch_colour"]
        self.labeled = np.nonzero(self.pshape[:, 0] >= 0)[0]
        self.unlabeled = np.nonzero(self.pshape[:, 0] < 0)[0]  # per sample: dict kind -> list of (prompt ids, answer ids, answer str)
        for m in metas:
            self.caption.append(self.tok.encode_answer(m["caption"]))
            d = {k: [] for k in KINDS}
            for p, a in m["qa"]:
                k = kind_of(p)
                if k in d:
                    d[k].append((self.tok.encode(p), self.tok.encode_answer(a), a))
            self.qa.append(d)
        self.n = len(self.images)


def pad(seqs, value=PAD):
    L = max(len(s) for s in seqs)
    out = np.full((len(seqs), L), value, np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


G = 5  # prompt entries per scene: describe, count, colour (or extra no), yes, no


def make_batch(data, idx, rng, narr=0, narr_frames=3):
    """One training batch for scenes idx: G prompt entries per scene (grouped layout [B,G,...]).
    Entry 0 is always the describe prompt (also used by the narration sequences)."""
    prompts, dec_in, dec_tgt, kinds = [], [], [], []
    for i in idx:
        q = data.qa[i]
        yes = [x for x in q["yesno"] if x[2] == "yes"] or q["yesno"] or q["count"]
        no = [x for x in q["yesno"] if x[2] == "no"] or yes
        chosen = [("describe", q["describe"][0]), ("count", q["count"][0])]
        if q["color"]:
            chosen.append(("color", q["color"][rng.integers(len(q["color"]))]))
        else:
            chosen.append(("yesno", no[rng.integers(len(no))]))
        chosen.append(("yesno", yes[rng.integers(len(yes))]))
        chosen.append(("yesno", no[rng.integers(len(no))]))
        for k, (p, a, _s) in chosen:
            prompts.append(p)
            dec_in.append([BOS] + a)
            dec_tgt.append(a + [EOS])
            kinds.append(KINDS.index(k))
    B = len(idx)
    batch = dict(
        images=data.images[idx],
        prompt=pad(prompts).reshape(B, G, -1), dec_in=pad(dec_in).reshape(B, G, -1),
        dec_tgt=pad(dec_tgt, -100).reshape(B, G, -1), kinds=np.array(kinds).reshape(B, G),
        caption=pad([data.caption[i] for i in idx]),
        pshape=data.pshape[idx], pcol=data.pcol[idx],
    )
    if narr > 0:  # narration sequences "<bos> s1 <eos> s2 <eos> s3" over scenes of this batch
        nin, ntg, nseg, nfr = [], [], [], []
        for _ in range(narr):
            frames = []
            cur = int(rng.integers(B))
            for f in range(narr_frames):
                if f > 0 and rng.random() < 0.6:
                    cur = int(rng.integers(B))
                frames.append(cur)
            ii, tt, ss = [], [], []
            for f, b in enumerate(frames):
                cap = data.caption[idx[b]]
                ii += [BOS if f == 0 else EOS] + cap
                tt += cap + [EOS]
                ss += [f] * (len(cap) + 1)
            nin.append(ii)
            ntg.append(tt)
            nseg.append(ss)
            nfr.append(frames)
        batch.update(n_in=pad(nin), n_tgt=pad(ntg, -100), n_seg=pad(nseg, -1), n_frames=np.array(nfr))
    return batch
