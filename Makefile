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

# The package's version, one place: dkms.conf, the module's MODULE_VERSION
# and debian/changelog (make deb checks it) follow it.
UPAGE_VERSION := $(shell cat $(CURDIR)/VERSION)

# make install: DESTDIR stages, PREFIX=/usr for packagers. LIBDIR is
# Debian's multiarch directory when the compiler names one.
PREFIX ?= /usr/local
MULTIARCH := $(shell $(or $(CC),gcc) -print-multiarch 2>/dev/null)
LIBDIR ?= $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
SBINDIR ?= $(PREFIX)/sbin
# udev, sysusers.d and modprobe.d read /usr/lib whatever PREFIX is.
UDEVRULESDIR ?= /usr/lib/udev/rules.d
SYSUSERSDIR ?= /usr/lib/sysusers.d
MODPROBEDIR ?= /usr/lib/modprobe.d
# The release KDIR was built for: UTS_RELEASE, because Debian's 6.1
# headers say "6.1.192" in include/config/kernel.release, not the
# "6.1.0-57-amd64" that /lib/modules and uname -r use.
KVER ?= $(or $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"$$/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null), \
	$(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null))


KERNELS ?= 6.1 6.12 debug
export KERNELS

.PHONY: all module userlib selftests examples tools deps debug-kernel check \
	demo bench vm soak style sparse install install-module install-user \
	uninstall uninstall-module uninstall-user dkms-src dkms-install \
	dkms-uninstall dkms-check deb clean help

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

# The benchmark suite (tools/bench/) in a 6.1 guest (KERNEL=6.12 for the
# other one); the table, CSV and plot in build/bench/KERNEL/.
bench: deps
	KERNEL=$(or $(KERNEL),6.1) scripts/bench

# One kernel, some suites: make vm KERNEL=6.12 SUITES="smoke"
vm: deps
	scripts/check --kernel $(or $(KERNEL),6.1) $(if $(SUITES),--suites "$(SUITES)") --no-selftest --no-packaging

# The packaging checks alone (also part of make check): dkms and make
# install on the 6.1 and 6.12 guests.
dkms-check: deps
	UPAGE_BUILD=$(BUILD) scripts/dkms-check

# The model fuzzer on one kernel for MINUTES minutes, a fresh seed per run:
# make soak MINUTES=30 KERNEL=debug
soak: deps
	scripts/soak $(or $(MINUTES),10) $(or $(KERNEL),6.1)

style:
	scripts/style

sparse:
	$(MAKE) -C $(KDIR) M=$(CURDIR) C=2 modules

# install = install-module + install-user; the Debian packages use
# install-user (the module reaches them through DKMS).
install: install-module install-user

# The module goes to /lib/modules/KVER/updates, where modprobe prefers it
# over a module of the same name that came with the kernel (depmod.d's
# default search order); 6.12's kbuild picks updates/ by itself, 6.1's
# would pick extra/. depmod runs on DESTDIR's tree for KVER.
install-module: module
	@test -n "$(KVER)" || { echo "no kernel release in $(KDIR)"; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) KERNELRELEASE=$(KVER) \
		INSTALL_MOD_PATH=$(DESTDIR) INSTALL_MOD_DIR=updates \
		DEPMOD=true modules_install
	depmod -b $(or $(DESTDIR),/) $(KVER)

install-user: userlib tools
	$(MAKE) -C userlib install PREFIX=$(PREFIX) LIBDIR=$(LIBDIR)
	install -D -m 0755 $(BUILD)/tools/upagectl $(DESTDIR)$(SBINDIR)/upagectl
	install -D -m 0644 udev/60-upage.rules $(DESTDIR)$(UDEVRULESDIR)/60-upage.rules
	install -D -m 0644 udev/upage.sysusers $(DESTDIR)$(SYSUSERSDIR)/upage.conf
	install -D -m 0644 udev/upage.modprobe $(DESTDIR)$(MODPROBEDIR)/upage.conf
	if [ -f man/Makefile ]; then $(MAKE) -C man install PREFIX=$(PREFIX); fi

# Removes what install put, and nothing else. kbuild compresses the
# module as the kernel's config says (6.12: upage.ko.xz).
KO_SUFFIXES := "" .gz .xz .zst
uninstall: uninstall-module uninstall-user

uninstall-module:
	@test -n "$(KVER)" || { echo "no kernel release in $(KDIR)"; exit 1; }
	rm -f $(addprefix $(DESTDIR)/lib/modules/$(KVER)/updates/module/upage.ko,$(KO_SUFFIXES))
	-rmdir $(DESTDIR)/lib/modules/$(KVER)/updates/module $(DESTDIR)/lib/modules/$(KVER)/updates 2>/dev/null
	if [ -d $(DESTDIR)/lib/modules/$(KVER) ]; then depmod -b $(or $(DESTDIR),/) $(KVER); fi

uninstall-user:
	$(MAKE) -C userlib uninstall PREFIX=$(PREFIX) LIBDIR=$(LIBDIR)
	rm -f $(DESTDIR)$(SBINDIR)/upagectl $(DESTDIR)$(UDEVRULESDIR)/60-upage.rules \
		$(DESTDIR)$(SYSUSERSDIR)/upage.conf $(DESTDIR)$(MODPROBEDIR)/upage.conf
	if grep -qs '^uninstall:' man/Makefile; then $(MAKE) -C man uninstall PREFIX=$(PREFIX); fi

# DKMS: the module's sources, Kbuild files and dkms.conf in
# /usr/src/upage-VERSION, built and installed for KVER (KDIR's release;
# dkms finds the headers through /lib/modules/KVER/build).
DKMS_SRC := $(DESTDIR)/usr/src/upage-$(UPAGE_VERSION)
DKMS_FILES := Kbuild module uapi VERSION

dkms-src:
	rm -rf $(DKMS_SRC)
	install -d $(DKMS_SRC)
	cp -r $(DKMS_FILES) $(DKMS_SRC)/
	rm -f $(DKMS_SRC)/module/*.o $(DKMS_SRC)/module/*.ko $(DKMS_SRC)/module/.*.cmd \
		$(DKMS_SRC)/module/*.mod $(DKMS_SRC)/module/*.mod.c \
		$(DKMS_SRC)/module/modules.order $(DKMS_SRC)/module/Module.symvers
	sed 's/#MODULE_VERSION#/$(UPAGE_VERSION)/' dkms.conf >$(DKMS_SRC)/dkms.conf

# dkms add happens once; a later run (another kernel) builds and installs.
dkms-install: dkms-src
	@test -n "$(KVER)" || { echo "no kernel release in $(KDIR)"; exit 1; }
	[ -e /var/lib/dkms/upage/$(UPAGE_VERSION) ] || dkms add -m upage -v $(UPAGE_VERSION)
	dkms build -m upage -v $(UPAGE_VERSION) -k $(KVER)
	dkms install -m upage -v $(UPAGE_VERSION) -k $(KVER)

# Removes upage VERSION from dkms for every kernel, and its sources.
dkms-uninstall:
	-dkms remove -m upage -v $(UPAGE_VERSION) --all
	rm -rf $(DKMS_SRC)

# Debian packages from a copy of the tree: $(BUILD)/deb/*.deb, lintian's
# report in $(BUILD)/deb/lintian.txt (scripts/deb).
deb:
	UPAGE_BUILD=$(BUILD) scripts/deb

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
	@echo "make install [DESTDIR=] [PREFIX=/usr/local] [KDIR=]   and make uninstall"
	@echo "make dkms-install [KDIR=]   and make dkms-uninstall: the module through dkms"
	@echo "make deb        Debian packages in $(BUILD)/deb, lintian's report in lintian.txt there"
	@echo "make style | sparse | clean"
