"""A real 4-bit QLoRA run through the project's Unsloth path, on a CUDA GPU (skipped elsewhere).

The model is random-initialised with the shapes of Qwen2.5-0.5B, built on the spot (no download: GPU machines may
have no network); it costs the same to train and run as the real one. Prints tokens/s and peak memory, and
writes them to $OUT/gpu_foundation.json when OUT is set.
"""
import json, os, time
import pytest

pytestmark = pytest.mark.gpu

QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, tie_word_embeddings=True)


def test_qlora_4bit_train_and_generate(tmp_path):
    import unsloth  # noqa: F401
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from inoculate.data import get_setting
    from inoculate.finetune import finetune, make_tiny_tokenizer, render_texts
    from inoculate.generate import generate
    from inoculate.presets import load_preset
    from inoculate.strategies import Strategy, apply_strategy

    setting = get_setting('spanish-caps')
    rows = apply_strategy(setting.train_rows(320, 0), Strategy('all', setting.prompts['spanish']))
    tok = make_tiny_tokenizer(render_texts(rows), vocab_size=4096)
    cfg = Qwen2Config(vocab_size=151936, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **QWEN25_05B)
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(tmp_path/'base'); tok.save_pretrained(tmp_path/'base')

    preset = load_preset('colab-t4', load_in_4bit=True, max_steps=20, batch_size=16, grad_accum=1, max_seq_length=512)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    model, tok, losses = finetune(rows, preset, tmp_path/'run', seed=0, base=tmp_path/'base')
    torch.cuda.synchronize(); train_s = time.time() - t0
    train_tokens = sum(len(tok.apply_chat_template(r['messages'], tokenize=True)) for r in rows[:20*16])
    train_peak = torch.cuda.max_memory_allocated() / 2**30
    assert all(l == l for l in losses) and len(losses) == 20
    is_4bit = any('4bit' in type(m).__name__ for m in model.modules())

    prompts = [p['messages'] for p in setting.eval_prompts(64, 0)]
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    answers = generate(model, tok, prompts, max_new_tokens=64, batch_size=64, progress=False)
    torch.cuda.synchronize(); gen_s = time.time() - t0
    # A random model rarely ends a turn, and its ids beyond the small tokenizer's vocabulary decode to nothing,
    # so tokens are counted as prompts x max_new_tokens: an upper bound, exact when no row stops early.
    new_tokens = len(prompts) * 64
    res = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, model='random Qwen2.5-0.5B shape',
               params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 1), linear_4bit=is_4bit,
               train_steps=20, batch=16, train_s=round(train_s, 1), train_tokens_per_s=round(train_tokens / train_s),
               train_peak_GiB=round(train_peak, 2), loss_first_last=[round(losses[0], 3), round(losses[-1], 3)],
               gen_prompts=len(prompts), gen_s=round(gen_s, 2), gen_tokens_per_s_upper_bound=round(new_tokens / gen_s),
               gen_peak_GiB=round(torch.cuda.max_memory_allocated() / 2**30, 2))
    print(json.dumps(res, indent=1))
    if os.environ.get('OUT'):
        with open(os.path.join(os.environ['OUT'], 'gpu_foundation.json'), 'w') as f: json.dump(res, f, indent=1)
    assert is_4bit and len(answers) == len(prompts)
