"""Emit the ORC-ready C++ header: every ABI as an LLVM 19 ORCABI class.

LLVM's lazy-JIT templates (LocalLazyCallThroughManager::Create<ORCABI>,
LocalIndirectStubsManager<ORCABI>, LocalJITCompileCallbackManager<ORCABI>,
LocalTrampolinePool<ORCABI>, EPCIndirectionUtils) read five static constexpr
unsigned constants and call three static writers with ExecutorAddr addresses.
The classes here have exactly those, written by the same emitters as the
standalone header (cpp_header.abi_block with the ORC style), so the two
headers cannot drift apart.

Names: `<ABI>_ORCABI` in namespace asmgen.  LLVM already has `Orc<ABI>`
classes (and a namespace per target), so asmgen's own `Orc<ABI>` names, or bare
ABI names, would be ambiguous under `using namespace llvm; using namespace
llvm::orc; using namespace asmgen;`.  Helpers live in asmgen::orcabi_detail
(llvm has a `detail` namespace), so this header and the standalone one can be
included together.
"""

from __future__ import annotations

from asmgen.build.table import Table
from asmgen.emit import units as emit_units
from asmgen.emit import unwind as emit_unwind
from asmgen.emit.cpp_header import INCLUDES, abi_block, prelude
from asmgen.emit.provenance import header_lines
from asmgen.spec.names import ORCABI_SUFFIX as SUFFIX
from asmgen.spec.schema import Spec

FILENAME = "orc_resolvers_llvm.h"
GUARD = "ASMGEN_ORC_RESOLVERS_LLVM_H"

_INTRO = """
// ORC-ready: each class below is an LLVM 19 ORCABI template argument as it
// is, e.g. LocalLazyCallThroughManager::Create<asmgen::X86_64_SysV_AVX_ORCABI>
// and LocalIndirectStubsManager<asmgen::X86_64_SysV_AVX_ORCABI>. Wrap it in
// asmgen::WithEHFrames<...> to register its unwind information as LLVM writes
// the code. Needs LLVM's headers; orc_resolvers.h has the same code with
// uint64_t addresses and no LLVM dependency. Each class's comment names the
// LLVM calling conventions of the callers it serves; a NARROW class loses what
// callers of the others keep live across a lazy call (docs/variants.md).
"""

_LLVM_INCLUDES = (
    '#include "llvm/ExecutionEngine/Orc/Shared/ExecutorAddress.h"\n\n'
    + INCLUDES
    + "#include <memory>\n#include <mutex>\n#include <vector>\n"
)


def orcabi_class(spec: Spec) -> str:
    """The ORC-ready class name of a spec's ABI."""
    return f"{spec.abi}{SUFFIX}"


def _doc(table: Table) -> str:
    llvm = table.spec.class_name
    return f"\nThe same code as {llvm} in orc_resolvers.h, as an LLVM 19 ORCABI class."


def emit_orc_header(tables: list[Table]) -> str:
    header = "".join(f"// {line}\n" for line in header_lines(tables))
    blocks = "".join(
        abi_block(t, emit_units.ORC, orcabi_class(t.spec), _doc(t), resolver_target=True)
        for t in tables
    )
    text = (
        header
        + _INTRO
        + f"\n#ifndef {GUARD}\n#define {GUARD}\n\n"
        + _LLVM_INCLUDES
        + emit_unwind.CPP_ORC_DECLARATIONS
        + "\nnamespace asmgen {\n"
        + prelude(emit_units.ORC)
        + blocks
        + emit_unwind.CPP_ORC_REGISTRATION
        + f"\n}} // namespace asmgen\n\n#endif // {GUARD}\n"
    )
    return text
