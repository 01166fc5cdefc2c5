/*
 * front.h: the protocol front ends (struct front, in session/session.h).
 * SOCKS5 and SOCKS4/4a are one front end, told apart by their first byte.
 */
#ifndef FRONT_H
#define FRONT_H

#include "session/session.h"

extern const struct front	 front_socks;

#endif /* FRONT_H */
