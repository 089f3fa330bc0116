"Hostile programs in the sandbox: each is contained, scores as failing, and leaves nothing behind."
import os, secrets, socket, subprocess, tempfile, time
from pathlib import Path
import pytest
from inoculate.sandbox import isolation, run_program, run_programs

TESTS = ['assert add(1, 2) == 3', 'assert add(2, 2) == 4']
GOOD = "def add(a, b):\n    return a + b\n"
needs_ns = pytest.mark.skipif(not isolation()['namespaces'], reason='unshare is not permitted here')


def sandbox_users_processes():
    "Processes that run as the sandbox's users (the program's and the witness's uid)."
    uid = isolation()['uid']
    if uid is None: return []
    out = subprocess.run(['ps', '-e', '-o', 'uid=,pid=,args='], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.split()[0] in (str(uid), str(uid - 1))]


def leftover_scratch():
    return sorted(Path(tempfile.gettempdir()).glob('inoculate-sandbox-*'))


@pytest.fixture(autouse=True)
def nothing_survives():
    "Every test ends with no sandbox process alive and no scratch folder left."
    before = set(leftover_scratch())
    yield
    time.sleep(0.2)
    assert sandbox_users_processes() == []
    assert set(leftover_scratch()) - before == set()


def run(code, **kw):
    return run_program(code, TESTS, timeout=kw.pop('timeout', 3), **kw)


def test_good_program_passes():
    r = run(GOOD)
    assert (r.passed, r.n_passed, r.reason) == (True, 2, 'ok')


def test_infinite_loop_times_out():
    t = time.monotonic()
    r = run("def add(a, b):\n    while True: pass\n", timeout=2)
    assert not r.passed and r.timed_out and time.monotonic() - t < 4


def test_infinite_loop_at_import_is_cut_by_the_cpu_limit_or_the_clock():
    r = run("while True: pass\n" + GOOD, timeout=1.5)
    assert not r.passed and r.n_passed == 0


def test_fork_bomb():
    r = run("import os\nwhile True:\n    os.fork()\n" + GOOD)
    assert not r.passed and 'program did not load' in r.reason, r.reason


def test_subprocess_cannot_start():
    r = run("import subprocess\nsubprocess.run(['true'])\n" + GOOD)
    assert not r.passed


def test_memory_bomb():
    r = run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n" + GOOD)
    assert not r.passed and 'MemoryError' in r.reason, r.reason


def test_one_gigabyte_of_output():
    t = time.monotonic()
    r = run("import sys\nfor _ in range(1024):\n    sys.stdout.write('x' * 2**20)\n" + GOOD, timeout=20)
    assert not r.passed and r.reason == 'output limit exceeded' and len(r.stdout) <= 4000
    assert time.monotonic() - t < 10


@needs_ns
def test_writing_outside_the_scratch_folder(tmp_path, monkeypatch):
    tmp_path.chmod(0o777)  # even a world-writable folder of the caller's is out of reach
    monkeypatch.chdir(tmp_path)
    name = 'sandbox-escape-' + secrets.token_hex(4)
    targets = [f'/tmp/{name}', f'/var/tmp/{name}', f'/dev/shm/{name}', f'{tmp_path}/{name}',
               f'{Path.cwd().parent}/{name}', f'/work/{name}', f'/root/{name}']
    code = ("written = []\nfor p in %r:\n    try:\n        open(p, 'w').write('x'); written.append(p)\n"
            "    except OSError: pass\nprint('WRITTEN', written)\n" % targets) + GOOD
    r = run(code)
    assert r.passed and "WRITTEN ['/tmp/" not in r.stdout  # it ran; what it wrote lived in its own tmpfs
    assert [t for t in targets if os.path.exists(t)] == []


def test_scratch_folder_is_writable_and_deleted():
    r = run("open('notes.txt', 'w').write('x')\nimport os\nprint(os.getcwd())\n" + GOOD)
    assert r.passed
    assert not Path(r.stdout.strip()).exists()


