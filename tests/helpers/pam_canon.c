/*
 * pam_canon: a PAM module for the tests that does what case-insensitive
 * backends (sssd, AD, LDAP) do: it accepts a user name in any case and
 * leaves the canonical one, lower case, in PAM_USER for the modules after
 * it and for the application. Place it first in an auth stack.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <security/pam_modules.h>

int	pam_sm_authenticate(pam_handle_t *, int, int, const char **);
int	pam_sm_setcred(pam_handle_t *, int, int, const char **);

int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	const char	*user = NULL;
	char		 canon[256];
	size_t		 i;

	(void)flags;
	(void)argc;
	(void)argv;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL ||
	    strlen(user) >= sizeof(canon))
		return (PAM_USER_UNKNOWN);
	for (i = 0; user[i] != '\0'; i++)
		canon[i] = (char)tolower((unsigned char)user[i]);
	canon[i] = '\0';
	return (pam_set_item(pamh, PAM_USER, canon));
}

int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return (PAM_SUCCESS);
}
