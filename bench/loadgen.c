/*
 * loadgen: a load client that behaves like many HAProxy agent checks.
 *
 * Each check opens a NEW TCP connection (as HAProxy does for every agent check),
 * optionally sends the `agent-send` bytes, reads until the server closes, and closes.
 * C checks are kept in flight on one epoll loop. The run is bounded by a duration and a
 * count (both have hard caps), and an optional rate turns the closed loop into an open
 * one (checks start on a fixed schedule, for the probe amplification test).
 *
 * Latency is measured from the connect() call to EOF on the monotonic clock.
 * The result is printed as ONE key=value line on stdout so that a driver script can
 * parse it; human-readable notes go to stderr.
 *
 * Only loopback targets are accepted (127.0.0.0/8 and ::1): this is a load generator
 * and must never be pointed at someone else's machine by a typo.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOADGEN_MAX_CONC 4096
#define LOADGEN_MAX_SECONDS 600.0
#define LOADGEN_MAX_COUNT 100000000ULL
#define LOADGEN_MAX_RATE 1000000.0
#define LOADGEN_MAX_SEND 1024
#define LOADGEN_MAX_SOURCES 16
#define LOADGEN_LINE_MAX 256 /* bytes of the reply kept for classification */
#define LOADGEN_SPIN_NS 2000000ULL /* rate mode: poll, do not sleep, this close to a start */

/* Why a check ended; one string table feeds the output keys. */
enum check_result {
	CHECK_OK,	   /* a complete line was read, then EOF */
	CHECK_ERR_CONNECT, /* connect failed (refused, unreachable) */
	CHECK_ERR_ADDR,	   /* no local port/address (EADDRNOTAVAIL, EMFILE, ...) */
	CHECK_ERR_RESET,   /* reset while sending or reading */
	CHECK_ERR_TIMEOUT, /* no EOF within the per-check timeout */
	CHECK_ERR_NOLINE,  /* EOF without a line terminator (HAProxy ignores it) */
	CHECK_ERR_OTHER,   /* any other errno */
	CHECK_RESULT_COUNT
};

static const char *const check_result_names[CHECK_RESULT_COUNT] = {
	[CHECK_OK] = "ok",
	[CHECK_ERR_CONNECT] = "err_connect",
	[CHECK_ERR_ADDR] = "err_addr",
	[CHECK_ERR_RESET] = "err_reset",
	[CHECK_ERR_TIMEOUT] = "err_timeout",
	[CHECK_ERR_NOLINE] = "err_noline",
	[CHECK_ERR_OTHER] = "err_other",
};

/* Replies are counted by their first word, as HAProxy would read it. */
enum reply_word {
	WORD_UP,
	WORD_DOWN,
	WORD_FAIL,
	WORD_STOPPED,
	WORD_READY,
	WORD_DRAIN,
	WORD_MAINT,
	WORD_EMPTY, /* a line with no word at all ("\n") */
	WORD_OTHER,
	WORD_COUNT
};

static const char *const reply_word_names[WORD_COUNT] = {
	[WORD_UP] = "up",
	[WORD_DOWN] = "down",
	[WORD_FAIL] = "fail",
	[WORD_STOPPED] = "stopped",
	[WORD_READY] = "ready",
	[WORD_DRAIN] = "drain",
	[WORD_MAINT] = "maint",
	[WORD_EMPTY] = "empty",
	[WORD_OTHER] = "other",
};

enum slot_state { SLOT_IDLE, SLOT_CONNECTING, SLOT_READING };

struct slot {
	int fd;
	enum slot_state state;
	uint64_t start_ns;
	uint64_t deadline_ns;
	size_t len;		     /* bytes kept in line[] */
	bool line_done;		     /* a line terminator has been seen */
	char line[LOADGEN_LINE_MAX]; /* start of the reply */
};

/*
 * A log-linear latency histogram: 2^HIST_SUB buckets per power of two, so every
 * recorded value is known to within 1/2^HIST_SUB (1.6 %) of itself. Values are ns.
 */
#define HIST_SUB 6
#define HIST_BUCKETS ((64 - HIST_SUB) << HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t min;
	long double sum;
	uint64_t bucket[HIST_BUCKETS];
};

