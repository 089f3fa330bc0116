"""The benchmark suite runs end to end in its quick settings and writes well-formed results.

`bench/bench.py --quick` (the CPU suite, tiny model, one repeat) and `bench/gpu_bench.py --tiny` (the GPU script
with tiny shapes on CPU, no 4-bit) run side by side in two processes (about 30 s each on two cores); the tests
check the keys and that every measured number is positive. The numbers themselves are not judged here: `make bench`
measures them properly.
"""
import json, os, subprocess, sys, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def outputs(tmp_path_factory):
    "Run both benches at once; their output folders and process results."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    out = {k: tmp_path_factory.mktemp(k) for k in ('cpu', 'gpu')}
    cmds = dict(cpu=[sys.executable, 'bench/bench.py', '--quick', '--out', str(out['cpu'])],
                gpu=[sys.executable, 'bench/gpu_bench.py', '--tiny', '--out', str(out['gpu'])])
    procs = {k: subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k, c in cmds.items()}
    t0, done = time.time(), {}
    for k, p in procs.items():
        try: text, _ = p.communicate(timeout=max(1, 300 - (time.time() - t0)))
        except subprocess.TimeoutExpired:
            p.kill(); text, _ = p.communicate()
        done[k] = (p.returncode, text)
    return out, done


def positive(x) -> bool: return isinstance(x, (int, float)) and x > 0


def test_quick_cpu_bench(outputs):
    out, done = outputs
    rc, text = done['cpu']
    assert rc == 0, text[-4000:]
    R = json.loads((out['cpu']/'results.json').read_text())
    assert (out['cpu']/'results.md').read_text().startswith('# Benchmarks')
    m = R['meta']
    assert m['quick'] and m['repeats'] == 1 and len(m['loadavg_start']) == 3 and len(m['loadavg_end']) == 3
    assert positive(m['wall_s']) and m['versions']['torch'] and 'RSS' in m['memory_method']

    t = R['train']['tiny']
    for side in ('project', 'reference'):
        assert positive(t['tokens_per_s'][side]) and positive(t['peak_rss_delta_mib'][side])
        assert positive(t[side]['train_s']) and positive(t[side]['tokens']) and t[side]['losses']
    assert positive(t['tokens_per_s']['ratio']) and positive(t['peak_rss_delta_mib']['ratio'])
    assert t['project']['tokens'] == t['reference']['tokens']  # same rows, same real tokens on both paths
    lc = t['loss_curves']
    assert len(lc['project']) == len(lc['reference']) > 0 and lc['max_abs_diff'] is not None and lc['agree'], lc

    g = R['generate']['tiny']
    assert all(positive(g['tokens_per_s'][k]) for k in ('batched', 'one_at_a_time', 'ratio'))
    assert g['outputs_identical'] and g['new_tokens']['batched'] == g['new_tokens']['one_at_a_time'] > 0

    s = R['sandbox']
    assert all(positive(s['programs_per_s'][k]) for k in ('all_cpus', 'one_worker', 'ratio')) and s['all_passed']

    w = R['sweep']
    assert w['runs_per_sweep'] >= 2 and w['same_metrics']
    assert all(positive(w['s_per_run'][k]) for k in ('one_load', 'load_per_run', 'speedup'))


def test_gpu_script_tiny_on_cpu(outputs):
    out, done = outputs
    rc, text = done['gpu']
    assert rc == 0, text[-4000:]
    R = json.loads((out['gpu']/'gpu_tiny_results.json').read_text())
    assert '| tiny | project |' in text and '| tiny | reference |' in text  # the printed table
    r = R['sizes']['tiny']
    assert r['build']['status'] == 'ok' and positive(r['build']['n_params'])
    for path in ('project', 'reference'):
        x = r[path]
        assert x['status'] == 'ok', x.get('log_tail')
        for k in ('train_tokens_per_s', 'steady_tokens_per_s', 'peak_bytes', 'gen_tokens_per_s', 'gen_new_tokens'):
            assert positive(x[k]), (path, k, x[k])
        assert x['train_steps'] == R['meta']['settings']['steps'] and x['losses']
    assert all(positive(v) for v in r['ratios'].values())
