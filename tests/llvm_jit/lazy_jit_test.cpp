// asmgen's ORC-ready classes (generated/orc_resolvers_llvm.h) in a real
// LLVM 19 lazy JIT, next to LLVM's own OrcX86_64_SysV.
//
// For each row (rows.inc, written by tests/llvm_jit/jit_build.py from
// expected.yaml and the specs):
//   lazy path:     LLLazyJIT (CompileOnDemandLayer + lazy reexports) whose
//                  LocalLazyCallThroughManager is created with the row's
//                  call-through class and whose LocalIndirectStubsManager is
//                  instantiated with its stubs class;
//   callback path: LocalJITCompileCallbackManager<call-through class> and
//                  getCompileCallback behind LocalIndirectStubsManager stubs,
//                  bodies compiled by a plain LLJIT.
// 64 generated functions (textual IR, below) call each other through lazy
// stubs with i64/double/float/128/256/512-bit vector arguments, some on the
// stack.  Every callee records what it received on its first call of an
// iteration, and its callers record what it returned; C++ computes what they
// should be.  An IRTransformLayer transform runs on the calling thread,
// inside the resolver's re-entry call: it counts compiles, takes a libgcc
// backtrace, and in --mode=clobber sets every vector register (and the
// AVX-512 masks) to all ones, as a re-entry function that uses them would.
//
// The lazy path also runs JIT'd C callers that keep 28 values live across
// the first, lazy call of a callee declared preserve_mostcc, preserve_allcc
// or coldcc (namespace conv): LLVM keeps them in registers those conventions
// keep and C does not, so the resolver must keep them too.  In clobber mode
// the transform also overwrites every general register C lets a callee
// clobber.
//
// Output: --json=FILE gets one record per row; the pytest driver
// (test_llvm_jit.py) compares them with expected.yaml and prints the table.
//
// The three using-directives are the point of the compile: nothing in the
// ORC-ready header may be ambiguous next to LLVM's names.

#include "llvm/AsmParser/Parser.h"
#include "llvm/ExecutionEngine/JITLink/JITLink.h"
#include "llvm/ExecutionEngine/Orc/EPCIndirectionUtils.h"
#include "llvm/ExecutionEngine/Orc/ExecutorProcessControl.h"
#include "llvm/ExecutionEngine/Orc/IndirectionUtils.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/LazyReexports.h"
#include "llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/Orc/OrcABISupport.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include "orc_resolvers_llvm.h"

#include <unwind.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace llvm;
using namespace llvm::orc;
using namespace asmgen;

// ---------------------------------------------------------------------------
// Deliberate clobber: every vector register (and the AVX-512 masks) to all
// ones.  Called, so the compiler already treats them all as clobbered.
asm(R"(
    .pushsection .text
    .globl asmgen_clobber_zmm
    .type asmgen_clobber_zmm,@function
asmgen_clobber_zmm:
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vpternlogd $0xff, %zmm\r, %zmm\r, %zmm\r
    .endr
    .irp k, 0,1,2,3,4,5,6,7
    kxnorq %k\k, %k\k, %k\k
    .endr
    ret
    .size asmgen_clobber_zmm, .-asmgen_clobber_zmm

    .globl asmgen_clobber_ymm
    .type asmgen_clobber_ymm,@function
asmgen_clobber_ymm:
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vpcmpeqd %ymm\r, %ymm\r, %ymm\r
    .endr
    ret
    .size asmgen_clobber_ymm, .-asmgen_clobber_ymm

    .globl asmgen_clobber_xmm
    .type asmgen_clobber_xmm,@function
asmgen_clobber_xmm:
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    pcmpeqd %xmm\r, %xmm\r
    .endr
    ret
    .size asmgen_clobber_xmm, .-asmgen_clobber_xmm
    .popsection
)");
extern "C" void asmgen_clobber_zmm();
extern "C" void asmgen_clobber_ymm();
extern "C" void asmgen_clobber_xmm();

// Every general register the C convention lets a callee clobber.
asm(R"(
    .pushsection .text
    .globl asmgen_clobber_gprs
    .type asmgen_clobber_gprs,@function
asmgen_clobber_gprs:
    .irp r, rax,rcx,rdx,rsi,rdi,r8,r9,r10,r11
    movabsq $0x5a5a5a5a5a5a5a5a, %\r
    .endr
    ret
    .size asmgen_clobber_gprs, .-asmgen_clobber_gprs
    .popsection
)");
extern "C" void asmgen_clobber_gprs();

/// The widest registers the host has, clobbered by --mode=clobber.
static const char *clobberWidth() {
  if (__builtin_cpu_supports("avx512f"))
    return "zmm0-31, k0-7, rax, rcx, rdx, rsi, rdi, r8-r11";
  if (__builtin_cpu_supports("avx"))
    return "ymm0-15, rax, rcx, rdx, rsi, rdi, r8-r11";
  return "xmm0-15, rax, rcx, rdx, rsi, rdi, r8-r11";
}
static void clobberRegisters() {
  if (__builtin_cpu_supports("avx512f"))
    asmgen_clobber_zmm();
  else if (__builtin_cpu_supports("avx"))
    asmgen_clobber_ymm();
  else
    asmgen_clobber_xmm();
  asmgen_clobber_gprs();
}

extern "C" void lazyCompileFailed() {
  fprintf(stderr, "FATAL: lazy compile failed (error handler called)\n");
  abort();
}

