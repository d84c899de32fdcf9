"""Does every base dependency of edgefer have a wheel for JetPack 6's Python (3.10, aarch64)?

A Jetson owner installs edgefer's base (the runtime: no torch, no Qt) with pip on JetPack's own
Python 3.10. A dependency without an aarch64 wheel for that Python makes pip fall back to a source
build on the board (slow, and often impossible without a toolchain and headers), so this check asks
PyPI, without emulation and without an ARM machine, for a binary wheel of each requirement in
pyproject.toml's `[project] dependencies`, one at a time:

    pip download --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64
                 --platform manylinux_2_28_aarch64 --implementation cp --python-version 3.10
                 --only-binary=:all: --no-deps -d DIR REQUIREMENT

JetPack 6 is Ubuntu 22.04 (glibc 2.35), so wheels tagged up to manylinux_2_35 install there; the
three tags above are the ones aarch64 wheels on PyPI carry. A bare `linux_aarch64` wheel is left
out on purpose: PyPI does not accept them, and pip on the board would not trust one either.
With `--with-deps` a second pass resolves the whole tree the same way (what pip really installs,
mediapipe's opencv-contrib-python, jax and friends included), so a transitive dependency without a
wheel shows up too.

Needs the network (PyPI), so it is not part of the test suite: run it with `make jetson-wheels`.
It prints a table and writes a JSON report; docs/jetson.md records the last result.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (edgefer's floor): the same parser under its PyPI name
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

#: The aarch64 platform tags that aarch64 wheels on PyPI carry; all install on JetPack 6 (glibc 2.35).
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64")


def glibc_platforms(glibc: str) -> tuple[str, ...]:
    """Every manylinux aarch64 tag a system with this glibc accepts (pip does not expand them itself).

    `--glibc 2.31` is JetPack 5 (Ubuntu 20.04): a wheel tagged only manylinux_2_28 or newer is not
    installable there, which the default three tags would not show.
    """
    major, minor = (int(x) for x in glibc.split("."))
    if major != 2 or minor < 17:
        raise ValueError(f"glibc {glibc!r}: expected 2.17 or newer")
    return ("manylinux2014_aarch64", *(f"manylinux_2_{m}_aarch64" for m in range(17, minor + 1)))
PYTHON_VERSION = "3.10"  # JetPack 6's python3 (Ubuntu 22.04); JetPack 5 has 3.8


@dataclass
class WheelResult:
    """One requirement's outcome: the wheel pip chose, or why there is none."""

    requirement: str
    ok: bool
    wheel: str = ""
    version: str = ""
    size_mb: float = 0.0
    error: str = ""


@dataclass
class Report:
    python_version: str
    platforms: list[str]
    pip: str
    date_utc: str
    direct: list[WheelResult] = field(default_factory=list)
    tree: list[WheelResult] = field(default_factory=list)  # --with-deps: every wheel of the full install
    tree_error: str = ""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.direct) and not self.tree_error


def base_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """`[project] dependencies` of pyproject.toml, as written there."""
    with pyproject.open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def pip_command(
    requirements: list[str], dest: Path, *, deps: bool, python_version: str = PYTHON_VERSION,
    platforms: tuple[str, ...] = PLATFORMS,
) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    for p in platforms:
        cmd += ["--platform", p]
    cmd += ["--implementation", "cp", "--python-version", python_version, "--only-binary=:all:", "-d", str(dest)]
    if not deps:
        cmd.append("--no-deps")
    return cmd + requirements


_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.+\.whl$")


def wheel_version(filename: str) -> tuple[str, str]:
    """(normalised project name, version) from a wheel file name (PEP 427)."""
    m = _WHEEL.match(filename)
    if not m:
        return filename, ""
    return m["name"].lower().replace("_", "-"), m["version"]


