"""Training speed of the engine against a plain training loop written the obvious way.

Two workloads of the issue: the disentanglement_lib conv VAE at batch 64 on 64×64 images, and Peşte et al.'s MLP
VAE on 28×28 images (batch 64), both β-VAE with a Bernoulli decoder and Adam. The engine (``replab.train.train``)
is timed between its first and last step through a callback, so model construction and data preparation are left
out, as they are for the plain loop. Runs alternate (engine, plain, engine, ...) and the median of each is kept.
Prints steps per second and the engine's overhead, which should stay within 5%.

Usage: python benchmarks/training.py [--repeats 3] [--device auto]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.nn import functional as F

os.environ.setdefault("REPLAB_QUIET", "1")

from replab import models as M  # noqa: E402
from replab.runtime import get_device  # noqa: E402
from replab.train import TrainConfig, train  # noqa: E402

WORKLOADS = {
    "conv64 VAE, 64x64, batch 64": (M.Conv64Config(), 30),
    "MLP VAE, 28x28, batch 64": (M.MLPConfig(), 600),
}


def _images(shape, n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, *shape), generator=g) < 0.3).to(torch.uint8) * 255


def engine_rate(cfg, images, steps, warmup, device) -> float:
    marks = {}

    def clock(step, logs):
        if step in (warmup, steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            marks[step] = time.perf_counter()

    config = TrainConfig(cfg, objective="beta_vae", dataset="bench", batch_size=64, steps=steps, lr=1e-4,
                         device=str(device), checkpoint_every=10**9)
    train(config, cache=False, data=images, callbacks=[clock])
    return (steps - warmup) / (marks[steps] - marks[warmup])


def plain_rate(cfg, images, steps, warmup, device) -> float:
    torch.manual_seed(0)
    model = M.build(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = images.to(device) if device.type == "cuda" else images
    n = len(data)
    for step in range(steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x = data[torch.randint(0, n, (64,))].to(device).float() / 255
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decode(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
        loss = rec + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (steps - warmup) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the step counts")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    for label, (cfg, steps) in WORKLOADS.items():
        steps = max(10, int(steps * args.scale * (10 if device.type == "cuda" else 1)))
        warmup = max(3, steps // 10)
        images = _images(M.build(cfg).input_shape)
        eng, pla = [], []
        for _ in range(args.repeats):
            eng.append(engine_rate(cfg, images, steps, warmup, device))
            pla.append(plain_rate(cfg, images, steps, warmup, device))
        e, p = statistics.median(eng), statistics.median(pla)
        print(f"{label}: engine {e:.1f} steps/s, plain loop {p:.1f} steps/s, "
              f"engine overhead {100 * (p / e - 1):+.1f}% (target <= 5%)  "
              f"[engine runs {', '.join(f'{v:.1f}' for v in eng)}; plain {', '.join(f'{v:.1f}' for v in pla)}]")


if __name__ == "__main__":
    main()