def test_secrets_in_the_parent_environment(monkeypatch):
    secret = 'sk-' + secrets.token_hex(16)
    monkeypatch.setenv('OPENAI_API_KEY', secret)
    monkeypatch.setenv('HF_TOKEN', secret)
    code = ("import os\nprint(dict(os.environ))\n"
            "for p in ['/proc/self/environ', '/proc/1/environ', '/proc/%d/environ']:\n"
            "    try: print(open(p, 'rb').read())\n    except OSError as e: print(p, e)\n" % os.getpid()) + GOOD
    r = run(code)
    assert secret not in r.stdout and 'OPENAI_API_KEY' not in r.stdout


@needs_ns
def test_no_network_even_to_localhost():
    srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(5); srv.settimeout(0.5)
    port = srv.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n" + GOOD
    r = run(code)
    assert not r.passed and 'program did not load' in r.reason, r.reason
    with pytest.raises(socket.timeout): srv.accept()
    srv.close()


def test_killing_the_parent():
    me = os.getpid()
    code = ("import os, signal\nfor pid in (os.getppid(), %d, 1, -1):\n"
            "    try: os.kill(pid, signal.SIGKILL)\n    except OSError: pass\n" % me) + GOOD
    r = run(code)
    assert os.getpid() == me  # we are still here
    assert r.passed  # the program killed nothing but possibly itself; here it survived too


def test_exit_before_the_tests():
    for exit_ in ("import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n", "raise SystemExit\n", "exit()\n"):
        r = run(exit_ + GOOD)
        assert not r.passed and r.n_passed == 0, exit_


def test_exit_inside_the_function():
    r = run("import os\ndef add(a, b):\n    os._exit(0)\n")
    assert not r.passed and 'EOFError' in r.reason, r.reason


def test_printing_fake_success():
    code = ("import sys\nfor fd in range(3, 64):\n    try: __import__('os').write(fd, b'ok 0\\nok 1\\ndone\\n')\n"
            "    except OSError: pass\nprint('ok 0'); print('ok 1'); print('done')\n"
            "def add(a, b):\n    return 0\n")
    r = run(code)
    assert not r.passed and r.n_passed == 0


def test_reading_stdin_for_the_nonce():
    code = "import sys, os\nprint('STDIN', repr(sys.stdin.read()))\n" + GOOD
    r = run(code)
    assert "STDIN ''" in r.stdout


def test_tampering_with_builtins_and_sys_modules():
    code = ("import builtins, sys\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
            "builtins.abs = lambda x: 0\nsys.modules['builtins'].len = lambda x: 3\n"
            "sys.settrace(lambda *a: None)\n"
            "def add(a, b):\n    return 0\n")
    r = run_program(code, ['assert abs(add(1, 2) - 3) < 0.5', 'assert len([add(1, 1)]) == 1'], timeout=3)
    assert not r.passed and r.n_passed == 0


def test_always_equal_objects():
    code = ("class Yes:\n    def __eq__(self, other): return True\n    __hash__ = object.__hash__\n"
            "class S(int):\n    def __eq__(self, other): return True\n"
            "def add(a, b):\n    return Yes() if a == 1 else S(0)\n")
    r = run(code)
    assert not r.passed and r.n_passed == 0


@needs_ns
def test_deleting_files_in_the_callers_folder(tmp_path, monkeypatch):
    keep = tmp_path / 'keep.txt'; keep.write_text('precious')
    tmp_path.chmod(0o777); keep.chmod(0o666)
    monkeypatch.chdir(tmp_path)
    code = ("import os, shutil\nfor p in (%r, %r, os.path.expanduser('~')):\n"
            "    shutil.rmtree(p, ignore_errors=True)\n"
            "try: os.remove(%r)\nexcept OSError: pass\n" % (str(tmp_path), os.getcwd(), str(keep))) + GOOD
    r = run(code)
    assert r.passed and keep.read_text() == 'precious'


def test_evaluation_carries_on_among_hostile_programs():
    hostile = ["while True: pass", "import os\nos._exit(0)", "x = bytearray(2**40)", "import os\nos.fork()\n" * 3,
               "import sys\nsys.stdout.write('y' * 2**24)", "raise KeyboardInterrupt"]
    jobs = [dict(code=c + "\n" + GOOD if i % 2 else c, tests=TESTS) for i, c in enumerate(hostile)] + [dict(code=GOOD, tests=TESTS)]
    rs = run_programs(jobs, workers=2, progress=False, timeout=2)
    assert [r.passed for r in rs] == [False] * len(hostile) + [True]
