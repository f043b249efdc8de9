#!/usr/bin/env python3
"""Import cycles between the files of each crate under crates/.

Reads every `.rs` file under `crates/<crate>/src`, maps it to its module path (`a/b.rs` and
`a/b/mod.rs` are `a::b`; a `#[path = "x_tests.rs"] mod tests;` file is its parent's `tests`),
collects the `crate::`, `super::` and `self::` paths it names (in `use` items, braces expanded,
and inline), resolves each to the longest module that exists, and prints every strongly
connected component of more than one file. A module and its own tests file importing each
other is not a cycle. Exit status 1 when any cycle is found.

Usage: scripts/import_cycles.py [crate ...]
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;')
USE = re.compile(r"\buse\s+((?:crate|super|self)\b[^;]*);", re.S)
INLINE = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def strip_comments(text):
    """The text without comments and without inline `#[cfg(test)] mod x { ... }` blocks (a
    file's own tests, whose `super::` is the file itself)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    test = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: test.start()] if test else text


def expand(tree):
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree.split(" as ")[0]]
    prefix, rest = tree.split("{", 1)
    body = rest[: rest.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    out = []
    for part in parts:
        if part:
            out.extend(expand(prefix + part))
    return out


def module_files(src):
    """{module path tuple: file} for the crate rooted at src/lib.rs or src/main.rs."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, src)[:-3].split(os.sep)
            if rel in (["lib"], ["main"]):
                mods[()] = full
            elif rel[-1] == "mod":
                mods[tuple(rel[:-1])] = full
            else:
                mods[tuple(rel)] = full
    # Files included with #[path]: they are the `mod` they are declared as.
    for mod, full in list(mods.items()):
        with open(full, encoding="utf-8") as f:
            text = f.read()
        base = os.path.dirname(full)
        for target, name in PATH_ATTR.findall(text):
            target_file = os.path.normpath(os.path.join(base, target))
            for other, other_file in list(mods.items()):
                if os.path.normpath(other_file) == target_file and other != mod + (name,):
                    del mods[other]
                    mods[mod + (name,)] = target_file
    return mods


def resolve(mod, path, mods):
    parts = path.split("::")
    if parts[0] == "crate":
        base, parts = (), parts[1:]
    else:
        base = mod
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
    full = base + tuple(parts)
    for n in range(len(full), -1, -1):
        if full[:n] in mods:
            return full[:n]
    return None


def cycles(crate):
    src = os.path.join(ROOT, crate, "src")
    mods = module_files(src)
    edges = {m: set() for m in mods}
    for mod, full in mods.items():
        with open(full, encoding="utf-8") as f:
            text = strip_comments(f.read())
        paths = []
        for tree in USE.findall(text):
            paths.extend(expand(tree))
        text = USE.sub("", text)
        paths.extend(a + b for a, b in INLINE.findall(text))
        for path in paths:
            target = resolve(mod, path, mods)
            if target is None or target == mod:
                continue
            # An ancestor (`super::x` where x is a file's sibling resolves to the sibling;
            # naming only the parent module names its mod.rs) is a real edge.
            if target and target[-1] == "tests" and target[:-1] == mod:
                continue
            if mod and mod[-1] == "tests" and target == mod[:-1]:
                continue
            edges[mod].add(target)
    # Tarjan's strongly connected components.
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return [[os.path.relpath(mods[m], os.path.join(ROOT, crate)) for m in c] for c in out]


def main():
    crates = sys.argv[1:] or sorted(
        d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d, "src"))
    )
    found = False
    for crate in crates:
        comps = cycles(crate)
        if not comps:
            print(f"{crate}: no import cycles")
        for comp in comps:
            found = True
            print(f"{crate}: cycle of {len(comp)} files: {' '.join(comp)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
