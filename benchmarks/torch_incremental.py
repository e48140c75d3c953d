#!/usr/bin/python3
# The PyTorch peer of a whole `m2kd train` incremental run (one method, one class order), doing
# the same work as src/il/trainer.ts, step for step (docs/methods.md):
#   - data: CIFAR-10 binary files (data_batch_1..5.bin, test_batch.bin), pixels / 255, the first
#     --train-per-class / --test-per-class images of each class in file order, normalised per
#     channel with the (subset) training split's mean and std;
#   - model: ResNet-32 (test/fixtures/torch_models.py, m2kd's names) + the auxiliary head (global
#     average pool + linear on the stage-2 output); both heads grow by n rows per step;
#   - losses: BCE with logits summed and divided by batch x D (D = the dataset's 10 classes);
#     FT: labels; LwF-MC: sigmoid outputs of the model of step t-1 on the old columns; M2KD:
#     group k from teacher k (MMD) on the main head, and on the auxiliary head the same
#     distillation on the old columns + alpha * BCE(aux, labels), lambda = 1;
#   - teacher-output cache: once per step, for every training image and both flips (batches of
#     --eval-batch), stored as probabilities, looked up by (image, flip) each batch;
#   - SGD momentum 0.9, batch 128 (a last partial batch of >= 2 images is kept), MultiStepLR,
#     weight decay 1e-5 in step 1 and 0 afterwards, random horizontal flips;
#   - M2KD pruning (Algorithm 1): owned conv weights (mask >= 1) frozen while a step trains;
#     then per conv layer the lowest round(ratio x free) free weights by magnitude (ties by index)
#     are zeroed and stay free, the others get mask t; fine-tuning trains only mask == t (the
#     learning-rate schedule restarted with the milestones scaled); snapshot of every BN and the
#     head rows; teacher k = conv weights with 1 <= mask <= k + BN and heads of snapshot k (eval);
#   - BN recalibration (--bn-recalibrate, off for CIFAR as in m2kd): reset, one cumulative-average
#     pass over the step's images in train mode without gradients;
#   - evaluation on the test images of the seen classes (arg-max of the main head), and a
#     checkpoint (model, masks, snapshots) written at the end of every step, as `m2kd train
#     --checkpoint-every step` does.
# Tuned like benchmarks/torch_train.py: channels_last, torch.set_num_threads(2), ATEN_CPU_CAPABILITY
# avx512, a malloc that keeps memory, zero_grad(set_to_none), inference_mode for teachers/eval.
#
#   /usr/bin/python3 benchmarks/torch_incremental.py --data DIR --method ft|lwf-mc|m2kd
#       [--order 0,1,...,9] [--classes-per-step 2] [--epochs 2] [--finetune-epochs 1]
#       [--lr 0.2] [--milestones 1] [--train-per-class N] [--test-per-class N] [--seed 1]
# prints one JSON object: wall seconds (whole process from the first import), per-step top-1 and
# the per-step split (train, finetune, teachers, eval, checkpoint seconds).
import time

T_START = time.time()
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_train import bench_env, THREADS  # noqa: E402  (same tuned environment)

if __name__ == "__main__" and os.environ.get("M2KD_TORCH_ENV") != "1":
    os.execve(sys.executable, [sys.executable] + sys.argv, bench_env())

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures"))
from torch_models import ResNet32  # noqa: E402

torch.set_num_threads(THREADS)
CL = torch.channels_last
D = 10  # CIFAR-10 classes


def parse_args(argv):
    a = {"data": None, "method": "ft", "order": ",".join(str(i) for i in range(D)), "classes-per-step": "2",
         "epochs": "2", "finetune-epochs": None, "lr": "0.2", "milestones": None, "gamma": "0.2",
         "batch": "128", "eval-batch": "256", "train-per-class": None, "test-per-class": None, "seed": "1",
         "ratio": None, "bn-recalibrate": "off", "out": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:]
        if k not in a:
            sys.exit(f"unknown option --{k}")
        a[k] = argv[i + 1]
        i += 2
    return a


