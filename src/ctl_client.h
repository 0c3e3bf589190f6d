/* ctl_client.h - `happac ctl`: one request to the daemon's control socket
 * (ctl_request.h), its reply printed. */
#ifndef HAPPAC_CTL_CLIENT_H
#define HAPPAC_CTL_CLIENT_H

/* `happac ctl [--socket PATH] drain|maint|ready [--ramp D]|status`, argv[0]
 * being "ctl". Prints the reply. Exit status: 0 ok, 1 the daemon said
 * error, 2 bad usage or no daemon on the socket. */
int ctl_client_main(int argc, char **argv);

#endif
