#!/usr/bin/env python3
"""Runs two gpuprobe builds on every fake-driver scenario and compares them.

The runner behind scripts/compare-builds (which builds the binaries and the
fake driver, and passes their paths here). Each case is one scenario with
one command, chosen as tests/defaults.rs chooses them; each runs once per
build, the two side by side, so both see the same load. What two runs of
the same build may differ in is masked by VOLATILE below, found with
--self-check: it runs one build twice and names every JSON path whose
values differed, and whether VOLATILE covers exactly those.

Python 3 standard library only.
"""

import argparse
import concurrent.futures
import dataclasses
import difflib
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# --- What runs -------------------------------------------------------------

# The inputs' seed, so both builds multiply the same matrices (the probe,
# burn and bench take --seed; list and health run no matmul).
SEED = "1"

# Sizes scripts/with-fakegpu adds when none is given: the fake runs every
# CUDA thread on the CPU, so gpuprobe's own defaults would take minutes.
FAKE_SIZE = ["--size", "128"]
FAKE_BENCH_SIZES = ["--sizes", "32,64,128"]
FAKE_BANDWIDTH_SIZE = "1MiB"
FAKE_MEMTEST_SIZE = ["--size", "4MiB"]

# Each command: its arguments after the binary, and its deadline in seconds
# (tests/defaults.rs: probe and list 60 s, health 10 s, bench and burn
# 180 s, memtest 150 s). `health` prints one line and takes neither --json nor --seed.
COMMANDS = {
    "probe": (FAKE_SIZE + ["--json", "--seed", SEED], 60),
    "health": (["health"], 10),
    "list": (["list", "--json"], 60),
    "burn": (["burn"] + FAKE_SIZE + ["--json", "--seed", SEED], 180),
    "bench": (["bench"] + FAKE_BENCH_SIZES + ["--json", "--seed", SEED], 180),
    "memtest": (["memtest"] + FAKE_MEMTEST_SIZE + ["--json", "--seed", SEED], 150),
}

# Scenarios whose driver call hangs on purpose end at their deadline by
# design; tests/defaults.rs gives them this one so the run stays short.
HANG_TIMEOUT = ("5s", 5)
# Except here: in hang-one-gpu GPU 0 runs the whole probe (10 to 15 s on a
# busy 2-core machine) beside GPU 1's stuck copy; in 5 s it ends mid-way,
# as late as the load makes it, and whether GPU 1 counts as stuck or still
# working follows (--self-check at 5 s: 2 runs in 3 differed there). In
# 30 s GPU 0 finishes and GPU 1's copy is found stuck every time, as the
# scenario means (the summary still races: see VOLATILE).
HANG_TIMEOUTS = {"hang-one-gpu": ("30s", 30)}

# How long past its deadline a run may take before it is killed
# (tests/defaults.rs's MARGIN).
MARGIN = 20

# Variables of the caller's shell that gpuprobe or the fake read: removed,
# so a run depends only on the scenario (which sets its own).
SCRUBBED_PREFIXES = ("GPUPROBE_", "FAKEGPU_", "CUDA_", "NVIDIA_")
SCRUBBED = {"LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "PYTHONHOME",
            "VIRTUAL_ENV", "CONDA_PREFIX"}


def commands_for(name, scenario):
    """The commands tests/defaults.rs runs on this scenario."""
    commands = ["probe", "health", "list"]
    if name.startswith("burn-"):
        commands.append("burn")
    if name.startswith("memtest-"):
        commands.append("memtest")
    cublas = scenario.get("cublas")
    if cublas is True or isinstance(cublas, dict):
        commands.append("bench")
    return commands


def hangs(scenario):
    """Whether one of the scenario's faults is a driver call that never returns."""
    faults = scenario.get("faults")
    return isinstance(faults, list) and any(
        isinstance(f, dict) and f.get("hang") is True for f in faults)


class Case:
    """One scenario with one command."""

    def __init__(self, scenarios_dir, name, scenario, command):
        self.name = name
        self.path = os.path.join(scenarios_dir, name + ".json")
        self.command = command
        args, deadline = COMMANDS[command]
        self.args = list(args)
        if hangs(scenario):
            flag, deadline = HANG_TIMEOUTS.get(name, HANG_TIMEOUT)
            self.args += ["--timeout", flag]
        self.limit = deadline + MARGIN

    @property
    def label(self):
        return f"{self.name}:{self.command}"


