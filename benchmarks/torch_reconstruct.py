#!/usr/bin/python3
# The PyTorch peer of `m2kd bench reconstruct`: what a user would run to get the outputs of K
# past models of a pruned ResNet-32 (with the M2KD auxiliary head on stage 2): K masked models
# materialised as ordinary dense models (weights outside [1, k] set to zero), BatchNorm NOT
# folded, run one after the other in eval mode on the same batch (main + auxiliary logits).
# Masks come from repeated magnitude pruning at `ratio` (step s owns the top 1-ratio of the
# weights still free, which get fresh random values before each step); BN and heads random.
#
# A second peer ("folded"): the same K models with every BatchNorm folded into its conv by
# PyTorch itself (torch.jit.trace + torch.jit.freeze, which folds conv-BN, + optimize_for_inference),
# still run one after the other: the fastest a user gets from stock PyTorch without writing kernels.
#
# Tuned like benchmarks/torch_train.py (whose environment setup it reuses): channels_last,
# torch.set_num_threads(2), ATEN_CPU_CAPABILITY=avx512, inference_mode, a malloc that keeps
# memory, short GOMP spin.
#
#   /usr/bin/python3 benchmarks/torch_reconstruct.py [--k 4,9,19] [--batch 128] [--repeats 10]
#   /usr/bin/python3 benchmarks/torch_reconstruct.py --server   line protocol on stdin/stdout:
#       info            -> {"torch": ..., "threads": ..., ...}
#       setup T         -> builds T pruned models (steps 1..T) -> {"op": "setup", "steps": T}
#       run K N [folded] -> {"op": "run", "K": K, "times": [seconds per forward of models 1..K] x N}
#       quit
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# --- environment setup, the same as benchmarks/torch_train.py (copied: that file imports torch
# at module level, so it cannot be imported before the environment is in place)
THREADS = int(os.environ.get("M2KD_TORCH_THREADS", "2"))
BIG = str(1 << 30)


