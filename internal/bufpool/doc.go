// Package bufpool lends byte buffers by size class, so that a server
// answering many small requests reuses the few kilobytes each one needs
// instead of allocating them.
//
// On the two-core machines Arca is measured on, the garbage collector's
// work grows with the bytes a request allocates, not with what it keeps:
// an object-server GET of 4 KiB that allocated 21 KiB spent about a
// quarter of its CPU in collection, sweeping and returning memory to the
// system (docs/benchmarks.md). The buffers a request holds only while it
// runs (a small data file read whole, a read window, its plaintext) come
// from here and go back when the request ends.
//
// A buffer comes back with whatever its last user left in it: callers
// read only the bytes they wrote, and wipe before Put what must not
// outlive them (plaintext).
package bufpool