def cases(scenarios_dir, only):
    found = []
    for file in sorted(os.listdir(scenarios_dir)):
        if not file.endswith(".json"):
            continue
        name = file[: -len(".json")]
        with open(os.path.join(scenarios_dir, file), encoding="utf-8") as f:
            scenario = json.load(f)
        for command in commands_for(name, scenario):
            case = Case(scenarios_dir, name, scenario, command)
            if only is None or re.search(only, case.label):
                found.append(case)
    return found


@dataclasses.dataclass
class Ran:
    """What one run of one build left."""

    status: object  # the exit code, or why there is none ("killed after 80 s")
    stdout: str
    stderr: str
    seconds: float
    rundir: str  # the scenario's folder, named RUNDIR in the output
    bindir: str  # the binary's folder, named BINDIR in the output


def run(case, binary, fake, work, tag):
    """Lays the scenario out with the fake and runs `binary` on it."""
    runs = os.path.join(work, "runs")
    os.makedirs(runs, exist_ok=True)
    rundir = os.path.realpath(tempfile.mkdtemp(prefix=f"{case.label}.{tag}.".replace(":", "."), dir=runs))
    prepared = subprocess.run([fake, "prepare", case.path, rundir],
                              capture_output=True, text=True, check=False)
    if prepared.returncode != 0:
        raise RuntimeError(f"fakegpu prepare {case.path}: {prepared.stderr.strip()}")
    env = {k: v for k, v in os.environ.items()
           if k not in SCRUBBED and not k.startswith(SCRUBBED_PREFIXES)}
    env["GPUPROBE_BANDWIDTH_SIZE"] = FAKE_BANDWIDTH_SIZE
    with open(os.path.join(rundir, "env"), encoding="utf-8") as f:
        for line in f.read().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    started = time.monotonic()
    # A session of its own, so a run past its limit is killed with every
    # process it started.
    proc = subprocess.Popen([binary] + case.args, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=case.limit)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        status = f"killed after {case.limit} s"
    seconds = time.monotonic() - started
    return Ran(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
               seconds, rundir, os.path.dirname(os.path.realpath(binary)))


# --- What is masked --------------------------------------------------------

