/*
 * failalloc.c: an LD_PRELOAD library for tests that makes chosen
 * allocations fail, so the paths that handle "no memory" in a running
 * ringmta can be shown to keep their promises. Never installed; not for
 * sanitizer builds (ASan owns the allocator there).
 *
 *   FAILALLOC="RULE[,RULE...]", each RULE one of
 *     calloc:NMEMB:SIZE:COUNT:LO-HI[:SKIP]
 *     malloc:SIZE:COUNT:LO-HI[:SKIP]
 *     realloc0:SIZE:COUNT:LO-HI[:SKIP]
 *
 * calloc:NMEMB:SIZE:COUNT:LO-HI fails the first COUNT calls of
 * calloc(NMEMB, SIZE) made from code at offsets LO to HI (hex, HI
 * excluded) of the object that made the call: the test reads the
 * function's range with nm, so only the allocation it means fails.
 * NMEMB or SIZE 0 matches any (a struct's size the test does not know);
 * SKIP lets that many matching calls through first. malloc likewise for
 * malloc(SIZE), realloc0 for realloc(NULL, SIZE) (a growing array's
 * first allocation). Each failure
 * sets errno to ENOMEM and returns NULL; every other call goes to the
 * allocator the process would have used (jemalloc or glibc), found with
 * dlsym(RTLD_NEXT). FAILALLOC_LOG=PATH appends one line per failure made
 * ("calloc 1024 8" or "realloc0 2048"), so a test can tell it happened.
 * With FAILALLOC_ARM=PATH no call fails before PATH exists (a test
 * creates it once the process is up, past the allocations of its start).
 *
 * dlsym can allocate (its error state) before the real calloc is known:
 * such calls are served from a small static arena, never freed (free
 * passes over them).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FA_RULES 4

struct fa_rule {
	int fr_kind;			/* 1 calloc, 2 realloc0, 3 malloc */
	size_t fr_nmemb, fr_size;
	uintptr_t fr_lo, fr_hi;		/* the caller's offsets in its object */
	atomic_long fr_skip;		/* matching calls to let through first */
	atomic_long fr_left;
};

static struct fa_rule fa_rules[FA_RULES];
static int fa_nrules;
static atomic_int fa_ready;		/* 0 not yet, 1 being set up, 2 ready */
static void *(*fa_calloc)(size_t, size_t);
static void *(*fa_malloc)(size_t);
static void *(*fa_realloc)(void *, size_t);
static void (*fa_free)(void *);
static char fa_arena[4096];
static atomic_size_t fa_arena_used;

static void *fa_arena_alloc(size_t n)
{
	size_t at = atomic_fetch_add(&fa_arena_used, (n + 15) & ~(size_t)15);

	if (at + n > sizeof(fa_arena))
		return NULL;
	return fa_arena + at;	/* static storage: already zero */
}

static void fa_parse(const char *spec)
{
	char buf[256];
	char *save = NULL;

	if (spec == NULL || strlen(spec) >= sizeof(buf))
		return;
	strcpy(buf, spec);
	for (char *t = strtok_r(buf, ",", &save); t != NULL && fa_nrules < FA_RULES;
	     t = strtok_r(NULL, ",", &save)) {
		struct fa_rule *r = &fa_rules[fa_nrules];
		unsigned long a, b, c, lo, hi, skip = 0;

		if (sscanf(t, "calloc:%lu:%lu:%lu:%lx-%lx:%lu", &a, &b, &c, &lo, &hi, &skip) >= 5) {
			r->fr_kind = 1;
			r->fr_nmemb = a;
			r->fr_size = b;
		} else if (sscanf(t, "malloc:%lu:%lu:%lx-%lx:%lu", &b, &c, &lo, &hi, &skip) >= 4) {
			r->fr_kind = 3;
			r->fr_size = b;
		} else if (sscanf(t, "realloc0:%lu:%lu:%lx-%lx:%lu", &b, &c, &lo, &hi, &skip) >= 4) {
			r->fr_kind = 2;
			r->fr_size = b;
		} else {
			continue;
		}
		r->fr_lo = lo;
		r->fr_hi = hi;
		atomic_store(&r->fr_skip, (long)skip);
		atomic_store(&r->fr_left, (long)c);
		fa_nrules++;
	}
}

