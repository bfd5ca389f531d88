# kite — GNU Makefile. `make V=1` shows the commands.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
# BUILD is the output folder; SAN=1 builds with AddressSanitizer + UBSan.
BUILD ?= build
SAN ?= 0

# -fvisibility=hidden: only what kite.h marks KITE_API leaves libkite.so
# (src/libkite.map says the same to the linker).
KITE_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wno-unused-parameter -Iinclude -Isrc -Isys -Icli -fPIC -MMD -MP -pthread \
	-fvisibility=hidden
KITE_LDFLAGS := -pthread
ifeq ($(SAN),1)
KITE_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
KITE_LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# src/ is libkite; sys/ the host parsers and helpers only the command uses
# (an internal archive, never installed); cli/ the command, one folder per
# multi-file tool.
LIB_SRC := $(wildcard src/*.c)
SYS_SRC := $(wildcard sys/*.c)
# cli/bridge/ is the program kite-bridge (below), not part of kite.
CLI_SRC := $(filter-out cli/bridge/%,$(wildcard cli/*.c cli/*/*.c))
TEST_SRC := $(wildcard tests/*_test.c)
TEST_HELPER_SRC := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_SRC := $(wildcard bench/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
SYS_OBJ := $(SYS_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
# The subcommands' code without main(): tests and fuzz targets link it too.
CLI_PARTS := $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ))
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_REPLAY := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%-replay,$(wildcard fuzz/*_fuzz.c))

LIBA := $(BUILD)/libkite.a
SYSA := $(BUILD)/libkitesys.a
LIBSO := $(BUILD)/libkite.so.0
KITE := $(BUILD)/kite

.PHONY: all test check check-parts check-build bench demo install uninstall clean fuzz deps
all: $(LIBA) $(LIBSO) $(KITE)

# kite bridge (cli/bridge/): the one program that links libnats, built as
# kite-bridge only where libnats (libnats-dev) is installed; `kite bridge`
# runs it. Everything else stays libc-only.
HAVE_NATS := $(shell pkg-config --exists libnats 2>/dev/null && echo yes)
BRIDGE := $(BUILD)/kite-bridge
BRIDGE_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/bridge/*.c))
NATS_TOOL := $(BUILD)/tests/programs/nats_tool
ifeq ($(HAVE_NATS),yes)
NATS_CFLAGS := $(shell pkg-config --cflags libnats)
NATS_LIBS := $(shell pkg-config --libs libnats)
all: $(BRIDGE)
check-build check-parts: $(NATS_TOOL)
$(BRIDGE_OBJ) $(NATS_TOOL): KITE_CFLAGS += $(NATS_CFLAGS)
# libnats allocates each message and header map on the bridge's thread and
# frees them on its collector thread, a pattern glibc's malloc handles
# poorly and jemalloc well (bench/README.md, "bridge"): kite-bridge links
# jemalloc where libjemalloc-dev is installed (JEMALLOC=0: never), but not
# in the sanitizer build, whose allocator it would replace.
ifneq ($(SAN),1)
ifneq ($(JEMALLOC),0)
# (--no-as-needed: it must come before libc even if nothing of ours calls
# malloc, or libnats's allocations would bind to glibc's.)
ifneq ($(shell pkg-config --exists jemalloc 2>/dev/null && echo y),)
BRIDGE_MALLOC := -Wl,--push-state,--no-as-needed $(shell pkg-config --libs jemalloc) -Wl,--pop-state
endif
endif
endif
# The link flags are a prerequisite too: installing libjemalloc-dev (or
# setting JEMALLOC=0) after a build relinks kite-bridge.
BRIDGE_LINK_FLAGS := $(BUILD)/kite-bridge.linkflags
$(BRIDGE_LINK_FLAGS): FORCE
	@mkdir -p $(dir $@)
	@echo '$(NATS_LIBS) $(BRIDGE_MALLOC)' | cmp -s - $@ || echo '$(NATS_LIBS) $(BRIDGE_MALLOC)' > $@
$(BRIDGE): $(BRIDGE_OBJ) $(BUILD)/cli/util.o $(SYSA) $(LIBA) $(BRIDGE_LINK_FLAGS)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -o $@ $(filter-out $(BRIDGE_LINK_FLAGS),$^) $(KITE_LDFLAGS) $(NATS_LIBS) $(BRIDGE_MALLOC)
$(NATS_TOOL): tests/programs/nats_tool.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(KITE_CFLAGS) -o $@ $< $(KITE_LDFLAGS) $(NATS_LIBS)
else
all: bridge-note
.PHONY: bridge-note
bridge-note:
	@echo "  NOTE    libnats not found (apt install libnats-dev): kite-bridge not built"
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(KITE_CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SYSA): $(SYS_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSO): $(LIB_OBJ) src/libkite.map
	$(Q)$(CC) -shared -Wl,-soname,libkite.so.0 -Wl,--version-script=src/libkite.map \
		-Wl,--no-undefined -o $@ $(LIB_OBJ) $(KITE_LDFLAGS)

$(KITE): $(CLI_OBJ) $(SYSA) $(LIBA)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(KITE_LDFLAGS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_HELPER_OBJ) $(CLI_PARTS) $(SYSA) $(LIBA)
	$(Q)$(CC) -o $@ $^ $(KITE_LDFLAGS) -lcmocka

# Fuzz targets: `-replay` runs them without libFuzzer (hostile table plus
# seeded random mutation); `make fuzz` builds real libFuzzer binaries.
$(BUILD)/fuzz/%-replay: $(BUILD)/fuzz/%.o $(BUILD)/fuzz/replay_main.o $(CLI_PARTS) $(SYSA) $(LIBA)
	$(Q)$(CC) -o $@ $^ $(KITE_LDFLAGS)

# Tests of libkite built with other limits (tests/variants/*_test.c): the
# library again, compiled with tiny outbound queues so that links get cut.
VARIANT_CFLAGS := -DOUTQ_MAX=32
VARIANT_LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/variant/%.o)
.SECONDARY: $(VARIANT_LIB_OBJ)
VARIANT_TEST_BIN := $(patsubst tests/variants/%.c,$(BUILD)/tests/%,$(wildcard tests/variants/*_test.c))
$(BUILD)/variant/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(KITE_CFLAGS) $(VARIANT_CFLAGS) -c -o $@ $<
$(BUILD)/tests/%: $(BUILD)/tests/variants/%.o $(TEST_HELPER_OBJ) $(VARIANT_LIB_OBJ)
	$(Q)$(CC) -o $@ $^ $(KITE_LDFLAGS) -lcmocka

check-build: all $(TEST_BIN) $(VARIANT_TEST_BIN) $(FUZZ_REPLAY)

deps:
	$(Q)tests/install-deps.sh

# Every test twice: plain, then AddressSanitizer + UBSan. The benchmark
# programs are built too, so an API change cannot break them unnoticed.
test: deps
	$(Q)$(MAKE) --no-print-directory check-build
	$(Q)$(MAKE) --no-print-directory -C bench BUILD=../build build
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 check-build
	$(Q)tests/run.sh build build/asan

# `make check`: as an ordinary user with what is installed (no root, no
# apt). Tests that need root or a missing package print "# SKIP" and why.
# Without cmocka the C tests are skipped, not a build failure (`make check
# HAVE_CMOCKA=` pretends so). SAN=1 adds the sanitizer build in build/asan,
# whose C tests and fuzz replays run too, as in `make test`.
HAVE_CMOCKA = $(shell echo 'int main(void) { return 0; }' | $(CC) -x c -include stdarg.h \
	-include stddef.h -include stdint.h -include setjmp.h -include cmocka.h - \
	-lcmocka -o /dev/null 2>/dev/null && echo yes)
CHECK_BUILDS := build $(if $(filter 1,$(SAN)),build/asan)

check:
	$(eval HAVE_CMOCKA := $(HAVE_CMOCKA))
	$(Q)$(MAKE) --no-print-directory BUILD=build SAN=0 CHECK_C_TESTS=$(HAVE_CMOCKA) check-parts
	$(if $(filter 1,$(SAN)),$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 \
		CHECK_C_TESTS=$(HAVE_CMOCKA) check-parts)
	$(Q)$(if $(HAVE_CMOCKA),,KITE_SKIP_C_TESTS='cmocka not installed (tests/deps.txt: libcmocka-dev)') \
		tests/run.sh $(CHECK_BUILDS)

# (HAVE_CMOCKA compiles a probe: only `check` asks it, once.)
check-parts: all $(FUZZ_REPLAY) $(if $(CHECK_C_TESTS),$(TEST_BIN))

fuzz:
	$(Q)$(MAKE) --no-print-directory -f fuzz/Makefile

bench: deps all
	$(Q)$(MAKE) --no-print-directory -C bench BUILD=../$(BUILD)

demo: all
	$(Q)demo/run.sh $(KITE)

kite.pc: kite.pc.in FORCE
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' $< > $@

# Everything install puts down, so uninstall removes exactly that.
MAN1 := $(notdir $(wildcard docs/man/*.1))
MAN3 := $(notdir $(wildcard docs/man/*.3))

install: all kite.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/kite \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(KITE) $(DESTDIR)$(BINDIR)/kite
	$(if $(HAVE_NATS),install -m 755 $(BRIDGE) $(DESTDIR)$(BINDIR)/kite-bridge)
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/libkite.a
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/libkite.so.0
	ln -sf libkite.so.0 $(DESTDIR)$(LIBDIR)/libkite.so
	install -m 644 include/kite.h $(DESTDIR)$(INCLUDEDIR)/kite.h
	install -m 644 include/kite/handoff.h $(DESTDIR)$(INCLUDEDIR)/kite/handoff.h
	install -m 644 kite.pc $(DESTDIR)$(PKGCONFIGDIR)/kite.pc
	install -m 644 $(addprefix docs/man/,$(MAN1)) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(addprefix docs/man/,$(MAN3)) $(DESTDIR)$(MANDIR)/man3/
	install -m 644 completions/kite.bash $(DESTDIR)$(BASHCOMPDIR)/kite

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kite $(DESTDIR)$(BINDIR)/kite-bridge $(DESTDIR)$(LIBDIR)/libkite.a \
		$(DESTDIR)$(LIBDIR)/libkite.so.0 $(DESTDIR)$(LIBDIR)/libkite.so \
		$(DESTDIR)$(INCLUDEDIR)/kite.h $(DESTDIR)$(INCLUDEDIR)/kite/handoff.h \
		$(DESTDIR)$(PKGCONFIGDIR)/kite.pc $(DESTDIR)$(BASHCOMPDIR)/kite \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(MAN1)) \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(MAN3))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/kite 2>/dev/null

clean:
	rm -rf build kite.pc

FORCE:

-include $(wildcard $(BUILD)/*/*.d $(BUILD)/*/*/*.d)

