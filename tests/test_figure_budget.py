"""Every figure's default grid fits a free Colab T4 session: the cost each notebook estimates on `colab-t4`
(runs, data preparation and judge calls, from the preset's cost model) is at most 4 hours. The planning cells of
a figure notebook (everything before its `## Run` heading) touch no model and no data, so they run here."""
import json, os
from pathlib import Path
import pytest
from inoculate.cli import figure_slugs
from inoculate.presets import repo_root

MAX_HOURS = 4.0


def planning_cells(slug:str) -> list[str]:
    "Sources of the code cells of figure `slug` before its `## Run` heading, the install cell left out."
    cells = json.loads((repo_root()/'nbs'/'figures'/f'{slug}.ipynb').read_text())['cells']
    out = []
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and src.startswith('## Run'): return out
        if c['cell_type'] == 'code' and not src.startswith('#| notest'): out.append(src)
    raise AssertionError(f"{slug} has no '## Run' heading")


def plan(slug:str, **parameters):
    "The `Figure` of notebook `slug` after its planning cells ran with `parameters` injected after its parameters cell."
    ns = {}
    for i, src in enumerate(planning_cells(slug)):
        exec(src, ns)
        if i == 0: ns.update(parameters)  # the parameters cell comes first, as papermill injects after it
    return ns['fig']


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    "A cache with no rewrites: the estimate includes the whole data preparation."
    monkeypatch.setenv('INOCULATE_CACHE', str(tmp_path))


@pytest.mark.parametrize('slug', figure_slugs())
def test_default_grid_fits_four_t4_hours(slug, capsys):
    fig = plan(slug, preset='colab-t4')
    with capsys.disabled(): print(f"\n{slug:20} colab-t4: {fig.estimate}")
    assert fig.design == 'llm' and fig.estimate.runs > 0
    assert fig.estimate.hours <= MAX_HOURS, str(fig.estimate)


def test_a_larger_grid_is_refused_with_advice():
    from inoculate.figure import BudgetExceeded
    with pytest.raises(BudgetExceeded, match=r"over max_hours=4.0: .* Cut it: seeds="):
        plan('purity', preset='colab-t4', purities=(0, 0.1, 0.25, 0.5, 0.75, 1))
    assert plan('purity', preset='colab-t4', purities=(0, 0.1, 0.25, 0.5, 0.75, 1), max_hours=20).estimate.hours > MAX_HOURS
