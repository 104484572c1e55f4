// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * A server loop with a heap per request.
 *
 * Every request gets its own private heap: everything the request builds
 * (the parsed header table, the body, the response) comes from it, nothing
 * is freed piecemeal, and the heap is destroyed in one call when the
 * response has gone out.  A request cannot leak memory into the next one,
 * and a bug in one request's code cannot corrupt another request's data.
 *
 * With HEAPSTAT naming the heapstat tool, the first request shows the
 * admin view of this process while its heap is alive.
 *
 *   server [REQUESTS]        (HEAPDEV_BACKEND=memfd without /dev/heapdev)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <heapdev.h>

struct header {
	char *name;
	char *value;
	struct header *next;
};

struct request {
	struct heapdev_heap *heap;
	struct header *headers;
	char *body;
	size_t body_len;
};

/* Print the admin view of this process: "$HEAPSTAT --heaps -p <pid>". */
static void show_heaps(const char *when)
{
	const char *heapstat = getenv("HEAPSTAT");
	char cmd[512];

	if (!heapstat)
		return;
	snprintf(cmd, sizeof(cmd), "%s --heaps -p %ld", heapstat,
		 (long)getpid());
	printf("--- admin view %s:\n", when);
	fflush(stdout);
	if (system(cmd))
		fprintf(stderr, "server: %s failed\n", cmd);
}

/* Copy @len bytes of @s into the request's heap as a C string. */
static char *req_strndup(struct request *r, const char *s, size_t len)
{
	char *p = heapdev_alloc(r->heap, len + 1, 0);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = 0;
	return p;
}

/* Parse "Name: value" lines into a list; the body follows a blank line. */
static int parse(struct request *r, const char *raw)
{
	const char *line = raw, *end, *colon;

	while ((end = strchr(line, '\n')) && end != line) {
		struct header *h = heapdev_alloc(r->heap, sizeof(*h), 0);

		colon = memchr(line, ':', (size_t)(end - line));
		if (!h || !colon)
			return -EINVAL;
		h->name = req_strndup(r, line, (size_t)(colon - line));
		h->value = req_strndup(r, colon + 2, (size_t)(end - colon - 2));
		if (!h->name || !h->value)
			return -ENOMEM;
		h->next = r->headers;
		r->headers = h;
		line = end + 1;
	}
	if (end)
		line = end + 1;
	r->body_len = strlen(line);
	r->body = req_strndup(r, line, r->body_len);
	return r->body ? 0 : -ENOMEM;
}

/* Build the response in the request's heap, growing it as needed. */
static char *respond(struct request *r, size_t *len)
{
	size_t cap = 64, used = 0;
	char *out = heapdev_alloc(r->heap, cap, 0);
	struct header *h;

	for (h = r->headers; h && out; h = h->next) {
		size_t need = used + strlen(h->name) + strlen(h->value) + 8;

		if (need > cap) {
			cap = 2 * need;
			out = heapdev_realloc(r->heap, out, cap, 0);
			if (!out)
				return NULL;
		}
		used += (size_t)sprintf(out + used, "echo-%s=%s\n", h->name,
					h->value);
	}
	*len = used;
	return out;
}

static int handle(unsigned int id, size_t *resp_len)
{
	struct request r = { 0 };
	char raw[512], *resp;
	int err;

	snprintf(raw, sizeof(raw),
		 "Host: example.org\nX-Request: %u\nAccept: */*\n"
		 "User-Agent: heapdev-example\n\nhello from request %u\n",
		 id, id);
	err = heapdev_create(NULL, &r.heap);
	if (err)
		return err;
	err = parse(&r, raw);
	resp = err ? NULL : respond(&r, resp_len);
	if (!err && !resp)
		err = -ENOMEM;
	if (!err && id == 0)
		show_heaps("while request 0 holds its heap");
	/* One call releases everything the request allocated. */
	heapdev_destroy(r.heap);
	return err;
}

int main(int argc, char **argv)
{
	unsigned int n = argc > 1 ? (unsigned int)atoi(argv[1]) : 1000, i;
	size_t count_before, count_after, total = 0, len = 0;
	int err;

	heapdev_heaps(NULL, 0, &count_before);
	for (i = 0; i < n; i++) {
		err = handle(i, &len);
		if (err) {
			fprintf(stderr, "request %u failed: %s%s\n", i,
				strerror(-err), err == -ENOENT ?
				" (no /dev/heapdev: load the module or set "
				"HEAPDEV_BACKEND=memfd)" : "");
			return 1;
		}
		total += len;
	}
	heapdev_heaps(NULL, 0, &count_after);
	printf("served %u requests, %zu response bytes, each in its own heap\n",
	       n, total);
	printf("live heaps before: %zu, after: %zu\n", count_before,
	       count_after);
	return count_after == count_before ? 0 : 1;
}
