"""The tree shows the architecture (doc/architecture.md §1): each folder of src/ is one floor,
and a file only includes — so only calls — headers of its own folder or of a floor below. A
file that needs something from above gets it as a callback registered downward. Modules see
the core only through the public API (<tern/...>). And no two files include each other, in any
folder, directly or round a circle.

Includes are read from the sources; calls from the symbol tables of the built objects (nm),
so a call through a header of a third file is seen too."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TERN_BUILD", ROOT))
SRC = ROOT / "src"

# Bottom up. Folders on one floor may not include each other either.
FLOORS = [
    {"tern"},            # the public module API: declarations only
    {"core"},            # XML, stream parser, JIDs, errors, config, logging, utilities
    {"net", "store"},    # sockets, TLS, listeners; the storage interface and its backends
    {"process"},         # the process state (server.h) and its pid file
    {"event"},           # worker loops and the queues between them
    {"host"},            # hosts, hooks, ownership, the module loader
    {"xmpp"},            # client streams, SASL, accounts, sessions, routing
    {"http"},            # HTTP, WebSocket, BOSH
    {"s2s"},             # federation
    {"top"},             # main.c, control, ternctl.c: what starts and stops it all
]
FLOOR = {folder: i for i, names in enumerate(FLOORS) for folder in names}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
GENERATED = {"tern_build.h"}  # configure's output: below everything


def folder_of(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else "top"


def sources(base: Path):
    return sorted(p for p in base.rglob("*") if p.suffix in (".c", ".h"))


def includes(path: Path):
    """Resolved include targets (paths under SRC) of a core file."""
    for name in INCLUDE.findall(path.read_text()):
        if name in GENERATED:
            continue
        for candidate in (path.parent / name, SRC / name):
            if candidate.exists():
                yield candidate.resolve()
                break
        else:
            raise AssertionError(f"{path.relative_to(ROOT)}: cannot resolve #include \"{name}\"")


def test_every_core_file_is_in_a_floor():
    unplaced = [str(p.relative_to(ROOT)) for p in sources(SRC)
                if p.name not in GENERATED and folder_of(p) not in FLOOR]
    assert not unplaced, f"files outside every floor of the layer table: {unplaced}"


def test_includes_only_point_down():
    upward = []
    for path in sources(SRC):
        if path.name in GENERATED:
            continue
        here = folder_of(path)
        for target in includes(path):
            there = folder_of(target)
            if there != here and FLOOR[there] >= FLOOR[here]:
                upward.append(f"{path.relative_to(SRC)} -> {target.relative_to(SRC)}")
    assert not upward, "includes that point up or sideways:\n  " + "\n  ".join(upward)


def test_modules_use_only_the_public_api():
    leaks = []
    for path in sources(ROOT / "modules"):
        for name in INCLUDE.findall(path.read_text()):
            if not (path.parent / name).exists():  # the module's own files are fine
                leaks.append(f"{path.relative_to(ROOT)}: #include \"{name}\"")
    assert not leaks, "modules must include only <tern/...> and their own files:\n  " + \
        "\n  ".join(leaks)


def strongly_connected(graph):
    """Groups of nodes that reach each other round a circle (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def symbol_graph(objects):
    """file -> the files whose functions or data it uses, from the objects' symbol tables:
    the real calls, whichever header declared them."""
    defined, undefined = {}, {}
    for name, obj in objects.items():
        out = subprocess.run(["nm", "-P", str(obj)], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) < 2:
                continue
            sym, kind = fields[0], fields[1]
            if kind == "U":
                undefined.setdefault(name, set()).add(sym)
            elif kind.isupper():
                defined[sym] = name
    return {name: {defined[s] for s in undefined.get(name, ()) if s in defined} - {name}
            for name in objects}


def ternd_objects():
    """src/<folder>/<file>.c -> its object in the build tree (automake names them
    ternd-<file>.o beside the source)."""
    found = {}
    for obj in sorted((BUILD / "src").rglob("ternd-*.o")):
        source = obj.parent / (obj.name[len("ternd-"):-2] + ".c")
        rel = source.relative_to(BUILD / "src")
        found[str(rel)] = obj
    assert len(found) > 40, f"ternd is not built in {BUILD}"
    return found


def test_calls_only_point_down():
    graph = symbol_graph(ternd_objects())
    folder = lambda f: f.split("/")[0] if "/" in f else "top"
    upward = sorted(f"{a} calls {b}" for a, targets in graph.items() for b in targets
                    if folder(a) != folder(b) and FLOOR[folder(b)] >= FLOOR[folder(a)])
    assert not upward, "calls that go up or sideways:\n  " + "\n  ".join(upward)


def test_no_circles_in_src():
    found = strongly_connected(symbol_graph(ternd_objects()))
    assert not found, f"files that call each other round a circle: {found}"


def test_no_circles_in_bench():
    subprocess.run(["make", "-C", str(BUILD), "-s", "bench/terngen"], check=True,
                   capture_output=True, timeout=300)
    objects = {obj.name: obj for obj in (BUILD / "bench").glob("*.o")}
    assert objects, "bench/terngen built no objects"
    found = strongly_connected(symbol_graph(objects))
    assert not found, f"files that call each other round a circle: {found}"


def local_includes(path: Path):
    for name in INCLUDE.findall(path.read_text()):
        candidate = path.parent / name
        if candidate.exists():
            yield candidate.resolve()


def test_no_circles_in_modules():
    """Modules call the core only through the API; between their own files no circle."""
    found = []
    for base in sorted((ROOT / "modules").iterdir()):
        graph = {}
        for path in sources(base):
            graph.setdefault(path.with_suffix(""), set()).update(
                t.with_suffix("") for t in local_includes(path) if t.with_suffix("") !=
                path.with_suffix(""))
        found += strongly_connected(graph)
    assert not found, f"files that include each other round a circle: {found}"
