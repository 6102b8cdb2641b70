// SPDX-License-Identifier: GPL-2.0
/*
 * What /proc says of a process's spaces: which of its fds are /dev/upage,
 * what the module adds to their fdinfo, and which VMAs map /dev/upage.
 * /proc/PID/maps names /dev/upage for every space: a VMA there says
 * nothing of which space it maps.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upagectl.h"

#define UPAGE_DEV "/dev/upage"

const char *const space_fields[NR_FIELDS] = {
	"space", "owner", "slots", "resident", "evicted", "pinned", "lazy",
	"tracked", "dirty", "trapped", "mappings",
};

unsigned int read_fdinfo(pid_t pid, int fd, uint64_t *vals)
{
	char path[256], line[256], *colon;
	unsigned int seen = 0;
	int i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/fdinfo/%d", proc_root(), pid, fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "upage_", 6))
			continue;
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = 0;
		for (i = 0; i < NR_FIELDS; i++) {
			if (strcmp(line + 6, space_fields[i]))
				continue;
			vals[i] = strtoull(colon + 1, NULL, 10);
			seen |= 1U << i;
		}
	}
	fclose(f);
	return seen;
}

int read_upage_fds(pid_t pid, int **out)
{
	char dir[256], path[512], target[256];
	struct dirent *de;
	int n = 0, cap = 0, *fds = NULL, *grown;
	ssize_t len;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%d/fd", proc_root(), pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		if (strcmp(target, UPAGE_DEV))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			grown = realloc(fds, cap * sizeof(*fds));
			if (!grown)
				break;
			fds = grown;
		}
		fds[n++] = atoi(de->d_name);
	}
	closedir(d);
	*out = fds;
	return n;
}

int read_upage_vmas(pid_t pid, struct vma **out)
{
	unsigned long long start, end, off;
	char path[256], line[1024], perms[8], name[512];
	struct vma *v = NULL, *grown;
	long page = sysconf(_SC_PAGESIZE);
	int n = 0, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/maps", proc_root(), pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		name[0] = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %511s", &start,
			   &end, perms, &off, name) < 4 ||
		    strcmp(name, UPAGE_DEV))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown)
				break;
			v = grown;
		}
		v[n] = (struct vma){ .pid = pid, .start = start, .end = end,
				     .pgoff = off / page };
		snprintf(v[n].prot, sizeof(v[n].prot), "%s", perms);
		n++;
	}
	fclose(f);
	*out = v;
	return n;
}
