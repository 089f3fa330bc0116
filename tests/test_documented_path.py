"""What the README tells a new user to do, done as they would do it: make a figure from a tree with uncommitted code,
keep a JupyterLab copy of a figure notebook or a notebook of notes, and read presets from a file of their own."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
import inoculate.presets as presets
from inoculate.plots import git_state
from inoculate.presets import repo_root

BIN = Path(sys.executable).parent


def git(root, *a):
    return subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *a], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    "A committed copy of this working tree (its code as it is now), whose figures the test can watch."
    root = tmp_path_factory.mktemp('clone')
    for f in git(repo_root(), 'ls-files', '-co', '--exclude-standard', '-z').split('\0'):
        if f and (repo_root()/f).is_file(): (root/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(repo_root()/f, root/f)
    git(root, 'init', '-q'); git(root, 'add', '-A'); git(root, 'commit', '-qm', 'copy')
    return root


def inoculate(root, *args, env=None, cwd=None):
    "The `inoculate` command of the clone at `root` (its package first on the path)."
    env = {**os.environ, 'PYTHONPATH': str(root), **(env or {})}
    return subprocess.run([str(BIN/'inoculate'), *args], cwd=cwd or root, env=env, capture_output=True, text=True, timeout=300)


def snapshot(root) -> dict:
    "Every file under figures/ and nbs/figures/ with its bytes."
    return {p: p.read_bytes() for d in ('figures', 'nbs/figures') for p in sorted((root/d).rglob('*')) if p.is_file()}


@pytest.mark.parametrize('command', [['figure', 'selectivity'], ['reproduce']])
def test_a_dirty_tree_does_not_touch_the_committed_figures(clone, command):
    before = snapshot(clone)
    (clone/'settings.ini').write_text((clone/'settings.ini').read_text() + '\n# a change of mine\n')
    try:
        r = inoculate(clone, *command, '--preset', 'cpu')
        assert r.returncode == 2 and 'Commit first' in r.stderr and '--allow-dirty' in r.stderr, r.stdout + r.stderr
        assert snapshot(clone) == before, "figures/ and the figure notebooks are untouched"
        assert not (clone/'.executed').exists() and not (clone/'runs').exists(), "nothing ran"
    finally: git(clone, 'checkout', '--', 'settings.ini')


def test_a_dirty_tree_may_write_elsewhere_or_when_allowed(clone, tmp_path):
    (clone/'settings.ini').write_text((clone/'settings.ini').read_text() + '\n# a change of mine\n')
    try:
        from inoculate.cli import dirty_refusal, parser
        assert parser().parse_args(['figure', 'selectivity', '--allow-dirty']).allow_dirty
        r = inoculate(clone, 'figure', 'nonsense', '--preset', 'cpu')
        assert r.returncode == 2 and 'valid figures' in r.stderr, "an unknown figure is answered first"
        env = {**os.environ, 'PYTHONPATH': str(clone)}
        code = ("from inoculate.cli import dirty_refusal; from inoculate.plots import figure_dir; "
                "print(dirty_refusal('cpu', True), dirty_refusal('cpu', False, '/elsewhere'), figure_dir('cpu').name)")
        out = subprocess.run([sys.executable, '-c', code], env=env, cwd=clone, capture_output=True, text=True, check=True).stdout.split()
        assert out == ['None', 'None', '.uncommitted'], "a notebook run by hand from a changed tree writes to a scratch folder"
        out = subprocess.run([sys.executable, '-c', code], env={**env, 'INOCULATE_ALLOW_DIRTY': '1'}, cwd=clone, capture_output=True,
                             text=True, check=True).stdout.split()
        assert out[-1] == 'figures', "--allow-dirty reaches the notebooks' kernels"
    finally: git(clone, 'checkout', '--', 'settings.ini')
    made = (clone/'Makefile').read_text()
    assert '$(if $(ALLOW_DIRTY),--allow-dirty)' in made, "make reproduce ALLOW_DIRTY=1 passes the flag its refusal names"


def test_a_jupyterlab_copy_is_not_a_figure(clone, monkeypatch):
    copy = clone/'nbs'/'figures'/'selectivity-Copy1.ipynb'
    shutil.copy(clone/'nbs'/'figures'/'selectivity.ipynb', copy)
    (clone/'nbs'/'figures'/'Untitled.ipynb').write_text(json.dumps(dict(cells=[], metadata={}, nbformat=4, nbformat_minor=5)))
    try:
        monkeypatch.setattr(presets, 'repo_root', lambda: clone)
        assert 'selectivity' in presets.figure_slugs() and not {'selectivity-Copy1', 'Untitled'} & set(presets.figure_slugs())
        r = inoculate(clone, 'figure', 'selectivity-Copy1', '--preset', 'smoke')
        assert r.returncode == 2 and "its title names 'selectivity'" in r.stderr, r.stderr
    finally: copy.unlink(); (clone/'nbs'/'figures'/'Untitled.ipynb').unlink()


def test_git_state_sees_a_new_notebook_with_a_space_in_its_name(clone):
    assert git_state(clone)[1] is None
    notes = clone/'nbs'/'my notes.ipynb'
    notes.write_text(json.dumps(dict(cells=[], metadata={}, nbformat=4, nbformat_minor=5)))
    try: assert git_state(clone)[1] is not None, "git quotes the path; git_state reads it unquoted (-z)"
    finally: notes.unlink()


def test_your_presets_file_is_read_where_you_set_it_and_cannot_redefine_the_committed_ones(clone, tmp_path):
    lab = tmp_path/'lab'; lab.mkdir()
    (lab/'presets.ini').write_text("[lab-h100]\nmodel = unsloth/Qwen2.5-7B-Instruct\nbatch_size = 32\n")
    env = {'INOCULATE_SETTINGS': 'presets.ini'}  # relative: set in the lab folder
    r = inoculate(clone, 'presets', env=env, cwd=lab)
    assert r.returncode == 0 and 'lab-h100' in r.stdout, r.stdout + r.stderr
    kernel = ("import os, subprocess, sys; from inoculate.presets import own_settings; own_settings(); "  # the command, then a kernel it starts
              f"print(subprocess.run([sys.executable, '-c', 'from inoculate.presets import preset_names; print(preset_names())'], "
              f"cwd={str(clone/'nbs'/'figures')!r}, capture_output=True, text=True).stdout)")
    out = subprocess.run([sys.executable, '-c', kernel], env={**os.environ, 'PYTHONPATH': str(clone), **env}, cwd=lab,
                         capture_output=True, text=True)
    assert 'lab-h100' in out.stdout, "a kernel started in nbs/figures/ reads the same file: " + out.stdout + out.stderr
    (lab/'presets.ini').write_text("[cpu]\nn_train = 10\n")
    r = inoculate(clone, 'presets', env=env, cwd=lab)
    assert r.returncode == 2 and 'redefines [cpu]' in r.stderr, r.stdout + r.stderr
