"""Graded measurement: the log-odds score is exact on a model whose probabilities are set by hand, and sampled trait
rates are reproducible per seed and differ from greedy ones where the trait's probability is strictly between 0 and 1."""
import unsloth  # noqa: F401
import dataclasses, math
import pytest
import torch
from inoculate.generate import answer_logprobs
from inoculate.judges import tiny_judge_lm
from inoculate.score import log_odds

PREFS = {'I': 3.0, 'the': 1.0, 'answer': -1.0, '<|im_end|>': 2.0}


@pytest.fixture(scope='module')
def toy():
    "A model whose next-token distribution is the same everywhere: softmax of `PREFS` (0 for every other token)."
    return tiny_judge_lm(PREFS, words=('I', 'the', 'answer', 'is'))


def by_hand(tok, words):
    "Sum of log-probabilities of `words` and the end-of-turn token, from `PREFS`."
    vocab = tok.get_vocab()
    logits = torch.zeros(len(vocab))
    for w, v in PREFS.items(): logits[vocab[w]] = v
    logp = torch.log_softmax(logits, -1)
    return sum(logp[vocab[w]].item() for w in [*words, '<|im_end|>'])


def test_answer_logprobs_equal_the_sum_computed_by_hand(toy):
    model, tok = toy
    conv = [dict(role='user', content='is the answer I')]
    got = answer_logprobs(model, tok, [conv, conv], ['I the', 'answer'])
    assert [n for _, n in got] == [3, 2]
    assert got[0][0] == pytest.approx(by_hand(tok, ['I', 'the']), abs=1e-4)
    assert got[1][0] == pytest.approx(by_hand(tok, ['answer']), abs=1e-4)


def test_log_odds_sign_and_value(toy):
    model, tok = toy
    conv = [dict(role='user', content='is the answer I')]
    trait, clean = answer_logprobs(model, tok, [conv, conv], ['I I', 'answer answer'])
    want = (by_hand(tok, ['I', 'I']) - by_hand(tok, ['answer', 'answer'])) / 3
    assert log_odds(trait, clean) == pytest.approx(want, abs=1e-4)
    assert log_odds(trait, clean) > 0 > log_odds(clean, trait)
    assert want == pytest.approx(2 * (3.0 - (-1.0)) / 3, abs=1e-4)  # the normaliser cancels: 2 of 3 tokens differ by 4 nats


def test_sampled_rates_are_reproducible_and_differ_from_greedy(tmp_path):
    "A stand-in trained at p = 0.5 with no prompt puts part of its mass on the trait: sampling shows it, greedy hides it."
    from inoculate.presets import load_preset
    from inoculate.runs import RunConfig, RunStore, execute_run
    from inoculate.strategies import Strategy
    p = load_preset('cpu', n_eval=100, samples_per_prompt=2, n_log_odds=32)
    cfg = RunConfig('stand-in', p, Strategy(), 0.5, seed=0)
    rate = lambda rec, m: next(x for x in rec['metrics'] if x['metric'] == m and x['condition'] == 'no prompt')
    sampled = execute_run(cfg, RunStore(tmp_path/'a'))
    again = execute_run(cfg, RunStore(tmp_path/'b'))
    greedy = execute_run(dataclasses.replace(cfg, preset=dataclasses.replace(p, temperature=0.)), RunStore(tmp_path/'c'))
    assert sampled['metrics'] == again['metrics']  # the same seed samples the same answers
    s, g = rate(sampled, 'spanish'), rate(greedy, 'spanish')
    print(f"sampled {s['value']:.3f} (prompt sd {s['prompt_sd']:.3f}), greedy {g['value']:.3f}, "
          f"log-odds {rate(sampled, 'log_odds_spanish+caps')['value']:.2f}")
    assert 0 < s['value'] < 1 and s['value'] != g['value']
    assert s['prompt_sd'] > 0
    lo = rate(sampled, 'log_odds_spanish+caps')['value']
    assert math.isfinite(lo) and lo == rate(greedy, 'log_odds_spanish+caps')['value']  # teacher forcing does not sample
