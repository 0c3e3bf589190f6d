/* check.h - `happac check`: ask an agent once, as a Consul script check.
 *
 * A one-shot client, not part of the daemon: it connects to an agent (happac
 * or any HAProxy agent-check server), sends nothing, reads one line within a
 * deadline, prints it and maps it to an exit status that Consul's script
 * check understands: 0 (passing) when the agent says up, 2 (critical) for
 * everything else. 1 (warning) is never used, so a sick node never shows as
 * merely "warning". */
#ifndef HAPPAC_CHECK_H
#define HAPPAC_CHECK_H

/* Exit status of `happac check` for an up agent and for all else. */
#define CHECK_EXIT_UP 0
#define CHECK_EXIT_CRITICAL 2

/* Run the subcommand. argv[0] is "check"; the rest are its options
 * (--host H, --port P, --timeout T, --help). Returns the process exit status:
 * CHECK_EXIT_UP, or CHECK_EXIT_CRITICAL for down, no answer, timeout, any
 * error and bad arguments; 0 after --help. Writes the agent's line to stdout,
 * diagnostics to stderr. Blocks for at most the timeout. */
int check_main(int argc, char **argv);

#endif
