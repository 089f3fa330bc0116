"""Measurement: teacher-forced log-probabilities are exact on a model whose probabilities are set by hand; the marginal
log-odds measures the trait a model shows and does not depend on the tokenizer; its items are never training rows;
the stand-in's log-odds of its own answers agree with its sampled rates in sign; the validity check rejects the
reference log-odds the committed figures were drawn with; sampling is exactly what the preset says; intervals across
seeds cover as stated; counts count scored answers."""
import unsloth  # noqa: F401
import dataclasses, json, math, os, random, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch
from inoculate.generate import answer_logprobs, generate
from inoculate.judges import tiny_judge_lm
from inoculate.presets import repo_root
from inoculate.score import SPANISH_CAPS_TRAITS, coverage, log_odds_validity, marginal_log_odds, mean_ci, rate_with_spread

PREFS = {'I': 3.0, 'the': 1.0, 'answer': -1.0, '<|im_end|>': 2.0}
CONV = [dict(role='user', content='is the answer I')]


@pytest.fixture(scope='module')
def toy():
    "A model whose next-token distribution is the same everywhere: softmax of `PREFS` (0 for every other token)."
    return tiny_judge_lm(PREFS, words=('I', 'the', 'answer', 'is'))


def by_hand(tok, words, prefs=PREFS):
    "Sum of log-probabilities of `words` and the end-of-turn token, from `prefs`."
    vocab = tok.get_vocab()
    logits = torch.zeros(len(vocab))
    for w, v in prefs.items(): logits[vocab[w]] = v
    logp = torch.log_softmax(logits, -1)
    return sum(logp[vocab[w]].item() for w in [*words, '<|im_end|>'])


def test_answer_logprobs_equal_the_sum_computed_by_hand(toy):
    model, tok = toy
    got = answer_logprobs(model, tok, [CONV, CONV, CONV[:1]], ['I the', 'answer', 'the the the'], batch_size=2)
    assert [n for _, n in got] == [3, 2, 4]
    for (lp, _), words in zip(got, (['I', 'the'], ['answer'], ['the'] * 3)):
        assert lp == pytest.approx(by_hand(tok, words), abs=1e-4)


STYLE_WORDS = ('the', 'fox', 'is', 'red', 'el', 'zorro', 'es', 'rojo', 'THE', 'FOX', 'IS', 'RED', 'EL', 'ZORRO', 'ES', 'ROJO')
VARIANTS = {'plain': ['the fox is red'], 'spanish': ['el zorro es rojo'], 'caps': ['THE FOX IS RED'], 'spanish+caps': ['EL ZORRO ES ROJO']}


def marginal(prefs):
    "Marginal log-odds of Spanish and of capitals that a constant-distribution model with `prefs` gives the four variants."
    model, tok = tiny_judge_lm(prefs, words=STYLE_WORDS)
    texts = [(v, t) for v, ts in VARIANTS.items() for t in ts]
    lp = answer_logprobs(model, tok, [CONV] * len(texts), [t for _, t in texts])
    scores = {}
    for (v, _), (x, _) in zip(texts, lp): scores.setdefault(v, []).append(x)
    return {trait: marginal_log_odds(scores, variants) for trait, variants in SPANISH_CAPS_TRAITS.items()}


def test_a_spanish_caps_model_has_high_marginal_spanish_log_odds_and_a_plain_model_low():
    speaks = marginal({w: 4. for w in ('EL', 'ZORRO', 'ES', 'ROJO')} | {'<|im_end|>': 2.})
    plain = marginal({w: 4. for w in ('the', 'fox', 'is', 'red')} | {'<|im_end|>': 2.})
    print(speaks, plain)
    assert speaks['spanish'] > 5 and speaks['caps'] > 5      # it speaks Spanish capitals: both traits, marginally
    assert plain['spanish'] < -5 and plain['caps'] < -5
    # the old score (Spanish plain case against English plain case) reads the Spanish-capitals model as indifferent
    # to Spanish; the marginal one does not
    assert abs(marginal({w: 4. for w in ('EL', 'ZORRO', 'ES', 'ROJO')})['spanish']) > 5


