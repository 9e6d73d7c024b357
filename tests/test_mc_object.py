"""mc_object.py and elf_object.py: sources joined into one llvm-mc run give each
source what a run of its own gives, and the ELF reader agrees with pyelftools.

The reference for a joined run is llvm-mc run on each source alone; the
reference for the reader is pyelftools.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from asmgen.build import mc_object
from asmgen.build.elf_object import SHT_REL, SHT_RELA, ElfObject
from asmgen.build.llvm_mc import find_llvm_mc, llvm_mc_version
from asmgen.build.mc_object import Source
from asmgen.build.pipeline import build_all
from asmgen.resources import SPECS_DIR
from asmgen.spec.files import spec_files


@pytest.fixture(scope="module")
def built_sources(tmp_path_factory) -> list[Source]:
    """Every llvm-mc source a cold build of all specs assembles."""
    recorded: list[Source] = []
    original = mc_object._assemble_all

    def recording(sources):
        recorded.extend(sources)
        return original(sources)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASMGEN_CACHE_DIR", str(tmp_path_factory.mktemp("cold-cache")))
        patch.setattr(mc_object, "_assemble_all", recording)
        build_all(spec_files(SPECS_DIR))
    return recorded


def alone(source: Source) -> dict:
    """llvm-mc on this one source, as the reference."""
    return mc_object._run(source.text, source.command)


def test_a_joined_run_gives_every_built_source_what_its_own_run_gives(built_sources, monkeypatch):
    by_command: dict[tuple, dict[str, Source]] = defaultdict(dict)
    for source in built_sources:
        by_command[source.command].setdefault(source.text, source)
    assert len(by_command) >= 6, "the build assembles for every llvm-mc target"
    runs = []
    real_run = mc_object._run
    monkeypatch.setattr(mc_object, "_run", lambda *a: runs.append(a) or real_run(*a))
    for command, sources in by_command.items():
        group = list(sources.values())
        runs.clear()
        joined = mc_object._assemble_all(group)
        # One run for the group, and one for each source that must run alone
        # (a second one that sets state, RISC-V's `.option` or s390x's
        # `.machine`): the comparison below is of a real join.
        found = [mc_object._joinable(s) for s in group]
        setting = sum(f is not None and f[1] for f in found)
        alone_count = found.count(None) + max(0, setting - 1)
        assert alone_count < len(group) - 1, command
        assert [len(run) == 3 for run in runs] == [True] + [False] * alone_count, command
        for source, result in zip(group, joined, strict=True):
            assert "error" not in result
            assert result == alone(source), (command, source.text[:200])


def test_every_reentry_source_and_table_has_its_parts_read_back(built_sources):
    """The reader sees what the build needs: CFI for each reentry routine, and
    probe labels for each table source."""
    routines = [s for s in built_sources if "__orc_rt_reenter:" in s.text]
    tables = [s for s in built_sources if "__asmgen_end:" in s.text]
    assert routines and tables
    for source in routines:
        found = mc_object._assemble_all([source, *tables[:1]])[0]
        assert found["eh_frame"] and found["sizes"]["__orc_rt_reenter"] > 0


def riscv(text: str) -> Source:
    command = (find_llvm_mc(), "-triple=riscv64", "-filetype=obj", "-mattr=+d,-relax")
    return Source(command, llvm_mc_version(), text, frozenset({"t0", "a0", "sp", "ra"}))


GOOD = riscv("entry:\n  addi a0, a0, 1\n  j entry\nafter:\n  nop\n")


@pytest.mark.parametrize(
    "text",
    [
        "width = 4\nentry:\n  addi a0, a0, width\n",  # an assignment
        "t0:\n  addi t0, t0, 1\n  j t0\n",  # a label named like a register
        "entry:\n  nop\n  .cfi_sections .debug_frame\n",  # a file-wide choice
    ],
)
def test_a_source_that_could_reach_another_runs_alone(text, monkeypatch):
    unjoinable = riscv(text)
    assert mc_object._joinable(unjoinable) is None
    runs = []
    real_run = mc_object._run
    monkeypatch.setattr(mc_object, "_run", lambda *a: runs.append(a) or real_run(*a))
    first, second, _ = mc_object._assemble_all([GOOD, unjoinable, riscv("other:\n nop\n")])
    # The two joinable ones were joined; the other ran by itself.
    assert sorted(len(run) == 3 for run in runs) == [False, True]
    assert first == alone(GOOD)
    assert second == alone(unjoinable)


def test_one_source_that_sets_state_joins_last(monkeypatch):
    """`.option` reaches what follows it: one such source goes at the end of
    the joined run, where it starts from the default state as it would alone;
    a second runs alone."""
    setting = [
        riscv(f"  .option norvc\nentry{i}:\n  nop\n  .option rvc\n  nop\n") for i in range(2)
    ]
    assert all(mc_object._joinable(s)[1] for s in setting)
    runs = []
    real_run = mc_object._run
    monkeypatch.setattr(mc_object, "_run", lambda *a: runs.append(a) or real_run(*a))
    results = mc_object._assemble_all([setting[0], GOOD, setting[1]])
    assert sorted(len(run) == 3 for run in runs) == [False, True]
    joined_text = next(run[0] for run in runs if len(run) == 3)
    assert joined_text.index("entry0__asmgen_j1:") > joined_text.index("entry__asmgen_j0:")
    assert results == [alone(setting[0]), alone(GOOD), alone(setting[1])]
    # The state is real: after `.option rvc` the second nop is compressed.
    assert len(bytes.fromhex(results[0]["code"])) == 6


def test_an_error_in_a_joined_run_names_the_sources_own_line():
    bad = riscv("entry:\n  nop\n  addi a0, a0, nosuchsymbol(\n")
    first, second, third = mc_object._assemble_all([GOOD, bad, riscv("other:\n  nop\n")])
    assert first == alone(GOOD) and third == alone(riscv("other:\n  nop\n"))
    assert "error" in second
    match = mc_object.DIAGNOSTIC.search(second["error"])
    assert match and match.group(1) == "3"


def test_names_are_renamed_only_where_they_are_whole_symbols():
    text = "entry:\n  j entry\n  .word entry_2 - entry\nentry_2:\n  .size entry, .-entry\n"
    joined = mc_object._joined_text(text, ["entry", "entry_2"], "__S")
    assert joined.splitlines() == [
        '.section .text__S,"ax",%progbits',
        "entry__S:",
        "  j entry__S",
        "  .word entry_2__S - entry__S",
        "entry_2__S:",
        "  .size entry__S, .-entry__S",
    ]


# ELF reader: objects from every kind of target llvm-mc writes for asmgen,
# 32- and 64-bit, both byte orders, REL and RELA.
TRIPLES = [
    "x86_64",
    "i386",
    "aarch64",
    "riscv64",
    "loongarch64",
    "powerpc64le",
    "powerpc64",
    "s390x",
    "mips",
    "mipsel",
    "mips64el",
]
# r_info is read by the gABI's layout; MIPS64's psABI packs it otherwise,
# so only the count and offsets of its relocations are compared (asmgen only
# counts them: no MIPS arch has reentry edges).
GABI_R_INFO_EXCEPT = {"mips64el"}
OBJECT_SOURCE = """\
    .text
    .globl f
    .type f, %function