struct options {
	struct sockaddr_storage target;
	socklen_t target_len;
	struct sockaddr_storage source[LOADGEN_MAX_SOURCES];
	socklen_t source_len[LOADGEN_MAX_SOURCES];
	int nsources;
	int conc;
	double seconds;
	uint64_t count;
	double rate; /* checks per second; 0 = as fast as possible */
	int timeout_ms;
	char send[LOADGEN_MAX_SEND];
	size_t send_len;
	const char *label;
};

struct run {
	struct options opt;
	int epfd;
	struct slot *slots;
	int *free; /* stack of idle slot indexes */
	int nfree;
	struct hist hist;
	uint64_t results[CHECK_RESULT_COUNT];
	uint64_t words[WORD_COUNT];
	uint64_t started;
	uint64_t finished;
	uint64_t late; /* rate mode: checks that started > 1 ms behind schedule */
	uint64_t reset_after_line; /* good checks whose EOF was a reset */
	uint64_t send_errors;	   /* agent-send bytes that could not be sent */
	int inflight;
	int next_source;
	uint64_t t0_ns;
	uint64_t last_done_ns;
	int last_errno[CHECK_RESULT_COUNT];
};

static volatile sig_atomic_t loadgen_stop;

static void on_signal(int sig)
{
	(void)sig;
	loadgen_stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen -a ADDR -p PORT [-c CONC] [-t SECONDS] [-n COUNT]\n"
		"               [-r RATE] [-s SEND] [-S SRC[,SRC...]] [-w TIMEOUT_MS] [-l LABEL]\n"
		"  -a ADDR     target address, loopback only (127.0.0.0/8 or ::1)\n"
		"  -p PORT     target port\n"
		"  -c CONC     checks in flight (1..%d, default 4)\n"
		"  -t SECONDS  stop starting checks after this long (default 5, max %.0f)\n"
		"  -n COUNT    stop after this many checks (max %llu); with -t, whichever first\n"
		"  -r RATE     start checks at this many per second (open loop); default: max\n"
		"  -s SEND     bytes to send after connect, like HAProxy agent-send (\\n, \\r,\n"
		"              \\t, \\\\ escapes)\n"
		"  -S SRC,...  local source addresses, used round robin (loopback only)\n"
		"  -w MS       per-check timeout (default 2000)\n"
		"  -l LABEL    a label echoed in the output line\n"
		"Prints one key=value line on stdout.\n",
		LOADGEN_MAX_CONC, LOADGEN_MAX_SECONDS, (unsigned long long)LOADGEN_MAX_COUNT);
}

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

static long long parse_ll(const char *name, const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "loadgen: %s: bad value '%s' (want an integer in %lld..%lld)\n",
			name, s, lo, hi);
		exit(2);
	}
	return v;
}

static double parse_double(const char *name, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "loadgen: %s: bad value '%s' (want a number in %g..%g)\n",
			name, s, lo, hi);
		exit(2);
	}
	return v;
}

/* Parses a loopback address literal into ss; refuses anything else. */
static socklen_t parse_loopback(const char *name, const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
			fprintf(stderr, "loadgen: %s: '%s' is not in 127.0.0.0/8; refusing\n",
				name, s);
			exit(2);
		}
		sin->sin_family = AF_INET;
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
			fprintf(stderr, "loadgen: %s: '%s' is not ::1; refusing\n", name, s);
			exit(2);
		}
		sin6->sin6_family = AF_INET6;
		return sizeof(*sin6);
	}
	fprintf(stderr, "loadgen: %s: '%s' is not an IPv4 or IPv6 address literal\n", name, s);
	exit(2);
}

/* Decodes \n \r \t \\ and \0 escapes of -s into out; returns the length. */
static size_t parse_send(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s; s++) {
		char c = *s;

		if (c == '\\') {
			s++;
			switch (*s) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case '0': c = '\0'; break;
			case '\\': c = '\\'; break;
			default: die_usage("-s: unknown escape in '%s'", s - 1);
			}
		}
		if (n >= cap)
			die_usage("-s: longer than the limit: '%s'", s);
		out[n++] = c;
	}
	return n;
}

