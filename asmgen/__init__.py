"""asmgen: LLVM ORC resolver, trampoline and stub tables from ABI specs and templates."""

__version__ = "0.1.0"
