"""The Colab install (`inoculate.colab`): the `colab` extra resolves next to the runtime's own torch.

The slow check builds a fresh venv dressed as a Colab runtime: torch 2.8.0+cu126, torchvision 0.23.0+cu126,
torchaudio 2.8.0+cu126 and triton 3.4.0 "installed" as bare `.dist-info` folders (metadata without the gigabytes;
pip only reads metadata to resolve). It runs `install(dry_run=True)` there and reads pip's JSON report.

pip in the venv reads no configuration file (PIP_CONFIG_FILE=/dev/null) and no PIP_CONSTRAINT, PIP_FIND_LINKS or
index from the environment: a machine-wide pip.conf (this one caps torch at 2.14.1) or a local wheel folder must not
be what keeps torch in place, and PyPI is the only index, as on Colab. The control test shows that without our
constraints the same resolution does replace torch.
"""
import json, os, subprocess, sys, time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from inoculate.colab import INSTALL_CELL, RUNTIME, constraints, importable, install, norm, running_versions

REPO = Path(__file__).resolve().parents[1]
# A Colab runtime as in the issue (CUDA 12.6 builds), and what its wheels require of each other.
COLAB = {'torch': '2.8.0+cu126', 'torchvision': '0.23.0+cu126', 'torchaudio': '2.8.0+cu126', 'triton': '3.4.0'}
REQUIRES = {'torch': ['triton==3.4.0; platform_system == "Linux" and platform_machine == "x86_64"'],
            'torchvision': ['torch==2.8.0'], 'torchaudio': ['torch==2.8.0']}
TESTED = {'unsloth': '2026.10.9', 'unsloth-zoo': '2026.10.9', 'transformers': '5.17.0', 'trl': '1.15.0',
          'datasets': '4.8.5', 'peft': '0.21.2'}


