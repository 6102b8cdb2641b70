# SPDX-License-Identifier: GPL-2.0
#
# upage: build the module, the library, the tests, the examples and the
# tools, and run them in QEMU. `make help` lists the targets.

UPAGE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/upage
export UPAGE_CACHE
-include $(UPAGE_CACHE)/versions

# The module is built for KDIR: the running kernel's build directory when
# there is one, else the Debian 12 6.1 headers that scripts/deps installs.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(if $(KVER_61),/usr/src/linux-headers-$(KVER_61)) \
	$(lastword $(sort $(wildcard /usr/src/linux-headers-6.1.*-amd64))))

BUILD ?= $(CURDIR)/build
export BUILD


KERNELS ?= 6.1 6.12 debug
export KERNELS

.PHONY: all module userlib selftests examples tools deps debug-kernel check \
	demo bench vm soak style sparse install clean help

all: module userlib selftests examples tools

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

userlib:
	$(MAKE) -C userlib

# The kselftest harness comes from Debian's linux-source-6.12 (scripts/deps).
selftests: userlib deps
	$(MAKE) -C selftests

examples: userlib
	$(MAKE) -C examples

tools: userlib
	$(MAKE) -C tools

deps:
	@scripts/deps

debug-kernel: deps
	scripts/debug-kernel

# Every suite on every kernel in KERNELS, then the harness's own self-test.
check: deps
	scripts/check

demo: deps
	scripts/demo

# upage-bench in a 6.1 guest (KERNEL=6.12 for the other one)
bench: deps
	KERNEL=$(or $(KERNEL),6.1) scripts/bench

# One kernel, some suites: make vm KERNEL=6.12 SUITES="smoke"
vm: deps
	scripts/check --kernel $(or $(KERNEL),6.1) $(if $(SUITES),--suites "$(SUITES)") --no-selftest

# The model fuzzer on one kernel for MINUTES minutes, a fresh seed per run:
# make soak MINUTES=30 KERNEL=debug
soak: deps
	scripts/soak $(or $(MINUTES),10) $(or $(KERNEL),6.1)

style:
	scripts/style

sparse:
	$(MAKE) -C $(KDIR) M=$(CURDIR) C=2 modules

install: module userlib
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install
	$(MAKE) -C userlib install
	install -D -m 0644 udev/60-upage.rules $(DESTDIR)/etc/udev/rules.d/60-upage.rules
	install -D -m 0644 udev/upage.sysusers $(DESTDIR)/usr/lib/sysusers.d/upage.conf

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf $(BUILD)

help:
	@echo "make            build the module (KDIR=$(KDIR)), library, tests, examples, tools"
	@echo "make check      run every test suite on KERNELS=\"$(KERNELS)\" in QEMU"
	@echo "make demo       boot 6.1 in QEMU and run the examples"
	@echo "make bench      boot 6.1 (KERNEL=6.12) in QEMU and run upage-bench"
	@echo "make vm KERNEL=6.12 SUITES=smoke   run some suites on one kernel"
	@echo "    (UPAGE_MODEL_SECONDS=, UPAGE_MODEL_SEED=, UPAGE_ENV=\"K=V ...\" reach the guest)"
	@echo "make soak MINUTES=30 KERNEL=debug   the model fuzzer for 30 minutes, fresh seeds"
	@echo "make deps       install packages, fetch kernels (also run by check/demo)"
	@echo "make debug-kernel   build the debug kernel (cached)"
	@echo "make style | sparse | install | clean"
