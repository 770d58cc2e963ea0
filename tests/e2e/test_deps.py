"""scripts/install-deps.sh is the one list of argon's Debian packages, and the README's
two commands install from it: so every library the Makefile links, every program the
tests run and every Debian Python module they import must come from a package on that
list, from one of its dependencies, or from Debian's minimal base (priority
"required"). A developer's machine usually has the package anyway; a fresh one would
not, which is what these checks catch. The README's table must name every package."""
import functools
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, STARTED_PROGRAMS, STARTUP_MODULES


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@functools.lru_cache
def listed(*groups):
    return set(run(os.path.join(ROOT, "scripts", "install-deps.sh"), "--list", *groups).split())


@functools.lru_cache
def covered():
    """The listed build and test packages, what they pull in, and the minimal base."""
    out = run("apt-cache", "depends", "--recurse", "--installed", "--no-recommends",
              "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
              *sorted(listed("build", "test")))
    pulled = {line.strip("<>") for line in out.splitlines() if not line.startswith(" ")}
    base = run("dpkg-query", "-W", "-f", "${Package} ${Priority}\n").splitlines()
    return pulled | {line.split()[0] for line in base if line.endswith(" required")}


def _without_usr(path):
    return path[4:] if path.startswith("/usr/") else path


def owners(paths):
    """{path: set of Debian packages that ship it}. dpkg records some files under /bin
    or /lib and others under /usr (the same place since /usr was merged), so paths are
    compared without /usr. A file no package ships by that name (cc, an alternative)
    is looked up by where it leads."""
    names = {p: [_without_usr(p), _without_usr(os.path.realpath(p))] for p in paths}
    patterns = sorted({"*" + name for both in names.values() for name in both})
    out = subprocess.run(["dpkg-query", "-S", *patterns], capture_output=True, text=True).stdout
    shipped = {}  # file without /usr -> packages
    for line in out.splitlines():
        if ": " in line and not line.startswith("diversion "):
            packages, path = line.split(": ", 1)
            shipped.setdefault(_without_usr(path), set()).update(
                pkg.split(":")[0] for pkg in packages.split(", "))
    return {p: shipped.get(name) or shipped.get(target) or set()
            for p, (name, target) in names.items()}


def unlisted(what_by_path):
    """Lines naming each file whose package is not covered, or that no package ships."""
    ok = covered()
    problems = []
    for path, pkgs in owners(sorted(what_by_path)).items():
        if not pkgs:
            problems.append(f"{what_by_path[path]} ({path}) comes from no Debian package")
        elif not pkgs & ok:
            problems.append(f"{what_by_path[path]} ({path}) comes from {', '.join(sorted(pkgs))}, "
                            "which scripts/install-deps.sh does not install")
    return problems


def fail_on(problems):
    if problems:
        pytest.fail("\n".join(problems + ["(scripts/install-deps.sh is the one list: add the "
                                           "package there, with why, and to the README's table)"]),
                    pytrace=False)


def linked_libraries():
    text = "".join(open(os.path.join(ROOT, f)).read() for f in ("Makefile", "guest/guest.mk"))
    return sorted(set(re.findall(r"(?<![\w-])-l([\w+.-]+)", text)))


def test_the_makefile_links_only_listed_libraries():
    libs = linked_libraries()
    assert "jansson" in libs and "cmocka" in libs, libs  # the scan sees the link lines
    files = {}
    for lib in libs:
        for name in (f"lib{lib}.so", f"lib{lib}.a"):
            path = run(os.environ.get("CC", "cc"), f"-print-file-name={name}").strip()
            if os.path.isabs(path):
                files[os.path.normpath(path)] = f"-l{lib}"
                break
        else:
            pytest.fail(f"-l{lib}: the compiler finds no lib{lib}.so or .a; its -dev package "
                        "belongs in scripts/install-deps.sh")
    fail_on(unlisted(files))


def test_the_readme_names_every_listed_package():
    readme = open(os.path.join(ROOT, "README.md")).read()
    table = readme[readme.index("## Dependencies"):]
    table = table[:table.index("\n## ", 1)]
    named = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", " ".join(
        line.split("|")[1] for line in table.splitlines() if line.startswith("| "))))
    fail_on([f"{p} is in scripts/install-deps.sh but not in the README's Dependencies table"
             for p in sorted(listed("build", "test", "bench", "fuzz") - named)])


@pytest.mark.after_all_others
def test_the_tests_ran_only_listed_programs():
    """Every program this session started (the first word of each command; what runs
    inside `ip netns exec` or `sh -c` is not seen), and every Debian Python module the
    tests imported."""
    files = {}
    for prog in STARTED_PROGRAMS:
        path = prog if "/" in prog else shutil.which(prog)
        if path and not os.path.realpath(path).startswith(ROOT + os.sep):
            files[os.path.normpath(path)] = f"the program {prog}"
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name in STARTUP_MODULES or "." in name:  # Python's and pytest's; submodules
            continue
        if path.startswith("/usr/lib/python3/dist-packages/"):
            files[path] = f"the Python module {name}"
    assert "the program dpkg-query" in files.values(), files  # this module ran it
    fail_on(unlisted(files))
