#!/usr/bin/env python3
"""daemon-calls.py - which non-static functions each file of host/daemon/
uses from the other files of host/daemon/, and whether the files form a
cycle (issue 14: files call only files below them).

    tools/daemon-calls.py [--exclude FILE:NAME ...] [--ignore FILE ...]

Definitions come from `ctags -x --c-kinds=f`; a use is the name as a whole
word in another .c file, outside comments and strings (a call, or the
address of a function handed over as a callback: either ties the files).
Exit status 1 when a cycle is found.
"""
import argparse
import glob
import os
import re
import subprocess
import sys


def strip_comments_and_strings(text):
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', re.S)
    return pattern.sub(lambda m: ' ' if m.group(0)[0] in '/' else '""', text)


def definitions(path):
    """The non-static functions a file defines."""
    out = subprocess.run(['ctags', '-x', '--c-kinds=f', path], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 5:
            continue
        name, _kind, _line, _file, source = parts
        if re.match(r'\s*static\b', source) or re.search(r'\bstatic\b', source.split(name)[0]):
            continue
        names.add(name)
    return names


def find_cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def layers(graph, files):
    """Each file's height: 0 calls nobody, else one more than its highest callee."""
    height = {}

    def h(v, seen=()):
        if v in height:
            return height[v]
        if v in seen:
            return 0
        height[v] = 1 + max((h(w, seen + (v,)) for w in graph.get(v, ())), default=-1)
        return height[v]

    for f in files:
        h(f)
    return height


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', default='host/daemon')
    ap.add_argument('--exclude', action='append', default=[],
                    help='CALLER:NAME, a use left out of the graph (another branch removes it)')
    ap.add_argument('--ignore', action='append', default=[], help='a file left out entirely')
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.dir, '*.c')) + glob.glob(os.path.join(args.dir, '*', '*.c')))
    rel = {f: os.path.relpath(f, args.dir) for f in files}
    ignored = set(args.ignore)
    files = [f for f in files if rel[f] not in ignored]
    excluded = {tuple(e.split(':', 1)) for e in args.exclude}

    owner = {}
    for f in files:
        for name in definitions(f):
            owner[name] = rel[f]

    uses = {}  # caller -> callee -> names
    for f in files:
        with open(f) as fp:
            text = strip_comments_and_strings(fp.read())
        words = set(re.findall(r'\b[A-Za-z_]\w*\b', text))
        for name in words & owner.keys():
            callee = owner[name]
            if callee == rel[f] or (rel[f], name) in excluded:
                continue
            uses.setdefault(rel[f], {}).setdefault(callee, set()).add(name)

    graph = {a: set(b) for a, b in uses.items()}
    height = layers(graph, [rel[f] for f in files])
    for caller in sorted(rel[f] for f in files):
        print(f'{caller} (layer {height[caller]})')
        for callee, names in sorted(uses.get(caller, {}).items()):
            print(f'    -> {callee}: {", ".join(sorted(names))}')

    cycles = find_cycles(graph)
    if cycles:
        for comp in cycles:
            print('CYCLE among: ' + ' '.join(comp))
        return 1
    print('no cycle: every file uses only files of a lower layer')
    return 0


if __name__ == '__main__':
    sys.exit(main())
