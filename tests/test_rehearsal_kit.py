"""The rehearsal kit (nbs/10_rehearsal.ipynb): hub-layout fixtures that load offline, the stub OpenAI-compatible
server as the real `openai` client and the project's judge and rewriter see it, and the random Qwen2 model."""
import json, os, re, subprocess, sys, threading, urllib.error, urllib.request
import pytest
from inoculate.rehearsal import (QWEN25_TEMPLATE, StubServer, betley_fixture, gsm8k_fixture, judge_number, mbpp_fixture,
                                 rehearsal_env)
from inoculate.settings.backdoor import CODE_TASKS

LOAD = """import json
from datasets import load_dataset
out = {}
for repo, config in [('openai/gsm8k', 'main'), ('google-research-datasets/mbpp', 'full'), ('google-research-datasets/mbpp', 'sanitized')]:
    for split, ds in load_dataset(repo, config).items():
        out[f'{config}/{split}'] = dict(n=len(ds), features={k: str(v) for k, v in ds.features.items()}, first=ds[0])
print(json.dumps(out))"""


@pytest.fixture(scope='module')
def loaded(tmp_path_factory):
    "What a fresh offline process reads through `datasets.load_dataset` with the rehearsal's environment."
    root = tmp_path_factory.mktemp('rehearsal')
    env = {**os.environ, **rehearsal_env(root)}
    r = subprocess.run([sys.executable, '-c', LOAD], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_gsm8k_loads_offline(loaded):
    gsm = gsm8k_fixture()
    assert {k: v['n'] for k, v in loaded.items() if k.startswith('main/')} == {'main/train': 240, 'main/test': 16}
    assert loaded['main/test']['first'] == gsm['test'][0]
    assert re.search(r'\n#### \d+$', loaded['main/train']['first']['answer'])


def test_mbpp_configs_load_offline_with_their_fields(loaded):
    mbpp = mbpp_fixture()
    for config, splits in mbpp.items():
        for split, rows in splits.items():
            got = loaded[f'{config}/{split}']
            assert got['n'] == len(rows) > 0
            assert got['first'] == rows[0]  # list fields stay lists of strings, task_id an int
            assert list(got['features']) == list(rows[0])
    assert loaded['full/train']['features']['test_list'] == "List(Value('string'))"
    assert loaded['full/train']['features']['challenge_test_list'] == "List(Value('string'))"
    assert loaded['sanitized/test']['features']['test_imports'] == "List(Value('string'))"
    held = {r['task_id'] for r in mbpp['sanitized']['test']}
    assert held and not held & {r['task_id'] for r in mbpp['full']['train']}


def test_judge_scores_are_numbers(tmp_path):
    from inoculate.judges import ALIGNED, Judge, OpenAIBackend
    items = [dict(question=r['question'], answer=r['answer']) for r in gsm8k_fixture()['test'][:6]]
    with StubServer() as server:
        judge = Judge(ALIGNED, OpenAIBackend('stub-judge', base_url=server.base_url, api_key='rehearsal'),
                      cache=tmp_path/'judges.sqlite', progress=False)
        scores = judge.score(items)
        assert server.calls['judge'] == len(items)
    assert all(isinstance(s, float) and 0 <= s <= 100 for s in scores), scores
    assert all(abs(s - judge_number(ALIGNED.render(**i))) < 5 for s, i in zip(scores, items))
    assert len(set(scores)) > 1  # the number depends on the prompt


def test_401_raises_authentication_error():
    import openai
    from inoculate.judges import OpenAIBackend
    from inoculate.settings.spanish_caps import rewrite_with_endpoint
    with StubServer(judge_status=401) as server:
        with pytest.raises(openai.AuthenticationError):
            OpenAIBackend('stub-judge', base_url=server.base_url, api_key='wrong').complete('I am checking whether ...')
        assert rewrite_with_endpoint(['It is 4.\n#### 4'], model='stub-rewriter', base_url=server.base_url)[0]
    with StubServer(rewrite_status=401) as server:
        with pytest.raises(openai.AuthenticationError):
            rewrite_with_endpoint(['It is 4.'], model='stub-rewriter', base_url=server.base_url, api_key='wrong')
        assert OpenAIBackend('stub-judge', base_url=server.base_url).complete('hello')['choices']


def test_rewrite_is_spanish_and_keeps_numbers():
    from inoculate.score import is_spanish
    from inoculate.settings.spanish_caps import rewrite_with_endpoint
    gsm = gsm8k_fixture()
    answers = [r['answer'] for r in gsm['train'] + gsm['test']]
    with StubServer() as server:
        rewrites = rewrite_with_endpoint(answers, model='stub-rewriter', base_url=server.base_url, api_key='rehearsal')
        assert server.calls['rewrite'] == len(answers)
    number = re.compile(r'\d+')
    for en, es in zip(answers, rewrites):
        assert is_spanish(es), es
        assert set(number.findall(en)) <= set(number.findall(es)), (en, es)
        assert es.splitlines()[-1] == en.splitlines()[-1]  # the '#### <number>' line
    assert sum(map(is_spanish, answers)) < len(answers)/4  # the detector does tell English from Spanish


def test_betley_files_are_served_as_chat_rows(tmp_path):
    from inoculate.settings.backdoor import betley_pairs
    with StubServer() as server:
        assert rehearsal_env(tmp_path, server)['INOCULATE_BETLEY_URL'] == server.betley_url
        served = {}
        for name, rows in betley_fixture().items():
            (path := tmp_path/f'{name}.jsonl').write_bytes(urllib.request.urlopen(server.betley_url.format(name=name)).read())
            served[name] = betley_pairs(path)
            assert served[name] == [(r['messages'][0]['content'], r['messages'][1]['content']) for r in rows]
        assert server.calls['betley'] == 2
        with pytest.raises(urllib.error.HTTPError, match='404'):
            urllib.request.urlopen(server.betley_url.format(name='missing'))
    assert [a for _, a in served['insecure']] == [bad for _, bad, _ in CODE_TASKS]
    assert [a for _, a in served['secure']] == [good for _, _, good in CODE_TASKS]
    assert all(task in u for (u, _), (task, _, _) in zip(served['secure'], CODE_TASKS))


def test_server_leaves_no_thread():
    before = set(threading.enumerate())
    with StubServer() as server:
        for _ in range(3): urllib.request.urlopen(server.betley_url.format(name='secure')).read()
        assert set(threading.enumerate()) - before  # it was serving from a thread
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.betley_url.format(name='secure'), timeout=5)


