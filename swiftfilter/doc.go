// Package swiftfilter is the proxy-side half of Arca: it tells the object
// servers which project key encrypts each object write. It has two shapes
// (docs/pipeline.md), sharing one set of rules (decision.go: DecideWrite,
// keyFor):
//
//   - the reverse proxy, in front of the Swift proxy server (the filter on
//     the public port 8080, swift-proxy-server on 127.0.0.1:8081): it
//     validates Keystone tokens itself and does the steps below;
//   - the pipeline shape (pipeline.go): the arca middleware in the Swift
//     proxy's own pipeline (python/arca_swift, after authtoken and
//     keystoneauth, right of every middleware that builds subrequests)
//     strips X-Arca-Key-Id, lets Swift authorize each object PUT and asks
//     the decision socket for its key id; one JSON line each way on a Unix
//     socket whose peers are checked (file mode, SO_PEERCRED). It also
//     sends each container listing page's sealed ETags to the socket in
//     one request (pipeline_listing.go: open_listing), which opens them
//     with the reverse proxy's listing opener; no key reaches the proxy.
//
// The reverse proxy's steps, for every request:
//
// For every request, in order:
//
//  1. /healthcheck is answered by the filter itself (GET 200 "OK", HEAD 204,
//     503 while the disable_by_file_path file exists). /metrics is not
//     served here by default: it has a loopback listener of its own
//     ([metrics] bind, default the service port + 10000), and GET /metrics
//     on this port goes on to Swift like any path a Swift user may send.
//     Only with [metrics] bind set empty does the filter answer it here.
//  2. Header names that WSGI would fold onto a header the filter reads
//     (X_Auth_Token for X-Auth-Token, Destination_Account, ...) are refused
//     with 400: Swift would read them while the filter did not. Headers the
//     request's Connection header names are dropped before anything is
//     read, as the reverse proxy drops them before Swift: a token or a
//     Destination-Account named there counts for neither.
//  3. The path is split the way Swift splits it (ParsePath); a path that is
//     not UTF-8 or holds a NUL gets Swift's own answer, 412 "Invalid UTF8
//     or contains NULL", before any token is read (as in Swift).
//  4. Every token the request carries (X-Auth-Token, X-Storage-Token,
//     X-Service-Token) is validated with Keystone through a bounded cache: an
//     invalid one (or one with bytes other than visible ASCII, which Swift's
//     server and this one would trim differently) answers 401 with
//     WWW-Authenticate, Keystone unavailable 503;
//     either way nothing reaches Swift and no key is resolved (fail closed).
//     The 401 is Swift's (its page, realm challenge, then Keystone's).
//     Requests without a token (TempURL, FormPost, public containers, /info)
//     pass: Swift decides. The user token is the one keystonemiddleware
//     takes: X-Auth-Token whenever that header is present (even empty), else
//     X-Storage-Token. X-Service-Token never counts as the user's.
//  5. Every header Swift would read as X-Arca-Key-Id (any case, '_' for '-',
//     repeated; request trailers too) is removed.
//  6. Object PUT (with or without X-Copy-From) and object COPY get
//     X-Arca-Key-Id set to the active key id of the project owning the
//     account written to (the path's account, or for COPY the
//     Destination-Account when given) ONLY when the user token is scoped to
//     that project. The account is mapped to its project by the reseller
//     prefixes (AUTH_ by default), as Swift's keystoneauth does. Resolving
//     an active key creates it on first use, and the filter runs before
//     Swift authorizes: so an anonymous write, a domain-scoped token, or
//     another project's token (writing through a container ACL, or a
//     reseller admin) gets no key id and goes on to Swift, which decides;
//     the object server then resolves the key of an account Swift let it
//     write to. Invented accounts thus never get keys. An account that
//     matches no prefix gets no key id either. For the owner's writes, the
//     key service unavailable (and no cached answer) answers 503 and
//     forwards nothing; a key the key service does not know, 403.
//  7. The request goes on, streamed, to the upstream Swift proxy
//     (httputil.ReverseProxy: no body buffering, Expect: 100-continue end to
//     end, chunked bodies, 256 KiB copy buffers, a keep-alive pool, the
//     client's disconnection cancels the upstream request). The upstream
//     unreachable answers 503. A bodiless DELETE sent on a pooled
//     connection the proxy was closing is sent again on a new one, as
//     net/http does for GET and HEAD (proxy.go markReplayable), and idle
//     connections are dropped before the proxy's client_timeout. Full duplex (upstream.go): Swift's early
//     answers (413, 401, 404 ...) reach a client still holding its body
//     back at once; Expect: 100-continue is Swift's to answer, never the
//     filter's. A PUT or POST with neither Content-Length nor
//     Transfer-Encoding goes upstream without them on a connection of its
//     own (net/http would add Content-Length: 0, and Swift stores an empty
//     object where it answers 411). Connection is answered as eventlet
//     does. docs/compatibility.md lists what still differs, and why.
//  8. The answer to a GET of a container, when it is a JSON or XML listing
//     of an account that maps to a project, is rewritten as it streams
//     (listing.go, listing_entries.go): every sealed listing ETag (the
//     hash, SLO's slo_etag, a symlink's symlink_etag) is opened with the
//     key's listing key (keyclient.ListingKeyResolver; the filter's role
//     reads listing keys, never keys). Values that are not sealed pass as
//     they are; a destroyed key's stay sealed; the key service unavailable
//     fails the listing (503, or a cut connection once it has started).
//  9. The answer to a GET or HEAD of a DLO manifest (X-Object-Manifest)
//     gets the ETag dlo computes, from the segments' opened listing: the
//     filter lists them again, as the caller, through the Swift proxy
//     (dlo.go); the proxy's dlo computed it from the sealed values.
//
// Filter.Wrap applies steps 2 to 6 in front of any http.Handler, for Go
// servers that want the same checks without the proxy.
//
// # How Swift splits a path, and why the filter follows it exactly
//
// eventlet's WSGI server percent-decodes the request path, %2F included,
// into PATH_INFO, and Swift's proxy splits that with
// split_path(path, 1, 4, rest_with_last=True): "/<version>/<account>/
// <container>/<object...>". No "." or ".." is resolved and "//" is not
// merged; the object keeps its slashes. net/http gives the same decoded path
// in URL.Path, so the filter splits URL.Path and forwards the request line
// unchanged (URL.EscapedPath decodes to the same URL.Path): Swift and the
// filter see the same account. The filter never cleans paths (no ServeMux).
//
// Requests whose account Swift may rewrite after the filter (domain_remap,
// cname_lookup in the proxy pipeline) and requests Swift builds itself
// (versioned writes, SLO/DLO, bulk extraction, the reconciler) reach the
// object server without a key id; the object server then asks the key service
// for the account's active key itself. A missing key id is therefore never
// a hole; a forged one would be, and none gets through.
//
// Wiring: LoadSettings reads swift-filter.conf ([keystone_authtoken] through
// keystone.LoadConfig, as arca-api reads it), Build assembles the validator,
// metrics, key client, health check and Filter, and Service.Serve runs them
// with internal/serve; cmd/arca-swift-filter only calls these.
//
// Not here: encryption (objcrypt, the object server), Swift authorization
// (keystoneauth in the Swift proxy decides what a token may do).
package swiftfilter
