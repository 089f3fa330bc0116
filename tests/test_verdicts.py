"""The committed figures' tables and verdicts: one row per (run, condition, metric) in every tidy CSV; verdicts in one of
five outcomes, an opposite interval never lumped with "no effect", every criterion failing on its null distribution;
confirmation seeds that no choice saw; the README's answers are the verdict files; a stray file does not block
`make reproduce`."""
import json, os, re, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from inoculate.figure import MAX_NULL_PASS, VERDICTS, VERDICT_COLUMNS
from inoculate.outputs import REAL_MODEL_PRESET, agreement_markdown, answers_markdown, figures_markdown, verdict_files
from inoculate.presets import COMMITTED_PRESET, EXPLORATION_FIGURES, load_preset, repo_root

FIGURES = repo_root()/'figures'
FOLDERS = {FIGURES: COMMITTED_PRESET, FIGURES/REAL_MODEL_PRESET: REAL_MODEL_PRESET}  # the committed figures of each preset
TIDY = [p for d in FOLDERS for p in sorted(d.glob('*.csv')) if not p.name.endswith('.verdicts.csv') and 'run' in pd.read_csv(p, nrows=0).columns]
CONFIRMATION = [p for d in FOLDERS for p in verdict_files(d)]
PRESET = load_preset(COMMITTED_PRESET)
shown = lambda p: str(p.relative_to(FIGURES))
read = lambda p: pd.read_csv(p, keep_default_na=False)
number = lambda x: float(x) if str(x) not in ('', 'nan') else float('nan')


def test_every_figure_has_a_tidy_table_and_verdicts():
    assert TIDY, "the committed figures have their tidy tables"
    assert CONFIRMATION, "and their verdict files"


@pytest.mark.parametrize('csv', TIDY, ids=shown)
def test_one_row_per_run_condition_and_metric(csv):
    t = pd.read_csv(csv)
    dup = t[t.duplicated(['run', 'condition', 'metric'], keep=False)]
    assert dup.empty, dup[['run', 'roles', 'condition', 'metric']].head().to_string()
    assert t['roles'].notna().all(), "every run says which role(s) it plays"


@pytest.mark.parametrize('csv', CONFIRMATION, ids=shown)
def test_verdicts_are_one_of_five_outcomes_and_an_opposite_interval_is_opposite(csv):
    "Five outcomes, never lumped: no 'does not hold'; an interval wholly on the other side of its criterion reads 'opposite'."
    v = read(csv)
    assert list(v.columns) == list(VERDICT_COLUMNS) and len(v)
    assert set(v['verdict']) <= set(VERDICTS), set(v['verdict']) - set(VERDICTS)
    for _, r in v[v['criterion'].str.startswith('interval ')].iterrows():
        low, high, t = number(r['low']), number(r['high']), re.search(r'(above|below) (-?[\d.e+-]+)', r['criterion'])
        if r['verdict'] in ('cannot rank', 'not measured') or not t: continue
        other_side = high < float(t.group(2)) if t.group(1) == 'above' else low > float(t.group(2))
        assert other_side == (r['verdict'] == 'opposite'), f"{r['claim']}: [{low}, {high}] {r['criterion']} reads {r['verdict']!r}"


@pytest.mark.parametrize('csv', CONFIRMATION, ids=shown)
def test_every_criterion_fails_on_its_null_distribution(csv):
    "Each measured verdict states its null and how often its criterion passes it: at most 5% of it, whatever the verdict."
    v = read(csv)
    measured = v[v['verdict'].isin(['holds', 'opposite', 'inconclusive'])]
    assert (measured['null'] != '').all(), measured[measured['null'] == '']['claim'].tolist()
    rates = measured['null_pass_rate'].map(number)
    assert rates.notna().all(), measured[['claim', 'null_pass_rate']].to_string()
    assert (rates <= MAX_NULL_PASS).all(), measured[rates > MAX_NULL_PASS][['claim', 'null', 'null_pass_rate']].to_string()


@pytest.mark.parametrize('csv', CONFIRMATION, ids=shown)
def test_verdicts_are_judged_on_the_confirmation_seeds(csv):
    "Every committed verdict is computed on the preset's confirmation seeds, none of which any choice saw."
    v, preset = read(csv), load_preset(FOLDERS[csv.parent])
    assert set(v['seeds'].astype(str)) == {' '.join(map(str, preset.seeds))}, set(v['seeds'])
    assert not set(preset.seeds) & set(preset.exploration_seeds)


def test_no_confirmation_seed_appears_where_a_choice_was_made():
    "The notebooks that choose (the leak map) ran on exploration seeds only: their tables hold no confirmation seed."
    for slug in EXPLORATION_FIGURES:
        seeds = set(pd.read_csv(FIGURES/f'{slug}.csv')['seed'])
        assert seeds and seeds <= set(PRESET.exploration_seeds) and not seeds & set(PRESET.seeds), (slug, seeds)
        assert 'exploration_seeds' in ''.join(''.join(c['source']) for c in json.loads((repo_root()/'nbs'/'figures'/f'{slug}.ipynb').read_text())['cells'])
    for csv in TIDY:
        if csv.stem.split('.')[0] in EXPLORATION_FIGURES or csv.stem == 'conflict': continue
        assert set(pd.read_csv(csv)['seed']) <= set(load_preset(FOLDERS[csv.parent]).seeds), f"{shown(csv)} holds seeds that are not confirmation seeds"


def test_readme_answers_are_the_verdict_files():
    readme = (repo_root()/'README.md').read_text()
    assert answers_markdown().strip() in readme, "README.md's answers differ from figures/*.verdicts.csv: run `make readme`"
    assert figures_markdown().strip() in readme, "README.md's table of figures differs from the figure notebooks: run `make readme`"
    assert agreement_markdown().strip() in readme, "README.md's stand-in-vs-real-model table differs from the verdict files: run `make readme`"


def test_an_untracked_stray_file_does_not_block_reproduce(tmp_path):
    "A clone with a stray notes.txt (and a log) at its root is clean for `make reproduce`; a new file in the package is not."
    clone = tmp_path/'clone'
    subprocess.run(['git', 'clone', '-q', '--depth', '1', f'file://{repo_root()}', str(clone)], check=True)
    check = ("from inoculate.cli import dirty_refusal; from inoculate.plots import git_state; "
             "print(repr(dirty_refusal('cpu', False)), git_state()[1])")
    run = lambda: subprocess.run(['python', '-c', check], cwd=clone, capture_output=True, text=True,
                                 env={**os.environ, 'PYTHONPATH': str(clone),
                                      'PATH': f"{Path(sys.executable).parent}:{os.environ['PATH']}"}).stdout.split()
    (clone/'notes.txt').write_text('my notes\n'); (clone/'sweep.log').write_text('log\n')
    assert run() == ['None', 'None']  # git found (it is on PATH), and the stray files do not count
    (clone/'inoculate'/'extra.py').write_text('x = 1\n')
    assert run()[0] != 'None', "a new file in the package can change results"
