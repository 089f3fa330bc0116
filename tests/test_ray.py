"The Ray executor, on a local Ray with 2 CPUs: a 4-run grid gives the same metrics as the local executor."
import os
import pytest
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, sweep
from inoculate.strategies import Strategy

ray = pytest.importorskip('ray')
SMOKE = load_preset('smoke')
SPANISH = 'You always speak in Spanish.'
GRID = [RunConfig('spanish-caps', SMOKE, train=False, label='base'),
        RunConfig('spanish-caps', SMOKE, purity=1., label='No-Inoc'),
        RunConfig('spanish-caps', SMOKE, Strategy('all', SPANISH), 1., label='all'),
        RunConfig('spanish-caps', SMOKE, Strategy('selective', SPANISH), 0.5, label='selective')]


def test_local_ray_grid_matches_local_executor(tmp_path):
    local = sweep(GRID, RunStore(tmp_path/'local'), progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={'env_vars': {'OMP_NUM_THREADS': str(os.cpu_count() or 1), 'HF_HUB_OFFLINE': '1'}})
    try: remote = sweep(GRID, RunStore(tmp_path/'ray'), progress=False, executor='ray')
    finally: ray.shutdown()
    assert [r['status'] for r in local] == [r['status'] for r in remote] == ['done'] * 4
    assert [r['run_id'] for r in local] == [r['run_id'] for r in remote]
    assert [r['metrics'] for r in local] == [r['metrics'] for r in remote]
