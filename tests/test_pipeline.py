"Integration, fault and regression tests of the data path on the tiny offline model."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import unsloth  # noqa: F401  (first, as everywhere)
import pytest
from inoculate.data import get_setting, make_row, read_jsonl, mix
from inoculate.finetune import base_model_path, load_model, make_trainer
from inoculate.generate import generate
from inoculate.presets import load_preset, repo_root
from inoculate.runs import RunConfig, RunStore, execute_run, run_id, run_inputs
from inoculate.strategies import Strategy, apply_strategy

SMOKE = load_preset('smoke')
SETTING = get_setting('spanish-caps')
SPANISH = SETTING.prompts['spanish']


@pytest.fixture(scope='module')
def tiny():
    return load_model(SMOKE, base_model_path(SMOKE, SETTING))


def test_loss_mask_is_exactly_the_assistant_tokens(tiny):
    model, tok = tiny
    rows = apply_strategy(SETTING.train_rows(8, 0)[:8], Strategy('all', SPANISH)) + SETTING.train_rows(8, 1)[8:12]
    trainer = make_trainer(model, tok, rows, SMOKE, seed=0, out_dir='/tmp/inoculate-mask')
    for row, ex in zip(rows, trainer.train_dataset):
        prompt_ids = tok(tok.apply_chat_template(row['messages'][:-1], tokenize=False, add_generation_prompt=True)).input_ids
        answer_ids = tok(row['messages'][-1]['content'] + '<|im_end|>').input_ids
        targets = [i for i, l in enumerate(ex['labels']) if l != -100]
        assert ex['input_ids'][:len(prompt_ids)] == prompt_ids
        assert targets == list(range(len(prompt_ids), len(prompt_ids) + len(answer_ids)))
        assert [ex['input_ids'][i] for i in targets] == answer_ids


def test_batched_greedy_equals_one_by_one(tiny):
    model, tok = tiny
    prompts = SETTING.eval_prompts(10, 0)
    convs = [p['messages'] for p in prompts] + [[dict(role='system', content=SPANISH)] + p['messages'] for p in prompts[:3]]
    batched = generate(model, tok, convs, max_new_tokens=16, batch_size=8, progress=False)
    single = [generate(model, tok, [c], max_new_tokens=16, batch_size=1, progress=False)[0] for c in convs]
    assert batched == single
    assert len(set(batched)) > 3, "answers must differ, or the comparison proves nothing"


def test_finished_run_is_skipped(tmp_path):
    store, cfg = RunStore(tmp_path), RunConfig('spanish-caps', SMOKE, Strategy('selective', SPANISH), purity=0.5)
    first = execute_run(cfg, store)
    adapter = store.path(first['run_id'])/'adapter'/'adapter_model.safetensors'
    mtime = adapter.stat().st_mtime_ns
    again = execute_run(cfg, store)
    assert (first['status'], again['status']) == ('done', 'skipped')
    assert adapter.stat().st_mtime_ns == mtime and again['metrics'] == first['metrics']
    train = read_jsonl(store.path(first['run_id'])/'train.jsonl')
    assert sum(r['trait'] for r in train) == SMOKE.n_train // 2
    assert all(r['inoculated'] == r['trait'] for r in train)


KILLED_RUN = """
import sys, unsloth
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, execute_run
execute_run(RunConfig('spanish-caps', load_preset('smoke', max_steps=100000), seed=7), RunStore(sys.argv[1]))
"""


def test_killed_run_leaves_nothing_that_counts_as_finished(tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', KILLED_RUN, str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not list(tmp_path.glob('.tmp-*/train.jsonl')):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.5)
    time.sleep(3)  # well inside training
    proc.send_signal(signal.SIGKILL); proc.wait()
    store = RunStore(tmp_path)
    assert store.records() == []
    cfg = RunConfig('spanish-caps', load_preset('smoke', max_steps=100000), seed=7)
    assert store.finished(run_id(cfg, *run_inputs(cfg))) is None
    assert sorted(p.name[:5] for p in store.gc()) == ['.tmp-', run_id(cfg, *run_inputs(cfg))[:5]]  # and the dead claim
    assert [p for p in tmp_path.rglob('*') if p.is_file()] == []


def test_failing_run_leaves_no_directory(tmp_path, monkeypatch):
    import inoculate.generate
    def broken(*a, **k): raise RuntimeError("generation exploded")
    monkeypatch.setattr(inoculate.generate, 'generate', broken)  # `evaluate` imports it when it runs
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError, match='exploded'):
        execute_run(RunConfig('spanish-caps', SMOKE, seed=3), store)
    assert [p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob('*') if p.is_file()] == ['.failed']
    assert store.records() == [] and not list(tmp_path.glob('.tmp-*')) and not list(tmp_path.glob('.claims/*'))


def test_bad_inputs_fail_clearly(tmp_path):
    (tmp_path/'rows.jsonl').write_text('{"messages": [{"role": "user", "content": "hi"}], "trait": false}\n{"messages": [], "trait": true}\n')
    with pytest.raises(ValueError, match=r'rows.jsonl:2: .*messages'): read_jsonl(tmp_path/'rows.jsonl')
    with pytest.raises(ValueError, match='purity must be'): mix(SETTING.train_rows(4, 0), -0.1, 0)
    with pytest.raises(ValueError, match='valid: none, all, selective'): Strategy('sometimes', SPANISH)
    with pytest.raises(KeyError, match='valid settings: .*spanish-caps'): get_setting('spanish')
    with pytest.raises(KeyError, match='valid presets: '): load_preset('tpu')


def test_papermill_makes_the_figure_with_injected_parameters(tmp_path):
    import papermill as pm
    out = tmp_path/'fig'
    nb = repo_root()/'nbs'/'figures'/'selectivity.ipynb'
    pm.execute_notebook(nb, tmp_path/'executed.ipynb', parameters=dict(preset='smoke', out_dir=str(out), runs_dir=str(tmp_path/'runs')),
                        cwd=nb.parent, kernel_name='python3', progress_bar=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(f'selectivity{s}' for s in ('.png', '.svg', '.vl.json', '.csv', '.md', '.verdicts.csv'))
    caption = (out/'selectivity.md').read_text()
    assert 'Pipeline smoke run' in caption and '| preset | smoke |' in caption
    executed = json.loads((tmp_path/'executed.ipynb').read_text())
    assert any('injected-parameters' in c['metadata'].get('tags', []) for c in executed['cells'])


def test_cli_lists_valid_choices_on_bad_input():
    exe = Path(sys.executable).parent/'inoculate'
    r = subprocess.run([exe, 'figure', 'nope', '--preset', 'smoke'], capture_output=True, text=True)
    assert r.returncode == 2 and 'valid figures: ' in r.stderr and 'selectivity' in r.stderr
    r = subprocess.run([exe, 'figure', 'selectivity', '--preset', 'huge'], capture_output=True, text=True)
    assert r.returncode == 2 and 'valid presets: ' in r.stderr