// ---------------------------------------------------------------------------
// The generated program: types, signatures, call graph, values.
namespace model {

enum Ty : uint8_t {
  I64,
  F64,
  F32,
  V4F32,
  V2F64,
  V8F32,
  V4F64,
  V4I64,
  V16F32,
  V8F64,
  V8I64,
  VOID
};
struct TyDesc {
  const char *IR, *Elt;
  char Kind; // 'i' i64, 'd' double, 'f' float
  unsigned N;
};
const TyDesc TD[] = {{"i64", "i64", 'i', 1},
                     {"double", "double", 'd', 1},
                     {"float", "float", 'f', 1},
                     {"<4 x float>", "float", 'f', 4},
                     {"<2 x double>", "double", 'd', 2},
                     {"<8 x float>", "float", 'f', 8},
                     {"<4 x double>", "double", 'd', 4},
                     {"<4 x i64>", "i64", 'i', 4},
                     {"<16 x float>", "float", 'f', 16},
                     {"<8 x double>", "double", 'd', 8},
                     {"<8 x i64>", "i64", 'i', 8},
                     {"void", "", 0, 0}};
unsigned eltBytes(Ty T) { return TD[T].Kind == 'f' ? 4 : 8; }
unsigned bytes(Ty T) { return TD[T].N * eltBytes(T); }

const std::vector<std::vector<Ty>> Sigs = {
    // eight ymm arguments
    {V8F32, V8F32, V8F32, V8F32, V8F32, V8F32, V8F32, V8F32},
    // eight zmm arguments
    {V16F32, V16F32, V16F32, V16F32, V16F32, V16F32, V16F32, V16F32},
    // a mix in registers
    {I64, F64, F32, V4F32, V8F32, V16F32, V2F64, V4F64, V8F64, I64},
    // ten vectors: the last two on the stack
    {V16F32, V8F32, V16F32, V8F32, V16F32, V8F32, V16F32, V8F32, V16F32, V8F32},
    // integers and doubles beyond the registers
    {I64, I64, I64, I64, I64, I64, I64, F64, F64, F64, F64, F64, F64, F64, F64,
     F64, F32},
    // integer vectors, 9 vector-class args (1 on the stack), 8 i64 (2 stack)
    {V8I64, V4I64, V4F64, V8F64, F32, F64, V4F32, V8F32, V16F32, I64, I64, I64,
     I64, I64, I64, I64},
    // interleaved scalars and vectors
    {F32, V16F32, F64, V8F64, F32, V8F32, F64, V4F64},
    // 128-bit vectors, then a zmm argument on the stack
    {V4F32, V2F64, V4F32, V2F64, V4F32, V2F64, V4F32, V2F64, V16F32},
};
const Ty Rets[] = {I64,   V8F32, F64,  V16F32, F32,  V4F64,
                   V4F32, V8F64, VOID, V8I64,  V4I64};

constexpr unsigned NumFns = 64;
constexpr unsigned RecSlots = 24, SlotBytes = 64, ResSlots = 4;
constexpr unsigned RetSlot = 40; // value slot id used for return values

std::vector<Ty> params(unsigned F) {
  return F == 0 ? std::vector<Ty>{} : Sigs[(F - 1) % Sigs.size()];
}
Ty ret(unsigned F) {
  return F == 0 ? I64 : Rets[F % (sizeof(Rets) / sizeof(Rets[0]))];
}
/// A binary tree, plus an edge from each inner node to a leaf, so that
/// leaves have several callers.
std::vector<unsigned> children(unsigned F) {
  std::vector<unsigned> C;
  if (2 * F + 1 < NumFns)
    C.push_back(2 * F + 1);
  if (2 * F + 2 < NumFns)
    C.push_back(2 * F + 2);
  if (2 * F + 1 < NumFns) {
    unsigned X = NumFns / 2 + (F * 7) % (NumFns / 2);
    if (X != 2 * F + 1 && X != 2 * F + 2)
      C.push_back(X);
  }
  return C;
}
std::vector<std::set<unsigned>> parents() {
  std::vector<std::set<unsigned>> P(NumFns);
  for (unsigned F = 0; F < NumFns; ++F)
    for (unsigned C : children(F))
      P[C].insert(F);
  return P;
}
/// How often F runs per root call.
std::vector<uint64_t> callCounts() {
  std::vector<uint64_t> N(NumFns, 0);
  N[0] = 1;
  for (unsigned F = 0; F < NumFns; ++F) // children have larger numbers
    for (unsigned C : children(F))
      N[C] += N[F];
  return N;
}

double fpConst(unsigned Fn, unsigned Slot, unsigned E, bool IsFloat) {
  return double((Fn * 37 + Slot * 11 + E * 5) % 251) + (IsFloat ? 0.25 : 0.5);
}
uint64_t intConst(unsigned Fn, unsigned Slot, unsigned E) {
  return (uint64_t(Fn) << 40) | (uint64_t(Slot) << 32) |
         (uint64_t(E + 1) << 20) | 0xa5;
}

/// Reference bytes of value (Fn, Slot) of type T at iteration It.
std::vector<uint8_t> refValue(unsigned Fn, unsigned Slot, Ty T, int64_t It) {
  std::vector<uint8_t> B(bytes(T));
  for (unsigned E = 0; E < TD[T].N; ++E) {
    if (TD[T].Kind == 'f') {
      float V = float(It) + float(fpConst(Fn, Slot, E, true));
      memcpy(&B[E * 4], &V, 4);
    } else if (TD[T].Kind == 'd') {
      double V = double(It) + fpConst(Fn, Slot, E, false);
      memcpy(&B[E * 8], &V, 8);
    } else {
      uint64_t V = uint64_t(It) + intConst(Fn, Slot, E);
      memcpy(&B[E * 8], &V, 8);
    }
  }
  return B;
}

/// Widest vector register the JIT'd code uses (64 with AVX-512, 32 with AVX,
/// 16 otherwise); wider vectors are split by LLVM into register-sized parts,
/// each assigned separately, reported here by their first part.
unsigned VecRegBytes = 64;

/// Where the SysV calling convention puts each argument (iter, in rdi,
/// first and not listed).  A vector split into parts gets registers part by
/// part; it is listed by its first part.
std::vector<std::string> argLocations(unsigned F) {
  static const char *GPR[] = {"rdi", "rsi", "rdx", "rcx", "r8", "r9"};
  std::vector<std::string> L;
  unsigned G = 1, V = 0;
  for (Ty T : params(F)) {
    if (T == I64) {
      L.push_back(G < 6 ? GPR[G++] : "stack");
      continue;
    }
    unsigned B = bytes(T), Part = std::min(B, VecRegBytes);
    unsigned Parts = (B + Part - 1) / Part;
    if (V < 8) {
      char Buf[24];
      snprintf(Buf, sizeof Buf, "%s%u%s",
               Part > 32   ? "zmm"
               : Part > 16 ? "ymm"
                           : "xmm",
               V, Parts > 1 ? "+" : "");
      L.push_back(Buf);
    } else {
      L.push_back("stack");
    }
    V += Parts;
  }
  return L;
}

// --- textual IR ------------------------------------------------------------
std::string hexDouble(double D) {
  uint64_t U;
  memcpy(&U, &D, 8);
  char Buf[32];
  snprintf(Buf, sizeof Buf, "0x%016" PRIX64, U);
  return Buf;
}
std::string constElt(unsigned Fn, unsigned Slot, Ty T, unsigned E) {
  if (TD[T].Kind == 'i')
    return std::to_string(intConst(Fn, Slot, E));
  return hexDouble(fpConst(Fn, Slot, E, TD[T].Kind == 'f'));
}

struct Emitter {
  std::string &O;
  unsigned Tmp = 0;
  std::string tmp() { return "%t" + std::to_string(Tmp++); }
  /// Emits the computation of value (Fn, Slot) of type T from %iter.
  std::string value(unsigned Fn, unsigned Slot, Ty T) {
    const TyDesc &D = TD[T];
    std::string Src = D.Kind == 'f' ? "%itf" : D.Kind == 'd' ? "%itd" : "%iter";
    std::string Op = D.Kind == 'i' ? "add" : "fadd";
    std::string R = tmp();
    if (D.N == 1) {
      O += "  " + R + " = " + Op + " " + D.IR + " " + Src + ", " +
           constElt(Fn, Slot, T, 0) + "\n";
      return R;
    }
    std::string Ins = tmp(), Spl = tmp();
    O += "  " + Ins + " = insertelement " + D.IR + " poison, " + D.Elt + " " +
         Src + ", i64 0\n";
    O += "  " + Spl + " = shufflevector " + D.IR + " " + Ins + ", " + D.IR +
         " poison, <" + std::to_string(D.N) + " x i32> zeroinitializer\n";
    std::string C = "<";
    for (unsigned E = 0; E < D.N; ++E)
      C += std::string(E ? ", " : "") + D.Elt + " " + constElt(Fn, Slot, T, E);
    C += ">";
    O += "  " + R + " = " + Op + " " + D.IR + " " + Spl + ", " + C + "\n";
    return R;
  }
  std::string gep(const char *Global, uint64_t Off) {
    std::string R = tmp();
    O += "  " + R + " = getelementptr inbounds i8, ptr @" + Global + ", i64 " +
         std::to_string(Off) + "\n";
    return R;
  }
};

std::string signature(unsigned F, const std::string &Name, bool Named) {
  std::string S = std::string(TD[ret(F)].IR) + " @" + Name + "(i64" +
                  (Named ? " %iter" : "");
  unsigned K = 1;
  for (Ty T : params(F)) {
    S += std::string(", ") + TD[T].IR;
    if (Named)
      S += " %p" + std::to_string(K);
    ++K;
  }
  return S + ")";
}

/// uwtable: JIT'd frames carry unwind tables, so backtraces walk through
/// them.  min-legal-vector-width: 512-bit vectors travel in zmm registers.
std::string moduleHeader() {
  return "@asmgen_rec = external global [0 x i8]\n"
         "@asmgen_res = external global [0 x i8]\n"
         "@asmgen_cnt = external global [0 x i8]\n"
         "attributes #0 = { noinline uwtable "
         "\"min-legal-vector-width\"=\"512\" }\n";
}

/// Function F named Prefix+F, calling children CalleePrefix+C.
std::string function(unsigned F, const std::string &Prefix,
                     const std::string &CalleePrefix) {
  std::string O;
  Emitter E{O};
  O += "define " + signature(F, Prefix + std::to_string(F), true) + " #0 {\n";
  O += "entry:\n  %itf = sitofp i64 %iter to float\n"
       "  %itd = sitofp i64 %iter to double\n";
  std::string CP = E.gep("asmgen_cnt", F * 8);
  O += "  %c = load volatile i64, ptr " + CP + "\n  %c1 = add i64 %c, 1\n";
  O += "  store volatile i64 %c1, ptr " + CP + "\n";
  O += "  %first = icmp eq i64 %c, 0\n"
       "  br i1 %first, label %rec, label %body\n";
  O += "rec:\n";
  uint64_t Base = uint64_t(F) * RecSlots * SlotBytes;
  std::string P0 = E.gep("asmgen_rec", Base);
  O += "  store volatile i64 %iter, ptr " + P0 + ", align 1\n";
  unsigned K = 1;
  for (Ty T : params(F)) {
    std::string P = E.gep("asmgen_rec", Base + K * SlotBytes);
    O += "  store volatile " + std::string(TD[T].IR) + " %p" +
         std::to_string(K) + ", ptr " + P + ", align 1\n";
    ++K;
  }
  O += "  br label %body\nbody:\n";
  unsigned Idx = 0;
  for (unsigned C : children(F)) {
    std::string Args = "i64 %iter";
    unsigned Slot = 1;
    for (Ty T : params(C))
      Args += std::string(", ") + TD[T].IR + " " + E.value(C, Slot++, T);
    if (ret(C) == VOID) {
      O += "  call void @" + CalleePrefix + std::to_string(C) + "(" + Args +
           ")\n";
    } else {
      std::string R = E.tmp();
      O += "  " + R + " = call " + TD[ret(C)].IR + " @" + CalleePrefix +
           std::to_string(C) + "(" + Args + ")\n";
      std::string P =
          E.gep("asmgen_res", (uint64_t(F) * ResSlots + Idx) * SlotBytes);
      O += "  store volatile " + std::string(TD[ret(C)].IR) + " " + R +
           ", ptr " + P + ", align 1\n";
    }
    ++Idx;
  }
  if (ret(F) == VOID) {
    O += "  ret void\n";
  } else {
    std::string R = E.value(F, RetSlot, ret(F));
    O += "  ret " + std::string(TD[ret(F)].IR) + " " + R + "\n";
  }
  O += "}\n";
  return O;
}

/// All functions in one module (lazy path).
std::string wholeModule() {
  std::string M = moduleHeader();
  for (unsigned F = 0; F < NumFns; ++F)
    M += function(F, "f", "f");
  return M;
}

/// One body per module, calling the stubs f<C> (callback path).
std::string bodyModule(unsigned F) {
  std::string M = moduleHeader();
  for (unsigned C : children(F))
    M += "declare " + signature(C, "f" + std::to_string(C), false) + " #0\n";
  M += function(F, "body", "f");
  return M;
}

} // namespace model

