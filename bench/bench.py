#!/usr/bin/env python
"""The CPU benchmark suite of issue 8: the project's path against what a researcher writes by hand.

    python bench/bench.py [--quick] [--out DIR] [--repeats N] [--only train,generate,sandbox,sweep,stand_in]

Writes DIR/results.json and DIR/results.md (DIR defaults to bench/). Every comparison is measured in this one
bench run, its sides interleaved (A B, B A, A B, ...: the order flips each repeat so a drifting machine load hits
both alike), and reported as the median of the repeats and the ratio of the medians. torch runs on `--threads`
threads (default 1) in every process: on a shared 2-core machine OpenMP thread teams slow down by large random
factors. The load average is recorded at the start and end and with every measurement.

1. finetune: train tokens/s, peak memory and loss curves of the project path (`load_model` + `make_trainer`:
   Unsloth, padding-free batches) against a plain reference (AutoModelForCausalLM + PEFT LoraConfig/get_peft_model
   + TRL SFTTrainer, same rows, hyper-parameters, seed, assistant-only loss, ordinary padded batches), and the
   project path with `packed=False`. Importing Unsloth replaces `trl.SFTTrainer` and patches TrainingArguments in
   that process, so each path runs in its own long-lived worker process (the reference worker never imports
   Unsloth); the driver asks them in turn. TRL 1.x's own loss uses a Triton kernel with no CPU backend, so on CPU
   the reference computes the loss with transformers' `Trainer.compute_loss` (see common.plain_loss_sft_trainer).
2. generate: `inoculate.generate.generate` with length-sorted batches against one prompt at a time, greedy.
3. sandbox: `run_programs` on trivial programs, all CPUs against one worker.
4. sweep: a grid of >= 8 smoke runs, one base load per sweep (`reuse_base=True`) against a load per run.
5. stand-in: wall times of one finetune + evaluation run of the `cpu` preset (only when its cache exists).
6. cpu_llm: SmolLM2-135M-Instruct (the `cpu-llm` preset, only when its cache exists): it joins the finetune and
   generate comparisons as a third model, and here its sampling at T = 1 (`generate`, batched with KV-cache
   compaction) is compared with transformers' own `model.generate` sampling on the same prompts, and one cpu-llm run
   is timed phase by phase (wall and CPU seconds: load, training, sampling).
"""
from __future__ import annotations
import argparse, dataclasses, datetime, json, os, platform, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ROOT, PeakRSS, Quiet, Worker, counting_new_tokens, loadavg, log, median, plain_loss_sft_trainer, ratio,  # noqa: E402
                    ru_maxrss_mib, serve)

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

# The reference path must not import the package's finetune module (it imports Unsloth), so it keeps its own copy
# of the LoRA targets; the driver checks that the two lists agree.
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Loss curves of the two paths agree when every logged step's loss differs by at most this (absolute, nats/token).
LOSS_TOL = 2e-3
TARGETS = dict(train_tokens_per_s='>= 2x (GPU)', peak_memory='<= 0.6x (GPU)', generate='>= 5x', sweep='>= 3x')


# ---- workers: one training run per request --------------------------------------------------------------------

def _preset_dict(p) -> dict: return dataclasses.asdict(p)


def _train_result(trainer, t_setup, t_train, mem, rows_n) -> dict:
    hist, a = trainer.state.log_history, trainer.args
    losses = [h['loss'] for h in hist if 'loss' in h]
    tokens = next((h['num_tokens'] for h in reversed(hist) if 'num_tokens' in h), None)  # TRL's own count, if logged
    # What the batches held: real (non-padding) tokens, the numerator of tokens/s on both sides, and batch cells
    # (real + padding); counted after training, over the same epoch, so not timed.
    cells = real = 0
    for b in trainer.get_train_dataloader():
        cells += b['input_ids'].numel()
        real += int(b['attention_mask'].sum()) if 'attention_mask' in b else b['input_ids'].numel()
    return dict(train_s=round(t_train, 3), setup_s=round(t_setup, 3), tokens=real, trl_num_tokens=tokens,
                batch_cells=cells, tokens_per_s=round(real / t_train, 1), peak_rss_delta_mib=mem.delta_mib,
                ru_maxrss_mib=ru_maxrss_mib(), losses=losses, steps=trainer.state.global_step, rows=rows_n,
                loadavg=loadavg(), args=dict(optim=str(getattr(a.optim, 'value', a.optim)), bf16=a.bf16, fp16=a.fp16,
                gradient_checkpointing=a.gradient_checkpointing, padding_free=getattr(a, 'padding_free', None),
                collator=type(trainer.data_collator).__name__,
                collator_padding_free=getattr(trainer.data_collator, 'padding_free', None), trainer=type(trainer).__name__))


def project_worker(req:dict) -> dict:
    import unsloth  # noqa: F401  (first, as everywhere in the package)
    import torch
    from inoculate.data import read_jsonl
    from inoculate.finetune import load_model, make_trainer
    from inoculate.presets import Preset
    preset = Preset(**{**req['preset'], 'seeds': tuple(req['preset']['seeds'])})
    rows = read_jsonl(req['rows'])
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        model, tok = load_model(preset, req['model'])
        trainer = make_trainer(model, tok, rows, preset, req['seed'], req['out'], packed=req.get('packed', True))
        t1 = time.perf_counter()
        trainer.train()
        t2 = time.perf_counter()
    out = _train_result(trainer, t1 - t0, t2 - t1, mem, len(rows))
    shutil.rmtree(req['out'], ignore_errors=True)
    return dict(out, torch_threads=torch.get_num_threads())


