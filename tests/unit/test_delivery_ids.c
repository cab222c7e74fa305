/*
 * test_delivery_ids.c: the scheduler's set of messages in flight and its
 * id lists (core/delivery/delivery_ids.c). The set against a plain model
 * over 200,000 random adds and deletes in its first 1,024 slots, with a
 * third of the ids picked to crowd the table's last and first slots, so
 * that probe chains wrap around its end and deletion by backward shift
 * is exercised across it (random ids alone almost never do: a mutant that
 * moved every entry across the end passed); then growth from 1,024 slots
 * to hold 20,000 ids, and emptying it again.
 */
#include <stdlib.h>
#include <string.h>

#include "core/delivery/delivery_ids.h"
#include "tap.h"

#define MODEL 600	/* distinct ids in play: the set stays within 1,024 slots */
#define CROWD 200	/* of them homed in the last or the first 8 slots */

/* The set's home slot for id at 1,024 slots: a copy of delivery_ids.c's
 * hash, checked against the set itself below. */
static size_t home_1024(uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & 1023u;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

int main(void)
{
	struct idset s = { 0 };
	struct id_list l = { 0 };
	uint64_t ids[MODEL];
	bool in[MODEL] = { false };
	size_t n = 0, wrong = 0, cap0;
	bool ok = true;

	tap_ok(!dlv_idset_has(&s, 42), "an empty set has nothing");
	dlv_idset_del(&s, 42);	/* deleting from an empty set is a no-op */
	for (unsigned i = 0; i < MODEL; i++) {
		do
			ids[i] = next_rand() | 1;	/* never 0, the empty slot */
		while (i < CROWD && home_1024(ids[i]) >= 8 && home_1024(ids[i]) < 1016);
	}
	ok = dlv_idset_add(&s, ids[0]) == 0 && s.is_cap == 1024 &&
	     s.is_slots[home_1024(ids[0])] == ids[0];
	tap_ok(ok, "the test's copy of the hash is the set's (else update home_1024)");
	dlv_idset_del(&s, ids[0]);

	for (unsigned op = 0; op < 200000; op++) {
		unsigned k = (unsigned)(next_rand() % MODEL);

		/* A member leaves, anything else joins (a third of the time
		 * added twice: the second add changes nothing), so the set
		 * hovers around half of MODEL, under half of 1,024 slots. */
		if (in[k]) {
			dlv_idset_del(&s, ids[k]);
			in[k] = false;
			n--;
		} else {
			ok &= dlv_idset_add(&s, ids[k]) == 0;
			if (next_rand() % 3 == 0)
				ok &= dlv_idset_add(&s, ids[k]) == 0;
			in[k] = true;
			n++;
		}
		if (s.is_n != n)
			wrong++;
		if (op % 97 == 0)
			for (unsigned i = 0; i < MODEL; i++)
				if (dlv_idset_has(&s, ids[i]) != in[i])
					wrong++;
	}
	tap_ok(ok, "every add succeeded");
	tap_ok(wrong == 0, "membership and count match the model after every step (%zu wrong)",
	       wrong);
	tap_ok(s.is_cap == 1024, "the set never grew past 1,024 slots (%zu)", s.is_cap);
	for (unsigned i = 0; i < MODEL; i++)
		if (in[i])
			dlv_idset_del(&s, ids[i]);
	tap_ok(s.is_n == 0, "deleting every member empties it");
	wrong = 0;
	for (unsigned i = 0; i < MODEL; i++)
		wrong += dlv_idset_has(&s, ids[i]);
	tap_ok(wrong == 0, "and none is found");

	cap0 = s.is_cap;
	ok = true;
	for (uint64_t i = 1; i <= 20000; i++)
		ok &= dlv_idset_add(&s, i * 0x100000001ull) == 0;
	tap_ok(ok && s.is_n == 20000 && s.is_cap > cap0 && s.is_n * 2 <= s.is_cap,
	       "it grows to hold 20,000, at most half full (%zu slots)", s.is_cap);
	wrong = 0;
	for (uint64_t i = 1; i <= 20000; i++)
		wrong += !dlv_idset_has(&s, i * 0x100000001ull);
	tap_ok(wrong == 0, "every one of them is found after the growth");
	for (uint64_t i = 1; i <= 20000; i += 2)
		dlv_idset_del(&s, i * 0x100000001ull);
	wrong = 0;
	for (uint64_t i = 1; i <= 20000; i++)
		wrong += dlv_idset_has(&s, i * 0x100000001ull) != (i % 2 == 0);
	tap_ok(wrong == 0 && s.is_n == 10000, "deleting every other one leaves the rest");
	dlv_idset_free(&s);
	tap_ok(s.is_slots == NULL && s.is_cap == 0 && s.is_n == 0 && !dlv_idset_has(&s, 2),
	       "freed, it is empty again");

	for (uint64_t i = 0; i < 1000; i++)
		dlv_id_list_add(&l, i + 1);
	ok = l.n == 1000 && l.cap >= 1000;
	for (unsigned i = 0; ok && i < l.n; i++)
		ok = l.ids[i] == i + 1;
	tap_ok(ok, "an id list keeps 1,000 ids in order");
	free(l.ids);
	return tap_done();
}
