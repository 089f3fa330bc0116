"A finished run is portable: its adapter folder loads with transformers and PEFT alone and answers as it did in the run."
import json, shutil, subprocess, sys
from pathlib import Path
import unsloth  # noqa: F401  (first, as everywhere)
from inoculate.data import get_setting
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, execute_run
from inoculate.strategies import Strategy

GREEDY = load_preset('smoke', temperature=0.)
SPANISH = get_setting('spanish-caps').prompts['spanish']

# Runs in a fresh interpreter that imports neither inoculate nor unsloth: what a reader with only the folder has.
RELOAD = r'''
import json, sys, torch
from pathlib import Path
adapter, out = Path(sys.argv[1]), Path(sys.argv[2])
card = (adapter/'README.md').read_text()
snippet = card.split('```python\n')[1].split('```')[0].replace("'adapter'", repr(str(adapter)))
exec(snippet)  # the card's own loading code
assert not {'inoculate', 'unsloth'} & set(sys.modules), 'the card must load with transformers and PEFT only'
gens = [json.loads(l) for l in (adapter.parent/'generations.jsonl').read_text().splitlines()]
answers = []
for g in (g for g in gens if g['condition'] == 'no prompt'):
    ids = tok.apply_chat_template(g['messages'], add_generation_prompt=True, return_tensors='pt', return_dict=True)
    with torch.no_grad(): o = model.generate(**ids, max_new_tokens=int(sys.argv[3]), do_sample=False, pad_token_id=tok.pad_token_id)
    answers.append([g['answer'], tok.decode(o[0, ids['input_ids'].shape[1]:], skip_special_tokens=True).strip()])
out.write_text(json.dumps(answers))
'''


def test_run_folder_reloads_with_transformers_and_peft_only(tmp_path):
    rec = execute_run(RunConfig('spanish-caps', GREEDY, Strategy('all', SPANISH)), RunStore(tmp_path/'runs'))
    assert rec['status'] == 'done'
    moved = tmp_path/'elsewhere'  # the folder is copied away from the store that made it
    shutil.copytree(tmp_path/'runs'/rec['run_id'], moved)
    config = json.loads((moved/'adapter'/'adapter_config.json').read_text())
    assert config['base_model_name_or_path'] == Path(rec['base']).name, 'no machine-specific path in the adapter config'
    r = subprocess.run([sys.executable, '-c', RELOAD, str(moved/'adapter'), str(tmp_path/'answers.json'), str(GREEDY.max_new_tokens)],
                       capture_output=True, text=True, env={'HF_HUB_OFFLINE': '1', 'PATH': '/usr/bin:/bin'})
    assert r.returncode == 0, r.stderr[-3000:]
    pairs = json.loads((tmp_path/'answers.json').read_text())
    assert len(pairs) == GREEDY.n_eval and len({p[0] for p in pairs}) > 1, "answers must differ, or the comparison proves nothing"
    assert [p[1] for p in pairs] == [p[0] for p in pairs]


def test_runs_show_prints_the_load_snippet(tmp_path):
    rec = execute_run(RunConfig('spanish-caps', GREEDY, Strategy('all', SPANISH)), RunStore(tmp_path))
    cli = Path(sys.executable).parent/'inoculate'
    r = subprocess.run([str(cli), 'runs', 'show', rec['run_id'], '--store', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['run_id'] == rec['run_id']  # stdout stays JSON
    assert 'PeftModel.from_pretrained' in r.stderr and str(tmp_path/rec['run_id']/'adapter') in r.stderr