# What differs between two runs of one build, as found by --self-check:
# (cases, path pattern, how it is masked, why it varies). `cases` is None
# for every case, else a regular expression over SCENARIO:COMMAND. A
# pattern is a JSON path from the report's root `$`: `.key` (shell-style
# wildcards allowed), `[*]` any element, `[NAME]` the element of a `checks`
# list whose name is NAME, `**` any run of keys and elements; `$` alone is
# the whole output of a command that prints text (health). Masks: "number"
# replaces a number (null stays null, so a field that turns null is still
# caught); "digits" replaces each number in a string that is not part of
# a word or an identifier (GP012, sm_80, x16, GPU 0 and UUIDs stay);
# "any" replaces the whole value (an array whose length varies, a text
# that names a race's outcome).
VOLATILE = [
    # Where a hang meets the other GPU is a race between the two GPUs'
    # threads. In `hang`, GPU 1's launch takes the driver lock for good and
    # GPU 0 blocks in whichever call it reaches next (cuEventRecord in
    # matmul, cuMemcpyHtoD in upload, ...); the summary names the GPUs in
    # the order they were found. In `hang-one-gpu`, the summary says "a
    # hung GPU: GPU 0 finished meanwhile" only when one of GPU 0's calls
    # returned after GPU 1's copy began, else "a wedged GPU or driver";
    # which GPU gets there first varies. The verdict, the exit code, GPU 1's
    # checks (and in hang-one-gpu GPU 0's) stay compared. First in the
    # table: the first entry that covers a path masks it.
    ("^hang:", "$.summary", "any", "names the call and stage GPU 0 was caught in"),
    ("^hang:health$", "$", "any", "names the call and stage GPU 0 was caught in"),
    ("^hang:probe$", "$.devices[0].checks", "any", "how far GPU 0 got before the lock was taken"),
    ("^hang-one-gpu:", "$.summary", "any", "'a hung GPU' or 'a wedged GPU or driver'"),
    ("^hang-one-gpu:health$", "$", "any", "'a hung GPU' or 'a wedged GPU or driver'"),
    ("^hang-one-gpu:probe$", "$.devices[1].checks[download].detail", "digits",
     "how long the stuck copy had waited at the deadline (after 29.6 s)"),
    # The run as a whole.
    (None, "$.started_at", "any", "wall-clock time the run began"),
    (None, "$.duration_ms", "number", "wall-clock length of the run"),
    (None, "$.events.watched_ms", "number", "NVML's events are watched for the run's wall-clock length"),
    (":list$", "$.settings.seed", "number",
     "list takes no --seed, so the report carries a fresh one"),
    (None, "$.summary", "digits", "quotes the measured GFLOP/s and speedup"),
    (None, "$", "digits", "health's line ends with its wall-clock time, [healthy, 56 ms]"),
    # Every check's own time, and the texts that quote a time or a count
    # of timed runs.
    (None, "$.checks[*].duration_ms", "number", "wall-clock time of a machine-wide check"),
    (None, "$.devices[*].checks[*].duration_ms", "number", "wall-clock time of a per-GPU check"),
    (None, "$.checks[cpu_reference].detail", "digits", "the CPU product's wall-clock time"),
    (None, "$.checks[cpu_baseline].detail", "digits", "the CPU's GFLOP/s, runs and time per run"),
    (None, "$.checks[bench_cpu].detail", "digits", "the CPU's GFLOP/s and timed runs per size"),
    (None, "$.devices[*].checks[module].detail", "digits", "the JIT's wall-clock time"),
    (None, "$.devices[*].checks[matmul].detail", "digits",
     "products that fill --min-time and their time each"),
    (None, "$.devices[*].checks[tensor_cores].detail", "digits", "the measured TF32/BF16 GFLOP/s"),
    (None, "$.devices[*].checks[bench].detail", "digits", "each kernel's measured GFLOP/s"),
    (None, "$.devices[*].checks[burn].detail", "digits",
     "products, errors and GFLOP/s of a burn that runs for a wall-clock time"),
    # The CPU baseline: as many runs as fill its time, timed on a shared CPU.
    (None, "$.cpu.iterations", "number", "runs that fill the baseline's minimum time"),
    (None, "$.cpu.time_ms", "number", "the CPU's time per run"),
    (None, "$.cpu.gflops", "number", "the CPU's measured GFLOP/s"),
    (None, "$.bench.cpu[*].iterations", "number", "runs that fill the minimum time, per size"),
    (None, "$.bench.cpu[*].time_ms", "number", "the CPU's time per run, per size"),
    (None, "$.bench.cpu[*].gflops", "number", "the CPU's measured GFLOP/s, per size"),
    # The GPU measurements: the fake times a kernel whose rate the scenario
    # does not model by the CPU time its emulation took (tests/fakegpu,
    # cuLaunchKernel), so every kernel time, rate and run count moves.
    (None, "$.devices[*].module_load_ms", "number", "the JIT's wall-clock time"),
    (None, "$.devices[*].matmul.iterations", "number", "products that fill --min-time"),
    (None, "$.devices[*].matmul.iterations_requested", "number", "products that fill --min-time"),
    (None, "$.devices[*].matmul.first_launch_ms", "number", "the untimed first launch's time"),
    (None, "$.devices[*].matmul.gpu_time_ms", "number", "time per product by the fake's events"),
    (None, "$.devices[*].matmul.gpu_gflops", "number", "follows gpu_time_ms"),
    (None, "$.devices[*].matmul.efficiency", "number", "follows gpu_gflops"),
    (None, "$.devices[*].matmul.speedup_vs_cpu", "number", "GPU over CPU GFLOP/s, both measured"),
    (None, "$.devices[*].tensor_cores[*].iterations", "number", "products that fill --min-time"),
    (None, "$.devices[*].tensor_cores[*].gpu_time_ms", "number", "time per product by the fake's events"),
    (None, "$.devices[*].tensor_cores[*].gpu_tflops", "number", "follows gpu_time_ms"),
    (None, "$.devices[*].bench[*].iterations", "number", "products that fill the minimum time"),
    (None, "$.devices[*].bench[*].gpu_time_ms", "number", "time per product by the fake's events"),
    (None, "$.devices[*].bench[*].gpu_gflops", "number", "follows gpu_time_ms"),
    (None, "$.devices[*].bench[*].efficiency", "number", "follows gpu_gflops"),
    (None, "$.devices[*].bench[*].cpu_gflops", "number", "the CPU's measured GFLOP/s"),
    (None, "$.devices[*].bench[*].speedup_vs_cpu", "number", "GPU over CPU GFLOP/s, both measured"),
    # burn runs for a wall-clock --duration: how many products, intervals
    # and errors fit in it, and when each came, vary.
    (None, "$.devices[*].burn.duration_ms", "number", "the burn's wall-clock length"),
    (None, "$.devices[*].burn.products", "number", "products that fit in --duration"),
    (None, "$.devices[*].burn.verifications", "number", "comparisons that fit in --duration"),
    (None, "$.devices[*].burn.gflops_mean", "number", "mean over a varying number of intervals"),
    (None, "$.devices[*].burn.gflops_best", "number", "best of a varying number of intervals"),
    (None, "$.devices[*].burn.worst_over_best", "number", "follows gflops_best"),
    (None, "$.devices[*].burn.worst_interval.at_ms", "number", "when the worst interval began"),
    (None, "$.devices[*].burn.intervals", "any", "one entry per interval that fit in --duration"),
    (None, "$.devices[*].burn.errors[*].at_ms", "number", "when each error was seen"),
    (None, "$.devices[*].burn.errors_not_listed", "number", "errors past the listed ones, per product run"),
    (None, "$.devices[*].burn.error_counts[*].count", "number", "errors that fit in --duration"),
    (":burn$", "$.diagnoses[*].evidence[*]", "digits", "quotes when in the burn each error came"),
    # The error counters over a run: read before and after the GPU's work,
    # wall-clock time apart; in the counters-* scenarios the fake grows
    # them per second of the GPU's emulated work, whose length varies.
    (None, "$.devices[*].counters.seconds", "number", "wall-clock time between the counters' readings"),
    ("^counters-", "$.devices[*].counters.*.after", "number", "grows with the emulated work's length"),
    ("^counters-", "$.devices[*].counters.*.delta", "number", "grows with the emulated work's length"),
    ("^counters-", "$.diagnoses[*].evidence[*]", "digits", "quotes the counters' growth and its rate"),
    ("^counters-", "$.devices[*].telemetry.ecc_corrected_volatile", "number", "grows with the emulated work's length"),
    # memtest: passes of every pattern until a wall-clock duration.
    (None, "$.devices[*].memtest.passes", "number", "whole passes that fit in --duration"),
    (None, "$.devices[*].memtest.patterns[*].runs", "number", "follows the passes"),
    (None, "$.devices[*].memtest.patterns[*].mismatches", "number", "follows the passes"),
    (None, "$.devices[*].memtest.duration_ms", "number", "the test's wall-clock length"),
    (None, "$.devices[*].memtest.bytes_moved", "number", "follows the passes"),
    (None, "$.devices[*].memtest.gpu_time_ms", "number", "follows the passes"),
    (None, "$.devices[*].memtest.mismatches", "number", "a faulty cell counts once per sweep that catches it"),
    (None, "$.devices[*].checks[memtest].detail", "digits", "quotes the passes and the mismatches"),
    (":memtest$", "$.diagnoses[*].evidence[*]", "digits", "quotes the mismatches"),
]

