"""Equal conditions for every benchmark: each side in its own worker process, the same thread
count and allocator settings in every worker, and a record of what each worker really used.

A benchmark builds one :class:`Conditions` from its command line (:func:`add_condition_options`)
and starts each side with :class:`Worker` (``python SCRIPT --worker SIDE ...`` with the
environment of :meth:`Conditions.env`). Inside the worker, :func:`pin_threads` pins Numba,
PyTorch and the BLAS libraries to the worker's thread count and :func:`worker_report` says what
they then report. The driver writes the JSON with :func:`write_results`: the records, the
conditions, the machine (:func:`machine_facts`), the load average before and after, and every
worker's report.

Allocator (``--malloc``): ``thresholds`` (default) starts every worker, of every side, with
glibc's ``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483647`` in its
environment (freed blocks up to 1 GiB are reused instead of unmapped and page-faulted in again);
``default`` starts every worker with glibc's defaults (the variables removed, and
``TINYSEG_SYSTEM_MALLOC=1`` so that no tinyseg version changes them itself). Either way both
sides get the same.

OpenBLAS's core type (``--openblas-coretype``): where ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``
are set for the machine (they make old OpenBLAS builds safe on some processors and slow a
current NumPy), ``unset`` (default) removes both, together, from every worker's environment;
``keep`` leaves them. The kernel OpenBLAS then runs is recorded (``openblas_get_corename``).

``OMP_WAIT_POLICY`` (``--omp-wait-policy``, default ``PASSIVE``) is set alike in every worker:
PyTorch's and Numba's OpenMP pools both read it. ``OPENBLAS_THREAD_TIMEOUT``
(``--openblas-thread-timeout``, default ``4``, what ``tinyseg.tuning.tune_process`` sets: idle
OpenBLAS threads sleep at once instead of spinning; ``default`` removes it) is set alike in every
worker too; it only changes OpenBLAS, which tinyseg's GEMMs and NumPy's use and PyTorch's
convolutions do not.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

MALLOC_THRESHOLDS = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "2147483647"}
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
OPENBLAS_MACHINE_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class Conditions:
    """What every worker of a benchmark run shares (``threads`` is the most one worker uses)."""

    threads: int = field(default_factory=usable_cores)
    malloc: str = "thresholds"              # "thresholds" | "default"
    openblas_coretype: str = "unset"        # "unset" | "keep"
    omp_wait_policy: str = "PASSIVE"
    openblas_thread_timeout: str = "4"      # "4" | "default"

    def env(self, threads: int | None = None, base: dict | None = None) -> dict:
        """The environment of a worker that runs ``threads`` threads (default: ``self.threads``)."""
        env = dict(os.environ if base is None else base)
        n = str(self.threads if threads is None else threads)
        for name in THREAD_VARIABLES:
            env[name] = n
        env["OMP_WAIT_POLICY"] = self.omp_wait_policy
        env.pop("OPENBLAS_THREAD_TIMEOUT", None)
        if self.openblas_thread_timeout != "default":
            env["OPENBLAS_THREAD_TIMEOUT"] = self.openblas_thread_timeout
        for name in MALLOC_THRESHOLDS:
            env.pop(name, None)
        if self.malloc == "thresholds":
            env.update(MALLOC_THRESHOLDS)
            env.pop("TINYSEG_SYSTEM_MALLOC", None)
        else:
            env["TINYSEG_SYSTEM_MALLOC"] = "1"
        if self.openblas_coretype == "unset":
            for name in OPENBLAS_MACHINE_VARIABLES:
                env.pop(name, None)
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        return env

    def header(self) -> str:
        """One line for every table: what both sides share."""
        malloc = ("glibc thresholds MALLOC_MMAP_THRESHOLD_=1073741824 "
                  "MALLOC_TRIM_THRESHOLD_=2147483647 in every worker"
                  if self.malloc == "thresholds" else "glibc defaults in every worker")
        blas = ("OPENBLAS_CORETYPE/L2_SIZE unset in every worker" if self.openblas_coretype == "unset"
                else "OPENBLAS_CORETYPE/L2_SIZE as the machine sets them, in every worker")
        timeout = (f"OPENBLAS_THREAD_TIMEOUT={self.openblas_thread_timeout}"
                   if self.openblas_thread_timeout != "default" else "OPENBLAS_THREAD_TIMEOUT unset")
        return f"allocator: {malloc}; {blas}; OMP_WAIT_POLICY={self.omp_wait_policy}; {timeout} (every worker)"

    def to_json(self) -> dict:
        d = asdict(self)
        d["malloc_env"] = MALLOC_THRESHOLDS if self.malloc == "thresholds" else {}
        d["machine_openblas_env"] = {k: os.environ[k] for k in OPENBLAS_MACHINE_VARIABLES
                                     if k in os.environ}
        d["header"] = self.header()
        return d


def add_condition_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("equal conditions (applied alike to every worker of every side)")
    g.add_argument("--threads", type=int, default=usable_cores(),
                   help="threads of a multi-threaded worker (default: the usable cores, %(default)s)")
    g.add_argument("--malloc", choices=["thresholds", "default"], default="thresholds",
                   help="glibc malloc: 'thresholds' sets MALLOC_MMAP_THRESHOLD_=1073741824 and "
                   "MALLOC_TRIM_THRESHOLD_=2147483647 in every worker, 'default' in none "
                   "(default: %(default)s)")
    g.add_argument("--openblas-coretype", choices=["unset", "keep"], default="unset",
                   help="'unset' removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE together from every "
                   "worker's environment, 'keep' leaves them (default: %(default)s)")
    g.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE"], default="PASSIVE",
                   help="OMP_WAIT_POLICY of every worker (default: %(default)s)")
    g.add_argument("--openblas-thread-timeout", choices=["4", "default"], default="4",
                   help="OPENBLAS_THREAD_TIMEOUT of every worker: '4' (what tinyseg's command line "
                   "sets: idle OpenBLAS threads sleep at once) or 'default' (unset) "
                   "(default: %(default)s)")


def conditions_from_args(args) -> Conditions:
    if args.threads < 1:
        raise SystemExit("--threads must be >= 1")
    return Conditions(threads=args.threads, malloc=args.malloc,
                      openblas_coretype=args.openblas_coretype, omp_wait_policy=args.omp_wait_policy,
                      openblas_thread_timeout=args.openblas_thread_timeout)


# ----------------------------------------------------------------------------- inside a worker
def pin_threads(threads: int) -> None:
    """Pin every thread pool this process has loaded (or will load) to ``threads``."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import numba
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        for lib in _openblas_libraries():
            for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                           "openblas_set_num_threads64_", "openblas_set_num_threads"):
                if hasattr(lib, symbol):
                    getattr(lib, symbol)(ctypes.c_int(threads))
                    break


