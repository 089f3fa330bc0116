"""The sandbox as this process's user: the hostile suite (tests/fixtures/sandbox/hostile_cases.py), the refusal
where nothing can hold a program, and results that compare as in plain Python.

Each test checks only what its own runs left behind (their process groups, and scratch folders in a temporary
folder of its own), so other users of the sandbox on the machine cannot fail it."""
import json, os, secrets, shutil, sys, tempfile, warnings
from pathlib import Path
import pytest
import inoculate.sandbox as sandbox
from inoculate.sandbox import WeakSandboxError, isolation, isolation_level, run_program, run_programs

FIXTURES = Path(__file__).parent / 'fixtures' / 'sandbox'
sys.path.insert(0, str(FIXTURES))
import hostile_cases as hc

needs_holding = pytest.mark.skipif(isolation_level() == 'weak', reason='the sandbox refuses to run here (weak level)')


@pytest.fixture
def base(monkeypatch):
    "A folder of this test's own (others may enter it); the sandbox makes its scratch folders in base/scratch."
    base = Path(tempfile.mkdtemp(prefix='sandbox-tests-')); base.chmod(0o755)
    (base / 'scratch').mkdir(); (base / 'scratch').chmod(0o755)
    monkeypatch.setattr(tempfile, 'tempdir', str(base / 'scratch'))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def run(base):
    "A recorder of this test's runs; afterwards, none of their processes and no scratch folder may be left."
    rec = hc.Recorder(hc.make_ctx(base, 'sk-' + secrets.token_hex(16)))
    yield rec
    assert hc.left_behind(rec.results, base / 'scratch') == []


@needs_holding
@pytest.mark.parametrize('case', hc.CASES, ids=[c.__name__ for c in hc.CASES])
def test_hostile_program_is_contained(case, run):
    if case.needs_seccomp and not isolation()['seccomp']:
        pytest.skip('no seccomp filter on this machine (x86_64 only): namespaces alone refuse threads and let a '
                    'program reach world-writable UNIX sockets')
    case(run.ctx, run)
    assert all(r.isolation == isolation_level() for r in run.results)


@needs_holding
def test_scratch_is_writable_under_a_private_tmpdir(base, run):
    "A caller's TMPDIR that only it may enter (0700): the program still writes its scratch folder (regression)."
    (base / 'scratch').chmod(0o700)
    r = run("open('notes.txt', 'w').write('x')\nimport tempfile\ntempfile.mkstemp()\n" + hc.GOOD)
    assert r.passed, r.reason


def test_the_level_is_one_of_three_and_matches_the_protections():
    iso = isolation()
    assert iso['level'] in ('namespaces', 'landlock+seccomp', 'weak')
    assert iso['level'] == ('namespaces' if iso['namespaces'] else
                            'landlock+seccomp' if iso['landlock'] and iso['seccomp'] else 'weak')


WEAK = dict(namespaces=False, unshare=None, landlock=0, seccomp=False, level='weak')


@pytest.fixture
def weak_machine(monkeypatch, base):
    "This machine as one without namespaces, Landlock or seccomp; records every process the sandbox starts."
    monkeypatch.setattr(sandbox, 'isolation', lambda: WEAK)
    monkeypatch.delenv('INOCULATE_ALLOW_WEAK_SANDBOX', raising=False)
    started = []
    real = sandbox.subprocess.Popen
    monkeypatch.setattr(sandbox.subprocess, 'Popen', lambda *a, **kw: started.append(a) or real(*a, **kw))
    return started


def test_refused_without_protections_and_without_opt_in(weak_machine, base):
    with pytest.raises(WeakSandboxError, match='cannot contain a hostile program.*allow_weak_isolation'):
        run_program("print('ran')")
    with pytest.raises(WeakSandboxError):
        run_programs(["print('ran')"] * 3, progress=False)
    with pytest.raises(WeakSandboxError):
        run_programs(["print('ran')"], progress=False, allow_weak_isolation=False)
    assert weak_machine == [] and list((base / 'scratch').iterdir()) == []  # no program ran, no scratch was made


@pytest.mark.parametrize('how', ['keyword', 'environment'])
def test_opting_in_runs_at_the_weak_level_with_a_warning(weak_machine, how, monkeypatch):
    kw = {'allow_weak_isolation': True} if how == 'keyword' else {}
    if how == 'environment': monkeypatch.setenv('INOCULATE_ALLOW_WEAK_SANDBOX', '1')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        r = run_program("print('ran')", **kw)
    assert (r.passed, r.stdout.strip(), r.isolation) == (True, 'ran', 'weak')
    assert len(weak_machine) == 1 and any('weak isolation' in str(w.message) for w in caught)


MBPP = json.loads((FIXTURES / 'mbpp_result_types.json').read_text())


def passes_in_plain_python(task) -> bool:
    ns = {}
    exec(task['code'], ns)
    for t in task['tests']: exec(t, ns)
    return True


@needs_holding
@pytest.mark.parametrize('task', MBPP, ids=[t['name'] for t in MBPP])
def test_results_compare_as_in_plain_python(task, run):
    assert passes_in_plain_python(task)
    r = run(task['code'], task['tests'])
    assert (r.passed, r.n_passed) == (True, len(task['tests'])), r.reason


def test_refusal_names_an_interpreter_the_probe_cannot_start():
    "An interpreter the probe cannot start is named as the cause, not reported as a kernel without Landlock or seccomp."
    from inoculate.sandbox import WeakSandboxError, kernel_protections, require_isolation
    python = '/nonexistent/unreachable/bin/python3'
    found = kernel_protections(python)
    assert python in found['probe_error']
    with pytest.raises(WeakSandboxError) as e: require_isolation(False, dict(namespaces=False, unshare=None, **found, level='weak'))
    assert python in str(e.value) and 'not a missing kernel feature' in str(e.value) and 'lacks Landlock' not in str(e.value)
