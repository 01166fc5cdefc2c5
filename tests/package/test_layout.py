"""The house keeps its shape (HACKING.md, "Layout"): no product file above
600 lines; no header included by more than 60% of the daemon's C files;
and no circle of calls between files that spans two folders or is longer
than 8 files. Calls are read from the object files the build made (nm:
what each defines and what it takes from others), so a call through a
function pointer, which is how the layers below call back up, is not one.
"""
import collections
import glob
import os
import re
import subprocess
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(
    __file__)), "..", ".."))
BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
PRODUCT = ["common", "policy", "gatewayd", "admin", "schema"]
MAX_LINES = 600
MAX_SHARE = 0.60
MAX_CIRCLE = 8
# Leaves above the line on purpose: no types, no state, nothing of
# another module, like stdio.h.
WIDE_LEAVES = {
    "log.h": "the logging functions; most files log",
}


def product_files(exts):
    for top in PRODUCT:
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in names:
                if n.endswith(exts):
                    yield os.path.join(dirpath, n)


def rel(path):
    return os.path.relpath(path, ROOT)


class LayoutTest(unittest.TestCase):
    def test_no_product_file_above_600_lines(self):
        long = []
        for path in product_files((".c", ".h")):
            with open(path) as f:
                n = sum(1 for _ in f)
            if n > MAX_LINES:
                long.append("%s: %d lines" % (rel(path), n))
        self.assertEqual(long, [])

    def test_no_header_in_most_daemon_files(self):
        files = sorted(glob.glob(os.path.join(ROOT, "gatewayd", "*.c")) +
                       glob.glob(os.path.join(ROOT, "gatewayd", "*", "*.c")))
        self.assertGreater(len(files), 30)
        count = collections.Counter()
        for path in files:
            folder = os.path.dirname(rel(path))
            with open(path) as f:
                for name in re.findall(r'^#include "([^"]+)"', f.read(),
                                       re.M):
                    # A bare name of the file's own folder is that header.
                    if "/" not in name and os.path.exists(os.path.join(
                            ROOT, folder, name)):
                        name = os.path.relpath(os.path.join(folder, name),
                                               "gatewayd")
                    count[name] += 1
        wide = ["%s: %d of %d files" % (h, n, len(files))
                for h, n in count.most_common()
                if n > MAX_SHARE * len(files) and h not in WIDE_LEAVES]
        self.assertEqual(wide, [])

    def calls(self):
        """{file: {file it calls: symbols}} from the build's objects."""
        defined, wanted = {}, collections.defaultdict(set)
        objects = []
        for top in PRODUCT:
            objects += glob.glob(os.path.join(BUILD, top, "CMakeFiles",
                                              "*.dir", "**", "*.o"),
                                 recursive=True)
        for obj in objects:
            # BUILD/gatewayd/CMakeFiles/T.dir/session/session.c.o
            top, inner = os.path.relpath(obj, BUILD).split(
                os.sep + "CMakeFiles" + os.sep, 1)
            src = os.path.join(top, inner.split(".dir" + os.sep, 1)[1][:-2])
            if not os.path.exists(os.path.join(ROOT, src)):
                continue        # a stale object of a file since moved
            out = subprocess.run(["nm", obj], capture_output=True,
                                 text=True, check=True).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) == 3 and f[1] in "TDBRC":
                    defined.setdefault(f[2], src)
                elif len(f) == 2 and f[0] == "U":
                    wanted[src].add(f[1])
        edges = collections.defaultdict(dict)
        for src, syms in wanted.items():
            for s in syms:
                if s in defined and defined[s] != src:
                    edges[src].setdefault(defined[s], set()).add(s)
        return edges, set(wanted) | set(defined.values())

    def test_no_circle_of_calls_across_folders_or_above_8_files(self):
        edges, files = self.calls()
        self.assertGreater(len(files), 60, "no objects in %s" % BUILD)
        circles = strongly_connected(files, edges)
        bad = []
        for c in circles:
            folders = {os.path.dirname(f) for f in c}
            if len(c) > MAX_CIRCLE or len(folders) > 1:
                ties = ["%s -> %s: %s" % (a, b, ", ".join(sorted(s)))
                        for a in sorted(c) for b, s in sorted(edges[a].items())
                        if b in c]
                bad.append("%d files: %s\n  %s" % (len(c), " ".join(
                    sorted(c)), "\n  ".join(ties)))
        self.assertEqual(bad, [], "\n".join(bad))


def strongly_connected(nodes, edges):
    """Tarjan's algorithm, iterative; returns the components of 2 or more."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, {})))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(comp)
    return out


if __name__ == "__main__":
    unittest.main(verbosity=2)
