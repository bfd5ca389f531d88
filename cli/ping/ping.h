/* Internal to `kite ping`: the socket side (cli/ping_socket.c). */
#ifndef KITE_CLI_PING_H
#define KITE_CLI_PING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An unprivileged ICMP (or ICMPv6) datagram socket, bound so that its
 * identifier is known (*id), with TTL/hop-limit and error-queue reporting on.
 * -1 after printing why (for EACCES/EPERM: net.ipv4.ping_group_range and the
 * sysctl line that fixes it). */
int ping_socket_open(int family, uint16_t *id);

/* One datagram: its bytes (ICMP header first), sender and TTL (-1 if the
 * kernel gave none). Length, or -errno. */
ssize_t ping_recv(int fd, uint8_t *buf, size_t cap, struct sockaddr_storage *from, int *ttl);

/* One ICMP error from the error queue about one of our requests: *seq of the
 * request (-1 if unknown), the router or host that reported it, and a text.
 * 0, -EAGAIN when the queue is empty, or -errno. */
int ping_recv_error(int fd, int family, int *seq, struct sockaddr_storage *offender,
		    char *what, size_t cap);

#endif
