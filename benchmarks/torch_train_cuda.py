#!/usr/bin/python3
# The PyTorch + cuDNN peer of `m2kd bench train --device cuda`: the same work as
# benchmarks/torch_train.py (ResNet-32 training step at batch 128: forward, softmax CE, backward,
# SGD lr 0.01 momentum 0.9 weight decay 1e-4; eval forward; the ResNet-32 conv shapes forward /
# backward-data / backward-weight in GFLOP/s) on the GPU, cudnn.benchmark on, channels_last,
# each timed call closed by torch.cuda.synchronize(). Then it runs m2kd's CUDA bench in a child
# process and prints both and the ratios m2kd / torch as one JSON object.
# Reconstruction (unless --no-reconstruct): the peer of `m2kd bench reconstruct --device cuda`:
# K pruned ResNet-32s with the auxiliary head (masks from repeated magnitude pruning at 0.75, as
# benchmarks/torch_reconstruct.py builds them), materialised as dense models with zeros and run
# one after the other in eval mode on the GPU (cuDNN, channels_last, inference_mode), against
# m2kd's fused teacher bank (all K in one pass); ratio = m2kd images*models/s over torch's.
# Goals for a GPU day: training >= 1.0x PyTorch+cuDNN, fused reconstruction >= 2x K sequential forwards.
#   /usr/bin/python3 benchmarks/torch_train_cuda.py [--steps N] [--batch N] [--k 4,9,19] [--torch-only] [--no-reconstruct]
# Where torch has no CUDA (or no GPU is present) it prints {"skipped": "<reason>"} and exits 0.
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def skip(reason):
    print(json.dumps({"skipped": reason}))
    sys.exit(0)


try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    skip(f"no torch ({e})")
if not torch.cuda.is_available():
    skip(f"torch {torch.__version__} sees no CUDA device (torch.version.cuda = {torch.version.cuda})")

sys.path.insert(0, os.path.join(ROOT, "test", "fixtures"))
from torch_models import ResNet32  # noqa: E402

torch.backends.cudnn.benchmark = True
DEV = torch.device("cuda")
CL = torch.channels_last
BATCH = arg("--batch", 128)
STEPS = arg("--steps", 20)
REPS = 20


def conv_shapes(batch):  # same list as src/bench/train.ts resnet32ConvShapes
    return [
        ("conv1 3->16 32x32", batch, 3, 32, 32, 16, 3, 1, 1),
        ("stage1 16->16 32x32", batch, 16, 32, 32, 16, 3, 1, 1),
        ("stage2 16->32 s2", batch, 16, 32, 32, 32, 3, 2, 1),
        ("stage2 32->32 16x16", batch, 32, 16, 16, 32, 3, 1, 1),
        ("stage3 32->64 s2", batch, 32, 16, 16, 64, 3, 2, 1),
        ("stage3 64->64 8x8", batch, 64, 8, 8, 64, 3, 1, 1),
    ]


def timed(fn, n):
    out = []
    for _ in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def median(a):
    s = sorted(a)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def torch_bench():
    g = torch.Generator().manual_seed(1)
    model = ResNet32(10, 3).to(DEV, memory_format=CL)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(BATCH, 3, 32, 32, generator=g).to(DEV).contiguous(memory_format=CL)
    y = torch.randint(0, 10, (BATCH,), generator=g).to(DEV)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def eval_step():
        model.eval()
        with torch.inference_mode():
            model(x)

    timed(train_step, 3)
    tr = median(timed(train_step, STEPS))
    timed(eval_step, 2)
    ev = median(timed(eval_step, STEPS))
    convs = []
    for name, n, c, h, w, o, k, s, p in conv_shapes(BATCH):
        xx = torch.randn(n, c, h, w, generator=g).to(DEV).contiguous(memory_format=CL)
        ww = (torch.randn(o, c, k, k, generator=g) * 0.1).to(DEV).contiguous(memory_format=CL)
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        dy = torch.randn(n, o, oh, ow, generator=g).to(DEV).contiguous(memory_format=CL)
        flops = 2 * n * o * oh * ow * c * k * k
        r = {"shape": name}
        for d in ("forward", "backward_data", "backward_weight"):
            def run(d=d):
                with torch.inference_mode():
                    if d == "forward":
                        return F.conv2d(xx, ww, None, s, p)
                    mask = [d == "backward_data", d == "backward_weight", False]
                    return torch.ops.aten.convolution_backward(dy, xx, ww, None, s, p, [1, 1], False, [0, 0], 1, mask)
            timed(run, 3)
            t = median(timed(run, REPS))
            r[f"{d}_gflops"] = flops / t / 1e9
            r[f"{d}_ms"] = t * 1e3
        convs.append(r)
    return {
        "device": "cuda",
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "gpu": torch.cuda.get_device_name(0),
        "batch": BATCH,
        "steps": STEPS,
        "resnet32_train_img_s": BATCH / tr,
        "resnet32_eval_img_s": BATCH / ev,
        "train_step_ms": tr * 1e3,
        "eval_step_ms": ev * 1e3,
        "peak_live_mib": torch.cuda.max_memory_allocated() / 2**20,
        "conv_gflops": convs,
    }