def _openblas_libraries():
    """ctypes handles of the OpenBLAS libraries mapped into this process."""
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if "/" in line else ""
                if "openblas" in os.path.basename(path).lower() and ".so" in path:
                    paths.add(path)
    except OSError:
        return []
    libs = []
    for path in sorted(paths):
        try:
            libs.append((path, ctypes.CDLL(path)))
        except OSError:
            continue
    return [lib for _, lib in libs]


def _blas_info() -> list[dict]:
    """What each loaded BLAS says of itself (threadpoolctl if installed, else OpenBLAS by ctypes)."""
    try:
        from threadpoolctl import threadpool_info
        return [{k: v for k, v in d.items() if k in ("internal_api", "prefix", "version",
                                                       "num_threads", "threading_layer",
                                                       "architecture", "filepath")}
                for d in threadpool_info()]
    except ImportError:
        pass
    out = []
    for lib in _openblas_libraries():
        info = {"internal_api": "openblas", "filepath": lib._name}
        for key, symbols, restype in (
                ("num_threads", ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                                 "openblas_get_num_threads64_", "openblas_get_num_threads"),
                 ctypes.c_int),
                ("architecture", ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                                  "openblas_get_corename64_", "openblas_get_corename"),
                 ctypes.c_char_p),
                ("config", ("scipy_openblas_get_config64_", "scipy_openblas_get_config",
                            "openblas_get_config64_", "openblas_get_config"), ctypes.c_char_p)):
            for s in symbols:
                if hasattr(lib, s):
                    fn = getattr(lib, s)
                    fn.restype = restype
                    value = fn()
                    info[key] = value.decode() if isinstance(value, bytes) else value
                    break
        out.append(info)
    return out


