# SPDX-License-Identifier: GPL-2.0-only
#
# heapdev: private, kernel-backed heaps with Win32 heap semantics.
#
#   make run      build everything, boot a VM with the module loaded and run
#                 the demo programs, showing the admin view
#   make check    every test: host checks, then the selftests and the
#                 library suite in VMs on Debian's 5.10, 6.1 and 6.12 kernels
#
# Both install the Debian packages they need and cache kernel images and
# sources in $(HEAPDEV_CACHE) (default ~/.cache/heapdev).  Other targets:
#
#   make              the library, the tools and the selftests (these fetch
#                     linux-source-6.1 for the kselftest harness); the
#                     module too when $(KDIR) exists
#   make module       heapdev.ko for $(KDIR) (default: the running kernel)
#   make modules      heapdev.ko for every cached test kernel and for 7.2
#   make userlib      libheapdev (see userlib/)
#   make selftests    the kselftest programs (statically linked)
#   make tools        heapstat and heapdev-demo (statically linked)
#   make check-debug  the VM tests on a 7.2 kernel with KASAN, lockdep,
#                     DEBUG_VM, kmemleak and fault injection, built once
#                     into the cache (40 to 55 minutes the first time)
#   make bench        the benchmark suite; writes bench/RESULTS.md
#   make install      library, headers, heapdev.pc, heapstat, man pages and
#                     the udev rule under $(DESTDIR)$(PREFIX) (default
#                     /usr/local), and the module for $(KDIR) when it exists
#   make install-dkms the module's source under /usr/src for DKMS, then
#                     dkms add/build/install (the files only with DESTDIR)
#   make uninstall    remove what install put there
#   make clean

VERSION := $(shell cat VERSION)
BUILD ?= $(CURDIR)/build
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
# udev reads rules shipped by packages from /lib, local ones from /etc.
UDEVRULESDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/udev/rules.d,/etc/udev/rules.d)
DKMSSRC ?= /usr/src/heapdev-$(VERSION)
KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build
KERNELS ?= 5.10 6.1 6.12
KERNEL ?= 6.12

export HEAPDEV_BUILD := $(BUILD)
export KERNELS

.PHONY: all run check check-debug module modules userlib selftests tools bench clean help \
	install install-lib install-tools install-man install-udev \
	install-module install-dkms uninstall

all: userlib selftests tools
ifneq ($(wildcard $(KDIR)/Makefile),)
all: module
endif

help:
	@sed -n '3,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

run:
	scripts/run.sh $(KERNEL)

check:
	scripts/check.sh

check-debug:
	CHECK_HOST=0 KERNELS=debug scripts/check.sh

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

modules:
	@for k in $(KERNELS) 7.2; do scripts/build-module.sh $$k || exit 1; done

userlib:
	$(MAKE) -C userlib BUILD=$(BUILD)/userlib

selftests:
	$(MAKE) -C selftests KSFT_DIR=$$(scripts/ksrc.sh)/ksft \
		OUTPUT=$(BUILD)/selftests

bench:
	$(MAKE) -C bench run

TOOLS := $(BUILD)/tools/heapdev-demo $(BUILD)/tools/heapstat

tools: $(TOOLS)

# Static by default (the VM has no shared libc); packagers pass TOOL_LDFLAGS=.
TOOL_LDFLAGS ?= -static

$(BUILD)/tools/%: tools/%.c uapi/heapdev.h
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -Werror $(CPPFLAGS) $(CFLAGS) -Iuapi \
		$(LDFLAGS) $(TOOL_LDFLAGS) -o $@ $<

MANPAGES := $(wildcard man/*.[1-8])

install: install-lib install-tools install-man install-udev
ifneq ($(wildcard $(KDIR)/Makefile),)
install: install-module
endif

install-lib:
	$(MAKE) -C userlib install BUILD=$(BUILD)/userlib DESTDIR=$(DESTDIR) \
		PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR)
	install -d $(DESTDIR)$(INCLUDEDIR)/heapdev
	install -m 644 uapi/heapdev.h $(DESTDIR)$(INCLUDEDIR)/heapdev/uapi.h
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then \
		echo "ldconfig"; ldconfig; fi

install-tools: $(BUILD)/tools/heapstat
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(BUILD)/tools/heapstat $(DESTDIR)$(BINDIR)/heapstat

install-man:
	@for m in $(MANPAGES); do \
		s=$${m##*.}; \
		install -d $(DESTDIR)$(MANDIR)/man$$s; \
		if [ -L $$m ]; then \
			cp -P $$m $(DESTDIR)$(MANDIR)/man$$s/; \
		else \
			install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; \
		fi; \
	done

install-udev:
	install -d $(DESTDIR)$(UDEVRULESDIR)
	install -m 644 udev/60-heapdev.rules $(DESTDIR)$(UDEVRULESDIR)/

install-module: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=updates $(if $(DESTDIR),DEPMOD=true) \
		modules_install

install-dkms:
	install -d $(DESTDIR)$(DKMSSRC)/module $(DESTDIR)$(DKMSSRC)/uapi
	install -m 644 Kbuild VERSION $(DESTDIR)$(DKMSSRC)/
	install -m 644 module/*.c module/*.h $(DESTDIR)$(DKMSSRC)/module/
	install -m 644 uapi/heapdev.h $(DESTDIR)$(DKMSSRC)/uapi/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf \
		>$(DESTDIR)$(DKMSSRC)/dkms.conf
ifeq ($(DESTDIR),)
	dkms add -m heapdev -v $(VERSION)
	dkms build -m heapdev -v $(VERSION)
	dkms install -m heapdev -v $(VERSION)
endif

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libheapdev.so* $(DESTDIR)$(LIBDIR)/libheapdev.a
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/heapdev.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/heapdev.h
	rm -rf $(DESTDIR)$(INCLUDEDIR)/heapdev
	rm -f $(DESTDIR)$(BINDIR)/heapstat
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(foreach m,$(MANPAGES),man$(subst .,,$(suffix $(m)))/$(notdir $(m))))
	rm -f $(DESTDIR)$(UDEVRULESDIR)/60-heapdev.rules
	rm -f $(DESTDIR)/lib/modules/$(KVER)/updates/heapdev.ko*
ifeq ($(DESTDIR),)
	-dkms remove -m heapdev -v $(VERSION) --all 2>/dev/null
	rm -rf $(DKMSSRC)
	-depmod $(KVER) 2>/dev/null
else
	rm -rf $(DESTDIR)$(DKMSSRC)
endif

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean >/dev/null 2>&1

# ---- libheapdev-malloc, the drop-in (userlib/malloc; installed by
# userlib's install-malloc, which its install runs) ----
.PHONY: uninstall-malloc
uninstall: uninstall-malloc
uninstall-malloc:
	rm -f $(DESTDIR)$(LIBDIR)/libheapdev-malloc.so* \
		$(DESTDIR)$(LIBDIR)/libheapdev-malloc.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/heapdev-malloc.pc
