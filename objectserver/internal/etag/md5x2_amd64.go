//go:build amd64 && !purego

package etag

//go:generate go run md5x2_gen.go

// md5x2 runs MD5's compression function over blocks 64-byte blocks of pa
// into sa and, interleaved, of pb into sb.
//
//go:noescape
func md5x2(sa, sb *[4]uint32, pa, pb *byte, blocks int)
