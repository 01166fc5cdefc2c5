/*
 * bev.h: what the session core and the relay ask of a client bufferevent
 * that may be layered (bev.c): SOCKS5 GSSAPI puts a filter that wraps
 * every byte over the socket's bufferevent (front/socks_gss.c).
 */
#ifndef BEV_H
#define BEV_H

#include <stddef.h>

struct bufferevent;

size_t	 bev_unsent(struct bufferevent *);
void	 bev_free(struct bufferevent *);

#endif /* BEV_H */
