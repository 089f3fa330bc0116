"""The Colab road, rehearsed on a CPU, as its users walk it: every figure notebook with its parameters cell edited to
`preset = 'rehearsal'` (what the README tells a Colab user to do) and run with no injected parameters, from a fresh
cache, against the hub's fixtures and a stub judge and rewriter on 127.0.0.1 (nbs/10_rehearsal.ipynb). Also the two
ways that road must fail before any training step (through `inoculate figure`): a judge that answers 401, and a data
source that cannot be reached."""
import json, os, re, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from inoculate.cli import figure_slugs
from inoculate.presets import figure_notebook, repo_root
from inoculate.rehearsal import StubServer, rehearsal_env
from inoculate.runs import RunStore

FIGURES = figure_slugs()


def figure(slug, env, root, *params, timeout=900):
    "Run `inoculate figure slug --preset rehearsal` in a subprocess; its CompletedProcess."
    cmd = [str(Path(sys.executable).parent/'inoculate'), 'figure', slug, '--preset', 'rehearsal', '--executed', str(root/'executed'),
           '-p', f"runs_dir={root/'runs'}", '-p', f"out_dir={root/'figures'}", *params]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=repo_root())


@pytest.fixture(scope='module')
def rehearsal(tmp_path_factory):
    "One fresh rehearsal for all figures: fixtures, an empty cache, the stub server, and presets of a lab's own in another folder."
    root = tmp_path_factory.mktemp('rehearsal')
    lab = tmp_path_factory.mktemp('lab')/'presets.ini'
    lab.write_text("[lab-h100]\nmodel = unsloth/Qwen2.5-7B-Instruct\nbatch_size = 32\n")  # adds a preset; moves nothing
    with StubServer() as server:
        env = {**os.environ, **rehearsal_env(root, server), 'INOCULATE_SETTINGS': str(lab)}
        yield root, env, server


def test_a_presets_file_elsewhere_adds_presets_and_hides_no_figure(rehearsal):
    root, env, _ = rehearsal
    cli = str(Path(sys.executable).parent/'inoculate')
    r = subprocess.run([cli, 'figure', 'nonsense'], env=env, capture_output=True, text=True, cwd=root)
    assert r.returncode == 2 and all(slug in r.stderr for slug in FIGURES), r.stderr
    r = subprocess.run([cli, 'presets'], env=env, capture_output=True, text=True, cwd=root)
    assert 'lab-h100' in r.stdout and 'rehearsal' in r.stdout, r.stdout + r.stderr


def with_parameters(slug:str, out:Path, **values) -> Path:
    "A copy of figure notebook `slug` at `out` whose parameters cell sets `values`, edited as a reader edits it (each `name = ...` line rewritten); names the cell lacks are left out, as a reader would."
    nb = json.loads(figure_notebook(slug).read_text())
    cell = next(c for c in nb['cells'] if 'parameters' in c['metadata'].get('tags', []))
    lines = ''.join(cell['source']).splitlines()
    for name, value in values.items():
        at = [i for i, l in enumerate(lines) if re.match(rf'{name}\s*=', l)]
        if at: lines[at[0]] = f"{name} = {value!r}"
    cell['source'] = '\n'.join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(nb))
    return out


def run_as_edited(slug, env, root, server, timeout=900):
    "Edit figure `slug`'s parameters cell to the rehearsal and run the notebook with papermill, injecting nothing; its CompletedProcess."
    edited = with_parameters(slug, root/'edited'/f'{slug}.ipynb', preset='rehearsal', runs_dir=str(root/'runs'), out_dir=str(root/'figures'),
                             api_base_url=server.base_url, rewriter='openai:stub-rewriter')
    (root/'executed').mkdir(exist_ok=True)
    cmd = [str(Path(sys.executable).parent/'papermill'), str(edited), str(root/'executed'/f'{slug}-rehearsal.ipynb'),
           '--cwd', str(figure_notebook(slug).parent), '-k', 'python3', '--log-output', '--no-progress-bar']
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=repo_root())


@pytest.mark.parametrize('slug', FIGURES)
def test_every_figure_runs_the_gpu_road_from_its_edited_parameters_cell(rehearsal, slug):
    root, env, server = rehearsal
    r = run_as_edited(slug, env, root, server)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert sorted(p.name for p in (root/'figures').glob(f'{slug}.*')) == sorted(f'{slug}{s}' for s in ('.csv', '.md', '.png', '.svg', '.verdicts.csv', '.vl.json'))
    assert set(pd.read_csv(root/'figures'/f'{slug}.verdicts.csv')['verdict']) <= {'not measured'}, "a rehearsal measures nothing"
    caption = (root/'figures'/f'{slug}.md').read_text()
    assert 'Rehearsal of the GPU road' in caption and '| preset | rehearsal |' in caption, "the caption says which preset ran"
    executed = json.loads((root/'executed'/f'{slug}-rehearsal.ipynb').read_text())
    assert not [c for c in executed['cells'] if 'injected-parameters' in c['metadata'].get('tags', [])], "nothing was injected"
    out = ''.join(''.join(o['text']) for c in executed['cells'] for o in c.get('outputs', []) if o.get('name') == 'stdout')
    assert f'figure {slug}: preset rehearsal ' in out, "the outputs say the edited preset ran"
    assert ' 0 failed' in out and 'design' in out, out[-2000:]
    assert not list((root/'runs'/'.failed').glob('*')), "no run failed"


def test_rewrites_and_judge_went_to_the_stub(rehearsal):
    root, env, server = rehearsal
    if not (root/'figures'/'backdoor.md').exists(): pytest.skip('needs the figure runs above')
    assert server.calls['rewrite'] > 0 and server.calls['judge'] > 0 and server.calls['betley'] >= 2
    assert 'openai:gpt-4o-2024-08-06' in (root/'figures'/'backdoor.md').read_text()


def assert_failed_before_training(r, root, message):
    assert r.returncode == 1, (r.stdout + r.stderr)[-3000:]
    assert message in r.stderr, r.stderr[-3000:]
    assert r.stderr.count('inoculate: figure') == 1  # one clear line
    store = RunStore(root/'runs')
    assert not store.root.exists() or (store.records() == [] and not list(store.root.glob('.tmp-*')))
    assert not list((root/'cache').glob('.locks/random-qwen2*')), "no model was even built"


def test_a_judge_answering_401_stops_the_figure_before_training(tmp_path):
    with StubServer(judge_status=401) as server:
        env = {**os.environ, **rehearsal_env(tmp_path, server)}
        r = figure('backdoor', env, tmp_path, '-p', f"api_base_url={server.base_url}", timeout=300)
    assert_failed_before_training(r, tmp_path, 'PreflightFailed')
    assert 'AuthenticationError' in r.stderr or '401' in (tmp_path/'executed'/'backdoor-rehearsal.ipynb').read_text()
    assert server.calls['judge'] == 1  # one real call, not a sweep's worth


def test_an_unreachable_data_source_stops_the_figure_before_training(tmp_path):
    with StubServer() as server:
        env = {**os.environ, **rehearsal_env(tmp_path, server)}
        env['HF_HOME'] = env['HF_DATASETS_CACHE'] = str(tmp_path/'empty-hub')  # offline, and nothing cached
        r = figure('selectivity', env, tmp_path, '-p', f"api_base_url={server.base_url}", '-p', 'rewriter=openai:stub-rewriter',
                   timeout=300)
    assert_failed_before_training(r, tmp_path, 'PreflightFailed')
    assert 'openai/gsm8k' in (tmp_path/'executed'/'selectivity-rehearsal.ipynb').read_text()
    assert server.calls['rewrite'] == 0
