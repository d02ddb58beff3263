"""After the README's install, a user's ``mypy --strict`` finds Ember from any directory.

setuptools' default editable install hides the package behind an import hook that type
checkers do not follow; the README installs with ``editable_mode=compat`` (a plain path
entry) instead. This test type-checks the user programs of ``tests/typing`` from a
directory outside the checkout, as a user's project would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_PROGRAMS = Path(__file__).parent / "typing" / "test_user_programs.py"


def test_user_programs_type_check_from_outside_the_checkout(tmp_path: Path) -> None:
    program = tmp_path / "user_program.py"
    shutil.copy(_PROGRAMS, program)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MYPYPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), program.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout
