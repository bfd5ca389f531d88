"""The examples in python/examples/, exactly as python/README.md (also
docs/python.md) shows them, run for real. The worker runs behind kite serve
in test_handoff.py."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import PYDIR, ROOT, read_line

EXAMPLES = PYDIR / "examples"


def test_readme_shows_each_example_verbatim():
    text = (PYDIR / "README.md").read_text()
    blocks = re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```\n", text, re.S)
    assert sorted(name for name, _ in blocks) == sorted(
        f"examples/{p.name}" for p in EXAMPLES.glob("*.py"))
    for name, code in blocks:
        assert code == (PYDIR / name).read_text(), name
    assert (ROOT / "docs" / "python.md").resolve() == (PYDIR / "README.md").resolve()


def test_publisher_and_subscriber_examples(procs, bus):
    sub = procs.python(open(EXAMPLES / "subscriber.py").read(), "host.*.load", "2")
    assert read_line(sub.stderr) == "subscribed to host.*.load\n"
    pub = procs.python(open(EXAMPLES / "publisher.py").read(), "2")
    out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    assert pub.wait(30) == 0
    lines = out.decode().splitlines()
    assert len(lines) == 2
    for seq, line in enumerate(lines, 1):
        assert re.fullmatch(rf"host\.[\w-]+\.load pid={pub.pid} uid={os.getuid()} "
                            rf"seq={seq} \d+\.\d\d \d+\.\d\d \d+\.\d\d", line), line


def test_async_subscriber_example(procs, kite_bin, bus):
    sub = procs.python(open(EXAMPLES / "async_subscriber.py").read(), "3", "a.>", "b.*")
    assert read_line(sub.stderr) == "subscribed\n"
    for channel, text in (("a.x.y", "one"), ("b.z", "two"), ("a.q", "three")):
        subprocess.run([kite_bin, "pub", channel, text], check=True, timeout=30)
    out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    assert sorted(out.decode().splitlines()) == [
        "a.>: a.q seq=1 three", "a.>: a.x.y seq=1 one", "b.*: b.z seq=1 two"]