# ---------------------------------------------------------------- data
def read_cifar10(folder, train_per_class, test_per_class):
    def load(names):
        buf = b"".join(open(os.path.join(folder, n), "rb").read() for n in names)
        rec = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 3073)
        return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)

    def first_per_class(x, y, n):
        if n is None:
            return x, y
        keep, count = [], [0] * D
        for i, l in enumerate(y):
            if count[l] < n:
                count[l] += 1
                keep.append(i)
        return x[keep], y[keep]

    xtr, ytr = first_per_class(*load([f"data_batch_{i}.bin" for i in range(1, 6)]), train_per_class)
    xte, yte = first_per_class(*load(["test_batch.bin"]), test_per_class)
    xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0)
    xte = torch.from_numpy(xte.astype(np.float32) / 255.0)
    mean = xtr.mean(dim=(0, 2, 3), keepdim=True)
    std = xtr.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return (xtr - mean) / std, torch.from_numpy(ytr), (xte - mean) / std, torch.from_numpy(yte)


# ---------------------------------------------------------------- model
class ResNet32Aux(nn.Module):
    """ResNet-32 + an auxiliary head on the stage-2 output; forward -> (logits, aux logits)."""

    def __init__(self, classes):
        super().__init__()
        self.net = ResNet32(classes, 3)
        self.auxfc = nn.Linear(32, classes)

    def forward(self, x):
        n = self.net
        h = F.relu(n.bn1(n.conv1(x)))
        h = n.stage1(h)
        h = n.stage2(h)
        aux = self.auxfc(h.mean(dim=(2, 3)))
        h = n.stage3(h)
        return n.fc(h.mean(dim=(2, 3))), aux

    def grow(self, k):
        for name in ("fc", "auxfc"):
            old = self.net.fc if name == "fc" else self.auxfc
            new = nn.Linear(old.in_features, old.out_features + k)
            with torch.no_grad():
                new.weight[: old.out_features] = old.weight
                new.bias[: old.out_features] = old.bias
            if name == "fc":
                self.net.fc = new
            else:
                self.auxfc = new


def jsround(v):
    """Math.round of JavaScript (half up), which m2kd uses; Python's round() is half-to-even."""
    return int(math.floor(v + 0.5))


def conv_weights(model):
    return [(n, p) for n, p in model.named_parameters() if p.dim() == 4]


def batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def bce(logits, target, denom):
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / denom


