/*
 * front.h: the protocol front ends (struct front, in session/session.h).
 * front_detect reads the first byte and hands the session to SOCKS (5 and
 * 4/4a, one front end) or HTTP; on a proxy_protocol listener front_proxy
 * reads the load balancer's header first.
 */
#ifndef FRONT_H
#define FRONT_H

#include "session/session.h"

extern const struct front	 front_detect;	/* every connection's first */
extern const struct front	 front_socks;
extern const struct front	 front_http;
extern const struct front	 front_proxy;	/* proxy_protocol listeners */

void	 front_consume(struct session *, size_t);
size_t	 front_silent_reply(const struct session *, uint8_t,
	    const struct sockaddr *, uint8_t *, size_t);
const char *front_auth_answer(struct session *, const struct auth_reply *);

/* socks_gss.c: SOCKS5 GSSAPI (RFC 1961) after authd's yes */
int	 socks_gss_start(struct session *, const struct auth_reply *);

#endif /* FRONT_H */