// ---------------------------------------------------------------------------
// Callers of other calling conventions.  For each case, a C caller computes
// 14 i64 and 14 vector values from the iteration, calls a lazily compiled
// void callee declared with the case's convention, and stores the values.
// LLVM (at -O0 too) keeps them in registers across the call, the
// convention's as well as C's callee-saved ones: the resolver, reached on the
// first call, must deliver every one of them to the callee unchanged.  The
// driver reads the caller's code (conventionCode) to see which register holds
// which value.  The last case's callee writes ymm1 (when the JIT'd code has
// AVX), so LLVM 19 ends it with vzeroupper after restoring ymm1: every call
// loses the upper halves of the caller's ymm values, whatever the resolver
// does.
namespace conv {
struct Case {
  const char *Name, *CC;
  bool Wide;       // 256-bit vectors when the JIT'd code has AVX
  bool CalleeYmm;  // the callee writes ymm1
};
const Case Cases[] = {
    {"coldcc", "coldcc", false, false},
    {"preserve_mostcc", "preserve_mostcc", false, false},
    {"preserve_allcc", "preserve_allcc", true, false},
    {"preserve_allcc_ymm_callee", "preserve_allcc", true, true},
};
constexpr unsigned NumCases = sizeof(Cases) / sizeof(Cases[0]);
constexpr unsigned NumInts = 14, NumVecs = 14;
constexpr unsigned VecBase = 128, VecSlot = 64;
constexpr unsigned CaseBytes = VecBase + NumVecs * VecSlot;

unsigned lanes(const Case &C) {
  return C.Wide && model::VecRegBytes >= 32 ? 4 : 2;
}
uint64_t intValue(unsigned K, int64_t It) {
  return uint64_t(It) + 0x5ca1ab1e00000000ULL + uint64_t(K) * 0x10001;
}
double vecValue(unsigned K, unsigned Lane, int64_t It) {
  return double(It) + double(K * 16 + Lane) + 0.25;
}
/// Byte offset of value V (ints first, then vectors) in a case's record.
unsigned offset(unsigned V) {
  return V < NumInts ? 8 * V : VecBase + VecSlot * (V - NumInts);
}
std::string callerName(const Case &C) {
  return std::string("cc_") + C.Name + "_caller";
}

std::string module() {
  std::string M = "@asmgen_ccrec = external global [0 x i8]\n"
                  "@asmgen_cccnt = external global [0 x i8]\n"
                  "attributes #0 = { noinline uwtable "
                  "\"min-legal-vector-width\"=\"512\" }\n";
  for (unsigned I = 0; I < NumCases; ++I) {
    const Case &C = Cases[I];
    std::string Callee = std::string("@cc_") + C.Name + "_callee";
    M += "define " + std::string(C.CC) + " void " + Callee +
         "(i64 %it) #0 {\n"
         "  %p = getelementptr inbounds i8, ptr @asmgen_cccnt, i64 " +
         std::to_string(8 * I) +
         "\n  %c = load volatile i64, ptr %p\n  %c1 = add i64 %c, 1\n"
         "  store volatile i64 %c1, ptr %p\n";
    if (C.CalleeYmm && model::VecRegBytes >= 32)
      M += "  call void asm sideeffect \"vpcmpeqd %ymm1, %ymm1, %ymm1\", "
           "\"~{xmm1}\"()\n";
    M += "  ret void\n}\n";
    std::string V = "<" + std::to_string(lanes(C)) + " x double>";
    M += "define void @" + callerName(C) + "(i64 %it) #0 {\n"
         "  %itd = sitofp i64 %it to double\n"
         "  %ins = insertelement " + V + " poison, double %itd, i64 0\n"
         "  %spl = shufflevector " + V + " %ins, " + V + " poison, <" +
         std::to_string(lanes(C)) + " x i32> zeroinitializer\n";
    for (unsigned K = 0; K < NumInts; ++K)
      M += "  %a" + std::to_string(K) + " = add i64 %it, " +
           std::to_string(intValue(K, 0)) + "\n";
    for (unsigned K = 0; K < NumVecs; ++K) {
      std::string Consts;
      for (unsigned L = 0; L < lanes(C); ++L)
        Consts += std::string(L ? ", " : "") + "double " +
                  model::hexDouble(vecValue(K, L, 0));
      M += "  %v" + std::to_string(K) + " = fadd " + V + " %spl, <" + Consts +
           ">\n";
    }
    M += "  call " + std::string(C.CC) + " void " + Callee + "(i64 %it)\n";
    uint64_t Base = uint64_t(I) * CaseBytes;
    for (unsigned K = 0; K < NumInts + NumVecs; ++K) {
      std::string P = "%s" + std::to_string(K);
      M += "  " + P + " = getelementptr inbounds i8, ptr @asmgen_ccrec, i64 " +
           std::to_string(Base + offset(K)) + "\n";
      M += K < NumInts ? "  store volatile i64 %a" + std::to_string(K)
                       : "  store volatile " + V + " %v" +
                             std::to_string(K - NumInts);
      M += ", ptr " + P + ", align 1\n";
    }
    M += "  ret void\n}\n";
  }
  return M;
}
} // namespace conv

// Buffers the JIT'd code writes.
alignas(
    64) static uint8_t Rec[model::NumFns * model::RecSlots * model::SlotBytes];
alignas(
    64) static uint8_t Res[model::NumFns * model::ResSlots * model::SlotBytes];
alignas(64) static uint64_t Cnt[model::NumFns];
alignas(64) static uint8_t CcRec[conv::NumCases * conv::CaseBytes];
alignas(64) static uint64_t CcCnt[conv::NumCases];

