// Package health answers /healthcheck the way oslo.middleware's
// healthcheck does, for every Arca service, plus a detailed variant for
// operators.
//
//   - GET /healthcheck: 200 "OK"; HEAD: 204. While the file named by
//     disable_by_file_path exists: 503 "DISABLED BY FILE" (a load balancer
//     drains the node). The plain check runs no dependency check: it says
//     the process answers, so a database outage does not make every node
//     leave the pool at once.
//   - GET /healthcheck/detailed (or /healthcheck?detailed=1): runs every
//     Check (database, Keystone, key service, ...) concurrently under a
//     timeout and answers JSON, 200 when all pass, 503 otherwise. Only
//     peers in the allowed networks get it (default: loopback); others get
//     403. The JSON names each check and says ok or a fixed reason
//     ("timeout", "unreachable", "failed", or the check's PublicError);
//     never an error text, a DSN, a URL with credentials or a password.
//
// What it is not: a liveness probe of each request path, nor metrics.
package health
