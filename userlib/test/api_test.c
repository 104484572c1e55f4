// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The API suite on the default backend (run with HEAPDEV_BACKEND=memfd on
 * hosts without /dev/heapdev).
 */
#include "api_suite.h"
#include "t.h"

int main(int argc, char **argv)
{
	int ret = api_suite_child(argc, argv);

	if (ret >= 0)
		return ret;
	printf("# heapdev API suite\n");
	api_suite(argv[0]);
	return t_done();
}