// ---------------------------------------------------------------------------
// Where LLVM put the resolver and the trampoline blocks (for the backtrace
// check): the row's call-through class, observed.
struct CodeRanges {
  std::mutex M;
  std::vector<std::pair<uint64_t, uint64_t>> Resolvers, Trampolines;
  void clear() {
    std::lock_guard<std::mutex> L(M);
    Resolvers.clear();
    Trampolines.clear();
  }
  bool in(const std::vector<std::pair<uint64_t, uint64_t>> &V, uint64_t PC) {
    std::lock_guard<std::mutex> L(M);
    for (auto &R : V)
      if (PC >= R.first && PC < R.first + R.second)
        return true;
    return false;
  }
};
static CodeRanges Ranges;

template <typename Base> struct Observed : Base {
  static void writeResolverCode(char *WM, ExecutorAddr Target,
                                ExecutorAddr ReentryFn, ExecutorAddr Ctx) {
    Base::writeResolverCode(WM, Target, ReentryFn, Ctx);
    std::lock_guard<std::mutex> L(Ranges.M);
    Ranges.Resolvers.push_back({Target.getValue(), Base::ResolverCodeSize});
  }
  static void writeTrampolines(char *WM, ExecutorAddr Target,
                               ExecutorAddr ResolverAddr, unsigned N) {
    Base::writeTrampolines(WM, Target, ResolverAddr, N);
    std::lock_guard<std::mutex> L(Ranges.M);
    Ranges.Trampolines.push_back(
        {Target.getValue(), uint64_t(N) * Base::TrampolineSize});
  }
};

/// Negative control: the resolver's frame registered, the trampolines' not.
template <typename ABI> struct ResolverFramesOnly : ABI {
  static void writeResolverCode(char *WM, ExecutorAddr Target,
                                ExecutorAddr ReentryFn, ExecutorAddr Ctx) {
    ABI::writeResolverCode(WM, Target, ReentryFn, Ctx);
    registerResolverEHFrame<ABI>(Target);
  }
};

// ---------------------------------------------------------------------------
// JIT'd symbol ranges (JITLink post-fixup pass), to name JIT'd frames.
class FrameNamer : public ObjectLinkingLayer::Plugin {
public:
  struct Range {
    uint64_t Start, End;
    std::string Name;
  };
  void modifyPassConfig(MaterializationResponsibility &, jitlink::LinkGraph &,
                        jitlink::PassConfiguration &C) override {
    C.PostFixupPasses.push_back([this](jitlink::LinkGraph &G) -> Error {
      std::lock_guard<std::mutex> L(M);
      for (auto *S : G.defined_symbols())
        if (S->hasName() && S->isCallable() && S->getSize())
          Found.push_back({S->getAddress().getValue(),
                           S->getAddress().getValue() + S->getSize(),
                           S->getName().str()});
      return Error::success();
    });
  }
  Error notifyFailed(MaterializationResponsibility &) override {
    return Error::success();
  }
  Error notifyRemovingResources(JITDylib &, ResourceKey) override {
    return Error::success();
  }
  void notifyTransferringResources(JITDylib &, ResourceKey,
                                   ResourceKey) override {}
  const Range *find(uint64_t PC) {
    std::lock_guard<std::mutex> L(M);
    for (auto &R : Found)
      if (PC >= R.Start && PC < R.End)
        return &R;
    return nullptr;
  }
  const Range *named(const std::string &Name) {
    std::lock_guard<std::mutex> L(M);
    for (auto &R : Found)
      if (R.Name == Name)
        return &R;
    return nullptr;
  }

private:
  std::mutex M;
  std::vector<Range> Found;
};

// ---------------------------------------------------------------------------
// Run state, the transform, the backtrace check.
enum class Mode { Natural, Clobber };

struct RunState {
  Mode M = Mode::Natural;
  bool Verbose = false;
  std::string JitPrefix; // "f" (lazy) or "body" (callback)
  std::shared_ptr<FrameNamer> Namer;
  std::map<std::string, unsigned> Compiles;
  unsigned BacktracesTaken = 0;
  std::map<std::string, unsigned> BacktraceEnds; // "complete" or where it stops
  std::string FirstBacktrace;
};
static RunState *Cur = nullptr;

extern "C" __attribute__((noinline)) int64_t callRoot(uint64_t Fn, int64_t It) {
  auto *F = reinterpret_cast<int64_t (*)(int64_t)>(Fn);
  int64_t R = F(It);
  asm volatile("" ::: "memory"); // no tail call: keep this frame
  return R;
}
int main(int, char **);

