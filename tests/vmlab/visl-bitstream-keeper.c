// SPDX-License-Identifier: MPL-2.0
/*
 * LD_PRELOAD library for the visl differential tests: copies visl's debugfs
 * bitstream dumps (one blob per decoded OUTPUT buffer) out of debugfs just before
 * the decoder stops streaming, which is when visl deletes them.
 *
 *   MEDIAPASS_VISL_BITSTREAM_OUT=DIR LD_PRELOAD=visl-bitstream-keeper.so COMMAND...
 *
 * Needs the kernel command line visl.bitstream_trace_frame_start=0
 * visl.bitstream_trace_nframes=<large>. visl then keeps, per OUTPUT buffer it
 * decodes, /sys/kernel/debug/visl/bitstream/bitstream<S>: the first
 * vb2_get_plane_payload bytes of plane 0, S counting OUTPUT buffers from 0 since
 * the OUTPUT queue's last STREAMON. It deletes them all when either queue stops
 * streaming (VIDIOC_STREAMOFF, or close() of a streaming fd) unless
 * visl.keep_bitstream_buffers=1; keeping them instead would make the next run's
 * same-named blobs fail to be created (debugfs: EEXIST), so two decoders could not
 * be compared in one boot.
 *
 * Before every VIDIOC_STREAMOFF and every close() of an fd that streamed, this
 * copies each blob present to DIR/<E>-<S>.bin, E counting the OUTPUT STREAMONs of
 * the process (from 0), so a decoder restarting its OUTPUT queue cannot overwrite
 * earlier copies. Sorting by (E, S) gives the OUTPUT buffers in decoding order.
 * Anything that could not be copied is written to DIR/error, never skipped.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEBUGFS_DIR "/sys/kernel/debug/visl/bitstream"
#define MAX_FDS 1024

typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*close_fn)(int);

/* fds that called VIDIOC_STREAMON: closing one stops streaming too. */
static unsigned char streamed[MAX_FDS];
static int output_streamons;

static void report(const char *out, const char *fmt, ...)
{
	char path[4096];
	va_list args;
	FILE *f;

	snprintf(path, sizeof(path), "%s/error", out);
	f = fopen(path, "ae");
	if (!f)
		f = stderr;
	fprintf(f, "visl-bitstream-keeper: ");
	va_start(args, fmt);
	vfprintf(f, fmt, args);
	va_end(args);
	fputc('\n', f);
	if (f != stderr)
		fclose(f);
}

/* Copies the file `from` to `to`; 0 on success. */
static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, out, rc = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		syscall(SYS_close, in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, n - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = -1;
				break;
			}
			done += w;
		}
		if (rc)
			break;
	}
	/* Our own close() would recurse into keep_blobs' bookkeeping: use the syscall. */
	syscall(SYS_close, in);
	if (syscall(SYS_close, out) < 0)
		rc = -1;
	return rc;
}

static void keep_blobs(const char *why)
{
	const char *out = getenv("MEDIAPASS_VISL_BITSTREAM_OUT");
	char from[4096], to[4096];
	struct dirent *entry;
	int epoch = output_streamons > 0 ? output_streamons - 1 : 0;
	DIR *dir;

	if (!out)
		return;
	dir = opendir(DEBUGFS_DIR);
	if (!dir) {
		report(out, "%s: cannot list " DEBUGFS_DIR ": %s", why, strerror(errno));
		return;
	}
	while ((entry = readdir(dir))) {
		unsigned int sequence;
		char end;

		if (sscanf(entry->d_name, "bitstream%u%c", &sequence, &end) != 1)
			continue;
		snprintf(from, sizeof(from), DEBUGFS_DIR "/%s", entry->d_name);
		snprintf(to, sizeof(to), "%s/%d-%u.bin", out, epoch, sequence);
		if (copy_file(from, to) < 0)
			report(out, "%s: copying %s to %s: %s", why, from, to, strerror(errno));
	}
	closedir(dir);
}

int ioctl(int fd, unsigned long request, ...)
{
	static ioctl_fn real;
	va_list args;
	void *arg;
	int rc;

	va_start(args, request);
	arg = va_arg(args, void *);
	va_end(args);
	if (!real)
		real = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}

	if (request == VIDIOC_STREAMOFF)
		keep_blobs("VIDIOC_STREAMOFF");
	rc = real(fd, request, arg);
	if (request == VIDIOC_STREAMON && rc == 0 && arg) {
		if (fd >= 0 && fd < MAX_FDS)
			streamed[fd] = 1;
		if (V4L2_TYPE_IS_OUTPUT(*(const unsigned int *)arg))
			__atomic_fetch_add(&output_streamons, 1, __ATOMIC_SEQ_CST);
	}
	return rc;
}

int close(int fd)
{
	static close_fn real;

	if (!real)
		real = (close_fn)dlsym(RTLD_NEXT, "close");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (fd >= 0 && fd < MAX_FDS && streamed[fd]) {
		streamed[fd] = 0;
		keep_blobs("close");
	}
	return real(fd);
}
