# Runs one command with a deadline and reports its wall time and peak RSS,
# for scripts/gpu-validate (GNU time and bc may be missing on the GPU machine).
#
#   python3 timed.py NAME TIMEOUT_S STDOUT_FILE STDERR_FILE CMD [ARGS...]
#
# Prints one line: "NAME  exit=N  wall=S s  peak_rss=M MiB" (exit=timeout
# when the deadline passed). Exits with the command's status, 124 when it
# was killed at the deadline, 127 when it could not be started.
#
# Each call is a process of its own, so RUSAGE_CHILDREN's ru_maxrss (the
# largest resident set of any waited-for descendant) is this command's peak.
# The command runs in a session of its own; at the deadline the whole
# session gets SIGTERM, then SIGKILL 5 s later. A process stuck in the
# kernel (a wedged driver call) may survive even that: the helper then
# gives up on it after another 5 s instead of waiting. SIGTERM or SIGINT
# to the helper itself passes SIGTERM on to the command's session.
import os
import resource
import signal
import subprocess
import sys
import time


def kill_session(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main():
    if len(sys.argv) < 6:
        print("usage: timed.py NAME TIMEOUT_S STDOUT_FILE STDERR_FILE CMD [ARGS...]", file=sys.stderr)
        return 2
    name, limit, out_path, err_path, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
    start = time.monotonic()
    note = ""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            print(f"{name:<26} exit=127  could not start: {e}")
            return 127
        # Stopped itself (the run's own deadline, Ctrl-C): the command's
        # session goes too, not left running on its own.
        def stop(signum, _frame):
            kill_session(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_session(proc, signal.SIGKILL)
            print(f"{name:<26} exit=signal stopped after {time.monotonic() - start:.3f} s (signal {signum})")
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            code = proc.wait(timeout=limit)
            if code < 0:  # killed by a signal: the shell's 128 + N
                code = 128 - code
        except subprocess.TimeoutExpired:
            kill_session(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_session(proc, signal.SIGKILL)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    note = " (did not die after SIGKILL: left behind)"
            code = 124
            note = f" TIMED OUT after {limit:.0f} s" + note
    wall = time.monotonic() - start
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rss = f"{rss_kib / 1024:7.1f} MiB" if rss_kib else "unmeasured"
    shown = "timeout" if code == 124 and note else str(code)
    print(f"{name:<26} exit={shown:<4} wall={wall:8.3f} s  peak_rss={rss}{note}")
    return code


if __name__ == "__main__":
    sys.exit(main())
