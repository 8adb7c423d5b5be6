/*
 * A BFCP test peer on libre (Debian libre-dev 1.1), an implementation independent of
 * roomd-bfcp, for tests/tests/bfcp_floor.rs. libre 1.1 speaks BFCP over UDP (Ver 2) only.
 * One line on stdout per event, for the test to wait on.
 *
 *   bfcp_peer server PORT CONFID FLOORID
 *       Floor control server on 127.0.0.1:PORT (0: any; the line "listening port=N" says
 *       which). Hello is answered with HelloAck, FloorQuery with FloorStatus; a FloorRequest
 *       is answered Pending and then granted by a FloorRequestStatus of its own (which the
 *       participant must acknowledge: "ack FloorRequestStatusAck"); FloorRelease is answered
 *       Released.
 *
 *   bfcp_peer client PORT SERVER_PORT CONFID USERID FLOORID HOLD_MS
 *       Floor participant on 127.0.0.1:PORT: Hello, FloorQuery, FloorRequest; once granted,
 *       FloorRelease after HOLD_MS unless the floor was taken away before. Answers the
 *       server's FloorRequestStatus and FloorStatus with their Acks.
 *
 * Either ends by itself after a minute.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
/* re.h expects the standard integer types declared before it. */
#include <re.h>

enum { LIFETIME_MS = 60000 };

static struct bfcp_conn *conn;
static struct sa server;
static uint32_t confid;
static uint16_t userid, floorid;
static uint16_t frid;            /* the floor request that is granted (server) or ours (client) */
static uint16_t last_frid;
static unsigned hold_ms;
static struct tmr release_tmr, life_tmr;

static enum bfcp_prim prims[] = {
	BFCP_FLOOR_REQUEST, BFCP_FLOOR_RELEASE, BFCP_FLOOR_REQUEST_STATUS, BFCP_FLOOR_QUERY,
	BFCP_FLOOR_STATUS, BFCP_HELLO, BFCP_HELLO_ACK, BFCP_ERROR, BFCP_FLOOR_REQ_STATUS_ACK,
	BFCP_FLOOR_STATUS_ACK, BFCP_GOODBYE, BFCP_GOODBYE_ACK,
};
static enum bfcp_attrib attrs[] = {
	BFCP_BENEFICIARY_ID, BFCP_FLOOR_ID, BFCP_FLOOR_REQUEST_ID, BFCP_REQUEST_STATUS,
	BFCP_ERROR_CODE, BFCP_ERROR_INFO, BFCP_STATUS_INFO, BFCP_BENEFICIARY_INFO,
	BFCP_FLOOR_REQ_INFO, BFCP_FLOOR_REQ_STATUS, BFCP_OVERALL_REQ_STATUS,
};

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int reply_hello(const struct bfcp_msg *msg)
{
	struct bfcp_supprim supprim = { prims, ARRAY_SIZE(prims) };
	struct bfcp_supattr supattr = { attrs, ARRAY_SIZE(attrs) };

	return bfcp_reply(conn, msg, BFCP_HELLO_ACK, 2,
			  BFCP_SUPPORTED_PRIMS, 0, &supprim,
			  BFCP_SUPPORTED_ATTRS, 0, &supattr);
}

/* The request status of a FLOOR-REQUEST-INFORMATION: overall, or else for its floor. */
static enum bfcp_reqstat info_status(const struct bfcp_attr *info)
{
	struct bfcp_attr *group, *status = NULL;

	group = bfcp_attr_subattr(info, BFCP_OVERALL_REQ_STATUS);
	if (group)
		status = bfcp_attr_subattr(group, BFCP_REQUEST_STATUS);
	if (!status) {
		group = bfcp_attr_subattr(info, BFCP_FLOOR_REQ_STATUS);
		if (group)
			status = bfcp_attr_subattr(group, BFCP_REQUEST_STATUS);
	}
	return status ? status->v.reqstatus.status : 0;
}

static bool granted_info(const struct bfcp_attr *attr, void *arg)
{
	(void)arg;
	return attr->type == BFCP_FLOOR_REQ_INFO && info_status(attr) == BFCP_GRANTED;
}

