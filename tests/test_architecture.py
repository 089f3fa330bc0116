"""The shape of the package: modules import only modules earlier in the data's path (so there is no cycle), the
command line answers at once, your own data's settings reach worker processes or say why not, and equal values
name one run."""
import ast, os, subprocess, sys, time
from pathlib import Path
import pytest
import inoculate
from inoculate.presets import load_preset, repo_root

PKG = Path(inoculate.__file__).parent
ORDER = ['presets', 'data', 'strategies', 'finetune', 'generate', 'score', 'sandbox', 'judges',
         'settings.stand_in_world', 'settings.stand_in_base', 'settings.stand_in', 'settings.spanish_caps',
         'settings.reward_hacking', 'settings.backdoor', 'settings.stand_in_code', 'settings.gcd_sycophancy', 'settings.smollm2',
         'settings.everyday',
         'runs', 'plots', 'figure', 'outputs', 'cli', 'rehearsal', 'colab']


def imports_of(module:str) -> set[str]:
    "The `inoculate` modules that `module` imports anywhere in its file (at the top or inside a function)."
    path = PKG/(module.replace('.', '/') + '.py')
    package = module.rsplit('.', 1)[0] if '.' in module else ''
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: from .data / from ..data / from . import x
                parts = package.split('.') if package else []
                parts = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = '.'.join(p for p in [*parts, base] if p)
                names = [base] if node.module else [f"{'.'.join(parts) + '.' if parts else ''}{a.name}" for a in node.names]
            elif base.startswith('inoculate'):
                base = base.removeprefix('inoculate').lstrip('.')
                names = [base] if base else [a.name for a in node.names]
            else: continue
            out |= {n for n in names if n}
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix('inoculate.') for a in node.names if a.name.startswith('inoculate.')}
    return out


def test_every_module_is_placed():
    found = {str(p.relative_to(PKG).with_suffix('')).replace('/', '.') for p in PKG.rglob('*.py')}
    assert found - {'__init__', '_modidx', 'settings.__init__'} == set(ORDER)


@pytest.mark.parametrize('module', ORDER)
def test_modules_import_only_earlier_modules(module):
    later = {m for m in imports_of(module) if m in ORDER and ORDER.index(m) > ORDER.index(module)}
    assert not later, f"{module} imports {later}, which come later in the data's path"


def test_the_checker_sees_lazy_and_relative_imports():
    assert {'finetune', 'generate', 'strategies', 'data'} <= imports_of('runs')
    assert {'settings.stand_in_world', 'data'} <= imports_of('settings.stand_in_base')


@pytest.mark.parametrize('args', [['--help'], ['presets'], ['runs', 'ls', '--store', '{tmp}'], ['figure', 'nonsense']])
def test_cli_answers_within_a_second(args, tmp_path):
    cmd = [str(Path(sys.executable).parent/'inoculate'), *[a.format(tmp=tmp_path) for a in args]]
    subprocess.run(cmd, capture_output=True)  # warm the file cache once
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t
    assert took < 1.0, (took, r.stderr[-500:])
    assert r.returncode == (2 if 'nonsense' in args else 0), r.stderr
    if 'ls' in args: assert f"run store: {tmp_path}" in r.stderr and r.stdout == ''
    if 'nonsense' in args: assert 'valid figures' in r.stderr


def test_runs_show_without_an_id_says_what_it_needs(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent/'inoculate'), 'runs', 'show', '--store', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and 'runs show needs a run id' in r.stderr


def test_equal_values_name_one_run():
    from inoculate.runs import RunConfig, run_id
    from inoculate.strategies import Strategy
    p = load_preset('smoke')
    one = lambda cfg: run_id(cfg, [], [], 'base')
    assert one(RunConfig('spanish-caps', p, purity=1)) == one(RunConfig('spanish-caps', p, purity=1.0))
    assert one(RunConfig('spanish-caps', p, Strategy('selective', 'x', fn_rate=0), 0.5)) == \
           one(RunConfig('spanish-caps', p, Strategy('selective', 'x', fn_rate=0.0), 0.5))
    assert one(RunConfig('spanish-caps', p, purity=1)) != one(RunConfig('spanish-caps', p, purity=0.5))


SCRIPT = """
import sys, unsloth
from inoculate.presets import load_preset
from inoculate.runs import RunConfig, RunStore, sweep
sweep([RunConfig('spanish-caps', load_preset('smoke'))], RunStore(sys.argv[1]), executor='processes')
"""


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path):
    script = tmp_path/'no_guard.py'; script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(tmp_path/'runs')], capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'PYTHONPATH': str(repo_root())})
    assert r.returncode != 0
    assert "if __name__ == '__main__':" in r.stderr, r.stderr[-2000:]
    assert not list((tmp_path/'runs').glob('[!.]*'))  # nothing stored as finished
