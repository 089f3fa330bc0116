"""A fresh clone reproduces the committed figures: the same base, byte for byte, on any machine.

A base is built in a fresh process pinned to one thread and the AVX2 code paths of torch and MKL (`pinned_build`,
`01_data`), so its bytes do not depend on the caller, the machine's cores, its load or its vector unit; each committed
base's weights hash is written down in `BASE_WEIGHTS`; a run names its base by its weights (`weights_id`). The first
fixture builds the cpu preset's base into the shared cache (`$INOCULATE_CACHE` or `<repo>/.cache`) if it is missing.
"""
import unsloth  # noqa: F401  (before transformers, as everywhere in the package)
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch

from inoculate.data import get_setting
from inoculate.presets import built_name, load_preset, repo_root
from inoculate.runs import RunConfig, run_id, run_inputs, weights_id
from inoculate.settings.stand_in_base import BASE_WEIGHTS, base_of, build_stand_in, execution_of, stand_in_report

SEED, KNOBS = base_of(built_name(load_preset('cpu').model)[1])  # the base every cpu figure of the stand-in world trains
CHEAPEST = 'compliance'  # the cheapest committed figure that trains the default base


def build_with_caller_threads(threads:int) -> Path:
    "The default base, built (or found in the cache) while this process runs torch with `threads` threads."
    was = torch.get_num_threads()
    torch.set_num_threads(threads)
    try: return build_stand_in(SEED, log=None, knobs=KNOBS)
    finally: torch.set_num_threads(was)


@pytest.fixture(scope='module')
def base() -> Path:
    return build_with_caller_threads(2)


def test_the_default_base_has_the_committed_weights(base):
    "What `make test` builds here is the base the committed figures were made with, or the message names both hashes."
    assert base.name in BASE_WEIGHTS, f"{base.name} trains the committed figures but has no expected weights in BASE_WEIGHTS"
    got = stand_in_report(base)['weights_hash']
    assert got == BASE_WEIGHTS[base.name], (f"{base.name} was built here with weights {got}; the committed figures were made with "
                                           f"{BASE_WEIGHTS[base.name]}. This build ran with {execution_of(base)}.")


def test_two_builds_with_other_caller_threads_give_one_weights_hash(base, tmp_path, monkeypatch):
    "A second build, in another cache, from a caller running one torch thread instead of two: the same bytes."
    monkeypatch.setenv('INOCULATE_CACHE', str(tmp_path))
    again = build_with_caller_threads(1)
    assert again.parent == tmp_path and again.name == base.name
    assert stand_in_report(again)['weights_hash'] == stand_in_report(base)['weights_hash']
    assert execution_of(again) == execution_of(base) and execution_of(base)['threads'] == 1


def test_a_run_id_changes_with_the_weights_when_the_recipe_does_not(base, tmp_path):
    "The same recipe's folder with other weights (built elsewhere) names another run: a store never reuses one for the other."
    cfg = RunConfig('stand-in', load_preset('cpu'), seed=load_preset('cpu').seeds[0])
    rows, prompts, built = run_inputs(cfg)
    other = tmp_path/Path(built).name
    shutil.copytree(built, other)
    report = json.loads((other/'report.json').read_text())
    (other/'report.json').write_text(json.dumps({**report, 'weights_hash': 'built-elsewhere'}))
    assert weights_id(str(other)) == 'built-elsewhere' != weights_id(built)
    assert run_id(cfg, rows, prompts, str(other)) != run_id(cfg, rows, prompts, built)


def test_the_cheapest_figure_reproduces_its_committed_table_byte_for_byte(base, tmp_path):
    "From an empty run store, the cheapest figure on the default base writes the committed CSV, byte for byte."
    out = tmp_path/'figure'
    env = {**os.environ, 'PYTHONPATH': str(repo_root())}
    subprocess.run([str(Path(sys.executable).parent/'inoculate'), 'figure', CHEAPEST, '--preset', 'cpu', '--executor', 'processes',
                    '--executed', str(tmp_path), '-p', f"runs_dir='{tmp_path/'runs'}'", '-p', f"out_dir='{out}'"],
                   check=True, env=env, cwd=repo_root(), capture_output=True)
    made, committed = (out/f'{CHEAPEST}.csv').read_bytes(), (repo_root()/'figures'/f'{CHEAPEST}.csv').read_bytes()
    assert made == committed, f"figures/{CHEAPEST}.csv is not what its notebook makes from a fresh store on this machine"
