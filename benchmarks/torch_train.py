#!/usr/bin/python3
# The PyTorch peer of `m2kd bench train`: ResNet-32 (same architecture and names as m2kd's,
# test/fixtures/torch_models.py) training step at batch 128 (forward, softmax CE, backward,
# SGD lr 0.01 momentum 0.9 weight decay 1e-4) and eval forward, and the ResNet-32 conv shapes
# (forward, backward-data, backward-weight through aten::convolution_backward, the kernels
# autograd itself calls) in GFLOP/s.
#
# Tuned for a fair comparison on this CPU: channels_last tensors (oneDNN's fast path),
# torch.set_num_threads(THREADS, default 2), ATEN_CPU_CAPABILITY=avx512, gradients set to None
# instead of zero-filled, inference_mode for eval, and a malloc that keeps memory (jemalloc /
# tcmalloc via LD_PRELOAD when installed, else glibc with large mmap/trim thresholds so the
# ~100 MB of activations per step are not returned to the kernel and re-faulted every step).
# The environment must be in place before Python starts; when it is not, the script re-executes
# itself with it (benchmarks/compare_train.js sets it itself).
#
# Modes:
#   /usr/bin/python3 benchmarks/torch_train.py            one JSON object like `m2kd bench train --json`
#   /usr/bin/python3 benchmarks/torch_train.py --server   line protocol on stdin/stdout:
#       info                 -> {"torch": ..., "threads": ..., "isa": ..., "malloc": ..., "convs": [...]}
#       train N | eval N     -> {"op": "train", "times": [seconds per step x N]}
#       conv I DIR N         -> {"op": "conv", "shape": name, "dir": DIR, "flops": F, "times": [...]}
#                               I: index into the conv shapes, DIR: forward|backward_data|backward_weight
#       quit
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
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
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures"))
from torch_models import ResNet32  # noqa: E402

torch.set_num_threads(THREADS)
CL = torch.channels_last

# name, n, c, h, w, o, k, stride, pad (same list as src/bench/train.ts resnet32ConvShapes)
def conv_shapes(batch):
    return [
        ("conv1 3->16 32x32", batch, 3, 32, 32, 16, 3, 1, 1),
        ("stage1 16->16 32x32", batch, 16, 32, 32, 16, 3, 1, 1),
        ("stage2 16->32 s2", batch, 16, 32, 32, 32, 3, 2, 1),
        ("stage2 32->32 16x16", batch, 32, 16, 16, 32, 3, 1, 1),
        ("stage3 32->64 s2", batch, 32, 16, 16, 64, 3, 2, 1),
        ("stage3 64->64 8x8", batch, 64, 8, 8, 64, 3, 1, 1),
    ]


class Workload:
    def __init__(self, batch=128, classes=10, seed=1):
        torch.manual_seed(seed)
        self.batch = batch
        self.model = ResNet32(classes, 3).to(memory_format=CL)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        self.x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=CL)
        self.y = torch.randint(0, classes, (batch,))

    def train_step(self):
        self.model.train()
        loss = F.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def eval_step(self):
        self.model.eval()
        with torch.inference_mode():
            return self.model(self.x).sum().item()


class ConvCase:
    def __init__(self, spec):
        self.name, n, c, h, w, o, k, s, p = spec
        g = torch.Generator().manual_seed(3)
        self.stride, self.pad = [s, s], [p, p]
        self.x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=CL)
        self.w = (torch.randn(o, c, k, k, generator=g) * 0.1).contiguous(memory_format=CL)
        oh = (h + 2 * p - k) // s + 1
        ow = (w + 2 * p - k) // s + 1
        self.dy = torch.randn(n, o, oh, ow, generator=g).contiguous(memory_format=CL)
        self.flops = 2 * n * o * oh * ow * c * k * k

    def run(self, direction):
        with torch.inference_mode():
            if direction == "forward":
                return F.conv2d(self.x, self.w, None, self.stride, self.pad)
            mask = [direction == "backward_data", direction == "backward_weight", False]
            return torch.ops.aten.convolution_backward(
                self.dy, self.x, self.w, None, self.stride, self.pad, [1, 1], False, [0, 0], 1, mask
            )


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
        "malloc": os.environ.get("M2KD_TORCH_MALLOC", "glibc (default)"),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default"),
        "batch": batch,
        "convs": [s[0] for s in conv_shapes(batch)],
    }


def server(batch=128):
    wl = None
    convs = {}
    out = sys.stdout
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
            elif cmd in ("train", "eval"):
                if wl is None:
                    wl = Workload(batch)
                fn = wl.train_step if cmd == "train" else wl.eval_step
                res = {"op": cmd, "times": timed(fn, int(parts[1]))}
            elif cmd == "conv":
                i, direction, n = int(parts[1]), parts[2], int(parts[3])
                if i not in convs:
                    convs[i] = ConvCase(conv_shapes(batch)[i])
                cc = convs[i]
                res = {"op": "conv", "shape": cc.name, "dir": direction, "flops": cc.flops,
                       "times": timed(lambda: cc.run(direction), n)}
            else:
                res = {"error": f"unknown command {cmd!r}"}
        except Exception as e:  # answer, keep serving
            res = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(res) + "\n")
        out.flush()


def median(a):
    s = sorted(a)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def standalone(batch=128, steps=20, reps=20):
    wl = Workload(batch)
    timed(wl.train_step, 3)
    tr = median(timed(wl.train_step, steps))
    timed(wl.eval_step, 2)
    ev = median(timed(wl.eval_step, steps))
    conv = []
    for spec in conv_shapes(batch):
        cc = ConvCase(spec)
        r = {"shape": cc.name}
        for d in ("forward", "backward_data", "backward_weight"):
            timed(lambda: cc.run(d), 2)
            t = median(timed(lambda: cc.run(d), reps))
            r[f"{d}_gflops"] = cc.flops / t / 1e9
            r[f"{d}_ms"] = t * 1e3
        conv.append(r)
    res = info(batch)
    res.pop("convs")
    res.update({
        "steps": steps,
        "resnet32_train_img_s": batch / tr,
        "resnet32_eval_img_s": batch / ev,
        "train_step_ms": tr * 1e3,
        "eval_step_ms": ev * 1e3,
        "conv_gflops": conv,
    })
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    if "--server" in sys.argv:
        server()
    else:
        standalone()
