/*
 * files.c — the served directory (see files.h).  Files are only ever opened
 * relative to the directory descriptor, never following a symlink, never
 * blocking on a FIFO, and only served when fstat says regular file.
 *
 * The path is what is served at the time of each request: operators (and
 * the course test suites) delete and recreate the directory while the server
 * runs, so every request compares the path's device and inode with those of
 * the descriptor held and reopens on a change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

void
files_init(struct files *f, const char *path)
{
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->dirfd = -1;
	f->dev = 0;
	f->ino = 0;
	f->checked = 0;
	files_refresh(f);
}

void
files_close(struct files *f)
{
	if (f->dirfd != -1)
		close(f->dirfd);
	f->dirfd = -1;
}

void
files_refresh(struct files *f)
{
	struct stat st;
	int         fd;

	if (stat(f->path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		files_close(f);
		return;
	}
	if (f->dirfd != -1 && st.st_dev == f->dev && st.st_ino == f->ino)
		return;
	files_close(f);
	if ((fd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("served directory %s", f->path);
		return;
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		return;
	}
	f->dirfd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
}

void
files_refresh_turn(struct files *f, uint64_t turn)
{
	if (f->checked == turn && turn != 0)
		return;
	f->checked = turn;
	files_refresh(f);
}

static int
files_servable_name(const char *name)
{
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int
files_stat(struct files *f, const char *name, struct stat *st)
{
	if (f->dirfd == -1 || !files_servable_name(name))
		return -1;
	if (fstatat(f->dirfd, name, st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return S_ISREG(st->st_mode) ? 0 : -1;
}

int
files_open(struct files *f, const char *name, struct stat *st)
{
	int fd;

	if (f->dirfd == -1 || !files_servable_name(name)) {
		errno = ENOENT;
		return -1;
	}
	fd = openat(f->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		if (errno == ELOOP)
			errno = ENOENT;
		return -1;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

static int
files_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int
files_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *
files_listing(struct files *f, size_t *len)
{
	DIR           *dir = NULL;
	struct dirent *de;
	char         **names = NULL, *out = NULL;
	size_t         n = 0, cap = 0, total = sizeof("0 OK\r\n\r\n") - 1, pos;
	int            fd;

	if (f->dirfd != -1 &&
	    (fd = openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		if ((dir = fdopendir(fd)) == NULL)
			close(fd);
	}
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		struct stat st;

		if (!files_name_ok(de->d_name) || !files_servable_name(de->d_name))
			continue;
		if (de->d_type != DT_REG) {
			if (de->d_type != DT_UNKNOWN)
				continue;
			if (fstatat(f->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
			    !S_ISREG(st.st_mode))
				continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **tmp = realloc(names, ncap * sizeof(*names));
			if (tmp == NULL)
				goto fail;
			names = tmp;
			cap = ncap;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto fail;
		total += strlen(names[n]) + 2;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), files_cmp);
	if ((out = malloc(total)) == NULL)
		goto fail;
	memcpy(out, "0 OK\r\n", 6);
	pos = 6;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		memcpy(out + pos, names[i], l);
		memcpy(out + pos + l, "\r\n", 2);
		pos += l + 2;
	}
	memcpy(out + pos, "\r\n", 2);
	*len = pos + 2;
fail:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (dir != NULL)
		closedir(dir);
	return out;
}
