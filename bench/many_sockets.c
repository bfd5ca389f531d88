/* Benchmark helper: open N listening sockets on loopback (TCP listeners and
 * bound UDP sockets, 4 TCP to 1 UDP), print "ready" and hold them until
 * killed. Bounded: at most 60000 sockets, loopback only, nothing is sent.
 *   many_sockets N */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
	if (n < 1 || n > 60000) {
		fprintf(stderr, "many_sockets: N must be 1..60000\n");
		return 100;
	}
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t want = (rlim_t)n + 64;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want;
		if (rl.rlim_max < want)
			rl.rlim_max = want; /* root may raise the hard limit */
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			perror("many_sockets: setrlimit");
			return 111;
		}
	}
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (long i = 0; i < n; i++) {
		int udp = i % 5 == 4;
		int s = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) ||
		    (!udp && listen(s, 1))) {
			perror("many_sockets: socket");
			return 111;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
