"""The committed figures' tables and verdicts: one row per (run, condition, metric) in every tidy CSV, every calibration
criterion fails on its null data, the README's answers are the verdict files, and a stray file does not block
`make reproduce`."""
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from inoculate.figure import VERDICTS, VERDICT_COLUMNS
from inoculate.outputs import answers_markdown, figures_markdown
from inoculate.presets import repo_root

FIGURES = repo_root()/'figures'
TIDY = [p for p in sorted(FIGURES.glob('*.csv')) if not p.name.endswith('.verdicts.csv') and 'run' in pd.read_csv(p, nrows=0).columns]


def test_every_figure_has_a_tidy_table_and_verdicts():
    assert TIDY, "the committed figures have their tidy tables"
    assert sorted(FIGURES.glob('*.verdicts.csv')), "and their verdict files"


@pytest.mark.parametrize('csv', TIDY, ids=lambda p: p.stem)
def test_one_row_per_run_condition_and_metric(csv):
    t = pd.read_csv(csv)
    dup = t[t.duplicated(['run', 'condition', 'metric'], keep=False)]
    assert dup.empty, dup[['run', 'roles', 'condition', 'metric']].head().to_string()
    assert t['roles'].notna().all(), "every run says which role(s) it plays"


@pytest.mark.parametrize('csv', sorted(FIGURES.glob('*.verdicts.csv')), ids=lambda p: p.stem)
def test_verdict_files_say_one_of_three_things(csv):
    v = pd.read_csv(csv, keep_default_na=False)
    assert list(v.columns) == list(VERDICT_COLUMNS) and len(v)
    assert set(v['verdict']) <= set(VERDICTS)
    at_floor = v[v['reason'].str.startswith('at the')]
    assert (at_floor['verdict'] == 'not measured').all(), "a comparison at the floor ranks nothing"


def test_each_calibration_criterion_fails_on_its_null_data():
    t = pd.read_csv(FIGURES/'calibration.csv', keep_default_na=False)
    assert len(t) >= 10 and (t['null'] != '').all(), "every row states its null data"
    assert (t['null_verdict'] != 'holds').all(), t[t['null_verdict'] == 'holds'][['effect', 'null']].to_string()


def test_readme_answers_are_the_verdict_files():
    readme = (repo_root()/'README.md').read_text()
    assert answers_markdown().strip() in readme, "README.md's answers differ from figures/*.verdicts.csv: run `make readme`"
    assert figures_markdown().strip() in readme, "README.md's table of figures differs from the figure notebooks: run `make readme`"


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


def test_on_the_default_base_the_least_leaky_prompt_leaks_measurably():
    "On the default base at p = 1 (five seeds, the elicitation figure), even the least leaky prompt's leak has an interval above 0."
    v = pd.read_csv(FIGURES/'elicitation.verdicts.csv', keep_default_na=False)
    best = v[v['claim'].str.startswith('even the least leaky prompt')]
    assert len(best) == 1 and best['verdict'].item() == 'holds' and float(best['low'].item()) > 0, best.to_string()
    assert int(best['n'].item()) >= 5, "five seeds"
