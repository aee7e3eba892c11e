"""Every module of the package imports on its own, as a command that starts with it does.

The test run imports most of the package in one order (the app first); a user's command
starts elsewhere. `leadscore report` (leadscore.web.report first) crashed on a circular
import between the dashboard and the API while every test passed (found 2026-12-05)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
import leadscore
names = sorted(m.name for m in pkgutil.walk_packages(leadscore.__path__, "leadscore."))
failed = []
for name in names:
    for key in [k for k in sys.modules if k == "leadscore" or k.startswith("leadscore.")]:
        del sys.modules[key]  # the package's modules afresh; third-party ones stay loaded
    try:
        importlib.import_module(name)
    except ImportError as exc:
        if not (exc.name or "").startswith("pyspark"):  # the optional extra
            failed.append(f"{name}: {exc!r}")
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_first() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count, _, failed = done.stdout.partition("\n")
    assert int(count) > 100  # the walk found the package's modules
    assert failed.strip() == "", failed
