/*
 * shp_susp: the operator's suspensions (the admin API's suspend and
 * resume): mail for a site, a recipient domain, a source or from a sender
 * domain waits without a delivery attempt until the suspension ends or is
 * lifted. Apart from the automation's actions (shp_state.h): those are
 * set by rules per path and slot, these by a person, with a reason, for
 * any of four selectors, and lifted by hand.
 *
 * One mutex inside; every call is short and any thread may make it. The
 * table holds at most SHP_SUSP_MAX entries (a set is refused past it).
 * Names are lowercased and copied; nothing returned points inside the
 * table but during a foreach callback. Times are unix microseconds (wall
 * clock), so a suspension means the same after a restart: shp_susp_save()
 * and shp_susp_restore() (shp_susp_blob.c) turn the table into a
 * versioned text blob the caller stores (queue_blob_put).
 */
#ifndef RINGMTA_SHP_SUSP_H
#define RINGMTA_SHP_SUSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHP_SUSP_MAX 1024u
#define SHP_SUSP_NAME_MAX 255u		/* a site (MX set) or domain name */
#define SHP_SUSP_REASON_MAX 200u
#define SHP_SUSP_WHO_MAX 64u
#define SHP_SUSP_DURATION_MAX (366ull * 86400u * 1000000u)

enum shp_susp_kind {
	SHP_SUSP_SITE = 0,
	SHP_SUSP_DOMAIN,		/* a recipient domain */
	SHP_SUSP_SOURCE,		/* an outbound source, by name */
	SHP_SUSP_SENDER_DOMAIN,		/* the domain of the envelope sender */
	SHP_SUSP_NKINDS,
};

/* "site", "domain", "source", "sender_domain". */
const char *shp_susp_kind_name(enum shp_susp_kind k);
/* The kind of a name as above; -1 when none. */
int shp_susp_kind_parse(const char *s);
/* "90s", "30m", "2h", "7d" (a positive count and one unit) into *us_r,
 * at most SHP_SUSP_DURATION_MAX: 0, or -EINVAL. */
int shp_susp_duration_parse(const char *s, uint64_t *us_r);

struct shp_susp;

int shp_susp_new(struct shp_susp **s_r);
void shp_susp_free(struct shp_susp **s);

/* Suspend name (kind k) from now until until (unix us), set by who
 * ("admin" when NULL) for reason (may be NULL). A suspension of the same
 * selector is replaced. 0; -EINVAL for an empty or too long name, a name
 * with control characters or an until not after now; -ENOSPC when the
 * table is full. The reason is cut at SHP_SUSP_REASON_MAX and its control
 * characters become spaces. */
int shp_susp_set(struct shp_susp *s, enum shp_susp_kind k, const char *name, const char *who,
		 const char *reason, uint64_t now, uint64_t until);
/* Lift it: 0 with *until_r (may be NULL) the end it had, or -ENOENT when
 * no suspension of that selector is in force at now. */
int shp_susp_clear(struct shp_susp *s, enum shp_susp_kind k, const char *name, uint64_t now,
		   uint64_t *until_r);

/* The end of the suspension of that selector in force at now, or 0. */
uint64_t shp_susp_until(struct shp_susp *s, enum shp_susp_kind k, const char *name,
			uint64_t now);

/* What a piece of mail is, for shp_susp_check(): NULL or "" where not
 * known (the site before its route is). Case does not matter. */
struct shp_susp_mail {
	const char *sm_site;
	const char *sm_domain;
	const char *sm_source;
	const char *sm_sender_domain;
};
/* True when a suspension in force at now holds mail m: *until_r the
 * latest end of those that do, why (may be NULL) says which one. */
bool shp_susp_check(struct shp_susp *s, const struct shp_susp_mail *m, uint64_t now,
		    uint64_t *until_r, char *why, size_t whylen);
/* Fewer than one suspension in force (a cheap test before the lookups). */
bool shp_susp_none(struct shp_susp *s);

/* One suspension, for listings. Valid during the callback only. */
struct shp_susp_item {
	enum shp_susp_kind si_kind;
	const char *si_name;
	const char *si_who;
	const char *si_reason;		/* "" when none */
	uint64_t si_set_us;
	uint64_t si_until_us;
};
/* fn for each suspension in force at now, in the order they were set
 * (fn must not call back into s). Returns how many. */
unsigned shp_susp_foreach(struct shp_susp *s, uint64_t now,
			  void (*fn)(void *arg, const struct shp_susp_item *it), void *arg);

/* Drop the suspensions that ended by now (they end by themselves: this
 * only frees their room). True when any went. */
bool shp_susp_expire(struct shp_susp *s, uint64_t now);

/* Persistence (shp_susp_blob.c). save: the bytes needed with the NUL
 * (writes up to len), expired entries left out; restore: 0, or -1 when
 * the blob is damaged or of another version (the table is then left
 * empty); entries that ended by now are dropped. */
size_t shp_susp_save(struct shp_susp *s, uint64_t now, char *buf, size_t len);
int shp_susp_restore(struct shp_susp *s, const char *buf, size_t len, uint64_t now);

#endif