def preload(python, versions=COLAB, requires=REQUIRES):
    "Make `python`'s pip see `versions` as installed: a `.dist-info` folder each (METADATA, empty RECORD, INSTALLER)."
    site = subprocess.run([python, '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    for name, version in versions.items():
        d = Path(site)/f'{name}-{version}.dist-info'
        d.mkdir()
        reqs = ''.join(f'Requires-Dist: {r}\n' for r in requires.get(name, []))
        (d/'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{reqs}')
        (d/'RECORD').write_text('')
        (d/'INSTALLER').write_text('pip\n')


def colab_venv(path):
    "A fresh venv at `path` with Colab's torch stack preloaded; its python."
    subprocess.run([sys.executable, '-m', 'venv', str(path)], check=True)
    python = str(Path(path)/'bin'/'python')
    preload(python)
    return python


@pytest.fixture(scope='module')
def colab_python(tmp_path_factory):
    "A Colab-like venv's python, with no pip configuration read."
    python = colab_venv(tmp_path_factory.mktemp('colab')/'venv')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PIP_CONFIG_FILE', os.devnull)
        for var in ('PIP_CONSTRAINT', 'PIP_FIND_LINKS', 'PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL'):
            mp.delenv(var, raising=False)
        mp.setenv('PIP_DISABLE_PIP_VERSION_CHECK', '1')
        config = subprocess.run([python, '-m', 'pip', 'config', 'list'], capture_output=True, text=True,
                                check=True).stdout
        assert all(l.startswith(':env:') for l in config.splitlines()) and 'constraint' not in config, config
        yield python


def would_install(report):
    return {norm(i['metadata']['name']): i for i in json.loads(Path(report).read_text())['install']}


@pytest.mark.slow
def test_colab_extra_keeps_the_runtime_torch(colab_python, tmp_path):
    assert running_versions(RUNTIME + ('inoculate',), colab_python) == COLAB
    t = time.time()
    ended = install(repo=REPO, dry_run=True, report=tmp_path/'report.json', python=colab_python)
    print(f'resolved in {time.time() - t:.0f} s')
    plan = would_install(tmp_path/'report.json')
    assert not set(plan) & set(RUNTIME), {n: plan[n]['metadata']['version'] for n in RUNTIME if n in plan}
    assert not [n for n in plan if n.startswith('nvidia-')], [n for n in plan if n.startswith('nvidia-')]
    assert {n: plan[n]['metadata']['version'] for n in TESTED} == TESTED
    assert {n: ended[n] for n in COLAB} == COLAB
    # The xformers pip chose is built for this torch: its own pin accepts the runtime's build.
    torch_reqs = [r for r in map(Requirement, plan['xformers']['metadata']['requires_dist']) if r.name == 'torch']
    assert torch_reqs and all(r.specifier.contains(COLAB['torch']) for r in torch_reqs), torch_reqs
    assert plan['inoculate']['metadata']['version'] == ended['inoculate']


@pytest.mark.slow
def test_without_constraints_pip_replaces_torch(colab_python, tmp_path):
    "The control: the plain install the issue describes moves torch, so the check above has teeth."
    subprocess.run([colab_python, '-m', 'pip', 'install', '-q', '--dry-run', '--report', str(tmp_path/'r.json'),
                    '-e', f'{REPO}[colab]'], check=True)
    plan = would_install(tmp_path/'r.json')
    moved = [n for n in sorted(plan) if n in ('torch', 'torchvision', 'triton', 'xformers') or n.startswith('nvidia-')]
    print('without constraints:', {n: plan[n]['metadata']['version'] for n in moved})
    assert plan['torch']['metadata']['version'] != COLAB['torch']


# What a Colab kernel does, run in the Colab-like venv: its folder holds the clone (a folder named `inoculate`, here a
# link to this repository) and is on sys.path (`python -c` puts it there, as Colab's kernel has /content), so
# `import inoculate` gives a namespace package; then the install cell.
# PIP_NO_DEPS=1 installs only the package itself (not gigabytes of dependencies): this checks the cell, not the
# resolution.
KERNEL = """
import os, sys, types
import inoculate
assert inoculate.__file__ is None and not hasattr(inoculate, '__version__')  # the issue
sys.modules['google.colab'] = types.ModuleType('google.colab')
exec(CELL)
import inoculate, inoculate.colab
print('imported', inoculate.__version__, 'from', os.path.realpath(inoculate.__file__))
exec(CELL)  # safe to rerun
"""


@pytest.mark.slow
def test_install_cell_imports_in_the_same_kernel(colab_python, tmp_path):
    (tmp_path/'inoculate').symlink_to(REPO)
    cell = INSTALL_CELL.replace("'/content/inoculate'", repr(str(tmp_path/'inoculate')))
    assert cell != INSTALL_CELL
    out = subprocess.run([colab_python, '-c', f'CELL = {cell!r}; REPO = {str(REPO)!r}\n{KERNEL}'], cwd=tmp_path,
                         env={**os.environ, 'PIP_NO_DEPS': '1'}, capture_output=True, text=True)
    print(out.stdout, out.stderr[-2000:])
    assert out.returncode == 0
    assert f'imported 0.0.1 from {REPO}/inoculate/__init__.py' in out.stdout
    assert running_versions(RUNTIME, colab_python) == COLAB


def test_constraints_hold_the_installed_build():
    assert constraints({'torch': '2.8.0+cu126', 'triton': '3.4.0'}) == 'torch==2.8.0+cu126\ntriton==3.4.0\n'
    assert Requirement('torch==2.8.0+cu126').specifier.contains('2.8.0+cu126')
    assert not Requirement('torch==2.8.0+cu126').specifier.contains('2.8.0')
    assert Requirement('torch==2.8.0').specifier.contains('2.8.0+cu126')  # others' pins accept the local label


def test_importable_replaces_a_namespace_package(tmp_path, monkeypatch):
    "The issue's second half: from the folder holding the clone, the package imported as an empty namespace."
    name = f'fakepkg_{os.getpid()}'
    (tmp_path/name/name).mkdir(parents=True)
    (tmp_path/name/name/'__init__.py').write_text("__version__ = '0.0.7'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        ns = __import__(name)
        assert ns.__file__ is None and not hasattr(ns, '__version__')
        m = importable(tmp_path/name, name)
        assert m.__version__ == '0.0.7' and importable(tmp_path/name, name) is m
    finally:
        sys.modules.pop(name, None)
        if os.path.realpath(tmp_path/name) in sys.path: sys.path.remove(os.path.realpath(tmp_path/name))


def test_install_raises_with_pips_words(tmp_path):
    with pytest.raises(RuntimeError, match='does not appear to be a Python project'):
        install(repo=tmp_path, dry_run=True, python=sys.executable)


def test_install_cell_does_nothing_off_colab():
    assert INSTALL_CELL.startswith('#| notest\n') and 'google.colab' not in sys.modules
    path, mods = list(sys.path), set(sys.modules)
    exec(compile(INSTALL_CELL, 'install-cell', 'exec'), {})
    assert (sys.path, set(sys.modules) - mods) == (path, set())
