#!/usr/bin/python3
"""tests/run.py BUILDDIR — the whole test suite, as `make check` runs it.
   tests/run.py --interop BUILDDIR — only the interop tests (tests/interop: real ejabberd),
   as `make interop` runs them.

Runs every C unit test program (Check) and then the integration tests (pytest, driving the real
ternd over real sockets), counts individual test cases, and ends with the line
"N passed, N failed". Exits non-zero when anything failed or nothing ran.
"""
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

UNIT_TIMEOUT = 600
INTEGRATION_TIMEOUT = 3000


def run_unit_tests(build):
    passed = failed = 0
    unit_dir = os.path.join(build, "tests", "unit")
    programs = sorted(
        p for p in os.listdir(unit_dir)
        if p.startswith("test_") and "." not in p and os.access(os.path.join(unit_dir, p), os.X_OK)
    ) if os.path.isdir(unit_dir) else []
    for name in programs:
        path = os.path.join(unit_dir, name)
        try:
            proc = subprocess.run([path], capture_output=True, text=True, timeout=UNIT_TIMEOUT,
                                  cwd=build)
            output = proc.stdout + proc.stderr
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            output, rc = f"{name}: timed out after {UNIT_TIMEOUT}s", -1
        m = re.search(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", output)
        if m:
            total, fails, errors = map(int, m.groups())
            bad = fails + errors
            # A crash after the summary (e.g. a leak report) still fails the program.
            if bad == 0 and rc != 0:
                bad = 1
                total += 1
            passed += total - bad
            failed += bad
        else:
            failed += 1
            bad = 1
        status = "ok" if bad == 0 else "FAILED"
        print(f"unit {name}: {status}")
        if bad:
            print(output)
    return passed, failed


# The client-stream stories run a second time with one event loop (workers = 1): the whole
# suite runs ternd with two, where worker threads carry the client connections (c2s_relay.c),
# and these cover the main loop's own client link (c2s_tcp.c).
ONE_LOOP_TESTS = ["test_login.py", "test_messaging.py", "test_bad_input.py",
                  "test_presence.py", "test_server_lifecycle.py",
                  "test_backpressure.py"]


def run_integration_tests(build, srcdir, folder="integration", files=None, workers=None):
    """pytest on tests/<folder> (or those files in it); returns (passed, failed)."""
    tests = os.path.join(srcdir, "tests", folder)
    targets = [os.path.join(tests, f) for f in files] if files else [tests]
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "junit.xml")
        env = dict(os.environ, TERN_BUILD=build, PYTHONDONTWRITEBYTECODE="1")
        if workers:
            env["TERN_TEST_WORKERS"] = str(workers)
        cmd = ["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider", "-q",
               "--timeout=120", f"--junitxml={report}", *targets]
        try:
            proc = subprocess.run(cmd, env=env, timeout=INTEGRATION_TIMEOUT, cwd=srcdir)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            print(f"{folder} tests timed out after {INTEGRATION_TIMEOUT}s")
            return 0, 1
        if not os.path.exists(report):
            print(f"{folder} tests produced no report (pytest exit {rc})")
            return 0, 1
        root = ET.parse(report).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        total = sum(int(s.get("tests", 0)) for s in suites)
        bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
        skipped = sum(int(s.get("skipped", 0)) for s in suites)
        passed = total - bad - skipped
        if rc not in (0, 1) and bad == 0:
            bad = 1  # pytest itself failed (collection error, internal error)
        return passed, bad


def run_fuzz_smoke(build, seconds):
    """TERN_FUZZ_SECONDS=N: each libFuzzer target runs N seconds; a crash fails it."""
    proc = subprocess.run(["make", "-C", build, "fuzz", f"FUZZ_SECONDS={seconds}"],
                          capture_output=True, text=True, timeout=seconds * 10 + 300)
    targets = re.findall(r"^Done \d+ runs", proc.stderr, re.M)
    ok = proc.returncode == 0
    print(f"fuzz smoke ({seconds}s per target): {'ok' if ok else 'FAILED'}")
    if not ok:
        print(proc.stdout[-5000:], proc.stderr[-5000:])
    return (len(targets), 0) if ok else (len(targets), 1)


def main():
    args = sys.argv[1:]
    interop = "--interop" in args
    args = [a for a in args if a != "--interop"]
    build = os.path.abspath(args[0] if args else ".")
    srcdir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if interop:
        passed, failed = run_integration_tests(build, srcdir, "interop")
        print(f"interop: {passed} passed, {failed} failed")
        print(f"{passed} passed, {failed} failed")
        sys.exit(1 if failed or passed == 0 else 0)
    up, uf = run_unit_tests(build)
    ip, if_ = run_integration_tests(build, srcdir)
    op, of = run_integration_tests(build, srcdir, files=ONE_LOOP_TESTS, workers=1)
    print(f"integration with one event loop: {op} passed, {of} failed")
    bp, bf = run_integration_tests(build, srcdir, "build")
    print(f"build on older libraries: {bp} passed, {bf} failed")
    ip, if_ = ip + op + bp, if_ + of + bf
    fp = ff = 0
    if os.environ.get("TERN_FUZZ_SECONDS"):
        fp, ff = run_fuzz_smoke(build, int(os.environ["TERN_FUZZ_SECONDS"]))
    passed, failed = up + ip + fp, uf + if_ + ff
    print(f"unit: {up} passed, {uf} failed; integration: {ip} passed, {if_} failed; "
          f"fuzz: {fp} passed, {ff} failed")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or passed == 0 else 0)


if __name__ == "__main__":
    main()
