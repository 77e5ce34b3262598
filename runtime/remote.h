/* SPDX-License-Identifier: MIT */
/*
 * The remote store: the chain's last store (store.h) on Redis servers
 * (shards), in the swap file's place.
 *
 * Each slot's page is a value of 4 KiB under a key of this run's own
 * (lp:<random 64 bits>:<slot>:<generation>), on R of the N shards: the
 * first R live ones in a ring order that starts where a stable hash of the
 * slot's cluster (16 consecutive slots) puts it.  A write completes only
 * once R shards acknowledged each of its pages; a read asks the holders in
 * that order and takes the first answer of a whole page.  A shard that
 * fails or does not answer within LP_REMOTE_TIMEOUT_MS is left out for a
 * second, then tried again.  Pages no live holder answers for are an
 * error (-EIO: the fault path retries, then SIGBUS), never zeros.
 *
 * Requests are served by worker threads, each with a connection to every
 * shard, commands pipelined per shard; a request ends as a completion on
 * the caller's ring (io_post_remote).  Keys of a freed slot are deleted in
 * batches; all of the run's keys at destroy.  A slot rewritten gets a new
 * generation, so a late delete never meets its new content.
 */
#ifndef LP_REMOTE_H
#define LP_REMOTE_H

#include <stdint.h>

#include "store.h"
#include "swap.h"

#define LP_REMOTE_SHARDS_MAX 16
#define LP_REMOTE_TIMEOUT_MS 500

struct remote;

/*
 * Connect to the shards of spec ("redis://host:port,host:port,..." or
 * "host:port,..."; a host may be [v6]) with replicas copies of each page
 * (0: 2, at most the number of shards).  The password, if any, comes from
 * the environment: LAZYPAGE_REMOTE_AUTH ("password" or "user password"),
 * or the first line of the file LAZYPAGE_REMOTE_AUTH_FILE names.  sw
 * opens sealed pages (encrypted swap).  0, or -EINVAL (spec), -ENOTSUP
 * (built without hiredis), -ECONNREFUSED (fewer shards answer than
 * replicas), -EACCES (AUTH refused), -ENOMEM.
 */
int remote_new(struct remote **out, const char *spec, unsigned replicas,
	       struct lp_swap *sw);
struct lp_store *remote_as_store(struct remote *rm);

#endif /* LP_REMOTE_H */
