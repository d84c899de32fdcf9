"""The `edgefer` entry point: every subcommand is listed, the runtime core stays free of torch and
Qt, and a subcommand whose extra is missing says which extra to install instead of a traceback.

"Missing" is made real in a child interpreter: a `sys.modules[name] = None` entry makes every
import of that module fail exactly as it does on a machine without it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgefer.cli import COMMANDS, main


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd.name in out


def test_building_the_parser_imports_neither_torch_nor_qt():
    res = _child(
        "import sys\n"
        "from edgefer.cli import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('torch', 'timm', 'PyQt6', 'tensorrt') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "HEAVY []" in res.stdout


@pytest.mark.parametrize(
    ("blocked", "argv", "extra"),
    [
        ("torch", ["train", "--config", "configs/train/fer2013_edge_au.yaml", "--out", "{tmp}/run"], "train"),
        ("PyQt6", ["ui", "--source", "0"], "ui"),
    ],
)
def test_missing_extra_names_the_extra_to_install(blocked, argv, extra, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in argv]
    res = _child(
        "import sys\n"
        f"sys.modules[{blocked!r}] = None\n"
        "from edgefer.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    assert res.returncode == 3, (res.stdout + res.stderr)[-2000:]
    assert f"pip install 'edgefer[{extra}]'" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()  # refused before touching anything