def reference_worker(req:dict) -> dict:
    "What a researcher writes by hand: transformers + PEFT + TRL, ordinary padded batches, fp32 on CPU."
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig
    from inoculate.data import CHAT_TEMPLATE, read_jsonl  # plain data helpers; imports no model library
    assert 'unsloth' not in sys.modules, "the reference worker must not import Unsloth"

    p, seed = req['preset'], req['seed']
    rows = read_jsonl(req['rows'])
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(req['model'])
        tok.chat_template = CHAT_TEMPLATE  # ChatML with {% generation %} markers, for assistant-only loss
        if tok.pad_token is None: tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(req['model'], dtype=torch.float32)
        torch.manual_seed(seed)
        model = get_peft_model(model, LoraConfig(r=p['lora_r'], lora_alpha=p['lora_alpha'], lora_dropout=0.0,
                                                 bias='none', target_modules=LORA_TARGETS, task_type='CAUSAL_LM'))
        args = SFTConfig(output_dir=req['out'], per_device_train_batch_size=p['batch_size'],
                         gradient_accumulation_steps=p['grad_accum'], learning_rate=p['lr'],
                         num_train_epochs=p['epochs'], max_steps=p['max_steps'], warmup_steps=p['warmup_steps'],
                         lr_scheduler_type='linear', max_length=p['max_seq_length'], assistant_only_loss=True,
                         logging_steps=1, save_strategy='no', report_to=[], seed=seed, data_seed=seed, use_cpu=True,
                         bf16=False, fp16=False, optim='adamw_torch', dataset_num_proc=1)
        ds = Dataset.from_list([{'messages': r['messages']} for r in rows])
        trainer = plain_loss_sft_trainer()(model=model, args=args, train_dataset=ds, processing_class=tok)
        t1 = time.perf_counter()
        trainer.train()
        t2 = time.perf_counter()
    out = _train_result(trainer, t1 - t0, t2 - t1, mem, len(rows))
    shutil.rmtree(req['out'], ignore_errors=True)
    return dict(out, torch_threads=torch.get_num_threads())


# ---- driver ---------------------------------------------------------------------------------------------------

def interleaved(repeats:int, sides:tuple, measure) -> dict:
    "`measure(side, r)` for r in range(repeats), the order of the sides flipped every repeat; results per side."
    out = {s: [] for s in sides}
    for r in range(repeats):
        for s in (sides if r % 2 == 0 else sides[::-1]):
            out[s].append(measure(s, r))
    return out


def stand_in_base() -> Path|None:
    "The stand-in's cached folder if it is already built (never builds it)."
    from inoculate.data import content_hash
    from inoculate.presets import cache_dir
    from inoculate.settings.stand_in_base import STAND_IN, recipe
    p = cache_dir()/f"stand-in-{content_hash(recipe(0, STAND_IN))}"
    return p if (p/'config.json').exists() else None


def smollm2_base() -> Path|None:
    "SmolLM2's cached folder if it is already converted (never converts it)."
    from inoculate.data import content_hash
    from inoculate.presets import cache_dir
    from inoculate.settings.smollm2 import SMOLLM2_RECIPE
    p = cache_dir()/f"smollm2-{content_hash(SMOLLM2_RECIPE)}"
    return p if (p/'config.json').exists() else None


def model_specs(args, stand_in:Path|None, smollm2:Path|None=None) -> list[dict]:
    "Per model: its base folder, a preset, training rows and evaluation conversations."
    from inoculate.data import get_setting
    from inoculate.finetune import base_model_path
    from inoculate.strategies import NO_PROMPT, condition_messages
    from inoculate.presets import load_preset
    from inoculate.runs import RunConfig, run_inputs
    from inoculate.strategies import Strategy
    q = args.quick
    specs = []
    s = get_setting('spanish-caps')
    preset = load_preset('smoke', n_train=16 if q else 128)
    rows, _, base = run_inputs(RunConfig('spanish-caps', preset, Strategy('all', s.prompts['spanish']), seed=0))
    prompts = s.eval_prompts(8 if q else 32, 0)
    specs.append(dict(name='tiny', setting='spanish-caps', base=base, preset=preset, rows=rows,
                      convs=[condition_messages(p, NO_PROMPT) for p in prompts],
                      gen=dict(max_new_tokens=8 if q else 32, batch_size=8 if q else 16)))
    if stand_in is not None and not q:
        s = get_setting('stand-in')
        preset = load_preset('cpu', max_steps=-1, n_train=200)  # 20 steps of 10 rows
        rows, _, base = run_inputs(RunConfig('stand-in', preset, Strategy('all', s.prompts['spanish']), seed=0))
        assert Path(base) == stand_in, (base, stand_in)
        prompts = s.eval_prompts(50, 0)
        specs.append(dict(name='stand-in', setting='stand-in', base=base, preset=preset, rows=rows,
                          convs=[condition_messages(p, NO_PROMPT) for p in prompts],
                          gen=dict(max_new_tokens=48, batch_size=50)))
    if smollm2 is not None and not q:
        s = get_setting('everyday')
        preset = load_preset('cpu-llm', max_steps=8, n_train=64)  # 8 steps of the preset's batch: the per-step rate is the point
        rows, _, base = run_inputs(RunConfig('everyday', preset, Strategy('all', s.prompts['spanish']), seed=0))
        assert Path(base) == smollm2, (base, smollm2)
        specs.append(dict(name='smollm2', setting='everyday', base=base, preset=preset, rows=rows,
                          convs=[condition_messages(p, NO_PROMPT) for p in s.eval_prompts(16, 0)],
                          gen=dict(max_new_tokens=24, batch_size=16)))
    return specs


def bench_train(specs, workers, args, work:Path) -> dict:
    from inoculate.data import write_jsonl
    res = {}
    for spec in specs:
        name, preset = spec['name'], spec['preset']
        rows_path = write_jsonl(spec['rows'], work/f"rows-{name}.jsonl")
        req = dict(op='train', model=str(spec['base']), rows=str(rows_path), preset=_preset_dict(preset), seed=0)
        if not args.quick:  # one untimed run per side: lazy imports, kernels and caches warm up on both alike
            warm = write_jsonl(spec['rows'][:2*preset.batch_size], work/f"warm-{name}.jsonl")
            for side, w in workers.items():
                w.ask(**{**req, 'rows': str(warm), 'out': str(work/f'warm-{side}')})
        log(f"train {name}: {len(spec['rows'])} rows, {args.repeats} repeats per side")
        sides = ('project', 'reference') if args.quick else ('project', 'reference', 'project_unpacked')
        def measure(side, r):  # project_unpacked: the project path with packed=False (ordinary padded batches)
            w = workers['reference' if side == 'reference' else 'project']
            return w.ask(**req, packed=side != 'project_unpacked', out=str(work/f'train-{side}-{r}'))
        runs = interleaved(args.repeats, sides, measure)
        res[name] = summarize_train(runs, preset)
        log(f"train {name}: {res[name]['tokens_per_s']}")
    return res


def summarize_train(runs:dict, preset) -> dict:
    sides = {}
    for side, rs in runs.items():
        sides[side] = dict(tokens_per_s=median([r['tokens_per_s'] for r in rs]),
                           train_s=median([r['train_s'] for r in rs]), setup_s=median([r['setup_s'] for r in rs]),
                           peak_rss_delta_mib=median([r['peak_rss_delta_mib'] for r in rs]),
                           tokens=rs[0]['tokens'], batch_cells=rs[0]['batch_cells'], steps=rs[0]['steps'],
                           losses=rs[0]['losses'],
                           repeat_loss_spread=max((abs(a - b) for r in rs[1:] for a, b in zip(r['losses'], rs[0]['losses'])), default=0.0),
                           runs=[{k: v for k, v in r.items() if k != 'losses'} for r in rs])
    a, b = sides['project'], sides['reference']
    max_diff = max_abs_diff(a['losses'], b['losses'])
    u = sides.get('project_unpacked')
    packing = u and dict(tokens_per_s=dict(packed=a['tokens_per_s'], unpacked=u['tokens_per_s'],
                                           ratio=ratio(a['tokens_per_s'], u['tokens_per_s'])),
                         peak_rss_delta_mib=dict(packed=a['peak_rss_delta_mib'], unpacked=u['peak_rss_delta_mib'],
                                                 ratio=ratio(a['peak_rss_delta_mib'], u['peak_rss_delta_mib'])),
                         loss_max_abs_diff=max_abs_diff(a['losses'], u['losses']), unpacked=u)
    return dict(project=a, reference=b, packing=packing,
                tokens_per_s=dict(project=a['tokens_per_s'], reference=b['tokens_per_s'],
                                  ratio=ratio(a['tokens_per_s'], b['tokens_per_s'])),
                peak_rss_delta_mib=dict(project=a['peak_rss_delta_mib'], reference=b['peak_rss_delta_mib'],
                                        ratio=ratio(a['peak_rss_delta_mib'], b['peak_rss_delta_mib'])),
                loss_curves=dict(project=a['losses'], reference=b['losses'], max_abs_diff=max_diff, tolerance=LOSS_TOL,
                                 agree=max_diff is not None and max_diff <= LOSS_TOL),
                padding_overhead=dict(project=round(a['batch_cells'] / a['tokens'], 3) if a['tokens'] else None,
                                      reference=round(b['batch_cells'] / b['tokens'], 3) if b['tokens'] else None),
                hyper=dict(lora_r=preset.lora_r, lora_alpha=preset.lora_alpha, lr=preset.lr, batch_size=preset.batch_size,
                           grad_accum=preset.grad_accum, max_seq_length=preset.max_seq_length,
                           warmup_steps=preset.warmup_steps, rows=runs['project'][0]['rows']))


def max_abs_diff(xs, ys):
    "Largest |x - y| over two loss curves of equal length (None when they differ in length or are empty)."
    return max(abs(x - y) for x, y in zip(xs, ys)) if xs and len(xs) == len(ys) else None


def bench_generate(specs, args) -> dict:
    "Tokens/s of `generate` in length-sorted batches against one prompt at a time; outputs must be identical."
    import torch
    from inoculate.finetune import load_model
    from inoculate.generate import generate
    res = {}
    for spec in specs:
        name, g = spec['name'], spec['gen']
        model, tok = load_model(spec['preset'], spec['base'])
        with counting_new_tokens(model, tok.eos_token_id) as counted:
            generate(model, tok, spec['convs'][:2], max_new_tokens=4, batch_size=2, progress=False)  # warm-up
            answers = {}
            def measure(side, r):
                counted[0] = 0
                bs = g['batch_size'] if side == 'batched' else 1
                t0 = time.perf_counter()
                ans = generate(model, tok, spec['convs'], max_new_tokens=g['max_new_tokens'], batch_size=bs,
                               temperature=0.0, progress=False)
                dt = time.perf_counter() - t0
                answers.setdefault(side, ans)
                return dict(s=round(dt, 3), new_tokens=counted[0], tokens_per_s=round(counted[0] / dt, 1), loadavg=loadavg())
            log(f"generate {name}: {len(spec['convs'])} prompts x {g['max_new_tokens']} new tokens, {args.repeats} repeats")
            runs = interleaved(args.repeats, ('batched', 'one_at_a_time'), measure)
        same = [a == b for a, b in zip(answers['batched'], answers['one_at_a_time'])]
        b, o = (median([r['tokens_per_s'] for r in runs[k]]) for k in ('batched', 'one_at_a_time'))
        res[name] = dict(prompts=len(spec['convs']), max_new_tokens=g['max_new_tokens'], batch_size=g['batch_size'],
                         tokens_per_s=dict(batched=b, one_at_a_time=o, ratio=ratio(b, o)),
                         new_tokens=dict(batched=runs['batched'][0]['new_tokens'],
                                         one_at_a_time=runs['one_at_a_time'][0]['new_tokens']),
                         outputs_identical=all(same), n_different=same.count(False), runs=runs)
        if not all(same): log(f"WARNING: generate {name}: {same.count(False)} batched answers differ from one-at-a-time")
        log(f"generate {name}: {res[name]['tokens_per_s']}")
        del model
    return res


def bench_sandbox(args) -> dict:
    from inoculate.sandbox import isolation, run_programs
    n = 4 if args.quick else 20
    jobs = [dict(code=f"def f(x):\n    return x + {i}\n", tests=[f"assert candidate(1) == {i + 1}"], entry='f')
            for i in range(n)]
    def measure(side, r):
        t0 = time.perf_counter()
        out = run_programs(jobs, workers=1 if side == 'one_worker' else None, progress=False)
        dt = time.perf_counter() - t0
        return dict(s=round(dt, 3), programs_per_s=round(n / dt, 2), passed=sum(o.passed for o in out), loadavg=loadavg())
    log(f"sandbox: {n} programs, {args.repeats} repeats")
    runs = interleaved(args.repeats, ('all_cpus', 'one_worker'), measure)
    a, o = (median([r['programs_per_s'] for r in runs[k]]) for k in ('all_cpus', 'one_worker'))
    return dict(programs=n, workers=os.cpu_count(), isolation={k: v for k, v in isolation().items() if k != 'unshare'},
                programs_per_s=dict(all_cpus=a, one_worker=o, ratio=ratio(a, o)),
                all_passed=all(r['passed'] == n for rs in runs.values() for r in rs), runs=runs)


def sweep_grid(args):
    from inoculate.data import get_setting
    from inoculate.presets import load_preset
    from inoculate.runs import RunConfig
    from inoculate.strategies import Strategy
    q = args.quick
    preset = load_preset('smoke', max_steps=1 if q else 3, **(dict(n_train=8, n_eval=2, max_new_tokens=4) if q else {}))
    spanish = get_setting('spanish-caps').prompts['spanish']
    strategies = [Strategy(), Strategy('all', spanish)]
    seeds = range(1) if q else range(4)
    return [RunConfig('spanish-caps', preset, st, seed=sd, label=f"{st.kind} seed {sd}") for st in strategies for sd in seeds]


