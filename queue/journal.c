/*
 * journal.c: segment files, grouped appends with one fdatasync per
 * segment touched, and the replay that stops at the first bad record.
 * See journal.h for the format and the threads.
 */
#include "queue/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define JNL_MAGIC 0x314a4d52u		/* "RMJ1" little-endian */
#define JNL_SPARES_MAX 2u		/* segments kept to be written again */
#define JNL_IOV_MAX 1024u		/* per pwritev(2) (IOV_MAX) */

/* A record queued for the next commit. */
struct jnl_pending {
	struct jnl_seg *jp_seg;
	uint64_t jp_off;		/* of the header */
	unsigned char jp_hdr[JNL_HDR_SIZE];
	unsigned jp_part0, jp_nparts;	/* in j_parts */
	unsigned jp_pad;		/* zero bytes after the payload */
};

struct jnl {
	char *j_dir;
	int j_dirfd;
	struct jnl_seg *j_head, *j_tail;	/* every open segment, in order */
	struct jnl_seg *j_active;	/* written now; NULL: start one */
	uint64_t j_next_seq;
	unsigned j_nspares;
	uint64_t j_spares[JNL_SPARES_MAX];	/* "spare.%x" in j_dir: no allocation */
	struct jnl_pending *j_pend;
	unsigned j_npend, j_pendcap;
	struct iovec *j_parts;
	unsigned j_nparts, j_partcap;
	bool j_ro;			/* a reader's view (jnl_open) */
	unsigned j_groups;		/* commits so far (test hook) */
	unsigned j_tear_at;		/* test hook: 0 off */
};

/* --- CRC-32C ----------------------------------------------------------- */

static uint32_t jnl_crc_table[256];

static void jnl_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		jnl_crc_table[i] = c;
	}
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t jnl_crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t jnl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const unsigned char *p = buf;

	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~jnl_crc_hw(crc, p, len);
#endif
	pthread_once(&once, jnl_crc_init);
	while (len-- > 0)
		crc = jnl_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t jnl_rec_crc(const unsigned char salt[8], const unsigned char *hdr,
		     const struct iovec *parts, unsigned nparts)
{
	uint32_t crc = salt != NULL ? jnl_crc32c(0, salt, 8) : 0;

	crc = jnl_crc32c(crc, hdr + 8, JNL_HDR_SIZE - 8);
	for (unsigned i = 0; i < nparts; i++)
		crc = jnl_crc32c(crc, parts[i].iov_base, parts[i].iov_len);
	return crc;
}

/* --- headers ------------------------------------------------------------ */

static void jnl_put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);	/* the journal is local: host order */
}

static void jnl_put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t jnl_get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t jnl_get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint64_t jnl_pad8(uint64_t n)
{
	return (n + 7u) & ~(uint64_t)7u;
}

/* --- segments ----------------------------------------------------------- */

static void jnl_seg_free(struct jnl_seg *s)
{
	if (s->js_map != NULL)
		munmap((void *)s->js_map, s->js_size);
	if (s->js_fd >= 0)
		close(s->js_fd);
	free(s);
}

static void jnl_seg_name(char *buf, size_t len, uint64_t seq)
{
	snprintf(buf, len, "%016" PRIx64 ".seg", seq);
}

/* A spare segment's file name: the number it had as a segment. */
static void jnl_spare_name(char *buf, size_t len, uint64_t seq)
{
	snprintf(buf, len, "spare.%" PRIx64, seq);
}

/*
 * Open and map a segment file (by its name in j_dir). A reader (j_ro)
 * holds a shared flock on it, which keeps the writer from recycling it
 * (jnl_recycle), and checks that the name still names the file it
 * locked: -ESTALE when it was recycled meanwhile.
 */
