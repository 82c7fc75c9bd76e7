//go:build !amd64 || purego

package objcrypt

// fastCBC is the pipelined AES-NI CBC; on other platforms there is none and
// the standard library's CBC modes are used.
type fastCBC struct{}

func newFastCBC([]byte) *fastCBC             { return nil }
func (*fastCBC) encrypt(dst, src, iv []byte) {}
func (*fastCBC) decrypt(dst, src, iv []byte) {}
func (*fastCBC) encryptLanes([]cbcJob)       {}
