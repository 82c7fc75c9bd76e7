// Package rewrap is the object key rewrap job of one storage node
// (`arca-object-server rewrap`): it moves every stored object of
// a project from older project keys to the project's active key by
// rewrapping the object's data key, so the old keys can be destroyed. It
// touches only metadata: no object body is read or written, except with
// --upgrade-ec-layout, which rewrites erasure-coded archives stored as one
// objcrypt stream (written before objcrypt's EC layout) into the EC
// layout, each into a new file renamed over the old one (ecupgrade.go).
//
// # What it does
//
// It walks the node's devices (<devices>/<dev>/objects[-N]/<part>/<suffix>/
// <hash>/) in a fixed order (devices, policies and suffixes by name,
// partitions by number). For each hash directory it finds the current
// .data file as Swift decides it (the newest .data not older than the
// newest tombstone; a deleted object has none and is left alone) or, for
// an erasure-coded policy (<ts>#<idx>[#d].data), every fragment archive
// newer than the newest tombstone (diskfile.LiveData: a handoff may hold
// several indexes, a newer non-durable archive may sit beside the durable
// one; each has its own wrapped data key and is examined, rewrapped and
// counted on its own, the .meta files once per directory). For each it
// reads its user.swift.metadata pickle and, when its X-Object-Sysmeta-Arca-
// Key-Id is not its project's active key, opens the data key with the old
// key and seals it under the active one (objcrypt.Rewrap, a fresh GCM nonce
// and the same object-path binding) and stores the new Key-Id and
// Wrapped-Key. The user metadata sealed under a project key goes with it:
// the .data's sealed set and every fast-POST .meta's are opened with their
// key and resealed under the active one (metafile.go), or destroying the
// old key would make the object's metadata, hence the object, unreadable.
// Objects written before the ETag and metadata were sealed are upgraded
// in place, on the active key too: the plaintext ETag is sealed under the
// data key and the user metadata under the project key (objcrypt/SPEC.md,
// "Metadata"), and so is a .meta an earlier release wrote with its user
// metadata in the clear. Objects already on the active key cost one
// directory listing, one metadata read and a glob for .meta files. Status
// (a dry run) counts, per project key, the objects and the .meta files on
// this node that depend on it, the .meta files still in the clear, and the
// EC archives still in the old layout.
//
// # Replacing the metadata so that a crash or a reader never sees garbage
//
// The crypto metadata lives only in the .data file's xattrs: the pickle,
// split into 64 KiB chunks under user.swift.metadata, user.swift.metadata1,
// ..., and user.swift.metadata_checksum (MD5 of the pickle). There is no
// multi-xattr transaction, and a new file is not an option: a hard link
// shares the inode and so its xattrs, and a copy would rewrite the data.
// Readers (this server's GET/HEAD, Swift's Python auditor and replicator)
// read the chunks, then the checksum; a checksum that is present must
// match, an absent one is accepted (Swift has always accepted files
// without it). So the job changes a file in three single-xattr steps:
//
//  1. remove the checksum: the old pickle, unchecked;
//  2. replace the one chunk that holds Key-Id and Wrapped-Key with one
//     setxattr (the kernel replaces a value atomically): the new pickle,
//     unchecked;
//  3. after a delay (--checksum-delay, 2 s), write the new checksum.
//
// Every state between the steps is a readable file with the old or the new
// wrapping, and both open while the old key exists. A reader that read the
// pickle before step 2 and reads the checksum after step 1 finds none and
// accepts the old pickle; only a reader that spans steps 2 and 3 could see
// an old pickle with the new checksum, and the delay makes that need a
// reader stalled for seconds between two consecutive getxattr calls.
//
// When the user metadata is resealed or upgraded, the pickle is encoded
// anew, still replaced in one setxattr while it fits one chunk. Otherwise
// the new pickle is the old one with the two values replaced byte for byte
// (a key id and a wrapped key of the same lengths), so all other bytes stay
// as written, including Python 3 Swift's encodings, and only one chunk
// changes; the job checks that the edited pickle decodes to exactly the
// old metadata with the two values changed (and re-encodes it otherwise).
// When the change would touch two chunks (metadata over 64 KiB, which
// Swift's metadata limits make rare) the object is reported as failed
// ("writing metadata") and left as it was.
//
// A run stopped between steps 2 and 3 leaves files on the active key
// without a checksum; the next run (or any run) restores it for every file
// it finds so, after the same delay.
//
// # Beside live traffic
//
// The object server takes no per-object lock for PUT, POST or DELETE (nor
// does Swift's): new versions are whole new files renamed into the hash
// directory under a newer timestamp, and cleanup unlinks the older ones.
// The job changes xattrs only through the file descriptor of the .data file
// it opened, never by creating or renaming anything, so it can never bring
// back a file that a DELETE or a newer PUT removed: if the file was
// unlinked meanwhile, the write lands on an orphaned inode and is gone with
// it. It holds Swift's partition lock (<part>/.lock) while it re-checks that
// the file is still the current .data and rewrites it, which serializes it
// with suffix hashing (REPLICATE) and with other rewrap jobs (two jobs
// racing on one file could otherwise leave a checksum of the other's
// pickle). The job takes it before listing a hash directory and keeps it
// until the file is rewritten, so the listing, the metadata read (made
// once) and the write are one step for every other holder of the lock.
// Every key an object needs (its .data's, its sealed user metadata's and
// its .meta files') is asked for before, with the lock released, and the
// object examined again under it (a cache hit then); it
// keeps it across the objects of a suffix, for at most 64 objects, never
// rate-limit wait. A POST writes a .meta file and never carries crypto
// metadata (the object server takes sysmeta from the .data file), so user
// metadata, Content-Type and their timestamps are untouched. rsync
// replication runs with --ignore-existing and never replaces an existing
// .data file.
//
// # What clients and replication see
//
// Nothing changes that clients or replication compare: the .data file keeps
// its name (its timestamp), X-Timestamp, Content-Length, ETag, the
// plaintext ETag and length, user metadata and the object bytes. Swift's
// suffix hashes are MD5s over the file names in each hash directory
// (timestamps and extensions), not over xattrs, so they do not change and
// the job does not invalidate them: rewrapping causes no replication
// traffic. The consequence is that each node rewraps its own replicas (run
// the job on every node), and that a replica pushed later from a node that
// has not been rewrapped arrives with the old wrapping: check `status` on
// every node after replication has settled before destroying a key.
//
// # Keys during a run
//
// The job keeps no key of its own: for each object it asks the key client
// (the object server's, with its [arca] active_key_cache_ttl and
// key_cache_ttl) for the project's active key id and, for a rewrap, the
// bytes of both keys, and wipes its copies of the bytes when the file is
// done. So a rotation during a run is seen within active_key_cache_ttl and
// a destroyed key stops opening objects within key_cache_ttl: a run never
// brings back objects crypto-shredded while it ran. Right before it commits
// a rewrite the job asks for the active key id once more, as the object
// server confirms a PUT's key before committing it; when it changed, the
// file is left as it was and examined again onto the new key. So nothing
// is committed onto a key that stopped being active as the client knows it,
// which arca-api does not destroy for its own active_key_cache_ttl (at
// least the object servers') after the rotation. Keys are asked for with
// no partition lock held and asked again under the lock a moment later,
// which the client's cache answers; only an entry that expired in between
// costs one key service request under the lock.
//
// # Resuming and rate
//
// Partitions are processed by a few workers at once (--workers, default
// GOMAXPROCS), each partition by one worker, so they finish out of order.
// With a state file the job records a frontier: the last suffix (in the
// walk's order) such that it and every suffix before it have all their
// objects rewrapped and their checksums restored, plus the partitions after
// it that are complete. A new run with the same scope skips exactly those,
// so it never skips an unfinished suffix; a completed run makes the next
// start over. The rate limit counts objects examined per second, over all
// workers. What stops one worker stops them all at their next object (an
// interruption, or a state file that cannot be written: the run's error);
// a failure of one object does not (it is counted and the walk goes on).
// Either way every file already rewritten gets its checksum back, after
// the delay, before Run returns.
//
// # Where the code is
//
// Run (rewrap.go) resumes from the state file (state.go) and walks
// (walk.go): the partitions are listed and handed to the workers, at most
// --workers at once (an errgroup). A worker walks a partition's suffixes
// (suffix.go: the partition lock, the rate limit, examining an object
// again after warming its keys) and examines each object (object.go: the
// live .data files, their project and crypto metadata, the keys; keys.go asks
// the key client), rewraps it (rewrite.go: steps 1 and 2) and queues its
// checksum (checksum.go: step 3). frontier.go records what is done for the
// state file; summary.go adds up the workers' counts and writes the report
// that cli.go (the command line) prints. rewraptest holds the fixtures of
// its tests (a one-device node, keys in memory, objects written as the
// object server writes them), which make bench's rewrap rate report
// (tools/speedreport rewrap) uses too.
//
// What it is not: a re-encryption (the data key stays the same; rotating it
// needs a rewrite of the object through the proxy), a cluster-wide job (one
// node, its devices), or a replacement for destroying the key in the key
// service afterwards.
package rewrap
