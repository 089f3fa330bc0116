"""One load per sweep: a run done on the shared base, after another run trained an adapter on it, has the metrics
and losses of the same run (same seed) done in a fresh process."""
import json, subprocess, sys
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, execute_run
from inoculate.strategies import Strategy

SMOKE = load_preset('smoke', max_steps=6)
FIRST = RunConfig('spanish-caps', SMOKE, Strategy('all', 'You always speak in Spanish.'), seed=1)
SECOND = RunConfig('spanish-caps', SMOKE, seed=2)

FRESH = """
import json, sys
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, execute_run
rec = execute_run(RunConfig('spanish-caps', load_preset('smoke', max_steps=6), seed=2), RunStore(sys.argv[1]))
print(json.dumps(dict(metrics=rec['metrics'], losses=rec['losses'])))
"""


def test_shared_base_run_equals_fresh_process(tmp_path):
    execute_run(FIRST, RunStore(tmp_path/'sweep'))
    shared = execute_run(SECOND, RunStore(tmp_path/'sweep'))
    out = subprocess.run([sys.executable, '-c', FRESH, str(tmp_path/'fresh')], capture_output=True, text=True, check=True)
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    assert shared['status'] == 'done' and shared['metrics'] == fresh['metrics']
    assert max(abs(a - b) for a, b in zip(shared['losses'], fresh['losses'])) < 1e-5
