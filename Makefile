# asmgen: `make generate` regenerates every table, `make test` runs the suite.
# Both create .venv and install the pinned dependencies on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LLVM_MC := llvm-mc-19
comma := ,


.PHONY: generate check-generated cross-check verify test test-llvm lint format bench llvm llvm-dev cxx cairo toolchains venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# $(call apt_install,CHECK,PACKAGES,WHAT): when the shell command CHECK fails,
# install the Debian PACKAGES with apt-get (as root), or say which to install.
define apt_install
@( $(1) ) >/dev/null 2>&1 || { \
  if [ "$$(id -u)" = 0 ]; then \
    echo "installing Debian packages for $(3)"; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
  else \
    echo "error: $(3) not found; install the Debian packages: apt-get install $(2)" >&2; \
    exit 1; \
  fi; }
endef

# llvm-mc assembles the arches keystone lacks (RISC-V, LoongArch).
llvm:
	$(call apt_install,command -v $(LLVM_MC),llvm-19,$(LLVM_MC))

# LLVM 19's library and headers (libLLVM-19.so, OrcABISupport.h): the tests
# call LLVM's compiled ORC writers, compile patched LLVM sources against them
# and build the lazy-JIT test.
LLVM_CONFIG := llvm-config-19
LLVM_DEV_CHECK := [ -e "$$($(LLVM_CONFIG) --libdir)/libLLVM-19.so" ] && \
  [ -e "$$($(LLVM_CONFIG) --includedir)/llvm/ExecutionEngine/Orc/OrcABISupport.h" ]
llvm-dev: llvm
	$(call apt_install,$(LLVM_DEV_CHECK),llvm-19-dev,LLVM 19's library and headers)

# The C++ tests compile with g++.
cxx:
	$(call apt_install,command -v g++,g++,g++)

# The tests render the docs' SVGs to PNG with cairosvg, which needs libcairo.
cairo: $(STAMP)
	$(call apt_install,$(PY) -c 'import cairocffi',libcairo2,libcairo (for cairosvg))

# `asmgen verify` runs every table against compiled code for its target: the
# real compilers, wine (Microsoft x64) and qemu-user (the other arches).
# Named explicitly: the libc6-dev-*-cross packages (without them there is no
# crt1.o), `wine` (it puts /usr/bin/wine on PATH; wine64 alone does not).
# Never gcc-multilib: it conflicts with every gcc-*-linux-gnu cross compiler,
# and apt-get -y would remove them all (i386 uses gcc-i686-linux-gnu).
# ppc64le and s390x are installed for the arches that come next.
TOOLCHAIN_TOOLS := x86_64-linux-gnu-gcc x86_64-w64-mingw32-gcc wine wine64 wineserver \
  qemu-aarch64-static qemu-mips-static qemu-mipsel-static qemu-mips64el-static \
  qemu-riscv64-static qemu-ppc64le-static qemu-s390x-static \
  aarch64-linux-gnu-gcc mipsel-linux-gnu-gcc mips-linux-gnu-gcc \
  mips64el-linux-gnuabi64-gcc riscv64-linux-gnu-gcc i686-linux-gnu-gcc \
  powerpc64le-linux-gnu-gcc s390x-linux-gnu-gcc
TOOLCHAIN_PACKAGES := gcc libc6-dev wine wine64 gcc-mingw-w64-x86-64 qemu-user-static \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-mipsel-linux-gnu libc6-dev-mipsel-cross \
  gcc-mips-linux-gnu libc6-dev-mips-cross gcc-mips64el-linux-gnuabi64 libc6-dev-mips64el-cross \
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gcc-i686-linux-gnu libc6-dev-i386-cross \
  gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross gcc-s390x-linux-gnu libc6-dev-s390x-cross
# wine64 and wineserver live in /usr/lib/wine.
TOOLCHAIN_CHECK := for tool in $(TOOLCHAIN_TOOLS); do \
  command -v $$tool || [ -x /usr/lib/wine/$$tool ] || exit 1; done
toolchains:
	$(call apt_install,$(TOOLCHAIN_CHECK),--no-install-recommends $(TOOLCHAIN_PACKAGES),the cross compilers$(comma) wine and qemu-user)

generate: $(STAMP) llvm
	$(PY) -m asmgen generate
	$(PY) -m asmgen docs

check-generated: $(STAMP) llvm
	$(PY) -m asmgen check
	$(PY) -m asmgen docs --check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

cross-check: $(STAMP) llvm
	$(PY) -m asmgen cross-check

# Prove every generated table's ABI contract (unicorn, native x86-64, compiled
# code under wine and qemu-user, static frame).
verify: $(STAMP) llvm toolchains
	$(PY) -m asmgen verify

# pytest workers (pytest-xdist): one per core; TEST_JOBS=0 runs the suite in one process.
# `asmgen verify` on the generated tables runs inside the suite, on a worker
# (tests/test_verify.py: the text report, exit status 0; conftest.py's
# verified_generated: the JSON), not once more before it.
# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: without it
# every worker rewrites and compiles every test module again (1.5 s each).
TEST_JOBS ?= auto
test: $(STAMP) llvm llvm-dev cxx cairo toolchains check-generated cross-check lint
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n $(TEST_JOBS)

# `asmgen patch` on a real LLVM checkout (only read), proven by applying,
# formatting, compiling and running it; prints a summary for the commit message.
test-llvm: $(STAMP) llvm llvm-dev
	@[ -n "$(LLVM_ROOT)" ] || { echo "usage: make test-llvm LLVM_ROOT=<llvm-project checkout> [ABIS='...']" >&2; exit 2; }
	$(PY) tests/llvm_release.py --llvm-root "$(LLVM_ROOT)" $(ABIS)

bench: $(STAMP) llvm
	$(PY) bench/bench_cli.py
	$(PY) bench/bench_cold.py
	$(PY) bench/bench_generate.py
	$(PY) bench/bench_verify.py
	$(PY) bench/bench_variants.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
