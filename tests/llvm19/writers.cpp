// Calls the ORC ABI writers of one implementation and prints what they wrote,
// for the differential tests (tests/llvm_oracle.py).  Built three ways:
//   - against LLVM 19's installed OrcABISupport.h, linked with libLLVM-19.so:
//     LLVM's compiled writers, as Debian ships them;
//   - with -DASMGEN_HEADER: asmgen's generated/orc_resolvers.h;
//   - against a patched OrcABISupport.h, linked with the patched .cpp: the
//     writers `asmgen patch` leaves in an LLVM tree.
//
// One request per stdin line, numbers in hex without 0x:
//   C <ABI>                          the class constants
//   R <ABI> <target> <fn> <ctx> <n>  writeResolverCode, n bytes shown
//   T <ABI> <block> <resolver> <count> <n>   writeTrampolines
//   S <ABI> <stubs> <pointers> <count> <n>   writeIndirectStubsBlock
// One answer line each: n bytes in hex, a byte the writer left alone shown as
// "..", and " overflow" if it wrote past n.  Every call runs twice, over
// memory filled with 0x00 and with 0xff: a byte that differs was not written.
// Words are in host byte order, as ORC writes them.

#ifdef ASMGEN_HEADER
#include "orc_resolvers.h"
using namespace asmgen;
using Address = uint64_t;
#define RESOLVER(ABI, Mem, Target, Fn, Ctx) ABI::writeResolverCode(Mem, Fn, Ctx)
#else
#include "llvm/ExecutionEngine/Orc/OrcABISupport.h"
using namespace llvm::orc;
using Address = ExecutorAddr;
#define RESOLVER(ABI, Mem, Target, Fn, Ctx)                                    \
  ABI::writeResolverCode(Mem, Address(Target), Address(Fn), Address(Ctx))
#endif

#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const size_t Slack = 64; // bytes after n that must stay untouched

template <typename ABI>
void write(char Kind, char *Mem, uint64_t A, uint64_t B, uint64_t C) {
  if (Kind == 'R')
    RESOLVER(ABI, Mem, A, B, C);
  else if (Kind == 'T')
    ABI::writeTrampolines(Mem, Address(A), Address(B), unsigned(C));
  else
    ABI::writeIndirectStubsBlock(Mem, Address(A), Address(B), unsigned(C));
}

template <typename ABI>
std::string dump(char Kind, uint64_t A, uint64_t B, uint64_t C, size_t N) {
  std::vector<char> Zeros(N + Slack, 0), Ones(N + Slack, char(0xff));
  write<ABI>(Kind, Zeros.data(), A, B, C);
  write<ABI>(Kind, Ones.data(), A, B, C);
  static const char Hex[] = "0123456789abcdef";
  std::string Out;
  for (size_t I = 0; I < N; ++I) {
    if (Zeros[I] != Ones[I]) {
      Out += "..";
      continue;
    }
    unsigned char Byte = Zeros[I];
    Out += Hex[Byte >> 4];
    Out += Hex[Byte & 15];
  }
  for (size_t I = N; I < N + Slack; ++I)
    if (Zeros[I] != 0 || Ones[I] != char(0xff))
      return Out + " overflow";
  return Out;
}

template <typename ABI> std::string constants() {
  std::ostringstream OS;
  OS << std::hex << "PointerSize=" << ABI::PointerSize
     << " TrampolineSize=" << ABI::TrampolineSize
     << " StubSize=" << ABI::StubSize
     << " StubToPointerMaxDisplacement=" << ABI::StubToPointerMaxDisplacement
     << " ResolverCodeSize=" << ABI::ResolverCodeSize;
  return OS.str();
}

template <typename ABI>
std::string answer(char Kind, uint64_t A, uint64_t B, uint64_t C, size_t N) {
  return Kind == 'C' ? constants<ABI>() : dump<ABI>(Kind, A, B, C, N);
}

std::string dispatch(const std::string &Name, char Kind, uint64_t A,
                     uint64_t B, uint64_t C, size_t N) {
#define ABI_CLASS(ABI)                                                         \
  if (Name == #ABI)                                                            \
    return answer<Orc##ABI>(Kind, A, B, C, N);
  ABI_CLASS(AArch64)
  ABI_CLASS(X86_64_SysV)
  ABI_CLASS(X86_64_Win32)
  ABI_CLASS(I386)
  ABI_CLASS(Mips32Le)
  ABI_CLASS(Mips32Be)
  ABI_CLASS(Mips64)
  ABI_CLASS(Riscv64)
  ABI_CLASS(LoongArch64)
#undef ABI_CLASS
  return "error: unknown ABI " + Name;
}

} // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string Line;
  while (std::getline(std::cin, Line)) {
    std::istringstream In(Line);
    std::string Kind, Name;
    uint64_t A = 0, B = 0, C = 0, N = 0;
    In >> Kind >> Name >> std::hex >> A >> B >> C >> N;
    std::cout << dispatch(Name, Kind[0], A, B, C, N) << "\n";
  }
  return 0;
}
