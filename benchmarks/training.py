"""Training speed of the engine against a plain training loop written the obvious way.

Two workloads of the issue: the disentanglement_lib conv VAE at batch 64 on 64×64 images, and Peşte et al.'s MLP
VAE on 28×28 images (batch 64), both β-VAE with a Bernoulli decoder and Adam. Each step is timed on its own, in
the engine (``replab.train.train``, through a callback, so everything the engine does between two updates counts)
and in the plain loop, and the rate is one over the median step time after a warm-up: the median keeps the
comparison fair on a machine whose load changes while it runs. Times are wall-clock on a GPU; on a CPU both the
wall clock and the process's own CPU time (``time.process_time``, insensitive to other processes) are reported.
Runs alternate (engine, plain, engine, ...). The engine's overhead should stay within 5%.

With ``--stacked`` it measures stacked training instead: K members (seeds) of the conv VAE (64×64, batch 64) and of
the Peşte MLP VAE (batch 100) trained together as one stacked model (``replab.train.train_group``) against the same
K trained one after another (``replab.train.train``), in member-steps per second, for K = 1, 8, 32 (on a CPU K = 1
and 8, and 32 with ``--k 32``), and the conv VAE again with its members cycling through four objectives (β-VAE,
β-TC-VAE, annealed VAE, DIP-VAE-II: one stacked forward pass, each member its own objective's terms); on CUDA it
also prints the fraction of the GPU's bfloat16 peak the stacked run reaches (FLOPs of one member-step counted by
``torch.utils.flop_counter``). ``--fixed-cost`` adds, per workload, the solo step against the same graph at width 1
and batch 1, whose time is the per-step cost that stacking shares among members, and the most that sharing it can
gain while each member's arithmetic costs what it costs alone. ``--amp`` (CUDA) runs both sides with the engine's
bfloat16 autocast of the layers (the objectives stay in float32).

Usage: python benchmarks/training.py [--repeats 3] [--device auto] [--threads N] [--scale 1.0] [--stacked]
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
from replab.train import TrainConfig, train, train_group  # noqa: E402

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


STACKED = {
    "conv VAE 64x64 batch 64": (M.Conv64Config(), 64, False),
    "MLP VAE batch 100": (M.MLPConfig(), 100, False),
    # members of four objectives in one stack, as the Bonheme pages train them on a GPU
    "conv VAE 64x64 batch 64, four objectives": (M.Conv64Config(), 64, True),
}
# dense bfloat16 peak of the GPUs this is run on (FLOP/s), for the fraction printed on CUDA
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


# the four objectives of Bonheme & Grześ's model set, which read one posterior sample and so stack together
MIXED = [("beta_vae", {"beta": 1.0}), ("beta_tc_vae", {"beta": 6.0}),
         ("annealed_vae", {"gamma": 1000.0, "c_max": 25.0, "iteration_threshold": 100_000}),
         ("dip_vae_ii", {"lambda_od": 1.0})]


def _member_configs(cfg, batch, k, steps, device, mixed=False, amp=False):
    """K members (seeds 0..K−1) of a β-VAE, or with ``mixed`` cycling through :data:`MIXED`; ``amp``: the layers
    under bfloat16 autocast (the engine's run setting, CUDA only)."""
    base = TrainConfig(cfg, objective="beta_vae", dataset="bench", batch_size=batch, steps=steps, lr=1e-4,
                       device=str(device), checkpoint_every=10**9, amp=amp)
    objectives = MIXED if mixed else [("beta_vae", {})]
    return [TrainConfig(**{**base.__dict__, "seed": s, "objective": objectives[s % len(objectives)][0],
                           "objective_params": objectives[s % len(objectives)][1]}) for s in range(k)]


def _median_step(fn, warmup) -> float:
    """Median wall time of one update of ``fn(callbacks)`` after ``warmup`` updates."""
    clock = _Clock(torch.device("cuda") if torch.cuda.is_available() and _DEVICE[0].type == "cuda"
                   else torch.device("cpu"))
    fn([clock])
    return statistics.median(clock.step_times(warmup)[0])


_DEVICE = [torch.device("cpu")]


def _flops_per_member_step(cfg, batch, device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = M.build(cfg).to(device)
    x = torch.rand((batch, *model.input_shape), device=device)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        (out.recon.float().mean() + out.mu.mean()).backward()
    return float(counter.get_total_flops())


def stacked(args, device):
    _DEVICE[0] = device
    cuda = device.type == "cuda"
    ks = args.k or ([1, 8, 32] if cuda else [1, 8])
    peak = next((v for name, v in BF16_PEAK.items() if cuda and name in torch.cuda.get_device_name(device)), None)
    for label, (cfg, batch, mixed) in STACKED.items():
        if args.only and args.only not in label:
            continue
        images = _images(M.build(cfg).input_shape, n=max(2048, 4 * batch))
        for k in ks:
            steps = max(6, int((40 if cuda else 8) * args.scale))
            warmup = 2
            configs = _member_configs(cfg, batch, k, steps, device, mixed, amp=args.amp)
            # sequential: the mean over the group's objectives of one solo run's median step
            seq = statistics.mean(
                _median_step(lambda cb, c=c: train(c, cache=False, data=images, callbacks=cb), warmup)
                for c in configs[:len(MIXED) if mixed else 1])
            stk = _median_step(lambda cb: train_group(configs, cache=False, data=[images] * k, callbacks=cb),
                               warmup)
            x, y = k / stk, 1 / seq
            name = label + (", bf16 autocast" if args.amp else "")
            line = f"stacked {name} K={k}: {x:.1f} member-steps/s vs sequential {y:.1f}: {x / y:.2f}x"
            if cuda:
                flops = _flops_per_member_step(cfg, batch, device)
                line += (f" (stacked {x * flops / 1e12:.2f} TFLOP/s"
                         + (f", {100 * x * flops / peak:.2f}% of bf16 peak)" if peak else ")"))
            print(line, flush=True)


# the stacked workloads with every width 1 (2 where a model needs two units) and batches of one: the same
# operations, kernel launches and optimiser loop as the real models, with almost no arithmetic
TINY = {"conv VAE 64x64 batch 64": M.Conv64Config(latent_dim=1, widths=(1, 1, 1, 1), hidden=1),
        "MLP VAE batch 100": M.MLPConfig(latent_dim=1, hidden=(1, 1))}


def fixed_cost(args, device):
    """What stacking can save: the solo step's cost that does not grow with the arithmetic (dispatch, Python,
    launches), measured as the step of the same graph at width 1 and batch 1. A group of K members shares this
    fixed cost; if each member's arithmetic and elementwise work costs what it costs alone, its member-steps/s
    exceed the sequential rate by at most solo / (solo − fixed), whatever K. That assumption holds where a solo
    step's kernels already occupy the processor; on a GPU they leave most of it idle, which is why stacking gains
    more there."""
    for label, tiny in TINY.items():
        cfg, batch, _ = STACKED[label]
        steps, warmup = max(12, int(30 * args.scale)), 4
        images = _images(M.build(cfg).input_shape, n=max(2048, 4 * batch))
        solo = _median_step(lambda cb: train(_member_configs(cfg, batch, 1, steps, device)[0], cache=False,
                                             data=images, callbacks=cb), warmup)
        small = _images(M.build(tiny).input_shape, n=64)
        fixed = _median_step(lambda cb: train(_member_configs(tiny, 1, 1, steps, device)[0], cache=False,
                                              data=small, callbacks=cb), warmup)
        bound = solo / (solo - fixed) if solo > fixed else float("inf")
        print(f"fixed cost {label}: solo step {1e3 * solo:.2f} ms, the same graph at width 1 and batch 1 "
              f"{1e3 * fixed:.2f} ms: sharing it speeds a member-step up by at most {bound:.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the step counts")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="half the steps and two repeats (what `make bench` runs)")
    parser.add_argument("--stacked", action="store_true", help="stacked groups against sequential members")
    parser.add_argument("--k", type=int, nargs="*", default=None, help="group sizes for --stacked")
    parser.add_argument("--only", default=None, help="with --stacked: only the workloads whose name contains this")
    parser.add_argument("--amp", action="store_true",
                        help="with --stacked on CUDA: stacked and sequential runs under bfloat16 autocast")
    parser.add_argument("--fixed-cost", action="store_true",
                        help="with --stacked: also the most that stacking can save (the solo step's fixed cost)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    cuda = device.type == "cuda"
    if args.amp and not (cuda and args.stacked):
        parser.error("--amp: the engine's bfloat16 autocast acts on CUDA only, with --stacked")
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    if args.stacked:
        stacked(args, device)
        if args.fixed_cost:
            fixed_cost(args, device)
        return
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
