// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl dispatcher: one table row per ioctl, with its struct and the
 * end of the struct's first version. Every struct starts with
 * "__u32 size; __u32 flags;" and grows at its end (see the DOC block of
 * uapi/linux/upage.h for the rules and errnos).
 */
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/upage.h>

#include "upage_private.h"

struct upage_ucmd {
	struct upage_space *space;
	void __user *ubuffer;
	u32 user_size;
	void *cmd;
};

/* Write the struct, outputs included, back to the user. */
static int upage_ucmd_respond(struct upage_ucmd *ucmd, size_t cmd_len)
{
	if (copy_to_user(ucmd->ubuffer, ucmd->cmd,
			 min_t(size_t, ucmd->user_size, cmd_len)))
		return -EFAULT;
	return 0;
}

static int upage_ioctl_api(struct upage_ucmd *ucmd);

static int upage_ioctl_resize(struct upage_ucmd *ucmd)
{
	struct upage_resize *cmd = ucmd->cmd;
	int ret;

	if (cmd->flags)
		return -EOPNOTSUPP;
	ret = upage_space_resize(ucmd->space, cmd->pages, &cmd->out_old_pages);
	if (ret)
		return ret;
	return upage_ucmd_respond(ucmd, sizeof(*cmd));
}

union upage_ucmd_buffer {
	struct upage_api api;
	struct upage_resize resize;
};

struct upage_ioctl_op {
	unsigned int size;
	unsigned int min_size;
	unsigned int ioctl_num;
	int (*execute)(struct upage_ucmd *ucmd);
};

#define UPAGE_IOCTL_OP(_ioctl, _fn, _struct, _last)                          \
	[_IOC_NR(_ioctl) - UPAGE_CMD_BASE] = {                               \
		.size = sizeof(_struct) +                                    \
			BUILD_BUG_ON_ZERO(sizeof(union upage_ucmd_buffer) <  \
					  sizeof(_struct)),                  \
		.min_size = offsetofend(_struct, _last),                     \
		.ioctl_num = _ioctl,                                         \
		.execute = _fn,                                              \
	}

static const struct upage_ioctl_op upage_ioctl_ops[] = {
	UPAGE_IOCTL_OP(UPAGE_API, upage_ioctl_api, struct upage_api,
		       out_max_pages),
	UPAGE_IOCTL_OP(UPAGE_RESIZE, upage_ioctl_resize, struct upage_resize,
		       out_old_pages),
};

static int upage_ioctl_api(struct upage_ucmd *ucmd)
{
	struct upage_api *cmd = ucmd->cmd;
	unsigned int i;

	if (cmd->flags)
		return -EOPNOTSUPP;
	cmd->out_version = UPAGE_API_VERSION;
	cmd->out_page_size = PAGE_SIZE;
	cmd->out_features = 0;
	cmd->out_ioctls = 0;
	for (i = 0; i < ARRAY_SIZE(upage_ioctl_ops); i++) {
		if (upage_ioctl_ops[i].execute)
			cmd->out_ioctls |= 1ULL << (UPAGE_CMD_BASE + i);
	}
	cmd->out_max_pages = READ_ONCE(upage_max_space_pages);
	return upage_ucmd_respond(ucmd, sizeof(*cmd));
}

long upage_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	const struct upage_ioctl_op *op;
	union upage_ucmd_buffer buf;
	struct upage_ucmd ucmd = {
		.space = file->private_data,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};
	unsigned int nr = _IOC_NR(cmd);
	int ret;

	if (_IOC_TYPE(cmd) != UPAGE_TYPE || nr < UPAGE_CMD_BASE ||
	    nr - UPAGE_CMD_BASE >= ARRAY_SIZE(upage_ioctl_ops))
		return -ENOTTY;
	op = &upage_ioctl_ops[nr - UPAGE_CMD_BASE];
	if (op->ioctl_num != cmd)
		return -ENOTTY;

	if (get_user(ucmd.user_size, (u32 __user *)ucmd.ubuffer))
		return -EFAULT;
	if (ucmd.user_size < op->min_size)
		return -EINVAL;
	ret = copy_struct_from_user(ucmd.cmd, op->size, ucmd.ubuffer,
				    ucmd.user_size);
	if (ret)
		return ret;
	return op->execute(&ucmd);
}