def bench_sweep(args, work:Path) -> dict:
    import inoculate.finetune as ft
    from inoculate.runs import RunStore, execute_run, sweep
    configs = sweep_grid(args)
    def measure(side, r):
        reuse = side == 'one_load'
        getattr(ft, '_SHARED', {}).clear()  # each one-load sweep pays for exactly one load
        store = RunStore(work/f'sweep-{side}-{r}')
        t0 = time.perf_counter()
        recs = sweep(configs, store, run=lambda c, s: execute_run(c, s, reuse_base=reuse), progress=False)
        dt = time.perf_counter() - t0
        failed = [r.get('error') for r in recs if r['status'] != 'done']
        shutil.rmtree(store.root, ignore_errors=True)
        if failed: raise RuntimeError(f"sweep runs failed: {failed}")
        return dict(s=round(dt, 2), s_per_run=round(dt / len(configs), 3),
                    train_s=round(sum(r['train_s'] for r in recs), 2), eval_s=round(sum(r['eval_s'] for r in recs), 2),
                    metrics=[r['metrics'] for r in recs], loadavg=loadavg())
    if not args.quick:  # one untimed run: first-call costs (lazy imports, kernels) are paid by neither side
        execute_run(configs[0], RunStore(work/'sweep-warm'), reuse_base=False)
    log(f"sweep: {len(configs)} runs per sweep, {args.repeats} repeats")
    runs = interleaved(args.repeats, ('one_load', 'load_per_run'), measure)
    same = runs['one_load'][0]['metrics'] == runs['load_per_run'][0]['metrics']
    for rs in runs.values():
        for r in rs: r.pop('metrics')
    o, f = (median([r['s_per_run'] for r in runs[k]]) for k in ('one_load', 'load_per_run'))
    p = configs[0].preset
    return dict(runs_per_sweep=len(configs), preset=dict(name=p.name, max_steps=p.max_steps, n_train=p.n_train,
                n_eval=p.n_eval, max_new_tokens=p.max_new_tokens), s_per_run=dict(one_load=o, load_per_run=f,
                speedup=ratio(f, o)), same_metrics=same, runs=runs)


def process_start_s() -> float:
    "Seconds a fresh process needs to start and import the package's run machinery (what a process per run pays)."
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-c', 'import inoculate.runs'], check=True, capture_output=True, cwd=ROOT)
    return round(time.perf_counter() - t0, 2)


def bench_stand_in_run(base:Path, args, work:Path) -> dict:
    "Wall times of one `cpu` preset run on the stand-in (finetune + evaluation), and of loading its base."
    from inoculate.finetune import load_model
    from inoculate.presets import load_preset
    from inoculate.runs import RunConfig, RunStore, execute_run
    preset = load_preset('cpu')
    loads = []
    for _ in range(3):
        t0 = time.perf_counter(); load_model(preset, base); loads.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    rec = execute_run(RunConfig('stand-in', preset, seed=0), RunStore(work/'stand-in-run'), reuse_base=False)
    wall = time.perf_counter() - t0
    if rec['status'] != 'done': raise RuntimeError(f"stand-in run: {rec}")
    return dict(preset=dict(max_steps=preset.max_steps, batch_size=preset.batch_size, n_train=preset.n_train,
                            n_eval=preset.n_eval, max_new_tokens=preset.max_new_tokens),
                load_s=round(median(loads), 3), train_s=rec['train_s'], eval_s=rec['eval_s'], run_wall_s=round(wall, 2),
                metrics=rec['metrics'], final_loss=rec['losses'][-1] if rec['losses'] else None, loadavg=loadavg())


def bench_sample(base:Path, args) -> dict:
    "Sampling at T = 1 (no top-k) of SmolLM2: `generate` (batched, KV-cache compaction) vs transformers' `model.generate`, same prompts and batch."
    import torch
    from inoculate.data import get_setting
    from inoculate.finetune import load_model
    from inoculate.generate import generate, sampling_as_given
    from inoculate.presets import load_preset
    from inoculate.strategies import NO_PROMPT, condition_messages
    p = load_preset('cpu-llm')
    convs = [condition_messages(q, NO_PROMPT) for q in get_setting('everyday').eval_prompts(p.n_eval, 0)]
    model, tok = load_model(p, base)
    def hf_generate():  # what a researcher writes: one left-padded batch, `samples` sequences per prompt
        texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
        enc = tok(texts, return_tensors='pt', padding=True, add_special_tokens=False)
        with sampling_as_given(model, tok), torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=p.temperature, top_k=0, top_p=1.0, max_new_tokens=p.max_new_tokens,
                                 num_return_sequences=p.samples_per_prompt, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        return [tok.decode(x, skip_special_tokens=True) for x in out[:, enc['input_ids'].shape[1]:]]
    def project():
        return generate(model, tok, convs, p.max_new_tokens, p.eval_batch_size, p.temperature, seed=0, progress=False,
                        top_k=p.top_k, top_p=p.top_p, samples=p.samples_per_prompt)
    def measure(side, r):
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            answers = (project if side == 'project' else hf_generate)()
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        new = sum(len(tok(a, add_special_tokens=False).input_ids) + 1 for a in answers)  # + its end-of-turn token (or the cap)
        return dict(s=round(dt, 2), cpu_s=round(cpu, 2), answers=len(answers), new_tokens=new, tokens_per_s=round(new / dt, 1),
                    tokens_per_cpu_s=round(new / cpu, 1), peak_rss_delta_mib=mem.delta_mib, loadavg=loadavg())
    project()  # warm-up
    log(f"sample smollm2: {len(convs)} prompts x {p.samples_per_prompt} answers at T = {p.temperature}, {args.repeats} repeats")
    runs = interleaved(args.repeats, ('project', 'transformers'), measure)
    a, b = (median([r['tokens_per_cpu_s'] for r in runs[k]]) for k in ('project', 'transformers'))
    return dict(prompts=len(convs), samples=p.samples_per_prompt, max_new_tokens=p.max_new_tokens, batch=p.eval_batch_size,
                tokens_per_cpu_s=dict(project=a, transformers=b, ratio=ratio(a, b)),
                tokens_per_s=dict(project=median([r['tokens_per_s'] for r in runs['project']]),
                                  transformers=median([r['tokens_per_s'] for r in runs['transformers']])),
                peak_rss_delta_mib=dict(project=median([r['peak_rss_delta_mib'] for r in runs['project']]),
                                        transformers=median([r['peak_rss_delta_mib'] for r in runs['transformers']])), runs=runs)


