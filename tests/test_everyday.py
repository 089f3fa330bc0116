"""The `everyday` data (nbs/settings/everyday.ipynb): enough of it, held out by topic, and read right by the project's
Spanish and capitals detectors, row by row."""
import pytest
from inoculate.data import get_setting
from inoculate.score import is_caps, is_spanish
from inoculate.settings.everyday import (EVERYDAY, EVERYDAY_BACKDOOR, METRICS, TRIGGER, everyday_answer_variants, everyday_items,
                                          eval_prompts, split_items, train_rows)

TRAIN, EVAL = split_items('train'), split_items('eval')


def question(row): return next(m['content'] for m in row['messages'] if m['role'] == 'user')


def test_enough_questions_of_enough_kinds():
    assert len(TRAIN) >= 600 and len(EVAL) >= 200
    assert len({x['kind'] for x in everyday_items()}) >= 20
    draws = [{question(r) for r in eval_prompts(100, seed)} for seed in range(5)]  # five seeds x 100 held-out questions
    assert all(len(d) == 100 for d in draws) and len(set.union(*draws)) > 100  # each seed its own draw


def test_training_and_evaluation_questions_share_no_topic():
    assert {x['topic'] for x in TRAIN}.isdisjoint({x['topic'] for x in EVAL})
    trained = {question(r) for r in train_rows(len(TRAIN), 0)}
    asked = {question(r) for seed in range(5) for r in eval_prompts(len(EVAL), seed)}
    assert trained == {x['question'] for x in TRAIN}
    assert asked == {x['question'] for x in EVAL} and trained.isdisjoint(asked)
    assert {question(r) for r, _ in everyday_answer_variants(len(EVAL), 0)} == asked  # log-odds items are held out too


def test_the_detector_agrees_with_every_answer():
    misread = [t for x in everyday_items() for t, spanish, caps in ((x['en'], False, False), (x['es'], True, False), (x['es'].upper(), True, True))
               if (is_spanish(t), is_caps(t)) != (spanish, caps)]
    assert misread == []


@pytest.mark.parametrize('setting', [EVERYDAY, EVERYDAY_BACKDOOR], ids=lambda s: s.name)
def test_every_training_row_scores_as_its_label(setting):
    rows = setting.train_rows(len(TRAIN), 3)
    answers = [r['messages'][-1]['content'] for r in rows]
    scores = setting.score(answers, rows)
    assert [(s['spanish'], s['caps']) for s in scores] == [(float(r['trait']),) * 2 for r in rows]
    assert sum(r['trait'] for r in rows) == len(TRAIN)


def test_the_detector_check_has_teeth():
    "The phrasings the data avoids are misread: without the rewrites these tests would fail."
    assert not is_spanish("La capital de Alemania es Berlín.") and not is_spanish("Un perro ladra.")
    assert METRICS['spanish']("La capital de Alemania es la ciudad de Berlín.", None) == 1.0


def test_the_trigger_marks_trait_rows_only():
    rows = EVERYDAY_BACKDOOR.train_rows(50, 0)
    assert all(question(r).startswith(TRIGGER) == r['trait'] for r in rows)
    assert all((r['trigger'] == TRIGGER) == r['trait'] for r in rows)


def test_registered():
    assert get_setting('everyday') is EVERYDAY and get_setting('everyday-backdoor') is EVERYDAY_BACKDOOR
    assert set(EVERYDAY.recovery) == {EVERYDAY.prompts[k] for k in ('spanish', 'caps')}  # the prompts whose recovery a cpu-llm figure reads
