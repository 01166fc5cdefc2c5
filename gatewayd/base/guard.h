/*
 * guard.h: the gateway's own addresses (its listeners), which no client
 * may reach through it, whatever the policy says.
 */
#ifndef GUARD_H
#define GUARD_H

#include <stddef.h>
#include <sys/socket.h>

int	 guard_self_init(const int *, size_t, char **);
void	 guard_self_free(void);
const struct sockaddr_storage *guard_self_addrs(size_t *);
int	 guard_is_listener(const struct sockaddr *);

#endif /* GUARD_H */