static void parse_sources(struct options *o, const char *list)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(list) >= sizeof(buf))
		die_usage("-S: list too long: '%s'", list);
	memcpy(buf, list, strlen(list) + 1);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->nsources >= LOADGEN_MAX_SOURCES)
			die_usage("-S: more than 16 addresses in '%s'", list);
		o->source_len[o->nsources] = parse_loopback("-S", tok, &o->source[o->nsources]);
		o->nsources++;
	}
}

static void parse_options(struct options *o, int argc, char **argv)
{
	const char *addr = NULL;
	long long port = -1;
	bool have_t = false, have_n = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->conc = 4;
	o->seconds = 5.0;
	o->count = LOADGEN_MAX_COUNT;
	o->timeout_ms = 2000;
	o->label = "-";
	while ((c = getopt(argc, argv, "a:p:c:t:n:r:s:S:w:l:h")) != -1) {
		switch (c) {
		case 'a': addr = optarg; break;
		case 'p': port = parse_ll("-p", optarg, 1, 65535); break;
		case 'c': o->conc = (int)parse_ll("-c", optarg, 1, LOADGEN_MAX_CONC); break;
		case 't':
			o->seconds = parse_double("-t", optarg, 0.001, LOADGEN_MAX_SECONDS);
			have_t = true;
			break;
		case 'n':
			o->count = (uint64_t)parse_ll("-n", optarg, 1,
						      (long long)LOADGEN_MAX_COUNT);
			have_n = true;
			break;
		case 'r': o->rate = parse_double("-r", optarg, 0.0, LOADGEN_MAX_RATE); break;
		case 's': o->send_len = parse_send(optarg, o->send, sizeof(o->send)); break;
		case 'S': parse_sources(o, optarg); break;
		case 'w': o->timeout_ms = (int)parse_ll("-w", optarg, 1, 60000); break;
		case 'l': o->label = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!addr || port < 0)
		die_usage("%s", "-a ADDR and -p PORT are required");
	/* A count alone is still bounded in time, by the hard cap. */
	if (have_n && !have_t)
		o->seconds = LOADGEN_MAX_SECONDS;
	for (const char *p = o->label; *p; p++)
		if (*p == ' ' || *p == '=' || *p == '\n')
			die_usage("-l: no spaces or '=' in '%s'", o->label);
	o->target_len = parse_loopback("-a", addr, &o->target);
	if (o->target.ss_family == AF_INET)
		((struct sockaddr_in *)&o->target)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&o->target)->sin6_port = htons((uint16_t)port);
	for (int i = 0; i < o->nsources; i++)
		if (o->source[i].ss_family != o->target.ss_family)
			die_usage("%s", "-S: source and target families differ");
}

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < (1ULL << HIST_SUB))
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return ((msb - HIST_SUB + 1) << HIST_SUB) +
	       (unsigned)((v >> (msb - HIST_SUB)) & ((1u << HIST_SUB) - 1));
}

/* The upper bound of bucket i: a percentile is reported on the pessimistic side. */
static uint64_t hist_value(unsigned i)
{
	unsigned shift;

	if (i < (1u << HIST_SUB))
		return i;
	shift = (i >> HIST_SUB) - 1;
	return (((uint64_t)(1u << HIST_SUB) | (i & ((1u << HIST_SUB) - 1))) << shift) +
	       ((1ULL << shift) - 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
	unsigned i = hist_index(v);

	if (i >= HIST_BUCKETS)
		i = HIST_BUCKETS - 1;
	h->bucket[i]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += (long double)v;
}

static uint64_t hist_percentile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

static enum reply_word classify_line(const char *line, size_t len)
{
	static const enum reply_word known[] = { WORD_UP,    WORD_DOWN,	 WORD_FAIL, WORD_STOPPED,
						 WORD_READY, WORD_DRAIN, WORD_MAINT };
	size_t i = 0, start, wlen;

	/* Words are separated by spaces, tabs or commas, as HAProxy splits them. */
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == ','))
		i++;
	start = i;
	while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != ',')
		i++;
	wlen = i - start;
	if (wlen == 0)
		return WORD_EMPTY;
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
		const char *name = reply_word_names[known[k]];

		if (strlen(name) == wlen && strncasecmp(name, line + start, wlen) == 0)
			return known[k];
	}
	return WORD_OTHER;
}

