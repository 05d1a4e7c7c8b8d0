"""`replab similarity`: the grid of saved activations, written as CSV, resumed from its checkpoint."""
import pandas as pd
import pytest
import torch

from replab.cli import main
from replab.similarity import similarity_grid


def _save(tmp_path, seed):
    g = torch.Generator().manual_seed(seed)
    layers = {"conv": torch.randn(30, 50, generator=g), "fc": torch.randn(30, 6, generator=g)}
    path = tmp_path / f"model{seed}.pt"
    torch.save(layers, path)
    return layers, path


def test_writes_the_grid_and_resumes(tmp_path, capsys):
    (a, pa), (b, pb) = _save(tmp_path, 0), _save(tmp_path, 1)
    out, ck = tmp_path / "scores.csv", tmp_path / "ck"
    argv = ["similarity", f"A={pa}", str(pb), "--metrics", "linear_cka,procrustes", "--checkpoint", str(ck),
            "--device", "cpu", "-o", str(out)]
    assert main(argv) == 0
    got = pd.read_csv(out)
    want = similarity_grid({"A": a, "model1": b}, metrics=["linear_cka", "procrustes"], device="cpu")
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-12)
    assert "(2 tiles computed, 0 resumed)" in capsys.readouterr().out
    assert main(argv) == 0
    assert "(0 tiles computed, 2 resumed)" in capsys.readouterr().out


@pytest.mark.parametrize("extra,message", [
    (["--metrics", "cca"], "metrics: expected a non-empty subset"),
    (["--pairs", "A"], "pairs: expected A:B"),
    (["--pairs", "A:Z"], "pairs: unknown model 'Z'"),
])
def test_bad_arguments_exit_2_with_the_problem(tmp_path, capsys, extra, message):
    _, pa = _save(tmp_path, 0)
    assert main(["similarity", f"A={pa}", "--checkpoint", str(tmp_path / "ck"), "-o", str(tmp_path / "o.csv"),
                 *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_or_unreadable_inputs(tmp_path, capsys):
    assert main(["similarity", str(tmp_path / "none.pt"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["similarity", str(bad), "-o", str(tmp_path / "o.csv")]) == 2
    assert "cannot be read as activations" in capsys.readouterr().err


def test_reads_array_folders_of_streamed_captures(tmp_path, capsys):
    # The format of replab.activations' streamed captures: raw float32 files named by an index.
    import json

    from replab.cache import ARRAY_INDEX

    a, pa = _save(tmp_path, 0)
    folder = tmp_path / "streamed"
    folder.mkdir()
    index = []
    for i, (name, t) in enumerate(a.items()):
        (folder / f"{i}.f32").write_bytes(t.contiguous().numpy().tobytes())
        index.append({"name": name, "file": f"{i}.f32", "shape": list(t.shape)})
    (folder / ARRAY_INDEX).write_text(json.dumps({"layers": index}))
    out = tmp_path / "scores.csv"
    assert main(["similarity", f"file={pa}", f"folder={folder}", "--metrics", "linear_cka", "--pairs", "file:folder",
                 "--checkpoint", str(tmp_path / "ck"), "--device", "cpu", "-o", str(out)]) == 0
    got = pd.read_csv(out)
    diagonal = got[got.layer_a == got.layer_b].value.to_numpy()
    assert len(got) == 4 and abs(diagonal - 1).max() < 1e-9  # the same activations read both ways
    (folder / "1.f32").write_bytes(b"\0" * 8)  # truncated
    assert main(["similarity", f"folder={folder}", "-o", str(out)]) == 2
    assert "not an intact array folder" in capsys.readouterr().err
