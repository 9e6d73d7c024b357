"""Every output file's text for a folder of specs: from the build cache
(asmgen/build/buildcache.py), or built and emitted.  Light to import: the
build and the emitters load only on a miss."""

from __future__ import annotations

from pathlib import Path

from asmgen.build.buildcache import cached_build


def cached_outputs(specs_dir: Path, templates_dir: Path, abis: list[str] = ()) -> dict[str, str]:
    """Output name -> text for the ABIs named (all of the folder's when none)."""

    def compute() -> dict[str, str]:
        from asmgen.build.keystone_process import start

        start()  # keystone's process boots while the modules and specs load
        from asmgen.build.pipeline import build_all
        from asmgen.emit.outputs import render_outputs
        from asmgen.spec.files import select, spec_files

        chosen = select(spec_files(specs_dir), list(abis))
        return render_outputs(build_all(chosen, templates_dir))

    return cached_build(specs_dir, templates_dir, ["outputs", *abis], compute)
