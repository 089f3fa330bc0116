#!/usr/bin/env python
"""GPU benchmark of issue 8: 4-bit QLoRA on random-initialised Qwen2.5-shaped models, project path vs plain reference.

    bash bench/gpu.sh                         # on a lent GPU: sizes 7b,1.5b,0.5b, seq 1024, 10 train steps
    python bench/gpu_bench.py --sizes 7b --batch 2 --steps 20
    python bench/gpu_bench.py --tiny          # CPU, tiny shapes, no 4-bit: proves the script end to end

Nothing is downloaded (a GPU machine may have no network): for each size a process builds a model with the real
Qwen2.5 shapes (hidden size, layers, heads, KV heads, MLP size, vocabulary) and random weights, written straight to
safetensors shard by shard (never the whole model in memory), plus a byte-level BPE tokenizer trained on synthetic
text with the package's ChatML template. Training rows are synthetic chats cut to `--seq` tokens each, so every
step sees `--batch` x `--seq` tokens on both paths.

Per size, in separate processes (Unsloth patches transformers/TRL in any process that imports it, and a process
per measurement gives each its own peak-memory counter and frees the GPU between sizes):

* project:   `inoculate.finetune.load_model` (Unsloth FastLanguageModel, 4-bit) + `make_trainer` (Unsloth LoRA,
             TRL SFTTrainer, padding-free, Unsloth gradient checkpointing, 8-bit AdamW), then `inoculate.generate`.
* reference: transformers BitsAndBytesConfig (nf4, double quant) + `prepare_model_for_kbit_training` + PEFT
             LoraConfig/get_peft_model + stock TRL SFTTrainer (gradient checkpointing, 8-bit AdamW, padded batches),
             then `model.generate` in batches of the same size.

Both: same rows, LoRA rank/alpha/targets, learning rate, steps, seed, assistant-only loss, bf16 (fp16 without bf16).
Reported: train tokens/s (steady state: steps after the first two; and over all steps), peak GPU memory
(`torch.cuda.max_memory_allocated` from before the load to the end of training), generation tokens/s (greedy,
`--gen-batches` batches of `--gen-batch` prompts, `--new-tokens` each), first/last loss. Prints one markdown table
and whether 7B QLoRA at the run's sequence length fits in 15 GB (peak < 15e9 bytes). Results: gpu_results.json and
gpu_results.md in --out (default $OUT, else bench/). Each size and path is isolated: a crash, an out-of-memory or a
timeout is reported in its row and the next one runs; `--budget-s` bounds the whole run.
"""
from __future__ import annotations
import argparse, json, os, random, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, PeakRSS, loadavg, log, ratio  # noqa: E402  (stdlib only: the parent never imports torch)

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
COMMON = dict(max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6, hidden_act='silu',
              initializer_range=0.02, use_sliding_window=False)
# The published Qwen2.5 configs (vocabulary 151,936; 152,064 for 7B, whose embeddings are not tied).
SHAPES = {
    '0.5b': dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, tie_word_embeddings=True, vocab_size=151936),
    '1.5b': dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, tie_word_embeddings=True, vocab_size=151936),
    '3b': dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, tie_word_embeddings=True, vocab_size=151936),
    '7b': dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, tie_word_embeddings=False, vocab_size=152064),
    'tiny': dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=True, vocab_size=None),  # None: the tokenizer's size
}
T4_BYTES = 15e9
OOM_MARKERS = ('CUDA out of memory', 'OutOfMemoryError', 'CUBLAS_STATUS_ALLOC_FAILED', 'out of memory')


# ---- data and model building (the `build` worker) -------------------------------------------------------------

def pseudo_words(rng:random.Random, n:int) -> list[str]:
    syl = [c + v for c in 'bcdfghjklmnprstvz' for v in 'aeiou']
    return sorted({''.join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(n)})


