/*
 * libFuzzer target for the queue journal's replay (queue/journal.c and
 * queue/queue_journal.c): a segment file of arbitrary records is replayed
 * by a queue open, which checks each record, decodes each message's
 * record, adds and removes overlay entries and checkpoints them into
 * LMDB. It must never read outside the file's map nor crash. The input's
 * records get a valid magic, segment number and CRC first (the first one
 * made the segment's salt record, each other header's length taken as
 * given), so that the payloads are reached; when the first byte's low
 * three bits are set they are left as they are, so that bad ones (and
 * the scan past them) are seen.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/journal.h"
#include "queue/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

/* What one input leaves in dir: every file of journal/ (segments, spares,
 * damaged-*), the LMDB files; with locks, the lock files too. */
static void fuzz_rm(const char *dir, bool locks)
{
	static const char *const files[] = { "data.mdb", "lock.mdb", "ringmta.lock",
					     "ringmta.tools.lock" };
	char p[400];
	struct dirent *e;
	DIR *d;

	snprintf(p, sizeof(p), "%s/journal", dir);
	if ((d = opendir(p)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/journal/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) - (locks ? 0 : 2); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
}

/* At exit: the directory goes (libFuzzer exits through exit()). */
static void fuzz_cleanup(void)
{
	char p[128];

	if (g_dir[0] == '\0')
		return;
	fuzz_rm(g_dir, true);
	snprintf(p, sizeof(p), "%s/journal", g_dir);
	rmdir(p);
	rmdir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *seg;
	char path[128], err[256];
	struct queue *q;
	size_t off = 0;
	FILE *f;

	if (size > (1u << 20))
		return 0;
	if (g_dir[0] == '\0') {
		snprintf(g_dir, sizeof(g_dir), "/dev/shm/ringmta-fuzz-journal-%d", (int)getpid());
		mkdir(g_dir, 0700);
		snprintf(path, sizeof(path), "%s/journal", g_dir);
		mkdir(path, 0700);
		atexit(fuzz_cleanup);
	}
	fuzz_rm(g_dir, false);
	seg = malloc(size ? size : 1);
	memcpy(seg, data, size);
	while (off + JNL_HDR_SIZE <= size) {
		uint32_t len, magic = 0x314a4d52u, crc;
		uint64_t one = 1;
		struct iovec pl;

		memcpy(&len, seg + off + 16, 4);
		if (off == 0)
			len = 8;	/* the salt record */
		if (len > size - off - JNL_HDR_SIZE)
			len = (uint32_t)(size - off - JNL_HDR_SIZE);
		if ((data[0] & 0x7) != 0x7 && (off > 0 || len == 8)) {
			memcpy(seg + off, &magic, 4);
			memcpy(seg + off + 8, &one, 8);
			memcpy(seg + off + 16, &len, 4);
			seg[off + 20] = off == 0 ? JNL_SEG : (unsigned char)(1 + (seg[off + 20] & 1));
			pl = (struct iovec){ seg + off + JNL_HDR_SIZE, len };
			crc = jnl_rec_crc(off == 0 ? NULL : seg + JNL_HDR_SIZE, seg + off, &pl, 1);
			memcpy(seg + off + 4, &crc, 4);
		}
		off += JNL_HDR_SIZE + ((len + 7u) & ~7u);
	}
	snprintf(path, sizeof(path), "%s/journal/0000000000000001.seg", g_dir);
	f = fopen(path, "wb");
	if (f != NULL) {
		fwrite(seg, 1, size, f);
		fclose(f);
	}
	free(seg);
	/* Exclusive, not the committer: replay, checkpoint, close. */
	if (queue_open(&q, g_dir, 16u << 20, QUEUE_F_EXCLUSIVE, err, sizeof(err)) == 0) {
		uint64_t n;

		(void)queue_admin_count(q, &n);
		queue_close(&q);
	}
	return 0;
}
