"""Every figure's default grid fits a free Colab T4 session: the cost each notebook estimates on `colab-t4`
(runs, data preparation and judge calls, from the preset's cost model) is at most 4 hours. The planning cells of
a figure notebook (everything before its `## Run` heading) touch no model and no data, so they run here."""
import pytest
from inoculate.cli import figure_slugs
from inoculate.figure import plan_figure

MAX_HOURS = 4.0


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    "A cache with no rewrites: the estimate includes the whole data preparation."
    monkeypatch.setenv('INOCULATE_CACHE', str(tmp_path))


@pytest.mark.parametrize('slug', figure_slugs())
def test_default_grid_fits_four_t4_hours(slug, capsys):
    fig = plan_figure(slug, preset='colab-t4')
    with capsys.disabled(): print(f"\n{slug:20} colab-t4: {fig.estimate}")
    assert fig.design == 'llm' and fig.estimate.runs > 0
    if fig.sources:  # a figure of other figures' runs adds none of its own
        made = {c.as_dict().__repr__() for s in fig.sources for c in plan_figure(s, preset='colab-t4').configs}
        assert {c.as_dict().__repr__() for c in fig.configs} <= made
    else: assert fig.estimate.hours <= MAX_HOURS, str(fig.estimate)


def test_a_larger_grid_is_refused_with_advice():
    from inoculate.figure import BudgetExceeded
    with pytest.raises(BudgetExceeded, match=r"over max_hours=4.0: .* Cut it: seeds="):
        plan_figure('purity', preset='colab-t4', purities=(0, 0.1, 0.25, 0.5, 0.75, 1))
    assert plan_figure('purity', preset='colab-t4', purities=(0, 0.1, 0.25, 0.5, 0.75, 1), max_hours=20).estimate.hours > MAX_HOURS
