// SPDX-License-Identifier: GPL-2.0-only
#include "agent/daemon.h"

int main(int argc, char **argv)
{
	return zt_daemon_main(argc, argv);
}