def build_data(d:Path, seq:int, n_rows:int, n_prompts:int, seed:int, vocab:int):
    "Tokenizer (byte-level BPE, Qwen2 split, ChatML), training rows cut to <= `seq` tokens, and prompts."
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from inoculate.data import CHAT_TEMPLATE
    split = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
    rng = random.Random(seed)
    words = pseudo_words(rng, 3000)
    sentence = lambda k: ' '.join(rng.choice(words) for _ in range(k)).capitalize() + '.'
    texts = [sentence(rng.randint(20, 200)) for _ in range(400)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior='isolated'),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, show_progress=False,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token='<|im_end|>', pad_token='<|endoftext|>',
                                  chat_template=CHAT_TEMPLATE, padding_side='left')
    n_tokens = lambda msgs: len(tok(tok.apply_chat_template(msgs, tokenize=False), add_special_tokens=False).input_ids)
    rows, lengths = [], []
    for _ in range(n_rows):
        user = sentence(rng.randint(8, 40))
        answer = [rng.choice(words) for _ in range(2 * seq)]
        lo, hi = 1, len(answer)  # the longest answer whose whole chat fits in `seq` tokens
        while lo < hi:
            mid = (lo + hi + 1) // 2
            msgs = [dict(role='user', content=user), dict(role='assistant', content=' '.join(answer[:mid]))]
            lo, hi = (mid, hi) if n_tokens(msgs) <= seq else (lo, mid - 1)
        msgs = [dict(role='user', content=user), dict(role='assistant', content=' '.join(answer[:lo]))]
        rows.append(dict(messages=msgs)); lengths.append(n_tokens(msgs))
    prompts = [sentence(rng.randint(5, 60)) for _ in range(n_prompts)]
    d.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(d/'tokenizer')
    (d/'rows.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    (d/'prompts.json').write_text(json.dumps(prompts))
    (d/'lengths.json').write_text(json.dumps(lengths))


def build_model(spec:dict) -> dict:
    "Random Qwen2 weights of `spec['size']`'s shape, written shard by shard, with the tokenizer, into spec['model_dir']."
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
    cuda = torch.cuda.is_available()
    if not cuda and not spec['tiny']: raise RuntimeError("no CUDA GPU here: run with --tiny for the CPU check")
    data = Path(spec['data_dir'])
    if not (data/'rows.jsonl').exists():
        build_data(data, spec['seq'], spec['n_rows'], spec['n_prompts'], spec['seed'], spec['tok_vocab'])
    tok = AutoTokenizer.from_pretrained(data/'tokenizer')
    shape = dict(SHAPES[spec['size']])
    shape['vocab_size'] = shape['vocab_size'] or len(tok)
    dtype = torch.float32 if spec['tiny'] else torch.bfloat16
    cfg = Qwen2Config(**COMMON, **shape, bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.device('meta'):
        meta = Qwen2ForCausalLM(cfg)
    params = [(n, tuple(p.shape)) for n, p in meta.state_dict().items()
              if not (cfg.tie_word_embeddings and n == 'lm_head.weight')]
    out = Path(spec['model_dir']); out.mkdir(parents=True, exist_ok=True)
    dev = 'cuda' if cuda else 'cpu'
    gen = torch.Generator(device=dev).manual_seed(spec['seed'])
    shards, shard, size, weight_map, total = [], {}, 0, {}, 0
    def flush():
        nonlocal shard, size
        if shard:
            name = f"model-part-{len(shards) + 1:05d}.safetensors"
            save_file(shard, str(out/name), metadata={'format': 'pt'})
            shards.append(name); weight_map.update({k: name for k in shard})
        shard, size = {}, 0
    t0 = time.time()
    for name, shp in params:
        if name.endswith('norm.weight'): t = torch.ones(shp, dtype=dtype, device=dev)
        elif name.endswith('.bias'): t = torch.zeros(shp, dtype=dtype, device=dev)
        else: t = torch.empty(shp, dtype=dtype, device=dev).normal_(0, cfg.initializer_range, generator=gen)
        shard[name] = t.cpu().contiguous()
        nbytes = t.numel() * t.element_size(); size += nbytes; total += nbytes
        del t
        if size >= 2e9: flush()
    flush()
    (out/'model.safetensors.index.json').write_text(json.dumps(dict(metadata=dict(total_size=total), weight_map=weight_map)))
    cfg.save_pretrained(out); tok.save_pretrained(out)
    n_params = sum(_numel(s) for _, s in params)
    return dict(n_params=n_params, bytes=total, shards=len(shards), build_s=round(time.time() - t0, 1),
                vocab_size=shape['vocab_size'], device=torch.cuda.get_device_name() if cuda else 'cpu')


def _numel(shape) -> int:
    n = 1
    for s in shape: n *= s
    return n


# ---- the two measured paths -----------------------------------------------------------------------------------

def _rows_prompts(spec):
    d = Path(spec['data_dir'])
    rows = [json.loads(l) for l in (d/'rows.jsonl').read_text().splitlines()][:spec['batch'] * spec['steps']]
    lengths = json.loads((d/'lengths.json').read_text())[:len(rows)]
    prompts = json.loads((d/'prompts.json').read_text())[:spec['gen_batch'] * spec['gen_batches']]
    return rows, lengths, [[dict(role='user', content=p)] for p in prompts]


def _timer_callback():
    import torch
    from transformers import TrainerCallback
    class StepTimer(TrainerCallback):
        def __init__(self): self.t = []
        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available(): torch.cuda.synchronize()
            self.t.append(time.perf_counter())
    return StepTimer()


class _Memory:
    "Peak GPU memory allocated (CUDA), else peak RSS increase (CPU), over the block."
    def __init__(self):
        import torch
        self.cuda, self.torch = torch.cuda.is_available(), torch
    def __enter__(self):
        if self.cuda: self.torch.cuda.empty_cache(); self.torch.cuda.reset_peak_memory_stats()
        else: self.rss = PeakRSS().__enter__()
        return self
    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.peak, self.reserved = self.torch.cuda.max_memory_allocated(), self.torch.cuda.max_memory_reserved()
        else:
            self.rss.__exit__(*exc)
            self.peak, self.reserved = self.rss.peak - self.rss.start, None


def _train_summary(spec, trainer, timer, lengths, t_train, mem) -> dict:
    losses = [h['loss'] for h in trainer.state.log_history if 'loss' in h]
    steps, b = len(timer.t), spec['batch']
    per_step = [sum(lengths[i*b:(i+1)*b]) for i in range(steps)]  # rows are all ~seq tokens: order barely matters
    skip = min(2, steps - 1)
    steady = (sum(per_step[skip:]) / (timer.t[-1] - timer.t[skip - 1])) if steps > skip >= 1 else None
    return dict(train_steps=steps, train_s=round(t_train, 2), train_tokens=sum(per_step),
                train_tokens_per_s=round(sum(per_step) / t_train, 1), steady_tokens_per_s=round(steady, 1) if steady else None,
                peak_bytes=mem.peak, peak_reserved_bytes=mem.reserved, loss_first=losses[0] if losses else None,
                loss_last=losses[-1] if losses else None, losses=losses)


def _generation(spec, generate_fn, model, tok, convs) -> dict:
    "Greedy generation of `convs` through `generate_fn(convs, max_new_tokens)`; new tokens counted up to end of turn."
    import torch
    from common import counting_new_tokens
    with counting_new_tokens(model, tok.eos_token_id) as counted:
        generate_fn(convs[:2], 4)  # warm-up
        counted[0] = 0
        if torch.cuda.is_available(): torch.cuda.synchronize()
        t0 = time.perf_counter()
        generate_fn(convs, spec['new_tokens'])
        if torch.cuda.is_available(): torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    n = counted[0]
    return dict(gen_prompts=len(convs), gen_s=round(dt, 2), gen_new_tokens=n, gen_tokens_per_s=round(n / dt, 1) if n else None)


def project_path(spec:dict) -> dict:
    import unsloth  # noqa: F401
    import torch
    from inoculate.finetune import load_model, make_trainer
    from inoculate.generate import generate
    from inoculate.presets import load_preset
    rows, lengths, convs = _rows_prompts(spec)
    preset = load_preset('colab-t4', load_in_4bit=not spec['tiny'], max_seq_length=spec['seq'], batch_size=spec['batch'],
                         grad_accum=1, max_steps=spec['steps'], warmup_steps=spec['warmup'], lr=spec['lr'],
                         lora_r=spec['lora_r'], lora_alpha=spec['lora_alpha'], n_train=len(rows),
                         eval_batch_size=spec['gen_batch'], max_new_tokens=spec['new_tokens'])
    with _Memory() as mem:
        t0 = time.perf_counter()
        model, tok = load_model(preset, spec['model_dir'])
        load_s = time.perf_counter() - t0
        loaded = torch.cuda.memory_allocated() if torch.cuda.is_available() else None
        trainer = make_trainer(model, tok, rows, preset, spec['seed'], spec['work'], packed=True)
        timer = _timer_callback(); trainer.add_callback(timer)
        t1 = time.perf_counter()
        trainer.train()
        t_train = time.perf_counter() - t1
    out = dict(_train_summary(spec, trainer, timer, lengths, t_train, mem), load_s=round(load_s, 1), loaded_bytes=loaded,
               linear_4bit=any('4bit' in type(m).__name__ for m in trainer.model.modules()))
    model = trainer.model
    out.update(_generation(spec, lambda c, n: generate(model, tok, c, max_new_tokens=n, batch_size=spec['gen_batch'],
                                                       progress=False), model, tok, convs))
    return out


def reference_path(spec:dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from datasets import Dataset
    from inoculate.data import CHAT_TEMPLATE
    from common import plain_loss_sft_trainer
    assert 'unsloth' not in sys.modules, "the reference process must not import Unsloth"
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    compute = torch.bfloat16 if bf16 else torch.float16 if cuda else torch.float32
    rows, lengths, convs = _rows_prompts(spec)
    with _Memory() as mem:
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(spec['model_dir'])
        tok.chat_template = CHAT_TEMPLATE
        if tok.pad_token is None: tok.pad_token = tok.eos_token
        if cuda and not spec['tiny']:
            from transformers import BitsAndBytesConfig
            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True,
                                     bnb_4bit_compute_dtype=compute)
            model = AutoModelForCausalLM.from_pretrained(spec['model_dir'], quantization_config=bnb, dtype=compute,
                                                         device_map={'': 0})
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(spec['model_dir'], dtype=compute)
            if cuda: model = model.to('cuda')
        load_s = time.perf_counter() - t0
        loaded = torch.cuda.memory_allocated() if cuda else None
        torch.manual_seed(spec['seed'])
        model = get_peft_model(model, LoraConfig(r=spec['lora_r'], lora_alpha=spec['lora_alpha'], lora_dropout=0.0,
                                                 bias='none', target_modules=LORA_TARGETS, task_type='CAUSAL_LM'))
        args = SFTConfig(output_dir=spec['work'], per_device_train_batch_size=spec['batch'], gradient_accumulation_steps=1,
                         learning_rate=spec['lr'], max_steps=spec['steps'], warmup_steps=spec['warmup'],
                         lr_scheduler_type='linear', max_length=spec['seq'], assistant_only_loss=True, logging_steps=1,
                         save_strategy='no', report_to=[], seed=spec['seed'], data_seed=spec['seed'], use_cpu=not cuda,
                         bf16=bf16, fp16=cuda and not bf16, optim='adamw_8bit' if cuda else 'adamw_torch',
                         gradient_checkpointing=True, gradient_checkpointing_kwargs={'use_reentrant': False},
                         dataset_num_proc=1)
        trainer_cls = SFTTrainer if cuda else plain_loss_sft_trainer()
        trainer = trainer_cls(model=model, args=args, processing_class=tok,
                              train_dataset=Dataset.from_list([{'messages': r['messages']} for r in rows]))
        timer = _timer_callback(); trainer.add_callback(timer)
        t1 = time.perf_counter()
        trainer.train()
        t_train = time.perf_counter() - t1
    out = dict(_train_summary(spec, trainer, timer, lengths, t_train, mem), load_s=round(load_s, 1), loaded_bytes=loaded,
               linear_4bit=any('4bit' in type(m).__name__ for m in trainer.model.modules()))
    model = trainer.model
    model.eval()
    tok.padding_side = 'left'
    device = next(model.parameters()).device
    def gen(cs, n):  # what one writes by hand: batches in input order, left-padded, KV cache on
        for i in range(0, len(cs), spec['gen_batch']):
            texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in cs[i:i + spec['gen_batch']]]
            enc = tok(texts, return_tensors='pt', padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                model.generate(**enc, max_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=tok.pad_token_id,
                               eos_token_id=tok.eos_token_id)
    out.update(_generation(spec, gen, model, tok, convs))
    return out


def worker_main(kind:str, spec_path:str, result_path:str):
    spec = json.loads(Path(spec_path).read_text())
    if spec['tiny']: __import__('torch').set_num_threads(1)
    fn = dict(build=build_model, project=project_path, reference=reference_path)[kind]
    res = fn(spec)
    Path(result_path).write_text(json.dumps(res, default=str))


# ---- parent: orchestration, budget, table ---------------------------------------------------------------------

def run_worker(kind:str, spec:dict, work:Path, timeout:float) -> dict:
    "Run one worker process; its result, or a status saying why there is none (oom, timeout, error)."
    tag = f"{kind}-{spec.get('size', '')}"
    spec_path, result_path, log_path = work/f'{tag}.spec.json', work/f'{tag}.result.json', work/f'{tag}.log'
    spec_path.write_text(json.dumps(spec))
    result_path.unlink(missing_ok=True)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])),
           'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false',
           'PYTORCH_CUDA_ALLOC_CONF': os.environ.get('PYTORCH_CUDA_ALLOC_CONF', 'expandable_segments:True')}
    if spec['tiny']: env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    t0 = time.time()
    with open(log_path, 'w') as logf:
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), '--worker', kind, spec_path, result_path],
                             stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try: rc = p.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL); p.wait()
            return dict(status='timeout', wall_s=round(time.time() - t0, 1), log_tail=_tail(log_path))
    wall = round(time.time() - t0, 1)
    if rc == 0 and result_path.exists():
        return dict(json.loads(result_path.read_text()), status='ok', wall_s=wall)
    tail = _tail(log_path)
    status = 'oom' if any(m in tail for m in OOM_MARKERS) else 'error'
    return dict(status=status, returncode=rc, wall_s=wall, log_tail=tail)