f:
    .cfi_startproc
    nop
    .cfi_endproc
    .size f, .-f
local_label:
    .long external_symbol
    .long in_data
    .data
in_data:
    .long 1
"""


def _pyelftools_view(path: Path):
    from elftools.elf import enums
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    # pyelftools names section types by machine (SHT_AMD64_UNWIND, ...).
    section_types = {}
    for name in dir(enums):
        if name.startswith("ENUM_SH_TYPE"):
            section_types.update(getattr(enums, name))

    def number(value, table):
        return table[value] if isinstance(value, str) else value

    with path.open("rb") as handle:
        elf = ELFFile(handle)
        sections = [
            (
                s.name,
                number(s["sh_type"], section_types),
                s["sh_offset"],
                s["sh_size"],
                s["sh_link"],
                s["sh_info"],
                s["sh_addralign"],
            )
            for s in elf.iter_sections()
        ]
        symtab = elf.get_section_by_name(".symtab")
        symbols = [
            (s.name, s["st_value"], s["st_size"], number(s["st_shndx"], enums.ENUM_ST_SHNDX))
            for s in symtab.iter_symbols()
        ]
        relocations = {}
        for section in elf.iter_sections():
            if isinstance(section, RelocationSection):
                relocations[section["sh_info"]] = [
                    (
                        r["r_offset"],
                        r["r_info_sym"],
                        r["r_info_type"],
                        r["r_addend"] if r.is_RELA() else 0,
                    )
                    for r in section.iter_relocations()
                ]
        return sections, symbols, relocations, elf.little_endian


@pytest.mark.parametrize("triple", TRIPLES)
def test_the_elf_reader_agrees_with_pyelftools(triple, tmp_path):
    path = tmp_path / "object.o"
    subprocess.run(
        [find_llvm_mc(), f"-triple={triple}", "-filetype=obj", "-o", str(path)],
        input=OBJECT_SOURCE,
        text=True,
        check=True,
    )
    sections, symbols, relocations, little = _pyelftools_view(path)
    elf = ElfObject(path.read_bytes())
    assert elf.little_endian == little
    assert [tuple(s) for s in elf.sections] == sections
    assert [tuple(s) for s in elf.symbols()] == symbols
    ours = elf.relocations()
    assert any(s.type in (SHT_REL, SHT_RELA) for s in elf.sections)
    assert sorted(ours) == sorted(relocations)
    for target, entries in relocations.items():
        if triple in GABI_R_INFO_EXCEPT:
            assert [r.offset for r in ours[target]] == [e[0] for e in entries]
        else:
            assert [tuple(r) for r in ours[target]] == entries


def test_the_elf_reader_refuses_what_is_not_elf():
    with pytest.raises(ValueError):
        ElfObject(b"\x7fELF\x09\x01" + bytes(58))
    with pytest.raises(ValueError):
        ElfObject(b"MZ" + bytes(62))


def test_words_of_many_tables_decode_in_one_run_as_alone():
    """llvm_mc._decode_all: one llvm-mc --disassemble run for several tables'
    words gives each what a run of its own gives, an invalid word included."""
    from asmgen.build.llvm_mc import _decode_all

    command = (find_llvm_mc(), "--disassemble", "-triple=loongarch64", "-mattr=+d")
    words = [
        ["0x63 0xe0 0xfd 0x02", "0xff 0xff 0xff 0xff", "0x61 0x00 0xc0 0x29"],
        ["0x00 0x00 0x00 0x00", "0x64 0x20 0xc0 0x29"],
    ]
    jobs = [(command, "".join(w + "\n" for w in job)) for job in words]
    joined = _decode_all(jobs)
    assert joined == [_decode_all([job])[0] for job in jobs]
    first, second = (result["decoded"] for result in joined)
    assert first[0] == "addi.d $sp, $sp, -136" and first[1] is None
    assert second[0] is None and second[1] == "st.d $a0, $sp, 8"


def test_register_names_come_from_capstone_too():
    """The join guard knows the names capstone gives an arch's registers, not
    only the ones its record lists: a label `w1` on AArch64 (the record names
    the x registers) runs alone."""
    from asmgen.arches import ARCHES
    from asmgen.build.llvm_mc import _register_names

    names = _register_names(ARCHES["aarch64"])
    assert {"w1", "b0", "s31", "x0", "sp"} <= names
    command = (find_llvm_mc(), "-triple=aarch64", "-filetype=obj")
    source = Source(command, llvm_mc_version(), "w1:\n  mov w0, w1\n", names)
    assert mc_object._joinable(source) is None
