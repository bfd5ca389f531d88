/* kite doctor: one finding per check; doctor.c prints, doctor_checks.c
 * checks. */
#ifndef KITE_DOCTOR_H
#define KITE_DOCTOR_H

struct finding {
	const char *check;   /* "net.core.rmem_max", "multicast-route", ... */
	int ok;              /* 1 fine; 0 a problem */
	char value[128];     /* what was found */
	char detail[256];    /* why it matters (problems) or a note */
	char fix[256];       /* the exact command that fixes it, or "" */
};

/* Run every check into out (at most max); the number filled. */
int doctor_run_checks(struct finding *out, int max);

#endif