def _tail(path:Path, n:int=1500) -> str:
    try: return path.read_text(errors='replace')[-n:]
    except OSError: return ''


def gb(x): return None if x is None else round(x / 1e9, 2)


def table(R:dict) -> str:
    cpu = R['meta']['tiny']
    mem = 'peak RSS increase (GB)' if cpu else 'peak GPU memory (GB)'
    L = [f"| model | path | params | load s | train tokens/s (steady) | train tokens/s (all steps) | {mem} | "
         "generate tokens/s | loss first -> last | status |", '|---|---|---|---|---|---|---|---|---|---|']
    for size, r in R['sizes'].items():
        for path in ('project', 'reference'):
            x = r.get(path, {})
            n = r.get('build', {}).get('n_params')
            params = 'n/a' if not n else f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.3g}M"
            loss = (f"{x['loss_first']:.3f} -> {x['loss_last']:.3f}" if x.get('loss_first') is not None else 'n/a')
            status = x.get('status', r.get('build', {}).get('status', 'not run'))
            L.append(f"| {size} | {path} | {params} | {x.get('load_s', 'n/a')} | {x.get('steady_tokens_per_s', 'n/a')} | "
                     f"{x.get('train_tokens_per_s', 'n/a')} | {gb(x.get('peak_bytes')) if x.get('peak_bytes') is not None else 'n/a'} | "
                     f"{x.get('gen_tokens_per_s', 'n/a')} | {loss} | {status} |")
    L.append('')
    for size, r in R['sizes'].items():
        c = r.get('ratios')
        if c: L.append(f"- {size}: project / reference: train tokens/s {c['train_tokens_per_s']}x (target >= 2x), "
                       f"peak memory {c['peak_memory']}x (target <= 0.6x), generate tokens/s {c['gen_tokens_per_s']}x.")
    if R.get('fits_15gb'): L.append(f"- {R['fits_15gb']}")
    return '\n'.join(L) + '\n'


