"""The `medium` profile: every page says what it changes from the paper and why, runs on the papers' datasets,
and refuses stand-ins unless asked (issue: paper scale on one GPU)."""
from __future__ import annotations

import dataclasses
import re
import warnings

import pytest

from replab import notebooks, profiles
from replab.data import stand_ins
from replab.data.stand_ins import MissingDataset, StandInRefused

PAGES = [p for p in notebooks.discover() if profiles.page_experiments(p.name)]
HEADING = "## The `medium` profile"


def _section(text: str) -> str:
    start = text.find("\n" + HEADING + "\n")
    if start < 0:
        return ""
    rest = text[start + len(HEADING) + 2:]
    end = re.search(r"^#{1,2} ", rest, flags=re.M)
    return rest if end is None else rest[:end.start()]


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    yield tmp_path
    stand_ins.configure(None)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_each_page_says_what_medium_changes_and_why(page):
    text = page.path.read_text(encoding="utf-8")
    section = _section(text)
    assert section, f"{page.name}: no section headed {HEADING!r}"
    assert f'profiles.differences("{page.name}")' in section, f"{page.name}: its {HEADING!r} section does not " \
                                                             f"show profiles.differences(\"{page.name}\")"
    changed = set(profiles.differences(page.name)["parameter"])
    named = set(re.findall(r"`([a-z_0-9]+)`", section))
    assert not changed - named, f"{page.name}: the medium section does not say why {sorted(changed - named)} " \
                                f"differ from the paper's values"


@pytest.mark.parametrize("name", profiles.experiments())
def test_medium_reads_the_papers_datasets(name):
    cls = profiles._class(name)
    values = profiles.table(cls)
    for f in dataclasses.fields(cls):
        medium, full = values["medium"].get(f.name), values["full"].get(f.name)
        if f.metadata.get("dataset") == "each":  # medium may leave some of the paper's datasets out, never swap one
            assert set(medium) <= set(full), f"{name}.{f.name}: medium reads {medium!r}, the paper {full!r}"
        elif f.metadata.get("dataset"):
            assert medium == full, f"{name}.{f.name}: medium reads {medium!r}, the paper {full!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_medium_refuses_stand_ins_unless_asked(page, no_data):
    has_data = any(f.metadata.get("dataset") for cls in profiles.page_experiments(page.name)
                   for f in dataclasses.fields(cls))
    if has_data:
        with pytest.raises((MissingDataset, StandInRefused), match=r"replab data fetch"):
            profiles.resolve_page(page.name, "medium", {})
    else:
        profiles.resolve_page(page.name, "medium", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            configs = profiles.resolve_page(page.name, "medium", {"stand_ins": True})
        except MissingDataset as exc:   # a paper dataset with no offline stand-in (CIFAR-10, CelebA)
            assert "no offline stand-in exists" in str(exc)
            return
    for cfg in configs:
        for f in dataclasses.fields(cfg):
            if f.metadata.get("dataset") == "one":
                assert getattr(cfg, f.name) in stand_ins.PAPER_OF or getattr(cfg, f.name) == "dsprites"
    assert stand_ins.used() or not has_data