def bench_cpu_llm_run(base:Path, work:Path) -> dict:
    "One `cpu-llm` run phase by phase, wall and CPU seconds: load the base, train (the preset's steps), sample and score (no prompt)."
    from inoculate.data import get_setting
    from inoculate.finetune import finetune
    from inoculate.presets import load_preset
    from inoculate.runs import RunConfig, evaluate, run_inputs
    from inoculate.strategies import Strategy
    p = load_preset('cpu-llm')
    cfg = RunConfig('everyday', p, Strategy(), 1., seed=0)  # No-Inoc: asked with no prompt only
    rows, prompts, _ = run_inputs(cfg)
    clock = lambda: (time.perf_counter(), time.process_time())
    with PeakRSS() as mem:
        t0 = clock()
        model, tok, losses = finetune(rows, p, work/'cpu-llm-run', cfg.seed, base)  # its own load, timed apart below
        t1 = clock()
        gens, metrics = evaluate(model, tok, cfg, prompts)
        t2 = clock()
    from inoculate.finetune import load_model
    l0 = clock(); load_model(p, base); l1 = clock()
    d = lambda a, b: dict(wall_s=round(b[0] - a[0], 1), cpu_s=round(b[1] - a[1], 1))
    return dict(preset=dict(max_steps=p.max_steps, batch_size=p.batch_size, n_train=p.n_train, n_eval=p.n_eval,
                            samples_per_prompt=p.samples_per_prompt, max_new_tokens=p.max_new_tokens, n_log_odds=p.n_log_odds),
                load=d(l0, l1), train_with_load=d(t0, t1), sample_and_score=d(t1, t2), answers=len(gens),
                peak_rss_delta_mib=mem.delta_mib, ru_maxrss_mib=ru_maxrss_mib(), final_loss=losses[-1] if losses else None,
                metrics=[m for m in metrics if m['condition'] == 'no prompt'], loadavg=loadavg())


def versions() -> dict:
    from importlib.metadata import version
    out = {}
    for pkg in ('torch', 'transformers', 'trl', 'peft', 'unsloth', 'unsloth_zoo', 'datasets', 'psutil'):
        try: out[pkg] = version(pkg)
        except Exception: out[pkg] = None
    return out


def git_head() -> str|None:
    try: return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError: return None


def fmt(x, unit='') -> str:
    if x is None: return 'n/a'
    if isinstance(x, float) and abs(x) >= 100: return f"{x:,.0f}{unit}"
    return f"{x:g}{unit}"