/* The one exit of a check: records the result, releases the fd, frees the slot. */
static void check_done(struct run *r, struct slot *s, enum check_result res, int err)
{
	uint64_t t = now_ns();

	if (res == CHECK_OK) {
		size_t n = 0;

		while (n < s->len && s->line[n] != '\n' && s->line[n] != '\r')
			n++;
		r->words[classify_line(s->line, n)]++;
		hist_add(&r->hist, t - s->start_ns);
	}
	r->results[res]++;
	if (err)
		r->last_errno[res] = err;
	if (s->fd >= 0) {
		/* close() also removes the fd from the epoll set. */
		close(s->fd);
		s->fd = -1;
	}
	s->state = SLOT_IDLE;
	r->free[r->nfree++] = (int)(s - r->slots);
	r->inflight--;
	r->finished++;
	r->last_done_ns = t;
}

static enum check_result result_of_errno(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ENETUNREACH:
	case EHOSTUNREACH:
		return CHECK_ERR_CONNECT;
	case EADDRNOTAVAIL:
	case EADDRINUSE:
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
		return CHECK_ERR_ADDR;
	case ECONNRESET:
	case EPIPE:
		return CHECK_ERR_RESET;
	case ETIMEDOUT:
		return CHECK_ERR_TIMEOUT;
	default:
		return CHECK_ERR_OTHER;
	}
}

/* Reads what is there; on EOF the check is complete. */
static void check_read(struct run *r, struct slot *s)
{
	char buf[4096];

	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n > 0) {
			size_t keep = (size_t)n;

			for (ssize_t i = 0; i < n && !s->line_done; i++)
				if (buf[i] == '\n' || buf[i] == '\r')
					s->line_done = true;
			if (keep > sizeof(s->line) - s->len)
				keep = sizeof(s->line) - s->len;
			memcpy(s->line + s->len, buf, keep);
			s->len += keep;
			continue;
		}
		if (n == 0) {
			check_done(r, s, s->line_done ? CHECK_OK : CHECK_ERR_NOLINE, 0);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		/*
		 * HAProxy reports a network error only if no data came first ("It is
		 * very common that an RST sent by the server is reported as an error
		 * just after the last data chunk", tcpcheck.c): a complete line then a
		 * reset is a good check. Counted apart, because it is worth knowing.
		 */
		if (s->line_done && (errno == ECONNRESET || errno == EPIPE)) {
			r->reset_after_line++;
			check_done(r, s, CHECK_OK, 0);
			return;
		}
		check_done(r, s, result_of_errno(errno), errno);
		return;
	}
}

/*
 * The connection is up: send the agent-send bytes (if any) and wait for the reply.
 * registered says whether the fd is already in the epoll set (for EPOLLOUT).
 */
static void check_connected(struct run *r, struct slot *s, bool registered)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	if (r->opt.send_len > 0) {
		ssize_t n = send(s->fd, r->opt.send, r->opt.send_len, MSG_NOSIGNAL);

		/*
		 * A few hundred bytes always fit a fresh socket's buffer on loopback. If
		 * the server has already answered and closed, the send may fail; the
		 * reply can still be read, as HAProxy would, so go on reading.
		 */
		if (n < 0)
			r->send_errors++;
	}
	s->state = SLOT_READING;
	if (epoll_ctl(r->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev) < 0)
		check_done(r, s, CHECK_ERR_OTHER, errno);
}