static _Unwind_Reason_Code btCollect(struct _Unwind_Context *Ctx, void *Arg) {
  auto *V = static_cast<std::vector<uint64_t> *>(Arg);
  V->push_back(_Unwind_GetIP(Ctx));
  return V->size() >= 200 ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static uint64_t enclosing(uint64_t PC) {
  return reinterpret_cast<uint64_t>(
      _Unwind_FindEnclosingFunction(reinterpret_cast<void *>(PC - 1)));
}

/// Walks the backtrace taken while compiling function Compiled: C++ frames,
/// resolver, trampoline, JIT'd callers (each a caller of the previous, down
/// to function 0), callRoot, main.  Returns "complete" (or
/// "complete-without-trampoline" when the trampoline jumped to the resolver
/// and left no frame) or where it stops;
/// Trace gets what was passed.
static std::string walkBacktrace(const std::vector<uint64_t> &PCs,
                                 unsigned Compiled, std::string &Trace) {
  static const auto Parents = model::parents();
  RunState &S = *Cur;
  size_t I = 0;
  while (I < PCs.size() && !Ranges.in(Ranges.Resolvers, PCs[I]))
    ++I;
  if (I == PCs.size())
    return "no-resolver-frame";
  Trace = std::to_string(I) + " C++ frames -> resolver";
  if (++I >= PCs.size())
    return "after-resolver";
  // A shadow-stack-safe trampoline jumps to the resolver: it is never on the
  // stack, and the resolver's caller is the JIT'd caller itself.
  const bool ViaTrampoline = Ranges.in(Ranges.Trampolines, PCs[I]);
  if (ViaTrampoline) {
    Trace += " -> trampoline";
    if (++I >= PCs.size())
      return "at-trampoline";
  }
  unsigned Callee = Compiled;
  for (; I < PCs.size(); ++I) {
    const auto *R = S.Namer->find(PCs[I] - 1);
    if (!R)
      break;
    Trace += " -> " + R->Name;
    const std::string &N = R->Name;
    unsigned Fn = unsigned(atoi(N.c_str() + S.JitPrefix.size()));
    if (N.compare(0, S.JitPrefix.size(), S.JitPrefix) ||
        !Parents[Callee].count(Fn))
      return "unexpected-jit-frame";
    Callee = Fn;
  }
  if (Callee != 0)
    return I >= PCs.size() ? "after-jit-frame" : "jit-chain-misses-function-0";
  if (I >= PCs.size())
    return "after-function-0";
  if (enclosing(PCs[I]) != reinterpret_cast<uint64_t>(&callRoot))
    return "function-0-caller-not-callRoot";
  Trace += " -> callRoot";
  for (++I; I < PCs.size(); ++I)
    if (enclosing(PCs[I]) == reinterpret_cast<uint64_t>(&main)) {
      Trace += " -> main";
      return ViaTrampoline ? "complete" : "complete-without-trampoline";
    }
  return "main-not-reached";
}

static void checkBacktrace(unsigned Compiled) {
  std::vector<uint64_t> PCs;
  _Unwind_Backtrace(btCollect, &PCs);
  RunState &S = *Cur;
  S.BacktracesTaken++;
  std::string Trace;
  std::string End = walkBacktrace(PCs, Compiled, Trace);
  S.BacktraceEnds[End]++;
  if (S.FirstBacktrace.empty() || S.Verbose) {
    std::string Line = "while compiling " + S.JitPrefix +
                       std::to_string(Compiled) + ": " + Trace + " [" + End +
                       "]";
    if (S.FirstBacktrace.empty())
      S.FirstBacktrace = Line;
    if (S.Verbose)
      fprintf(stderr, "  %s\n", Line.c_str());
  }
}

static Expected<ThreadSafeModule> onCompile(ThreadSafeModule TSM,
                                            MaterializationResponsibility &) {
  RunState &S = *Cur;
  std::vector<unsigned> Defined;
  bool Callers = false; // a function of conv::module()
  TSM.withModuleDo([&](Module &M) {
    for (auto &F : M)
      if (!F.isDeclaration()) {
        S.Compiles[F.getName().str()]++;
        StringRef N = F.getName();
        if (N.starts_with(S.JitPrefix))
          Defined.push_back(unsigned(atoi(N.data() + S.JitPrefix.size())));
        Callers |= N.starts_with("cc_");
      }
  });
  for (unsigned F : Defined)
    checkBacktrace(F);
  if ((!Defined.empty() || Callers) && S.M == Mode::Clobber)
    clobberRegisters();
  return std::move(TSM);
}

// ---------------------------------------------------------------------------
// Checking the records.
struct ArgStats {
  unsigned Args = 0, Bad = 0; // arguments checked / wrong
  unsigned Results = 0, BadResults = 0;
  unsigned BadCounts = 0, BadRoot = 0;
  unsigned WideRegArgs = 0; // arguments passed in ymm/zmm registers
  unsigned BadLow = 0;      // wrong in bytes 0-15 (what fxsave/movaps keep)
  unsigned BadNotWide = 0;  // wrong although not in a ymm/zmm register
  // "zmm3 bytes16-31 zero" -> count
  std::map<std::string, unsigned> Losses;
};

static const char *contentOf(const uint8_t *P, unsigned N) {
  bool Z = true, O = true;
  for (unsigned I = 0; I < N; ++I) {
    Z &= P[I] == 0;
    O &= P[I] == 0xff;
  }
  return Z ? "zero" : O ? "all-ones" : "other";
}

static void checkIteration(int64_t It, int64_t RootRet, ArgStats &A) {
  using namespace model;
  static const auto Counts = callCounts();
  for (unsigned F = 0; F < NumFns; ++F) {
    if (Cnt[F] != Counts[F])
      A.BadCounts++;
    const uint8_t *Base = Rec + size_t(F) * RecSlots * SlotBytes;
    int64_t GotIt;
    memcpy(&GotIt, Base, 8);
    A.Args++;
    if (GotIt != It) {
      A.Bad++;
      A.BadNotWide++;
      A.BadLow++;
    }
    auto Locs = argLocations(F);
    unsigned K = 1;
    for (Ty T : params(F)) {
      auto Want = refValue(F, K, T, It);
      const uint8_t *Got = Base + K * SlotBytes;
      const std::string &Loc = Locs[K - 1];
      bool Wide = Loc[0] == 'y' || Loc[0] == 'z';
      A.Args++;
      A.WideRegArgs += Wide;
      if (memcmp(Want.data(), Got, Want.size())) {
        A.Bad++;
        A.BadLow +=
            memcmp(Want.data(), Got, std::min<size_t>(16, Want.size())) != 0;
        A.BadNotWide += !Wide;
        static const unsigned Cut[] = {0, 16, 32, 64};
        static const char *Part[] = {"bytes0-15", "bytes16-31", "bytes32-63"};
        for (unsigned R = 0; R < 3; ++R) {
          unsigned Lo = Cut[R],
                   Hi = std::min<unsigned>(Cut[R + 1], Want.size());
          if (Lo < Hi && memcmp(Want.data() + Lo, Got + Lo, Hi - Lo))
            A.Losses[Loc + " " + Part[R] + " " +
                     contentOf(Got + Lo, Hi - Lo)]++;
        }
      }
      ++K;
    }
    unsigned Idx = 0;
    for (unsigned C : children(F)) {
      if (ret(C) != VOID) {
        auto Want = refValue(C, RetSlot, ret(C), It);
        A.Results++;
        if (memcmp(Want.data(), Res + (size_t(F) * ResSlots + Idx) * SlotBytes,
                   Want.size()))
          A.BadResults++;
      }
      ++Idx;
    }
  }
  A.Results++;
  auto WantRoot = refValue(0, RetSlot, I64, It);
  if (memcmp(WantRoot.data(), &RootRet, 8))
    A.BadRoot++;
}

/// One conv::Case in one row: what each value was after the first (lazy)
/// call and after the second, and the caller's machine code.
struct CallerStats {
  unsigned Case = 0;
  // Per value: ok, wrong (an i64), low (vector bytes 0-15), or upper-zero,
  // upper-ones, upper-other (only bytes 16 and up wrong, and what they hold).
  std::vector<std::string> First, Later;
  unsigned LaterBadIterations = 0, CalleeCalls = 0;
  std::string Code; // hex, from the JIT's symbol range
};

struct Outcome {
  std::string Label, Path;
  bool Ran = false;
  std::string Error;
  ArgStats First, Later;
  std::vector<CallerStats> Callers; // lazy path only
  unsigned Iters = 0;
  unsigned Compiled = 0, CompiledOnce = 0;
  unsigned BTTaken = 0;
  std::map<std::string, unsigned> BTEnds;
  std::string FirstBacktrace;
  double Seconds = 0;
};

struct Config {
  Mode M = Mode::Natural;
  unsigned Iters = 100;
  bool Verbose = false;
  std::string Only;
  std::string Cpu; // JIT for this CPU (its own features), not the host
};
static Config Cfg;

static void runIterations(uint64_t Root, Outcome &O) {
  for (unsigned It = 1; It <= Cfg.Iters; ++It) {
    memset(Rec, 0, sizeof Rec);
    memset(Res, 0, sizeof Res);
    memset(Cnt, 0, sizeof Cnt);
    int64_t R = callRoot(Root, It);
    checkIteration(It, R, It == 1 ? O.First : O.Later);
  }
  O.Iters = Cfg.Iters;
}

static std::vector<std::string> checkCallers(unsigned I, int64_t It) {
  using namespace conv;
  const Case &C = Cases[I];
  std::vector<std::string> Status;
  const uint8_t *Base = CcRec + size_t(I) * CaseBytes;
  for (unsigned K = 0; K < NumInts + NumVecs; ++K) {
    const uint8_t *Got = Base + offset(K);
    if (K < NumInts) {
      uint64_t Want = intValue(K, It);
      Status.push_back(memcmp(&Want, Got, 8) ? "wrong" : "ok");
      continue;
    }
    std::vector<uint8_t> Want(8 * lanes(C));
    for (unsigned L = 0; L < lanes(C); ++L) {
      double D = vecValue(K - NumInts, L, It);
      memcpy(&Want[8 * L], &D, 8);
    }
    if (memcmp(Want.data(), Got, 16))
      Status.push_back("low");
    else if (memcmp(Want.data() + 16, Got + 16, Want.size() - 16))
      Status.push_back(std::string("upper-") +
                       contentOf(Got + 16, unsigned(Want.size() - 16)));
    else
      Status.push_back("ok");
  }
  return Status;
}

/// Runs case I's caller (at Fn) for every iteration.
static CallerStats runCallers(unsigned I, uint64_t Fn) {
  auto *F = reinterpret_cast<void (*)(int64_t)>(Fn);
  CallerStats St;
  St.Case = I;
  CcCnt[I] = 0;
  for (unsigned It = 1; It <= Cfg.Iters; ++It) {
    memset(CcRec + size_t(I) * conv::CaseBytes, 0, conv::CaseBytes);
    F(It);
    auto Status = checkCallers(I, It);
    bool Bad = false;
    for (auto &V : Status)
      Bad |= V != "ok";
    if (It == 1)
      St.First = Status;
    else
      St.LaterBadIterations += Bad;
    if (It == 2)
      St.Later = Status;
  }
  St.CalleeCalls = unsigned(CcCnt[I]);
  return St;
}

static void finish(RunState &S, Outcome &O, const std::string &Prefix) {
  for (unsigned F = 0; F < model::NumFns; ++F) {
    unsigned N = S.Compiles[Prefix + std::to_string(F)];
    O.Compiled += N >= 1;
    O.CompiledOnce += N == 1;
  }
  O.BTTaken = S.BacktracesTaken;
  O.BTEnds = S.BacktraceEnds;
  O.FirstBacktrace = S.FirstBacktrace;
}

static JITTargetMachineBuilder jitTargetMachine() {
  auto JTMB = cantFail(JITTargetMachineBuilder::detectHost());
  if (!Cfg.Cpu.empty()) {
    JTMB.setCPU(Cfg.Cpu);
    JTMB.getFeatures() = SubtargetFeatures(); // the CPU's own features
  } else {
    JTMB.setCPU(sys::getHostCPUName().str());
    SubtargetFeatures F;
    for (auto &KV : sys::getHostCPUFeatures())
      F.AddFeature(KV.first(), KV.second);
    JTMB.getFeatures() = F;
  }
  JTMB.setCodeGenOptLevel(CodeGenOptLevel::None);
  return JTMB;
}

static Error addBuffers(JITDylib &JD, LLJIT &J) {
  return JD.define(absoluteSymbols(
      {{J.mangleAndIntern("asmgen_rec"),
        {ExecutorAddr::fromPtr(Rec), JITSymbolFlags::Exported}},
       {J.mangleAndIntern("asmgen_res"),
        {ExecutorAddr::fromPtr(Res), JITSymbolFlags::Exported}},
       {J.mangleAndIntern("asmgen_cnt"),
        {ExecutorAddr::fromPtr(Cnt), JITSymbolFlags::Exported}},
       {J.mangleAndIntern("asmgen_ccrec"),
        {ExecutorAddr::fromPtr(CcRec), JITSymbolFlags::Exported}},
       {J.mangleAndIntern("asmgen_cccnt"),
        {ExecutorAddr::fromPtr(CcCnt), JITSymbolFlags::Exported}}}));
}

static Expected<ThreadSafeModule> parse(const std::string &Text,
                                        const LLJIT &J) {
  auto Ctx = std::make_unique<LLVMContext>();
  SMDiagnostic Diag;
  auto M = parseAssemblyString(Text, Diag, *Ctx);
  if (!M) {
    std::string S;
    raw_string_ostream OS(S);
    Diag.print("generated", OS);
    return make_error<StringError>(OS.str(), inconvertibleErrorCode());
  }
  M->setDataLayout(J.getDataLayout());
  M->setTargetTriple(J.getTargetTriple().str());
  return ThreadSafeModule(std::move(M), std::move(Ctx));
}

static Error instrument(LLJIT &J, RunState &S) {
  auto &OL = J.getObjLinkingLayer();
  if (!isa<ObjectLinkingLayer>(OL))
    return make_error<StringError>("LLJIT did not create ObjectLinkingLayer",
                                   inconvertibleErrorCode());
  cast<ObjectLinkingLayer>(OL).addPlugin(S.Namer);
  J.getIRTransformLayer().setTransform(onCompile);
  return addBuffers(J.getMainJITDylib(), J);
}

// --- lazy path: LLLazyJIT ---------------------------------------------------
template <typename CallThroughABI, typename StubsABI>
static Error runLazy(RunState &S, Outcome &O) {
  auto EPC = SelfExecutorProcessControl::Create();
  if (!EPC)
    return EPC.takeError();
  auto ES = std::make_unique<ExecutionSession>(std::move(*EPC));
  auto ErrAddr = ExecutorAddr::fromPtr(&lazyCompileFailed);
  auto LCTM = LocalLazyCallThroughManager::Create<CallThroughABI>(*ES, ErrAddr);
  if (!LCTM)
    return LCTM.takeError();
  auto J = LLLazyJITBuilder()
               .setExecutionSession(std::move(ES))
               .setJITTargetMachineBuilder(jitTargetMachine())
               .setLazyCompileFailureAddr(ErrAddr)
               .setLazyCallthroughManager(std::move(*LCTM))
               .setIndirectStubsManagerBuilder([] {
                 return std::make_unique<LocalIndirectStubsManager<StubsABI>>();
               })
               // A custom ExecutionSession turns concurrent compilation on;
               // the compile (and the backtrace) must run on this thread.
               .setSupportConcurrentCompilation(false)
               .create();
  if (!J)
    return J.takeError();
  if (auto Err = instrument(**J, S))
    return Err;
  auto TSM = parse(model::wholeModule(), **J);
  if (!TSM)
    return TSM.takeError();
  if (auto Err = (*J)->addLazyIRModule(std::move(*TSM)))
    return Err;
  auto Root = (*J)->lookup("f0");
  if (!Root)
    return Root.takeError();
  runIterations(Root->getValue(), O);
  finish(S, O, "f");
  // The callers of other conventions, in their own lazily compiled module.
  auto Callers = parse(conv::module(), **J);
  if (!Callers)
    return Callers.takeError();
  if (auto Err = (*J)->addLazyIRModule(std::move(*Callers)))
    return Err;
  for (unsigned I = 0; I < conv::NumCases; ++I) {
    auto Sym = (*J)->lookup(conv::callerName(conv::Cases[I]));
    if (!Sym)
      return Sym.takeError();
    CallerStats St = runCallers(I, Sym->getValue());
    if (const auto *R = S.Namer->named(conv::callerName(conv::Cases[I])))
      for (uint64_t A = R->Start; A < R->End; ++A) {
        char Buf[4];
        snprintf(Buf, sizeof Buf, "%02x",
                 *reinterpret_cast<const uint8_t *>(A));
        St.Code += Buf;
      }
    O.Callers.push_back(std::move(St));
  }
  return Error::success();
}

// --- callback path: LocalJITCompileCallbackManager ---------------------------
template <typename CallThroughABI, typename StubsABI>
static Error runCallbacks(RunState &S, Outcome &O) {
  auto J =
      LLJITBuilder().setJITTargetMachineBuilder(jitTargetMachine()).create();
  if (!J)
    return J.takeError();
  if (auto Err = instrument(**J, S))
    return Err;
  auto ErrAddr = ExecutorAddr::fromPtr(&lazyCompileFailed);
  auto CCM = LocalJITCompileCallbackManager<CallThroughABI>::Create(
      (*J)->getExecutionSession(), ErrAddr);
  if (!CCM)
    return CCM.takeError();
  auto ISM = std::make_unique<LocalIndirectStubsManager<StubsABI>>();
  LLJIT &JR = **J;
  IndirectStubsManager &ISMR = *ISM;
  IndirectStubsManager::StubInitsMap Inits;
  for (unsigned F = 0; F < model::NumFns; ++F) {
    auto CB = (*CCM)->getCompileCallback([&JR, &ISMR, F]() -> ExecutorAddr {
      auto Fail = [](Error Err) {
        logAllUnhandledErrors(std::move(Err), errs(), "compile callback: ");
        return ExecutorAddr();
      };
      auto TSM = parse(model::bodyModule(F), JR);
      if (!TSM)
        return Fail(TSM.takeError());
      if (auto Err = JR.addIRModule(std::move(*TSM)))
        return Fail(std::move(Err));
      auto Sym = JR.lookup("body" + std::to_string(F));
      if (!Sym)
        return Fail(Sym.takeError());
      if (auto Err = ISMR.updatePointer("f" + std::to_string(F), *Sym))
        return Fail(std::move(Err));
      return *Sym;
    });
    if (!CB)
      return CB.takeError();
    Inits["f" + std::to_string(F)] = {*CB, JITSymbolFlags::Exported |
                                               JITSymbolFlags::Callable};
  }
  if (auto Err = ISM->createStubs(Inits))
    return Err;
  SymbolMap Stubs;
  for (unsigned F = 0; F < model::NumFns; ++F) {
    auto Stub = ISM->findStub("f" + std::to_string(F), false);
    Stubs[JR.mangleAndIntern("f" + std::to_string(F))] = {
        Stub.getAddress(), JITSymbolFlags::Exported | JITSymbolFlags::Callable};
  }
  if (auto Err = JR.getMainJITDylib().define(absoluteSymbols(Stubs)))
    return Err;
  runIterations(ISM->findStub("f0", false).getAddress().getValue(), O);
  finish(S, O, "body");
  // The stubs and the trampolines go before the JIT that calls into them.
  ISM.reset();
  CCM->reset();
  return Error::success();
}

static std::vector<Outcome> Outcomes;

/// Runs both paths for one row: the call-through manager (resolver and
/// trampolines) uses CallThroughABI, the stubs manager StubsABI.
template <typename CallThroughABI, typename StubsABI>
static void runRow(const char *Label) {
  if (!Cfg.Only.empty() &&
      std::string(Label).find(Cfg.Only) == std::string::npos)
    return;
  for (bool Lazy : {true, false}) {
    Outcome O;
    O.Label = Label;
    O.Path = Lazy ? "LLLazyJIT" : "CompileCallbacks";
    RunState S;
    S.M = Cfg.M;
    S.Verbose = Cfg.Verbose;
    S.JitPrefix = Lazy ? "f" : "body";
    S.Namer = std::make_shared<FrameNamer>();
    Cur = &S;
    Ranges.clear();
    auto T0 = std::chrono::steady_clock::now();
    using Observing = Observed<CallThroughABI>;
    Error Err = Lazy ? runLazy<Observing, StubsABI>(S, O)
                     : runCallbacks<Observing, StubsABI>(S, O);
    O.Seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - T0)
            .count();
    if (Err)
      O.Error = toString(std::move(Err));
    else
      O.Ran = true;
    // The JIT and its resolver and trampolines are gone: drop their frames.
    EHFrameRegistry::get().clear();
    Cur = nullptr;
    Outcomes.push_back(std::move(O));
  }
}

