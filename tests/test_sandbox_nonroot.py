"""The hostile suite (tests/fixtures/sandbox/hostile_cases.py) run by an unprivileged user.

As root, this starts run_hostile.py as a fresh uid with a secret in its environment and in its home's credential
files, and checks its report: every case contained, the secret in no output or result field, the caller alive
at the end, no file outside the scratch folders, no process of that uid left. As a non-root user there is
nothing to switch to: tests/test_sandbox.py already runs the suite as this user."""
import json, os, secrets, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest

FIXTURES = Path(__file__).parent / 'fixtures' / 'sandbox'
sys.path.insert(0, str(FIXTURES))
import hostile_cases as hc

NAMES = [c.__name__ for c in hc.CASES]


def processes_of(uid:int) -> list[str]:
    "Processes whose real uid is `uid`."
    return [status.split('\n', 1)[0] + f' pid {d}' for d, status in hc.proc_files('status') if f'\nUid:\t{uid}\t' in status]


@pytest.fixture(scope='module')
def nonroot():
    "Run the whole suite as a fresh unprivileged uid, once; its report and what it left behind."
    if os.geteuid() != 0: pytest.skip('already unprivileged: tests/test_sandbox.py runs the suite as this user')
    uid = 1_700_000_000 + secrets.randbelow(1_000_000)
    base = Path(tempfile.mkdtemp(prefix='sandbox-nonroot-')); base.chmod(0o755)
    home, tmp, report = base / 'home', base / 'tmp', base / 'report.json'
    for d in (home, tmp): d.mkdir(mode=0o700); os.chown(d, uid, uid)
    os.chown(base, uid, uid)
    secret = 'sk-' + secrets.token_hex(16)
    env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LANG': 'C.UTF-8', 'HOME': str(home), 'TMPDIR': str(tmp),
           'OPENAI_API_KEY': secret, 'HF_TOKEN': secret, 'PYTHONDONTWRITEBYTECODE': '1', 'HF_HUB_OFFLINE': '1',
           **({'PYTHONPATH': os.environ['PYTHONPATH']} if 'PYTHONPATH' in os.environ else {})}  # the same inoculate as ours
    cmd = [sys.executable, str(FIXTURES / 'as_user.py'), str(uid), '--', sys.executable, str(FIXTURES / 'run_hostile.py'), str(report)]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp))
        if p.returncode == 77: pytest.skip('cannot make this Python reachable for an unprivileged uid here')
        time.sleep(0.2)
        out = dict(uid=uid, secret=secret, rc=p.returncode, output=p.stdout + p.stderr, tmp=tmp,
                   report=json.loads(report.read_text()) if report.exists() else None,
                   left_processes=processes_of(uid), left_scratch=sorted(str(x) for x in tmp.glob('inoculate-sandbox-*')))
        yield out
    finally:
        for line in processes_of(uid):  # whatever a failed run left, so that it cannot disturb later tests
            try: os.kill(int(line.rsplit(' ', 1)[1]), signal.SIGKILL)
            except OSError: pass
        shutil.rmtree(base, ignore_errors=True)


def test_the_caller_survived_and_reported_every_case(nonroot):
    assert nonroot['rc'] == 0, nonroot['output'][-3000:]
    assert nonroot['report'] is not None and list(nonroot['report']['cases']) == NAMES


def test_it_ran_unprivileged_at_a_level_that_holds(nonroot):
    rep = nonroot['report']
    assert rep['uid'] == nonroot['uid'] and rep['isolation']['namespaces'] is False
    assert rep['isolation']['level'] in ('landlock+seccomp', 'weak')


@pytest.mark.parametrize('name', NAMES)
def test_hostile_program_is_contained_as_non_root(nonroot, name):
    rep = nonroot['report']
    if rep is None: pytest.fail('no report: ' + nonroot['output'][-3000:])
    case = rep['cases'][name]
    if rep['isolation']['level'] == 'weak':  # no Landlock or seccomp here: then every program must be refused
        assert case['error'] and 'WeakSandboxError' in case['error'] and case['results'] == [], case['error']
        return
    assert case['error'] is None, case['error']
    assert case['left'] == []
    assert all(r['isolation'] == 'landlock+seccomp' for r in case['results'])


def test_no_secret_in_any_output_or_result_field(nonroot):
    assert nonroot['secret'] not in nonroot['output']
    assert nonroot['report'] is not None and nonroot['secret'] not in json.dumps(nonroot['report'])


def test_no_file_outside_the_scratch_folders_and_no_scratch_left(nonroot):
    assert nonroot['report'] is not None
    targets = nonroot['report']['targets']
    assert hc.escapes(targets) == []
    assert nonroot['left_scratch'] == []


def test_no_process_left(nonroot):
    assert nonroot['left_processes'] == []
