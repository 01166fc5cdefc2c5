/*
 * pambench: the PAM module's own time, for comparing gatewayd's
 * authenticated connections with it: N pam_authenticate + pam_acct_mgmt
 * calls on SERVICE, timed one by one (run it under pam_wrapper).
 *
 *	pambench SERVICE USER PASSWORD [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <security/pam_appl.h>

static const char	*password;

static int
conv(int n, const struct pam_message **msg, struct pam_response **resp,
    void *arg)
{
	struct pam_response	*r = calloc((size_t)n, sizeof(*r));
	int			 i;

	(void)arg;
	if (r == NULL)
		return (PAM_CONV_ERR);
	for (i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(password);
	*resp = r;
	return (PAM_SUCCESS);
}

static int
cmp(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

int
main(int argc, char **argv)
{
	struct pam_conv	 pc = { conv, NULL };
	struct timespec	 t0, t1;
	pam_handle_t	*h;
	double		*lat;
	int		 n, i, rc;

	if (argc < 4)
		return (2);
	password = argv[3];
	n = argc > 4 ? atoi(argv[4]) : 2000;
	if (n < 1 || (lat = calloc((size_t)n, sizeof(*lat))) == NULL)
		return (2);
	for (i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if ((rc = pam_start(argv[1], argv[2], &pc, &h)) != PAM_SUCCESS)
			return (1);
		if ((rc = pam_authenticate(h, PAM_SILENT)) != PAM_SUCCESS ||
		    (rc = pam_acct_mgmt(h, PAM_SILENT)) != PAM_SUCCESS) {
			fprintf(stderr, "pambench: %s\n", pam_strerror(h, rc));
			return (1);
		}
		pam_end(h, rc);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		lat[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("pam calls=%d median_us=%.0f p99_us=%.0f\n", n, lat[n / 2],
	    lat[n * 99 / 100]);
	free(lat);
	return (0);
}
