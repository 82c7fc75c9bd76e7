// Package ringhash computes where Swift puts an object: the hash of its
// path salted with swift.conf's [swift-hash] prefix and suffix, the suffix
// directory and the ring partition; and it reads the storage policies that
// swift.conf declares.
//
// What it is not: a ring reader. The object server never needs the rings;
// the proxy names the device and partition in every request.
package ringhash

import (
	"crypto/md5" //nolint:gosec // G501: Swift's hash_path is MD5 by protocol
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/ini.v1"
)

// DefaultSwiftConf is where Swift reads the hash prefix and suffix.
const DefaultSwiftConf = "/etc/swift/swift.conf"

// Hasher hashes object paths as a given cluster does.
type Hasher struct {
	Prefix, Suffix string
}

// HashPath returns md5hex(prefix + "/a/c/o" + suffix), Swift's hash_path.
func (h Hasher) HashPath(account, container, object string) string {
	sum := h.sum(account, container, object)
	return hex.EncodeToString(sum[:])
}

func (h Hasher) sum(account, container, object string) [16]byte {
	m := md5.New() //nolint:gosec // G401: Swift's hash_path
	m.Write([]byte(h.Prefix))
	m.Write([]byte("/" + account))
	if container != "" {
		m.Write([]byte("/" + container))
		if object != "" {
			m.Write([]byte("/" + object))
		}
	}
	m.Write([]byte(h.Suffix))
	var out [16]byte
	copy(out[:], m.Sum(nil))
	return out
}

// Partition is the ring partition of a path for a ring of 2^partPower
// partitions: the digest's first 4 bytes, big-endian, shifted.
func (h Hasher) Partition(account, container, object string, partPower uint) uint32 {
	sum := h.sum(account, container, object)
	return binary.BigEndian.Uint32(sum[:4]) >> (32 - partPower)
}

// Policy is a storage policy from swift.conf.
type Policy struct {
	Index   int
	Name    string
	Default bool
	Type    string // "replication" or "erasure_coding"
	// ECFragments is ec_num_data_fragments + ec_num_parity_fragments of
	// an erasure_coding policy (0 otherwise): fragment indexes are below.
	ECFragments int
}

// Conf is what an object server needs from swift.conf.
type Conf struct {
	Hasher
	Policies map[int]Policy
}

// ErrNoHashSalt: swift.conf sets neither prefix nor suffix.
var ErrNoHashSalt = errors.New("ringhash: swift.conf sets no swift_hash_path_prefix or swift_hash_path_suffix")

// Load reads swift.conf.
func Load(path string) (*Conf, error) {
	f, err := ini.LoadSources(iniOptions, path)
	if err != nil {
		return nil, fmt.Errorf("ringhash: reading %s: %w", path, err)
	}
	return fromINI(f)
}

// Parse reads swift.conf from bytes.
func Parse(data []byte) (*Conf, error) {
	f, err := ini.LoadSources(iniOptions, data)
	if err != nil {
		return nil, fmt.Errorf("ringhash: parsing swift.conf: %w", err)
	}
	return fromINI(f)
}

// Swift reads swift.conf with Python's ConfigParser: no inline comments.
var iniOptions = ini.LoadOptions{
	IgnoreInlineComment:     true,
	PreserveSurroundedQuote: true,
}

func fromINI(f *ini.File) (*Conf, error) {
	hash := f.Section("swift-hash")
	c := &Conf{
		Hasher: Hasher{
			Prefix: strings.TrimSpace(hash.Key("swift_hash_path_prefix").String()),
			Suffix: strings.TrimSpace(hash.Key("swift_hash_path_suffix").String()),
		},
		Policies: map[int]Policy{},
	}
	if c.Prefix == "" && c.Suffix == "" {
		return nil, ErrNoHashSalt
	}
	for _, sec := range f.Sections() {
		rest, ok := strings.CutPrefix(sec.Name(), "storage-policy:")
		if !ok {
			continue
		}
		idx, err := strconv.Atoi(rest)
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("ringhash: bad storage policy section [%s]", sec.Name())
		}
		def := strings.ToLower(strings.TrimSpace(sec.Key("default").String()))
		typ := strings.TrimSpace(sec.Key("policy_type").String())
		if typ == "" {
			typ = "replication"
		}
		pol := Policy{
			Index:   idx,
			Name:    strings.TrimSpace(sec.Key("name").String()),
			Default: def == "yes" || def == "true" || def == "1" || def == "on",
			Type:    typ,
		}
		if typ == "erasure_coding" {
			nd, errD := strconv.Atoi(strings.TrimSpace(sec.Key("ec_num_data_fragments").String()))
			np, errP := strconv.Atoi(strings.TrimSpace(sec.Key("ec_num_parity_fragments").String()))
			if errD != nil || errP != nil || nd < 1 || np < 0 {
				return nil, fmt.Errorf("ringhash: [%s] needs ec_num_data_fragments and ec_num_parity_fragments", sec.Name())
			}
			pol.ECFragments = nd + np
		}
		c.Policies[idx] = pol
	}
	if len(c.Policies) == 0 {
		// Swift's legacy behaviour: policy 0 exists implicitly.
		c.Policies[0] = Policy{Index: 0, Name: "Policy-0", Default: true, Type: "replication"}
	}
	return c, nil
}

// PolicyIndexes lists the configured policy indexes in order.
func (c *Conf) PolicyIndexes() []int {
	out := make([]int, 0, len(c.Policies))
	for i := range c.Policies {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// HashPathRaw is md5hex(prefix + s + suffix) for an already joined path.
func (h Hasher) HashPathRaw(s string) string {
	sum := md5.Sum([]byte(h.Prefix + s + h.Suffix)) //nolint:gosec // G401: Swift's hash_path
	return hex.EncodeToString(sum[:])
}
