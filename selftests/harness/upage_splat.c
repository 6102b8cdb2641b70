// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for the harness's self-test: it WARNs when loaded, so
 * that a run which loads it must be reported as failed. Never installed.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init upage_splat_init(void)
{
	WARN(1, "upage_splat: deliberate warning for the harness self-test");
	return 0;
}

static void __exit upage_splat_exit(void)
{
}

module_init(upage_splat_init);
module_exit(upage_splat_exit);

MODULE_DESCRIPTION("upage harness self-test: a deliberate splat");
MODULE_LICENSE("GPL");
