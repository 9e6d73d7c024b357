from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import shared

# The suite's own cache of tool runs, builds and compiled harnesses, apart
# from the user's and kept between runs: every entry is keyed by everything
# its result depends on, so a warm cache changes no result (test_toolcache.py
# and test_buildcache.py compare cold, warm and uncached runs in caches of
# their own).  ASMGEN_TEST_CACHE=cold starts from an empty one instead.
if os.environ.get("ASMGEN_TEST_CACHE") == "cold":
    os.environ["ASMGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="asmgen-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ASMGEN_CACHE_DIR"], ignore_errors=True)
else:
    _home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    os.environ["ASMGEN_CACHE_DIR"] = str(Path(_home) / "asmgen-tests")
# The tests' g++ runs, kept by what they compile (tests/gxx_cache.py).
os.environ["ASMGEN_TEST_GXX_CACHE"] = str(Path(os.environ["ASMGEN_CACHE_DIR"]) / "gxx")

ROOT = Path(__file__).resolve().parent.parent
# Commands find their project from the current folder (asmgen/project.py):
# the tests run them as from the checkout, wherever pytest was started.
os.chdir(ROOT)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def llvm_tables() -> dict:
    """LLVM's tables (facts), keyed by LLVM's ABI name."""
    return json.loads((FIXTURES / "llvm_tables.json").read_text())["abis"]


@pytest.fixture(scope="session")
def llvm19_tables() -> dict:
    """LLVM 19.1.7's MIPS tables (facts), before upstream's delay-slot fix."""
    return json.loads((FIXTURES / "llvm_tables.json").read_text())["llvm_19_1_7"]["abis"]


@pytest.fixture(scope="session")
def generated_module():
    """The checked-in generated Python module, imported as users would."""
    path = ROOT / "generated" / "orc_resolvers.py"
    spec = importlib.util.spec_from_file_location("orc_resolvers_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A scratch copy of the specs and templates, with an empty generated/."""
    for name in ("abi_specs", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "generated").mkdir()
    return tmp_path


@pytest.fixture(scope="session")
def verified_generated_run(tmp_path_factory) -> tuple[int, str]:
    """`asmgen verify --format json` on the checked-in tables (every check:
    unicorn, native, wine, qemu-user, static), run once for the whole session
    (shared.py: once across pytest-xdist's workers): its exit status and output."""

    def run() -> str:
        import io
        from contextlib import redirect_stdout

        from asmgen.cli import main

        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["verify", "--format", "json"])
        return json.dumps([code, out.getvalue()])

    code, text = json.loads(shared.once(tmp_path_factory, "verified-generated", run))
    return code, text


@pytest.fixture
def verified_generated(verified_generated_run) -> tuple[int, dict]:
    """That run's exit status and JSON document (a fresh copy for each test)."""
    code, text = verified_generated_run
    return code, json.loads(text)