/* "floor-status floor=F holder=U frid=N", or "floor-status floor=F free". */
static void say_floor_status(const struct bfcp_msg *msg)
{
	struct bfcp_attr *floor = bfcp_msg_attr(msg, BFCP_FLOOR_ID);
	struct bfcp_attr *info = bfcp_msg_attr_apply(msg, granted_info, NULL);
	struct bfcp_attr *beneficiary;

	if (!info) {
		say("floor-status floor=%u free", floor ? floor->v.floorid : 0);
		return;
	}
	beneficiary = bfcp_attr_subattr(info, BFCP_BENEFICIARY_INFO);
	say("floor-status floor=%u holder=%u frid=%u", floor ? floor->v.floorid : 0,
	    beneficiary ? beneficiary->v.beneficiaryid : 0, info->v.floorreqid);
}

/* ---- server ---- */

static void ack_handler(int err, const struct bfcp_msg *msg, void *arg)
{
	(void)arg;
	if (err)
		say("ack-missing err=%d", err);
	else
		say("ack %s", bfcp_prim_name(msg->prim));
}

static int reply_request_status(const struct bfcp_msg *msg, uint16_t id,
				enum bfcp_reqstat status)
{
	struct bfcp_reqstatus reqstatus = { status, 0 };

	return bfcp_reply(conn, msg, BFCP_FLOOR_REQUEST_STATUS, 1,
			  BFCP_FLOOR_REQ_INFO, 2, &id,
			  BFCP_OVERALL_REQ_STATUS, 1, &id,
			  BFCP_REQUEST_STATUS, 0, &reqstatus,
			  BFCP_FLOOR_REQ_STATUS, 0, &floorid);
}

static void server_floor_request(const struct bfcp_msg *msg)
{
	struct bfcp_attr *floor = bfcp_msg_attr(msg, BFCP_FLOOR_ID);
	struct bfcp_reqstatus granted = { BFCP_GRANTED, 0 };
	uint16_t user = msg->userid;

	if (!floor || floor->v.floorid != floorid) {
		say("floor-request-refused floor=%u", floor ? floor->v.floorid : 0);
		(void)bfcp_ereply(conn, msg, BFCP_INVALID_FLOOR_ID);
		return;
	}
	say("floor-request user=%u floor=%u", user, floorid);
	frid = ++last_frid;
	(void)reply_request_status(msg, frid, BFCP_PENDING);
	say("pending frid=%u", frid);

	/* The grant follows as the server's own message, which the participant acknowledges. */
	if (bfcp_request(conn, &msg->src, msg->ver, BFCP_FLOOR_REQUEST_STATUS, msg->confid,
			 user, ack_handler, NULL, 1,
			 BFCP_FLOOR_REQ_INFO, 3, &frid,
			 BFCP_OVERALL_REQ_STATUS, 1, &frid,
			 BFCP_REQUEST_STATUS, 0, &granted,
			 BFCP_FLOOR_REQ_STATUS, 0, &floorid,
			 BFCP_BENEFICIARY_INFO, 0, &user) == 0)
		say("granted frid=%u user=%u", frid, user);
}

static void server_floor_release(const struct bfcp_msg *msg)
{
	struct bfcp_attr *id = bfcp_msg_attr(msg, BFCP_FLOOR_REQUEST_ID);

	if (!id || !frid || id->v.floorreqid != frid) {
		say("floor-release-refused frid=%u", id ? id->v.floorreqid : 0);
		(void)bfcp_ereply(conn, msg, BFCP_FLOOR_REQ_ID_NOT_EXIST);
		return;
	}
	(void)reply_request_status(msg, frid, BFCP_RELEASED);
	say("released frid=%u user=%u", frid, msg->userid);
	frid = 0;
}

