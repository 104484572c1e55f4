# SPDX-License-Identifier: GPL-2.0-only
#
# heapdev: private, kernel-backed heaps with Win32 heap semantics.
#
#   make run      build everything, boot a VM with the module loaded and run
#                 the demo programs, showing the admin view
#   make check    every test: host checks, then the selftests and the
#                 library suite in VMs on Debian's 6.1 and 6.12 kernels
#
# Both install the Debian packages they need and cache kernel images and
# sources in $(HEAPDEV_CACHE) (default ~/.cache/heapdev).  Other targets:
#
#   make              the library and the selftests; the module too when
#                     $(KDIR) exists
#   make module       heapdev.ko for $(KDIR) (default: the running kernel)
#   make modules      heapdev.ko for every cached test kernel and for 7.2
#   make userlib      libheapdev (see userlib/)
#   make selftests    the kselftest programs (statically linked)
#   make tools        heapstat and heapdev-demo (statically linked)
#   make bench        the benchmark suite; writes bench/RESULTS.md
#   make clean

VERSION := $(shell cat VERSION)
BUILD ?= $(CURDIR)/build
KDIR ?= /lib/modules/$(shell uname -r)/build
KERNELS ?= 6.1 6.12
KERNEL ?= 6.12

export HEAPDEV_BUILD := $(BUILD)
export KERNELS

.PHONY: all run check module modules userlib selftests tools bench clean help

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

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

modules:
	@for k in $(KERNELS) 7.2; do scripts/build-module.sh $$k || exit 1; done

userlib:
	$(MAKE) -C userlib

selftests:
	$(MAKE) -C selftests KSFT_DIR=$$(scripts/ksrc.sh)/ksft \
		OUTPUT=$(BUILD)/selftests

bench:
	$(MAKE) -C bench run

TOOLS := $(BUILD)/tools/heapdev-demo $(BUILD)/tools/heapstat

tools: $(TOOLS)

$(BUILD)/tools/%: tools/%.c uapi/heapdev.h
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -Werror -static -Iuapi -o $@ $<

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean >/dev/null 2>&1
