"""Training and sampling speed of the conditional PixelCNN++ inversion model (replab.inversion.pixelcnn).

For the paper's sizes (Nash et al., Appendix A: 64 filters and a 256-way softmax at 28×28×1; 196 filters and a
10-component logistic mixture at 32×32×3; three residual layers per block) and the book's ``quick`` size
(32 filters, one residual layer per block), at fp32 and bf16 autocast, it times full training updates
(forward, exact NLL, backward, Adam) in images per second:

* ``baseline``: the model as written, eager, NCHW, fp32: the model without the speed measures;
* ``channels_last``: inputs and weights in channels-last memory layout;
* ``compiled``: channels-last and ``torch.compile`` (fused element-wise ops; skipped with a note where it fails
  on this machine);
* ``baseline-bf16``: the model without the speed measures (eager, NCHW) under bfloat16 autocast (the
  likelihood stays in float32), the bf16 baseline;
* ``bf16``, ``compiled-bf16``: the same speed measures under bfloat16 autocast.

Each row prints the ratio to the baseline of its own precision (``vs baseline``: fp32 rows against
``baseline``, bf16 rows against ``baseline-bf16``) and to the fp32 baseline; on a GPU it also prints the
fraction of the bf16 peak reached (FLOPs counted by ``torch.utils.flop_counter``). Sampling (``H·W`` forward passes in eval mode without gradients,
rows below the current one skipped) is timed in samples per second. ``--quick`` times fewer updates, skips the
paper-size models' sampling and ``torch.compile`` of the paper-size models, and on a CPU times the paper-size
models on batches of 2 with one timed update (a 196-filter update takes tens of seconds per image on 2 cores).

    python benchmarks/pixelcnn.py [--quick] [--device auto] [--batch 16] [--paper-batch 4] [--no-compile]
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch

from replab.inversion import PixelCNNpp
from replab.runtime import get_device

SIZES = {
    "paper-mnist": dict(image_shape=(1, 28, 28), likelihood="softmax", n_filters=64, n_res=3),
    "paper-cifar": dict(image_shape=(3, 32, 32), likelihood="logistic", n_filters=196, n_res=3, n_mix=10),
    "quick-mnist": dict(image_shape=(1, 28, 28), likelihood="softmax", n_filters=32, n_res=1),
    "quick-cifar": dict(image_shape=(3, 32, 32), likelihood="logistic", n_filters=32, n_res=1, n_mix=5),
}
# Dense bf16 tensor-core peaks (TFLOP/s) by device-name fragment; used only to report the fraction reached.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
                    "L40S": 362.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0}


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _make(size, dev, channels_last, seed=0, n_init=16):
    torch.manual_seed(seed)
    m = PixelCNNpp(dropout=0.5, **SIZES[size]).to(dev)
    # Data-dependent initialisation on one batch (two images at least, so every channel has a spread).
    x = torch.randint(0, 256, (max(2, n_init), *SIZES[size]["image_shape"]), device=dev)
    m.initialize(x)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def _step_fn(model, fwd, x, bf16, dev):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    n_dims = x[0].numel()

    def step():
        ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            out = fwd(x)
        loss = -model.likelihood.log_prob(out.float(), x).mean() / n_dims
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _flops(model, x):
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        (-model.likelihood.log_prob(out.float(), x).mean()).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_training(size, variant, dev, batch, n_steps, n_warmup):
    """Images per second of full training updates for one (size, variant); None with a reason if it fails."""
    channels_last = variant in ("channels_last", "compiled", "bf16", "compiled-bf16")
    model = _make(size, dev, channels_last, n_init=min(16, batch))
    x = torch.randint(0, 256, (batch, *SIZES[size]["image_shape"]), device=dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    fwd = model
    if variant.startswith("compiled"):
        fwd = torch.compile(model)
    step = _step_fn(model, fwd, x, variant.endswith("bf16"), dev)
    try:
        for _ in range(n_warmup):
            step()
    except Exception as err:      # torch.compile needs a working C++ toolchain on CPU
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step()
    _sync(dev)
    return batch * n_steps / (time.perf_counter() - t0), _flops(model, x) if variant == "baseline" else None


def time_sampling(size, dev, n):
    model = _make(size, dev, channels_last=False)
    t0 = time.perf_counter()
    model.sample(n, temperature=1.0, seed=0, device=dev)
    _sync(dev)
    return n / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer updates; no paper-size sampling or compilation")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=16, help="batch of the quick-size models")
    p.add_argument("--paper-batch", type=int, default=None,
                   help="batch of the paper-size models (default --batch; 2 with --quick on a CPU)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    p.add_argument("--samples", type=int, default=8, help="images drawn per sampling measurement")
    p.add_argument("--only", choices=("training", "sampling"), default=None, help="time only one of the two")
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated subset of " + ", ".join(SIZES))
    args = p.parse_args(argv)
    dev = get_device(args.device)
    n_steps, n_warmup = (2, 1) if args.quick else (5, 2)
    cpu_quick = args.quick and dev.type == "cpu"
    paper_batch = args.paper_batch or (2 if cpu_quick else args.batch)
    paper_steps = 1 if cpu_quick else n_steps
    peak = None
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        print(f"device: {name} (bf16 peak {peak} TFLOP/s)")
    else:
        print(f"device: CPU, {torch.get_num_threads()} threads")
    print(f"batch {args.batch} (paper sizes {paper_batch}), {n_steps} timed updates (paper sizes {paper_steps}) "
          f"after {n_warmup} warm-up")
    header = (f"{'size':<12} {'variant':<14} {'images/s':>9} {'vs baseline':>11} {'vs fp32':>8} {'TFLOP/s':>8} "
              f"{'of bf16 peak':>12}")
    print(header)
    print("-" * len(header))
    for size in args.sizes.split(",") if args.only != "sampling" else ():
        variants = ["baseline", "channels_last", "compiled", "baseline-bf16", "bf16", "compiled-bf16"]
        if args.no_compile or (args.quick and size.startswith("paper")):
            variants = [v for v in variants if not v.startswith("compiled")]
        paper = size.startswith("paper")
        batch, steps = (paper_batch, paper_steps) if paper else (args.batch, n_steps)
        bases, flops = {}, None
        for variant in variants:
            rate, extra = time_training(size, variant, dev, batch, steps, n_warmup)
            if rate is None:
                print(f"{size:<12} {variant:<14} {'—':>9}   skipped: {extra}")
                continue
            precision = "bf16" if variant.endswith("bf16") else "fp32"
            if variant.startswith("baseline"):
                bases[precision] = rate
            if variant == "baseline":
                flops = extra
            tflops = flops * rate / batch / 1e12 if flops else float("nan")
            frac = f"{tflops / peak:12.1%}" if peak else f"{'—':>12}"
            own = f"{rate / bases[precision]:10.2f}x" if precision in bases else f"{'—':>11}"
            fp32 = f"{rate / bases['fp32']:7.2f}x" if "fp32" in bases else f"{'—':>8}"
            print(f"{size:<12} {variant:<14} {rate:9.3g} {own} {fp32} {tflops:8.3g} {frac}")
    if args.only == "training":
        return
    print()
    print(f"{'size':<12} {'samples':>7} {'samples/s':>10}  (H·W forward passes each, eval, no grad)")
    for size in args.sizes.split(","):
        if args.quick and size.startswith("paper"):
            continue
        n = args.samples
        print(f"{size:<12} {n:>7} {time_sampling(size, dev, n):10.3g}")


if __name__ == "__main__":
    main()