static void check_start(struct run *r, struct slot *s)
{
	const struct options *o = &r->opt;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
	int fd;

	s->len = 0;
	s->line_done = false;
	r->started++;
	r->inflight++;
	s->state = SLOT_CONNECTING;
	s->start_ns = now_ns();
	s->deadline_ns = s->start_ns + (uint64_t)o->timeout_ms * 1000000ULL;
	fd = socket(o->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	s->fd = fd;
	if (fd < 0) {
		check_done(r, s, result_of_errno(errno), errno);
		return;
	}
	if (o->nsources > 0) {
		int one = 1;
		int i = r->next_source;

		r->next_source = (r->next_source + 1) % o->nsources;
		/* Let connect() pick the port so that only the 4-tuple must be unique. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&o->source[i], o->source_len[i]) < 0) {
			check_done(r, s, result_of_errno(errno), errno);
			return;
		}
	}
	if (connect(fd, (const struct sockaddr *)&o->target, o->target_len) == 0) {
		/* Loopback often completes the handshake inside connect(). */
		check_connected(r, s, false);
		return;
	}
	if (errno != EINPROGRESS) {
		check_done(r, s, result_of_errno(errno), errno);
		return;
	}
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		check_done(r, s, CHECK_ERR_OTHER, errno);
}

static void check_event(struct run *r, struct slot *s, uint32_t events)
{
	switch (s->state) {
	case SLOT_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			check_done(r, s, result_of_errno(err), err);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN | EPOLLHUP))) {
			check_done(r, s, CHECK_ERR_OTHER, 0);
			return;
		}
		check_connected(r, s, true);
		return;
	}
	case SLOT_READING:
		check_read(r, s);
		return;
	case SLOT_IDLE:
		/* A stale event for a slot already done cannot happen: close() removes it. */
		fprintf(stderr, "loadgen: internal error: event on an idle slot\n");
		abort();
	}
	fprintf(stderr, "loadgen: internal error: slot in state %d\n", (int)s->state);
	abort();
}

static void expire_slots(struct run *r, uint64_t t)
{
	for (int i = 0; i < r->opt.conc; i++) {
		struct slot *s = &r->slots[i];

		if (s->state != SLOT_IDLE && t >= s->deadline_ns)
			check_done(r, s, CHECK_ERR_TIMEOUT, 0);
	}
}

static struct slot *idle_slot(struct run *r)
{
	if (r->nfree == 0)
		return NULL;
	return &r->slots[r->free[--r->nfree]];
}

static void run_loop(struct run *r)
{
	const struct options *o = &r->opt;
	uint64_t end_start_ns, hard_end_ns, last_expire = 0;
	uint64_t period_ns = o->rate > 0 ? (uint64_t)(1e9 / o->rate) : 0;
	uint64_t next_due;
	struct epoll_event evs[256];

	r->t0_ns = now_ns();
	next_due = r->t0_ns;
	end_start_ns = r->t0_ns + (uint64_t)(o->seconds * 1e9);
	/* In-flight checks get their own timeout after the last start, no more. */
	hard_end_ns = end_start_ns + (uint64_t)o->timeout_ms * 1000000ULL + 1000000000ULL;
	for (;;) {
		uint64_t t = now_ns();
		bool starting = !loadgen_stop && t < end_start_ns && r->started < o->count;
		uint64_t wait_ns = 10000000ULL; /* wake at least every 10 ms for timeouts */
		struct timespec wait;
		int n;

		if (!starting && r->inflight == 0)
			break;
		if (t >= hard_end_ns) {
			fprintf(stderr, "loadgen: hard deadline reached with %d in flight\n",
				r->inflight);
			expire_slots(r, UINT64_MAX);
			break;
		}
		/* Start checks: up to C in flight, on schedule when a rate is set. */
		while (starting && r->inflight < o->conc && r->started < o->count) {
			struct slot *s;

			if (period_ns) {
				if (t < next_due)
					break;
				if (t - next_due > 1000000ULL)
					r->late++;
				next_due += period_ns;
			}
			s = idle_slot(r);
			if (!s)
				break;
			check_start(r, s);
		}
		/*
		 * In rate mode, poll without sleeping when the next start is due within
		 * LOADGEN_SPIN_NS: waking from a sleep costs ~75 us median and over 1 ms at
		 * p99.9 on a small VM, which would add the load client's own wake-up to
		 * every latency and make starts late. Farther starts sleep (ns precision).
		 */
		if (starting && r->inflight < o->conc) {
			if (!period_ns) {
				wait_ns = 0;
			} else {
				t = now_ns();
				wait_ns = next_due > t ? next_due - t : 0;
				if (wait_ns < LOADGEN_SPIN_NS)
					wait_ns = 0;
				else
					wait_ns -= LOADGEN_SPIN_NS;
				if (wait_ns > 10000000ULL)
					wait_ns = 10000000ULL;
			}
		}
		wait.tv_sec = (time_t)(wait_ns / 1000000000ULL);
		wait.tv_nsec = (long)(wait_ns % 1000000000ULL);
		n = epoll_pwait2(r->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), &wait, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("loadgen: epoll_wait");
			exit(1);
		}
		for (int i = 0; i < n; i++)
			check_event(r, evs[i].data.ptr, evs[i].events);
		t = now_ns();
		if (t - last_expire > 10000000ULL) {
			expire_slots(r, t);
			last_expire = t;
		}
	}
}