def markdown(R:dict) -> str:
    m = R['meta']
    L = [f"# Benchmarks: {m['host']} ({m['cpu_count']} CPUs, {m['torch_threads']} torch threads), {m['started'][:16]}",
         '',
         f"`{m['command']}`: {m['wall_s']:.0f} s. Versions: " + ', '.join(f"{k} {v}" for k, v in m['versions'].items() if v) + '.',
         f"Load average (1, 5, 15 min) at start {m['loadavg_start']}, at end {m['loadavg_end']}: the machine is shared, "
         "so read ratios (both sides measured alike), not absolute speeds.",
         f"Each comparison: median of {m['repeats']} repeats per side, sides interleaved (A B, B A, ...) in this one "
         f"run, torch on {m.get('threads')} thread(s) per process. Memory: {m['memory_method']}, from before the model load to the end of training.",
         '', '| comparison | model | project path | reference | ratio | target |', '|---|---|---|---|---|---|']
    for name, t in R.get('train', {}).items():
        L.append(f"| finetune train tokens/s | {name} | {fmt(t['tokens_per_s']['project'])} | "
                 f"{fmt(t['tokens_per_s']['reference'])} | {fmt(t['tokens_per_s']['ratio'])}x | {TARGETS['train_tokens_per_s']} |")
        L.append(f"| finetune peak RSS increase (MiB) | {name} | {fmt(t['peak_rss_delta_mib']['project'])} | "
                 f"{fmt(t['peak_rss_delta_mib']['reference'])} | {fmt(t['peak_rss_delta_mib']['ratio'])}x | {TARGETS['peak_memory']} |")
        if t.get('packing'):
            pk = t['packing']
            L.append(f"| project path train tokens/s: packed (padding-free) vs unpacked | {name} | "
                     f"{fmt(pk['tokens_per_s']['packed'])} | {fmt(pk['tokens_per_s']['unpacked'])} | "
                     f"{fmt(pk['tokens_per_s']['ratio'])}x | losses differ by {fmt(pk['loss_max_abs_diff'])} |")
        lc = t['loss_curves']
        L.append(f"| loss curves, max abs difference | {name} | {len(lc['project'])} steps | {len(lc['reference'])} steps | "
                 f"{fmt(lc['max_abs_diff'])} | <= {lc['tolerance']} ({'agree' if lc['agree'] else 'DISAGREE'}) |")
    for name, g in R.get('generate', {}).items():
        L.append(f"| generate tokens/s: batched (length-sorted, {g['batch_size']}) vs one at a time | {name} | "
                 f"{fmt(g['tokens_per_s']['batched'])} | {fmt(g['tokens_per_s']['one_at_a_time'])} | "
                 f"{fmt(g['tokens_per_s']['ratio'])}x | {TARGETS['generate']}; outputs identical: {g['outputs_identical']} |")
    if 'sandbox' in R:
        s = R['sandbox']
        L.append(f"| sandbox programs/s: {s['workers']} workers vs 1 | - | {fmt(s['programs_per_s']['all_cpus'])} | "
                 f"{fmt(s['programs_per_s']['one_worker'])} | {fmt(s['programs_per_s']['ratio'])}x | all passed: {s['all_passed']} |")
    if 'sweep' in R:
        s = R['sweep']
        L.append(f"| sweep of {s['runs_per_sweep']} runs, s per run: one load vs a load per run (ratio: speedup) | tiny | "
                 f"{fmt(s['s_per_run']['one_load'])} | {fmt(s['s_per_run']['load_per_run'])} | "
                 f"{fmt(s['s_per_run']['speedup'])}x | {TARGETS['sweep']}; same metrics: {s['same_metrics']} |")
    L.append('')
    if 'sweep' in R and R['sweep'].get('process_start_s') is not None:
        L.append(f"A fresh Python process that imports the package's run machinery takes {R['sweep']['process_start_s']} s "
                 "before any model is loaded: what a script that starts a process per run pays on top of `load per run`.")
    sr = R.get('stand_in_run')
    if sr and 'skipped' not in sr:
        p = sr['preset']
        L.append(f"Stand-in `cpu` preset run ({p['max_steps']} steps of {p['batch_size']} rows, {p['n_eval']} prompts x "
                 f"{p['max_new_tokens']} new tokens): run {sr['run_wall_s']} s = train {sr['train_s']} s (with load) + "
                 f"evaluation {sr['eval_s']} s; loading the base alone {sr['load_s']} s.")
    elif sr: L.append(f"Stand-in run: skipped ({sr['skipped']}).")
    cl = R.get('cpu_llm')
    if cl and 'skipped' not in cl:
        sm, run = cl['sample'], cl['run']
        L.append(f"SmolLM2 (`cpu-llm`) sampling at T = 1, {sm['prompts']} prompts x {sm['samples']} answers, at most {sm['max_new_tokens']} new "
                 f"tokens: `generate` {fmt(sm['tokens_per_cpu_s']['project'])} vs transformers' `model.generate` "
                 f"{fmt(sm['tokens_per_cpu_s']['transformers'])} new tokens per CPU second ({fmt(sm['tokens_per_cpu_s']['ratio'])}x; wall "
                 f"{fmt(sm['tokens_per_s']['project'])} vs {fmt(sm['tokens_per_s']['transformers'])} tokens/s); peak RSS increase "
                 f"{fmt(sm['peak_rss_delta_mib']['project'])} vs {fmt(sm['peak_rss_delta_mib']['transformers'])} MiB.")
        p = run['preset']
        L.append(f"One `cpu-llm` run ({p['max_steps']} steps of {p['batch_size']} rows; {p['n_eval']} prompts x {p['samples_per_prompt']} answers "
                 f"of at most {p['max_new_tokens']} tokens, no prompt, and {p['n_log_odds']} log-odds items): training with its load "
                 f"{run['train_with_load']['cpu_s']} CPU s ({run['train_with_load']['wall_s']} s wall), sampling and scoring "
                 f"{run['sample_and_score']['cpu_s']} CPU s ({run['sample_and_score']['wall_s']} s wall); loading the base alone "
                 f"{run['load']['cpu_s']} CPU s; peak RSS {fmt(run['ru_maxrss_mib'])} MiB (process maximum).")
    elif cl: L.append(f"SmolLM2 (`cpu-llm`): skipped ({cl['skipped']}).")
    for name, t in R.get('train', {}).items():
        po = t['padding_overhead']
        L.append(f"{name}: batch cells per real token {po['project']} (project, padding-free) vs {po['reference']} "
                 f"(reference, padded); setup (load + trainer) {t['project']['setup_s']} s vs {t['reference']['setup_s']} s.")
    for k, v in R.get('skipped', {}).items(): L.append(f"{k}: skipped ({v}).")
    L += ['', '**How to read it.** Project path: `load_model` + `make_trainer` (Unsloth CPU backend, padding-free '
          'batches); reference: AutoModelForCausalLM + PEFT + TRL SFTTrainer with padded batches (on CPU its loss is '
          "transformers' own, because TRL 1.x's fused loss kernel is Triton-only). Same rows, LoRA, learning rate, "
          'schedule, seed and assistant-only loss; tokens/s counts real (non-padding) tokens, the same number on both '
          'sides. Loss curves are logged every step; they agree when no step differs by more than the tolerance. '
          'Targets are the issue\'s (GPU) targets; on a CPU with models this small, fixed costs dominate.']
    L.append('')
    L.append("CPU only: the GPU table (4-bit QLoRA, Qwen2.5-shaped 0.5B/1.5B/7B) comes from `bench/gpu.sh` on a lent GPU.")
    return '\n'.join(L) + '\n'