static int jnl_seg_map(struct jnl *j, const char *name, uint64_t seq, struct jnl_seg **s_r)
{
	struct jnl_seg *s = calloc(1, sizeof(*s));
	struct stat st, now;
	void *map;
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->js_seq = seq;
	s->js_fd = openat(j->j_dirfd, name, (j->j_ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (s->js_fd < 0 || fstat(s->js_fd, &st) < 0) {
		rc = -errno;
		jnl_seg_free(s);
		return rc;
	}
	if (j->j_ro && (flock(s->js_fd, LOCK_SH | LOCK_NB) < 0 ||
			fstatat(j->j_dirfd, name, &now, 0) < 0 || now.st_ino != st.st_ino ||
			now.st_dev != st.st_dev)) {
		jnl_seg_free(s);
		return -ESTALE;
	}
	s->js_size = (uint64_t)st.st_size;
	if (s->js_size > 0) {
		map = mmap(NULL, s->js_size, PROT_READ, MAP_SHARED, s->js_fd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			jnl_seg_free(s);
			return rc;
		}
		s->js_map = map;
	}
	*s_r = s;
	return 0;
}

static void jnl_seg_append(struct jnl *j, struct jnl_seg *s)
{
	s->js_next = NULL;
	if (j->j_tail != NULL)
		j->j_tail->js_next = s;
	else
		j->j_head = s;
	j->j_tail = s;
}

/*
 * A new segment of at least need bytes: a spare renamed, or a new file
 * allocated; its name made durable (fsync of the directory) before any
 * record in it can be acknowledged.
 */
static int jnl_seg_new(struct jnl *j, uint64_t need)
{
	uint64_t size = need > JNL_SEG_SIZE ? need : JNL_SEG_SIZE;
	char name[64];
	struct jnl_seg *s = NULL;
	struct stat st;
	int fd, rc = -ENOENT;

	jnl_seg_name(name, sizeof(name), j->j_next_seq);
	while (j->j_nspares > 0) {
		char sp[64];

		jnl_spare_name(sp, sizeof(sp), j->j_spares[--j->j_nspares]);
		if (fstatat(j->j_dirfd, sp, &st, 0) == 0 && (uint64_t)st.st_size >= size &&
		    renameat(j->j_dirfd, sp, j->j_dirfd, name) == 0) {
			rc = 0;
			break;
		}
		(void)unlinkat(j->j_dirfd, sp, 0);
	}
	if (rc != 0) {
		fd = openat(j->j_dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
		/* Allocated now: a full disk refuses the segment here, not a
		 * write into it later. */
		if (fallocate(fd, 0, 0, (off_t)size) < 0 && errno != EOPNOTSUPP) {
			rc = -errno;
			close(fd);
			(void)unlinkat(j->j_dirfd, name, 0);
			return rc;
		}
		if (errno == EOPNOTSUPP && ftruncate(fd, (off_t)size) < 0) {
			rc = -errno;
			close(fd);
			(void)unlinkat(j->j_dirfd, name, 0);
			return rc;
		}
		close(fd);
	}
	if (fsync(j->j_dirfd) < 0 || (rc = jnl_seg_map(j, name, j->j_next_seq, &s)) < 0) {
		rc = rc < 0 ? rc : -errno;
		(void)unlinkat(j->j_dirfd, name, 0);
		return rc;
	}
	if (getrandom(s->js_salt, sizeof(s->js_salt), 0) != (ssize_t)sizeof(s->js_salt)) {
		uint64_t t = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;

		memcpy(s->js_salt, &t, 8);	/* never fails on Linux >= 3.17 */
	}
	s->js_salted = true;
	j->j_next_seq++;
	jnl_seg_append(j, s);
	j->j_active = s;
	return 0;
}

/* --- open, close, replay ------------------------------------------------ */

int jnl_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool jnl_seg_file(const char *name, uint64_t *seq_r)
{
	char *end;

	if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
		return false;
	*seq_r = strtoull(name, &end, 16);
	return end == name + 16;
}

bool jnl_dir_has_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t seq;
	bool any = false;

	if (d == NULL)
		return false;
	while (!any && (e = readdir(d)) != NULL)
		any = jnl_seg_file(e->d_name, &seq);
	closedir(d);
	return any;
}

int jnl_open(struct jnl **j_r, const char *dir, bool ro, char *err, size_t errlen)
{
	struct jnl *j = calloc(1, sizeof(*j));
	uint64_t *seqs = NULL, seq;
	unsigned n = 0, cap = 0;
	struct dirent *e;
	DIR *d;
	int rc;

	*j_r = NULL;
	if (j == NULL)
		return -ENOMEM;
	j->j_dirfd = -1;
	j->j_ro = ro;
	j->j_dir = strdup(dir);
	if (j->j_dir == NULL) {
		free(j);
		return -ENOMEM;
	}
	if ((!ro && mkdir(dir, 0750) < 0 && errno != EEXIST) ||
	    (j->j_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (d = fdopendir(dup(j->j_dirfd))) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "queue journal %s: %s", dir, strerror(errno));
		jnl_close(&j);
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		if (!ro && strncmp(e->d_name, "spare.", 6) == 0) {
			char *end, back[64];
			uint64_t was = strtoull(e->d_name + 6, &end, 16);

			/* New segments are numbered above any number a spare
			 * ever had, so its old records never pass for new. */
			if (was != UINT64_MAX && was + 1 > j->j_next_seq)
				j->j_next_seq = was + 1;
			/* Kept when its name says its number (the spare's name
			 * is made from it again) and there is room; else gone. */
			jnl_spare_name(back, sizeof(back), was);
			if (*end == '\0' && strcmp(back, e->d_name) == 0 &&
			    j->j_nspares < JNL_SPARES_MAX)
				j->j_spares[j->j_nspares++] = was;
			else
				(void)unlinkat(j->j_dirfd, e->d_name, 0);
			continue;
		}
		if (!jnl_seg_file(e->d_name, &seq))
			continue;
		if (n == cap) {
			uint64_t *ns = realloc(seqs, (cap = cap ? cap * 2 : 16) * sizeof(*ns));

			if (ns == NULL) {
				closedir(d);
				free(seqs);
				jnl_close(&j);
				return -ENOMEM;
			}
			seqs = ns;
		}
		seqs[n++] = seq;
	}
	closedir(d);
	if (n > 0)
		qsort(seqs, n, sizeof(*seqs), jnl_u64_cmp);
	for (unsigned i = 0; i < n; i++) {
		struct jnl_seg *s;
		char name[64];

		jnl_seg_name(name, sizeof(name), seqs[i]);
		rc = jnl_seg_map(j, name, seqs[i], &s);
		if (ro && (rc == -ESTALE || rc == -ENOENT))
			continue;	/* recycled since readdir: before the position */
		if (rc < 0) {
			snprintf(err, errlen, "queue journal %s/%s: %s", dir, name, strerror(-rc));
			free(seqs);
			jnl_close(&j);
			return rc;
		}
		jnl_seg_append(j, s);
		if (seqs[i] + 1 > j->j_next_seq)
			j->j_next_seq = seqs[i] + 1;
	}
	free(seqs);
	if (j->j_next_seq == 0)
		j->j_next_seq = 1;
	*j_r = j;
	return 0;
}

void jnl_close(struct jnl **jp)
{
	struct jnl *j = *jp;

	if (j == NULL)
		return;
	while (j->j_head != NULL) {
		struct jnl_seg *s = j->j_head;

		j->j_head = s->js_next;
		jnl_seg_free(s);
	}
	free(j->j_pend);
	free(j->j_parts);
	if (j->j_dirfd >= 0)
		close(j->j_dirfd);
	free(j->j_dir);
	free(j);
	*jp = NULL;
}

/* The record at off in s, if valid (the JNL_SEG at 0 with no salt, any
 * other with the segment's). */
static bool jnl_rec_valid(const struct jnl_seg *s, uint64_t off, struct jnl_rec *r)
{
	const unsigned char *h;
	struct iovec pl;
	uint32_t len;

	if (s->js_map == NULL || off + JNL_HDR_SIZE > s->js_size || off % 8 != 0)
		return false;
	h = s->js_map + off;
	if (jnl_get32(h) != JNL_MAGIC || jnl_get64(h + 8) != s->js_seq)
		return false;
	len = jnl_get32(h + 16);
	if (len > s->js_size - off - JNL_HDR_SIZE)
		return false;
	if (off == 0 ? h[20] != JNL_SEG || len != 8 :
	    (h[20] != JNL_MSG && h[20] != JNL_DEL && h[20] != JNL_PAD) || !s->js_salted)
		return false;
	pl = (struct iovec){ (void *)(h + JNL_HDR_SIZE), len };
	if (jnl_rec_crc(off == 0 ? NULL : s->js_salt, h, &pl, 1) != jnl_get32(h + 4))
		return false;
	r->jr_type = h[20];
	r->jr_id = jnl_get64(h + 24);
	r->jr_data = h + JNL_HDR_SIZE;
	r->jr_len = len;
	r->jr_loc.jl_seg = (struct jnl_seg *)s;
	r->jr_loc.jl_off = off + JNL_HDR_SIZE;
	r->jr_next_off = off + JNL_HDR_SIZE + jnl_pad8(len);
	return true;
}

/* Keep the bytes replay could not read, [from, to), for inspection. */
static void jnl_keep_damage(struct jnl *j, const struct jnl_seg *s, uint64_t from, uint64_t to)
{
	char name[64];
	int fd;

	if (j->j_ro)
		return;
	snprintf(name, sizeof(name), "damaged-%016" PRIx64 "-%" PRIu64, s->js_seq, from);
	fd = openat(j->j_dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	if (write(fd, s->js_map + from, (size_t)(to - from)) < 0 || fsync(fd) < 0)
		fprintf(stderr, "ringmta: queue journal: %s/%s: %s\n", j->j_dir, name,
			strerror(errno));
	close(fd);
}

/* A header of ours at off (magic and this segment's number), valid or
 * not. */
static bool jnl_ours_at(const struct jnl_seg *s, uint64_t off)
{
	return s->js_map != NULL && off + JNL_HDR_SIZE <= s->js_size &&
	       jnl_get32(s->js_map + off) == JNL_MAGIC && jnl_get64(s->js_map + off + 8) == s->js_seq;
}

/* Whether a later segment was begun (its salt record is valid): then
 * every group of s was synced before it, and none can be torn. */
static bool jnl_later_begun(const struct jnl_seg *s)
{
	struct jnl_rec r;

	for (const struct jnl_seg *n = s->js_next; n != NULL; n = n->js_next)
		if (jnl_rec_valid(n, 0, &r))
			return true;
	return false;
}

/*
 * The salt record itself is bad. Its 8 bytes may still be right: take
 * them when the record after it is valid under them. Else, when the
 * segment is ours (its header), the whole file is kept as damaged (never
 * recycled, never written again) and said; false either way but the
 * first. On success *r is the salt record (as read).
 */
static bool jnl_salt_salvage(struct jnl *j, struct jnl_seg *s, struct jnl_rec *r)
{
	struct jnl_rec next;
	char name[64], dmg[80];

	if (s->js_map != NULL && s->js_size >= 2 * JNL_HDR_SIZE + 8) {
		memcpy(s->js_salt, s->js_map + JNL_HDR_SIZE, 8);
		s->js_salted = true;
		if (jnl_rec_valid(s, JNL_HDR_SIZE + 8, &next)) {
			fprintf(stderr, "ringmta: queue journal %s: segment %016" PRIx64 ": its first"
				" record is damaged; its salt still reads the records after it\n",
				j->j_dir, s->js_seq);
			r->jr_next_off = JNL_HDR_SIZE + 8;
			return true;
		}
		s->js_salted = false;
	}
	if (!jnl_ours_at(s, 0))
		return false;	/* zeros or a spare's old bytes: not ours */
	snprintf(name, sizeof(name), "%016" PRIx64 ".seg", s->js_seq);
	snprintf(dmg, sizeof(dmg), "damaged-%016" PRIx64 ".seg", s->js_seq);
	fprintf(stderr, "ringmta: queue journal %s: segment %016" PRIx64 " is damaged at its"
		" start: none of its records can be read; %s\n", j->j_dir, s->js_seq,
		j->j_ro ? "left as it is" : "kept as damaged-*.seg");
	if (!j->j_ro && renameat(j->j_dirfd, name, j->j_dirfd, dmg) == 0)
		s->js_damaged = true;	/* jnl_recycle leaves it alone */
	return false;
}

int jnl_replay(struct jnl *j, uint64_t seq, uint64_t off,
	       int (*cb)(void *ctx, const struct jnl_rec *r), void *ctx,
	       uint64_t *end_seq_r, uint64_t *end_off_r, unsigned *damaged_r)
{
	*end_seq_r = seq;
	*end_off_r = off;
	*damaged_r = 0;
	for (struct jnl_seg *s = j->j_head; s != NULL; s = s->js_next) {
		struct jnl_rec r;
		uint64_t o;

		if (s->js_seq < seq)
			continue;
		/* The salt first: without it nothing in the file is ours
		 * (a spare's old records, zeros). */
		if (jnl_rec_valid(s, 0, &r)) {
			memcpy(s->js_salt, r.jr_data, 8);
			s->js_salted = true;
		} else if (!jnl_salt_salvage(j, s, &r)) {
			continue;
		}
		o = s->js_seq == seq && off > r.jr_next_off ? off : r.jr_next_off;
		for (;;) {
			uint64_t bad;

			while (jnl_rec_valid(s, o, &r)) {
				if (r.jr_type != JNL_PAD && cb(ctx, &r) != 0)
					return 1;
				o = r.jr_next_off;
				*end_seq_r = s->js_seq;
				*end_off_r = o;
			}
			/* A bad record: the end, unless a valid one follows. */
			bad = o;
			for (o += 8; o + JNL_HDR_SIZE <= s->js_size; o += 8)
				if (jnl_get32(s->js_map + o) == JNL_MAGIC && jnl_rec_valid(s, o, &r))
					break;
			if (o + JNL_HDR_SIZE > s->js_size) {
				/* The end: zeros, a spare's old bytes, or a torn
				 * tail, which only the newest segment may have: a
				 * record of ours that fails here, with a later
				 * segment begun, is damage. */
				if (jnl_ours_at(s, bad) && jnl_later_begun(s)) {
					uint64_t to = bad + JNL_HDR_SIZE +
						      jnl_get32(s->js_map + bad + 16);

					to = to > s->js_size || to < bad ? s->js_size : to;
					fprintf(stderr, "ringmta: queue journal %s: segment %016" PRIx64
						" is damaged at offset %" PRIu64 " (its last records;"
						" kept as damaged-%016" PRIx64 "-%" PRIu64 ")\n",
						j->j_dir, s->js_seq, bad, s->js_seq, bad);
					jnl_keep_damage(j, s, bad, to);
					(*damaged_r)++;
				}
				break;
			}
			fprintf(stderr, "ringmta: queue journal %s: segment %016" PRIx64 " is damaged"
				" at offset %" PRIu64 " (%" PRIu64 " bytes unreadable, kept as"
				" damaged-%016" PRIx64 "-%" PRIu64 "); the records after it are"
				" replayed\n", j->j_dir, s->js_seq, bad, o - bad, s->js_seq, bad);
			jnl_keep_damage(j, s, bad, o);
			(*damaged_r)++;
		}
	}
	return 0;
}

void jnl_start_after_replay(struct jnl *j, uint64_t min_seq)
{
	j->j_active = NULL;	/* the next add starts segment j_next_seq */
	if (j->j_next_seq < min_seq)
		j->j_next_seq = min_seq;
}

/* --- writing ------------------------------------------------------------ */

void jnl_test_hooks(struct jnl *j)
{
	const char *t = getenv("RINGMTA_TEST_JOURNAL_TEAR");

	j->j_tear_at = t != NULL ? (unsigned)strtoul(t, NULL, 10) : 0;
}

/* Queue a record into seg at its end (the caller checked the room). */
static int jnl_queue(struct jnl *j, struct jnl_seg *seg, uint8_t type, uint64_t id,
		     const struct iovec *parts, unsigned nparts, uint64_t len,
		     struct jnl_loc *loc_r)
{
	struct jnl_pending *p;

	if (j->j_npend == j->j_pendcap) {
		unsigned cap = j->j_pendcap ? j->j_pendcap * 2 : 64;
		struct jnl_pending *np = realloc(j->j_pend, cap * sizeof(*np));

		if (np == NULL)
			return -ENOMEM;
		j->j_pend = np;
		j->j_pendcap = cap;
	}
	if (j->j_nparts + nparts > j->j_partcap) {
		unsigned cap = j->j_partcap ? j->j_partcap : 64;
		struct iovec *np;

		while (cap < j->j_nparts + nparts)
			cap *= 2;
		np = realloc(j->j_parts, cap * sizeof(*np));
		if (np == NULL)
			return -ENOMEM;
		j->j_parts = np;
		j->j_partcap = cap;
	}
	p = &j->j_pend[j->j_npend++];
	p->jp_seg = seg;
	p->jp_off = seg->js_end;
	p->jp_part0 = j->j_nparts;
	p->jp_nparts = nparts;
	p->jp_pad = (unsigned)(jnl_pad8(len) - len);
	if (nparts > 0)
		memcpy(&j->j_parts[j->j_nparts], parts, nparts * sizeof(*parts));
	j->j_nparts += nparts;
	memset(p->jp_hdr, 0, sizeof(p->jp_hdr));
	jnl_put32(p->jp_hdr, JNL_MAGIC);
	jnl_put64(p->jp_hdr + 8, seg->js_seq);
	jnl_put32(p->jp_hdr + 16, (uint32_t)len);
	p->jp_hdr[20] = type;
	jnl_put64(p->jp_hdr + 24, id);
	jnl_put32(p->jp_hdr + 4, jnl_rec_crc(type == JNL_SEG ? NULL : seg->js_salt, p->jp_hdr,
					     parts, nparts));
	seg->js_end += JNL_HDR_SIZE + jnl_pad8(len);
	if (loc_r != NULL) {
		loc_r->jl_seg = seg;
		loc_r->jl_off = p->jp_off + JNL_HDR_SIZE;
	}
	return 0;
}

int jnl_add(struct jnl *j, uint8_t type, uint64_t id, const struct iovec *parts,
	    unsigned nparts, struct jnl_loc *loc_r)
{
	uint64_t len = 0, need, room;
	int rc;

	for (unsigned i = 0; i < nparts; i++)
		len += parts[i].iov_len;
	if (len > UINT32_MAX - 8)
		return -EFBIG;
	need = JNL_HDR_SIZE + jnl_pad8(len);
	room = j->j_active == NULL ? 0 : j->j_active->js_size - j->j_active->js_end;
	if (type == JNL_MSG)
		room = room > JNL_DEL_RESERVE ? room - JNL_DEL_RESERVE : 0;
	if (room < need) {
		struct iovec salt;

		if ((rc = jnl_seg_new(j, need + JNL_HDR_SIZE + 8 + JNL_DEL_RESERVE)) < 0)
			return rc;
		/* Its first record: the salt every later CRC in it covers. */
		salt = (struct iovec){ j->j_active->js_salt, 8 };
		rc = jnl_queue(j, j->j_active, JNL_SEG, 0, &salt, 1, 8, NULL);
		if (rc < 0) {
			j->j_active = NULL;	/* never written without its salt */
			return rc;
		}
	}
	return jnl_queue(j, j->j_active, type, id, parts, nparts, len, loc_r);
}

void jnl_abort(struct jnl *j)
{
	/* Give the queued space back: nothing of it was written. A segment
	 * whose first record (its salt) was among it is left unused. */
	if (j->j_npend > 0 && j->j_active == j->j_pend[0].jp_seg && j->j_pend[0].jp_off > 0)
		j->j_active->js_end = j->j_pend[0].jp_off;
	else if (j->j_npend > 0)
		j->j_active = NULL;
	j->j_npend = j->j_nparts = 0;
}

/* pwritev all of iov (n entries) at off. */
static int jnl_pwritev_all(int fd, struct iovec *iov, unsigned n, uint64_t off)
{
	while (n > 0) {
		unsigned cnt = n > JNL_IOV_MAX ? JNL_IOV_MAX : n;
		ssize_t w = pwritev(fd, iov, (int)cnt, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		off += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0 && w > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Keep the first half of iov's bytes (the tear test hook). */
static unsigned jnl_iov_half(struct iovec *iov, unsigned n)
{
	size_t total = 0, keep;

	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	keep = total / 2;
	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len >= keep) {
			iov[i].iov_len = keep;
			return i + 1;
		}
		keep -= iov[i].iov_len;
	}
	return n;
}

static const unsigned char jnl_zeros[JNL_PAGE];

/* End the group on a page boundary (journal.h, JNL_PAGE): a JNL_PAD to
 * it, when the segment has room past the deletes' reserve. Without one
 * (no room, no memory) the group is only not padded. */
static void jnl_pad_group(struct jnl *j)
{
	struct jnl_seg *s = j->j_active;
	uint64_t end, len;
	struct iovec z;

	if (s == NULL || s->js_end % JNL_PAGE == 0 || j->j_pend[j->j_npend - 1].jp_seg != s)
		return;
	/* The boundary that leaves room for the header: len < JNL_PAGE. */
	end = (s->js_end + JNL_HDR_SIZE + JNL_PAGE - 1) / JNL_PAGE * JNL_PAGE;
	if (end + JNL_DEL_RESERVE > s->js_size)
		return;
	len = end - s->js_end - JNL_HDR_SIZE;
	z = (struct iovec){ (void *)jnl_zeros, (size_t)len };
	(void)jnl_queue(j, s, JNL_PAD, 0, &z, len > 0 ? 1 : 0, len, NULL);
}

int jnl_commit(struct jnl *j)
{
	struct iovec *iov = NULL;
	unsigned i = 0;
	int rc = 0;

	if (j->j_npend == 0)
		return 0;
	j->j_groups++;
	jnl_pad_group(j);
	/* One pwritev run per segment the group reaches (usually one). */
	while (i < j->j_npend && rc == 0) {
		struct jnl_seg *s = j->j_pend[i].jp_seg;
		uint64_t off = j->j_pend[i].jp_off;
		unsigned k = i, n = 0, cap = 0, nrec;

		for (; k < j->j_npend && j->j_pend[k].jp_seg == s; k++)
			cap += 2 + j->j_pend[k].jp_nparts;
		free(iov);
		iov = malloc(cap * sizeof(*iov));
		if (iov == NULL) {
			rc = -ENOMEM;
			break;
		}
		nrec = UINT_MAX;
		for (; i < k; i++) {
			struct jnl_pending *p = &j->j_pend[i];

			if (p->jp_hdr[20] == JNL_PAD)
				nrec = n;	/* the iovecs before the pad */
			iov[n++] = (struct iovec){ p->jp_hdr, JNL_HDR_SIZE };
			for (unsigned m = 0; m < p->jp_nparts; m++)
				if (j->j_parts[p->jp_part0 + m].iov_len > 0)
					iov[n++] = j->j_parts[p->jp_part0 + m];
			if (p->jp_pad > 0)
				iov[n++] = (struct iovec){ (void *)jnl_zeros, p->jp_pad };
		}
		if (j->j_tear_at != 0 && j->j_groups == j->j_tear_at) {
			/* Half of the records, not of the pad after them. */
			n = jnl_iov_half(iov, nrec < n ? nrec : n);
			(void)jnl_pwritev_all(s->js_fd, iov, n, off);
			(void)fdatasync(s->js_fd);
			raise(SIGKILL);
		}
		rc = jnl_pwritev_all(s->js_fd, iov, n, off);
		if (rc == 0 && fdatasync(s->js_fd) < 0)
			rc = -errno;
	}
	free(iov);
	if (rc != 0)
		j->j_active = NULL;	/* never written again: see journal.h */
	j->j_npend = j->j_nparts = 0;
	return rc;
}

void jnl_position(const struct jnl *j, uint64_t *seq_r, uint64_t *off_r)
{
	if (j->j_active != NULL) {
		*seq_r = j->j_active->js_seq;
		*off_r = j->j_active->js_end;
	} else {
		*seq_r = j->j_next_seq;
		*off_r = 0;
	}
}

uint64_t jnl_bytes_since(const struct jnl *j, uint64_t seq, uint64_t off)
{
	uint64_t n = 0;

	for (const struct jnl_seg *s = j->j_head; s != NULL; s = s->js_next) {
		if (s->js_seq < seq)
			continue;
		/* From off in the position's own segment, all of later ones. */
		n += s->js_end - (s->js_seq == seq ? (off < s->js_end ? off : s->js_end) : 0);
	}
	return n;
}

void jnl_recycle(struct jnl *j, uint64_t before_seq)
{
	struct jnl_seg **pp = &j->j_head, *prev = NULL;

	if (j->j_ro)
		return;
	while (*pp != NULL) {
		struct jnl_seg *s = *pp;
		char name[64], spare[64];

		/* Still needed, held here, or held by a tool beside us (its
		 * shared flock): later. */
		if (s->js_seq >= before_seq || s == j->j_active || s->js_damaged ||
		    atomic_load(&s->js_refs) != 0 || flock(s->js_fd, LOCK_EX | LOCK_NB) < 0) {
			prev = s;
			pp = &s->js_next;
			continue;
		}
		*pp = s->js_next;
		if (j->j_tail == s)
			j->j_tail = prev;
		jnl_seg_name(name, sizeof(name), s->js_seq);
		jnl_spare_name(spare, sizeof(spare), s->js_seq);
		if (j->j_nspares < JNL_SPARES_MAX && s->js_size <= JNL_SEG_SIZE &&
		    renameat(j->j_dirfd, name, j->j_dirfd, spare) == 0) {
			j->j_spares[j->j_nspares++] = s->js_seq;
			jnl_seg_free(s);
			continue;
		}
		(void)unlinkat(j->j_dirfd, name, 0);
		jnl_seg_free(s);
	}
}
