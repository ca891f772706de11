"""Check a built sdist and wheel, and smoke-test the wheel once installed (.ci/run runs all).

    python .ci/wheel_smoke.py check ARCHIVE SOURCE_DIR
        The file list of an sdist (.tar.gz) or a wheel (.whl) against the checkout at SOURCE_DIR.
        The sdist: setup.py, pyproject.toml, README.md and every .pyx, .pxd, .pyi and .py of the
        package. The wheel: every compiled module (one per .pyx), .pxd, .pyi, .py and py.typed,
        nothing outside the package and its metadata, and no .pyx. Neither: generated C++,
        ``cython -a`` HTML, compiled objects or caches.
    python /path/to/wheel_smoke.py run SOURCE_DIR
        With the Python of a venv the wheel is installed in, from a directory outside SOURCE_DIR:
        imports orderbook from site-packages, checks ``orderbook --version`` against the
        distribution's metadata, trades on a book and liquidates on an engine (README's figures),
        and runs a small scenario through the command line.

Exits non-zero, naming each problem, if anything is wrong.
"""

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

DISTRIBUTION = "orderbook-cascade"
# Files neither archive may carry: generated C/C++ and its annotation, objects, caches.
GENERATED = (".cpp", ".c", ".h", ".html", ".so", ".o", ".pyc")


def _sources(source: Path, patterns: tuple[str, ...]) -> list[str]:
    """The checkout's package files matching ``patterns``, relative to ``source``."""
    return sorted(str(p.relative_to(source)) for pattern in patterns
                  for p in (source / "orderbook").glob(pattern) if "__pycache__" not in p.parts)


def _generated(names: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return [f"{name}: must not be in the archive" for name in names
            if (name.endswith(GENERATED) and not name.endswith(allowed)) or "__pycache__" in name]


def wheel_problems(names: list[str], source: Path) -> list[str]:
    """What is wrong with a wheel whose archive holds ``names``, built from ``source``."""
    # The compiled modules replace the .pyx (as in numpy's wheels; the sdist has the source).
    problems = _generated(names, allowed=(".so",))
    problems += [f"{name}: must not be in the archive" for name in names if name.endswith(".pyx")]
    dist_info = re.compile(r"orderbook_cascade-[^/]+\.dist-info/")
    # auditwheel puts the shared libraries it grafts in orderbook_cascade.libs/.
    problems += [f"{name}: outside the package" for name in names
                 if not (name.startswith(("orderbook/", "orderbook_cascade.libs/"))
                         or dist_info.match(name))]
    wanted = [*_sources(source, ("**/*.py", "*.pxd", "*.pyi")), "orderbook/py.typed"]
    problems += [f"{name}: missing" for name in wanted if name not in names]
    for pyx in sorted((source / "orderbook").glob("*.pyx")):
        module = re.compile(rf"orderbook/{re.escape(pyx.stem)}\.cpython-[^/]+\.so")
        if not any(module.fullmatch(name) for name in names):
            problems.append(f"orderbook/{pyx.stem}: compiled module missing")
    return problems


def sdist_problems(names: list[str], source: Path) -> list[str]:
    """What is wrong with an sdist whose archive holds ``names`` (below its top directory)."""
    wanted = ["setup.py", "pyproject.toml", "README.md", "orderbook/py.typed",
              *_sources(source, ("**/*.py", "*.pyx", "*.pxd", "*.pyi"))]
    return _generated(names) + [f"{name}: missing" for name in wanted if name not in names]


def check(archive: Path, source: Path) -> list[str]:
    """The problems of the sdist or wheel at ``archive``; prints its size and file count."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as whl:
            names = whl.namelist()
        problems = wheel_problems(names, source)
    else:
        with tarfile.open(archive) as sdist:
            names = [name.partition("/")[2] for name in sdist.getnames()]
        problems = sdist_problems(names, source)
    print(f"{archive.name}: {len(names)} files, {archive.stat().st_size / 1e6:.2f} MB")
    return problems


def smoke(source: Path) -> list[str]:
    """The problems of the installed orderbook, seen from outside the checkout at ``source``."""
    problems = []
    cwd = Path.cwd().resolve()
    if cwd.is_relative_to(source):
        return [f"run from a directory outside {source}, not {cwd}"]
    import orderbook
    from orderbook import book as compiled

    site = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    for module in (orderbook, compiled):
        path = Path(module.__file__).resolve()
        if not any(path.is_relative_to(s) for s in site) or path.is_relative_to(source):
            problems.append(f"{module.__name__} imported from {path}, not site-packages")
    installed = importlib.metadata.version(DISTRIBUTION)
    if installed != orderbook.__version__:
        problems.append(f"{DISTRIBUTION} {installed} installed, orderbook.__version__ is "
                        f"{orderbook.__version__}")
    # The console script of this interpreter's environment, not whatever is first on PATH.
    script = shutil.which("orderbook", path=str(Path(sys.executable).parent))
    if script is None:
        return [*problems, f"no orderbook command beside {sys.executable}"]
    version = subprocess.run([script, "--version"], capture_output=True, text=True)
    if version.returncode != 0 or version.stdout.strip() != f"orderbook {installed}":
        problems.append(f"orderbook --version: {version.stdout.strip()!r} {version.stderr!r}")

    from orderbook import Deficit, Engine, EventKind, LimitRule, OrderBook, Side

    book = OrderBook()
    book.limit(1, Side.SELL, 100, 5, owner=1)
    trades = [(e.price, e.qty) for e in book.market(2, Side.BUY, 3, owner=2)
              if e.kind == EventKind.TRADE]
    if trades != [(100, 3)]:
        problems.append(f"a market buy of 3 against 5 @ 100 traded {trades}, not [(100, 3)]")
    top = book.l2(1)
    if (top.ask_price.tolist(), top.ask_qty.tolist()) != ([100], [2]):
        problems.append(f"the ask after the trade is {top}, not 2 @ 100")

    # README's liquidation example: collateral 19 and an insurance fund of 1010 afterwards.
    eng = Engine(tiers=[(None, 50_000, 100_000)], liquidation_fee_ppm=10_000,
                 insurance_fund=1_000, limit_rule=LimitRule.MARKET, deficit=Deficit.ADL)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(1, 100)
    eng.seed_position(1, 100, price=100, qty=10)
    for i, (price, qty) in enumerate([(94, 4), (93, 3), (92, 5)]):
        eng.limit(1000 + i, Side.BUY, price, qty, owner=100)
    eng.market(2000, Side.SELL, 1, owner=100)
    eng.liquidate()
    if (eng.account(1).collateral, eng.insurance_fund) != (19, 1010):
        problems.append(f"README's liquidation left collateral {eng.account(1).collateral} and "
                        f"fund {eng.insurance_fund}, not 19 and 1010")

    run = subprocess.run([script, "run", "--scale", "0.05", "--no-counterfactual", "--json"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        problems.append(f"orderbook run failed: {run.stderr}")
    else:
        summary = json.loads(run.stdout)
        if summary["forced_orders"] <= 0 or summary["generations"] <= 0:
            problems.append(f"orderbook run liquidated nothing: {summary}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "check":
        problems = check(Path(argv[1]), Path(argv[2]).resolve())
    elif len(argv) == 2 and argv[0] == "run":
        problems = smoke(Path(argv[1]).resolve())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"wheel smoke: {problem}", file=sys.stderr)
    print(f"wheel smoke {argv[0]}: {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
