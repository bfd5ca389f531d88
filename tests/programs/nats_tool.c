/* A tiny NATS client for the bridge tests (the `nats` CLI is not in
 * Debian), on the official C client:
 *   nats_tool sub URL SUBJECT COUNT TIMEOUT_MS
 *       print each message as SUBJECT<TAB>HEADERS<TAB>PAYLOAD, HEADERS as
 *       "Key=Value;..." in the order received ("-" if none); "ready" on
 *       stderr once the server has the subscription; exit 0 after COUNT
 *       messages, 2 if TIMEOUT_MS passed first (0 COUNT: wait it out, 0)
 *   nats_tool pub URL SUBJECT PAYLOAD [KEY=VALUE]...
 *       publish one message with those headers (a KEY may repeat)
 *       (SUB instead of sub: connect, and reconnect, retrying every 10 ms,
 *       also while the server is not there yet)
 *   nats_tool flood URL SUBJECT COUNT
 *       publish COUNT numbered messages ("1", "2", ...) as fast as possible */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nats/nats.h>

static int die(const char *what, natsStatus s)
{
	fprintf(stderr, "nats_tool: %s: %s\n", what, natsStatus_GetText(s));
	return 111;
}

static void print_headers(natsMsg *m)
{
	const char **keys = NULL;
	int n = 0;
	if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK || !n) {
		fputs("-", stdout);
		free((void *)keys);
		return;
	}
	for (int i = 0; i < n; i++) {
		const char **values = NULL;
		int nv = 0;
		if (natsMsgHeader_Values(m, keys[i], &values, &nv) != NATS_OK)
			continue;
		for (int j = 0; j < nv; j++)
			printf("%s=%s;", keys[i], values[j]);
		free((void *)values);
	}
	free((void *)keys);
}

static int sub(natsConnection *nc, const char *subject, long count, long timeout_ms)
{
	natsSubscription *s = NULL;
	natsStatus st = natsConnection_SubscribeSync(&s, nc, subject);
	if (st == NATS_OK && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
		st = natsConnection_FlushTimeout(nc, 5000);
	if (st != NATS_OK)
		return die("subscribe", st);
	fprintf(stderr, "ready\n");
	int64_t deadline = nats_Now() + timeout_ms;
	long got = 0;
	while (!count || got < count) {
		int64_t left = deadline - nats_Now();
		if (left <= 0)
			break;
		natsMsg *m = NULL;
		st = natsSubscription_NextMsg(&m, s, left);
		if (st == NATS_TIMEOUT)
			break;
		if (st != NATS_OK)
			return die("next message", st);
		printf("%s\t", natsMsg_GetSubject(m));
		print_headers(m);
		printf("\t%.*s\n", natsMsg_GetDataLength(m), natsMsg_GetData(m));
		fflush(stdout);
		natsMsg_Destroy(m);
		got++;
	}
	natsSubscription_Destroy(s);
	return count && got < count ? 2 : 0;
}

static int pub(natsConnection *nc, const char *subject, const char *payload,
	       int nheaders, char **headers)
{
	natsMsg *m = NULL;
	natsStatus st = natsMsg_Create(&m, subject, NULL, payload, (int)strlen(payload));
	for (int i = 0; st == NATS_OK && i < nheaders; i++) {
		char *eq = strchr(headers[i], '=');
		if (!eq) {
			fprintf(stderr, "nats_tool: header '%s' is not KEY=VALUE\n", headers[i]);
			return 100;
		}
		*eq = 0;
		st = natsMsgHeader_Add(m, headers[i], eq + 1);
	}
	if (st == NATS_OK)
		st = natsConnection_PublishMsg(nc, m);
	if (st == NATS_OK)
		st = natsConnection_FlushTimeout(nc, 5000);
	natsMsg_Destroy(m);
	return st == NATS_OK ? 0 : die("publish", st);
}

static int flood(natsConnection *nc, const char *subject, long count)
{
	char text[24];
	for (long i = 1; i <= count; i++) {
		int n = snprintf(text, sizeof text, "%ld", i);
		natsStatus st = natsConnection_Publish(nc, subject, text, n);
		if (st != NATS_OK)
			return die("publish", st);
	}
	natsStatus st = natsConnection_FlushTimeout(nc, 10000);
	return st == NATS_OK ? 0 : die("flush", st);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: nats_tool sub|pub|flood URL SUBJECT ...\n");
		return 100;
	}
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	natsStatus st = natsOptions_Create(&o);
	if (st == NATS_OK)
		st = natsOptions_SetURL(o, argv[2]);
	if (st == NATS_OK && !strcmp(argv[1], "SUB")) {
		st = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
		if (st == NATS_OK)
			st = natsOptions_SetReconnectWait(o, 10);
		if (st == NATS_OK)
			st = natsOptions_SetMaxReconnect(o, -1);
	}
	if (st == NATS_OK)
		st = natsConnection_Connect(&nc, o);
	natsOptions_Destroy(o);
	if (st == NATS_NOT_YET_CONNECTED)
		st = NATS_OK;
	if (st != NATS_OK)
		return die(argv[2], st);
	int rc = 100;
	if (!strcasecmp(argv[1], "sub") && argc == 6)
		rc = sub(nc, argv[3], atol(argv[4]), atol(argv[5]));
	else if (!strcmp(argv[1], "pub") && argc >= 5)
		rc = pub(nc, argv[3], argv[4], argc - 5, argv + 5);
	else if (!strcmp(argv[1], "flood") && argc == 5)
		rc = flood(nc, argv[3], atol(argv[4]));
	else
		fprintf(stderr, "nats_tool: bad arguments\n");
	natsConnection_Destroy(nc);
	nats_Close();
	return rc;
}
