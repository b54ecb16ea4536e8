"""Train bitmar-stream on Shapes-world BMDS data (resumable; rerun the same command to resume).

  /usr/bin/python3 tools/train/train.py --name r1 --data 'tools/train/data/py_train_*.bin' \
      --val tools/train/data/py_val.bin --steps 8000
"""
import argparse
import re
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import BitMarStream, Config, BOS, EOS, PAD, count_params, masked_mean  # noqa: E402
from dataset import Data, Tokenizer, make_batch, KINDS, pad  # noqa: E402

T = torch.from_numpy


def memory_slots(rng, B, p_own=0.6, kmax=4, p_empty=0.3):
    """Per scene: indices of other scenes' episodes (+ own sometimes); -1 = empty slot."""
    slots = np.full((B, kmax + 1), -1, np.int64)
    for b in range(B):
        if rng.random() < p_empty:
            continue
        k = int(rng.integers(0, kmax + 1))
        others = rng.choice(B - 1, size=k, replace=False)
        others = others + (others >= b)
        s = list(others)
        if rng.random() < p_own:
            s.insert(int(rng.integers(len(s) + 1)), b)
        slots[b, :len(s)] = s
    return slots


def encode_all(model, images, prompt, mem_slots, e_mem=None):
    """images [B,..]; prompt [B,G,T]; mem_slots [B,K] (-1 = empty) indices into e_mem (default:
    this batch's own episodes, detached). Returns V, e, Fused [B,G,T,d], tmask [B,G,T], c [B,G,d]."""
    V, e = model.encode_image(images)
    B, G, Tn = prompt.shape
    tmask = prompt != PAD
    Z, _ = model.encode_text(prompt.reshape(B * G, Tn), tmask.reshape(B * G, Tn))
    Fused = model.fuse(Z.reshape(B, G * Tn, -1), V).view(B, G, Tn, -1)
    if e_mem is None:
        e_mem = e.detach()
    M = e_mem[mem_slots.clamp(min=0)]
    m = model.memory_read(e, M, mem_slots >= 0)
    fm = (Fused * tmask[..., None]).sum(2) / tmask.sum(2, keepdim=True).clamp(min=1)
    return V, e, Fused, tmask, m[:, None] + fm


def grouped_decode(model, V, Fused, tmask, c, dec_in):
    """Decoder for G prompts per image: X = concat(V, Fused of all G prompts), each prompt's
    queries see V and only its own Fused tokens."""
    B, G, Tn, d = Fused.shape
    L = dec_in.shape[2]
    X = torch.cat([V, Fused.reshape(B, G * Tn, d)], 1)
    kv = model.xkv(X)
    S = V.shape[1]
    qg = torch.arange(G).repeat_interleave(L)  # group of each query
    kg = torch.arange(G).repeat_interleave(Tn)
    fm = (qg[:, None] == kg[None, :])[None] & tmask.reshape(B, 1, G * Tn)  # [B,G*L,G*Tn]
    xmask = torch.cat([torch.ones(B, G * L, S, dtype=torch.bool), fm], 2)[:, None]
    return model.decode(dec_in, c, kv, xmask)


def forward_loss(model, batch, rng, args):
    images = T(batch["images"])
    B = images.shape[0]
    V, e, Fused, tmask, c = encode_all(model, images, T(batch["prompt"]), T(memory_slots(rng, B)))
    logits = grouped_decode(model, V, Fused, tmask, c, T(batch["dec_in"]))
    aux_loss = None
    if getattr(args, "aux", None) is not None and (batch["pshape"] >= 0).any():
        tok = V[:, 1:]
        ls = args.aux[0](tok)
        lc = args.aux[1](tok)
        aux_loss = F.cross_entropy(ls.reshape(-1, ls.shape[-1]), T(batch["pshape"]).reshape(-1), ignore_index=-1) + \
            F.cross_entropy(lc.reshape(-1, lc.shape[-1]), T(batch["pcol"]).reshape(-1), ignore_index=-1)
    tgt = T(batch["dec_tgt"])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
    # contrastive e <-> u(caption)
    cap = T(batch["caption"])
    cmask = cap != PAD
    _Zc, uc = model.encode_text(cap, cmask)
    sim = e @ uc.t() / args.tau
    same = (cap[:, None, :] == cap[None, :, :]).all(-1) & ~torch.eye(len(cap), dtype=torch.bool)
    sim = sim.masked_fill(same, float("-inf"))
    lab = torch.arange(len(cap))
    nce = 0.5 * (F.cross_entropy(sim, lab) + F.cross_entropy(sim.t(), lab))
    loss = ce + args.nce_w * nce
    out = dict(ce=ce.item(), nce=nce.item())
    if aux_loss is not None:
        loss = loss + args.aux_w * aux_loss
        out["aux"] = aux_loss.item()
    if "n_in" in batch:
        fr = T(batch["n_frames"])  # [Dn,Fr] scene index per frame
        seg = T(batch["n_seg"])  # [Dn,L]
        Dn, Fr = fr.shape
        X = torch.cat([torch.cat([V[fr[:, f]], Fused[fr[:, f], 0]], 1) for f in range(Fr)], 1)
        S = V.shape[1] + Fused.shape[2]
        kvalid = torch.cat([torch.cat([torch.ones(Dn, V.shape[1], dtype=torch.bool), tmask[fr[:, f], 0]], 1)
                            for f in range(Fr)], 1)
        kseg = torch.arange(Fr).repeat_interleave(S)
        xmask = (kseg[None, None, :] == seg[:, :, None]) & kvalid[:, None, :]
        xmask = xmask | (seg[:, :, None] < 0)  # padded query rows: attend anywhere (ignored)
        cseq = c[fr, 0]  # [Dn,Fr,d]
        ctok = cseq.gather(1, seg.clamp(min=0)[:, :, None].expand(-1, -1, cseq.shape[-1]))
        stream = (model.c.sink_count, model.c.window_length)
        nl = model.decode(T(batch["n_in"])[:, None], ctok[:, None], model.xkv(X), xmask[:, None], stream)
        nce2 = F.cross_entropy(nl.reshape(-1, nl.shape[-1]), T(batch["n_tgt"]).reshape(-1), ignore_index=-100)
        loss = loss + args.narr_w * nce2
        out["narr"] = nce2.item()
    return loss, out


