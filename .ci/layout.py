#!/usr/bin/env python3
"""Checks the shape of src/ that the README's "Development" section promises.

Measured from the imports (`use crate::…`, `crate::…` paths, and `pouch::…`
in the binary):
- no import cycle between modules;
- at most MAX_FLOORS floors of imports from main.rs down;
- no source file over MAX_FILE_LINES lines;
- no function over MAX_FN_LINES lines.

Prints the floors and anything over a limit; exits 1 when a limit is broken.
Run from anywhere: `python3 .ci/layout.py` (`-v` prints the import graph).
"""

import re
import sys
from pathlib import Path

MAX_FLOORS = 8
MAX_FILE_LINES = 700
MAX_FN_LINES = 120

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
BIN_PREFIX = ("main", "cli")


def module_of(path: Path) -> tuple:
    """`src/format/names.rs` -> ("format", "names"); `src/lib.rs` -> ()."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod" or parts == ["lib"]:
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def expand_use(body: str) -> list:
    """Expands `a::{b, c::{d, e}}` into ["a::b", "a::c::d", "a::c::e"]."""
    body = re.sub(r"\s+", "", body)
    out = []

    def walk(prefix: str, s: str):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(s[start:i])
                start = i + 1
        items.append(s[start:])
        for item in filter(None, items):
            if "{" in item:
                head, rest = item.split("{", 1)
                walk(prefix + head, rest[: rest.rfind("}")])
            else:
                out.append(prefix + item.split(" as ")[0])

    walk("", body)
    return out


def references(text: str, crate_names: tuple) -> list:
    """Every `crate::a::b` (or `pouch::a::b`) path a file names."""
    text = strip_comments(text)
    # Keep only the code before the unit tests: they are not the architecture.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+", text)[0]
    refs = []
    for name in crate_names:
        for m in re.finditer(r"\buse\s+" + name + r"::([^;]+);", text, flags=re.S):
            refs += expand_use(m.group(1))
        for m in re.finditer(r"(?<![\w:])" + name + r"::((?:\w+::)*\w+)", text):
            refs.append(m.group(1))
    return refs


def resolve(path: str, modules: set) -> tuple:
    parts = tuple(p for p in path.split("::") if p and p != "self")
    for n in range(len(parts), 0, -1):
        if parts[:n] in modules:
            return parts[:n]
    return ()


def function_lengths(lines: list):
    start = re.compile(r"^(\s*)(pub(\([\w:]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
    for i, line in enumerate(lines):
        m = start.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j].rstrip() == indent + "}":
                yield m.group(7), i + 1, j - i + 1
                break


def main() -> int:
    verbose = "-v" in sys.argv
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(f) for f in files}
    edges = {}
    problems = []
    for f in files:
        mod = module_of(f)
        is_bin = f.relative_to(SRC).parts[0] in ("main.rs", "cli")
        node = ("<bin>",) + mod if is_bin else mod
        text = f.read_text()
        names = ("crate", "pouch") if is_bin else ("crate",)
        targets = set()
        for ref in references(text, names):
            if is_bin and ref.split("::")[0] in ("cli",):
                continue
            target = resolve(ref, modules)
            if target and target != mod and target[: len(mod)] != mod:
                targets.add(target)
        edges.setdefault(node, set()).update(targets)
        lines = text.splitlines()
        rel = f.relative_to(ROOT)
        if len(lines) > MAX_FILE_LINES:
            problems.append(f"{rel}: {len(lines)} lines (limit {MAX_FILE_LINES})")
        for name, at, length in function_lengths(lines):
            if length > MAX_FN_LINES:
                problems.append(f"{rel}:{at}: fn {name} is {length} lines (limit {MAX_FN_LINES})")

    # The binary is one node: main.rs and everything under cli/.
    bin_targets = set()
    for node in [n for n in edges if n[:1] == ("<bin>",)]:
        bin_targets |= edges.pop(node)
    edges[("<bin>",)] = bin_targets

    # Cycles, by depth-first search over the library modules.
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(edges.get(n, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    for c in cycles:
        problems.append("import cycle: " + " -> ".join("::".join(m) or "lib" for m in c))

    floors = {}

    def floor(n, seen=()):
        if n in floors:
            return floors[n]
        below = [floor(t, seen + (n,)) for t in edges.get(n, ()) if t not in seen]
        floors[n] = 1 + max(below, default=0)
        return floors[n]

    depth = floor(("<bin>",))
    if verbose:
        for n in sorted(edges, key=lambda n: -floors.get(n, 0)):
            deps = ", ".join(sorted("::".join(t) for t in edges[n]))
            print(f"{floors.get(n, 0):2} {'::'.join(n) or 'lib'} -> {deps}")
    print(f"{len(files)} files, {len(modules)} modules, {depth} floors of imports from main.rs down")
    if depth > MAX_FLOORS:
        problems.append(f"{depth} floors of imports (limit {MAX_FLOORS})")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
