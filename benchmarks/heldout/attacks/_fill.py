"""fill stub function bodies: replace 'raise NotImplementedError("NAME: your code here")' with given bodies"""
import re, sys, textwrap
def fill(path, bodies, extra_imports=""):
    src = open(path).read()
    for name, body in bodies.items():
        pat = '    raise NotImplementedError("%s: your code here")\n' % name
        assert pat in src, (path, name)
        src = src.replace(pat, textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n")
    if extra_imports:
        # after the module docstring
        i = src.index('"""', 3) + 3
        src = src[:i] + "\n" + extra_imports.rstrip("\n") + "\n" + src[i:]
    open(path, "w").write(src)