def worker_report(side: str) -> dict:
    """What this worker really runs with: threads of each pool, affinity, allocator environment."""
    rep = {"side": side, "pid": os.getpid()}
    if "numba" in sys.modules:
        rep["numba_threads"] = sys.modules["numba"].get_num_threads()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        rep["torch_threads"] = torch.get_num_threads()
        rep["torch_interop_threads"] = torch.get_num_interop_threads()
    rep["blas"] = _blas_info()
    if hasattr(os, "sched_getaffinity"):
        rep["affinity"] = sorted(os.sched_getaffinity(0))
    rep["env"] = {k: os.environ.get(k) for k in (*THREAD_VARIABLES, *MALLOC_THRESHOLDS,
                                                 *OPENBLAS_MACHINE_VARIABLES, "OMP_WAIT_POLICY",
                                                 "OPENBLAS_THREAD_TIMEOUT",
                                                 "TINYSEG_SYSTEM_MALLOC")}
    return rep


# ----------------------------------------------------------------------------- the driver
class Worker:
    """A worker subprocess (``python SCRIPT --worker SIDE ARGS``) driven by JSON lines.

    The worker answers its first line with a ready message (its :func:`worker_report`), then one
    JSON reply per JSON command; see :func:`serve`.
    """

    def __init__(self, script: str, side: str, conditions: Conditions, threads: int,
                 args: list[str] = ()):
        self.side, self.threads = side, threads
        cmd = [sys.executable, os.path.abspath(script), "--worker", side, "--worker-threads",
               str(threads), *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1, env=conditions.env(threads))
        self.report = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} worker died (exit code {self.proc.wait()}); "
                               "its error is above")
        return json.loads(line)

    def ask(self, **command) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            self.proc.wait()


def serve(side: str, threads: int, handlers: dict, setup=None) -> None:
    """Worker loop: run ``setup()`` (imports), pin the threads, say ready, then answer commands.

    ``handlers[cmd](**command)`` returns a JSON-able dict; ``quit`` or end of input ends it.
    Replies go to the real stdout; anything the handlers print goes to stderr.
    """
    out = sys.stdout
    sys.stdout = sys.stderr
    if setup is not None:
        setup()
    pin_threads(threads)

    def reply(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    reply({"ready": True, **worker_report(side)})
    for line in sys.stdin:
        command = json.loads(line)
        cmd = command.pop("cmd")
        if cmd == "quit":
            break
        if cmd == "report":
            reply(worker_report(side))
            continue
        reply(handlers[cmd](**command))


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _version(module: str, dist: str | None = None) -> str | None:
    try:
        import importlib.metadata as md
        return md.version(dist or module)
    except Exception:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_facts() -> dict:
    """CPU, cores, versions: the facts every result file carries."""
    facts = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "usable_cores": usable_cores(),
             "platform": platform.platform(), "python": platform.python_version(),
             "numpy": _version("numpy"), "scipy": _version("scipy"), "numba": _version("numba"),
             "torch": _version("torch"), "pydensecrf": _version("pydensecrf", "pydensecrf2")
             or _version("pydensecrf"), "threadpoolctl": _version("threadpoolctl"),
             "tinyseg_commit": _git_commit()}
    try:
        from tinyseg._version import __version__
        facts["tinyseg"] = __version__
    except ImportError:
        facts["tinyseg"] = None
    return facts


def facts_line(facts: dict) -> str:
    return (f"{facts['cpu']}, {facts['usable_cores']} usable cores; python {facts['python']}, "
            f"numpy {facts['numpy']}, numba {facts['numba']}, torch {facts['torch']}, "
            f"pydensecrf {facts['pydensecrf']}")


class Run:
    """One benchmark run's context: conditions, machine facts, load before, worker reports."""

    def __init__(self, name: str, conditions: Conditions):
        self.name, self.conditions = name, conditions
        self.facts = machine_facts()
        self.load_before = load_average()
        self.started = time.time()
        self.workers: list[dict] = []
        print(f"{name}: {facts_line(self.facts)}; load {self.load_before}", flush=True)
        print(f"  {conditions.header()}", flush=True)

    def add_worker(self, worker: Worker) -> Worker:
        rep = dict(worker.report)
        rep.pop("ready", None)
        self.workers.append(rep)
        return worker

    def write(self, path: str | None, records: list[dict], **extra) -> dict:
        doc = {"benchmark": self.name, "conditions": self.conditions.to_json(),
               "machine": self.facts, "load_before": self.load_before, "load_after": load_average(),
               "seconds": round(time.time() - self.started, 1), "workers": self.workers, **extra,
               "records": records}
        print(f"load average at the end: {doc['load_after']}", flush=True)
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                json.dump(doc, f, indent=2)
            print(f"wrote {len(records)} records to {path}", flush=True)
        return doc
