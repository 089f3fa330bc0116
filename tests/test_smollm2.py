"""SmolLM2-135M-Instruct, the `cpu-llm` preset's base (nbs/settings/smollm2.ipynb): from the installed wheel to a folder
that transformers reloads offline, with the GGUF-loaded model's logits; on every model the package asks, no prompt is
no system turn; batched sampling is what one-at-a-time sampling is; and a smoke-sized cpu-llm run end to end."""
import os, subprocess, sys, time
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from inoculate.finetune import default_system_prompt, load_model
from inoculate.presets import load_preset
from inoculate.settings.smollm2 import SMOLLM2_DEFAULT_SYSTEM, convert_gguf, smollm2_for_setting, smollm2_gguf

torch.set_num_threads(1)
PROMPTS = ["What is the capital of France?", "How do I boil an egg?", "Why is the sky blue?"]
NO_PROMPT_IDS = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"  # what a no-prompt conversation must be, token for token


@pytest.fixture(scope='module')
def folder():
    return smollm2_for_setting()  # converted on first use (a minute), then the cache


def chat_ids(tok, messages, **kw) -> list[int]:
    ids = tok.apply_chat_template(messages, tokenize=True, **kw)
    return list(ids['input_ids'] if hasattr(ids, 'keys') else ids)


def test_the_folder_reloads_offline_and_fast(folder):
    "A fresh process with no hub access loads the folder, twice; the second load takes under 5 s of CPU (a shared machine's wall clock is not the load's)."
    code = ("import os, time; assert os.environ['HF_HUB_OFFLINE'] == '1'\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "for i in range(2):\n"
            "    t = time.process_time(); m = AutoModelForCausalLM.from_pretrained(%r); tok = AutoTokenizer.from_pretrained(%r)\n"
            "    took = time.process_time() - t\n"
            "print(took, sum(p.numel() for p in m.parameters()), tok.eos_token_id)" % (str(folder), str(folder)))
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=True).stdout.split()
    took, params, eos = float(out[-3]), int(out[-2]), int(out[-1])
    assert took < 5, took
    assert params == 134_515_008 and eos == 2


def test_conversion_refuses_a_file_that_is_not_the_pinned_one(tmp_path):
    (tmp_path/'fake.gguf').write_bytes(b'GGUF not really')
    with pytest.raises(ValueError, match='is not the pinned'): convert_gguf(tmp_path/'fake.gguf', tmp_path/'out')


@pytest.mark.slow
def test_logits_equal_the_gguf_models(folder):
    "The saved folder is the GGUF's model: logits to 1e-5 on a few prompts (the GGUF load takes about a minute)."
    gguf = smollm2_gguf()
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    for q in PROMPTS:
        ids = tok(NO_PROMPT_IDS.format(q=q) + "The", return_tensors='pt', add_special_tokens=False)
        with torch.no_grad(): a, b = ref(**ids).logits, saved(**ids).logits
        assert a.shape == b.shape and (a - b).abs().max().item() <= 1e-5


def no_prompt_follows_the_rule(tok, own_default:str):
    "Token ids of no-prompt conversations (asked, and trained on) have no system turn; the model's own template would have written `own_default`."
    for q in PROMPTS:
        user = [dict(role='user', content=q)]
        asked = chat_ids(tok, user, add_generation_prompt=True)
        assert asked == tok(NO_PROMPT_IDS.format(q=q), add_special_tokens=False).input_ids
        trained = chat_ids(tok, user + [dict(role='assistant', content='LA CIUDAD DE PARÍS.')])
        assert trained[:len(asked)] == asked  # a training row of a strategy without a prompt: no system turn either
        prompted = chat_ids(tok, [dict(role='system', content='You always speak in Spanish.')] + user, add_generation_prompt=True)
        assert prompted == tok("<|im_start|>system\nYou always speak in Spanish.<|im_end|>\n" + NO_PROMPT_IDS.format(q=q),
                               add_special_tokens=False).input_ids  # an inoculation prompt replaces nothing: it is the only system turn
    assert own_default and own_default not in tok.decode(asked)
    assert default_system_prompt(tok) is None


def test_no_prompt_is_no_system_turn_on_smollm2(folder):
    own = AutoTokenizer.from_pretrained(folder)
    assert default_system_prompt(own) == SMOLLM2_DEFAULT_SYSTEM  # its own template would write one
    _, tok = load_model(load_preset('cpu-llm'), folder)
    no_prompt_follows_the_rule(tok, SMOLLM2_DEFAULT_SYSTEM)


def test_no_prompt_is_no_system_turn_on_the_rehearsals_qwen_template():
    from inoculate.rehearsal import random_qwen2
    path = random_qwen2()
    own = AutoTokenizer.from_pretrained(path)
    assert default_system_prompt(own) == 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.'
    _, tok = load_model(load_preset('rehearsal'), path)
    no_prompt_follows_the_rule(tok, default_system_prompt(own))


def test_batched_greedy_equals_one_at_a_time(folder):
    "Left-padded batches of prompts of different lengths give SmolLM2's one-at-a-time greedy answers."
    from inoculate.generate import generate
    model, tok = load_model(load_preset('cpu-llm'), folder)
    convs = [[dict(role='user', content=q)] for q in PROMPTS] + [[dict(role='system', content='You always speak in Spanish.'), dict(role='user', content=PROMPTS[0])]]
    batched = generate(model, tok, convs, max_new_tokens=12, batch_size=len(convs), progress=False)
    single = [generate(model, tok, [c], max_new_tokens=12, batch_size=1, progress=False)[0] for c in convs]
    assert batched == single and len(set(batched)) == len(batched)


def test_a_smoke_sized_cpu_llm_run(tmp_path):
    "Two training steps, a few sampled answers under every condition of an inoculated run, scored: under 2 minutes of CPU."
    from inoculate.data import get_setting
    from inoculate.runs import RunConfig, RunStore, execute_run
    from inoculate.strategies import Strategy
    p = load_preset('cpu-llm', max_steps=2, n_train=16, warmup_steps=0, n_eval=4, samples_per_prompt=1, n_log_odds=2, max_new_tokens=8)
    s = get_setting('everyday')
    cfg = RunConfig('everyday', p, Strategy('all', s.prompts['spanish']), 1., seed=0)
    cpu, wall = time.process_time(), time.perf_counter()
    rec = execute_run(cfg, RunStore(tmp_path), reuse_base=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert rec['status'] == 'done', rec
    rates = {(m['condition'], m['metric']): m for m in rec['metrics']}
    conditions = ['no prompt', 'training prompt', 'negated prompt', 'contradicting prompt', 'reworded prompt', 'neutral prompt']
    assert all(rates[c, k]['n'] == 4 and 0 <= rates[c, k]['value'] <= 1 for c in conditions for k in ('spanish', 'caps'))
    assert ('no prompt', 'log_odds_spanish') in rates and len(rec['losses']) == 2
    assert rec['no_prompt'].startswith('no system turn')
    assert cpu < 120, f"{cpu:.0f} s of CPU ({wall:.0f} s wall)"
