// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl dispatcher: one table row per ioctl, with its struct and the
 * end of the struct's first version. Every struct starts with
 * "__u32 size; __u32 flags;" and grows at its end (see the DOC block of
 * uapi/linux/upage.h for the rules and errnos).
 */
#include <linux/bitmap.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/upage.h>
#include <linux/vmalloc.h>

#include "upage_private.h"

/* What this module implements (struct upage_api.out_features). */
#define UPAGE_FEATURES_ALL                                               \
	(UPAGE_FEATURE_ALIAS | UPAGE_FEATURE_ALIAS_COW | UPAGE_FEATURE_MOVE | \
	 UPAGE_FEATURE_SWAP | UPAGE_FEATURE_PROTECT |                     \
	 UPAGE_FEATURE_QUERY_BY_ADDR | UPAGE_FEATURE_DISCARD |            \
	 UPAGE_FEATURE_EVICT | UPAGE_FEATURE_STORE | UPAGE_FEATURE_PIN |       \
	 UPAGE_FEATURE_LAZY_FREE | UPAGE_FEATURE_RECLAIM |                 \
	 UPAGE_FEATURE_TRACK | UPAGE_FEATURE_TRAP | UPAGE_FEATURE_POPULATE)

struct upage_ucmd {
	struct file *file;
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

/*
 * Copy @count ops of @op_size bytes each from @uops, as structs grow. On
 * -E2BIG, *error_index is the op with a non-zero tail.
 */
static struct upage_edit_op *upage_edit_copy_ops(u64 uops, u32 count,
						 u32 op_size, u32 *error_index)
{
	struct upage_edit_op *ops;
	u32 i;
	int ret;

	ops = kvmalloc_array(count, sizeof(*ops),
			     GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!ops)
		return ERR_PTR(-ENOMEM);
	if (op_size == sizeof(*ops)) {
		if (copy_from_user(ops, u64_to_user_ptr(uops),
				   (size_t)count * sizeof(*ops))) {
			kvfree(ops);
			return ERR_PTR(-EFAULT);
		}
		return ops;
	}
	for (i = 0; i < count; i++) {
		ret = copy_struct_from_user(&ops[i], sizeof(*ops),
					    u64_to_user_ptr(uops + (u64)i * op_size),
					    op_size);
		if (ret) {
			if (ret == -E2BIG)
				*error_index = i;
			kvfree(ops);
			return ERR_PTR(ret);
		}
		if (!((i + 1) % 256))
			cond_resched();
	}
	return ops;
}

static int upage_edit_checked(struct upage_ucmd *ucmd)
{
	struct upage_edit *cmd = ucmd->cmd;
	struct upage_edit_op *ops;
	int ret;

	if ((cmd->flags & ~UPAGE_EDIT_FLAGS_ALL) || cmd->__reserved)
		return -EOPNOTSUPP;
	if (!cmd->count || cmd->count > UPAGE_EDIT_MAX_OPS ||
	    cmd->op_size < offsetofend(struct upage_edit_op, __reserved))
		return -EINVAL;
	/* A bound on the tails to check for zeros, as for the struct. */
	if (cmd->op_size > PAGE_SIZE)
		return -E2BIG;

	/* Copied before any lock: the ops may lie in this space's mapping. */
	ops = upage_edit_copy_ops(cmd->ops, cmd->count, cmd->op_size,
				  &cmd->out_error_index);
	if (IS_ERR(ops))
		return PTR_ERR(ops);
	ret = upage_edit_apply(ucmd->space, ops, cmd->count, cmd->flags,
			       &cmd->out_error_index);
	kvfree(ops);
	return ret;
}

static int upage_ioctl_edit(struct upage_ucmd *ucmd)
{
	struct upage_edit *cmd = ucmd->cmd;
	int ret;

	cmd->out_error_index = U32_MAX;
	ret = upage_edit_checked(ucmd);
	if (!ret)
		return upage_ucmd_respond(ucmd, sizeof(*cmd));
	/* Report which op was refused, if one was; the call's error stands. */
	if (copy_to_user(ucmd->ubuffer + offsetof(struct upage_edit,
						  out_error_index),
			 &cmd->out_error_index, sizeof(cmd->out_error_index)))
		return -EFAULT;
	return ret;
}

/* Physical frame numbers, as /proc/pid/pagemap: for CAP_SYS_ADMIN only. */
static bool upage_may_see_pfn(struct file *file)
{
	return file_ns_capable(file, &init_user_ns, CAP_SYS_ADMIN) &&
	       capable(CAP_SYS_ADMIN);
}

#define UPAGE_QUERY_CHUNK 256

static int upage_ioctl_query(struct upage_ucmd *ucmd)
{
	struct upage_query *cmd = ucmd->cmd;
	struct upage_slot_info *info;
	bool show_pfn = upage_may_see_pfn(ucmd->file);
	u64 done, first = cmd->first;
	u32 stride = cmd->info_size;
	int ret = 0;

	if ((cmd->flags & ~UPAGE_QUERY_FLAGS_ALL) || cmd->__reserved)
		return -EOPNOTSUPP;
	if (!cmd->n || stride < offsetofend(struct upage_slot_info, __reserved))
		return -EINVAL;
	if (cmd->flags & UPAGE_QUERY_BY_ADDR) {
		ret = upage_addr_to_slot(ucmd->space, cmd->first, cmd->n,
					 &first);
		if (ret)
			return ret;
	}
	cmd->out_slot = first;
	if (!upage_space_range_ok(ucmd->space, first, cmd->n))
		return -EINVAL;

	info = kmalloc_array(UPAGE_QUERY_CHUNK, sizeof(*info), GFP_KERNEL);
	if (!info)
		return -ENOMEM;
	/* Chunk by chunk: the lock is never held while copying out. */
	for (done = 0; done < cmd->n; done += UPAGE_QUERY_CHUNK) {
		u64 i, nr = min_t(u64, cmd->n - done, UPAGE_QUERY_CHUNK);
		void __user *out = u64_to_user_ptr(cmd->info + done * stride);

		/* Each chunk is checked again: the space may shrink meanwhile. */
		ret = upage_space_query(ucmd->space, first + done, nr, show_pfn,
					info);
		if (ret)
			break;
		for (i = 0; i < nr; i++, out += stride) {
			if (copy_to_user(out, &info[i], sizeof(*info)) ||
			    (stride > sizeof(*info) &&
			     clear_user(out + sizeof(*info),
					stride - sizeof(*info)))) {
				ret = -EFAULT;
				goto out_free;
			}
		}
		cond_resched();
	}
out_free:
	kfree(info);
	if (ret)
		return ret;
	return upage_ucmd_respond(ucmd, sizeof(*cmd));
}

static int upage_ioctl_stats(struct upage_ucmd *ucmd)
{
	struct upage_stats *cmd = ucmd->cmd;
	struct upage_space *space = ucmd->space;

	if (cmd->flags)
		return -EOPNOTSUPP;
	mutex_lock(&space->lock);
	cmd->out_pages = space->nr_pages;
	cmd->out_frames = atomic_long_read(&space->nr_frames);
	mutex_unlock(&space->lock);
	cmd->out_faults = atomic64_read(&space->stats.faults);
	cmd->out_zero_fills = atomic64_read(&space->stats.zero_fills);
	cmd->out_cow_breaks = atomic64_read(&space->stats.cow_breaks);
	cmd->out_edits = atomic64_read(&space->stats.edits);
	cmd->out_batches = atomic64_read(&space->stats.batches);
	cmd->out_evictions = atomic64_read(&space->stats.evictions);
	cmd->out_page_ins = atomic64_read(&space->stats.page_ins);
	cmd->out_bytes_written = atomic64_read(&space->stats.bytes_written);
	cmd->out_bytes_read = atomic64_read(&space->stats.bytes_read);
	cmd->out_reclaims = atomic64_read(&space->stats.reclaims);
	cmd->out_shrinker_evictions =
		atomic64_read(&space->stats.shrinker_evictions);
	cmd->out_tracked_writes = atomic64_read(&space->stats.tracked_writes);
	cmd->out_traps = atomic64_read(&space->stats.traps);
	cmd->out_traps_resolved = atomic64_read(&space->stats.traps_resolved);
	cmd->out_traps_timed_out = atomic64_read(&space->stats.traps_timed_out);
	cmd->out_populated = atomic64_read(&space->stats.populated);
	return upage_ucmd_respond(ucmd, sizeof(*cmd));
}

static int upage_ioctl_residency(struct upage_ucmd *ucmd)
{
	struct upage_residency *cmd = ucmd->cmd;
	int ret;

	if ((cmd->flags & ~UPAGE_RES_FLAGS_ALL) || cmd->__reserved)
		return -EOPNOTSUPP;
	if (!cmd->n ||
	    ((cmd->flags & UPAGE_RES_POPULATE) && cmd->op != UPAGE_RES_PREFETCH))
		return -EINVAL;
	switch (cmd->op) {
	case UPAGE_RES_EVICT:
		ret = upage_backing_evict(ucmd->space, cmd->first, cmd->n,
					  &cmd->out_frames);
		break;
	case UPAGE_RES_PREFETCH:
		ret = upage_backing_prefetch(ucmd->space, cmd->first, cmd->n,
					     &cmd->out_frames);
		if (!ret && (cmd->flags & UPAGE_RES_POPULATE))
			upage_populate_range(ucmd->space, cmd->first, cmd->n);
		break;
	case UPAGE_RES_PIN:
		ret = upage_backing_pin(ucmd->space, cmd->first, cmd->n,
					&cmd->out_frames);
		break;
	case UPAGE_RES_UNPIN:
		ret = upage_backing_unpin(ucmd->space, cmd->first, cmd->n,
					  &cmd->out_frames);
		break;
	case UPAGE_RES_LAZY_FREE:
		ret = upage_lazy_free(ucmd->space, cmd->first, cmd->n,
				      &cmd->out_frames);
		break;
	default:
		return -EOPNOTSUPP;
	}
	/* out_frames counts what was done, on failure too. */
	if (upage_ucmd_respond(ucmd, sizeof(*cmd)))
		return -EFAULT;
	return ret;
}

static int upage_ioctl_store(struct upage_ucmd *ucmd)
{
	struct upage_store *cmd = ucmd->cmd;

	if ((cmd->flags & ~UPAGE_STORE_FLAGS_ALL) || cmd->__reserved)
		return -EOPNOTSUPP;
	return upage_backing_set_store(ucmd->space, cmd->fd, cmd->offset,
				       cmd->flags);
}

static int upage_ioctl_track(struct upage_ucmd *ucmd)
{
	struct upage_track *cmd = ucmd->cmd;

	if (cmd->flags || cmd->__reserved)
		return -EOPNOTSUPP;
	return upage_track(ucmd->space, cmd->op, cmd->first, cmd->n);
}

static int upage_ioctl_dirty(struct upage_ucmd *ucmd)
{
	struct upage_dirty *cmd = ucmd->cmd;
	bool clear = cmd->flags & UPAGE_DIRTY_CLEAR;
	unsigned long *bitmap;
	size_t words;
	u64 *out;
	int ret;

	if (cmd->flags & ~UPAGE_DIRTY_FLAGS_ALL)
		return -EOPNOTSUPP;
	/* Bounded before allocating; the range is checked under the lock. */
	if (!cmd->n || cmd->n > READ_ONCE(upage_max_space_pages))
		return -EINVAL;
	words = DIV_ROUND_UP(cmd->n, 64);
	bitmap = bitmap_zalloc(cmd->n, GFP_KERNEL_ACCOUNT);
	out = kvmalloc_array(words, sizeof(*out), GFP_KERNEL_ACCOUNT);
	if (!bitmap || !out) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = upage_dirty(ucmd->space, cmd->first, cmd->n, clear, bitmap,
			  &cmd->out_dirty);
	if (ret)
		goto out_free;
	bitmap_to_arr64(out, bitmap, cmd->n);
	if (copy_to_user(u64_to_user_ptr(cmd->bitmap), out,
			 words * sizeof(*out)) ||
	    upage_ucmd_respond(ucmd, sizeof(*cmd))) {
		/* The report is lost: lose no write with it. */
		if (clear)
			upage_track_undo_clear(ucmd->space, cmd->first, cmd->n,
					       bitmap);
		ret = -EFAULT;
	}
out_free:
	kvfree(out);
	bitmap_free(bitmap);
	return ret;
}

static int upage_ioctl_trap(struct upage_ucmd *ucmd)
{
	struct upage_trap *cmd = ucmd->cmd;

	if (cmd->flags & ~UPAGE_TRAP_FLAGS_ALL)
		return -EOPNOTSUPP;
	return upage_trap_set(ucmd->space, cmd->first, cmd->n, cmd->access,
			      cmd->flags, cmd->timeout_ms);
}

static int upage_ioctl_resolve(struct upage_ucmd *ucmd)
{
	struct upage_resolve *cmd = ucmd->cmd;
	int ret;

	if ((cmd->flags & ~UPAGE_RESOLVE_FLAGS_ALL) || cmd->__reserved)
		return -EOPNOTSUPP;
	ret = upage_trap_resolve(ucmd->space, cmd->action, cmd->flags,
				 cmd->first, cmd->n, cmd->src, &cmd->out_woken);
	if (ret)
		return ret;
	return upage_ucmd_respond(ucmd, sizeof(*cmd));
}

union upage_ucmd_buffer {
	struct upage_api api;
	struct upage_resize resize;
	struct upage_edit edit;
	struct upage_query query;
	struct upage_stats stats;
	struct upage_residency residency;
	struct upage_store store;
	struct upage_track track;
	struct upage_dirty dirty;
	struct upage_trap trap;
	struct upage_resolve resolve;
};

struct upage_ioctl_op {
	unsigned int size;
	unsigned int min_size;
	unsigned int ioctl_num;
	bool outputs;			/* the struct has out_* fields */
	int (*execute)(struct upage_ucmd *ucmd);
};

#define UPAGE_IOCTL_OP_OUT(_ioctl, _fn, _struct, _last, _out)                \
	[_IOC_NR(_ioctl) - UPAGE_CMD_BASE] = {                               \
		.size = sizeof(_struct) +                                    \
			BUILD_BUG_ON_ZERO(sizeof(union upage_ucmd_buffer) <  \
					  sizeof(_struct)),                  \
		.min_size = offsetofend(_struct, _last),                     \
		.ioctl_num = _ioctl,                                         \
		.outputs = _out,                                             \
		.execute = _fn,                                              \
	}
#define UPAGE_IOCTL_OP(_ioctl, _fn, _struct, _last) \
	UPAGE_IOCTL_OP_OUT(_ioctl, _fn, _struct, _last, true)
#define UPAGE_IOCTL_OP_IN(_ioctl, _fn, _struct, _last) \
	UPAGE_IOCTL_OP_OUT(_ioctl, _fn, _struct, _last, false)

static const struct upage_ioctl_op upage_ioctl_ops[] = {
	UPAGE_IOCTL_OP(UPAGE_API, upage_ioctl_api, struct upage_api,
		       out_max_pages),
	UPAGE_IOCTL_OP(UPAGE_RESIZE, upage_ioctl_resize, struct upage_resize,
		       out_old_pages),
	UPAGE_IOCTL_OP(UPAGE_EDIT, upage_ioctl_edit, struct upage_edit,
		       __reserved),
	UPAGE_IOCTL_OP(UPAGE_QUERY, upage_ioctl_query, struct upage_query,
		       out_slot),
	UPAGE_IOCTL_OP(UPAGE_STATS, upage_ioctl_stats, struct upage_stats,
		       out_batches),
	UPAGE_IOCTL_OP(UPAGE_RESIDENCY, upage_ioctl_residency,
		       struct upage_residency, out_frames),
	UPAGE_IOCTL_OP_IN(UPAGE_STORE, upage_ioctl_store, struct upage_store,
			  offset),
	UPAGE_IOCTL_OP_IN(UPAGE_TRACK, upage_ioctl_track, struct upage_track,
			  n),
	UPAGE_IOCTL_OP(UPAGE_DIRTY, upage_ioctl_dirty, struct upage_dirty,
		       out_dirty),
	UPAGE_IOCTL_OP_IN(UPAGE_TRAP, upage_ioctl_trap, struct upage_trap,
			  timeout_ms),
	UPAGE_IOCTL_OP(UPAGE_RESOLVE, upage_ioctl_resolve,
		       struct upage_resolve, out_woken),
};

static int upage_ioctl_api(struct upage_ucmd *ucmd)
{
	struct upage_api *cmd = ucmd->cmd;
	unsigned int i;

	if (cmd->flags)
		return -EOPNOTSUPP;
	cmd->out_version = UPAGE_API_VERSION;
	cmd->out_page_size = PAGE_SIZE;
	cmd->out_features = UPAGE_FEATURES_ALL;
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
		.file = file,
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
	/* As openat2: a bound on the tail that must be checked for zeros. */
	if (ucmd.user_size > PAGE_SIZE)
		return -E2BIG;
	ret = copy_struct_from_user(ucmd.cmd, op->size, ucmd.ubuffer,
				    ucmd.user_size);
	if (ret)
		return ret;
	/*
	 * The outputs are written back once the call has taken effect; if
	 * the struct could not be written then, the call would fail with
	 * EFAULT having changed something. Write it back unchanged first
	 * (it may lie in a read-only mapping, or in a protected slot of this
	 * very space), before any lock is taken and anything changes.
	 */
	if (op->outputs &&
	    copy_to_user(ucmd.ubuffer, ucmd.cmd,
			 min_t(size_t, ucmd.user_size, op->size)))
		return -EFAULT;
	return op->execute(&ucmd);
}