class ResNet32Aux(ResNet32):
    def __init__(self, num_classes, in_channels=3):
        super().__init__(num_classes, in_channels)
        self.auxfc = torch.nn.Linear(32, num_classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h2 = self.stage2(self.stage1(h))
        h3 = self.stage3(h2)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h3, 1), 1)), self.auxfc(torch.flatten(F.adaptive_avg_pool2d(h2, 1), 1))


def pruned_models(steps, ratio=0.75, classes_per_step=5, seed=1):
    # the same construction as benchmarks/torch_reconstruct.py's Workload, on the GPU
    g = torch.Generator().manual_seed(seed)
    base = ResNet32Aux(classes_per_step)
    convs = [n for n, p in base.named_parameters() if n.endswith(".weight") and p.dim() == 4]
    weights = {n: torch.zeros_like(p) for n, p in base.named_parameters() if n in convs}
    masks = {n: torch.zeros(p.shape, dtype=torch.uint8) for n, p in weights.items()}
    models = []
    for s in range(1, steps + 1):
        for n in convs:
            w, m = weights[n], masks[n]
            free = m == 0
            w[free] = torch.randn(int(free.sum()), generator=g) * (2.0 / w[0].numel()) ** 0.5
            idx = free.flatten().nonzero().flatten()
            keep = round((1 - ratio) * idx.numel())
            order = w.flatten()[idx].abs().argsort(descending=True)
            m.view(-1)[idx[order[:keep]]] = s
            w.view(-1)[idx[order[keep:]]] = 0.0
        model = ResNet32Aux(classes_per_step * s)
        with torch.no_grad():
            params = dict(model.named_parameters())
            for n in convs:
                params[n].copy_(weights[n] * ((masks[n] >= 1) & (masks[n] <= s)))
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    c = mod.num_features
                    mod.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.3)
                    mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
                    mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                    mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
        models.append(model.eval().to(DEV, memory_format=CL))
    return models


def torch_reconstruct(ks):
    models = pruned_models(max(ks))
    x = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(2)).to(DEV).contiguous(memory_format=CL)
    out = []
    for k in ks:
        def run(k=k):
            with torch.inference_mode():
                for m in models[:k]:
                    m(x)
        timed(run, 2)
        t = median(timed(run, 10))
        out.append({"K": k, "images_models_per_s": BATCH * k / t, "ms_per_batch": t * 1e3})
    return out


def m2kd_reconstruct(ks):
    cli = os.path.join(ROOT, "dist", "src", "cli", "main.js")
    r = subprocess.run(["node", cli, "bench", "reconstruct", "--device", "cuda", "--json", "--no-shapes", "--batch", str(BATCH),
                        "--k", ",".join(map(str, ks))], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip()}
    return json.loads(r.stdout.strip().splitlines()[-1])


def m2kd_bench():
    cli = os.path.join(ROOT, "dist", "src", "cli", "main.js")
    r = subprocess.run(["node", cli, "bench", "train", "--device", "cuda", "--json", "--steps", str(STEPS),
                        "--batch", str(BATCH)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip()}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    t = torch_bench()
    ks = [int(k) for k in (sys.argv[sys.argv.index("--k") + 1] if "--k" in sys.argv else "4,9,19").split(",")]
    rec = None if "--no-reconstruct" in sys.argv else torch_reconstruct(ks)
    if rec is not None:
        t["reconstruct_sequential"] = rec
    if "--torch-only" in sys.argv:
        print(json.dumps(t, indent=2))
        return
    m = m2kd_bench()
    out = {"torch": t, "m2kd": m}
    if "error" not in m:
        ratio = {k: m[k] / t[k] for k in ("resnet32_train_img_s", "resnet32_eval_img_s")}
        ratio["conv_gflops"] = [
            {"shape": a["shape"], **{f"{d}": a[f"{d}_gflops"] / b[f"{d}_gflops"]
                                     for d in ("forward", "backward_data", "backward_weight")}}
            for a, b in zip(m["conv_gflops"], t["conv_gflops"])
        ]
        out["ratio_m2kd_over_torch"] = ratio
    if rec is not None:
        mr = m2kd_reconstruct(ks)
        out["m2kd_reconstruct"] = mr
        if "error" not in mr:
            out.setdefault("ratio_m2kd_over_torch", {})["reconstruct_fused_over_sequential"] = [
                {"K": a["K"], "ratio": a["images_models_per_s"] / b["images_models_per_s"]} for a, b in zip(mr["results"], rec)]
    print(json.dumps(out, indent=2))


main()
