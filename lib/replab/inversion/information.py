"""Information measures from inversion models (Nash et al., 2019, Section 4.1 and Table 1).

* :func:`cross_entropy`: the empirical conditional cross-entropy H*(x|h) = −(1/|T|) Σ log p_θ(x|h) on held-out
  pairs (Eq. 11), in nats per image and bits per dimension; its negative is the paper's NCE, a lower bound on
  I(x; h) up to the constant H(x) (Eq. 9).
* :func:`information_bound`: H*(x) − H*(x|h), with H*(x) the cross-entropy of an unconditional model of the same
  size. H*(x) over-estimates H(x) as H*(x|h) over-estimates H(x|h), so this is an estimate of the Eq. 9 bound
  rather than a guaranteed bound; its differences between layers are exact differences of NCEs.
* :func:`representation_distances`: Table 1's check in representation space: mean L1 distance at a layer between
  a test image's representation and that of its nearest training neighbour (1NN), one inversion sample (IM-S),
  and the closest of several samples (IM-NN); :func:`nearest_training_images` gives those neighbours (Fig. 2).
* :func:`position_error`: Section 5.2's check that samples keep the input's position: the distance between the
  ink centroids (:func:`ink_centroid`) of an input and of its inversion samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_same_rows
from ..runtime import get_device
from .likelihoods import check_images

__all__ = ["CrossEntropy", "image_nll", "cross_entropy", "information_bound", "sample_inversions",
           "representation_distances", "distance_arrays", "nearest_training_images", "ink_centroid",
           "position_error", "position_errors", "pixel_distance", "slant_and_ink"]


@dataclass(frozen=True)
class CrossEntropy:
    """Mean per-image negative log-likelihood of a test set, with its standard error."""

    nats_per_image: float
    stderr_nats: float
    n_dims: int
    n_images: int

    @classmethod
    def of(cls, nll: torch.Tensor, n_dims: int) -> "CrossEntropy":
        """The mean and standard error of per-image NLLs (N,) in nats, over images of ``n_dims`` dimensions."""
        nll = nll.double()
        stderr = float(nll.std() / math.sqrt(len(nll))) if len(nll) > 1 else float("nan")
        return cls(float(nll.mean()), stderr, int(n_dims), len(nll))

    @property
    def bits_per_dim(self) -> float:
        return self.nats_per_image / (self.n_dims * math.log(2.0))

    @property
    def nce(self) -> float:
        """Negative cross-entropy −H*(x|h) in nats per image (the quantity of the paper's Fig. 5)."""
        return -self.nats_per_image

    def as_dict(self) -> dict:
        return {"nats_per_image": self.nats_per_image, "stderr_nats": self.stderr_nats,
                "bits_per_dim": self.bits_per_dim, "nce_nats": self.nce, "n_images": self.n_images}


@torch.no_grad()
def image_nll(model, images: torch.Tensor, context: torch.Tensor | None = None, batch_size: int = 256,
              device: str = "auto") -> torch.Tensor:
    """−log p_θ(x|h) in nats of each of the 8-bit ``images`` (N, C, H, W) under ``model``: float64 of shape (N,).

    ``context`` (N, ...) holds the representations h (``None`` for an unconditional model). Exact discrete
    likelihoods in eval mode. The per-image values pair the cross-entropies of two models on the same images."""
    images = check_images(images, name="images")
    if len(images) == 0:
        raise ValueError("images: needs at least 1 image, got 0")
    if context is not None:
        check_same_rows(images, context, ("images", "context"))
    dev = get_device(device)
    was_training, old = model.training, next(model.parameters()).device
    model.eval().to(dev)
    try:
        nll = torch.cat([model.nll(images[i:i + batch_size].to(dev),
                                   None if context is None else context[i:i + batch_size].to(dev)).double().cpu()
                         for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training).to(old)
    return nll


def cross_entropy(model, images: torch.Tensor, context: torch.Tensor | None = None, batch_size: int = 256,
                  device: str = "auto") -> CrossEntropy:
    """Eq. 11: the empirical cross-entropy −mean log p_θ(x|h) of 8-bit ``images`` (N, C, H, W) under ``model``
    (the mean of :func:`image_nll`, accumulated in float64)."""
    return CrossEntropy.of(image_nll(model, images, context, batch_size, device), images[0].numel())


def information_bound(conditional: CrossEntropy, unconditional: CrossEntropy) -> dict:
    """Eq. 9 with H(x) estimated by an unconditional model: I(x; h) ≳ H*(x) − H*(x|h), nats and bits per dim."""
    if conditional.n_dims != unconditional.n_dims:
        raise ValueError(f"the two cross-entropies are over images of different sizes "
                         f"({conditional.n_dims} and {unconditional.n_dims} dimensions)")
    nats = unconditional.nats_per_image - conditional.nats_per_image
    return {"mi_nats": nats, "mi_bits_per_dim": nats / (conditional.n_dims * math.log(2.0)),
            "h_x_nats": unconditional.nats_per_image, "h_x_given_h_nats": conditional.nats_per_image}


@torch.no_grad()
def sample_inversions(model, context: torch.Tensor, n_samples: int = 1, temperature: float = 1.0, seed: int = 0,
                      batch_size: int = 256, device: str = "auto") -> torch.Tensor:
    """``n_samples`` draws from p_θ(x|h) for each row of ``context``: uint8 of shape (N, n_samples, C, H, W)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    ctx = context.repeat_interleave(n_samples, dim=0)
    x = model.sample(context=ctx, temperature=temperature, seed=seed, batch_size=batch_size, device=device)
    return x.view(len(context), n_samples, *x.shape[1:])


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per unit between rows of a (N, D) and b (N, D) or (N, S, D)."""
    return (a.unsqueeze(1) - b).abs().mean(-1) if b.ndim == 3 else (a - b).abs().mean(-1)


@torch.no_grad()
def distance_arrays(classifier, layer: str, images: torch.Tensor, samples: torch.Tensor,
                    train_images: torch.Tensor, batch_size: int = 500, seed: int = 0) -> dict:
    """Table 1 per test image: the L1 distance per unit at ``layer`` between each image's representation and

    * ``"1NN"``: that of the training image nearest to it in that representation space (L1);
    * ``"IM-S"``: that of one inversion sample (drawn at random among the given ones, with ``seed``);
    * ``"IM-NN"``: the smallest over all the given samples (10 in the paper).

    ``images`` (N, C, H, W) and ``samples`` (N, S, C, H, W) are 8-bit; returns a float tensor (N,) per name.
    """
    if samples.ndim != 5 or samples.shape[0] != images.shape[0] or samples.shape[2:] != images.shape[1:]:
        raise ValueError(f"samples: expected shape ({images.shape[0]}, S, {', '.join(map(str, images.shape[1:]))}),"
                         f" got {tuple(samples.shape)}")
    n, s = samples.shape[:2]
    h = classifier.extract(images, layer, batch_size).flatten(1)
    hs = classifier.extract(samples.reshape(n * s, *samples.shape[2:]), layer, batch_size).flatten(1).view(n, s, -1)
    d_samples = _l1(h, hs)                                                     # (N, S)
    pick = torch.randint(s, (n,), generator=torch.Generator().manual_seed(int(seed)))
    d_nn = torch.full((n,), float("inf"))
    for i in range(0, len(train_images), batch_size):
        ht = classifier.extract(train_images[i:i + batch_size], layer, batch_size).flatten(1)
        d_nn = torch.minimum(d_nn, torch.cdist(h.double(), ht.double(), p=1).min(dim=1).values.float()
                             / h.shape[1])
    return {"1NN": d_nn, "IM-S": d_samples[torch.arange(n), pick], "IM-NN": d_samples.min(dim=1).values}


def representation_distances(classifier, layer: str, images: torch.Tensor, samples: torch.Tensor,
                             train_images: torch.Tensor, batch_size: int = 500, seed: int = 0) -> dict:
    """Table 1: the means over the test images of :func:`distance_arrays` (``"1NN"``, ``"IM-S"``, ``"IM-NN"``)
    and their standard errors (``"1NN_stderr"``, ...)."""
    out = {}
    for name, d in distance_arrays(classifier, layer, images, samples, train_images, batch_size, seed).items():
        n = len(d)
        out[name] = float(d.mean())
        out[name + "_stderr"] = float(d.std() / math.sqrt(n)) if n > 1 else float("nan")
    return out


@torch.no_grad()
def nearest_training_images(classifier, layer: str, images: torch.Tensor, train_images: torch.Tensor) -> torch.Tensor:
    """For each of ``images`` the index of the row of ``train_images`` whose representation at ``layer`` is the
    nearest to its own in L1 distance (the 1NN of Table 1 and Fig. 2)."""
    h = classifier.extract(images, layer).flatten(1).double()
    ht = classifier.extract(train_images, layer).flatten(1).double()
    return torch.cdist(h, ht, p=1).argmin(1)


def ink_centroid(images: torch.Tensor) -> torch.Tensor:
    """The intensity-weighted centre (row, column) of each image (N, 1, H, W) or (..., H, W), in pixels."""
    x = images.float()
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=torch.float32).view(h, 1)
    cols = torch.arange(w, dtype=torch.float32).view(1, w)
    mass = x.sum((-2, -1)).clamp_min(1e-8)
    return torch.stack([(x * rows).sum((-2, -1)) / mass, (x * cols).sum((-2, -1)) / mass], -1).squeeze(-2)


def position_errors(images: torch.Tensor, samples: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Per image, the mean Euclidean distance, times ``scale``, between its ink centroid and its samples'
    ((N, C, H, W) and (N, S, C, H, W)): a float tensor (N,)."""
    if samples.ndim != images.ndim + 1 or samples.shape[0] != images.shape[0]:
        raise ValueError(f"samples: expected shape ({images.shape[0]}, S, ...), got {tuple(samples.shape)}")
    c = ink_centroid(images)                             # (N, 2)
    cs = ink_centroid(samples.flatten(0, 1)).view(samples.shape[0], samples.shape[1], 2)
    return (cs - c[:, None]).norm(dim=-1).mean(1) * scale


def position_error(images: torch.Tensor, samples: torch.Tensor, scale: float = 1.0) -> float:
    """The mean over the images of :func:`position_errors`."""
    return float(position_errors(images, samples, scale).mean())


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per pixel, on the 0–1 scale, between 8-bit images ``a`` (..., C, H, W) and ``b``
    of a shape that broadcasts with it: a float tensor of the broadcast leading shape."""
    return (a.float() - b.float()).abs().mean((-3, -2, -1)) / 255.0


def slant_and_ink(images: torch.Tensor) -> torch.Tensor:
    """Two style features of each grey image (N, 1, H, W): its slant, the shear μ₁₁/μ₀₂ of the ink's second
    moments (column offset per row, what deskewing removes), and its ink, the mean intensity on the 0–1 scale
    (thicker strokes, more ink). Returns (N, 2)."""
    x = images.float().flatten(0, -3)                    # (N, H, W)
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=torch.float32).view(h, 1)
    cols = torch.arange(w, dtype=torch.float32).view(1, w)
    mass = x.sum((-2, -1)).clamp_min(1e-8)
    r0 = (x * rows).sum((-2, -1)) / mass
    c0 = (x * cols).sum((-2, -1)) / mass
    dr, dc = rows - r0.view(-1, 1, 1), cols - c0.view(-1, 1, 1)
    mu11 = (x * dr * dc).sum((-2, -1)) / mass
    mu02 = (x * dr * dr).sum((-2, -1)) / mass
    return torch.stack([mu11 / mu02.clamp_min(1e-8), x.mean((-2, -1)) / 255.0], -1)