// ---------------------------------------------------------------------------
// Are LLVM's writers and an asmgen class's the same bytes?
template <typename Writer> static std::vector<char> written(unsigned What) {
  std::vector<char> B(4096, 0);
  ExecutorAddr Resolver(0x7f0000001000), Fn(0x7f1122334455),
      Ctx(0x7f5566778899), Block(0x7f0000100000);
  if (What == 0)
    Writer::writeResolverCode(B.data(), Resolver, Fn, Ctx);
  else if (What == 1)
    Writer::writeTrampolines(B.data(), Block, Resolver,
                             (4096 - Writer::PointerSize) /
                                 Writer::TrampolineSize);
  else
    Writer::writeIndirectStubsBlock(B.data(), ExecutorAddr(0x7f0000200000),
                                    ExecutorAddr(0x7f0000201000),
                                    4096 / Writer::StubSize);
  return B;
}

struct WriterComparison {
  std::string Llvm, Asmgen;
  bool Sizes = false, Resolver = false, Trampolines = false, Stubs = false;
};
static std::vector<WriterComparison> Comparisons;

template <typename LlvmClass, typename AsmgenClass>
static void compareWriters(const char *LlvmName, const char *AsmgenName) {
  WriterComparison C;
  C.Llvm = LlvmName;
  C.Asmgen = AsmgenName;
  C.Sizes = LlvmClass::PointerSize == AsmgenClass::PointerSize &&
            LlvmClass::TrampolineSize == AsmgenClass::TrampolineSize &&
            LlvmClass::StubSize == AsmgenClass::StubSize &&
            LlvmClass::ResolverCodeSize == AsmgenClass::ResolverCodeSize;
  if (C.Sizes) {
    C.Resolver = written<LlvmClass>(0) == written<AsmgenClass>(0);
    C.Trampolines = written<LlvmClass>(1) == written<AsmgenClass>(1);
    C.Stubs = written<LlvmClass>(2) == written<AsmgenClass>(2);
  }
  Comparisons.push_back(C);
}

