"""Installing the package offline and finding libkite: pip with the
system's setuptools (no build dependency fetched), `make install-python`
into a staging folder and `make uninstall-python`, the documented search
order for libkite ($KITE_LIBRARY, build tree, system), Python 3.9 syntax."""
from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PYDIR, PYTHON, ROOT

BUILD_LIB = ROOT / "build" / "libkite.so.0"
SMOKE = """
import kite, sys
print(kite.LIBRARY)
with kite.Handle() as s, kite.Handle() as p:
    s.subscribe("smoke")
    p.publish("smoke", b"ok")
    m = next(m for m in s.messages(timeout=5) if isinstance(m, kite.Message))
    print(m.data.decode())
"""


def source_copy(tmp_path):
    """The package's sources outside the checkout (pip builds in place)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(PYDIR / "kite", src / "kite",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(PYDIR / f, src / f)
    return src


def run_smoke(site, env_extra, cwd, python=PYTHON):
    env = {k: v for k, v in os.environ.items()
           if k not in ("KITE_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env.update(env_extra)
    if site:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([python, "-c", SMOKE], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip install --no-build-isolation --no-index --target DIR."""
    tmp = tmp_path_factory.mktemp("pip")
    target = tmp / "site"
    r = subprocess.run([PYTHON, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-index", "--root-user-action=ignore", "--target",
                        str(target), str(source_copy(tmp))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return target


def test_pip_installs_offline_with_system_setuptools(installed):
    assert (installed / "kite" / "__init__.py").is_file()
    assert (installed / "kite" / "py.typed").is_file()
    meta = glob.glob(str(installed / "kite-0.1.0.dist-info" / "METADATA"))
    assert meta and "Requires-Python: >=3.9" in open(meta[0]).read()


def test_kite_library_names_the_file_or_its_folder(installed, bus, tmp_path):
    for value in (str(BUILD_LIB), str(BUILD_LIB.parent)):
        r = run_smoke(installed, {"KITE_LIBRARY": value}, tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [str(BUILD_LIB), "ok"]


def test_a_named_library_that_fails_is_never_replaced(installed, tmp_path):
    # $KITE_LIBRARY wrong: an ImportError that says so, even though the
    # loader would find another libkite through LD_LIBRARY_PATH.
    r = run_smoke(installed, {"KITE_LIBRARY": str(tmp_path / "nope.so"),
                              "LD_LIBRARY_PATH": str(BUILD_LIB.parent)}, tmp_path)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "nope.so (KITE_LIBRARY" in r.stderr
    assert "Set KITE_LIBRARY" in r.stderr


def test_the_system_loader_is_asked(installed, bus, tmp_path):
    r = run_smoke(installed, {"LD_LIBRARY_PATH": str(BUILD_LIB.parent)}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["libkite.so.0", "ok"]


def test_nothing_found_says_where_it_looked(installed, tmp_path):
    import ctypes.util
    if ctypes.util.find_library("kite") or os.path.exists("/usr/local/lib/libkite.so.0"):
        pytest.skip("a libkite is installed system-wide on this machine")
    r = run_smoke(installed, {}, tmp_path)
    assert r.returncode != 0
    assert "cannot load libkite" in r.stderr and "/usr/local/lib/libkite.so.0" in r.stderr


def test_the_checkout_uses_its_build_tree(bus, tmp_path):
    r = run_smoke(PYDIR, {}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(BUILD_LIB), "ok"]


def test_venv_install_from_debian_wheels(tmp_path, bus):
    wheels = "/usr/share/python-wheels"
    if not (glob.glob(wheels + "/setuptools-*.whl") and glob.glob(wheels + "/wheel-*.whl")):
        pytest.skip("python3-setuptools-whl / python3-wheel-whl not installed")
    venv = tmp_path / "venv"
    r = subprocess.run([PYTHON, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"python3 -m venv unavailable: {r.stderr.strip()[:200]}")
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index",
                        "--find-links", wheels, str(source_copy(tmp_path))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_smoke(None, {"KITE_LIBRARY": str(BUILD_LIB)}, tmp_path,
                  python=str(venv / "bin" / "python"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "ok"


def test_make_install_python_and_uninstall(tmp_path, bus):
    stage = tmp_path / "stage"
    site = "/usr/lib/python3/dist-packages"
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "install-python",
                        f"DESTDIR={stage}", f"PYTHONDIR={site}", f"PYTHON={PYTHON}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (stage / site.lstrip("/") / "kite" / "_handle.py").is_file()
    assert not (PYDIR / "build").exists() and not list(PYDIR.glob("*.egg-info"))
    r = run_smoke(stage / site.lstrip("/"), {"KITE_LIBRARY": str(BUILD_LIB)}, tmp_path)
    assert r.returncode == 0 and r.stdout.split()[-1] == "ok", r.stderr
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "uninstall-python",
                        f"DESTDIR={stage}", f"PYTHONDIR={site}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    left = [p for p in stage.rglob("*") if not p.is_dir()]
    assert left == [], left


def test_sources_parse_as_python_3_9():
    for path in sorted((PYDIR / "kite").glob("*.py")) + sorted((PYDIR / "examples").glob("*.py")):
        ast.parse(path.read_text(), str(path), feature_version=(3, 9))


def oldest_python():
    """A Python 3.9 that runs (a pyenv shim may exist without one)."""
    places = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    places += [p for p in (shutil.which("python3.9"),) if p]
    for py in places:
        if subprocess.run([py, "-c", "pass"], capture_output=True).returncode == 0:
            return py
    return None


def test_runs_on_python_3_9(bus, tmp_path):
    py39 = oldest_python()
    if not py39:
        pytest.skip("no Python 3.9 interpreter on this machine")
    r = run_smoke(PYDIR, {}, tmp_path, python=py39)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(BUILD_LIB), "ok"]
