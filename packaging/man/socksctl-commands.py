#!/usr/bin/python3
"""Rewrites the COMMANDS section of socksctl.8 from admin/help.c's table,
so that the page and `socksctl NOUN VERB --help` say the same. Run it after
changing a verb's help; tests/package/test_docs.py fails until the page
names every command and option."""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def entries():
    src = open(os.path.join(ROOT, "admin", "help.c")).read()
    tbl = src[src.index("static const struct help helps[] = {"):
              src.index("};\n\nstatic void\nhelp_line")]
    limits = re.search(r'#define LIMIT_OPTS\s+((?:"[^"]*"\s*\\?\s*)+)',
                       src).group(1)
    tbl = tbl.replace("LIMIT_OPTS", limits.replace("\\\n", " "))
    cat = lambda x: "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', x))
    for m in re.finditer(r'\{\s*("(?:[^"\\]|\\.)*")\s*,\s*(NULL|"(?:[^"\\]|'
                         r'\\.)*")\s*,((?:\s*"(?:[^"\\]|\\.)*")+)\s*,'
                         r'((?:\s*"(?:[^"\\]|\\.)*")+)\s*\}', tbl):
        yield (cat(m.group(1)), None if m.group(2) == "NULL"
               else cat(m.group(2)), cat(m.group(3)), cat(m.group(4)))


def roff(t):
    return t.replace("\\", "\\e").replace("-", "\\-")


def main():
    out, noun = [], None
    for n, v, syn, text in entries():
        # The first paragraph: the rest (examples) is in RULES and EXAMPLES.
        text = text.split("\\n\\n")[0]
        if n != noun:
            out.append(".SS %s" % n)
            noun = n
        out.append(".TP\n\\fBsocksctl %s%s\\fR%s\n%s" % (
            n, " " + v if v else "", " " + roff(syn) if syn else "",
            roff(text)))
    path = os.path.join(HERE, "socksctl.8")
    page = open(path).read()
    a = page.index(".SH COMMANDS\n") + len(".SH COMMANDS\n")
    b = page.index(".SH ", a)
    with open(path, "w") as f:
        f.write(page[:a] + "\n".join(out) + "\n" + page[b:])


if __name__ == "__main__":
    main()
