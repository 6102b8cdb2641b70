// SPDX-License-Identifier: GPL-2.0
/*
 * upage: module init and exit, the /dev/upage misc device, and its file
 * operations. Each open() creates a space (space.c); the file holds the
 * only reference to it, and the module is pinned while any file is open
 * (fops.owner) or mapped (the VMA holds the file).
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

#include "upage_private.h"

unsigned long upage_max_space_pages = 1UL << 20;
module_param_named(max_space_pages, upage_max_space_pages, ulong, 0644);
MODULE_PARM_DESC(max_space_pages, "Most slots one space may have (default 1M = 4 GiB)");

unsigned long upage_max_total_pages = 1UL << 22;
module_param_named(max_total_pages, upage_max_total_pages, ulong, 0644);
MODULE_PARM_DESC(max_total_pages, "Most frames all spaces together may hold (default 4M = 16 GiB)");

unsigned long upage_max_user_pages = 1UL << 20;
module_param_named(max_user_pages, upage_max_user_pages, ulong, 0644);
MODULE_PARM_DESC(max_user_pages, "Most resident frames the spaces one user opened may hold (default 1M = 4 GiB)");

unsigned int upage_unmap_gap_frames;
module_param_named(unmap_gap_frames, upage_unmap_gap_frames, uint, 0644);
MODULE_PARM_DESC(unmap_gap_frames, "Frames an edit's unmap may span between two changed runs, to save an unmap call at the price of refaults (default 0: only slots that cannot be mapped)");

static int upage_fops_open(struct inode *inode, struct file *file)
{
	struct upage_space *space;

	space = upage_space_create();
	if (IS_ERR(space))
		return PTR_ERR(space);

	upage_view_add(space);
	file->private_data = space;
	/* Map through the space's own address_space, as DRM does. */
	file->f_mapping = space->inode->i_mapping;
	return 0;
}

static int upage_fops_release(struct inode *inode, struct file *file)
{
	/* Off the views' list first: no view may look at it from now on. */
	upage_view_del(file->private_data);
	upage_space_destroy(file->private_data);
	return 0;
}

/* Any close of a descriptor of the space, and exit: the trap handler's? */
static int upage_fops_flush(struct file *file, fl_owner_t id)
{
	upage_trap_flush(file->private_data, id);
	return 0;
}

static const struct file_operations upage_fops = {
	.owner = THIS_MODULE,
	.open = upage_fops_open,
	.release = upage_fops_release,
	.flush = upage_fops_flush,
	.read = upage_trap_read,
	.poll = upage_trap_poll,
	.mmap = upage_mmap,
	.unlocked_ioctl = upage_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
	/* As a memfd: msync(MS_SYNC) and fsync() have nothing to wait for. */
	.fsync = noop_fsync,
	.show_fdinfo = upage_view_show_fdinfo,
};

/*
 * Root only until udev applies udev/60-upage.rules (root:upage 0660): who
 * may use upage is the administrator's choice (docs/design.md, "Threat
 * model").
 */
static struct miscdevice upage_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "upage",
	.fops = &upage_fops,
	.mode = 0600,
};

static int __init upage_init(void)
{
	int ret;

	ret = upage_space_init();
	if (ret)
		return ret;

	ret = upage_store_mount();
	if (ret)
		goto err_space_uninit;

	ret = upage_reclaim_init();
	if (ret)
		goto err_store_unmount;

	ret = misc_register(&upage_misc);
	if (ret)
		goto err_reclaim_uninit;
	/* Last: nothing after it can fail and free the module under a reader. */
	upage_view_init();
	return 0;

err_reclaim_uninit:
	upage_reclaim_uninit();
err_store_unmount:
	upage_store_unmount();
err_space_uninit:
	upage_space_uninit();
	return ret;
}

static void __exit upage_exit(void)
{
	upage_view_uninit();
	misc_deregister(&upage_misc);
	upage_reclaim_uninit();
	upage_store_unmount();
	upage_space_uninit();
}

module_init(upage_init);
module_exit(upage_exit);

MODULE_DESCRIPTION("upage: userspace control of the physical pages behind a mapping");
MODULE_LICENSE("GPL");
MODULE_VERSION(UPAGE_VERSION);
