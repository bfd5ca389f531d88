/* LAN channels inside a handle: the hooks the rest of libkite calls. All
 * run with the handle's state held (ki_app_enter or ki_control_enter); the
 * receive side (ki_lan_event, ki_lan_timers) runs on the control thread
 * and hands complete messages, losses and publisher events to kite_recv()
 * through a bounded queue (ki_lan_pop). Without the `lan` option none of
 * them does anything. */
#ifndef KITE_LAN_H
#define KITE_LAN_H

#include <stddef.h>
#include <stdint.h>

#include "kite.h"

struct ki_lan;

/* Join the LAN if opts.lan or $KITE_LAN asks (0 if neither does): resolve
 * the interface, open the sockets, register the receiver with the control
 * thread's epoll. -EINVAL (a bad option), -ENODEV, -ENETDOWN, ... */
int ki_lan_open(kite *k, const char *spec);
/* say_gone: tell LAN subscribers our streams end (not in a fork child). */
void ki_lan_close(kite *k, int say_gone);

/* After a message went into the local ring: send it on the LAN, with the
 * ring record's timestamp (CLOCK_REALTIME). *lan_pub (the ring's, NULL at
 * first) keeps the LAN's record of the channel: no look-up by name the
 * next time. */
void ki_lan_publish(kite *k, const char *channel, void **lan_pub, uint64_t seq,
		    uint64_t timestamp_ns, const void *data, size_t len);

/* Join what a new pattern needs / leave what only a removed one needed. */
int ki_lan_subscribe(kite *k, const char *pattern);
void ki_lan_unsubscribe(kite *k, const char *pattern);

/* The control thread: 1 if fd is the LAN's (then handled: what arrived
 * read, or packed messages due sent), else 0; and timers (ms until the
 * next, -1 none). */
int ki_lan_event(kite *k, int fd);
int ki_lan_timers(kite *k);

/* kite_recv: the next LAN message or event (1) or nothing (0); and
 * whether one is waiting. */
int ki_lan_pop(kite *k, kite_event *ev);
int ki_lan_ready(const kite *k);

#endif