/// Instantiated for every generated class (rows.inc), never run: each is a
/// valid ORCABI argument for LLVM 19's templates as it is.
template <typename C> void instantiate(ExecutionSession &ES) {
  cantFail(LocalLazyCallThroughManager::Create<C>(ES, ExecutorAddr()));
  LocalIndirectStubsManager<C> Stubs;
  (void)Stubs;
  cantFail(LocalJITCompileCallbackManager<C>::Create(ES, ExecutorAddr()));
  (void)getIndirectStubsBlockSizes<C>(1);
  (void)EPCIndirectionUtils::CreateWithABI<C>(ES.getExecutorProcessControl());
}

// ---------------------------------------------------------------------------
// EHFrameRegistry and the register*EHFrame helpers, as the header documents
// them, asked through libgcc's own lookup.
struct dwarf_eh_bases {
  void *tbase, *dbase, *func;
};
extern "C" const void *_Unwind_Find_FDE(void *, dwarf_eh_bases *);

/// The start of the code covered by the FDE libgcc finds for PC (0: none).
static uintptr_t fdeStart(const char *PC) {
  dwarf_eh_bases Bases{};
  if (!_Unwind_Find_FDE(const_cast<char *>(PC), &Bases))
    return 0;
  return reinterpret_cast<uintptr_t>(Bases.func);
}

static std::vector<std::pair<std::string, bool>> registryChecks() {
  using ABI = X86_64_SysV_AVX_ORCABI;
  static char Code[2 * ABI::ResolverCodeSize];
  static char Block[4096];
  const unsigned N = (sizeof Block - ABI::PointerSize) / ABI::TrampolineSize;
  auto At = [](const char *P) { return reinterpret_cast<uintptr_t>(P); };
  auto &Registry = EHFrameRegistry::get();
  std::vector<std::pair<std::string, bool>> R;
  Registry.clear();
  R.push_back({"nothing registered: no FDE for the code", !fdeStart(Code)});
  registerResolverEHFrame<ABI>(ExecutorAddr::fromPtr(Code));
  R.push_back({"resolver: its first and last byte",
               fdeStart(Code) == At(Code) &&
                   fdeStart(Code + ABI::ResolverCodeSize - 1) == At(Code)});
  R.push_back(
      {"resolver: not past its end", !fdeStart(Code + ABI::ResolverCodeSize)});
  registerTrampolineEHFrame<ABI>(ExecutorAddr::fromPtr(Block), N);
  R.push_back({"trampolines: the first and the last",
               fdeStart(Block) == At(Block) &&
                   fdeStart(Block + N * ABI::TrampolineSize - 1) == At(Block)});
  R.push_back({"trampolines: not the pointer after them",
               !fdeStart(Block + N * ABI::TrampolineSize)});
  R.push_back({"two ranges registered", Registry.size() == 2});
  // New code where the old resolver was: the old frame goes.
  registerResolverEHFrame<ABI>(ExecutorAddr::fromPtr(Code + 8));
  R.push_back({"overlapping code replaces the old frame",
               Registry.size() == 2 && !fdeStart(Code) &&
                   fdeStart(Code + 8) == At(Code + 8)});
  Registry.remove(At(Block), At(Block) + 1);
  R.push_back({"remove() drops the block's frame",
               Registry.size() == 1 && !fdeStart(Block)});
  Registry.clear();
  R.push_back({"clear() drops everything",
               Registry.size() == 0 && !fdeStart(Code + 8)});
  return R;
}
static std::vector<std::pair<std::string, bool>> RegistryResults;

// rows.inc defines runRows() (runRow<...>(label) per row, compareWriters
// for the declared byte comparisons) and instantiateEveryClass().
#include "rows.inc"

// ---------------------------------------------------------------------------
// JSON output.
static std::string quote(const std::string &S) {
  std::string O = "\"";
  for (unsigned char C : S) {
    if (C == '"' || C == '\\') {
      O += '\\';
      O += char(C);
    } else if (C < 0x20) {
      char Buf[8];
      snprintf(Buf, sizeof Buf, "\\u%04x", C);
      O += Buf;
    } else {
      O += char(C);
    }
  }
  return O + "\"";
}

static std::string jsonMap(const std::map<std::string, unsigned> &M) {
  std::string O = "{";
  for (auto &KV : M)
    O += (O.size() > 1 ? ", " : "") + quote(KV.first) + ": " +
         std::to_string(KV.second);
  return O + "}";
}

static std::string jsonStats(const ArgStats &A) {
  char Buf[512];
  snprintf(Buf, sizeof Buf,
           "{\"args\": %u, \"bad\": %u, \"wide_reg_args\": %u, "
           "\"bad_low\": %u, \"bad_not_wide\": %u, \"results\": %u, "
           "\"bad_results\": %u, \"bad_counts\": %u, \"bad_root\": %u, "
           "\"losses\": ",
           A.Args, A.Bad, A.WideRegArgs, A.BadLow, A.BadNotWide, A.Results,
           A.BadResults, A.BadCounts, A.BadRoot);
  return Buf + jsonMap(A.Losses) + "}";
}