def find_malloc():
    """(name, path) of an installed jemalloc/tcmalloc, or ('glibc', None)."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    for name in ("libjemalloc.so", "libtcmalloc_minimal.so", "libtcmalloc.so"):
        for line in out.splitlines():
            if line.strip().startswith(name) and "=>" in line and "x86-64" in line:
                return name.split(".")[0][3:], line.split("=>")[1].strip()
    return "glibc", None


def bench_env(base=None):
    """The environment the benchmark process should start with."""
    env = dict(os.environ if base is None else base)
    env["ATEN_CPU_CAPABILITY"] = "avx512"
    env["OMP_NUM_THREADS"] = str(THREADS)
    # libgomp spins ~300k iterations at barriers by default; on a machine shared with other
    # processes that makes 2-thread steps several times slower (measured here: 5 s vs 1 s per
    # training step under load). A short spin keeps the quiet-machine speed and degrades gently.
    env.setdefault("GOMP_SPINCOUNT", "20000")
    env["M2KD_TORCH_THREADS"] = str(THREADS)
    name, path = find_malloc()
    if path:
        env["LD_PRELOAD"] = path + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        env["M2KD_TORCH_MALLOC"] = name
    else:
        env["MALLOC_MMAP_THRESHOLD_"] = BIG
        env["MALLOC_TRIM_THRESHOLD_"] = BIG
        env["MALLOC_TOP_PAD_"] = str(1 << 28)
        env["MALLOC_ARENA_MAX"] = "2"
        env["M2KD_TORCH_MALLOC"] = f"glibc (MALLOC_MMAP_THRESHOLD_={BIG} MALLOC_TRIM_THRESHOLD_={BIG} MALLOC_TOP_PAD_={1 << 28} MALLOC_ARENA_MAX=2)"
    env["M2KD_TORCH_ENV"] = "1"
    return env



if __name__ == "__main__" and os.environ.get("M2KD_TORCH_ENV") != "1":
    os.execve(sys.executable, [sys.executable] + sys.argv, bench_env())

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures"))
from torch_models import ResNet32  # noqa: E402

torch.set_num_threads(THREADS)
CL = torch.channels_last


class ResNet32Aux(ResNet32):
    def __init__(self, num_classes, in_channels=3):
        super().__init__(num_classes, in_channels)
        self.auxfc = nn.Linear(32, num_classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h2 = self.stage2(self.stage1(h))
        h3 = self.stage3(h2)
        main = self.fc(torch.flatten(F.adaptive_avg_pool2d(h3, 1), 1))
        aux = self.auxfc(torch.flatten(F.adaptive_avg_pool2d(h2, 1), 1))
        return main, aux


class Workload:
    def __init__(self, steps, batch=128, ratio=0.75, classes_per_step=5, seed=1):
        g = torch.Generator().manual_seed(seed)
        base = ResNet32Aux(classes_per_step)
        convs = [n for n, p in base.named_parameters() if n.endswith(".weight") and p.dim() == 4]
        weights = {n: torch.zeros_like(p) for n, p in base.named_parameters() if n in convs}
        masks = {n: torch.zeros(p.shape, dtype=torch.uint8) for n, p in weights.items()}
        self.models = []
        for s in range(1, steps + 1):
            for n in convs:
                w, m = weights[n], masks[n]
                fan_in = w[0].numel()
                free = m == 0
                w[free] = torch.randn(int(free.sum()), generator=g) * (2.0 / fan_in) ** 0.5
                idx = free.flatten().nonzero().flatten()
                keep = round((1 - ratio) * idx.numel())
                order = w.flatten()[idx].abs().argsort(descending=True)
                mf, wf = m.view(-1), w.view(-1)
                mf[idx[order[:keep]]] = s
                wf[idx[order[keep:]]] = 0.0
            model = ResNet32Aux(classes_per_step * s)
            with torch.no_grad():
                params = dict(model.named_parameters())
                for n in convs:  # teacher s: weights with 1 <= m <= s, dense with zeros
                    params[n].copy_(weights[n] * ((masks[n] >= 1) & (masks[n] <= s)))
                for mod in model.modules():
                    if isinstance(mod, nn.BatchNorm2d):
                        c = mod.num_features
                        mod.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.3)
                        mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
                        mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                        mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            self.models.append(model.eval().to(memory_format=CL))
        self.x = torch.randn(batch, 3, 32, 32, generator=g).contiguous(memory_format=CL)
        self.folded = []

    def fold(self, K):
        """The first K models with BN folded into the convs (frozen TorchScript), built lazily."""
        with torch.no_grad():
            while len(self.folded) < K:
                m = self.models[len(self.folded)]
                fm = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, self.x)))
                for _ in range(2):  # the first calls of a frozen module specialise it
                    fm(self.x)
                self.folded.append(fm)

    def forward(self, K, folded=False):
        if folded:
            self.fold(K)
            with torch.no_grad():
                return [m(self.x) for m in self.folded[:K]]
        with torch.inference_mode():
            outs = [m(self.x) for m in self.models[:K]]
        return outs


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def info(batch):
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "isa": os.environ.get("ATEN_CPU_CAPABILITY", "default"),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "memory_format": "channels_last",
        "bn_folded": "no ('run K N'), or by torch.jit.freeze + optimize_for_inference ('run K N folded')",
        "malloc": os.environ.get("M2KD_TORCH_MALLOC", "glibc (default)"),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default"),
        "batch": batch,
    }


def server(batch):
    wl = None
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        try:
            if cmd == "quit":
                break
            if cmd == "info":
                res = info(batch)
            elif cmd == "setup":
                wl = Workload(int(parts[1]), batch)
                res = {"op": "setup", "steps": int(parts[1])}
            elif cmd == "run":
                K, n = int(parts[1]), int(parts[2])
                folded = len(parts) > 3 and parts[3] == "folded"
                if wl is None or K > len(wl.models):
                    raise ValueError(f"run {K}: set up at least {K} steps first")
                if folded:
                    wl.fold(K)
                res = {"op": "run", "K": K, "folded": folded, "times": timed(lambda: wl.forward(K, folded), n)}
            else:
                res = {"error": f"unknown command {cmd!r}"}
        except Exception as e:  # answer, keep serving
            res = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


def median(a):
    s = sorted(a)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def main():
    args = sys.argv[1:]
    batch = int(args[args.index("--batch") + 1]) if "--batch" in args else 128
    if "--server" in args:
        return server(batch)
    ks = [int(k) for k in (args[args.index("--k") + 1] if "--k" in args else "4,9,19").split(",")]
    reps = int(args[args.index("--repeats") + 1]) if "--repeats" in args else 10
    wl = Workload(max(ks), batch)
    res = info(batch)
    res["results"] = []
    for K in ks:
        row = {"K": K}
        for folded in (False, True):
            timed(lambda: wl.forward(K, folded), 2)
            t = median(timed(lambda: wl.forward(K, folded), reps))
            key = "folded_" if folded else ""
            row[key + "images_models_per_s"] = batch * K / t
            row[key + "ms_per_batch"] = t * 1e3
        res["results"].append(row)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