static void server_floor_query(const struct bfcp_msg *msg)
{
	struct bfcp_reqstatus granted = { BFCP_GRANTED, 0 };

	say("floor-query user=%u", msg->userid);
	if (!frid) {
		(void)bfcp_reply(conn, msg, BFCP_FLOOR_STATUS, 1, BFCP_FLOOR_ID, 0, &floorid);
		return;
	}
	(void)bfcp_reply(conn, msg, BFCP_FLOOR_STATUS, 2,
			 BFCP_FLOOR_ID, 0, &floorid,
			 BFCP_FLOOR_REQ_INFO, 2, &frid,
			 BFCP_OVERALL_REQ_STATUS, 1, &frid,
			 BFCP_REQUEST_STATUS, 0, &granted,
			 BFCP_FLOOR_REQ_STATUS, 0, &floorid);
}

static void server_recv(const struct bfcp_msg *msg, void *arg)
{
	(void)arg;
	if (msg->confid != confid) {
		say("wrong-conference confid=%u", msg->confid);
		(void)bfcp_ereply(conn, msg, BFCP_CONF_NOT_EXIST);
		return;
	}
	switch (msg->prim) {
	case BFCP_HELLO:
		say("hello user=%u", msg->userid);
		(void)reply_hello(msg);
		break;
	case BFCP_FLOOR_QUERY:
		server_floor_query(msg);
		break;
	case BFCP_FLOOR_REQUEST:
		server_floor_request(msg);
		break;
	case BFCP_FLOOR_RELEASE:
		server_floor_release(msg);
		break;
	case BFCP_GOODBYE:
		say("goodbye user=%u", msg->userid);
		(void)bfcp_reply(conn, msg, BFCP_GOODBYE_ACK, 0);
		break;
	default:
		say("unexpected %s", bfcp_prim_name(msg->prim));
		(void)bfcp_ereply(conn, msg, BFCP_UNKNOWN_PRIM);
		break;
	}
}

/* ---- client ---- */

static void release_resp(int err, const struct bfcp_msg *msg, void *arg)
{
	struct bfcp_attr *info;

	(void)arg;
	if (err || msg->prim != BFCP_FLOOR_REQUEST_STATUS) {
		say("release-failed err=%d prim=%s", err, msg ? bfcp_prim_name(msg->prim) : "-");
		return;
	}
	info = bfcp_msg_attr(msg, BFCP_FLOOR_REQ_INFO);
	say("release-status %s frid=%u", bfcp_reqstatus_name(info ? info_status(info) : 0),
	    info ? info->v.floorreqid : 0);
}

static void release_floor(void *arg)
{
	(void)arg;
	say("releasing frid=%u", frid);
	(void)bfcp_request(conn, &server, BFCP_VER2, BFCP_FLOOR_RELEASE, confid, userid,
			   release_resp, NULL, 1, BFCP_FLOOR_REQUEST_ID, 0, &frid);
}

/* What a FloorRequestStatus, answer or the server's own, says of our request. */
static void client_request_status(const struct bfcp_msg *msg)
{
	struct bfcp_attr *info = bfcp_msg_attr(msg, BFCP_FLOOR_REQ_INFO);
	enum bfcp_reqstat status;

	if (!info) {
		say("status-without-floor-request-information");
		return;
	}
	status = info_status(info);
	frid = info->v.floorreqid;
	say("status %s frid=%u", bfcp_reqstatus_name(status), frid);
	if (status == BFCP_GRANTED && !tmr_isrunning(&release_tmr))
		tmr_start(&release_tmr, hold_ms, release_floor, NULL);
	else if (status != BFCP_GRANTED && status != BFCP_PENDING && status != BFCP_ACCEPTED)
		tmr_cancel(&release_tmr);
}

static void request_resp(int err, const struct bfcp_msg *msg, void *arg)
{
	(void)arg;
	if (err || msg->prim != BFCP_FLOOR_REQUEST_STATUS) {
		say("request-failed err=%d prim=%s", err, msg ? bfcp_prim_name(msg->prim) : "-");
		return;
	}
	client_request_status(msg);
}

