"Fault tests of sweeps: SIGKILL mid-run, concurrent sweeps on one store, corrupt metrics. Trivial runs, no model."
import json, os, signal, subprocess, sys, time
from pathlib import Path
from inoculate.data import content_hash
from inoculate.runs import RunStore, sweep

GRID = [dict(label=f'r{i}', seed=i) for i in range(6)]


def trivial_run(cfg, store, log=None, seconds=0.4):
    "A run that only sleeps; appends 'start'/'end' lines to `log` so a test can count executions."
    rid = content_hash(cfg)
    def work(tmp):
        log and open(log, 'a').write(f"start {rid}\n")
        time.sleep(seconds)
        log and open(log, 'a').write(f"end {rid}\n")
        return dict(run_id=rid, label=cfg['label'], metrics=[])
    return store.run(rid, work)


SWEEP = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_sweeps import GRID, trivial_run
from inoculate.runs import RunStore, sweep
sweep(GRID, RunStore(sys.argv[1]), run=lambda c, s: trivial_run(c, s, sys.argv[2], float(sys.argv[3])), progress=False)
"""


def start_sweep(store, log, seconds):
    return subprocess.Popen([sys.executable, '-c', SWEEP, str(store), str(log), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def counts(log):
    lines = Path(log).read_text().split() if Path(log).exists() else []
    return {k: [r for a, r in zip(lines[::2], lines[1::2]) if a == k] for k in ('start', 'end')}


def test_sigkill_mid_run_then_restart_finishes_every_run_once(tmp_path):
    store, log = tmp_path/'runs', tmp_path/'log'
    p = start_sweep(store, log, 1.0)
    deadline = time.time() + 60
    while time.time() < deadline and len(counts(log)['start']) < 3: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    before = counts(log)
    assert len(before['end']) == 2 and len(before['start']) == 3, "killed in the middle of the third run"
    finished = {r: (store/r/'metrics.json').stat().st_mtime_ns for r in before['end']}
    assert start_sweep(store, log, 0.2).wait() == 0
    after = counts(log)
    rids = {content_hash(c) for c in GRID}
    assert sorted(after['end']) == sorted(rids), "every run finished exactly once"
    assert all((store/r/'metrics.json').stat().st_mtime_ns == t for r, t in finished.items()), "no finished run redone"
    assert {r['run_id'] for r in RunStore(store).records()} == rids
    assert not list(store.glob('.tmp-*')) and not list(store.glob('.claims/*'))


def test_two_concurrent_sweeps_never_run_the_same_run_twice(tmp_path):
    store, log = tmp_path/'runs', tmp_path/'log'
    a, b = start_sweep(store, log, 0.5), start_sweep(store, log, 0.5)
    assert a.wait() == 0 and b.wait() == 0
    runs = counts(log)
    assert sorted(runs['start']) == sorted(runs['end']) == sorted(content_hash(c) for c in GRID)
    # whatever one sweep skipped as claimed, a third pass finds finished
    assert {r['status'] for r in sweep(GRID, RunStore(store), run=trivial_run, progress=False)} == {'skipped'}


def test_corrupt_or_missing_metrics_are_redone(tmp_path):
    store = RunStore(tmp_path)
    sweep(GRID[:2], store, run=trivial_run, progress=False)
    r0, r1 = (content_hash(c) for c in GRID[:2])
    (store.path(r0)/'metrics.json').write_text('{"run_id": ')
    (store.path(r1)/'metrics.json').unlink()
    assert [r['status'] for r in sweep(GRID[:3], store, run=trivial_run, progress=False)] == ['done', 'done', 'done']


def test_failures_are_recorded_and_only_they_are_retried(tmp_path):
    store, calls = RunStore(tmp_path), []
    def flaky(cfg, store):
        calls.append(cfg['label'])
        if cfg['label'] == 'r1' and calls.count('r1') == 1: return store.run(content_hash(cfg), lambda tmp: 1/0)
        return trivial_run(cfg, store, seconds=0)
    assert [r['status'] for r in sweep(GRID[:3], store, run=flaky, progress=False)] == ['done', 'failed', 'done']
    assert 'ZeroDivisionError' in store.failure(content_hash(GRID[1])).read_text()
    assert [r['status'] for r in sweep(GRID[:3], store, run=flaky, progress=False)] == ['skipped', 'done', 'skipped']
    assert not store.failure(content_hash(GRID[1])).exists()