@torch.no_grad()
def greedy(model, images, prompts, mem_idx, max_len=12):
    """images uint8 [B,S,S,3]; prompts list of id lists (one per image); mem_idx [B,K] (-1 empty)
    indices into this batch's own episodes. Returns list of generated id lists."""
    V, e, Fused, tmask, c = encode_all(model, T(images), T(pad(prompts))[:, None], T(mem_idx), None)
    B = len(prompts)
    ids = torch.full((len(prompts), 1), BOS, dtype=torch.long)
    done = torch.zeros(len(prompts), dtype=torch.bool)
    for _ in range(max_len):
        lg = grouped_decode(model, V, Fused, tmask, c, ids[:, None])
        nxt = lg[:, 0, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        ids = torch.cat([ids, nxt[:, None]], 1)
        done |= nxt == EOS
        if done.all():
            break
    return [r[1:].tolist() for r in ids]


@torch.no_grad()
def evaluate(model, val, n, seed=0, bs=256):
    model.eval()
    rng = np.random.default_rng(seed)
    items = []  # (scene, prompt ids, answer str, kind)
    for i in range(min(n, val.n)):
        for k in KINDS:
            for p, _a, s in val.qa[i][k]:
                items.append((i, p, s, k))
    correct = {k: 0 for k in KINDS}
    total = {k: 0 for k in KINDS}
    errors = []
    for s0 in range(0, len(items), bs):
        chunk = items[s0:s0 + bs]
        imgs = val.images[[it[0] for it in chunk]]
        # memory: none
        B = len(chunk)
        mem = np.full((B, 1), -1)  # memory none, like `bitmar-node eval` (default --memory none)
        out = greedy(model, imgs, [it[1] for it in chunk], mem)
        for it, o in zip(chunk, out):
            got = val.tok.decode(o)
            ok = got == " ".join(it[2].split())
            correct[it[3]] += ok
            total[it[3]] += 1
            if not ok and len(errors) < 400:
                errors.append((it[3], it[2], got))
    model.train()
    acc = {k: correct[k] / max(1, total[k]) for k in KINDS}
    acc["overall"] = sum(correct.values()) / max(1, sum(total.values()))
    return acc, errors


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", nargs="+", required=True, help="BMDS files or globs")
    ap.add_argument("--val", required=True)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--nce-w", type=float, default=0.2)
    ap.add_argument("--narr", type=int, default=2, help="narration sequences per batch")
    ap.add_argument("--narr-w", type=float, default=0.3)
    ap.add_argument("--narr-frames", type=int, default=9, help="frames per narration sequence (> S+W tokens)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-min", type=float, default=6.0)
    ap.add_argument("--eval-n", type=int, default=400)
    ap.add_argument("--final-eval-n", type=int, default=1000)
    ap.add_argument("--ckpt-min", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", default="{}", help="JSON overrides of model.Config")
    ap.add_argument("--aux-w", type=float, default=0.0, help="weight of the per-patch shape/colour loss")
    ap.add_argument("--aux-frac", type=float, default=0.4, help="fraction of each batch from labelled samples")
    ap.add_argument("--qk-init-scale", type=float, default=1.0)
    ap.add_argument("--init", default=None, help="initialise weights from another ckpt (new run)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs", args.name)
    os.makedirs(run, exist_ok=True)
    ckpt_path = os.path.join(run, "ckpt.pt")
    log = open(os.path.join(run, "train.log"), "a")

    def say(*a):
        s = " ".join(str(x) for x in a)
        print(s, flush=True)
        log.write(s + "\n")
        log.flush()

    paths = sorted(p for g in args.data for p in glob.glob(g))
    ck = torch.load(ckpt_path) if os.path.exists(ckpt_path) else None
    tok = Tokenizer(ck["vocab"][4:]) if ck else None
    t0 = time.time()
    want = ck["config"]["image_size"] if ck else json.loads(args.config).get("image_size")
    data = Data(paths, tok, want)
    val = Data([args.val], data.tok, want)
    say(f"data {paths} n={data.n} val={val.n} vocab={len(data.tok.tokens)} load {time.time() - t0:.0f}s")

    if ck:
        cfg = Config(**ck["config"])
    else:
        cfg = Config(**{**json.loads(args.config), "vocab_size": len(data.tok.tokens),
                        "image_size": data.size})
    assert cfg.image_size == data.size, "dataset image size != model image size"
    model = BitMarStream(cfg)
    # training-only auxiliary heads (never exported): per-patch shape (5) and colour (7) classes on V
    aux = torch.nn.ModuleList([torch.nn.Linear(cfg.d, 5), torch.nn.Linear(cfg.d, 7)])
    args.aux = aux if args.aux_w > 0 else None
    if args.aux is not None:
        assert cfg.image_size // cfg.patch_size == 8, "patch labels are on an 8x8 grid"
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n]
    nodecay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": nodecay, "weight_decay": 0.0},
                             {"params": list(aux.parameters()), "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    step = 0
    if ck:
        model.load_state_dict(ck["model"])
        if "aux" in ck:
            aux.load_state_dict(ck["aux"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        say(f"resumed from {ckpt_path} at step {step}")
    else:
        with torch.no_grad():  # sharper attention from the start: larger q/k latent weights (s_w scales with them)
            for n_, p_ in model.named_parameters():
                if re.search(r"attn\.[qk]\.weight$", n_):
                    p_.mul_(args.qk_init_scale)
    if not ck and args.init:
        ini = torch.load(args.init)
        own = model.state_dict()
        # a new stem changes the patch-embedding width: take every tensor whose shape still fits
        fit = {k: v for k, v in ini["model"].items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(fit, strict=False)
        say(f"initialised from {args.init} ({len(fit)}/{len(own)} tensors; fresh: {sorted(set(own) - set(fit))})")
    say(f"config {cfg.to_dict()} params {count_params(model)}")

    def save():
        tmp = ckpt_path + ".tmp"
        torch.save(dict(model=model.state_dict(), aux=aux.state_dict(), opt=opt.state_dict(), step=step, config=cfg.to_dict(),
                        vocab=data.tok.tokens, args={k: v for k, v in vars(args).items() if k != "aux"}), tmp)
        os.replace(tmp, ckpt_path)

    import signal
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # kill PID -> save and exit cleanly
    last_ck = last_ev = time.time()
    tstep, nstep = 0.0, 0
    while step < args.steps and not stop:
        rng = np.random.default_rng([args.seed, step])
        if args.aux is not None and len(data.labeled) and len(data.unlabeled):
            k = int(round(args.aux_frac * args.batch))
            idx = np.concatenate([rng.choice(data.labeled, size=k, replace=False),
                                  rng.choice(data.unlabeled, size=args.batch - k, replace=False)])
        else:
            idx = rng.choice(data.n, size=args.batch, replace=False)
        batch = make_batch(data, idx, rng, narr=args.narr, narr_frames=args.narr_frames)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        ts = time.time()
        loss, info = forward_loss(model, batch, rng, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tstep += time.time() - ts
        nstep += 1
        if step % 50 == 0:
            say(f"step {step} loss {loss.item():.4f} " + " ".join(f"{k} {v:.4f}" for k, v in info.items())
                + f" lr {lr_at(step, args):.2e} {tstep / nstep:.3f}s/step")
            tstep, nstep = 0.0, 0
        if time.time() - last_ck > args.ckpt_min * 60 or step == args.steps:
            save()
            last_ck = time.time()
        if time.time() - last_ev > args.eval_min * 60 or step == args.steps:
            te = time.time()
            acc, errs = evaluate(model, val, args.eval_n if step < args.steps else args.final_eval_n)
            say(f"EVAL step {step} " + " ".join(f"{k} {v:.4f}" for k, v in acc.items())
                + f" ({time.time() - te:.0f}s)")
            with open(os.path.join(run, "errors.txt"), "w") as f:
                for e_ in errs:
                    f.write(f"{e_[0]}\t{e_[1]}\t{e_[2]}\n")
            last_ev = time.time()
    save()
    say("stopped (SIGTERM), checkpoint saved" if stop else "done")


if __name__ == "__main__":
    main()