static void query_resp(int err, const struct bfcp_msg *msg, void *arg)
{
	(void)arg;
	if (err || msg->prim != BFCP_FLOOR_STATUS)
		say("query-failed err=%d prim=%s", err, msg ? bfcp_prim_name(msg->prim) : "-");
	else
		say_floor_status(msg);
	say("requesting floor=%u", floorid);
	(void)bfcp_request(conn, &server, BFCP_VER2, BFCP_FLOOR_REQUEST, confid, userid,
			   request_resp, NULL, 1, BFCP_FLOOR_ID, 0, &floorid);
}

static void hello_resp(int err, const struct bfcp_msg *msg, void *arg)
{
	(void)arg;
	if (err || msg->prim != BFCP_HELLO_ACK) {
		say("hello-failed err=%d prim=%s", err, msg ? bfcp_prim_name(msg->prim) : "-");
		return;
	}
	say("hello-ack");
	(void)bfcp_request(conn, &server, BFCP_VER2, BFCP_FLOOR_QUERY, confid, userid,
			   query_resp, NULL, 1, BFCP_FLOOR_ID, 0, &floorid);
}

static void client_recv(const struct bfcp_msg *msg, void *arg)
{
	(void)arg;
	switch (msg->prim) {
	case BFCP_FLOOR_REQUEST_STATUS:
		client_request_status(msg);
		(void)bfcp_reply(conn, msg, BFCP_FLOOR_REQ_STATUS_ACK, 0);
		break;
	case BFCP_FLOOR_STATUS:
		say_floor_status(msg);
		(void)bfcp_reply(conn, msg, BFCP_FLOOR_STATUS_ACK, 0);
		break;
	case BFCP_HELLO:
		(void)reply_hello(msg);
		break;
	case BFCP_GOODBYE:
		say("goodbye");
		(void)bfcp_reply(conn, msg, BFCP_GOODBYE_ACK, 0);
		break;
	default:
		say("unexpected %s", bfcp_prim_name(msg->prim));
		(void)bfcp_ereply(conn, msg, BFCP_UNKNOWN_PRIM);
		break;
	}
}

/* ---- main ---- */

static void stop(void *arg)
{
	(void)arg;
	say("lifetime-over");
	re_cancel();
}

static void signal_handler(int sig)
{
	(void)sig;
	re_cancel();
}

static int usage(void)
{
	fprintf(stderr, "usage: bfcp_peer server PORT CONFID FLOORID\n"
			"       bfcp_peer client PORT SERVER_PORT CONFID USERID FLOORID HOLD_MS\n");
	return 2;
}

int main(int argc, char *argv[])
{
	bool is_server = argc == 5 && !strcmp(argv[1], "server");
	bool is_client = argc == 8 && !strcmp(argv[1], "client");
	struct sa local;
	int err;

	if (!is_server && !is_client)
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);

	err = libre_init();
	if (err)
		return 1;
	tmr_init(&release_tmr);
	tmr_init(&life_tmr);
	sa_set_str(&local, "127.0.0.1", (uint16_t)atoi(argv[2]));
	if (is_server) {
		confid = (uint32_t)strtoul(argv[3], NULL, 10);
		floorid = (uint16_t)atoi(argv[4]);
	}
	else {
		sa_set_str(&server, "127.0.0.1", (uint16_t)atoi(argv[3]));
		confid = (uint32_t)strtoul(argv[4], NULL, 10);
		userid = (uint16_t)atoi(argv[5]);
		floorid = (uint16_t)atoi(argv[6]);
		hold_ms = (unsigned)atoi(argv[7]);
	}

	err = bfcp_listen(&conn, BFCP_UDP, &local, NULL,
			  is_server ? server_recv : client_recv, NULL);
	if (err) {
		fprintf(stderr, "bfcp_listen: %s\n", strerror(err));
		return 1;
	}
	say("listening port=%u", sa_port(&local));

	if (is_client) {
		say("hello");
		(void)bfcp_request(conn, &server, BFCP_VER2, BFCP_HELLO, confid, userid,
				   hello_resp, NULL, 0);
	}
	tmr_start(&life_tmr, LIFETIME_MS, stop, NULL);
	(void)re_main(signal_handler);

	tmr_cancel(&release_tmr);
	tmr_cancel(&life_tmr);
	conn = mem_deref(conn);
	libre_close();
	return 0;
}
