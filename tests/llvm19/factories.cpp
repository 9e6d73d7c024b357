// asmgen's probe of LLVM's factory functions that pick an ORC ABI class by
// triple (createLocalIndirectStubsManagerBuilder,
// createLocalLazyCallThroughManager, createLocalCompileCallbackManager,
// EPCIndirectionUtils::Create), linked with a tree's IndirectionUtils.cpp,
// LazyReexports.cpp, EPCIndirectionUtils.cpp and OrcABISupport.cpp (or with
// libLLVM's own).  For the triple on its command
// line it makes a stub to a known address and a lazy call-through
// trampoline, and prints what the chosen class wrote there, for a test to
// decode: the host only writes the target's bytes, it never runs them.
//
//   factories <triple> <stub target> [managers]
//   stub <stub address> <first 16 bytes at it, hex>   (not with `managers`)
//   trampoline <trampoline address> <first 16 bytes at it, hex>
//   epcstub <stub address> <first 16 bytes at it, hex>  (not with `managers`)
//   word <address> <8 bytes at it, hex>   (for each `read` request on stdin)
//   or: error <function>: <message>

#include "llvm/ExecutionEngine/JITLink/JITLinkMemoryManager.h"
#include "llvm/ExecutionEngine/Orc/Core.h"
#include "llvm/ExecutionEngine/Orc/EPCIndirectionUtils.h"
#include "llvm/ExecutionEngine/Orc/ExecutorProcessControl.h"
#include "llvm/ExecutionEngine/Orc/IndirectionUtils.h"
#include "llvm/ExecutionEngine/Orc/LazyReexports.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/Process.h"
#include "llvm/TargetParser/Triple.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

using namespace llvm;
using namespace llvm::orc;

static void dump(const char *What, uint64_t Addr, size_t N) {
  std::printf("%s 0x%" PRIx64 " ", What, Addr);
  const unsigned char *P = reinterpret_cast<const unsigned char *>(Addr);
  for (size_t I = 0; I != N; ++I)
    std::printf("%02x", P[I]);
  std::printf("\n");
}

int main(int Argc, char **Argv) {
  if (Argc != 3 && Argc != 4) {
    std::fprintf(stderr, "usage: factories <triple> <stub target> [managers]\n");
    return 2;
  }
  Triple T(Argv[1]);
  uint64_t Target = std::strtoull(Argv[2], nullptr, 0);

  // LLVM 19's stub builder falls back to OrcGenericABI for an arch it lacks,
  // whose writer is unreachable: `managers` leaves the stubs out.
  std::unique_ptr<IndirectStubsManager> ISM; // kept: it owns the stub memory
  if (Argc == 3) {
    ISM = createLocalIndirectStubsManagerBuilder(T)();
    if (auto Err = ISM->createStub("f", ExecutorAddr(Target),
                                   JITSymbolFlags::Exported)) {
      std::printf("error createLocalIndirectStubsManagerBuilder: %s\n",
                  toString(std::move(Err)).c_str());
    } else {
      auto Stub = ISM->findStub("f", false);
      dump("stub", Stub.getAddress().getValue(), 16);
    }
  }

  auto EPC = cantFail(SelfExecutorProcessControl::Create());
  ExecutionSession ES(std::move(EPC));
  auto &JD = ES.createBareJITDylib("main");
  auto LCTM = createLocalLazyCallThroughManager(T, ES, ExecutorAddr(0x1000));
  if (!LCTM) {
    std::printf("error createLocalLazyCallThroughManager: %s\n",
                toString(LCTM.takeError()).c_str());
  } else {
    auto Tramp = (*LCTM)->getCallThroughTrampoline(
        JD, ES.intern("g"), [](ExecutorAddr) { return Error::success(); });
    if (!Tramp)
      std::printf("error getCallThroughTrampoline: %s\n",
                  toString(Tramp.takeError()).c_str());
    else
      dump("trampoline", Tramp->getValue(), 16);
  }

  auto CCM = createLocalCompileCallbackManager(T, ES, ExecutorAddr(0x1000));
  if (!CCM)
    std::printf("error createLocalCompileCallbackManager: %s\n",
                toString(CCM.takeError()).c_str());
  else {
    auto Tramp = (*CCM)->getCompileCallback([] { return ExecutorAddr(); });
    if (!Tramp)
      std::printf("error getCompileCallback: %s\n",
                  toString(Tramp.takeError()).c_str());
    else
      dump("callback", Tramp->getValue(), 16);
  }
  // EPCIndirectionUtils, as a JIT whose code runs elsewhere uses it: an
  // executor (this process, its memory) that claims the triple.
  std::unique_ptr<EPCIndirectionUtils> EPCIU;
  std::unique_ptr<IndirectStubsManager> EPCISM;
  std::unique_ptr<SelfExecutorProcessControl> Remote;
  if (Argc == 3) {
    Remote = std::make_unique<SelfExecutorProcessControl>(
        std::make_shared<SymbolStringPool>(),
        std::make_unique<InPlaceTaskDispatcher>(), T,
        sys::Process::getPageSizeEstimate(),
        cantFail(jitlink::InProcessMemoryManager::Create()));
    auto Made = EPCIndirectionUtils::Create(*Remote);
    if (!Made) {
      std::printf("error EPCIndirectionUtils::Create: %s\n",
                  toString(Made.takeError()).c_str());
    } else {
      EPCIU = std::move(*Made);
      EPCISM = EPCIU->createIndirectStubsManager();
      cantFail(EPCISM->createStub("h", ExecutorAddr(Target),
                                  JITSymbolFlags::Exported));
      dump("epcstub", EPCISM->findStub("h", false).getAddress().getValue(),
           16);
    }
  }
  std::fflush(stdout);

  // Words the test asks for (pointer slots, the resolver), one address a line.
  char Line[64];
  while (std::fgets(Line, sizeof(Line), stdin)) {
    uint64_t Addr = std::strtoull(Line, nullptr, 0);
    dump("word", Addr, 8);
    std::fflush(stdout);
  }
  cantFail(ES.endSession());
  if (EPCIU)
    cantFail(EPCIU->cleanup());
  return 0;
}