class Run:
    def __init__(self, a):
        self.a = a
        self.method = a["method"]
        self.distill = {"ft": "none", "lwf-mc": "last", "m2kd": "multi"}[self.method]
        self.aux = self.method == "m2kd"
        self.prune = self.method == "m2kd"
        self.k = int(a["classes-per-step"])
        self.order = [int(c) for c in a["order"].split(",")]
        self.steps = len(self.order) // self.k
        self.col = {c: j for j, c in enumerate(self.order)}
        self.epochs = int(a["epochs"])
        # as m2kd's api.ts: with --epochs E the paper's schedule (80 epochs, milestone 40) scales
        self.ft_epochs = int(a["finetune-epochs"]) if a["finetune-epochs"] is not None else max(1, jsround(self.epochs / 2))
        self.lr = float(a["lr"])
        self.milestones = ([int(m) for m in a["milestones"].split(",")] if a["milestones"] else
                           [m for m in [max(1, jsround(40 * self.epochs / 80))] if m < self.epochs])
        self.gamma = float(a["gamma"])
        self.bs = int(a["batch"])
        self.ebs = int(a["eval-batch"])
        self.ratio = float(a["ratio"]) if a["ratio"] else (0.8 if self.k >= 20 else 0.75)
        self.recal = a["bn-recalibrate"] == "on"
        torch.manual_seed(int(a["seed"]))
        self.gen = torch.Generator().manual_seed(int(a["seed"]))
        self.model = ResNet32Aux(self.k).to(memory_format=CL)
        self.masks = {n: torch.zeros(p.shape, dtype=torch.uint8) for n, p in conv_weights(self.model)} if self.prune else None
        self.snapshots = {}  # step -> (BN state, fc rows, auxfc rows)
        self.full = {}  # step -> eval-mode copy (LwF-MC)
        self.out = a["out"] or tempfile.mkdtemp(prefix="torch-incremental-")

    def groups_cols(self, t):
        return [(g * self.k, (g + 1) * self.k) for g in range(t)]

    # -- teachers: list of (step, start, end) requests, merged when contiguous (as m2kd's)
    def requests(self, t):
        reqs = []
        for g in range(1, t):
            step = t - 1 if self.distill == "last" else min(g, t - 1)
            s, e = (g - 1) * self.k, g * self.k
            if reqs and reqs[-1][0] == step and reqs[-1][2] == s:
                reqs[-1][2] = e
            else:
                reqs.append([step, s, e])
        return reqs

    def teacher_model(self, step):
        if not self.prune:
            return self.full[step]
        bn_state, fc, auxfc = self.snapshots[step]
        m = ResNet32Aux(fc[0].shape[0]).to(memory_format=CL)
        sd = {k: v for k, v in self.model.state_dict().items() if not k.startswith(("net.fc", "auxfc"))}
        for n, _ in conv_weights(self.model):
            mk = self.masks[n]
            sd[n] = sd[n] * ((mk >= 1) & (mk <= step)).to(sd[n].dtype)
        sd.update(bn_state)
        sd["net.fc.weight"], sd["net.fc.bias"] = fc
        sd["auxfc.weight"], sd["auxfc.bias"] = auxfc
        m.load_state_dict(sd)
        return m.eval()

    def build_cache(self, x, t):
        """Teacher probabilities on the old columns for every (image, flip): [n, 2, cold] x 2."""
        cold = (t - 1) * self.k
        reqs = self.requests(t)
        teachers = {s: self.teacher_model(s) for s in {r[0] for r in reqs}}
        n = x.shape[0]
        main = torch.empty(n, 2, cold)
        aux = torch.empty(n, 2, cold)
        with torch.inference_mode():
            for b in range(0, n, self.ebs):
                xb = x[b : b + self.ebs]
                for f in range(2):
                    xf = (xb.flip(3) if f else xb).contiguous(memory_format=CL)
                    outs = {s: m(xf) for s, m in teachers.items()}
                    for s, st, en in reqs:
                        main[b : b + len(xb), f, st:en] = torch.sigmoid(outs[s][0][:, st:en])
                        aux[b : b + len(xb), f, st:en] = torch.sigmoid(outs[s][1][:, st:en])
        return main, aux

    def train_phase(self, x, cols, t, phase, cache):
        epochs = self.epochs if phase == "train" else self.ft_epochs
        if epochs == 0:
            return
        wd = 1e-5 if t == 1 else 0.0
        opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9, weight_decay=wd)
        ms = self.milestones if phase == "train" else [m2 for m2 in (max(1, jsround(m * self.ft_epochs / self.epochs)) for m in self.milestones) if m2 < self.ft_epochs]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, ms, self.gamma)
        frozen = None
        if self.prune:
            frozen = {n: (self.masks[n] >= 1) if phase == "train" else (self.masks[n] != t) for n in self.masks}
        params = dict(self.model.named_parameters())
        c, cold = t * self.k, (t - 1) * self.k
        n_all = x.shape[0]
        nb = n_all // self.bs + (1 if n_all % self.bs >= 2 else 0) if n_all >= self.bs else (1 if n_all >= 2 else 0)
        self.model.train()
        for _ in range(epochs):
            perm = torch.randperm(n_all, generator=self.gen)
            for b in range(nb):
                idx = perm[b * self.bs : (b + 1) * self.bs]
                n = len(idx)
                flips = torch.rand(n, generator=self.gen) < 0.5
                xb = x[idx]
                xb = torch.where(flips[:, None, None, None], xb.flip(3), xb).contiguous(memory_format=CL)
                cb = cols[idx]
                y = F.one_hot(cb, c).float()
                tmain = y.clone()
                if cache is not None:
                    f = flips.long()
                    tm = cache[0][idx, f]
                    ta = cache[1][idx, f]
                    tmain[:, :cold] = tm
                    newer = cb >= cold
                    tmain[newer, cb[newer]] = 1.0
                logits, auxl = self.model(xb)
                denom = n * D
                loss = bce(logits, tmain, denom)
                if self.aux:
                    lad = 0.5 * bce(auxl, y, denom)
                    if cache is not None and cold > 0:
                        lad = bce(auxl[:, :cold], ta, denom) + lad
                    loss = loss + lad
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if frozen is not None:
                    for name, fz in frozen.items():
                        params[name].grad.masked_fill_(fz, 0.0)
                opt.step()
            sched.step()

    def prune_step(self, t):
        with torch.no_grad():
            for name, p in conv_weights(self.model):
                mk = self.masks[name].view(-1)  # OIHW order, as m2kd's masks
                flat = p.data.contiguous().view(-1)  # a copy when the weight is channels_last
                free = torch.nonzero(mk == 0).view(-1)
                n_prune = jsround(self.ratio * len(free))
                mag = flat[free].abs().double()
                # ties by index: stable sort on magnitude over ascending indices
                order = torch.sort(mag, stable=True).indices
                pruned, kept = free[order[:n_prune]], free[order[n_prune:]]
                flat[pruned] = 0.0
                mk[kept] = t
                p.data.copy_(flat.view(p.shape))

    def recalibrate(self, x):
        bns = batch_norms(self.model)
        saved = [b.momentum for b in bns]
        for b in bns:
            b.reset_running_stats()
        self.model.train()
        with torch.no_grad():
            for i, b0 in enumerate(range(0, x.shape[0], self.bs)):
                xb = x[b0 : b0 + self.bs]
                if len(xb) < 2:
                    break
                for b in bns:
                    b.momentum = 1.0 / (i + 1)
                self.model(xb.contiguous(memory_format=CL))
        for b, m in zip(bns, saved):
            b.momentum = m

    def evaluate(self, xte, yte, t):
        seen = self.order[: t * self.k]
        sel = torch.tensor([int(l) in seen for l in yte])
        x, cols = xte[sel], torch.tensor([self.col[int(l)] for l in yte[sel]])
        self.model.eval()
        correct = 0
        with torch.inference_mode():
            for b in range(0, x.shape[0], self.ebs):
                logits, _ = self.model(x[b : b + self.ebs].contiguous(memory_format=CL))
                correct += int((logits.argmax(1) == cols[b : b + self.ebs]).sum())
        self.model.train()
        return correct / max(1, x.shape[0])

    def run(self, xtr, ytr, xte, yte):
        results = []
        for t in range(1, self.steps + 1):
            sec = {"train": 0.0, "finetune": 0.0, "teachers": 0.0, "eval": 0.0, "checkpoint": 0.0}
            if t > 1:
                self.model.grow(self.k)
                self.model.to(memory_format=CL)
            group = self.order[(t - 1) * self.k : t * self.k]
            sel = torch.tensor([int(l) in group for l in ytr])
            x = xtr[sel].contiguous()
            cols = torch.tensor([self.col[int(l)] for l in ytr[sel]])
            t0 = time.time()
            cache = self.build_cache(x, t) if self.distill != "none" and t > 1 else None
            sec["teachers"] = time.time() - t0
            t0 = time.time()
            self.train_phase(x, cols, t, "train", cache)
            sec["train"] = time.time() - t0
            if self.prune:
                t0 = time.time()
                self.prune_step(t)
                self.train_phase(x, cols, t, "finetune", cache)
                sec["finetune"] = time.time() - t0
            if self.recal:
                self.recalibrate(x)
            if self.prune:
                bn_state = {k: v.clone() for k, v in self.model.state_dict().items() if ".bn" in k or k.startswith("net.bn")}
                self.snapshots[t] = (bn_state, (self.model.net.fc.weight.detach().clone(), self.model.net.fc.bias.detach().clone()),
                                     (self.model.auxfc.weight.detach().clone(), self.model.auxfc.bias.detach().clone()))
            elif self.distill == "last":
                m = ResNet32Aux(t * self.k).to(memory_format=CL)
                m.load_state_dict(self.model.state_dict())
                self.full = {t: m.eval()}
            t0 = time.time()
            top1 = self.evaluate(xte, yte, t)
            sec["eval"] = time.time() - t0
            t0 = time.time()
            torch.save({"model": self.model.state_dict(), "masks": self.masks, "snapshots": self.snapshots, "step": t},
                       os.path.join(self.out, f"{self.method}.pt"))
            sec["checkpoint"] = time.time() - t0
            results.append({"step": t, "top1": top1, "seconds": sec})
        return results


def main():
    a = parse_args(sys.argv[1:])
    tpc = int(a["train-per-class"]) if a["train-per-class"] else None
    tepc = int(a["test-per-class"]) if a["test-per-class"] else None
    xtr, ytr, xte, yte = read_cifar10(a["data"], tpc, tepc)
    r = Run(a)
    steps = r.run(xtr, ytr, xte, yte)
    print(json.dumps({
        "side": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "malloc": os.environ.get("M2KD_TORCH_MALLOC", "?"), "method": r.method,
        "wall_seconds": time.time() - T_START,
        "top1": [s["top1"] for s in steps],
        "avg_incremental_top1": sum(s["top1"] for s in steps) / len(steps),
        "steps": steps,
    }))


if __name__ == "__main__":
    main()