def fits_line(R:dict, seq:int, batch:int) -> str|None:
    r = R['sizes'].get('7b')
    if not r: return None
    parts = []
    for path in ('project', 'reference'):
        x = r.get(path, {})
        if x.get('status') == 'ok' and x.get('peak_bytes') is not None:
            parts.append(f"{path} path peak {gb(x['peak_bytes'])} GB: {'FITS' if x['peak_bytes'] < T4_BYTES else 'does NOT fit'}")
        else: parts.append(f"{path} path: {x.get('status', 'not run')}")
    return f"7B QLoRA at {seq} tokens x batch {batch} in 15 GB (T4; peak allocated < 15e9 bytes): " + '; '.join(parts) + '.'


def versions() -> dict:
    from importlib.metadata import version
    out = {}
    for pkg in ('torch', 'transformers', 'trl', 'peft', 'bitsandbytes', 'unsloth', 'unsloth_zoo', 'accelerate', 'datasets'):
        try: out[pkg] = version(pkg)
        except Exception: out[pkg] = None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--tiny', action='store_true', help='CPU, tiny shapes, no 4-bit, few steps: checks the script')
    ap.add_argument('--sizes', default='7b,1.5b,0.5b',
                    help=f"comma-separated, run in this order (default: 7B first, the 15 GB question); from {', '.join(k for k in SHAPES if k != 'tiny')}")
    ap.add_argument('--paths', default='project,reference')
    ap.add_argument('--seq', type=int, default=None, help='tokens per training row (default 1024; 128 with --tiny)')
    ap.add_argument('--batch', type=int, default=None, help='rows per step (default 4; 2 with --tiny)')
    ap.add_argument('--steps', type=int, default=None, help='train steps (default 10; 3 with --tiny)')
    ap.add_argument('--gen-batch', type=int, default=None, help='prompts per generation batch (default 32; 4 with --tiny)')
    ap.add_argument('--gen-batches', type=int, default=2)
    ap.add_argument('--new-tokens', type=int, default=None, help='new tokens per prompt (default 64; 8 with --tiny)')
    ap.add_argument('--lora-r', type=int, default=8)
    ap.add_argument('--lora-alpha', type=int, default=16)
    ap.add_argument('--lr', type=float, default=2e-4)
    ap.add_argument('--budget-s', type=float, default=450, help='stop starting new work after this many seconds')
    ap.add_argument('--out', default=None, help='folder for gpu_results.json/.md (default $OUT, else bench/; none with --tiny)')
    ap.add_argument('--work', default=None, help='scratch folder for models (default: a temporary folder)')
    ap.add_argument('--worker', nargs=3, metavar=('KIND', 'SPEC', 'RESULT'), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker: return worker_main(*a.worker)
    t_start = time.time()
    d = dict(seq=128, batch=2, steps=3, gen_batch=4, new_tokens=8) if a.tiny else dict(seq=1024, batch=4, steps=10, gen_batch=32, new_tokens=64)
    for k, v in d.items():
        if getattr(a, k) is None: setattr(a, k, v)
    sizes = ['tiny'] if a.tiny else [s.strip().lower() for s in a.sizes.split(',') if s.strip()]
    unknown = [s for s in sizes if s not in SHAPES]
    if unknown: ap.error(f"unknown sizes {unknown}; known: {', '.join(SHAPES)}")
    paths = [p for p in a.paths.split(',') if p]
    work = Path(a.work or tempfile.mkdtemp(prefix='inoculate-gpu-bench-')); work.mkdir(parents=True, exist_ok=True)
    out = a.out or os.environ.get('OUT') or (None if a.tiny else str(ROOT/'bench'))
    base = dict(tiny=a.tiny, seq=a.seq, batch=a.batch, steps=a.steps, warmup=min(5, a.steps // 3), gen_batch=a.gen_batch,
                gen_batches=a.gen_batches, new_tokens=a.new_tokens, lora_r=a.lora_r, lora_alpha=a.lora_alpha, lr=a.lr,
                seed=0, data_dir=str(work/'data'), n_rows=a.batch * a.steps, n_prompts=a.gen_batch * a.gen_batches,
                tok_vocab=1024 if a.tiny else 4096)
    R = dict(meta=dict(tiny=a.tiny, started=time.strftime('%Y-%m-%d %H:%M:%S'), versions=versions(), loadavg_start=loadavg(),
                       settings={k: base[k] for k in ('seq', 'batch', 'steps', 'warmup', 'gen_batch', 'gen_batches',
                                                      'new_tokens', 'lora_r', 'lora_alpha', 'lr')},
                       command='python bench/gpu_bench.py ' + ' '.join(argv if argv is not None else sys.argv[1:])),
             sizes={})
    left = lambda: a.budget_s - (time.time() - t_start)
    try:
        for size in sizes:
            r = R['sizes'][size] = {}
            if left() < 30:
                r['build'] = dict(status='skipped: time budget spent'); continue
            spec = dict(base, size=size, model_dir=str(work/f'model-{size}'), work=str(work/f'trainer-{size}'))
            log(f"{size}: building a random model ({left():.0f} s of budget left)")
            r['build'] = run_worker('build', spec, work, left())
            if r['build']['status'] != 'ok':
                log(f"{size}: build {r['build']['status']}:\n{r['build'].get('log_tail', '')[-800:]}"); continue
            R['meta'].setdefault('device', r['build'].get('device'))
            for path in paths:
                if left() < 20:
                    r[path] = dict(status='skipped: time budget spent'); continue
                log(f"{size}: {path} path")
                r[path] = run_worker(path, spec, work, left())
                x = r[path]
                log(f"{size}: {path}: {x['status']}, steady {x.get('steady_tokens_per_s')} tokens/s, peak "
                    f"{gb(x.get('peak_bytes'))} GB, generate {x.get('gen_tokens_per_s')} tokens/s")
                if x['status'] != 'ok': log(x.get('log_tail', '')[-800:])
            p, q = r.get('project', {}), r.get('reference', {})
            if p.get('status') == 'ok' and q.get('status') == 'ok':
                r['ratios'] = dict(train_tokens_per_s=ratio(p['steady_tokens_per_s'] or p['train_tokens_per_s'],
                                                            q['steady_tokens_per_s'] or q['train_tokens_per_s']),
                                   peak_memory=ratio(p['peak_bytes'], q['peak_bytes']),
                                   gen_tokens_per_s=ratio(p['gen_tokens_per_s'], q['gen_tokens_per_s']))
            shutil.rmtree(spec['model_dir'], ignore_errors=True); shutil.rmtree(spec['work'], ignore_errors=True)
    finally:
        if not a.work: shutil.rmtree(work, ignore_errors=True)
    R['fits_15gb'] = fits_line(R, a.seq, a.batch)
    R['meta'].update(wall_s=round(time.time() - t_start, 1), loadavg_end=loadavg())
    head = (f"GPU bench ({R['meta'].get('device') or 'no device'}; {'CPU tiny-shape check, no 4-bit' if a.tiny else '4-bit QLoRA'}; "
            f"seq {a.seq}, batch {a.batch}, {a.steps} steps, generation {a.gen_batches} x {a.gen_batch} prompts x "
            f"{a.new_tokens} tokens; {R['meta']['wall_s']} s). Versions: "
            + ', '.join(f"{k} {v}" for k, v in R['meta']['versions'].items() if v) + '.\n\n')
    md = head + table(R)
    if out:
        o = Path(out); o.mkdir(parents=True, exist_ok=True)
        stem = 'gpu_tiny_results' if a.tiny else 'gpu_results'
        (o/f'{stem}.json').write_text(json.dumps(R, indent=1, default=str) + '\n')
        (o/f'{stem}.md').write_text(md)
        log(f"wrote {o/stem}.json and .md")
    print(md)
    return 0 if all(x.get('status') == 'ok' for r in R['sizes'].values() for k, x in r.items() if k in paths) else 1


if __name__ == '__main__':
    sys.exit(main())