# kite serve: the HTTP worker/client the serve tests and bench run (a
# program of its own, so it lives outside tests/*.c).
SERVE_WORKER := $(BUILD)/tests/helpers/serve_worker
$(SERVE_WORKER): $(BUILD)/tests/helpers/serve_worker.o $(LIBA)
	$(Q)$(CC) -o $@ $^ $(KITE_LDFLAGS)
check-build check-parts: $(SERVE_WORKER)
# The LAN tests' fault injector and flooder (tests/helpers/lan_tool.c).
LAN_TOOL := $(BUILD)/tests/helpers/lan_tool
$(LAN_TOOL): $(BUILD)/tests/helpers/lan_tool.o $(LIBA)
	$(Q)$(CC) -o $@ $^ $(KITE_LDFLAGS)
check-build check-parts: $(LAN_TOOL)
# Wrong libraries under libsodium's soname (tests/helpers/fake_sodium.c),
# one per way of being wrong: libkite must refuse each, never trust it.
FAKE_SODIUM := $(foreach v,noverify initfails hashfails acceptall bigstate,\
	$(BUILD)/tests/helpers/fake_sodium_$(v).so)
$(BUILD)/tests/helpers/fake_sodium_%.so: tests/helpers/fake_sodium.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -Wall -Wextra -Werror -shared -fPIC -DFAKE_$* -o $@ $<
# And the real one failing after it loaded (tests/helpers/flaky_sodium.c).
FAKE_SODIUM += $(BUILD)/tests/helpers/flaky_sodium.so
$(BUILD)/tests/helpers/flaky_sodium.so: tests/helpers/flaky_sodium.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -Wall -Wextra -Werror -shared -fPIC -o $@ $<
check-build check-parts: $(FAKE_SODIUM)
-include $(wildcard $(BUILD)/tests/helpers/*.d)

# The Python binding (python/): pure Python over libkite.so.0, installed
# offline with the system's setuptools (no build dependency is fetched).
# PYTHONDIR: where the package goes (default: the interpreter's site folder).
PYTHON ?= /usr/bin/python3
PYTHONDIR ?= $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
.PHONY: install-python uninstall-python
install-python:
	$(Q)tmp=$$(mktemp -d) && cp -R python/kite python/pyproject.toml python/README.md "$$tmp" && \
	$(PYTHON) -m pip install -q --no-build-isolation --no-index --no-deps --upgrade \
		--root-user-action=ignore --target "$(DESTDIR)$(PYTHONDIR)" "$$tmp"; \
	rc=$$?; rm -rf "$$tmp"; exit $$rc

uninstall-python:
	rm -rf $(DESTDIR)$(PYTHONDIR)/kite $(DESTDIR)$(PYTHONDIR)/kite-[0-9]*.dist-info
