// SPDX-License-Identifier: GPL-2.0
/*
 * The module itself: load and unload it through libkmod, with the
 * messages modprobe gives, and describe it (sysfs, UPAGE_API).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "upagectl.h"

#ifndef ENOKEY
#define ENOKEY 126
#endif
#ifndef EKEYREJECTED
#define EKEYREJECTED 129
#endif

static const char *kernel_release(void)
{
	static struct utsname u;

	if (uname(&u))
		return "?";
	return u.release;
}

/* libkmod's own log lines would make two lines of one error. */
static void kmod_quiet(void *data, int priority, const char *file, int line,
		       const char *fn, const char *format, va_list args)
{
	(void)data, (void)priority, (void)file, (void)line, (void)fn;
	(void)format, (void)args;
}

static struct kmod_ctx *kmod_or_fail(void)
{
	struct kmod_ctx *ctx = kmod_new(NULL, NULL);

	if (!ctx)
		fail("libkmod", ENOMEM, "kmod_new failed");
	kmod_set_log_fn(ctx, kmod_quiet, NULL);
	return ctx;
}

/* Why an insert failed, as modprobe says it, and what to do. */
static void __attribute__((noreturn)) load_failed(int err, const char *path)
{
	const char *why, *todo;

	switch (err) {
	case ENOEXEC:
		why = "Exec format error (wrong kernel?)";
		todo = "build upage.ko for this kernel (make module)";
		break;
	case ENOKEY:
	case EKEYREJECTED:
		why = "Required key not available (module signature)";
		todo = "sign the module with an enrolled key, or boot without lockdown";
		break;
	case ENOENT:
		why = "unknown symbol in module, or unknown parameter (see dmesg)";
		todo = "build upage.ko against this kernel's headers";
		break;
	case EEXIST:
		why = "module upage is already loaded";
		todo = "unload it first (upagectl unload) to load another";
		break;
	case EPERM:
		why = "Operation not permitted (need root)";
		todo = "run as root (CAP_SYS_MODULE)";
		break;
	case EINVAL:
		why = "invalid parameters";
		todo = "see modinfo upage.ko and dmesg";
		break;
	default:
		why = strerror(err);
		todo = "see dmesg";
	}
	fprintf(stderr, "upagectl: load %s: %s: %s\n", path ? path : "upage",
		why, todo);
	exit(1);
}

/* Append @arg to the options string *@opts, space separated. */
static void add_option(char **opts, const char *arg)
{
	size_t len = *opts ? strlen(*opts) : 0;
	char *n = realloc(*opts, len + strlen(arg) + 2);

	if (!n)
		fail("load", ENOMEM, NULL);
	if (len)
		n[len++] = ' ';
	strcpy(n + len, arg);
	*opts = n;
}

int cmd_load(int argc, char **argv)
{
	const char *path = NULL;
	struct kmod_list *list = NULL;
	struct kmod_module *mod;
	struct kmod_ctx *ctx;
	char *opts = NULL, what[300];
	int i, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--module") && i + 1 < argc)
			path = argv[++i];
		else if (argv[i][0] != '-' && strchr(argv[i], '=') && argv[i][0] != '=')
			add_option(&opts, argv[i]);
		else
			bad_usage("bad argument '%s': use [--module PATH] [param=value...]",
				  argv[i]);
	}
	ctx = kmod_or_fail();
	if (path) {
		err = kmod_module_new_from_path(ctx, path, &mod);
		if (err < 0) {
			snprintf(what, sizeof(what), "load %s", path);
			fail(what, -err, "give the path of an upage.ko");
		}
	} else {
		err = kmod_module_new_from_lookup(ctx, "upage", &list);
		if (err < 0 || !list) {
			fprintf(stderr, "upagectl: load: module upage not found for kernel %s: run make install or dkms\n",
				kernel_release());
			exit(1);
		}
		mod = kmod_module_get_module(list);
		kmod_module_unref_list(list);
	}
	err = kmod_module_insert_module(mod, 0, opts);
	if (err < 0)
		load_failed(-err, path);
	kmod_module_unref(mod);
	kmod_unref(ctx);
	free(opts);
	return 0;
}

int cmd_unload(int argc, char **argv)
{
	struct kmod_module *mod;
	struct kmod_ctx *ctx;
	int err;

	if (argc != 1)
		command_usage(argv[0]);
	ctx = kmod_or_fail();
	err = kmod_module_new_from_name(ctx, "upage", &mod);
	if (err < 0)
		fail("unload", -err, NULL);
	err = kmod_module_remove_module(mod, 0);
	if (err == -EBUSY || err == -EAGAIN)
		fail("unload", -err, "module upage is in use: close the spaces that hold it");
	if (err == -ENOENT)
		fail("unload", -err, "module upage is not loaded");
	if (err == -EPERM)
		fail("unload", -err, "run as root (CAP_SYS_MODULE)");
	if (err < 0)
		fail("unload", -err, "see dmesg");
	kmod_module_unref(mod);
	kmod_unref(ctx);
	return 0;
}

