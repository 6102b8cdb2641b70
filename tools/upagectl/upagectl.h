/* SPDX-License-Identifier: GPL-2.0 */
/*
 * upagectl: what its files share. main.c parses the command line and runs
 * the space commands; kmod.c loads, unloads and describes the module;
 * spaces.c lists spaces from debugfs or /proc; map.c draws one process's
 * spaces as text, svg.c as SVG; json.c writes the -J output.
 */
#ifndef UPAGECTL_H
#define UPAGECTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "upage.h"

/* Global options. */
extern bool opt_json;
extern int opt_color;		/* 1 forced on, 0 off, -1 when a terminal */
extern const char *cmd_name;

/* Errors: one line, "upagectl: <what>: <strerror>: <what to do>". */
void __attribute__((noreturn)) usage(void);
void __attribute__((noreturn)) command_usage(const char *name);
void __attribute__((noreturn, format(printf, 1, 2))) bad_usage(const char *fmt, ...);
void __attribute__((noreturn)) fail(const char *what, int err, const char *todo);
void __attribute__((noreturn)) refused(int ret);
uint64_t parse_u64(const char *what, const char *s);
int parse_int(const char *name, const char *s);

/* Paths the tests may redirect (UPAGE_PROC, UPAGE_DEBUGFS, UPAGE_SYSMOD). */
const char *proc_root(void);
const char *debugfs_spaces(void);
const char *sysmod_root(void);

/* A take of another process's descriptor: -1 and errno on failure. */
int take_fd(pid_t pid, int fd);

/* One VMA of /proc/PID/maps (or a debugfs map line). */
struct vma {
	pid_t pid;
	uint64_t start, end, pgoff;	/* pgoff in pages */
	char prot[8];
};

/* The /dev/upage VMAs of @pid; returns the count, *out malloc'ed. */
int read_upage_vmas(pid_t pid, struct vma **out);
/* The fds of @pid that are /dev/upage; returns the count, *out malloc'ed. */
int read_upage_fds(pid_t pid, int **out);
/*
 * What the module says of a space (fdinfo "upage_<name>:" lines, debugfs
 * "<name> <N>" pairs), indexed as space_fields[]: F_ID is "space".
 */
enum {
	F_ID, F_OWNER, F_SLOTS, F_RESIDENT, F_EVICTED, F_PINNED, F_LAZY,
	F_TRACKED, F_DIRTY, F_TRAPPED, F_MAPPINGS, NR_FIELDS
};
extern const char *const space_fields[NR_FIELDS];
/* Fill @vals from /proc/PID/fdinfo/FD; returns the mask of fields seen. */
unsigned int read_fdinfo(pid_t pid, int fd, uint64_t *vals);

/* Whether debugfs could be read (parsed at the first call). */
bool read_debugfs(void);
/* The space debugfs says @v (pid, start, end) maps; 0 if unknown. */
uint64_t debugfs_space_of(const struct vma *v);
/* Without debugfs: whether a process's @nr_vmas may map its one space. */
bool vmas_may_be_held(const uint64_t *vals, unsigned int seen, int nr_vmas);

/* Slot states as one character each, and their names. */
char slot_char(const struct upage_slot_info *info);
struct slot_look {
	char c;
	const char *name;	/* legend */
	const char *key;	/* JSON counts */
	const char *ansi;	/* SGR parameters */
	const char *rgb;	/* SVG fill */
};
extern const struct slot_look slot_looks[];
extern const int nr_slot_looks;
const struct slot_look *slot_look(char c);

/* Slots drawn one by one; beyond, map summarises runs. */
#define PICTURE_MAX 4096

int cmd_load(int argc, char **argv);
int cmd_unload(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_spaces(int argc, char **argv);
int cmd_map(int argc, char **argv);

/* One space of a process, as map.c and svg.c draw it. */
struct map_space {
	int fd;				/* in the mapped process */
	uint64_t id;			/* 0 if the module does not say */
	uint64_t fdinfo[NR_FIELDS];	/* what fdinfo says, read_fdinfo() */
	unsigned int fdinfo_seen;
	uint64_t pages;
	struct upage_slot_info *info;	/* pages entries */
	char *chars;			/* slot_char() of each slot */
	struct vma *vmas;
	int nr_vmas;
};

/* (frame_id, slot) pairs of the slots sharing a frame, sorted; the count. */
uint64_t shared_pairs(const struct map_space *s, uint64_t **out);

/* The SVG of a process's spaces; 0, or -1 with errno. */
int svg_write(const char *path, pid_t pid, struct map_space *spaces, int nr);

/* JSON: a writer with one nesting stack; a NULL key inside an array. */
void json_begin(const char *key);		/* { */
void json_end(void);				/* } */
void json_begin_array(const char *key);		/* [ */
void json_end_array(void);			/* ] */
void json_str(const char *key, const char *val);
void json_u64(const char *key, uint64_t val);
void json_i64(const char *key, int64_t val);
void json_bool(const char *key, bool val);
void json_null(const char *key);
void json_finish(void);				/* the final newline */
void json_escape(FILE *f, const char *s);

#endif /* UPAGECTL_H */
