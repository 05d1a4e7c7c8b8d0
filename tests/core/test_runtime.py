import pytest
import torch

from replab import runtime


def test_auto_device_is_cuda_iff_available():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.get_device("auto").type == want
    assert runtime.get_device(None).type == want
    assert runtime.get_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_asking_for_missing_cuda_is_an_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        runtime.get_device("cuda")


def test_seeding_repeats():
    runtime.seed_everything(3)
    a = torch.randn(4)
    g = runtime.seed_everything(3)
    assert torch.equal(a, torch.randn(4))
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=runtime.generator(3)))
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        runtime.seed_everything(-1)


def test_progress_is_quiet_under_tests():
    assert runtime.quiet()
    bar = runtime.progress(range(3))
    assert bar.disable and list(bar) == [0, 1, 2]
