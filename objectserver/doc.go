// Package objectserver is arca-object-server: a drop-in replacement for
// Swift 2.30's object server that stores object data encrypted with objcrypt
// under the owning project's key.
//
// Toward the Swift proxy it speaks the object-server protocol (PUT with
// 100-continue and metadata footers, GET/HEAD with ranges and conditionals,
// fast-POST, DELETE, REPLICATE, container updates and async pendings) with
// plaintext-true lengths and ETags. On disk it keeps Swift's layout
// (subpackage diskfile), so Swift's Python auditor, replicator and updater
// work unchanged: Content-Length and ETag there describe the bytes as
// stored, and the crypto metadata lives in X-Object-Sysmeta-Arca-* keys that
// no request can set and no response shows.
//
// Keys come from the key service through a keyclient.Resolver. A write is
// encrypted only under the account's project's active key as this server
// knows it (cached active_key_cache_ttl); X-Arca-Key-Id is a hint that,
// when it differs, makes the server ask for the active key again, never a
// key to write under (keys.go). A read uses the key id recorded with the
// object. Failures are closed: no key means 503 (unreachable), 410
// (destroyed) or 403 (not the project's key), never plaintext on disk and
// never ciphertext served as an object.
//
// On disk, an encrypted object's .data file holds the objcrypt stream; its
// user.swift.metadata pickle has Swift's keys (name, X-Timestamp,
// Content-Type, Content-Length and ETag of the stored bytes) plus the
// X-Object-Sysmeta-Arca-* keys of subpackage sysmeta (objcrypt's metadata:
// version, algorithm, segment size, key id, wrapped data key, plaintext
// length; the plaintext MD5 sealed under the data key and its MAC; the
// user metadata sealed as one set under the project key's metadata key).
// Subpackage internal/etag computes both MD5s as objcrypt's Writer
// encrypts (its Observer). Those live only in the .data file: a fast-POST
// .meta never carries them (its user metadata is sealed the same way in
// X-Object-Transient-Sysmeta-Arca-* keys), and when merging, sysmeta
// always comes from the .data file (metacrypt.go; objcrypt/SPEC.md,
// "Metadata"). Objects written before the ETag and metadata were sealed
// keep them in clear and are served as they are until a rewrap upgrades
// them. A rewrap (package rewrap) therefore replaces Key-Id and
// Wrapped-Key (and reseals the user metadata) in the .data file's
// metadata, in single-xattr steps that each leave a readable file (see
// rewrap's documentation); the header inside the data keeps the original
// key part and readers use the metadata's (objcrypt.ReaderOptions).
// Whether an object is decrypted is the configuration's decision, never
// the disk's (stored.go): with crypto_driver = objcrypt an object without
// consistent Arca sysmeta over an objcrypt stream is refused and
// quarantined as Swift's auditor would, and plaintext objects written
// before encryption are served only behind legacy_plaintext_before; with
// crypto_driver = none an encrypted object is refused (503). HEAD and POST
// open the data with the object's key as GET does (get.go, openCrypt), so
// the plaintext length they answer or send to the container listing is
// authenticated, and they fail closed (503, 410) as GET does. They open
// the sealed ETag and user metadata with it: one that does not open was
// edited on disk and is refused as such (quarantine, 404), never shown;
// conditionals compare ETags by MAC. A POST seals its metadata under the
// project's active key and fails closed without it.
//
// The port serves plaintext without asking for a token, as Swift's object
// servers do: only peers in [arca] trusted_networks are answered (403
// otherwise, GET/HEAD /healthcheck excepted), the server does not start
// beyond loopback without that list, and a configuration file holding the
// key-service credential must not be readable by group or others
// (trust.go).
//
// Each verb's handler (put.go, get.go, post.go, delete.go) reads as its
// phases: parse, preconditions, key, body, metadata, commit, notify. A
// handler writes its success itself and returns anything else as an
// error; respond (respond.go) is the one place that turns an error into
// Swift's answer: a *swiftError the protocol decided (status, body,
// headers), or an internal failure answered by where it happened (disk,
// key service, request body).
//
// The notify phase of PUT and POST seals the container update's ETag (and
// the slo_etag and symlink_target_etag parameters SLO and symlink set)
// under the object's project key's listing key (listingetag.go,
// objcrypt/SPEC.md "Listing ETags"), so that container databases and async
// pendings hold no plaintext MD5; arca-swift-filter opens them in listings.
//
// Answers follow swob, Swift's HTTP layer, because the proxy passes them
// on and reads their headers (swob.go): default bodies and types, 304, 412
// and 416 with the object's headers, ETag included, and Swift's PUT
// constraints with its messages (constraints.go). The differences kept on
// purpose are listed in docs/compatibility.md and held by the backend
// differential test against Swift's Python object server.
//
// Wiring: LoadConfig reads object-server.conf once (the key client's
// credentials through keystone.LoadCredentials), Build assembles the
// metrics, key client, health check and Server (New with options), and
// Server.Serve runs it with internal/serve; cmd/arca-object-server only
// calls these.
//
// Erasure-coded policies (putec.go, multiphase.go, ecstore.go,
// diskfile/ecdisk.go): each node stores its fragment archive as
// <ts>#<index>.data under a data key of its own, renamed <ts>#<index>#d.data
// on the proxy's commit. An archive of liberasurecode fragments (all the
// proxy and Swift's reconstructor send) is stored in objcrypt's EC layout:
// the same fragments, headers in clear with each fragment's MAC in the
// header's unused checksum field, payloads encrypted in place, so the file
// has the archive's length and Swift's Python auditor and reconstructor
// read it; anything else (and every archive written before) is one
// objcrypt stream, still read. GET and HEAD choose the fragment as Swift's
// ECDiskFile does (durable only, unless the proxy sends
// X-Backend-Fragment-Preferences) and answer X-Backend-Fragments and
// X-Backend-Durable-Timestamp. The commit phase of the multiphase PUT
// sends a second body after the first one's end, which net/http cannot
// frame: such a PUT takes the connection over (multiphase.go).
//
// SSYNC (ssync.go, ecsync.go, ssyncmeta.go): a receiver, so that Swift's
// reconstructor can rebuild fragment archives onto Arca nodes and revert
// them. A subrequest runs through the handlers above, so a rebuilt archive
// is encrypted as any write (the sealed metadata a rebuild carries from
// the sender's local archive is opened and sealed again); an archive in
// the EC layout sent as stored (a revert from an Arca device) is checked
// whole under the project key and kept byte for byte, or refused; so is a
// POST's .meta sent as stored (its sealed user metadata); any other SSYNC
// write carrying Arca's metadata (a replicated object's objcrypt stream)
// is refused, never stored as plaintext.
//
// What it is not: an SSYNC sender or reconstructor of its own (Swift's run
// on Arca's devices for archives in the EC layout: docs/compatibility.md),
// or a key cache of its own (the keyclient caches).
package objectserver