/* The first line of @dir/@name without its newline, or NULL. */
static char *read_line(const char *dir, const char *name)
{
	char path[512], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return strdup(buf);
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static const char *const feature_names[] = {
	"alias", "alias_cow", "move", "swap", "protect", "query_by_addr",
	"discard", "evict", "store", "pin", "lazy_free", "reclaim", "track",
	"trap",
};
#define NR_FEATURES (sizeof(feature_names) / sizeof(feature_names[0]))

static void info_api(void)
{
	struct upage_api api;
	unsigned int i;
	int fd = upage_open(O_CLOEXEC), ret = 0;
	const char *todo = NULL;

	if (fd >= 0) {
		ret = upage_api(fd, &api);
		close(fd);
	} else {
		ret = fd;
	}
	if (ret == -EACCES || ret == -EPERM)
		todo = "root and members of group upage may open /dev/upage";
	else if (ret == -ENOENT || ret == -ENODEV || ret == -ENXIO)
		todo = "load the module (upagectl load)";
	if (ret) {
		if (opt_json) {
			json_str("api_error", strerror(-ret));
		} else {
			printf("api: /dev/upage: %s%s%s\n", strerror(-ret),
			       todo ? ": " : "", todo ? todo : "");
		}
		return;
	}
	if (opt_json) {
		json_begin("api");
		json_u64("version", api.out_version);
		json_u64("page_size", api.out_page_size);
		json_u64("max_pages", api.out_max_pages);
		json_u64("ioctls", api.out_ioctls);
		json_begin_array("features");
	} else {
		printf("version %u\npage_size %u\nmax_pages %llu\n"
		       "ioctls 0x%llx\nfeatures 0x%llx",
		       api.out_version, api.out_page_size,
		       (unsigned long long)api.out_max_pages,
		       (unsigned long long)api.out_ioctls,
		       (unsigned long long)api.out_features);
	}
	for (i = 0; i < 64; i++) {
		const char *name = i < NR_FEATURES ? feature_names[i] : NULL;
		char unknown[32];

		if (!(api.out_features & (1ULL << i)))
			continue;
		if (!name) {
			snprintf(unknown, sizeof(unknown), "bit%u", i);
			name = unknown;
		}
		if (opt_json)
			json_str(NULL, name);
		else
			printf(" %s", name);
	}
	if (opt_json) {
		json_end_array();
		json_end();
	} else {
		printf("\n");
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The module's parameters, sorted by name. */
static void info_parameters(const char *root)
{
	char dir[512], *names[64], *val;
	struct dirent *de;
	int n = 0, i;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/parameters", root);
	d = opendir(dir);
	if (opt_json)
		json_begin("parameters");
	while (d && (de = readdir(d)) && n < 64)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	if (d)
		closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		val = read_line(dir, names[i]);
		if (!val)
			val = strdup("?");
		if (opt_json && is_number(val))
			json_u64(names[i], strtoull(val, NULL, 10));
		else if (opt_json)
			json_str(names[i], val);
		else
			printf("param %s %s\n", names[i], val);
		free(val);
		free(names[i]);
	}
	if (opt_json)
		json_end();
}

/*
 * What is loaded: sysfs says whether and which build (version only if the
 * module sets MODULE_VERSION, which upage does not; srcversion when the
 * kernel records it), UPAGE_API what it can do. The module keeps no global
 * counters outside its spaces, so there are none to show.
 */
int cmd_info(int argc, char **argv)
{
	const char *root = sysmod_root();
	char *version, *srcversion;
	bool loaded;

	if (argc != 1)
		command_usage(argv[0]);
	loaded = access(root, F_OK) == 0;
	version = read_line(root, "version");
	srcversion = read_line(root, "srcversion");
	if (opt_json) {
		json_begin(NULL);
		json_bool("loaded", loaded);
		if (version)
			json_str("module_version", version);
		else
			json_null("module_version");
		if (srcversion)
			json_str("srcversion", srcversion);
		else
			json_null("srcversion");
	} else {
		printf("module %s\n", loaded ? "loaded" : "not loaded");
		if (version)
			printf("module_version %s\n", version);
		if (srcversion)
			printf("srcversion %s\n", srcversion);
	}
	if (loaded) {
		info_api();
		info_parameters(root);
	}
	if (opt_json) {
		json_end();
		json_finish();
	}
	free(version);
	free(srcversion);
	return 0;
}