static void report(const struct run *r)
{
	const struct hist *h = &r->hist;
	uint64_t end = r->last_done_ns > r->t0_ns ? r->last_done_ns : now_ns();
	double secs = (double)(end - r->t0_ns) / 1e9;
	uint64_t errors = 0;

	for (int i = 1; i < CHECK_RESULT_COUNT; i++)
		errors += r->results[i];
	printf("label=%s conc=%d rate=%.0f checks=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64
	       " seconds=%.3f cps=%.1f",
	       r->opt.label, r->opt.conc, r->opt.rate, r->finished, r->results[CHECK_OK],
	       errors, secs, secs > 0 ? (double)r->results[CHECK_OK] / secs : 0.0);
	printf(" lat_min_us=%.1f lat_mean_us=%.1f lat_p50_us=%.1f lat_p90_us=%.1f"
	       " lat_p99_us=%.1f lat_p999_us=%.1f lat_max_us=%.1f",
	       (double)h->min / 1e3, h->count ? (double)(h->sum / h->count) / 1e3 : 0.0,
	       (double)hist_percentile(h, 0.50) / 1e3, (double)hist_percentile(h, 0.90) / 1e3,
	       (double)hist_percentile(h, 0.99) / 1e3, (double)hist_percentile(h, 0.999) / 1e3,
	       (double)h->max / 1e3);
	for (int i = 1; i < CHECK_RESULT_COUNT; i++)
		printf(" %s=%" PRIu64, check_result_names[i], r->results[i]);
	for (int i = 0; i < WORD_COUNT; i++)
		printf(" reply_%s=%" PRIu64, reply_word_names[i], r->words[i]);
	printf(" reset_after_line=%" PRIu64 " send_errors=%" PRIu64 " late=%" PRIu64 "\n",
	       r->reset_after_line, r->send_errors, r->late);
	for (int i = 1; i < CHECK_RESULT_COUNT; i++)
		if (r->results[i] && r->last_errno[i])
			fprintf(stderr, "loadgen: %s: last error: %s\n", check_result_names[i],
				strerror(r->last_errno[i]));
}

int main(int argc, char **argv)
{
	static struct run run;
	struct run *r = &run;
	struct sigaction sa;
	struct rlimit rl;

	parse_options(&r->opt, argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* C sockets plus epoll and stdio must fit the fd limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)r->opt.conc + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)r->opt.conc + 64 ? rl.rlim_max
								     : (rlim_t)r->opt.conc + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	r->slots = calloc((size_t)r->opt.conc, sizeof(*r->slots));
	if (!r->slots) {
		perror("loadgen: calloc");
		return 1;
	}
	r->free = calloc((size_t)r->opt.conc, sizeof(*r->free));
	if (!r->free) {
		perror("loadgen: calloc");
		return 1;
	}
	for (int i = 0; i < r->opt.conc; i++) {
		r->slots[i].fd = -1;
		r->free[r->nfree++] = r->opt.conc - 1 - i;
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		perror("loadgen: epoll_create1");
		return 1;
	}
	run_loop(r);
	report(r);
	fflush(stdout);
	close(r->epfd);
	free(r->free);
	free(r->slots);
	return 0;
}