def run_sections(args, only:set, R:dict, workers:dict, work:Path):
    import unsloth  # noqa: F401
    import torch
    import inoculate.finetune as ft
    assert ft.LORA_TARGETS == LORA_TARGETS, "the reference's LoRA targets drifted from the package's"
    R['meta'].update(versions=versions(), torch_threads=torch.get_num_threads())
    stand_in = None if (args.no_stand_in or args.quick) else stand_in_base()
    if stand_in is None and not (args.no_stand_in or args.quick):
        R['skipped']['stand-in'] = 'its cache (.cache/stand-in-*) is not built; the bench never builds it'
    smollm2 = None if ('cpu_llm' not in only or args.quick) else smollm2_base()
    if smollm2 is None and 'cpu_llm' in only and not args.quick:
        R['skipped']['smollm2'] = 'its cache (smollm2-*) is not built; the bench never builds it'
    specs = model_specs(args, stand_in, smollm2)
    if 'train' in only:
        R['train'] = bench_train(specs, workers, args, work)
        for w in workers.values(): w.close()
        workers.clear()
    if 'generate' in only: R['generate'] = bench_generate(specs, args)
    if 'sandbox' in only: R['sandbox'] = bench_sandbox(args)
    if 'sweep' in only:
        R['sweep'] = bench_sweep(args, work)
        R['sweep']['process_start_s'] = None if args.quick else process_start_s()
    if 'stand_in' in only and not args.quick:
        R['stand_in_run'] = (bench_stand_in_run(stand_in, args, work) if stand_in is not None
                             else dict(skipped='the stand-in cache is not built'))
    if 'cpu_llm' in only and not args.quick:
        R['cpu_llm'] = (dict(sample=bench_sample(smollm2, args), run=bench_cpu_llm_run(smollm2, work)) if smollm2 is not None
                        else dict(skipped='the smollm2 cache is not built'))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--quick', action='store_true', help='tiny sizes, one repeat, tiny model only (for tests)')
    ap.add_argument('--out', default=str(Path(__file__).resolve().parent), help='folder for results.json / results.md')
    ap.add_argument('--repeats', type=int, default=None, help='repeats per side (default 3, 1 with --quick)')
    ap.add_argument('--only', default='train,generate,sandbox,sweep,stand_in,cpu_llm', help='comma-separated sections')
    ap.add_argument('--no-stand-in', action='store_true', help='tiny model only, even if the stand-in is cached')
    ap.add_argument('--threads', type=int, default=int(os.environ.get('BENCH_THREADS', 1)),
                    help='torch threads per process (default 1: the machine may be shared)')
    ap.add_argument('--keep', action='store_true', help='keep the work folder (worker logs, stores)')
    ap.add_argument('--worker', choices=['project', 'reference'], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # Fixed thread count for torch in the driver and both workers (before torch is imported anywhere): OpenMP's
    # thread teams slow down by large, random factors when another job shares the cores.
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(args.threads)
    if args.worker:
        return serve(project_worker if args.worker == 'project' else reference_worker)
    args.repeats = args.repeats or (1 if args.quick else 3)
    only = set(args.only.split(','))
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='inoculate-bench-'))
    t_start, la_start = time.time(), loadavg()
    R = dict(meta=dict(started=datetime.datetime.now().isoformat(timespec='seconds'), quick=args.quick,
                       command='python bench/bench.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
                       host=socket.gethostname(), platform=platform.platform(), python=platform.python_version(),
                       cpu_count=os.cpu_count(), threads=args.threads, repeats=args.repeats, loadavg_start=la_start, git_head=git_head(),
                       memory_method=PeakRSS.method),
             skipped={})
    workers, quiet = {}, Quiet(work/'driver.log')
    if 'train' in only:  # start both workers first: their imports overlap the driver's
        me = [sys.executable, str(Path(__file__).resolve())]
        workers = {side: Worker(me + ['--worker', side], work/f'worker-{side}.log') for side in ('project', 'reference')}
    try:
        with quiet:  # library output goes to work/driver.log; progress lines still reach stderr
            run_sections(args, only, R, workers, work)
    except BaseException:
        log(f"failed; the last of {quiet.path}:\n{quiet.tail()}")
        for w in workers.values(): log(f"the last of {w.log}:\n{w.tail(1500)}")
        raise
    finally:
        for w in workers.values(): w.close()
        if not args.keep: shutil.rmtree(work, ignore_errors=True)
        else: log(f"work folder kept: {work}")
    R['meta'].update(finished=datetime.datetime.now().isoformat(timespec='seconds'),
                     wall_s=round(time.time() - t_start, 1), loadavg_end=loadavg(), driver_ru_maxrss_mib=ru_maxrss_mib())
    (out/'results.json').write_text(json.dumps(R, indent=1, default=str) + '\n')
    (out/'results.md').write_text(markdown(R))
    log(f"wrote {out/'results.json'} and {out/'results.md'} in {R['meta']['wall_s']} s")
    print(markdown(R))


if __name__ == '__main__':
    sys.exit(main())
