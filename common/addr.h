/*
 * addr.h: socket addresses as text and back, CIDR prefixes.
 */
#ifndef ADDR_H
#define ADDR_H

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdint.h>

#define ADDR_STRLEN	(INET6_ADDRSTRLEN + 8)

struct addr_cidr {
	uint8_t		 ac_addr[16];
	int		 ac_family;
	int		 ac_len;
};

int	 addr_cidr_parse(const char *, struct addr_cidr *);
int	 addr_in_cidr(const struct sockaddr *, const struct addr_cidr *);
int	 addr_is_loopback(const struct sockaddr *);
int	 addr_parse_ip(const char *, struct sockaddr_storage *);
int	 addr_parse_hostport(const char *, struct sockaddr_storage *,
	    socklen_t *, const char **);
const char *addr_str(const struct sockaddr *, char *, size_t);
const char *addr_ip(const struct sockaddr_storage *, char *, size_t);
socklen_t addr_len(const struct sockaddr *);
uint16_t addr_port(const struct sockaddr *);
void	 addr_unmap(struct sockaddr_storage *);
void	 addr_set_port(struct sockaddr_storage *, uint16_t);
int	 addr_same_ip(const struct sockaddr *, const struct sockaddr *);
int	 addr_is_wildcard(const struct sockaddr *);

#endif
