/* recipe.h - `happac recipe`: print the HAProxy, Consul, systemd, Patroni
 * and Kubernetes configuration that goes with happac, instead of asking
 * users to copy blocks out of a README.
 *
 * Everything here is a one-shot command that writes text to stdout and
 * exits; the daemon never calls it. recipe.c only dispatches;
 * recipe_haproxy.c, recipe_consul.c, recipe_systemd.c, recipe_patroni.c and
 * recipe_k8s.c hold one recipe each, recipe_util.c (recipe_util.h) what
 * they share. The parse functions are exported so that the unit tests can
 * check every rejected input and its message. */
#ifndef HAPPAC_RECIPE_H
#define HAPPAC_RECIPE_H

#include <stddef.h>
#include <stdio.h>

#define RECIPE_MAX_NODES 64
/* HAProxy proxy and server names, and Consul service names. */
#define RECIPE_NAME_MAX 33
#define RECIPE_HOST_MAX 254
#define RECIPE_PATH_MAX 256

/* Exit status for a bad command line, as everywhere in happac. */
#define RECIPE_EXIT_USAGE 2

/* happac's own defaults, and the ports of what runs next to it. */
#define RECIPE_DEFAULT_AGENT_PORT 5555
#define RECIPE_DEFAULT_REPLICA_AGENT_PORT 5556
/* Debian's haproxy package: its admin socket, and a directory it owns. */
#define RECIPE_HAPROXY_STATS_SOCKET "/run/haproxy/admin.sock"
#define RECIPE_HAPROXY_STATE_FILE "/var/lib/haproxy/server-state"
#define RECIPE_DEFAULT_PGBOUNCER_PORT 6432
#define RECIPE_DEFAULT_POSTGRES_PORT 5432
#define RECIPE_DEFAULT_PATRONI_PORT 8008
#define RECIPE_DEFAULT_BIND_PORT 5000
/* happac has no default --http-listen; these are the recipes' convention,
 * one side port per profile, loopback only. */
#define RECIPE_DEFAULT_HTTP_PORT 8405
#define RECIPE_DEFAULT_REPLICA_HTTP_PORT 8406
#define RECIPE_DEFAULT_BIN "/usr/bin/happac"

enum recipe_parse {
	RECIPE_PARSE_OK,    /* render */
	RECIPE_PARSE_HELP,  /* --help was printed: exit 0 */
	RECIPE_PARSE_ERROR, /* err holds one line naming the bad input: exit 2 */
};

enum recipe_scenario {
	RECIPE_SCENARIO_A, /* HAProxy asks Patroni directly */
	RECIPE_SCENARIO_B, /* happac is the agent of every PgBouncer server */
	RECIPE_SCENARIO_C, /* PgBouncer while one is usable, else PostgreSQL */
};

enum recipe_family {
	RECIPE_FAMILY_ANY,  /* bind only: every address ("*") */
	RECIPE_FAMILY_IPV4,
	RECIPE_FAMILY_IPV6,
	RECIPE_FAMILY_NAME, /* DNS name: HAProxy resolves it when it starts */
};

/* A host (without brackets) and a port. */
struct recipe_endpoint {
	char host[RECIPE_HOST_MAX];
	enum recipe_family family;
	int port;
};

struct recipe_node {
	char name[RECIPE_NAME_MAX];
	char addr[RECIPE_HOST_MAX]; /* IPv6 without brackets */
	enum recipe_family family;
};

struct recipe_haproxy {
	enum recipe_scenario scenario;
	struct recipe_node nodes[RECIPE_MAX_NODES];
	int node_count;
	int agent_port;         /* happac, primary profile */
	int replica_agent_port; /* happac, replica profile (--replicas) */
	int pgbouncer_port;
	int postgres_port;
	int patroni_port;
	int via_happac;         /* scenario a: the checks ask happac's side port */
	int http_port;          /* happac --http-listen, for --via-happac */
	struct recipe_endpoint bind;
	struct recipe_endpoint replica_bind;
	int replicas;
	int full;                          /* add global and defaults */
	char stats_socket[RECIPE_PATH_MAX]; /* "" = none; needs full */
	char server_state_file[RECIPE_PATH_MAX]; /* global server-state-file; needs full */
	char prefix[RECIPE_NAME_MAX];      /* proxy names: PREFIX_write, ... */
};

enum recipe_service { RECIPE_SERVICE_PRIMARY, RECIPE_SERVICE_REPLICA };

struct recipe_consul {
	enum recipe_service service;
	char name[RECIPE_NAME_MAX];
	struct recipe_endpoint http;  /* happac --http-listen */
	struct recipe_endpoint agent; /* happac agent port, for --script */
	int pgbouncer_port;           /* the port the service offers */
	int script;
	char bin[RECIPE_PATH_MAX];
};

struct recipe_k8s {
	char profile[32];             /* the readiness path, without '/' */
	int http_port;                /* happac --http-listen in the pod */
};

/* Run `happac recipe ...`. argv[0] is "recipe". Writes the recipe to stdout
 * and one line naming the bad input to stderr. Returns the exit status: 0, or
 * RECIPE_EXIT_USAGE for a bad command line. */
int recipe_main(int argc, char **argv);

/* ---- the recipes */

/* Parse "NAME=ADDR" (ADDR: IPv4, IPv6 with or without brackets, or a DNS
 * name) into n. 0, or -1 with err naming the value. */
int recipe_haproxy_parse_node(const char *arg, struct recipe_node *n, char *err,
			      size_t errlen);

/* Parse the options of `recipe haproxy` (argv[0] == "haproxy") into r,
 * defaults included, and cross-check them. --help is printed to out. argv's
 * pointer array may be permuted (getopt); the strings are only read. */
enum recipe_parse recipe_haproxy_parse(struct recipe_haproxy *r, int argc, char **argv,
				       FILE *out, char *err, size_t errlen);

/* Print the HAProxy sections for r (parsed and valid). */
void recipe_haproxy_render(const struct recipe_haproxy *r, FILE *out);
/* Its comment header (recipe_haproxy_head.c). */
void recipe_haproxy_head(const struct recipe_haproxy *r, FILE *out);

/* `recipe patroni`: the patroni.yml lines for Patroni's callbacks. */
struct recipe_patroni {
	char bin[RECIPE_PATH_MAX];
	char socket[RECIPE_PATH_MAX];
};
/* Parse the options of `recipe patroni` (argv[0] == "patroni"). */
enum recipe_parse recipe_patroni_parse(struct recipe_patroni *p, int argc, char **argv,
				       FILE *out, char *err, size_t errlen);
void recipe_patroni_render(const struct recipe_patroni *p, FILE *out);

/* Parse the options of `recipe consul` (argv[0] == "consul"), as above. */
enum recipe_parse recipe_consul_parse(struct recipe_consul *c, int argc, char **argv,
				      FILE *out, char *err, size_t errlen);

/* Print the Consul service definition (JSON) for c. */
void recipe_consul_render(const struct recipe_consul *c, FILE *out);

/* Parse the options of `recipe k8s` (argv[0] == "k8s"), as above. */
enum recipe_parse recipe_k8s_parse(struct recipe_k8s *k, int argc, char **argv, FILE *out,
				   char *err, size_t errlen);

/* Print the readiness and liveness probes (YAML) for k. */
void recipe_k8s_render(const struct recipe_k8s *k, FILE *out);

/* `recipe systemd` (argv[0] == "systemd"): the unit and the env file for the
 * happac options in argv, read as happac itself reads them (environment and
 * -c file included). Returns the exit status like recipe_main. */
int recipe_systemd_main(int argc, char **argv, FILE *out);

#endif