static void fa_setup(void)
{
	int expect = 0;

	if (!atomic_compare_exchange_strong(&fa_ready, &expect, 1))
		return;
	fa_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	fa_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	fa_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	fa_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	fa_parse(getenv("FAILALLOC"));
	atomic_store(&fa_ready, 2);
}

static void fa_log(const char *line)
{
	const char *path = getenv("FAILALLOC_LOG");
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, strlen(line)) < 0) {
		/* nothing to do: the test finds no line */
	}
	close(fd);
}

/* Does a rule of this kind and shape, for this caller, want the call
 * to fail? */
static atomic_int fa_armed;	/* FAILALLOC_ARM was seen */
static __thread int fa_busy;	/* inside fa_fail: what it calls allocates freely */

static int fa_fail_rules(int kind, size_t nmemb, size_t size, const void *caller);

static int fa_fail(int kind, size_t nmemb, size_t size, const void *caller)
{
	int rc;

	if (fa_nrules == 0 || fa_busy)
		return 0;
	fa_busy = 1;
	rc = fa_fail_rules(kind, nmemb, size, caller);
	fa_busy = 0;
	return rc;
}

static int fa_fail_rules(int kind, size_t nmemb, size_t size, const void *caller)
{
	const char *arm;
	char line[64];
	Dl_info di;
	uintptr_t off;

	for (int i = 0; i < fa_nrules; i++) {
		struct fa_rule *r = &fa_rules[i];

		if (r->fr_kind != kind || (r->fr_size != 0 && r->fr_size != size) ||
		    (kind == 1 && r->fr_nmemb != 0 && r->fr_nmemb != nmemb))
			continue;
		if (!fa_armed) {
			arm = getenv("FAILALLOC_ARM");
			if (arm != NULL && access(arm, F_OK) != 0)
				return 0;
			fa_armed = 1;
		}
		if (dladdr(caller, &di) == 0)
			continue;
		off = (uintptr_t)caller - (uintptr_t)di.dli_fbase;
		if (off < r->fr_lo || off >= r->fr_hi)
			continue;
		if (atomic_fetch_sub(&r->fr_skip, 1) > 0)
			return 0;
		if (atomic_fetch_sub(&r->fr_left, 1) <= 0)
			return 0;
		if (kind == 1)
			snprintf(line, sizeof(line), "calloc %zu %zu\n", nmemb, size);
		else
			snprintf(line, sizeof(line), "%s %zu\n", kind == 2 ? "realloc0" : "malloc",
				 size);
		fa_log(line);
		return 1;
	}
	return 0;
}

void *calloc(size_t nmemb, size_t size)
{
	if (atomic_load(&fa_ready) != 2) {
		if (atomic_load(&fa_ready) == 1)
			return fa_arena_alloc(nmemb * size);
		fa_setup();
	}
	if (fa_fail(1, nmemb, size, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return fa_calloc(nmemb, size);
}

void *malloc(size_t size)
{
	if (atomic_load(&fa_ready) != 2) {
		if (atomic_load(&fa_ready) == 1)
			return fa_arena_alloc(size);
		fa_setup();
	}
	if (fa_fail(3, 0, size, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return fa_malloc(size);
}

static int fa_in_arena(const void *p)
{
	return p >= (const void *)fa_arena && p < (const void *)(fa_arena + sizeof(fa_arena));
}

void free(void *p)
{
	if (p == NULL || fa_in_arena(p))
		return;
	if (atomic_load(&fa_ready) != 2)
		fa_setup();
	if (fa_free != NULL)	/* NULL only while dlsym runs: leaked */
		fa_free(p);
}

void *realloc(void *p, size_t size)
{
	if (atomic_load(&fa_ready) != 2)
		fa_setup();
	if (fa_realloc == NULL)		/* only while dlsym runs */
		return p == NULL ? fa_arena_alloc(size) : NULL;
	if (fa_in_arena(p)) {
		/* from the arena: moved to the real heap, never freed there */
		void *n = fa_realloc(NULL, size);

		if (n != NULL)
			memcpy(n, p, size < sizeof(fa_arena) ? size : sizeof(fa_arena));
		return n;
	}
	if (p == NULL && fa_fail(2, 0, size, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return fa_realloc(p, size);
}
