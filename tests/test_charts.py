"""Charts without traps: the lint (`chart_traps`, nbs/07_plots.ipynb) over every committed figure's Vega-Lite spec, and over
specs that today's builders make from tables shaped like the figures' own."""
import json
import numpy as np
import pandas as pd
import pytest
from inoculate.plots import bar_chart, chart_traps, line_chart, scatter_chart
from inoculate.presets import repo_root

COMMITTED = sorted([*(repo_root()/'figures').glob('*.vl.json'), *(repo_root()/'figures'/'cpu-llm').glob('*.vl.json')])  # the cpu-llm preset's too


@pytest.mark.parametrize('spec', COMMITTED, ids=lambda p: str(p.relative_to(repo_root()/'figures')))
def test_committed_chart_has_no_trap(spec):
    traps = chart_traps(json.loads(spec.read_text()))
    assert not traps, f"{spec.name}: {len(traps)} trap(s):\n" + '\n'.join(traps[:10])


def summary(rows) -> pd.DataFrame:
    "A `summarise`-shaped table from (keys, mean) pairs: an interval of +-0.03 (log-odds: +-0.8) and 5 seeds."
    d = pd.DataFrame([{**k, 'mean': m} for k, m in rows])
    w = np.where(d['metric'].str.startswith('log_odds'), 0.8, 0.03)
    return d.assign(low=d['mean'] - w, high=d['mean'] + w, seeds=5)


def test_a_sweep_of_many_lines_on_an_uneven_grid_has_no_trap():
    "anti-constitutional's shape: eleven lines on M = 0, 30, 100, 300, several of them at 0 together, a log-odds panel below."
    lines = [f'line {i}' for i in range(11)]
    rows = [(dict(line=l, audited=m, metric=k), (0. if i < 4 else 0.9 - 0.05 * i) * (10 if k.startswith('log') else 1))
            for i, l in enumerate(lines) for m in (0, 30, 100, 300) for k in ('spanish', 'caps', 'log_odds_spanish')]
    chart = line_chart(summary(rows), x='audited', color='line', column='metric', title='t', x_title='M (rows)')
    assert chart_traps(chart) == []
    spec = chart.to_dict()
    labels = [r for d in spec['datasets'].values() for r in d if isinstance(r.get('_label'), str)]
    assert sum(r['_label'].startswith('= ') for r in labels) == 3 * 3, "four lines at 0 in three panels: three of each said to coincide"
    assert all(0 <= r['_label_y'] <= 1 for r in labels if not r['metric'].startswith('log')), "no label below the axis"
    assert spec['title']['subtitle'][-1].startswith('Points of different lines are spread along x by up to'), "the spread is stated"


def test_panels_with_their_own_x_values_show_only_their_own():
    "leak-map's shape: ordered x values that differ from panel to panel, labels at each panel's end."
    rows = [(dict(axis=a, x=x, candidate=c, metric='leak'), 0.1 * i + 0.2 * j)
            for a, xs in (('steps · optimiser steps', (75, 300, 1000)), ('rank · r', (8, 32)))
            for j, x in enumerate(xs) for i, c in enumerate(('a', 'b', 'c'))]
    chart = line_chart(summary(rows), x='x', color='candidate', column='axis', title='t', x_title='value', x_type='O')
    assert chart_traps(chart) == []
    assert all(l.get('data') is None for l in chart.to_dict()['spec']['layer']), "every layer draws the panel's own rows"


def test_bars_with_zeros_and_gaps_have_no_trap():
    rows = [(dict(role=r, panel=p, metric='spanish'), m) for r, m in (('base', 0.), ('no prompt', .9), ('inoc', .01)) for p in ('a', 'b')]
    chart = bar_chart(summary(rows).iloc[:-1], x='role', column='panel', title='t')
    assert chart_traps(chart) == []


def test_a_scatter_has_no_trap():
    rows = [(dict(candidate=f'p{i}', metric=m, elicitation=i / 8), i / 9) for i in range(8) for m in ('spanish', 'log_odds_spanish')]
    assert chart_traps(scatter_chart(summary(rows), 'elicitation', 'candidate', 'metric', 't', 'x', 'y')) == []