static std::string jsonStrings(const std::vector<std::string> &V) {
  std::string O = "[";
  for (size_t I = 0; I < V.size(); ++I)
    O += (I ? ", " : "") + quote(V[I]);
  return O + "]";
}

static std::string jsonCallers(const std::vector<CallerStats> &Callers) {
  std::string O = "[";
  for (size_t I = 0; I < Callers.size(); ++I) {
    const CallerStats &St = Callers[I];
    const conv::Case &C = conv::Cases[St.Case];
    O += std::string(I ? ", " : "") + "{\"case\": " + quote(C.Name) +
         ", \"cc\": " + quote(C.CC) +
         ", \"lanes\": " + std::to_string(conv::lanes(C)) +
         ", \"callee_calls\": " + std::to_string(St.CalleeCalls) +
         ", \"later_bad_iterations\": " +
         std::to_string(St.LaterBadIterations) +
         ", \"first\": " + jsonStrings(St.First) +
         ", \"later\": " + jsonStrings(St.Later) +
         ", \"code\": " + quote(St.Code) + "}";
  }
  return O + "]";
}

static std::string json(const JITTargetMachineBuilder &JTMB) {
  unsigned Args = 0, Wide = 0, Stack = 0;
  for (unsigned F = 0; F < model::NumFns; ++F)
    for (auto &L : model::argLocations(F)) {
      ++Args;
      Wide += L[0] == 'y' || L[0] == 'z';
      Stack += L == "stack";
    }
  const char *Tun = getenv("GLIBC_TUNABLES");
  std::string O = "{\n";
  O += "  \"cpu\": " + quote(JTMB.getCPU()) + ",\n";
  O += "  \"host_cpu\": " + quote(sys::getHostCPUName().str()) + ",\n";
  O += "  \"host_avx512f\": " +
       std::string(__builtin_cpu_supports("avx512f") ? "true" : "false") +
       ",\n";
  O += "  \"host_avx\": " +
       std::string(__builtin_cpu_supports("avx") ? "true" : "false") + ",\n";
  O += "  \"vec_reg_bytes\": " + std::to_string(model::VecRegBytes) + ",\n";
  O += "  \"mode\": " + quote(Cfg.M == Mode::Clobber ? "clobber" : "natural") +
       ",\n";
  O += "  \"clobbered\": " +
       quote(Cfg.M == Mode::Clobber ? clobberWidth() : "") + ",\n";
  O += "  \"glibc_tunables\": " + quote(Tun ? Tun : "") + ",\n";
  O += "  \"iterations\": " + std::to_string(Cfg.Iters) + ",\n";
  O += "  \"functions\": " + std::to_string(model::NumFns) + ",\n";
  O += "  \"arguments\": " + std::to_string(Args) + ",\n";
  O += "  \"wide_register_arguments\": " + std::to_string(Wide) + ",\n";
  O += "  \"stack_arguments\": " + std::to_string(Stack) + ",\n";
  O += "  \"caller_values\": {\"ints\": " + std::to_string(conv::NumInts) +
       ", \"vectors\": " + std::to_string(conv::NumVecs) +
       ", \"vector_base\": " + std::to_string(conv::VecBase) +
       ", \"vector_slot\": " + std::to_string(conv::VecSlot) +
       ", \"case_bytes\": " + std::to_string(conv::CaseBytes) + "},\n";
  O += "  \"registry\": {";
  for (size_t I = 0; I < RegistryResults.size(); ++I)
    O += std::string(I ? ", " : "") + quote(RegistryResults[I].first) + ": " +
         (RegistryResults[I].second ? "true" : "false");
  O += "},\n";
  O += "  \"writers\": [";
  for (size_t I = 0; I < Comparisons.size(); ++I) {
    auto &C = Comparisons[I];
    O += std::string(I ? ", " : "") + "{\"llvm\": " + quote(C.Llvm) +
         ", \"asmgen\": " + quote(C.Asmgen) +
         ", \"sizes\": " + (C.Sizes ? "true" : "false") +
         ", \"resolver\": " + (C.Resolver ? "true" : "false") +
         ", \"trampolines\": " + (C.Trampolines ? "true" : "false") +
         ", \"stubs\": " + (C.Stubs ? "true" : "false") + "}";
  }
  O += "],\n  \"rows\": [\n";
  for (size_t I = 0; I < Outcomes.size(); ++I) {
    auto &R = Outcomes[I];
    char Buf[256];
    snprintf(Buf, sizeof Buf,
             "\"iterations\": %u, \"compiled\": %u, \"compiled_once\": %u, "
             "\"backtraces\": %u, \"seconds\": %.3f, ",
             R.Iters, R.Compiled, R.CompiledOnce, R.BTTaken, R.Seconds);
    O += "    {\"label\": " + quote(R.Label) + ", \"path\": " + quote(R.Path) +
         ", \"ran\": " + (R.Ran ? "true" : "false") +
         ", \"error\": " + quote(R.Error) + ", " + Buf +
         "\"backtrace_ends\": " + jsonMap(R.BTEnds) +
         ", \"first_backtrace\": " + quote(R.FirstBacktrace) +
         ", \"first\": " + jsonStats(R.First) +
         ", \"later\": " + jsonStats(R.Later) +
         ", \"callers\": " + jsonCallers(R.Callers) + "}" +
         (I + 1 < Outcomes.size() ? ",\n" : "\n");
  }
  return O + "  ]\n}\n";
}

int main(int argc, char **argv) {
  std::string JsonPath;
  for (int I = 1; I < argc; ++I) {
    std::string A = argv[I];
    auto Value = [&](const char *Opt) -> const char * {
      size_t N = strlen(Opt);
      return A.compare(0, N, Opt) == 0 ? A.c_str() + N : nullptr;
    };
    if (A == "--mode=clobber")
      Cfg.M = Mode::Clobber;
    else if (A == "--mode=natural")
      Cfg.M = Mode::Natural;
    else if (const char *V = Value("--iters="))
      Cfg.Iters = unsigned(atoi(V));
    else if (const char *V = Value("--only="))
      Cfg.Only = V;
    else if (const char *V = Value("--cpu="))
      Cfg.Cpu = V;
    else if (const char *V = Value("--json="))
      JsonPath = V;
    else if (A == "--verbose")
      Cfg.Verbose = true;
    else {
      fprintf(stderr,
              "usage: %s [--mode=natural|clobber] [--iters=N] [--cpu=NAME] "
              "[--only=SUBSTR] [--json=FILE] [--verbose]\n",
              argv[0]);
      return 2;
    }
  }
  if (Cfg.Iters < 2) {
    fprintf(stderr, "--iters must be at least 2 (first and later calls)\n");
    return 2;
  }
  InitializeNativeTarget();
  InitializeNativeTargetAsmPrinter();
  InitializeNativeTargetAsmParser(); // conv: a callee has inline asm
  auto JTMB = jitTargetMachine();
  {
    // The registers the JIT'd code passes vectors in, from the target
    // machine: LLVM 19 passes 512-bit vectors in zmm when avx512f is on.
    auto TM = JTMB.createTargetMachine();
    if (!TM) {
      logAllUnhandledErrors(TM.takeError(), errs(), "target machine: ");
      return 1;
    }
    const MCSubtargetInfo *STI = (*TM)->getMCSubtargetInfo();
    model::VecRegBytes = STI->checkFeatures("+avx512f") ? 64
                         : STI->checkFeatures("+avx")   ? 32
                                                        : 16;
  }
  RegistryResults = registryChecks();
  runRows();
  std::string Out = json(JTMB);
  if (JsonPath.empty()) {
    fputs(Out.c_str(), stdout);
  } else if (FILE *F = fopen(JsonPath.c_str(), "w")) {
    fputs(Out.c_str(), F);
    fclose(F);
  } else {
    perror(JsonPath.c_str());
    return 1;
  }
  for (auto &O : Outcomes)
    if (!O.Ran)
      return 1;
  return 0;
}
