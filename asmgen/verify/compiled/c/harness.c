/* asmgen verify's compiled harness: the part no arch or convention changes.
 *
 * It reads commands on stdin, one a line, runs the generated caller scaffold
 * (cc_call, templates/<arch>/harness_scaffold.S.j2) against code the Python
 * side wrote into an executable arena, and prints one JSON line per run:
 *
 *   W <offset> <hex>               write bytes at arena + offset, flush the icache
 *   S <hex>                        set cc_in (struct cc_state, CC_STATE_SIZE bytes)
 *   R <tag> <target> <landing> <flags>
 *                                  call target with cc_in loaded; the re-entry
 *                                  functions return <landing>; print the result.
 *                                  Once a run hangs, the later runs whose tag
 *                                  starts alike (up to the first '.': the same
 *                                  table) are skipped, not waited for.
 *   Q                              quit
 *
 * It first prints a "hello" line with the addresses the Python side needs:
 * the arena, the context object, the compiled functions and the stack.
 *
 * Faults and hangs: a signal handler on its own stack (Linux), or a vectored
 * exception handler and a watchdog thread (Windows), records the fault and
 * moves the pc to cc_recover, the scaffold's exit path, which restores the
 * host's registers and returns from cc_call.  A re-entry function called too
 * often does the same (cc_bail).
 */
#ifndef _WIN32
#define _GNU_SOURCE 1
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_gen.h"

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#else
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#endif

_Static_assert(sizeof(void *) == CC_PS, "the convention's pointer size is not the compiler's");

unsigned char cc_in[CC_STATE_SIZE] __attribute__((aligned(64)));
unsigned char cc_out[CC_STATE_SIZE] __attribute__((aligned(64)));
unsigned char cc_host[CC_STATE_SIZE] __attribute__((aligned(64)));
uintptr_t cc_call_sp;
uintptr_t cc_landing_addr;
volatile int cc_status;
volatile int cc_flags; /* R's last field: bit 0 = the landing runs an x87 operation */
struct cc_obs cc_obs;
/* The context object: its real address is the ctx argument. */
struct { unsigned char bytes[64]; } cc_ctx_obj __attribute__((aligned(16)));

static unsigned char cc_stack[1 << 20] __attribute__((aligned(4096)));
static unsigned char *arena;
#define ARENA_SIZE (64u << 20)
#define RUN_SECONDS 2 /* a run takes milliseconds, even under qemu */

static volatile uint64_t fault_pc, fault_addr, fault_code, fault_fpu;

enum { ST_OK = 0, ST_FAULT = 1, ST_REENTERED = 2, ST_TIMEOUT = 3, ST_SKIPPED = 4 };
static char hung[128]; /* the tag group of the last run that hung */

void cc_bail(void)
{
    cc_status = ST_REENTERED;
    cc_recover();
}

#ifdef _WIN32
static HANDLE main_thread;
static volatile LONG running;
static volatile ULONGLONG run_started;

static LONG CALLBACK on_exception(PEXCEPTION_POINTERS ep)
{
    if (!running)
        return EXCEPTION_CONTINUE_SEARCH;
    fault_code = ep->ExceptionRecord->ExceptionCode;
    fault_pc = (uintptr_t)ep->ExceptionRecord->ExceptionAddress;
    fault_addr = ep->ExceptionRecord->NumberParameters > 1
                     ? (uintptr_t)ep->ExceptionRecord->ExceptionInformation[1]
                     : 0;
    fault_fpu = ep->ContextRecord->FltSave.ControlWord |
                (uint64_t)ep->ContextRecord->FltSave.StatusWord << 16 |
                (uint64_t)ep->ContextRecord->MxCsr << 32;
    cc_status = ST_FAULT;
    ep->ContextRecord->Rip = (DWORD64)(uintptr_t)cc_recover;
    ep->ContextRecord->MxCsr = 0x1f80;
    ep->ContextRecord->FltSave.ControlWord = 0x37f;
    ep->ContextRecord->FltSave.StatusWord = 0;
    ep->ContextRecord->FltSave.MxCsr = 0x1f80;
    return EXCEPTION_CONTINUE_EXECUTION;
}

/* A run that does not finish in time gets its pc moved to cc_recover.  The
   watchdog polls: events would have to pair every run with its wake-up. */
static DWORD WINAPI watchdog(LPVOID unused)
{
    (void)unused;
    for (;;) {
        Sleep(50);
        if (!running || GetTickCount64() - run_started < RUN_SECONDS * 1000)
            continue;
        SuspendThread(main_thread);
        if (running) { /* still the same overdue run */
            CONTEXT c;
            memset(&c, 0, sizeof c);
            c.ContextFlags = CONTEXT_CONTROL;
            GetThreadContext(main_thread, &c);
            fault_pc = c.Rip;
            cc_status = ST_TIMEOUT;
            running = 0;
            c.Rip = (DWORD64)(uintptr_t)cc_recover;
            SetThreadContext(main_thread, &c);
        }
        ResumeThread(main_thread);
    }
    return 0;
}

static void setup_platform(void)
{
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
    arena = VirtualAlloc(NULL, ARENA_SIZE, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    if (arena == NULL) {
        printf("{\"error\":\"VirtualAlloc failed\"}\n");
        exit(3);
    }
    AddVectoredExceptionHandler(1, on_exception);
    DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &main_thread,
                    0, FALSE, DUPLICATE_SAME_ACCESS);
    CreateThread(NULL, 0, watchdog, NULL, 0, NULL);
}
static void arm(void) { run_started = GetTickCount64(); running = 1; }
static void disarm(void) { running = 0; }
#else
static volatile sig_atomic_t running;

