/* The smallest kite program: two handles in one process, one subscribes,
 * the other publishes, the first prints what it got and who sent it.
 *   cc hello.c $(pkg-config --cflags --libs kite) -o hello */
#include <kite.h>
#include <stdio.h>

int main(void)
{
	kite *sub, *pub;
	int rc = kite_open(&sub, NULL);
	if (rc || (rc = kite_open(&pub, NULL))) {
		fprintf(stderr, "kite_open: %s\n", kite_strerror(rc));
		return 1;
	}
	kite_subscribe(sub, "greetings.>");
	kite_publish(pub, "greetings.world", "hello", 5);
	kite_event ev;
	while ((rc = kite_recv(sub, &ev, 2000)) == 0 && ev.type != KITE_MESSAGE)
		; /* KITE_PUBLISHER_NEW comes first */
	if (rc) {
		fprintf(stderr, "kite_recv: %s\n", kite_strerror(rc));
		return 1;
	}
	printf("%s seq=%llu from pid %d: %.*s\n", ev.msg.channel,
	       (unsigned long long)ev.msg.seq, (int)ev.msg.pid, (int)ev.msg.len,
	       (const char *)ev.msg.data);
	kite_close(pub);
	kite_close(sub);
	return 0;
}