def _why(stderr: str) -> str:
    """The lines of pip's output that say why nothing matched (the rest is progress noise)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    keep = [ln for ln in lines if ln.startswith("ERROR") or "No matching distribution" in ln or "from versions" in ln]
    return " | ".join(keep or lines[-3:])


def check_one(requirement: str, dest: Path, python_version: str = PYTHON_VERSION,
              platforms: tuple[str, ...] = PLATFORMS) -> WheelResult:
    """Download one requirement's wheel (no dependencies) into a fresh folder under `dest`."""
    folder = Path(tempfile.mkdtemp(prefix="req-", dir=dest))
    res = subprocess.run(pip_command([requirement], folder, deps=False, python_version=python_version, platforms=platforms),
                         capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if res.returncode != 0 or not wheels:
        return WheelResult(requirement, False, error=_why(res.stderr + res.stdout))
    w = wheels[0]
    return WheelResult(requirement, True, wheel=w.name, version=wheel_version(w.name)[1], size_mb=w.stat().st_size / 1e6)


def check_tree(requirements: list[str], dest: Path, python_version: str = PYTHON_VERSION,
               platforms: tuple[str, ...] = PLATFORMS) -> tuple[list[WheelResult], str]:
    """Resolve and download the whole base install (dependencies included) as pip on the board would."""
    folder = Path(tempfile.mkdtemp(prefix="tree-", dir=dest))
    res = subprocess.run(pip_command(requirements, folder, deps=True, python_version=python_version, platforms=platforms),
                         capture_output=True, text=True)
    if res.returncode != 0:
        return [], _why(res.stderr + res.stdout)
    out = []
    for w in sorted(folder.glob("*.whl")):
        name, version = wheel_version(w.name)
        out.append(WheelResult(name, True, wheel=w.name, version=version, size_mb=w.stat().st_size / 1e6))
    return out, ""


def format_table(rows: list[WheelResult]) -> str:
    lines = ["| requirement | result | version | wheel | MB |", "|---|---|---|---|---|"]
    for r in rows:
        if r.ok:
            lines.append(f"| `{r.requirement}` | wheel | {r.version} | `{r.wheel}` | {r.size_mb:.1f} |")
        else:
            lines.append(f"| `{r.requirement}` | **none** | | {r.error} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=Path("/tmp/wheels_aarch64"),
                    help="download folder (default /tmp/wheels_aarch64)")
    ap.add_argument("--python-version", default=PYTHON_VERSION, help="target Python (default 3.10, JetPack 6; 3.8 for JetPack 5)")
    ap.add_argument("--glibc", default=None,
                    help="accept every manylinux tag up to this glibc instead of the three default tags "
                         "(2.35: JetPack 6 / Ubuntu 22.04; 2.31: JetPack 5 / Ubuntu 20.04)")
    ap.add_argument("--with-deps", action="store_true", help="also resolve the full dependency tree for aarch64")
    ap.add_argument("--json", type=Path, default=None, help="write the report here")
    args = ap.parse_args(argv)

    args.dest.mkdir(parents=True, exist_ok=True)
    pip_v = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True).stdout.split(" from ")[0]
    platforms = glibc_platforms(args.glibc) if args.glibc else PLATFORMS
    report = Report(args.python_version, list(platforms), pip_v, time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    reqs = base_requirements()
    tags = f"glibc <= {args.glibc}" if args.glibc else ", ".join(platforms)
    print(f"edgefer base dependencies vs Python {args.python_version} aarch64 wheels ({tags}); {pip_v}")
    for req in reqs:
        r = check_one(req, args.dest, args.python_version, platforms)
        report.direct.append(r)
        print(f"  {req:<22} {'ok   ' + r.wheel if r.ok else 'NONE ' + r.error}", flush=True)
    print(format_table(report.direct))
    if args.with_deps:
        report.tree, report.tree_error = check_tree(reqs, args.dest, args.python_version, platforms)
        if report.tree_error:
            print(f"full tree: FAILED: {report.tree_error}")
        else:
            total = sum(r.size_mb for r in report.tree)
            print(f"full tree: {len(report.tree)} wheels, {total:.1f} MB")
            print(format_table(report.tree))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = asdict(report) | {"ok": report.ok}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    print("RESULT:", "every base dependency has a wheel" if report.ok else "some dependencies have no wheel (see above)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