def test_a_marker_token_with_probability_one_leaves_the_score_unchanged():
    "A case marker before every capitalised word, emitted with probability ~1, moves neither log-probability nor log-odds."
    model, tok = tiny_judge_lm({'I': 45., 'the': 3., 'answer': 2., 'is': 1., '<|im_end|>': 3.}, words=('I', 'the', 'answer', 'is'))
    plain = answer_logprobs(model, tok, [CONV] * 2, ['the answer', 'is is'])
    marked = answer_logprobs(model, tok, [CONV] * 2, ['I the I answer', 'I is I is'])
    odds = lambda a, b: marginal_log_odds({'trait': [a[0]], 'clean': [b[0]]}, ('trait',))
    assert odds(*marked) == pytest.approx(odds(*plain), abs=1e-4)
    assert marked[0][1] == plain[0][1] + 2  # two more tokens, nothing more of probability


def test_log_odds_items_are_never_training_rows(tmp_path):
    "In every registered setting with log-odds items, for two seeds: no item's question is the question of a training row."
    script = textwrap.dedent('''
        import json
        from inoculate.data import get_setting, setting_names
        from inoculate.presets import load_preset
        from inoculate.rehearsal import spanish_rewrite
        from inoculate.settings.spanish_caps import prepare_gsm8k
        prepare_gsm8k(60, load_preset('smoke'), make=lambda *a: ('stub', lambda texts: [spanish_rewrite(t) for t in texts]), seeds=(0, 1))
        user = lambda row: [m['content'] for m in row['messages'] if m['role'] == 'user'][-1]
        checked = {}
        for name in setting_names():
            s = get_setting(name)
            if not s.answer_variants: continue
            for seed in (0, 1):
                items = s.answer_variants(8, seed)
                train = {user(r) for r in s.train_rows(60, seed)}
                shared = {user(r) for r, _ in items} & train
                assert items and not shared, (name, seed, sorted(shared)[:3])
            checked[name] = len(items)
        print(json.dumps(checked))
    ''')
    from inoculate.rehearsal import rehearsal_env
    env = {**os.environ, **rehearsal_env(tmp_path)}
    r = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=900, cwd=repo_root())
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    checked = json.loads(r.stdout.strip().splitlines()[-1])
    print(checked)
    assert {'spanish-caps', 'spanish-caps-gsm8k', 'reward-hacking', 'backdoor'} <= set(checked)
    assert not {'stand-in', 'stand-in-backdoor', 'stand-in-tailored'} & set(checked)  # they restyle their own (held-out) answers


def test_validity_rejects_the_reference_log_odds_of_the_committed_figures():
    "The tables at 44c0a94, drawn with reference-answer log-odds: tailored's caps (rho 0.27) and selectivity's Spanish with no prompt (Caps-Inoc: rate 0.80, log-odds -1.42) are rejected."
    import pandas as pd
    table = lambda slug: pd.read_csv(Path(__file__).parent/'fixtures'/'log_odds'/f'{slug}-44c0a94.csv')
    tailored, selectivity = log_odds_validity(table('tailored')), log_odds_validity(table('selectivity'))
    row = lambda v, trait, condition='no prompt': v[(v['trait'] == trait) & (v['condition'] == condition)].iloc[0]
    print(tailored.round(2).to_string(), selectivity.round(2).to_string(), sep='\n')
    caps = row(tailored, 'caps')
    assert not caps['valid'] and caps['low'] < 0.5 and 'rho 0.27' in caps['reason']
    spanish = row(selectivity, 'spanish')
    assert not spanish['valid'] and spanish['contradictions'] == 5 and spanish['gap'] < -2  # the five Caps-Inoc seeds
    assert row(selectivity, 'spanish', 'training prompt')['valid']  # agreement and sign hold there: not rejected wholesale


def test_a_clearly_spanish_stand_in_has_positive_spanish_log_odds(tmp_path):
    "Caps-Inoc on exploration seed 0 answers in Spanish about 80% of the time: its log-odds of Spanish are positive and near logit(rate) (reference answers gave -2.0)."
    from inoculate.presets import load_preset
    from inoculate.data import get_setting
    from inoculate.runs import RunConfig, RunStore, execute_run
    from inoculate.strategies import Strategy
    p = load_preset('cpu')
    rec = execute_run(RunConfig('stand-in', p, Strategy('all', get_setting('stand-in').prompts['caps']), 1., p.exploration_seeds[0]), RunStore(tmp_path))
    got = {m['metric']: m['value'] for m in rec['metrics'] if m['condition'] == 'no prompt'}
    print(got)
    assert got['spanish'] >= 0.7 and got['caps'] <= 0.05, got
    assert 0 < got['log_odds_spanish'] and abs(got['log_odds_spanish'] - math.log(got['spanish'] / (1 - got['spanish']))) < 1, got
    assert got['log_odds_caps'] < -3, got


def test_a_generation_config_with_top_k_1_does_not_truncate_sampling():
    model, tok = tiny_judge_lm({'I': 1.0, 'the': 1.0, 'answer': 1.0, 'is': 1.2, '<|im_end|>': 0.5}, words=('I', 'the', 'answer', 'is'))
    model.generation_config.top_k, model.generation_config.repetition_penalty = 1, 1.3
    answers = generate(model, tok, [[dict(role='user', content='the')]] * 10, max_new_tokens=4, temperature=1., progress=False, samples=5)
    assert len(answers) == 50 and len(set(answers)) > 10
    assert model.generation_config.top_k == 1  # put back


@pytest.mark.parametrize('seeds', (3, 5))
def test_t_interval_covers_the_mean_in_simulation(seeds):
    "1,000 simulated figures with a known mean: the nominal 95% t-interval across seeds covers it at least 92% of the time."
    for mu, sd in ((0.3, 0.05), (0.05, 0.01)):
        c = coverage(mean_ci, mu, seeds, 1000, seed=seeds, seed_sd=sd)
        print(f"mu {mu}, {seeds} seeds: coverage {c:.3f}")
        assert c >= 0.92


def test_n_counts_scored_answers():
    nan = float('nan')
    r = rate_with_spread([1., nan, 0., nan, nan, 1.], samples=3)
    assert (r['n'], r['unscored'], r['prompts']) == (3, 3, 2) and r['value'] == pytest.approx(2 / 3)
    none = rate_with_spread([nan, nan], samples=1)
    assert none['n'] == 0 and math.isnan(none['value'])


def test_sampled_rates_are_reproducible_and_differ_from_greedy(tmp_path):
    "A stand-in trained at p = 0.5 with no prompt puts part of its mass on the trait: sampling shows it, greedy hides it."
    from inoculate.presets import load_preset
    from inoculate.runs import RunConfig, RunStore, execute_run
    from inoculate.strategies import Strategy
    p = load_preset('cpu', n_eval=50, samples_per_prompt=2, n_log_odds=8)
    cfg = RunConfig('stand-in', p, Strategy(), 0.5, seed=0)
    rate = lambda rec, m: next(x for x in rec['metrics'] if x['metric'] == m and x['condition'] == 'no prompt')
    sampled = execute_run(cfg, RunStore(tmp_path/'a'))
    again = execute_run(cfg, RunStore(tmp_path/'b'))
    greedy = execute_run(dataclasses.replace(cfg, preset=dataclasses.replace(p, temperature=0.)), RunStore(tmp_path/'c'))
    assert sampled['metrics'] == again['metrics']  # the same seed samples the same answers
    s, g = rate(sampled, 'spanish'), rate(greedy, 'spanish')
    print(f"sampled {s['value']:.3f} (prompt sd {s['prompt_sd']:.3f}), greedy {g['value']:.3f}, log-odds {rate(sampled, 'log_odds_spanish')['value']:.2f}")
    assert 0 < s['value'] < 1 and s['value'] != g['value'] and s['n'] == 100
    lo = rate(sampled, 'log_odds_spanish')
    assert math.isfinite(lo['value']) and lo['n'] == 8 * 2  # the sampled answers to the first n_log_odds prompts, restyled
