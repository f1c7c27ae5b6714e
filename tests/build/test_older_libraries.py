"""The build on an older Debian point release (issue 12): configure checks each library call
newer than the version it requires, and falls back or names the package to update, never
failing with a compile error.

An expat header without XML_SetReparseDeferralEnabled (Debian's libexpat1-dev before
2.5.0-1+deb12u2, on machine images of earlier point releases) is made from the system's own
header in a prefix of the test's, and pkg-config is pointed at it. A copy of the source tree is
configured and built against it with -Werror. The build still runs against the system's
library, which has the call and defers by default, as on a machine whose libexpat1 was updated
after the build: the stream parser's unit tests (each stanza answered as soon as its last byte
is in) pass only if the parser finds the call at run time and turns deferral off."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 900
# Build outputs and local state left out of the copy: it is configured from scratch.
NOT_COPIED = shutil.ignore_patterns(".git", "node_modules", "var", "*.o", "*.so", "*.a",
                                    ".deps", ".dirstamp", "Makefile", "config.status",
                                    "config.log", "tern_build.h", "stamp-h1", "autom4te.cache",
                                    "ternd", "ternctl", "__pycache__", "*.trs", "*.log")


def system_expat_header():
    cflags = subprocess.run(["pkg-config", "--cflags-only-I", "expat"], capture_output=True,
                            text=True, check=True).stdout.split()
    for folder in [f[2:] for f in cflags] + ["/usr/include"]:
        if (Path(folder) / "expat.h").exists():
            return Path(folder)
    pytest.fail("expat.h not found")


def make_old_expat_prefix(prefix: Path):
    """A prefix whose expat.h is the system's without the reparse-deferral declaration."""
    include = prefix / "include"
    pkgconfig = prefix / "lib" / "pkgconfig"
    include.mkdir(parents=True)
    pkgconfig.mkdir(parents=True)
    system = system_expat_header()
    header = (system / "expat.h").read_text()
    # The declaration spans lines up to its closing ");": drop it whole.
    old = re.sub(r"XMLPARSEAPI\(XML_Bool\)\s*XML_SetReparseDeferralEnabled\([^;]*;", "",
                 header)
    assert "XML_SetReparseDeferralEnabled" not in old
    (include / "expat.h").write_text(old)
    for name in ("expat_external.h", "expat_config.h"):
        if (system / name).exists():
            shutil.copy2(system / name, include / name)
    version = subprocess.run(["pkg-config", "--modversion", "expat"], capture_output=True,
                             text=True, check=True).stdout.strip()
    libs = subprocess.run(["pkg-config", "--libs", "expat"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (pkgconfig / "expat.pc").write_text(
        f"Name: expat\nDescription: expat without reparse deferral (test)\n"
        f"Version: {version}\nCflags: -I{include}\nLibs: {libs}\n")
    return pkgconfig


def run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_builds_and_parses_with_an_expat_that_lacks_reparse_deferral(tmp_path):
    if not (SOURCE / "configure").exists():
        pytest.fail("no configure script: run ./bootstrap first")
    pkgconfig = make_old_expat_prefix(tmp_path / "old-expat")
    tree = tmp_path / "tern"
    shutil.copytree(SOURCE, tree, ignore=NOT_COPIED, symlinks=True)
    env = dict(os.environ, PKG_CONFIG_PATH=str(pkgconfig))
    configured = run(["./configure"], tree, env)
    assert "XML_SetReparseDeferralEnabled is declared... no" in configured.stdout
    assert "updating libexpat1-dev is recommended" in configured.stderr
    header = (tree / "src" / "tern_build.h").read_text()
    assert "#define HAVE_XML_SETREPARSEDEFERRALENABLED" not in header
    jobs = f"-j{os.cpu_count() or 1}"
    run(["make", jobs, "src/ternd", "tests/unit/test_stream", "tests/unit/test_xml"], tree, env)
    for unit in ("test_stream", "test_xml"):
        result = run([str(tree / "tests" / "unit" / unit)], tree, env)
        assert re.search(r"100%: Checks: \d+, Failures: 0, Errors: 0", result.stdout + result.stderr)
    checked = subprocess.run([str(tree / "src" / "ternd"), "-V"], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0 and "tern" in (checked.stdout + checked.stderr)