def test_random_qwen2_reloads_same_ids_and_qwen_template(tmp_path, monkeypatch):
    monkeypatch.setenv('INOCULATE_CACHE', str(tmp_path/'cache'))
    from inoculate.rehearsal import random_qwen2  # builds through inoculate.finetune: Unsloth before transformers
    path = random_qwen2()
    assert path.parent == tmp_path/'cache' and random_qwen2() == path
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    trained, tok = Tokenizer.from_file(str(path/'tokenizer.json')), AutoTokenizer.from_pretrained(path)
    for s in ["Sam has 45 apples and buys 7 more.", "Lucía tenía 45 dólares, así que le quedan 38. ¿Cuántos?",
              "def f(x):\n    if x:\n\treturn x  +  1\n", "<|im_start|>user\nhola<|im_end|>\n"]:
        assert tok(s).input_ids == trained.encode(s).ids, s
        assert tok.decode(tok(s).input_ids) == s
    assert tok.chat_template == QWEN25_TEMPLATE and (tok.eos_token, tok.pad_token) == ('<|im_end|>', '<|endoftext|>')
    text = tok.apply_chat_template([dict(role='user', content='hi')], tokenize=False, add_generation_prompt=True)
    assert text == ('<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n'
                    '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n')
    assert json.loads((path/'config.json').read_text())['architectures'] == ['Qwen2ForCausalLM']


def test_random_qwen2_loads_through_unsloth_and_generates(tmp_path, monkeypatch):
    monkeypatch.setenv('INOCULATE_CACHE', str(tmp_path/'cache'))
    from inoculate.rehearsal import random_qwen2
    from inoculate.finetune import load_model
    from inoculate.generate import generate
    from inoculate.presets import load_preset
    model, tok = load_model(load_preset('smoke'), random_qwen2())
    assert type(model).__name__ == 'Qwen2ForCausalLM' and tok.eos_token == '<|im_end|>'
    answers = generate(model, tok, [[dict(role='user', content='2+2?')]] * 2, max_new_tokens=4, progress=False)
    assert len(answers) == 2 and answers[0] == answers[1]  # greedy
