"""Helpers shared by bench.py and gpu_bench.py: medians, load, a peak-RSS sampler and line-JSON workers.

Nothing here imports torch, transformers or unsloth, so a worker can choose what it imports first."""
from __future__ import annotations
import ctypes, gc, json, os, statistics, subprocess, sys, threading, time, traceback
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


TERM = None  # where `log` writes: the terminal's stderr, also while `Quiet` sends library output to a file


def log(*a):
    print(f"[bench {time.strftime('%H:%M:%S')}]", *a, file=TERM or sys.stderr, flush=True)


class Quiet:
    "Send everything written to fds 1 and 2 (library banners, progress bars) to `path`; `log` still reaches the terminal."
    def __init__(self, path): self.path = Path(path)

    def __enter__(self):
        global TERM
        sys.stdout.flush(); sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        TERM = os.fdopen(os.dup(self.saved[1]), 'w', buffering=1)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1); os.dup2(fd, 2); os.close(fd)
        return self

    def __exit__(self, *exc):
        global TERM
        sys.stdout.flush(); sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved): os.dup2(saved, fd); os.close(saved)
        TERM.close(); TERM = None

    def tail(self, n=4000) -> str:
        try: return self.path.read_text(errors='replace')[-n:]
        except OSError: return ''


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b, digits=2):
    "a / b rounded, or None when either is missing or b is 0."
    return round(a / b, digits) if a is not None and b else None


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def trim_memory():
    "Collect garbage and hand freed heap back to the OS (glibc), so RSS deltas start from a clean floor."
    gc.collect()
    try: ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError): pass


class PeakRSS:
    "Peak resident set size of this process while the block runs, sampled every `every_s` (psutil, else /proc)."
    method = 'peak RSS minus RSS at start, sampled every 5 ms in a thread (psutil)'

    def __init__(self, every_s=0.005):
        self.every_s, self.peak, self.start = every_s, 0, 0
        try:
            import psutil
            proc = psutil.Process()
            self._rss = lambda: proc.memory_info().rss
        except ImportError:
            PeakRSS.method = 'peak RSS minus RSS at start, sampled every 5 ms from /proc/self/statm'
            page = os.sysconf('SC_PAGE_SIZE')
            self._rss = lambda: int(open('/proc/self/statm').read().split()[1]) * page

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.every_s)

    def __enter__(self):
        trim_memory()
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True); self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set(); self._t.join()
        self.peak = max(self.peak, self._rss())

    @property
    def delta_mib(self) -> float: return round((self.peak - self.start) / 2**20, 1)


def ru_maxrss_mib() -> float:
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def plain_loss_sft_trainer():
    """TRL's `SFTTrainer` with transformers' own loss, for the reference path on CPU.

    TRL 1.x computes the SFT loss through a fused LM head whose kernel is Triton (CUDA/XPU only), which fails on CPU
    ("0 active drivers"); this subclass uses `Trainer.compute_loss` instead: the model's cross-entropy over the full
    logits, labels -100 outside assistant turns, summed over `num_items_in_batch`, as TRL 0.x did. On a GPU the
    reference uses stock `SFTTrainer`."""
    from transformers import Trainer
    from trl import SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs['use_cache'] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
    return PlainLossSFTTrainer


# ---- line-JSON worker processes -------------------------------------------------------------------------------
# The driver writes one JSON request per line to the worker's stdin; the worker answers one JSON line on a private
# copy of its original stdout. Everything the libraries print goes to stderr (a log file), so it cannot corrupt
# the answers.

def serve(handle):
    "Worker main loop: answer each request line with `handle(request)` (or the error) until stdin closes."
    answers = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        if not line.strip(): continue
        req = json.loads(line)
        try: out = dict(ok=True, **handle(req))
        except Exception as e: out = dict(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        answers.write(json.dumps(out, default=str) + '\n')


class Worker:
    "A long-lived worker subprocess (`cmd`), asked one request at a time."
    def __init__(self, cmd:list[str], log:Path, env:dict|None=None):
        self.log = Path(log); self.log.parent.mkdir(parents=True, exist_ok=True)
        self._logf = open(self.log, 'w')
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._logf, text=True,
                                  env={**os.environ, **(env or {})}, cwd=ROOT)

    def ask(self, **req) -> dict:
        self.p.stdin.write(json.dumps(req) + '\n'); self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died (exit {self.p.wait()}); log {self.log}:\n{self.tail()}")
        out = json.loads(line)
        if not out.pop('ok'): raise RuntimeError(f"worker failed: {out['error']}\n{out.get('traceback', '')}")
        return out

    def tail(self, n=3000) -> str:
        try: return self.log.read_text()[-n:]
        except OSError: return ''

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:
            self.p.kill(); self.p.wait()
        self._logf.close()


@contextmanager
def counting_new_tokens(model, eos_id:int):
    """Within the block, each answer's new tokens, up to and including its end of turn, are added to the yielded `[count]`:
    those of `model.generate` (GPU path, reference) and of the project's CPU decoder (`decode_compacting`, which leaves the end
    of turn out: an answer shorter than the limit ended with one)."""
    import inoculate.generate as G
    counted, inner, inner_decode = [0], model.generate, G.decode_compacting
    def counting(*a, **k):
        out = inner(*a, **k)
        for row in out[:, k['input_ids'].shape[1]:]:
            stop = (row == eos_id).nonzero()
            counted[0] += int(stop[0]) + 1 if len(stop) else len(row)
        return out
    def counting_decode(*a, **k):
        new, limit = inner_decode(*a, **k), (a[3] if len(a) > 3 else k['max_new_tokens'])
        counted[0] += sum(len(r) + (len(r) < limit) for r in new)
        return new
    model.generate, G.decode_compacting = counting, counting_decode
    try: yield counted
    finally: model.generate, G.decode_compacting = inner, inner_decode
