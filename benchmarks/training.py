"""Training speed of the engine against a plain training loop written the obvious way.

Two workloads of the issue: the disentanglement_lib conv VAE at batch 64 on 64×64 images, and Peşte et al.'s MLP
VAE on 28×28 images (batch 64), both β-VAE with a Bernoulli decoder and Adam. Each step is timed on its own, in
the engine (``replab.train.train``, through a callback, so everything the engine does between two updates counts)
and in the plain loop, and the rate is one over the median step time after a warm-up: the median keeps the
comparison fair on a machine whose load changes while it runs. Times are wall-clock on a GPU; on a CPU both the
wall clock and the process's own CPU time (``time.process_time``, insensitive to other processes) are reported.
Runs alternate (engine, plain, engine, ...). The engine's overhead should stay within 5%.

Usage: python benchmarks/training.py [--repeats 3] [--device auto] [--threads N] [--scale 1.0]
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
    "conv64 VAE, 64x64, batch 64": (M.Conv64Config(), 40),
    "MLP VAE, 28x28, batch 64": (M.MLPConfig(), 400),
}


def _images(shape, n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, *shape), generator=g) < 0.3).to(torch.uint8) * 255


class _Clock:
    """(wall, cpu) time stamps, one per step, synchronising the GPU first."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.marks = []

    def __call__(self, *_):
        if self.cuda:
            torch.cuda.synchronize()
        self.marks.append((time.perf_counter(), time.process_time()))

    def step_times(self, warmup: int) -> tuple[list[float], list[float]]:
        marks = self.marks[warmup:]
        return tuple([b[i] - a[i] for a, b in zip(marks, marks[1:])] for i in (0, 1))


def engine_steps(cfg, images, steps, warmup, device):
    clock = _Clock(device)
    config = TrainConfig(cfg, objective="beta_vae", dataset="bench", batch_size=64, steps=steps, lr=1e-4,
                         device=str(device), checkpoint_every=10**9)
    train(config, cache=False, data=images, callbacks=[clock])
    return clock.step_times(warmup)


def plain_steps(cfg, images, steps, warmup, device):
    clock = _Clock(device)
    torch.manual_seed(0)
    model = M.build(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = images.to(device) if device.type == "cuda" else images
    n = len(data)
    for step in range(steps):
        x = data[torch.randint(0, n, (64,), device=data.device)].to(device).float() / 255
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decode(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
        loss = rec + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock()
    return clock.step_times(warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the step counts")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="half the steps and two repeats (what `make bench` runs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    for label, (cfg, steps) in WORKLOADS.items():
        steps = max(10, int(steps * args.scale * (0.5 if args.quick else 1) * (10 if cuda else 1)))
        warmup = max(3, steps // 10)
        images = _images(M.build(cfg).input_shape)
        eng, pla = ([], []), ([], [])
        for _ in range(min(args.repeats, 2) if args.quick else args.repeats):
            for into, run in ((eng, engine_steps), (pla, plain_steps)):
                wall, cpu = run(cfg, images, steps, warmup, device)
                into[0].extend(wall)
                into[1].extend(cpu)
        for i, clock in enumerate(("wall", "cpu")[:1 if cuda else 2]):
            e, p = 1 / statistics.median(eng[i]), 1 / statistics.median(pla[i])
            print(f"{label} [{clock} time]: engine {e:.1f} steps/s, plain loop {p:.1f} steps/s, "
                  f"engine overhead {100 * (p / e - 1):+.1f}% (target <= 5%)")


if __name__ == "__main__":
    main()