static void on_signal(int sig, siginfo_t *si, void *context)
{
    ucontext_t *uc = context;
    if (!running) {
        signal(sig, SIG_DFL);
        return;
    }
    fault_code = sig;
    fault_pc = (uintptr_t)CC_UCONTEXT_PC(uc);
    fault_addr = (uintptr_t)si->si_addr;
    fault_fpu = CC_UCONTEXT_FPU(uc);
    cc_status = sig == SIGALRM ? ST_TIMEOUT : ST_FAULT;
    CC_UCONTEXT_PC(uc) = (uintptr_t)cc_recover;
}

static void setup_platform(void)
{
    static unsigned char altstack[1 << 16];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    struct sigaction sa;
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGALRM};
    sigaltstack(&ss, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
    arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) {
        printf("{\"error\":\"mmap failed\"}\n");
        exit(3);
    }
}
static void arm(void) { running = 1; alarm(RUN_SECONDS); }
static void disarm(void) { alarm(0); running = 0; }
#endif

static int unhex(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;
    while (s[0] && s[1] && s[0] != '\n' && n < max) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            return -1;
        out[n++] = (unsigned char)v;
        s += 2;
    }
    return (int)n;
}

static void puthex(const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
}

static void hello(void)
{
    printf("{\"hello\":1,\"arena\":\"0x%llx\",\"arena_size\":%u,\"ctx\":\"0x%llx\","
           "\"state_size\":%d,\"obs_size\":%d,\"call_sp\":\"0x%llx\",\"sym\":{",
           (unsigned long long)(uintptr_t)arena, ARENA_SIZE,
           (unsigned long long)(uintptr_t)&cc_ctx_obj, CC_STATE_SIZE, (int)sizeof(struct cc_obs),
           (unsigned long long)cc_call_sp);
    for (int i = 0; cc_probe_table[i].name; i++)
        printf("\"%s\":\"0x%llx\",", cc_probe_table[i].name,
               (unsigned long long)cc_probe_table[i].addr);
    printf("\"cc_call\":\"0x%llx\",\"cc_recover\":\"0x%llx\"}}\n",
           (unsigned long long)(uintptr_t)cc_call, (unsigned long long)(uintptr_t)cc_recover);
    fflush(stdout);
}

static void run(const char *args)
{
    char tag[128];
    unsigned long long target, landing;
    int flags = 0;
    if (sscanf(args, "%127s %llx %llx %d", tag, &target, &landing, &flags) < 3) {
        printf("{\"error\":\"bad R\"}\n");
        return;
    }
    cc_flags = flags;
    memcpy(cc_in + CC_TARGET_OFF, &(uintptr_t){(uintptr_t)target}, sizeof(uintptr_t));
    cc_landing_addr = (uintptr_t)landing;
    memset(&cc_obs, 0, sizeof cc_obs);
    memset(cc_out, 0, sizeof cc_out);
    cc_status = ST_OK;
    fault_pc = fault_addr = fault_code = fault_fpu = 0;
    size_t group = strcspn(tag, ".");
    if (hung[0] && strncmp(tag, hung, group) == 0 && hung[group] == '\0') {
        cc_status = ST_SKIPPED;
    } else {
        arm();
        cc_call();
        disarm();
        if (cc_status == ST_TIMEOUT) {
            memcpy(hung, tag, group);
            hung[group] = '\0';
        }
    }
    printf("{\"tag\":\"%s\",\"status\":%d,\"code\":\"0x%llx\",\"pc\":\"0x%llx\",\"addr\":\"0x%llx\","
           "\"fpu\":\"0x%llx\",\"out\":\"",
           tag, cc_status, (unsigned long long)fault_code, (unsigned long long)fault_pc,
           (unsigned long long)fault_addr, (unsigned long long)fault_fpu);
    puthex(cc_out, sizeof cc_out);
    printf("\",\"obs\":\"");
    puthex((unsigned char *)&cc_obs, sizeof cc_obs);
    printf("\"}\n");
}

int main(void)
{
    static char line[1 << 20];
    static unsigned char data[1 << 19];
    /* sp at the call: aligned to exactly CC_ALIGN (not 2 * CC_ALIGN), below
       the top of the harness's own stack, with the argument area above it. */
    uintptr_t top = (uintptr_t)(cc_stack + sizeof cc_stack - 4096);
    cc_call_sp = (top & ~(uintptr_t)(2 * CC_ALIGN - 1)) - CC_ALIGN;
    setup_platform();
    hello();
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'Q')
            break;
        if (line[0] == 'W') {
            char *p = line + 2;
            unsigned long long offset = strtoull(p, &p, 16);
            int n = unhex(p + 1, data, sizeof data);
            if (n < 0 || offset + n > ARENA_SIZE) {
                printf("{\"error\":\"bad W\"}\n");
                continue;
            }
            memcpy(arena + offset, data, n);
            __builtin___clear_cache((char *)arena + offset, (char *)arena + offset + n);
        } else if (line[0] == 'S') {
            if (unhex(line + 2, cc_in, CC_STATE_SIZE) != CC_STATE_SIZE)
                printf("{\"error\":\"bad S\"}\n");
        } else if (line[0] == 'R') {
            run(line + 2);
        }
    }
    fflush(stdout);
#ifdef _WIN32
    /* Under wine an ordinary exit waits for the watchdog thread. */
    TerminateProcess(GetCurrentProcess(), 0);
#endif
    return 0;
}