# Temporary paths are not masked but named: each run's scenario folder and
# each build's binary folder are replaced by these wherever they occur.
RUNDIR = "<rundir>"
BINDIR = "<bindir>"

# A number in prose: not part of a word or a version (GP012, sm_80, x16,
# 128x128, 12.550.54.15 stay; 3.9x and 4.24e-6 do not). What the first
# group matches is kept: a GPU's index, its UUID and its PCI bus id.
DIGITS = re.compile(r"(\bGPU [0-9]+\b|\b(?:GPU|MIG)-[0-9A-Fa-f-]+|\b[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]\b)"
                    r"|(?<![\w.])[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?(?![0-9A-Za-wyz_]|x\w|\.[0-9])")


def tokens(path):
    """`$.a[0].b` -> ['a', '[0]', 'b']."""
    return re.findall(r"\[[^\]]*\]|[^.\[\]]+", path[1:])


PATTERNS = [(re.compile(when) if when else None, tokens(p), kind, p)
            for when, p, kind, _ in VOLATILE]


def matches(pattern, path):
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return any(matches(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    step = path[0]
    if head.startswith("["):
        ok = step.startswith("[") and fnmatch.fnmatchcase(step[1:-1], head[1:-1])
    else:
        ok = not step.startswith("[") and fnmatch.fnmatchcase(step, head)
    return ok and matches(pattern[1:], path[1:])


def mask_for(label, path):
    """The first VOLATILE entry that covers `path` in case `label`, as
    (kind, description, index)."""
    for index, (when, pattern, kind, text) in enumerate(PATTERNS):
        if (when is None or when.search(label)) and matches(pattern, path):
            return kind, described(index), index
    return None


def described(index):
    when, pattern = VOLATILE[index][:2]
    return pattern if when is None else f"{pattern} in /{when}/"


def element(parent, i, value):
    """An array element's path token: a check by its name, else its index."""
    if parent == "checks" and isinstance(value, dict) and isinstance(value.get("name"), str):
        return f"[{value['name']}]"
    return f"[{i}]"


def masked(label, value, path=()):
    rule = mask_for(label, list(path))
    kind = rule[0] if rule else None
    if kind == "any":
        return "<volatile>"
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return "<number>"
    if kind == "digits" and isinstance(value, str):
        return DIGITS.sub(lambda m: m.group(1) or "#", value)
    if isinstance(value, dict):
        return {k: masked(label, v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        parent = path[-1] if path else None
        return [masked(label, v, path + (element(parent, i, v),)) for i, v in enumerate(value)]
    return value


def renamed(value, ran):
    """Each temporary path replaced by its name."""
    if isinstance(value, str):
        return value.replace(ran.rundir, RUNDIR).replace(ran.bindir, BINDIR)
    if isinstance(value, dict):
        return {k: renamed(v, ran) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, ran) for v in value]
    return value


def output(ran):
    """stdout as JSON when it is JSON, else as text; temporary paths named."""
    try:
        value = json.loads(ran.stdout)
    except ValueError:
        value = ran.stdout
    return renamed(value, ran)


def differing(a, b, path=()):
    """The paths (token tuples) where two outputs differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                found.append((path + (key,), a.get(key, "<absent>"), b.get(key, "<absent>")))
            else:
                found += differing(a[key], b[key], path + (key,))
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = []
        parent = path[-1] if path else None
        for i, (x, y) in enumerate(zip(a, b)):
            found += differing(x, y, path + (element(parent, i, x),))
        return found
    if isinstance(a, list) and isinstance(b, list):
        return [(path, f"<{len(a)} elements>", f"<{len(b)} elements>")]
    if a == b and type(a) is type(b):
        return []
    return [(path, a, b)]


def render(path):
    return "$" + "".join(t if t.startswith("[") else "." + t for t in path)


def general(path):
    """A path with its indices as [*] (checks keep their names), to group
    the same field of every element."""
    return render(tuple("[*]" if re.fullmatch(r"\[[0-9]+\]", t) else t for t in path))


def document(case, ran):
    """What is compared: the exit status and the masked output."""
    return {"exit_status": ran.status, "output": masked(case.label, output(ran))}


def unified(label, a, b, old, new):
    left = json.dumps(a, indent=1, ensure_ascii=False).splitlines()
    right = json.dumps(b, indent=1, ensure_ascii=False).splitlines()
    lines = list(difflib.unified_diff(left, right, f"{old}/{label}", f"{new}/{label}", n=2, lineterm=""))
    if len(lines) > 60:
        lines = lines[:60] + [f"... ({len(lines) - 60} more diff lines; --keep DIR keeps both)"]
    return "\n".join("    " + line for line in lines)


def keep(directory, case, tag, ran):
    base = os.path.join(directory, f"{case.name}.{case.command}.{tag}")
    with open(base + ".stdout", "w", encoding="utf-8") as f:
        f.write(ran.stdout)
    with open(base + ".stderr", "w", encoding="utf-8") as f:
        f.write(ran.stderr)
    with open(base + ".masked.json", "w", encoding="utf-8") as f:
        json.dump(document(case, ran), f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(base + ".args", "w", encoding="utf-8") as f:
        f.write(" ".join(["gpuprobe"] + case.args) + "\n")


def note_varying(varying, case, a, b):
    """Adds to `varying` each path whose values differ between two runs of
    one build: general path -> [cases, an example, the mask, scenarios]."""
    found = [(general(path), x, y, mask_for(case.label, list(path)))
             for path, x, y in differing(output(a), output(b))]
    if a.status != b.status:
        found.append(("exit status", a.status, b.status, None))
    for path, x, y, rule in found:
        entry = varying.setdefault(path, [0, (x, y), rule, set()])
        entry[0] += 1
        entry[3].add(case.label)


def short(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake", required=True, help="the fakegpu binary (libfakegpu.a beside it)")
    parser.add_argument("--scenarios", required=True, help="folder of scenario files")
    parser.add_argument("--work", required=True, help="folder for the runs' scenario folders")
    parser.add_argument("--old", required=True, help="the old gpuprobe binary")
    parser.add_argument("--new", help="the new gpuprobe binary")
    parser.add_argument("--old-label", default="old")
    parser.add_argument("--new-label", default="new")
    parser.add_argument("--self-check", action="store_true", help="run --old twice instead")
    parser.add_argument("--only", help="regular expression over SCENARIO:COMMAND")
    parser.add_argument("--jobs", type=int, default=2, choices=[1, 2])
    parser.add_argument("--keep", help="folder to keep every run's outputs in")
    opts = parser.parse_args()
    if opts.self_check == (opts.new is not None):
        parser.error("give --new or --self-check, not both or neither")

    todo = cases(opts.scenarios, opts.only)
    if not todo:
        print(f"compare-builds: no case matches --only {opts.only}", file=sys.stderr)
        return 2
    if opts.self_check:
        sides = [("run1", opts.old), ("run2", opts.old)]
        names = (f"{opts.old_label} run 1", f"{opts.old_label} run 2")
    else:
        sides = [("old", opts.old), ("new", opts.new)]
        names = (opts.old_label, opts.new_label)
    if opts.keep:
        os.makedirs(opts.keep, exist_ok=True)
    for command, (args, _) in COMMANDS.items():
        print(f"# {command}: gpuprobe {' '.join(args)}")
    print(f"# hanging scenarios add --timeout {HANG_TIMEOUT[0]} "
          f"({', '.join(f'{n} {t}' for n, (t, _) in HANG_TIMEOUTS.items())}); "
          f"GPUPROBE_BANDWIDTH_SIZE={FAKE_BANDWIDTH_SIZE}")
    print(f"# {len(todo)} cases, {opts.jobs} at a time: {names[0]} vs {names[1]}", flush=True)

    started = time.monotonic()
    different = []
    varying = {}  # see note_varying
    width = max(len(c.label) for c in todo)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=opts.jobs)
    try:
        futures = [[pool.submit(run, case, binary, opts.fake, opts.work, tag) for tag, binary in sides]
                   for case in todo]
        for case, pair in zip(todo, futures):
            a, b = (f.result() for f in pair)
            if opts.keep:
                keep(opts.keep, case, sides[0][0], a)
                keep(opts.keep, case, sides[1][0], b)
            for ran in (a, b):
                shutil.rmtree(ran.rundir, ignore_errors=True)
            if opts.self_check:
                note_varying(varying, case, a, b)
            da, db = document(case, a), document(case, b)
            same = da == db
            took = f"{a.seconds:.1f} s, {b.seconds:.1f} s"
            status = a.status if a.status == b.status else f"{a.status} vs {b.status}"
            print(f"{'same' if same else 'DIFFERENT':<9}  {case.label:<{width}}  exit {status}  ({took})")
            if not same:
                different.append(case.label)
                print(unified(case.label, da, db, sides[0][0], sides[1][0]))
            sys.stdout.flush()
    except RuntimeError as e:
        print(f"compare-builds: {e}", file=sys.stderr)
        return 2
    finally:
        # Nothing queued starts after a failure or ^C; what runs ends by
        # its own deadline.
        pool.shutdown(wait=True, cancel_futures=True)

    minutes = (time.monotonic() - started) / 60
    print()
    if opts.self_check:
        print("Paths that differed between the two runs (cases, example, mask):")
        unmasked = 0
        for path, (count, (x, y), rule, names) in sorted(varying.items()):
            covered = f"masked by {rule[1]} ({rule[0]})" if rule else "NOT MASKED"
            unmasked += rule is None
            where = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
            print(f"  {path}: {count} case(s) ({where}), {short(x)} vs {short(y)}; {covered}")
        if not varying:
            print("  none")
        seen = {rule[2] for _, _, rule, _ in varying.values() if rule}
        unused = [described(i) for i in range(len(VOLATILE)) if i not in seen]
        if unused:
            print("Mask entries that matched no difference in these cases (too broad, or"
                  " not exercised by this subset):")
            for p in unused:
                print(f"  {p}")
        print(f"compare-builds --self-check: {len(todo)} cases in {minutes:.1f} min; "
              f"{len(varying)} varying path(s), {unmasked} not masked; "
              f"{len(different)} case(s) still differ after masking")
    else:
        print(f"compare-builds: {len(todo)} cases in {minutes:.1f} min: "
              f"{len(todo) - len(different)} same, {len(different)} DIFFERENT "
              f"({names[0]} vs {names[1]})")
        for label in different:
            print(f"  DIFFERENT: {label}")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
