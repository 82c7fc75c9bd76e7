//go:build amd64 && !purego

package objcrypt

import "golang.org/x/sys/cpu"

//go:generate go run sha2lanes_gen.go

// sha256Blocks2 runs SHA-256's compression function over blocks 64-byte
// blocks of pa into sa and, interleaved, of pb into sb (states in FIPS
// 180-4's word order). It needs SHA-NI (hasSHA2Lanes).
//
//go:noescape
func sha256Blocks2(sa, sb *[8]uint32, pa, pb *byte, blocks int)

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// hasSHA2Lanes says whether sha256Blocks2 can run: the SHA extensions
// (CPUID leaf 7, EBX bit 29) and the SSSE3/SSE4.1 shuffles it uses.
var hasSHA2Lanes = func() bool {
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf < 7 {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<29) != 0 && cpu.X86.HasSSSE3 && cpu.X86.HasSSE41
}()
